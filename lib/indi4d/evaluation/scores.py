"""Metrics of every method against HQ (the paper's) and against the truth in physical units; single numbers."""

import math

import numpy as np

from ..presets import resolve
from .settings import PRESETS
from .units import NORMALISED, method_side, physical_units, to_physical

#: The references a method is scored against, and how (``units``, ``fit``, ``data_range`` in words).
REFERENCES = ("hq", "truth", "hq_physical")

#: Edge and spectrum numbers added to the scores against the truth (:func:`truth_extras`).
TRUTH_EXTRA_KEYS = ("edge_placement_rms_nm", "edge_placement_bias_nm", "self_aligned_fwhm_nm",
                    "self_aligned_rise_10_90_nm", "self_aligned_overshoot", "power_ratio_mid", "power_ratio_high")

#: Bands of the power ratio, as fractions of the Nyquist frequency.
POWER_BANDS = {"power_ratio_mid": (0.25, 0.5), "power_ratio_high": (0.5, 1.0)}


def scoring_conventions(test):
    """Units, grey fit and PSNR/SSIM data range of each reference, in words (stored with the results).

    Returns
    -------
    dict
        reference -> ``{"units", "fit", "data_range"}``.
    """
    units = physical_units(test)
    fitted = test.get("normalisation") is None or not test.get("grey_mapping")
    return {
        "hq": {"units": NORMALISED, "fit": "affine (least-squares gain and offset onto HQ, inside the mask)",
               "data_range": "HQ's range (max - min) inside the mask over the scored slices",
               "what": "the paper's metrics: against the HQ scan, in the pairs' normalised units"},
        "truth": {"units": units,
                  "fit": "affine (no grey mapping to attenuation)" if fitted else "none",
                  "data_range": "the true attenuation's range (max - min) inside the mask over all test slices",
                  "what": "every method mapped back to physical units and compared with the true attenuation"},
        "hq_physical": {"units": units, "fit": "none",
                        "data_range": "HQ's range (max - min) inside the mask over all test slices",
                        "what": "against the HQ scan in physical units (what a user without a truth can do)"},
    }


def _truth_fit(test):
    return "affine" if test.get("normalisation") is None or not test.get("grey_mapping") else "none"


def truth_extras(physical, test, preset="default", seed=0):
    """Edge placement, self-aligned width and power ratio against the truth (needs the truth labels).

    Parameters
    ----------
    physical : ndarray (n, H, W)
        A method's output in physical units (the truth's units).
    test : dict
    preset : str
    seed : int

    Returns
    -------
    dict
        :data:`TRUTH_EXTRA_KEYS` (floats, None where undefined).
    """
    from ..files import json_ready
    from ..metrics import PRESETS as METRIC_PRESETS
    from ..metrics import band_mean, edge_metrics, power_ratio
    from ..phases import PARTICLE

    out = dict.fromkeys(TRUTH_EXTRA_KEYS)
    p = resolve(METRIC_PRESETS, resolve(PRESETS, preset)["metrics"])
    if test.get("truth_labels") is not None:
        e = edge_metrics(physical, test["truth_labels"] == PARTICLE, test["pixel_size_nm"], valid_mask=test["mask"],
                         half_length_px=p["half_length_px"], spacing_px=p["spacing_px"],
                         smooth_sigma_px=p["smooth_sigma_px"], max_profiles=p["max_profiles"], seed=seed)
        out.update({k: e[k] for k in TRUTH_EXTRA_KEYS if k in e})
    if test.get("truth_mu") is not None:
        freq, ratio = power_ratio(physical, test["truth_mu"], test["pixel_size_nm"], test["mask"])
        nyquist = 1000.0 / (2.0 * test["pixel_size_nm"])  # cycles per µm
        for key, (lo, hi) in POWER_BANDS.items():
            out[key] = band_mean(freq, ratio, lo * nyquist, hi * nyquist + 1e-9)
    return json_ready(out)


def fidelity(image, ref, test, preset="default", data_range=None, fit="none"):
    """PSNR and SSIM only (mean ± std over the metrics preset's slices): the light score against HQ in physical units.

    Parameters
    ----------
    image, ref : ndarray (n, H, W), one unit
    test : dict
        :func:`load_test_set` (``mask``).
    preset : str
    data_range : float, optional
        Default ``ref``'s range inside the mask over all slices.
    fit : {"none", "affine"}

    Returns
    -------
    dict
        ``psnr``, ``psnr_std``, ``ssim``, ``ssim_std``, ``data_range``, ``fit``, ``slices``.
    """
    from ..files import json_ready
    from ..metrics import PRESETS as METRIC_PRESETS
    from ..metrics import psnr, select_slices, ssim

    p = resolve(METRIC_PRESETS, resolve(PRESETS, preset)["metrics"])
    mask = test["mask"]
    if data_range is None:
        data_range = float(ref[:, mask].max() - ref[:, mask].min())
    zs = select_slices(len(image), p["max_slices"])
    ps = [psnr(image[i], ref[i], mask, data_range=data_range, fit=fit) for i in zs]
    ss = [ssim(image[i], ref[i], mask, data_range=data_range, fit=fit, win_size=p["ssim_win_size"]) for i in zs]
    return json_ready({"psnr": float(np.mean(ps)), "psnr_std": float(np.std(ps)), "ssim": float(np.mean(ss)),
                       "ssim_std": float(np.std(ss)), "data_range": data_range, "fit": fit,
                       "slices": [int(z) for z in zs]}, keep_inf=True)


