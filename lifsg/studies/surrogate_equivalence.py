"""Paper item F5: does a constant surrogate plus a tuned leak act like a shaped surrogate?

The paper's exact setup is unknown (its full text is not available to us); this module builds
the comparison from the gradient algebra of docs/model.md section 4, with the real layers. The
drawings are in :mod:`lifsg.figures.surrogate_equivalence`.

(b) The error a spike at the last step T sends back to the input current at each step t <= T
    (:func:`error_profile_experiment`), taken with ``tf.GradientTape`` through
    :class:`lifsg.LIF`. Between resets ``dV_T / dV_{T-1} = 1 - w_leak``, so::

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

(c) The learning curves of both, trained on a task where only spike timing carries the class:
    :mod:`lifsg.studies.surrogate_training`.
"""

from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

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
