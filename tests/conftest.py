"""Shared test set-up: quiet TensorFlow, fixed seeds, the F2 input pattern."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def f2_spike_times(steps=211):
    """Input spike times of paper item F2: bursts with gaps 11, 10, ..., 1, repeated."""
    times, t, gap = [], 0, 11
    while t + gap < steps:
        t += gap
        times.append(t)
        gap = gap - 1 if gap > 1 else 11
    return times


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
