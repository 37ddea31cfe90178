"""NIR fixtures and cross-checks of lifsg against snnTorch 1.0.0 and Norse 1.1.0 (issue 14).

    .venv/bin/python benchmarks/make_nir_fixtures.py      # about a minute

1. In ``benchmarks/.venv-peers`` (``benchmarks/run.py`` creates it; this script calls itself
   there with ``peer-fixtures``): small networks built and exported to NIR by snnTorch and by
   Norse -> ``tests/fixtures/nir/<name>.nir``, with the input and the spikes each library's own
   network produced, per spiking layer -> ``<name>.npz``.
2. lifsg -> peers: models exported by ``lifsg.nir.to_nir`` are run in snnTorch
   (``import_from_nir``) and Norse (``from_nir``) with ``peer-run`` and compared with lifsg.
3. What NIR cannot express: spike mismatch rates of lifsg against ``lifsg.nir.simulate``.

Numbers go to ``tests/fixtures/nir/agreement.json`` (README, "NIR interoperability").
``peer-run`` is also what the tests and notebook 08 use to run a graph in a peer.
"""

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = REPO / "tests" / "fixtures" / "nir"
PEERS_PYTHON = HERE / ".venv-peers" / "bin" / "python"
SNNTORCH_DT = 1e-4  # snnTorch's NIR export and import hard-code this step
NORSE_DT = 1e-3  # Norse's default


# ----------------------------------------------------------------------------- peers' side


def _torch():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    return torch


def _record(modules, run):
    """Run ``run()``; return the spikes each module produced, per step, (N, T, ...)."""
    seen = {name: [] for name in modules}
    hooks = []
    for name, module in modules.items():

        def hook(_module, _inputs, output, name=name):
            spikes = output[0] if isinstance(output, tuple) else output
            seen[name].append(spikes.detach().numpy().astype("float32"))

        hooks.append(module.register_forward_hook(hook))
    run()
    for h in hooks:
        h.remove()
    return {name: np.stack(v, axis=1) for name, v in seen.items()}


def _snntorch_net(conv, signed, **leaky):
    """snnTorch network; ``leaky`` picks the Leaky reset (NIR's own: zero, no delay)."""
    torch = _torch()
    import snntorch as snn

    def lif(shape):
        # decay 0.65 .. 0.95 per neuron, per channel on images (lifsg's one leak per channel)
        beta = (torch.rand(shape[:1] + (1,) * (len(shape) - 1)) * 0.3 + 0.65).expand(shape)
        beta = beta.clone()
        return snn.Leaky(beta=beta, threshold=torch.ones(shape), init_hidden=True, **leaky)

    if conv:
        layers = [
            torch.nn.Conv2d(1, 2, 3, padding=1),
            lif((2, 8, 8)),
            torch.nn.AvgPool2d(2),
            torch.nn.Flatten(),
            torch.nn.Linear(32, 5),
            lif((5,)),
        ]
    else:
        layers = [torch.nn.Linear(10, 8), lif((8,)), torch.nn.Linear(8, 4), lif((4,))]
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                if signed:
                    m.weight.normal_(0.0, 0.6)
                    m.bias.normal_(0.0, 0.2)
                else:
                    wide = conv and isinstance(m, torch.nn.Linear)  # 32 inputs
                    m.weight.uniform_(0.0, 0.12 if wide else 0.45)
                    m.bias.uniform_(0.0, 0.05)
    return net


def _unbatched(net):
    """A copy to trace without a batch axis, which snnTorch's export would write into the
    Input type; its Flatten then starts at axis 0 (the same per-sample semantics)."""
    import copy

    torch = _torch()
    net = copy.deepcopy(net)
    for i, m in enumerate(net):
        if isinstance(m, torch.nn.Flatten):
            net[i] = torch.nn.Flatten(0, -1)
    return net


def _run_snntorch(net, x):
    import snntorch.utils

    torch = _torch()
    snntorch.utils.reset(net)
    with torch.no_grad():
        for t in range(x.shape[1]):
            net(torch.from_numpy(x[:, t]))


