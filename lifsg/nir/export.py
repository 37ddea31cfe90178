"""lifsg model -> NIR graph: :func:`to_nir` (mapping in :mod:`lifsg.nir`)."""

import json
import warnings

import keras
import nir
import numpy as np

import lifsg
from lifsg.encoders import _Encoder
from lifsg.layers import LIF, LeakyReadout
from lifsg.nir.layout import Stream, check_dt

ZERO_LEAK = 1e-9
"""Leak exported for the units of a leaky layer whose leak is exactly 0 (tau = dt * 1e9).
Over T steps the potential then differs from lifsg's by at most ``T * 1e-9 * |V|``."""


def _numpy(variable):
    return np.array(variable.numpy())


def _serialized(layer):
    return json.dumps(keras.saving.serialize_keras_object(layer))


def to_nir(model, dt=1e-3):
    """Export a Keras model of lifsg layers to a ``nir.NIRGraph`` (one node chain).

    model: a chain of layers taking ``(batch, time, F)`` or ``(batch, time, H, W, C)`` input
        currents or spikes: Dense (no activation), DenseLIF / LIF (Affine + LIF, or IF where
        every leak is 0), LeakyReadout (Affine + LI, or I), TimeDistributed Conv2D, average
        pooling and Flatten, a per-step Reshape to ``(time, features)``, Rescaling. Encoders
        turn images into spikes inside the model and have no NIR node: export the part after
        them, ``keras.Model(model.get_layer(name).output, model.output)``.
    dt: the time step in seconds that the discrete model is forward Euler of (default 1 ms).
        snnTorch's import assumes 1e-4 s, Norse's 1e-3 s by default.

    Returns a graph with nodes ``input``, one or two nodes per layer (``<name>_affine`` and
    ``<name>``), ``output``. Raises ValueError naming any layer NIR cannot express.
    """
    dt = check_dt(dt)
    layers = _chain(model)
    stream = Stream(model.inputs[0].shape[2:])
    nodes = {"input": nir.Input(input_type=np.array(stream.nir_shape))}
    for layer in layers:
        stream_ref = [stream]
        for name, node in export_layer(layer, stream_ref, dt):
            if name in nodes:
                raise ValueError(f"layer {layer.name!r}: node name {name!r} is used twice")
            node.metadata["lifsg_layer"] = layer.name
            nodes[name] = node
        nodes[name].metadata["lifsg_config"] = _serialized(layer)
        stream = stream_ref[0]
    nodes["output"] = nir.Output(output_type=np.array(stream.nir_shape))
    names = list(nodes)
    shape = [None if s is None else int(s) for s in model.inputs[0].shape[1:]]
    metadata = {
        "lifsg_version": lifsg.__version__,
        "lifsg_dt": dt,
        "lifsg_model": json.dumps({"name": model.name, "input_shape": shape}),
    }
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata=metadata)


def _chain(model):
    if not isinstance(model, keras.Model):
        raise TypeError(f"to_nir expects a keras.Model, got {type(model).__name__}")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(f"model {model.name!r}: NIR export needs one input and one output")
    x, layers = model.inputs[0], []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            inp = layer.input
        except (AttributeError, ValueError) as err:
            raise ValueError(f"layer {layer.name!r} is called more than once: {err}") from err
        if inp is not x:
            raise ValueError(
                f"layer {layer.name!r} does not take the previous layer's output: "
                "NIR export supports a plain chain of layers"
            )
        x = layer.output
        layers.append(layer)
    if not layers:
        raise ValueError(f"model {model.name!r} has no layers to export")
    if x is not model.outputs[0]:
        raise ValueError(f"model {model.name!r}: the last layer's output is not the model output")
    return layers


def _unsupported(layer, why):
    return ValueError(f"layer {layer.name!r} ({type(layer).__name__}): {why}")


