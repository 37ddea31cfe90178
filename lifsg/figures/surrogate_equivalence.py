"""Paper item F5: does a constant surrogate plus a tuned leak act like a shaped surrogate?

The paper's exact setup is unknown (its full text is not available to us); this module builds
the comparison from the gradient algebra of docs/model.md section 4, with the real layers.

(a) :func:`surrogates_figure`: every surrogate's derivative ``dH/du`` against ``u = V - theta``
    (``lifsg.surrogates``' own ``.derivative``), with its stated peak and width.

(b) :func:`error_profile_figure`: the error a spike at the last step T sends back to the input
    current at each step t <= T, taken with ``tf.GradientTape`` through :class:`lifsg.LIF`.
    Between resets ``dV_T / dV_{T-1} = 1 - w_leak``, so::

        dL/dx_t = sum_{t'=t..T} dL/dy_t' * s'(V_t' - theta) * (1 - w_leak)^(t' - t)

    * loss on the spike step only (``L = y_T``): ``s'(u_T) (1 - w_leak)^(T - t)`` for every
      surrogate: the surrogate scales the profile, the leak alone shapes it, and the flat
      surrogate at the same leak matches it exactly.
    * loss on every step (``L = sum_t y_t``, what a read-out that integrates the spikes sends
      back): each intermediate output adds its own term, weighted by ``s'(u_t')``. Shaped
      surrogates pass error only through steps where V is near threshold, so the profile depends
      on how V approached threshold; the flat surrogate passes it through every step, giving
      ``(1 - (1 - w_leak)^(T - t + 1)) / w_leak``, which grows with the distance to the spike.

    Two input designs, both with one spike at the last step and none before (so no reset cuts
    the chain): "ramp", a constant current that brings V slowly to threshold (V within a few
    tenths of theta for many steps), and "kick", a weak constant current (V far below
    threshold) with a final step that lifts V just above it. The flat surrogate's profile does
    not depend on the design (a test checks it), so flat references use "kick", which works at
    every leak. :func:`fit_flat_leak` finds the flat leak whose profile shape (unit L2 norm)
    is nearest to a shaped surrogate's.

(c) :func:`train_runs` / :func:`learning_curves_figure`: learning curves on
    :func:`temporal_task`, a synthetic task where only spike timing carries the class, with
    plain ``model.fit`` on DenseLIF -> LeakyReadout: flat at several leaks against shaped
    surrogates at one fixed leak, several seeds.

    Reproducibility (measured on the 2-core development machine, 15 epochs, seed 0, flat at
    0.05 and 0.15 and superspike): each run is seeded (``keras.utils.set_random_seed``) and
    repeats bit for bit on one machine, in one process or two. Another machine is another
    summation order: with 1 instead of 2 TensorFlow threads, or oneDNN off, final test
    accuracies moved by up to 0.004 (seed spread: about 0.015). TensorFlow's op determinism
    (notebook 05 turns it on; it is process-wide, so this module does not) removed the
    thread-count dependence of the flat runs but not of the superspike run.
"""

import math
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import lifsg
from lifsg import reference, surrogates

SHAPED = ("superspike", "sigmoid", "esser")
FLAT_LEAKS = (0.0, 0.05, 0.1, 0.2, 0.4)
W_LEAK = 0.05
STEPS = 40
BETA = 10.0
THRESHOLD = 1.0
KICK_BASE = 0.01
KICK_OVERSHOOT = 0.004
#: (loss, design) of the three error-profile panels
CASES = (("spike", "ramp"), ("all", "ramp"), ("all", "kick"))
CASE_TITLES = {
    ("spike", "ramp"): "loss on the spike step only, $L = y_T$",
    ("spike", "kick"): "loss on the spike step only, $L = y_T$ (kick)",
    ("all", "ramp"): "loss on every step, $L = \\sum_t y_t$\nV ramps slowly to threshold",
    ("all", "kick"): "loss on every step, $L = \\sum_t y_t$\nV jumps to threshold at T",
}
COLORS = {
    "superspike": "#1f77b4",
    "sigmoid": "#ff7f0e",
    "esser": "#2ca02c",
    "atan": "#9467bd",
    "gaussian": "#8c564b",
    "exponential": "#e377c2",
    "boxcar": "#17becf",
    "flat": "black",
}


# ----------------------------------------------------------------------------------- (a)


