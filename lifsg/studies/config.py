"""The description of one training run: :class:`RunConfig`, its checks and its QUICK scale."""

import dataclasses
import math
from dataclasses import dataclass, field

import keras
import numpy as np

ARCHITECTURES = ("dense", "hybrid")
ENCODINGS = ("poisson", "latency", "constant", "spikes")
LOSSES = ("mse", "crossentropy")
NONLINEARITIES = ("lif", "relu")


@dataclass
class RunConfig:
    """Everything that defines one run. Defaults: the authors' original MNIST script.

    name: file stem of the results (``<name>.json``, ``<name>.keras``).
    architecture: "dense" (encoder -> DenseLIF layers -> read-out) or "hybrid" (encoder ->
        Conv2D + LIF blocks applied per time step -> DenseLIF layers -> read-out).
    encoding: "poisson" (rate; ``factor * dt`` spike probability per step at intensity 1),
        "latency" (one spike per pixel, ``latency_tau``, ``latency_threshold``), "constant"
        (the intensity times ``factor * dt`` at every step) or "spikes" (the input already is
        a spike train shaped ``input_shape = (steps, channels)``; dense only).
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
    nonlinearity: "lif" (spiking) or "relu": the same network with every LIF replaced by a ReLU
        and every DenseLIF by Dense + ReLU, same initial weights (the non-spiking twin of F7).
    readout_leak: None: the read-out's leak starts at 0 and is trained (the authors' choice); a
        number in [0, 1]: fixed at that value, not trained (F5: 0, a perfect integrator).
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
    eval_batch_size: batch size of the per-epoch validation and test evaluations.
    epoch_seeds: seed each epoch's shuffling from (seed, epoch), so a resumed run repeats an
        uninterrupted one; False: seed once, when the model is built (F5's runs; they are not
        resumed).
    note: free text stored in the results (e.g. why a run is shorter than planned).

    Fields added after the first plans were written (:data:`LATER_FIELDS`) are left out of
    :meth:`to_dict` while they hold their default, so older plan and result files are still
    exactly what the code writes.
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
    nonlinearity: str = "lif"
    readout_leak: float | None = None
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
    eval_batch_size: int = 500
    epoch_seeds: bool = True
    note: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self):
        """The fields as a JSON-ready dict (tuples as lists; later fields left out at defaults)."""
        d = dataclasses.asdict(self)
        for name in LATER_FIELDS:
            if d[name] == _DEFAULTS[name]:
                del d[name]
        d["units"] = list(self.units)
        d["conv_filters"] = list(self.conv_filters)
        d["input_shape"] = list(self.input_shape)
        return d

    @classmethod
    def from_dict(cls, d):
        """The config of a :meth:`to_dict` dict; unknown fields raise ValueError."""
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
        """A copy with the given fields changed."""
        return dataclasses.replace(self, **changes)


#: fields added after the first plan files; omitted from ``to_dict`` at their defaults
LATER_FIELDS = ("nonlinearity", "readout_leak", "eval_batch_size", "epoch_seeds")
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(RunConfig)}


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
    if config.nonlinearity not in NONLINEARITIES:
        raise ValueError(
            f"unknown nonlinearity {config.nonlinearity!r}; valid: {', '.join(NONLINEARITIES)}"
        )
    if config.encoding == "spikes" and (
        config.architecture != "dense"
        or len(config.input_shape) != 2
        or config.input_shape[0] != config.steps
    ):
        raise ValueError(
            "encoding 'spikes' needs a dense network and input_shape (steps, channels), got "
            f"{config.architecture!r}, input_shape {tuple(config.input_shape)}, "
            f"steps {config.steps}"
        )
    if config.loss not in LOSSES:
        raise ValueError(f"unknown loss {config.loss!r}; valid: {', '.join(LOSSES)}")
    from lifsg import surrogates

    surrogates.get(config.surrogate, beta=config.beta)
    for what in ("epochs", "steps", "batch_size", "eval_batch_size", "classes", "conv_kernel"):
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
    if config.readout_leak is not None and not 0 <= config.readout_leak <= 1:
        raise ValueError(f"readout_leak must lie in [0, 1] or be None, got {config.readout_leak!r}")
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
    ``train_size`` / ``test_size``); nothing else changes. Spike-train input ("spikes") keeps
    its steps (they are the data's)."""
    return config.replace(
        train_size=config.train_size if train_size is None else train_size,
        test_size=config.test_size if test_size is None else test_size,
        steps=config.steps if config.encoding == "spikes" else min(config.steps, steps),
        epochs=min(config.epochs, epochs),
        batch_size=min(config.batch_size, batch_size),
        units=tuple(min(u, max_units) for u in config.units),
        conv_filters=tuple(min(f, max_filters) for f in config.conv_filters),
        validation=min(config.validation, validation),
        note=f"QUICK scale of {config.name}",
    )
