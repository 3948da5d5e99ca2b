"""Hallucination against the truth: false and missed particles, false edges, error where the truth is flat."""

import math

import numpy as np
from scipy import ndimage as ndi

from ..phases import PARTICLE
from ._inputs import as_float, broadcast_mask

_NM_PER_MM = 1e6


def detect_particles(image, threshold, bright=True, valid_mask=None, sigma_px=1.0, min_size_px=9):
    """The fixed particle detector of :func:`hallucination_metrics` (one 2D slice).

    Gaussian smoothing (``sigma_px``), threshold, removal of components smaller
    than ``min_size_px`` pixels, 4-connected labelling.

    Parameters
    ----------
    image : ndarray (H, W), real
        One slice (in :func:`hallucination_metrics`, rescaled to contrast units).
    threshold : float
        Grey level separating particles from background, in the image's units.
    bright : bool
        Particles are above (True) or below the threshold.
    valid_mask : ndarray of bool (H, W), optional
    sigma_px : float
        Smoothing before the threshold, pixels (0: none).
    min_size_px : int
        Smallest particle kept, pixels.

    Returns
    -------
    labels : ndarray (H, W) int32
        0 background, 1..n particles.
    n : int
    """
    image = as_float(image, "image")
    sm = ndi.gaussian_filter(image, sigma_px) if sigma_px > 0 else image
    det = (sm > threshold) if bright else (sm < threshold)
    det &= broadcast_mask(valid_mask, image.shape, "valid_mask")
    return large_components(det, min_size_px)


def large_components(mask, min_size_px):
    """4-connected components of a 2D bool mask with at least ``min_size_px`` pixels, relabelled 1..n."""
    lab, n = ndi.label(mask)  # default structure: 4-connectivity in 2D
    if n == 0:
        return lab.astype(np.int32), 0
    area = np.bincount(lab.ravel(), minlength=n + 1)
    keep = area >= min_size_px
    keep[0] = False
    new = np.zeros(n + 1, dtype=np.int32)
    new[keep] = np.arange(1, int(keep.sum()) + 1)
    return new[lab], int(keep.sum())


def _overlap_fraction(lab, n, other):
    """Fraction of each component 1..n of ``lab`` lying on the bool mask ``other``."""
    if n == 0:
        return np.zeros(0)
    area = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    hit = np.bincount(lab[other].ravel(), minlength=n + 1)[1:]
    return hit / np.maximum(area, 1)


