"""F6: MNIST results: learning curves and the results table, from the stored run JSON files.

Each run of :func:`lifsg.studies.train` writes ``<name>.json`` (config, per-epoch history,
test accuracy). Runs that differ only in the seed (``<group>_s<seed>``) form one table row with
mean and standard deviation. Published small-SNN figures are listed beside ours for
orientation, clearly marked as other papers' numbers.
"""

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from lifsg.studies.results import group_name

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
# Published Fashion-MNIST numbers of convolutional SNNs (docs/model.md), not reproduced here.
FASHION_PUBLISHED = (
    {"run": "SpikingJelly tutorial", "network": "conv SNN", "test_accuracy": 0.931},
    {
        "run": "PLIF",
        "network": "conv SNN, learnable leak, epoch chosen on validation data",
        "test_accuracy": 0.939,
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
    "synops_per_image",
    "dense_macs_per_image",
    "hidden_spikes_per_neuron_step",
)


def _sparsity(layers):
    """Summed SynOps and dense MACs per image of a model's spiking layers, and the spikes per
    neuron and step of its hidden layers together."""
    hidden = [r for r in layers if r["role"] == "hidden"]
    slots = sum(r["neurons"] * r["steps"] for r in hidden)
    return {
        "synops_per_image": float(sum(r["synops_per_image"] for r in layers)),
        "dense_macs_per_image": float(sum(r["dense_macs_per_image"] for r in layers)),
        "hidden_spikes_per_neuron_step": (
            float(sum(r["spikes_per_image"] for r in hidden) / slots) if slots else float("nan")
        ),
    }


SURROGATES = ("flat", "superspike", "sigmoid", "esser")
ENCODINGS = ("poisson", "latency", "constant")
ORDER = (
    "original",
    "dense_best",
    "dense_v1",
    "hybrid_aug",
    "hybrid_pool",
    "hybrid",
    *(f"table_{e}_{s}" for e in ENCODINGS for s in SURROGATES),
)


def _order(group):
    return (ORDER.index(group) if group in ORDER else len(ORDER), group)


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
    """Short description of a config's encoding, e.g. ``Poisson p<=0.005/step``."""
    enc = config["encoding"]
    if enc == "poisson":
        p = config["factor"] * config["dt"]
        return f"Poisson p<={p:g}/step"
    if enc == "latency":
        return f"latency th={config['latency_threshold']:g}"
    return "constant current"


def results_table(results, accuracies=None, published=PUBLISHED, activity=None):
    """Rows (dicts with :data:`TABLE_COLUMNS`): ours grouped over seeds, then ``published``
    (other papers' numbers: dicts with run, network, test_accuracy; default MNIST's).

    accuracies: optional ``{run name: test accuracy}`` (e.g. the stored models re-evaluated
    now) used instead of the accuracy in the JSON. activity: optional sparsity record
    (:func:`lifsg.studies.results.load_activity`); a group it holds gets the SynOps and dense
    MACs per image of all its spiking layers and its hidden layers' spikes per neuron and step
    (the measured seed's), the others NaN.
    """
    accuracies = accuracies or {}
    measured = (activity or {}).get("models", {})
    no_sparsity = dict.fromkeys(TABLE_COLUMNS[-3:], float("nan"))
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
                **(_sparsity(measured[group]["layers"]) if group in measured else no_sparsity),
            }
        )
    for p in published:
        row = dict.fromkeys(TABLE_COLUMNS, "")
        row.update(p, source=THEIRS, test_accuracy_mean=p["test_accuracy"])
        row.pop("test_accuracy")
        row.update(no_sparsity, test_accuracy_std=float("nan"), epoch_time_s=float("nan"))
        rows.append(row)
    return rows


def _missing(value):
    """True for the empty cell of a published row and for NaN (not measured)."""
    return value == "" or value != value


def _percent(mean, std):
    if _missing(mean):
        return ""
    return f"{100 * mean:.2f}" + ("" if _missing(std) else f" ± {100 * std:.2f}")


