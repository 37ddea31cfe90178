"""Graphs from other tools -> a lifsg model, by NIR's equations at a given ``dt`` (used by
:func:`lifsg.nir.from_nir`)."""

import keras
import nir
import numpy as np

from lifsg.layers import LIF, LeakyReadout
from lifsg.nir.layout import Stream, f64


class _Spec:
    """A Keras layer to build and the weights to give it (foreign import)."""

    def __init__(self, layer, **weights):
        self.layer, self.weights = layer, weights


def import_foreign(graph, names, dt):
    """A Keras model of the foreign graph ``graph``'s nodes ``names`` (in order) at ``dt`` s."""
    first = graph.nodes[names[0]]
    nir_shape = tuple(int(s) for s in np.asarray(first.input_type["input"]))
    if len(nir_shape) == 3:
        stream = Stream((nir_shape[1], nir_shape[2], nir_shape[0]))
    else:
        stream = Stream(nir_shape)
    inputs = keras.Input(shape=(None, *stream.shape))
    specs = []
    for name in names[1:-1]:
        stream = _import_node(name, graph.nodes[name], stream, specs, dt)
    x = inputs
    for spec in specs:
        x = spec.layer(x)
    for spec in specs:
        target = (
            spec.layer.layer if isinstance(spec.layer, keras.layers.TimeDistributed) else spec.layer
        )
        for attr, value in spec.weights.items():
            getattr(target, attr).assign(value)
    return keras.Model(inputs, x, name="from_nir")


def _import_node(name, node, stream, specs, dt):
    """Append the layer spec(s) of one foreign node; return the stream after it."""
    per_step = keras.layers.TimeDistributed
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = f64(node.weight)
        if weight.ndim != 2 or stream.image or weight.shape[1] != stream.shape[0]:
            raise ValueError(
                f"node {name!r}: weight {weight.shape} does not fit features {stream.nir_shape}"
            )
        has_bias = isinstance(node, nir.Affine)
        layer = keras.layers.Dense(weight.shape[0], use_bias=has_bias, name=name)
        weights = {"kernel": stream.kernel_from_nir(weight)}
        if has_bias:
            weights["bias"] = f64(node.bias)
        specs.append(_Spec(layer, **weights))
        return Stream((weight.shape[0],))
    if isinstance(node, nir.Conv2d):
        return _import_conv(name, node, stream, specs)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        if not stream.image or np.any(np.asarray(node.padding) != 0):
            raise ValueError(f"node {name!r}: lifsg pools images without padding only")
        size = tuple(int(k) for k in np.broadcast_to(node.kernel_size, (2,)))
        stride = tuple(int(s) for s in np.broadcast_to(node.stride, (2,)))
        pool = keras.layers.AveragePooling2D(size, strides=stride, padding="valid")
        specs.append(_Spec(per_step(pool, name=name)))
        if isinstance(node, nir.SumPool2d):
            specs.append(_Spec(keras.layers.Rescaling(float(np.prod(size)), name=f"{name}_sum")))
        h, w, c = stream.shape
        return Stream(((h - size[0]) // stride[0] + 1, (w - size[1]) // stride[1] + 1, c))
    if isinstance(node, nir.Flatten):
        if not stream.image:
            return stream  # already one feature axis
        flat = nir.ir.utils.calc_flatten_output(stream.nir_shape, node.start_dim, node.end_dim)
        if len(flat) != 1:
            raise ValueError(f"node {name!r}: lifsg flattens whole images only, got {flat}")
        specs.append(_Spec(keras.layers.Reshape((-1, int(flat[0])), name=name)))
        return stream.flattened()
    if isinstance(node, nir.Scale):
        scale = np.unique(np.asarray(node.scale))
        if scale.size != 1:
            raise ValueError(f"node {name!r}: lifsg imports a Scale with one value only")
        specs.append(_Spec(keras.layers.Rescaling(float(scale[0]), name=name)))
        return stream
    if isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I)):
        _import_neuron(name, node, stream, specs, dt)
        return stream
    raise ValueError(
        f"node {name!r}: NIR {type(node).__name__} has no lifsg equivalent (supported: Affine, "
        "Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, Scale, LIF, IF, LI, I)"
    )


