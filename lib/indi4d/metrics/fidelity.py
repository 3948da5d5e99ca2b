"""Fidelity to a reference: grey-level fit, PSNR and SSIM on a mask."""

import math

import numpy as np
from scipy import ndimage as ndi

from ._inputs import broadcast_mask, check_pair


def affine_fit(pred, ref, mask=None):
    """Least-squares grey-level map ``a·pred + b ≈ ref`` over the mask.

    Used before scoring when ``pred`` is in grey values and ``ref`` in another
    unit (e.g. the true attenuation): it removes a global gain and offset only,
    never spatial structure.

    Parameters
    ----------
    pred, ref : ndarray, same shape, real
    mask : ndarray of bool, optional
        Pixels used for the fit (default all).

    Returns
    -------
    a, b : float
        Gain and offset; ``a = cov(pred, ref) / var(pred)``,
        ``b = mean(ref) - a·mean(pred)``. A constant ``pred`` gives ``a = 0``.
    """
    pred, ref = check_pair(pred, ref)
    m = broadcast_mask(mask, pred.shape)
    p, r = pred[m], ref[m]
    if p.size == 0:
        raise ValueError("affine_fit: the mask selects no pixel")
    dp = p - p.mean()
    var = float(np.mean(dp * dp))
    # normal equations of min_{a,b} Σ (a·p + b − r)²
    a = float(np.mean(dp * (r - r.mean())) / var) if var > 0 else 0.0
    b = float(r.mean() - a * p.mean())
    return a, b


def _apply_fit(pred, ref, mask, fit):
    if fit == "none":
        return pred
    if fit == "affine":
        a, b = affine_fit(pred, ref, mask)
        return a * pred + b
    raise ValueError(f"fit must be 'none' or 'affine', got {fit!r}")


# --------------------------------------------------------------------------- PSNR / SSIM
def _scoring_inputs(pred, ref, mask, data_range, fit, who):
    """Checked pair, mask, grey-fitted prediction and data range shared by :func:`psnr` and :func:`ssim`."""
    pred, ref = check_pair(pred, ref)
    m = broadcast_mask(mask, pred.shape)
    if not m.any():
        raise ValueError(f"{who}: the mask selects no pixel")
    pred = _apply_fit(pred, ref, m, fit)
    if data_range is None:
        data_range = float(ref[m].max() - ref[m].min())
    if not data_range > 0:
        raise ValueError(f"{who}: data_range must be > 0 (got {data_range}); the reference is constant on the mask")
    return pred, ref, m, data_range


def psnr(pred, ref, mask=None, data_range=None, fit="none"):
    """Peak signal-to-noise ratio (dB) of ``pred`` against ``ref`` on a mask.

    ``PSNR = 10·log10(R² / MSE)`` with ``MSE`` the mean squared difference over
    the mask and ``R`` the data range of the reference.

    Parameters
    ----------
    pred, ref : ndarray, same shape (2D or 3D), real
        Prediction and reference (HQ grey values, or the true attenuation).
    mask : ndarray of bool, optional
        Valid region; same shape, or (H, W) for a volume. Default: everything.
    data_range : float, optional
        ``R``; default ``max(ref) − min(ref)`` over the mask.
    fit : {"none", "affine"}
        ``"affine"`` first replaces ``pred`` by its least-squares grey-level fit
        ``a·pred + b`` onto ``ref`` over the mask (:func:`affine_fit`), so that a
        prediction in grey values can be scored against attenuation.

    Returns
    -------
    float
        PSNR in dB; ``inf`` when the images agree exactly on the mask.
    """
    pred, ref, m, data_range = _scoring_inputs(pred, ref, mask, data_range, fit, "psnr")
    mse = float(np.mean((pred[m] - ref[m]) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(pred, ref, mask=None, data_range=None, fit="none", win_size=7, gaussian_weights=False):
    """Mean structural similarity of ``pred`` and ``ref`` over a mask.

    The SSIM map is scikit-image's ``structural_similarity(..., full=True)``
    (uniform ``win_size`` window, sample covariances, K1 = 0.01, K2 = 0.03); it is
    averaged over the mask pixels whose whole window lies inside the mask and the
    image (the mask eroded by ``win_size // 2``), so no window mixes in pixels from
    outside. Without a mask this equals scikit-image's mean SSIM.

    Parameters
    ----------
    pred, ref : ndarray, same shape, real
        2D images (or nD: the window is then nD).
    mask : ndarray of bool, optional
        Valid region; same shape, or (H, W) for a volume.
    data_range : float, optional
        Default ``max(ref) − min(ref)`` over the mask.
    fit : {"none", "affine"}
        As in :func:`psnr`.
    win_size : int
        Odd window side in pixels.
    gaussian_weights : bool
        Passed to scikit-image (Gaussian window of sigma 1.5 instead of uniform).

    Returns
    -------
    float
        Mean SSIM in [-1, 1]; 1 for identical images.
    """
    from skimage.metrics import structural_similarity

    pred, ref, m, data_range = _scoring_inputs(pred, ref, mask, data_range, fit, "ssim")
    _, smap = structural_similarity(
        ref, pred, win_size=win_size, data_range=data_range, gaussian_weights=gaussian_weights, full=True
    )
    # border_value=0: pixels within win_size//2 of the image border are dropped too
    inner = ndi.binary_erosion(m, iterations=win_size // 2, border_value=0) if win_size > 1 else m
    if not inner.any():
        raise ValueError(f"ssim: no pixel of the mask is {win_size // 2} px inside it; use a larger mask or smaller window")
    return float(smap[inner].mean())
