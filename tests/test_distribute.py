"""Data-parallel training (lifsg.studies.distribute): the same steps on one device, on two
devices, in two processes (JAX) and under MirroredStrategy (TensorFlow, fused op included).

Each engine set-up needs a fresh interpreter (device counts and process groups are fixed at
start), so the runs happen in subprocesses; each writes its weights to an .npz file."""

import json
import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from lifsg.studies import distribute

ROOT = Path(__file__).resolve().parents[1]

# A tiny harness run: 48 training images (3 global batches of 16), 16 validation, 20 test.
HARNESS = r"""
import json, sys
from pathlib import Path
import numpy as np
import keras
from lifsg import studies
from lifsg.data.synthetic import synthetic_digits
from lifsg.studies import distribute

def run(tag, distribution, out, epochs=2, max_epochs=None, results=None):
    config = studies.RunConfig(
        name="tiny", units=(8,), steps=4, epochs=epochs, batch_size=16, train_size=64,
        test_size=20, validation=16, learning_rate=0.01, lr_patience=1, lr_factor=0.5)
    x, y = synthetic_digits(100, seed=0)
    data = (x[:80], y[:80]), (x[80:], y[80:])
    out = Path(out)
    res = studies.train(config, data, out / f"run-{tag}", results_dir=results, verbose=0,
                            max_epochs=max_epochs, distribution=distribution)
    model = res.pop("model")
    weights = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(out / f"{tag}.npz", **weights)
    devices = {len(v.value.sharding.device_set) for v in model.weights} \
        if keras.backend.backend() == "jax" else None
    info = {"history": res["history"], "epochs": res["epochs"], "devices": sorted(devices or []),
            "test_accuracy": res["test_accuracy"]}
    (out / f"{tag}.json").write_text(json.dumps(info))
"""


