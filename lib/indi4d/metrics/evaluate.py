"""All metrics together on a prediction and a reference held as arrays (:func:`evaluate_pair`).

The same on files, read lazily slice by slice, is :mod:`indi4d.metrics.evaluate_files`
(``indi4d evaluate``).
"""

import math

import numpy as np

from ..files import json_ready
from ..phases import PARTICLE
from ..presets import resolve
from ._inputs import as_float, broadcast_mask
from .contrast import cnr, two_phase_masks
from .fidelity import psnr, ssim
from .hallucination import hallucination_metrics
from .presets import METRIC_KEYS, PRESETS
from .sharpness import fwhm_edge_resolution, otsu_edge_resolution
from .sift import sift_congruent_points


def select_slices(n_z, max_slices):
    """Indices of at most ``max_slices`` evenly spaced slices of ``n_z``, first and last included."""
    if n_z < 1:
        raise ValueError("select_slices: empty volume")
    k = max(1, min(int(max_slices), n_z))
    return np.unique(np.rint(np.linspace(0, n_z - 1, k)).astype(int))


def _mean_std(values):
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    return float(v.mean()), float(v.std())


_HALLUCINATION_KEYS = ("false_particles_per_mm2", "missed_particles_per_mm2", "n_false_particles",
                       "n_missed_particles", "n_detected_particles", "n_true_particles", "false_edge_fraction",
                       "flat_region_error")


def pick_slices(volume, zs, is_2d):
    """The selected slices of a volume as an ndarray; only those slices of a lazy array are read.

    Parameters
    ----------
    volume : array-like (Z, H, W) or (H, W)
        An ndarray or a lazy array (dask, h5py, zarr).
    zs : ndarray of int
        Slice indices (:func:`select_slices`).
    is_2d : bool
        ``volume`` is one slice: it is returned as a stack of one.

    Returns
    -------
    ndarray (len(zs), H, W), or (1, H, W) for a slice
    """
    return np.asarray(volume)[None] if is_2d else np.asarray(volume[zs])


def valid_slices(mask, shape, zs, is_2d):
    """The valid region on the selected slices.

    Parameters
    ----------
    mask : ndarray of bool (H, W) or of ``shape``, or None
        One slice's mask (the same for every slice), the volume's, or None (all valid).
    shape : tuple of int
        The images' shape, (Z, H, W) or (H, W).
    zs : ndarray of int
        Slice indices (:func:`select_slices`).
    is_2d : bool
        The images are single slices.

    Returns
    -------
    ndarray of bool (len(zs), H, W)

    Raises
    ------
    ValueError
        ``mask`` matches neither the images' shape nor one slice's.
    """
    if mask is None:
        return np.ones((len(zs),) + tuple(shape[-2:]), dtype=bool)
    mask = np.asarray(mask)
    if mask.shape == tuple(shape[-2:]):  # one (H, W) mask for every slice
        return np.ascontiguousarray(broadcast_mask(mask, (len(zs),) + tuple(shape[-2:])))
    if mask.shape == tuple(shape) and not is_2d:
        return broadcast_mask(mask[zs], (len(zs),) + tuple(shape[-2:]))
    raise ValueError(f"mask: shape {mask.shape} matches neither the image {tuple(shape)} nor one slice")


