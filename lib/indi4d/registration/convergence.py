"""Whether a spam registration converged, judged from the data rather than from spam's status alone.

spam stops when the norm of the last update of Φ falls below ``deltaPhiMin``
(status 2) or after ``maxIterations`` (status 1). On noisy scans the
quasi-Newton iterations can hover around the optimum, moving Φ by a few
hundredths of a voxel per iteration: status 1, though Φ is settled. They can
also wander off to a far, wrong optimum (pulling flat background into the fit
region), with either status. :func:`judge_convergence` therefore asks four
questions of one spam run, with numbers:

- did spam fail outright (diverging error, singular matrix, singular Φ)?
- is Φ stable: status 2, or over the last ``stability_window`` iterations the
  translation moved less than ``stability_translation_vox`` and the rotation
  less than ``stability_rotation_deg``?
- did the residual (RMS grey difference of the prepared scans) drop?
- is Φ plausible: a rotation of at most ``max_rotation_deg`` and a
  translation that stays within the margin around the initial guess (beyond
  it spam compares the fit region with zeros)?

:func:`advice` turns a failed judgement into what a user can try.
"""

import numpy as np

from .geometry import compute_phi

#: spam statuses that mean the run failed, whatever Φ looks like.
SPAM_FAILURES = (-1, -2, -3, -4)


def _rotation_angle_deg(r_a, r_b):
    """Angle (degrees) of the rotation taking rotation vector ``r_b`` to ``r_a`` (spam vectors, degrees)."""
    ra, rb = compute_phi(rotation_deg=r_a)[:3, :3], compute_phi(rotation_deg=r_b)[:3, :3]
    cos = np.clip((np.trace(ra @ rb.T) - 1.0) / 2.0, -1.0, 1.0)  # angle of R_a R_b^T
    return float(np.degrees(np.arccos(cos)))


def phi_stability(journal, window):
    """How much Φ still moved over the last iterations of a spam run.

    Parameters
    ----------
    journal : dict or None
        spam's ``iterationsJournal`` (``debugIterations=True``): ``t`` (voxels)
        and ``r`` (degrees) per iteration, the initial Φ first.
    window : int
        Number of last iterations compared.

    Returns
    -------
    translation_change_vox, rotation_change_deg : float or None
        Largest distance of Φ over the last ``window`` iterations to the final
        Φ (Euclidean norm of the translation difference; angle of the relative
        rotation). None when the run made fewer than ``window`` iterations.
    """
    if journal is None or len(journal.get("t", ())) < window + 1:
        return None, None
    t = np.asarray(journal["t"], float)[-(window + 1):]
    r = np.asarray(journal["r"], float)[-(window + 1):]
    dt = max(float(np.linalg.norm(ti - t[-1])) for ti in t[:-1])
    dr = max(_rotation_angle_deg(ri, r[-1]) for ri in r[:-1])
    return dt, dr


