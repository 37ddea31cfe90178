"""Synthetic data sets, generated with NumPy (nothing to download); none of them is real data.

- :func:`synthetic_digits`: MNIST-shaped seven-segment digits (tests, QUICK runs without the
  MNIST files);
- :func:`synthetic_digit`: one digit-like image, a "7" of two soft strokes (F4 without MNIST);
- :func:`temporal_task`: F5's spike-timing classification task (:class:`TaskConfig`).
"""

from dataclasses import dataclass

import numpy as np

# Segments of a seven-segment display (a top, b top right, c bottom right, d bottom,
# e bottom left, f top left, g middle) lit for each digit.
_SEGMENTS = (
    "abcdef",
    "bc",
    "abged",
    "abgcd",
    "fgbc",
    "afgcd",
    "afgedc",
    "abc",
    "abcdefg",
    "abcdfg",
)


def synthetic_digits(n, seed=0, size=28):
    """A small SYNTHETIC MNIST-shaped set: seven-segment digits, randomly shifted, scaled and
    noisy, as uint8 images (n, size, size) and labels (n,) (balanced, shuffled).

    For tests and QUICK runs where the real MNIST files are absent; not MNIST.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    images = np.zeros((n, size, size), dtype="float32")
    for i, label in enumerate(labels):
        h = int(rng.integers(14, 21))  # digit height
        w = int(rng.integers(8, 13))
        top = int(rng.integers(2, size - h - 1))
        left = int(rng.integers(2, size - w - 1))
        t = int(rng.integers(2, 4))  # stroke thickness
        mid = top + h // 2
        bottom, right = top + h, left + w
        boxes = {
            "a": (top, top + t, left, right),
            "d": (bottom - t, bottom, left, right),
            "g": (mid - t // 2, mid - t // 2 + t, left, right),
            "f": (top, mid, left, left + t),
            "e": (mid, bottom, left, left + t),
            "b": (top, mid, right - t, right),
            "c": (mid, bottom, right - t, right),
        }
        value = rng.uniform(0.6, 1.0)
        for seg in _SEGMENTS[label]:
            r0, r1, c0, c1 = boxes[seg]
            images[i, r0:r1, c0:c1] = value
    images += rng.normal(0, 0.05, images.shape).astype("float32")
    images = np.clip(images, 0, 1)
    return np.round(images * 255).astype("uint8"), labels.astype("uint8")


def synthetic_digit(size=28):
    """A digit-like stand-in image (a "7" of two soft strokes), float in [0, 1], (size, size).

    Drawn with NumPy where no MNIST data is available: the strokes have anti-aliased edges,
    so there are intermediate intensities as in MNIST (which latency coding turns into late
    spikes). It is not an MNIST image.
    """
    s = size / 28.0
    yy, xx = np.mgrid[0:size, 0:size].astype(float) + 0.5
    segments = [((7, 7), (21, 7)), ((21, 7), (12, 23))]  # (x, y) in a 28 x 28 frame
    dist = np.full((size, size), np.inf)
    for (x0, y0), (x1, y1) in segments:
        a = np.array([x0, y0]) * s
        d = (np.array([x1, y1]) - np.array([x0, y0])) * s
        px, py = xx - a[0], yy - a[1]
        t = np.clip((px * d[0] + py * d[1]) / (d @ d), 0.0, 1.0)
        dist = np.minimum(dist, np.hypot(px - t * d[0], py - t * d[1]))
    return np.clip((2.4 * s - dist) / (1.6 * s), 0.0, 1.0)


@dataclass
class TaskConfig:
    """The synthetic spike-timing task of :func:`temporal_task`."""

    steps: int = 30
    channels: int = 24
    classes: int = 5
    window: float = 0.6  # template spikes fall in the first `window` fraction of the steps
    jitter: int = 2  # template spike times move by up to +-jitter steps
    noise: float = 0.02  # background spike probability per channel and step
    drop: float = 0.1  # probability that a template spike is missing
    template_seed: int = 1000


def temporal_task(n, task=None, seed=0):
    """A spike-timing classification task: ``(x (n, steps, channels) float32, y (n,) int)``.

    Each class has a template in which every channel spikes once, at a class-specific time in
    the first ``window`` of the sequence. A sample is its class's template with every spike
    moved by up to +-jitter steps, dropped with probability ``drop``, plus background spikes
    with probability ``noise``. Every channel fires (about) once in every class, so spike counts
    carry no class information: only timing does, and the error must be assigned through time.
    """
    task = task or TaskConfig()
    rng = np.random.default_rng(task.template_seed)
    last = max(1, int(task.steps * task.window))
    templates = rng.integers(0, last, size=(task.classes, task.channels))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, task.classes, n)
    times = templates[y] + rng.integers(-task.jitter, task.jitter + 1, (n, task.channels))
    times = np.clip(times, 0, task.steps - 1)
    x = (rng.random((n, task.steps, task.channels)) < task.noise).astype("float32")
    sample, channel = np.nonzero(rng.random((n, task.channels)) >= task.drop)
    x[sample, times[sample, channel], channel] = 1.0
    return x, y