def _evaluate_slices(P, R, L, V, p, pixel_size_nm, fit, particle_phase, particles_bright, seed, progress,
                     data_range=None):
    """Metrics of (n, H, W) float64 stacks; see :func:`evaluate_pair` for the keys."""
    from tqdm.auto import tqdm

    if not V.any():
        raise ValueError("mask: selects no pixel in the evaluated slices")
    if data_range is None:
        data_range = float(R[V].max() - R[V].min())  # one range for all slices, so they are comparable
    psnrs, ssims, sifts = [], [], []
    for i in tqdm(range(len(P)), desc="metrics", disable=not progress):
        psnrs.append(psnr(P[i], R[i], V[i], data_range=data_range, fit=fit))
        ssims.append(ssim(P[i], R[i], V[i], data_range=data_range, fit=fit, win_size=p["ssim_win_size"]))
        sifts.append(sift_congruent_points(P[i], R[i], ratio=p["sift_ratio"], mask=V[i],
                                           max_displacement_px=p["sift_max_displacement_px"]))

    def no_reference(image):
        edge_kw = dict(half_length_px=p["half_length_px"], n_groups=p["n_groups"], max_profiles=p["max_profiles"],
                       spacing_px=p["spacing_px"], smooth_sigma_px=p["smooth_sigma_px"], seed=seed)
        if L is not None:
            part_e, back_e, part = two_phase_masks(image, L, V, particle_phase, p["cnr_margin_px"])
            res = fwhm_edge_resolution(image, part, pixel_size_nm, valid_mask=V, **edge_kw)
        else:
            res = otsu_edge_resolution(image, pixel_size_nm, valid_mask=V, particles_bright=particles_bright,
                                       otsu_classes=p["otsu_classes"], min_size_px=p["min_size_px"],
                                       margin_px=p["cnr_margin_px"], **edge_kw)
            part_e, back_e = res["particles"], res["background"]
        try:
            c = cnr(image, part_e, back_e)
        except ValueError:  # a class is empty after the erosion
            c = math.nan
        return {"fwhm_nm": res["fwhm_nm"], "fwhm_nm_mean": res["fwhm_nm_mean"], "fwhm_nm_std": res["fwhm_nm_std"],
                "edge_overshoot": res["edge_overshoot"], "n_edge_profiles": res["n_profiles"], "cnr": c}

    out = {}
    out["psnr"], out["psnr_std"] = _mean_std(psnrs)
    if all(math.isinf(x) for x in psnrs):  # identical images on every slice
        out["psnr"], out["psnr_std"] = math.inf, 0.0
    out["ssim"], out["ssim_std"] = _mean_std(ssims)
    out["sift_congruent_points"], out["sift_congruent_points_std"] = _mean_std(sifts)
    out.update(no_reference(P))
    if L is not None:
        h = hallucination_metrics(P, L, pixel_size_nm, valid_mask=V, particle_phase=particle_phase,
                                  min_size_px=p["min_size_px"], match_fraction=p["match_fraction"],
                                  flat_distance_px=p["flat_distance_px"], detector_sigma_px=p["detector_sigma_px"],
                                  edge_sigma_px=p["edge_sigma_px"], edge_low=p["edge_low"], edge_high=p["edge_high"])
        out.update({k: h[k] for k in _HALLUCINATION_KEYS})
    else:
        out.update({k: None for k in _HALLUCINATION_KEYS})
    out = {k: out[k] for k in METRIC_KEYS}  # the documented order
    out["reference"] = no_reference(R)
    return out


