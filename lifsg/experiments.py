"""Configured training runs: build, train with per-epoch checkpoints and resume, evaluate.

A run is described by a :class:`RunConfig`. :func:`build_model` turns it into a complete Keras
model (encoder included) that maps images in [0, 1] shaped (N, 28, 28) to class probabilities.
:func:`train` fits any such model with the paper's schedule (Adam, learning rate x ``lr_factor``
after ``lr_patience`` epochs without improvement of the training loss), saves a checkpoint
(model with optimizer state, history, epoch, scheduler state) after every epoch in ``run_dir``
and, when started again after an interruption, continues from the last completed epoch. When
the run is complete it writes ``<results_dir>/<name>.json`` and ``<results_dir>/<name>.keras``.

The training loop is generic: pass another ``build`` function (config -> uncompiled model) and
other data to reuse it (e.g. Oxford Flowers); the config only needs the fields used here.
"""

import contextlib
import dataclasses
import json
import math
import os
import platform
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

ARCHITECTURES = ("dense", "hybrid")
ENCODINGS = ("poisson", "latency", "constant")
LOSSES = ("mse", "crossentropy")
CHECKPOINT = "checkpoint.keras"
STATE = "state.json"


@dataclass
class RunConfig:
    """Everything that defines one run. Defaults: the authors' original MNIST script.

    name: file stem of the results (``<name>.json``, ``<name>.keras``).
    architecture: "dense" (encoder -> DenseLIF layers -> read-out) or "hybrid" (encoder ->
        Conv2D + LIF blocks applied per time step -> DenseLIF layers -> read-out).
    encoding: "poisson" (rate; ``factor * dt`` spike probability per step at intensity 1),
        "latency" (one spike per pixel, ``latency_tau``, ``latency_threshold``) or "constant"
        (the intensity times ``factor * dt`` at every step).
    surrogate, beta: surrogate derivative of every LIF layer (beta only for the shaped ones).
    w_leak, trainable_leak: leak of every LIF layer: None draws it per unit uniformly in
        [0, 0.1] (the authors' default); a number in [0, 1] fixes its initial value;
        ``trainable_leak=False`` keeps it at that value.
    units: widths of the DenseLIF layers (possibly empty for hybrid).
    kernel_initializer: of every Dense / Conv2D / DenseLIF kernel (Keras name).
    conv_filters, conv_kernel, conv_downsample: the hybrid front end, one block per entry:
        Conv2D then 2x2 max-pool of the currents ("pool") or a stride-2 Conv2D ("stride"),
        then LIF (one leak per channel).
    use_bias: give every Dense / Conv2D / DenseLIF a bias (the read-out always has one).
    readout_bias: initial bias of the read-out units. The read-out keeps the ReLU floor of the
        neuron, so a unit whose input stays negative for every image outputs 0 and gets no
        gradient: its class is lost for good. A positive initial bias keeps the units alive at
        the start (0: the authors' zeros).
    augment_shift: shift each training image by up to this many pixels (uniformly random per
        image and axis, nearest pixel, zeros fill; 0: no augmentation; never at test time).
    loss: "mse" on one-hot targets (the authors' choice) or "crossentropy".
    epochs, batch_size, learning_rate, lr_patience, lr_factor, min_lr: the optimisation.
    lr_monitor: what the plateau rule watches on the validation images (on the training
        images without them): "loss" (must fall) or "accuracy" (must rise).
    train_size, test_size: use only the first ``train_size`` training and ``test_size`` test
        images (None: all).
    validation: hold out the last ``validation`` training images; the learning-rate plateau
        rule then watches their loss (0: it watches the training loss).
    eval_test: evaluate the test set after every epoch for learning curves (the test set never
        steers training); False: only once, at the end.
    note: free text stored in the results (e.g. why a run is shorter than planned).
    """

    name: str = "original"
    architecture: str = "dense"
    encoding: str = "poisson"
    surrogate: str = "flat"
    beta: float = 10.0
    w_leak: float | None = None
    trainable_leak: bool = True
    seed: int = 0
    epochs: int = 30
    steps: int = 100
    factor: float = 1.0
    dt: float = 0.005
    latency_tau: float = 1.0
    latency_threshold: float = 0.2
    units: tuple = (128,)
    conv_filters: tuple = ()
    conv_kernel: int = 3
    conv_downsample: str = "pool"
    kernel_initializer: str = "glorot_uniform"
    use_bias: bool = True
    readout_bias: float = 0.0
    augment_shift: int = 0
    classes: int = 10
    input_shape: tuple = (28, 28)
    loss: str = "mse"
    batch_size: int = 256
    learning_rate: float = 1e-3
    lr_patience: int = 7
    lr_monitor: str = "loss"
    lr_factor: float = 0.1
    min_lr: float = 0.0
    train_size: int | None = None
    test_size: int | None = None
    validation: int = 0
    eval_test: bool = True
    note: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        d = dataclasses.asdict(self)
        d["units"] = list(self.units)
        d["conv_filters"] = list(self.conv_filters)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d):
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown RunConfig fields {unknown}")
        d = dict(d)
        for key in ("units", "conv_filters", "input_shape"):
            if key in d:
                d[key] = tuple(d[key])
        return cls(**d)

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)


