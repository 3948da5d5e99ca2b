"""InDI restoration of slices, images, volumes and files (chapters 04-06, ``indi4d enhance``).

The InDI sampler (:func:`indi4d.core.indi.indi_sample`) runs on top of the one
prediction path (:mod:`indi4d.inference.tiling`): each slice is reflect-padded
to the network's factor, sampled with the tiled network at every step, and
cropped back.

Volumes are enhanced slice by slice (xy), as in the paper: each LQ slice is
upscaled x2 (cubic spline), normalised with the LQ statistics saved beside the
model, restored with InDI, mapped back to grey values with the HQ statistics,
and the stack is finally upscaled x2 along z with the same cubic spline for
isotropic voxels.
"""


import numpy as np
from tqdm.auto import tqdm

from ..core import preprocess
from ..core.indi import indi_sample
from ..core.steps import check_steps
from .tiling import check_slices, crop_back, pad_to_multiple


def enhance_slices(enhancer, slices, steps, eps=None, seed=0, stochastic=False, progress=True):
    """Restore normalised, x2-upscaled LQ slices with InDI.

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
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
        See :func:`indi4d.core.indi.indi_sample`.
    progress : bool
        Progress bar over slices.

    Returns
    -------
    ndarray, float32, same shape as ``slices``, values in [-1, 1]
    """
    a = check_slices(slices, "enhance_slices")
    check_steps(steps, "enhance_slices: steps")
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


def check_grey_volume(volume, name):
    """Refuse a volume that is not 2D/3D real grey values (ValueError naming ``name``)."""
    if volume.ndim not in (2, 3):
        raise ValueError(f"{name}: expected a 2D slice or a 3D (Z, Y, X) stack, got shape {volume.shape}")
    if not np.issubdtype(volume.dtype, np.number) or np.iscomplexobj(volume):
        raise ValueError(f"{name}: expected real grey values, got dtype {volume.dtype}")
    if np.issubdtype(volume.dtype, np.floating) and not np.all(np.isfinite(volume)):
        raise ValueError(f"{name}: contains NaN or infinite values")


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
    check_grey_volume(vol, "enhance_volume")
    norm = _require_normalisation(enhancer)
    out = np.empty((vol.shape[0], 2 * vol.shape[1], 2 * vol.shape[2]), np.float32)
    for z in tqdm(range(vol.shape[0]), desc="enhancing slices", disable=not progress):
        z_seed = None if seed is None else (int(seed), z)
        out[z] = enhance_grey_slice(enhancer, norm, vol[z], steps, eps, z_seed, stochastic)
    if z_upscale:
        out = preprocess.upscale(out, 2, axes=(0,))
    return out


def enhance_grey_slice(enhancer, norm, image, steps, eps, seed, stochastic):
    """One LQ (Y, X) slice of grey values -> (2Y, 2X) enhanced grey values (float32).

    x2 cubic upscale, LQ normalisation, InDI, HQ grey values back: the one
    per-slice path of :func:`enhance_volume` and of the chunked
    :meth:`indi4d.inference.slabs.SlabWork.xy`. ``seed`` is the slice's own
    seed, e.g. ``(seed, z)``.
    """
    u = preprocess.normalise(preprocess.upscale(image, 2), norm["lq"])
    restored = _enhance_one(enhancer, u, steps, eps, seed, stochastic)
    return preprocess.denormalise(restored, norm["hq"])


def _enhance_one(enhancer, u, steps, eps, seed, stochastic):
    """InDI on one normalised (H, W) slice: reflect-pad to the network's factor, sample, crop back."""
    if eps is None:
        eps = float(enhancer.config.get("training", {}).get("eps", 0.0))
    padded, shape = pad_to_multiple(u, enhancer.factor)
    return crop_back(indi_sample(enhancer, padded, steps, eps=eps, seed=seed, stochastic=stochastic), shape)
