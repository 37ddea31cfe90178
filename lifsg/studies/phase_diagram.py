"""Paper item F3: the largest spacing of equal input spikes that still reaches threshold, over
the grid w_input, w_leak in [0, 1] (:func:`phase_data`, from :func:`lifsg.phase.max_spacing`),
and its brute-force check with the real :class:`lifsg.LIF` layer (:func:`cross_check`). The
drawing is :mod:`lifsg.figures.phase_diagram`.
"""

import math

import numpy as np

from lifsg import phase

LARGEST = 10


def grid(step=0.01):
    """Grid values 0, step, ..., 1 (rounded to 10 decimals)."""
    n = int(round(1.0 / step))
    if n < 1 or not math.isclose(n * step, 1.0, rel_tol=1e-9):
        raise ValueError(f"step must divide 1, got {step}")
    return np.round(np.linspace(0.0, 1.0, n + 1), 10)


def spacing(w_input, w_leak, spikes):
    """:func:`lifsg.phase.max_spacing`, extended to ``w_input = 0`` (impossible: ``nan``)."""
    w, leak = np.broadcast_arrays(np.asarray(w_input, float), np.asarray(w_leak, float))
    positive = w > 0
    out = np.full(w.shape, np.nan)
    out[positive] = phase.max_spacing(w[positive], leak[positive], spikes)
    return out


def phase_data(step=0.01):
    """``{"w_input": (n,), "w_leak": (n,), 2: (n_leak, n_input), 3: ..., "many": ...}``."""
    values = grid(step)
    w, leak = np.meshgrid(values, values)  # rows: w_leak, columns: w_input
    data = {"w_input": values, "w_leak": values}
    for spikes in phase.SPIKE_COUNTS:
        data[spikes] = spacing(w, leak, spikes)
    return data


def label(m, largest=LARGEST):
    """A spacing as text: ``"impossible"``, ``"unlimited"``, ``">10"`` or the number."""
    m = float(m)
    if math.isnan(m):
        return "impossible"
    if math.isinf(m):
        return "unlimited"
    if m > largest:
        return f">{largest}"
    return str(int(m))


def spot_values(points):
    """JSON-ready spacings for ``[(w_input, w_leak), ...]`` ("impossible" / "unlimited")."""
    out = []
    for w, leak in points:
        row = {"w_input": float(w), "w_leak": float(leak)}
        for spikes in phase.SPIKE_COUNTS:
            m = float(spacing(w, leak, spikes))
            row[str(spikes)] = label(m, largest=math.inf) if not math.isfinite(m) else int(m)
        out.append(row)
    return out


def _layer_run(w_leak):
    """A compiled call of a float64 LIF layer with one fixed leak per feature."""
    import tensorflow as tf

    from lifsg.layers import LIF

    layer = LIF(w_leak=np.asarray(w_leak, float).tolist(), trainable_leak=False, dtype="float64")
    return tf.function(layer, reduce_retracing=True)


def layer_max_spacing(w_input, w_leak, spikes, largest=LARGEST, many=400, _run=None):
    """:func:`lifsg.phase.simulate_max_spacing` with the real :class:`lifsg.LIF` (float64)."""
    run = _run or _layer_run(w_leak)
    return phase.simulate_max_spacing(w_input, w_leak, spikes, largest, many, run=run)


def cross_check(step=0.1, largest=LARGEST, many=400):
    """Agreement of :func:`lifsg.phase.max_spacing` with :func:`layer_max_spacing` on the grid
    of ``step`` without ``w_input = 0``, spacings above ``largest`` counted as one class.

    Returns a dict per spike count: points, agreeing points, fraction, and the fraction away
    from the class boundaries (points a relative change of 1e-7 in w_input moves to another
    class, where rounding decides; for "many", points where ``many`` spikes fall short of the
    infinite train's limit).
    """
    values = grid(step)
    w, leak = (a.ravel() for a in np.meshgrid(values[1:], values))
    result = {}
    run = _layer_run(leak)
    for spikes in phase.SPIKE_COUNTS:
        formula = spacing(w, leak, spikes)
        formula = np.where(formula > largest, np.inf, formula)
        simulated = layer_max_spacing(w, leak, spikes, largest=largest, many=many, _run=run)
        same = (formula == simulated) | (np.isnan(formula) & np.isnan(simulated))
        clear = ~_near_boundary(w, leak, spikes, many)
        result[str(spikes)] = {
            "points": int(w.size),
            "agree": int(same.sum()),
            "fraction": float(same.mean()),
            "points_off_boundary": int(clear.sum()),
            "fraction_off_boundary": float(same[clear].mean()) if clear.any() else math.nan,
        }
    return result


def _near_boundary(w, leak, spikes, many):
    """Points whose class changes under a relative nudge of 1e-7 to w_input (rounding decides
    them), and for "many" those where ``many`` spikes fall short of the infinite train."""
    m = spacing(w, leak, spikes)
    near = np.zeros(m.shape, bool)
    for nudge in (1 - 1e-7, 1 + 1e-7):
        other = spacing(np.minimum(w * nudge, 1.0), leak, spikes)
        near |= ~((other == m) | (np.isnan(other) & np.isnan(m)))
    if spikes == "many":
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            q = (1 - leak) ** m
            near |= (q < 1) & (w * (1 - q**many) / (1 - q) < 1)
    return near