def surrogate_curves(names=None, beta=BETA, u=None):
    """``{name: derivative(u)}`` (NumPy) for ``names`` (default: all of ``available()``)."""
    names = surrogates.available() if names is None else list(names)
    u = np.linspace(-0.5, 0.5, 1001) if u is None else np.asarray(u, dtype=float)
    out = {}
    for name in names:
        s = surrogates.get(name, beta=beta)
        out[name] = np.asarray(keras.ops.convert_to_numpy(s.derivative(keras.ops.array(u))))
    return out


def surrogates_figure(names=None, beta=BETA, u_max=0.5):
    """F5a: each surrogate's derivative vs ``u = V - theta`` with its peak and width.

    Left: the derivative as used in the backward pass (scales differ: sigmoid peaks at beta/4).
    Right: divided by the stated peak (shape only); ticks at +-width. Returns ``(fig, data)``,
    data one row per surrogate and u: surrogate, beta, u, derivative, peak, width.
    """
    names = surrogates.available() if names is None else list(names)
    u = np.linspace(-u_max, u_max, 801)
    curves = surrogate_curves(names, beta, u)
    fig = Figure(figsize=(11.5, 4.3), layout="constrained")
    ax_raw, ax_norm = fig.subplots(1, 2)
    data = {k: [] for k in ("surrogate", "beta", "u", "derivative", "peak", "width")}
    for name in names:
        s = surrogates.get(name, beta=beta)
        peak, width = float(s.peak), float(s.width)
        color = COLORS.get(name)
        ls = "--" if name == "flat" else "-"
        w_txt = "inf" if math.isinf(width) else f"{width:.3g}"
        label = f"{name}: peak {peak:.3g}, width {w_txt}"
        ax_raw.plot(u, curves[name], ls, color=color, lw=1.5, label=label)
        ax_raw.plot([0], [peak], "o", color=color, ms=4)
        ax_norm.plot(u, curves[name] / peak, ls, color=color, lw=1.5, label=name)
        if math.isfinite(width) and width <= u_max:
            at = float(np.interp(width, u, curves[name] / peak))
            ax_norm.plot([-width, width], [at, at], "o", color=color, ms=4.5, mfc="white")
        data["surrogate"] += [name] * len(u)
        data["beta"] += [None if name == "flat" else beta] * len(u)
        data["u"] += u.tolist()
        data["derivative"] += curves[name].tolist()
        data["peak"] += [peak] * len(u)
        data["width"] += [width] * len(u)
    ax_raw.set_title(f"surrogate derivative as used in the backward pass (beta = {beta:g})")
    ax_raw.set_ylabel("dH/du")
    ax_raw.legend(fontsize=8, loc="upper right")
    ax_norm.set_title("divided by the peak (shape only); open dots at u = +-width")
    ax_norm.set_ylabel("dH/du / peak")
    ax_norm.set_ylim(-0.03, 1.12)
    for ax in (ax_raw, ax_norm):
        ax.set_xlabel("u = V - threshold")
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_xlim(-u_max, u_max)
    ax_raw.set_ylim(bottom=-0.05)
    fig.suptitle("F5a surrogate derivatives (lifsg.surrogates)", fontsize=11)
    return fig, data


# ----------------------------------------------------------------------------------- (b)


def ramp_input(w_leak, steps=STEPS, threshold=THRESHOLD):
    """Constant current ``c`` (steps,) that first brings V to threshold at the last step.

    With ``d = 1 - w_leak``, V_t = c (1 - d^(t+1)) / w_leak rises monotonically; ``c`` puts
    V_{T} above threshold by half its last increment ``c d^(T-1)``, so V_{T-1} is below by the
    other half. Raises ValueError where float32 cannot resolve that increment (large leaks:
    V saturates long before T).
    """
    w = float(w_leak)
    d = 1.0 - w
    reach = (1.0 - d**steps) / w if w > 0 else float(steps)
    c = threshold / (reach - 0.5 * d ** (steps - 1))
    if 0.5 * c * d ** (steps - 1) < 1e-5 * threshold:
        raise ValueError(
            f"ramp design: with w_leak {w:g} over {steps} steps V saturates before the last "
            "step; use a smaller leak, fewer steps or the 'kick' design"
        )
    return np.full(steps, c)


