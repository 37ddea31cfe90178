"""Paper item F1: one LIF unit and its error flow, and the single-neuron playground.

:func:`simulate_unit` runs one neuron through the real :class:`lifsg.DenseLIF` layer and
takes the error each input receives with ``tf.GradientTape``; F2
(:mod:`lifsg.figures.operating_modes`) and the playground use it. The input of step ``t`` comes
on its own channel ``t`` (all weights ``w_input``), so ``d loss / d kernel[t]`` is the error
that input sends back, as in paper item F2.
"""

import functools
from dataclasses import dataclass

import keras
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch

from lifsg import neuron, surrogates
from lifsg.layers import DenseLIF

INPUT_KINDS = ("constant", "regular", "poisson")
TARGETS = ("spikes", "second", "all")


def input_signal(kind, steps, period=5, rate=0.2, seed=0):
    """Input per step, before the weight: ``constant`` (1 every step), ``regular`` (a spike
    every ``period`` steps, the first at step ``period - 1``) or ``poisson`` (a spike with
    probability ``rate`` per step, NumPy generator seeded with ``seed``)."""
    if kind == "constant":
        return np.ones(steps)
    if kind == "regular":
        if int(period) < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        return (np.arange(1, steps + 1) % int(period) == 0).astype(float)
    if kind == "poisson":
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must lie in [0, 1] (spikes per step), got {rate}")
        return (np.random.default_rng(seed).random(steps) < rate).astype(float)
    raise ValueError(f"unknown input kind {kind!r}; valid: {', '.join(INPUT_KINDS)}")


@dataclass
class UnitRun:
    """One neuron's run. Arrays have one entry per time step."""

    signal: np.ndarray  # input per step before the weight (spikes 0/1 or a current)
    w_input: float
    w_leak: float
    threshold: float
    v: np.ndarray  # membrane potential V_t
    y: np.ndarray  # output spikes y_t
    target: np.ndarray  # weight of y_t in the loss  L = sum(target * y)
    error: np.ndarray  # d L / d w of the input at step t (0 where there is no input)

    @property
    def spike_times(self):
        return np.flatnonzero(self.y).tolist()

    @property
    def input_times(self):
        return np.flatnonzero(self.signal).tolist()


def _target(y, rule):
    """Loss weights over time. ``spikes``: a 1 at every output spike (each spike sends its
    error back); ``second``: a single 1 at the second output spike (the first if only one; none
    if no spike); ``all``: a 1 at every step (L = number of spikes, so near misses send error
    too)."""
    target = np.zeros_like(y)
    times = np.flatnonzero(y)
    if rule == "all":
        target[:] = 1.0
    elif rule == "spikes":
        target[times] = 1.0
    elif rule == "second":
        if len(times):
            target[times[min(1, len(times) - 1)]] = 1.0
    else:
        raise ValueError(f"unknown target {rule!r}; valid: {', '.join(TARGETS)}")
    return target


@functools.lru_cache(maxsize=16)
def _unit(steps, threshold, reset, surrogate_name, beta):
    """Two DenseLIF(1) layers over ``steps`` channels (spikes; potential) and compiled calls.

    Cached per configuration: the slider callbacks only assign the weights and re-run.
    """
    import tensorflow as tf

    common = dict(
        threshold=threshold,
        reset=reset,
        surrogate=surrogates.get(surrogate_name, beta=beta),
        w_leak=0.0,
        use_bias=False,
        kernel_initializer="zeros",
        dtype="float64",
    )
    spiking = DenseLIF(1, **common)
    potential = DenseLIF(1, return_potential=True, **common)
    for layer in (spiking, potential):
        layer.build((1, steps, steps))

    @tf.function
    def forward(x):
        return potential(x)[0, :, 0], spiking(x)[0, :, 0]

    @tf.function
    def backward(x, target):
        with tf.GradientTape() as tape:
            y = spiking(x)[0, :, 0]
            loss = tf.reduce_sum(target * y)
        return tape.gradient(loss, spiking.kernel)[:, 0]

    return (spiking, potential), forward, backward


def simulate_unit(
    signal,
    w_input,
    w_leak,
    threshold=1.0,
    reset="delayed",
    surrogate="flat",
    beta=None,
    target="spikes",
):
    """Run one neuron (``lifsg.DenseLIF``, float64) on ``signal`` and back-propagate.

    signal: input per step (T,), before the weight. The input of step t arrives on channel t,
    every channel has weight ``w_input`` and no bias. target: the loss is ``sum(target * y)``
    with target ``"spikes"`` (a 1 at every output spike), ``"second"`` (paper item F2: a single
    1 at the second output spike, the first if only one), ``"all"`` (a 1 at every step) or an
    array (T,). Returns a :class:`UnitRun` whose
    ``error[t]`` is ``d loss / d kernel[t]``.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"signal must be a non-empty 1-D array, got shape {signal.shape}")
    steps = signal.size
    reset = neuron.check_reset(reset)
    canonical = surrogates.get(surrogate, beta=beta)
    name, beta = canonical.name, canonical.get_config().get("beta")
    (spiking, potential), forward, backward = _unit(
        steps, float(threshold), reset, name, None if beta is None else float(beta)
    )
    for layer in (spiking, potential):
        layer.kernel.assign(np.full((steps, 1), float(w_input)))
        layer.w_leak.assign(np.full((1,), float(w_leak)))
    x = np.zeros((1, steps, steps))
    x[0, np.arange(steps), np.arange(steps)] = signal
    v, y = (a.numpy() for a in forward(x))
    loss_weights = _target(y, target) if isinstance(target, str) else np.asarray(target, float)
    error = backward(x, loss_weights).numpy()
    return UnitRun(
        signal=signal,
        w_input=float(w_input),
        w_leak=float(w_leak),
        threshold=float(threshold),
        v=v,
        y=y,
        target=loss_weights,
        error=error,
    )


# ---------------------------------------------------------------------------------------------
# F1: the drawn unit


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
