"""Data sets for lifsg, read from local files; ``python -m lifsg.data fetch NAME`` downloads them.

Importing this package downloads nothing and needs only numpy.
"""

from .common import DataError
from .fashion_mnist import fetch_fashion_mnist, load_fashion_mnist
from .flowers import fetch_flowers, load_flowers
from .mnist import fetch_mnist, load_mnist

__all__ = [
    "DataError",
    "fetch_fashion_mnist",
    "fetch_flowers",
    "fetch_mnist",
    "load_fashion_mnist",
    "load_flowers",
    "load_mnist",
]
