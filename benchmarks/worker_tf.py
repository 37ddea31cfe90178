"""TensorFlow side of the benchmarks: lifsg, its variants and TensorFlow's floors.

Started by benchmarks/run.py, one process pinned to its cores, ``--threads`` TensorFlow threads
(default 1). Protocol: one JSON request per line on stdin, one JSON reply per line on stdout
(see run.py). ``--memory`` instead measures the peak resident memory of one (impl, steps,
neurons) point in this fresh process and exits.

Every timed function returns the loss and writes every gradient into a variable, so TensorFlow
cannot prune any of the work (a function returning only gradients would skip the forward pass
where the gradients do not need it, e.g. the floor's matmul).
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from procmem import peak_mib, reset_peak  # noqa: E402

import lifsg  # noqa: E402
from lifsg import studies  # noqa: E402
from lifsg.studies import mnist as mnist_study  # noqa: E402
from lifsg.studies import models as study_models  # noqa: E402
from lifsg.studies import training as study_training  # noqa: E402

LEAK = 0.1  # decay 0.9 per step, the same for every framework
CHUNK = 500  # time_chunk of "lifsg-chunked"
# impl -> DenseLIF arguments (task 1 and the spike-input task)
LAYER_ARGS = {
    "lifsg": {},
    "lifsg-loop": {"implementation": "loop"},
    "lifsg-events": {"projection": "events"},
    "lifsg-dense": {"projection": "dense"},
    "lifsg-chunked": {"time_chunk": CHUNK},
}
# MNIST configurations (lifsg.studies.RunConfig arguments)
CONFIGS = {
    "original": {},
    "dense": mnist_study.DENSE,
    "hybrid": mnist_study.HYBRID,
}


def set_threads(threads):
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def versions():
    from lifsg import events, fused

    return {
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "lifsg": lifsg.__version__,
        "lifsg_default": "fused" if fused.available() else "loop",
        "lifsg_events": "events" if events.available() else "dense",
    }


def _data(batch, steps, neurons, seed=0, density=None):
    """Input (batch, steps, neurons) and weights (neurons, neurons), the same in both workers.

    density None: uniform in [0, 1); else 0/1 spikes, each 1 with that probability."""
    rng = np.random.default_rng(seed)
    x = rng.random((batch, steps, neurons), dtype=np.float32)
    w = (rng.standard_normal((neurons, neurons)) * (1.0 / np.sqrt(neurons))).astype(np.float32)
    if density is not None:
        x = (x < density).astype(np.float32)
    return x, w


class LinearLIF:
    """x (batch, time, N) -> Linear(N, N) -> LIF (or the Linear alone: "linear-only").

    ``forward`` runs the forward pass and the sum; ``train`` forward + backward of the sum,
    writing each gradient into a buffer variable (as PyTorch's .grad) and returning the loss.
    With ``density`` the input is spikes held in a variable whose gradient is computed too (as
    for a layer fed by a LIF layer); otherwise a constant (the data).
    """

    def __init__(self, impl, neurons, steps, batch, density=None, data=None):
        x, w = _data(batch, steps, neurons, density=density) if data is None else data
        self.x = tf.constant(x)
        if density is not None:
            self.x = tf.Variable(self.x)
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
                **LAYER_ARGS[impl],
            )
            layer.build(self.x.shape)
            params = list(layer.trainable_variables)
            model = layer
        if density is not None:
            params.append(self.x)
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


def _mnist(n):
    """The first n MNIST training images (uint8) and labels where data/mnist has them, else
    MNIST-like random ones; and the source's name."""
    try:
        from lifsg.data import mnist

        (x, y), _ = mnist.load_mnist(verify=False)
        return x[:n], y[:n], "mnist"
    except Exception:
        rng = np.random.default_rng(0)
        x = (rng.random((n, 28, 28)) * 255).astype("uint8")
        x[rng.random((n, 28, 28)) > 0.19] = 0  # ~19% of MNIST pixels are non-zero
        return x, rng.integers(0, 10, n), "synthetic"


def mnist_model(impl, config):
    """The model of a RunConfig (``lifsg.studies.build_model``), or "dense-only": the same
    encoder, ``Dense(128, relu)`` per step and ``Dense(10)`` + softmax at the last step (the
    same matmuls, no recurrence: the lower bound). "lifsg-dense" / "lifsg-loop": every lifsg
    layer with ``projection="dense"`` / ``implementation="loop"``."""
    if impl == "dense-only":
        keras.utils.set_random_seed(config.seed)
        inputs = keras.Input(tuple(config.input_shape))
        spikes = study_models.make_encoder(config)(inputs)
        h = keras.layers.Dense(config.units[0], activation="relu")(spikes)
        out = keras.layers.Dense(config.classes, activation="softmax")(h[:, -1])
        return keras.Model(inputs, out)
    model = studies.build_model(config)
    for layer in model.layers:
        if impl == "lifsg-dense" and hasattr(layer, "projection"):
            layer.projection = "dense"
        if impl == "lifsg-loop" and hasattr(layer, "implementation"):
            layer.implementation = "loop"
    return model


class MnistStep:
    """A training step (``train_on_batch``) of an MNIST model, encoding included; ``epoch``
    times one ``fit`` epoch over ``epoch_images`` training images."""

    def __init__(self, impl, config, batch=None, epoch_images=0):
        self.config = studies.RunConfig(**CONFIGS[config])
        if batch is not None:
            self.config = studies.RunConfig(**{**CONFIGS[config], "batch_size": batch})
        batch = self.config.batch_size
        images, labels, self.source = _mnist(max(batch, epoch_images))
        self.x = studies.prepare_images(images[:batch])
        self.y = study_training.one_hot(labels[:batch], self.config.classes)
        self.epoch_x = studies.prepare_images(images[:epoch_images])
        self.epoch_y = study_training.one_hot(labels[:epoch_images], self.config.classes)
        self.model = study_models.compile_model(mnist_model(impl, self.config), self.config)
        self.model.train_on_batch(self.x, self.y)  # traces the train function
        if epoch_images:
            self.epoch()  # traces fit's function and builds its data pipeline once

    def run(self):
        c0, t0 = time.process_time(), time.perf_counter()
        self.model.train_on_batch(self.x, self.y)
        return {"step": time.perf_counter() - t0, "step_cpu": time.process_time() - c0}

    def epoch(self):
        c0, t0 = time.process_time(), time.perf_counter()
        self.model.fit(
            self.epoch_x, self.epoch_y, batch_size=self.config.batch_size, epochs=1, verbose=0
        )
        return {"epoch": time.perf_counter() - t0, "epoch_cpu": time.process_time() - c0}


class Encoder:
    """The Poisson encoder of the original configuration alone (its dense 0/1 output summed):
    "encoder" as lifsg draws it (inter-spike gaps), "encoder-uniform" one uniform draw per
    step and input, as before (and as on other backends)."""

    def __init__(self, impl, batch):
        config = studies.RunConfig(batch_size=batch)
        images, _, self.source = _mnist(batch)
        x = tf.constant(studies.prepare_images(images).reshape(batch, -1))
        encoder = study_models.make_encoder(config)
        encoder.build(x.shape)
        p = x * (config.factor * config.dt)
        seed = keras.random.SeedGenerator(0)

        @tf.function
        def forward():
            if impl == "encoder":
                return tf.reduce_sum(encoder(x))
            u = keras.random.uniform((batch, config.steps, 784), seed=seed)
            return tf.reduce_sum(tf.cast(u < p[:, None, :], tf.float32))

        self.forward = forward.get_concrete_function()

    def run(self):
        c0, t0 = time.process_time(), time.perf_counter()
        self.forward().numpy()
        return {"forward": time.perf_counter() - t0, "forward_cpu": time.process_time() - c0}


def setup(req):
    task = req["task"]
    if task in ("linear_lif", "spike_input"):
        density = req.get("density") if task == "spike_input" else None
        return LinearLIF(req["impl"], req["size"], req["steps"], req["batch"], density)
    if req["impl"].startswith("encoder"):
        return Encoder(req["impl"], req["batch"])
    return MnistStep(req["impl"], req["config"], req.get("batch"), req.get("epoch_images", 0))


def serve():
    models = {}
    print(json.dumps({"ready": True, "versions": versions()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "setup":
                t0 = time.perf_counter()
                m = setup(req)
                setup_s = time.perf_counter() - t0
                t0 = time.perf_counter()
                m.run()
                first = time.perf_counter() - t0
                models[req["key"]] = m
                reply = {"setup_s": setup_s, "first_s": first}
                if hasattr(m, "source"):
                    reply["data"] = m.source
            elif cmd == "run":
                reply = models[req["key"]].run()
            elif cmd == "epoch":
                reply = models[req["key"]].epoch()
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
    """Peak RSS of forward + backward above the RSS once the input exists, in a fresh process
    (the input, batch x steps x neurons float32, is the same in every framework)."""
    from lifsg import events, fused

    fused.available()  # load the kernel libraries before the baseline
    events.available()
    x, w = _data(batch, steps, neurons)
    x = tf.constant(x)
    base = reset_peak()  # the peak counts from here
    m = LinearLIF(impl, neurons, steps, batch, data=(x, w))
    m.run()
    m.run()
    print(json.dumps({"peak_mib": peak_mib() - base, "baseline_mib": base}), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--memory", nargs=4, metavar=("IMPL", "STEPS", "NEURONS", "BATCH"))
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads (default 1)")
    args = parser.parse_args()
    set_threads(args.threads)
    if args.memory:
        impl, steps, neurons, batch = args.memory
        memory(impl, int(steps), int(neurons), int(batch))
    else:
        serve()
