"""Enhancing slices, volumes and files with a trained InDI model (chapters 04-06).

A trained model folder (:mod:`indi4d.training`) is loaded as an
:class:`Enhancer`. An enhancer is itself a network callable
``enhancer([x_t, t], training=False)`` that evaluates the U-Net tile by tile,
so :func:`indi4d.indi.indi_sample` runs unchanged on slices of any size.

Tiling is exact, not approximate: every output pixel of the U-Net depends only
on the input pixels within its influence radius ``r``
(:func:`indi4d.model.influence_radius`, half the receptive field plus the
stride-2 asymmetry). Each tile drops a margin ``>= r`` on its inner sides, so
what it keeps was computed from exactly the pixels the whole-image pass uses;
tiles start on multiples of the down-sampling factor, so the stride-2 grids
agree too. Tiled and whole-image outputs then differ only by float rounding
(~1e-6). Neighbouring tiles overlap by a further ``blend`` pixels, where their
outputs are mixed with linear weights; with an exact margin this changes
nothing, with a smaller user-chosen margin it hides the seams.

Volumes are enhanced slice by slice (xy), as in the paper: each LQ slice is
upscaled x2 (cubic spline), normalised with the LQ statistics saved beside the
model, restored with InDI, mapped back to grey values with the HQ statistics,
and the stack is finally upscaled x2 along z with the same cubic spline for
isotropic voxels.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from . import preprocess
from .indi import indi_sample

#: Tiling sizes. ``tile``: side of the square tiles (a multiple of the
#: network's factor); ``tile_batch``: tiles per network call; ``blend``: extra
#: overlap mixed linearly. ``margin`` None = the network's influence radius.
PRESETS = {
    "tiny": {"tile": 128, "tile_batch": 4, "blend": 8, "margin": None},
    "default": {"tile": 512, "tile_batch": 2, "blend": 16, "margin": None},
    "paper": {"tile": 1024, "tile_batch": 4, "blend": 32, "margin": None},
}


def _round_up(value, multiple):
    return -(-int(value) // multiple) * multiple


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


@dataclass
class Enhancer:
    """A trained InDI network with its normalisation and tiling settings.

    Call it like the network, ``enhancer([x_t, t], training=False)``, with
    ``x_t`` (B, H, W, 1) float32 and ``t`` (B,) float32; ``H`` and ``W`` must
    be multiples of :attr:`factor`. Images larger than :attr:`tile` are
    evaluated tile by tile (exactly, see the module notes).

    Attributes
    ----------
    network : keras.Model
        Inputs ``[image, t]``.
    config : dict
        ``config.json`` of the model folder (``network`` holds the build arguments).
    normalisation : dict or None
        ``{"lq": params, "hq": params}`` for :func:`indi4d.preprocess.normalise`.
    tile, tile_batch, blend : int
        Tiling (see :data:`PRESETS`).
    margin : int
        Dropped margin on inner tile sides (default: the influence radius).
    model_dir : Path or None
    jit_compile : bool
        XLA-compile the forward pass.
    """

    network: object
    config: dict
    normalisation: dict = None
    tile: int = PRESETS["default"]["tile"]
    tile_batch: int = PRESETS["default"]["tile_batch"]
    blend: int = PRESETS["default"]["blend"]
    margin: int = None
    model_dir: Path = None
    jit_compile: bool = False
    _forward: object = field(default=None, repr=False)

    def __post_init__(self):
        from .model import influence_radius

        net = self.config["network"]
        self.factor = 2 ** int(net["depth"])
        if self.margin is None:
            self.margin = _round_up(influence_radius(**net), self.factor)
        if self.tile % self.factor:
            raise ValueError(f"Enhancer: tile {self.tile} must be a multiple of {self.factor}")
        if self.tile <= 2 * self.margin + self.blend:
            raise ValueError(f"Enhancer: tile {self.tile} leaves nothing between margins 2 x {self.margin} "
                             f"and blend {self.blend}; use a larger tile")

    def forward(self, x, t):
        """One network pass on a batch of equally sized images; returns ndarray (B, H, W, 1) float32."""
        if self._forward is None:
            import tensorflow as tf

            net = self.network
            self._forward = tf.function(lambda a, b: net([a, b], training=False), autograph=False,
                                        jit_compile=self.jit_compile, reduce_retracing=True)
        return np.asarray(self._forward(np.ascontiguousarray(x, np.float32), np.asarray(t, np.float32)))

    def __call__(self, inputs, training=False):
        x, t = inputs
        x = np.asarray(x, np.float32)
        t = np.asarray(t, np.float32).reshape(-1)
        if x.ndim != 4 or x.shape[-1] != 1:
            raise ValueError(f"Enhancer: expected images (B, H, W, 1), got shape {x.shape}")
        b, h, w, _ = x.shape
        if h % self.factor or w % self.factor:
            raise ValueError(f"Enhancer: image size {h}x{w} is not a multiple of {self.factor}; "
                             "pad it first (enhance_slices does)")
        if t.shape != (b,):
            raise ValueError(f"Enhancer: t must have one value per image, got shape {t.shape} for {b} images")
        if h <= self.tile and w <= self.tile:
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
            pred = self.forward(tiles, t[[i for i, _, _ in chunk]])[..., 0]
            for (i, y0, x0), p in zip(chunk, pred):
                weight = np.outer(wy[y0], wx[x0])
                out[i, y0:y0 + ty, x0:x0 + tx] += weight * p
                norm[i, y0:y0 + ty, x0:x0 + tx] += weight
        if np.any(norm <= 0):
            raise RuntimeError("Enhancer: tiling left pixels uncovered (tile too small for margin and blend)")
        # weighted mean of the overlapping tile outputs
        return (out / norm)[..., None].astype(np.float32)


def load_enhancer(model_dir, preset="default", tile=None, margin=None, jit_compile=False):
    """Load a model folder written by :func:`indi4d.training.train_indi`.

    Parameters
    ----------
    model_dir : str or Path
        Holds ``model.keras``, ``config.json`` and ``normalisation.json``.
    preset : {"tiny", "default", "paper"}
        Tiling preset (:data:`PRESETS`).
    tile, margin : int, optional
        Override the preset's tile size / the exact margin.
    jit_compile : bool
        XLA-compile the forward pass.

    Returns
    -------
    Enhancer

    Raises
    ------
    FileNotFoundError
        When a file is missing (naming it and the command that writes it).
    """
    import keras

    from . import model as _model  # registers the custom layers for deserialisation

    del _model
    model_dir = Path(model_dir)
    files = {name: model_dir / name for name in ("model.keras", "config.json", "normalisation.json")}
    for name, path in files.items():
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; train a model first (`indi4d train` or chapter 04_training)")
    try:
        config = json.loads(files["config.json"].read_text())
        normalisation = json.loads(files["normalisation.json"].read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{model_dir}: config.json or normalisation.json is not valid JSON ({exc})") from exc
    if "network" not in config or "depth" not in config["network"]:
        raise ValueError(f"{files['config.json']}: no 'network' parameters")
    if set(normalisation) < {"lq", "hq"}:
        raise ValueError(f"{files['normalisation.json']}: expected keys 'lq' and 'hq'")
    try:
        network = keras.saving.load_model(files["model.keras"], compile=False)
    except Exception as exc:  # Keras raises several types for a damaged archive
        raise ValueError(f"{files['model.keras']}: not a loadable Keras model ({exc})") from exc
    tiling = dict(PRESETS[preset]) if preset in PRESETS else None
    if tiling is None:
        raise ValueError(f"load_enhancer: unknown tiling preset {preset!r}")
    return Enhancer(network=network, config=config, normalisation=normalisation,
                    tile=int(tile or tiling["tile"]), tile_batch=tiling["tile_batch"], blend=tiling["blend"],
                    margin=margin if margin is not None else tiling["margin"], model_dir=model_dir,
                    jit_compile=jit_compile)


def _check_slices(slices, name):
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


def enhance_slices(enhancer, slices, steps, eps=None, seed=0, stochastic=False, progress=True):
    """Restore normalised, x2-upscaled LQ slices with InDI.

    Parameters
    ----------
    enhancer : Enhancer
    slices : ndarray, shape (H, W) or (n, H, W), float, values in [-1, 1]
        Any ``H``, ``W`` >= 2: slices are reflect-padded to a multiple of the
        network's factor and cropped back.
    steps : int
        InDI steps ``N`` >= 1.
    eps : float, optional
        Noise scale; default the one used in training.
    seed : int
        Slice ``i`` draws its noise from ``(seed, i)``.
    stochastic : bool
        See :func:`indi4d.indi.indi_sample`.
    progress : bool
        Progress bar over slices.

    Returns
    -------
    ndarray, float32, same shape as ``slices``, values in [-1, 1]
    """
    a = _check_slices(slices, "enhance_slices")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"enhance_slices: steps must be an integer >= 1, got {steps!r}")
    single = a.ndim == 2
    stack = a[None] if single else a
    out = np.empty(stack.shape, np.float32)
    for i in tqdm(range(stack.shape[0]), desc="enhancing slices", disable=not progress or len(stack) < 2):
        out[i] = _enhance_one(enhancer, stack[i], steps, eps, None if seed is None else (int(seed), i), stochastic)
    return out[0] if single else out


def _require_normalisation(enhancer):
    if not enhancer.normalisation:
        raise ValueError("the enhancer has no normalisation; load it with load_enhancer(model_dir)")
    return enhancer.normalisation


def enhance_image(image, enhancer, steps, eps=None, seed=0, stochastic=False):
    """Enhance one 2D LQ slice of raw grey values: x2 upscale, normalise, InDI, grey values back.

    Parameters
    ----------
    image : ndarray, shape (Y, X), real
        LQ grey values (e.g. uint16), on the LQ grid.
    enhancer : Enhancer
    steps, eps, seed, stochastic
        As in :func:`enhance_slices`.

    Returns
    -------
    ndarray, float32, shape (2 Y, 2 X)
        HQ-like grey values.
    """
    norm = _require_normalisation(enhancer)
    up = preprocess.upscale(image, 2)
    u = preprocess.normalise(up, norm["lq"])
    restored = enhance_slices(enhancer, u, steps, eps=eps, seed=seed, stochastic=stochastic, progress=False)
    return preprocess.denormalise(restored, norm["hq"])


def enhance_volume(volume, enhancer, steps, eps=None, seed=0, stochastic=False, z_upscale=True, progress=True):
    """Enhance a 3D LQ volume slice by slice, then upscale x2 along z.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X), real
        LQ grey values on the LQ grid (never modified).
    enhancer : Enhancer
    steps : int
        InDI steps ``N``.
    eps, seed, stochastic
        As in :func:`enhance_slices` (slice ``z`` uses the seed ``(seed, z)``).
    z_upscale : bool
        Upscale x2 along z at the end (cubic spline), for isotropic voxels.
    progress : bool
        Progress bar over slices.

    Returns
    -------
    ndarray, float32, shape (2 Z, 2 Y, 2 X) (or (Z, 2 Y, 2 X) without ``z_upscale``)
        Enhanced grey values, mapped back with the saved HQ normalisation.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"enhance_volume: expected a (Z, Y, X) volume, got shape {vol.shape}")
    if not np.issubdtype(vol.dtype, np.number) or np.iscomplexobj(vol):
        raise ValueError(f"enhance_volume: expected real grey values, got dtype {vol.dtype}")
    if np.issubdtype(vol.dtype, np.floating) and not np.all(np.isfinite(vol)):
        raise ValueError("enhance_volume: the volume contains NaN or infinite values")
    norm = _require_normalisation(enhancer)
    out = np.empty((vol.shape[0], 2 * vol.shape[1], 2 * vol.shape[2]), np.float32)
    for z in tqdm(range(vol.shape[0]), desc="enhancing slices", disable=not progress):
        u = preprocess.normalise(preprocess.upscale(vol[z], 2), norm["lq"])
        restored = _enhance_one(enhancer, u, steps, eps, None if seed is None else (int(seed), z), stochastic)
        out[z] = preprocess.denormalise(restored, norm["hq"])
    if z_upscale:
        out = preprocess.upscale(out, 2, axes=(0,))
    return out


