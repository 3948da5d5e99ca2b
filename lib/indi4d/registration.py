"""Registration of the ×2-upscaled LQ scan onto the HQ scan with spam (chapter 02).

The HQ scan covers a small region of the LQ scan, but moving the sample between
the two acquisitions leaves a small rigid (or affine) misalignment. We crop
the LQ region that the HQ scan covers, upscale it ×2 onto the HQ grid, and
measure the misalignment with spam's image correlation
(``spam.DIC.registerMultiscale`` / ``spam.DIC.register``).

Convention (spam's; see CONTRIBUTING.md): Φ is a 4×4 deformation function about
the centre of the HQ volume, ``(shape - 1) / 2``, and the HQ scan shows the
sample moved by Φ relative to the upscaled LQ crop::

    hq ≈ spam.DIC.applyPhi(lq_up, Φ)          i.e.  hq(x) = lq_up(Φ⁻¹·x)
    Φ  = spam.DIC.register(lq_up, hq)["Phi"]  (spam: im1(x) = im2(Φ·x))

:func:`register_scans` does it all and writes the ``pairs`` folder that the
training chapters read.
"""

import json
import time
import warnings
from pathlib import Path

import numpy as np
import scipy.ndimage as ndi

from . import preprocess
from ._atomic import atomic_path
from .data import file_sha256
from ._spam import import_spam
from .io import read_volume
from .presets import resolve

PRESETS = {
    # tests / CI: HQ volumes of 32-64^3 voxels, seconds
    "tiny": {
        "bin_start": 1,  # spam multiscale: first binning level (power of 2)
        "max_iterations": 60,  # per binning level
        "delta_phi_min": 1e-4,  # convergence: |ΔΦ| below this
        "rigid": True,  # rigid Φ (the sample is moved, not deformed) or affine (False, as in the paper)
        "margin_fraction": 0.1,  # spam margin, fraction of the smallest HQ side
        "blur_sigma": 1.0,  # Gaussian blur (HQ voxels) of both scans before registering
        "hq_blur_sigma": "auto",  # extra blur of HQ to match the LQ resolution: "auto" (from the data) or voxels
        "coarse_search": True,  # cross-correlation search for the initial translation
        "coarse_max_shift_vox": 4.0,  # largest translation it looks for, per axis (HQ voxels)
        "disc_radius": None,  # reconstruction disc radius (HQ pixels); None = from the data
        "disc_margin": 2,  # pixels trimmed off the disc edge (the mask of the pairs)
        "registration_radius_fraction": 0.95,  # registration keeps off the edge of the HQ disc
        "equalisation": "global",  # "none" | "global" | "clahe"
        "n_quantiles": 1024,  # size of the equalisation table
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "guard_slices": 1,  # slices dropped between a held-out block and training
        "z_margin": 0,  # slices dropped at each end of the HQ volume
        "interpolation_order": 3,  # spline order when resampling LQ onto HQ
    },
    # the book on 2 CPU cores: HQ volumes of ~128-256^3 voxels
    "default": {
        "bin_start": 2,
        "max_iterations": 60,
        "delta_phi_min": 1e-4,
        "rigid": True,
        "margin_fraction": 0.1,
        "blur_sigma": 2.0,  # noisy 100 nm LQ: more smoothing than for the tiny (clean) tests
        "hq_blur_sigma": "auto",
        "coarse_search": True,
        "coarse_max_shift_vox": 16.0,
        "disc_radius": None,
        "disc_margin": 2,
        "registration_radius_fraction": 0.95,
        "equalisation": "global",
        "n_quantiles": 1024,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "guard_slices": 2,
        "z_margin": 0,
        "interpolation_order": 3,
    },
    # the paper's scale (2048^3 HQ, mask radius 1024 px), for a large machine
    "paper": {
        "bin_start": 8,
        "max_iterations": 50,
        "delta_phi_min": 1e-4,
        "rigid": False,
        "margin_fraction": 0.05,
        "blur_sigma": 1.0,
        "hq_blur_sigma": "auto",
        "coarse_search": True,
        "coarse_max_shift_vox": 64.0,
        "disc_radius": 1024.0,
        "disc_margin": 0,
        "registration_radius_fraction": 0.95,
        "equalisation": "global",
        "n_quantiles": 4096,
        "val_fraction": 0.05,
        "test_fraction": 0.05,
        "guard_slices": 4,
        "z_margin": 0,
        "interpolation_order": 3,
    },
}

