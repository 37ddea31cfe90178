"""lifsg.nir: the mapping to NIR, file round trips, NIR's own equations, clear errors, JAX.

The peers' graphs (snnTorch, Norse): test_nir_peers.py."""

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

nir = pytest.importorskip("nir", reason="the optional extra lifsg[nir] is not installed")

import keras  # noqa: E402

import lifsg  # noqa: E402
from lifsg import nir as lnir  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _uniform(high):
    return keras.initializers.RandomUniform(0.0, high)


def dense_model(dtype="float32", reset="delayed", trainable_threshold=False):
    """6 inputs -> DenseLIF(5) -> DenseLIF(4, leaks with zeros) -> LeakyReadout(3, softmax)."""
    keras.utils.set_random_seed(3)
    kw = dict(dtype=dtype, reset=reset, trainable_threshold=trainable_threshold)
    x = inputs = keras.Input((None, 6))
    x = lifsg.DenseLIF(5, kernel_initializer=_uniform(0.5), name="h1", **kw)(x)
    x = lifsg.DenseLIF(
        4, kernel_initializer=_uniform(0.6), w_leak=[0.0, 0.1, 0.3, 0.0], name="h2", **kw
    )(x)
    x = lifsg.LeakyReadout(
        3,
        kernel_initializer=_uniform(0.5),
        w_leak=0.05,
        activation="softmax",
        name="readout",
        dtype=dtype,
    )(x)
    return keras.Model(inputs, x, name="dense")


def conv_model(dtype="float32"):
    """(time, 8, 8, 2) -> Conv2D(3) -> LIF -> AvgPool(2) -> flatten -> DenseLIF(5) -> read-out."""
    keras.utils.set_random_seed(4)
    td = keras.layers.TimeDistributed
    x = inputs = keras.Input((None, 8, 8, 2))
    conv = keras.layers.Conv2D(3, 3, padding="same", kernel_initializer=_uniform(0.2), dtype=dtype)
    x = td(conv, name="conv", dtype=dtype)(x)
    x = lifsg.LIF(trainable_threshold=True, threshold=0.8, name="lif_conv", dtype=dtype)(x)
    x = td(keras.layers.AveragePooling2D(2, dtype=dtype), name="pool", dtype=dtype)(x)
    x = keras.layers.Reshape((-1, 48), name="flatten", dtype=dtype)(x)
    x = lifsg.DenseLIF(5, kernel_initializer=_uniform(0.15), name="h", dtype=dtype)(x)
    x = lifsg.LeakyReadout(
        4, kernel_initializer=_uniform(0.4), reduce=None, name="readout", dtype=dtype
    )(x)
    return keras.Model(inputs, x, name="conv")


def spikes_in(rng, shape, p=0.3):
    return (rng.random(shape) < p).astype("float64")


def layer_outputs(model, names, x):
    sub = keras.Model(model.inputs[0], [model.get_layer(n).output for n in names])
    out = sub(x)
    out = out if isinstance(out, (list, tuple)) else [out]
    return {n: np.asarray(keras.ops.convert_to_numpy(v)) for n, v in zip(names, out)}


def channels_first(a):
    return a.transpose(0, 1, 4, 2, 3) if a.ndim == 5 else a


