"""Paper items F4 (input encodings) and F5 (surrogate equivalence): figure functions and the
numbers notebooks 04 and 05 save."""

import ast
import csv
import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from notebook_runner import REPO, execute

from lifsg import reference, studies, surrogates
from lifsg.data.synthetic import TaskConfig, synthetic_digit, temporal_task
from lifsg.figures import encodings as f4_figures
from lifsg.figures import surrogate_equivalence as f5_figures
from lifsg.studies import encodings as f4
from lifsg.studies import surrogate_equivalence as f5
from lifsg.studies import surrogate_training as f5_runs

HAS_MNIST = (REPO / "data" / "mnist" / "mnist.npz").is_file() or any(
    (REPO / "data" / "mnist").glob("t10k-images-idx3-ubyte*")
)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------ F4 functions


def test_synthetic_digit_is_an_image_with_grey_edges():
    img = synthetic_digit()
    assert img.shape == (28, 28)
    assert img.min() == 0 and img.max() == 1
    grey = (img > 0) & (img < 1)
    assert grey.sum() > 20  # anti-aliased edges: intermediate intensities for latency coding
    assert 60 < (img > 0.5).sum() < 250  # a stroke, not a blob or nothing


def test_encode_shapes_time_major_after_batch():
    img = synthetic_digit()
    coded = f4.encode(img, steps=17)
    for name in f4.ENCODINGS:
        assert coded[name].shape == (1, 17, 784), name


def test_latency_at_most_one_spike_per_unit_inside_the_window():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (8, 20, 20))
    x[:, 0, :5] = [0.0, 0.2, 0.2001, 0.9999, 1.0]  # edge cases: at threshold, just above, top
    steps, tau, th = 50, 1.0, 0.2
    spikes = f4.encode(x, steps=steps, tau=tau, threshold=th)["latency"]
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    per_unit = spikes.sum(axis=1)
    assert per_unit.max() == 1  # one spike at most
    flat = x.reshape(8, -1)
    assert np.all(per_unit[flat <= th] == 0)  # at or below threshold: none
    # where the formula puts the spike inside the window, it is exactly there; else none
    safe = np.where(flat > th, flat, 1.0)
    t = np.floor(tau * np.log(safe / (safe - th)) * steps)
    inside = (flat > th) & (t < steps)
    assert np.array_equal(per_unit == 1, inside)
    n, u = np.nonzero(inside)
    assert np.all(spikes[n, t[n, u].astype(int), u] == 1)
    # brighter pixels fire earlier
    assert spikes[0, :, 4].argmax() <= spikes[0, :, 3].argmax()


def test_poisson_counts_match_p_times_steps():
    steps, factor, dt = 200, 1.0, 0.05
    levels = np.array([0.0, 0.1, 0.3, 0.6, 1.0])
    x = np.tile(np.repeat(levels, 40), (20, 1))  # 20 images x 200 units
    spikes = f4.encode(x, steps=steps, factor=factor, dt=dt, seed=3)["poisson"]
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    counts = spikes.sum(axis=1)  # (20, 200)
    for i, level in enumerate(levels):
        c = counts[:, i * 40 : (i + 1) * 40]
        p = level * factor * dt
        n = c.size
        expected, sd = steps * p, math.sqrt(steps * p * (1 - p) / n)
        if p == 0:
            assert c.sum() == 0
        else:
            assert abs(c.mean() - expected) < 5 * sd, (level, c.mean(), expected)


def test_poisson_seed_reproducible_and_paper_setting_sparse():
    img = synthetic_digit()
    a = f4.encode(img, seed=5)["poisson"]
    b = f4.encode(img, seed=5)["poisson"]
    assert np.array_equal(a, b)
    # original setting: at most 0.5 expected spikes per white pixel over 100 steps
    assert a.sum() <= 0.5 * img.sum() + 5 * math.sqrt(0.5 * img.sum())


def test_constant_current_repeats_x_factor_dt():
    img = synthetic_digit()
    c = f4.encode(img, steps=7, factor=2.0, dt=0.01)["constant"][0]
    np.testing.assert_allclose(c, np.tile(img.ravel() * 0.02, (7, 1)), rtol=1e-6)