def _synops(row):
    """``"1.66e+05 (13 %)"``: SynOps per image and their share of the dense MACs, or ""."""
    synops, macs = row["synops_per_image"], row["dense_macs_per_image"]
    if _missing(synops):
        return ""
    return f"{synops:.3g} ({100 * synops / macs:.2g} %)" if macs else f"{synops:.3g}"


def _seconds(value):
    return "" if _missing(value) else f"{value:.0f}"


def _rate(row):
    rate = row["hidden_spikes_per_neuron_step"]
    return "" if _missing(rate) else f"{rate:.3f}"


def table_markdown(rows):
    """The table as GitHub markdown (accuracy in percent, mean ± std over seeds; seconds per
    training epoch, the seeds' mean of each run's median on the machine that ran it; SynOps
    per image with their share of the dense MACs, and hidden spikes per neuron and step, where
    measured)."""
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
        "s / epoch",
        "SynOps / image (of dense MACs)",
        "hidden spikes / neuron / step",
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
            _seconds(r["epoch_time_s"]),
            _synops(r),
            _rate(r),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def table_figure(rows, note="", dataset="F6 MNIST"):
    """The table rendered with matplotlib; returns ``(fig, data)`` with data = the rows.

    note: text added to the title (e.g. which data the runs saw).
    """
    cols = [
        "run",
        "network",
        "encoding",
        "steps",
        "surrogate",
        "epochs",
        "seeds",
        "accuracy %",
        "SynOps / image",
    ]
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
            _synops(r),
        ]
        for r in rows
    ]
    fig = Figure(figsize=(12.5, 0.9 + 0.3 * len(rows)), layout="constrained")
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
    title = f"{dataset} test accuracy (grey italic: other papers' published numbers)"
    ax.set_title(title + (f"\n{note}" if note else ""), fontsize=10)
    data = {k: [r[k] for r in rows] for k in TABLE_COLUMNS}
    return fig, data


def _curve_key(result):
    """The per-epoch accuracy a learning curve shows: held-out validation images where the
    run has them (the test set then is used once, at the end), else the test set."""
    return "val_accuracy" if "val_accuracy" in result["history"][0] else "test_accuracy"


