"""Tests of the Oxford Flowers loader on tiny data sets written at test time in the official
format: JPEGs (Pillow) in a .tgz under jpg/, imagelabels.mat and setid.mat (scipy)."""

import hashlib
import io
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image
from scipy import io as sio

from lifsg.data import DataError, load_flowers
from lifsg.data import flowers as fl
from lifsg.data.__main__ import FETCHERS, main
from lifsg.data.flowers import load as flowers_load

# 4 labels; label 3 and 1 tie on 7 images (label 1 ranks first), label 2 has 5, label 4 has 3.
COUNTS = {3: 7, 1: 7, 2: 5, 4: 3}
SIZE = (8, 10)


def _colour(image_id):
    """A distinct solid colour per image number, so rows can be traced back to images."""
    return (image_id * 20 % 256, 255 - image_id * 10 % 256, image_id * 7 % 256)


def _jpeg(image_id, shape=(50, 62)):
    buffer = io.BytesIO()
    Image.new("RGB", shape[::-1], _colour(image_id)).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def _labels():
    """Image i + 1 has label labels[i]; a fixed interleaved order."""
    rng = np.random.default_rng(3)
    return rng.permutation(np.repeat(list(COUNTS), list(COUNTS.values())))


def _write_tgz(path, members):
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))


def _split(labels):
    """Per label: first image trnid, second valid, the rest tstid (like the real 10/10/rest)."""
    split = {"trnid": [], "valid": [], "tstid": []}
    for label in COUNTS:
        ids = np.flatnonzero(labels == label) + 1
        split["trnid"] += ids[:1].tolist()
        split["valid"] += ids[1:2].tolist()
        split["tstid"] += ids[2:].tolist()
    return {k: np.array(sorted(v), dtype=np.float64)[None, :] for k, v in split.items()}


@pytest.fixture
def flowers_dir(tmp_path):
    folder = tmp_path / "flowers"
    folder.mkdir()
    labels = _labels()
    members = {
        f"jpg/image_{i:05d}.jpg": _jpeg(i, (50, 62) if i % 2 else (62, 50))
        for i in range(1, len(labels) + 1)
    }
    _write_tgz(folder / "102flowers.tgz", members)
    sio.savemat(folder / "imagelabels.mat", {"labels": labels[None, :].astype(np.float64)})
    sio.savemat(folder / "setid.mat", _split(labels))
    return folder


def _load(folder, **kwargs):
    kwargs = {
        "classes": 3,
        "per_class": 5,
        "test_per_class": 2,
        "size": SIZE,
        "verify": False,
        **kwargs,
    }
    return load_flowers(folder, return_info=True, **kwargs)


def test_subset_shapes_classes_and_split(flowers_dir):
    ((x_train, y_train), (x_test, y_test)), info = _load(flowers_dir)
    assert x_train.shape == (9, *SIZE, 3) and x_test.shape == (6, *SIZE, 3)
    assert x_train.dtype == np.uint8 and x_test.dtype == np.uint8
    # most images first, ties by the smaller label: 1 (7), 3 (7), 2 (5); label 4 is left out
    assert info["class_labels"].tolist() == [1, 3, 2]
    # interleaved by class, so every prefix is balanced
    assert y_train.tolist() == [0, 1, 2] * 3 and y_test.tolist() == [0, 1, 2] * 2
    labels, split = _labels(), _split(_labels())
    tst = set(split["tstid"].ravel().astype(int))
    official_train = set(split["trnid"].ravel().astype(int)) | set(split["valid"].ravel())
    for k, label in enumerate(info["class_labels"]):
        ids = np.flatnonzero(labels == label) + 1
        class_tst = [i for i in ids if i in tst]
        test = info["test_ids"][y_test == k].tolist()
        train = info["train_ids"][y_train == k].tolist()
        assert test == class_tst[:2]  # first test-split images, by number
        assert train[:2] == [i for i in ids if i in official_train]  # official train+val first
        assert train[2:] == class_tst[2:3]  # then the next test-split images
        assert all(labels[i - 1] == label for i in train + test)
    # each row is the (solid-colour) image it claims to be
    for images, ids in ((x_train, info["train_ids"]), (x_test, info["test_ids"])):
        for image, image_id in zip(images, ids):
            assert np.abs(image.astype(int) - _colour(int(image_id))).max() <= 6


