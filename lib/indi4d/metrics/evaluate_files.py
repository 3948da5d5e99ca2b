"""All metrics together on files (``indi4d evaluate``): volumes opened lazily, only the scored slices read.

The inputs are checked first (2D or 3D, one shape, integer labels, one voxel
size, no NaN in the scored slices), the output before anything is read; the
scoring itself is :func:`indi4d.metrics.evaluate.evaluate_pair`.
"""

import math
from pathlib import Path

import numpy as np

from ..files import write_json
from ..phases import PARTICLE, check_phase_range
from ..presets import resolve
from ..safety import check_output
from .evaluate import evaluate_pair, pick_slices, select_slices, valid_slices
from .presets import PRESETS


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
        picked[key] = np.asarray(arr) if is_2d else pick_slices(arr, zs, is_2d)
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
                           mask=mask if mask is None or is_2d else valid_slices(mask, shape, zs, is_2d),
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
