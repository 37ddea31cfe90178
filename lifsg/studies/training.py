"""The one training harness: :func:`train` fits a :class:`~lifsg.studies.config.RunConfig`'s
model with the paper's schedule (Adam, learning rate x ``lr_factor`` after ``lr_patience``
epochs without improvement), saves a checkpoint (model with optimizer state, history, epoch,
scheduler state) after every epoch in ``run_dir`` and, when started again after an
interruption, continues from the last completed epoch. When the run is complete it writes
``<results_dir>/<name>.json``, ``.keras`` and ``.timing.json`` (:mod:`lifsg.studies.results`).

MNIST, Fashion-MNIST, F5's spike-timing task and Oxford Flowers all train through it.
"""

import contextlib
import math
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from .checkpoints import CHECKPOINT, latest_checkpoint, read_state, save_checkpoint
from .models import build_model, compile_model
from .results import config_key, evaluate, load, strip_optimizer, versions, write_results


def one_hot(labels, classes):
    """Integer labels (N,) as float32 one-hot rows (N, classes)."""
    return np.eye(classes, dtype="float32")[np.asarray(labels, dtype="int64")]


def prepare_images(images):
    """uint8 images (0..255) -> float32 in [0, 1]; float input is checked and passed on."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images.astype("float32") / 255.0
    images = images.astype("float32")
    if images.size and (images.min() < 0 or images.max() > 1):
        raise ValueError("float images must already be scaled to [0, 1]")
    return images


class Plateau:
    """Keras' ReduceLROnPlateau rule (mode min, no cooldown) with a state that can be saved.

    After ``patience`` epochs in a row without the monitored value falling below the best
    seen, the learning rate is multiplied by ``factor`` (not below ``min_lr``).
    """

    def __init__(self, patience, factor, min_lr=0.0, min_delta=1e-4, best=math.inf, wait=0):
        self.patience, self.factor = patience, factor
        self.min_lr, self.min_delta = min_lr, min_delta
        self.best, self.wait = best, wait

    def update(self, value, lr):
        """Return the learning rate to use next, given this epoch's monitored ``value``."""
        if value < self.best - self.min_delta:
            self.best, self.wait = value, 0
            return lr
        self.wait += 1
        if self.wait >= self.patience:
            self.wait = 0
            return max(lr * self.factor, self.min_lr)
        return lr

    def state(self):
        """What a checkpoint stores to resume the rule: ``{"best": ..., "wait": ...}``."""
        return {"best": self.best, "wait": self.wait}


def _set_lr(model, lr):
    model.optimizer.learning_rate.assign(lr)


