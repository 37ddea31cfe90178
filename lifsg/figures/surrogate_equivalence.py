"""Paper item F5, the drawings: (a) surrogate derivatives, (b) error profiles through time,
(c) learning curves. The experiments and training runs are in
:mod:`lifsg.studies.surrogate_equivalence`; each function returns ``(Figure, data)``.
"""

import math

import keras
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from lifsg import surrogates
from lifsg.studies.surrogate_equivalence import (
    BETA,
    CASES,
    FLAT_LEAKS,
    SHAPED,
    STEPS,
    THRESHOLD,
    W_LEAK,
    error_profile_experiment,
    flat_profiles,
)
from lifsg.studies.surrogate_training import by_label

CASE_TITLES = {
    ("spike", "ramp"): "loss on the spike step only, $L = y_T$",
    ("spike", "kick"): "loss on the spike step only, $L = y_T$ (kick)",
    ("all", "ramp"): "loss on every step, $L = \\sum_t y_t$\nV ramps slowly to threshold",
    ("all", "kick"): "loss on every step, $L = \\sum_t y_t$\nV jumps to threshold at T",
}
COLORS = {
    "superspike": "#1f77b4",
    "sigmoid": "#ff7f0e",
    "esser": "#2ca02c",
    "atan": "#9467bd",
    "gaussian": "#8c564b",
    "exponential": "#e377c2",
    "boxcar": "#17becf",
    "flat": "black",
}


def surrogate_curves(names=None, beta=BETA, u=None):
    """``{name: derivative(u)}`` (NumPy) for ``names`` (default: all of ``available()``)."""
    names = surrogates.available() if names is None else list(names)
    u = np.linspace(-0.5, 0.5, 1001) if u is None else np.asarray(u, dtype=float)
    out = {}
    for name in names:
        s = surrogates.get(name, beta=beta)
        out[name] = np.asarray(keras.ops.convert_to_numpy(s.derivative(keras.ops.array(u))))
    return out


def surrogates_figure(names=None, beta=BETA, u_max=0.5):
    """F5a: each surrogate's derivative vs ``u = V - theta`` with its peak and width.

    Left: the derivative as used in the backward pass (scales differ: sigmoid peaks at beta/4).
    Right: divided by the stated peak (shape only); ticks at +-width. Returns ``(fig, data)``,
    data one row per surrogate and u: surrogate, beta, u, derivative, peak, width.
    """
    names = surrogates.available() if names is None else list(names)
    u = np.linspace(-u_max, u_max, 801)
    curves = surrogate_curves(names, beta, u)
    fig = Figure(figsize=(11.5, 4.3), layout="constrained")
    ax_raw, ax_norm = fig.subplots(1, 2)
    data = {k: [] for k in ("surrogate", "beta", "u", "derivative", "peak", "width")}
    for name in names:
        s = surrogates.get(name, beta=beta)
        peak, width = float(s.peak), float(s.width)
        color = COLORS.get(name)
        ls = "--" if name == "flat" else "-"
        w_txt = "inf" if math.isinf(width) else f"{width:.3g}"
        label = f"{name}: peak {peak:.3g}, width {w_txt}"
        ax_raw.plot(u, curves[name], ls, color=color, lw=1.5, label=label)
        ax_raw.plot([0], [peak], "o", color=color, ms=4)
        ax_norm.plot(u, curves[name] / peak, ls, color=color, lw=1.5, label=name)
        if math.isfinite(width) and width <= u_max:
            at = float(np.interp(width, u, curves[name] / peak))
            ax_norm.plot([-width, width], [at, at], "o", color=color, ms=4.5, mfc="white")
        data["surrogate"] += [name] * len(u)
        data["beta"] += [None if name == "flat" else beta] * len(u)
        data["u"] += u.tolist()
        data["derivative"] += curves[name].tolist()
        data["peak"] += [peak] * len(u)
        data["width"] += [width] * len(u)
    ax_raw.set_title(f"surrogate derivative as used in the backward pass (beta = {beta:g})")
    ax_raw.set_ylabel("dH/du")
    ax_raw.legend(fontsize=8, loc="upper right")
    ax_norm.set_title("divided by the peak (shape only); open dots at u = +-width")
    ax_norm.set_ylabel("dH/du / peak")
    ax_norm.set_ylim(-0.03, 1.12)
    for ax in (ax_raw, ax_norm):
        ax.set_xlabel("u = V - threshold")
        ax.axvline(0, color="gray", lw=0.5)
        ax.set_xlim(-u_max, u_max)
    ax_raw.set_ylim(bottom=-0.05)
    fig.suptitle("F5a surrogate derivatives (lifsg.surrogates)", fontsize=11)
    return fig, data


