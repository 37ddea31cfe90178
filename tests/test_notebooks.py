"""The notebooks: every one executes in QUICK mode, is committed stripped, and the numbers the
paper-item notebooks save are the known answers of docs/model.md, F2 and F3."""

import ast
import csv
import json

import nbformat
import numpy as np
import pytest
from notebook_runner import NOTEBOOKS, execute, notebook_names

NAMES = notebook_names()


def _load(name):
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def test_notebooks_found():
    assert {"01_lif_neuron", "02_operating_modes", "03_phase_diagram"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stripped_with_literal_parameters(name):
    nb = _load(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{name} has no code cell"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), f"{name}: first code cell untagged"
    for node in ast.parse(first.source).body:
        assert isinstance(node, ast.Assign), f"{name}: parameters cell holds {ast.dump(node)}"
        ast.literal_eval(node.value)  # literals only: papermill overrides them
    assert "QUICK" in first.source and "FIG_DIR" in first.source
    for cell in code:
        assert cell.outputs == [], f"{name}: a cell has outputs"
        assert cell.execution_count is None, f"{name}: a cell has an execution count"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name):
    out = execute(name)
    nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{name}: {output.get('ename')}"


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_01_saves_f1():
    out = execute("01_lif_neuron") / "figures"
    for stem in ("f1_lif_unit", "f1_playground"):
        assert all((out / f"{stem}.{ext}").stat().st_size > 0 for ext in ("png", "pdf", "csv"))
    rows = _csv_rows(out / "f1_playground.csv")
    assert {"step", "input", "V", "spike", "error", "u", "surrogate"} <= set(rows[0])


@pytest.mark.slow
def test_02_known_answers():
    out = execute("02_operating_modes")
    results = json.loads((out / "results" / "f2_operating_modes.json").read_text())
    decay = {"integrator": 1.0, "mixed": 0.98, "coincidence detector": 0.7}
    assert set(results) == set(decay)
    for label, r in results.items():
        assert r["spike_times"] == [66, 132, 198], label
        assert r["target"] == 132, label
        error = {int(t): v for t, v in r["error"].items()}
        burst = [t for t in error if 77 <= t <= 132]
        assert len(burst) == 11
        for t in burst:
            assert error[t] / error[132] == pytest.approx(decay[label] ** (132 - t), rel=1e-6)
        assert all(error[t] == 0 for t in error if t <= 66), label
        assert all(error[t] == 0 for t in error if t > 132), label
    rows = _csv_rows(out / "figures" / "f2_operating_modes.csv")
    assert len(rows) == 3 * 211
    assert {"mode", "step", "input", "V", "output", "target", "error"} <= set(rows[0])
    spikes = [int(r["step"]) for r in rows if float(r["output"]) == 1]
    assert spikes == [66, 132, 198] * 3


@pytest.mark.slow
def test_03_spot_values_and_cross_check():
    out = execute("03_phase_diagram")
    results = json.loads((out / "results" / "f3_phase_diagram.json").read_text())
    spots = {
        (s["w_input"], s["w_leak"]): (s["2"], s["3"], s["many"]) for s in results["spot_values"]
    }
    assert spots == {
        (0.6, 0.1): (3, 7, 8),
        (0.4, 0.1): ("impossible", 1, 4),
        (0.5, 0.3): (0, 1, 1),
        (0.14, 0.02): ("impossible", "impossible", 7),
    }
    for spikes in ("2", "3", "many"):
        check = results["cross_check"]["agreement"][spikes]
        assert check["fraction_off_boundary"] == 1.0, spikes
        assert check["fraction"] > 0.9, spikes
    rows = _csv_rows(out / "figures" / "f3_phase_diagram.csv")
    assert len(rows) == 101 * 101
    grid = {(round(float(r["w_input"]), 2), round(float(r["w_leak"]), 2)): r for r in rows}
    assert [grid[(0.6, 0.1)][f"m_{s}"] for s in ("2", "3", "many")] == ["3.0", "7.0", "8.0"]
    assert np.isnan(float(grid[(0.4, 0.1)]["m_2"]))
    assert float(grid[(0.5, 0.0)]["m_2"]) == np.inf  # the w_leak = 0 limit
