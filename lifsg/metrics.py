"""How sparse a spiking network is: spike counts and synaptic operations (SynOps) per layer.

A *spiking layer* is a :class:`~lifsg.layers.LIF` / :class:`~lifsg.layers.DenseLIF` that
returns spikes, or a spike-emitting encoder (:class:`~lifsg.encoders.PoissonEncoder`,
:class:`~lifsg.encoders.LatencyEncoder`; role "input"). The constant-current encoder emits
currents, not spikes, so the layer it feeds does dense multiply-accumulates in any case and
gets no row.

Conventions (all counted per image, summed over the time steps the network runs):

- SynOps of a spiking layer: every non-zero input that its spikes cause in the *synaptic
  layers it feeds* (Dense, Conv1D/2D/3D, also inside TimeDistributed, or a lifsg layer),
  times that input's fan-out. Layers without weights in between (Reshape, Flatten, pooling,
  RepeatVector, Dropout, ...) pass spikes on, so what is counted is what arrives.
- Fan-out of one input: ``units`` for Dense and lifsg layers with ``units`` (1 for a lifsg
  layer without: one addition into one potential). For a convolution: the number of output
  positions whose window covers the input position (with the layer's stride, dilation and
  padding; padded zeros are no synapses) times ``filters / groups``. Away from the borders
  that is ``kernel_h * kernel_w * filters`` for stride 1 and about ``/ stride**2`` of it for
  larger strides.
- Dense MACs: the same count with every input non-zero, i.e. the multiply-accumulates of
  the same network, with the same steps, if its activations were dense. Divide by ``steps``
  for one pass of a non-spiking network of the same shape.
"""

import math

import keras
import numpy as np

from lifsg.encoders import LatencyEncoder, PoissonEncoder
from lifsg.layers import LIF, LeakyReadout

SPIKING_ENCODERS = (PoissonEncoder, LatencyEncoder)
CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)
COLUMNS = (
    "layer",
    "role",
    "neurons",
    "steps",
    "spikes_per_image",
    "spikes_per_neuron_step",
    "fan_out",
    "synops_per_image",
    "dense_macs_per_image",
    "targets",
)


def spiking_layers(model):
    """The layers of ``model`` that emit spikes, in model order (see the module docstring)."""
    return [
        layer
        for layer in model.layers
        if isinstance(layer, SPIKING_ENCODERS)
        or (isinstance(layer, LIF) and not layer.return_potential)
    ]


def hidden_spiking_layers(model):
    """Names of the spiking layers of ``model`` that are not input encoders, in model order."""
    return [
        layer.name for layer in spiking_layers(model) if not isinstance(layer, SPIKING_ENCODERS)
    ]