def test_cache_is_a_plain_npz_under_data_dir_and_is_reused(flowers_dir, monkeypatch):
    first, info = _load(flowers_dir)
    path = info["cache"]
    assert path.parent == flowers_dir / "cache" and path.suffix == ".npz"
    with np.load(path, allow_pickle=False) as npz:  # no pickled objects inside
        np.testing.assert_array_equal(npz["x_train"], first[0][0])

    def fail(*args, **kwargs):
        raise AssertionError("the archive was read although the cache exists")

    monkeypatch.setattr(flowers_load, "read_members", fail)
    again, info_again = _load(flowers_dir)
    assert info_again["cache"] == path
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
    monkeypatch.undo()
    _, other = _load(flowers_dir, size=(6, 6))  # other parameters: another cache file
    assert other["cache"] != path and len(list((flowers_dir / "cache").glob("*.npz"))) == 2


def test_broken_or_foreign_cache_is_rebuilt(flowers_dir):
    expected, info = _load(flowers_dir)
    info["cache"].write_bytes(b"not a zip file")
    again, _ = _load(flowers_dir)
    np.testing.assert_array_equal(again[0][0], expected[0][0])
    # changed source files change the key: the old cache is not used
    labels = _labels()
    sio.savemat(flowers_dir / "imagelabels.mat", {"labels": labels[None, :].astype(np.uint8)})
    _, new_info = _load(flowers_dir)
    assert new_info["cache"] != info["cache"]


def test_no_cache(flowers_dir):
    _, info = _load(flowers_dir, cache=False)
    assert info["cache"] is None and not (flowers_dir / "cache").exists()


def test_md5_verification(flowers_dir, monkeypatch):
    with pytest.raises(DataError, match=r"102flowers\.tgz: checksum mismatch.*official"):
        _load(flowers_dir, verify=True)
    official = {name: fl.md5_of(flowers_dir / name) for name in fl.FILES}
    for name, digest in official.items():  # pretend the fixture is the official data
        monkeypatch.setitem(fl.FILES, name, digest)
    _load(flowers_dir, verify=True)


@pytest.mark.parametrize("name", ["102flowers.tgz", "imagelabels.mat", "setid.mat"])
def test_missing_file_names_file_and_fix(flowers_dir, name):
    (flowers_dir / name).unlink()
    with pytest.raises(DataError) as err:
        _load(flowers_dir)
    message = str(err.value)
    assert f"missing {name}" in message
    assert "python -m lifsg.data fetch flowers" in message
    assert f"{fl.BASE_URL}{name}" in message and str(flowers_dir / name) in message


def test_truncated_tgz(flowers_dir):
    path = flowers_dir / "102flowers.tgz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"102flowers\.tgz: corrupt or truncated archive"):
        _load(flowers_dir)


def test_tgz_that_is_not_gzip(flowers_dir):
    (flowers_dir / "102flowers.tgz").write_bytes(b"<html>404 not found</html>")
    with pytest.raises(DataError, match=r"102flowers\.tgz: corrupt or truncated archive"):
        _load(flowers_dir)


def test_missing_member(flowers_dir):
    labels = _labels()
    needed = int(np.flatnonzero(labels == 1)[0]) + 1  # label 1 is in the subset
    members = {fl.member_name(i): _jpeg(i) for i in range(1, len(labels) + 1) if i != needed}
    _write_tgz(flowers_dir / "102flowers.tgz", members)
    with pytest.raises(DataError, match=rf"102flowers\.tgz: no member jpg/image_{needed:05d}\.jpg"):
        _load(flowers_dir)


def test_leading_dot_slash_in_member_names(flowers_dir):
    labels = _labels()
    members = {f"./jpg/image_{i:05d}.jpg": _jpeg(i) for i in range(1, len(labels) + 1)}
    _write_tgz(flowers_dir / "102flowers.tgz", members)
    (x_train, _), _ = _load(flowers_dir)[0]
    assert len(x_train) == 9


def test_corrupt_jpeg_names_member(flowers_dir):
    labels = _labels()
    members = {f"jpg/image_{i:05d}.jpg": _jpeg(i) for i in range(1, len(labels) + 1)}
    needed = int(np.flatnonzero(labels == 1)[0]) + 1
    members[fl.member_name(needed)] = b"\xff\xd8 broken"
    _write_tgz(flowers_dir / "102flowers.tgz", members)
    with pytest.raises(DataError, match=rf"image_{needed:05d}\.jpg: cannot decode"):
        _load(flowers_dir)


