"""The one prediction path: pad to the network's size factor, tile exactly, crop back.

Every network of the project is a U-Net with ``depth`` stride-2 levels, so it
takes images whose sides are multiples of its *factor* ``2 ** depth``. Any
slice is reflect-padded at the bottom/right to such a size
(:func:`pad_to_multiple`) and cropped back afterwards (:func:`crop_back`).

Large images are evaluated tile by tile, and the tiling is exact, not
approximate: every output pixel depends only on the input pixels within the
network's influence radius ``r`` (:func:`indi4d.core.model.influence_radius`, half
the receptive field plus the stride-2 asymmetry). Each tile drops a margin
``>= r`` on its inner sides, so what it keeps was computed from exactly the
pixels the whole-image pass uses; tiles start on multiples of the factor, so
the stride-2 grids agree too. Tiled and whole-image outputs then differ only
by float rounding (~1e-6). Neighbouring tiles overlap by a further ``blend``
pixels, where their outputs are mixed with linear weights; with an exact
margin this changes nothing, with a smaller user-chosen margin it hides the
seams.

:class:`TiledNetwork` wraps any network this way: the time-conditioned InDI
U-Net (called ``net([x_t, t])``) and the plain CNN/GAN generator (called
``net(x)``) alike. Direct prediction (:func:`predict_slices`) is its simplest
use, one pass; the InDI sampler (:mod:`indi4d.inference.volumes`) calls it
once per step.
"""

from dataclasses import dataclass, field

import numpy as np

#: Tiling sizes. ``tile``: side of the square tiles (a multiple of the
#: network's factor); ``tile_batch``: tiles per network call; ``blend``: extra
#: overlap mixed linearly. ``margin`` None = the network's influence radius.
PRESETS = {
    "tiny": {"tile": 128, "tile_batch": 4, "blend": 8, "margin": None},
    "default": {"tile": 512, "tile_batch": 2, "blend": 16, "margin": None},
    "paper": {"tile": 1024, "tile_batch": 4, "blend": 32, "margin": None},
}


