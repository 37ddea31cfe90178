"""The same code on the JAX backend: forward and gradients agree with TensorFlow's; the NaN
policy, the implementation choice and an empty time axis work there too."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("jax")

from lifsg import reference  # noqa: E402

SCRIPT = r"""
import json
import numpy as np
import keras, lifsg
from keras import ops
rng = np.random.default_rng(0)
x = rng.uniform(0, 0.8, (2, 30, 4)).astype("float32")
results = {}
for reset in ["delayed", "subtract", "zero"]:
  layer = lifsg.DenseLIF(3, surrogate="superspike", reset=reset,
                       kernel_initializer=keras.initializers.Constant(0.6), w_leak=0.1)
  readout = lifsg.LeakyReadout(2, kernel_initializer="ones")
  layer.build(x.shape)
  spikes = layer(x)
  if keras.backend.backend() == "jax":
      import jax
      def pure(kernel, leak):
          from keras import StatelessScope
          with StatelessScope(state_mapping=[(layer.kernel, kernel), (layer.w_leak, leak)]):
              return ops.sum(readout(layer(x))[:, 0])
      grads = jax.grad(pure, argnums=(0, 1))(layer.kernel.value, layer.w_leak.value)
  else:
      import tensorflow as tf
      with tf.GradientTape() as tape:
          loss = ops.sum(readout(layer(x))[:, 0])
      grads = tape.gradient(loss, [layer.kernel, layer.w_leak])
  results[reset] = {"spikes": ops.convert_to_numpy(spikes).tolist(),
                    "grads": [ops.convert_to_numpy(g).tolist() for g in grads]}
enc = lifsg.LatencyEncoder(steps=10)(rng.uniform(0, 1, (2, 5)).astype("float32"))
results["latency"] = ops.convert_to_numpy(enc).tolist()
bad = np.full((1, 6, 1), 0.6, "float32")
bad[0, 2, 0] = np.nan
results["nan"] = ops.convert_to_numpy(lifsg.LIF(w_leak=0.1)(bad)).ravel().tolist()
flat = lifsg.surrogates.get("flat")
empty = lifsg.neuron.lif_loop(np.zeros((2, 0, 3), "float32"), 0.9, 1.0, flat)
results["empty"] = list(empty.shape)
try:
    lifsg.LIF(implementation="fused")(x)
    results["fused"] = "ran"
except ValueError as err:
    results["fused"] = str(err)
print(json.dumps(results))
"""


def _run(backend):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # two fresh Python processes (TensorFlow, then JAX)
def test_jax_matches_tensorflow():
    tf_run, jax_run = _run("tensorflow"), _run("jax")
    np.testing.assert_array_equal(tf_run["latency"], jax_run["latency"])
    np.testing.assert_array_equal(tf_run["nan"], jax_run["nan"])
    bad = np.full((1, 6, 1), 0.6)
    bad[0, 2, 0] = np.nan
    np.testing.assert_array_equal(jax_run["nan"], reference.lif_forward(bad, 0.1).y.ravel())
    assert jax_run["empty"] == [2, 0, 3]
    assert "needs the TensorFlow backend" in jax_run["fused"] and tf_run["fused"] == "ran"
    for reset in ["delayed", "subtract", "zero"]:
        np.testing.assert_array_equal(tf_run[reset]["spikes"], jax_run[reset]["spikes"])
        assert np.sum(tf_run[reset]["spikes"]) > 0
        for a, b in zip(tf_run[reset]["grads"], jax_run[reset]["grads"]):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
            assert np.any(np.asarray(a) != 0)
