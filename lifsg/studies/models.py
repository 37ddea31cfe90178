"""The network of a :class:`~lifsg.studies.config.RunConfig`: :func:`build_model`.

Every study builds its Keras model here: images (or spike trains) in, class probabilities out,
encoder included, with the LIF network or its ReLU twin (``config.nonlinearity``).
"""

import keras

from .config import validate


def make_encoder(config):
    """The input encoder layer of ``config`` (constant encoding: see :func:`build_model`)."""
    from lifsg import encoders

    if config.encoding == "poisson":
        return encoders.PoissonEncoder(
            config.steps, factor=config.factor, dt=config.dt, seed=config.seed, name="encoder"
        )
    if config.encoding == "latency":
        return encoders.LatencyEncoder(
            config.steps,
            tau=config.latency_tau,
            threshold=config.latency_threshold,
            name="encoder",
        )
    # A constant current is the same at every step, so the (linear) layer that follows it is
    # computed once and repeated over time: mathematically identical, ``steps`` times cheaper.
    return encoders.ConstantEncoder(1, factor=config.factor, dt=config.dt, name="encoder")


def _lif_kwargs(config):
    from lifsg import surrogates

    kwargs = {"surrogate": surrogates.get(config.surrogate, beta=config.beta)}
    if config.w_leak is not None:
        kwargs["w_leak"] = config.w_leak
    return {**kwargs, "trainable_leak": config.trainable_leak}


def _dense_kwargs(config):
    return {"kernel_initializer": config.kernel_initializer, "use_bias": config.use_bias}


def _repeat_time(x, steps, name):
    """(batch, ...features) -> (batch, steps, ...features) with built-in layers only."""
    shape = tuple(x.shape[1:])
    if len(shape) > 1:
        x = keras.layers.Flatten(name=f"{name}_flat")(x)
    x = keras.layers.RepeatVector(steps, name=f"{name}_repeat")(x)
    if len(shape) > 1:
        x = keras.layers.Reshape((steps, *shape), name=f"{name}_unflat")(x)
    return x


def _augment(x, config):
    """Random shifts of training images by up to ``augment_shift`` pixels (identity at test)."""
    shape = tuple(config.input_shape)
    image = shape if len(shape) == 3 else (*shape, 1)
    x = keras.layers.Reshape(image, name="augment_in")(x) if len(shape) == 2 else x
    x = keras.layers.RandomTranslation(
        config.augment_shift / image[0],
        config.augment_shift / image[1],
        fill_mode="constant",
        interpolation="nearest",
        seed=config.seed,
        name="augment",
    )(x)
    return keras.layers.Reshape(shape, name="augment_out")(x) if len(shape) == 2 else x


