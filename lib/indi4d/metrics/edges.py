"""Edges against the true boundary: where each edge sits (placement) and how wide it is once aligned.

The averaged-profile FWHM of :mod:`~indi4d.metrics.sharpness` lines every
profile up on the *true* boundary. An edge that is sharp but misplaced by a
different amount at each boundary point then averages into a broad edge, and
reads as blur. The two measures here tell the two apart:

* :func:`edge_placement` -- the 50 % crossing of each profile against the true
  boundary (``s = 0`` of :func:`~indi4d.metrics.profiles.edge_profiles`, whose
  boundary is the truth labels' contour): RMS and mean offset, nm;
* :func:`self_aligned_width` -- each profile shifted to its own 50 % crossing
  before averaging, then the FWHM of the derivative
  (:func:`~indi4d.metrics.sharpness.edge_spread_width`) and the 10-90 % rise.

:func:`edge_metrics` takes the profiles once and returns both, with the plain
averaged-profile FWHM beside them.
"""

import math

import numpy as np
from scipy import ndimage as ndi

from .profiles import edge_profiles
from .sharpness import FWHM_PER_SIGMA, edge_spread_width, level_crossing


def _unit_steps(s_px, profiles, plateau_px=3.0):
    """Each profile as a unit step ``e = (p − p_out) / (p_in − p_out)`` from its own end plateaus.

    Returns
    -------
    e : ndarray (n, n_s) float64
        NaN rows where the step is flat.
    """
    s_px = np.asarray(s_px, np.float64)
    p = np.atleast_2d(np.asarray(profiles, np.float64))
    plateau_px = min(plateau_px, (s_px[-1] - s_px[0]) / 6)
    p_in = p[:, s_px <= s_px[0] + plateau_px].mean(axis=1)
    p_out = p[:, s_px >= s_px[-1] - plateau_px].mean(axis=1)
    step = p_in - p_out
    ok = np.abs(step) > 1e-12 * np.maximum(1.0, np.maximum(np.abs(p_in), np.abs(p_out)))
    e = np.full(p.shape, np.nan)
    e[ok] = (p[ok] - p_out[ok, None]) / step[ok, None]
    return e


def profile_crossings(s_px, profiles, level=0.5, smooth_px=0.5, plateau_px=3.0):
    """Position of each profile's ``level`` crossing (50 %: the edge's centre), pixels from the true boundary.

    Each profile is normalised to a unit step from its own end plateaus (1
    inside, 0 outside), smoothed along its length by a Gaussian of
    ``smooth_px`` (so one noisy sample does not set the crossing), and the
    crossing nearest ``s = 0`` is found by walking out from ``s = 0`` in the
    direction the level lies (linear interpolation between samples).

    Parameters
    ----------
    s_px : ndarray (n_s,)
        Signed distance from the true boundary, pixels, increasing (negative inside).
    profiles : ndarray (n, n_s)
        Grey values (any units; only the step shape matters).
    level : float
        Fraction of the step, in (0, 1).
    smooth_px : float
        Smoothing along the profile, pixels (0 = none).
    plateau_px : float
        Length of each end used as plateau level, pixels.

    Returns
    -------
    ndarray (n,) float64
        Crossing positions, pixels (> 0: the edge lies outside the true
        boundary); NaN for a flat step or no crossing within the profile.
    """
    s_px = np.asarray(s_px, np.float64)
    e = _unit_steps(s_px, profiles, plateau_px)
    step = float(s_px[1] - s_px[0])
    i_mid = int(np.argmin(np.abs(s_px)))
    out = np.full(len(e), np.nan)
    for i, row in enumerate(e):
        if not np.isfinite(row).all():
            continue
        y = ndi.gaussian_filter1d(row, smooth_px / step, mode="nearest") if smooth_px > 0 else row
        # above the level at s = 0: the crossing lies outwards (+1); below it: inwards (−1)
        out[i] = level_crossing(s_px, y, level, i_mid, +1 if y[i_mid] >= level else -1)
    return out