def _python(script, *args, env=None):
    """Start ``script`` in a fresh interpreter; its output goes to a temporary file."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": str(ROOT), **(env or {})}
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by _wait)
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    proc.log = log
    return proc


def _wait(proc, timeout=900):
    proc.wait(timeout=timeout)
    proc.log.seek(0)
    out = proc.log.read()
    proc.log.close()
    assert proc.returncode == 0, out[-4000:]
    return out


def _weights(path):
    with np.load(path) as f:
        return [f[k] for k in sorted(f.files, key=lambda k: int(k[1:]))]


def _assert_same(a, b, rtol=1e-5, atol=1e-6):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, rtol=rtol, atol=atol)


def test_parse_distribution_specs():
    assert distribute.parse(None) is None and distribute.parse("none") is None
    assert distribute.parse("") is None
    assert distribute.parse("Data_Parallel") == "data-parallel"
    assert distribute.parse("mirrored") == "mirrored"
    with pytest.raises(ValueError, match="valid: none, data-parallel, mirrored"):
        distribute.parse("multiworker")


def test_distribution_needs_its_backend():
    import keras

    other = "mirrored" if keras.backend.backend() == "jax" else "data-parallel"
    with pytest.raises(ValueError, match="needs the .* backend"):
        distribute.Distribution(other)


def test_distribution_epoch_rows_split_global_batches():
    class Fake(distribute.Distribution):
        def __init__(self, processes, process_id):
            self.kind, self._p, self._i = "data-parallel", processes, process_id

        replicas = property(lambda self: self._p)
        processes = property(lambda self: self._p)
        process_id = property(lambda self: self._i)

    one = Fake(1, 0).epoch_rows(50, 8, (3, 1))
    parts = [Fake(2, i).epoch_rows(50, 8, (3, 1)) for i in range(2)]
    assert len(one) == 48 and len(set(one)) == 48  # 6 full batches, remainder skipped
    # The processes' local batches (4 rows each) make up the single process's global batches.
    joined = np.concatenate([parts[0].reshape(6, 4), parts[1].reshape(6, 4)], axis=1).ravel()
    np.testing.assert_array_equal(joined, one)
    assert not np.array_equal(one, Fake(1, 0).epoch_rows(50, 8, (3, 2)))  # new epoch, new order
    with pytest.raises(ValueError, match="multiple of the 2 replicas"):
        Fake(2, 0).epoch_rows(50, 7, 0)


@pytest.mark.slow
def test_data_parallel_two_devices_equals_one_device_jax(tmp_path):
    """JAX: the harness on 2 host devices takes the same steps as on 1 device."""
    pytest.importorskip("jax")
    script = HARNESS + (
        "import jax\n"
        "run('one', distribute.Distribution('data-parallel', devices=jax.devices()[:1]),"
        " sys.argv[1])\n"
        "run('two', 'data-parallel', sys.argv[1])\n"
    )
    env = {"KERAS_BACKEND": "jax", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    _wait(_python(script, tmp_path, env=env))
    one, two = (json.loads((tmp_path / f"{t}.json").read_text()) for t in ("one", "two"))
    assert one["devices"] == [1] and two["devices"] == [2]
    assert one["epochs"] == two["epochs"] == 2
    _assert_same(_weights(tmp_path / "one.npz"), _weights(tmp_path / "two.npz"))
    for a, b in zip(one["history"], two["history"]):
        assert a["lr"] == b["lr"]
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
        np.testing.assert_allclose(a["val_loss"], b["val_loss"], rtol=1e-5)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_data_parallel_two_processes_equal_one_process_jax(tmp_path):
    """JAX: two processes on 127.0.0.1 (gloo) train together, interrupted after one epoch and
    resumed; both end with the weights of an uninterrupted single-process run, and only the
    chief wrote results."""
    pytest.importorskip("jax")
    script = HARNESS + (
        "import jax\n"
        "tag = sys.argv[2]\n"
        "dist = distribute.get(sys.argv[3])\n"
        "results = Path(sys.argv[1]) / f'results-{tag}'\n"
        "if dist.processes > 1:\n"
        "    run(tag, dist, sys.argv[1], max_epochs=1, results=results)\n"
        "    (Path(sys.argv[1]) / f'{tag}.npz').unlink()\n"
        "run(tag, dist, sys.argv[1], results=results)\n"
    )
    port = _free_port()
    procs = []
    for i in range(2):
        env = {
            "KERAS_BACKEND": "jax",
            "KERAS_DISTRIBUTION_JOB_ADDRESSES": f"127.0.0.1:{port}",
            "KERAS_DISTRIBUTION_NUM_PROCESSES": "2",
            "KERAS_DISTRIBUTION_PROCESS_ID": str(i),
        }
        # Both processes share the run folder: the tag names only their weight files.
        procs.append(
            _python(
                script.replace("run-{tag}", "run-group"),
                tmp_path,
                f"p{i}",
                "data-parallel",
                env=env,
            )
        )
    procs.append(_python(script, tmp_path, "ref", "data-parallel", env={"KERAS_BACKEND": "jax"}))
    try:
        for proc in procs:
            _wait(proc)
    finally:
        for proc in procs:
            proc.kill()
    p0, p1, single = (_weights(tmp_path / f"{t}.npz") for t in ("p0", "p1", "ref"))
    for a, b in zip(p0, p1):
        np.testing.assert_array_equal(a, b)  # one model, replicated on both processes
    _assert_same(p0, single)
    info = {t: json.loads((tmp_path / f"{t}.json").read_text()) for t in ("p0", "p1", "ref")}
    assert info["p0"]["devices"] == [2] and info["ref"]["devices"] == [1]
    assert info["p0"]["test_accuracy"] == info["p1"]["test_accuracy"]
    assert (tmp_path / "results-p0" / "tiny.json").is_file()
    assert not (tmp_path / "results-p1").exists()
    stored = json.loads((tmp_path / "results-p0" / "tiny.json").read_text())
    assert [r["epoch"] for r in stored["history"]] == [1, 2]  # resumed, not restarted


MIRRORED = (
    r"""
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
"""
    + HARNESS
    + r"""
