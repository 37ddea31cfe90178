"""Per-step layout of NIR graphs against Keras tensors, and the small checks shared by
export, import and simulation (see :mod:`lifsg.nir`)."""

import numpy as np


class Stream:
    """The per-step shape flowing between layers, in Keras (features last) and NIR order.

    shape: Keras per-step shape, ``(F,)`` or ``(H, W, C)``. perm: for flat features, NIR
    position -> Keras index (``nir = keras[perm]``) after a Flatten of an image; else None.
    """

    def __init__(self, shape, perm=None):
        shape = tuple(int(s) for s in shape)
        if len(shape) not in (1, 3) or any(s < 1 for s in shape):
            raise ValueError(
                "NIR export/import supports per-step features (F,) or images (H, W, C) "
                f"(channels last in Keras), got per-step shape {shape}"
            )
        self.shape, self.perm = shape, perm

    @property
    def image(self):
        return len(self.shape) == 3

    @property
    def nir_shape(self):
        return (self.shape[2], self.shape[0], self.shape[1]) if self.image else self.shape

    def to_nir(self, values):
        """Per-feature values (last Keras axis, or a scalar) -> an array of NIR shape."""
        values = np.broadcast_to(np.asarray(values), self.shape[-1:])
        if self.image:
            return np.ascontiguousarray(np.broadcast_to(values[:, None, None], self.nir_shape))
        return values[self.perm] if self.perm is not None else np.array(values)

    def from_nir(self, values, who):
        """An array of NIR shape (or broadcastable) -> per-feature values in Keras order."""
        values = np.broadcast_to(np.asarray(values, dtype="float64"), self.nir_shape)
        if self.image:
            per_channel = values[:, :1, :1]
            if not np.all(values == per_channel):
                raise ValueError(f"{who}: lifsg keeps one value per channel; these vary in space")
            return per_channel[:, 0, 0].copy()
        if self.perm is None:
            return values.copy()
        out = np.empty_like(values)
        out[self.perm] = values
        return out

    def flattened(self):
        """The stream after flattening an image: NIR order (C, H, W), Keras order (H, W, C)."""
        h, w, c = self.shape
        perm = np.arange(h * w * c).reshape(h, w, c).transpose(2, 0, 1).ravel()
        return Stream((h * w * c,), perm)

    def kernel_to_nir(self, kernel):
        """Dense kernel (in, out) on this stream -> NIR weight (out, in)."""
        kernel = np.asarray(kernel)
        return (kernel[self.perm] if self.perm is not None else kernel).T.copy()

    def kernel_from_nir(self, weight):
        """NIR weight (out, in) on this stream -> Dense kernel (in, out)."""
        weight = np.asarray(weight).T
        if self.perm is None:
            return weight.copy()
        out = np.empty_like(weight)
        out[self.perm] = weight
        return out


def check_dt(dt):
    """Raise TypeError/ValueError unless ``dt`` (seconds) is a finite number > 0."""
    if isinstance(dt, bool) or not isinstance(dt, (int, float, np.floating)):
        raise TypeError(f"dt must be a number of seconds > 0, got {dt!r}")
    if not np.isfinite(dt) or dt <= 0:
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt!r}")
    return float(dt)


def f64(value):
    """``value`` as a float64 numpy array."""
    return np.asarray(value, dtype="float64")