def edge_placement(s_px, profiles, pixel_size_nm, **crossing_kwargs):
    """Edge placement against the true boundary: RMS and mean of the 50 % crossings, nm.

    ``rms = sqrt(mean(c_i²))``, ``bias = mean(c_i)`` over the profiles with a
    crossing, ``c_i`` from :func:`profile_crossings`. A uniformly dilated edge
    has ``rms = |bias|`` = the dilation; a disc translated by ``d`` has
    ``bias ≈ 0`` and ``rms = d / sqrt(2)`` (the normal offset is ``d cos θ``).
    Noise moves each crossing as well, so a noisy image has a placement RMS
    even where its edges sit right on average.

    Parameters
    ----------
    s_px, profiles
        As in :func:`profile_crossings`.
    pixel_size_nm : float
    **crossing_kwargs
        Passed to :func:`profile_crossings`.

    Returns
    -------
    dict
        ``edge_placement_rms_nm``, ``edge_placement_bias_nm`` (float, NaN
        without crossings), ``n_placed`` (int), ``crossings_px`` (ndarray (n,)).
    """
    c = profile_crossings(s_px, profiles, **crossing_kwargs)
    ok = c[np.isfinite(c)]
    rms = float(np.sqrt(np.mean(ok**2))) * pixel_size_nm if ok.size else math.nan  # sqrt(mean c²)
    bias = float(ok.mean()) * pixel_size_nm if ok.size else math.nan
    return {"edge_placement_rms_nm": rms, "edge_placement_bias_nm": bias, "n_placed": int(ok.size),
            "crossings_px": c}


def rise_distance(s_px, edge, low=0.1, high=0.9):
    """Distance (same units as ``s_px``) over which a unit step falls from ``high`` to ``low`` (10-90 % rise).

    ``edge`` runs from 1 (inside, ``s < 0``) to 0; the crossings are searched
    from its centre sample. NaN when either is not reached.
    """
    s_px = np.asarray(s_px, np.float64)
    edge = np.asarray(edge, np.float64)
    i_mid = int(np.argmin(np.abs(s_px)))
    a = level_crossing(s_px, edge, low, i_mid, +1 if edge[i_mid] >= low else -1)
    b = level_crossing(s_px, edge, high, i_mid, +1 if edge[i_mid] >= high else -1)
    return float(a - b)


def aligned_mean_profile(s_px, profiles, crossings_px):
    """Mean of the profiles after shifting each to its own crossing: ``mean_i p_i(s + c_i)``.

    Each profile is resampled by linear interpolation; samples that would fall
    outside it take its end value. Rows with a NaN crossing are left out.

    Returns
    -------
    ndarray (n_s,) float64
        NaN everywhere when no profile has a crossing.
    """
    s_px = np.asarray(s_px, np.float64)
    p = np.atleast_2d(np.asarray(profiles, np.float64))
    c = np.asarray(crossings_px, np.float64)
    ok = np.isfinite(c)
    if not ok.any():
        return np.full(s_px.shape, np.nan)
    shifted = [np.interp(s_px + ci, s_px, pi) for pi, ci in zip(p[ok], c[ok])]  # p_i(s + c_i)
    return np.mean(shifted, axis=0)


def self_aligned_width(s_px, profiles, pixel_size_nm, crossings_px=None, **width_kwargs):
    """Edge width with every profile aligned at its own 50 % crossing: blur without misplacement.

    Parameters
    ----------
    s_px : ndarray (n_s,)
        Pixels, uniformly spaced, increasing.
    profiles : ndarray (n, n_s)
    pixel_size_nm : float
    crossings_px : ndarray (n,), optional
        Default :func:`profile_crossings` with its defaults.
    **width_kwargs
        Passed to :func:`~indi4d.metrics.sharpness.edge_spread_width`.

    Returns
    -------
    dict
        ``self_aligned_fwhm_nm`` (FWHM of the aligned mean edge's derivative),
        ``self_aligned_rise_10_90_nm``, ``self_aligned_overshoot`` (fraction of
        the step), ``n_aligned`` (int). NaN when undefined. Aligning on each
        profile's own crossing lines noise up too, so on very noisy profiles
        this width reads somewhat sharp: compare methods at similar noise.
    """
    if crossings_px is None:
        crossings_px = profile_crossings(s_px, profiles)
    mean = aligned_mean_profile(s_px, profiles, crossings_px)
    n = int(np.isfinite(crossings_px).sum())
    if n == 0:
        return {"self_aligned_fwhm_nm": math.nan, "self_aligned_rise_10_90_nm": math.nan,
                "self_aligned_overshoot": math.nan, "n_aligned": 0}
    fwhm_px, overshoot, e, _ = edge_spread_width(s_px, mean, **width_kwargs)
    rise = rise_distance(s_px, ndi.gaussian_filter1d(e, 0.5 / (s_px[1] - s_px[0]), mode="nearest"))
    return {"self_aligned_fwhm_nm": fwhm_px * pixel_size_nm, "self_aligned_rise_10_90_nm": rise * pixel_size_nm,
            "self_aligned_overshoot": overshoot, "n_aligned": n}


