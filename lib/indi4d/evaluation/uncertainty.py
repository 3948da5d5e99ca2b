"""Stochastic InDI samples: their spread against the true error (step 4 of chapter 05)."""

import math

import numpy as np

from .predictions import indi_restore


def block_mean(image, block):
    """Mean over non-overlapping ``block x block`` tiles of the last two axes (edges cropped).

    Parameters
    ----------
    image : ndarray (..., H, W)
    block : int

    Returns
    -------
    ndarray (..., H // block, W // block) float64
    """
    a = np.asarray(image, np.float64)
    if block <= 1:
        return a
    h, w = a.shape[-2] // block * block, a.shape[-1] // block * block
    a = a[..., :h, :w]
    return a.reshape(a.shape[:-2] + (h // block, block, w // block, block)).mean(axis=(-3, -1))


def rank_correlation(a, b, mask=None):
    """Spearman rank correlation of two maps over a mask.

    ``rho`` is Pearson's correlation of the ranks (ties get their mean rank),
    ``scipy.stats.spearmanr``: 1 when ``b`` is any increasing function of
    ``a``, about 0 when they are independent.

    Parameters
    ----------
    a, b : ndarray, same shape, real
    mask : ndarray of bool, optional
        Same shape, or that of the last two axes.

    Returns
    -------
    float
        rho in [-1, 1]; NaN when either map is constant on the mask.
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rank_correlation: shapes differ: {a.shape} vs {b.shape}")
    m = np.ones(a.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), a.shape)
    x, y = a[m], b[m]
    if x.size < 3:
        raise ValueError("rank_correlation: fewer than 3 pixels in the mask")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def stochastic_draws(enhancer, slices, steps, samples, eps, seed=0, progress=False):
    """K stochastic InDI samples of normalised slices: sample ``k`` uses the seeds ``(seed + k, slice)``.

    Each starts from ``y + eps n`` and re-draws its noise at every step (the
    stochastic sampler of :func:`indi4d.core.indi.indi_sample`).

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    slices : ndarray (n, H, W) float32 in [-1, 1]
    steps, samples : int
    eps : float
        Sampler noise scale, > 0.
    seed : int
    progress : bool

    Returns
    -------
    ndarray (samples, n, H, W) float32, normalised units
    """
    from tqdm.auto import tqdm

    return np.stack([indi_restore(enhancer, slices, steps, eps=eps, seed=seed + k, stochastic=True)
                     for k in tqdm(range(samples), desc="stochastic samples", disable=not progress)])


def uncertainty(enhancer, test, steps, samples=8, eps=0.1, seed=0, block_px=4, progress=True):
    """Per-pixel spread of K stochastic InDI samples against the true error, in physical units.

    Sample ``k`` starts from ``y + eps n`` and re-draws its noise at every step
    (the stochastic sampler of :func:`indi4d.core.indi.indi_sample`) with the seeds
    ``(seed + k, slice)``. Each sample is mapped to physical units
    (:func:`~indi4d.evaluation.units.to_physical`, side "hq"); the spread
    ``s = std_k(x_k)`` is compared with the error of the sample mean against
    the true attenuation, ``e = |mean_k(x_k) - mu|``, without a grey fit. A
    run without a grey mapping (or a test set without normalisation) falls
    back to the least-squares grey fit ``(a, b)`` of the mean onto ``mu``
    (:func:`indi4d.metrics.affine_fit`): ``e = |a mean + b - mu|``, ``s`` scaled by ``|a|``.

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    test : dict
        :func:`load_test_set` (needs the truth).
    steps : int
        InDI steps N.
    samples : int
        K >= 2.
    eps : float
        Sampler noise scale, > 0.
    seed : int
    block_px : int
        Also correlate the maps averaged over ``block_px``-pixel blocks (local
        rather than pixel agreement).
    progress : bool

    Returns
    -------
    dict
        ``mean``, ``std``, ``error``: float32 (n, H, W) (``mean`` in the pairs'
        normalised units; ``std`` and ``error`` in 1/um); ``spearman`` (pixels
        in the mask), ``spearman_block`` (blocks wholly inside the mask),
        ``samples``, ``eps``, ``steps``, ``units``, ``fit`` ("none" or "affine").
    """
    from ..metrics import affine_fit
    from .units import ATTENUATION, physical_units, to_physical

    if test["truth_mu"] is None:
        raise ValueError("uncertainty: needs the truth (truth_mu_hq.tif)")
    if samples < 2 or not eps > 0:
        raise ValueError(f"uncertainty: need samples >= 2 and eps > 0, got {samples}, {eps}")
    draws = stochastic_draws(enhancer, test["lq"], steps, samples, eps, seed, progress)
    mask = np.broadcast_to(test["mask"], draws.shape[1:])
    if physical_units(test) == ATTENUATION:
        phys = to_physical(draws, "hq", test).astype(np.float64)
        error = np.abs(phys.mean(axis=0) - test["truth_mu"])  # |mean - truth|, 1/um
        std, fit = phys.std(axis=0), "none"
    else:
        mean = draws.mean(axis=0)
        a, b = affine_fit(mean, test["truth_mu"], mask)
        error = np.abs(a * mean + b - test["truth_mu"])  # |fitted mean - truth|, 1/um
        std, fit = abs(a) * draws.std(axis=0), "affine"  # spread in the same units
    inner = block_mean(mask.astype(np.float64), block_px) == 1.0  # blocks wholly inside the mask
    return {"mean": draws.mean(axis=0).astype(np.float32), "std": std.astype(np.float32),
            "error": error.astype(np.float32), "spearman": rank_correlation(std, error, mask),
            "spearman_block": rank_correlation(block_mean(std, block_px), block_mean(error, block_px), inner),
            "samples": int(samples), "eps": float(eps), "steps": int(steps), "block_px": int(block_px),
            "units": ATTENUATION, "fit": fit}