def _import_conv(name, node, stream, specs):
    weight = np.asarray(node.weight, dtype="float64")  # (out, in / groups, kh, kw)
    groups = int(node.groups)
    if not stream.image or weight.ndim != 4 or weight.shape[1] * groups != stream.shape[2]:
        raise ValueError(f"node {name!r}: weight {weight.shape} does not fit {stream.nir_shape}")
    k = weight.shape[2:]
    stride = tuple(int(s) for s in np.broadcast_to(node.stride, (2,)))
    dilation = tuple(int(d) for d in np.broadcast_to(node.dilation, (2,)))
    span = [d * (kk - 1) for kk, d in zip(k, dilation)]
    padding = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
    if isinstance(padding, str):
        if padding == "same" and (any(s != 1 for s in stride) or any(p % 2 for p in span)):
            raise ValueError(f"node {name!r}: asymmetric 'same' padding is not supported")
        padding = (span[0] // 2, span[1] // 2) if padding == "same" else (0, 0)
    pad = tuple(int(p) for p in np.broadcast_to(padding, (2,)))
    # Keras' "same" at stride 1 and an odd span is this symmetric padding; others get a layer.
    same = any(pad) and all(s == 1 for s in stride) and pad == (span[0] // 2, span[1] // 2)
    if any(pad) and not same:
        zero_pad = keras.layers.ZeroPadding2D(pad)
        specs.append(_Spec(keras.layers.TimeDistributed(zero_pad, name=f"{name}_pad")))
    conv = keras.layers.Conv2D(
        weight.shape[0],
        k,
        strides=stride,
        dilation_rate=dilation,
        groups=groups,
        padding="same" if same else "valid",
    )
    kernel = weight.transpose(2, 3, 1, 0)
    specs.append(
        _Spec(keras.layers.TimeDistributed(conv, name=name), kernel=kernel, bias=f64(node.bias))
    )
    h, w = (n + 2 * p for n, p in zip(stream.shape[:2], pad))
    out = [(n - sp - 1) // s + 1 for n, sp, s in zip((h, w), span, stride)]
    return Stream((*out, weight.shape[0]))


def _import_neuron(name, node, stream, specs, dt):
    """lifsg neuron for a NIR LIF / IF / LI / I; fold its input gain into the layer before."""
    who = f"node {name!r} ({type(node).__name__})"
    values = {
        k: stream.from_nir(getattr(node, k), who)
        for k in ("r", "tau", "v_leak", "v_reset", "v_threshold")
        if getattr(node, k, None) is not None
    }
    if np.any(values.get("v_leak", 0) != 0):
        raise ValueError(f"{who}: lifsg's neurons rest at 0; v_leak != 0 has no equivalent")
    if np.any(values.get("v_reset", 0) != 0):
        raise ValueError(f"{who}: lifsg's neurons reset to 0; v_reset != 0 has no equivalent")
    if "tau" in values:
        w_leak = dt / values["tau"]
        gain = w_leak * values["r"]
    else:
        w_leak = np.zeros_like(values["r"])
        gain = dt * values["r"]
    if np.any(~np.isfinite(w_leak)) or np.any(w_leak < 0) or np.any(w_leak > 1):
        raise ValueError(
            f"{who}: dt / tau must lie in [0, 1] for forward Euler at dt={dt}; use a smaller dt"
        )
    spiking = isinstance(node, (nir.LIF, nir.IF))
    threshold = 1.0
    if spiking:
        v_th = values["v_threshold"]
        if np.any(v_th <= 0):
            raise ValueError(f"{who}: lifsg needs thresholds > 0")
        threshold = float(v_th[0]) if np.all(v_th == v_th[0]) else 1.0
        gain = gain * threshold / v_th
    if not np.allclose(gain, 1.0, rtol=1e-9, atol=0):
        _fold_gain(who, specs, gain)
    if spiking:
        layer = LIF(threshold=threshold, name=name)
    else:
        layer = LeakyReadout(reduce=None, name=name)
    specs.append(_Spec(layer, w_leak=w_leak))


def _fold_gain(who, specs, gain):
    """Scale the output features of the preceding Dense / Conv2D by ``gain`` (Keras order)."""
    prev = specs[-1] if specs else None
    if prev is None or "kernel" not in prev.weights:
        raise ValueError(
            f"{who}: its input gain (dt r / tau, over the threshold) is not 1 and no Affine or "
            "Conv2d precedes it to absorb it"
        )
    prev.weights["kernel"] = prev.weights["kernel"] * gain
    if "bias" in prev.weights:
        prev.weights["bias"] = prev.weights["bias"] * gain
