"""Pure-NumPy reference of the LIF neuron: forward pass and exact backward (BPTT by hand).

Independent of Keras, in float64; the tests tie the layers to it and the figures may use it.
Shapes: x is (batch, time, features); w_leak and threshold broadcast over features.
The rules are those of :mod:`lifsg.neuron`; ReLU'(0) = 0 and the reset factor is detached.
NaN and inf are handled as there: ReLU and the spike pass NaN on (``H(NaN) = NaN``); the
"delayed" and "zero" resets select (a NaN potential is not kept).
"""

from dataclasses import dataclass

import numpy as np


def heaviside(u):
    """``H(u)``: 1.0 where ``u >= 0``, 0.0 where ``u < 0``, NaN where ``u`` is NaN."""
    u = np.asarray(u, dtype=np.float64)
    return np.where(np.isnan(u), u, u >= 0)


@dataclass
class Trace:
    """Everything the backward pass needs. Arrays are (batch, time, features)."""

    x: np.ndarray
    v: np.ndarray  # potential V_t
    y: np.ndarray  # spikes y_t
    a: np.ndarray  # pre-activation of the ReLU
    w_leak: np.ndarray
    threshold: np.ndarray
    reset: str


def lif_forward(x, w_leak, threshold=1.0, reset="delayed"):
    """Run the neuron. Returns a :class:`Trace` (``.v`` potentials, ``.y`` spikes)."""
    x = np.asarray(x, dtype=np.float64)
    w_leak = np.asarray(w_leak, dtype=np.float64)
    threshold = np.asarray(threshold, dtype=np.float64)
    decay = 1.0 - w_leak
    v, y, a = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
    v_prev = np.zeros_like(x[:, 0])
    y_prev = np.zeros_like(x[:, 0])
    for t in range(x.shape[1]):
        if reset == "delayed":
            a[:, t] = x[:, t] + np.where(threshold - v_prev >= 0, decay * v_prev, 0)
            v[:, t] = np.maximum(a[:, t], 0)
        elif reset == "subtract":
            a[:, t] = x[:, t] + decay * v_prev - threshold * y_prev
            v[:, t] = np.maximum(a[:, t], 0)
        elif reset == "zero":
            a[:, t] = x[:, t] + decay * v_prev
            v[:, t] = np.where(y_prev > 0, 0, np.maximum(a[:, t], 0))
        else:
            raise ValueError(f"unknown reset {reset!r}")
        y[:, t] = heaviside(v[:, t] - threshold)
        v_prev, y_prev = v[:, t], y[:, t]
    return Trace(x, v, y, a, w_leak, threshold, reset)


def lif_backward(trace, derivative, grad_y=None, grad_v=None):
    """Exact gradients of ``L = sum(grad_y * y) + sum(grad_v * v)``.

    derivative: the surrogate ``dH/du`` as a NumPy function of ``u = V - threshold``.
    Returns a dict with ``x`` (batch, time, features), ``w_leak`` and ``threshold``
    (per feature, summed over batch and time).
    """
    x, v, y, a = trace.x, trace.v, trace.y, trace.a
    grad_y = np.zeros_like(x) if grad_y is None else np.broadcast_to(grad_y, x.shape)
    grad_v = np.zeros_like(x) if grad_v is None else np.broadcast_to(grad_v, x.shape)
    decay = 1.0 - trace.w_leak
    theta = trace.threshold
    g_x = np.zeros_like(x)
    g_leak = np.zeros(x.shape[-1])
    g_theta = np.zeros(x.shape[-1])
    g_future = np.zeros_like(x[:, 0])  # dL/dV_t through step t+1
    zeros = np.zeros_like(x[:, 0])
    for t in reversed(range(x.shape[1])):
        v_prev = v[:, t - 1] if t > 0 else zeros
        y_prev = y[:, t - 1] if t > 0 else zeros
        surrogate = grad_y[:, t] * derivative(v[:, t] - theta)
        g_v = grad_v[:, t] + surrogate + g_future
        g_theta -= surrogate.sum(axis=0)
        g_a = g_v * (a[:, t] > 0)
        if trace.reset == "zero":
            g_a = g_a * (1 - y_prev)
        g_x[:, t] = g_a
        keep = heaviside(theta - v_prev) if trace.reset == "delayed" else 1.0
        g_future = g_a * decay * keep
        g_leak -= (g_a * v_prev * keep).sum(axis=0)
        if trace.reset == "subtract":
            g_theta -= (g_a * y_prev).sum(axis=0)
    return {"x": g_x, "w_leak": g_leak, "threshold": g_theta}


def leaky_integrator_forward(x, w_leak):
    """The non-spiking read-out ``V_t = ReLU(x_t + (1 - w_leak) V_{t-1})``; returns V."""
    x = np.asarray(x, dtype=np.float64)
    decay = 1.0 - np.asarray(w_leak, dtype=np.float64)
    v = np.zeros_like(x)
    v_prev = np.zeros_like(x[:, 0])
    for t in range(x.shape[1]):
        v_prev = v[:, t] = np.maximum(x[:, t] + decay * v_prev, 0)
    return v