def hallucination_metrics(pred, truth_labels, pixel_size_nm, valid_mask=None, particle_phase=PARTICLE, min_size_px=9,
                          match_fraction=0.25, flat_distance_px=3, detector_sigma_px=1.0, edge_sigma_px=1.0,
                          edge_low=0.05, edge_high=0.1):
    """Structure in ``pred`` that the truth does not have, and structure it lost.

    Contrast unit. *Flat* pixels are those farther than ``flat_distance_px`` from
    any change of true label. ``m_p`` is the median of ``pred`` over flat true
    particle pixels; ``m_b`` the median over the flat pixels of the non-particle
    phase whose median is nearest ``m_p`` (the phase hardest to tell from the
    particles, e.g. carbon-binder rather than pore). ``pred`` is rescaled to
    ``u = (pred − m_b)/(m_p − m_b)``, so that phase reads 0 and particles 1
    whatever the grey units or polarity.

    * **Particles**: detector :func:`detect_particles` on ``u`` with threshold 0.5
      (the midpoint between the two medians), smoothing ``detector_sigma_px``,
      minimum size ``min_size_px``, 4-connectivity; true particles are the
      4-connected components of ``truth_labels ∈ particle_phase`` of at least
      ``min_size_px``. A detection is *false* when less than ``match_fraction`` of
      its pixels are true particle; a true particle is *missed* when less than
      ``match_fraction`` of its pixels are detected. Counts are per mm² of valid area.
    * **False edges**: Canny edges of ``u`` (``skimage.feature.canny``,
      ``sigma=edge_sigma_px``, hysteresis thresholds ``edge_low``/``edge_high`` in
      contrast units per pixel of the Gaussian derivative) that lie where the
      truth is flat; reported as the fraction of flat pixels that are edge pixels.
    * **Flat-region error**: the pooled standard deviation of ``u`` inside each
      phase's flat pixels, ``sqrt(Σ_k n_k·var_k / Σ_k n_k)``, in contrast units
      (the inverse of a CNR measured against the truth).

    Parameters
    ----------
    pred : ndarray (H, W) or (Z, H, W), real
        Prediction; a volume is analysed slice by slice (2D components) and pooled.
    truth_labels : ndarray of int, same shape
        True phase labels.
    pixel_size_nm : float
        Pixel size, nm.
    valid_mask : ndarray of bool, optional
        Same shape or (H, W).
    particle_phase : int or sequence of int
    min_size_px, match_fraction, flat_distance_px, detector_sigma_px, edge_sigma_px, edge_low, edge_high
        As above.

    Returns
    -------
    dict
        ``false_particles_per_mm2``, ``missed_particles_per_mm2`` (float, 1/mm²),
        ``n_false_particles``, ``n_missed_particles``, ``n_detected_particles``,
        ``n_true_particles`` (int), ``false_edge_fraction`` (float in [0, 1]),
        ``flat_region_error`` (float, contrast units), ``area_mm2`` (float).
        All NaN when ``pred`` shows no contrast between true particles and background.
    """
    from skimage.feature import canny

    pred = as_float(pred, "pred")
    if pred.ndim not in (2, 3):
        raise ValueError(f"hallucination_metrics: expected a 2D or 3D image, got shape {pred.shape}")
    truth = np.asarray(truth_labels)
    if truth.shape != pred.shape or not np.issubdtype(truth.dtype, np.integer):
        raise ValueError(f"truth_labels: expected integer labels of shape {pred.shape}, got {truth.dtype} {truth.shape}")
    if not pixel_size_nm > 0:
        raise ValueError(f"pixel_size_nm must be > 0, got {pixel_size_nm}")
    valid = broadcast_mask(valid_mask, pred.shape, "valid_mask")
    P, T, V = (pred[None], truth[None], valid[None]) if pred.ndim == 2 else (pred, truth, valid)
    phases = np.atleast_1d(particle_phase)

    # flat pixels: farther than flat_distance_px (in-plane) from any change of true label
    flat = np.zeros(P.shape, dtype=bool)
    for z in range(T.shape[0]):
        t = T[z]
        boundary = np.zeros(t.shape, dtype=bool)
        boundary[:-1] |= t[:-1] != t[1:]
        boundary[1:] |= t[:-1] != t[1:]
        boundary[:, :-1] |= t[:, :-1] != t[:, 1:]
        boundary[:, 1:] |= t[:, :-1] != t[:, 1:]
        dist = ndi.distance_transform_edt(~boundary) if boundary.any() else np.full(t.shape, np.inf)
        flat[z] = (dist > flat_distance_px) & V[z]
    is_part = np.isin(T, phases)
    nan_result = {"false_particles_per_mm2": math.nan, "missed_particles_per_mm2": math.nan,
                  "n_false_particles": None, "n_missed_particles": None, "n_detected_particles": None,
                  "n_true_particles": None, "false_edge_fraction": math.nan, "flat_region_error": math.nan,
                  "area_mm2": float(V.sum() * (pixel_size_nm / _NM_PER_MM) ** 2)}
    if not (flat & is_part).any() or not (flat & ~is_part).any():
        return nan_result
    m_p = np.median(P[flat & is_part])
    # reference phase: the non-particle phase whose median grey value is nearest the particles'
    # (the hardest to tell apart), so the unit and the detector's threshold never sit
    # between two background phases
    others = [k for k in np.unique(T[flat & ~is_part])]
    medians = {k: np.median(P[flat & (T == k)]) for k in others}
    m_b = medians[min(others, key=lambda k: abs(medians[k] - m_p))]
    if abs(m_p - m_b) <= 1e-12 * max(1.0, abs(m_p), abs(m_b)):
        return nan_result
    u = (P - m_b) / (m_p - m_b)  # 0 on true background, 1 on true particles

    n_false = n_missed = n_det = n_true = 0
    n_edges = 0
    for z in range(P.shape[0]):
        det, nd = detect_particles(u[z], 0.5, bright=True, valid_mask=V[z], sigma_px=detector_sigma_px,
                                   min_size_px=min_size_px)
        tl, nt = large_components(is_part[z] & V[z], min_size_px)
        n_false += int((_overlap_fraction(det, nd, is_part[z]) < match_fraction).sum())
        n_missed += int((_overlap_fraction(tl, nt, det > 0) < match_fraction).sum())
        n_det += nd
        n_true += nt
        # skimage's canny thresholds its Sobel magnitude, 8× the derivative per pixel
        edges = canny(u[z], sigma=edge_sigma_px, low_threshold=8 * edge_low, high_threshold=8 * edge_high,
                      mask=V[z])
        n_edges += int((edges & flat[z]).sum())
    area_mm2 = float(V.sum() * (pixel_size_nm / _NM_PER_MM) ** 2)
    var_sum, count = 0.0, 0
    for k in np.unique(T[flat]):
        vals = u[flat & (T == k)]
        var_sum += vals.size * vals.var()
        count += vals.size
    return {
        "false_particles_per_mm2": n_false / area_mm2,
        "missed_particles_per_mm2": n_missed / area_mm2,
        "n_false_particles": n_false,
        "n_missed_particles": n_missed,
        "n_detected_particles": n_det,
        "n_true_particles": n_true,
        "false_edge_fraction": n_edges / int(flat.sum()),
        "flat_region_error": math.sqrt(var_sum / count),
        "area_mm2": area_mm2,
    }