def export(model, dt=1e-3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reset warnings have their own test
        return lnir.to_nir(model, dt=dt)


# ----------------------------------------------------------------------------- the mapping


def test_lif_maps_to_forward_euler_of_nirs_lif():
    dt, layer = 2e-3, lifsg.LIF(w_leak=[0.1, 0.25, 0.5], threshold=0.7)
    model = keras.Sequential([keras.Input((None, 3)), layer])
    node = lnir.to_nir(model, dt=dt).nodes[layer.name]
    w = layer.w_leak.numpy().astype("float64")
    assert isinstance(node, nir.LIF)
    np.testing.assert_allclose(node.tau, dt / w)
    np.testing.assert_allclose(node.r, 1 / w)
    assert np.all(node.v_leak == 0) and np.all(node.v_reset == 0)
    np.testing.assert_array_equal(node.v_threshold, [0.7] * 3)
    # One Euler step of tau dv/dt = (v_leak - v) + r I is lifsg's (1 - w_leak) V + x.
    v, current = np.array([0.3, 0.6, 0.2]), np.array([0.4, 0.1, 0.7])
    euler = v + dt / node.tau * (node.v_leak - v + node.r * current)
    np.testing.assert_allclose(euler, (1 - w) * v + current, rtol=1e-12)


def test_zero_leaks_map_to_if_and_i_with_r_one_over_dt():
    dt = 1e-3
    model = keras.Sequential(
        [keras.Input((None, 4)), lifsg.LIF(w_leak=0.0), lifsg.LeakyReadout(2, w_leak=0.0)]
    )
    graph = lnir.to_nir(model, dt=dt)
    lif, readout = (graph.nodes[layer.name] for layer in model.layers)
    assert isinstance(lif, nir.IF) and isinstance(readout, nir.I)
    # dv/dt = r I for one step dt adds dt r I = I, as lifsg's perfect integrator does.
    np.testing.assert_allclose(lif.r * dt, 1.0)
    np.testing.assert_allclose(readout.r * dt, 1.0)


def test_leaky_layer_with_some_zero_leaks_uses_the_stand_in_and_keeps_the_exact_leak():
    graph = export(dense_model())
    h2 = graph.nodes["h2"]
    np.testing.assert_allclose(h2.tau, 1e-3 / np.array([lnir.ZERO_LEAK, 0.1, 0.3, lnir.ZERO_LEAK]))
    np.testing.assert_array_equal(h2.metadata["lifsg_w_leak"], np.float32([0, 0.1, 0.3, 0]))
    assert "V_t >= threshold" in h2.metadata["lifsg_update"]


def test_graph_structure_and_metadata():
    graph = export(dense_model(), dt=5e-4)
    assert list(graph.nodes) == [
        "input", "h1_affine", "h1", "h2_affine", "h2",
        "readout_affine", "readout", "output",
    ]  # fmt: skip
    names = list(graph.nodes)
    assert graph.edges == list(zip(names, names[1:]))
    assert graph.metadata["lifsg_dt"] == 5e-4
    config = json.loads(graph.nodes["h1"].metadata["lifsg_config"])
    assert config["class_name"] == "DenseLIF" and config["config"]["reset"] == "delayed"
    model = dense_model()
    np.testing.assert_array_equal(
        graph.nodes["h1_affine"].weight, model.get_layer("h1").kernel.numpy().T
    )


# ----------------------------------------------------------------------------- round trips


def _assert_same_model(a, b, x):
    assert a.name == b.name
    assert [type(la) for la in a.layers] == [type(lb) for lb in b.layers]
    for la, lb in zip(a.layers[1:], b.layers[1:]):
        as_json = [json.loads(json.dumps(layer.get_config())) for layer in (la, lb)]
        assert as_json[0] == as_json[1], la.name  # tuples come back as lists, as in .keras
        for wa, wb in zip(la.weights, lb.weights):
            assert wa.dtype == wb.dtype
            np.testing.assert_array_equal(wa.numpy(), wb.numpy(), err_msg=wa.path)
    np.testing.assert_array_equal(np.asarray(a(x)), np.asarray(b(x)))


ROUND_TRIPS = {  # seconds each: "dense" and "conv" in the quick run
    "dense": dense_model,
    "conv": conv_model,
    "float64": lambda: dense_model("float64"),
    "trainable-threshold": lambda: dense_model(trainable_threshold=True),
    "subtract": lambda: dense_model(reset="subtract"),
    "zero": lambda: dense_model(reset="zero"),
}


@pytest.mark.parametrize(
    "name",
    [n if n in ("dense", "conv") else pytest.param(n, marks=pytest.mark.slow) for n in ROUND_TRIPS],
)
def test_file_round_trip_is_bit_exact(name, tmp_path, rng):
    model = ROUND_TRIPS[name]()
    path = tmp_path / "model.nir"
    nir.write(path, export(model, dt=1e-3))
    back = lnir.from_nir(path)
    shape = (3, 7, *model.inputs[0].shape[2:])
    x = rng.uniform(0, 1, shape).astype(model.inputs[0].dtype)
    _assert_same_model(model, back, x)


@keras.saving.register_keras_serializable(package="lifsg_tests")
class FlavouredLIF(lifsg.LIF):
    """A LIF with a config key lifsg.nir does not know (like another engineer's new option)."""

    def __init__(self, flavour="plain", **kwargs):
        super().__init__(**kwargs)
        self.flavour = flavour

    def get_config(self):
        return {**super().get_config(), "flavour": self.flavour}


def test_unknown_config_keys_survive_the_round_trip(tmp_path):
    layer = FlavouredLIF(flavour="events", w_leak=0.2)
    model = keras.Sequential([keras.Input((None, 3)), layer])
    nir.write(tmp_path / "m.nir", lnir.to_nir(model))
    assert lnir.from_nir(tmp_path / "m.nir").layers[-1].flavour == "events"


def test_edited_node_is_refused(tmp_path):
    graph = export(dense_model())
    graph.nodes["h1"].tau = graph.nodes["h1"].tau * 2
    with pytest.raises(ValueError, match="'h1'.*'tau' no longer matches"):
        lnir.from_nir(graph)


def test_lifsg_graph_keeps_its_dt():
    graph = export(dense_model(), dt=1e-3)
    assert lnir.from_nir(graph, dt=1e-3).name == "dense"
    with pytest.raises(ValueError, match="exported by lifsg at dt=0.001"):
        lnir.from_nir(graph, dt=1e-4)


# ----------------------------------------------------------------------------- NIR's equations


@pytest.mark.parametrize("kind", ["dense", "conv", "integrators"])
def test_nir_equations_reproduce_lifsg_on_non_negative_currents(kind, rng):
    """lifsg.nir.simulate reads only NIR fields; lifsg's spikes and read-out come out."""
    if kind == "conv":
        model, names = conv_model("float64"), ["lif_conv", "h", "readout"]
    elif kind == "dense":
        model, names = dense_model("float64"), ["h1", "h2"]
    else:
        keras.utils.set_random_seed(5)
        model = keras.Sequential(
            [
                keras.Input((None, 6)),
                lifsg.DenseLIF(5, w_leak=0.0, kernel_initializer=_uniform(0.4), dtype="float64"),
                lifsg.LeakyReadout(2, reduce=None, kernel_initializer=_uniform(1), dtype="float64"),
            ]
        )
        names = [layer.name for layer in model.layers]
    x = spikes_in(rng, (8, 30, *model.inputs[0].shape[2:]))
    graph = export(model)
    ours = layer_outputs(model, names, x)
    theirs = lnir.simulate(graph, channels_first(x), 1e-3, nodes=names)
    for name in names:
        a, b = channels_first(ours[name]), theirs[name]
        if isinstance(graph.nodes[name], (nir.LIF, nir.IF)):
            assert 0.05 < a.mean() < 0.95, f"{name}: spike rate {a.mean()} makes a weak test"
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12, err_msg=name)
    if kind == "dense":  # the read-out: lifsg's softmax of the NIR graph's last potential
        v = lnir.simulate(graph, x, 1e-3)["output"][:, -1]
        probs = np.exp(v) / np.exp(v).sum(axis=1, keepdims=True)
        np.testing.assert_allclose(np.asarray(model(x)), probs, rtol=1e-9)


