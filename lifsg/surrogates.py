"""Surrogate derivatives for the spike function.

The forward pass of a spike is the Heaviside step ``H(u) = 1 for u >= 0``, with
``u = V - threshold``. In the backward pass ``dH/du`` is replaced by a surrogate
derivative. Each surrogate here exposes that derivative as :meth:`Surrogate.derivative`
(a function of ``u`` in keras.ops), states its peak value and width, and makes a spike
function with that gradient when called: ``surrogates.get("flat")(u)``.

Scaling differs a lot between libraries (the sigmoid surrogate peaks at 6.25 in
snnTorch, 1 in SpikingJelly, 0.25 in the authors' old code); the values here are
stated per class. The paper's four take their width parameter as ``beta``.
"""

import math

import keras
from keras import ops

_REGISTRY = {}


def _register(cls):
    _REGISTRY[cls.name] = cls
    return keras.saving.register_keras_serializable(package="lifsg")(cls)


class Surrogate:
    """Base class: a spike function ``H(u)`` whose backward uses :meth:`derivative`.

    Subclasses set ``name`` and implement ``derivative(u)``, ``peak`` and ``width``.
    """

    name = None

    def derivative(self, u):
        """Surrogate ``dH/du`` at ``u = V - threshold`` (same shape as ``u``)."""
        raise NotImplementedError

    @property
    def peak(self):
        """Largest value of the derivative."""
        raise NotImplementedError

    @property
    def width(self):
        """Half width of the region around ``u = 0`` where the derivative is large."""
        raise NotImplementedError

    def __call__(self, u):
        """Spikes ``H(u)`` (1 where ``u >= 0``) in the dtype of ``u``, surrogate backward."""

        @ops.custom_gradient
        def spike(u):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return upstream * ops.cast(self.derivative(u), upstream.dtype)

            return ops.cast(ops.greater_equal(u, 0), u.dtype), grad

        return spike(u)

    def get_config(self):
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


class _Width(Surrogate):
    """A surrogate with one width parameter ``beta`` (> 0; larger is narrower)."""

    def __init__(self, beta=10.0):
        beta = float(beta)
        if not math.isfinite(beta) or beta <= 0:
            raise ValueError(f"surrogate {self.name!r}: beta must be finite and > 0, got {beta}")
        self.beta = beta

    def get_config(self):
        return {"beta": self.beta}


@_register
class Flat(Surrogate):
    """Constant (straight-through) surrogate, the paper's main method.

    Derivative: 1 everywhere. Peak 1; width infinite. Takes no parameter.
    """

    name = "flat"

    def derivative(self, u):
        return ops.ones_like(u)

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return math.inf


@_register
class SuperSpike(_Width):
    """Fast sigmoid (Zenke & Ganguli 2018): ``1 / (beta*|u| + 1)**2``.

    Peak 1 at ``u = 0``; falls to 1/4 at ``|u| = 1/beta`` (width ``1/beta``).
    """

    name = "superspike"

    def derivative(self, u):
        return 1.0 / ops.square(self.beta * ops.abs(u) + 1.0)

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return 1.0 / self.beta


@_register
class Sigmoid(_Width):
    """Derivative of ``sigmoid(beta*u)``: ``beta * s * (1 - s)``, ``s = sigmoid(beta*u)``.

    Peak ``beta/4`` at ``u = 0`` (2.5 for beta 10); width ``1/beta`` (where it is about 0.79 of
    the peak). The authors' old code forgot the factor beta.
    """

    name = "sigmoid"

    def derivative(self, u):
        s = ops.sigmoid(self.beta * u)
        return self.beta * s * (1.0 - s)

    @property
    def peak(self):
        return self.beta / 4.0

    @property
    def width(self):
        return 1.0 / self.beta


@_register
class Esser(_Width):
    """Triangle (Esser et al. 2016): ``max(0, 1 - beta*|u|)``.

    Peak 1 at ``u = 0``; zero for ``|u| >= 1/beta`` (width ``1/beta``).
    """

    name = "esser"

    def derivative(self, u):
        return ops.maximum(0.0, 1.0 - self.beta * ops.abs(u))

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return 1.0 / self.beta