def activity(model, images, batch_size=100):
    """Spike counts and SynOps per spiking layer of ``model`` over ``images``.

    model: a built functional or Sequential Keras model. images: what the model takes (e.g.
    intensities in [0, 1], (N, 28, 28)); N >= 1. Poisson encoders draw new spikes (their seed
    generator advances). Returns one dict per spiking layer, keys :data:`COLUMNS`:
    layer (name), role ("input" for an encoder, else "hidden"), neurons (features per step),
    steps, spikes_per_image, spikes_per_neuron_step, fan_out (mean synapses per neuron, =
    dense MACs / (neurons * steps)), synops_per_image, dense_macs_per_image, targets
    (the synaptic layers fed, comma-separated). Raises ValueError for a model without spiking
    layers or with a layer after the spikes whose fan-out is unknown.
    """
    sources = spiking_layers(_checked(model))
    if not sources:
        raise ValueError(
            f"model {model.name!r} has no spiking layer (LIF, DenseLIF, spike encoder)"
        )
    consumers = _consumers(model)
    targets = {source.name: _targets(source, consumers) for source in sources}
    tensors = _unique([s.output for s in sources] + [t for ts in targets.values() for _, t in ts])
    for tensor in tensors:
        if None in tensor.shape[1:]:
            raise ValueError(f"shape {tensor.shape} in {model.name!r} must be known but for batch")
    fan = {id(t): _fan_out(layer, t) for ts in targets.values() for layer, t in ts}
    nonzero = {id(t): np.zeros(t.shape[1:], "int64") for t in tensors}
    count, probe = 0, _probe(model, tensors)
    for batch in _batches(images, batch_size):
        for tensor, value in zip(tensors, probe(batch), strict=True):
            nonzero[id(tensor)] += np.count_nonzero(np.asarray(value), axis=0)
        count += len(batch)
    rows = []
    for source in sources:
        shape = source.output.shape
        neurons, steps = math.prod(shape[2:]), shape[1]
        spikes = nonzero[id(source.output)].sum() / count
        synops = sum(float((nonzero[id(t)] * fan[id(t)]).sum()) for _, t in targets[source.name])
        macs = sum(float(fan[id(t)].sum()) for _, t in targets[source.name])
        rows.append(
            {
                "layer": source.name,
                "role": "input" if isinstance(source, SPIKING_ENCODERS) else "hidden",
                "neurons": neurons,
                "steps": steps,
                "spikes_per_image": float(spikes),
                "spikes_per_neuron_step": float(spikes / (neurons * steps)),
                "fan_out": macs / (neurons * steps),
                "synops_per_image": synops / count,
                "dense_macs_per_image": macs,
                "targets": ", ".join(layer.name for layer, _ in targets[source.name]),
            }
        )
    return rows


def spike_trains(model, images, layers=None, batch_size=100):
    """The spikes of spiking layers for ``images``: {name: uint8 array (N, steps, neurons)}.

    layers: names (default: all of :func:`spiking_layers`). Features are flattened row-major
    (for a convolution: ``(row * width + column) * channels + channel``).
    """
    sources = spiking_layers(_checked(model))
    if layers is not None:
        unknown = sorted(set(layers) - {s.name for s in sources})
        if unknown:
            raise ValueError(
                f"not spiking layers of {model.name!r}: {unknown}; "
                f"spiking: {[s.name for s in sources]}"
            )
        sources = [s for s in sources if s.name in layers]
    parts, probe = {s.name: [] for s in sources}, _probe(model, [s.output for s in sources])
    for batch in _batches(images, batch_size):
        for source, value in zip(sources, probe(batch), strict=True):
            value = np.asarray(value)
            parts[source.name].append(value.reshape(*value.shape[:2], -1).astype("uint8"))
    return {name: np.concatenate(chunks) for name, chunks in parts.items()}


def markdown(rows):
    """A Markdown table of :func:`activity` rows (numbers rounded for reading)."""
    lines = [
        "| layer | neurons x steps | spikes / image | spikes / neuron / step | mean fan-out "
        "| SynOps / image | dense MACs / image | SynOps / MACs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = (
            r["synops_per_image"] / r["dense_macs_per_image"] if r["dense_macs_per_image"] else 0
        )
        lines.append(
            f"| {r['layer']} ({r['role']}) | {r['neurons']} x {r['steps']} "
            f"| {r['spikes_per_image']:.1f} | {r['spikes_per_neuron_step']:.4f} "
            f"| {r['fan_out']:.1f} | {r['synops_per_image']:.3g} "
            f"| {r['dense_macs_per_image']:.3g} | {ratio:.4f} |"
        )
    return "\n".join(lines)


def _checked(model):
    if not isinstance(model, keras.Model) or not getattr(model, "inputs", None):
        raise ValueError(
            "activity metrics need a built functional or Sequential keras.Model "
            f"(with known inputs), got {type(model).__name__}"
        )
    return model


def _unique(tensors):
    seen, out = set(), []
    for t in tensors:
        if id(t) not in seen:
            seen.add(id(t))
            out.append(t)
    return out


def _batches(images, batch_size):
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool):
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    images = np.asarray(images)
    if images.ndim == 0 or len(images) == 0:
        raise ValueError(f"images must be a non-empty batch (N, ...), got shape {images.shape}")
    for start in range(0, len(images), batch_size):
        yield images[start : start + batch_size]


