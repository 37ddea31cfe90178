"""The notebooks: every one executes in QUICK mode, is committed stripped, and the numbers the
paper-item notebooks save are the known answers of docs/model.md, F2 and F3; the guarded runner
shared with tools/run_notebooks.py bounds every wait and retries a stalled run."""

import ast
import csv
import json
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import papermill
import pytest
from notebook_runner import (
    NOTEBOOKS,
    REPO,
    CellTimeout,
    KernelStall,
    execute,
    notebook_names,
    run_notebook,
)

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


def _parameters(name):
    cell = next(c for c in _load(name).cells if c.cell_type == "code")
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
    }


@pytest.mark.parametrize("name", NAMES)
def test_output_folders_default_to_output_dirs(name):
    # None, resolved by lifsg.figures.output_dirs: QUICK never writes into figures/, results/
    params = _parameters(name)
    assert params["FIG_DIR"] is None and params["RESULTS_DIR"] is None
    setup = [c for c in _load(name).cells if c.cell_type == "code"][1].source
    assert "FIG_DIR, RESULTS_DIR = output_dirs(QUICK, FIG_DIR, RESULTS_DIR)" in setup


@pytest.mark.slow
def test_quick_run_with_default_folders_leaves_committed_files_alone(tmp_path):
    committed = [
        *REPO.glob("figures/f2_operating_modes.*"),
        REPO / "results" / "f2_operating_modes.json",
    ]
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in committed}
    run_notebook(NOTEBOOKS / "02_operating_modes.ipynb", tmp_path / "out.ipynb", {"QUICK": True})
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in committed} == before
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    setup = next(c for c in executed.cells if "= output_dirs(" in c.source)
    printed = setup.outputs[0]["text"]
    assert printed.startswith(f"figures -> {tempfile.gettempdir()}/lifsg-quick-")
    fig_dir = Path(printed.split()[2].rstrip(","))
    assert (fig_dir / "f2_operating_modes.png").is_file()
    assert (fig_dir.parent / "results" / "f2_operating_modes.json").is_file()


# notebook -> (results subfolder, table figure): the spike counts it stores feed its table
SPARSITY_TABLES = {
    "06_mnist": ("mnist", "f6_mnist_table"),
    "09_fashion_mnist": ("fashion_mnist", "f9_fashion_table"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_executes(name):
    out = execute(name)
    nb = nbformat.read(out / f"{name}.ipynb", as_version=4)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            assert output.output_type != "error", f"{name}: {output.get('ename')}"
    if name in SPARSITY_TABLES:
        folder, table = SPARSITY_TABLES[name]
        record = json.loads((out / "results" / folder / "activity.json").read_text())
        rows = [
            r for r in _csv_rows(out / "figures" / f"{table}.csv") if r["run"] in record["models"]
        ]
        assert rows and len(rows) == len(record["models"])
        for row in rows:
            layers = record["models"][row["run"]]["layers"]
            assert float(row["synops_per_image"]) == pytest.approx(
                sum(r["synops_per_image"] for r in layers)
            )


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


@pytest.mark.slow
def test_08_nir_runs_the_export_in_nirs_equations_and_the_peers():
    out = execute("08_nir")
    results = json.loads((out / "results" / "nir_mnist.json").read_text())
    reference = results["nir_reference"]
    assert 0 <= reference["accuracy"] <= 1 and 0 < reference["same_prediction_as_lifsg"] <= 1
    assert all(0 < v <= 1 for v in reference["spike_agreement_with_lifsg"].values())
    # Peers (where benchmarks/.venv-peers exists) read the graph as NIR defines it, up to
    # float32 rounding, except Norse, which ignores r unless it is folded into the Affine.
    peers = results["peers"]
    for name in ("snnTorch", "Norse, r folded"):
        if name in peers:
            agree = [v for k, v in peers[name].items() if k.endswith("with_nir")]
            assert len(agree) == 1 and agree[0] > 0.9999, name
    if "Norse" in peers:
        assert peers["Norse"] != peers["Norse, r folded"]
    assert (out / "figures" / "f8_nir_readout.csv").stat().st_size > 0


# ------------------------------------------------------------------------------------------
# The guarded runner (tools/notebook_exec.py): time limits, lost replies, retries

COUNT_RUN = """\
import pathlib

runs = pathlib.Path(RUNS)
runs.write_text(runs.read_text() + "x" if runs.exists() else "x")
"""
DROP_REPLY = (
    COUNT_RUN
    + """\
kernel = get_ipython().kernel
send = kernel.session.send
if len(runs.read_text()) <= DROPPED_RUNS:

    def drop_reply(stream, msg_or_type, *args, **kwargs):
        if msg_or_type == DROPPED:  # lost: the kernel still reports the request idle
            kernel.session.send = send
            return {"content": {"status": "ok"}}
        return send(stream, msg_or_type, *args, **kwargs)

    kernel.session.send = drop_reply
"""
)


def _tiny_notebook(
    path, *sources, parameters="RUNS = ''\nDROPPED_RUNS = 0\nDROPPED = 'execute_reply'"
):
    cells = [nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]})]
    cells += [nbformat.v4.new_code_cell(source) for source in sources]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)
    return path


