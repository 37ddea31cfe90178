"""How sparse the trained networks are: spike counts and SynOps per layer of stored models
(:func:`lifsg.metrics.activity`), and one image's spikes for a raster plot.

:func:`measure` gives the JSON-ready record that notebooks 06 and 09 store as
``activity.json`` beside the run results (read back by
:func:`lifsg.studies.results.load_activity`); the results tables
(:func:`lifsg.figures.mnist.results_table`) and :mod:`lifsg.figures.activity` draw it.
"""

from pathlib import Path

import numpy as np

from lifsg import metrics

from .results import ACTIVITY_FILE, group_name, load
from .training import prepare_images

__all__ = ["ACTIVITY_FILE", "first_seeds", "measure", "raster_trains"]


def first_seeds(names):
    """``{group: name}``: the first run of each group (runs that differ only in their
    ``_s<seed>`` suffix), in the order of ``names``."""
    first = {}
    for name in names:
        first.setdefault(group_name(name), name)
    return first


def measure(results_dir, names, images, batch_size=100):
    """Spike counts and SynOps of the first seed of each group of finished runs ``names``.

    results_dir: the folder of the stored ``<name>.keras`` models. images: test images as the
    models take them before :func:`~lifsg.studies.training.prepare_images` (e.g. (N, 28, 28)
    uint8 or [0, 1]). Poisson encoders draw new spikes. Returns ``{"images": N, "models":
    {group: {"run": name, "layers": [rows of lifsg.metrics.activity]}}}``.
    """
    x = prepare_images(images)
    return {
        "images": int(len(x)),
        "models": {
            group: {
                "run": name,
                "layers": metrics.activity(
                    load(Path(results_dir) / f"{name}.keras"), x, batch_size=batch_size
                ),
            }
            for group, name in first_seeds(names).items()
        },
    }


def raster_trains(model, image):
    """The spikes of every hidden LIF layer of ``model`` for one ``image``.

    image: one model input without the batch axis (e.g. (28, 28) intensities in [0, 1]).
    Returns ``{layer name: uint8 array (steps, neurons)}`` in model order (features flattened
    as in :func:`lifsg.metrics.spike_trains`).
    """
    image = np.asarray(image)
    expected = tuple(model.inputs[0].shape[1:])
    if len(image.shape) != len(expected) or any(
        e not in (None, s) for e, s in zip(expected, image.shape, strict=True)
    ):
        raise ValueError(f"expected one image shaped {expected}, got shape {image.shape}")
    names = metrics.hidden_spiking_layers(model)
    if not names:
        raise ValueError(f"model {model.name!r} has no hidden LIF layer")
    trains = metrics.spike_trains(model, image[None], layers=names)
    return {name: trains[name][0] for name in names}
