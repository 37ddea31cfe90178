"""NIR interoperability: :func:`to_nir`, :func:`from_nir` and the reference :func:`simulate`.

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) describes a network per time
step in continuous time; the file stores no time step. lifsg's discrete neuron is forward Euler
at step ``dt`` of NIR's LIF ``tau dv/dt = (v_leak - v) + r I`` with::

    tau = dt / w_leak     r = 1 / w_leak     v_leak = 0     v_threshold = threshold     v_reset = 0

since one step gives ``v + w_leak (-v + I / w_leak) = (1 - w_leak) v + I``. A layer whose leaks
are all 0 becomes NIR's IF ``dv/dt = r I`` with ``r = 1 / dt`` (one Euler step adds ``dt r I =
I``); a leaky layer's units with leak exactly 0 get the stand-in leak :data:`ZERO_LEAK` (NIR's
LIF has no exact perfect integrator). The read-out maps the same way to LI (or I).

lifsg's delayed reset equals NIR's reset to ``v_reset = 0`` in the step of the spike. What NIR
cannot express: the ReLU floor (V >= 0; only matters for negative currents), the spike at
``V >= threshold`` (NIR: ``v > v_threshold``; only matters at exact equality), the "subtract"
and "zero" resets (exported as NIR's reset, with a warning), and the read-out's reduction over
time and activation (the NIR graph outputs the potential at every step). lifsg's exact rules
and the exact leaks travel in each node's ``metadata``, so lifsg -> file -> lifsg is bit-exact.

Layout: NIR nodes act on one time step of one sample: a feature vector ``(F,)`` or an image
``(C, H, W)`` (channels first, as in PyTorch); lifsg tensors are ``(batch, time, F)`` or
``(batch, time, H, W, C)``. Convolutional models therefore take ``(batch, time, C, H, W)``
in :func:`simulate`, and Affine weights after a Flatten are permuted to NIR's order.

Needs the optional dependency ``nir`` (``pip install "lifsg[nir]"``).
"""

import json
import os
import warnings

import keras
import numpy as np

try:
    import nir
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError('lifsg.nir needs the optional package nir: pip install "lifsg[nir]"') from err

import lifsg
from lifsg.encoders import _Encoder
from lifsg.layers import LIF, LeakyReadout

ZERO_LEAK = 1e-9
"""Leak exported for the units of a leaky layer whose leak is exactly 0 (tau = dt * 1e9).
Over T steps the potential then differs from lifsg's by at most ``T * 1e-9 * |V|``."""

_CHECK_RTOL = 1e-6  # NIR parameters vs lifsg metadata on import


# ----------------------------------------------------------------------------- layout


class _Stream:
    """The per-step shape flowing between layers, in Keras (features last) and NIR order.

    shape: Keras per-step shape, ``(F,)`` or ``(H, W, C)``. perm: for flat features, NIR
    position -> Keras index (``nir = keras[perm]``) after a Flatten of an image; else None.
    """

    def __init__(self, shape, perm=None):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (1, 3) or any(s < 1 for s in shape):
            raise ValueError(
                "NIR export/import supports per-step features (F,) or images (H, W, C) "
                f"(channels last in Keras), got per-step shape {shape}"
            )
        self.shape, self.perm = shape, perm

    @property
    def image(self):
        return len(self.shape) == 3

    @property
    def nir_shape(self):
        return (self.shape[2], self.shape[0], self.shape[1]) if self.image else self.shape

    def to_nir(self, values):
        """Per-feature values (last Keras axis, or a scalar) -> an array of NIR shape."""
        values = np.broadcast_to(np.asarray(values), self.shape[-1:])
        if self.image:
            return np.ascontiguousarray(np.broadcast_to(values[:, None, None], self.nir_shape))
        return values[self.perm] if self.perm is not None else np.array(values)

    def from_nir(self, values, who):
        """An array of NIR shape (or broadcastable) -> per-feature values in Keras order."""
        values = np.broadcast_to(np.asarray(values, dtype="float64"), self.nir_shape)
        if self.image:
            per_channel = values[:, :1, :1]
            if not np.all(values == per_channel):
                raise ValueError(f"{who}: lifsg keeps one value per channel; these vary in space")
            return per_channel[:, 0, 0].copy()
        if self.perm is None:
            return values.copy()
        out = np.empty_like(values)
        out[self.perm] = values
        return out

    def flattened(self):
        """The stream after flattening an image: NIR order (C, H, W), Keras order (H, W, C)."""
        h, w, c = self.shape
        perm = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
        return _Stream((h * w * c,), perm)

    def kernel_to_nir(self, kernel):
        """Dense kernel (in, out) on this stream -> NIR weight (out, in)."""
        kernel = np.asarray(kernel)
        return (kernel[self.perm] if self.perm is not None else kernel).T.copy()

    def kernel_from_nir(self, weight):
        """NIR weight (out, in) on this stream -> Dense kernel (in, out)."""
        weight = np.asarray(weight).T
        if self.perm is None:
            return weight.copy()
        out = np.empty_like(weight)
        out[self.perm] = weight
        return out


