"""All metrics together: a prediction against a reference, as arrays or as files (``indi4d evaluate``)."""

import math
from pathlib import Path

import numpy as np

from ..files import json_ready, write_json
from ..phases import PARTICLE, check_phase_range
from ..presets import resolve
from ..safety import check_output
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


def _pick_slices(volume, zs, is_2d):
    """``volume[zs]`` (a 2D image as one slice) as an ndarray; reads only those slices of a lazy array."""
    return np.asarray(volume)[None] if is_2d else np.asarray(volume[zs])


def _valid_slices(mask, shape, zs, is_2d):
    """The valid mask on the selected slices, shape (len(zs), H, W)."""
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
    P = as_float(_pick_slices(pred, zs, is_2d), "pred")
    R = as_float(_pick_slices(ref, zs, is_2d), "ref")
    L = None if labels is None else _pick_slices(labels, zs, is_2d)
    V = _valid_slices(mask, shape, zs, is_2d)
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


def _voxel_size(meta, path):
    v = meta.get("voxel_size_nm")
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: voxel_size_nm in the metadata is not a single number: {v!r}") from None
    if not v > 0:
        raise ValueError(f"{path}: voxel_size_nm in the metadata must be > 0, got {v}")
    return v


def auto_valid_mask(*stacks):
    """The reconstruction disc shared by image stacks, found from the data.

    A reconstruction is filled with one constant value outside its disc; that
    region varies not at all along z. The disc radius of each stack is estimated
    with :func:`indi4d.core.preprocess.estimate_disc_radius` and the smallest is used,
    less one pixel for the rim.

    Parameters
    ----------
    *stacks : ndarray (n, H, W), n >= 2
        Slices of the images compared (e.g. prediction and reference).

    Returns
    -------
    mask : ndarray of bool (H, W) or None
        ``None`` when no stack has an empty outside (every pixel is valid).
    radius_px : float or None
    """
    from ..core.preprocess import disc_mask, estimate_disc_radius

    shape = stacks[0].shape
    if len(shape) != 3 or shape[0] < 2:
        return None, None
    radius = min(estimate_disc_radius(st) for st in stacks)
    if radius >= math.hypot(*shape[1:]) / 2.0 - 1.0:  # data up to the corners: nothing to exclude
        return None, None
    radius = max(radius - 1.0, 1.0)
    return disc_mask(shape, radius), float(radius)


def _open_inputs(paths):
    """Open each input lazily and check it: 2D or 3D, integer labels, one shape for all.

    Parameters
    ----------
    paths : dict of str -> Path
        ``"pred"`` first, then ``"reference"`` and optionally ``"labels"``.

    Returns
    -------
    lazy : dict of str -> array
        Lazy arrays (only what is indexed is read).
    sizes : dict of str -> float or None
        Each file's ``voxel_size_nm`` metadata, nm.
    """
    from ..io import open_volume_lazy

    lazy, sizes = {}, {}
    for key, path in paths.items():
        arr, meta = open_volume_lazy(path)
        if arr.ndim not in (2, 3):
            raise ValueError(f"{path}: expected a 2D slice or a 3D volume, got shape {arr.shape}")
        if key == "labels" and not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"{path}: labels must be integers, got dtype {arr.dtype}")
        lazy[key], sizes[key] = arr, _voxel_size(meta, path)
    for key in list(paths)[1:]:
        if lazy[key].shape != lazy["pred"].shape:
            raise ValueError(f"shapes differ: {paths['pred']} is {lazy['pred'].shape}, "
                             f"{paths[key]} is {lazy[key].shape}")
    return lazy, sizes


def _common_voxel_size(sizes, paths):
    """The one voxel size (nm) the files agree on; a file without one takes the others'."""
    known = {k: v for k, v in sizes.items() if v is not None}
    if not known:
        raise ValueError(f"no voxel_size_nm in the metadata of {', '.join(map(str, paths.values()))}; "
                         "pass pixel_size_nm")
    first = next(iter(known.values()))
    if any(not math.isclose(v, first, rel_tol=1e-6) for v in known.values()):
        detail = ", ".join(f"{paths[k]}: {v} nm" for k, v in known.items())
        raise ValueError(f"voxel sizes differ ({detail}); resample onto one grid first")
    return first


def _read_mask_file(path, shape):
    """A valid-region file (non-zero = valid) as bool, of the images' shape or one slice's."""
    from ..io import read_volume

    mask = read_volume(path)[0] != 0
    if mask.shape not in (tuple(shape), tuple(shape[-2:])):
        raise ValueError(f"{path}: mask shape {mask.shape} matches neither the images {tuple(shape)} "
                         f"nor one slice {tuple(shape[-2:])}")
    return mask


def is_evaluation_result(obj):
    """True for what :func:`evaluate_files` writes (so ``--out`` may replace it, and nothing else)."""
    return isinstance(obj, dict) and isinstance(obj.get("files"), dict) and "units" in obj