def build_model(config):
    """A complete, uncompiled Keras model for ``config``: images in [0, 1] -> probabilities.

    Dense: encoder (N, T, 784) -> DenseLIF(u) for u in units -> LeakyReadout(classes,
    "last", softmax); with "spikes" encoding the input (N, T, channels) goes straight to the
    first DenseLIF. Hybrid: encoder -> images per step (N, T, 28, 28, 1) -> for each f in
    conv_filters: Conv2D(f) per step -> LIF (per-channel leak) -> 2x2 max-pool -> flatten ->
    DenseLIF(u) for u in units -> LeakyReadout. With constant-current input the first linear
    layer (Dense or Conv2D) sees the same input at every step; it is applied once and its
    output repeated over the ``steps`` (identical result, less compute). Nonlinearity "relu":
    the same graph and initial weights through :func:`relu_variant`.
    """
    from lifsg import layers

    validate(config)
    keras.utils.set_random_seed(config.seed)
    inputs = keras.Input(shape=tuple(config.input_shape), name="image")
    x = inputs
    if config.augment_shift:
        x = _augment(x, config)
    if config.encoding != "spikes":
        x = make_encoder(config)(x)  # (N, T or 1, features)
    lif = _lif_kwargs(config)
    constant = config.encoding == "constant"
    if config.architecture == "dense":
        first, rest = config.units[0], config.units[1:]
        if constant:
            x = keras.layers.Reshape((x.shape[-1],), name="squeeze_time")(x)
            x = keras.layers.Dense(first, name="dense_0", **_dense_kwargs(config))(x)
            x = _repeat_time(x, config.steps, "dense_0")
            x = layers.LIF(name="lif_0", **lif)(x)
        else:
            x = layers.DenseLIF(first, name="dense_lif_0", **lif, **_dense_kwargs(config))(x)
        for i, units in enumerate(rest, start=1):
            x = layers.DenseLIF(units, name=f"dense_lif_{i}", **lif, **_dense_kwargs(config))(x)
    else:
        shape = tuple(config.input_shape)
        shape = shape if len(shape) == 3 else (*shape, 1)
        k, stride = config.conv_kernel, 2 if config.conv_downsample == "stride" else 1
        for i, filters in enumerate(config.conv_filters):
            conv = keras.layers.Conv2D(
                filters,
                k,
                strides=stride,
                padding="same",
                name=f"conv_{i}",
                **_dense_kwargs(config),
            )
            pool = keras.layers.MaxPooling2D(2, name=f"pool_{i}")

            def block(x, conv=conv, pool=pool):
                x = conv(x)
                return pool(x) if config.conv_downsample == "pool" else x

            if i == 0 and constant:
                x = keras.layers.Reshape(shape, name="to_image")(x)
                x = _repeat_time(block(x), config.steps, "conv_0")
            else:
                if i == 0:
                    x = keras.layers.Reshape((config.steps, *shape), name="to_image")(x)
                x = keras.layers.TimeDistributed(conv, name=f"td_conv_{i}")(x)
                if config.conv_downsample == "pool":
                    x = keras.layers.TimeDistributed(pool, name=f"td_pool_{i}")(x)
            x = layers.LIF(name=f"lif_conv_{i}", **lif)(x)
        x = keras.layers.Reshape((config.steps, -1), name="flatten")(x)
        for i, units in enumerate(config.units):
            x = layers.DenseLIF(units, name=f"dense_lif_{i}", **lif, **_dense_kwargs(config))(x)
    leak = {}
    if config.readout_leak is not None:
        leak = {"w_leak": config.readout_leak, "trainable_leak": False}
    outputs = layers.LeakyReadout(
        config.classes,
        reduce="last",
        activation="softmax",
        bias_initializer=keras.initializers.Constant(config.readout_bias),
        name="readout",
        **leak,
    )(x)
    model = keras.Model(inputs, outputs, name=f"{config.architecture}_{config.name}")
    return model if config.nonlinearity == "lif" else relu_variant(model)


def relu_variant(model):
    """The same functional model with each LIF replaced by ReLU and each DenseLIF by Dense +
    ReLU; all other layers are cloned and every weight they share is copied (same start)."""
    from lifsg.layers import LIF, DenseLIF

    def swap(layer):
        name = layer.name.replace("lif", "relu")
        if isinstance(layer, DenseLIF):
            dense = keras.layers.Dense(layer.units, use_bias=layer.use_bias, name=f"{name}_dense")
            return keras.Sequential([dense, keras.layers.ReLU(name=f"{name}_act")], name=name)
        if isinstance(layer, LIF):
            return keras.layers.ReLU(name=name)
        return layer.__class__.from_config(layer.get_config())

    twin = keras.models.clone_model(model, clone_function=swap)
    for layer in model.layers:
        if not layer.weights:
            continue
        if isinstance(layer, DenseLIF):
            dense = twin.get_layer(layer.name.replace("lif", "relu")).layers[0]
            weights = [layer.kernel] + ([layer.bias] if layer.use_bias else [])
            dense.set_weights([keras.ops.convert_to_numpy(w) for w in weights])
        elif not isinstance(layer, LIF):
            twin.get_layer(layer.name).set_weights(layer.get_weights())
    return twin


def compile_model(model, config):
    """Compile with Adam and the configured loss (targets are one-hot)."""
    loss = "mean_squared_error" if config.loss == "mse" else "categorical_crossentropy"
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=loss,
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    return model