def _numpy(variable):
    return np.array(variable.numpy())


def _serialized(layer):
    return json.dumps(keras.saving.serialize_keras_object(layer))


# ----------------------------------------------------------------------------- export


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
    dt = _check_dt(dt)
    layers = _chain(model)
    stream = _Stream(model.inputs[0].shape[2:])
    nodes = {"input": nir.Input(input_type=np.array(stream.nir_shape))}
    for layer in layers:
        stream_ref = [stream]
        for name, node in _export_layer(layer, stream_ref, dt):
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


def _check_dt(dt):
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)):
        raise TypeError(f"dt must be a number of seconds > 0, got {dt!r}")
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    return float(dt)


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


def _export_layer(layer, stream_ref, dt):
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
        stream_ref[0] = _Stream((layer.units,))
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
    stream_ref[0] = _Stream(out_shape)
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
        stream = _Stream((layer.units,))
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


# ----------------------------------------------------------------------------- import


def from_nir(graph_or_path, dt=None):
    """A Keras model from a NIR graph (a ``nir.NIRGraph`` or the path of a ``.nir`` file).

    Graphs exported by :func:`to_nir` come back exactly: the same layers, configs and weights,
    taken from the nodes' lifsg metadata after checking that the NIR parameters still match
    it (an edited node raises ValueError). ``dt`` must then be None or the export's.

    Other graphs (a chain Input -> ... -> Output of Affine, Linear, Conv2d, AvgPool2d,
    SumPool2d, Flatten, Scale, LIF, IF, LI, I) are read with NIR's equations, forward Euler at
    ``dt`` (required: the file stores none): a neuron node becomes ``lifsg.LIF`` (LI:
    ``LeakyReadout(reduce=None)``) with ``w_leak = dt / tau`` (IF, I: 0); its input gain
    ``dt r / tau`` (IF, I: ``dt r``) and any spread of thresholds are folded into the Dense or
    Conv2D before it. lifsg's neuron then differs from NIR's where currents are negative (its
    ReLU floor) and at ``v == v_threshold`` (it spikes). Input: ``(batch, time, F)`` or
    ``(batch, time, H, W, C)``.
    """
    graph = nir.read(os.fspath(graph_or_path)) if _is_path(graph_or_path) else graph_or_path
    if not isinstance(graph, nir.NIRGraph):
        raise TypeError(f"from_nir expects a nir.NIRGraph or a path, got {type(graph).__name__}")
    names = _node_chain(graph)
    inner = names[1:-1]
    tagged = [n for n in inner if "lifsg_layer" in graph.nodes[n].metadata]
    if inner and len(tagged) == len(inner) and "lifsg_dt" in graph.metadata:
        return _restore(graph, names, dt)
    if tagged:
        warnings.warn(
            "some nodes carry lifsg metadata but not all: reading every node by NIR's equations",
            stacklevel=2,
        )
    if dt is None:
        raise ValueError(
            "NIR stores no time step: pass dt in seconds (snnTorch's exports assume 1e-4, "
            "Norse's 1e-3)"
        )
    return _import_foreign(graph, names, _check_dt(dt))


