"""Spike rasters of a trained network: one panel per hidden LIF layer for one image.

x = time step, y = neuron (features flattened row-major, as in
:func:`lifsg.metrics.spike_trains`). Layers with more than ``max_neurons`` neurons show a
random subset (fixed ``seed``, sorted by index), and the panel title says so. Spike counts
per layer for many images (:func:`lifsg.studies.sparsity.measure`) are drawn by
:func:`sparsity_figure`. Both only draw: the models run in :mod:`lifsg.studies.sparsity`.
"""

import numpy as np
from matplotlib.figure import Figure

from lifsg import metrics


def raster_figure(trains, max_neurons=200, seed=0, label="one image", model_name="the network"):
    """Spike raster of every hidden LIF layer for one input image.

    trains: ``{layer name: array (steps, neurons)}`` of 0/1, e.g.
    :func:`lifsg.studies.sparsity.raster_trains`. max_neurons: largest number of neurons
    drawn per layer (default 200). label: what the image is, for the title (e.g. "MNIST test
    image 0 (digit 7)"). Returns ``(fig, data)``; data has one row per drawn spike: layer,
    step, neuron (index in the layer), row (position on the panel's y axis).
    """
    if not isinstance(max_neurons, (int, np.integer)) or max_neurons < 1:
        raise ValueError(f"max_neurons must be a positive integer, got {max_neurons!r}")
    if not trains:
        raise ValueError("no spike trains to draw")
    names = list(trains)
    rng = np.random.default_rng(seed)

    fig = Figure(figsize=(max(3.4 * len(names) + 0.6, 6.0), 4.4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)[0]
    data = {"layer": [], "step": [], "neuron": [], "row": []}
    for ax, name in zip(axes, names, strict=True):
        spikes = np.asarray(trains[name])
        if spikes.ndim != 2:
            raise ValueError(f"spikes of {name!r} must be (steps, neurons), got {spikes.shape}")
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
    fig.suptitle(f"Spikes of the hidden LIF layers of {model_name}\nfor {label}", fontsize=11)
    return fig, data


def sparsity_figure(activity):
    """Spike counts and SynOps of several trained models on the same images.

    activity: the record of :func:`lifsg.studies.sparsity.measure` (``{"images": N,
    "models": {label: {"run": name, "layers": [rows]}}}``). Bars per model (log scale): the
    SynOps per image of its spiking layers, summed, against the MACs the same layers' targets
    would cost with dense activations. Returns ``(fig, data)``; data has one row per model and
    spiking layer with the columns of :func:`lifsg.metrics.activity` and the model's label.
    """
    data = {k: [] for k in ("model", *metrics.COLUMNS)}
    totals = {}
    for label, entry in activity["models"].items():
        rows = entry["layers"]
        for row in rows:
            data["model"].append(label)
            for k in metrics.COLUMNS:
                data[k].append(row[k])
        totals[label] = (
            sum(r["synops_per_image"] for r in rows),
            sum(r["dense_macs_per_image"] for r in rows),
        )
    fig = Figure(figsize=(max(6, 0.9 * len(totals) + 2), 3.6), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(totals))
    synops = [t[0] for t in totals.values()]
    macs = [t[1] for t in totals.values()]
    ax.bar(x - 0.2, macs, 0.4, color="0.7", label="MACs with dense activations")
    ax.bar(x + 0.2, synops, 0.4, color="C0", label="SynOps (spikes x fan-out)")
    ax.set_xticks(x, list(totals), rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("operations per image")
    ax.set_title(f"after the spiking layers, {activity['images']} test images", fontsize=10)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig, data
