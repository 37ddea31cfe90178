"""The worker that trains a plan's unfinished runs, one after the other, resuming each.

Several workers (processes, on one or more machines sharing the folders) can work on the
same plans: each run is claimed with a file lock, so no run is trained twice at once.
"""

import fnmatch
import shutil
from pathlib import Path

from lifsg.data.synthetic import synthetic_digits

from . import distribute
from .config import quick_config
from .plan import claim, lock_path, stored_result
from .results import evaluate, load_results
from .training import train


def load_data(plan):
    """The plan's data set as ``((x_train, y_train), (x_test, y_test))``.

    "mnist" and "fashion_mnist" read ``plan.data_dir``; "synthetic_digits" (for tests and
    demonstrations, not MNIST) makes 600 training and 200 test images of
    :func:`lifsg.data.synthetic.synthetic_digits`.
    """
    if plan.dataset == "synthetic_digits":
        x, y = synthetic_digits(800, seed=0)
        return (x[:600], y[:600]), (x[600:], y[600:])
    from lifsg.data import load_fashion_mnist, load_mnist

    loaders = {"mnist": load_mnist, "fashion_mnist": load_fashion_mnist}
    return loaders[plan.dataset](plan.data_dir)


def selected(plan, only=None):
    """The plan's runs whose names match one of the shell patterns ``only`` (None: all)."""
    return [r for r in plan.runs if not only or any(fnmatch.fnmatch(r.name, p) for p in only)]


def work(plans, only=None, verbose=2, max_runs=None, distribution=None):
    """Train every unfinished run of ``plans`` (in order) that no other worker holds.

    Each run resumes from its newest checkpoint in ``runs_dir/<name>/``; a completed run
    writes its results and its checkpoint folder is removed. ``only``: shell patterns of run
    names. ``distribution``: as in :func:`lifsg.studies.training.train` (made here, before any
    computation, so that the processes of a multi-process run join first); the processes of
    one distribution form one worker: the chief claims each run and all follow its choice.
    Returns the names of the runs this call completed.
    """
    dist = distribute.get(distribution)
    chief = dist is None or dist.is_chief
    completed = []
    for plan in plans:
        data = None
        for run in selected(plan, only):
            if max_runs is not None and len(completed) >= max_runs:
                return completed
            lock = _claim(plan, run) if chief else None
            if not (dist.from_chief(lock is not None) if dist else lock is not None):
                continue  # done, or another worker trains it
            try:
                data = data if data is not None else load_data(plan)
                run_dir = plan.runs_dir / run.name
                result = train(
                    run.config,
                    data,
                    run_dir,
                    results_dir=plan.results_dir,
                    verbose=verbose,
                    distribution=dist,
                )
                if result["complete"]:
                    if chief:
                        shutil.rmtree(run_dir, ignore_errors=True)
                    completed.append(run.name)
            finally:
                if lock is not None:
                    lock_path(plan, run).unlink(missing_ok=True)
                    lock.close()
    return completed


def _claim(plan, run):
    """The held lock of ``run``, or None where it is done or another worker trains it."""
    if stored_result(plan, run) is not None:
        return None
    lock = claim(plan, run)
    if lock is not None and stored_result(plan, run) is not None:  # finished while we looked
        lock_path(plan, run).unlink(missing_ok=True)
        lock.close()
        return None
    return lock


def quick_plans(plans, folder, keep, dataset, data_dir, results_dir, **scale):
    """The runs of ``plans`` that ``keep(config)`` accepts, at CI scale, as new plan files.

    Each config goes through :func:`lifsg.studies.config.quick_config` (``scale``: its keyword
    arguments, e.g. train_size, test_size); the plans are written to ``folder`` with the given
    ``dataset``, ``data_dir`` and ``results_dir``. Returns the new Plans.
    """
    from .plan import write_plan

    return [
        write_plan(
            Path(folder) / f"{plan.study}.json",
            plan.study,
            dataset,
            [quick_config(r.config, **scale) for r in plan.runs if keep(r.config)],
            description=f"QUICK scale of {plan.study}",
            data_dir=str(Path(data_dir).resolve()),
            results_dir=str(Path(results_dir).resolve()),
        )
        for plan in plans
    ]


def evaluate_finished(plans, images, labels, out=None):
    """Re-evaluate every finished run of ``plans`` on ``images`` / ``labels``.

    Prints one line per run (unfinished runs with their state) to ``out`` (default stdout).
    Returns ``(accuracies, results)``: {run name: accuracy now} and the stored result dicts
    of the finished runs (:func:`lifsg.studies.results.load_results`, with timings).
    """
    import sys

    from .plan import run_state

    out = out or sys.stdout
    accuracies, results = {}, []
    for plan in plans:
        for run in plan.runs:
            info = run_state(plan, run)
            if info["state"] != "done":
                state = f"{info['state']} (epoch {info['epoch']}/{info['epochs']})"
                print(f"{run.name:30s} {state}: not in the figures", file=out)
                continue
            path = plan.results_dir / f"{run.name}.keras"
            accuracies[run.name] = evaluate(path, images, labels)["accuracy"]
            results += load_results(plan.results_dir, names={run.name})
            print(
                f"{run.name:30s} stored {info['test_accuracy']:.4f}, "
                f"evaluated now {accuracies[run.name]:.4f}",
                file=out,
            )
    return accuracies, results
