"""Metrics of every method against HQ and the truth, single numbers from them, and the goals."""

import math

import numpy as np

from ..presets import resolve
from .settings import GOALS, PRESETS


def score(pred, test, reference, preset="default", seed=0):
    """:func:`indi4d.metrics.evaluate_pair` of one output against HQ or the truth.

    Parameters
    ----------
    pred : ndarray (n, H, W)
    test : dict
        :func:`load_test_set`.
    reference : {"hq", "truth"}
        The HQ slices, or the true attenuation (grey levels mapped onto it by
        the least-squares affine fit of :func:`indi4d.metrics.psnr`).
    preset : str
        :data:`PRESETS` entry (metrics preset).
    seed : int

    Returns
    -------
    dict
        The metrics (see :func:`indi4d.metrics.evaluate_pair`); the true labels,
        when present, define particles and background for FWHM, CNR and the
        hallucination counts in both cases.
    """
    from ..metrics import evaluate_pair

    p = resolve(PRESETS, preset)
    if reference == "truth":
        if test["truth_mu"] is None:
            raise ValueError("score: no truth in this run folder (truth_mu_hq.tif missing)")
        ref = test["truth_mu"]
    elif reference == "hq":
        ref = test["hq"]
    else:
        raise ValueError(f"score: reference must be 'hq' or 'truth', got {reference!r}")
    return evaluate_pair(np.asarray(pred), ref, labels=test["truth_labels"], pixel_size_nm=test["pixel_size_nm"],
                         mask=test["mask"], preset=p["metrics"], fit="affine", seed=seed)


def score_methods(preds, test, preset="default", seed=0, progress=True):
    """Metrics of every method against HQ and against the truth.

    Parameters
    ----------
    preds : dict
        :func:`predict_methods`.
    test : dict
        :func:`load_test_set`.
    preset : str
    seed : int
    progress : bool

    Returns
    -------
    dict
        ``method -> {"vs_hq": metrics or None, "vs_truth": metrics or None}``
        (HQ is not scored against itself; nothing is scored against a missing truth).
    """
    from tqdm.auto import tqdm

    out = {}
    for method in tqdm(list(preds), desc="scoring", disable=not progress):
        out[method] = {
            "vs_hq": None if method == "hq" else score(preds[method], test, "hq", preset, seed),
            "vs_truth": None if test["truth_mu"] is None else score(preds[method], test, "truth", preset, seed),
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

    ``reference`` "hq" or "truth" for PSNR, SSIM and SIFT; ignored for the
    reference-free metrics (FWHM, overshoot, CNR, hallucination).
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
    if metric == "fwhm_nm" and v <= 0:  # a zero width means too few edges were measured, not a perfect edge
        return None
    return float(v)


def _finite(v):
    return v is not None and math.isfinite(float(v))


def check_goals(scores, goals=GOALS):
    """The project's quality goals, measured.

    Parameters
    ----------
    scores : dict
        :func:`score_methods`.
    goals : sequence of dict
        Each: ``name``, ``metric``, ``method``, ``against``, ``relation`` ("<="
        or ">="), and ``factor`` (target = factor x the other method's value)
        or ``offset`` (target = the other's value + offset); ``reference``
        ("hq"/"truth") for reference-based metrics.

    Returns
    -------
    list of dict
        ``name``, ``measured``, ``target``, ``passed`` (None when a value is undefined).
    """
    out = []
    for g in goals:
        ref = g.get("reference")
        measured = value(scores, g["method"], g["metric"], ref)
        other = value(scores, g["against"], g["metric"], ref)
        if measured is None or other is None:
            out.append({"name": g["name"], "measured": measured, "target": None, "passed": None})
            continue
        target = other * g["factor"] if "factor" in g else other + g["offset"]
        passed = measured <= target if g["relation"] == "<=" else measured >= target
        if "factor" in g and other == 0 and g["relation"] == ">=":
            passed = measured > 0  # "at least k times none" asks for something, not for none as well
        out.append({"name": g["name"], "measured": measured, "target": target, "passed": bool(passed)})
    return out
