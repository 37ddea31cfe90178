"""NIR graph -> lifsg model: :func:`from_nir`. Graphs that lifsg exported come back exactly
from their metadata; others are read by NIR's equations (:mod:`lifsg.nir.foreign`)."""

import json
import os
import warnings

import keras
import nir
import numpy as np

from lifsg.layers import LIF, LeakyReadout
from lifsg.nir.export import export_layer, to_nir
from lifsg.nir.foreign import import_foreign
from lifsg.nir.layout import Stream, check_dt

_CHECK_RTOL = 1e-6  # NIR parameters vs lifsg metadata on import


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
    return import_foreign(graph, names, check_dt(dt))


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
    if dt is not None and check_dt(dt) != stored:
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
    stream = Stream(inputs.shape[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # reset warnings were given at export
        for layer, nodes in restored:
            _set_weights(layer, nodes, stream)
            stream_ref = [stream]
            for _ in export_layer(layer, stream_ref, stored):
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
        stream = Stream((layer.units,))
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