def _norse_net(signed):
    torch = _torch()
    import norse.torch as norse
    from norse.torch.module.lif_box import LIFBoxCell, LIFBoxParameters

    def lif(n):
        p = LIFBoxParameters(
            tau_mem_inv=torch.rand(n) * 150 + 50,  # dt / tau = 0.05 .. 0.2 at dt = 1 ms
            v_th=torch.rand(n) * 0.4 + 0.1,  # per-neuron thresholds 0.1 .. 0.5
            v_leak=torch.zeros(n),  # its export needs every parameter per neuron
        )
        return LIFBoxCell(p, dt=NORSE_DT)

    net = norse.SequentialState(torch.nn.Linear(10, 8), lif(8), torch.nn.Linear(8, 4), lif(4))
    with torch.no_grad():
        for m in net:
            if isinstance(m, torch.nn.Linear):
                if signed:
                    m.weight.normal_(0.0, 1.0)
                    m.bias.normal_(0.0, 0.3)
                else:
                    m.weight.uniform_(0.0, 1.0)
                    m.bias.uniform_(0.0, 0.2)
    return net


def _run_norse(net, x):
    torch = _torch()
    state = None
    with torch.no_grad():
        for t in range(x.shape[1]):
            _, state = net(torch.from_numpy(x[:, t]), state)


def peer_fixtures(out):
    """Build, export and run the peers' fixture networks; write <name>.nir and <name>.npz."""
    torch = _torch()
    import nir
    import norse
    import snntorch
    from norse.torch.utils.export_nir import to_nir as norse_to_nir
    from snntorch.export_nir import export_to_nir

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    versions = {"snntorch": snntorch.__version__, "norse": norse.__version__}
    versions["nir"] = nir.version
    for name, conv, signed in (
        ("snntorch_dense", False, False),
        ("snntorch_signed", False, True),
        ("snntorch_conv", True, False),
    ):
        shape = (1, 8, 8) if conv else (10,)
        x = (rng.random((4, 25, *shape)) < 0.3).astype("float32")
        net = _snntorch_net(conv, signed, reset_mechanism="zero", reset_delay=False)
        spiking = {str(i): m for i, m in enumerate(net) if type(m).__name__ == "Leaky"}
        spikes = _record(spiking, lambda net=net, x=x: _run_snntorch(net, x))
        graph = export_to_nir(_unbatched(net), torch.zeros(*shape))
        nir.write(out / f"{name}.nir", graph)
        # The same weights with snnTorch's default Leaky (subtract reset one step late),
        # which its export writes as the same NIR LIF (reset to 0).
        default = _snntorch_net(conv, signed)
        default.load_state_dict(net.state_dict())
        as_default = _record(
            {k: default[int(k)] for k in spiking},
            lambda net=default, x=x: _run_snntorch(net, x),
        )
        _save(out / f"{name}.npz", x, spikes, SNNTORCH_DT, versions, default_leaky=as_default)
    for name, signed in (("norse_dense", False), ("norse_signed", True)):
        x = (rng.random((4, 25, 10)) < 0.3).astype("float32")
        net = _norse_net(signed)
        spiking = {str(i): m for i, m in enumerate(net) if type(m).__name__ == "LIFBoxCell"}
        spikes = _record(spiking, lambda net=net, x=x: _run_norse(net, x))
        graph = norse_to_nir(net, torch.zeros(10), dt=NORSE_DT)  # unbatched, as for snnTorch
        nir.write(out / f"{name}.nir", graph)
        _save(out / f"{name}.npz", x, spikes, NORSE_DT, versions)


def _save(path, x, spikes, dt, versions, **extra):
    arrays = {"inputs": x, "dt": np.float64(dt), "versions": json.dumps(versions)}
    arrays.update({f"spikes/{k}": v for k, v in spikes.items()})
    for group, values in extra.items():
        arrays.update({f"{group}/{k}": v for k, v in values.items()})
    np.savez_compressed(path, **arrays)


def fold_r(graph):
    """The same NIR graph with each neuron's r moved into the Affine before it (r = 1).

    For Norse, whose import ignores r: NIR-equivalent, since r (W x + b) = (r W) x + r b.
    """
    import nir

    names = list(graph.nodes)
    for src, dst in graph.edges:
        node, prev = graph.nodes[dst], graph.nodes[src]
        if isinstance(node, (nir.LIF, nir.LI)) and isinstance(prev, nir.Affine):
            r = np.asarray(node.r, dtype="float64")
            prev.weight = (prev.weight * r[:, None]).astype(prev.weight.dtype)
            prev.bias = (prev.bias * r).astype(prev.bias.dtype)
            node.r = np.ones_like(r)
    assert names == list(graph.nodes)
    return graph