def kick_input(w_leak, steps=STEPS, threshold=THRESHOLD, base=KICK_BASE, overshoot=KICK_OVERSHOOT):
    """Weak constant current ``base`` (V far below threshold), then a last step that lifts V to
    ``threshold + overshoot``. Works for every leak in [0, 1] (needs ``base * steps < 1``)."""
    d = 1.0 - float(w_leak)
    x = np.full(steps, float(base))
    v = 0.0
    for _ in range(steps - 1):
        v = base + d * v
    if v >= threshold:
        raise ValueError(f"kick design: the base current {base} alone reaches threshold")
    x[-1] = threshold + overshoot - d * v
    return x


DESIGNS = {"ramp": ramp_input, "kick": kick_input}


def design_input(design, w_leak, steps=STEPS, threshold=THRESHOLD):
    """Input current (steps,) of a design ("ramp" or "kick") for one leak."""
    if design not in DESIGNS:
        raise ValueError(f"unknown design {design!r}; valid: {', '.join(DESIGNS)}")
    return DESIGNS[design](w_leak, steps, threshold)


def backprop_profiles(currents, w_leaks, surrogate, loss="spike", threshold=THRESHOLD):
    """Error ``dL/dx_t`` through :class:`lifsg.LIF` for several independent units at once.

    currents: (steps, units) input current per unit; w_leaks: (units,) leak per unit;
    surrogate: a name (beta 10) or a Surrogate. loss: "spike" (``L = sum_units y_T``) or "all"
    (``L = sum y``). Every unit must spike at the last step and never before (checked: a
    reset inside the window would cut the chain). Returns (units, steps), float64.
    """
    if loss not in ("spike", "all"):
        raise ValueError(f"unknown loss {loss!r}; valid: 'spike', 'all'")
    x = tf.constant(np.asarray(currents, dtype="float32")[None])
    w = np.atleast_1d(np.asarray(w_leaks, dtype=float))
    layer = lifsg.LIF(
        threshold=threshold,
        w_leak=w.tolist(),
        trainable_leak=False,
        surrogate=surrogates.get(surrogate),
        dtype="float32",
    )
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        total = tf.reduce_sum(y[:, -1]) if loss == "spike" else tf.reduce_sum(y)
    grad = tape.gradient(total, x).numpy()[0].astype(float).T
    spikes = y.numpy()[0]
    bad = np.flatnonzero((spikes[:-1].sum(axis=0) > 0) | (spikes[-1] != 1))
    if len(bad):
        raise ValueError(
            f"design failed for units {bad.tolist()} (leaks {w[bad].tolist()}): each unit must "
            "spike at the last step and only there"
        )
    return grad


def error_profile(surrogate, w_leak=W_LEAK, loss="spike", design="ramp", steps=STEPS, beta=BETA):
    """One unit's error profile ``dL/dx_t`` (steps,) for a surrogate name at a leak."""
    s = surrogates.get(surrogate, beta=beta) if isinstance(surrogate, str) else surrogate
    x = design_input(design, w_leak, steps)[:, None]
    return backprop_profiles(x, [w_leak], s, loss)[0]


def flat_profiles(w_leaks, loss="spike", steps=STEPS):
    """Flat-surrogate profiles (len(w_leaks), steps) on the "kick" design, one batched run."""
    w = np.atleast_1d(np.asarray(w_leaks, dtype=float))
    x = np.stack([kick_input(v, steps) for v in w], axis=-1)
    return backprop_profiles(x, w, "flat", loss)


def flat_profile_formula(w_leak, loss="spike", steps=STEPS):
    """The algebra's flat profile (steps,), index t: ``d^(T-t)`` or ``sum_{k<=T-t} d^k``."""
    d = 1.0 - float(w_leak)
    lag = np.arange(steps)[::-1].astype(float)
    if loss == "spike":
        return d**lag
    return np.array([np.sum(d ** np.arange(k + 1)) for k in lag])