def edge_metrics(image, particles, pixel_size_nm, valid_mask=None, half_length_px=16, spacing_px=2.0,
                 smooth_sigma_px=1.5, max_profiles=4000, seed=0):
    """Placement, self-aligned width and plain averaged FWHM of the edges along a true boundary.

    Parameters
    ----------
    image : ndarray (H, W) or (Z, H, W), real
    particles : ndarray of bool or int, same shape
        The *true* particle mask (truth labels == particle phase): its contour
        is the boundary every placement is measured from.
    pixel_size_nm : float
    valid_mask : ndarray of bool, optional
    half_length_px, spacing_px, smooth_sigma_px, max_profiles, seed
        As in :func:`~indi4d.metrics.profiles.edge_profiles`.

    Returns
    -------
    dict (floats, NaN where undefined)
        ``edge_placement_rms_nm``, ``edge_placement_bias_nm``,
        ``self_aligned_fwhm_nm``, ``self_aligned_rise_10_90_nm``,
        ``self_aligned_overshoot``, ``aligned_fwhm_nm`` (the plain mean of the
        profiles aligned on the true boundary, as
        :func:`~indi4d.metrics.fwhm_edge_resolution` measures it),
        ``crossing_smooth_px`` (the smoothing each crossing was found with:
        the plain mean edge's sigma, at least 0.5 px), ``n_edge_profiles``.
        Each profile's crossing is found after smoothing it at the averaged
        edge's own scale, so pixel noise does not set it (aligning on noise
        would line the noise up and read the edge too sharp).
    """
    s, prof, _, _ = edge_profiles(image, particles, valid_mask, half_length_px=half_length_px,
                                  spacing_px=spacing_px, smooth_sigma_px=smooth_sigma_px,
                                  max_profiles=max_profiles, seed=seed)
    nan = math.nan
    out = {"edge_placement_rms_nm": nan, "edge_placement_bias_nm": nan, "self_aligned_fwhm_nm": nan,
           "self_aligned_rise_10_90_nm": nan, "self_aligned_overshoot": nan, "aligned_fwhm_nm": nan,
           "crossing_smooth_px": nan, "n_edge_profiles": int(len(prof))}
    if len(prof) == 0:
        return out
    plain_px = edge_spread_width(s, prof.mean(axis=0))[0]
    out["aligned_fwhm_nm"] = plain_px * pixel_size_nm
    # find each crossing on the profile smoothed at the averaged edge's own scale (sigma = FWHM / 2.355): a
    # symmetric smoothing leaves a clean edge's 50 % point in place, and noise cannot pick the crossing
    smooth = max(0.5, plain_px / FWHM_PER_SIGMA) if np.isfinite(plain_px) else 0.5
    out["crossing_smooth_px"] = smooth
    place = edge_placement(s, prof, pixel_size_nm, smooth_px=smooth)
    out.update({k: place[k] for k in ("edge_placement_rms_nm", "edge_placement_bias_nm")})
    sa = self_aligned_width(s, prof, pixel_size_nm, crossings_px=place["crossings_px"])
    out.update({k: sa[k] for k in ("self_aligned_fwhm_nm", "self_aligned_rise_10_90_nm", "self_aligned_overshoot")})
    return out