def score(pred, test, reference, preset="default", seed=0, side="hq", physical=None):
    """:func:`indi4d.metrics.evaluate_pair` of one output against HQ or the truth.

    Parameters
    ----------
    pred : ndarray (n, H, W)
        The method's output in the pairs' normalised [-1, 1] units.
    test : dict
        :func:`load_test_set`.
    reference : {"hq", "truth", "hq_physical"}
        ``"hq"``: the HQ slices in normalised units after a least-squares
        affine grey fit (the paper's metrics). ``"truth"``: the output mapped
        to physical units (:func:`~indi4d.evaluation.units.to_physical`) against
        the true attenuation, no grey fit, PSNR/SSIM data range = the truth's
        range inside the mask over all test slices (with an affine fit only when
        the run has no grey mapping); adds :func:`truth_extras`.
        ``"hq_physical"``: physical units against HQ in physical units, no
        fit, PSNR and SSIM only (:func:`fidelity`).
    preset : str
        :data:`PRESETS` entry (metrics preset).
    seed : int
    side : {"hq", "lq"}
        The normalisation ``pred`` is in (:func:`~indi4d.evaluation.units.method_side`).
    physical : ndarray (n, H, W), optional
        The output already in physical units (e.g. the ideal HQ read from its file).

    Returns
    -------
    dict
        The metrics (see :func:`indi4d.metrics.evaluate_pair`) plus ``units``
        and ``fit`` (and ``data_range``, the value used); the true labels, when
        present, define particles and background for FWHM, CNR and the
        hallucination counts in every case.
    """
    from ..metrics import evaluate_pair

    p = resolve(PRESETS, preset)
    mask = test["mask"]
    conventions = scoring_conventions(test)
    if reference not in REFERENCES:
        raise ValueError(f"score: reference must be one of {REFERENCES}, got {reference!r}")
    if reference == "hq":
        ref, image, fit, data_range = test["hq"], np.asarray(pred), "affine", None
    else:
        image = np.asarray(physical if physical is not None else to_physical(pred, side, test))
        if reference == "truth":
            if test["truth_mu"] is None:
                raise ValueError("score: no truth in this run folder (truth_mu_hq.tif missing)")
            ref, fit = test["truth_mu"], _truth_fit(test)
        else:
            ref = to_physical(test["hq"], "hq", test)
            out = fidelity(image, ref, test, preset)
            out["units"] = conventions[reference]["units"]
            return out
        data_range = float(ref[:, mask].max() - ref[:, mask].min())
    out = evaluate_pair(image, ref, labels=test["truth_labels"], pixel_size_nm=test["pixel_size_nm"], mask=mask,
                        preset=p["metrics"], fit=fit, seed=seed, data_range=data_range)
    out["units"] = conventions[reference]["units"]
    if reference == "truth":
        out.update(truth_extras(image, test, preset, seed))
    return out


def score_methods(preds, test, preset="default", seed=0, progress=True, physical=None):
    """Metrics of every method against HQ (the paper's), the truth (physical units) and HQ in physical units.

    Parameters
    ----------
    preds : dict
        :func:`predict_methods` (normalised [-1, 1] units).
    test : dict
        :func:`load_test_set`.
    preset : str
    seed : int
    progress : bool
    physical : dict, optional
        method -> output already in physical units (others are converted with
        :func:`~indi4d.evaluation.units.to_physical`).

    Returns
    -------
    dict
        ``method -> {"vs_hq", "vs_truth", "vs_hq_physical"}``, each metrics or
        None (HQ is not scored against itself; nothing against a missing truth).
    """
    from tqdm.auto import tqdm

    physical = dict(physical or {})
    out = {}
    for method in tqdm(list(preds), desc="scoring", disable=not progress):
        side = method_side(method)
        phys = physical.get(method)
        if phys is None:
            phys = to_physical(preds[method], side, test)
        out[method] = {
            "vs_hq": None if method == "hq" else score(preds[method], test, "hq", preset, seed, side),
            "vs_truth": (None if test["truth_mu"] is None
                         else score(preds[method], test, "truth", preset, seed, side, physical=phys)),
            "vs_hq_physical": (None if method == "hq" or test.get("normalisation") is None
                               else score(preds[method], test, "hq_physical", preset, seed, side, physical=phys)),
        }
    return out


def no_reference(scores, method):
    """The metrics of ``method`` that do not depend on the reference (FWHM, CNR, hallucination).

    Taken from the evaluation against the truth when there is one, else against HQ.
    """
    s = scores[method]
    return s["vs_truth"] if s.get("vs_truth") is not None else s.get("vs_hq")


def value(scores, method, metric, reference=None):
    """One number from :func:`score_methods`' result (None when undefined).

    ``reference`` "hq", "truth" or "hq_physical" for PSNR, SSIM and SIFT;
    ignored for the reference-free metrics (FWHM, overshoot, CNR, hallucination).
    """
    if method not in scores:
        return None
    if reference is None:
        m = no_reference(scores, method)
    else:
        m = scores[method].get(f"vs_{reference}")
    if m is None:
        return None
    v = m.get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if metric in ("fwhm_nm", "self_aligned_fwhm_nm") and v <= 0:  # a zero width: too few edges, not a perfect edge
        return None
    return float(v)


def is_finite(v):
    return v is not None and math.isfinite(float(v))