def export_layer(layer, stream_ref, dt):
    """Yield (node name, NIR node) for ``layer``; update ``stream_ref[0]`` to its output."""
    stream = stream_ref[0]
    if isinstance(layer, _Encoder):
        raise _unsupported(
            layer,
            "encoders turn images into spikes inside the model and have no NIR node; export "
            f"keras.Model(model.get_layer({layer.name!r}).output, model.output)",
        )
    if isinstance(layer, (LIF, LeakyReadout)):
        yield from _export_neuron(layer, stream_ref, dt)
    elif isinstance(layer, keras.layers.Dense):
        if layer.activation is not keras.activations.linear:
            raise _unsupported(layer, "NIR's Affine has no activation; use activation=None")
        yield layer.name, _affine(layer, stream)
        stream_ref[0] = Stream((layer.units,))
    elif isinstance(layer, keras.layers.TimeDistributed):
        yield layer.name, _export_per_step(layer, stream_ref)
    elif isinstance(layer, keras.layers.Reshape):
        target = tuple(layer.target_shape)
        if not (
            stream.image and len(target) == 2 and target[1] in (-1, int(np.prod(stream.shape)))
        ):
            raise _unsupported(layer, "only a per-step flatten, Reshape((time, -1)), maps to NIR")
        yield layer.name, _flatten(stream)
        stream_ref[0] = stream.flattened()
    elif isinstance(layer, keras.layers.Rescaling):
        if np.any(np.asarray(layer.offset) != 0) or np.size(layer.scale) != 1:
            raise _unsupported(layer, "only a scalar scale without offset maps to NIR's Scale")
        scale = np.full(stream.nir_shape, float(np.asarray(layer.scale)))
        yield layer.name, nir.Scale(scale=scale)
    else:
        raise _unsupported(
            layer,
            "no NIR equivalent (supported: Dense, DenseLIF, LIF, LeakyReadout, TimeDistributed "
            "Conv2D / AveragePooling2D / Flatten, Reshape((time, -1)), Rescaling)",
        )


def _affine(layer, stream):
    if stream.image:
        raise _unsupported(layer, "NIR's Affine acts on feature vectors; flatten the image first")
    weight = stream.kernel_to_nir(_numpy(layer.kernel))
    if layer.bias is None:
        return nir.Linear(weight=weight)
    return nir.Affine(weight=weight, bias=_numpy(layer.bias))


def _flatten(stream):
    return nir.Flatten(input_type={"input": np.array(stream.nir_shape)}, start_dim=0, end_dim=-1)


def _export_per_step(layer, stream_ref):
    stream, inner = stream_ref[0], layer.layer
    if isinstance(inner, keras.layers.Flatten) and stream.image:
        stream_ref[0] = stream.flattened()
        return _flatten(stream)
    if not stream.image:
        raise _unsupported(layer, "NIR's 2-D convolution and pooling need (time, H, W, C) input")
    if getattr(inner, "data_format", "channels_last") != "channels_last":
        raise _unsupported(layer, "only data_format='channels_last' is supported")
    out_shape = tuple(int(s) for s in layer.output.shape[2:])
    if isinstance(inner, keras.layers.Conv2D) and type(inner) is keras.layers.Conv2D:
        if inner.activation is not keras.activations.linear:
            raise _unsupported(layer, "NIR's Conv2d has no activation; use activation=None")
        padding = _conv_padding(layer, inner)
        kernel = _numpy(inner.kernel)  # (kh, kw, in / groups, out)
        bias = _numpy(inner.bias) if inner.use_bias else np.zeros(kernel.shape[-1], kernel.dtype)
        node = nir.Conv2d(
            input_shape=stream.nir_shape[1:],
            weight=kernel.transpose(3, 2, 0, 1).copy(),
            stride=tuple(inner.strides),
            padding=padding,
            dilation=tuple(inner.dilation_rate),
            groups=int(inner.groups),
            bias=bias,
        )
    elif isinstance(inner, keras.layers.AveragePooling2D):
        if inner.padding != "valid":
            raise _unsupported(layer, "NIR pools without padding; use padding='valid'")
        node = nir.AvgPool2d(
            kernel_size=np.array(inner.pool_size),
            stride=np.array(inner.strides),
            padding=np.array([0, 0]),
        )
    elif isinstance(inner, keras.layers.MaxPooling2D):
        raise _unsupported(layer, "NIR defines sum and average pooling only, no max pooling")
    else:
        raise _unsupported(layer, f"no NIR equivalent for a per-step {type(inner).__name__}")
    stream_ref[0] = Stream(out_shape)
    return node