@pytest.mark.slow
def test_lost_reply_is_detected_and_the_notebook_retried(tmp_path):
    nb = _tiny_notebook(
        tmp_path / "lost.ipynb", DROP_REPLY, "print('after', len(runs.read_text()))"
    )
    runs = tmp_path / "runs"
    report = run_notebook(
        nb, tmp_path / "out.ipynb", {"RUNS": str(runs), "DROPPED_RUNS": 1}, reply_grace=2
    )
    assert runs.read_text() == "xx"  # the stalled run, then the retry
    (stall,) = report.stalls
    # cell 2 of the executed copy: papermill injects the parameters as cell 1
    assert "attempt 1: cell 2 ('import pathlib'): the kernel reported it idle" in stall
    assert "1 stalled" in str(report)
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.cells[3].outputs[0]["text"] == "after 2\n"


@pytest.mark.slow
def test_lost_reply_after_the_last_cell_is_detected(tmp_path):
    # papermill's final kernel_info request used to wait forever for its reply
    nb = _tiny_notebook(tmp_path / "lost.ipynb", "x = 1", DROP_REPLY)
    runs = tmp_path / "runs"
    params = {"RUNS": str(runs), "DROPPED_RUNS": 1, "DROPPED": "kernel_info_reply"}
    report = run_notebook(nb, tmp_path / "out.ipynb", params, reply_grace=2)
    assert runs.read_text() == "xx"
    (stall,) = report.stalls
    assert "attempt 1: after the last cell: no reply to request" in stall


@pytest.mark.slow
def test_every_attempt_stalling_raises(tmp_path):
    nb = _tiny_notebook(tmp_path / "lost.ipynb", DROP_REPLY)
    params = {"RUNS": str(tmp_path / "runs"), "DROPPED_RUNS": 99}
    with pytest.raises(KernelStall, match="lost.ipynb: all 2 attempts stalled"):
        run_notebook(nb, tmp_path / "out.ipynb", params, attempts=2, reply_grace=2)
    assert (tmp_path / "runs").read_text() == "xx"


@pytest.mark.slow
def test_cell_timeout_names_the_cell_and_is_not_retried(tmp_path):
    nb = _tiny_notebook(tmp_path / "slow.ipynb", "x = 1", "import time\ntime.sleep(120)")
    with pytest.raises(
        CellTimeout, match=r"cell 2 \('import time'\) ran longer than the per-cell limit of 2 s"
    ) as err:
        run_notebook(nb, tmp_path / "out.ipynb", {}, cell_timeout=2)
    assert str(nb) in "\n".join(err.value.__notes__)


@pytest.mark.slow
def test_failing_cell_is_not_retried(tmp_path):
    nb = _tiny_notebook(tmp_path / "bad.ipynb", COUNT_RUN, "raise ValueError('broken')")
    with pytest.raises(papermill.PapermillExecutionError, match="broken"):
        run_notebook(nb, tmp_path / "out.ipynb", {"RUNS": str(tmp_path / "runs")})
    assert (tmp_path / "runs").read_text() == "x"