def evaluate_files(pred_path, ref_path, labels=None, out=None, *, mask="auto", pixel_size_nm=None, preset="default",
                   fit="affine", particle_phase=PARTICLE, seed=0, units=None, **overrides):
    """Run :func:`evaluate_pair` on files and write the metrics as JSON (``indi4d evaluate``).

    The volumes are opened lazily (:func:`indi4d.io.open_volume_lazy`) and only
    the evaluated slices are read, so a 2048³ scan needs a few slices of memory.

    Parameters
    ----------
    pred_path, ref_path : str or Path
        Volumes or slices readable by :mod:`indi4d.io` (TIFF, HDF5, zarr), of one shape.
    labels : str or Path, optional
        Integer phase labels of the same shape (e.g. ``truth_labels_hq.tif``).
    out : str or Path, optional
        JSON file (``.json``), written atomically (``inf`` is written as
        ``Infinity``, which Python's :mod:`json` reads back). It is checked
        before anything is read: an ``out`` that is one of the input files, or
        not a ``.json`` name, is refused and nothing is computed.
    mask : "auto", None, ndarray of bool, or str or Path
        Valid region, as in :func:`evaluate_pair`. ``"auto"`` (default): for a
        volume, the reconstruction disc found in the evaluated slices of ``pred``
        and ``ref`` (:func:`auto_valid_mask`), so the constant fill outside it is
        not scored; ``None``: every pixel; a path: a volume or slice file whose
        non-zero voxels are valid.
    pixel_size_nm : float, optional
        Overrides the files' ``voxel_size_nm`` metadata; otherwise the sizes in
        the files must agree (a file without one takes the others').
    preset, fit, particle_phase, seed, **overrides
        As in :func:`evaluate_pair`.
    units : str, optional
        What the files' values are (e.g. "attenuation (1/µm)"), recorded as the
        result's ``units``; default: the files' own values, unconverted.

    Returns
    -------
    dict
        The metrics of :func:`evaluate_pair` plus ``units``, ``mask`` (``None`` for all
        pixels, ``"given"``, or ``{"disc_radius_px": r}`` when found
        automatically) and ``files`` (the input paths, the mask's too when it is a file).

    Raises
    ------
    indi4d.safety.UnsafeOutputError
        ``out`` would overwrite an input or is not a writable ``.json`` name.
    ValueError
        Naming the file(s): unreadable, NaN/Inf voxels, shapes or voxel sizes
        that differ, non-integer labels, no voxel size anywhere.
    """
    auto = isinstance(mask, str) and mask == "auto"
    mask_file = mask if isinstance(mask, (str, Path)) and not auto else None
    if out is not None:  # before anything is read or computed: an input is never overwritten
        check_output(out, inputs=[pred_path, ref_path, labels, mask_file], kind="json", who="indi4d evaluate",
                     earlier=is_evaluation_result)
    p = resolve(PRESETS, preset, **overrides)
    paths = {"pred": Path(pred_path), "reference": Path(ref_path)}
    if labels is not None:
        paths["labels"] = Path(labels)
    lazy, sizes = _open_inputs(paths)
    if "labels" in lazy:  # classes outside the phases would give wrong CNR and null metrics
        check_phase_range(lazy["labels"], str(paths["labels"]))
    if pixel_size_nm is None:
        pixel_size_nm = _common_voxel_size(sizes, paths)
    shape = tuple(lazy["pred"].shape)
    is_2d = len(shape) == 2
    zs = np.array([0]) if is_2d else select_slices(shape[0], p["max_slices"])
    picked = {}
    for key, arr in lazy.items():
        picked[key] = np.asarray(arr) if is_2d else _pick_slices(arr, zs, is_2d)
        if key != "labels" and not np.all(np.isfinite(picked[key])):
            raise ValueError(f"{paths[key]}: NaN or infinite voxels in the evaluated slices")
    if mask_file is not None:
        mask = _read_mask_file(mask_file, shape)
    mask_info = None if mask is None else "given"
    if auto:
        mask, radius = (None, None) if is_2d else auto_valid_mask(picked["pred"], picked["reference"])
        mask_info = None if mask is None else {"disc_radius_px": radius}
    result = evaluate_pair(picked["pred"], picked["reference"], labels=picked.get("labels"),
                           pixel_size_nm=pixel_size_nm,
                           mask=mask if mask is None or is_2d else _valid_slices(mask, shape, zs, is_2d),
                           preset=preset, fit=fit, particle_phase=particle_phase, seed=seed,
                           **{**overrides, "max_slices": len(zs)})
    if not is_2d:
        result["slices"] = [int(z) for z in zs]  # indices in the files, not in the picked stack
        result["params"]["max_slices"] = p["max_slices"]
    result["units"] = units or "the files' own values (no conversion)"
    result["mask"] = mask_info
    result["files"] = {k: str(v) for k, v in paths.items()}
    if mask_file is not None:
        result["files"]["mask"] = str(mask_file)
    if out is not None:
        write_json(out, result, keep_inf=True)
    return result