def evaluate_pair(pred, ref, labels=None, pixel_size_nm=None, mask=None, *, preset="default", fit="affine",
                  particle_phase=PARTICLE, particles_bright=True, seed=0, progress=False, data_range=None,
                  **overrides):
    """All metrics of a prediction against a reference, for a 2D slice or a 3D volume.

    Parameters
    ----------
    pred : array (H, W) or (Z, H, W), real
        Image under test (e.g. InDI output), on the grid of ``ref``. NumPy or a
        lazy (dask) array: only the evaluated slices are read and converted.
    ref : array, same shape, real
        Reference: the HQ scan (as the paper) or the true attenuation (ours).
    labels : array of int, same shape, optional
        True phase labels. When given they define particles and background for the
        FWHM and the CNR (:func:`two_phase_masks`) and enable the hallucination
        metrics; when absent, each image is segmented on its own by Otsu's
        threshold (``otsu_classes`` grey classes, brightest = particle) after a
        smoothing matched to its edge width (:func:`otsu_edge_resolution`), and
        the hallucination keys are ``None``.
    pixel_size_nm : float
        Pixel size, nm (required).
    mask : ndarray of bool, optional
        Valid region, same shape or (H, W).
    preset : {"tiny", "default", "paper"}
        Parameters of :data:`PRESETS` (slices analysed, profile length and count,
        detector settings); ``**overrides`` replace single entries.
    fit : {"affine", "none"}
        Grey-level fit of ``pred`` onto ``ref`` before PSNR/SSIM (:func:`psnr`):
        ``"affine"`` (default) scores structure, not a global gain/offset, and is
        required against the true attenuation.
    particle_phase : int or sequence of int
    particles_bright : bool
        Polarity assumed by the Otsu segmentation.
    seed : int
        Seed of the random grouping and subsampling of edge profiles.
    progress : bool
        Show a progress bar over slices.
    data_range : float, optional
        ``R`` of PSNR and SSIM; default the reference's range (max − min) inside
        the mask over the evaluated slices. Returned as ``data_range``.

    Returns
    -------
    dict (JSON-ready; ``None`` where a value is undefined)
        A volume is evaluated on ``max_slices`` evenly spaced z slices
        (:func:`select_slices`): PSNR, SSIM and SIFT per slice (``<key>`` = mean,
        ``<key>_std`` = population std over slices; 0 for a 2D image); edge
        profiles, CNR and hallucination pixels pooled over those slices. Keys, in
        this order (:data:`METRIC_KEYS`):

        ``psnr`` (dB), ``psnr_std``, ``ssim``, ``ssim_std``,
        ``sift_congruent_points`` (count per slice), ``sift_congruent_points_std``,
        ``fwhm_nm`` (FWHM of the mean edge, nm), ``fwhm_nm_mean``, ``fwhm_nm_std``
        (over groups of edges, nm), ``edge_overshoot`` (fraction of the step),
        ``n_edge_profiles``, ``cnr``, ``false_particles_per_mm2``,
        ``missed_particles_per_mm2``, ``n_false_particles``, ``n_missed_particles``,
        ``n_detected_particles``, ``n_true_particles``, ``false_edge_fraction``,
        ``flat_region_error`` (contrast units); then ``reference`` (dict:
        ``fwhm_nm``, ``fwhm_nm_mean``, ``fwhm_nm_std``, ``edge_overshoot``,
        ``n_edge_profiles``, ``cnr`` of ``ref`` itself, same segmentation rule),
        ``slices`` (list of z, ``None`` for a 2D image), ``n_slices``,
        ``pixel_size_nm``, ``fit``, ``segmentation`` ("labels" or "otsu"),
        ``preset`` and ``params`` (the resolved preset). A perfect PSNR or a
        noise-free CNR is ``inf``.
    """
    if pixel_size_nm is None or not pixel_size_nm > 0:
        raise ValueError(f"evaluate_pair: pixel_size_nm must be a positive number, got {pixel_size_nm}")
    p = resolve(PRESETS, preset, **overrides)
    if fit not in ("none", "affine"):
        raise ValueError(f"fit must be 'none' or 'affine', got {fit!r}")
    shape = tuple(pred.shape)
    if len(shape) not in (2, 3):
        raise ValueError(f"evaluate_pair: expected 2D or 3D images, got shape {shape}")
    if tuple(ref.shape) != shape:
        raise ValueError(f"pred and ref shapes differ: {shape} vs {tuple(ref.shape)}")
    if labels is not None and (tuple(labels.shape) != shape or not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"labels: expected integer labels of shape {shape}, got {labels.dtype} {tuple(labels.shape)}")
    is_2d = len(shape) == 2
    zs = np.array([0]) if is_2d else select_slices(shape[0], p["max_slices"])
    P = as_float(pick_slices(pred, zs, is_2d), "pred")
    R = as_float(pick_slices(ref, zs, is_2d), "ref")
    L = None if labels is None else pick_slices(labels, zs, is_2d)
    V = valid_slices(mask, shape, zs, is_2d)
    if data_range is not None and not data_range > 0:
        raise ValueError(f"evaluate_pair: data_range must be > 0, got {data_range}")
    if not V.any():
        raise ValueError("mask: selects no pixel in the evaluated slices")
    used_range = float(data_range) if data_range is not None else float(R[V].max() - R[V].min())
    out = _evaluate_slices(P, R, L, V, p, pixel_size_nm, fit, particle_phase, particles_bright, seed, progress,
                           used_range)
    out.update(data_range=used_range, slices=None if is_2d else [int(z) for z in zs], n_slices=len(zs),
               pixel_size_nm=float(pixel_size_nm),
               fit=fit, segmentation="labels" if L is not None else "otsu", preset=preset, params=p)
    return json_ready(out, keep_inf=True)  # NaN -> None; +inf (a perfect PSNR) stays
