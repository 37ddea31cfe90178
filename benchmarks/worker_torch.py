"""PyTorch side of the benchmarks: snnTorch 1.0.0 and Norse 1.1.0, run from benchmarks/.venv-peers.

Started by benchmarks/run.py, one process pinned to one core, torch limited to one thread.
Same protocol as worker_tf.py. Impls (task 1, input (time, batch, N) -> Linear(N, N) -> LIF):

- ``linear-only-torch``: the Linear layer alone (PyTorch's floor).
- ``snntorch``: ``snn.Leaky`` stepped over ``cur.unbind(0)`` (fastest honest configuration).
- ``snntorch-tutorial``: the same indexing ``cur[t]`` in ``range(T)``, as the tutorials do.
- ``norse-unbind``: ``LIFBoxCell`` stepped over ``cur.unbind(0)``, eager.
- ``norse-compile``: the same with the cell's step under ``torch.compile`` (compile time apart).
- ``norse-tutorial``: ``Lift(LIFBoxCell)``, Norse's way to run a cell over time, which loops
  over ``input[ts]`` itself.

Neuron settings: decay 0.9 per step (snnTorch beta = 0.9; Norse dt * tau_mem_inv = 0.1),
threshold 1. snnTorch resets by subtraction one step late (reset_delay default) with the
straight-through (flat) surrogate; Norse resets to 0 in the same step, scales the input by
dt * tau_mem_inv = 0.1 and uses its default SuperSpike surrogate (alpha 100); neither has
lifsg's ReLU floor.
"""

import argparse
import json
import sys
import time

import numpy as np
import torch
from procmem import peak_mib, reset_peak

torch.set_num_threads(1)
try:
    torch.set_num_interop_threads(1)
except RuntimeError:
    pass

DECAY = 0.9


def versions():
    out = {"python": sys.version.split()[0], "torch": torch.__version__}
    for name in ("snntorch", "norse"):
        try:
            out[name] = __import__(name).__version__
        except Exception as err:  # noqa: BLE001
            out[name] = f"unavailable: {err}"
    return out


def _data(batch, steps, neurons, seed=0):
    rng = np.random.default_rng(seed)  # the same numbers as worker_tf.py
    x = rng.random((batch, steps, neurons), dtype=np.float32)
    w = (rng.standard_normal((neurons, neurons)) * (1.0 / np.sqrt(neurons))).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2))), torch.from_numpy(w)


def _snntorch_neuron():
    import snntorch as snn
    from snntorch import surrogate

    return snn.Leaky(
        beta=DECAY,
        threshold=1.0,
        reset_mechanism="subtract",
        spike_grad=surrogate.straight_through_estimator(),
    )


def _norse_params():
    from norse.torch import LIFBoxParameters

    return LIFBoxParameters(tau_mem_inv=torch.as_tensor(1.0 / 1e-2), v_th=torch.as_tensor(1.0))


_COMPILED = {}


def _compiled_norse_cell():
    if "norse" not in _COMPILED:
        from norse.torch import LIFBoxCell

        _COMPILED["norse"] = torch.compile(LIFBoxCell(_norse_params()), dynamic=True)
    return _COMPILED["norse"]


class LinearLIF:
    def __init__(self, impl, neurons, steps, batch, data=None):
        self.impl = impl
        self.x, w = _data(batch, steps, neurons) if data is None else data
        self.linear = torch.nn.Linear(neurons, neurons)
        with torch.no_grad():
            self.linear.weight.copy_(w.T)
            self.linear.bias.zero_()
        self.compile_s = None
        if impl.startswith("snntorch"):
            self.lif = _snntorch_neuron()
        elif impl in ("norse-unbind", "norse-compile"):
            from norse.torch import LIFBoxCell

            self.lif = LIFBoxCell(_norse_params())
            if impl == "norse-compile":  # one dynamic-shape compile serves every size
                self.lif = _compiled_norse_cell()
        elif impl == "norse-tutorial":
            from norse.torch import LIFBoxCell, Lift

            self.lif = Lift(LIFBoxCell(_norse_params()))
        elif impl != "linear-only-torch":
            raise ValueError(f"unknown impl {impl}")

    def model(self):
        cur = self.linear(self.x)
        impl = self.impl
        if impl == "linear-only-torch":
            return cur
        if impl == "snntorch":
            mem = torch.zeros_like(cur[0])
            out = []
            for c in cur.unbind(0):
                spk, mem = self.lif(c, mem)
                out.append(spk)
            return torch.stack(out)
        if impl == "snntorch-tutorial":
            mem = self.lif.init_leaky()
            out = []
            for t in range(cur.shape[0]):
                spk, mem = self.lif(cur[t], mem)
                out.append(spk)
            return torch.stack(out)
        if impl in ("norse-unbind", "norse-compile"):
            state = None
            out = []
            for c in cur.unbind(0):
                z, state = self.lif(c, state)
                out.append(z)
            return torch.stack(out)
        out, _ = self.lif(cur)  # norse-tutorial: Lift loops over input[ts] itself
        return out

    def run(self):
        for p in self.linear.parameters():
            p.grad = None
        c0, t0 = time.process_time(), time.perf_counter()
        loss = self.model().sum()
        c1, t1 = time.process_time(), time.perf_counter()
        loss.backward()
        c2, t2 = time.process_time(), time.perf_counter()
        return {
            "forward": t1 - t0,
            "backward": t2 - t1,
            "total": t2 - t0,
            "forward_cpu": c1 - c0,
            "backward_cpu": c2 - c1,
            "total_cpu": c2 - c0,
        }


def serve():
    models = {}
    print(json.dumps({"ready": True, "versions": versions()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        cmd = req["cmd"]
        try:
            if cmd == "setup":
                t0 = time.perf_counter()
                m = LinearLIF(req["impl"], req["size"], req["steps"], req["batch"])
                setup = time.perf_counter() - t0
                t0 = time.perf_counter()
                m.run()  # the first call compiles where torch.compile is used
                first = time.perf_counter() - t0
                models[req["key"]] = m
                reply = {"setup_s": setup, "first_s": first}
            elif cmd == "run":
                reply = models[req["key"]].run()
            elif cmd == "free":
                models.pop(req["key"], None)
                reply = {}
            elif cmd == "quit":
                break
            else:
                reply = {"error": f"unknown command {cmd}"}
        except Exception as err:  # noqa: BLE001
            reply = {"error": f"{type(err).__name__}: {err}"}
        print(json.dumps(reply), flush=True)


def memory(impl, steps, neurons, batch):
    """Peak RSS of forward + backward above the RSS once the input exists (as worker_tf.py)."""
    import norse.torch  # noqa: F401  (imports before the baseline)
    import snntorch  # noqa: F401

    data = _data(batch, steps, neurons)
    base = reset_peak()  # RSS after the imports and the input; the peak counts from here
    m = LinearLIF(impl, neurons, steps, batch, data)
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
