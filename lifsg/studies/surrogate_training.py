"""Paper item F5, part (c): learning curves (:func:`train_runs`) on
:func:`lifsg.data.synthetic.temporal_task`, a task where only spike timing carries the class,
trained by the one harness
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
thread-count dependence of the flat runs but not of the superspike run. Across two sessions'
machines (same code and packages; the paper-mode run of 2026-12-06 against the committed
results) 11 of the 21 runs ended at the same test accuracy, the others moved by up to 0.011 in
test accuracy (esser, seed 1); the old and the new code gave identical numbers on one machine.

The error profiles of parts (a) and (b) are :mod:`lifsg.studies.surrogate_equivalence`; the
drawings :mod:`lifsg.figures.surrogate_equivalence`.
"""

import shutil
import tempfile
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from lifsg.data.synthetic import TaskConfig, temporal_task

from .config import RunConfig
from .surrogate_equivalence import BETA, SHAPED, W_LEAK
from .training import train


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
