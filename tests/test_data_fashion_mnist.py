"""Tests of the Fashion-MNIST loader and fetcher on small IDX files written into tmp_path."""

import gzip
import hashlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from lifsg.data import DataError, fetch_fashion_mnist, load_fashion_mnist
from lifsg.data import fashion_mnist as fm
from lifsg.data.__main__ import FETCHERS, build_parser
from lifsg.data.mnist import IDX_FILES

REPO_ROOT = Path(__file__).resolve().parents[1]


def _idx_bytes(array):
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


@pytest.fixture
def arrays():
    rng = np.random.default_rng(5)
    return {
        "x_train": rng.integers(0, 256, (6, 28, 28), dtype=np.uint8),
        "y_train": rng.integers(0, 10, 6, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "y_test": rng.integers(0, 10, 4, dtype=np.uint8),
    }


def _write(folder, arrays, compress=True):
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        raw = _idx_bytes(arrays[key])
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return folder


def _digests(arrays):
    return {key: hashlib.md5(_idx_bytes(a)).hexdigest() for key, a in arrays.items()}


@pytest.mark.parametrize("compress", [True, False])
def test_good_files_load(tmp_path, arrays, compress):
    folder = _write(tmp_path / "fm", arrays, compress)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(folder, verify=False)
    loaded = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key, expected in arrays.items():
        assert loaded[key].dtype == np.uint8 and loaded[key].flags.c_contiguous
        np.testing.assert_array_equal(loaded[key], expected)


def test_digest_is_that_of_the_decompressed_file(tmp_path, arrays, monkeypatch):
    # The loader rebuilds the IDX header; its MD5 must equal the file's own MD5.
    folder = _write(tmp_path / "fm", arrays)
    monkeypatch.setattr(fm, "FILE_MD5", _digests(arrays))
    (x_train, _), _ = load_fashion_mnist(folder)
    np.testing.assert_array_equal(x_train, arrays["x_train"])


def test_wrong_digest_names_the_file(tmp_path, arrays, monkeypatch):
    folder = _write(tmp_path / "fm", arrays)
    digests = _digests(arrays)
    monkeypatch.setattr(fm, "FILE_MD5", {**digests, "y_test": "0" * 32})
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: checksum mismatch"):
        load_fashion_mnist(folder)


def test_synthetic_files_fail_the_official_digests(tmp_path, arrays):
    folder = _write(tmp_path / "fm", arrays)
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte\.gz: checksum mismatch"):
        load_fashion_mnist(folder)


def test_corrupt_gzip_names_the_file(tmp_path, arrays):
    folder = _write(tmp_path / "fm", arrays)
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(b"not a gzip file")
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: cannot read.*fashion_mnist"):
        load_fashion_mnist(folder, verify=False)


def test_truncated_file_names_the_file(tmp_path, arrays):
    folder = _write(tmp_path / "fm", arrays, compress=False)
    path = folder / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataError, match=r"train-labels-idx1-ubyte: truncated"):
        load_fashion_mnist(folder, verify=False)


def test_wrong_image_shape(tmp_path, arrays):
    arrays["x_test"] = np.zeros((4, 28, 27), np.uint8)
    folder = _write(tmp_path / "fm", arrays)
    with pytest.raises(DataError, match=r"x_test has shape \(4, 28, 27\)"):
        load_fashion_mnist(folder, verify=False)


def test_missing_file_names_it(tmp_path, arrays):
    folder = _write(tmp_path / "fm", arrays)
    (folder / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"fm/train-labels-idx1-ubyte\[\.gz\].*fetch fashion_mnist"):
        load_fashion_mnist(folder)


