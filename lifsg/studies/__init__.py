"""Studies: simulation, training and analysis behind the paper items, one module per verb or
study; :mod:`lifsg.figures` only draws what they produce.

- :mod:`~lifsg.studies.config`: :class:`RunConfig` (one training run), :func:`validate`,
  :func:`quick_config` (the QUICK scale of a run);
- :mod:`~lifsg.studies.models`: :func:`build_model` (encoder, LIF network or its ReLU twin,
  read-out);
- :mod:`~lifsg.studies.training`: :func:`train`, the one harness (per-epoch checkpoints,
  resume, learning-rate plateau, augmentation);
- :mod:`~lifsg.studies.checkpoints`: the per-epoch checkpoints of a run;
- :mod:`~lifsg.studies.results`: stored results: :func:`load`, :func:`evaluate`,
  :func:`run_or_load`, :func:`write_json`;
- plan files and their background runner: :mod:`~lifsg.studies.plan`,
  :mod:`~lifsg.studies.runner`; ``python -m lifsg.studies run PLAN`` trains a plan's
  unfinished runs, resuming interrupted ones, ``python -m lifsg.studies status PLAN`` prints
  where each run stands;
- per paper item: :mod:`~lifsg.studies.lif_unit` (F1), :mod:`~lifsg.studies.operating_modes`
  (F2), :mod:`~lifsg.studies.phase_diagram` (F3), :mod:`~lifsg.studies.encodings` (F4),
  :mod:`~lifsg.studies.surrogate_equivalence` (F5, error profiles) and
  :mod:`~lifsg.studies.surrogate_training` (F5, learning curves), :mod:`~lifsg.studies.mnist` (F6),
  :mod:`~lifsg.studies.flowers` (F7), :mod:`~lifsg.studies.fashion_mnist`;
- :mod:`~lifsg.studies.sparsity`: spike counts and SynOps of the stored models (the tables'
  sparsity columns) and one image's spikes for a raster plot.

A plan (JSON, one per study, e.g. ``plans/mnist_hybrid.json``) lists every run of a study by
name and full :class:`RunConfig`.
"""

from .config import RunConfig, quick_config, validate
from .models import build_model
from .plan import Plan, Run, load_plan, run_state, write_plan
from .results import evaluate, load, run_or_load, write_json
from .runner import work
from .training import prepare_images, train

__all__ = [
    "Plan",
    "Run",
    "RunConfig",
    "build_model",
    "evaluate",
    "load",
    "load_plan",
    "prepare_images",
    "quick_config",
    "run_or_load",
    "run_state",
    "train",
    "validate",
    "work",
    "write_json",
    "write_plan",
]
