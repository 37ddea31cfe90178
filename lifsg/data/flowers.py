"""Oxford 102 Flowers from the official files, and the paper's 10-class subset (item F7).

The official files (Nilsback & Zisserman 2008, https://www.robots.ox.ac.uk/~vgg/data/flowers/102/)
go into one folder, ``data/flowers`` by default::

    data/flowers/102flowers.tgz    the images, jpg/image_00001.jpg ... jpg/image_08189.jpg
    data/flowers/imagelabels.mat   ``labels``: 1 x 8189, class of each image, 1..102
    data/flowers/setid.mat         ``trnid``, ``valid``, ``tstid``: 1-based image numbers

:func:`load_flowers` verifies them (md5) and builds the subset of the authors' old loader: the
``classes`` classes with most images, ``per_class`` images each, centre crops of 400 x 500
(height x width) resized to ``size``, split ``per_class - test_per_class`` / ``test_per_class``
per class (1000 train / 200 test by default). The split is deterministic and follows the
official one where it can (see :func:`select_subset`). The result is cached as a compressed npz
in ``<data_dir>/cache/``, keyed by the parameters and the source files' md5 digests.

:func:`fetch_flowers` downloads the official files where the network allows and otherwise says
exactly which file to put where. :func:`write_fixture` writes a tiny synthetic data set in the
same file format (for tests and the notebook's QUICK mode); it is not Oxford Flowers.
"""

import gzip
import hashlib
import http.client
import io
import json
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from .common import UNREADABLE, DataError, atomic_write, log

__all__ = [
    "FILES",
    "fetch_flowers",
    "flowers_files_missing",
    "flowers_instructions",
    "load_flowers",
    "select_subset",
    "write_fixture",
]

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
DEFAULT_CROP = (400, 500)
DEFAULT_SIZE = (64, 80)
DOWNLOAD_TIMEOUT_S = 10
CHUNK = 1 << 20
CACHE_VERSION = 1
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


# --------------------------------------------------------------------------------------------
# Reading and checking the official files


def _check_files(data_dir, verify):
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


def select_subset(labels, split, classes=10, per_class=120, test_per_class=20):
    """The old loader's subset (docs/model.md, F7) as 1-based image numbers, from the .mat files.

    The old loader's choice of classes and sizes; the split rule below is ours.

    Classes: the ``classes`` labels with most images (ties: the smaller label first), ranked
    by size; class ``k`` of the subset is the ``k``-th largest. Per class, deterministically:

    - test: the class's first ``test_per_class`` images of the official test split ``tstid``
      (in image-number order);
    - train: ``per_class - test_per_class`` images: the class's official ``trnid`` and ``valid``
      images first, then its remaining ``tstid`` images, each group in image-number order.

    So no official training or validation image is ever in our test set. Both lists are
    interleaved by class (image 1 of every class, then image 2, ...), so any prefix is balanced.

    Returns ``{"class_labels", "train_ids", "y_train", "test_ids", "y_test"}`` (int64 arrays;
    ``y`` in 0..classes-1; ``class_labels[k]`` is the official label of class ``k``).
    """
    labels = np.asarray(labels, dtype=np.int64)
    if not 1 <= test_per_class < per_class:
        raise ValueError(
            f"need 1 <= test_per_class < per_class, got {test_per_class} and {per_class}"
        )
    values, counts = np.unique(labels, return_counts=True)
    if classes < 1 or classes > len(values):
        raise ValueError(f"classes must lie in 1..{len(values)}, got {classes}")
    order = np.lexsort((values, -counts))[:classes]  # most images first, then smaller label
    class_labels = values[order]
    test_pool = set(split["tstid"].tolist())
    official_train = set(split["trnid"].tolist()) | set(split["valid"].tolist())
    train_ids, test_ids = [], []
    for label in class_labels:
        ids = np.flatnonzero(labels == label) + 1
        if len(ids) < per_class:
            raise DataError(f"class {label} has only {len(ids)} images, fewer than {per_class}")
        tst = [i for i in ids if i in test_pool]
        if len(tst) < test_per_class:
            raise DataError(
                f"class {label} has only {len(tst)} images in tstid, fewer than {test_per_class}"
            )
        test = tst[:test_per_class]
        rest = [i for i in ids if i in official_train] + tst[test_per_class:]
        rest += [i for i in ids if i not in test_pool and i not in official_train]
        train = rest[: per_class - test_per_class]
        if len(train) < per_class - test_per_class:
            raise DataError(f"class {label}: not enough images for {per_class} per class")
        train_ids.append(train)
        test_ids.append(test)

    def interleave(per):
        ids = np.array(per, dtype=np.int64)  # (classes, n)
        y = np.broadcast_to(np.arange(classes)[:, None], ids.shape)
        return ids.T.ravel(), y.T.ravel().astype(np.int64)

    train_ids, y_train = interleave(train_ids)
    test_ids, y_test = interleave(test_ids)
    return {
        "class_labels": class_labels.astype(np.int64),
        "train_ids": train_ids,
        "y_train": y_train,
        "test_ids": test_ids,
        "y_test": y_test,
    }