def _positive_int(value, what):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"RunConfig.{what} must be a positive integer, got {value!r}")


def validate(config):
    """Raise ValueError with a clear message for an inconsistent config; return it."""
    if config.architecture not in ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {config.architecture!r}; valid: {', '.join(ARCHITECTURES)}"
        )
    if config.encoding not in ENCODINGS:
        raise ValueError(f"unknown encoding {config.encoding!r}; valid: {', '.join(ENCODINGS)}")
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; valid: {', '.join(LOSSES)}")
    from lifsg import surrogates

    surrogates.get(config.surrogate, beta=config.beta)
    for what in ("epochs", "steps", "batch_size", "classes", "conv_kernel"):
        _positive_int(getattr(config, what), what)
    for i, u in enumerate(config.units):
        _positive_int(u, f"units[{i}]")
    for i, u in enumerate(config.conv_filters):
        _positive_int(u, f"conv_filters[{i}]")
    if config.architecture == "dense" and not config.units:
        raise ValueError("a dense network needs at least one DenseLIF layer (units is empty)")
    if config.architecture == "dense" and config.conv_filters:
        raise ValueError("conv_filters is given but architecture is 'dense'; use 'hybrid'")
    if config.architecture == "hybrid":
        if not config.conv_filters:
            raise ValueError("a hybrid network needs conv_filters (e.g. (32, 64))")
        if len(config.input_shape) not in (2, 3):
            raise ValueError(f"hybrid needs an image input shape, got {config.input_shape}")
    keras.initializers.get(config.kernel_initializer)  # raises for an unknown name
    if config.conv_downsample not in ("pool", "stride"):
        raise ValueError(f"unknown conv_downsample {config.conv_downsample!r}; valid: pool, stride")
    if not (config.learning_rate > 0 and math.isfinite(config.learning_rate)):
        raise ValueError(f"learning_rate must be > 0, got {config.learning_rate}")
    if config.lr_monitor not in ("loss", "accuracy"):
        raise ValueError(f"unknown lr_monitor {config.lr_monitor!r}; valid: loss, accuracy")
    if not 0 < config.lr_factor <= 1:
        raise ValueError(f"lr_factor must lie in (0, 1], got {config.lr_factor}")
    if config.w_leak is not None and not 0 <= config.w_leak <= 1:
        raise ValueError(f"w_leak must lie in [0, 1] or be None, got {config.w_leak!r}")
    if not config.trainable_leak and config.w_leak is None:
        raise ValueError("trainable_leak=False needs a fixed w_leak")
    if not isinstance(config.augment_shift, (int, np.integer)) or config.augment_shift < 0:
        raise ValueError(f"augment_shift must be an integer >= 0, got {config.augment_shift!r}")
    for what in ("train_size", "test_size"):
        if getattr(config, what) is not None:
            _positive_int(getattr(config, what), what)
    if not isinstance(config.validation, int) or config.validation < 0:
        raise ValueError(f"validation must be an integer >= 0, got {config.validation!r}")
    return config


