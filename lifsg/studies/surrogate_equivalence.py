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

(c) :func:`train_runs`: learning curves on :func:`lifsg.data.synthetic.temporal_task`, a task
    where only spike timing carries the class, trained by the one harness
    (:func:`lifsg.studies.training.train`) on DenseLIF -> LeakyReadout: flat at several leaks
    against shaped surrogates at one fixed leak, several seeds (:func:`default_configs`). Each
    run's data sizes are its config's (:func:`task_data`), so QUICK mode scales the runs with
    :func:`lifsg.studies.config.quick_config`, as notebook 06 does for MNIST.

    Reproducibility (measured on the 2-core development machine, 15 epochs, seed 0, flat at
    0.05 and 0.15 and superspike): each run is seeded (``keras.utils.set_random_seed``) and
    repeats bit for bit on one machine, in one process or two. Another machine is another
    summation order: with 1 instead of 2 TensorFlow threads, or oneDNN off, final test
    accuracies moved by up to 0.004 (seed spread: about 0.015). TensorFlow's op determinism
    (notebook 05 turns it on; it is process-wide, so this module does not) removed the
    thread-count dependence of the flat runs but not of the superspike run.
"""

import shutil
import tempfile
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

import lifsg
from lifsg import reference, surrogates
from lifsg.data.synthetic import TaskConfig, temporal_task

from .config import RunConfig
from .training import train

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


# ----------------------------------------------------------------------------------- (c)


@dataclass
class TrainSettings:
    """Scale of the training comparison; defaults: paper mode (notebook 05)."""

    n_train: int = 1024  # training samples, validation excluded
    n_val: int = 512  # validation samples
    n_test: int = 1024  # test samples
    epochs: int = 15
    batch_size: int = 128
    hidden: int = 48
    learning_rate: float = 3e-3
    seeds: tuple = (0, 1, 2)


def label(config):
    """The configuration a run belongs to, e.g. "flat, w_leak 0.05" (seeds share it)."""
    if config.surrogate == "flat":
        return f"flat, w_leak {config.w_leak:g}"
    return f"{config.surrogate} (beta {config.beta:g}), w_leak {config.w_leak:g}"


def run_config(surrogate, w_leak, beta=BETA, seed=0, settings=None, task=None):
    """The :class:`~lifsg.studies.config.RunConfig` of one F5 run.

    DenseLIF(hidden, fixed leak) -> LeakyReadout(classes, fixed leak 0, last step, softmax) on
    the task's spike trains; the hidden leak is fixed (not trained) so the leak is the
    controlled variable, and the read-out is a perfect integrator of the hidden spikes. Adam,
    cross-entropy, no learning-rate schedule; ``n_train + n_val`` training samples (train_size),
    the last ``n_val`` of them the validation set, and ``n_test`` test samples (test_size); the
    model is seeded once (not per epoch) and evaluated in batches of ``batch_size``.
    """
    settings = settings or TrainSettings()
    task = task or TaskConfig()
    w_leak = float(w_leak)
    return RunConfig(
        name=f"f5_{surrogate}_leak{w_leak:g}_s{seed}",
        architecture="dense",
        encoding="spikes",
        surrogate=surrogate,
        beta=float(beta),
        w_leak=w_leak,
        trainable_leak=False,
        readout_leak=0.0,
        seed=int(seed),
        steps=task.steps,
        input_shape=(task.steps, task.channels),
        units=(settings.hidden,),
        classes=task.classes,
        loss="crossentropy",
        epochs=settings.epochs,
        batch_size=settings.batch_size,
        eval_batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        lr_factor=1.0,
        train_size=settings.n_train + settings.n_val,
        test_size=settings.n_test,
        validation=settings.n_val,
        epoch_seeds=False,
    )


def settings_of(configs):
    """The :class:`TrainSettings` of ``configs``: the scale they run at (as :func:`run_config`
    or :func:`~lifsg.studies.config.quick_config` set it), seeds in order of first appearance.
    ValueError if the configs differ in scale."""
    seeds = tuple(dict.fromkeys(c.seed for c in configs))
    found = [
        TrainSettings(
            n_train=c.train_size - c.validation,
            n_val=c.validation,
            n_test=c.test_size,
            epochs=c.epochs,
            batch_size=c.batch_size,
            hidden=c.units[0],
            learning_rate=c.learning_rate,
            seeds=seeds,
        )
        for c in configs
    ]
    other = next((s for s in found if s != found[0]), None)
    if other is not None:
        raise ValueError(f"the configs differ in scale: {found[0]} and {other}")
    return found[0]


def default_configs(
    flat_leaks=(0.0, 0.05, 0.15, 0.4), shaped=SHAPED, w_leak=W_LEAK, beta=BETA, settings=None
):
    """Flat at each of ``flat_leaks`` plus each shaped surrogate at ``w_leak``, every seed of
    ``settings`` (seeds innermost)."""
    settings = settings or TrainSettings()
    pairs = [("flat", w) for w in flat_leaks] + [(name, w_leak) for name in shaped]
    return [run_config(sur, w, beta, seed, settings) for sur, w in pairs for seed in settings.seeds]


def task_data(config, task=None):
    """The data of a run: ``((x_train + x_val, y_train + y_val), (x_test, y_test))`` from fixed
    seeds (1, 2, 3): ``config.train_size`` training samples, the last ``config.validation`` of
    them the validation set, and ``config.test_size`` test samples."""
    task = task or TaskConfig()
    x_tr, y_tr = temporal_task(config.train_size - config.validation, task, seed=1)
    x_va, y_va = temporal_task(config.validation, task, seed=2)
    x_te, y_te = temporal_task(config.test_size, task, seed=3)
    return (np.concatenate([x_tr, x_va]), np.concatenate([y_tr, y_va])), (x_te, y_te)


def train_runs(configs, task=None, progress=None):
    """Train every config (:func:`lifsg.studies.training.train`); return a list of run dicts.

    Runs of the same data sizes get the same data (:func:`task_data`); the seed sets the initial
    weights and the shuffling. Each run: label, surrogate, beta, w_leak, seed, history (per epoch:
    loss, accuracy, val_loss, val_accuracy), test_loss, test_accuracy, seconds. ``progress``:
    optional callable given each finished run.
    """
    datasets = {}
    runs = []
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # one model per run: TF's retracing notice is expected here
    folder = tempfile.mkdtemp(prefix="lifsg-f5-")  # checkpoints, dropped afterwards
    try:
        for config in configs:
            sizes = (config.train_size, config.validation, config.test_size)
            if sizes not in datasets:
                datasets[sizes] = task_data(config, task)
            start = time.perf_counter()
            result = train(config, datasets[sizes], f"{folder}/{config.name}", verbose=0)
            history = result["history"]
            run = {
                "label": label(config),
                "surrogate": config.surrogate,
                "beta": None if config.surrogate == "flat" else config.beta,
                "w_leak": config.w_leak,
                "seed": config.seed,
                "history": {
                    key: [row[key] for row in history]
                    for key in ("loss", "accuracy", "val_loss", "val_accuracy")
                },
                "test_loss": history[-1]["test_loss"],
                "test_accuracy": history[-1]["test_accuracy"],
                "seconds": time.perf_counter() - start,
            }
            runs.append(run)
            keras.backend.clear_session()
            if progress is not None:
                progress(run)
    finally:
        logger.setLevel(level)
        shutil.rmtree(folder, ignore_errors=True)
    return runs


def by_label(runs):
    """``{label: [run, ...]}``: the runs grouped by their ``"label"``, in order."""
    groups = {}
    for run in runs:
        groups.setdefault(run["label"], []).append(run)
    return groups


def summarize_runs(runs):
    """Per configuration: seeds, mean/std of the final losses and accuracies, and the curves'
    mean validation loss over epochs (a summary of the learning dynamics)."""
    out = {}
    for label, group in by_label(runs).items():
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
