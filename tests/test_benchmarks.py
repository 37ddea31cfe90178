"""CI smoke test of the benchmark suite (benchmarks/run.py) at a tiny size.

Proves the command still runs and writes its tables; the numbers come from full runs
(``make benchmark``) and are committed in benchmarks/. lifsg alone always runs; the peers
(snnTorch, Norse) only where benchmarks/.venv-peers exists, which CI need not create.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN = os.path.join(ROOT, "benchmarks", "run.py")
PEERS_PYTHON = os.path.join(ROOT, "benchmarks", ".venv-peers", "bin", "python")
KEYS = {"task", "size", "impl", "date", "cpu", "versions"}


@pytest.fixture(scope="module", autouse=True)
def fused_kernel():
    """Build (or load from the cache) lifsg's fused kernel first: on a fresh machine that is a
    one-time ~25 s compile, which the workers would otherwise pay inside the smoke run."""
    from lifsg import fused

    fused.available()


def _run(out, *args):
    cmd = [sys.executable, RUN, "--smoke", "--no-setup", "--out", str(out), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "results.json") as f:
        return json.load(f), proc


@pytest.mark.slow  # runs benchmarks/run.py in a fresh process
def test_smoke_lifsg_only(tmp_path):
    rows, proc = _run(tmp_path, "--no-peers")
    for row in rows:
        assert KEYS <= set(row)
        assert ("median_s" in row) or ("peak_mib" in row)
        assert len(row["load_avg"]["start"]) == len(row["load_avg"]["end"]) == 3
    impls = {(r["task"], r["impl"]) for r in rows}
    for impl in ("linear-only", "lifsg", "lifsg-loop"):
        assert ("linear_lif", impl) in impls
    for impl in ("linear-only", "lifsg-dense", "lifsg-events", "lifsg"):
        assert ("spike_input", impl) in impls
    for impl in ("dense-only", "lifsg", "lifsg-dense", "lifsg-loop", "encoder", "encoder-uniform"):
        assert ("mnist_epoch", impl) in impls
    assert {r["size"] for r in rows if r["task"] == "multicore"} == {1, 2}
    assert ("memory", "lifsg") in impls and ("memory", "lifsg-chunked") in impls
    assert all(r["epoch_s"] > 0 for r in rows if r["task"] == "mnist_epoch" and "epoch_s" in r)
    assert all(r["median_s"] > 0 for r in rows if "median_s" in r and r.get("phase") != "backward")
    for name in ("results.csv", "results.md", "results.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "Task 1" in proc.stdout and "load average" in proc.stdout.lower()


@pytest.mark.slow  # runs benchmarks/run.py in a fresh process
def test_refuses_to_write_results_above_the_load_limit(tmp_path):
    cmd = [sys.executable, RUN, "--smoke", "--no-peers", "--tasks", "spike_input"]
    cmd += ["--max-load", "0", "--wait-load", "0", "--out", str(tmp_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "load average" in proc.stderr and "no results written" in proc.stderr
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow  # imports the benchmark workers
def test_timed_functions_return_the_forward_loss():
    """The timed training function returns the loss (and writes every gradient into a
    variable), so TensorFlow cannot prune the forward pass out of what is timed."""
    import numpy as np

    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        import worker_tf
    finally:
        sys.path.pop(0)
    for impl in ("linear-only", "lifsg", "lifsg-events"):
        m = worker_tf.LinearLIF(impl, 16, 6, 2, density=0.3 if impl == "lifsg-events" else None)
        np.testing.assert_allclose(m.train().numpy(), m.forward().numpy(), rtol=1e-6)
        assert all(np.abs(b.numpy()).sum() > 0 for b in m.buffers[:1])


@pytest.mark.slow  # runs benchmarks/run.py in a fresh process
def test_smoke_peers(tmp_path):
    if not os.path.exists(PEERS_PYTHON):
        pytest.skip(
            "benchmarks/.venv-peers is absent (optional in CI): `make benchmark` creates it "
            "with torch 2.13.0 (CPU), snnTorch 1.0.0 and Norse 1.1.0"
        )
    rows, _ = _run(tmp_path, "--tasks", "linear_lif")
    impls = {r["impl"] for r in rows if r["task"] == "linear_lif"}
    assert {"snntorch", "snntorch-tutorial", "norse", "norse-tutorial"} <= impls
    assert {"lifsg", "linear-only-torch"} <= impls