def make_encoder(config):
    """The input encoder layer of ``config`` (constant encoding: see :func:`build_model`)."""
    from lifsg import encoders

    if config.encoding == "poisson":
        return encoders.PoissonEncoder(
            config.steps, factor=config.factor, dt=config.dt, seed=config.seed, name="encoder"
        )
    if config.encoding == "latency":
        return encoders.LatencyEncoder(
            config.steps,
            tau=config.latency_tau,
            threshold=config.latency_threshold,
            name="encoder",
        )
    # A constant current is the same at every step, so the (linear) layer that follows it is
    # computed once and repeated over time: mathematically identical, ``steps`` times cheaper.
    return encoders.ConstantEncoder(1, factor=config.factor, dt=config.dt, name="encoder")


def _lif_kwargs(config):
    from lifsg import surrogates

    kwargs = {"surrogate": surrogates.get(config.surrogate, beta=config.beta)}
    if config.w_leak is not None:
        kwargs["w_leak"] = config.w_leak
    return {**kwargs, "trainable_leak": config.trainable_leak}


def _dense_kwargs(config):
    return {"kernel_initializer": config.kernel_initializer, "use_bias": config.use_bias}


def _repeat_time(x, steps, name):
    """(batch, ...features) -> (batch, steps, ...features) with built-in layers only."""
    shape = tuple(x.shape[1:])
    if len(shape) > 1:
        x = keras.layers.Flatten(name=f"{name}_flat")(x)
    x = keras.layers.RepeatVector(steps, name=f"{name}_repeat")(x)
    if len(shape) > 1:
        x = keras.layers.Reshape((steps, *shape), name=f"{name}_unflat")(x)
    return x


def _augment(x, config):
    """Random shifts of training images by up to ``augment_shift`` pixels (identity at test)."""
    shape = tuple(config.input_shape)
    image = shape if len(shape) == 3 else (*shape, 1)
    x = keras.layers.Reshape(image, name="augment_in")(x) if len(shape) == 2 else x
    x = keras.layers.RandomTranslation(
        config.augment_shift / image[0],
        config.augment_shift / image[1],
        fill_mode="constant",
        interpolation="nearest",
        seed=config.seed,
        name="augment",
    )(x)
    return keras.layers.Reshape(shape, name="augment_out")(x) if len(shape) == 2 else x


