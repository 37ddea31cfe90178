"""The phase diagram of paper item F3: the largest spacing of equal input spikes that still
drives a LIF neuron (threshold 1) to threshold.

Input spikes of weight ``w_input`` arrive every ``m`` steps (``m = 0``: all at once); between
them the potential decays by ``(1 - w_leak)`` per step. Results are float arrays: an integer
``m >= 0``, ``inf`` where any spacing works (e.g. no leak, or one spike suffices) and ``nan``
where no spacing works.

Points exactly on a class boundary (``(1 - w_leak)**m`` equal to the required ratio, e.g.
``w_input = w_leak`` for many spikes) are decided exactly, with the inputs read as the decimals
they print as (``0.19`` is 19/100), so the answer there does not hang on the last bit of
``log`` and is the same on every machine.
"""

from fractions import Fraction

import numpy as np

from lifsg import reference

SPIKE_COUNTS = (2, 3, "many")


def _check_count(spikes):
    if spikes not in SPIKE_COUNTS:
        raise ValueError(f"spikes must be one of {SPIKE_COUNTS}, got {spikes!r}")


def required_ratio(w_input, spikes):
    """The smallest ``q = (1 - w_leak)**m`` that still reaches threshold (may be <= 0 or > 1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if spikes == 2:
            return 1.0 / w_input - 1.0
        if spikes == 3:
            return (np.sqrt(4.0 / w_input - 3.0) - 1.0) / 2.0
        return 1.0 - w_input


def max_spacing(w_input, w_leak, spikes):
    """Largest spacing ``m`` (steps) from the closed forms of docs/model.md, F3.

    2 spikes: ``floor(ln(1/w - 1) / ln(1 - l))``; 3 spikes: ``floor(ln((sqrt(4/w - 3) - 1)/2) /
    ln(1 - l))``; many: ``floor(ln(1 - w) / ln(1 - l))``. w_input in (0, inf), w_leak in
    [0, 1]; arrays broadcast. ``w_leak = 0`` gives ``inf`` where the spikes reach threshold at
    all (``n * w >= 1``; any ``w > 0`` for many) and ``nan`` elsewhere.
    """
    _check_count(spikes)
    w, leak = np.broadcast_arrays(np.asarray(w_input, float), np.asarray(w_leak, float))
    if np.any(w <= 0) or np.any(leak < 0) or np.any(leak > 1):
        raise ValueError("w_input must be > 0 and w_leak in [0, 1]")
    q = required_ratio(w, spikes)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        ratio = np.log(q) / np.log1p(-leak)
        m = np.array(np.floor(ratio) + 0.0)  # no negative zero; an array even for 0-d input
        nearest = np.round(ratio)
        on_boundary = (q > 0) & (q <= 1) & (leak > 0) & (leak < 1)
        on_boundary &= np.abs(ratio - nearest) <= EXACT_BAND * np.maximum(1.0, np.abs(ratio))
    for i in np.flatnonzero(on_boundary):
        m.flat[i] = _exact_spacing(w.flat[i], leak.flat[i], spikes, int(nearest.flat[i]))
    out = np.where(q > 1, np.nan, m)  # even coincident spikes fall short
    out = np.where((q <= 1) & (leak == 0), np.inf, out)  # no leak: spacing does not matter
    out = np.where(q <= 0, np.inf, out)  # one spike reaches threshold on its own
    out = np.where((q > 0) & (q <= 1) & (leak == 1), 0.0, out)  # forgets everything at once
    return out


#: relative distance of log(q) / log(1 - w_leak) to an integer below which it is decided exactly
EXACT_BAND = 1e-9


def _decimal(x):
    """The float as the decimal it prints as (shortest repr): 0.19 -> Fraction(19, 100)."""
    return Fraction(repr(float(x)))


def _exact_spacing(w_input, w_leak, spikes, k):
    """``k`` if ``(1 - w_leak)**k`` reaches the required ratio exactly, else ``k - 1``."""
    w, decay = _decimal(w_input), (1 - _decimal(w_leak)) ** k
    if spikes == 2:
        reaches = w * (1 + decay) >= 1
    elif spikes == 3:  # (sqrt(4/w - 3) - 1) / 2 <= decay, both sides of the root >= 0
        reaches = 4 / w - 3 <= (2 * decay + 1) ** 2
    else:
        reaches = decay >= 1 - w
    return float(k if reaches else k - 1)


def simulate_max_spacing(w_input, w_leak, spikes, largest=10, many=2000, run=None):
    """Brute force: the largest ``m`` in ``0..largest`` for which the spikes reach threshold;
    ``inf`` if ``largest + 1`` still does, ``nan`` if none does. "many" spikes means ``many``
    of them.

    w_input, w_leak: 1-D arrays of equal length (one neuron each). run: the neuron simulated,
    ``run(x) -> spikes`` for x (1, time, neurons) with the leaks ``w_leak`` (default
    :func:`lifsg.reference.lif_forward`; the figures pass the real :class:`lifsg.LIF`).
    """
    _check_count(spikes)
    w = np.asarray(w_input, float)
    leak = np.asarray(w_leak, float)
    if run is None:
        run = lambda x: reference.lif_forward(x, leak).y  # noqa: E731
    n = many if spikes == "many" else spikes
    best = np.full(w.shape, np.nan)
    for m in range(largest + 2):
        steps = 1 if m == 0 else (n - 1) * m + 1
        x = np.zeros((1, steps, w.size))
        x[0, :: max(m, 1)] = w
        if m == 0:
            x[0, 0] = n * w
        reached = np.asarray(run(x))[0].max(axis=0) > 0
        best = np.where(reached, m, best)
    return np.where(best > largest, np.inf, best)
