"""Keras layers: LIF, DenseLIF and the non-spiking LeakyReadout.

All take floating-point input currents shaped (batch, time, ...features) and keep one trainable
leak per feature of the last axis (per channel after a convolution). They are thin: weights
here, the update in :mod:`lifsg.neuron`. Each chooses how its time loop runs with
``implementation`` ("auto", "fused" or "loop", see :func:`lifsg.neuron.check_implementation`).
"""

import math
import numbers

import keras
import numpy as np
from keras import ops

from lifsg import chunked, events, neuron, surrogates

REDUCTIONS = ("last", "mean", "max", None)


@keras.saving.register_keras_serializable(package="lifsg")
class UnitInterval(keras.constraints.Constraint):
    """Keeps a weight within [0, 1] after each optimizer step (used for the leak)."""

    def __call__(self, w):
        return ops.clip(w, 0.0, 1.0)

    def get_config(self):
        return {}


@keras.saving.register_keras_serializable(package="lifsg")
class Positive(keras.constraints.Constraint):
    """Keeps a weight at or above ``min_value`` (> 0) after each optimizer step.

    LIF's trainable threshold uses it with ``min_value = 1e-3 * threshold``: a threshold at or
    below 0 would make the neuron fire on zero input.
    """

    def __init__(self, min_value):
        min_value = float(min_value)
        if not math.isfinite(min_value) or min_value <= 0:
            raise ValueError(f"Positive: min_value must be finite and > 0, got {min_value}")
        self.min_value = min_value

    def __call__(self, w):
        return ops.maximum(w, ops.cast(self.min_value, w.dtype))

    def get_config(self):
        return {"min_value": self.min_value}


def _is_number(value, kinds=numbers.Real):
    """True for Python and NumPy numbers of ``kinds``, False for bools."""
    return isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))


def _check_units(units):
    """A positive integer (NumPy integers too) as int; bools and others raise."""
    if not _is_number(units, numbers.Integral) or units < 1:
        raise ValueError(f"units must be a positive integer, got {units!r}")
    return int(units)


def _check_leak(w_leak):
    """Validate an explicit leak (scalar or per-feature list) in [0, 1]; return it as floats."""
    values = np.asarray(w_leak)
    if values.dtype.kind not in "iuf":
        raise ValueError(f"w_leak must be a number or a list of numbers, got {w_leak!r}")
    values = values.astype("float64")
    if values.ndim > 1 or values.size == 0:
        raise ValueError(f"w_leak must be a number or a 1-D list, got shape {values.shape}")
    if not np.all(np.isfinite(values)) or np.any(values < 0) or np.any(values > 1):
        raise ValueError(f"w_leak must lie in [0, 1] (0: perfect integrator), got {w_leak}")
    return values.tolist()


