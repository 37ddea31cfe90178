"""Paper item F2: operating modes of one LIF unit and the error each input spike receives.

The drawing is :mod:`lifsg.figures.operating_modes`.

One unit, ``steps`` input channels and steps; channel j spikes once, at step j, at the times of
:func:`f2_spike_times` (bursts with gaps 11, 10, ..., 1, repeated). All input weights equal
``w_input``, no bias. The target is a single 1 at the second output spike (the first if only
one), the loss ``target * y``, and the error of an input is ``d loss / d weight`` of its channel,
taken with ``tf.GradientTape`` through :class:`lifsg.DenseLIF` (see
:func:`lifsg.studies.lif_unit.simulate_unit`).

Known answers (docs/model.md, F2): all three paper columns fire at 66, 132 and 198; the error on
the burst 77..132 is 1, 0.98**(132 - t) and 0.7**(132 - t), and 0 at or before step 66.
"""

from dataclasses import dataclass

import numpy as np

from .lif_unit import simulate_unit

STEPS = 211
#: the paper's three columns: (label, w_input, w_leak)
COLUMNS = (
    ("integrator", 0.099, 0.0),
    ("mixed", 0.14, 0.02),
    ("coincidence detector", 0.5, 0.3),
)


def f2_spike_times(steps=STEPS):
    """Input spike times of F2: bursts with gaps 11, 10, ..., 1, repeated, below ``steps``.

    11, 21, 30, 38, 45, 51, 56, 60, 63, 65, 66, 77, 87, ...
    """
    times, t, gap = [], 0, 11
    while t + gap < steps:
        t += gap
        times.append(t)
        gap = gap - 1 if gap > 1 else 11
    return times


@dataclass
class OperatingMode:
    """One F2 column. Arrays have one entry per step (= per input channel)."""

    w_input: float
    w_leak: float
    input_times: list  # steps with an input spike
    v: np.ndarray  # membrane potential
    spikes: np.ndarray  # output spikes (0/1)
    target_time: int | None  # the target step (None: no output spike)
    error: np.ndarray  # d loss / d weight of each input channel

    @property
    def spike_times(self):
        return np.flatnonzero(self.spikes).tolist()

    @property
    def inputs(self):
        """Input spikes per step (0/1)."""
        x = np.zeros(len(self.v))
        x[self.input_times] = 1.0
        return x

    @property
    def target(self):
        """The target spike train (0/1)."""
        y = np.zeros(len(self.v))
        if self.target_time is not None:
            y[self.target_time] = 1.0
        return y


def operating_mode(w_input, w_leak, steps=STEPS):
    """Run F2's unit with all input weights ``w_input`` and leak ``w_leak``."""
    times = f2_spike_times(steps)
    signal = np.zeros(steps)
    signal[times] = 1.0
    run = simulate_unit(signal, w_input, w_leak, target="second")
    target = np.flatnonzero(run.target)
    return OperatingMode(
        w_input=float(w_input),
        w_leak=float(w_leak),
        input_times=times,
        v=run.v,
        spikes=run.y,
        target_time=int(target[0]) if len(target) else None,
        error=run.error,
    )


def summary(mode):
    """JSON-ready facts of one column: spike times, target, the error of every input spike."""
    return {
        "w_input": mode.w_input,
        "w_leak": mode.w_leak,
        "spike_times": mode.spike_times,
        "target": mode.target_time,
        "error": {str(t): float(mode.error[t]) for t in mode.input_times},
    }
