"""Paper item F2 through DenseLIF: spike times and the error each input receives."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import lifsg
from lifsg.studies.operating_modes import f2_spike_times

MODES = {"integrator": (0.099, 0.0), "mixed": (0.14, 0.02), "coincidence": (0.5, 0.3)}


def test_f2_input_pattern():
    times = f2_spike_times()
    assert times[:14] == [11, 21, 30, 38, 45, 51, 56, 60, 63, 65, 66, 77, 87, 96]
    assert times[-1] < 211


@pytest.mark.parametrize("mode", sorted(MODES))
def test_f2_spikes_and_error(mode):
    w_input, w_leak = MODES[mode]
    times = f2_spike_times()
    x = np.zeros((1, 211, 211), "float32")
    x[0, times, times] = 1.0  # channel j spikes once, at step j
    layer = lifsg.DenseLIF(
        1, w_leak=w_leak, kernel_initializer=keras.initializers.Constant(w_input)
    )
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = y[0, 132, 0]  # target: the second output spike
    error = tape.gradient(loss, layer.kernel).numpy()[:, 0]

    assert np.flatnonzero(y.numpy()[0, :, 0]).tolist() == [66, 132, 198]
    burst = [t for t in times if 77 <= t <= 132]
    assert len(burst) == 11
    np.testing.assert_allclose(error[burst], (1 - w_leak) ** (132 - np.array(burst)), rtol=1e-5)
    assert np.all(error[: 66 + 1] == 0)  # the reset at 67 cuts the chain
    assert np.all(error[133:] == 0)  # later inputs cannot affect step 132