def _get_lr(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _resume_or_build(config, run_dir, verbose):
    """(model, state) from the newest checkpoint in ``run_dir``, or a fresh compiled model."""
    folder = latest_checkpoint(run_dir)
    if folder is None:
        state = {
            "config": config.to_dict(),
            "epoch": 0,
            "history": [],
            "plateau": {"best": math.inf, "wait": 0},
            "complete": False,
        }
        return compile_model(build_model(config), config), state
    state = read_state(folder)
    resumable = ("epochs", "note")  # may change on resume
    if config_key(state["config"], resumable) != config_key(config, resumable):
        raise ValueError(
            f"{run_dir} holds a checkpoint of a different config; remove it or use another run_dir"
        )
    model = load(folder / CHECKPOINT)
    state["config"] = config.to_dict()  # epochs may be extended on resume
    if verbose:
        print(f"[{config.name}] resuming after epoch {state['epoch']} from {folder}", flush=True)
    return model, state


def _split(config, data):
    """Scaled train / validation / test arrays and one-hot targets of ``data``."""
    (x_train, y_train), (x_test, y_test) = data
    x_train, x_test = prepare_images(x_train), prepare_images(x_test)
    if config.train_size is not None:
        x_train, y_train = x_train[: config.train_size], y_train[: config.train_size]
    if config.test_size is not None:
        x_test, y_test = x_test[: config.test_size], y_test[: config.test_size]
    val = None
    if config.validation:
        if config.validation >= len(x_train):
            raise ValueError(f"validation {config.validation} >= training images {len(x_train)}")
        x_val, y_val = x_train[-config.validation :], y_train[-config.validation :]
        x_train, y_train = x_train[: -config.validation], y_train[: -config.validation]
        val = (x_val, one_hot(y_val, config.classes))
    train = (x_train, one_hot(y_train, config.classes))
    return train, val, (x_test, y_test)


def progress_line(config, row, seconds):
    """One log line per epoch: accuracies, learning rate, epoch time and the run's ETA."""
    left = (config.epochs - row["epoch"]) * seconds
    parts = [f"[{config.name}] epoch {row['epoch']}/{config.epochs}", f"loss {row['loss']:.4f}"]
    parts.append(f"acc {row['accuracy']:.4f}")
    for key in ("val_accuracy", "test_accuracy"):
        if key in row:
            parts.append(f"{key.replace('_accuracy', '')} acc {row[key]:.4f}")
    parts += [f"lr {row['lr']:g}", f"{seconds:.0f} s/epoch", f"ETA {left / 60:.0f} min"]
    return ", ".join(parts)


def train(
    config,
    data,
    run_dir,
    results_dir=None,
    verbose=1,
    max_epochs=None,
    distribution=None,
):
    """Train ``config`` on ``data``, checkpointing every epoch in ``run_dir``; resume if found.

    data: ``((x_train, y_train), (x_test, y_test))`` with images uint8 or float in [0, 1] (or
        spike trains for the "spikes" encoding) and integer labels. The learning-rate rule
        watches the validation loss (or the training loss without validation images); the test
        set never steers training: it is evaluated after each epoch only if
        ``config.eval_test`` (learning curves) and once at the end.
    run_dir: folder of this run's checkpoints (:func:`save_checkpoint`).
    results_dir: where to write ``<name>.json``, ``<name>.keras`` and ``<name>.timing.json``
        (wall-clock seconds, machine-dependent) when the run completes (None: nowhere).
    verbose: 0 silent, 1 Keras progress bars and a line per epoch, 2 only the lines.
    max_epochs: stop after this many epochs in this call (a later call continues).
    distribution: None (this process's default device), "data-parallel" (JAX), "mirrored"
        (TensorFlow) or a :class:`lifsg.studies.distribute.Distribution`: data-parallel
        training with ``config.batch_size`` the global batch and the learning rate unchanged.
        Each epoch is then a permutation drawn from (seed, epoch) cut into full global batches
        (the same for any number of devices and processes); only the chief process writes
        ``run_dir`` and ``results_dir``, which every process must see (shared storage) to
        resume. With "data-parallel" each process evaluates all images on one of its devices.

    Returns the results dict (also written as JSON when complete) with the model under "model".
    """
    from .distribute import distribution_scope

    with distribution_scope(distribution) as dist:
        return _train(config, data, run_dir, results_dir, verbose, max_epochs, dist)


@contextlib.contextmanager
def _evaluation(model, config, dist):
    """The model to evaluate: ``model`` (MirroredStrategy splits any batch), or for JAX a
    compiled copy on one device of this process (every process evaluates all images)."""
    if dist is None or dist.kind == "mirrored":
        yield model
        return
    with dist.local():
        yield compile_model(strip_optimizer(model), config)


def _train(config, data, run_dir, results_dir, verbose, max_epochs, dist):
    chief = dist is None or dist.is_chief
    verbose = verbose if chief else 0
    (x_train, t_train), val, (x_test, y_test) = _split(config, data)
    t_test = one_hot(y_test, config.classes)
    run_dir = Path(run_dir)
    if chief:
        run_dir.mkdir(parents=True, exist_ok=True)
    if dist is not None:  # every process must resume from the same checkpoint
        dist.check_batch(config.batch_size)
        folder = latest_checkpoint(run_dir)
        dist.agree(0 if folder is None else int(folder.name[6:]), "the epoch to resume from")
    model, state = _resume_or_build(config, run_dir, verbose)
    plateau = Plateau(config.lr_patience, config.lr_factor, config.min_lr, **state["plateau"])
    times = state.setdefault("epoch_times_s", [])

    done_this_call = 0
    while state["epoch"] < config.epochs:
        if max_epochs is not None and done_this_call >= max_epochs:
            break
        epoch = state["epoch"]
        if config.epoch_seeds:
            # Seeds from (seed, epoch): a resumed run shuffles exactly as an uninterrupted one.
            keras.utils.set_random_seed(config.seed * 100_003 + epoch)
        lr = _get_lr(model)
        start = time.perf_counter()
        fit_data, batch_size = (x_train, t_train), config.batch_size
        if dist is not None:  # this process's rows of the epoch's global batches, in order
            rows = dist.epoch_rows(len(x_train), batch_size, (config.seed, epoch))
            fit_data, batch_size = (x_train[rows], t_train[rows]), batch_size // dist.processes
        fit = model.fit(
            *fit_data,
            batch_size=batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=dist is None,
            verbose=1 if verbose == 1 else 0,
        )
        row = {"epoch": epoch + 1, "lr": lr}
        row.update({k: float(v[-1]) for k, v in fit.history.items()})
        eval_batch = config.eval_batch_size
        with _evaluation(model, config, dist) as judged:
            if val is not None:
                res = judged.evaluate(*val, batch_size=eval_batch, verbose=0, return_dict=True)
                row.update({f"val_{k}": float(v) for k, v in res.items()})
            if config.eval_test:
                res = judged.evaluate(
                    x_test, t_test, batch_size=eval_batch, verbose=0, return_dict=True
                )
                row.update({f"test_{k}": float(v) for k, v in res.items()})
        watched = row[("val_" if val is not None else "") + config.lr_monitor]
        new_lr = plateau.update(-watched if config.lr_monitor == "accuracy" else watched, lr)
        if new_lr != lr:
            _set_lr(model, new_lr)
        times.append(time.perf_counter() - start)
        state["history"].append(row)
        state["epoch"] = epoch + 1
        state["plateau"] = plateau.state()
        if chief:
            save_checkpoint(run_dir, model, state)
        else:  # Keras's save of a model spread over processes checks with all of them
            with tempfile.TemporaryDirectory() as scratch:
                save_checkpoint(scratch, model, state)
        done_this_call += 1
        if verbose:
            print(progress_line(config, row, float(np.median(times))), flush=True)

    results = {
        "name": config.name,
        "architecture": config.architecture,
        "encoding": config.encoding,
        "surrogate": config.surrogate,
        "seed": config.seed,
        "epochs": state["epoch"],
        "epochs_planned": config.epochs,
        "complete": state["epoch"] >= config.epochs,
        "train_size": int(len(x_train)),
        "test_size": int(len(x_test)),
        "config": config.to_dict(),
        "history": state["history"],
        "params": int(model.count_params()),
        "versions": versions(),
        "note": config.note,
    }
    if results["complete"]:
        with _evaluation(model, config, dist) as judged:
            accuracy = evaluate(judged, x_test, y_test, config.eval_batch_size)["accuracy"]
            results["test_accuracy"] = accuracy
            if results_dir is not None and chief:
                write_results(results_dir, judged, results, times)
        if results_dir is not None and verbose:
            print(f"[{config.name}] test accuracy {results['test_accuracy']:.4f}", flush=True)
    else:
        results["test_accuracy"] = None
    if dist is not None:  # return when the chief has written
        dist.barrier(f"lifsg train {config.name} epoch {state['epoch']}")
    results["model"] = model
    return results