def test_signed_currents_meet_the_relu_floor(rng):
    """Documented, not hidden: with negative currents NIR's potential goes below lifsg's 0."""
    layer = lifsg.DenseLIF(8, w_leak=0.1)
    model = keras.Sequential([keras.Input((None, 6)), layer])
    kernel = np.concatenate([rng.uniform(0, 0.5, (6, 4)), rng.normal(0.1, 0.6, (6, 4))], axis=1)
    layer.set_weights([kernel, np.zeros(8), np.full(8, 0.1)])
    x = spikes_in(rng, (16, 40, 6), p=0.4)
    ours = np.asarray(model(x))
    theirs = lnir.simulate(export(model), x, 1e-3)["output"]
    clean = np.all(x @ kernel >= 0, axis=1)  # (sample, unit) pairs never fed a negative current
    same = np.all(ours == theirs, axis=1)
    assert clean[:, :4].all() and not clean[:, 4:].all()
    assert same[clean].all()
    assert not same[~clean].all()


def test_simulate_checks_its_input():
    graph = export(dense_model())
    with pytest.raises(ValueError, match=r"inputs must be \(batch, time, \*\(6,\)\)"):
        lnir.simulate(graph, np.zeros((2, 5, 7)), 1e-3)
    with pytest.raises(ValueError, match="no nodes"):
        lnir.simulate(graph, np.zeros((2, 5, 6)), 1e-3, nodes=["nope"])


# ----------------------------------------------------------------------------- clear errors


def _branching():
    x = inputs = keras.Input((None, 4))
    a = lifsg.LIF(name="a")(x)
    b = lifsg.LIF(name="b")(x)
    return keras.Model(inputs, keras.layers.Add()([a, b]))


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: keras.Sequential(
                [keras.Input((28, 28)), lifsg.PoissonEncoder(5, name="enc"), lifsg.DenseLIF(3)]
            ),
            r"'enc' \(PoissonEncoder\).*keras.Model\(model.get_layer\('enc'\).output",
        ),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((None, 8, 8, 1)),
                    keras.layers.TimeDistributed(keras.layers.MaxPooling2D(2), name="mp"),
                ]
            ),
            "'mp'.*no max pooling",
        ),
        (
            lambda: keras.Sequential(
                [
                    keras.Input((None, 8, 8, 1)),
                    keras.layers.TimeDistributed(
                        keras.layers.Conv2D(2, 3, strides=2, padding="same"), name="c"
                    ),
                ]
            ),
            "'c'.*pads asymmetrically",
        ),
        (
            lambda: keras.Sequential(
                [keras.Input((None, 3)), lifsg.LIF(return_potential=True, name="v")]
            ),
            "'v'.*return_potential",
        ),
        (
            lambda: keras.Sequential(
                [keras.Input((None, 3)), keras.layers.Dense(2, activation="relu", name="d")]
            ),
            "'d'.*no activation",
        ),
        (
            lambda: keras.Sequential([keras.Input((None, 3)), keras.layers.LSTM(2, name="l")]),
            r"'l' \(LSTM\): no NIR equivalent",
        ),
        (_branching, "does not take the previous layer's output"),
    ],
    ids=["encoder", "maxpool", "same-stride-2", "potential", "activation", "lstm", "branch"],
)
def test_unsupported_layers_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        lnir.to_nir(make())


