"""A tiny synthetic data set in the official Oxford Flowers file format, for tests and the
notebook's QUICK mode: :func:`write_fixture`. It is not Oxford Flowers."""

import io
import tarfile
from pathlib import Path

import numpy as np

from .files import LABELS, SETID, SPLIT_KEYS, TGZ, member_name

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