def test_cli_knows_fashion_mnist():
    assert FETCHERS["fashion_mnist"] is fetch_fashion_mnist
    assert build_parser().parse_args(["fetch", "fashion_mnist"]).dataset == "fashion_mnist"


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The system temp folder, redirected so tests can see that nothing is left there."""
    folder = tmp_path / "scratch"
    folder.mkdir()
    monkeypatch.setattr(fm.tempfile, "tempdir", str(folder))
    return folder


def _fake_tools(monkeypatch, arrays, calls, fail=None):
    """Replace apt-get / dpkg-deb by writing a fake .deb and unpacking the fixture files."""

    def run(command, cwd, capture_output, text, timeout):
        calls.append(command)
        assert timeout == fm.APT_TIMEOUT_S
        if command[0] == fail:
            return subprocess.CompletedProcess(command, 100, "", "E: Unable to locate package")
        if command[0] == "apt-get":
            (Path(cwd) / f"{fm.DEBIAN_PACKAGE}_1_all.deb").write_bytes(b"deb")
        else:
            _write(Path(command[3]) / fm.DEBIAN_FOLDER, arrays)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(fm.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(fm.subprocess, "run", run)
    monkeypatch.setattr(fm, "FILE_MD5", _digests(arrays))


def test_fetch_installs_verified_files(tmp_path, arrays, monkeypatch, scratch):
    calls = []
    _fake_tools(monkeypatch, arrays, calls)
    target = tmp_path / "data" / "fashion_mnist"
    target.mkdir(parents=True)
    (target / "train-images-idx3-ubyte.gz").write_bytes(b"damaged")  # replaced by the fetch
    assert fetch_fashion_mnist(target) == target
    assert [c[:2] for c in calls] == [["apt-get", "download"], ["dpkg-deb", "-x"]]
    assert sorted(p.name for p in target.iterdir()) == sorted(f"{n}.gz" for n in IDX_FILES.values())
    (_, y_train), _ = load_fashion_mnist(target)
    np.testing.assert_array_equal(y_train, arrays["y_train"])
    assert list(scratch.iterdir()) == []
    calls.clear()
    fetch_fashion_mnist(target)  # already verified: no download
    assert calls == []


def test_fetch_failure_leaves_nothing(tmp_path, arrays, monkeypatch, scratch):
    _fake_tools(monkeypatch, arrays, [], fail="apt-get")
    target = tmp_path / "fashion_mnist"
    with pytest.raises(DataError, match=r"apt-get download.*exit 100.*apt-get update"):
        fetch_fashion_mnist(target)
    assert not target.exists() and list(scratch.iterdir()) == []


def test_fetch_rejects_a_package_with_wrong_files(tmp_path, arrays, monkeypatch):
    _fake_tools(monkeypatch, arrays, [])
    monkeypatch.setattr(fm, "FILE_MD5", {**fm.FILE_MD5, "x_train": "0" * 32})
    target = tmp_path / "fashion_mnist"
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz: checksum mismatch"):
        fetch_fashion_mnist(target)
    assert not target.exists()


def test_fetch_timeout(tmp_path, monkeypatch):
    def run(command, **kwargs):
        raise subprocess.TimeoutExpired(command, kwargs["timeout"])

    monkeypatch.setattr(fm.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    monkeypatch.setattr(fm.subprocess, "run", run)
    with pytest.raises(DataError, match=r"apt-get download .* timed out"):
        fetch_fashion_mnist(tmp_path / "fashion_mnist")


def test_fetch_without_apt(tmp_path, monkeypatch):
    monkeypatch.setattr(fm.shutil, "which", lambda tool: None)
    with pytest.raises(DataError, match=r"apt-get not found.*zalandoresearch"):
        fetch_fashion_mnist(tmp_path / "fashion_mnist")


def _real_dir():
    return Path(os.environ.get("LIFSG_DATA_DIR", REPO_ROOT / "data")) / "fashion_mnist"


@pytest.mark.slow  # reads and checks the real files (about 30 MB)
@pytest.mark.skipif(
    not _real_dir().is_dir(),
    reason="no real Fashion-MNIST in LIFSG_DATA_DIR/fashion_mnist "
    "(python -m lifsg.data fetch fashion_mnist)",
)
def test_real_fashion_mnist_verifies():
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(_real_dir())
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert np.bincount(y_train).tolist() == [6000] * 10
    assert np.bincount(y_test).tolist() == [1000] * 10
