"""Tests of the MNIST data layer on tiny fixtures written into tmp_path."""

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from lifsg.data import DataError, load_mnist
from lifsg.data.__main__ import build_parser
from lifsg.data.mnist import IDX_FILES, pixels_to_uint8, read_idx, restricted_loads

REPO_ROOT = Path(__file__).resolve().parents[1]


def _fixture_arrays(n_train=5, n_test=3):
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, n_test, dtype=np.uint8),
    }


def _idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def _write_idx_dir(folder, arrays):
    folder.mkdir(exist_ok=True)
    for key, name in IDX_FILES.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(_idx_bytes(arrays[key])))
    return folder


@pytest.fixture
def arrays():
    return _fixture_arrays()


@pytest.fixture
def idx_dir(tmp_path, arrays):
    return _write_idx_dir(tmp_path / "idx", arrays)


def _flat(data):
    (x_train, y_train), (x_test, y_test) = data
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def test_idx_and_npz_layouts_load_identically(tmp_path, arrays, idx_dir):
    npz_dir = tmp_path / "npz"
    npz_dir.mkdir()
    np.savez_compressed(npz_dir / "mnist.npz", **arrays)
    from_idx = _flat(load_mnist(idx_dir, verify=False))
    from_npz = _flat(load_mnist(npz_dir, verify=False))
    for key, expected in arrays.items():
        for loaded in (from_idx[key], from_npz[key]):
            assert loaded.dtype == np.uint8 and loaded.flags.c_contiguous
            np.testing.assert_array_equal(loaded, expected)


def test_plain_idx_file_is_read(tmp_path, arrays):
    path = tmp_path / "labels"
    path.write_bytes(_idx_bytes(arrays["y_test"]))
    np.testing.assert_array_equal(read_idx(path), arrays["y_test"])


def test_truncated_idx_file(idx_dir, arrays):
    path = idx_dir / f"{IDX_FILES['x_train']}.gz"
    path.write_bytes(gzip.compress(_idx_bytes(arrays["x_train"])[:-10]))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: truncated"):
        load_mnist(idx_dir, verify=False)


def test_wrong_magic_number(idx_dir, arrays):
    path = idx_dir / f"{IDX_FILES['y_test']}.gz"
    path.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + _idx_bytes(arrays["y_test"])[4:]))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: wrong magic number"):
        load_mnist(idx_dir, verify=False)


def test_missing_idx_file(idx_dir):
    (idx_dir / f"{IDX_FILES['x_test']}.gz").unlink()
    with pytest.raises(DataError, match=r"missing IDX file t10k-images-idx3-ubyte.*fetch mnist"):
        load_mnist(idx_dir, verify=False)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match=r"no MNIST data.*python -m lifsg\.data fetch mnist"):
        load_mnist(tmp_path / "nowhere")


def test_verify_rejects_fixture(idx_dir):
    with pytest.raises(DataError, match="checksum mismatch for x_train"):
        load_mnist(idx_dir)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo",))


def test_restricted_unpickler_refuses_os_system():
    with pytest.raises(DataError, match="refusing to unpickle"):
        restricted_loads(pickle.dumps(_Evil()))


@pytest.mark.parametrize("protocol", [4, 5])
def test_restricted_unpickler_accepts_numpy_arrays(arrays, protocol):
    data = (arrays["x_test"].astype(np.float32) / 256, arrays["y_test"].astype(np.int64))
    loaded = restricted_loads(pickle.dumps(data, protocol=protocol))
    assert isinstance(loaded, tuple)
    for got, expected in zip(loaded, data, strict=True):
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def test_pixels_to_uint8_recovers_bytes():
    original = np.arange(256 * 28 * 28, dtype=np.int64).reshape(-1, 28, 28) % 256
    original = original.astype(np.uint8)
    pixels = (original.reshape(len(original), 784) / np.float32(256)).astype(np.float32)
    recovered = pixels_to_uint8(pixels)
    assert recovered.dtype == np.uint8 and recovered.shape == original.shape
    assert recovered.tobytes() == original.tobytes()


def test_pixels_to_uint8_rejects_other_scales():
    with pytest.raises(DataError, match="multiples of 1/256"):
        pixels_to_uint8(np.full((1, 784), 1 / 255, np.float32))


def test_cli_rejects_unknown_dataset(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["fetch", "imagenet"])
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def _heavy_modules_after(code):
    """Which of tensorflow/keras are in sys.modules after running ``code`` in a fresh python."""
    probe = f"{code}\nimport sys; print([m for m in ('tensorflow', 'keras') if m in sys.modules])"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    return result.stdout.strip()


def test_data_modules_need_only_numpy():
    # Bypass lifsg/__init__.py so this checks the data layer alone.
    code = (
        "import sys, types; pkg = types.ModuleType('lifsg'); "
        f"pkg.__path__ = [{str(REPO_ROOT / 'lifsg')!r}]; sys.modules['lifsg'] = pkg\n"
        "import lifsg.data, lifsg.data.__main__"
    )
    assert _heavy_modules_after(code) == "[]"


def _real_mnist_dir():
    return Path(os.environ.get("LIFSG_DATA_DIR", REPO_ROOT / "data")) / "mnist"


@pytest.mark.skipif(not _real_mnist_dir().is_dir(), reason="no real MNIST in LIFSG_DATA_DIR/mnist")
def test_real_mnist_verifies():
    (x_train, y_train), (x_test, y_test) = load_mnist(_real_mnist_dir())
    assert x_train.shape == (60000, 28, 28) and y_train.shape == (60000,)
    assert x_test.shape == (10000, 28, 28) and y_test.shape == (10000,)
