"""Figure and data functions of paper items F1-F3 (lifsg.figures) and lifsg.widgets."""

import csv
import math
import tempfile
from pathlib import Path

import ipywidgets
import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from lifsg import phase, reference, surrogates
from lifsg.figures import lif_unit, operating_modes, output_dirs, phase_diagram, save_figure
from lifsg.studies import lif_unit as unit
from lifsg.studies import operating_modes as f2
from lifsg.studies import phase_diagram as f3
from lifsg.widgets import dropdown, figure_of, float_slider, interactive_figure

# ---------------------------------------------------------------------------------------------
# save_figure


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def _small_figure():
    fig = Figure(figsize=(2, 1.5))
    fig.add_subplot().plot([0, 1], [1, 0])
    return fig


def test_save_figure_writes_png_pdf_csv(tmp_path):
    data = {"step": np.arange(3), "v": [0.5, math.nan, math.inf], "mode": ["a", "b", "c"]}
    paths = save_figure(_small_figure(), data, tmp_path / "new" / "dir", "stem")
    assert [p.name for p in paths] == ["stem.png", "stem.pdf", "stem.csv"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[1].read_bytes()[:5] == b"%PDF-"
    assert _read_csv(paths[2]) == [
        ["step", "v", "mode"],
        ["0", "0.5", "a"],
        ["1", "nan", "b"],
        ["2", "inf", "c"],
    ]


def test_save_figure_takes_rows(tmp_path):
    rows = [{"a": 1, "b": 0.1}, {"a": 2, "b": 0.2}]
    *_, table = save_figure(_small_figure(), rows, tmp_path, "dicts")
    assert _read_csv(table) == [["a", "b"], ["1", "0.1"], ["2", "0.2"]]
    *_, table = save_figure(_small_figure(), [("a", "b"), (1, 2)], tmp_path, "lists")
    assert _read_csv(table) == [["a", "b"], ["1", "2"]]


def test_save_figure_rejects_ragged_columns(tmp_path):
    with pytest.raises(ValueError, match="equal length"):
        save_figure(_small_figure(), {"a": [1, 2], "b": [1]}, tmp_path, "x")
    with pytest.raises(ValueError, match="1-D"):
        save_figure(_small_figure(), {"a": np.zeros((2, 2))}, tmp_path, "x")


def test_save_figure_is_reproducible(tmp_path):
    fig = _small_figure()
    first = [p.read_bytes() for p in save_figure(fig, {"a": [1]}, tmp_path / "1", "s")]
    second = [p.read_bytes() for p in save_figure(fig, {"a": [1]}, tmp_path / "2", "s")]
    assert first == second


# ---------------------------------------------------------------------------------------------
# output_dirs: QUICK never writes into figures/ or results/ unless asked to


def test_output_dirs_paper_mode_defaults_to_the_repository_folders():
    assert output_dirs(False) == (Path("../figures"), Path("../results"))
    assert output_dirs(False, "a", None) == (Path("a"), Path("../results"))


def test_output_dirs_quick_defaults_to_a_fresh_temporary_folder():
    fig_dir, results_dir = output_dirs(True)
    assert fig_dir.parent == results_dir.parent
    assert fig_dir.parent.parent == Path(tempfile.gettempdir())
    assert (fig_dir.name, results_dir.name) == ("figures", "results")
    assert output_dirs(True)[0] != fig_dir  # a new folder per run
    assert "../" not in str(fig_dir) + str(results_dir)


def test_output_dirs_explicit_folders_win(tmp_path):
    assert output_dirs(True, tmp_path / "f", str(tmp_path / "r")) == (
        tmp_path / "f",
        tmp_path / "r",
    )
    fig_dir, results_dir = output_dirs(True, None, tmp_path / "r")
    assert results_dir == tmp_path / "r" and fig_dir.parent.parent == Path(tempfile.gettempdir())


def test_output_dirs_wants_a_resolved_quick():
    with pytest.raises(TypeError, match="quick must be True or False, got None"):
        output_dirs(None)


# ---------------------------------------------------------------------------------------------
# F1: the playground runs the real layer; tie it to the NumPy reference


def _numpy_derivative(name, beta):
    surrogate = surrogates.get(name, beta=beta)
    ops = keras.ops
    return lambda u: ops.convert_to_numpy(surrogate.derivative(ops.convert_to_tensor(u)))


@pytest.mark.parametrize(
    ("reset", "surrogate", "kind", "target"),
    [
        ("delayed", "flat", "regular", "spikes"),
        ("delayed", "superspike", "poisson", "all"),
        ("subtract", "sigmoid", "constant", "second"),
        ("zero", "esser", "poisson", "spikes"),
    ],
)
def test_simulate_unit_matches_reference(reset, surrogate, kind, target):
    signal = unit.input_signal(kind, 60, period=3, rate=0.4, seed=3)
    # a threshold exact in float32: the layer rounds a Python-float threshold to float32 in
    # the surrogate's argument (relative error ~1e-8, see the report on lifsg.neuron)
    w_input, w_leak, threshold, beta = 0.55, 0.15, 1.25, 4.0
    run = unit.simulate_unit(
        signal, w_input, w_leak, threshold, reset, surrogate, beta, target=target
    )
    trace = reference.lif_forward((w_input * signal)[None, :, None], w_leak, threshold, reset)
    np.testing.assert_allclose(run.v, trace.v[0, :, 0], atol=1e-12)
    np.testing.assert_array_equal(run.y, trace.y[0, :, 0])
    assert run.y.sum() >= 2  # the case exercises spikes and resets
    grads = reference.lif_backward(
        trace, _numpy_derivative(surrogate, beta), grad_y=run.target[None, :, None]
    )
    np.testing.assert_allclose(run.error, signal * grads["x"][0, :, 0], atol=1e-10)
    assert np.any(run.error != 0)


def test_simulate_unit_targets():
    signal = unit.input_signal("regular", 40, period=2)
    run = unit.simulate_unit(signal, 0.6, 0.0, target="second")
    assert run.spike_times[:2] == [3, 7]
    assert np.flatnonzero(run.target).tolist() == [7]
    run = unit.simulate_unit(signal, 0.6, 0.0, target="spikes")
    np.testing.assert_array_equal(run.target, run.y)
    silent = unit.simulate_unit(signal, 0.01, 0.5, target="second")
    assert silent.spike_times == [] and not silent.target.any() and not silent.error.any()
    with pytest.raises(ValueError, match="unknown target"):
        unit.simulate_unit(signal, 0.5, 0.0, target="first")
    with pytest.raises(ValueError, match="unknown reset"):
        unit.simulate_unit(signal, 0.5, 0.0, reset="soft")


def test_input_signal():
    np.testing.assert_array_equal(unit.input_signal("constant", 4), np.ones(4))
    assert np.flatnonzero(unit.input_signal("regular", 10, period=3)).tolist() == [2, 5, 8]
    a = unit.input_signal("poisson", 500, rate=0.2, seed=1)
    np.testing.assert_array_equal(a, unit.input_signal("poisson", 500, rate=0.2, seed=1))
    assert 0.1 < a.mean() < 0.3
    with pytest.raises(ValueError, match="unknown input kind"):
        unit.input_signal("burst", 10)
    with pytest.raises(ValueError, match="rate"):
        unit.input_signal("poisson", 10, rate=2)


def test_playground_figure_data_is_the_layer_run():
    fig, data = lif_unit.playground_figure(
        w_input=0.45, w_leak=0.2, surrogate="sigmoid", beta=5.0, input_kind="regular", steps=30
    )
    assert isinstance(fig, Figure)
    assert {len(v) for v in data.values()} == {30}
    run = unit.simulate_unit(data["input"], 0.45, 0.2, 1.0, "delayed", "sigmoid", 5.0)
    np.testing.assert_array_equal(data["V"], run.v)
    np.testing.assert_array_equal(data["error"], run.error)
    np.testing.assert_allclose(data["u"], run.v - 1.0)
    s = 1 / (1 + np.exp(-5.0 * data["u"]))
    np.testing.assert_allclose(data["surrogate"], 5.0 * s * (1 - s), rtol=1e-6)


def test_lif_unit_figure():
    fig, data = lif_unit.lif_unit_figure(n_inputs=4)
    assert isinstance(fig, Figure)
    assert data["kind"].count("error") == 4 + 1  # one per input, one from the loss
    assert {"x_4", "V_{t-1}", "y_t", "target"} <= set(data["source"])


# ---------------------------------------------------------------------------------------------
# F2


def test_f2_spike_times():
    times = f2.f2_spike_times()
    assert times[:14] == [11, 21, 30, 38, 45, 51, 56, 60, 63, 65, 66, 77, 87, 96]
    assert times[-1] == 209 and len(times) == 34


@pytest.mark.parametrize(("label", "w_input", "w_leak"), f2.COLUMNS)
def test_operating_mode_known_answers(label, w_input, w_leak):
    mode = f2.operating_mode(w_input, w_leak)
    assert mode.spike_times == [66, 132, 198]
    assert mode.target_time == 132
    times = np.array(mode.input_times)
    burst = times[(times >= 77) & (times <= 132)]
    assert len(burst) == 11
    np.testing.assert_allclose(mode.error[burst], (1 - w_leak) ** (132 - burst), rtol=1e-9)
    assert np.all(mode.error[:67] == 0)
    assert np.all(mode.error[133:] == 0)
    assert np.all(mode.error[np.setdiff1d(np.arange(211), times)] == 0)  # no input, no error
    summary = f2.summary(mode)
    assert summary["spike_times"] == [66, 132, 198] and summary["target"] == 132
    assert list(summary["error"]) == [str(t) for t in times]


def test_operating_modes_figure_data():
    fig, data = operating_modes.operating_modes_figure()
    assert isinstance(fig, Figure)
    assert {len(v) for v in data.values()} == {3 * 211}
    assert sorted(set(data["mode"])) == ["coincidence detector", "integrator", "mixed"]
    out = np.array(data["output"]).reshape(3, 211)
    assert [np.flatnonzero(o).tolist() for o in out] == [[66, 132, 198]] * 3
    target = np.array(data["target"]).reshape(3, 211)
    assert [np.flatnonzero(t).tolist() for t in target] == [[132]] * 3
    fig, data = operating_modes.chosen_mode_figure(0.3, 0.1, steps=80)
    assert set(data["mode"]) == {"chosen"} and len(data["step"]) == 80


def test_operating_mode_with_a_single_spike_targets_it():
    mode = f2.operating_mode(0.099, 0.0, steps=100)
    assert mode.spike_times == [66]
    assert mode.target_time == 66
    assert np.all(mode.error[[11, 66]] == 1.0)


# ---------------------------------------------------------------------------------------------
# F3


def test_phase_data_equals_lifsg_phase():
    data = f3.phase_data(0.05)
    values = np.round(np.arange(0, 1.0001, 0.05), 10)
    np.testing.assert_array_equal(data["w_input"], values)
    np.testing.assert_array_equal(data["w_leak"], values)
    w, leak = np.meshgrid(values, values)
    for spikes in phase.SPIKE_COUNTS:
        assert data[spikes].shape == (21, 21)
        assert np.all(np.isnan(data[spikes][:, 0]))  # w_input = 0: impossible
        np.testing.assert_array_equal(
            data[spikes][:, 1:], phase.max_spacing(w[:, 1:], leak[:, 1:], spikes)
        )


def test_phase_is_exact_on_class_boundaries():
    grid = f3.grid(0.01)[1:-1]
    # many spikes, w_input = w_leak: ln(1 - w) / ln(1 - w) = 1 exactly
    np.testing.assert_array_equal(phase.max_spacing(grid, grid, "many"), np.ones(grid.size))
    # many spikes, (1 - w_leak)**2 = 1 - w_input on the 0.01 grid: 0.9**2 = 0.81, ...
    leak = np.round(np.arange(0.1, 0.95, 0.1), 10)
    w = np.round(1 - (1 - leak) ** 2, 10)
    np.testing.assert_array_equal(phase.max_spacing(w, leak, "many"), np.full(leak.size, 2.0))
    assert float(phase.max_spacing(0.8, 0.5, 2)) == 2.0  # 1/0.8 - 1 = 0.25 = 0.5**2
    assert float(phase.max_spacing(0.5, 0.3, 2)) == 0.0  # 1/0.5 - 1 = 1: only together


def test_phase_does_not_hang_on_the_last_bit_of_log(monkeypatch):
    # another machine's log may differ by one ulp (numpy's SIMD log does, per CPU)
    values = f3.grid(0.01)
    w, leak = np.meshgrid(values[1:], values)
    expected = {spikes: phase.max_spacing(w, leak, spikes) for spikes in phase.SPIKE_COUNTS}
    log = np.log
    for direction in (np.inf, -np.inf):
        monkeypatch.setattr(np, "log", lambda x, d=direction: np.nextafter(log(x), d))
        for spikes, m in expected.items():
            np.testing.assert_array_equal(phase.max_spacing(w, leak, spikes), m)


def test_phase_figure_data_and_grid():
    fig, data = phase_diagram.phase_diagram_figure(0.1, 0.6, 0.1)
    assert isinstance(fig, Figure)
    assert {len(v) for v in data.values()} == {121}
    row = (np.isclose(data["w_input"], 0.6)) & (np.isclose(data["w_leak"], 0.1))
    assert [data[f"m_{s}"][row][0] for s in phase.SPIKE_COUNTS] == [3, 7, 8]
    assert np.isinf(data["m_many"][np.isclose(data["w_leak"], 0) & (data["w_input"] > 0)]).all()
    with pytest.raises(ValueError, match="divide 1"):
        f3.grid(0.3)


def test_phase_classes_and_labels():
    m = np.array([np.nan, 0, 3, 10, 11, np.inf])
    assert phase_diagram._classes(m, 10).tolist() == [0, 1, 4, 11, 12, 12]
    labels = [f3.label(v) for v in m]
    assert labels == ["impossible", "0", "3", "10", ">10", "unlimited"]


def test_spot_values():
    spots = f3.spot_values([(0.6, 0.1), (0.4, 0.1), (0.5, 0.3), (0.14, 0.02)])
    assert [(s["2"], s["3"], s["many"]) for s in spots] == [
        (3, 7, 8),
        ("impossible", 1, 4),
        (0, 1, 1),
        ("impossible", "impossible", 7),
    ]


@pytest.mark.parametrize("spikes", phase.SPIKE_COUNTS)
def test_layer_max_spacing_matches_reference_simulation(spikes):
    w = np.array([0.3, 0.45, 0.6, 0.6, 0.9, 0.2, 1.0])
    leak = np.array([0.05, 0.1, 0.1, 0.0, 0.5, 0.3, 0.2])
    got = f3.layer_max_spacing(w, leak, spikes, many=100)
    want = phase.simulate_max_spacing(w, leak, spikes, many=100)
    np.testing.assert_array_equal(got, want)


def test_cross_check_agrees_off_the_boundaries():
    check = f3.cross_check(0.25, many=200)
    assert set(check) == {"2", "3", "many"}
    for c in check.values():
        assert c["points"] == 20
        assert c["fraction_off_boundary"] == 1.0


# ---------------------------------------------------------------------------------------------
# widgets


def _line(a=1.0, b=0.0, label="x"):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [b, a + b], label=label)
    return fig, {"a": [a]}