def test_spike_summary_agrees_with_the_formulas():
    img = synthetic_digit()
    batch = np.stack([img, img[::-1], img[:, ::-1]])
    rows = {r["encoding"]: r for r in f4.spike_summary(batch, steps=100, dt=0.01, seed=1)}
    assert set(rows) == set(f4.ENCODINGS)
    assert rows["latency"]["per_image"] == rows["latency"]["expected"]
    assert rows["latency"]["max_per_unit"] == 1
    assert rows["latency"]["active_units"] == rows["latency"]["per_image"]
    assert rows["constant"]["per_image"] == pytest.approx(rows["constant"]["expected"], rel=1e-5)
    assert rows["constant"]["nonzero_fraction"] == pytest.approx((img > 0).mean())
    p = rows["poisson"]
    assert abs(p["per_image"] - p["expected"]) < 5 * math.sqrt(p["expected"] / 3)
    assert "| latency |" in f4.summary_markdown(list(rows.values()))


def test_input_encodings_figure_data_are_the_encodings():
    img = synthetic_digit()
    fig, data = f4_figures.input_encodings_figure(img, steps=60, label="stand-in", seed=2)
    assert len(fig.axes) >= 4
    assert fig.axes[0].get_title() == "stand-in"
    coded = f4.encode(img, steps=60, seed=2)
    enc = np.array(data["encoding"])
    assert (enc == "image").sum() == 784
    for name in f4.ENCODINGS:
        assert (enc == name).sum() == np.count_nonzero(coded[name]), name
    lat = enc == "latency"
    steps = np.array(data["step"], dtype=float)[lat]
    assert steps.max() < 60
    assert len(set(np.array(data["unit"])[lat])) == lat.sum()  # one spike per unit


# ------------------------------------------------------------------------------ F5 (a)


@pytest.mark.parametrize("name", surrogates.available())
def test_surrogate_curves_peak_where_peak_says(name):
    u = np.linspace(-1, 1, 2001)  # contains u = 0
    curve = f5_figures.surrogate_curves([name], beta=8.0, u=u)[name]
    s = surrogates.get(name, beta=8.0)
    assert curve.max() == pytest.approx(s.peak, rel=1e-6)
    assert curve[1000] == pytest.approx(s.peak, rel=1e-6)  # at u = 0
    if name != "flat":  # a bump: well below the peak beyond its width
        assert curve[0] < 0.5 * s.peak and curve[-1] < 0.5 * s.peak
        assert 0 < s.width < 1


def test_surrogates_figure_covers_all_available():
    fig, data = f5_figures.surrogates_figure(beta=10.0)
    assert set(data["surrogate"]) == set(surrogates.available())
    peaks = {n: p for n, p in zip(data["surrogate"], data["peak"], strict=True)}
    assert peaks["sigmoid"] == pytest.approx(2.5)
    assert len(fig.axes) == 2


# ------------------------------------------------------------------------------ F5 (b)