def peer_run(peer, graph_path, inputs_path, dt, out, fold=False):
    """Import a NIR file into ``peer``, run it over the inputs' time axis, save its outputs."""
    import nir

    torch = _torch()
    graph = nir.read(graph_path)
    if fold:
        graph = fold_r(graph)
    x = np.load(inputs_path).astype("float32")
    outputs = []
    with torch.no_grad():
        if peer == "snntorch":
            from snntorch.import_nir import import_from_nir

            net = import_from_nir(graph)  # assumes dt = SNNTORCH_DT whatever the export's
            for t in range(x.shape[1]):
                y, _ = net(torch.from_numpy(x[:, t]))
                outputs.append(y.numpy())
        else:
            import norse.torch as norse

            net = norse.from_nir(graph, dt=dt, ignore_warnings=True)
            state = None
            for t in range(x.shape[1]):
                y, state = net(torch.from_numpy(x[:, t]), state)
                outputs.append(y.numpy())
    np.save(out, np.stack(outputs, axis=1))


def run_in_peer(peer, graph_path, inputs, dt, fold=False):
    """From lifsg's venv: run a NIR file in snnTorch or Norse; returns (batch, time, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        x, y = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(x, np.asarray(inputs, dtype="float32"))
        cmd = [str(PEERS_PYTHON), __file__, "peer-run", peer, str(graph_path), str(x)]
        cmd += [repr(float(dt)), str(y)] + (["--fold-r"] if fold else [])
        done = subprocess.run(cmd, capture_output=True, text=True, env=_peer_env())
        if done.returncode:
            raise RuntimeError(f"{peer} failed:\n{done.stderr[-3000:]}")
        return np.load(y)


def _peer_env():
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- lifsg's side


def _dense_model(
    units, inputs, seed, reset="delayed", signed=False, integrate=False, dtype="float32"
):
    """Random DenseLIF chain and a LeakyReadout(3): leaks in [0, 0.2], a tenth exactly 0
    (``integrate``: all 0, so NIR IF nodes)."""
    import keras

    import lifsg

    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    x = first = keras.Input((None, inputs))
    for i, n in enumerate(units):
        layer = lifsg.DenseLIF(n, reset=reset, name=f"lif_{i}", dtype=dtype)
        x = layer(x)
        scale = 1.0 / layer.kernel.shape[0]  # mean current about 0.3 per step
        if signed:
            kernel = rng.normal(scale, 3 * scale, layer.kernel.shape)
        else:
            kernel = rng.uniform(0, 2 * scale, layer.kernel.shape)
        leak = rng.uniform(0, 0.2, n) * (rng.random(n) > 0.1) * (not integrate)
        layer.set_weights([kernel, np.zeros(n), leak])
    readout = lifsg.LeakyReadout(3, reduce=None, name="readout", dtype=dtype)
    x = readout(x)
    readout.set_weights([rng.uniform(0, 0.3, readout.kernel.shape), np.zeros(3), np.full(3, 0.1)])
    return keras.Model(first, x)


def _spikes(model, names, x):
    import keras

    sub = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    out = sub.predict(x, verbose=0, batch_size=len(x))
    out = out if isinstance(out, list) else [out]
    return {n: np.asarray(v, dtype="float64") for n, v in zip(names, out)}


def _rate(a, b):
    return float(np.mean(a != b))


def measure_mismatch(rng):
    """lifsg vs NIR's equations (lifsg.nir.simulate, float64) on what NIR can't express."""
    import warnings

    from lifsg import nir as lnir

    x = (rng.random((64, 50, 20)) < 0.3).astype("float64")
    names = ["lif_0", "lif_1"]
    cases = {
        "delayed reset, non-negative currents": dict(),
        "delayed reset, signed currents (ReLU floor)": dict(signed=True),
        "subtract reset, non-negative currents": dict(reset="subtract"),
        "zero reset, non-negative currents": dict(reset="zero"),
    }
    rows = {}
    for label, kw in cases.items():
        model = _dense_model((32, 16), 20, seed=1, dtype="float64", **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = lnir.to_nir(model, dt=1e-3)
        ours = _spikes(model, names, x)
        ref = lnir.simulate(graph, x, 1e-3, nodes=names)
        rows[label] = {
            n: {"mismatch": _rate(ours[n], ref[n]), "rate": float(ours[n].mean())} for n in names
        }
    # Ties: integer currents make V == threshold exact; lifsg spikes there, NIR does not.
    import keras

    import lifsg

    model = keras.Sequential([keras.Input((None, 1)), lifsg.LIF(w_leak=0.0, name="lif_0")])
    ties = rng.integers(0, 2, (64, 50, 1)).astype("float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = _spikes(model, ["lif_0"], ties)["lif_0"]
        ref = lnir.simulate(lnir.to_nir(model, 1e-3), ties, 1e-3, nodes=["lif_0"])["lif_0"]
    rows["V == threshold (integer currents, w_leak = 0)"] = {
        "lif_0": {"mismatch": _rate(ours, ref), "rate": float(ours.mean())}
    }
    return rows


def measure_peers(rng):
    """lifsg exports run in snnTorch and Norse: the fraction of spikes equal to lifsg's."""
    import nir

    from lifsg import nir as lnir

    x = (rng.random((64, 50, 20)) < 0.3).astype("float32")
    cases = {
        "LIF, non-negative currents": dict(),
        "LIF, signed currents": dict(signed=True),
        "IF (all leaks 0), non-negative currents": dict(integrate=True),
    }
    runs = (
        ("snntorch", SNNTORCH_DT, False),
        ("snntorch, export at dt = 1e-3", NORSE_DT, False),
        ("norse", NORSE_DT, False),
        ("norse, r folded into the Affine", NORSE_DT, True),
    )
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, kw in cases.items():
            model = _dense_model((32, 16), 20, seed=2, **kw)
            hidden = keras_sub(model, "lif_1")  # neither peer runs LI read-outs (README)
            ours = _spikes(model, ["lif_1"], x)["lif_1"]
            rows = {"lifsg spike rate": float(ours.mean())}
            for key, dt, fold in runs:
                path = Path(tmp) / "graph.nir"
                nir.write(path, lnir.to_nir(hidden, dt=dt))
                try:
                    theirs = run_in_peer(key.split(",")[0], path, x, dt, fold=fold)
                except RuntimeError as err:
                    rows[key] = {"error": str(err).strip().splitlines()[-1]}
                    continue
                rows[key] = {"agreement": 1 - _rate(ours, theirs), "rate": float(theirs.mean())}
            out[label] = rows
    return out