def build_model(config):
    """A complete, uncompiled Keras model for ``config``: images in [0, 1] -> probabilities.

    Dense: encoder (N, T, 784) -> DenseLIF(u) for u in units -> LeakyReadout(classes,
    "last", softmax). Hybrid: encoder -> images per step (N, T, 28, 28, 1) -> for each f in
    conv_filters: Conv2D(f) per step -> LIF (per-channel leak) -> 2x2 max-pool -> flatten ->
    DenseLIF(u) for u in units -> LeakyReadout. With constant-current input the first linear
    layer (Dense or Conv2D) sees the same input at every step; it is applied once and its
    output repeated over the ``steps`` (identical result, less compute).
    """
    from lifsg import layers

    validate(config)
    keras.utils.set_random_seed(config.seed)
    inputs = keras.Input(shape=tuple(config.input_shape), name="image")
    x = inputs
    if config.augment_shift:
        x = _augment(x, config)
    x = make_encoder(config)(x)  # (N, T or 1, features)
    lif = _lif_kwargs(config)
    constant = config.encoding == "constant"
    if config.architecture == "dense":
        first, rest = config.units[0], config.units[1:]
        if constant:
            x = keras.layers.Reshape((x.shape[-1],), name="squeeze_time")(x)
            x = keras.layers.Dense(first, name="dense_0", **_dense_kwargs(config))(x)
            x = _repeat_time(x, config.steps, "dense_0")
            x = layers.LIF(name="lif_0", **lif)(x)
        else:
            x = layers.DenseLIF(first, name="dense_lif_0", **lif, **_dense_kwargs(config))(x)
        for i, units in enumerate(rest, start=1):
            x = layers.DenseLIF(units, name=f"dense_lif_{i}", **lif, **_dense_kwargs(config))(x)
    else:
        shape = tuple(config.input_shape)
        shape = shape if len(shape) == 3 else (*shape, 1)
        k, stride = config.conv_kernel, 2 if config.conv_downsample == "stride" else 1
        for i, filters in enumerate(config.conv_filters):
            conv = keras.layers.Conv2D(
                filters,
                k,
                strides=stride,
                padding="same",
                name=f"conv_{i}",
                **_dense_kwargs(config),
            )
            pool = keras.layers.MaxPooling2D(2, name=f"pool_{i}")

            def block(x, conv=conv, pool=pool):
                x = conv(x)
                return pool(x) if config.conv_downsample == "pool" else x

            if i == 0 and constant:
                x = keras.layers.Reshape(shape, name="to_image")(x)
                x = _repeat_time(block(x), config.steps, "conv_0")
            else:
                if i == 0:
                    x = keras.layers.Reshape((config.steps, *shape), name="to_image")(x)
                x = keras.layers.TimeDistributed(conv, name=f"td_conv_{i}")(x)
                if config.conv_downsample == "pool":
                    x = keras.layers.TimeDistributed(pool, name=f"td_pool_{i}")(x)
            x = layers.LIF(name=f"lif_conv_{i}", **lif)(x)
        x = keras.layers.Reshape((config.steps, -1), name="flatten")(x)
        for i, units in enumerate(config.units):
            x = layers.DenseLIF(units, name=f"dense_lif_{i}", **lif, **_dense_kwargs(config))(x)
    outputs = layers.LeakyReadout(
        config.classes,
        reduce="last",
        activation="softmax",
        bias_initializer=keras.initializers.Constant(config.readout_bias),
        name="readout",
    )(x)
    return keras.Model(inputs, outputs, name=f"{config.architecture}_{config.name}")


def compile_model(model, config):
    """Compile with Adam and the configured loss (targets are one-hot)."""
    loss = "mean_squared_error" if config.loss == "mse" else "categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model


def one_hot(labels, classes):
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
        return {"best": self.best, "wait": self.wait}


def versions():
    import tensorflow as tf

    import lifsg

    return {
        "lifsg": lifsg.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "backend": keras.backend.backend(),
    }


def _atomic_json(path, obj):
    tmp = Path(f"{path}.tmp")
    tmp.write_text(json.dumps(obj, indent=1, default=_jsonable))
    os.replace(tmp, path)


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _atomic_save(model, path):
    tmp = Path(path).with_name(f"tmp_{Path(path).name}")
    model.save(tmp)
    os.replace(tmp, path)


def strip_optimizer(model):
    """An uncompiled copy of ``model`` with the same weights (small files for results)."""
    copy = keras.Model.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def load(path):
    """Load a stored model (lifsg's layers are registered on import).

    A file that exists but cannot be read raises ValueError naming it.
    """
    import lifsg  # noqa: F401

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file {path}")
    try:
        return keras.models.load_model(path)
    except Exception as err:  # Keras reports a damaged zip as "File not found"
        raise ValueError(
            f"cannot read the model file {path} ({type(err).__name__}: {err})"
        ) from err


def save_checkpoint(run_dir, model, state):
    """Write epoch ``state["epoch"]``'s checkpoint as one atomic commit; return its folder.

    Model (with optimizer state) and ``state`` go into a fresh temporary folder that is then
    renamed to ``epoch-NNNN``: a checkpoint folder is always complete. Older checkpoints of
    the run are removed afterwards.
    """
    run_dir = Path(run_dir)
    final = run_dir / f"epoch-{state['epoch']:04d}"
    tmp = run_dir / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model.save(tmp / CHECKPOINT)
    (tmp / STATE).write_text(json.dumps(state, indent=1, default=_jsonable))
    for name in (CHECKPOINT, STATE):
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    shutil.rmtree(final, ignore_errors=True)
    os.rename(tmp, final)
    for old in run_dir.glob("epoch-*"):
        if old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def latest_checkpoint(run_dir):
    """The newest checkpoint folder of ``run_dir`` (None if it has none).

    Raises ValueError naming the missing file if that folder lacks the model or the state
    (damaged outside lifsg): a run never restarts silently over a checkpoint.
    """
    folders = sorted(Path(run_dir).glob("epoch-[0-9]*"))
    if not folders:
        return None
    for name in (CHECKPOINT, STATE):
        if not (folders[-1] / name).is_file():
            raise ValueError(
                f"checkpoint {folders[-1]} lacks {name}; remove that folder to resume from an"
                " earlier checkpoint or the whole run folder to start again"
            )
    return folders[-1]