def error_profile_figure(
    shaped=SHAPED,
    beta=BETA,
    w_leak=W_LEAK,
    flat_leaks=FLAT_LEAKS,
    steps=STEPS,
    cases=CASES,
    experiment=None,
):
    """F5b: error profiles of flat (several leaks) and shaped surrogates (one leak).

    Top row: the design's membrane potential at ``w_leak`` (threshold dashed) and each shaped
    surrogate's gate ``s'(V_t - theta)`` / peak. Bottom row: ``dL/dx_t`` against the distance to
    the spike ``T - t``, each profile divided by its own maximum (the legend gives the shaped
    surrogates' amplitude at T relative to flat, their fitted flat leak and the shape distance
    at the fit); dashed: the fitted flat profile. experiment: the result of
    :func:`error_profile_experiment` with the same arguments, if already computed. Returns
    ``(fig, data)``, one row per case, curve and step: loss, design, curve, surrogate, w_leak,
    beta, step, lag, error, V.
    """
    shaped = [str(s) for s in shaped]
    flat_leaks = [float(w) for w in flat_leaks]
    exp = experiment or error_profile_experiment(shaped, beta, w_leak, flat_leaks, steps, cases)
    fig = Figure(figsize=(4.3 * len(cases) + 0.6, 7.6), layout="constrained")
    grid = fig.add_gridspec(2, len(cases), height_ratios=(1.0, 2.3))
    lag = np.arange(steps)[::-1]
    t = np.arange(steps)
    greys = (
        [str(g) for g in np.linspace(0.75, 0.0, len(flat_leaks))]
        if len(flat_leaks) > 1
        else ["0.3"]
    )
    data = {k: [] for k in ("loss", "design", "curve", "surrogate", "w_leak", "beta")}
    data.update(step=[], lag=[], error=[], V=[])

    def add(loss, design, curve, name, leak, b, values, v):
        n = len(values)
        data["loss"] += [loss] * n
        data["design"] += [design] * n
        data["curve"] += [curve] * n
        data["surrogate"] += [name] * n
        data["w_leak"] += [leak] * n
        data["beta"] += [b] * n
        data["step"] += t.tolist()
        data["lag"] += lag.tolist()
        data["error"] += np.asarray(values, float).tolist()
        data["V"] += np.asarray(v, float).tolist()

    for c, case in enumerate(cases):
        loss, design = case
        res = exp[case]
        ax_v = fig.add_subplot(grid[0, c])
        ax = fig.add_subplot(grid[1, c])
        ax_v.plot(lag, res["v"], color="#444444", lw=1.6, label="V (threshold dashed)")
        ax_v.axhline(THRESHOLD, color="#c0392b", ls="--", lw=0.9)
        for name in shaped:
            peak = surrogates.get(name, beta=beta).peak
            gate = res["gate"][name] / peak
            ax_v.plot(lag, gate, color=COLORS.get(name), lw=1.0, alpha=0.8, label=f"{name} gate")
        ax_v.set_title(f"{CASE_TITLES[case]}\n$w_{{leak}}$ = {w_leak:g}", fontsize=9.5)
        ax_v.set_ylim(-0.05, 1.25)
        ax_v.set_ylabel("V;  s'(V - theta)/peak" if c == 0 else "")
        ax_v.invert_xaxis()
        if c == 0:
            ax_v.legend(fontsize=6.8, loc="upper left")
        flat_handles = []
        for leak, g, prof in zip(flat_leaks, greys, res["flat"].values(), strict=True):
            top = prof.max() if prof.max() > 0 else 1.0
            label = f"flat, $w_{{leak}}$ = {leak:g}"
            flat_handles += ax.plot(lag, prof / top, color=g, lw=1.2, label=label)
            add(loss, design, "flat", "flat", leak, None, prof, res["v"])
        shaped_handles = []
        widths = np.linspace(5.0, 1.8, max(len(shaped), 1))  # overlapping curves stay visible
        for name, width in zip(shaped, widths, strict=True):
            prof, fit = res["shaped"][name], res["fits"][name]
            top = prof.max() if prof.max() > 0 else 1.0
            color = COLORS.get(name)
            label = (
                f"{name} (x{fit.amplitude:.2g} at T): flat fit "
                f"$w_{{leak}}$ = {fit.w_leak:.3g}, d = {fit.distance:.2f}"
            )
            line = ax.plot(lag, prof / top, color=color, lw=width, alpha=0.8, label=label)
            shaped_handles += line
            add(loss, design, "shaped", name, w_leak, beta, prof, res["v"])
            if np.isfinite(fit.w_leak):
                fitted = flat_profiles([fit.w_leak], loss, steps)[0]
                ax.plot(lag, fitted / fitted.max(), "--", color=color, lw=1.2)
                add(loss, design, "flat fit", name, fit.w_leak, None, fitted, res["v"])
        ax.set_xlabel("steps before the spike, T - t")
        ax.set_ylim(-0.03, 1.05 + 0.075 * len(shaped))
        ax.set_yticks(np.linspace(0, 1, 6))
        ax.invert_xaxis()
        if c == 0:
            ax.set_ylabel("error dL/dx_t (each curve / its max)")
        ax.legend(handles=shaped_handles, fontsize=7, loc="upper center", borderaxespad=0.2)
    dashed = Line2D([], [], color="gray", ls="--", lw=1.2, label="best-fitting flat leak")
    fig.legend(
        handles=[*flat_handles, dashed],
        loc="outside lower center",
        ncol=len(flat_handles) + 1,
        fontsize=8,
    )
    fig.suptitle(
        f"F5b error sent back from a spike at T = {steps - 1} (real backprop through lifsg.LIF);"
        " dashed: best-fitting flat leak, d = shape distance (0 = identical)",
        fontsize=10.5,
    )
    return fig, data


