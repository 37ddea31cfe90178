"""Plan files: one JSON per study listing every run (name and full RunConfig).

Format::

    {"study": "mnist_hybrid", "dataset": "mnist", "description": "...",
     "data_dir": "../data/mnist", "results_dir": "../results/mnist",
     "runs_dir": "../runs/mnist_hybrid",
     "runs": [{"name": "hybrid_pool_s0", "config": {...RunConfig fields...}}, ...]}

Paths are relative to the plan file's folder. A run's per-epoch checkpoints live in
``runs_dir/<name>/`` (committed while a run is unfinished, so any machine can resume it) and
its results in ``results_dir/<name>.json`` / ``.keras`` / ``.timing.json``.
"""

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path

from . import checkpoints
from .config import RunConfig, validate
from .results import stored_result as _stored_result

DATASETS = ("mnist", "fashion_mnist", "synthetic_digits")
STATES = ("done", "running", "partial", "pending")


@dataclass(frozen=True)
class Run:
    """One run of a plan: its name and config."""

    name: str
    config: RunConfig


@dataclass(frozen=True)
class Plan:
    """A study's plan read from ``path`` (folders resolved against the plan's folder)."""

    path: Path
    study: str
    dataset: str
    description: str
    data_dir: Path
    results_dir: Path
    runs_dir: Path
    runs: tuple

    def run(self, name):
        """The :class:`Run` called ``name`` (KeyError naming the plan if absent)."""
        for run in self.runs:
            if run.name == name:
                return run
        raise KeyError(f"{self.path} has no run {name!r}")


def load_plan(path):
    """Read and check a plan file; ValueError names the file and the problem."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"cannot read the plan {path} ({err})") from err
    missing = {"study", "dataset", "data_dir", "results_dir", "runs_dir", "runs"} - set(raw)
    if missing:
        raise ValueError(f"plan {path} lacks {', '.join(sorted(missing))}")
    if raw["dataset"] not in DATASETS:
        raise ValueError(f"plan {path}: unknown dataset {raw['dataset']!r}; valid: {DATASETS}")
    runs, seen = [], set()
    for entry in raw["runs"]:
        name = entry["name"]
        if name in seen:
            raise ValueError(f"plan {path}: run {name!r} is listed twice")
        seen.add(name)
        try:
            config = validate(RunConfig.from_dict(entry["config"]))
        except (TypeError, ValueError) as err:
            raise ValueError(f"plan {path}, run {name!r}: {err}") from err
        if config.name != name:
            raise ValueError(f"plan {path}: run {name!r} has config name {config.name!r}")
        runs.append(Run(name, config))
    base = path.parent
    return Plan(
        path=path,
        study=raw["study"],
        dataset=raw["dataset"],
        description=raw.get("description", ""),
        data_dir=base / raw["data_dir"],
        results_dir=base / raw["results_dir"],
        runs_dir=base / raw["runs_dir"],
        runs=tuple(runs),
    )


def write_plan(path, study, dataset, configs, description="", data_dir=None, results_dir=None):
    """Write a plan file for ``configs`` (RunConfigs, names unique); return the loaded Plan.

    Folders default to ``../data/<dataset>``, ``../results/<dataset>`` and
    ``../runs/<study>`` relative to the plan's folder.
    """
    raw = {
        "study": study,
        "dataset": dataset,
        "description": description,
        "data_dir": data_dir or f"../data/{dataset}",
        "results_dir": results_dir or f"../results/{dataset}",
        "runs_dir": f"../runs/{study}",
        "runs": [{"name": c.name, "config": c.to_dict()} for c in configs],
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(raw, indent=1) + "\n")
    return load_plan(path)


def write_plans(folder, dataset, studies):
    """Write one plan file per study into ``folder``; return {study: Plan}.

    studies: {study: (description, [RunConfig])}, e.g. :func:`lifsg.studies.mnist.studies`.
    """
    return {
        study: write_plan(Path(folder) / f"{study}.json", study, dataset, configs, description)
        for study, (description, configs) in studies.items()
    }


def lock_path(plan, run):
    """The lock file a worker holds while it trains ``run`` of ``plan``."""
    return plan.runs_dir / f"{run.name}.lock"


def claim(plan, run):
    """An open, exclusively locked file if no other process trains ``run``, else None.

    The lock is released when the file is closed or its process ends (however it ends).
    """
    plan.runs_dir.mkdir(parents=True, exist_ok=True)
    f = open(lock_path(plan, run), "a+")  # noqa: SIM115 (held open while training)
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.close()
        return None
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def _running(plan, run):
    if not lock_path(plan, run).exists():
        return False
    f = claim(plan, run)
    if f is None:
        return True
    f.close()
    return False


def stored_result(plan, run):
    """The stored results dict of ``run`` if it is complete with the plan's config, else None.

    A stored result of a different config (e.g. fewer epochs) does not count: the run is then
    trained again and replaces it.
    """
    return _stored_result(plan.results_dir, run.config)


def run_state(plan, run):
    """Where ``run`` stands: a dict with "state" (one of STATES), "epoch", "epochs" and the
    latest "val_accuracy" / "test_accuracy" / "epoch_time_s" known (None where unknown)."""
    info = {"state": "pending", "epoch": 0, "epochs": run.config.epochs}
    info.update(val_accuracy=None, test_accuracy=None, epoch_time_s=None)
    result = stored_result(plan, run)
    if result is not None:
        timing = plan.results_dir / f"{run.name}.timing.json"
        info.update(state="done", epoch=result["epochs"], test_accuracy=result["test_accuracy"])
        info["val_accuracy"] = result["history"][-1].get("val_accuracy")
        if timing.is_file():
            info["epoch_time_s"] = json.loads(timing.read_text())["epoch_time_s"]
        return info
    folder = checkpoints.latest_checkpoint(plan.runs_dir / run.name)
    if folder is not None:
        state = checkpoints.read_state(folder)
        times = state.get("epoch_times_s") or []
        info.update(state="partial", epoch=state["epoch"])
        info["val_accuracy"] = state["history"][-1].get("val_accuracy")
        info["epoch_time_s"] = sorted(times)[len(times) // 2] if times else None
    if _running(plan, run):
        info["state"] = "running"
    return info