def read_state(folder):
    """The ``state.json`` of a checkpoint folder (ValueError naming a damaged file)."""
    path = Path(folder) / STATE
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the checkpoint state {path} ({err})") from err


def evaluate(model, images, labels, batch_size=500):
    """Test accuracy (and predictions) of a model or a stored ``.keras`` path.

    Returns ``{"accuracy": float, "predictions": int array}``.
    """
    if isinstance(model, (str, os.PathLike)):
        model = load(model)
    x = prepare_images(images)
    probs = model.predict(x, batch_size=batch_size, verbose=0)
    pred = np.argmax(probs, axis=-1)
    acc = float(np.mean(pred == np.asarray(labels)))
    return {"accuracy": acc, "predictions": pred}


def _set_lr(model, lr):
    model.optimizer.learning_rate.assign(lr)


def _get_lr(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def _comparable(config_dict):
    """A config dict without the fields that may change on resume (epochs, note)."""
    d = json.loads(json.dumps(RunConfig.from_dict(config_dict).to_dict()))
    return {k: v for k, v in d.items() if k not in ("epochs", "note")}


def _resume_or_build(config, run_dir, build, verbose):
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
        return compile_model(build(config), config), state
    state = read_state(folder)
    if _comparable(state["config"]) != _comparable(config.to_dict()):
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
    build=build_model,
    verbose=1,
    max_epochs=None,
    distribution=None,
):
    """Train ``config`` on ``data``, checkpointing every epoch in ``run_dir``; resume if found.

    data: ``((x_train, y_train), (x_test, y_test))`` with images uint8 or float in [0, 1] and
        integer labels. The learning-rate rule watches the validation loss (or the training
        loss without validation images); the test set never steers training: it is evaluated
        after each epoch only if ``config.eval_test`` (learning curves) and once at the end.
    run_dir: folder of this run's checkpoints (:func:`save_checkpoint`).
    results_dir: where to write ``<name>.json``, ``<name>.keras`` and ``<name>.timing.json``
        (wall-clock seconds, machine-dependent) when the run completes (None: nowhere).
    build: config -> uncompiled Keras model (default :func:`build_model`).
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
    from lifsg.studies.distribute import distribution_scope

    with distribution_scope(distribution) as dist:
        return _train(config, data, run_dir, results_dir, build, verbose, max_epochs, dist)


@contextlib.contextmanager
def _evaluation(model, config, dist):
    """The model to evaluate: ``model`` (MirroredStrategy splits any batch), or for JAX a
    compiled copy on one device of this process (every process evaluates all images)."""
    if dist is None or dist.kind == "mirrored":
        yield model
        return
    with dist.local():
        yield compile_model(strip_optimizer(model), config)


def _train(config, data, run_dir, results_dir, build, verbose, max_epochs, dist):
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
    model, state = _resume_or_build(config, run_dir, build, verbose)
    plateau = Plateau(config.lr_patience, config.lr_factor, config.min_lr, **state["plateau"])
    times = state.setdefault("epoch_times_s", [])

    done_this_call = 0
    while state["epoch"] < config.epochs:
        if max_epochs is not None and done_this_call >= max_epochs:
            break
        epoch = state["epoch"]
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
        with _evaluation(model, config, dist) as judged:
            if val is not None:
                res = judged.evaluate(*val, batch_size=500, verbose=0, return_dict=True)
                row.update({f"val_{k}": float(v) for k, v in res.items()})
            if config.eval_test:
                res = judged.evaluate(x_test, t_test, batch_size=500, verbose=0, return_dict=True)
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
            results["test_accuracy"] = evaluate(judged, x_test, y_test)["accuracy"]
            if results_dir is not None and chief:
                _write_results(results_dir, judged, results, times)
        if results_dir is not None and verbose:
            print(f"[{config.name}] test accuracy {results['test_accuracy']:.4f}", flush=True)
    else:
        results["test_accuracy"] = None
    if dist is not None:  # return when the chief has written
        dist.barrier(f"lifsg train {config.name} epoch {state['epoch']}")
    results["model"] = model
    return results


def _write_results(results_dir, model, results, times):
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    name = results["name"]
    timing = {
        "epoch_time_s": float(np.median(times)) if times else None,
        "epoch_times_s": times,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "threads": _threads(),
    }
    _atomic_save(strip_optimizer(model), results_dir / f"{name}.keras")
    _atomic_json(results_dir / f"{name}.timing.json", timing)
    _atomic_json(results_dir / f"{name}.json", results)


def _threads():
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()


def clear_checkpoint(run_dir):
    """Remove a run's checkpoint folder (to retrain from scratch)."""
    shutil.rmtree(run_dir, ignore_errors=True)


