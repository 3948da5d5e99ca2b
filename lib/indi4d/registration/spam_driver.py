"""The spam registration of the ×2-upscaled LQ crop onto the HQ scan.

:func:`register_volumes` prepares both scans (:func:`prepare_for_registration`),
finds a first translation (:func:`coarse_translation`), runs spam's image
correlation (``spam.DIC.registerMultiscale`` / ``spam.DIC.register``), matches
the HQ resolution to the LQ one (:func:`match_resolution`) and refines once
more. Φ follows the convention of :mod:`.geometry`.
"""

import time

import numpy as np
import scipy.ndimage as ndi

from .._spam import import_spam
from ..presets import resolve
from .geometry import apply_phi, decompose_phi
from .parameters import REGISTRATION_KEYS, PRESETS

#: spam's ``returnStatus`` codes.
SPAM_STATUS = {
    2: "converged (|ΔΦ| below the threshold)",
    1: "hit the maximum number of iterations",
    -1: "diverging (error grew)",
    -2: "singular matrix M (too little image texture)",
    -3: "diverging (volume change out of bounds)",
    -4: "singular Φ (diverged)",
}


class RegistrationError(RuntimeError):
    """The registration did not converge (or cannot run); the message says why."""



def prepare_for_registration(volume, mask=None, sigma=1.0):
    """Put a scan on a common grey scale for correlation: blur, robust z-score, positive offset.

    LQ and HQ have different blur, noise and dose, so their grey values differ.
    Both are blurred (noise matters less and the sharper HQ moves closer to the
    LQ), then standardised with the median and the inter-quartile range of the
    voxels inside ``mask``, and shifted by +10 so they stay positive (spam's
    error term divides by the sum of the first image). With a mask the blur
    only averages voxels inside it (normalised convolution).

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X)
    mask : ndarray of bool, shape (Y, X) or (Z, Y, X), optional
    sigma : float
        Gaussian blur, voxels (0: none).

    Returns
    -------
    ndarray, float32, shape (Z, Y, X)
        ``(v - median) / IQR + 10``.
    """
    v = np.asarray(volume, dtype=np.float32)
    if sigma > 0 and mask is not None:
        # normalised convolution, G(v m) / G(m): grey values from outside the mask
        # (the constant outside a reconstruction disc) do not bleed into it
        m = np.broadcast_to(np.asarray(mask, np.float32), v.shape)
        v = ndi.gaussian_filter(v * m, sigma) / np.maximum(ndi.gaussian_filter(m, sigma), 1e-6)
    elif sigma > 0:
        v = ndi.gaussian_filter(v, sigma)
    values = v[np.broadcast_to(mask, v.shape)] if mask is not None else v.ravel()
    q25, q50, q75 = np.percentile(values, [25, 50, 75])
    iqr = q75 - q25 if q75 > q25 else (values.std() or 1.0)
    return ((v - q50) / iqr + 10.0).astype(np.float32)


def match_resolution(lq_up, hq, mask=None, sigmas=(0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)):
    """The Gaussian blur that makes the HQ scan look most like the upscaled LQ scan.

    The LQ scan is blurrier (and the HQ one less noisy) than the other. Spam
    fits ``im1(x) = im2(Φ·x)``, a model without blur, so blurring HQ to the LQ
    resolution first makes the model hold, and lowers the noise. The blur is
    the one, among ``sigmas``, that maximises the normalised cross-correlation
    ``NCC(lq_up, G_σ * hq)`` inside the mask. Measure it on a registered
    pair: a misalignment also makes blurrier versions correlate better.

    Parameters
    ----------
    lq_up, hq : ndarray, shape (Z, Y, X)
    mask : ndarray of bool, shape (Y, X), optional
    sigmas : sequence of float
        Candidate blurs, HQ voxels.

    Returns
    -------
    sigma : float
        HQ voxels.
    ncc : dict
        ``{sigma: NCC}`` for every candidate.
    """
    m = np.ones(hq.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), hq.shape)
    a = np.asarray(lq_up, np.float64)[m]
    a = (a - a.mean()) / (a.std() or 1.0)
    hq = np.asarray(hq, np.float32)
    scores = {}
    for sigma in sigmas:
        b = prepare_for_registration(hq, mask, sigma)[m].astype(np.float64)
        # NCC = mean(za * zb), z-scored inside the mask
        scores[float(sigma)] = float(np.mean(a * (b - b.mean()) / (b.std() or 1.0)))
    return max(scores, key=scores.get), scores


