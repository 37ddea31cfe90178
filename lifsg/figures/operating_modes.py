"""Paper item F2, the drawing: operating modes of one LIF unit and the error each input spike
receives (runs: :mod:`lifsg.studies.operating_modes`).
"""

import numpy as np
from matplotlib.figure import Figure

from lifsg.studies.operating_modes import COLUMNS, STEPS, operating_mode


def operating_modes_figure(columns=COLUMNS, steps=STEPS):
    """F2 for columns ``[(label, w_input, w_leak), ...]``.

    Rows: input spikes, membrane potential (threshold dashed), output spikes, target spike,
    error per input spike. Returns ``(fig, data)``, data one row per column and step: mode,
    w_input, w_leak, step, input, V, output, target, error.
    """
    columns = [(str(label), float(w), float(leak)) for label, w, leak in columns]
    if not columns:
        raise ValueError("no columns to draw")
    modes = [operating_mode(w, leak, steps) for _, w, leak in columns]
    fig = Figure(figsize=(3.6 * len(columns) + 1.2, 7.6), layout="constrained")
    rows = ("input\nspikes", "membrane\npotential", "output\nspikes", "target", "error per\ninput")
    grid = fig.add_gridspec(5, len(columns), height_ratios=(0.55, 1.5, 0.55, 0.55, 1.3))
    t = np.arange(steps)
    v_top = max(1.0, max(float(m.v.max()) for m in modes)) * 1.12
    e_top = max((float(np.abs(m.error).max()) for m in modes), default=0.0)
    e_top = 1.15 * (e_top if e_top > 0 else 1.0)
    first = None
    for c, ((label, w, leak), mode) in enumerate(zip(columns, modes, strict=True)):
        axes = []
        for r in range(5):
            ax = fig.add_subplot(grid[r, c], sharex=first)
            first = first or ax
            axes.append(ax)
        ax_in, ax_v, ax_y, ax_t, ax_e = axes
        ax_in.set_title(f"{label}\n$w_{{in}}$ = {w:g}, $w_{{leak}}$ = {leak:g}", fontsize=10)
        ax_in.vlines(mode.input_times, 0, 1, color="black", lw=0.9)
        ax_v.plot(t, mode.v, color="#1f4e99", lw=1.1, drawstyle="steps-mid")
        ax_v.axhline(1.0, color="#c0392b", ls="--", lw=0.9)
        ax_v.set_ylim(0, v_top)
        ax_y.vlines(mode.spike_times, 0, 1, color="black", lw=1.4)
        if mode.target_time is not None:
            ax_t.vlines([mode.target_time], 0, 1, color="#2e8b57", lw=1.8)
        times = np.asarray(mode.input_times)
        ax_e.vlines(times, 0, mode.error[times], color="#c0392b", lw=1.1)
        ax_e.plot(times, mode.error[times], "o", color="#c0392b", ms=2.5)
        ax_e.set_ylim(-0.05 * e_top, e_top)
        ax_e.set_xlabel("time step")
        for ax in (ax_in, ax_y, ax_t):
            ax.set_ylim(0, 1.3)
            ax.set_yticks([])
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        for ax in axes:
            for s in mode.spike_times:
                ax.axvline(s, color="gray", lw=0.5, alpha=0.4, zorder=0)
        if c == 0:
            for ax, name in zip(axes, rows, strict=True):
                ax.set_ylabel(name, fontsize=9)
        else:
            ax_v.tick_params(labelleft=False)
            ax_e.tick_params(labelleft=False)
    first.set_xlim(-2, steps + 1)

    data = {k: [] for k in ("mode", "w_input", "w_leak", "step", "input", "V", "output")}
    data.update(target=[], error=[])
    for (label, w, leak), mode in zip(columns, modes, strict=True):
        data["mode"] += [label] * steps
        data["w_input"] += [w] * steps
        data["w_leak"] += [leak] * steps
        data["step"] += t.tolist()
        data["input"] += mode.inputs.tolist()
        data["V"] += mode.v.tolist()
        data["output"] += mode.spikes.tolist()
        data["target"] += mode.target.tolist()
        data["error"] += mode.error.tolist()
    return fig, data


def chosen_mode_figure(w_input, w_leak, steps=STEPS, label="chosen"):
    """:func:`operating_modes_figure` with a single column (for the notebook's sliders)."""
    return operating_modes_figure([(label, w_input, w_leak)], steps)