# Segments of a seven-segment display (a top, b top right, c bottom right, d bottom,
# e bottom left, f top left, g middle) lit for each digit.
_SEGMENTS = (
    "abcdef",
    "bc",
    "abged",
    "abgcd",
    "fgbc",
    "afgcd",
    "afgedc",
    "abc",
    "abcdefg",
    "abcdfg",
)


def synthetic_digits(n, seed=0, size=28):
    """A small SYNTHETIC MNIST-shaped set: seven-segment digits, randomly shifted, scaled and
    noisy, as uint8 images (n, size, size) and labels (n,) (balanced, shuffled).

    For tests and QUICK runs where the real MNIST files are absent; not MNIST.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    images = np.zeros((n, size, size), dtype="float32")
    for i, label in enumerate(labels):
        h = int(rng.integers(14, 21))  # digit height
        w = int(rng.integers(8, 13))
        top = int(rng.integers(2, size - h - 1))
        left = int(rng.integers(2, size - w - 1))
        t = int(rng.integers(2, 4))  # stroke thickness
        mid = top + h // 2
        bottom, right = top + h, left + w
        boxes = {
            "a": (top, top + t, left, right),
            "d": (bottom - t, bottom, left, right),
            "g": (mid - t // 2, mid - t // 2 + t, left, right),
            "f": (top, mid, left, left + t),
            "e": (mid, bottom, left, left + t),
            "b": (top, mid, right - t, right),
            "c": (mid, bottom, right - t, right),
        }
        value = rng.uniform(0.6, 1.0)
        for seg in _SEGMENTS[label]:
            r0, r1, c0, c1 = boxes[seg]
            images[i, r0:r1, c0:c1] = value
    images += rng.normal(0, 0.05, images.shape).astype("float32")
    images = np.clip(images, 0, 1)
    return np.round(images * 255).astype("uint8"), labels.astype("uint8")


def quick_config(
    config,
    steps=4,
    epochs=2,
    batch_size=32,
    max_units=32,
    max_filters=8,
    validation=50,
    train_size=None,
    test_size=None,
):
    """The same run at CI scale: fewer steps, epochs, units (and training / test images if
    ``train_size`` / ``test_size``); nothing else changes."""
    return config.replace(
        train_size=config.train_size if train_size is None else train_size,
        test_size=config.test_size if test_size is None else test_size,
        steps=min(config.steps, steps),
        epochs=min(config.epochs, epochs),
        batch_size=min(config.batch_size, batch_size),
        units=tuple(min(u, max_units) for u in config.units),
        conv_filters=tuple(min(f, max_filters) for f in config.conv_filters),
        validation=min(config.validation, validation),
        note=f"QUICK scale of {config.name}",
    )
