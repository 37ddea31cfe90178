"""Studies: plan files of training runs, a background runner that resumes them, and status.

A plan (JSON, one per study, e.g. ``plans/mnist_hybrid.json``) lists every run of a study by
name and full :class:`lifsg.experiments.RunConfig`. ``python -m lifsg.studies run PLAN``
trains the unfinished runs in background workers, resuming interrupted ones from their last
per-epoch checkpoint; ``python -m lifsg.studies status PLAN`` prints where each run stands.
"""

from .plan import Plan, Run, load_plan, run_state, write_plan
from .runner import work

__all__ = ["Plan", "Run", "load_plan", "run_state", "work", "write_plan"]
