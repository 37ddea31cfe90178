"""lifsg: leaky-integrate-and-fire neurons with surrogate gradients for Keras 3.

Gerum & Schilling, Neural Computation 33(10), 2021. See README.md.
"""

from lifsg import neuron, reference, surrogates
from lifsg.encoders import ConstantEncoder, LatencyEncoder, PoissonEncoder
from lifsg.layers import LIF, DenseLIF, LeakyReadout, UnitInterval

__version__ = "0.1.0"

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
