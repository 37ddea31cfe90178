"""Spike rasters of a trained network: one panel per hidden LIF layer for one image.

x = time step, y = neuron (features flattened row-major, as in
:func:`lifsg.metrics.spike_trains`). Layers with more than ``max_neurons`` neurons show a
random subset (fixed ``seed``, sorted by index), and the panel title says so. Spike counts
per layer for many images are :func:`lifsg.metrics.activity`.
"""

import numpy as np
from matplotlib.figure import Figure

from lifsg import metrics


def hidden_spiking_layers(model):
    """Names of the spiking layers of ``model`` that are not input encoders."""
    return [
        layer.name
        for layer in metrics.spiking_layers(model)
        if not isinstance(layer, metrics.SPIKING_ENCODERS)
    ]


def raster_figure(model, image, max_neurons=200, seed=0, label="one image"):
    """Spike raster of every hidden LIF layer of ``model`` for one input ``image``.

    image: one model input without the batch axis (e.g. (28, 28) intensities in [0, 1]).
    max_neurons: largest number of neurons drawn per layer (default 200). label: what the
    image is, for the title (e.g. "MNIST test image 0 (digit 7)").
    Returns ``(fig, data)``; data has one row per drawn spike: layer, step, neuron (index in
    the layer), row (position on the panel's y axis).
    """
    image = np.asarray(image)
    expected = tuple(model.inputs[0].shape[1:])
    if len(image.shape) != len(expected) or any(
        e not in (None, s) for e, s in zip(expected, image.shape, strict=True)
    ):
        raise ValueError(f"expected one image shaped {expected}, got shape {image.shape}")
    if not isinstance(max_neurons, (int, np.integer)) or max_neurons < 1:
        raise ValueError(f"max_neurons must be a positive integer, got {max_neurons!r}")
    names = hidden_spiking_layers(model)
    if not names:
        raise ValueError(f"model {model.name!r} has no hidden LIF layer")
    trains = metrics.spike_trains(model, image[None], layers=names)
    rng = np.random.default_rng(seed)

    fig = Figure(figsize=(max(3.4 * len(names) + 0.6, 6.0), 4.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    data = {"layer": [], "step": [], "neuron": [], "row": []}
    for ax, name in zip(axes, names, strict=True):
        spikes = trains[name][0]  # (steps, neurons)
        steps, neurons = spikes.shape
        shown = np.arange(neurons)
        title = f"{name}: {neurons} neurons"
        if neurons > max_neurons:
            shown = np.sort(rng.choice(neurons, max_neurons, replace=False))
            title = f"{name}: random {max_neurons} of {neurons} neurons"
        part = spikes[:, shown]
        ax.imshow(
            part.T,
            aspect="auto",
            origin="lower",
            cmap="Greys",
            vmin=0,
            vmax=1,
            interpolation="nearest",
            extent=(-0.5, steps - 0.5, -0.5, len(shown) - 0.5),
        )
        rate = spikes.mean()
        ax.set_title(f"{title}\n{int(spikes.sum())} spikes, {rate:.3f} per neuron per step")
        ax.title.set_fontsize(9)
        ax.set_xlabel("time step")
        ax.set_ylabel("neuron" if len(shown) == neurons else "neuron (subset, by index)")
        step, row = np.nonzero(part)
        data["layer"] += [name] * len(step)
        data["step"] += step.tolist()
        data["neuron"] += shown[row].tolist()
        data["row"] += row.tolist()
    fig.suptitle(f"Spikes of the hidden LIF layers of {model.name}\nfor {label}", fontsize=11)
    return fig, data


def sparsity_figure(models, images, batch_size=100):
    """Spike counts and SynOps of several trained models on the same ``images``.

    models: ``{label: keras.Model}``. Bars per model (log scale): the SynOps per image of its
    spiking layers, summed, against the MACs the same layers' targets would cost with dense
    activations. Returns ``(fig, data)``; data has one row per model and spiking layer with the
    columns of :func:`lifsg.metrics.activity` and the model's label.
    """
    data = {k: [] for k in ("model", *metrics.COLUMNS)}
    totals = {}
    for label, model in models.items():
        rows = metrics.activity(model, images, batch_size=batch_size)
        for row in rows:
            data["model"].append(label)
            for k in metrics.COLUMNS:
                data[k].append(row[k])
        totals[label] = (
            sum(r["synops_per_image"] for r in rows),
            sum(r["dense_macs_per_image"] for r in rows),
        )
    fig = Figure(figsize=(max(6, 0.9 * len(models) + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(totals))
    synops = [t[0] for t in totals.values()]
    macs = [t[1] for t in totals.values()]
    ax.bar(x - 0.2, macs, 0.4, color="0.7", label="MACs with dense activations")
    ax.bar(x + 0.2, synops, 0.4, color="C0", label="SynOps (spikes x fan-out)")
    ax.set_xticks(x, list(totals), rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("operations per image")
    ax.set_title(f"after the spiking layers, {len(images)} test images", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig, data
