"""The Fashion-MNIST study: every run's config, written out as plan files.

Fashion-MNIST is the data set of the authors' second training script (no result of theirs was
recorded). Studies (one plan file each under ``plans/``):

- ``fashion_authors``: their script as far as it is known: 784 -> Dense(64, no bias) -> LIF(64)
  -> non-spiking read-out, the image as a constant current for 100 steps at 0.1/255 per raw
  pixel (0.1 on [0, 1] pixels), Adam 1e-4, cross-entropy, batch 256, learning rate x0.1 after 7
  epochs without a better validation accuracy, up to 100 epochs. They validated on the test
  set; here the last 5000 training images are held out instead. 3 seeds.
- ``fashion_dense``: MNIST's best dense network (constant current 8 steps, 784-400-400-10,
  cross-entropy, plateau on held-out images), 20 epochs, 3 seeds.
- ``fashion_hybrid``: MNIST's hybrid network (:data:`lifsg.studies.mnist.HYBRID`), 3 seeds.
"""

from . import plan
from .config import RunConfig
from .mnist import DENSE, HYBRID, SEEDS

AUTHORS = dict(
    architecture="dense",
    encoding="constant",
    steps=100,
    factor=0.1,
    dt=1.0,
    units=(64,),
    use_bias=False,
    loss="crossentropy",
    learning_rate=1e-4,
    epochs=100,
    validation=5000,
    lr_patience=7,
    lr_monitor="accuracy",
    eval_test=False,
)


def studies(seeds=SEEDS):
    """{study: (description, [RunConfig])} of the Fashion-MNIST study."""
    dense = {**DENSE, "epochs": 20, "eval_test": False}
    return {
        "fashion_authors": (
            "the authors' Fashion-MNIST script (784-64 LIF, 100 steps, Adam 1e-4)",
            [RunConfig(name=f"fashion_authors_s{s}", seed=s, **AUTHORS) for s in seeds],
        ),
        "fashion_dense": (
            "the best dense LIF network of MNIST on Fashion-MNIST",
            [RunConfig(name=f"fashion_dense_s{s}", seed=s, **dense) for s in seeds],
        ),
        "fashion_hybrid": (
            "the hybrid conv + LIF network of MNIST on Fashion-MNIST",
            [RunConfig(name=f"fashion_hybrid_s{s}", seed=s, **HYBRID) for s in seeds],
        ),
    }


def write_plans(folder="plans", seeds=SEEDS):
    """Write one plan file per study into ``folder``; return {study: Plan}."""
    return plan.write_plans(folder, "fashion_mnist", studies(seeds))