def test_unreadable_mat(flowers_dir):
    (flowers_dir / "setid.mat").write_bytes(b"garbage" * 20)
    with pytest.raises(DataError, match=r"setid\.mat: not a readable MATLAB"):
        _load(flowers_dir)


def test_mat_without_labels(flowers_dir):
    sio.savemat(flowers_dir / "imagelabels.mat", {"lbl": _labels()[None, :]})
    with pytest.raises(DataError, match=r"imagelabels\.mat: no variable 'labels'"):
        _load(flowers_dir)


def test_setid_out_of_range_and_overlap(flowers_dir):
    split = _split(_labels())
    split["tstid"] = np.append(split["tstid"], 99)[None, :]
    sio.savemat(flowers_dir / "setid.mat", split)
    with pytest.raises(DataError, match=r"setid\.mat: tstid holds image numbers .* outside"):
        _load(flowers_dir)
    split = _split(_labels())
    split["valid"] = np.append(split["valid"], split["trnid"][0, 0])[None, :]
    sio.savemat(flowers_dir / "setid.mat", split)
    with pytest.raises(DataError, match="overlap"):
        _load(flowers_dir)


def test_too_few_images_per_class(flowers_dir):
    with pytest.raises(DataError, match="class 2 has only 5 images, fewer than 6"):
        _load(flowers_dir, per_class=6)
    with pytest.raises(ValueError, match="classes must lie in 1..4"):
        _load(flowers_dir, classes=5)
    with pytest.raises(ValueError, match="test_per_class"):
        _load(flowers_dir, test_per_class=5)


def test_select_subset_rules():
    labels = np.array([1, 1, 3, 3, 3, 1, 2])  # label 1: images 1, 2, 6; label 3: 3, 4, 5
    split = {"trnid": np.array([1]), "valid": np.array([2]), "tstid": np.array([3, 4, 5, 6, 7])}
    out = fl.select_subset(labels, split, classes=2, per_class=2, test_per_class=1)
    assert out["class_labels"].tolist() == [1, 3]  # tie on 3 images: the smaller label first
    assert out["test_ids"].tolist() == [6, 3]  # first test-split image of each class
    assert out["train_ids"].tolist() == [1, 4]  # official train first, else next test-split
    assert out["y_train"].tolist() == [0, 1] and out["y_test"].tolist() == [0, 1]
    with pytest.raises(DataError, match="class 1 has only 1 images in tstid, fewer than 2"):
        fl.select_subset(labels, split, classes=2, per_class=3, test_per_class=2)


def test_crop_box():
    # a real Flowers image (smaller side 500): the 400 x 500 window, centred
    assert fl.crop_box(667, 500) == (83.5, 50.0, 583.5, 450.0)
    assert fl.crop_box(500, 667) == (0.0, 133.5, 500.0, 533.5)
    # smaller than the crop: the largest centred window with the crop's aspect ratio
    left, top, right, bottom = fl.crop_box(62, 50)
    assert (right - left) / (bottom - top) == pytest.approx(500 / 400)
    assert right - left <= 62 and bottom - top <= 50
    # crop=None: the aspect ratio of size
    left, top, right, bottom = fl.crop_box(100, 50, crop=None, size=(32, 32))
    assert (left, top, right, bottom) == (25.0, 0.0, 75.0, 50.0)


def test_write_fixture_loads_like_the_real_layout(tmp_path):
    folder = fl.write_fixture(tmp_path / "fx")
    ((x_train, y_train), (x_test, y_test)), info = load_flowers(
        folder, per_class=12, test_per_class=2, size=(16, 20), verify=False, return_info=True
    )
    assert x_train.shape == (100, 16, 20, 3) and x_test.shape == (20, 16, 20, 3)
    assert len(info["class_labels"]) == 10 and set(info["class_labels"]).isdisjoint({11, 12})
    assert np.bincount(y_train).tolist() == [10] * 10


# ------------------------------------------------------------------------------------------
# fetch and the CLI


def test_cli_registers_flowers():
    assert FETCHERS["flowers"] is fl.fetch_flowers