def shape_distance(a, b):
    """L2 distance of two profiles scaled to unit L2 norm (0: same shape; sqrt 2: disjoint)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    na, nb = np.linalg.norm(a, axis=-1, keepdims=True), np.linalg.norm(b, axis=-1, keepdims=True)
    if np.any(na == 0) or np.any(nb == 0):
        return np.full(np.broadcast_shapes(a.shape[:-1], b.shape[:-1]), np.nan)
    return np.linalg.norm(a / na - b / nb, axis=-1)


LEAK_GRID = np.round(np.linspace(0.0, 1.0, 1001), 3)


@dataclass
class LeakFit:
    """The flat leak whose profile shape is nearest to a target profile."""

    w_leak: float  # fitted flat leak
    distance: float  # shape_distance at the fit (0 = identical shape)
    distance_same_leak: float  # shape_distance of flat at the target's own leak
    amplitude: float  # target error at t = T divided by flat's there (flat: 1)


def fit_flat_leak(profile, loss="spike", steps=None, own_leak=W_LEAK, grid=LEAK_GRID):
    """Fit the flat leak to ``profile`` (steps,) by least shape distance over ``grid``."""
    profile = np.asarray(profile, dtype=float)
    steps = len(profile) if steps is None else steps
    grid = np.asarray(grid, dtype=float)
    flats = flat_profiles(grid, loss, steps)
    dist = shape_distance(profile[None], flats)
    if np.all(np.isnan(dist)):
        return LeakFit(float("nan"), float("nan"), float("nan"), 0.0)
    i = int(np.nanargmin(dist))
    same = shape_distance(profile, flat_profiles([own_leak], loss, steps)[0])
    return LeakFit(
        w_leak=float(grid[i]),
        distance=float(dist[i]),
        distance_same_leak=float(same),
        amplitude=float(profile[-1] / flats[i][-1]),
    )


def error_profile_experiment(
    shaped=SHAPED, beta=BETA, w_leak=W_LEAK, flat_leaks=FLAT_LEAKS, steps=STEPS, cases=CASES
):
    """Profiles and fitted flat leaks for every case ``(loss, design)``.

    Returns ``{case: {"flat": {leak: profile}, "shaped": {name: profile}, "fits": {name:
    LeakFit}, "v": V trajectory of the design at w_leak (NumPy reference), "gate": {name:
    s'(V_t - theta)}}}`` with profiles indexed by time step t (the spike is at t = steps - 1).
    """
    out = {}
    for loss, design in cases:
        flats = flat_profiles(flat_leaks, loss, steps)
        x = design_input(design, w_leak, steps)
        v = reference.lif_forward(x[None, :, None], w_leak, THRESHOLD).v[0, :, 0]
        shaped_profiles, fits, gates = {}, {}, {}
        for name in shaped:
            s = surrogates.get(name, beta=beta)
            shaped_profiles[name] = error_profile(s, w_leak, loss, design, steps)
            fits[name] = fit_flat_leak(shaped_profiles[name], loss, steps, own_leak=w_leak)
            gates[name] = np.asarray(keras.ops.convert_to_numpy(s.derivative(v - THRESHOLD)))
        out[(loss, design)] = {
            "flat": dict(zip([float(w) for w in flat_leaks], flats, strict=True)),
            "shaped": shaped_profiles,
            "fits": fits,
            "v": v,
            "gate": gates,
        }
    return out


def fits_summary(experiment):
    """JSON-ready ``{"loss=..,design=..": {name: {fitted_w_leak, distance, ...}}}``."""
    out = {}
    for (loss, design), res in experiment.items():
        out[f"loss={loss},design={design}"] = {
            name: {
                "fitted_flat_w_leak": fit.w_leak,
                "shape_distance_at_fit": fit.distance,
                "shape_distance_flat_same_leak": fit.distance_same_leak,
                "amplitude_vs_flat_at_T": fit.amplitude,
            }
            for name, fit in res["fits"].items()
        }
    return out


def error_profile_figure(
    shaped=SHAPED,
    beta=BETA,
    w_leak=W_LEAK,
    flat_leaks=FLAT_LEAKS,
    steps=STEPS,
    cases=CASES,
    experiment=None,
):
    """F5b: error profiles of flat (several leaks) and shaped surrogates (one leak).

    Top row: the design's membrane potential at ``w_leak`` (threshold dashed) and each shaped
    surrogate's gate ``s'(V_t - theta)`` / peak. Bottom row: ``dL/dx_t`` against the distance to
    the spike ``T - t``, each profile divided by its own maximum (the legend gives the shaped
    surrogates' amplitude at T relative to flat, their fitted flat leak and the shape distance
    at the fit); dashed: the fitted flat profile. experiment: the result of
    :func:`error_profile_experiment` with the same arguments, if already computed. Returns
    ``(fig, data)``, one row per case, curve and step: loss, design, curve, surrogate, w_leak,
    beta, step, lag, error, V.
    """
    shaped = [str(s) for s in shaped]
    flat_leaks = [float(w) for w in flat_leaks]
    exp = experiment or error_profile_experiment(shaped, beta, w_leak, flat_leaks, steps, cases)
    fig = Figure(figsize=(4.3 * len(cases) + 0.6, 7.6), layout="constrained")
    grid = fig.add_gridspec(2, len(cases), height_ratios=(1.0, 2.3))
    lag = np.arange(steps)[::-1]
    t = np.arange(steps)
    greys = (
        [str(g) for g in np.linspace(0.75, 0.0, len(flat_leaks))]
        if len(flat_leaks) > 1
        else ["0.3"]
    )
    data = {k: [] for k in ("loss", "design", "curve", "surrogate", "w_leak", "beta")}
    data.update(step=[], lag=[], error=[], V=[])

    def add(loss, design, curve, name, leak, b, values, v):
        n = len(values)
        data["loss"] += [loss] * n
        data["design"] += [design] * n
        data["curve"] += [curve] * n
        data["surrogate"] += [name] * n
        data["w_leak"] += [leak] * n
        data["beta"] += [b] * n
        data["step"] += t.tolist()
        data["lag"] += lag.tolist()
        data["error"] += np.asarray(values, float).tolist()
        data["V"] += np.asarray(v, float).tolist()

    for c, case in enumerate(cases):
        loss, design = case
        res = exp[case]
        ax_v = fig.add_subplot(grid[0, c])
        ax = fig.add_subplot(grid[1, c])
        ax_v.plot(lag, res["v"], color="#444444", lw=1.6, label="V (threshold dashed)")
        ax_v.axhline(THRESHOLD, color="#c0392b", ls="--", lw=0.9)
        for name in shaped:
            peak = surrogates.get(name, beta=beta).peak
            gate = res["gate"][name] / peak
            ax_v.plot(lag, gate, color=COLORS.get(name), lw=1.0, alpha=0.8, label=f"{name} gate")
        ax_v.set_title(f"{CASE_TITLES[case]}\n$w_{{leak}}$ = {w_leak:g}", fontsize=9.5)
        ax_v.set_ylim(-0.05, 1.25)
        ax_v.set_ylabel("V;  s'(V - theta)/peak" if c == 0 else "")
        ax_v.invert_xaxis()
        if c == 0:
            ax_v.legend(fontsize=6.8, loc="upper left")
        flat_handles = []
        for leak, g, prof in zip(flat_leaks, greys, res["flat"].values(), strict=True):
            top = prof.max() if prof.max() > 0 else 1.0
            label = f"flat, $w_{{leak}}$ = {leak:g}"
            flat_handles += ax.plot(lag, prof / top, color=g, lw=1.2, label=label)
            add(loss, design, "flat", "flat", leak, None, prof, res["v"])
        shaped_handles = []
        widths = np.linspace(5.0, 1.8, max(len(shaped), 1))  # overlapping curves stay visible
        for name, width in zip(shaped, widths, strict=True):
            prof, fit = res["shaped"][name], res["fits"][name]
            top = prof.max() if prof.max() > 0 else 1.0
            color = COLORS.get(name)
            label = (
                f"{name} (x{fit.amplitude:.2g} at T): flat fit "
                f"$w_{{leak}}$ = {fit.w_leak:.3g}, d = {fit.distance:.2f}"
            )
            line = ax.plot(lag, prof / top, color=color, lw=width, alpha=0.8, label=label)
            shaped_handles += line
            add(loss, design, "shaped", name, w_leak, beta, prof, res["v"])
            if np.isfinite(fit.w_leak):
                fitted = flat_profiles([fit.w_leak], loss, steps)[0]
                ax.plot(lag, fitted / fitted.max(), "--", color=color, lw=1.2)
                add(loss, design, "flat fit", name, fit.w_leak, None, fitted, res["v"])
        ax.set_xlabel("steps before the spike, T - t")
        ax.set_ylim(-0.03, 1.05 + 0.075 * len(shaped))
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.invert_xaxis()
        if c == 0:
            ax.set_ylabel("error dL/dx_t (each curve / its max)")
        ax.legend(handles=shaped_handles, fontsize=7, loc="upper center", borderaxespad=0.2)
    dashed = Line2D([], [], color="gray", ls="--", lw=1.2, label="best-fitting flat leak")
    fig.legend(
        handles=[*flat_handles, dashed],
        loc="outside lower center",
        ncol=len(flat_handles) + 1,
        fontsize=8,
    )
    fig.suptitle(
        f"F5b error sent back from a spike at T = {steps - 1} (real backprop through lifsg.LIF);"
        " dashed: best-fitting flat leak, d = shape distance (0 = identical)",
        fontsize=10.5,
    )
    return fig, data


def chosen_profile_figure(surrogate="superspike", beta=BETA, flat_leak=0.1, w_leak=W_LEAK):
    """:func:`error_profile_figure` for one shaped surrogate and one flat leak (for sliders)."""
    return error_profile_figure((surrogate,), beta, w_leak, (flat_leak,))


# ----------------------------------------------------------------------------------- (c)


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


@dataclass(frozen=True)
class RunConfig:
    """One network configuration of the training comparison."""

    surrogate: str
    w_leak: float
    beta: float = BETA

    @property
    def label(self):
        if self.surrogate == "flat":
            return f"flat, w_leak {self.w_leak:g}"
        return f"{self.surrogate} (beta {self.beta:g}), w_leak {self.w_leak:g}"


def default_configs(flat_leaks=(0.0, 0.05, 0.15, 0.4), shaped=SHAPED, w_leak=W_LEAK, beta=BETA):
    """Flat at each of ``flat_leaks`` plus each shaped surrogate at ``w_leak``."""
    flats = [RunConfig("flat", float(w)) for w in flat_leaks]
    return flats + [RunConfig(name, float(w_leak), float(beta)) for name in shaped]


def build_model(config, task=None, hidden=48, learning_rate=3e-3, seed=0):
    """DenseLIF(hidden, fixed leak) -> LeakyReadout(classes, leak 0, last step, softmax).

    The hidden leak is fixed (not trained) so the leak is the controlled variable; the read-out
    is a perfect integrator of the hidden spikes. Adam, sparse categorical cross-entropy.
    """
    task = task or TaskConfig()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((task.steps, task.channels))
    hidden_spikes = lifsg.DenseLIF(
        hidden,
        w_leak=config.w_leak,
        trainable_leak=False,
        surrogate=surrogates.get(config.surrogate, beta=config.beta),
        name="hidden",
    )(inputs)
    outputs = lifsg.LeakyReadout(
        task.classes, w_leak=0.0, trainable_leak=False, activation="softmax", name="readout"
    )(hidden_spikes)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@dataclass
class TrainSettings:
    """Scale of the training comparison (QUICK mode shrinks it)."""

    n_train: int = 1024
    n_val: int = 512
    n_test: int = 1024
    epochs: int = 15
    batch_size: int = 128
    hidden: int = 48
    learning_rate: float = 3e-3
    seeds: tuple = (0, 1, 2)


def train_runs(configs, settings=None, task=None, progress=None):
    """Train every config with every seed (plain ``model.fit``); return a list of run dicts.

    The data are the same for all runs (train, validation and test sets from fixed seeds); the
    seed sets the initial weights and the shuffling. Each run: label, surrogate, beta, w_leak,
    seed, history (per epoch: loss, accuracy, val_loss, val_accuracy), test_loss,
    test_accuracy, seconds. ``progress``: optional callable given each finished run.
    """
    settings = settings or TrainSettings()
    task = task or TaskConfig()
    x_tr, y_tr = temporal_task(settings.n_train, task, seed=1)
    x_va, y_va = temporal_task(settings.n_val, task, seed=2)
    x_te, y_te = temporal_task(settings.n_test, task, seed=3)
    runs = []
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # one model per run: TF's retracing notice is expected here
    try:
        _train_all(configs, settings, task, (x_tr, y_tr, x_va, y_va, x_te, y_te), runs, progress)
    finally:
        logger.setLevel(level)
    return runs


def _train_all(configs, settings, task, arrays, runs, progress):
    x_tr, y_tr, x_va, y_va, x_te, y_te = arrays
    for config in configs:
        for seed in settings.seeds:
            start = time.perf_counter()
            model = build_model(config, task, settings.hidden, settings.learning_rate, seed)
            hist = model.fit(
                x_tr,
                y_tr,
                batch_size=settings.batch_size,
                epochs=settings.epochs,
                validation_data=(x_va, y_va),
                shuffle=True,
                verbose=0,
            )
            test_loss, test_acc = model.evaluate(
                x_te, y_te, batch_size=settings.batch_size, verbose=0
            )
            run = {
                "label": config.label,
                "surrogate": config.surrogate,
                "beta": None if config.surrogate == "flat" else config.beta,
                "w_leak": config.w_leak,
                "seed": int(seed),
                "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
                "test_loss": float(test_loss),
                "test_accuracy": float(test_acc),
                "seconds": time.perf_counter() - start,
            }
            runs.append(run)
            keras.backend.clear_session()
            if progress is not None:
                progress(run)


def _by_label(runs):
    groups = {}
    for run in runs:
        groups.setdefault(run["label"], []).append(run)
    return groups


def summarize_runs(runs):
    """Per configuration: seeds, mean/std of the final losses and accuracies, and the curves'
    mean validation loss over epochs (a summary of the learning dynamics)."""
    out = {}
    for label, group in _by_label(runs).items():
        final = {
            "train_loss": [r["history"]["loss"][-1] for r in group],
            "val_loss": [r["history"]["val_loss"][-1] for r in group],
            "val_accuracy": [r["history"]["val_accuracy"][-1] for r in group],
            "test_accuracy": [r["test_accuracy"] for r in group],
            "test_loss": [r["test_loss"] for r in group],
            "mean_val_loss_over_epochs": [float(np.mean(r["history"]["val_loss"])) for r in group],
        }
        entry = {
            "surrogate": group[0]["surrogate"],
            "beta": group[0]["beta"],
            "w_leak": group[0]["w_leak"],
            "seeds": [r["seed"] for r in group],
        }
        for key, values in final.items():
            entry[key] = {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
                "per_seed": [float(v) for v in values],
            }
        out[label] = entry
    return out


def tuned_flat(summary):
    """Label of the flat configuration with the lowest mean final validation loss (the leak
    tuned on the validation set; test numbers stay untouched by the choice)."""
    flats = {k: v for k, v in summary.items() if v["surrogate"] == "flat"}
    if not flats:
        raise ValueError("no flat configuration in the summary")
    return min(flats, key=lambda k: flats[k]["val_loss"]["mean"])


def compare(summary, reference_label):
    """Each configuration against ``reference_label``: differences of the mean test accuracy
    and of the mean validation loss over epochs, with the seed spread (pooled std) to read
    them against. JSON-ready dict label -> numbers."""
    ref = summary[reference_label]
    out = {}
    for label, entry in summary.items():
        if label == reference_label:
            continue
        out[label] = {
            "test_accuracy_difference": entry["test_accuracy"]["mean"]
            - ref["test_accuracy"]["mean"],
            "test_accuracy_pooled_std": float(
                np.sqrt((entry["test_accuracy"]["std"] ** 2 + ref["test_accuracy"]["std"] ** 2) / 2)
            ),
            "curve_val_loss_difference": entry["mean_val_loss_over_epochs"]["mean"]
            - ref["mean_val_loss_over_epochs"]["mean"],
            "curve_val_loss_pooled_std": float(
                np.sqrt(
                    (
                        entry["mean_val_loss_over_epochs"]["std"] ** 2
                        + ref["mean_val_loss_over_epochs"]["std"] ** 2
                    )
                    / 2
                )
            ),
        }
    return out


def learning_curves_figure(runs, highlight=None):
    """F5c: validation loss and accuracy per epoch (mean over seeds, band min..max) and the
    final test accuracy per configuration (dots: seeds).

    highlight: label of the tuned flat configuration (drawn thick). Returns ``(fig, data)``,
    one row per run and epoch: label, surrogate, beta, w_leak, seed, epoch, loss, accuracy,
    val_loss, val_accuracy, test_accuracy.
    """
    groups = _by_label(runs)
    if not groups:
        raise ValueError("no runs to draw")
    flat_labels = [k for k, g in groups.items() if g[0]["surrogate"] == "flat"]
    blues = dict(
        zip(flat_labels, [str(g) for g in np.linspace(0.7, 0.0, len(flat_labels))], strict=True)
    )
    fig = Figure(figsize=(13.5, 5.2), layout="constrained")
    ax_loss, ax_acc, ax_test = fig.subplots(1, 3, width_ratios=(1.2, 1.2, 1.0))
    data = {k: [] for k in ("label", "surrogate", "beta", "w_leak", "seed", "epoch")}
    data.update(loss=[], accuracy=[], val_loss=[], val_accuracy=[], test_accuracy=[])
    for i, (label, group) in enumerate(groups.items()):
        sur = group[0]["surrogate"]
        color = blues[label] if sur == "flat" else COLORS.get(sur)
        lw = 3.0 if label == highlight else 1.5
        name = label + ("  [tuned flat]" if label == highlight else "")
        for ax, key in ((ax_loss, "val_loss"), (ax_acc, "val_accuracy")):
            curves = np.array([r["history"][key] for r in group])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.plot(epochs, curves.mean(axis=0), color=color, lw=lw, label=name)
            if len(group) > 1:
                ax.fill_between(epochs, curves.min(0), curves.max(0), color=color, alpha=0.15)
        acc = [r["test_accuracy"] for r in group]
        ax_test.plot(acc, [i] * len(acc), "o", color=color, ms=5, alpha=0.8)
        ax_test.plot([np.mean(acc)], [i], "|", color=color, ms=16, mew=2.5)
        for r in group:
            h = r["history"]
            n = len(h["loss"])
            data["label"] += [label] * n
            data["surrogate"] += [sur] * n
            data["beta"] += [r["beta"]] * n
            data["w_leak"] += [r["w_leak"]] * n
            data["seed"] += [r["seed"]] * n
            data["epoch"] += list(range(1, n + 1))
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                data[key] += h[key]
            data["test_accuracy"] += [r["test_accuracy"]] * n
    ax_loss.set_ylabel("validation loss (cross-entropy)")
    ax_acc.set_ylabel("validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8)
    ax_test.set_yticks(range(len(groups)))
    ax_test.set_yticklabels(list(groups), fontsize=8)
    ax_test.invert_yaxis()
    ax_test.set_xlabel("test accuracy (dots: seeds, bar: mean)")
    seeds = len(next(iter(groups.values())))
    fig.suptitle(
        f"F5c learning curves on the synthetic spike-timing task ({seeds} seed(s) each; "
        "band: min..max over seeds)",
        fontsize=11,
    )
    return fig, data


def findings(fits, summary, tuned_label, fixed_flat_label=None):
    """A plain-text statement of what the numbers say (computed, not written by hand)."""
    lines = []
    spike = fits.get("loss=spike,design=ramp", {})
    for name, f in spike.items():
        lines.append(
            f"(b) loss on the spike step: {name} profile = flat profile at w_leak "
            f"{f['fitted_flat_w_leak']:.3g} (shape distance {f['shape_distance_at_fit']:.1e}), "
            f"scaled by {f['amplitude_vs_flat_at_T']:.3g}."
        )
    for key in ("loss=all,design=ramp", "loss=all,design=kick"):
        for name, f in fits.get(key, {}).items():
            lines.append(
                f"(b) {key}: {name} best flat w_leak {f['fitted_flat_w_leak']:.3g}, shape "
                f"distance {f['shape_distance_at_fit']:.2f} (flat at the same leak: "
                f"{f['shape_distance_flat_same_leak']:.2f})."
            )
    ref = summary[tuned_label]
    lines.append(
        f"(c) tuned flat = {tuned_label}: test accuracy {ref['test_accuracy']['mean']:.3f} "
        f"+- {ref['test_accuracy']['std']:.3f}, mean val loss over epochs "
        f"{ref['mean_val_loss_over_epochs']['mean']:.3f}."
    )
    for label, c in compare(summary, tuned_label).items():
        if summary[label]["surrogate"] == "flat" and label != fixed_flat_label:
            continue
        lines.append(
            f"(c) {label}: test accuracy {summary[label]['test_accuracy']['mean']:.3f} "
            f"({c['test_accuracy_difference']:+.3f} vs tuned flat, seed spread "
            f"{c['test_accuracy_pooled_std']:.3f}); mean val loss over epochs "
            f"{c['curve_val_loss_difference']:+.3f} (spread {c['curve_val_loss_pooled_std']:.3f})."
        )
    return "\n".join(lines)
