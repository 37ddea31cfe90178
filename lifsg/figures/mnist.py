"""F6: MNIST results: learning curves and the results table, from the stored run JSON files.

Each run of :func:`lifsg.experiments.train` writes ``<name>.json`` (config, per-epoch history,
test accuracy). Runs that differ only in the seed (``<group>_s<seed>``) form one table row with
mean and standard deviation. Published small-SNN figures are listed beside ours for
orientation, clearly marked as other papers' numbers.
"""

import json
import re
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

# Other papers' numbers (docs/model.md, F6), not reproduced here.
PUBLISHED = (
    {
        "run": "S4NN (Kheradpisheh & Masquelier 2020)",
        "network": "784-400-10, time-to-first-spike",
        "test_accuracy": 0.974,
    },
    {
        "run": "snnTorch tutorial 5",
        "network": "784-1000-10, 1 epoch",
        "test_accuracy": 0.939,
    },
    {
        "run": "Norse MNIST example",
        "network": "784-100 (recurrent)-10, about",
        "test_accuracy": 0.965,
    },
)
OURS = "this work (measured)"
THEIRS = "other paper (published, not ours)"
TABLE_COLUMNS = (
    "run",
    "source",
    "architecture",
    "network",
    "encoding",
    "steps",
    "surrogate",
    "loss",
    "epochs",
    "seeds",
    "test_accuracy_mean",
    "test_accuracy_std",
    "epoch_time_s",
)


def load_results(results_dir):
    """All run results (dicts) in ``results_dir``, sorted by name."""
    out = []
    for path in sorted(Path(results_dir).glob("*.json")):
        result = json.loads(path.read_text())
        if isinstance(result, dict) and "history" in result and "config" in result:
            out.append(result)
    return out


ORDER = (
    "original",
    "dense_best",
    "dense_v1",
    "hybrid",
    "table_poisson_flat",
    "table_latency_flat",
    "table_constant_flat",
    "table_constant_superspike",
    "table_constant_sigmoid",
    "table_constant_esser",
)


def _order(group):
    return (ORDER.index(group) if group in ORDER else len(ORDER), group)


def group_name(name):
    """``dense_best_s2`` -> ``dense_best``: the run without its seed suffix."""
    return re.sub(r"_s\d+$", "", name)


def network(config):
    """Short description of a config's network, e.g. ``784-400-400-10``."""
    features = int(np.prod(config["input_shape"]))
    if config["architecture"] == "dense":
        widths = [features, *config["units"], config["classes"]]
        return "-".join(str(w) for w in widths)
    k = config["conv_kernel"]
    convs = "-".join(f"c{f}k{k}" for f in config["conv_filters"])
    down = "pool" if config.get("conv_downsample", "pool") == "pool" else "stride 2"
    dense = "-".join(str(u) for u in config["units"])
    return f"{convs} ({down})" + (f"-{dense}" if dense else "") + f"-{config['classes']}"


def encoding_label(config):
    enc = config["encoding"]
    if enc == "poisson":
        p = config["factor"] * config["dt"]
        return f"Poisson p<={p:g}/step"
    if enc == "latency":
        return f"latency th={config['latency_threshold']:g}"
    return "constant current"


def results_table(results, accuracies=None):
    """Rows (dicts with :data:`TABLE_COLUMNS`): ours grouped over seeds, then the published.

    accuracies: optional ``{run name: test accuracy}`` (e.g. the stored models re-evaluated
    now) used instead of the accuracy in the JSON.
    """
    accuracies = accuracies or {}
    groups = {}
    for r in results:
        groups.setdefault(group_name(r["name"]), []).append(r)
    rows = []
    for group in sorted(groups, key=_order):
        runs = groups[group]
        c = runs[0]["config"]
        acc = [accuracies.get(r["name"], r["test_accuracy"]) for r in runs]
        acc = np.asarray([a for a in acc if a is not None], dtype="float64")
        epochs = sorted({r["epochs"] for r in runs})
        rows.append(
            {
                "run": group,
                "source": OURS,
                "architecture": c["architecture"],
                "network": network(c),
                "encoding": encoding_label(c),
                "steps": c["steps"],
                "surrogate": c["surrogate"],
                "loss": c["loss"],
                "epochs": "/".join(str(e) for e in epochs),
                "seeds": " ".join(str(r["seed"]) for r in runs),
                "test_accuracy_mean": float(acc.mean()) if acc.size else float("nan"),
                "test_accuracy_std": float(acc.std(ddof=1)) if acc.size > 1 else float("nan"),
                "epoch_time_s": float(np.mean([r["epoch_time_s"] for r in runs])),
            }
        )
    for p in PUBLISHED:
        row = dict.fromkeys(TABLE_COLUMNS, "")
        row.update(p, source=THEIRS, test_accuracy_mean=p["test_accuracy"])
        row.pop("test_accuracy")
        row["test_accuracy_std"] = float("nan")
        row["epoch_time_s"] = float("nan")
        rows.append(row)
    return rows


