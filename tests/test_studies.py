"""lifsg.studies: plan files, the resuming runner, locks, status and the command line."""

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lifsg import studies
from lifsg.studies import fashion_mnist, mnist
from lifsg.studies.__main__ import main as cli
from lifsg.studies.plan import claim

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(tiny):
    """conftest's ``tiny`` with batch 64, 100 validation images and no per-epoch test."""
    return functools.partial(tiny, batch_size=64, validation=100, eval_test=False)


@pytest.fixture
def plan(tmp_path, tiny):
    configs = [tiny("a"), tiny("b", seed=1)]
    return studies.write_plan(tmp_path / "plans" / "toy.json", "toy", "synthetic_digits", configs)


def test_plan_round_trip_and_folders(plan, tmp_path, tiny):
    assert [r.name for r in plan.runs] == ["a", "b"]
    assert plan.run("b").config == tiny("b", seed=1)
    assert plan.runs_dir.resolve() == (tmp_path / "runs" / "toy").resolve()
    assert plan.results_dir.resolve() == (tmp_path / "results" / "synthetic_digits").resolve()
    with pytest.raises(KeyError, match="no run 'c'"):
        plan.run("c")


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda raw: raw["runs"].append(raw["runs"][0]), "listed twice"),
        (lambda raw: raw.update(dataset="cifar"), "unknown dataset"),
        (lambda raw: raw["runs"][0]["config"].update(units=[0]), "run 'a'.*units"),
        (lambda raw: raw["runs"][0].update(name="z"), "config name 'a'"),
        (lambda raw: raw.pop("runs_dir"), "lacks runs_dir"),
    ],
)
def test_bad_plans_are_rejected_with_the_file_named(plan, edit, message):
    raw = json.loads(plan.path.read_text())
    edit(raw)
    plan.path.write_text(json.dumps(raw))
    with pytest.raises(ValueError, match=message):
        studies.load_plan(plan.path)
    plan.path.write_text("{")
    with pytest.raises(ValueError, match=str(plan.path)):
        studies.load_plan(plan.path)


@pytest.mark.slow  # trains, resumes (35-145 s here)
def test_work_trains_resumes_and_cleans_up(plan):
    a = plan.run("a")
    studies.train(
        a.config, studies.runner.load_data(plan), plan.runs_dir / "a", verbose=0, max_epochs=1
    )
    assert studies.run_state(plan, a)["state"] == "partial"
    assert studies.run_state(plan, a)["epoch"] == 1
    assert studies.run_state(plan, plan.run("b"))["state"] == "pending"
    done = studies.work([plan], verbose=0)
    assert done == ["a", "b"]
    for run in plan.runs:
        info = studies.run_state(plan, run)
        assert info["state"] == "done" and info["epoch"] == 2
        assert 0 <= info["test_accuracy"] <= 1 and info["epoch_time_s"] > 0
        assert not (plan.runs_dir / run.name).exists()  # checkpoint dropped when complete
    stored = json.loads((plan.results_dir / "a.json").read_text())
    assert [h["epoch"] for h in stored["history"]] == [1, 2]  # epoch 1 was not trained twice
    assert "test_accuracy" not in stored["history"][0]  # eval_test=False: test used once
    assert studies.work([plan], verbose=0) == []  # nothing left


@pytest.mark.slow  # trains (35-145 s here)
def test_a_stored_result_of_another_config_does_not_count(plan, tiny):
    studies.work([plan], only=["a"], verbose=0)
    longer = studies.write_plan(
        plan.path, "toy", "synthetic_digits", [tiny("a", epochs=3), tiny("b", seed=1)]
    )
    assert studies.run_state(longer, longer.run("a"))["state"] == "pending"
    assert studies.run_state(longer, longer.run("b"))["state"] == "pending"


@pytest.mark.slow  # trains (35-145 s here)
def test_a_claimed_run_is_skipped_by_other_workers(plan):
    lock = claim(plan, plan.run("a"))
    try:
        assert claim(plan, plan.run("a")) is None
        assert studies.run_state(plan, plan.run("a"))["state"] == "running"
        assert studies.work([plan], verbose=0) == ["b"]
    finally:
        lock.close()
    assert studies.work([plan], verbose=0) == ["a"]


@pytest.mark.slow  # trains through the CLI (35-145 s here)
def test_cli_status_and_foreground_run(plan, capsys):
    assert cli(["status", str(plan.path)]) == 0
    out = capsys.readouterr().out
    assert "a " in out and "pending" in out and "2 pending" in out
    assert cli(["run", "--foreground", "--only", "b", str(plan.path)]) == 0
    assert "completed 1 run(s): b" in capsys.readouterr().out
    cli(["status", str(plan.path)])
    lines = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:4]}
    assert lines["a"][1] == "pending" and lines["b"][1] == "done"
    assert cli(["status", str(plan.path.with_name("missing.json"))]) == 2


@pytest.mark.slow  # a background worker process (35-145 s here)
def test_cli_run_starts_a_background_worker_that_logs_progress(plan, tmp_path):
    logs = tmp_path / "logs"
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "lifsg.studies",
            "run",
            str(plan.path),
            "--only",
            "a",
            "--log-dir",
            str(logs),
            "--threads",
            "1",
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    ).stdout
    pid = int(out.split()[1].rstrip(":"))
    proc_dir = Path(f"/proc/{pid}")
    import time

    deadline = time.time() + 240
    while proc_dir.exists() and time.time() < deadline:
        time.sleep(1)
    log = next(logs.glob("studies-*.log")).read_text()
    assert "[a] epoch 1/2" in log and "ETA" in log and "val acc" in log
    assert "completed 1 run(s): a" in log
    assert studies.run_state(plan, plan.run("a"))["state"] == "done"


@pytest.mark.parametrize("module", [mnist, fashion_mnist])
def test_committed_plans_are_what_the_study_code_writes(tmp_path, module):
    written = module.write_plans(tmp_path)
    for study in written:
        committed = json.loads((REPO / "plans" / f"{study}.json").read_text())
        assert json.loads((tmp_path / f"{study}.json").read_text()) == committed
        studies.load_plan(REPO / "plans" / f"{study}.json")  # valid


@pytest.mark.slow
def test_notebook_09_quick_run_trains_the_fashion_plans_and_saves_figures():
    from notebook_runner import execute

    out = execute("09_fashion_mnist")
    results = out / "results" / "fashion_mnist"
    stored = {p.stem for p in results.glob("*_s0.json")}
    assert stored == {"fashion_authors_s0", "fashion_dense_s0", "fashion_hybrid_s0"}
    for stem in ("table", "learning_curves", "sparsity", "raster"):
        for ext in ("png", "pdf", "csv"):
            assert (out / "figures" / f"f9_fashion_{stem}.{ext}").stat().st_size > 0
    table = (out / "figures" / "f9_fashion_table.csv").read_text()
    assert "PLIF" in table and "S4NN" not in table