import lifsg
out = Path(sys.argv[1])
run("one", distribute.Distribution("mirrored", devices=["/cpu:0"]), out)
run("two", "mirrored", out)
# The fused op and the loop under MirroredStrategy, against the fused op on one device.
rng = np.random.default_rng(0)
x = rng.uniform(0, 0.6, (16, 12, 5)).astype("float32")
t = rng.uniform(0, 1, (16, 3)).astype("float32")
def fit(implementation, strategy):
    with strategy.scope():
        keras.utils.set_random_seed(1)
        model = keras.Sequential([keras.Input((12, 5)),
            lifsg.DenseLIF(7, w_leak=0.1, implementation=implementation,
                           kernel_initializer=keras.initializers.RandomUniform(0, 0.5)),
            lifsg.LeakyReadout(3, implementation=implementation)])
        model.compile(keras.optimizers.SGD(0.1), "mse")
    np.savez(out / "init.npz", **{f"w{i}": w for i, w in enumerate(model.get_weights())})
    model.fit(x, t, batch_size=8, epochs=3, shuffle=False, verbose=0)
    return model.get_weights()
mirrored = distribute.Distribution("mirrored").engine
one = tf.distribute.OneDeviceStrategy("/cpu:0")
for name, weights in [("fused", fit("fused", mirrored)), ("loop", fit("loop", mirrored)),
                      ("fused_one", fit("fused", one))]:
    np.savez(out / f"{name}.npz", **{f"w{i}": w for i, w in enumerate(weights)})
"""
)


@pytest.mark.slow
def test_mirrored_two_cpus_equals_one_and_runs_fused_tensorflow(tmp_path):
    """TensorFlow: MirroredStrategy on 2 logical CPUs takes the same steps as on one CPU, in the
    harness and with the fused C++ op (which runs there and matches the loop)."""
    _wait(_python(MIRRORED, tmp_path, env={"KERAS_BACKEND": "tensorflow"}))
    one, two = (json.loads((tmp_path / f"{t}.json").read_text()) for t in ("one", "two"))
    assert one["epochs"] == two["epochs"] == 2
    _assert_same(_weights(tmp_path / "one.npz"), _weights(tmp_path / "two.npz"))
    for a, b in zip(one["history"], two["history"]):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
    fused, loop, single = (_weights(tmp_path / f"{t}.npz") for t in ("fused", "loop", "fused_one"))
    _assert_same(fused, loop)
    _assert_same(fused, single)
    assert not np.allclose(fused[0], _weights(tmp_path / "init.npz")[0])  # it did learn


def _toy_plan(tmp_path):
    from lifsg.studies import RunConfig, write_plan

    config = RunConfig(
        name="a", encoding="constant", steps=3, dt=1.0, units=(12,), epochs=2, batch_size=64,
        validation=100, eval_test=False, loss="crossentropy", learning_rate=3e-3,
    )  # fmt: skip
    return write_plan(tmp_path / "plans" / "toy.json", "toy", "synthetic_digits", [config])


def test_plan_runner_distribution_flag(tmp_path):
    from lifsg.studies.__main__ import main as cli

    plan = _toy_plan(tmp_path)
    for bad in (["--distribution", "ring"], ["--distribution", "mirrored", "--workers", "2"]):
        with pytest.raises(SystemExit):
            cli(["run", str(plan.path), "--foreground", *bad])
    assert not plan.runs_dir.exists()  # rejected before any work


@pytest.mark.slow
def test_plan_runner_trains_distributed(tmp_path):
    """The runner passes its distribution to the harness: the run completes, the chief writes
    its results and removes its checkpoints (one replica here: the default backend's
    kind over this process's devices)."""
    import keras

    from lifsg.studies import runner

    plan = _toy_plan(tmp_path)
    kind = "data-parallel" if keras.backend.backend() == "jax" else "mirrored"
    assert runner.work([plan], verbose=0, distribution=kind) == ["a"]
    stored = json.loads((plan.results_dir / "a.json").read_text())
    assert [r["epoch"] for r in stored["history"]] == [1, 2]
    assert (plan.results_dir / "a.keras").is_file() and not (plan.runs_dir / "a").exists()