def chosen_profile_figure(surrogate="superspike", beta=BETA, flat_leak=0.1, w_leak=W_LEAK):
    """:func:`error_profile_figure` for one shaped surrogate and one flat leak (for sliders)."""
    return error_profile_figure((surrogate,), beta, w_leak, (flat_leak,))


def learning_curves_figure(runs, highlight=None):
    """F5c: validation loss and accuracy per epoch (mean over seeds, band min..max) and the
    final test accuracy per configuration (dots: seeds).

    highlight: label of the tuned flat configuration (drawn thick). Returns ``(fig, data)``,
    one row per run and epoch: label, surrogate, beta, w_leak, seed, epoch, loss, accuracy,
    val_loss, val_accuracy, test_accuracy.
    """
    groups = by_label(runs)
    if not groups:
        raise ValueError("no runs to draw")
    flat_labels = [k for k, g in groups.items() if g[0]["surrogate"] == "flat"]
    blues = dict(
        zip(flat_labels, [str(g) for g in np.linspace(0.7, 0.0, len(flat_labels))], strict=True)
    )
    fig = Figure(figsize=(13.5, 5.2), layout="constrained")
    ax_loss, ax_acc, ax_test = fig.subplots(1, 3, width_ratios=(1.2, 1.2, 1.0))
    data = {k: [] for k in ("label", "surrogate", "beta", "w_leak", "seed", "epoch")}
    data.update(loss=[], accuracy=[], val_loss=[], val_accuracy=[], test_accuracy=[])
    for i, (label, group) in enumerate(groups.items()):
        sur = group[0]["surrogate"]
        color = blues[label] if sur == "flat" else COLORS.get(sur)
        lw = 3.0 if label == highlight else 1.5
        name = label + ("  [tuned flat]" if label == highlight else "")
        for ax, key in ((ax_loss, "val_loss"), (ax_acc, "val_accuracy")):
            curves = np.array([r["history"][key] for r in group])
            epochs = np.arange(1, curves.shape[1] + 1)
            ax.plot(epochs, curves.mean(axis=0), color=color, lw=lw, label=name)
            if len(group) > 1:
                ax.fill_between(epochs, curves.min(0), curves.max(0), color=color, alpha=0.15)
        acc = [r["test_accuracy"] for r in group]
        ax_test.plot(acc, [i] * len(acc), "o", color=color, ms=5, alpha=0.8)
        ax_test.plot([np.mean(acc)], [i], "|", color=color, ms=16, mew=2.5)
        for r in group:
            h = r["history"]
            n = len(h["loss"])
            data["label"] += [label] * n
            data["surrogate"] += [sur] * n
            data["beta"] += [r["beta"]] * n
            data["w_leak"] += [r["w_leak"]] * n
            data["seed"] += [r["seed"]] * n
            data["epoch"] += list(range(1, n + 1))
            for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
                data[key] += h[key]
            data["test_accuracy"] += [r["test_accuracy"]] * n
    ax_loss.set_ylabel("validation loss (cross-entropy)")
    ax_acc.set_ylabel("validation accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch")
    fig.legend(*ax_acc.get_legend_handles_labels(), loc="outside lower center", ncol=4, fontsize=8)
    ax_test.set_yticks(range(len(groups)))
    ax_test.set_yticklabels(list(groups), fontsize=8)
    ax_test.invert_yaxis()
    ax_test.set_xlabel("test accuracy (dots: seeds, bar: mean)")
    seeds = len(next(iter(groups.values())))
    fig.suptitle(
        f"F5c learning curves on the synthetic spike-timing task ({seeds} seed(s) each; "
        "band: min..max over seeds)",
        fontsize=11,
    )
    return fig, data