@pytest.mark.parametrize("w_leak", [0.0, 0.05, 0.3, 1.0])
def test_flat_error_profile_is_exactly_decay_power(w_leak):
    steps = 25
    prof = f5.flat_profiles([w_leak], "spike", steps)[0]
    lag = np.arange(steps)[::-1]
    expected = (1 - w_leak) ** lag.astype(float)
    np.testing.assert_allclose(prof, expected, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(prof, f5.flat_profile_formula(w_leak, "spike", steps), atol=1e-7)


@pytest.mark.parametrize("w_leak", [0.0, 0.05, 0.4])
def test_flat_profile_of_every_step_loss_is_the_geometric_sum(w_leak):
    prof = f5.flat_profiles([w_leak], "all", 30)[0]
    np.testing.assert_allclose(prof, f5.flat_profile_formula(w_leak, "all", 30), rtol=1e-5)


@pytest.mark.parametrize("loss", ["spike", "all"])
def test_flat_profile_does_not_depend_on_the_design(loss):
    ramp = f5.error_profile("flat", 0.05, loss, "ramp", 40)
    kick = f5.error_profile("flat", 0.05, loss, "kick", 40)
    np.testing.assert_allclose(ramp, kick, rtol=1e-5)


@pytest.mark.parametrize("design", ["ramp", "kick"])
@pytest.mark.parametrize("name", f5.SHAPED)
def test_shaped_profiles_match_the_algebra_and_the_reference(name, design):
    w, steps, beta = 0.05, 40, 10.0
    s = surrogates.get(name, beta=beta)
    x = f5.design_input(design, w, steps)
    trace = reference.lif_forward(x[None, :, None], w, 1.0)
    assert np.flatnonzero(trace.y[0, :, 0]).tolist() == [steps - 1]

    def deriv(u):
        return np.asarray(s.derivative(np.asarray(u, dtype="float32")), dtype=float)

    # loss on the spike step: s'(u_T) (1 - w)^(T - t)
    spike = f5.error_profile(s, w, "spike", design, steps)
    u_T = trace.v[0, -1, 0] - 1.0
    lag = np.arange(steps)[::-1]
    np.testing.assert_allclose(spike, deriv(u_T) * (1 - w) ** lag, rtol=1e-4)
    # loss on every step: the exact NumPy backward with dL/dy_t = 1
    every = f5.error_profile(s, w, "all", design, steps)
    expected = reference.lif_backward(trace, deriv, grad_y=np.ones_like(trace.x))["x"][0, :, 0]
    np.testing.assert_allclose(every, expected, rtol=1e-4, atol=1e-7)


def test_designs_spike_only_at_the_last_step_and_ramp_refuses_saturation():
    for w in (0.0, 0.02, 0.1):
        v = reference.lif_forward(f5.ramp_input(w, 40)[None, :, None], w).v[0, :, 0]
        assert v[-1] >= 1 > v[-2]
        assert np.all(np.diff(v) > 0)  # a slow monotone approach
    for w in (0.0, 0.5, 1.0):
        y = reference.lif_forward(f5.kick_input(w, 40)[None, :, None], w).y[0, :, 0]
        assert np.flatnonzero(y).tolist() == [39]
    with pytest.raises(ValueError, match="saturates"):
        f5.ramp_input(0.6, 40)
    with pytest.raises(ValueError, match="design"):
        f5.design_input("wiggle", 0.1)


def test_fit_recovers_a_flat_leak_and_the_spike_case_equivalence():
    target = f5.flat_profiles([0.237], "all", 30)[0] * 3.0  # scale must not matter
    fit = f5.fit_flat_leak(target, "all", own_leak=0.05)
    assert fit.w_leak == pytest.approx(0.237, abs=1e-3)
    assert fit.distance < 1e-4 < fit.distance_same_leak
    assert fit.amplitude == pytest.approx(3.0, rel=1e-4)
    for name in f5.SHAPED:
        prof = f5.error_profile(name, 0.05, "spike", "ramp", 40)
        fit = f5.fit_flat_leak(prof, "spike", own_leak=0.05)
        assert fit.w_leak == pytest.approx(0.05)
        assert fit.distance < 1e-5


def test_shape_distance():
    a = np.array([1.0, 2.0, 3.0])
    assert f5.shape_distance(a, 5 * a) == pytest.approx(0, abs=1e-12)
    assert f5.shape_distance([1.0, 0.0], [0.0, 1.0]) == pytest.approx(math.sqrt(2))
    assert np.isnan(f5.shape_distance([0.0, 0.0], [1.0, 0.0]))


def test_error_profile_figure_data_and_fits():
    exp = f5.error_profile_experiment(("esser",), 10.0, 0.05, (0.0, 0.2), 30)
    fig, data = f5_figures.error_profile_figure(
        ("esser",), 10.0, 0.05, (0.0, 0.2), 30, experiment=exp
    )
    assert len(fig.axes) == 2 * len(f5.CASES)
    rows = len(f5.CASES) * 30 * (2 + 1 + 1)  # 2 flat leaks, the surrogate, its flat fit
    assert len(data["error"]) == rows
    fits = f5.fits_summary(exp)
    assert fits["loss=spike,design=ramp"]["esser"]["fitted_flat_w_leak"] == pytest.approx(0.05)
    # with a loss on every step, no flat leak reproduces esser's gated profile
    assert fits["loss=all,design=ramp"]["esser"]["shape_distance_at_fit"] > 0.1
    fig, _ = f5_figures.chosen_profile_figure("superspike", 5.0, 0.3)
    assert len(fig.axes) == 2 * len(f5.CASES)


# ------------------------------------------------------------------------------ F5 (c)


def test_temporal_task_carries_class_only_in_timing():
    task = TaskConfig(noise=0.0, drop=0.0, jitter=0)
    x, y = temporal_task(400, task, seed=0)
    assert x.shape == (400, task.steps, task.channels) and x.dtype == np.float32
    assert set(np.unique(y)) == set(range(task.classes))
    counts = x.sum(axis=1)
    assert np.all(counts == 1)  # every channel fires exactly once in every class
    first = x.argmax(axis=1)  # spike time per channel
    for k in range(task.classes):
        times = first[y == k]
        assert np.all(times == times[0])  # no jitter: the template itself
        assert times.max() < int(task.steps * task.window)
    templates = np.array([first[y == k][0] for k in range(task.classes)])
    assert len({tuple(t) for t in templates}) == task.classes
    x2, y2 = temporal_task(400, task, seed=0)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    noisy, labels = temporal_task(2000, TaskConfig(), seed=1)
    per_class = [noisy[labels == k].sum(axis=(1, 2)).mean() for k in range(5)]
    assert max(per_class) - min(per_class) < 1.0  # spike counts do not tell the class


def test_run_config_fixes_the_leaks_and_sets_the_surrogate():
    config = f5_runs.run_config("esser", 0.15, 4.0, settings=f5_runs.TrainSettings(hidden=6))
    model = studies.build_model(config)
    hidden = model.get_layer("dense_lif_0")
    assert hidden.units == 6 and not hidden.w_leak.trainable
    np.testing.assert_allclose(hidden.w_leak.numpy(), 0.15)
    assert hidden.surrogate == surrogates.get("esser", beta=4.0)
    readout = model.get_layer("readout")
    assert not readout.w_leak.trainable
    np.testing.assert_array_equal(readout.w_leak.numpy(), 0.0)
    assert model.input_shape == (None, TaskConfig().steps, TaskConfig().channels)
    assert model.output_shape == (None, TaskConfig().classes)
    assert f5_runs.label(f5_runs.run_config("flat", 0.1)) == "flat, w_leak 0.1"
    assert f5_runs.label(config) == "esser (beta 4), w_leak 0.15"


def test_train_runs_repeat_plain_fit_through_the_harness():
    """The harness (per-epoch fit, checkpoints, evaluations between epochs) gives F5's runs the
    numbers of one plain ``model.fit`` over all epochs with validation data."""
    import keras

    import lifsg

    settings = f5_runs.TrainSettings(
        n_train=64, n_val=32, n_test=32, epochs=2, batch_size=16, hidden=8, seeds=(3,)
    )
    config = f5_runs.run_config("superspike", 0.1, settings=settings, seed=3)
    (run,) = f5_runs.train_runs([config])
    (x, y), (x_te, y_te) = f5_runs.task_data(config)
    task = TaskConfig()
    keras.utils.set_random_seed(3)
    inputs = keras.Input((task.steps, task.channels))
    hidden = lifsg.DenseLIF(
        8, w_leak=0.1, trainable_leak=False, surrogate=surrogates.get("superspike", beta=10.0)
    )(inputs)
    outputs = lifsg.LeakyReadout(
        task.classes, w_leak=0.0, trainable_leak=False, activation="softmax"
    )(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(settings.learning_rate),
        "sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    fit = model.fit(
        x[:64],
        y[:64],
        batch_size=16,
        epochs=2,
        validation_data=(x[64:], y[64:]),
        shuffle=True,
        verbose=0,
    )
    test_loss, test_accuracy = model.evaluate(x_te, y_te, batch_size=16, verbose=0)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(run["history"][key], fit.history[key], rtol=1e-6)
    assert run["test_loss"] == pytest.approx(test_loss, rel=1e-6)
    assert run["test_accuracy"] == pytest.approx(test_accuracy)


#: every field of notebook 05's paper-mode configs but name, surrogate, w_leak and seed (the
#: committed results were made with train_size / test_size None: the same, all of the data)
F5_PAPER_CONFIG = {
    "architecture": "dense",
    "encoding": "spikes",
    "beta": 10.0,
    "trainable_leak": False,
    "epochs": 15,
    "steps": 30,
    "factor": 1.0,
    "dt": 0.005,
    "latency_tau": 1.0,
    "latency_threshold": 0.2,
    "units": [48],
    "conv_filters": [],
    "conv_kernel": 3,
    "conv_downsample": "pool",
    "kernel_initializer": "glorot_uniform",
    "use_bias": True,
    "readout_leak": 0.0,
    "readout_bias": 0.0,
    "augment_shift": 0,
    "classes": 5,
    "input_shape": [30, 24],
    "loss": "crossentropy",
    "batch_size": 128,
    "learning_rate": 0.003,
    "lr_patience": 7,
    "lr_monitor": "loss",
    "lr_factor": 1.0,
    "min_lr": 0.0,
    "train_size": 1536,
    "test_size": 1024,
    "validation": 512,
    "eval_test": True,
    "eval_batch_size": 128,
    "epoch_seeds": False,
    "note": "",
    "extra": {},
}
#: SHA-256 of (x float32 bytes + y int64 bytes) of the paper-mode task data
F5_PAPER_DIGESTS = (
    "d7a711b5e61eb6c44028cee79074a4b059756501eda613825933593291bcfc4f",  # train + validation
    "60f3f8eac4cee27c3ac08456899912a2bf9a9eb0805af59a351428a5f3023c1d",  # test
)


def _digest(x, y):
    return hashlib.sha256(
        np.ascontiguousarray(x, "float32").tobytes() + np.asarray(y, "int64").tobytes()
    ).hexdigest()


def test_paper_mode_configs_and_data_are_those_of_the_committed_f5():
    """Notebook 05's paper-mode runs (its parameters, built as its cell (c) builds them) have
    the settings, configs and task data that results/f5_surrogate_equivalence.json was made
    with; a change here means the committed F5 numbers no longer follow from the code."""
    nb = json.loads((REPO / "notebooks" / "05_surrogate_equivalence.ipynb").read_text())
    cell = next(c for c in nb["cells"] if c["cell_type"] == "code")
    p = {
        n.targets[0].id: ast.literal_eval(n.value) for n in ast.parse("".join(cell["source"])).body
    }
    committed = json.loads((REPO / "results" / "f5_surrogate_equivalence.json").read_text())
    assert committed["quick"] is False
    settings = committed["settings"]
    for key in ("beta", "w_leak", "steps", "shaped", "profile_flat_leaks", "train_flat_leaks"):
        assert p[key.upper()] == settings[key], key
    assert vars(TaskConfig()) == settings["task"]
    train = f5_runs.TrainSettings(
        n_train=p["N_TRAIN"],
        n_val=p["N_VAL"],
        n_test=p["N_TEST"],
        epochs=p["EPOCHS"],
        hidden=p["HIDDEN"],
        learning_rate=p["LEARNING_RATE"],
        seeds=tuple(range(p["SEED"], p["SEED"] + p["SEEDS"])),
    )
    configs = f5_runs.default_configs(
        p["TRAIN_FLAT_LEAKS"], p["SHAPED"], p["W_LEAK"], p["BETA"], train
    )
    scale = f5_runs.settings_of(configs)
    assert scale == train and vars(scale) | {"seeds": list(scale.seeds)} == settings["train"]
    runs = [("flat", w) for w in settings["train_flat_leaks"]]
    runs += [(name, settings["w_leak"]) for name in settings["shaped"]]
    expected = [(sur, w, s) for sur, w in runs for s in settings["train"]["seeds"]]
    assert [(c.surrogate, c.w_leak, c.seed) for c in configs] == expected
    for config in configs:
        d = config.to_dict()
        assert d.pop("name") == f"f5_{config.surrogate}_leak{config.w_leak:g}_s{config.seed}"
        assert {k: v for k, v in d.items() if k not in ("surrogate", "w_leak", "seed")} == (
            F5_PAPER_CONFIG
        )
    (x, y), (x_te, y_te) = f5_runs.task_data(configs[0])
    assert len(x) == configs[0].train_size and len(x_te) == configs[0].test_size  # no cut
    assert (_digest(x, y), _digest(x_te, y_te)) == F5_PAPER_DIGESTS


def test_quick_config_scales_the_f5_runs_and_their_data():
    config = f5_runs.run_config("sigmoid", 0.05, seed=2)
    quick = studies.quick_config(config, train_size=100, test_size=40)
    before, after = config.to_dict(), quick.to_dict()
    changed = {k for k in after if after[k] != before[k]}
    assert changed == set("epochs batch_size units validation train_size test_size note".split())
    assert quick.steps == config.steps  # the spike trains' own steps
    (x, y), (x_te, _) = f5_runs.task_data(quick)
    assert x.shape == (100, config.steps, TaskConfig().channels) and len(x_te) == 40
    x_val, y_val = temporal_task(quick.validation, seed=2)
    np.testing.assert_array_equal(x[-quick.validation :], x_val)
    np.testing.assert_array_equal(y[-quick.validation :], y_val)
    assert f5_runs.settings_of([quick]) == f5_runs.TrainSettings(
        n_train=50, n_val=50, n_test=40, epochs=2, batch_size=32, hidden=32, seeds=(2,)
    )
    with pytest.raises(ValueError, match="differ in scale"):
        f5_runs.settings_of([config, quick])


def _fake_runs():
    runs = []
    for sur, w, acc in (("flat", 0.0, 0.7), ("flat", 0.1, 0.9), ("superspike", 0.05, 0.88)):
        for seed in (0, 1):
            val = [1.5, 1.0 - acc / 2 + 0.01 * seed]
            runs.append(
                {
                    "label": f5_runs.label(f5_runs.run_config(sur, w)),
                    "surrogate": sur,
                    "beta": None if sur == "flat" else 10.0,
                    "w_leak": w,
                    "seed": seed,
                    "history": {
                        "loss": val,
                        "accuracy": [0.3, acc],
                        "val_loss": val,
                        "val_accuracy": [0.3, acc],
                    },
                    "test_loss": val[-1],
                    "test_accuracy": acc + 0.01 * seed,
                    "seconds": 1.0,
                }
            )
    return runs


def test_summary_tuning_and_comparison():
    runs = _fake_runs()
    summary = f5_runs.summarize_runs(runs)
    assert len(summary) == 3
    tuned = f5_runs.tuned_flat(summary)
    assert tuned == "flat, w_leak 0.1"
    assert summary[tuned]["test_accuracy"]["mean"] == pytest.approx(0.905)
    cmp = f5_runs.compare(summary, tuned)
    assert cmp["superspike (beta 10), w_leak 0.05"]["test_accuracy_difference"] == pytest.approx(
        -0.02
    )
    fig, data = f5_figures.learning_curves_figure(runs, highlight=tuned)
    assert len(data["epoch"]) == len(runs) * 2
    text = f5_runs.findings({}, summary, tuned)
    assert "tuned flat = flat, w_leak 0.1" in text and "superspike" in text


# ------------------------------------------------------------------------------ notebooks


@pytest.mark.slow  # a notebook execution
def test_notebook_04_saves_f4():
    out = execute("04_input_encodings")
    for ext in ("png", "pdf", "csv"):
        assert (out / "figures" / f"f4_input_encodings.{ext}").stat().st_size > 0
    rows = read_csv(out / "figures" / "f4_input_encodings.csv")
    assert list(rows[0]) == ["encoding", "unit", "step", "value"]
    assert sum(r["encoding"] == "image" for r in rows) == 784
    lat = [r for r in rows if r["encoding"] == "latency"]
    assert len({r["unit"] for r in lat}) == len(lat) > 10
    results = json.loads((out / "results" / "f4_input_encodings.json").read_text())
    assert results["source"] == ("MNIST" if HAS_MNIST else "synthetic stand-in")
    summary = {r["encoding"]: r for r in results["summary"]}
    assert summary["latency"]["per_image"] == summary["latency"]["expected"]
    assert summary["poisson"]["per_image"] < summary["latency"]["per_image"]  # very sparse
    nb = json.loads((out / "04_input_encodings.ipynb").read_text())
    shown = [
        "".join(o.get("data", {}).get("text/markdown", ""))
        for cell in nb["cells"]
        for o in cell.get("outputs", [])
    ]
    caption = next(text for text in shown if text.startswith("**Image:"))
    assert ("MNIST test image" in caption) == HAS_MNIST
    assert ("synthetic stand-in" in caption) != HAS_MNIST


def _check_f5_outputs(fig_dir, results, paper):
    for stem in ("f5_surrogates", "f5_error_profiles", "f5_learning_curves"):
        for ext in ("png", "pdf", "csv"):
            assert (fig_dir / f"{stem}.{ext}").stat().st_size > 0, (stem, ext)
    fits = results["error_profile_fits"]
    w = results["settings"]["w_leak"]
    for name, f in fits["loss=spike,design=ramp"].items():
        assert f["fitted_flat_w_leak"] == pytest.approx(w), name
        assert f["shape_distance_at_fit"] < 1e-5
    assert fits["loss=spike,design=ramp"]["sigmoid"]["amplitude_vs_flat_at_T"] == pytest.approx(
        2.5, rel=0.01
    )
    for case in ("loss=all,design=ramp", "loss=all,design=kick"):
        for name, f in fits[case].items():
            assert f["shape_distance_at_fit"] > 0.1, (case, name)
            assert f["shape_distance_at_fit"] <= f["shape_distance_flat_same_leak"]
    training = results["training"]
    summary = training["summary"]
    flats = results["settings"]["train_flat_leaks"]
    assert len(summary) == len(flats) + len(results["settings"]["shaped"])
    seeds = len(results["settings"]["train"]["seeds"])
    for entry in summary.values():
        assert len(entry["seeds"]) == seeds
        assert 0 <= entry["test_accuracy"]["mean"] <= 1
        assert math.isfinite(entry["val_loss"]["mean"])
    assert summary[training["tuned_flat"]]["surrogate"] == "flat"
    curves = read_csv(fig_dir / "f5_learning_curves.csv")
    epochs = results["settings"]["train"]["epochs"]
    assert len(curves) == len(summary) * seeds * epochs
    profiles = read_csv(fig_dir / "f5_error_profiles.csv")
    for r in profiles:
        if r["loss"] == "spike" and r["curve"] == "flat":
            expected = (1 - float(r["w_leak"])) ** int(r["lag"])
            assert float(r["error"]) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    if paper:
        assert results["quick"] is False
        assert seeds >= 3
        # the synthetic task is learnable by every configuration: far above chance (1/5)
        assert all(e["test_accuracy"]["mean"] > 0.5 for e in summary.values())


def _wall_clock_keys(value, path="$"):
    """Paths of keys that hold wall-clock times (seconds, *_time_s) anywhere in a JSON value."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if re.search(r"(^|_)seconds?$|_time_s$|^wall", str(key)):
                found.append(f"{path}.{key}")
            found += _wall_clock_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found += _wall_clock_keys(item, f"{path}[{i}]")
    return found


@pytest.mark.slow  # a notebook execution
def test_notebook_05_saves_f5():
    out = execute("05_surrogate_equivalence")
    results = json.loads((out / "results" / "f5_surrogate_equivalence.json").read_text())
    assert results["quick"] is True
    _check_f5_outputs(out / "figures", results, paper=False)
    assert _wall_clock_keys(results) == []


def test_committed_results_carry_no_wall_clock_times():
    # a rerun must leave results/f*.json unchanged: timings go to the log, not into them
    paths = sorted((REPO / "results").glob("f*.json"))
    assert len(paths) >= 4
    for path in paths:
        assert _wall_clock_keys(json.loads(path.read_text())) == [], path.name


def test_committed_paper_mode_outputs_f4_f5():
    fig_dir, res_dir = REPO / "figures", REPO / "results"
    results = json.loads((res_dir / "f5_surrogate_equivalence.json").read_text())
    _check_f5_outputs(fig_dir, results, paper=True)
    f4_results = json.loads((res_dir / "f4_input_encodings.json").read_text())
    assert f4_results["source"] == "MNIST"  # the committed F4 shows a real digit
    assert f4_results["summary"][0]["images"] == 1000
    for ext in ("png", "pdf", "csv"):
        assert (fig_dir / f"f4_input_encodings.{ext}").stat().st_size > 0
    assert Path(fig_dir / "f4_input_encodings.csv").read_text().startswith("encoding,unit,step")
