"""Shared test set-up: quiet TensorFlow, fixed seeds, every test under tests/notebooks/
(notebook executions) marked slow, and a long timeout for slow and browser (ui) tests (the
default, pyproject.toml's ``timeout``, is for the quick ones)."""

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
