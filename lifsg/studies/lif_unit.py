"""Paper items F1 and F2: one LIF unit simulated through the real layer, with its error flow.

:func:`simulate_unit` runs one neuron through the real :class:`lifsg.DenseLIF` layer and
takes the error each input receives with ``tf.GradientTape``; F1's playground and F2
(:mod:`lifsg.figures.operating_modes`) draw its runs. The input of step ``t`` comes on its own
channel ``t`` (all weights ``w_input``), so ``d loss / d kernel[t]`` is the error that input
sends back, as in paper item F2.
"""

import functools
from dataclasses import dataclass

import numpy as np

from lifsg import neuron, surrogates
from lifsg.layers import DenseLIF

INPUT_KINDS = ("constant", "regular", "poisson")
TARGETS = ("spikes", "second", "all")


def input_signal(kind, steps, period=5, rate=0.2, seed=0):
    """Input per step, before the weight: ``constant`` (1 every step), ``regular`` (a spike
    every ``period`` steps, the first at step ``period - 1``) or ``poisson`` (a spike with
    probability ``rate`` per step, NumPy generator seeded with ``seed``)."""
    if kind == "constant":
        return np.ones(steps)
    if kind == "regular":
        if int(period) < 1:
            raise ValueError(f"period must be >= 1, got {period}")
        return (np.arange(1, steps + 1) % int(period) == 0).astype(float)
    if kind == "poisson":
        if not 0 <= rate <= 1:
            raise ValueError(f"rate must lie in [0, 1] (spikes per step), got {rate}")
        return (np.random.default_rng(seed).random(steps) < rate).astype(float)
    raise ValueError(f"unknown input kind {kind!r}; valid: {', '.join(INPUT_KINDS)}")


@dataclass
class UnitRun:
    """One neuron's run. Arrays have one entry per time step."""

    signal: np.ndarray  # input per step before the weight (spikes 0/1 or a current)
    w_input: float
    w_leak: float
    threshold: float
    v: np.ndarray  # membrane potential V_t
    y: np.ndarray  # output spikes y_t
    target: np.ndarray  # weight of y_t in the loss  L = sum(target * y)
    error: np.ndarray  # d L / d w of the input at step t (0 where there is no input)

    @property
    def spike_times(self):
        return np.flatnonzero(self.y).tolist()

    @property
    def input_times(self):
        return np.flatnonzero(self.signal).tolist()


def _target(y, rule):
    """Loss weights over time. ``spikes``: a 1 at every output spike (each spike sends its
    error back); ``second``: a single 1 at the second output spike (the first if only one; none
    if no spike); ``all``: a 1 at every step (L = number of spikes, so near misses send error
    too)."""
    target = np.zeros_like(y)
    times = np.flatnonzero(y)
    if rule == "all":
        target[:] = 1.0
    elif rule == "spikes":
        target[times] = 1.0
    elif rule == "second":
        if len(times):
            target[times[min(1, len(times) - 1)]] = 1.0
    else:
        raise ValueError(f"unknown target {rule!r}; valid: {', '.join(TARGETS)}")
    return target


@functools.lru_cache(maxsize=16)
def _unit(steps, threshold, reset, surrogate_name, beta):
    """Two DenseLIF(1) layers over ``steps`` channels (spikes; potential) and compiled calls.

    Cached per configuration: the slider callbacks only assign the weights and re-run.
    """
    import tensorflow as tf

    common = dict(
        threshold=threshold,
        reset=reset,
        surrogate=surrogates.get(surrogate_name, beta=beta),
        w_leak=0.0,
        use_bias=False,
        kernel_initializer="zeros",
        dtype="float64",
    )
    spiking = DenseLIF(1, **common)
    potential = DenseLIF(1, return_potential=True, **common)
    for layer in (spiking, potential):
        layer.build((1, steps, steps))

    @tf.function
    def forward(x):
        return potential(x)[0, :, 0], spiking(x)[0, :, 0]

    @tf.function
    def backward(x, target):
        with tf.GradientTape() as tape:
            y = spiking(x)[0, :, 0]
            loss = tf.reduce_sum(target * y)
        return tape.gradient(loss, spiking.kernel)[:, 0]

    return (spiking, potential), forward, backward


def simulate_unit(
    signal,
    w_input,
    w_leak,
    threshold=1.0,
    reset="delayed",
    surrogate="flat",
    beta=None,
    target="spikes",
):
    """Run one neuron (``lifsg.DenseLIF``, float64) on ``signal`` and back-propagate.

    signal: input per step (T,), before the weight. The input of step t arrives on channel t,
    every channel has weight ``w_input`` and no bias. target: the loss is ``sum(target * y)``
    with target ``"spikes"`` (a 1 at every output spike), ``"second"`` (paper item F2: a single
    1 at the second output spike, the first if only one), ``"all"`` (a 1 at every step) or an
    array (T,). Returns a :class:`UnitRun` whose
    ``error[t]`` is ``d loss / d kernel[t]``.
    """
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"signal must be a non-empty 1-D array, got shape {signal.shape}")
    steps = signal.size
    reset = neuron.check_reset(reset)
    canonical = surrogates.get(surrogate, beta=beta)
    name, beta = canonical.name, canonical.get_config().get("beta")
    (spiking, potential), forward, backward = _unit(
        steps, float(threshold), reset, name, None if beta is None else float(beta)
    )
    for layer in (spiking, potential):
        layer.kernel.assign(np.full((steps, 1), float(w_input)))
        layer.w_leak.assign(np.full((1,), float(w_leak)))
    x = np.zeros((1, steps, steps))
    x[0, np.arange(steps), np.arange(steps)] = signal
    v, y = (a.numpy() for a in forward(x))
    loss_weights = _target(y, target) if isinstance(target, str) else np.asarray(target, float)
    error = backward(x, loss_weights).numpy()
    return UnitRun(
        signal=signal,
        w_input=float(w_input),
        w_leak=float(w_leak),
        threshold=float(threshold),
        v=v,
        y=y,
        target=loss_weights,
        error=error,
    )
