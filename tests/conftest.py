"""Shared test set-up: quiet TensorFlow, fixed seeds, a small RunConfig factory, every test
under tests/notebooks/ (notebook executions) marked slow, and a long timeout for slow and
browser (ui) tests (the default, pyproject.toml's ``timeout``, is for the quick ones)."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

NOTEBOOK_TESTS = Path(__file__).parent / "notebooks"
SLOW_TIMEOUT_S = 3600  # a QUICK notebook run or a training test on a loaded 2-core machine


@pytest.hookimpl(trylast=True)  # after tests/ui/conftest.py has marked the browser tests
def pytest_collection_modifyitems(items):
    for item in items:
        if NOTEBOOK_TESTS in Path(item.path).parents:
            item.add_marker(pytest.mark.slow)
        long = item.get_closest_marker("slow") or item.get_closest_marker("ui")
        if long and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def tiny():
    """``tiny(name="tiny", **changes)``: a RunConfig that trains in seconds (constant current,
    3 steps of dt 1, 784-12-10, cross-entropy, 2 epochs, batch 32, learning rate 3e-3), with
    ``changes`` (RunConfig fields) applied."""
    from lifsg.studies import RunConfig

    def make(name="tiny", **changes):
        config = RunConfig(
            name=name,
            encoding="constant",
            steps=3,
            dt=1.0,
            units=(12,),
            loss="crossentropy",
            epochs=2,
            batch_size=32,
            learning_rate=3e-3,
        )
        return config.replace(**changes)

    return make