def crop_box(width, height, crop=DEFAULT_CROP, size=DEFAULT_SIZE):
    """Centred crop window ``(left, top, right, bottom)`` of an image ``width`` x ``height``.

    crop: (height, width) of the window, 400 x 500 as in the old loader; where the image is
    smaller, the largest centred window of the same aspect ratio that fits. None: the largest
    centred window with the aspect ratio of ``size`` (height, width).
    """
    ch, cw = size if crop is None else crop
    scale = min(width / cw, height / ch)
    if crop is not None:
        scale = min(scale, 1.0)
    cw, ch = cw * scale, ch * scale
    left, top = (width - cw) / 2, (height - ch) / 2
    return (left, top, left + cw, top + ch)


def decode_image(payload, name, size=DEFAULT_SIZE, crop=DEFAULT_CROP):
    """JPEG bytes -> uint8 (height, width, 3): centre crop, then resize to ``size``."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(payload)) as img:
            img = img.convert("RGB")
            box = crop_box(img.width, img.height, crop, size)
            out = img.resize((size[1], size[0]), Image.Resampling.LANCZOS, box=box)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise DataError(f"{name}: cannot decode the image ({err})") from err
    return np.asarray(out, dtype=np.uint8)


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


# --------------------------------------------------------------------------------------------
# The subset and its cache


def _cache_meta(digests, classes, per_class, test_per_class, size, crop):
    return {
        "version": CACHE_VERSION,
        "classes": int(classes),
        "per_class": int(per_class),
        "test_per_class": int(test_per_class),
        "size": [int(s) for s in size],
        "crop": None if crop is None else [int(c) for c in crop],
        "md5": dict(sorted(digests.items())),
    }


def _cache_path(cache_dir, meta):
    key = hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]
    h, w = meta["size"]
    return Path(cache_dir) / f"flowers_{meta['classes']}x{meta['per_class']}_{h}x{w}_{key}.npz"


ARRAYS = ("x_train", "y_train", "x_test", "y_test", "class_labels", "train_ids", "test_ids")


def _read_cache(path, meta):
    """The cached arrays, or None if the file is absent, unreadable or for other parameters."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            stored = json.loads(str(npz["meta"]))
            arrays = {key: npz[key] for key in ARRAYS}
    except Exception as err:  # a broken cache is rebuilt, never trusted
        log(f"ignoring unreadable cache {path} ({err}); rebuilding it")
        return None
    if stored != meta:
        log(f"ignoring cache {path} built for other parameters; rebuilding it")
        return None
    return arrays


