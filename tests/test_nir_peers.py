"""lifsg.nir and the peers: graphs that snnTorch and Norse wrote (tests/fixtures/nir, made by
benchmarks/make_nir_fixtures.py) and, where benchmarks/.venv-peers exists, lifsg's exports run
in them."""

import importlib.util

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the optional extra lifsg[nir] is not installed")

import keras  # noqa: E402
from test_nir import REPO, channels_first, dense_model, layer_outputs, spikes_in  # noqa: E402

from lifsg import nir as lnir  # noqa: E402

FIXTURES = REPO / "tests" / "fixtures" / "nir"
PEERS_PYTHON = REPO / "benchmarks" / ".venv-peers" / "bin" / "python"
needs_peers = pytest.mark.skipif(
    not PEERS_PYTHON.exists(),
    reason="benchmarks/.venv-peers (snnTorch, Norse) is absent; benchmarks/run.py creates it",
)


def _fixture(name):
    graph = nir.read(FIXTURES / f"{name}.nir")
    data = np.load(FIXTURES / f"{name}.npz")
    spikes = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("spikes/")}
    return graph, data["inputs"].astype("float64"), float(data["dt"]), spikes, data


def _norse_time_constants(graph, dt):
    """Norse 1.1.0 writes tau = dt / tau_mem_inv (norse/norse#411); NIR's tau is 1 / tau_mem_inv."""
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.tau = node.tau / dt
    return graph


@pytest.mark.parametrize("name", ["snntorch_dense", "snntorch_conv", "norse_dense"])
def test_peer_graphs_import_with_the_peers_spikes(name):
    graph, x, dt, spikes, _ = _fixture(name)
    if name.startswith("norse"):
        with pytest.raises(ValueError, match="dt / tau must lie in"):
            lnir.from_nir(graph, dt=dt)  # as written, its neurons would blow up
        graph = _norse_time_constants(graph, dt)
    model = lnir.from_nir(graph, dt=dt)
    ours = layer_outputs(model, list(spikes), x.transpose(0, 1, 3, 4, 2) if x.ndim == 5 else x)
    reference = lnir.simulate(graph, x, dt, nodes=list(spikes))
    for layer, theirs in spikes.items():
        assert 0.05 < theirs.mean() < 0.95, f"{name}/{layer}: weak test"
        np.testing.assert_array_equal(channels_first(ours[layer]), theirs, err_msg=layer)
        np.testing.assert_array_equal(reference[layer], theirs, err_msg=layer)


@pytest.mark.parametrize("name", ["snntorch_signed", "norse_signed"])
def test_peer_graphs_with_signed_currents_differ_only_by_the_floor(name):
    graph, x, dt, spikes, _ = _fixture(name)
    if name.startswith("norse"):
        graph = _norse_time_constants(graph, dt)
    first = next(iter(spikes))  # the first spiking layer: its currents are the Affine's
    np.testing.assert_array_equal(lnir.simulate(graph, x, dt, nodes=[first])[first], spikes[first])
    model = lnir.from_nir(graph, dt=dt)
    ours = layer_outputs(model, [first], x)[first]
    affine = graph.nodes[next(src for src, dst in graph.edges if dst == first)]
    currents = x @ affine.weight.T + affine.bias
    clean = np.all(currents >= 0, axis=1)
    same = np.all(ours == spikes[first], axis=1)
    assert same[clean].all() and not same.all()


def test_snntorch_default_leaky_is_not_what_its_export_says():
    """snnTorch writes its default Leaky (subtract reset, one step late) as NIR's reset to 0."""
    *_, spikes, data = _fixture("snntorch_dense")
    default = {k.split("/", 1)[1]: data[k] for k in data.files if k.startswith("default_leaky/")}
    assert set(default) == set(spikes)
    assert any(np.mean(default[k] != spikes[k]) > 0.05 for k in spikes)


def _peers_module():
    spec = importlib.util.spec_from_file_location(
        "make_nir_fixtures", REPO / "benchmarks" / "make_nir_fixtures.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@needs_peers
def test_lifsg_exports_run_in_snntorch_and_norse(tmp_path, rng):
    peers = _peers_module()
    model = keras.Model(*(lambda m: (m.inputs, m.get_layer("h2").output))(dense_model()))
    x = spikes_in(rng, (16, 30, 6)).astype("float32")
    ours = np.asarray(model(x))
    assert 0.05 < ours.mean() < 0.95
    path = tmp_path / "snntorch.nir"
    nir.write(path, lnir.to_nir(model, dt=peers.SNNTORCH_DT))
    np.testing.assert_array_equal(peers.run_in_peer("snntorch", path, x, peers.SNNTORCH_DT), ours)
    path = tmp_path / "norse.nir"
    graph = lnir.to_nir(model, dt=peers.NORSE_DT)
    nir.write(path, graph)
    # Norse ignores r: it runs the graph as NIR would with r = 1 ...
    norse = peers.run_in_peer("norse", path, x, peers.NORSE_DT)
    for node in graph.nodes.values():
        if isinstance(node, nir.LIF):
            node.r = np.ones_like(node.r)
    np.testing.assert_array_equal(norse, lnir.simulate(graph, x, peers.NORSE_DT)["output"])
    assert not np.array_equal(norse, ours)
    # ... and gives lifsg's spikes once r sits in the Affine before each neuron.
    folded = peers.run_in_peer("norse", path, x, peers.NORSE_DT, fold=True)
    np.testing.assert_array_equal(folded, ours)