#: spam's ``returnStatus`` codes.
SPAM_STATUS = {
    2: "converged (|ΔΦ| below the threshold)",
    1: "hit the maximum number of iterations",
    -1: "diverging (error grew)",
    -2: "singular matrix M (too little image texture)",
    -3: "diverging (volume change out of bounds)",
    -4: "singular Φ (diverged)",
}


#: The preset entries :func:`register_volumes` uses.
_REGISTRATION_KEYS = ("bin_start", "max_iterations", "delta_phi_min", "rigid", "margin_fraction", "blur_sigma",
                      "hq_blur_sigma", "coarse_search", "coarse_max_shift_vox")


class RegistrationError(RuntimeError):
    """The registration did not converge (or cannot run); the message says why."""


# --------------------------------------------------------------------------- geometry


def decompose_phi(phi):
    """Translation, rotation and zoom of a 4×4 Φ (``spam.deformation.decomposePhi``).

    Parameters
    ----------
    phi : array_like, shape (4, 4)

    Returns
    -------
    dict
        ``translation_vox`` [z, y, x] (voxels), ``rotation_deg`` [rz, ry, rx]
        (spam's rotation vector, degrees), ``zoom`` [z, y, x], all lists of float.
    """
    deformation = import_spam("deformation")
    d = deformation.decomposePhi(np.asarray(phi, dtype=float))
    return {
        "translation_vox": [float(v) for v in d["t"]],
        "rotation_deg": [float(v) for v in d["r"]],
        "zoom": [float(v) for v in d["z"]],
    }


def compute_phi(translation_vox=(0.0, 0.0, 0.0), rotation_deg=(0.0, 0.0, 0.0)):
    """The 4×4 Φ of a rigid motion (``spam.deformation.computePhi``), as a float64 array."""
    deformation = import_spam("deformation")
    return np.asarray(deformation.computePhi({"t": list(translation_vox), "r": list(rotation_deg)}), dtype=float)


def misalignment_error(phi, reference_phi):
    """How far a recovered Φ is from a known one.

    Parameters
    ----------
    phi, reference_phi : array_like, shape (4, 4)
        Recovered and true Φ (same centre).

    Returns
    -------
    dict
        ``translation_vox`` (Euclidean norm of the translation difference,
        voxels), ``rotation_deg`` (angle of the relative rotation, degrees),
        ``zoom`` (largest |zoom difference|).
    """
    a, b = decompose_phi(phi), decompose_phi(reference_phi)
    dt = np.subtract(a["translation_vox"], b["translation_vox"])
    ra = compute_phi(rotation_deg=a["rotation_deg"])[:3, :3]
    rb = compute_phi(rotation_deg=b["rotation_deg"])[:3, :3]
    # angle of R_a R_b^T: cos(θ) = (trace - 1) / 2
    cos = np.clip((np.trace(ra @ rb.T) - 1.0) / 2.0, -1.0, 1.0)
    return {
        "translation_vox": float(np.linalg.norm(dt)),
        "rotation_deg": float(np.degrees(np.arccos(cos))),
        "zoom": float(np.max(np.abs(np.subtract(a["zoom"], b["zoom"])))),
    }