def _is_path(value):
    return isinstance(value, (str, bytes, os.PathLike))


def _node_chain(graph):
    """Node names from the one Input to the one Output; ValueError unless a plain chain."""
    inputs, outputs = list(graph.inputs), list(graph.outputs)
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"lifsg imports graphs with one Input and one Output, got {inputs} and {outputs}"
        )
    following = {}
    for src, dst in graph.edges:
        if src in following:
            raise ValueError(f"node {src!r} feeds several nodes: lifsg imports chains only")
        following[src] = dst
    names, seen = [inputs[0]], {inputs[0]}
    while names[-1] in following:
        name = following[names[-1]]
        if name in seen:
            raise ValueError(f"node {name!r} closes a loop: lifsg imports feed-forward chains")
        names.append(name)
        seen.add(name)
    if names[-1] != outputs[0] or len(names) != len(graph.nodes):
        raise ValueError("the graph is not one chain from its Input to its Output")
    return names


def _restore(graph, names, dt):
    stored = float(graph.metadata["lifsg_dt"])
    if dt is not None and _check_dt(dt) != stored:
        raise ValueError(
            f"this graph was exported by lifsg at dt={stored}; another dt would change its "
            "discrete dynamics (pass dt=None)"
        )
    info = json.loads(graph.metadata["lifsg_model"])
    inputs = keras.Input(shape=tuple(info["input_shape"]))
    x, groups, group = inputs, [], []
    for name in names[1:-1]:
        group.append(name)
        if "lifsg_config" in graph.nodes[name].metadata:
            groups.append(group)
            group = []
    if group:
        raise ValueError(f"nodes {group} end without their layer's lifsg_config metadata")
    restored = []
    for group in groups:
        nodes = [graph.nodes[n] for n in group]
        config = json.loads(nodes[-1].metadata["lifsg_config"])
        layer = keras.saving.deserialize_keras_object(config)
        x = layer(x)
        restored.append((layer, nodes))
    model = keras.Model(inputs, x, name=info["name"])
    stream = _Stream(inputs.shape[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reset warnings were given at export
        for layer, nodes in restored:
            _set_weights(layer, nodes, stream)
            stream_ref = [stream]
            for _ in _export_layer(layer, stream_ref, stored):
                pass  # advances the stream (its layout after this layer)
            stream = stream_ref[0]
    _check_matches(graph, _to_nir_quiet(model, stored))
    return model


def _to_nir_quiet(model, dt):
    """:func:`to_nir` without its reset warnings (used to re-check an import)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return to_nir(model, dt)


def _set_weights(layer, nodes, stream):
    if isinstance(layer, keras.layers.TimeDistributed) and isinstance(
        layer.layer, keras.layers.Conv2D
    ):
        conv = layer.layer
        conv.kernel.assign(np.asarray(nodes[0].weight).transpose(2, 3, 1, 0))
        if conv.use_bias:
            conv.bias.assign(np.asarray(nodes[0].bias))
        return
    if not isinstance(layer, (keras.layers.Dense, LIF, LeakyReadout)):
        return
    if getattr(layer, "units", None) is not None:
        affine = nodes[0]
        layer.kernel.assign(stream.kernel_from_nir(affine.weight))
        if layer.bias is not None:
            layer.bias.assign(np.asarray(affine.bias))
        stream = _Stream((layer.units,))
    if isinstance(layer, keras.layers.Dense):
        return
    neuron = nodes[-1]
    layer.w_leak.assign(np.asarray(neuron.metadata["lifsg_w_leak"]))
    if isinstance(layer, LIF) and layer.trainable_threshold:
        layer.threshold_weight.assign(stream.from_nir(neuron.v_threshold, layer.name))


def _fields(node):
    d = node.to_dict()
    for key in ("metadata", "type", "input_type", "output_type"):
        d.pop(key, None)
    return d


def _check_matches(graph, expected):
    for name, node in expected.nodes.items():
        given = graph.nodes.get(name)
        if type(given) is not type(node):
            raise ValueError(f"node {name!r}: expected a {type(node).__name__}, got {given!r}")
        want, got = _fields(node), _fields(given)
        for key, value in want.items():
            a, b = np.asarray(value), np.asarray(got.get(key))
            numeric = a.dtype.kind in "biuf" and b.dtype.kind in "biuf"
            same = (
                a.shape == b.shape and np.allclose(a, b, rtol=_CHECK_RTOL, atol=0)
                if numeric
                else np.array_equal(a.astype(str), b.astype(str))
            )
            if not same:
                raise ValueError(
                    f"node {name!r}: its NIR parameter {key!r} no longer matches its lifsg "
                    "metadata (edited after export?); remove the lifsg_* metadata to read it "
                    "by NIR's equations"
                )


class _Spec:
    """A Keras layer to build and the weights to give it (foreign import)."""

    def __init__(self, layer, **weights):
        self.layer, self.weights = layer, weights


def _import_foreign(graph, names, dt):
    first = graph.nodes[names[0]]
    nir_shape = tuple(int(s) for s in np.asarray(first.input_type["input"]))
    if len(nir_shape) == 3:
        stream = _Stream((nir_shape[1], nir_shape[2], nir_shape[0]))
    else:
        stream = _Stream(nir_shape)
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
        weight = _f64(node.weight)
        if weight.ndim != 2 or stream.image or weight.shape[1] != stream.shape[0]:
            raise ValueError(
                f"node {name!r}: weight {weight.shape} does not fit features {stream.nir_shape}"
            )
        has_bias = isinstance(node, nir.Affine)
        layer = keras.layers.Dense(weight.shape[0], use_bias=has_bias, name=name)
        weights = {"kernel": stream.kernel_from_nir(weight)}
        if has_bias:
            weights["bias"] = _f64(node.bias)
        specs.append(_Spec(layer, **weights))
        return _Stream((weight.shape[0],))
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
        return _Stream(((h - size[0]) // stride[0] + 1, (w - size[1]) // stride[1] + 1, c))
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
        _Spec(keras.layers.TimeDistributed(conv, name=name), kernel=kernel, bias=_f64(node.bias))
    )
    h, w = (n + 2 * p for n, p in zip(stream.shape[:2], pad))
    out = [(n - sp - 1) // s + 1 for n, sp, s in zip((h, w), span, stride)]
    return _Stream((*out, weight.shape[0]))


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


# ----------------------------------------------------------------------------- simulation


def simulate(graph, inputs, dt, nodes=None):
    """Run a NIR graph by forward Euler at step ``dt`` from NIR's definitions alone.

    Independent of lifsg's layers and of any lifsg metadata: a reference for what a graph
    means. Per step, nodes run in topological order (edges carry values within the step;
    several edges into a node add up). Neurons start at ``v = v_leak``; LIF:
    ``v += dt / tau (v_leak - v + r I)``, IF: ``v += dt r I``, spike where ``v > v_threshold``,
    then ``v = v_reset``; LI and I likewise without spikes, outputting ``v``. Conv2d and
    pooling act on ``(C, H, W)`` with PyTorch's conventions (average pooling counts padding).

    inputs: ``(batch, time, *input shape)``. nodes: names to record (default: the Output).
    Returns ``{name: (batch, time, *shape)}`` in float64.
    """
    dt = _check_dt(dt)
    order = _topological(graph)
    before = {name: [src for src, dst in graph.edges if dst == name] for name in order}
    (source,) = graph.inputs
    x = np.asarray(inputs, dtype="float64")
    expected = tuple(int(s) for s in np.asarray(graph.nodes[source].input_type["input"]))
    if x.ndim < 2 or x.shape[2:] != expected:
        raise ValueError(f"inputs must be (batch, time, *{expected}), got {x.shape}")
    record = list(graph.outputs) if nodes is None else list(nodes)
    missing = [n for n in record if n not in graph.nodes]
    if missing:
        raise ValueError(f"no nodes {missing} in the graph")
    states, out = {}, {n: [] for n in record}
    for t in range(x.shape[1]):
        values = {}
        for name in order:
            node = graph.nodes[name]
            if name == source:
                value = x[:, t]
            else:
                value = sum(values[p] for p in before[name])
                value = _sim_step(name, node, value, states, dt)
            values[name] = value
            if name in out:
                out[name].append(value)
    return {n: np.stack(v, axis=1) for n, v in out.items()}


def _topological(graph):
    pending = {name: {src for src, dst in graph.edges if dst == name} for name in graph.nodes}
    order = []
    while pending:
        ready = [n for n, deps in pending.items() if not deps]
        if not ready:
            raise ValueError(f"the graph has a cycle through {sorted(pending)}")
        for name in ready:
            order.append(name)
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


def _f64(value):
    return np.asarray(value, dtype="float64")


def _sim_step(name, node, x, states, dt):
    if isinstance(node, (nir.Output, nir.Input)):
        return x
    if isinstance(node, nir.Affine):
        return x @ _f64(node.weight).T + _f64(node.bias)
    if isinstance(node, nir.Linear):
        return x @ _f64(node.weight).T
    if isinstance(node, nir.Scale):
        return x * _f64(node.scale)
    if isinstance(node, nir.Flatten):
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim + x.ndim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim + x.ndim
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])
    if isinstance(node, nir.Conv2d):
        return _sim_conv(node, x)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k = np.broadcast_to(node.kernel_size, (2,)).astype(int)
        s = np.broadcast_to(node.stride, (2,)).astype(int)
        p = np.broadcast_to(node.padding, (2,)).astype(int)
        windows = _windows(np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))), k, s, (1, 1))
        total = windows.sum(axis=(-2, -1))
        return total / (k[0] * k[1]) if isinstance(node, nir.AvgPool2d) else total
    if isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I)):
        v_leak = _f64(getattr(node, "v_leak", 0.0))
        v = states.get(name)
        if v is None:
            v = np.broadcast_to(v_leak, x.shape).copy()
        if isinstance(node, (nir.LIF, nir.LI)):
            v = v + dt / _f64(node.tau) * (v_leak - v + _f64(node.r) * x)
        else:
            v = v + dt * _f64(node.r) * x
        if isinstance(node, (nir.LI, nir.I)):
            states[name] = v
            return v
        spikes = v > _f64(node.v_threshold)
        states[name] = np.where(spikes, _f64(node.v_reset), v)
        return spikes.astype("float64")
    raise ValueError(f"node {name!r}: simulate does not support NIR {type(node).__name__}")


def _windows(x, kernel, stride, dilation):
    """(N, C, H, W) -> (N, C, Ho, Wo, kh, kw) sliding windows."""
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    view = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def _sim_conv(node, x):
    weight = _f64(node.weight)  # (out, in / groups, kh, kw)
    stride = np.broadcast_to(node.stride, (2,)).astype(int)
    dilation = np.broadcast_to(node.dilation, (2,)).astype(int)
    kernel = weight.shape[2:]
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        total = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel, dilation)]
        pads = [(t // 2, t - t // 2) for t in total]  # PyTorch puts the odd pixel last
    else:
        pads = [(int(p), int(p)) for p in np.broadcast_to(padding, (2,))]
    x = np.pad(x, ((0, 0), (0, 0), *pads))
    windows = _windows(x, kernel, stride, dilation)  # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo = windows.shape[:4]
    g = int(node.groups)
    windows = windows.reshape(n, g, c // g, ho, wo, *kernel)
    weight = weight.reshape(g, weight.shape[0] // g, *weight.shape[1:])
    y = np.einsum("ngchwij,gocij->ngohw", windows, weight).reshape(n, -1, ho, wo)
    return y + _f64(node.bias)[:, None, None]
