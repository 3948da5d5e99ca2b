"""Segmentation quality against true labels: Dice, IoU, boundary F-score, difference maps.

All functions take two label arrays of the same shape (2D slices or 3D
volumes, integer phases of :mod:`indi4d.phases`): ``pred`` (a segmentation)
and ``truth``. A score of a phase absent from both is NaN (undefined, left out
of means), not 1.
"""

import numpy as np
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries

from ..phases import PHASE_NAMES


def _check_pair(pred, truth, who):
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"{who}: prediction {pred.shape} and truth {truth.shape} differ in shape")
    return pred, truth


def dice(pred_mask, truth_mask):
    """Dice coefficient ``2 |A ∩ B| / (|A| + |B|)`` of two boolean masks (NaN when both are empty)."""
    a, b = _check_pair(np.asarray(pred_mask, bool), np.asarray(truth_mask, bool), "dice")
    total = a.sum() + b.sum()
    return float(2.0 * np.logical_and(a, b).sum() / total) if total else float("nan")


def iou(pred_mask, truth_mask):
    """Intersection over union ``|A ∩ B| / |A ∪ B|`` of two boolean masks (NaN when both are empty)."""
    a, b = _check_pair(np.asarray(pred_mask, bool), np.asarray(truth_mask, bool), "iou")
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else float("nan")


def boundary_f_score(pred_mask, truth_mask, tolerance_px=2.0, region=None):
    """Boundary F-score: how many boundary pixels of each mask lie within a tolerance of the other's.

    Boundaries are the mask pixels next to a non-mask pixel
    (:func:`skimage.segmentation.find_boundaries`, ``mode="inner"``). With
    ``d_B`` the Euclidean distance to the nearest boundary pixel of ``B``::

        precision = share of pred boundary pixels with d_truth <= tolerance
        recall    = share of truth boundary pixels with d_pred <= tolerance
        F         = 2 P R / (P + R)

    Parameters
    ----------
    pred_mask, truth_mask : ndarray, bool, same shape (2D or 3D)
    tolerance_px : float
        Pixels (voxels).
    region : ndarray, bool, same shape, optional
        Count only the boundary pixels inside ``region`` (boundaries and
        distances are still found on the whole arrays).

    Returns
    -------
    dict
        ``f_score``, ``precision``, ``recall`` (NaN when a mask has no boundary).
    """
    a, b = _check_pair(np.asarray(pred_mask, bool), np.asarray(truth_mask, bool), "boundary_f_score")
    inside = np.ones(a.shape, bool) if region is None else _check_pair(np.asarray(region, bool), a, "region")[0]
    edge_a = find_boundaries(a, mode="inner")
    edge_b = find_boundaries(b, mode="inner")
    if not (edge_a & inside).any() or not (edge_b & inside).any():
        return {"f_score": float("nan"), "precision": float("nan"), "recall": float("nan")}
    near_b, near_a = within(edge_b, tolerance_px), within(edge_a, tolerance_px)
    precision = float(np.mean(near_b[edge_a & inside]))
    recall = float(np.mean(near_a[edge_b & inside]))
    f = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"f_score": float(f), "precision": precision, "recall": recall}


def within(mask, distance_px):
    """Pixels within ``distance_px`` (Euclidean) of ``mask``; bool, the shape of ``mask``.

    A dilation by the digital ball ``|offset| <= distance`` for small
    distances (a few times faster than a distance transform on a 256³
    volume), the thresholded distance transform otherwise: the same set.
    """
    from .particles import ball_footprint

    mask = np.asarray(mask, bool)
    if distance_px <= 4:
        return ndi.binary_dilation(mask, ball_footprint(distance_px, mask.ndim)) if distance_px >= 1 else mask.copy()
    return ndi.distance_transform_edt(~mask) <= distance_px


def phase_scores(pred, truth, tolerance_px=2.0, phases=None, region=None):
    """Per-phase Dice, IoU and boundary F-score of a label map against the truth.

    Parameters
    ----------
    pred, truth : ndarray, integer phases, same shape
    tolerance_px : float
        Of :func:`boundary_f_score`.
    phases : sequence of int, optional
        Default: every phase of :data:`indi4d.phases.PHASE_NAMES`.
    region : ndarray, bool, same shape, optional
        Score only there (e.g. the sample, without the training slice); default everywhere.

    Returns
    -------
    dict
        ``{phase_name: {"dice", "iou", "boundary_f", "pred_fraction", "true_fraction"}}``
        plus ``"mean"`` (mean over phases present in the truth or the
        prediction) and ``"accuracy"`` (share of pixels labelled right).
    """
    pred, truth = _check_pair(pred, truth, "phase_scores")
    inside = np.ones(pred.shape, bool) if region is None else _check_pair(np.asarray(region, bool), pred,
                                                                            "phase_scores (region)")[0]
    phases = range(len(PHASE_NAMES)) if phases is None else phases
    out = {}
    for p in phases:
        a, b = pred == p, truth == p
        out[PHASE_NAMES[p]] = {"dice": dice(a[inside], b[inside]), "iou": iou(a[inside], b[inside]),
                               "boundary_f": boundary_f_score(a, b, tolerance_px, region)["f_score"],
                               "pred_fraction": float(a[inside].mean()), "true_fraction": float(b[inside].mean())}
    keys = ("dice", "iou", "boundary_f")
    out["mean"] = {k: float(np.nanmean([v[k] for v in out.values()])) if any(np.isfinite(v[k]) for v in out.values())
                   else float("nan") for k in keys}
    out["accuracy"] = float(np.mean(pred[inside] == truth[inside]))
    return out


def confusion_matrix(pred, truth, n_phases=len(PHASE_NAMES)):
    """Pixel counts ``C[true, pred]``, int64 (n_phases, n_phases)."""
    pred, truth = _check_pair(pred, truth, "confusion_matrix")
    index = truth.astype(np.int64).ravel() * n_phases + pred.astype(np.int64).ravel()
    return np.bincount(index, minlength=n_phases * n_phases).reshape(n_phases, n_phases)


def difference_map(pred, truth, phase=None):
    """Where a segmentation differs from the truth (for figures like the paper's Fig. S6).

    Parameters
    ----------
    pred, truth : ndarray, integer phases, same shape
    phase : int, optional
        With a phase: int8 map, ``+1`` false positive (pred says ``phase``,
        truth does not), ``-1`` false negative, ``0`` agreement. Without: bool
        map, True where the labels differ.

    Returns
    -------
    ndarray, the shape of the inputs
    """
    pred, truth = _check_pair(pred, truth, "difference_map")
    if phase is None:
        return pred != truth
    a, b = pred == phase, truth == phase
    return a.astype(np.int8) - b.astype(np.int8)  # +1 FP, -1 FN, 0 agree
