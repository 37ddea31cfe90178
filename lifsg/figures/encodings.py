"""Paper item F4, the drawing: an image and its spike rasters under each encoder (rasters:
x = time step, y = input unit, the image flattened row-major). The encodings and their counts:
:mod:`lifsg.studies.encodings`.
"""

import textwrap

import numpy as np
from matplotlib.figure import Figure

from lifsg.studies.encodings import ENCODINGS, encode

TITLES = {"poisson": "Poisson (rate)", "latency": "latency (time to first spike)"}
TITLES["constant"] = "constant current"


def input_encodings_figure(
    image,
    steps=100,
    factor=1.0,
    dt=0.005,
    tau=1.0,
    threshold=0.2,
    seed=0,
    label="image",
):
    """F4: the image and its Poisson, latency and constant-current encodings.

    image: (H, W) intensities in [0, 1]. label: what the image is (shown in the title, e.g.
    "MNIST test image 0 (digit 7)" or "synthetic stand-in"). Spike rasters for Poisson and
    latency (x: time step, y: input unit), an intensity raster for the constant current.
    Returns ``(fig, data)``; data has one row per nonzero entry: encoding, unit, step, value,
    plus the image's pixels as encoding "image" (step nan).
    """
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        raise ValueError(f"expected one image (H, W), got shape {image.shape}")
    coded = {k: v[0] for k, v in encode(image, steps, factor, dt, tau, threshold, seed).items()}
    units = image.size

    fig = Figure(figsize=(13.0, 4.4), layout="constrained")
    grid = fig.add_gridspec(1, 4, width_ratios=(1.0, 1.25, 1.25, 1.4))
    ax_img = fig.add_subplot(grid[0])
    ax_img.imshow(image, cmap="gray_r", vmin=0, vmax=1)
    ax_img.set_title(textwrap.fill(label, 26), fontsize=10)
    ax_img.set_xticks([])
    ax_img.set_yticks([])
    ax_img.set_xlabel(f"{image.shape[0]} x {image.shape[1]} = {units} input units", fontsize=9)

    axes = [fig.add_subplot(grid[i]) for i in (1, 2, 3)]
    for ax, name in zip(axes[:2], ("poisson", "latency"), strict=True):
        t, u = np.nonzero(coded[name])
        ax.scatter(t, u, s=4, marker="s", color="black", linewidths=0)
        n = int(coded[name].sum())
        if name == "poisson":
            detail = f"p = x*{factor:g}*{dt:g} per step"
        else:
            detail = f"tau {tau:g}, threshold {threshold:g}"
        ax.set_title(f"{TITLES[name]}: {n} spikes\n{detail}", fontsize=10)
    current = coded["constant"]
    top = float(current.max()) if current.max() > 0 else 1.0
    im = axes[2].imshow(
        current.T,
        aspect="auto",
        origin="lower",
        cmap="Greys",
        vmin=0,
        vmax=top,
        extent=(-0.5, steps - 0.5, -0.5, units - 0.5),
        interpolation="nearest",
    )
    fig.colorbar(im, ax=axes[2], label="input current", shrink=0.85)
    axes[2].set_title(
        f"{TITLES['constant']}: x*{factor:g}*{dt:g}\nat every step (intensity raster)", fontsize=10
    )
    for i, ax in enumerate(axes):
        ax.set_xlim(-0.5, steps - 0.5)
        ax.set_ylim(-0.5, units - 0.5)
        ax.set_xlabel("time step")
        if i == 0:
            ax.set_ylabel("input unit (pixel, row-major)")
    fig.suptitle(f"F4 input encodings of {label}, {steps} steps", fontsize=11)

    data = {"encoding": [], "unit": [], "step": [], "value": []}
    flat = image.ravel()
    data["encoding"] += ["image"] * units
    data["unit"] += list(range(units))
    data["step"] += [float("nan")] * units
    data["value"] += flat.tolist()
    for name in ENCODINGS:
        t, u = np.nonzero(coded[name])
        data["encoding"] += [name] * len(t)
        data["unit"] += u.tolist()
        data["step"] += t.tolist()
        data["value"] += coded[name][t, u].tolist()
    return fig, data
