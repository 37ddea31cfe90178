"""Paper item F4: an image and its input encodings (Poisson, latency, constant current); the
drawing is :mod:`lifsg.figures.encodings`.

Everything is computed with the real encoder layers of :mod:`lifsg.encoders`; rasters have
x = time step and y = input unit (the image flattened row-major, unit ``r * width + c``).
Defaults are the original MNIST settings (docs/model.md section 5): 100 steps, Poisson with
``p = x * factor * dt``, factor 1 on intensities in [0, 1] (1/255 on raw pixels) and dt 0.005
(at most 0.5 expected spikes per white pixel); latency with tau 1 and threshold 0.2; constant
current ``x * factor * dt`` at every step.
"""

import numpy as np

from lifsg.encoders import ConstantEncoder, LatencyEncoder, PoissonEncoder

ENCODINGS = ("poisson", "latency", "constant")


def _as_batch(images):
    x = np.asarray(images, dtype="float32")
    if x.ndim == 2:
        x = x[None]
    if x.ndim < 2 or x.size == 0:
        raise ValueError(f"expected an image (H, W) or a batch (N, ...), got shape {x.shape}")
    return x


def encoders(steps=100, factor=1.0, dt=0.005, tau=1.0, threshold=0.2, seed=0):
    """The three encoder layers with these settings, by name."""
    return {
        "poisson": PoissonEncoder(steps, factor=factor, dt=dt, seed=seed),
        "latency": LatencyEncoder(steps, tau=tau, threshold=threshold),
        "constant": ConstantEncoder(steps, factor=factor, dt=dt),
    }


def encode(images, steps=100, factor=1.0, dt=0.005, tau=1.0, threshold=0.2, seed=0):
    """Encode an image (H, W) or a batch (N, ...) of intensities in [0, 1].

    Returns a dict name -> float array (N, steps, units) for "poisson", "latency", "constant".
    """
    x = _as_batch(images)
    layers = encoders(steps, factor, dt, tau, threshold, seed)
    return {name: np.asarray(layer(x), dtype=float) for name, layer in layers.items()}


def expected_counts(images, steps=100, factor=1.0, dt=0.005, tau=1.0, threshold=0.2):
    """What each encoding should give per image, from the formulas alone (N,) per name.

    Poisson: the expected spike count ``steps * sum(x) * factor * dt``; latency: the number of
    units with ``x > threshold`` whose latency ``floor(tau * ln(x / (x - threshold)) * steps)``
    falls inside the window; constant: the summed current ``steps * sum(x) * factor * dt``.
    """
    x = _as_batch(images).reshape(len(_as_batch(images)), -1).astype(float)
    total = x.sum(axis=1) * factor * dt * steps
    above = x > threshold
    safe = np.where(above, x, 1.0)
    latency = np.floor(tau * np.log(safe / (safe - threshold)) * steps)
    inside = above & (latency < steps)
    return {"poisson": total, "latency": inside.sum(axis=1).astype(float), "constant": total}


def spike_summary(images, steps=100, factor=1.0, dt=0.005, tau=1.0, threshold=0.2, seed=0):
    """Spike counts per encoding over a batch of images: a list of row dicts.

    Columns: encoding; images; per_image (mean summed entries per image: spikes for Poisson and
    latency, summed current for constant); expected (the same from the formulas,
    :func:`expected_counts`); nonzero_fraction (of all steps x units entries);
    active_units (mean units with any nonzero entry per image); max_per_unit (largest entry
    sum of one unit in one image).
    """
    x = _as_batch(images)
    coded = encode(x, steps, factor, dt, tau, threshold, seed)
    expected = expected_counts(x, steps, factor, dt, tau, threshold)
    rows = []
    for name in ENCODINGS:
        a = coded[name]
        per_unit = a.sum(axis=1)  # (N, units)
        rows.append(
            {
                "encoding": name,
                "images": len(x),
                "per_image": float(per_unit.sum(axis=1).mean()),
                "expected": float(expected[name].mean()),
                "nonzero_fraction": float(np.count_nonzero(a) / a.size),
                "active_units": float(np.count_nonzero(per_unit, axis=1).mean()),
                "max_per_unit": float(per_unit.max()),
            }
        )
    return rows


def summary_markdown(rows):
    """A Markdown table of :func:`spike_summary` rows."""
    head = "| encoding | per image | expected | nonzero fraction | active units | max per unit |"
    lines = [head, "|---|---|---|---|---|---|"]
    for r in rows:
        unit = " (current)" if r["encoding"] == "constant" else " spikes"
        lines.append(
            f"| {r['encoding']} | {r['per_image']:.2f}{unit} | {r['expected']:.2f} | "
            f"{r['nonzero_fraction']:.4f} | {r['active_units']:.1f} | {r['max_per_unit']:.3g} |"
        )
    return "\n".join(lines)