def _probe(model, tensors):
    """batch -> [values of the graph ``tensors`` of ``model``] (inference mode)."""
    probe = keras.Model(model.inputs, tensors)

    def run(batch):
        outputs = probe.predict_on_batch(batch)
        return outputs if isinstance(outputs, (list, tuple)) else [outputs]

    return run


def _consumers(model):
    """{id(tensor): [layers of ``model`` that take it as input]}."""
    out = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        for tensor in keras.tree.flatten(layer.input):
            out.setdefault(id(tensor), []).append(layer)
    return out


def _synaptic(layer):
    """The weighted layer inside ``layer`` (TimeDistributed unwrapped), or None for a layer
    without weights that passes its input on; ValueError for a layer of unknown fan-out."""
    inner = layer.layer if isinstance(layer, keras.layers.TimeDistributed) else layer
    if isinstance(inner, (keras.layers.Dense, LIF, LeakyReadout, *CONVOLUTIONS)):
        return inner
    if not inner.weights:
        return None
    raise ValueError(
        f"cannot count synaptic operations into layer {layer.name!r} "
        f"({type(inner).__name__}): supported are Dense, Conv1D/2D/3D (also in "
        "TimeDistributed) and lifsg layers; layers without weights pass spikes on"
    )


def _targets(source, consumers):
    """[(synaptic layer, its input tensor)] reached from ``source``'s spikes."""
    found, frontier = [], [source.output]
    while frontier:
        tensor = frontier.pop()
        for layer in consumers.get(id(tensor), []):
            if len(keras.tree.flatten(layer.input)) != 1:
                raise ValueError(
                    f"layer {layer.name!r} ({type(layer).__name__}) merges several inputs after "
                    f"the spiking layer {source.name!r}; SynOps cannot be attributed"
                )
            if _synaptic(layer) is None:
                frontier.append(layer.output)
            else:
                found.append((layer, tensor))
    return found


def _fan_out(layer, tensor):
    """Fan-out of every input element of ``layer`` (float array shaped ``tensor.shape[1:]``)."""
    shape = tuple(tensor.shape[1:])
    inner = _synaptic(layer)
    if isinstance(inner, CONVOLUTIONS):
        return np.broadcast_to(_conv_fan_out(inner, layer.name, shape), shape).astype("float64")
    units = inner.units if isinstance(inner, keras.layers.Dense) else (inner.units or 1)
    return np.full(shape, float(units))


def _conv_fan_out(conv, name, shape):
    """Fan-out map (spatial..., 1) of a channels-last convolution over inputs ``shape``."""
    if conv.data_format != "channels_last":
        raise ValueError(f"layer {name!r}: only channels_last convolutions are supported")
    rank = len(conv.kernel_size)
    spatial = shape[-1 - rank : -1]
    fan = np.ones((), "float64")
    for axis, n in enumerate(spatial):
        cover = axis_cover(
            n, conv.kernel_size[axis], conv.strides[axis], conv.dilation_rate[axis], conv.padding
        )
        fan = np.multiply.outer(fan, cover)
    return (fan * (conv.filters // conv.groups))[..., None]


def axis_cover(n, kernel, stride=1, dilation=1, padding="valid"):
    """How many output positions of a 1-D convolution read each of ``n`` input positions.

    padding: "valid", "same" (TensorFlow/Keras: ``ceil(n / stride)`` outputs, the odd padded
    zero at the end) or "causal" (all padding at the start). Returns an int array (n,).
    """
    span = dilation * (kernel - 1) + 1
    if padding == "valid":
        outputs, before = max((n - span) // stride + 1, 0), 0
    elif padding == "same":
        outputs = -(-n // stride)
        before = max((outputs - 1) * stride + span - n, 0) // 2
    elif padding == "causal":
        outputs, before = -(-n // stride), span - 1
    else:
        raise ValueError(f"unknown padding {padding!r}")
    read = np.arange(outputs)[:, None] * stride + np.arange(kernel)[None, :] * dilation - before
    read = read[(read >= 0) & (read < n)]
    return np.bincount(read, minlength=n)