def judge_convergence(status, journal, phi_decomposed, initial_translation_vox, residual_before, residual_after,
                      margin, params):
    """Judge one spam run: spam's status, Φ's stability, the residual drop and Φ's plausibility.

    Parameters
    ----------
    status : int
        spam's ``returnStatus``.
    journal : dict or None
        spam's ``iterationsJournal`` of the run (of its last binning level).
    phi_decomposed : dict
        :func:`.geometry.decompose_phi` of the final Φ.
    initial_translation_vox : sequence of float
        Translation (z, y, x) spam started from, voxels.
    residual_before, residual_after : float
        RMS grey difference of the prepared scans before / after applying Φ.
    margin : int
        spam's margin, voxels.
    params : dict
        Resolved preset: ``stability_window``, ``stability_translation_vox``,
        ``stability_rotation_deg``, ``max_rotation_deg``.

    Returns
    -------
    dict
        ``converged`` (bool) and the numbers behind it: ``spam_status``,
        ``iterations``, ``stable``, ``translation_change_vox`` /
        ``rotation_change_deg`` over ``window`` iterations (None when too
        few), their tolerances, ``residual_before`` / ``residual_after`` /
        ``residual_drop`` (fraction), ``rotation_deg`` (angle of Φ's rotation),
        ``translation_from_start_vox`` (largest |component|), ``plausible``,
        and ``reasons`` (why not, in words, empty when converged).
    """
    window = int(params["stability_window"])
    tol_t, tol_r = float(params["stability_translation_vox"]), float(params["stability_rotation_deg"])
    dt, dr = phi_stability(journal, window)
    iterations = 0 if journal is None else max(0, len(journal.get("t", ())) - 1)
    moved = dt is not None and (dt >= tol_t or dr >= tol_r)
    stable = status == 2 or (dt is not None and not moved)
    drop = 1.0 - residual_after / residual_before if residual_before > 0 else 0.0
    dropped = residual_after < residual_before
    angle = _rotation_angle_deg(phi_decomposed["rotation_deg"], (0.0, 0.0, 0.0))
    shift = float(np.max(np.abs(np.subtract(phi_decomposed["translation_vox"], initial_translation_vox))))
    plausible = bool(np.isfinite(angle) and np.isfinite(shift) and angle <= float(params["max_rotation_deg"])
                     and shift <= margin)
    reasons = []
    if status in SPAM_FAILURES:
        reasons.append(f"spam stopped with status {status}")
    if not stable:
        if dt is None:
            reasons.append(f"Φ's stability is unknown: spam stopped after {iterations} iterations, fewer than the "
                           f"{window} compared")
        else:
            reasons.append(f"Φ still moved {dt:.3f} voxel and {dr:.3f}° over the last {window} iterations "
                           f"(tolerance {tol_t} voxel, {tol_r}°)")
    if not dropped:
        reasons.append(f"the residual did not drop ({residual_before:.4f} -> {residual_after:.4f}, "
                       f"{100 * drop:+.1f} %)")
    if not plausible:
        reasons.append(f"Φ is implausible: rotation {angle:.2f}° (at most {params['max_rotation_deg']}°) and "
                       f"translation {shift:.2f} voxel from the start (at most the margin, {margin})")
    return {
        "converged": not reasons,
        "spam_status": int(status),
        "iterations": int(iterations),
        "stable": bool(stable),
        "window": window,
        "translation_change_vox": dt,
        "rotation_change_deg": dr,
        "translation_tolerance_vox": tol_t,
        "rotation_tolerance_deg": tol_r,
        "residual_before": float(residual_before),
        "residual_after": float(residual_after),
        "residual_drop": float(drop),
        "rotation_deg": angle,
        "translation_from_start_vox": shift,
        "plausible": plausible,
        "reasons": reasons,
    }


def advice(judgement, params, shape, margin, initial_translation_vox):
    """What a user can try when :func:`judge_convergence` says no, with the numbers measured.

    Parameters
    ----------
    judgement : dict
        :func:`judge_convergence`'s result.
    params : dict
        Resolved preset (``max_iterations``, ``blur_sigma``, ``margin_fraction``,
        ``coarse_max_shift_vox``, ``bin_start``).
    shape : tuple of int
        Shape of the HQ volume.
    margin : int
        spam's margin, voxels.
    initial_translation_vox : sequence of float
        The coarse translation found, voxels.

    Returns
    -------
    list of str
    """
    tips = []
    t0 = ", ".join(f"{v:.1f}" for v in initial_translation_vox)
    if min(shape) < 48:
        tips.append(f"a larger HQ volume: {tuple(shape)} leaves {min(shape) - 2 * margin} voxels inside the margin "
                    "of the shortest side, too little texture to fix a rotation")
    if not judgement["plausible"] or not judgement["residual_drop"] > 0:
        tips.append(f"a better coarse start (--hq-start): the cross-correlation search found a translation of "
                    f"({t0}) HQ voxels within ±{params['coarse_max_shift_vox']}; a wider search "
                    f"(coarse_max_shift_vox={2 * float(params['coarse_max_shift_vox']):g}) or a larger margin "
                    f"(margin_fraction={min(0.3, 2 * float(params['margin_fraction'])):g})")
    if not judgement["stable"]:
        tips.append(f"more iterations (max_iterations={2 * int(params['max_iterations'])}) or a coarse-to-fine start "
                    f"(bin_start={2 * max(1, int(params['bin_start']))})")
    tips.append(f"more smoothing of noisy scans (blur_sigma={2 * float(params['blur_sigma']):g})")
    return tips