def test_fetch_offline_prints_what_to_place_where(tmp_path, monkeypatch, capsys):
    calls = []

    def offline(url, timeout):
        calls.append((url, timeout))
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    target = tmp_path / "flowers"
    assert main(["fetch", "flowers", "--data-dir", str(target)]) == 1
    err = capsys.readouterr().err
    assert len(calls) == 1 and calls[0][1] == fl.DOWNLOAD_TIMEOUT_S  # gave up after one failure
    for name, md5 in fl.FILES.items():
        assert f"{fl.BASE_URL}{name}  ->  {target / name}" in err and md5 in err
    assert not any(p.name.endswith(".tmp") or p.name.startswith(".") for p in target.iterdir())


def test_fetch_downloads_checks_md5_and_keeps_good_files(tmp_path, monkeypatch):
    payloads = {name: f"content of {name}".encode() for name in fl.FILES}
    for name, payload in payloads.items():
        monkeypatch.setitem(fl.FILES, name, hashlib.md5(payload).hexdigest())
    target = tmp_path / "flowers"
    target.mkdir()
    (target / "setid.mat").write_bytes(payloads["setid.mat"])  # already there and valid
    (target / "imagelabels.mat").write_bytes(b"stale")  # wrong md5: fetched again
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url.rsplit("/", 1)[1])
        return io.BytesIO(payloads[url.rsplit("/", 1)[1]])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert fl.fetch_flowers(target) == target
    assert sorted(requested) == ["102flowers.tgz", "imagelabels.mat"]
    for name, payload in payloads.items():
        assert (target / name).read_bytes() == payload


def test_fetch_rejects_wrong_download(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"x"))
    with pytest.raises(DataError, match="could not fetch 102flowers.tgz, imagelabels.mat"):
        fl.fetch_flowers(tmp_path / "flowers")
    assert list((tmp_path / "flowers").iterdir()) == []  # neither files nor temp litter


# ------------------------------------------------------------------------------------------
# Damaged files


def _no_litter(folder):
    return not [p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name]


def test_flipped_bytes_of_tgz_are_data_errors_or_harmless(flowers_dir):
    path = flowers_dir / "102flowers.tgz"
    good = path.read_bytes()
    (expected, _), _ = _load(flowers_dir, cache=False)
    errors = 0
    positions = range(0, len(good), 41)
    for i in positions:
        damaged = bytearray(good)
        damaged[i] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            (x_train, _), _ = _load(flowers_dir, cache=False)[0]
        except DataError as err:
            assert str(path) in str(err)
            errors += 1
            continue
        np.testing.assert_array_equal(x_train, expected[0])  # a flip in an unused field
    assert errors > 0.8 * len(positions)


def test_unreadable_file_is_a_data_error_naming_it(tmp_path):
    with pytest.raises(DataError, match=rf"{tmp_path}: cannot read \(IsADirectoryError"):
        fl.md5_of(tmp_path)


def test_fetch_replaces_damaged_file(tmp_path, monkeypatch):
    payloads = {name: f"content of {name}".encode() for name in fl.FILES}
    for name, payload in payloads.items():
        monkeypatch.setitem(fl.FILES, name, hashlib.md5(payload).hexdigest())
    target = tmp_path / "flowers"
    target.mkdir()
    for name, payload in payloads.items():
        (target / name).write_bytes(payload)
    damaged = bytearray(payloads["102flowers.tgz"])
    damaged[3] ^= 0xFF
    (target / "102flowers.tgz").write_bytes(bytes(damaged))
    requested = []

    def fake_urlopen(url, timeout):
        requested.append(url.rsplit("/", 1)[1])
        return io.BytesIO(payloads[requested[-1]])

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    assert main(["fetch", "flowers", "--data-dir", str(target)]) == 0
    assert requested == ["102flowers.tgz"]
    assert (target / "102flowers.tgz").read_bytes() == payloads["102flowers.tgz"]
    assert _no_litter(target)


def test_download_failing_midway_leaves_old_file_and_no_litter(tmp_path, monkeypatch):
    target = tmp_path / "flowers"
    target.mkdir()
    (target / "setid.mat").write_bytes(b"old")

    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 0:
                raise TimeoutError("read timed out")
            return super().read(4)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Broken(b"partial"))
    with pytest.raises(DataError, match="could not fetch 102flowers.tgz, imagelabels.mat"):
        fl.fetch_flowers(target)
    assert sorted(p.name for p in target.iterdir()) == ["setid.mat"]
    assert (target / "setid.mat").read_bytes() == b"old"
