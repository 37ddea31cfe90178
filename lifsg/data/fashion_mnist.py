"""Fashion-MNIST from local IDX files, verified against the MD5 of the decompressed files.

``load_fashion_mnist`` reads the four IDX files (plain or gzip) and never downloads;
``fetch_fashion_mnist`` copies them from Debian's package ``dataset-fashion-mnist``
(``apt-get download`` + ``dpkg-deb -x`` into a temporary folder; nothing is installed).
Debian recompressed the ``.gz`` files, so the digests are those of the decompressed files,
which are the same as upstream's. Labels: 0 T-shirt/top, 1 trouser, 2 pullover, 3 dress,
4 coat, 5 sandal, 6 shirt, 7 sneaker, 8 bag, 9 ankle boot; 6000 training and 1000 test images
per class.
"""

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .common import DataError, atomic_write, log
from .mnist import IDX_FILES, _check_shapes, _idx_path, read_idx

__all__ = ["CLASS_NAMES", "fetch_fashion_mnist", "load_fashion_mnist"]

CLASS_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
FILE_MD5 = {
    "x_train": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "y_train": "9018921c3c673c538a1fc5bad174d6f9",
    "x_test": "8181f5470baa50b63fa0f6fddb340f0a",
    "y_test": "15d484375f8d13e6eb1aabb0c3f46965",
}
DEBIAN_PACKAGE = "dataset-fashion-mnist"
DEBIAN_FOLDER = "usr/share/datasets/fashion-mnist"
APT_TIMEOUT_S = 300
UPSTREAM = "https://github.com/zalandoresearch/fashion-mnist"
FETCH_HINT = (
    "run `python -m lifsg.data fetch fashion_mnist` (needs apt-get) or put the four IDX files "
    f"of {UPSTREAM} there"
)


def load_fashion_mnist(data_dir="data/fashion_mnist", verify=True):
    """Load Fashion-MNIST from the four IDX files (``name`` or ``name.gz``) in ``data_dir``.

    Returns ``(x_train, y_train), (x_test, y_test)``: C-contiguous uint8 arrays, images
    ``(N, 28, 28)`` (60000 train, 10000 test), labels ``(N,)`` in 0..9. With ``verify=True``
    (default) the MD5 of each decompressed file must match the official one. Raises
    ``DataError`` naming the file for missing, malformed or mismatching data.
    """
    data_dir = Path(data_dir)
    arrays, paths = {}, {}
    for key, name in IDX_FILES.items():
        paths[key] = _idx_path(data_dir, name)
        if paths[key] is None:
            raise DataError(f"missing Fashion-MNIST file {data_dir / name}[.gz]; {FETCH_HINT}")
        arrays[key] = read_idx(paths[key], hint=FETCH_HINT)
    _check_shapes(arrays, data_dir)
    if verify:
        for key, array in arrays.items():
            digest = _idx_md5(array)
            if digest != FILE_MD5[key]:
                raise DataError(
                    f"{paths[key]}: checksum mismatch, MD5 of the decompressed file is {digest}, "
                    f"expected the official {FILE_MD5[key]}; {FETCH_HINT}"
                )
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _idx_md5(array):
    """MD5 of the IDX file that ``read_idx`` decoded into ``array`` (header rebuilt exactly)."""
    digest = hashlib.md5(bytes([0, 0, 0x08, array.ndim]))
    digest.update(np.array(array.shape, ">u4").tobytes())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def fetch_fashion_mnist(data_dir="data/fashion_mnist"):
    """Put the four verified Fashion-MNIST ``.gz`` files into ``data_dir``; return the folder.

    Does nothing if ``data_dir`` already holds verified data. Otherwise downloads Debian's
    package with ``apt-get download`` (apt checks it against the signed package index; run
    ``apt-get update`` first on a fresh system), unpacks it with ``dpkg-deb -x`` into a
    temporary folder, verifies the files and copies them atomically.
    """
    data_dir = Path(data_dir)
    try:
        load_fashion_mnist(data_dir)
        log(f"Fashion-MNIST already present and verified in {data_dir}")
        return data_dir
    except DataError as err:
        log(f"no verified Fashion-MNIST in {data_dir} ({err}); fetching it")
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise DataError(f"{tool} not found: Fashion-MNIST is fetched from Debian; {FETCH_HINT}")
    with tempfile.TemporaryDirectory(prefix="lifsg-fashion-") as tmp:
        tmp = Path(tmp)
        log(f"apt-get download {DEBIAN_PACKAGE}")
        hint = "if apt cannot locate the package, run `apt-get update` first"
        _run(["apt-get", "download", "-q", DEBIAN_PACKAGE], cwd=tmp, hint=hint)
        debs = list(tmp.glob(f"{DEBIAN_PACKAGE}_*.deb"))
        if len(debs) != 1:
            raise DataError(f"apt-get download left {[p.name for p in tmp.iterdir()]}, no .deb")
        _run(["dpkg-deb", "-x", str(debs[0]), str(tmp / "root")], cwd=tmp)
        source = tmp / "root" / DEBIAN_FOLDER
        load_fashion_mnist(source)
        data_dir.mkdir(parents=True, exist_ok=True)
        for name in IDX_FILES.values():
            path = _idx_path(source, name)
            payload = path.read_bytes()
            atomic_write(data_dir / path.name, lambda f, payload=payload: f.write(payload))
    load_fashion_mnist(data_dir)  # a stale plain IDX file would shadow the new .gz
    log(f"Fashion-MNIST verified and saved to {data_dir}")
    return data_dir


def _run(command, cwd, hint=None):
    """Run ``command`` with a timeout; DataError with ``hint`` and its output if it fails."""
    try:
        result = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=APT_TIMEOUT_S
        )
    except subprocess.TimeoutExpired as err:
        raise DataError(f"`{' '.join(command)}` timed out after {APT_TIMEOUT_S} s") from err
    if result.returncode != 0:
        raise DataError(
            f"`{' '.join(command)}` failed (exit {result.returncode})"
            f"{f'; {hint}' if hint else ''}:\n{result.stderr.strip()}"
        )
