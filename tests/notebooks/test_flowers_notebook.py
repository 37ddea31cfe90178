"""What notebook 07 (F7, Oxford Flowers) saves in QUICK mode, and how paper mode stops without
the data. QUICK mode runs on the synthetic fixture unless data/flowers holds the real files."""

import ast
import csv
import json

import nbformat
import papermill
import pytest
from notebook_runner import NOTEBOOKS, REPO, execute, run_notebook

from lifsg import studies
from lifsg.data import flowers as fl

NAME = "07_flowers"
STEMS = ("f7_flowers_samples", "f7_flowers_learning_curves", "f7_flowers_results")
REAL_DATA = not fl.flowers_files_missing(REPO / "data" / "flowers")


@pytest.fixture(scope="module")
def out():
    return execute(NAME)


def _csv(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def _parameters():
    nb = nbformat.read(NOTEBOOKS / f"{NAME}.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    return {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in ast.parse(cell.source).body
        if isinstance(node, ast.Assign)
    }


def test_committed_notebook_is_stripped_and_parametrised():
    nb = nbformat.read(NOTEBOOKS / f"{NAME}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    body = ast.parse(code[0].source).body
    assert all(isinstance(node, ast.Assign) for node in body)  # literals only
    params = _parameters()
    assert params["QUICK"] is None and params["DATA_DIR"] == "../data/flowers"
    assert params["FIG_DIR"] is None and params["RESULTS_DIR"] is None  # see output_dirs
    assert 'os.environ.get("LIFSG_QUICK", "0") == "1"' in code[1].source


def test_figures_saved(out):
    for stem in STEMS:
        for ext in ("png", "pdf", "csv"):
            path = out / "figures" / f"{stem}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path


def test_learning_curves_have_both_networks_and_every_epoch(out):
    rows = _csv(out / "figures" / "f7_flowers_learning_curves.csv")
    epochs = _parameters()["QUICK_EPOCHS"]
    assert {r["nonlinearity"] for r in rows} == {"lif", "relu"}
    for nl in ("lif", "relu"):
        assert [int(r["epoch"]) for r in rows if r["nonlinearity"] == nl] == list(
            range(1, epochs + 1)
        )
    for r in rows:
        assert 0 <= float(r["test_accuracy"]) <= 1 and float(r["loss"]) > 0
    for nl in ("lif", "relu"):  # the same code path as paper mode, and it learns
        losses = [float(r["loss"]) for r in rows if r["nonlinearity"] == nl]
        assert losses[-1] < losses[0], (nl, losses)


def test_results_table_and_json(out):
    table = _csv(out / "figures" / "f7_flowers_results.csv")
    assert [r["nonlinearity"] for r in table] == ["lif", "relu"]
    params = _parameters()
    runs = out / "results" / "flowers_quick"
    for nl in ("lif", "relu"):
        name = f"flowers_{nl}_s{params['SEED']}"
        res = json.loads((runs / f"{name}.json").read_text())
        assert res["complete"] and res["epochs"] == params["QUICK_EPOCHS"]
        assert studies.RunConfig.from_dict(res["config"]).nonlinearity == nl
        assert res["config"]["surrogate"] == "flat" and res["architecture"] == "hybrid"
        assert res["train_size"] == 10 * (
            params["QUICK_PER_CLASS"] - params["QUICK_TEST_PER_CLASS"]
        )
        assert (runs / f"{name}.keras").is_file()
        row = next(r for r in table if r["nonlinearity"] == nl)
        assert float(row["test_accuracy_mean"]) == pytest.approx(res["test_accuracy"])
    assert not (runs / "checkpoints").exists()  # checkpoints live in CHECKPOINT_DIR / a temp dir
    # the ReLU twin has no leak weights: fewer parameters than the LIF network
    assert int(table[1]["params"]) < int(table[0]["params"])


def test_fixture_is_labelled(out):
    summary = json.loads((out / "results" / "flowers_quick" / "f7_summary.json").read_text())
    assert summary["quick"] is True and summary["fixture"] is (not REAL_DATA)
    if summary["fixture"]:
        assert "SYNTHETIC FIXTURE" in summary["data"]
        res = json.loads((out / "results" / "flowers_quick" / "flowers_lif_s0.json").read_text())
        assert "SYNTHETIC FIXTURE" in res["note"]
    assert len(summary["class_labels"]) == 10


def test_paper_mode_without_data_stops_with_instructions(tmp_path):
    with pytest.raises(papermill.PapermillExecutionError) as err:
        run_notebook(
            NOTEBOOKS / f"{NAME}.ipynb",
            tmp_path / f"{NAME}.ipynb",
            {
                "QUICK": False,
                "DATA_DIR": str(tmp_path / "no-flowers"),
                "FIG_DIR": str(tmp_path / "figures"),
                "RESULTS_DIR": str(tmp_path / "results"),
            },
        )
    assert err.value.ename == "DataError"
    message = err.value.evalue
    assert "Paper mode needs the Oxford 102 Flowers files" in message
    assert "python -m lifsg.data fetch flowers" in message
    assert str(tmp_path / "no-flowers" / "102flowers.tgz") in message
    assert not (tmp_path / "results").exists()  # stopped before any training
