"""Paper item F3: the largest spacing of equal input spikes that still reaches threshold.

Three panels (2 spikes, 3 spikes, many spikes) over the grid w_input, w_leak in [0, 1], coloured
by the largest spacing ``m`` in steps from :func:`lifsg.phase.max_spacing`, in discrete colours
0..``largest``, with one colour for "impossible" (``nan``: no spacing reaches threshold, e.g.
w_input = 0) and one for "more than ``largest`` / unlimited" (``inf``: e.g. no leak, or one
spike is enough). The data and the check with the real layer: :mod:`lifsg.studies.phase_diagram`.
"""

import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure

from lifsg import phase
from lifsg.studies.phase_diagram import LARGEST, label, phase_data, spacing

PANELS = {2: "2 spikes", 3: "3 spikes", "many": "many spikes"}
IMPOSSIBLE_COLOR = "#d9d9d9"
UNLIMITED_COLOR = "#7f0000"


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
