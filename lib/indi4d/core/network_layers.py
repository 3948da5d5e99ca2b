"""The custom Keras layers and initialiser of the InDI U-Net (:mod:`indi4d.core.model`).

All are registered with Keras (package ``indi4d``), so a ``model.keras`` that
holds them loads once this module is imported (:mod:`indi4d.core.model` imports it).
"""

import math

import keras
from keras import layers, ops


@keras.saving.register_keras_serializable(package="indi4d")
class ICNR(keras.initializers.Initializer):
    """ICNR initialiser for a convolution followed by depth-to-space.

    Draws a kernel for ``C = filters / scale**2`` output channels and repeats it
    for each of the ``scale**2`` sub-pixel positions. After
    ``depth_to_space(scale)`` every output pixel of a ``scale x scale`` block
    then gets the same value: the layer starts as convolution + nearest-neighbour
    up-sampling (Aitken et al. 2017, "Checkerboard artifact free sub-pixel
    convolution").

    Parameters
    ----------
    scale : int
        The depth-to-space block size.
    initializer : str or keras.initializers.Initializer
        Draws the base kernel.
    seed : int, optional
        Seed of the base initialiser.
    """

    def __init__(self, scale=2, initializer="glorot_uniform", seed=None):
        self.scale = int(scale)
        self.initializer = keras.initializers.get(initializer)
        if seed is not None and hasattr(self.initializer, "seed"):
            self.initializer.seed = seed
        self.seed = seed

    def __call__(self, shape, dtype=None):
        kh, kw, c_in, c_out = shape
        n = self.scale**2
        if c_out % n:
            raise ValueError(f"ICNR: {c_out} output channels are not a multiple of scale**2 = {n}")
        base = self.initializer((kh, kw, c_in, c_out // n), dtype=dtype)
        # depth_to_space reads channel (dy * scale + dx) * C + c for sub-pixel (dy, dx):
        # tiling the base kernel scale**2 times gives all sub-pixels channel c's kernel.
        return ops.tile(base, (1, 1, 1, n))

    def get_config(self):
        return {
            "scale": self.scale,
            "initializer": keras.initializers.serialize(self.initializer),
            "seed": self.seed,
        }


@keras.saving.register_keras_serializable(package="indi4d")
class DepthToSpace(layers.Layer):
    """Pixel shuffle: ``(B, H, W, C * s**2) -> (B, s H, s W, C)``."""

    def __init__(self, block_size=2, **kwargs):
        super().__init__(**kwargs)
        self.block_size = int(block_size)

    def call(self, x):
        return ops.depth_to_space(x, self.block_size)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        s = self.block_size
        return (b, None if h is None else h * s, None if w is None else w * s, c // (s * s))

    def get_config(self):
        return {**super().get_config(), "block_size": self.block_size}


@keras.saving.register_keras_serializable(package="indi4d")
class SinusoidalTimeEmbedding(layers.Layer):
    """sin/cos embedding of a scalar time per sample, as in Transformers and DDPM.

    ``emb(t) = [sin(s t w_k), cos(s t w_k)]``, ``w_k = max_period ** (-k / (dim/2))``,
    ``k = 0 .. dim/2 - 1``; ``s = scale`` stretches t in [0, 1] over many periods.

    Input ``(B,)`` float32; output ``(B, dim)`` float32.
    """

    def __init__(self, dim=64, scale=1000.0, max_period=10000.0, **kwargs):
        super().__init__(**kwargs)
        if dim % 2:
            raise ValueError(f"SinusoidalTimeEmbedding: dim must be even, got {dim}")
        self.dim = int(dim)
        self.scale = float(scale)
        self.max_period = float(max_period)

    def call(self, t):
        half = self.dim // 2
        freqs = ops.exp(-math.log(self.max_period) * ops.arange(half, dtype="float32") / half)
        angles = self.scale * ops.reshape(ops.cast(t, "float32"), (-1, 1)) * ops.reshape(freqs, (1, -1))
        return ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.dim)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale, "max_period": self.max_period}


@keras.saving.register_keras_serializable(package="indi4d")
class ResidualParametrisation(layers.Layer):
    """``F = x_t - t g``: the InDI output from the image ``x_t`` and the velocity estimate ``g``.

    Inputs ``[x_t (B, H, W, C), t (B,), g (B, H, W, C)]`` float32, or
    ``[x_t, g]`` for a network without time input (then ``t = 1``:
    ``F = x - g``, a residual regressor). Output (B, H, W, C) float32,
    unbounded. No weights: a model holding it saves and loads like any other.
    """

    def call(self, inputs):
        if len(inputs) == 2:
            image, g = inputs
            return image - g  # t = 1
        image, t, g = inputs
        t = ops.reshape(ops.cast(t, image.dtype), (-1, 1, 1, 1))
        return image - t * g  # F = x_t - t g(x_t, t)

    def compute_output_shape(self, input_shape):
        return input_shape[0]