def coarse_translation(lq_up, hq, mask=None, max_shift_vox=16, max_side=64):
    """Whole-voxel translation estimate by windowed cross-correlation (the initial guess for spam).

    Both volumes are block-averaged by a power of two until their smallest side
    is at most ``max_side``, made zero-mean, multiplied by a smooth window (the
    mask, blurred: a hard mask edge would itself correlate best at zero shift),
    and cross-correlated with FFTs. The peak is searched only within
    ``±max_shift_vox``: the sample moves little between the scans, and a
    bounded search cannot latch onto a far, spurious peak.

    Parameters
    ----------
    lq_up, hq : ndarray, shape (Z, Y, X)
        Prepared volumes (same shape).
    mask : ndarray of bool, shape (Y, X), optional
        Reconstruction disc.
    max_shift_vox : float
        Largest translation searched, per axis, in voxels.
    max_side : int
        Largest smallest-side of the binned volumes.

    Returns
    -------
    ndarray, float, shape (3,)
        ``t`` (z, y, x) in voxels such that ``hq(x) ≈ lq_up(x - t)``; good to
        about the binning factor.
    """
    k = 1
    while min(hq.shape) // k > max_side:
        k *= 2
    m = np.ones(hq.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), hq.shape)

    def binned(v):
        n = [s // k * k for s in v.shape]
        v = np.asarray(v[: n[0], : n[1], : n[2]], dtype=np.float64)
        return v.reshape(n[0] // k, k, n[1] // k, k, n[2] // k, k).mean(axis=(1, 3, 5))

    w = binned(m)
    # smooth window: the mask shrunk by ~2 voxels then blurred, so it falls to 0 gently
    w = ndi.gaussian_filter(ndi.binary_erosion(w > 0.5, iterations=2).astype(np.float64), 1.5)
    a, b = binned(lq_up), binned(hq)
    a = (a - np.average(a, weights=w)) * w
    b = (b - np.average(b, weights=w)) * w
    shape = [2 * s for s in a.shape]  # zero padding: no wrap-around
    # xc[s] = sum_x b(x + s) a(x): largest where hq(x) = lq_up(x - s)
    axes = (0, 1, 2)
    xc = np.fft.irfftn(np.fft.rfftn(b, shape, axes) * np.conj(np.fft.rfftn(a, shape, axes)), shape, axes)
    r = int(np.ceil(max_shift_vox / k))
    r = [min(r, s - 1) for s in a.shape]
    window = xc[np.ix_(*[np.r_[0 : ri + 1, -ri:0] % n for ri, n in zip(r, shape)])]
    offsets = [np.r_[0 : ri + 1, -ri:0] for ri in r]
    peak = np.unravel_index(np.argmax(window), window.shape)
    t = np.array([o[p] for o, p in zip(offsets, peak)], dtype=float)
    # sub-voxel: vertex of the parabola through the peak and its two neighbours, per axis
    for ax in range(3):
        idx = [np.array([t[i] % shape[i]], dtype=int) for i in range(3)]
        vals = []
        for d in (-1, 0, 1):
            idx[ax] = np.array([(t[ax] + d) % shape[ax]], dtype=int)
            vals.append(xc[np.ix_(*idx)].item())
        curvature = vals[0] - 2 * vals[1] + vals[2]
        if curvature < 0:
            t[ax] += np.clip(0.5 * (vals[0] - vals[2]) / curvature, -0.5, 0.5)
    return k * t


def _residual(a, b, region):
    """RMS of a - b over a boolean region."""
    d = (a - b)[region]
    return float(np.sqrt(np.mean(d.astype(np.float64) ** 2)))


def _fit_mask(mask, sigma):
    """The mask shrunk by 2 sigma: where a blur restricted to the mask is still a plain blur."""
    if mask is None:
        return None
    erode = int(np.ceil(2.0 * sigma))
    fit = ndi.binary_erosion(mask, iterations=erode) if erode > 0 else mask
    if fit.sum() < 0.1 * mask.sum():
        raise ValueError(
            f"register_volumes: the mask ({int(mask.sum())} pixels) is too small for a blur of {sigma:.1f} voxels; "
            "lower blur_sigma / hq_blur_sigma or use a larger mask"
        )
    return fit


def _spam(a, b, fit_mask, phi_init, margin, p):
    """One spam registration of prepared volumes: registerMultiscale from bin_start, else register."""
    DIC = import_spam("DIC")
    kwargs = dict(
        im1mask=None if fit_mask is None else np.broadcast_to(fit_mask, a.shape).copy(),
        PhiInit=phi_init, PhiRigid=bool(p["rigid"]), margin=margin,
        maxIterations=int(p["max_iterations"]), deltaPhiMin=float(p["delta_phi_min"]), verbose=False,
    )
    if int(p["bin_start"]) > 1:
        return DIC.registerMultiscale(a, b, int(p["bin_start"]), binStop=1, **kwargs)
    return DIC.register(a, b, **kwargs)


def register_volumes(lq_up, hq, mask=None, preset="default", **overrides):
    """Register the ×2-upscaled LQ crop onto the HQ scan with spam.

    Steps: prepare both volumes (:func:`prepare_for_registration`), find a
    first translation (:func:`coarse_translation`), run spam
    (``registerMultiscale`` from ``bin_start``, else ``register``). With
    ``hq_blur_sigma="auto"`` the blur that makes HQ look like the registered
    LQ is then measured (:func:`match_resolution`) and, when it is not zero,
    spam runs again from the first Φ on the HQ blurred that much: once LQ and
    HQ share one resolution, the model ``im1(x) = im2(Φ·x)`` holds and HQ noise
    weighs less.

    Parameters
    ----------
    lq_up : ndarray, shape (Z, Y, X)
        The LQ crop upscaled onto the HQ grid (:func:`resample_lq_onto_hq`).
    hq : ndarray, shape (Z, Y, X)
        The HQ scan, same shape.
    mask : ndarray of bool, shape (Y, X), optional
        Where the HQ data can be trusted (the reconstruction disc): the blur
        averages only voxels inside it, and the fit uses the mask shrunk by
        twice the blur, so nothing from outside drives it.
    preset : str
        Key of :data:`PRESETS`.
    **overrides
        Any preset parameter (``bin_start``, ``max_iterations``, ``delta_phi_min``,
        ``rigid``, ``margin_fraction``, ``blur_sigma``, ``hq_blur_sigma``,
        ``coarse_search``, ``coarse_max_shift_vox``).

    Returns
    -------
    dict
        ``phi`` (4×4 list, ``hq ≈ applyPhi(lq_up, Φ)``), ``translation_vox``,
        ``rotation_deg``, ``zoom``, ``status`` (spam's returnStatus of the
        last run), ``status_text``, ``converged`` (status == 2 and the
        residual did not grow),
        ``iterations`` (of the last run, at full resolution), ``spam_error``,
        ``residual_before`` / ``residual_after`` (RMS grey difference of the
        prepared volumes inside the fit mask before and after applying Φ, in
        units of their inter-quartile range), ``initial_translation_vox``,
        ``hq_blur_sigma`` (the extra HQ blur of the last run), ``passes``
        (status, iterations and Φ decomposition of each spam run), ``margin``,
        ``wall_s``.
    """
    p = resolve(PRESETS, preset, **overrides)
    lq_up, hq = np.asarray(lq_up), np.asarray(hq)
    if lq_up.ndim != 3 or hq.ndim != 3:
        raise ValueError(f"register_volumes: expected 3D volumes, got {lq_up.ndim}D LQ and {hq.ndim}D HQ")
    if lq_up.shape != hq.shape:
        raise ValueError(f"register_volumes: upscaled LQ {lq_up.shape} and HQ {hq.shape} must have the same shape")
    if mask is not None:
        mask = np.asarray(mask, bool)
        if mask.shape != hq.shape[1:]:
            raise ValueError(f"register_volumes: mask {mask.shape} must be (Y, X) = {hq.shape[1:]}")
    margin = max(2, int(p["margin_fraction"] * min(hq.shape)))
    if min(hq.shape) < 2 * margin + 8:
        raise ValueError(f"register_volumes: volumes of shape {hq.shape} are too small to register (need > {2 * margin + 8} per side)")
    auto = p["hq_blur_sigma"] == "auto"
    hq_sigma = 0.0 if auto else float(p["hq_blur_sigma"])
    t0 = time.perf_counter()

    def prepared(hq_sigma):
        # HQ blurred to the LQ resolution, then like LQ: G_s * (G_h * hq) = G_sqrt(s^2 + h^2) * hq
        sigma_b = float(np.hypot(p["blur_sigma"], hq_sigma))
        a = prepare_for_registration(lq_up, mask, p["blur_sigma"])
        b = prepare_for_registration(hq, mask, sigma_b)
        return a, b, _fit_mask(mask, max(p["blur_sigma"], sigma_b))

    a, b, fit = prepared(hq_sigma)
    phi_init = np.eye(4)
    if p["coarse_search"]:
        t_coarse = coarse_translation(a, b, fit, max_shift_vox=p["coarse_max_shift_vox"])
        phi_init[:3, 3] = t_coarse
        # spam compares im1 with the moved im2 inside the margin: keep the motion inside it
        margin = max(margin, int(np.ceil(np.abs(t_coarse).max())) + 2)
    reg = _spam(a, b, fit, phi_init, margin, p)
    passes = [{"hq_blur_sigma": hq_sigma, "status": int(reg["returnStatus"]), "iterations": int(reg["iterations"]),
               **decompose_phi(reg["Phi"])}]
    if auto and int(reg["returnStatus"]) == 2:
        # the resolution gap, measured on the registered pair
        aligned_lq = apply_phi(lq_up, reg["Phi"])
        inner = slice(margin, -margin)  # along z; in-plane the fit mask keeps off the edges
        hq_sigma, _ = match_resolution(aligned_lq[inner], hq[inner], fit)
        if hq_sigma > 0:
            a, b, fit = prepared(hq_sigma)
            reg = _spam(a, b, fit, np.asarray(reg["Phi"], float), margin, p)
            passes.append({"hq_blur_sigma": hq_sigma, "status": int(reg["returnStatus"]),
                           "iterations": int(reg["iterations"]), **decompose_phi(reg["Phi"])})
    phi = np.asarray(reg["Phi"], dtype=float)
    status = int(reg["returnStatus"])

    # residuals on the interior (the margin is where applyPhi pulls in zeros)
    region = np.zeros(a.shape, bool)
    region[margin:-margin, margin:-margin, margin:-margin] = True
    if fit is not None:
        region &= fit
    residual_before = _residual(a, b, region)
    residual_after = _residual(apply_phi(a, phi), b, region)
    return {
        "phi": phi.tolist(),
        **decompose_phi(phi),
        "status": status,
        "status_text": SPAM_STATUS.get(status, "unknown")
        + ("" if residual_after <= residual_before else "; and the residual grew: a false optimum"),
        # spam's own criterion, and a sanity check: a fit that makes the images differ more is no fit
        "converged": status == 2 and residual_after <= residual_before,
        "iterations": int(reg["iterations"]),
        "spam_error": float(reg["error"]),
        "residual_before": residual_before,
        "residual_after": residual_after,
        "residual_units": "RMS of the blurred, robust-z-scored grey difference inside the fit mask (IQR units)",
        "initial_translation_vox": [float(v) for v in phi_init[:3, 3]],
        "hq_blur_sigma": float(hq_sigma),
        "passes": passes,
        "fit_mask_pixels": None if fit is None else int(fit.sum()),
        "margin": int(margin),
        "parameters": {k: p[k] for k in REGISTRATION_KEYS},
        "wall_s": time.perf_counter() - t0,
    }
