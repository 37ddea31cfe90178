"""Paper item F1: the drawn LIF unit with its error flow, and the single-neuron playground
(simulation: :mod:`lifsg.studies.lif_unit`).
"""

import keras
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from lifsg import surrogates
from lifsg.studies.lif_unit import input_signal, simulate_unit


def _arrow(ax, start, end, color="black", style="-|>", ls="-", rad=0.0, lw=1.4, **kw):
    arrow = FancyArrowPatch(
        start,
        end,
        arrowstyle=style,
        mutation_scale=14,
        color=color,
        lw=lw,
        linestyle=ls,
        connectionstyle=f"arc3,rad={rad}",
        shrinkA=kw.pop("shrinkA", 2),
        shrinkB=kw.pop("shrinkB", 2),
        **kw,
    )
    ax.add_patch(arrow)
    return arrow


def _box(ax, xy, text, width, height, face, edge="black", fontsize=11):
    x, y = xy
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.08",
            fc=face,
            ec=edge,
            lw=1.3,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def lif_unit_figure(n_inputs=3):
    """F1: one LIF unit with its error flow, drawn with matplotlib patches.

    Forward (black): inputs x_i weighted by w_input,i into the membrane V, which keeps
    (1 - w_leak) of itself per step (self-loop), the threshold H(V - theta) gives the spike y,
    the spike resets V one step later. Backward (red): the error between y and the target
    passes the surrogate derivative and flows back through the leak to every input; an input
    t steps before the spike receives sigma'(V_T - theta) (1 - w_leak)^t, none before the last
    reset. Returns ``(fig, data)``, data listing the drawn connections.
    """
    if n_inputs < 1:
        raise ValueError(f"n_inputs must be >= 1, got {n_inputs}")
    fig = Figure(figsize=(9.5, 5.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(-0.3, 11.3)
    ax.set_ylim(-0.6, 6.0)
    ax.set_aspect("equal")
    ax.axis("off")
    red, blue = "#c0392b", "#1f4e99"
    rows = []

    body, radius = (4.6, 2.8), 0.85
    ax.add_patch(Circle(body, radius, fc="#dce8f5", ec=blue, lw=2))
    ax.text(*body, "$V_t$", ha="center", va="center", fontsize=17, color=blue)
    ax.text(
        body[0],
        body[1] - radius - 0.35,
        "membrane",
        ha="center",
        va="top",
        fontsize=9,
        color=blue,
    )

    ys = np.linspace(4.9, 0.7, n_inputs) if n_inputs > 1 else np.array([2.8])
    for i, y in enumerate(ys, start=1):
        xin = (0.55, y)
        ax.add_patch(Circle(xin, 0.33, fc="white", ec="black", lw=1.3))
        ax.text(*xin, f"$x_{i}$", ha="center", va="center", fontsize=12)
        # a tiny spike train left of each input
        for k, dt in enumerate((0.0, 0.12, 0.3)[: 1 + (i % 3)]):
            ax.plot([-0.2 + dt + 0.0 * k] * 2, [y - 0.15, y + 0.15], color="black", lw=1)
        angle = np.arctan2(y - body[1], xin[0] - body[0])
        end = (body[0] + radius * np.cos(angle), body[1] + radius * np.sin(angle))
        _arrow(ax, (xin[0] + 0.33, y), end, shrinkA=0, shrinkB=1)
        t = 0.38
        label_xy = (xin[0] + 0.33 + t * (end[0] - xin[0] - 0.33), y + t * (end[1] - y) + 0.18)
        ax.text(*label_xy, f"$w_{{\\mathrm{{in}},{i}}}$", fontsize=11, ha="center", va="bottom")
        rows.append({"kind": "forward", "source": f"x_{i}", "target": "V", "label": f"w_in,{i}"})
        # the error sent back to this input (red, dashed, below the forward arrow)
        _arrow(
            ax,
            (end[0] - 0.1, end[1] - 0.28),
            (xin[0] + 0.4, y - 0.3),
            color=red,
            ls="--",
            lw=1.2,
            shrinkA=0,
            shrinkB=0,
        )
        rows.append(
            {
                "kind": "error",
                "source": "V",
                "target": f"w_in,{i}",
                "label": f"dL/dw_in,{i} = sigma'(V_T - theta) (1 - w_leak)^(T - t_{i})",
            }
        )

    # leak: self-loop on top of the membrane
    top = (body[0] - 0.45, body[1] + radius - 0.12)
    top2 = (body[0] + 0.45, body[1] + radius - 0.12)
    _arrow(ax, top2, top, color=blue, rad=1.6, shrinkA=0, shrinkB=0)
    ax.text(
        body[0],
        body[1] + radius + 1.05,
        r"$\times(1-w_{\mathrm{leak}})$ per step",
        ha="center",
        va="bottom",
        fontsize=11,
        color=blue,
    )
    rows.append({"kind": "forward", "source": "V_{t-1}", "target": "V_t", "label": "1 - w_leak"})

    # threshold and spike
    thr = (7.05, 2.8)
    _box(ax, thr, r"$H(V_t-\theta)$", 1.35, 0.7, "#fdf2d0")
    _arrow(ax, (body[0] + radius, body[1]), (thr[0] - 0.75, thr[1]), shrinkA=0)
    spike = (9.05, 2.8)
    ax.add_patch(Circle(spike, 0.4, fc="#fdf2d0", ec="black", lw=1.3))
    ax.text(*spike, "$y_t$", ha="center", va="center", fontsize=13)
    _arrow(ax, (thr[0] + 0.75, thr[1]), (spike[0] - 0.4, spike[1]), shrinkB=0)
    ax.text(spike[0], spike[1] - 0.55, "spike", ha="center", va="top", fontsize=9)
    rows.append({"kind": "forward", "source": "V", "target": "y", "label": "H(V - theta)"})

    # reset (dashed, below): one step after the spike the old potential is dropped
    _arrow(
        ax,
        (spike[0], spike[1] - 0.95),
        (body[0] + 0.35, body[1] - radius + 0.05),
        ls=":",
        rad=-0.35,
        shrinkA=0,
        shrinkB=0,
    )
    ax.text(7.1, 0.85, "reset at $t+1$", ha="center", va="top", fontsize=10)
    rows.append({"kind": "forward", "source": "y_t", "target": "V_{t+1}", "label": "reset"})

    # target and loss, the error going back through the surrogate
    tgt = (9.05, 5.0)
    _box(ax, tgt, r"target $\hat y_t$", 1.5, 0.6, "#e8f5e0")
    loss = (10.45, 3.9)
    _box(ax, loss, "$L$", 0.5, 0.5, "#f9e0dc", edge=red, fontsize=12)
    _arrow(ax, (spike[0] + 0.3, spike[1] + 0.3), (loss[0] - 0.3, loss[1] - 0.2), shrinkB=0)
    _arrow(ax, (tgt[0] + 0.6, tgt[1] - 0.35), (loss[0], loss[1] + 0.35), shrinkB=0)
    rows.append({"kind": "forward", "source": "y", "target": "L", "label": "loss"})
    rows.append({"kind": "forward", "source": "target", "target": "L", "label": "loss"})
    _arrow(
        ax,
        (loss[0] - 0.3, loss[1] + 0.05),
        (body[0] + 0.55, body[1] + 0.65),
        color=red,
        ls="--",
        rad=0.25,
        shrinkA=2,
        shrinkB=0,
    )
    ax.text(
        6.9,
        4.45,
        r"error $\partial L/\partial y_T\cdot\sigma'(V_T-\theta)$",
        ha="center",
        va="bottom",
        fontsize=10,
        color=red,
    )
    rows.append(
        {"kind": "error", "source": "L", "target": "V", "label": "dL/dy * sigma'(V - theta)"}
    )
    ax.text(
        2.5,
        -0.5,
        r"input at $t \leq T$ receives $\sigma'(V_T-\theta)\,(1-w_{\mathrm{leak}})^{T-t}$;"
        "\nnone before the last reset",
        ha="center",
        va="bottom",
        fontsize=10,
        color=red,
    )
    data = {k: [r[k] for r in rows] for k in ("kind", "source", "target", "label")}
    return fig, data


# ---------------------------------------------------------------------------------------------
# the playground


def _derivative(spike_fn, u):
    """The surrogate derivative at ``u`` (NumPy in, NumPy out, float64)."""
    u = keras.ops.convert_to_tensor(np.asarray(u, dtype=np.float64))
    return np.asarray(keras.ops.convert_to_numpy(spike_fn.derivative(u)), dtype=np.float64)


def playground_figure(
    w_input=0.3,
    w_leak=0.1,
    threshold=1.0,
    reset="delayed",
    surrogate="superspike",
    beta=10.0,
    input_kind="regular",
    steps=100,
    period=3,
    rate=0.3,
    seed=0,
    target="spikes",
):
    """One neuron driven by ``input_kind`` (see :func:`input_signal`), run through the real
    layer (:func:`simulate_unit`; by default each output spike sends its error back, see
    ``target`` there).

    Left, over time: the weighted input, V with the threshold, the output spikes and the
    error each input receives. Right: the surrogate derivative sigma'(u), u = V - theta,
    with the values u_t the run visited. Returns ``(fig, data)``, one row per step: input,
    current, V, spike, error, u_t and sigma'(u_t).
    """
    signal = input_signal(input_kind, steps, period=period, rate=rate, seed=seed)
    run = simulate_unit(signal, w_input, w_leak, threshold, reset, surrogate, beta, target)
    spike_fn = surrogates.get(surrogate, beta=beta)
    t = np.arange(steps)
    current = w_input * signal

    fig = Figure(figsize=(10.5, 6.4), layout="constrained")
    grid = fig.add_gridspec(4, 2, width_ratios=(3.1, 1.25), height_ratios=(1, 1.6, 0.6, 1.2))
    axes = [fig.add_subplot(grid[0, 0])]
    axes += [fig.add_subplot(grid[i, 0], sharex=axes[0]) for i in (1, 2, 3)]
    ax_in, ax_v, ax_y, ax_err = axes

    if input_kind == "constant":
        ax_in.step(t, current, where="mid", color="black", lw=1.2)
    else:
        ax_in.vlines(t[signal > 0], 0, current[signal > 0], color="black", lw=1.2)
    ax_in.set_ylabel("input\n$w_{in}x_t$")
    ax_in.set_ylim(min(0, current.min()) * 1.1, max(current.max(), 1e-9) * 1.25)

    ax_v.plot(t, run.v, color="#1f4e99", lw=1.4, drawstyle="steps-mid")
    ax_v.axhline(threshold, color="#c0392b", ls="--", lw=1)
    ax_v.text(
        steps - 0.5, threshold, r"$\theta$", color="#c0392b", ha="right", va="bottom", fontsize=11
    )
    ax_v.set_ylabel("membrane\n$V_t$")
    ax_v.set_ylim(0, max(run.v.max(), threshold) * 1.15)

    spikes = t[run.y > 0]
    ax_y.vlines(spikes, 0, 1, color="black", lw=1.5)
    ax_y.set_ylim(0, 1.25)
    ax_y.set_yticks([])
    ax_y.set_ylabel(f"spikes\n({len(spikes)})")

    has_input = signal != 0
    ax_err.vlines(t[has_input], 0, run.error[has_input], color="#c0392b", lw=1.4)
    ax_err.plot(t[has_input], run.error[has_input], "o", color="#c0392b", ms=3)
    ax_err.axhline(0, color="gray", lw=0.6)
    ax_err.set_ylabel("error per\ninput")
    ax_err.set_xlabel("time step $t$")
    ax_err.set_xlim(-1, steps)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)

    ax_s = fig.add_subplot(grid[:, 1])
    u_max = max(1.5 * threshold, float(run.v.max() - threshold) + 0.1)
    u = np.union1d(np.linspace(-threshold, u_max, 801), [0.0])
    curve = _derivative(spike_fn, u)
    ax_s.plot(u, curve, color="#c0392b", lw=1.6)
    visited = run.v - threshold
    marks = _derivative(spike_fn, visited)
    ax_s.plot(visited, marks, "|", color="#1f4e99", ms=9, alpha=0.6, label="$u_t$ of this run")
    ax_s.axvline(0, color="gray", lw=0.6)
    ax_s.set_ylim(0, max(1.0, float(np.max(curve))) * 1.12)
    ax_s.set_xlabel(r"$u = V - \theta$")
    ax_s.set_ylabel(r"surrogate $\sigma'(u)$")
    peak = spike_fn.peak
    width = spike_fn.width
    ax_s.set_title(
        f"{spike_fn.name}"
        + (f", beta={spike_fn.beta:g}" if hasattr(spike_fn, "beta") else "")
        + f"\npeak {peak:g}, width {width:.3g}",
        fontsize=10,
    )
    ax_s.legend(loc="upper right", fontsize=8, frameon=False)
    fig.suptitle(
        f"$w_{{in}}$={w_input:g}, $w_{{leak}}$={w_leak:g}, $\\theta$={threshold:g}, "
        f"reset={reset}, input={input_kind}",
        fontsize=11,
    )
    data = {
        "step": t,
        "input": signal,
        "current": current,
        "V": run.v,
        "spike": run.y,
        "error": run.error,
        "u": visited,
        "surrogate": marks,
    }
    return fig, data