def keras_sub(model, name):
    import keras

    return keras.Model(model.inputs, model.get_layer(name).output)


def main():
    if not PEERS_PYTHON.exists():
        raise SystemExit(f"{PEERS_PYTHON} is missing: run benchmarks/run.py once to create it")
    subprocess.run(
        [str(PEERS_PYTHON), __file__, "peer-fixtures", str(FIXTURES)], check=True, env=_peer_env()
    )
    rng = np.random.default_rng(0)
    results = {"mismatch_vs_nir": measure_mismatch(rng), "lifsg_in_peers": measure_peers(rng)}
    (FIXTURES / "agreement.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    p = sub.add_parser("peer-fixtures", help="(peers' venv) write the peers' fixtures")
    p.add_argument("out")
    p = sub.add_parser("peer-run", help="(peers' venv) run a NIR file in a peer")
    p.add_argument("peer", choices=["snntorch", "norse"])
    p.add_argument("graph")
    p.add_argument("inputs")
    p.add_argument("dt", type=float)
    p.add_argument("out")
    p.add_argument("--fold-r", action="store_true", help="move r into the Affine (Norse)")
    args = parser.parse_args()
    if args.command == "peer-fixtures":
        peer_fixtures(args.out)
    elif args.command == "peer-run":
        peer_run(args.peer, args.graph, args.inputs, args.dt, args.out, args.fold_r)
    else:
        main()
