"""Spike counts and SynOps on tiny networks whose spikes and fan-outs are known by hand.

With ``w_leak=0`` and threshold 1, a LIF fed the currents 0 or 1.5 spikes exactly where the
current is 1.5 (the potential is at least 1.5 there, and 0 at the next step without input).
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import lifsg
from lifsg import metrics, studies
from lifsg.data.synthetic import synthetic_digits

ON = 1.5


def _lif(name):
    return lifsg.LIF(w_leak=0.0, trainable_leak=False, name=name)


def _const(value):
    return keras.initializers.Constant(value)


def _by_layer(rows):
    return {row["layer"]: row for row in rows}


@pytest.fixture
def currents(rng):
    """(6 images, 4 steps, 3 neurons) of currents 0 or ON."""
    return np.where(rng.random((6, 4, 3)) < 0.4, ON, 0.0).astype("float32")


def _dense_model():
    inputs = keras.Input((4, 3))
    x = _lif("a")(inputs)
    x = keras.layers.Dense(5, kernel_initializer="zeros", bias_initializer=_const(ON), name="d")(x)
    x = _lif("b")(x)  # current ON everywhere: 5 neurons spike at all 4 steps
    outputs = lifsg.LeakyReadout(2, name="out")(x)
    return keras.Model(inputs, outputs)


def test_dense_chain_counts(currents):
    rows = metrics.activity(_dense_model(), currents, batch_size=4)
    assert [r["layer"] for r in rows] == ["a", "b"]
    assert list(rows[0]) == list(metrics.COLUMNS)
    a, b = rows
    spikes_a = (currents == ON).sum() / len(currents)
    assert a["role"] == "hidden" and (a["neurons"], a["steps"]) == (3, 4)
    assert a["spikes_per_image"] == pytest.approx(spikes_a)
    assert a["spikes_per_neuron_step"] == pytest.approx(spikes_a / 12)
    assert a["synops_per_image"] == pytest.approx(5 * spikes_a)
    assert a["dense_macs_per_image"] == 3 * 4 * 5
    assert a["fan_out"] == 5 and a["targets"] == "d"
    assert (b["spikes_per_image"], b["spikes_per_neuron_step"]) == (20, 1)
    assert (b["synops_per_image"], b["dense_macs_per_image"], b["targets"]) == (40, 40, "out")


def test_sequential_model_and_weightless_target(currents):
    model = keras.Sequential([keras.Input((4, 3)), _lif("a"), lifsg.LeakyReadout(name="out")])
    (a,) = metrics.activity(model, currents)
    spikes_a = (currents == ON).sum() / len(currents)
    # a read-out without units has no weights: one addition per spike
    assert a["synops_per_image"] == pytest.approx(spikes_a) and a["dense_macs_per_image"] == 12
    assert a["targets"] == "out" and a["fan_out"] == 1


def test_spikes_that_feed_nothing(currents):
    inputs = keras.Input((4, 3))
    (a,) = metrics.activity(keras.Model(inputs, _lif("a")(inputs)), currents)
    assert a["spikes_per_image"] > 0
    assert (a["synops_per_image"], a["dense_macs_per_image"], a["targets"]) == (0, 0, "")


def test_spiking_encoder_is_the_input_row():
    # factor * dt = 1: a pixel of intensity 1 spikes at every step, 0 never.
    images = np.zeros((2, 2, 3), "float32")
    images[0, 0, :] = 1.0  # 3 white pixels
    images[1, 1, 1] = 1.0  # 1 white pixel
    inputs = keras.Input((2, 3))
    x = lifsg.PoissonEncoder(5, factor=1.0, dt=1.0, seed=0, name="enc")(inputs)
    x = lifsg.DenseLIF(4, kernel_initializer="zeros", name="hidden")(x)
    model = keras.Model(inputs, lifsg.LeakyReadout(3, name="out")(x))
    enc, hidden = metrics.activity(model, images)
    assert (enc["layer"], enc["role"], enc["neurons"], enc["steps"]) == ("enc", "input", 6, 5)
    assert enc["spikes_per_image"] == (3 + 1) * 5 / 2
    assert enc["synops_per_image"] == 4 * enc["spikes_per_image"]
    assert enc["dense_macs_per_image"] == 6 * 5 * 4
    assert hidden["spikes_per_image"] == 0 and hidden["dense_macs_per_image"] == 4 * 5 * 3


def test_constant_encoder_has_no_row():
    inputs = keras.Input((2, 3))
    x = lifsg.ConstantEncoder(3, name="enc")(inputs)
    model = keras.Model(inputs, lifsg.DenseLIF(2, name="hidden")(x))
    assert [r["layer"] for r in metrics.activity(model, np.ones((1, 2, 3)))] == ["hidden"]


def _conv_model(pool=False):
    """(2 steps, 4 x 4 x 1) currents -> LIF -> [2x2 max-pool] -> Conv2D(2, 3, stride 2, same)
    -> LIF (always on) -> Dense(3)."""
    inputs = keras.Input((2, 4, 4, 1))
    x = _lif("spikes")(inputs)
    if pool:
        x = keras.layers.TimeDistributed(keras.layers.MaxPooling2D(2), name="pool")(x)
    conv = keras.layers.Conv2D(
        2, 3, strides=2, padding="same", kernel_initializer="ones", bias_initializer=_const(ON)
    )
    x = keras.layers.TimeDistributed(conv, name="conv")(x)
    x = _lif("conv_lif")(x)
    x = keras.layers.Reshape((2, -1), name="flat")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="dense")(x))


def test_conv_fan_out_counts_stride_and_padding():
    # 4 inputs, kernel 3, stride 2, "same": 2 outputs reading inputs 0-2 and 2-3 (+ a padded
    # zero), so input positions are read [1, 1, 2, 1] times.
    np.testing.assert_array_equal(metrics.axis_cover(4, 3, 2, 1, "same"), [1, 1, 2, 1])
    currents = np.zeros((1, 2, 4, 4, 1), "float32")
    currents[0, 0, 2, 2] = ON  # read by 2 x 2 windows, 2 filters: fan-out 8
    currents[0, 1, 0, 3] = ON  # 1 x 1 windows: fan-out 2
    spikes, conv_lif = metrics.activity(_conv_model(), currents)
    assert spikes["spikes_per_image"] == 2 and spikes["synops_per_image"] == 8 + 2
    assert spikes["dense_macs_per_image"] == 2 * 5 * 5 * 2  # steps x covers x filters
    assert spikes["fan_out"] == 100 / 32 and spikes["targets"] == "conv"
    assert (conv_lif["neurons"], conv_lif["spikes_per_image"]) == (8, 16)
    assert conv_lif["synops_per_image"] == conv_lif["dense_macs_per_image"] == 16 * 3
    assert conv_lif["targets"] == "dense"


def test_pooling_after_spikes_counts_what_arrives():
    currents = np.zeros((1, 2, 4, 4, 1), "float32")
    currents[0, 0, 0:2, 0:2] = ON  # 4 spikes pooled into one input of the conv
    currents[0, 1, 3, 3] = ON
    spikes, _ = metrics.activity(_conv_model(pool=True), currents)
    # pooled map 2 x 2; kernel 3, stride 2, "same" over 2 positions: one output reads both
    assert spikes["spikes_per_image"] == 5
    assert spikes["synops_per_image"] == 2 * 2
    assert spikes["dense_macs_per_image"] == 2 * 4 * 2


@pytest.mark.parametrize(
    "n, kernel, stride, dilation, padding",
    [
        (7, 3, 1, 1, "same"),
        (8, 3, 2, 1, "same"),
        (9, 4, 2, 1, "same"),
        (9, 3, 3, 1, "valid"),
        (10, 3, 1, 2, "same"),
        (10, 3, 1, 2, "valid"),
        (6, 3, 1, 1, "causal"),
        (9, 2, 2, 1, "valid"),
    ],
)
def test_axis_cover_matches_keras(n, kernel, stride, dilation, padding):
    """A one-hot input at i reaches exactly ``cover[i]`` outputs of an all-ones kernel."""
    conv = keras.layers.Conv1D(
        1,
        kernel,
        stride,
        padding,
        dilation_rate=dilation,
        use_bias=False,
        kernel_initializer="ones",
    )
    one_hot = np.eye(n, dtype="float32")[:, :, None]
    reached = np.count_nonzero(keras.ops.convert_to_numpy(conv(one_hot)), axis=(1, 2))
    np.testing.assert_array_equal(metrics.axis_cover(n, kernel, stride, dilation, padding), reached)


def test_spike_trains(currents):
    trains = metrics.spike_trains(_dense_model(), currents, layers=["a"], batch_size=4)
    assert list(trains) == ["a"] and trains["a"].dtype == np.uint8
    np.testing.assert_array_equal(trains["a"], currents == ON)
    conv = metrics.spike_trains(_conv_model(), np.zeros((2, 2, 4, 4, 1)), layers=["conv_lif"])
    assert conv["conv_lif"].shape == (2, 2, 8) and conv["conv_lif"].all()
    with pytest.raises(ValueError, match=r"not spiking layers.*\['d'\]"):
        metrics.spike_trains(_dense_model(), currents, layers=["d"])


@pytest.mark.parametrize(
    "config",
    [
        dict(architecture="dense", encoding="constant", units=(6, 5), steps=3, dt=1.0),
        dict(architecture="dense", encoding="poisson", units=(6,), steps=3, dt=0.5),
        dict(architecture="hybrid", encoding="constant", conv_filters=(2, 3), units=(4,), steps=2),
        dict(architecture="hybrid", encoding="latency", conv_filters=(2,), units=(), steps=3),
        dict(
            architecture="hybrid",
            encoding="constant",
            conv_filters=(2, 3),
            conv_downsample="stride",
            units=(4,),
            steps=2,
            factor=3.0,
            dt=1.0,
        ),
    ],
)
def test_models_of_build_model(config):
    """Every spiking layer gets a row whose numbers agree with its recorded spike trains."""
    model = studies.build_model(studies.RunConfig(**config))
    images = studies.prepare_images(synthetic_digits(5)[0])
    rows = metrics.activity(model, images, batch_size=2)
    names = [layer.name for layer in metrics.spiking_layers(model)]
    assert [r["layer"] for r in rows] == names
    assert (rows[0]["role"] == "input") == (config["encoding"] != "constant")
    trains = metrics.spike_trains(model, images, batch_size=2)
    for row in rows:
        spikes = trains[row["layer"]]
        assert spikes.shape[1:] == (row["steps"], row["neurons"])
        if row["role"] == "hidden" or config["encoding"] == "latency":  # Poisson redraws
            assert row["spikes_per_image"] == pytest.approx(spikes.sum() / len(images))
        assert 0 <= row["synops_per_image"] <= row["dense_macs_per_image"]
    assert rows[-1]["targets"] == "readout"
    assert rows[-1]["synops_per_image"] == pytest.approx(10 * rows[-1]["spikes_per_image"])


def test_errors(currents):
    inputs = keras.Input((4, 3))
    plain = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    with pytest.raises(ValueError, match="no spiking layer"):
        metrics.activity(plain, currents)
    x = _lif("a")(inputs)
    norm = keras.Model(inputs, keras.layers.BatchNormalization(name="bn")(x))
    with pytest.raises(ValueError, match=r"into layer 'bn' \(BatchNormalization\)"):
        metrics.activity(norm, currents)
    merged = keras.Model(inputs, keras.layers.Concatenate(name="cat")([x, inputs]))
    with pytest.raises(ValueError, match="'cat'.*merges several inputs"):
        metrics.activity(merged, currents)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        metrics.activity(_dense_model(), currents, batch_size=0)
    with pytest.raises(ValueError, match="non-empty batch"):
        metrics.activity(_dense_model(), currents[:0])
    with pytest.raises(ValueError, match="built functional or Sequential"):
        metrics.activity(lifsg.LIF(), currents)


def test_potential_output_is_not_spiking():
    inputs = keras.Input((4, 3))
    x = lifsg.LIF(return_potential=True, name="v")(inputs)
    model = keras.Model(inputs, _lif("s")(x))
    assert [layer.name for layer in metrics.spiking_layers(model)] == ["s"]


def test_markdown(currents):
    text = metrics.markdown(metrics.activity(_dense_model(), currents))
    lines = text.splitlines()
    assert len(lines) == 4 and lines[3].startswith("| b (hidden) | 5 x 4 | 20.0 | 1.0000 | 2.0 |")


JAX_SCRIPT = r"""
import json, numpy as np, keras, lifsg
from lifsg import metrics
inputs = keras.Input((2, 4, 4, 1))
x = lifsg.LIF(w_leak=0.0, trainable_leak=False)(inputs)
conv = keras.layers.Conv2D(2, 3, strides=2, padding="same")
x = keras.layers.TimeDistributed(conv)(x)
model = keras.Model(inputs, x)
currents = np.zeros((1, 2, 4, 4, 1), "float32")
currents[0, 0, 2, 2] = currents[0, 1, 0, 3] = 1.5
print(json.dumps(metrics.activity(model, currents)[0]))
"""


@pytest.mark.slow
def test_jax_backend():
    pytest.importorskip("jax")
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run(
        [sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-3000:]
    row = json.loads(out.stdout.strip().splitlines()[-1])
    assert (row["spikes_per_image"], row["synops_per_image"]) == (2, 10)


def test_raster_trains_and_figure(currents):
    from lifsg.figures.activity import raster_figure
    from lifsg.studies.sparsity import raster_trains

    trains = raster_trains(_dense_model(), currents[0])
    assert list(trains) == ["a", "b"] and trains["b"].shape == (4, 5)
    np.testing.assert_array_equal(trains["a"], currents[0] == ON)
    fig, data = raster_figure(trains, max_neurons=4, label="image 0", model_name="m")
    assert [ax.get_title().splitlines()[0] for ax in fig.axes] == [
        "a: 3 neurons",
        "b: random 4 of 5 neurons",
    ]
    assert "of m\nfor image 0" in fig.texts[0].get_text()
    a = np.array(data["layer"]) == "a"
    step, neuron = np.nonzero(currents[0] == ON)
    np.testing.assert_array_equal(np.array(data["step"])[a], step)
    np.testing.assert_array_equal(np.array(data["neuron"])[a], neuron)
    b = ~a  # b spikes at every step: 4 steps x the 4 drawn neurons, rows 0..3
    assert sorted(set(np.array(data["row"])[b])) == [0, 1, 2, 3] and b.sum() == 16
    assert len(set(np.array(data["neuron"])[b])) == 4
    with pytest.raises(ValueError, match=r"one image shaped \(4, 3\)"):
        raster_trains(_dense_model(), currents)
    with pytest.raises(ValueError, match=r"must be \(steps, neurons\)"):
        raster_figure({"a": currents})


def _scaled_model(bias):
    """Images in [0, 1] (4 steps, 3 inputs) x 1.5 -> LIF a -> Dense(5, bias) -> LIF b ->
    read-out: a spikes where the image is 1; b spikes at every step if bias >= 1, never if 0."""
    inputs = keras.Input((4, 3))
    x = _lif("a")(keras.layers.Rescaling(ON)(inputs))
    x = keras.layers.Dense(5, kernel_initializer="zeros", bias_initializer=_const(bias), name="d")(
        x
    )
    x = _lif("b")(x)
    return keras.Model(inputs, lifsg.LeakyReadout(2, name="out")(x))


def test_measure_stored_models_and_results_table(currents, tmp_path):
    from lifsg.figures import activity as activity_figures
    from lifsg.figures import mnist as f6
    from lifsg.studies import sparsity

    images = (currents == ON).astype("uint8") * 255  # prepared to 0 / 1
    for name, bias in (("x_s0", ON), ("x_s1", 0.0), ("y_s0", 0.0)):
        _scaled_model(bias).save(tmp_path / f"{name}.keras")
    record = sparsity.measure(tmp_path, ["x_s0", "x_s1", "y_s0"], images, batch_size=4)
    assert record["images"] == 6 and list(record["models"]) == ["x", "y"]
    assert record["models"]["x"]["run"] == "x_s0"  # the first seed only
    assert record["models"]["x"]["layers"] == metrics.activity(_scaled_model(ON), images / 255)
    spikes_a = (currents == ON).sum() / len(currents)
    # x: a drives Dense(5) (5 x its spikes), b spikes 4 x 5 per image into the read-out (x 2)
    results = [
        {
            "name": name,
            "seed": int(name[-1]),
            "epochs": 1,
            "test_accuracy": 0.5,
            "epoch_time_s": 1.0,
            "config": {
                "architecture": "dense",
                "input_shape": [4, 3],
                "units": [5],
                "classes": 2,
                "encoding": "constant",
                "steps": 4,
                "surrogate": "flat",
                "loss": "mse",
            },
        }
        for name in ("x_s0", "x_s1", "z_s0")
    ]
    rows = f6.results_table(results, activity=record, published=())
    x, z = rows
    assert x["synops_per_image"] == pytest.approx(5 * spikes_a + 20 * 2)
    assert x["dense_macs_per_image"] == 3 * 4 * 5 + 5 * 4 * 2
    assert x["hidden_spikes_per_neuron_step"] == pytest.approx((spikes_a + 20) / (12 + 20))
    assert np.isnan(z["synops_per_image"])  # not measured: no number, not zero
    share = 100 * x["synops_per_image"] / x["dense_macs_per_image"]
    lines = f6.table_markdown(rows).splitlines()
    assert lines[0].endswith(
        "| s / epoch | SynOps / image (of dense MACs) | hidden spikes / neuron / step |"
    )
    assert lines[2].endswith(
        f"| 1 | {x['synops_per_image']:.3g} ({share:.2g} %) | "
        f"{x['hidden_spikes_per_neuron_step']:.3f} |"
    )
    assert lines[3].endswith("| 1 |  |  |")
    studies.write_json(tmp_path / sparsity.ACTIVITY_FILE, record)
    assert studies.results.load_activity(tmp_path) == json.loads(json.dumps(record))
    assert studies.results.load_activity(tmp_path / "absent") is None
    _, data = activity_figures.sparsity_figure(record)
    assert data["model"] == ["x", "x", "y", "y"] and data["layer"] == ["a", "b", "a", "b"]


def test_unknown_time_axis():
    inputs = keras.Input((None, 3))
    model = keras.Model(inputs, keras.layers.Dense(2)(_lif("a")(inputs)))
    with pytest.raises(ValueError, match=r"shape \(None, None, 3\).*must be known"):
        metrics.activity(model, np.zeros((1, 4, 3)))