def load_flowers(
    data_dir="data/flowers",
    classes=10,
    per_class=120,
    size=DEFAULT_SIZE,
    test_per_class=20,
    crop=DEFAULT_CROP,
    verify=True,
    cache=True,
    return_info=False,
):
    """The paper's Oxford Flowers subset: ``(x_train, y_train), (x_test, y_test)``.

    Images are uint8 (N, height, width, 3), labels int64 (N,) in 0..classes-1 (class 0 has the
    most images). Defaults: 10 classes x 120 images, 100 train + 20 test per class (1000 /
    200), centre crops of 400 x 500 (height x width) resized to ``size`` = (64, 80). The split
    is described in :func:`select_subset`.

    data_dir: folder with 102flowers.tgz, imagelabels.mat and setid.mat.
    verify: check the official md5 digests (False for fixtures and other copies). Without it
        a damaged file reaches the parsers; they raise DataError, except that scipy's .mat
        reader can crash the process on some damaged .mat headers (seen with scipy 1.17).
    cache: read / write ``<data_dir>/cache/flowers_<classes>x<per_class>_<h>x<w>_<key>.npz``
        (compressed npz, no pickle), keyed by the parameters and the files' md5 digests.
    return_info: also return a dict with ``class_labels`` (official label of each class),
        ``train_ids`` / ``test_ids`` (1-based image numbers), ``cache`` (path or None) and
        ``md5``.

    Raises DataError naming the file and the problem for missing, corrupt or mismatching
    files.
    """
    data_dir = Path(data_dir)
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be (height, width) of positive integers, got {size}")
    if crop is not None and (len(crop) != 2 or min(crop) < 1):
        raise ValueError(f"crop must be (height, width) of positive integers or None, got {crop}")
    digests = _check_files(data_dir, verify)
    meta = _cache_meta(digests, classes, per_class, test_per_class, size, crop)
    path = _cache_path(data_dir / "cache", meta) if cache else None
    arrays = _read_cache(path, meta) if cache else None
    if arrays is None:
        arrays = _build(data_dir, classes, per_class, test_per_class, size, crop)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            payload = dict(arrays, meta=np.array(json.dumps(meta, sort_keys=True)))
            atomic_write(path, lambda f: np.savez_compressed(f, **payload))
    data = (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
    if not return_info:
        return data
    info = {key: arrays[key] for key in ("class_labels", "train_ids", "test_ids")}
    info.update(cache=path, md5=digests)
    return data, info


def _build(data_dir, classes, per_class, test_per_class, size, crop):
    """Read the three files and build the subset's arrays."""
    labels = read_labels(data_dir / LABELS)
    split = read_setid(data_dir / SETID, len(labels))
    subset = select_subset(labels, split, classes, per_class, test_per_class)
    ids = np.concatenate([subset["train_ids"], subset["test_ids"]])
    payloads = read_members(data_dir / TGZ, [member_name(i) for i in ids])

    def images(which):
        out = [
            decode_image(payloads[member_name(i)], f"{data_dir / TGZ}:{member_name(i)}", size, crop)
            for i in subset[which]
        ]
        return np.stack(out) if out else np.zeros((0, *size, 3), np.uint8)

    return {
        "x_train": images("train_ids"),
        "y_train": subset["y_train"],
        "x_test": images("test_ids"),
        "y_test": subset["y_test"],
        "class_labels": subset["class_labels"],
        "train_ids": subset["train_ids"],
        "test_ids": subset["test_ids"],
    }


# --------------------------------------------------------------------------------------------
# Fetching


def fetch_flowers(data_dir="data/flowers", timeout=DOWNLOAD_TIMEOUT_S):
    """Put the three official files into ``data_dir``, verified; return the folder.

    Files already there with the official md5 are kept. Others (missing, damaged, unreadable)
    are downloaded from the official site (``timeout`` seconds per network operation) and
    replace them atomically; after the first network failure no further download is tried.
    If anything is still missing or wrong, raises DataError with exactly which file to place
    where.
    """
    data_dir = Path(data_dir)
    todo = []
    for name, expected in FILES.items():
        path = data_dir / name
        if path.is_file():
            try:
                digest = md5_of(path)
            except DataError as err:
                digest = f"unknown ({err})"
            if digest == expected:
                log(f"{path}: present, md5 verified")
                continue
            log(f"{path}: md5 {digest} is not the official {expected}; fetching it again")
        todo.append(name)
    failed, network_down = [], None
    for name in todo:
        if network_down is not None:
            failed.append(name)
            continue
        try:
            _download(BASE_URL + name, data_dir / name, FILES[name], timeout)
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            log(f"download of {BASE_URL}{name} failed ({err})")
            failed.append(name)
            if not isinstance(err, urllib.error.HTTPError):
                network_down = err
                log("the official site is unreachable from here; not trying the other files")
        except DataError as err:
            log(str(err))
            failed.append(name)
    if failed:
        raise DataError(
            f"could not fetch {', '.join(failed)} into {data_dir}.\n"
            + flowers_instructions(data_dir, failed)
        )
    log(f"Oxford 102 Flowers files verified in {data_dir}")
    return data_dir


def _download(url, target, expected_md5, timeout):
    """Stream ``url`` into ``target`` (atomically), checking the md5 before it is kept."""
    log(f"downloading {url} (timeout {timeout} s)")
    target.parent.mkdir(parents=True, exist_ok=True)

    def write(f):
        digest = hashlib.md5(usedforsecurity=False)
        with urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(CHUNK):
                digest.update(chunk)
                f.write(chunk)
        if digest.hexdigest() != expected_md5:
            raise DataError(f"{url}: md5 {digest.hexdigest()}, expected {expected_md5}")

    atomic_write(target, write)


# --------------------------------------------------------------------------------------------
# Synthetic fixture in the official format (tests, QUICK mode). Not Oxford Flowers.


FIXTURE_COUNTS = (16, 14, 18, 15, 20, 14, 17, 19, 13, 16, 8, 6)


def _fixture_image(rng, label, n_labels, shape):
    """A blob of the class's hue on a noisy green-brown background (learnable, not trivial)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    background = rng.uniform(0.15, 0.45, 3) * np.array([0.8, 1.0, 0.6])
    img = background + rng.normal(0, 0.08, (h, w, 3))
    hue = (label - 1) / n_labels * 2 * np.pi
    colour = 0.5 + 0.45 * np.cos(hue + np.array([0.0, 2.1, 4.2]))
    cy, cx = h / 2 + rng.normal(0, h / 10), w / 2 + rng.normal(0, w / 10)
    radius = min(h, w) * rng.uniform(0.2, 0.35)
    blob = np.exp(-((((yy - cy) ** 2 + (xx - cx) ** 2) / radius**2) ** 2))[..., None]
    img = img * (1 - blob) + colour * blob
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def write_fixture(folder, counts=FIXTURE_COUNTS, image_shape=(50, 62), seed=0):
    """Write a tiny synthetic data set in the official layout into ``folder``; return it.

    counts[k] images of label k + 1 (default 12 labels; the two smallest are left out of a
    10-class subset), JPEGs of ``image_shape`` (height, width; every third image is portrait),
    in random order. setid.mat: per label one image in trnid, one in valid, the rest in tstid
    (as in the real set: 10 / 10 / rest). These images are NOT Oxford Flowers: coloured blobs
    on noise, one hue per label. Load them with ``load_flowers(folder, verify=False, ...)``.
    """
    from PIL import Image
    from scipy import io as sio

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(1, len(counts) + 1), counts))
    with tarfile.open(folder / TGZ, "w:gz") as archive:
        for i, label in enumerate(labels, start=1):
            shape = image_shape if i % 3 else image_shape[::-1]
            buffer = io.BytesIO()
            pixels = _fixture_image(rng, int(label), len(counts), shape)
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
            info = tarfile.TarInfo(member_name(i))
            info.size = buffer.tell()
            buffer.seek(0)
            archive.addfile(info, buffer)
    sio.savemat(folder / LABELS, {"labels": labels[None, :].astype(np.uint8)})
    split = {key: [] for key in SPLIT_KEYS}
    for label in range(1, len(counts) + 1):
        ids = np.flatnonzero(labels == label) + 1
        split["trnid"].append(ids[:1])
        split["valid"].append(ids[1:2])
        split["tstid"].append(ids[2:])
    sio.savemat(
        folder / SETID,
        {key: np.sort(np.concatenate(v))[None, :].astype(np.uint16) for key, v in split.items()},
    )
    return folder
