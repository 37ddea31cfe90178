"""NIR's equations in NumPy: :func:`simulate`, a reference for what a graph means."""

import nir
import numpy as np

from lifsg.nir.layout import check_dt, f64


def simulate(graph, inputs, dt, nodes=None):
    """Run a NIR graph by forward Euler at step ``dt`` from NIR's definitions alone.

    Independent of lifsg's layers and of any lifsg metadata: a reference for what a graph
    means. Per step, nodes run in topological order (edges carry values within the step;
    several edges into a node add up). Neurons start at ``v = v_leak``; LIF:
    ``v += dt / tau (v_leak - v + r I)``, IF: ``v += dt r I``, spike where ``v > v_threshold``,
    then ``v = v_reset``; LI and I likewise without spikes, outputting ``v``. Conv2d and
    pooling act on ``(C, H, W)`` with PyTorch's conventions (average pooling counts padding).

    inputs: ``(batch, time, *input shape)``. nodes: names to record (default: the Output).
    Returns ``{name: (batch, time, *shape)}`` in float64.
    """
    dt = check_dt(dt)
    order = _topological(graph)
    before = {name: [src for src, dst in graph.edges if dst == name] for name in order}
    (source,) = graph.inputs
    x = np.asarray(inputs, dtype="float64")
    expected = tuple(int(s) for s in np.asarray(graph.nodes[source].input_type["input"]))
    if x.ndim < 2 or x.shape[2:] != expected:
        raise ValueError(f"inputs must be (batch, time, *{expected}), got {x.shape}")
    record = list(graph.outputs) if nodes is None else list(nodes)
    missing = [n for n in record if n not in graph.nodes]
    if missing:
        raise ValueError(f"no nodes {missing} in the graph")
    states, out = {}, {n: [] for n in record}
    for t in range(x.shape[1]):
        values = {}
        for name in order:
            node = graph.nodes[name]
            if name == source:
                value = x[:, t]
            else:
                value = sum(values[p] for p in before[name])
                value = _sim_step(name, node, value, states, dt)
            values[name] = value
            if name in out:
                out[name].append(value)
    return {n: np.stack(v, axis=1) for n, v in out.items()}


def _topological(graph):
    pending = {name: {src for src, dst in graph.edges if dst == name} for name in graph.nodes}
    order = []
    while pending:
        ready = [n for n, deps in pending.items() if not deps]
        if not ready:
            raise ValueError(f"the graph has a cycle through {sorted(pending)}")
        for name in ready:
            order.append(name)
            del pending[name]
        for deps in pending.values():
            deps.difference_update(ready)
    return order


def _sim_step(name, node, x, states, dt):
    if isinstance(node, (nir.Output, nir.Input)):
        return x
    if isinstance(node, nir.Affine):
        return x @ f64(node.weight).T + f64(node.bias)
    if isinstance(node, nir.Linear):
        return x @ f64(node.weight).T
    if isinstance(node, nir.Scale):
        return x * f64(node.scale)
    if isinstance(node, nir.Flatten):
        start = node.start_dim + 1 if node.start_dim >= 0 else node.start_dim + x.ndim
        end = node.end_dim + 1 if node.end_dim >= 0 else node.end_dim + x.ndim
        return x.reshape(*x.shape[:start], -1, *x.shape[end + 1 :])
    if isinstance(node, nir.Conv2d):
        return _sim_conv(node, x)
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        k = np.broadcast_to(node.kernel_size, (2,)).astype(int)
        s = np.broadcast_to(node.stride, (2,)).astype(int)
        p = np.broadcast_to(node.padding, (2,)).astype(int)
        windows = _windows(np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1]))), k, s, (1, 1))
        total = windows.sum(axis=(-2, -1))
        return total / (k[0] * k[1]) if isinstance(node, nir.AvgPool2d) else total
    if isinstance(node, (nir.LIF, nir.IF, nir.LI, nir.I)):
        v_leak = f64(getattr(node, "v_leak", 0.0))
        v = states.get(name)
        if v is None:
            v = np.broadcast_to(v_leak, x.shape).copy()
        if isinstance(node, (nir.LIF, nir.LI)):
            v = v + dt / f64(node.tau) * (v_leak - v + f64(node.r) * x)
        else:
            v = v + dt * f64(node.r) * x
        if isinstance(node, (nir.LI, nir.I)):
            states[name] = v
            return v
        spikes = v > f64(node.v_threshold)
        states[name] = np.where(spikes, f64(node.v_reset), v)
        return spikes.astype("float64")
    raise ValueError(f"node {name!r}: simulate does not support NIR {type(node).__name__}")


def _windows(x, kernel, stride, dilation):
    """(N, C, H, W) -> (N, C, Ho, Wo, kh, kw) sliding windows."""
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]
    view = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, :: stride[0], :: stride[1], :: dilation[0], :: dilation[1]]


def _sim_conv(node, x):
    weight = f64(node.weight)  # (out, in / groups, kh, kw)
    stride = np.broadcast_to(node.stride, (2,)).astype(int)
    dilation = np.broadcast_to(node.dilation, (2,)).astype(int)
    kernel = weight.shape[2:]
    padding = node.padding
    if isinstance(padding, bytes):
        padding = padding.decode()
    if isinstance(padding, str):
        total = [d * (k - 1) if padding == "same" else 0 for k, d in zip(kernel, dilation)]
        pads = [(t // 2, t - t // 2) for t in total]  # PyTorch puts the odd pixel last
    else:
        pads = [(int(p), int(p)) for p in np.broadcast_to(padding, (2,))]
    x = np.pad(x, ((0, 0), (0, 0), *pads))
    windows = _windows(x, kernel, stride, dilation)  # (N, C, Ho, Wo, kh, kw)
    n, c, ho, wo = windows.shape[:4]
    g = int(node.groups)
    windows = windows.reshape(n, g, c // g, ho, wo, *kernel)
    weight = weight.reshape(g, weight.shape[0] // g, *weight.shape[1:])
    y = np.einsum("ngchwij,gocij->ngohw", windows, weight).reshape(n, -1, ho, wo)
    return y + f64(node.bias)[:, None, None]