def round_up(value, multiple):
    """The smallest multiple of ``multiple`` that is ``>= value`` (int)."""
    return -(-int(value) // int(multiple)) * int(multiple)


def size_factor(network_params):
    """``2 ** depth``: image sides must be multiples of it (``network_params`` as in ``config["network"]``)."""
    return 2 ** int(network_params["depth"])


def exact_margin(network_params):
    """The influence radius of the network, rounded up to its factor: the margin that makes tiling exact."""
    from ..core.model import influence_radius

    return round_up(influence_radius(**network_params), size_factor(network_params))


def pad_to_multiple(slices, factor):
    """Reflect-pad the last two axes at the bottom/right to multiples of ``factor``.

    Reflection (not zeros) keeps the image statistics at the border, so the
    network sees no artificial edge there.

    Parameters
    ----------
    slices : ndarray, shape (..., H, W), float
    factor : int

    Returns
    -------
    padded : ndarray, float32, shape (..., H', W')
        ``H'``, ``W'`` the multiples of ``factor`` at or above ``H``, ``W``.
    shape : (int, int)
        ``(H, W)``, for :func:`crop_back`.

    Raises
    ------
    ValueError
        When a side is too short to reflect (it needs more pixels than it adds).
    """
    a = np.asarray(slices)
    h, w = a.shape[-2:]
    pad_y, pad_x = round_up(h, factor) - h, round_up(w, factor) - w
    if pad_y >= h or pad_x >= w:
        # numpy's reflect padding needs more pixels than it adds
        raise ValueError(f"a slice of {h}x{w} pixels is too small to pad to a multiple of {factor}")
    width = [(0, 0)] * (a.ndim - 2) + [(0, pad_y), (0, pad_x)]
    return np.pad(a.astype(np.float32), width, mode="reflect"), (h, w)


def crop_back(padded, shape):
    """Undo :func:`pad_to_multiple`: keep the top-left ``shape = (H, W)`` of the last two axes."""
    h, w = shape
    return padded[..., :h, :w]


def tile_starts(length, tile, step, multiple=1):
    """Start offsets of tiles of size ``tile`` covering ``[0, length)``.

    Tiles start every ``step`` pixels; the last one is flush with the end.
    All starts are multiples of ``multiple`` (``length``, ``tile`` and ``step``
    must be too).

    Returns
    -------
    list of int
    """
    if length % multiple or tile % multiple or step % multiple:
        raise ValueError(f"tile_starts: length {length}, tile {tile} and step {step} must be multiples of {multiple}")
    if tile >= length:
        return [0]
    if step < 1:
        raise ValueError(f"tile_starts: step must be >= 1, got {step}")
    starts = list(range(0, length - tile, step))
    starts.append(length - tile)
    return starts


def tile_weights(tile, start, length, margin, blend):
    """1D blending weights of one tile: 0 on dropped margins, a linear ramp, then 1.

    The margin and ramp are only applied on the tile's *inner* sides; a side
    on the image border keeps its pixels (the whole-image pass sees the same
    border there).

    Parameters
    ----------
    tile, start, length : int
        Tile size, its start and the image length along this axis.
    margin, blend : int
        Dropped pixels and ramp width on inner sides.

    Returns
    -------
    ndarray, float32, shape (tile,)
    """
    if tile <= 2 * margin + blend:
        raise ValueError(f"tile_weights: tile {tile} must exceed 2 x margin {margin} + blend {blend}")
    w = np.ones(tile, np.float32)
    # ramp values (k + 1) / (blend + 1), k = 0..blend-1: strictly positive, rising towards 1
    ramp = (np.arange(blend, dtype=np.float32) + 1.0) / (blend + 1.0)
    if start > 0:
        w[:margin] = 0.0
        w[margin:margin + blend] = ramp
    if start + tile < length:
        w[tile - margin:] = 0.0
        w[tile - margin - blend:tile - margin] *= ramp[::-1]
    return w


def _has_time_input(network):
    inputs = getattr(network, "inputs", None)
    return inputs is not None and len(inputs) == 2


@dataclass
class TiledNetwork:
    """Any of the project's networks, evaluated tile by tile (exactly, see the module notes).

    Call it like the network it wraps: ``tiled([x_t, t], training=False)`` for
    a time-conditioned network, ``tiled(x, training=False)`` for a plain one,
    with ``x`` (B, H, W, 1) float32 and ``t`` (B,) float32; ``H`` and ``W``
    must be multiples of :attr:`factor`. Images no larger than :attr:`tile`
    go through the network in one call.

    Attributes
    ----------
    network : keras.Model
        Inputs ``[image, t]`` or ``image``.
    factor : int
        ``2 ** depth``.
    margin : int
        Dropped margin on inner tile sides; at least the influence radius for
        exact tiling (:func:`exact_margin`). Needed only when tiles are used.
    tile : int or None
        Side of the square tiles (a multiple of ``factor``); None = never tile.
    tile_batch, blend : int
        Tiles per network call; extra overlap mixed linearly.
    time_input : bool or None
        Whether the network takes ``[image, t]``; None = from its inputs.
    graph : bool
        Run the forward pass as a compiled ``tf.function`` (else eagerly).
    jit_compile : bool
        XLA-compile the graph.
    """

    network: object
    factor: int = 2
    margin: int = None
    tile: int = PRESETS["default"]["tile"]
    tile_batch: int = PRESETS["default"]["tile_batch"]
    blend: int = PRESETS["default"]["blend"]
    time_input: bool = None
    graph: bool = True
    jit_compile: bool = False
    _forward: object = field(default=None, repr=False)

    def __post_init__(self):
        if self.time_input is None:
            self.time_input = _has_time_input(self.network)
        self._check_tiling()

    def _check_tiling(self):
        if self.tile is None:
            return
        if self.margin is None:
            raise ValueError("TiledNetwork: tiling needs a margin (the network's influence radius)")
        if self.tile % self.factor:
            raise ValueError(f"TiledNetwork: tile {self.tile} must be a multiple of {self.factor}")
        if self.tile <= 2 * self.margin + self.blend:
            raise ValueError(f"TiledNetwork: tile {self.tile} leaves nothing between margins 2 x {self.margin} "
                             f"and blend {self.blend}; use a larger tile")

    def forward(self, x, t=None):
        """One network pass on a batch of equally sized images; returns ndarray (B, H, W, 1) float32."""
        x = np.ascontiguousarray(x, np.float32)
        args = (x, np.asarray(t, np.float32)) if self.time_input else (x,)
        if not self.graph:
            return np.asarray(self.network(list(args) if self.time_input else x, training=False))
        if self._forward is None:
            import tensorflow as tf

            net, timed = self.network, self.time_input
            call = (lambda a, b: net([a, b], training=False)) if timed else (lambda a: net(a, training=False))
            self._forward = tf.function(call, autograph=False, jit_compile=self.jit_compile, reduce_retracing=True)
        return np.asarray(self._forward(*args))

    def __call__(self, inputs, training=False):
        x, t = inputs if self.time_input else (inputs, None)
        x = np.asarray(x, np.float32)
        name = type(self).__name__
        if x.ndim != 4 or x.shape[-1] != 1:
            raise ValueError(f"{name}: expected images (B, H, W, 1), got shape {x.shape}")
        b, h, w, _ = x.shape
        if h % self.factor or w % self.factor:
            raise ValueError(f"{name}: image size {h}x{w} is not a multiple of {self.factor}; "
                             "pad it first (pad_to_multiple)")
        if self.time_input:
            t = np.asarray(t, np.float32).reshape(-1)
            if t.shape != (b,):
                raise ValueError(f"{name}: t must have one value per image, got shape {t.shape} for {b} images")
        if self.tile is None or (h <= self.tile and w <= self.tile):
            return self.forward(x, t)
        return self._tiled(x, t)

    def _tiled(self, x, t):
        b, h, w, _ = x.shape
        ty, tx = min(self.tile, h), min(self.tile, w)
        span = 2 * self.margin + self.blend  # consecutive tiles overlap by at least this much
        step_y = max(self.factor, (ty - span) // self.factor * self.factor)
        step_x = max(self.factor, (tx - span) // self.factor * self.factor)
        ys = tile_starts(h, ty, step_y, self.factor)
        xs = tile_starts(w, tx, step_x, self.factor)
        jobs = [(i, y0, x0) for i in range(b) for y0 in ys for x0 in xs]
        out = np.zeros((b, h, w), np.float64)
        norm = np.zeros((b, h, w), np.float64)
        wy = {y0: tile_weights(ty, y0, h, self.margin, self.blend) for y0 in ys}
        wx = {x0: tile_weights(tx, x0, w, self.margin, self.blend) for x0 in xs}
        for k in range(0, len(jobs), self.tile_batch):
            chunk = jobs[k:k + self.tile_batch]
            tiles = np.stack([x[i, y0:y0 + ty, x0:x0 + tx] for i, y0, x0 in chunk])
            times = None if t is None else t[[i for i, _, _ in chunk]]
            pred = self.forward(tiles, times)[..., 0]
            for (i, y0, x0), p in zip(chunk, pred):
                weight = np.outer(wy[y0], wx[x0])
                out[i, y0:y0 + ty, x0:x0 + tx] += weight * p
                norm[i, y0:y0 + ty, x0:x0 + tx] += weight
        if np.any(norm <= 0):
            raise RuntimeError(f"{type(self).__name__}: tiling left pixels uncovered "
                               "(tile too small for margin and blend)")
        # weighted mean of the overlapping tile outputs
        return (out / norm)[..., None].astype(np.float32)


def check_slices(slices, name):
    """Normalised slices as an (H, W) or (n, H, W) float array; ValueError naming ``name`` otherwise."""
    a = np.asarray(slices)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"{name}: expected (H, W) or (n, H, W) single-channel slices, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{name}: expected normalised float slices in [-1, 1], got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return a


def predict_slices(tiled, slices, batch_size=4):
    """Direct prediction: one pass of a plain image-to-image network over normalised slices.

    The simplest use of the prediction path: pad to the network's factor,
    evaluate (tiled when a slice exceeds the tile), crop back.

    Parameters
    ----------
    tiled : TiledNetwork
        Without time input (the CNN, or the GAN's generator).
    slices : ndarray, (H, W) or (n, H, W), float, in [-1, 1]
    batch_size : int
        Slices per network call when they fit in one tile.

    Returns
    -------
    ndarray, float32, the shape of ``slices``
    """
    if tiled.time_input:
        raise ValueError("predict_slices: the network takes a time input; restore with the InDI sampler "
                         "(enhance_slices) instead")
    a = check_slices(slices, "direct prediction")
    stack = a[None] if a.ndim == 2 else a
    padded, shape = pad_to_multiple(stack, tiled.factor)
    out = np.concatenate([tiled(padded[i:i + batch_size, ..., None]) for i in range(0, len(padded), batch_size)])
    out = crop_back(out[..., 0], shape).astype(np.float32)
    return out[0] if a.ndim == 2 else out
