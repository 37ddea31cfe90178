"""TensorFlow side of the benchmarks: lifsg, its variants and TensorFlow's floors.

Started by benchmarks/run.py, one process pinned to one core. Protocol: one JSON request per
line on stdin, one JSON reply per line on stdout (see run.py). ``--memory`` instead measures the
peak resident memory of one (impl, steps, neurons) point in this fresh process and exits.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from procmem import peak_mib, reset_peak  # noqa: E402

tf.config.threading.set_intra_op_parallelism_threads(1)
tf.config.threading.set_inter_op_parallelism_threads(1)

import keras  # noqa: E402

import lifsg  # noqa: E402

LEAK = 0.1  # decay 0.9 per step, the same for every framework
IMPLS = {"lifsg": "auto", "lifsg-loop": "loop", "lifsg-sparse": "auto"}


def versions():
    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "lifsg": lifsg.__version__,
        "lifsg_default": "fused" if _fused_ok() else "loop",
    }


def _fused_ok():
    from lifsg import fused

    return fused.available()


def _data(batch, steps, neurons, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch, steps, neurons), dtype=np.float32)
    w = (rng.standard_normal((neurons, neurons)) * (1.0 / np.sqrt(neurons))).astype(np.float32)
    return x, w


class LinearLIF:
    """Task 1: x (batch, time, N) -> Linear(N, N) -> LIF (or nothing for the floor).

    ``forward`` runs the forward pass and the sum; ``train`` forward + backward of the sum,
    writing each gradient into a buffer variable (as PyTorch's .grad).
    """

    def __init__(self, impl, neurons, steps, batch):
        x, w = _data(batch, steps, neurons)
        self.x = tf.constant(x)
        if impl == "linear-only":
            self.w = tf.Variable(w)
            self.b = tf.Variable(tf.zeros(neurons))
            params = [self.w, self.b]

            def model(x):  # the same matmul as lifsg's Dense part (keras.ops)
                return keras.ops.matmul(x, self.w) + self.b
        else:
            layer = lifsg.DenseLIF(
                neurons,
                w_leak=LEAK,
                kernel_initializer=keras.initializers.Constant(w),
                implementation=IMPLS.get(impl, "auto"),
            )
            layer.build(self.x.shape)
            params = list(layer.trainable_variables)
            model = layer
        self.buffers = [tf.Variable(tf.zeros_like(p)) for p in params]

        @tf.function
        def forward():
            return tf.reduce_sum(model(self.x))

        @tf.function
        def train():
            with tf.GradientTape() as tape:
                loss = tf.reduce_sum(model(self.x))
            for buf, g in zip(self.buffers, tape.gradient(loss, params), strict=True):
                buf.assign(g)
            return loss

        self.forward = forward.get_concrete_function()
        self.train = train.get_concrete_function()

    def run(self):
        c0, t0 = time.process_time(), time.perf_counter()
        self.forward().numpy()
        c1, t1 = time.process_time(), time.perf_counter()
        self.train().numpy()
        c2, t2 = time.process_time(), time.perf_counter()
        return {"forward": t1 - t0, "total": t2 - t1, "forward_cpu": c1 - c0, "total_cpu": c2 - c1}


def _mnist_images(batch):
    """Real MNIST training images where data/mnist has them, else MNIST-like random ones."""
    try:
        from lifsg.data import mnist

        (x, _), _ = mnist.load_mnist(verify=False)
        return x[:batch].reshape(batch, -1).astype("float32") / 255.0, "mnist"
    except Exception:
        rng = np.random.default_rng(0)
        x = rng.random((batch, 784)).astype("float32")
        x[rng.random((batch, 784)) > 0.19] = 0.0  # ~19% of MNIST pixels are non-zero
        return x, "synthetic"


def spike_currents(inputs, kernel, bias):
    """``inputs @ kernel + bias`` touching only the non-zero inputs (gather + segment sum).

    inputs (batch, time, features), mostly zeros (Poisson spikes: well under 1 % ones). The
    same sums as the dense matmul, in another order (equal up to float rounding).
    """
    shape = tf.shape(inputs)
    rows = shape[0] * shape[1]
    flat = tf.reshape(inputs, [rows, inputs.shape[-1]])
    idx = tf.where(tf.not_equal(flat, 0))
    vals = tf.gather_nd(flat, idx)
    contrib = tf.gather(kernel, idx[:, 1]) * vals[:, None]
    out = tf.math.unsorted_segment_sum(contrib, idx[:, 0], rows) + bias
    return tf.reshape(out, [shape[0], shape[1], kernel.shape[-1]])


class SparseInputDenseLIF(lifsg.DenseLIF):
    """Prototype (benchmark only): DenseLIF whose Dense part skips the zero inputs."""

    def _currents(self, inputs):
        return spike_currents(inputs, self.kernel, self.bias)


class MnistEpoch:
    """Task 2: the paper's model, one training step (Poisson encoding included)."""

    def __init__(self, impl, steps, batch, units=128):
        images, self.source = _mnist_images(batch)
        self.x = tf.constant(images)
        self.y = tf.one_hot(tf.range(batch) % 10, 10)
        keras.utils.set_random_seed(0)
        inputs = keras.Input((784,))
        spikes = lifsg.PoissonEncoder(steps, factor=1.0, dt=0.005, seed=0)(inputs)
        if impl == "dense-only":  # the same matmuls, no recurrence: the lower bound
            h = keras.layers.Dense(units, activation="relu")(spikes)
            out = keras.layers.Dense(10)(h)[:, -1]
        else:
            layer = SparseInputDenseLIF if impl == "lifsg-sparse" else lifsg.DenseLIF
            implementation = IMPLS.get(impl, "auto")
            h = layer(units, implementation=implementation)(spikes)
            out = lifsg.LeakyReadout(10, implementation=implementation)(h)
        model = keras.Model(inputs, out)
        model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
        model.train_on_batch(self.x, self.y)  # traces the train function
        self.model = model

    def run(self):
        c0, t0 = time.process_time(), time.perf_counter()
        self.model.train_on_batch(self.x, self.y)
        return {"step": time.perf_counter() - t0, "step_cpu": time.process_time() - c0}


def serve():
    models = {}
    print(json.dumps({"ready": True, "versions": versions()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "setup":
                t0 = time.perf_counter()
                if req["task"] == "linear_lif":
                    m = LinearLIF(req["impl"], req["size"], req["steps"], req["batch"])
                else:
                    m = MnistEpoch(req["impl"], req["steps"], req["batch"])
                setup = time.perf_counter() - t0
                t0 = time.perf_counter()
                m.run()
                first = time.perf_counter() - t0
                models[req["key"]] = m
                reply = {"setup_s": setup, "first_s": first}
                if isinstance(m, MnistEpoch):
                    reply["data"] = m.source
            elif cmd == "run":
                reply = models[req["key"]].run()
            elif cmd == "free":
                models.pop(req["key"], None)
                reply = {}
            elif cmd == "quit":
                break
            else:
                reply = {"error": f"unknown command {cmd}"}
        except Exception as err:  # report, keep serving
            reply = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(reply), flush=True)


def memory(impl, steps, neurons, batch):
    """Peak RSS of forward + backward above the RSS after the imports, in a fresh process."""
    _fused_ok()  # load the kernel library before the baseline
    base = reset_peak()  # RSS after the imports; the peak counts from here
    m = LinearLIF(impl, neurons, steps, batch)
    m.run()
    m.run()
    print(json.dumps({"peak_mib": peak_mib() - base, "baseline_mib": base}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", nargs=4, metavar=("IMPL", "STEPS", "NEURONS", "BATCH"))
    args = parser.parse_args()
    if args.memory:
        impl, steps, neurons, batch = args.memory
        memory(impl, int(steps), int(neurons), int(batch))
    else:
        serve()