def test_reset_rules_nir_lacks_warn():
    model = keras.Sequential([keras.Input((None, 3)), lifsg.LIF(reset="subtract", name="s")])
    with pytest.warns(UserWarning, match="'s': reset 'subtract' has no NIR equivalent"):
        lnir.to_nir(model)


@pytest.mark.parametrize("dt", [0, -1e-3, float("nan"), "1e-3", True])
def test_bad_dt(dt):
    model = keras.Sequential([keras.Input((None, 3)), lifsg.LIF()])
    with pytest.raises((TypeError, ValueError), match="dt must be"):
        lnir.to_nir(model, dt=dt)


def _foreign(neuron):
    n = neuron.v_threshold.shape[0] if hasattr(neuron, "v_threshold") else neuron.r.shape[0]
    nodes = {
        "input": nir.Input(input_type=np.array([3])),
        "fc": nir.Affine(weight=np.ones((n, 3)), bias=np.zeros(n)),
        "neuron": neuron,
        "output": nir.Output(output_type=np.array([n])),
    }
    return nir.NIRGraph(
        nodes=nodes, edges=[("input", "fc"), ("fc", "neuron"), ("neuron", "output")]
    )


def test_foreign_graph_errors():
    ones = np.ones(2)
    lif = nir.LIF(tau=ones * 0.01, r=ones, v_leak=ones * 0, v_threshold=ones)
    with pytest.raises(ValueError, match="NIR stores no time step"):
        lnir.from_nir(_foreign(lif))
    with pytest.raises(ValueError, match="dt / tau must lie in"):
        lnir.from_nir(_foreign(lif), dt=0.1)
    leaky = nir.LIF(tau=ones * 0.01, r=ones, v_leak=ones * 0.2, v_threshold=ones)
    with pytest.raises(ValueError, match="node 'neuron' \\(LIF\\).*v_leak"):
        lnir.from_nir(_foreign(leaky), dt=1e-3)
    cuba = nir.CubaLIF(tau_syn=ones, tau_mem=ones, r=ones, v_leak=ones * 0, v_threshold=ones)
    with pytest.raises(ValueError, match="node 'neuron': NIR CubaLIF has no lifsg equivalent"):
        lnir.from_nir(_foreign(cuba), dt=1e-3)


def test_foreign_gain_and_thresholds_fold_into_the_weights(rng):
    """NIR LIF with r != 1/w and per-neuron thresholds: same spikes as NIR's equations."""
    tau, r, v_th = np.array([0.01, 0.02]), np.array([2.0, 0.5]), np.array([0.5, 1.5])
    graph = _foreign(nir.LIF(tau=tau, r=r, v_leak=np.zeros(2), v_threshold=v_th))
    model = lnir.from_nir(graph, dt=1e-3)
    np.testing.assert_allclose(model.get_layer("neuron").w_leak.numpy(), 1e-3 / tau, rtol=1e-6)
    x = spikes_in(rng, (6, 40, 3))
    want = lnir.simulate(graph, x, 1e-3)["output"]
    assert 0.05 < want.mean() < 0.95
    np.testing.assert_array_equal(np.asarray(model(x)), want)


# ----------------------------------------------------------------------------- JAX

JAX_SCRIPT = r"""
import io, sys, numpy as np, keras, nir
sys.path.insert(0, sys.argv[1])
from test_nir import dense_model
from lifsg import nir as lnir
model = dense_model()
buffer = io.BytesIO()
nir.write(buffer, lnir.to_nir(model))
buffer.seek(0)
back = lnir.from_nir(nir.read(buffer))
x = (np.random.default_rng(0).random((2, 9, 6)) < 0.3).astype("float32")
assert np.array_equal(np.asarray(model(x)), np.asarray(back(x)))
print("ok", keras.backend.backend())
"""


@pytest.mark.slow
def test_round_trip_on_jax():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax")
    out = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT, str(Path(__file__).parent)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().endswith("ok jax")