class _TimeLayer(keras.layers.Layer):
    """Shared machinery: input checks, an optional Dense in front, the per-feature leak.

    units: features of the Dense applied at every time step, or None for no Dense (only
        where ``has_dense``).
    w_leak: fixed initial leak in [0, 1] (number or one per feature); overrides
        ``w_leak_initializer`` when given. An initializer drawing values outside [0, 1] is an
        error at build. A leak set outside [0, 1] later (``assign``, ``load_weights``) acts as
        the nearest bound, and the constraint clips the variable at the next optimizer step.
    projection: how the Dense part is computed (only where ``has_dense``): "auto" (default:
        from the input's events where it is mostly zeros, e.g. spikes), "events" or "dense";
        see :mod:`lifsg.events`.
    implementation: "auto" (default), "fused" or "loop", see
        :func:`lifsg.neuron.check_implementation`. With "fused" the layer declares no XLA
        support (``supports_jit``), so Keras compiles the model without XLA.
    """

    has_dense = False

    def __init__(
        self,
        units=None,
        w_leak=None,
        w_leak_initializer="zeros",
        trainable_leak=True,
        use_bias=True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        bias_regularizer=None,
        projection="auto",
        implementation="auto",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units is not None and not self.has_dense:
            raise TypeError(f"{type(self).__name__} takes no units; use DenseLIF")
        self.units = None if units is None else _check_units(units)
        if projection != "auto" and not self.has_dense:
            raise TypeError(f"{type(self).__name__} takes no projection; use DenseLIF")
        self.projection = events.check_projection(projection)
        self.w_leak_value = None if w_leak is None else _check_leak(w_leak)
        self.w_leak_initializer = keras.initializers.get(w_leak_initializer)
        self.trainable_leak = bool(trainable_leak)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.implementation = neuron.check_implementation(implementation)
        self.supports_jit = implementation != "fused"  # the fused op has no XLA kernel

    def _check_input_dtype(self, inputs):
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if not keras.backend.is_float_dtype(dtype):
            raise TypeError(
                f"{type(self).__name__} expects floating-point input currents, got {dtype}; "
                "cast them first (e.g. x.astype('float32'))"
            )

    def _check_input_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError(
                f"{type(self).__name__} expects input shaped (batch, time, ...features) of rank"
                f" >= 3, got shape {tuple(input_shape)}"
            )
        if input_shape[1] == 0:
            raise ValueError(f"{type(self).__name__}: the time axis has length 0")
        if input_shape[-1] is None:
            raise ValueError(f"{type(self).__name__}: the last axis must be known")

    def build(self, input_shape):
        self._check_input_shape(input_shape)
        features = input_shape[-1]
        if self.units is not None:
            self.kernel = self.add_weight(
                name="kernel",
                shape=(features, self.units),
                initializer=self.kernel_initializer,
                regularizer=self.kernel_regularizer,
            )
            self.bias = (
                self.add_weight(
                    name="bias",
                    shape=(self.units,),
                    initializer=self.bias_initializer,
                    regularizer=self.bias_regularizer,
                )
                if self.use_bias
                else None
            )
            features = self.units
        self.features = features
        init = self.w_leak_initializer
        if self.w_leak_value is not None:
            value = np.asarray(self.w_leak_value)
            if value.size not in (1, features):
                raise ValueError(
                    f"{type(self).__name__}: w_leak has {value.size} values for {features} features"
                )
            init = keras.initializers.Constant(np.broadcast_to(value, (features,)))
        self.w_leak = self.add_weight(
            name="w_leak",
            shape=(features,),
            initializer=init,
            constraint=UnitInterval(),
            trainable=self.trainable_leak,
        )
        self._check_initial_leak()

    def _check_initial_leak(self):
        """Raise if the initializer drew a leak outside [0, 1] (where the value is concrete:
        a layer first built inside a traced function is not checked; see ``_decay``)."""
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            if not tf.executing_eagerly():
                return
        values = ops.convert_to_numpy(self.w_leak.value)
        if not (np.all(values >= 0) and np.all(values <= 1)):
            raise ValueError(
                f"{type(self).__name__}: w_leak_initializer gave leaks outside [0, 1] (min "
                f"{values.min():g}, max {values.max():g}); use one bounded to [0, 1], e.g. "
                "keras.initializers.RandomUniform(0.0, 0.1)"
            )

    def _currents(self, inputs):
        """Input currents: the Dense transform at every step, or the inputs themselves."""
        if self.units is None:
            return inputs
        x = events.project(inputs, ops.cast(self.kernel, self.compute_dtype), self.projection)
        if self.bias is not None:
            x = x + ops.cast(self.bias, self.compute_dtype)
        return x

    def _decay(self):
        """``1 - w_leak`` with the leak held in [0, 1] (values in range pass unchanged, with
        their gradient)."""
        w = ops.cast(self.w_leak, self.compute_dtype)
        inside = ops.logical_and(ops.greater_equal(w, 0.0), ops.less_equal(w, 1.0))
        return 1.0 - ops.where(inside, w, ops.clip(w, 0.0, 1.0))

    def compute_output_shape(self, input_shape):
        shape = tuple(input_shape)
        return shape[:-1] + (self.features if self.built else self.units or shape[-1],)

    def get_config(self):
        config = super().get_config()
        config.update(
            w_leak=self.w_leak_value,
            w_leak_initializer=keras.initializers.serialize(self.w_leak_initializer),
            trainable_leak=self.trainable_leak,
            implementation=self.implementation,
        )
        if self.has_dense:
            config.update(
                units=self.units,
                use_bias=self.use_bias,
                kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
                bias_initializer=keras.initializers.serialize(self.bias_initializer),
                kernel_regularizer=keras.regularizers.serialize(self.kernel_regularizer),
                bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
                projection=self.projection,
            )
        return config


@keras.saving.register_keras_serializable(package="lifsg")
class LIF(_TimeLayer):
    """Leaky-integrate-and-fire neurons over time (paper equation, :mod:`lifsg.neuron`).

    Input: currents (batch, time, ...features), rank >= 3, e.g. the output of a Dense or
    Conv2D applied per time step. Output: spikes (0/1) of the same shape, or the membrane
    potential if ``return_potential``.

    Args:
        threshold: firing threshold (default 1.0), one value per feature when trainable.
        trainable_threshold: learn the threshold (default False); kept at or above
            ``1e-3 * threshold`` (:class:`Positive`).
        w_leak: fixed initial leak in [0, 1]; otherwise drawn by ``w_leak_initializer``
            (default uniform in [0, 0.1], the original code's choice with dt = 1).
        trainable_leak: learn the per-feature leak (default True); kept in [0, 1].
        surrogate: name, :class:`lifsg.surrogates.Surrogate` or callable (default "flat").
        reset: "delayed" (the paper's rule, default), "subtract" or "zero".
        return_potential: return V instead of spikes.
        time_chunk: None (default: the whole sequence at once) or a number of steps: run the
            sequence in chunks of that many steps and recompute them in the backward pass, so
            that memory does not grow with stored potentials (:mod:`lifsg.chunked`).
        implementation: "auto" (default), "fused" or "loop", see
            :func:`lifsg.neuron.check_implementation`.
    """

    def __init__(
        self,
        threshold=1.0,
        trainable_threshold=False,
        w_leak=None,
        w_leak_initializer=None,
        trainable_leak=True,
        surrogate="flat",
        reset="delayed",
        return_potential=False,
        time_chunk=None,
        **kwargs,
    ):
        if w_leak_initializer is None:
            w_leak_initializer = keras.initializers.RandomUniform(0.0, 0.1)
        super().__init__(
            w_leak=w_leak,
            w_leak_initializer=w_leak_initializer,
            trainable_leak=trainable_leak,
            **kwargs,
        )
        if not _is_number(threshold) or not math.isfinite(threshold) or threshold <= 0:
            raise ValueError(f"threshold must be a finite number > 0, got {threshold!r}")
        self.threshold = float(threshold)
        self.trainable_threshold = bool(trainable_threshold)
        self.surrogate = surrogates.get(surrogate)
        self.reset = neuron.check_reset(reset)
        self.return_potential = bool(return_potential)
        self.time_chunk = chunked.check_time_chunk(time_chunk)

    def build(self, input_shape):
        super().build(input_shape)
        if self.trainable_threshold:
            self.threshold_weight = self.add_weight(
                name="threshold",
                shape=(self.features,),
                initializer=keras.initializers.Constant(self.threshold),
                constraint=Positive(1e-3 * self.threshold),
            )

    def _threshold(self):
        if self.trainable_threshold:
            return ops.cast(self.threshold_weight, self.compute_dtype)
        return self.threshold

    def call(self, inputs):
        self._check_input_dtype(inputs)
        if chunked.applies(inputs, self.time_chunk):
            return chunked.lif(self, inputs)
        return neuron.lif_loop(
            self._currents(inputs),
            self._decay(),
            self._threshold(),
            self.surrogate,
            self.reset,
            self.return_potential,
            self.implementation,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            threshold=self.threshold,
            trainable_threshold=self.trainable_threshold,
            surrogate=surrogates.serialize(self.surrogate),
            reset=self.reset,
            return_potential=self.return_potential,
            time_chunk=self.time_chunk,
        )
        return config


@keras.saving.register_keras_serializable(package="lifsg")
class DenseLIF(LIF):
    """A Dense layer applied at every time step followed by :class:`LIF`, as one layer.

    Input (batch, time, ...in_features) -> spikes (batch, time, ...units). Exposes ``kernel``
    (in_features, units), ``bias`` (units,) and ``w_leak`` (units,). Other arguments as LIF,
    plus the usual Dense ones (use_bias, kernel/bias initializer and regularizer).
    """

    has_dense = True

    def __init__(self, units, **kwargs):
        super().__init__(units=units, **kwargs)


@keras.saving.register_keras_serializable(package="lifsg")
class LeakyReadout(_TimeLayer):
    """Non-spiking leaky integrator read-out: ``V_t = ReLU(x_t + (1 - w_leak) * V_{t-1})``.

    Input (batch, time, ...features). With ``units`` a Dense is applied at every step first.
    Output: V reduced over time by ``reduce`` ("last", default: V at the last step; "mean";
    "max"; None: the whole sequence), then ``activation`` (e.g. "softmax").
    The leak is trainable and starts at ``w_leak_initializer`` (default zeros, as in the
    authors' code).
    """

    has_dense = True

    def __init__(self, units=None, reduce="last", activation=None, **kwargs):
        super().__init__(units=units, **kwargs)
        if reduce not in REDUCTIONS:
            raise ValueError(f"unknown reduce {reduce!r}; valid: {REDUCTIONS}")
        self.reduce = reduce
        self.activation = keras.activations.get(activation)

    def call(self, inputs):
        self._check_input_dtype(inputs)
        v = neuron.leaky_integrator_loop(self._currents(inputs), self._decay(), self.implementation)
        if self.reduce == "last":
            v = v[:, -1]
        elif self.reduce == "mean":
            v = ops.mean(v, axis=1)
        elif self.reduce == "max":
            v = ops.max(v, axis=1)
        return self.activation(v)

    def compute_output_shape(self, input_shape):
        shape = super().compute_output_shape(input_shape)
        return shape if self.reduce is None else shape[:1] + shape[2:]

    def get_config(self):
        config = super().get_config()
        config.update(
            reduce=self.reduce,
            activation=keras.activations.serialize(self.activation),
        )
        return config
