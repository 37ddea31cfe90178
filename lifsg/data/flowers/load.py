"""The paper's 10-class subset of Oxford 102 Flowers: :func:`select_subset`, the image crop
and :func:`load_flowers` with its npz cache (see :mod:`lifsg.data.flowers`)."""

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from ..common import DataError, atomic_write, log
from .files import (
    LABELS,
    SETID,
    TGZ,
    check_files,
    member_name,
    read_labels,
    read_members,
    read_setid,
)

DEFAULT_CROP = (400, 500)
DEFAULT_SIZE = (64, 80)
CACHE_VERSION = 1


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
    digests = check_files(data_dir, verify)
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