def _enhance_one(enhancer, u, steps, eps, seed, stochastic):
    """InDI on one normalised (H, W) slice: reflect-pad to the network's factor, sample, crop back."""
    if eps is None:
        eps = float(enhancer.config.get("training", {}).get("eps", 0.0))
    f = enhancer.factor
    h, w = u.shape
    pad_y, pad_x = _round_up(h, f) - h, _round_up(w, f) - w
    if pad_y >= h or pad_x >= w:
        # numpy's reflect padding needs more pixels than it adds
        raise ValueError(f"a slice of {h}x{w} pixels is too small to pad to a multiple of {f}")
    # reflect padding at the bottom/right keeps the image statistics at the border
    s = np.pad(u.astype(np.float32), ((0, pad_y), (0, pad_x)), mode="reflect")
    return indi_sample(enhancer, s, steps, eps=eps, seed=seed, stochastic=stochastic)[:h, :w]


def enhance_file(in_path, out_path, model_dir, steps, seed=0, eps=None, stochastic=False, preset="default"):
    """Enhance a 2D or 3D LQ TIFF and write the result (``indi4d enhance``).

    The output has half the input's voxel size (stored in the TIFF
    description when the input has one) and the input's integer dtype
    (rounded and clipped) or float32 for float input.

    Parameters
    ----------
    in_path, out_path : str or Path
        Input LQ TIFF (never modified) and output TIFF (written atomically).
    model_dir : str or Path
        Trained model folder.
    steps : int
        InDI steps ``N``.
    seed : int
    eps : float, optional
    stochastic : bool
    preset : str
        Tiling preset of :func:`load_enhancer`.

    Returns
    -------
    Path
        ``out_path``.
    """
    from .io import read_volume, write_volume

    in_path, out_path = Path(in_path), Path(out_path)
    if out_path.resolve() == in_path.resolve():
        raise ValueError(f"{out_path}: the output would overwrite the input; choose another name")
    if int(steps) != steps or steps < 1:
        raise ValueError(f"enhance_file: steps must be an integer >= 1, got {steps!r}")
    volume, meta = read_volume(in_path)
    if volume.ndim not in (2, 3):
        raise ValueError(f"{in_path}: expected a 2D slice or a 3D (Z, Y, X) stack, got shape {volume.shape}")
    if not np.issubdtype(volume.dtype, np.number) or np.iscomplexobj(volume):
        raise ValueError(f"{in_path}: expected real grey values, got dtype {volume.dtype}")
    if np.issubdtype(volume.dtype, np.floating) and not np.all(np.isfinite(volume)):
        raise ValueError(f"{in_path}: contains NaN or infinite values")
    enhancer = load_enhancer(model_dir, preset=preset)
    if volume.ndim == 2:
        out = enhance_image(volume, enhancer, steps, eps=eps, seed=seed, stochastic=stochastic)
    else:
        out = enhance_volume(volume, enhancer, steps, eps=eps, seed=seed, stochastic=stochastic)
    if np.issubdtype(volume.dtype, np.integer):
        info = np.iinfo(volume.dtype)
        out = np.clip(np.rint(out), info.min, info.max).astype(volume.dtype)
    voxel = meta.get("voxel_size_nm")
    extra = {"indi4d_enhance": {"input": str(in_path), "model_dir": str(model_dir), "steps": int(steps),
                                "seed": seed, "stochastic": bool(stochastic)}}
    write_volume(out_path, out, voxel_size_nm=None if voxel is None else float(voxel) / 2.0, extra=extra)
    return out_path
