"""lifsg: leaky-integrate-and-fire neurons with surrogate gradients for Keras 3.

Gerum & Schilling, Neural Computation 33(10), 2021. See README.md; the model is described in
docs/model.md.

``import lifsg`` is light: it imports neither Keras nor TensorFlow. The layers
(``lifsg.LIF``, ``lifsg.DenseLIF``, ...) and every submodule (``lifsg.data``,
``lifsg.surrogates``, ``lifsg.studies``, ...) are imported on first attribute access, so
``import lifsg.data`` and ``python -m lifsg.data`` need only numpy.

Stored models still load right after ``import lifsg``: Keras resolves the names ``lifsg>LIF``
etc. from its registry of custom objects, so lifsg registers its Keras classes as soon as
Keras is imported (at once if Keras was imported before lifsg, otherwise by a one-shot import
hook that runs right after ``import keras`` completes).
"""

import importlib
import importlib.abc
import importlib.util
import pkgutil
import sys

__version__ = "0.1.0"

# Public class -> the submodule that defines it.
_EXPORTS = {
    "LIF": "layers",
    "DenseLIF": "layers",
    "LeakyReadout": "layers",
    "UnitInterval": "layers",
    "ConstantEncoder": "encoders",
    "LatencyEncoder": "encoders",
    "PoissonEncoder": "encoders",
}

# Submodules that register classes with Keras (keras.saving.register_keras_serializable).
_KERAS_MODULES = ("surrogates", "layers", "encoders")

__all__ = [
    "LIF",
    "ConstantEncoder",
    "DenseLIF",
    "LatencyEncoder",
    "LeakyReadout",
    "PoissonEncoder",
    "UnitInterval",
    "neuron",
    "reference",
    "surrogates",
]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("_") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    submodules = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}
    return sorted({*globals(), *_EXPORTS, *submodules})


def _register_keras_classes():
    """Import the submodules whose classes Keras must find by registered name."""
    for module in _KERAS_MODULES:
        importlib.import_module(f"{__name__}.{module}")


class _KerasLoader(importlib.abc.Loader):
    """Keras' own loader, followed by the registration of lifsg's classes."""

    def __init__(self, loader):
        self.loader = loader

    def __getattr__(self, name):
        return getattr(self.loader, name)

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.loader
        self.loader.exec_module(module)
        sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _KerasImportHook)]
        _register_keras_classes()


class _KerasImportHook(importlib.abc.MetaPathFinder):
    """Finds ``keras`` with the other finders and wraps its loader in :class:`_KerasLoader`.

    It stays in place until Keras is actually executed: ``importlib.util.find_spec("keras")``
    (an availability check, as TensorFlow makes) also reaches it without importing anything.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        for finder in sys.meta_path:
            if isinstance(finder, _KerasImportHook) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None:
                    spec.loader = _KerasLoader(spec.loader)
                return spec
        return None


if "keras" in sys.modules:
    _register_keras_classes()
elif not any(isinstance(f, _KerasImportHook) for f in sys.meta_path):
    sys.meta_path.insert(0, _KerasImportHook())
