"""The spam registration of the ×2-upscaled LQ crop onto the HQ scan.

:func:`register_volumes` prepares both scans (:func:`prepare_for_registration`),
finds a first translation (:func:`coarse_translation`), runs spam's image
correlation (``spam.DIC.registerMultiscale`` / ``spam.DIC.register``), matches
the HQ resolution to the LQ one (:func:`match_resolution`) and refines once
more. Each spam run is judged by :mod:`.convergence` (Φ's stability, the
residual drop, plausibility), not by spam's status alone; when the result is
not converged, a coarse-to-fine retry on smoother scans follows. Φ follows the
convention of :mod:`.geometry`.
"""

import time

import numpy as np
import scipy.ndimage as ndi

from .._spam import import_spam
from ..presets import resolve
from .convergence import advice, judge_convergence
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



def _bin_start_for(shape, margin, bin_start, min_side=16):
    """The first binning level, halved until the binned volume keeps ``min_side`` voxels inside the margin.

    spam's ``registerMultiscale`` bins both volumes by ``bin_start``; on a small
    volume a large level leaves a few voxels (or none) between the margins.
    """
    k = max(1, int(bin_start))
    while k > 1 and min(shape) // k - 2 * (margin // k) < min_side:
        k //= 2
    return k


def _spam(a, b, fit_mask, phi_init, margin, p, bin_start):
    """One spam run on prepared volumes: registerMultiscale from ``bin_start`` (> 1), else register.

    The iteration journal (``debugIterations``) is kept: Φ's stability is judged from it.
    """
    DIC = import_spam("DIC")
    kwargs = dict(
        im1mask=None if fit_mask is None else np.broadcast_to(fit_mask, a.shape).copy(),
        PhiInit=np.asarray(phi_init, float), PhiRigid=bool(p["rigid"]), margin=margin,
        maxIterations=int(p["max_iterations"]), deltaPhiMin=float(p["delta_phi_min"]), verbose=False,
        debugIterations=True,
    )
    if bin_start > 1:
        # forceChangeScale: always finish at full resolution (a coarse level that stops at its
        # iteration limit would otherwise be returned as the result, its journal in binned voxels)
        return DIC.registerMultiscale(a, b, bin_start, binStop=1, forceChangeScale=True, **kwargs)
    return DIC.register(a, b, **kwargs)


def _interior(shape, margin, fit):
    """The region residuals are measured on: inside the margin (applyPhi pulls in zeros there) and the fit mask."""
    region = np.zeros(shape, bool)
    region[margin:-margin, margin:-margin, margin:-margin] = True
    return region if fit is None else region & fit


