"""The official Oxford 102 Flowers files: names, digests, where to get them, and readers for
the label files and the image archive (see :mod:`lifsg.data.flowers`)."""

import gzip
import hashlib
import tarfile
from pathlib import Path

import numpy as np

from ..common import UNREADABLE, DataError

BASE_URL = "https://www.robots.ox.ac.uk/~vgg/data/flowers/102/"
TGZ, LABELS, SETID = "102flowers.tgz", "imagelabels.mat", "setid.mat"
# name -> official md5 (docs/model.md section 7)
FILES = {
    TGZ: "52808999861908f626f3c1f4e79d11fa",
    LABELS: "e0620be6f572b9609742df49c70aed4d",
    SETID: "a5357ecc9cb78c4bef273ce3793fc85c",
}
SIZES = {TGZ: "about 330 MB", LABELS: "small", SETID: "small"}
SPLIT_KEYS = ("trnid", "valid", "tstid")
CHUNK = 1 << 20
FETCH_HINT = "run `python -m lifsg.data fetch flowers` (it prints what to place where)"


def member_name(image_id):
    """Archive member of the 1-based image number: ``jpg/image_00001.jpg``."""
    return f"jpg/image_{int(image_id):05d}.jpg"


def md5_of(path):
    """Hex md5 digest of a file, read in chunks; DataError naming it if it cannot be read."""
    digest = hashlib.md5(usedforsecurity=False)
    try:
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    except OSError as err:
        raise DataError(f"{path}: cannot read ({type(err).__name__}: {err})") from err
    return digest.hexdigest()


def flowers_files_missing(data_dir="data/flowers"):
    """Names of the official files that are not in ``data_dir`` (empty list: all there)."""
    data_dir = Path(data_dir)
    return [name for name in FILES if not (data_dir / name).is_file()]


def flowers_instructions(data_dir="data/flowers", names=None):
    """Text that says which files to download from where and where to place them."""
    data_dir = Path(data_dir)
    names = list(FILES) if names is None else list(names)
    lines = [
        "Oxford 102 Flowers is not distributed through any package registry; get the official "
        "files from",
        f"{BASE_URL} and place them like this:",
    ]
    for name in names:
        where = f"{data_dir / name}  ({SIZES[name]}, md5 {FILES[name]})"
        lines.append(f"  {BASE_URL}{name}  ->  {where}")
    lines.append(
        "Keep 102flowers.tgz packed (the loader reads jpg/image_XXXXX.jpg from it); then "
        "`python -m lifsg.data fetch flowers` checks them."
    )
    return "\n".join(lines)


def check_files(data_dir, verify):
    """Raise DataError for missing files (or wrong md5s if ``verify``); return the md5s."""
    missing = flowers_files_missing(data_dir)
    if missing:
        raise DataError(
            f"{data_dir}: missing {', '.join(missing)}; {FETCH_HINT}\n"
            + flowers_instructions(data_dir, missing)
        )
    digests = {name: md5_of(Path(data_dir) / name) for name in FILES}
    if verify:
        for name, digest in digests.items():
            if digest != FILES[name]:
                raise DataError(
                    f"{Path(data_dir) / name}: checksum mismatch, md5 {digest}, expected the "
                    f"official {FILES[name]} (incomplete download or a different file); "
                    f"download it again from {BASE_URL}{name}"
                )
    return digests


def _loadmat(path):
    from scipy import io as sio

    try:
        return sio.loadmat(str(path))
    except Exception as err:  # scipy raises many types (ValueError, TypeError, OSError, ...)
        raise DataError(f"{path}: not a readable MATLAB .mat file ({err})") from err


def _int_vector(mat, key, path):
    if key not in mat:
        present = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{path}: no variable {key!r} (found {present})")
    value = np.asarray(mat[key])
    if value.ndim == 2 and 1 in value.shape:
        value = value.ravel()
    if value.ndim != 1 or value.size == 0 or value.dtype.kind not in "iuf":
        raise DataError(f"{path}: {key} is {value.dtype} {value.shape}, expected a 1 x N row")
    if value.dtype.kind == "f" and not np.all(value == np.round(value)):
        raise DataError(f"{path}: {key} holds non-integer values")
    return value.astype(np.int64)


def read_labels(path):
    """``labels`` of imagelabels.mat as an int64 vector (class of image i+1 at index i)."""
    labels = _int_vector(_loadmat(path), "labels", path)
    if labels.min() < 1:
        raise DataError(f"{path}: labels must be >= 1 (1-based classes), found {labels.min()}")
    return labels


def read_setid(path, n_images):
    """``{"trnid", "valid", "tstid"}`` of setid.mat as int64 vectors of 1-based image numbers."""
    mat = _loadmat(path)
    split = {key: _int_vector(mat, key, path) for key in SPLIT_KEYS}
    for key, ids in split.items():
        if ids.min() < 1 or ids.max() > n_images:
            raise DataError(
                f"{path}: {key} holds image numbers {ids.min()}..{ids.max()}, outside 1.."
                f"{n_images} (the images of imagelabels.mat)"
            )
        if len(np.unique(ids)) != len(ids):
            raise DataError(f"{path}: {key} lists an image twice")
    joined = np.concatenate(list(split.values()))
    if len(np.unique(joined)) != len(joined):
        raise DataError(f"{path}: trnid, valid and tstid overlap")
    return split


def read_members(tgz, names):
    """``{name: bytes}`` of the wanted members of a .tgz, read in one pass.

    The whole archive is read, so that gzip checks its CRC-32 at the end: a damaged byte never
    yields a silently different image. Leading ``./`` in member names is ignored. Raises
    DataError for an unreadable archive and names the first missing member.
    """
    wanted, found = set(names), {}
    try:
        with gzip.open(tgz, "rb") as gz, tarfile.open(fileobj=gz, mode="r|") as archive:
            for member in archive:
                name = member.name.removeprefix("./")
                if name in wanted and member.isfile():
                    found[name] = archive.extractfile(member).read()
            while gz.read(CHUNK):  # to the end of the gzip stream, where the CRC is checked
                pass
    except (tarfile.TarError, *UNREADABLE) as err:
        raise DataError(
            f"{tgz}: corrupt or truncated archive ({type(err).__name__}: {err}); download it "
            f"again from {BASE_URL}{TGZ}"
        ) from err
    missing = sorted(wanted - set(found))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"{tgz}: no member {missing[0]}{more} (expected jpg/image_XXXXX.jpg)")
    return found