def test_interactive_figure_redraws_on_change():
    calls = []

    def fn(**kwargs):
        calls.append(kwargs)
        return _line(**kwargs)

    controls = {"a": float_slider("a", 1.0, 0.0, 2.0, 0.1), "b": float_slider("b", 0, -1, 1, 0.1)}
    box = interactive_figure(fn, controls, fixed={"label": "y"})
    assert isinstance(box, ipywidgets.VBox) and box.output in box.children
    assert calls == [{"label": "y", "a": 1.0, "b": 0.0}]
    controls["a"].value = 1.5
    assert calls[-1] == {"label": "y", "a": 1.5, "b": 0.0}


def test_interactive_figure_errors_surface():
    def broken(a):
        raise RuntimeError(f"broken at {a}")

    with pytest.raises(RuntimeError, match="broken at 1.0"):
        interactive_figure(broken, {"a": float_slider("a", 1.0, 0.0, 2.0, 0.1)})

    def fails_later(a):
        if a > 1:
            raise RuntimeError("too large")
        return _line(a)

    slider = float_slider("a", 1.0, 0.0, 2.0, 0.1)
    interactive_figure(fails_later, {"a": slider})
    with pytest.raises(RuntimeError, match="too large"):  # outside IPython nothing swallows it
        slider.value = 1.5
    with pytest.raises(ValueError, match="both fixed and controlled"):
        interactive_figure(_line, {"a": slider}, fixed={"a": 1})
    with pytest.raises(TypeError, match="must return a Figure"):
        figure_of({"a": 1})


def test_playground_controls_run_the_real_function():
    controls = {
        "w_input": float_slider("w_input", 0.3, 0.0, 1.5, 0.01),
        "reset": dropdown("reset", ("delayed", "subtract", "zero"), "delayed"),
        "surrogate": dropdown("surrogate", ("flat", "esser"), "flat"),
    }
    interactive_figure(lif_unit.playground_figure, controls, fixed={"steps": 30})
    controls["reset"].value = "zero"
    controls["surrogate"].value = "esser"
    controls["w_input"].value = 0.9