@_register
class ArcTan(_Width):
    """Arctangent: ``1 / (1 + (pi/2 * beta * u)**2)``, derivative of ``atan(pi/2*beta*u)/pi*2``
    scaled to peak 1.

    Peak 1 at ``u = 0``; half of the peak at ``|u| = 2/(pi*beta)`` (width ``2/(pi*beta)``).
    """

    name = "atan"

    def derivative(self, u):
        return 1.0 / (1.0 + ops.square(0.5 * math.pi * self.beta * u))

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return 2.0 / (math.pi * self.beta)


@_register
class Gaussian(_Width):
    """Gaussian bump: ``exp(-(beta*u)**2 / 2)``.

    Peak 1 at ``u = 0``; standard deviation ``1/beta`` (width ``1/beta``).
    """

    name = "gaussian"

    def derivative(self, u):
        return ops.exp(-0.5 * ops.square(self.beta * u))

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return 1.0 / self.beta


@_register
class Exponential(_Width):
    """Two-sided exponential (Shrestha & Orchard 2018 style): ``exp(-beta*|u|)``.

    Peak 1 at ``u = 0``; falls to 1/e at ``|u| = 1/beta`` (width ``1/beta``).
    """

    name = "exponential"

    def derivative(self, u):
        return ops.exp(-self.beta * ops.abs(u))

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return 1.0 / self.beta


@_register
class Boxcar(_Width):
    """Rectangle: 1 where ``|u| < 1/beta``, else 0.

    Peak 1; width ``1/beta``.
    """

    name = "boxcar"

    def derivative(self, u):
        return ops.cast(ops.less(ops.abs(u), 1.0 / self.beta), u.dtype)

    @property
    def peak(self):
        return 1.0

    @property
    def width(self):
        return 1.0 / self.beta


@keras.saving.register_keras_serializable(package="lifsg")
class Custom(Surrogate):
    """A surrogate from a user callable ``fn(u) -> dH/du`` written in keras.ops.

    ``peak`` and ``width`` are unknown (None). To save a model that uses it, register ``fn``
    with ``keras.saving.register_keras_serializable``.
    """

    name = "custom"

    def __init__(self, fn):
        if isinstance(fn, dict):
            fn = keras.saving.deserialize_keras_object(fn)
        if not callable(fn):
            raise TypeError(f"a custom surrogate must be callable, got {type(fn).__name__}: {fn!r}")
        self.fn = fn

    def derivative(self, u):
        return self.fn(u)

    @property
    def peak(self):
        return None

    @property
    def width(self):
        return None

    def get_config(self):
        return {"fn": keras.saving.serialize_keras_object(self.fn)}


def available():
    """Names of the built-in surrogates, sorted."""
    return sorted(_REGISTRY)


def get(identifier, **params):
    """A :class:`Surrogate` from a name, a Surrogate, a config dict or a callable.

    ``get("superspike", beta=10.0)``; a callable ``fn(u)`` becomes :class:`Custom`. ``beta``
    is the width parameter of the whole family: "flat" (infinite width) accepts and ignores
    it, so ``get(name, beta=b)`` works for every name; ``beta=None`` means the default.
    Unknown names raise ValueError listing the valid ones; other types raise TypeError.
    """
    if isinstance(identifier, Surrogate):
        if params:
            raise ValueError(f"parameters {sorted(params)} given with a Surrogate object")
        return identifier
    if isinstance(identifier, dict):
        return keras.saving.deserialize_keras_object(identifier)
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in _REGISTRY:
            raise ValueError(
                f"unknown surrogate {identifier!r}; valid names: {', '.join(available())}"
            )
        if key == Flat.name or params.get("beta", 0) is None:
            params.pop("beta", None)
        try:
            return _REGISTRY[key](**params)
        except TypeError as err:
            raise ValueError(f"surrogate {key!r} does not take {sorted(params)}: {err}") from None
    if callable(identifier):
        if params:
            raise ValueError(f"parameters {sorted(params)} given with a custom callable")
        return Custom(identifier)
    raise TypeError(
        "a surrogate must be a name, a Surrogate or a callable, "
        f"got {type(identifier).__name__}: {identifier!r}"
    )


def serialize(surrogate):
    """Config entry for a layer: the name for a built-in with default parameters, else a dict."""
    if not isinstance(surrogate, Custom) and surrogate == get(surrogate.name):
        return surrogate.name
    return keras.saving.serialize_keras_object(surrogate)