def apply_phi(volume, phi):
    """Apply Φ to a volume with spam's trilinear interpolator (``spam.DIC.applyPhi``).

    ``apply_phi(lq_up, Φ)`` brings the upscaled LQ crop onto the HQ scan.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X)
    phi : array_like, shape (4, 4)
        About the volume centre ``(shape - 1) / 2``.

    Returns
    -------
    ndarray, float32, shape (Z, Y, X)
        Voxels mapped from outside the input are 0.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise ValueError(f"apply_phi: expected a 3D volume, got shape {volume.shape}")
    return import_spam("DIC").applyPhi(volume.astype(np.float32), Phi=np.asarray(phi, dtype=float))


def hq_region(lq_shape, hq_shape, meta=None, hq_start_vox=None, source="meta.json"):
    """Where the HQ scan lies inside the LQ scan, in LQ voxels (half-open).

    Parameters
    ----------
    lq_shape, hq_shape : tuple of int
        (Z, Y, X) of the two scans.
    meta : dict, optional
        ``meta.json`` with ``hq_region_in_lq``.
    hq_start_vox : sequence of int, optional
        A coarse start (z, y, x) given by the user; used when ``meta`` is None.
        With neither, the HQ scan is assumed centred in the LQ scan.
    source : str
        Name of the metadata file, for the error messages.

    Returns
    -------
    start, stop : ndarray of int, shape (3,)
        ``stop - start == hq_shape / 2``.
    """
    lq_shape, hq_shape = np.asarray(lq_shape, int), np.asarray(hq_shape, int)
    if np.any(hq_shape % 2):
        raise ValueError(f"HQ volume shape {tuple(hq_shape)} must be even on every axis (two HQ voxels per LQ voxel)")
    size = hq_shape // 2
    if meta is not None:
        try:
            region = meta["hq_region_in_lq"]
            start, stop = np.asarray(region["start_vox"], int), np.asarray(region["stop_vox"], int)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: no valid 'hq_region_in_lq' with 'start_vox' and 'stop_vox' ({exc!r})") from None
        if start.shape != (3,) or stop.shape != (3,):
            raise ValueError(f"{source}: 'hq_region_in_lq' must give 3 coordinates (z, y, x)")
        if np.any(stop - start != size):
            raise ValueError(
                f"{source}: hq_region_in_lq spans {tuple(stop - start)} LQ voxels but the HQ volume "
                f"{tuple(hq_shape)} needs {tuple(size)} (HQ shape = 2 x region)"
            )
    else:
        if hq_start_vox is None:
            start = (lq_shape - size) // 2
            warnings.warn(
                f"no meta.json and no hq_start_vox: assuming the HQ scan is centred in the LQ scan (start {tuple(start)})",
                stacklevel=2,
            )
        else:
            start = np.asarray(hq_start_vox, int)
            if start.shape != (3,):
                raise ValueError(f"hq_start_vox must be (z, y, x), got {hq_start_vox!r}")
        stop = start + size
    if np.any(start < 0) or np.any(stop > lq_shape):
        raise ValueError(
            f"{source}: the HQ region {tuple(start)}..{tuple(stop)} is not inside the LQ volume of shape {tuple(lq_shape)}"
        )
    return start, stop


def resample_lq_onto_hq(lq, start, stop, phi=None, order=3):
    """Cut, upscale ×2 and align the LQ scan onto the HQ grid in one interpolation.

    Equivalent to ``apply_phi(upscale(lq[start:stop]), Φ)`` but with one cubic
    spline resampling instead of a cubic upscaling followed by a trilinear
    one (which would blur the LQ slices a second time), and with real LQ data
    (not zeros) where Φ reaches outside the crop.

    Parameters
    ----------
    lq : ndarray, shape (Z, Y, X)
        The whole LQ scan.
    start, stop : sequence of int
        The HQ region in LQ voxels (half-open), from :func:`hq_region`.
    phi : array_like, shape (4, 4), optional
        Φ about the centre of the HQ volume; default identity (plain upscaling).
    order : int
        Spline order (3 = cubic).

    Returns
    -------
    ndarray, float32, shape 2 * (stop - start)
    """
    lq = np.asarray(lq)
    start, stop = np.asarray(start, int), np.asarray(stop, int)
    out_shape = tuple(2 * (stop - start))
    phi = np.eye(4) if phi is None else np.asarray(phi, dtype=float)
    phi_inv = np.linalg.inv(phi)
    a, b = phi_inv[:3, :3], phi_inv[:3, 3]
    c = (np.asarray(out_shape) - 1) / 2.0
    # HQ voxel x samples lq_up at p = A (x - c) + b + c (spam's applyPhi), and
    # lq_up(p) = lq(start + (p + 0.5) / 2 - 0.5) on cell-centred grids.
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in out_shape], indexing="ij")).reshape(3, -1).T
    p = (corners - c) @ a.T + b + c
    reach = int(np.ceil(np.max(np.abs(p - corners)) / 2.0)) + order + 2  # LQ voxels needed beyond the crop
    lo, hi = start - reach, stop + reach
    # take the padded crop with edge values where it leaves the LQ volume
    idx = [np.clip(np.arange(l, h), 0, n - 1) for l, h, n in zip(lo, hi, lq.shape)]
    crop = lq[np.ix_(*idx)].astype(np.float32)
    matrix = a / 2.0
    offset = (b + c - a @ c + 0.5) / 2.0 - 0.5 + reach  # q = (A/2) x + offset in crop voxels
    return ndi.affine_transform(crop, matrix, offset=offset, output_shape=out_shape, order=order, mode="nearest").astype(np.float32)


# --------------------------------------------------------------------------- registration


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
        "parameters": {k: p[k] for k in _REGISTRATION_KEYS},
        "wall_s": time.perf_counter() - t0,
    }


# --------------------------------------------------------------------------- the whole step


def _load_scan(path, what):
    volume, vmeta = read_volume(path)
    if volume.ndim != 3:
        raise ValueError(f"{path}: the {what} scan must be a 3D (Z, Y, X) volume, got shape {volume.shape}")
    if not np.issubdtype(volume.dtype, np.number) or np.iscomplexobj(volume):
        raise ValueError(f"{path}: the {what} scan has non-numeric dtype {volume.dtype}")
    if np.issubdtype(volume.dtype, np.floating) and not np.all(np.isfinite(volume)):
        raise ValueError(f"{path}: the {what} scan contains NaN or infinite values")
    if volume.min() == volume.max():
        raise ValueError(f"{path}: the {what} scan is constant ({volume.min()}); nothing to register")
    return volume, vmeta


def _write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=preprocess._json_default) + "\n")


def register_scans(lq_path, hq_path, out_dir, meta_path=None, preset="default", seed=0, hq_start_vox=None,
                   allow_unconverged=False, progress=True, **overrides):
    """Register an LQ/HQ scan pair and write the training pairs (the ``indi4d register`` command).

    Steps: crop the LQ region under the HQ scan, upscale it ×2, register it
    onto HQ with spam, resample the LQ scan onto HQ with the recovered Φ,
    mask the reconstruction disc, equalise and scale both to [-1, 1], slice
    into xy pairs and split them by contiguous z blocks.

    Parameters
    ----------
    lq_path, hq_path : str or Path
        The LQ (e.g. 100 nm) and HQ (50 nm) scans, (Z, Y, X) volumes.
    out_dir : str or Path
        The ``pairs`` folder to write: ``pairs.npz``, ``phi.json``,
        ``normalisation.json``, ``pairs.json`` (see CONTRIBUTING.md).
    meta_path : str or Path, optional
        ``meta.json`` of a simulated data set (``hq_region_in_lq``; its
        ``misalignment`` is compared with the recovered Φ when present).
    preset : str
        Key of :data:`PRESETS`.
    seed : int
        Seed of the train/val/test split.
    hq_start_vox : sequence of int, optional
        Coarse (z, y, x) start of the HQ region in LQ voxels, without ``meta_path``.
    allow_unconverged : bool
        Write the pairs even when spam did not converge (with a warning).
    progress : bool
        Show a progress bar over the steps.
    **overrides
        Preset parameters to replace.

    Returns
    -------
    dict
        The content of ``phi.json``.

    Raises
    ------
    RegistrationError
        When spam did not converge and ``allow_unconverged`` is False
        (``phi.json`` is still written, with ``"converged": false``).
    ValueError
        For bad input, naming the file.
    """
    from tqdm import tqdm

    params = resolve(PRESETS, preset, **overrides)
    lq_path, hq_path, out_dir = Path(lq_path), Path(hq_path), Path(out_dir)
    steps = tqdm(total=5, desc="register", disable=not progress)
    t_start = time.perf_counter()

    steps.set_postfix_str("reading")
    lq, lq_meta = _load_scan(lq_path, "LQ")
    hq, hq_meta = _load_scan(hq_path, "HQ")
    lq_vs, hq_vs = lq_meta.get("voxel_size_nm"), hq_meta.get("voxel_size_nm")
    if lq_vs and hq_vs and not np.isclose(float(lq_vs), 2.0 * float(hq_vs), rtol=1e-3):
        raise ValueError(f"{lq_path}, {hq_path}: voxel sizes {lq_vs} and {hq_vs} nm are not in a 2:1 ratio")
    meta = None
    if meta_path is not None:
        meta_path = Path(meta_path)
        try:
            meta = json.loads(meta_path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"{meta_path}: no such metadata file") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{meta_path}: not valid JSON ({exc})") from None
    start, stop = hq_region(lq.shape, hq.shape, meta=meta, hq_start_vox=hq_start_vox,
                            source=str(meta_path) if meta_path else f"{hq_path} in {lq_path}")
    steps.update()

    steps.set_postfix_str("registering")
    # the disc radius: a parameter, else what meta.json says, else estimated from the HQ data
    if params["disc_radius"]:
        radius, radius_source = float(params["disc_radius"]), "parameter"
    elif meta is not None and meta.get("hq_disc_radius_vox"):
        radius, radius_source = float(meta["hq_disc_radius_vox"]), "meta.json"
    else:
        radius, radius_source = preprocess.estimate_disc_radius(hq), "estimated from the HQ data"
    mask = preprocess.disc_mask(hq.shape, radius=max(1.0, radius - params["disc_margin"]))
    # near the edge of the HQ disc the HQ scan sees a truncated sample (an interior
    # scan) while LQ does not: register on the central part only
    reg_mask = preprocess.disc_mask(hq.shape, radius=max(1.0, params["registration_radius_fraction"] * radius))
    lq_up = resample_lq_onto_hq(lq, start, stop, order=params["interpolation_order"])
    report = register_volumes(lq_up, hq, reg_mask, preset=preset, **{k: params[k] for k in _REGISTRATION_KEYS})
    report["registration_mask_radius_px"] = float(params["registration_radius_fraction"] * radius)
    report["hq_region_in_lq"] = {"start_vox": start.tolist(), "stop_vox": stop.tolist()}
    report["centre"] = [(n - 1) / 2.0 for n in hq.shape]
    if meta is not None and "misalignment" in meta and "phi" in meta["misalignment"]:
        applied = meta["misalignment"]
        report["applied"] = {k: applied[k] for k in ("translation_vox", "rotation_deg", "phi") if k in applied}
        report["error_vs_applied"] = misalignment_error(report["phi"], applied["phi"])
    steps.update()

    out_dir.mkdir(parents=True, exist_ok=True)
    if not report["converged"]:
        msg = (f"spam registration of {hq_path} onto {lq_path} did not converge: status {report['status']} "
               f"({report['status_text']}) after {report['iterations']} iterations")
        report["timing_s"] = {"total": time.perf_counter() - t_start, "registration": report["wall_s"]}
        _write_json(out_dir / "phi.json", report)
        if not allow_unconverged:
            steps.close()
            raise RegistrationError(msg + f"; see {out_dir / 'phi.json'} (pass allow_unconverged / --allow-unconverged to use it anyway)")
        warnings.warn(msg + "; using it anyway (allow_unconverged)", stacklevel=2)

    steps.set_postfix_str("resampling")
    lq_aligned = resample_lq_onto_hq(lq, start, stop, report["phi"], order=params["interpolation_order"])
    steps.update()

    steps.set_postfix_str("normalising")
    method = params["equalisation"]
    normalisation = {
        "lq": preprocess.fit_normalisation(lq_aligned, mask, method=method, n_quantiles=params["n_quantiles"]),
        "hq": preprocess.fit_normalisation(hq, mask, method=method, n_quantiles=params["n_quantiles"]),
    }
    zm = int(params["z_margin"])
    z_all = np.arange(zm, hq.shape[0] - zm)
    labels = preprocess.split_slices(z_all.size, params["val_fraction"], params["test_fraction"],
                                     guard=params["guard_slices"], seed=seed)
    keep = labels != "guard"
    z = z_all[keep]
    lq_n = preprocess.normalise(lq_aligned[z], normalisation["lq"])
    hq_n = preprocess.normalise(hq[z], normalisation["hq"])
    # outside the reconstruction disc there is no data: both set to -1 (black)
    lq_n[:, ~mask] = -1.0
    hq_n[:, ~mask] = -1.0
    steps.update()

    steps.set_postfix_str("writing")
    split = labels[keep]
    report["timing_s"] = {"total": time.perf_counter() - t_start, "registration": report["wall_s"]}
    blocks = {s: [int(z[split == s].min()), int(z[split == s].max()) + 1] if np.any(split == s) else None for s in preprocess.SPLITS}
    provenance = {
        "indi4d_version": _version(),
        "inputs": {
            "lq": {"path": str(lq_path), "sha256": file_sha256(lq_path), "shape": list(lq.shape), "dtype": str(lq.dtype), "voxel_size_nm": lq_vs},
            "hq": {"path": str(hq_path), "sha256": file_sha256(hq_path), "shape": list(hq.shape), "dtype": str(hq.dtype), "voxel_size_nm": hq_vs},
            "meta": None if meta_path is None else {"path": str(meta_path), "sha256": file_sha256(meta_path)},
        },
        "preset": preset,
        "seed": int(seed),
        "parameters": params,
        "hq_region_in_lq": report["hq_region_in_lq"],
        "phi": {k: report[k] for k in ("phi", "translation_vox", "rotation_deg", "zoom", "status", "converged")},
        "mask": {"radius_px": float(radius - params["disc_margin"]), "disc_radius_px": radius, "source": radius_source,
                 "shape": list(mask.shape)},
        "normalisation": {"method": method, "outside_mask_value": -1.0},
        "split": {
            "counts": {s: int(np.sum(split == s)) for s in preprocess.SPLITS},
            "z_blocks": blocks,
            "guard_slices": int(params["guard_slices"]),
            "dropped_z": z_all[~keep].tolist(),
        },
    }
    preprocess.save_pairs(out_dir, lq_n, hq_n, mask, z, split, report, normalisation, provenance)
    steps.update()
    steps.close()
    return report


def _version():
    from . import __version__

    return __version__
