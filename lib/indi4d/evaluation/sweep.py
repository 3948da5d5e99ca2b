"""Choosing InDI's step count N: the sweep over N and the stated rule (step 2 of chapter 05)."""

import time

from ..core.steps import check_steps
from ..presets import resolve
from .predictions import indi_restore
from .scores import is_finite, score
from .settings import PRESETS


def step_sweep(enhancer, test, steps=None, preset="default", seed=0, progress=True):
    """InDI at several step counts N, scored against the truth in physical units (or HQ without truth).

    Against the truth every output is mapped to physical units first and
    scored without a grey fit (:func:`~indi4d.evaluation.scores.score`,
    reference ``"truth"``); without a truth, against HQ as the paper does.

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    test : dict
        :func:`load_test_set`.
    steps : sequence of int, optional
        Default the preset's ``steps_sweep``.
    preset : str
    seed : int
    progress : bool

    Returns
    -------
    rows : list of dict
        One per N, in increasing N: ``steps``, ``reference`` ("truth" or "hq"),
        ``psnr``, ``psnr_std``, ``ssim``, ``ssim_std``, ``sift_congruent_points``,
        ``fwhm_nm``, ``fwhm_nm_std``, ``edge_overshoot``, ``cnr``,
        ``false_particles_per_mm2``, ``false_edge_fraction``, ``flat_region_error``,
        ``self_aligned_fwhm_nm``, ``edge_placement_rms_nm`` (None without truth),
        ``units`` (of PSNR/SSIM), ``seconds`` (the restoration's wall time).
    predictions : dict
        N -> float32 (n, H, W) InDI output.
    """
    from tqdm.auto import tqdm

    p = resolve(PRESETS, preset)
    steps = sorted({check_steps(n, "step_sweep: a step count") for n in (steps or p["steps_sweep"])})
    if not steps:
        raise ValueError("step_sweep: no step count to score")
    reference = "truth" if test["truth_mu"] is not None else "hq"
    keys = ("psnr", "psnr_std", "ssim", "ssim_std", "sift_congruent_points", "fwhm_nm", "fwhm_nm_std",
            "edge_overshoot", "cnr", "false_particles_per_mm2", "false_edge_fraction", "flat_region_error",
            "self_aligned_fwhm_nm", "edge_placement_rms_nm", "units")
    rows, preds = [], {}
    for n in tqdm(steps, desc="step sweep", disable=not progress):
        t0 = time.perf_counter()
        preds[n] = indi_restore(enhancer, test["lq"], n)
        seconds = time.perf_counter() - t0
        m = score(preds[n], test, reference, preset, seed)
        rows.append({"steps": n, "reference": reference, **{k: m.get(k) for k in keys}, "seconds": round(seconds, 3)})
    return rows, preds


def select_steps(rows, fwhm_tol=0.05, psnr_tol_db=0.5):
    """Pick the InDI step count N from a sweep with a stated rule.

    The rule: among the N whose PSNR against the truth is within
    ``psnr_tol_db`` of the sweep's best PSNR (the *admissible* N: fidelity is
    not given away), find the sharpest edge ``f* = min FWHM``; choose the
    **smallest** admissible N whose FWHM is within ``fwhm_tol`` of it,
    ``FWHM(N) <= (1 + fwhm_tol) f*``. Fewer steps are cheaper and, past the
    point where edges stop sharpening, only add noise back. When the sharpest
    N is admissible this is "the smallest N within 5 % of the sweep's best
    FWHM while PSNR stays within 0.5 dB of its maximum". Rows with an undefined
    PSNR or FWHM (None, NaN, or a FWHM <= 0) are skipped.

    Parameters
    ----------
    rows : list of dict
        Each with ``steps``, ``psnr`` (dB), ``fwhm_nm`` (:func:`step_sweep`).
    fwhm_tol : float
        Relative FWHM tolerance (0.05 = 5 %).
    psnr_tol_db : float
        PSNR tolerance, dB.

    Returns
    -------
    dict
        ``steps`` (the chosen N), ``admissible`` (list of N), ``max_psnr``,
        ``best_fwhm_nm`` (f*), ``fwhm_limit_nm`` ((1 + tol) f*), ``rule`` (the
        rule in words, with the tolerances).
    """
    # a FWHM of 0 nm is no measurement (too few edges), not a perfect edge
    ok = [r for r in rows if is_finite(r.get("psnr")) and is_finite(r.get("fwhm_nm")) and r["fwhm_nm"] > 0]
    if not ok:
        raise ValueError("select_steps: no sweep row has both a PSNR and a FWHM")
    max_psnr = max(r["psnr"] for r in ok)
    admissible = sorted((r for r in ok if r["psnr"] >= max_psnr - psnr_tol_db), key=lambda r: r["steps"])
    best = min(r["fwhm_nm"] for r in admissible)
    limit = (1.0 + fwhm_tol) * best
    chosen = next(r for r in admissible if r["fwhm_nm"] <= limit)  # admissible is sorted by N
    rule = (f"smallest N with FWHM <= {1 + fwhm_tol:g} x the sharpest FWHM among the N whose PSNR vs truth "
            f"is within {psnr_tol_db:g} dB of the sweep's maximum")
    return {"steps": int(chosen["steps"]), "admissible": [int(r["steps"]) for r in admissible],
            "max_psnr": float(max_psnr), "best_fwhm_nm": float(best), "fwhm_limit_nm": float(limit), "rule": rule}