def learning_curves(
    results, headline=("original", "dense_best", "hybrid_aug", "hybrid_pool"), note=""
):
    """Error per epoch (log scale) on held-out images (see :func:`_curve_key`; the legend
    says which): (a) headline runs, thin: each seed, bold: mean; (b) the encoding x surrogate
    runs, drawn only where there are any. Returns ``(fig, data)``, data in long format (one
    row per run and epoch) with accuracies, not errors."""
    keys = ("run", "group", "seed", "epoch", "lr", "loss", "accuracy")
    data = {k: [] for k in (*keys, "val_accuracy", "test_accuracy")}
    groups = {}
    for r in results:
        group = group_name(r["name"])
        if group not in headline and not group.startswith("table_"):
            continue
        groups.setdefault(group, []).append(r)
        for h in r["history"]:
            row = {"run": r["name"], "group": group, "seed": r["seed"], **h}
            for k in data:
                data[k].append(row.get(k, float("nan")))
    table = any(group not in headline for group in groups)
    fig = Figure(figsize=(11, 4) if table else (6, 4), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2) if table else (fig.subplots(), None)
    colors = iter(f"C{i % 10}" for i in range(100))
    styles = {"poisson": ":", "latency": "--", "constant": "-"}
    for group in sorted(groups, key=_order):
        runs = groups[group]
        ax = ax_a if group in headline else ax_b
        color = next(colors)
        key = _curve_key(runs[0])
        curves = [[1 - h.get(key, np.nan) for h in r["history"]] for r in runs]
        n = min(len(c) for c in curves)
        for curve in curves:
            x = np.arange(1, len(curve) + 1)
            ax.plot(x, 100 * np.asarray(curve), color=color, lw=0.7, alpha=0.4)
        mean = 100 * np.mean([c[:n] for c in curves], axis=0)
        where = "validation" if key == "val_accuracy" else "test"
        label = f"{group} ({len(runs)} seed{'s' if len(runs) > 1 else ''}, {where})"
        ls = styles.get(runs[0]["encoding"], "-") if ax is ax_b else "-"
        ax.plot(np.arange(1, n + 1), mean, color=color, lw=1.8, ls=ls, label=label)
    panels = [(ax_a, "(a) headline runs" if table else "headline runs")]
    for ax, title in panels + ([(ax_b, "(b) encodings x surrogates")] if table else []):
        ax.set_xlabel("epoch")
        ax.set_ylabel("error on held-out images (%)")
        ax.set_yscale("log")
        plain = FuncFormatter(lambda v, _: f"{v:g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=6)
    if note:
        fig.suptitle(note, fontsize=9)
    return fig, data


def _stats(values):
    values = np.asarray([v for v in values if v is not None], dtype="float64")
    mean = float(values.mean()) if values.size else float("nan")
    std = float(values.std(ddof=1)) if values.size > 1 else float("nan")
    return mean, std, int(values.size)


def surrogate_table(results, accuracies=None):
    """Encoding x surrogate test accuracy of the ``table_<encoding>_<surrogate>_s<seed>`` runs
    as an annotated heat map (mean, ± std and seed count per cell; empty: not run).

    Returns ``(fig, data)`` with data in long format (one row per cell).
    """
    accuracies = accuracies or {}
    data = {k: [] for k in ("encoding", "surrogate", "seeds", "mean", "std", "epochs")}
    grid = np.full((len(ENCODINGS), len(SURROGATES)), np.nan)
    fig = Figure(figsize=(6.5, 2.8), layout="constrained")
    ax = fig.add_subplot()
    for i, enc in enumerate(ENCODINGS):
        for j, sur in enumerate(SURROGATES):
            runs = [r for r in results if group_name(r["name"]) == f"table_{enc}_{sur}"]
            mean, std, n = _stats(accuracies.get(r["name"], r["test_accuracy"]) for r in runs)
            epochs = "/".join(str(e) for e in sorted({r["epochs"] for r in runs}))
            for k, v in zip(data, (enc, sur, n, mean, std, epochs), strict=True):
                data[k].append(v)
            grid[i, j] = 100 * mean
            text = f"{_percent(mean, std)}\n({n} seeds)" if n else "not run"
            ax.text(j, i, text, ha="center", va="center", fontsize=8)
    image = ax.imshow(grid, cmap="Greens", aspect="auto")
    fig.colorbar(image, ax=ax, label="test accuracy (%)")
    ax.set_xticks(range(len(SURROGATES)), SURROGATES)
    ax.set_yticks(range(len(ENCODINGS)), ENCODINGS)
    ax.set_title("784-128-10, 8 steps: encoding x surrogate", fontsize=10)
    return fig, data


def surrogate_markdown(data):
    """The data of :func:`surrogate_table` as a markdown table (rows: encodings)."""
    cells = {
        (e, s): f"{_percent(m, d)} ({n})" if n else "not run"
        for e, s, n, m, d in zip(
            data["encoding"],
            data["surrogate"],
            data["seeds"],
            data["mean"],
            data["std"],
            strict=True,
        )
    }
    lines = ["| encoding | " + " | ".join(SURROGATES) + " |", "|---|" + "---|" * len(SURROGATES)]
    for enc in ENCODINGS:
        lines.append(f"| {enc} | " + " | ".join(cells[enc, sur] for sur in SURROGATES) + " |")
    return "\n".join(lines)


def learned_leaks(models):
    """``{run name: 1-D array of the trained w_leak of every LIF unit}`` of stored models.

    models: ``{run name: path of its .keras file}``. The read-out's leak is left out.
    """
    from lifsg import layers
    from lifsg.studies import load

    out = {}
    for name, path in models.items():
        model = load(path)
        values = [
            np.ravel(np.asarray(layer.w_leak))
            for layer in model.layers
            if isinstance(layer, layers.LIF | layers.DenseLIF)
        ]
        out[name] = np.concatenate(values)
    return out


def leak_equivalence(results, leaks, accuracies=None, note=""):
    """The equivalence claim on MNIST: can a constant surrogate plus a leak match the shaped
    surrogates?

    (a) test accuracy of the flat surrogate with a fixed, untrained leak
    (``flat_leak<w>_s<seed>`` runs; dots: seeds, line: mean) against the flat surrogate with a
    trained leak and the shaped surrogates (``table_constant_<surrogate>`` runs: mean as a
    horizontal line, ± std as a band); (b) the distribution of the trained leaks of those runs
    (``leaks`` from :func:`learned_leaks`, all seeds pooled). Returns ``(fig, data)``, data in
    long format: one row per run with its fixed leak (nan if trained), accuracy and the
    median of its trained leaks.
    """
    accuracies = accuracies or {}
    fig = Figure(figsize=(11, 4), layout="constrained")
    ax_a, ax_b = fig.subplots(1, 2)
    data = {k: [] for k in ("run", "surrogate", "fixed_leak", "test_accuracy", "median_leak")}

    def acc(r):
        return accuracies.get(r["name"], r["test_accuracy"])

    fixed = {}
    for r in results:
        if group_name(r["name"]).startswith("flat_leak"):
            fixed.setdefault(r["config"]["w_leak"], []).append(r)
    for w in sorted(fixed):
        for r in fixed[w]:
            for k, v in zip(data, (r["name"], "flat", w, acc(r), float("nan")), strict=True):
                data[k].append(v)
    if fixed:
        ws = sorted(fixed)
        means = [100 * _stats(acc(r) for r in fixed[w])[0] for w in ws]
        for w in ws:
            ax_a.plot([w] * len(fixed[w]), [100 * acc(r) for r in fixed[w]], "k.", alpha=0.5)
        ax_a.plot(ws, means, "k-o", ms=4, label="flat, fixed leak (untrained)")
    bins = np.linspace(0, 1, 41)
    for i, sur in enumerate(SURROGATES):
        runs = [r for r in results if group_name(r["name"]) == f"table_constant_{sur}"]
        if not runs:
            continue
        mean, std, n = _stats(acc(r) for r in runs)
        color = f"C{i}"
        ax_a.axhline(100 * mean, color=color, lw=1.5, label=f"{sur}, trained leak ({n} seeds)")
        if n > 1:
            ax_a.axhspan(100 * (mean - std), 100 * (mean + std), color=color, alpha=0.12)
        pooled = [leaks[r["name"]] for r in runs if r["name"] in leaks]
        for r in runs:
            median = float(np.median(leaks[r["name"]])) if r["name"] in leaks else float("nan")
            for k, v in zip(data, (r["name"], sur, float("nan"), acc(r), median), strict=True):
                data[k].append(v)
        if pooled:
            values = np.concatenate(pooled)
            ax_b.hist(
                values,
                bins=bins,
                histtype="step",
                color=color,
                lw=1.5,
                density=True,
                label=f"{sur} (median {np.median(values):.3f})",
            )
    ax_a.set_xlabel("w_leak (fixed)")
    ax_a.set_ylabel("test accuracy (%)")
    ax_a.set_title("(a) flat surrogate with a fixed leak vs trained leaks")
    ax_b.set_xlabel("trained w_leak of the hidden units")
    ax_b.set_ylabel("density")
    ax_b.set_title("(b) learned leak distributions (initial: uniform 0-0.1)")
    for ax in (ax_a, ax_b):
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    if note:
        fig.suptitle(note, fontsize=9)
    return fig, data
