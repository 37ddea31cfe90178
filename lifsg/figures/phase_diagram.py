"""Paper item F3: the largest spacing of equal input spikes that still reaches threshold.

Three panels (2 spikes, 3 spikes, many spikes) over the grid w_input, w_leak in [0, 1], coloured
by the largest spacing ``m`` in steps from :func:`lifsg.phase.max_spacing`, in discrete colours
0..``largest``, with one colour for "impossible" (``nan``: no spacing reaches threshold, e.g.
w_input = 0) and one for "more than ``largest`` / unlimited" (``inf``: e.g. no leak, or one
spike is enough). :func:`layer_max_spacing` is the brute-force check with the real
:class:`lifsg.LIF` layer.
"""

import math

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from lifsg import phase

LARGEST = 10
PANELS = {2: "2 spikes", 3: "3 spikes", "many": "many spikes"}
IMPOSSIBLE_COLOR = "#d9d9d9"
UNLIMITED_COLOR = "#7f0000"


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


def _classes(m, largest):
    """Colour index: 0 impossible, 1 + m for m in 0..largest, largest + 2 beyond / unlimited."""
    out = np.where(np.isnan(m), 0, np.where(m > largest, largest + 2, np.nan_to_num(m) + 1))
    return out.astype(int)


def phase_diagram_figure(step=0.01, w_input=None, w_leak=None, largest=LARGEST):
    """F3: three panels over (w_input, w_leak); a marker at (``w_input``, ``w_leak``) if given.

    Returns ``(fig, data)``, data one row per grid point: w_input, w_leak and the spacing for
    2, 3 and many spikes (``nan``: impossible, ``inf``: unlimited).
    """
    d = phase_data(step)
    colours = [IMPOSSIBLE_COLOR]
    colours += [tuple(c) for c in _viridis(largest + 1)]
    colours += [UNLIMITED_COLOR]
    cmap = ListedColormap(colours)
    norm = BoundaryNorm(np.arange(-0.5, largest + 3), cmap.N)
    values = d["w_input"]
    half = (values[1] - values[0]) / 2
    edges = np.r_[values - half, values[-1] + half]

    fig = Figure(figsize=(13.2, 4.6), layout="constrained")
    axes = fig.subplots(1, 3, sharex=True, sharey=True)
    mark = w_input is not None and w_leak is not None
    for ax, (spikes, title) in zip(axes, PANELS.items(), strict=True):
        mesh = ax.imshow(
            _classes(d[spikes], largest),
            cmap=cmap,
            norm=norm,
            origin="lower",
            extent=(edges[0], edges[-1], edges[0], edges[-1]),
            interpolation="nearest",
        )
        ax.set_title(title)
        ax.set_xlabel("$w_{input}$")
        ax.set_aspect("equal")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        if mark:
            m = float(spacing(w_input, w_leak, spikes))
            ax.plot(w_input, w_leak, "o", ms=9, mfc="none", mec="white", mew=2.6)
            ax.plot(w_input, w_leak, "o", ms=9, mfc="none", mec="black", mew=1.3)
            ax.text(
                0.97,
                0.97,
                f"({w_input:.2f}, {w_leak:.2f}): {label(m, largest)}",
                transform=ax.transAxes,
                ha="right",
                va="top",
                fontsize=10,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.5", "alpha": 0.9},
            )
    axes[0].set_ylabel("$w_{leak}$")
    bar = fig.colorbar(mesh, ax=axes, ticks=np.arange(largest + 3), shrink=0.95, pad=0.01)
    bar.ax.set_yticklabels(["impossible", *map(str, range(largest + 1)), f">{largest} / unlim."])
    bar.set_label("largest spacing m (steps)")

    w, leak = np.meshgrid(values, values)
    data = {"w_input": w.ravel(), "w_leak": leak.ravel()}
    for spikes in phase.SPIKE_COUNTS:
        data[f"m_{spikes}"] = d[spikes].ravel()
    return fig, data


def _viridis(n):
    from matplotlib import colormaps

    return colormaps["viridis"](np.linspace(0.0, 1.0, n))


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


# ---------------------------------------------------------------------------------------------
# cross-check with the real layer


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