def register_volumes(lq_up, hq, mask=None, preset="default", **overrides):
    """Register the ×2-upscaled LQ crop onto the HQ scan with spam, and judge whether it converged.

    Steps: prepare both volumes (:func:`prepare_for_registration`), find a
    first translation (:func:`coarse_translation`), run spam
    (``registerMultiscale`` from ``bin_start``, halved on small volumes, else
    ``register``). With ``hq_blur_sigma="auto"`` the blur that makes HQ look
    like the registered LQ is then measured (:func:`match_resolution`) and,
    when it is not zero, spam runs again from the first Φ on the HQ blurred
    that much: once LQ and HQ share one resolution, the model
    ``im1(x) = im2(Φ·x)`` holds and HQ noise weighs less.

    Every run is judged by :func:`.convergence.judge_convergence` (spam's
    status, the stability of Φ over the last iterations, the residual drop,
    Φ's plausibility), not by spam's status alone. When the result is not
    converged, a coarse-to-fine retry follows for each of
    ``retry_blur_factors``: spam from the coarse translation on scans smoothed
    ``factor`` times more, then refined at the preset smoothing from there. The
    first converged run wins; otherwise the first run is reported with
    ``advice``.

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
        Any entry of :data:`REGISTRATION_KEYS`.

    Returns
    -------
    dict
        ``phi`` (4×4 list, ``hq ≈ applyPhi(lq_up, Φ)``), ``translation_vox``,
        ``rotation_deg``, ``zoom``, ``status`` (spam's returnStatus of the
        reported run), ``status_text`` (spam's status, and the judgement and
        advice when not converged), ``converged`` (the judgement),
        ``convergence`` (:func:`.convergence.judge_convergence` of the reported
        run: stability numbers, residual drop, plausibility, reasons),
        ``advice`` (list of str, empty when converged), ``iterations``,
        ``spam_error``, ``residual_before`` / ``residual_after`` (RMS grey
        difference of the prepared volumes inside the fit mask before and
        after applying Φ, in units of their inter-quartile range),
        ``initial_translation_vox``, ``hq_blur_sigma`` (the extra HQ blur of
        the reported run), ``blur_sigma`` (its smoothing), ``bin_start`` (the
        first binning level used), ``passes`` (every spam run: its role,
        smoothing, status, iterations, judgement and Φ decomposition),
        ``fit_mask_pixels``, ``margin``, ``parameters``, ``wall_s``.
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
    t0 = time.perf_counter()

    def prepared(hq_sigma, blur):
        # HQ blurred to the LQ resolution, then like LQ: G_s * (G_h * hq) = G_sqrt(s^2 + h^2) * hq
        sigma_b = float(np.hypot(blur, hq_sigma))
        a = prepare_for_registration(lq_up, mask, blur)
        b = prepare_for_registration(hq, mask, sigma_b)
        return a, b, _fit_mask(mask, max(blur, sigma_b))

    hq_sigma0 = 0.0 if auto else float(p["hq_blur_sigma"])
    a, b, fit = prepared(hq_sigma0, p["blur_sigma"])
    phi_init = np.eye(4)
    if p["coarse_search"]:
        t_coarse = coarse_translation(a, b, fit, max_shift_vox=p["coarse_max_shift_vox"])
        phi_init[:3, 3] = t_coarse
        # spam compares im1 with the moved im2 inside the margin: keep the motion inside it
        margin = max(margin, int(np.ceil(np.abs(t_coarse).max())) + 2)
    bin_start = _bin_start_for(hq.shape, margin, p["bin_start"])
    passes = []

    def run(role, hq_sigma, blur, init):
        a, b, fit = prepared(hq_sigma, blur)
        reg = _spam(a, b, fit, init, margin, p, bin_start)
        phi = np.asarray(reg["Phi"], dtype=float)
        region = _interior(a.shape, margin, fit)
        before, after = _residual(a, b, region), _residual(apply_phi(a, phi), b, region)
        d = decompose_phi(phi)
        judged = judge_convergence(int(reg["returnStatus"]), reg.get("iterationsJournal"), d, init[:3, 3],
                                   before, after, margin, p)
        passes.append({"role": role, "hq_blur_sigma": float(hq_sigma), "blur_sigma": float(blur),
                       "status": int(reg["returnStatus"]), "iterations": int(reg["iterations"]),
                       "converged": judged["converged"], "residual_drop": judged["residual_drop"],
                       "translation_change_vox": judged["translation_change_vox"],
                       "rotation_change_deg": judged["rotation_change_deg"], **d})
        return {"reg": reg, "phi": phi, "judged": judged, "hq_sigma": float(hq_sigma), "blur": float(blur),
                "fit": fit, "before": before, "after": after}

    first = result = run("first", hq_sigma0, p["blur_sigma"], phi_init)
    if auto and result["judged"]["converged"]:
        # the resolution gap, measured on the registered pair
        inner = slice(margin, -margin)  # along z; in-plane the fit mask keeps off the edges
        hq_sigma, _ = match_resolution(apply_phi(lq_up, result["phi"])[inner], hq[inner], result["fit"])
        if hq_sigma > 0:
            result = first = run("resolution matched", hq_sigma, p["blur_sigma"], result["phi"])
    if not result["judged"]["converged"]:
        # coarse to fine: smoother scans from the coarse start, then the preset smoothing from there
        for factor in p["retry_blur_factors"]:
            try:
                coarse = run(f"retry: blur x{factor:g}", first["hq_sigma"], factor * p["blur_sigma"], phi_init)
            except ValueError as exc:  # the smoothing is too wide for the mask: no retry at this level
                passes.append({"role": f"retry: blur x{factor:g}", "hq_blur_sigma": first["hq_sigma"],
                               "blur_sigma": float(factor * p["blur_sigma"]), "status": None, "iterations": 0,
                               "converged": False, "skipped": str(exc)})
                continue
            if not coarse["judged"]["plausible"]:
                continue
            fine = run(f"retry: refine after blur x{factor:g}", first["hq_sigma"], p["blur_sigma"], coarse["phi"])
            if fine["judged"]["converged"]:
                result = fine
                break
            if coarse["judged"]["converged"]:
                result = coarse
                break
        else:
            result = first

    reg, phi, judged = result["reg"], result["phi"], result["judged"]
    status = int(reg["returnStatus"])
    tips = [] if judged["converged"] else advice(judged, p, hq.shape, margin, phi_init[:3, 3])
    status_text = SPAM_STATUS.get(status, "unknown")
    if not judged["converged"]:
        status_text += "; not converged: " + "; ".join(judged["reasons"]) + ". Try: " + "; ".join(tips)
    return {
        "phi": phi.tolist(),
        **decompose_phi(phi),
        "status": status,
        "status_text": status_text,
        "converged": bool(judged["converged"]),
        "convergence": judged,
        "advice": tips,
        "iterations": int(reg["iterations"]),
        "spam_error": float(reg["error"]),
        "residual_before": result["before"],
        "residual_after": result["after"],
        "residual_units": "RMS of the blurred, robust-z-scored grey difference inside the fit mask (IQR units)",
        "initial_translation_vox": [float(v) for v in phi_init[:3, 3]],
        "hq_blur_sigma": result["hq_sigma"],
        "blur_sigma": result["blur"],
        "bin_start": int(bin_start),
        "passes": passes,
        "fit_mask_pixels": None if result["fit"] is None else int(result["fit"].sum()),
        "margin": int(margin),
        "parameters": {k: p[k] for k in REGISTRATION_KEYS},
        "wall_s": time.perf_counter() - t0,
    }
