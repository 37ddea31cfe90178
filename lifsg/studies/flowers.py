"""Paper item F7, Oxford 102 Flowers: a hybrid convolutional + LIF network against the same
network with ReLU (``RunConfig.nonlinearity``), trained by :func:`lifsg.studies.training.train`.

The paper's exact architecture and numbers for F7 are unknown (docs/model.md, F7); the network
is our own design and no number of the paper is quoted. The drawings are in
:mod:`lifsg.figures.flowers`.
"""

from .config import NONLINEARITIES


def paired_runs(base, seeds, prefix="flowers"):
    """For each seed, a LIF and a ReLU config: ``<prefix>_<lif|relu>_s<seed>``."""
    return [
        base.replace(name=f"{prefix}_{nl}_s{seed}", seed=int(seed), nonlinearity=nl)
        for seed in seeds
        for nl in NONLINEARITIES
    ]
