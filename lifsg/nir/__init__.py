"""NIR interoperability: :func:`to_nir`, :func:`from_nir` and the reference :func:`simulate`.

NIR (the Neuromorphic Intermediate Representation, PyPI ``nir``) describes a network per time
step in continuous time; the file stores no time step. lifsg's discrete neuron is forward Euler
at step ``dt`` of NIR's LIF ``tau dv/dt = (v_leak - v) + r I`` with::

    tau = dt / w_leak     r = 1 / w_leak     v_leak = 0     v_threshold = threshold     v_reset = 0

since one step gives ``v + w_leak (-v + I / w_leak) = (1 - w_leak) v + I``. A layer whose leaks
are all 0 becomes NIR's IF ``dv/dt = r I`` with ``r = 1 / dt`` (one Euler step adds ``dt r I =
I``); a leaky layer's units with leak exactly 0 get the stand-in leak :data:`ZERO_LEAK` (NIR's
LIF has no exact perfect integrator). The read-out maps the same way to LI (or I).

lifsg's delayed reset equals NIR's reset to ``v_reset = 0`` in the step of the spike. What NIR
cannot express: the ReLU floor (V >= 0; only matters for negative currents), the spike at
``V >= threshold`` (NIR: ``v > v_threshold``; only matters at exact equality), the "subtract"
and "zero" resets (exported as NIR's reset, with a warning), and the read-out's reduction over
time and activation (the NIR graph outputs the potential at every step). lifsg's exact rules
and the exact leaks travel in each node's ``metadata``, so lifsg -> file -> lifsg is bit-exact.

Layout: NIR nodes act on one time step of one sample: a feature vector ``(F,)`` or an image
``(C, H, W)`` (channels first, as in PyTorch); lifsg tensors are ``(batch, time, F)`` or
``(batch, time, H, W, C)``. Convolutional models therefore take ``(batch, time, C, H, W)``
in :func:`simulate`, and Affine weights after a Flatten are permuted to NIR's order.

Needs the optional dependency ``nir`` (``pip install "lifsg[nir]"``).

Modules: :mod:`~lifsg.nir.export` (:func:`to_nir`), :mod:`~lifsg.nir.importing`
(:func:`from_nir`; lifsg's own graphs), :mod:`~lifsg.nir.foreign` (other graphs, by NIR's
equations), :mod:`~lifsg.nir.simulation` (:func:`simulate`), :mod:`~lifsg.nir.layout` (per-step
shapes in Keras and NIR order).
"""

try:
    import nir  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError('lifsg.nir needs the optional package nir: pip install "lifsg[nir]"') from err

from lifsg.nir.export import ZERO_LEAK, to_nir
from lifsg.nir.importing import from_nir
from lifsg.nir.simulation import simulate

__all__ = ["ZERO_LEAK", "from_nir", "simulate", "to_nir"]