def _conv_padding(layer, conv):
    """Keras padding -> NIR's symmetric (ph, pw); 'same' only where it is symmetric."""
    if conv.padding == "valid":
        return (0, 0)
    span = [d * (k - 1) for k, d in zip(conv.kernel_size, conv.dilation_rate)]
    if any(s != 1 for s in conv.strides) or any(p % 2 for p in span):
        raise _unsupported(
            layer,
            "padding='same' with a stride > 1 or an even kernel pads asymmetrically, which "
            "NIR's symmetric padding cannot express; use padding='valid' or stride 1 and an "
            "odd kernel",
        )
    return (span[0] // 2, span[1] // 2)


def _known_weights(layer):
    unknown = {v.name for v in layer.weights} - {"kernel", "bias", "w_leak", "threshold"}
    if unknown:
        raise _unsupported(layer, f"weights {sorted(unknown)} have no NIR mapping")


def _update_rule(layer):
    floor = "max(0, {})"
    if isinstance(layer, LeakyReadout):
        v = floor.format("x_t + (1 - w_leak) V_{t-1}")
        return (
            f"V_t = {v}; output: V reduced over time by {layer.reduce!r}, then "
            f"{keras.activations.serialize(layer.activation)}"
        )
    rules = {
        "delayed": floor.format("x_t + (1 - w_leak) V_{t-1} [V_{t-1} <= threshold]"),
        "subtract": floor.format("x_t + (1 - w_leak) V_{t-1} - threshold y_{t-1}"),
        "zero": floor.format("x_t + (1 - w_leak) V_{t-1}") + " (1 - y_{t-1})",
    }
    return f"V_t = {rules[layer.reset]}; y_t = [V_t >= threshold]; V_-1 = 0"


def _export_neuron(layer, stream_ref, dt):
    _known_weights(layer)
    stream = stream_ref[0]
    if layer.units is not None:
        yield f"{layer.name}_affine", _affine(layer, stream)
        stream = Stream((layer.units,))
    w_leak = _numpy(layer.w_leak)
    w = stream.to_nir(w_leak.astype("float64"))
    leaky = np.where(w == 0, ZERO_LEAK, w)
    zeros = np.zeros(stream.nir_shape)
    if isinstance(layer, LeakyReadout):
        if np.all(w == 0):
            node = nir.I(r=np.full(stream.nir_shape, 1 / dt))
        else:
            node = nir.LI(tau=dt / leaky, r=1 / leaky, v_leak=zeros)
    else:
        if layer.return_potential:
            raise _unsupported(layer, "NIR's LIF outputs spikes; return_potential=True has none")
        if layer.reset != "delayed":
            warnings.warn(
                f"layer {layer.name!r}: reset {layer.reset!r} has no NIR equivalent; exported "
                "as NIR's reset to v_reset = 0 (lifsg's rule travels in the metadata)",
                stacklevel=3,
            )
        threshold = _numpy(layer.threshold_weight) if layer.trainable_threshold else layer.threshold
        v_th = stream.to_nir(np.asarray(threshold, dtype="float64"))
        if np.all(w == 0):
            node = nir.IF(r=np.full(stream.nir_shape, 1 / dt), v_threshold=v_th, v_reset=zeros)
        else:
            node = nir.LIF(
                tau=dt / leaky, r=1 / leaky, v_leak=zeros, v_threshold=v_th, v_reset=zeros
            )
    node.metadata.update(lifsg_dt=dt, lifsg_w_leak=w_leak, lifsg_update=_update_rule(layer))
    stream_ref[0] = stream
    yield layer.name, node