def _percent(mean, std):
    if mean == "" or mean != mean:
        return ""
    text = f"{100 * mean:.2f}"
    return text + (f" ± {100 * std:.2f}" if std == std and std != "" else "")


def table_markdown(rows):
    """The table as GitHub markdown (accuracy in percent, mean ± std over seeds)."""
    head = [
        "run",
        "source",
        "network",
        "encoding, steps",
        "surrogate",
        "loss",
        "epochs",
        "seeds",
        "test accuracy %",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        steps = f"{r['encoding']}, {r['steps']}" if r["steps"] != "" else ""
        cells = [
            r["run"],
            r["source"],
            r["network"],
            steps,
            r["surrogate"],
            r["loss"],
            r["epochs"],
            r["seeds"],
            _percent(r["test_accuracy_mean"], r["test_accuracy_std"]),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def table_figure(rows, note=""):
    """The table rendered with matplotlib; returns ``(fig, data)`` with data = the rows.

    note: text added to the title (e.g. which data the runs saw).
    """
    cols = ["run", "network", "encoding", "steps", "surrogate", "epochs", "seeds", "accuracy %"]
    cells = [
        [
            str(r["run"]),
            str(r["network"]),
            str(r["encoding"]),
            str(r["steps"]),
            str(r["surrogate"]),
            str(r["epochs"]),
            str(r["seeds"]),
            _percent(r["test_accuracy_mean"], r["test_accuracy_std"]),
        ]
        for r in rows
    ]
    fig = Figure(figsize=(10, 0.9 + 0.3 * len(rows)), layout="constrained")
    ax = fig.add_subplot()
    ax.axis("off")
    table = ax.table(cellText=cells, colLabels=cols, loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(len(cols))))
    for i, r in enumerate(rows, start=1):
        if r["source"] != OURS:
            for j in range(len(cols)):
                table[i, j].set_facecolor("#eeeeee")
                table[i, j].get_text().set_style("italic")
    title = "F6 MNIST test accuracy (grey italic: other papers' published numbers)"
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=10)
    data = {k: [r[k] for r in rows] for k in TABLE_COLUMNS}
    return fig, data


def learning_curves(results, headline=("original", "dense_best", "dense_v1", "hybrid"), note=""):
    """Test error per epoch (log scale): (a) headline runs (thin: each seed, bold: mean), (b)
    the other runs (short encoding / surrogate runs). Returns ``(fig, data)``, data in long
    format (one row per run and epoch) with accuracies, not errors."""
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    data = {
        k: [] for k in ("run", "group", "seed", "epoch", "lr", "loss", "accuracy", "test_accuracy")
    }
    groups = {}
    for r in results:
        groups.setdefault(group_name(r["name"]), []).append(r)
        for h in r["history"]:
            data["run"].append(r["name"])
            data["group"].append(group_name(r["name"]))
            data["seed"].append(r["seed"])
            data["epoch"].append(h["epoch"])
            data["lr"].append(h["lr"])
            data["loss"].append(h["loss"])
            data["accuracy"].append(h["accuracy"])
            data["test_accuracy"].append(h.get("test_accuracy", float("nan")))
    colors = iter(f"C{i % 10}" for i in range(100))
    for group in sorted(groups, key=_order):
        runs = groups[group]
        ax = ax_a if group in headline else ax_b
        color = next(colors)
        curves = [[1 - h.get("test_accuracy", np.nan) for h in r["history"]] for r in runs]
        n = min(len(c) for c in curves)
        for curve in curves:
            ax.plot(
                np.arange(1, len(curve) + 1),
                100 * np.asarray(curve),
                color=color,
                lw=0.7,
                alpha=0.5,
            )
        mean = 100 * np.mean([c[:n] for c in curves], axis=0)
        label = f"{group} ({len(runs)} seed{'s' if len(runs) > 1 else ''})"
        ax.plot(np.arange(1, n + 1), mean, color=color, lw=2, marker="o", ms=3, label=label)
    for ax, title in ((ax_a, "(a) headline runs"), (ax_b, "(b) encodings and surrogates")):
        ax.set_xlabel("epoch")
        ax.set_ylabel("test error (%)")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    if note:
        fig.suptitle(note, fontsize=9)
    return fig, data
