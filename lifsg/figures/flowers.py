"""F7, Oxford 102 Flowers, the drawings: the data, the learning curves and the results table of
the LIF network and its ReLU twin (runs: :mod:`lifsg.studies.flowers`). Each function returns
``(Figure, data)`` for :func:`lifsg.figures.save_figure`.
"""

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lifsg.studies.config import NONLINEARITIES, RunConfig

LABELS = {"lif": "Conv + LIF (flat surrogate)", "relu": "Conv + ReLU (non-spiking)"}
COLOURS = {"lif": "tab:blue", "relu": "tab:orange"}


def samples_figure(images, labels, image_ids, class_labels, per_class=4, label=""):
    """The first ``per_class`` images of each class as one mosaic (a row per class).

    images: uint8 (N, height, width, 3); labels: 0..classes-1; image_ids: official 1-based
    image numbers; class_labels: official label of each class. Returns ``(Figure, rows)``
    (rows: class, official label, image number and index of each tile, row by row).
    """
    images, labels = np.asarray(images), np.asarray(labels)
    classes, (h, w) = len(class_labels), images.shape[1:3]
    gap = max(1, h // 16)
    mosaic = np.full((classes * (h + gap) - gap, per_class * (w + gap) - gap, 3), 255, np.uint8)
    rows = []
    for k in range(classes):
        for j, i in enumerate(np.flatnonzero(labels == k)[:per_class]):
            top, left = k * (h + gap), j * (w + gap)
            mosaic[top : top + h, left : left + w] = images[i]
            rows.append(
                {
                    "class": k,
                    "official_label": int(class_labels[k]),
                    "image_id": int(image_ids[i]),
                    "index": int(i),
                }
            )
    fig = Figure(figsize=(1.0 * per_class * w / h + 1.6, 0.8 * classes + 0.8), layout="constrained")
    ax = fig.subplots()
    ax.imshow(mosaic)
    ax.set_xticks([])
    ax.set_yticks(
        [k * (h + gap) + h / 2 for k in range(classes)],
        [f"class {k} (label {int(c)})" for k, c in enumerate(class_labels)],
        fontsize=7,
    )
    title = f"F7 subset: the first {per_class} training images of each class"
    fig.suptitle(f"{title}\n{label}" if label else title, fontsize=9)
    return fig, rows


def load_results(results_dir, configs):
    """The results JSON of each config from ``results_dir`` (``<name>.json``)."""
    return [json.loads((Path(results_dir) / f"{c.name}.json").read_text()) for c in configs]


def _nl(result):
    return RunConfig.from_dict(result["config"]).nonlinearity


def curve_rows(results):
    """One row per run and epoch: run, nonlinearity, seed, epoch, loss, accuracy, test_*."""
    rows = []
    for res in results:
        for h in res["history"]:
            rows.append(
                {
                    "run": res["name"],
                    "nonlinearity": _nl(res),
                    "seed": res["seed"],
                    "epoch": h["epoch"],
                    "loss": h["loss"],
                    "accuracy": h["accuracy"],
                    "test_loss": h.get("test_loss", float("nan")),
                    "test_accuracy": h.get("test_accuracy", float("nan")),
                }
            )
    return rows


def learning_curves_figure(results, label=""):
    """Accuracy and loss per epoch, train (dashed) and test (solid), LIF vs ReLU, per seed.

    results: dicts as returned by :func:`lifsg.studies.train` or stored in its JSON.
    label: what the data is (shown in the title, e.g. that a synthetic fixture was used).
    Returns ``(Figure, rows)``.
    """
    rows = curve_rows(results)
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for res in results:
        nl = _nl(res)
        epochs = [h["epoch"] for h in res["history"]]
        for ax, key in zip(axes, ("accuracy", "loss")):
            ax.plot(
                epochs,
                [h[key] for h in res["history"]],
                "--",
                color=COLOURS[nl],
                alpha=0.6,
                marker=".",
            )
            ax.plot(
                epochs,
                [h.get(f"test_{key}", np.nan) for h in res["history"]],
                "-",
                color=COLOURS[nl],
                marker="o",
                ms=3,
                label=f"{LABELS[nl]}, seed {res['seed']}",
            )
    axes[0].set_ylabel("accuracy")
    axes[0].set_ylim(0, 1)
    axes[1].set_ylabel("loss")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, title="test (solid), train (dashed)", title_fontsize=7)
    title = "F7 Oxford Flowers subset: hybrid network, LIF vs ReLU"
    fig.suptitle(f"{title}\n{label}" if label else title, fontsize=10)
    return fig, rows


def table_rows(results):
    """One row per nonlinearity: final test accuracy over seeds and the run's costs.

    results: run dicts as :func:`lifsg.studies.results.load_results` gives them, with
    ``epoch_time_s`` from the runs' timing files (``nan`` where there is none).
    """
    rows = []
    for nl in NONLINEARITIES:
        runs = [r for r in results if _nl(r) == nl]
        if not runs:
            continue
        acc = np.array([r["test_accuracy"] for r in runs], dtype=float)
        rows.append(
            {
                "network": LABELS[nl],
                "nonlinearity": nl,
                "seeds": len(runs),
                "test_accuracy_mean": float(acc.mean()),
                "test_accuracy_sd": float(acc.std(ddof=1)) if len(acc) > 1 else None,
                "test_accuracy_min": float(acc.min()),
                "test_accuracy_max": float(acc.max()),
                "train_accuracy_mean": float(np.mean([r["history"][-1]["accuracy"] for r in runs])),
                "epochs": int(max(r["epochs"] for r in runs)),
                "params": int(runs[0]["params"]),
                "train_size": int(runs[0]["train_size"]),
                "test_size": int(runs[0]["test_size"]),
                "seconds_per_epoch": float(np.mean([r.get("epoch_time_s", np.nan) for r in runs])),
            }
        )
    return rows


def results_table_figure(results, label=""):
    """The results table as a figure; returns ``(Figure, rows)`` (rows as :func:`table_rows`)."""
    rows = table_rows(results)
    fig = Figure(figsize=(9, 0.9 + 0.35 * len(rows)), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    header = ["network", "seeds", "test accuracy", "train acc.", "epochs", "params", "s/epoch"]
    body = []
    for r in rows:
        sd = "" if r["test_accuracy_sd"] is None else f" ± {r['test_accuracy_sd']:.3f}"
        body.append(
            [
                r["network"],
                str(r["seeds"]),
                f"{r['test_accuracy_mean']:.3f}{sd}",
                f"{r['train_accuracy_mean']:.3f}",
                str(r["epochs"]),
                f"{r['params']:,}",
                f"{r['seconds_per_epoch']:.1f}",
            ]
        )
    table = ax.table(cellText=body, colLabels=header, loc="center", cellLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(header))))
    sizes = f"{rows[0]['train_size']} train / {rows[0]['test_size']} test images" if rows else ""
    title = f"F7 results ({sizes})"
    fig.suptitle(f"{title}\n{label}" if label else title, fontsize=10)
    return fig, rows
