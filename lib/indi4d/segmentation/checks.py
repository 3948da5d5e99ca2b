"""Checks of an ``indi4d segment`` or ``indi4d describe`` job before any computation.

Like :mod:`indi4d.inference.checks` for ``indi4d enhance``: everything is
checked from metadata and small files (the output is writable, of a known
format and no input; the inputs are readable, of the right shape and dtype;
the scribbles fit the slice; the voxel size is known), so a refused job costs
nothing and leaves every file untouched. Every error names the file.
"""

from pathlib import Path

import numpy as np

from ..inference.checks import check_input_range, stated_voxel_size
from ..safety import check_output, split_spec


class SegmentInputError(ValueError):
    """A segment/describe job refused before any computation (the message names the file)."""


def voxel_size(meta, given, path):
    """A volume file's voxel size in nm: ``given`` or the file's (:func:`~indi4d.inference.checks.stated_voxel_size`).

    Raises
    ------
    SegmentInputError
        ``given`` is not positive or disagrees with the file's, or neither states one.
    """
    voxel = stated_voxel_size(meta, given, path, SegmentInputError)
    if voxel is None:
        raise SegmentInputError(f"{path}: the file carries no voxel size; state it with --voxel-size-nm")
    return voxel


def open_volume_checked(path, ndims, what):
    """The volume at ``path`` opened lazily (nothing read) and its metadata; its number of axes checked."""
    from ..io import open_volume_lazy

    if not split_spec(path)[0].exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    volume, meta = open_volume_lazy(path)
    if volume.ndim not in ndims:
        raise SegmentInputError(f"{path}: shape {tuple(volume.shape)} is not a "
                                + " or ".join(f"{n}D" for n in ndims) + f" {what}")
    if volume.ndim == 3 and volume.shape[-1] in (3, 4) and 2 in ndims:
        raise SegmentInputError(f"{path}: shape {tuple(volume.shape)} looks like RGB(A) colour channels; "
                                "convert to one grey channel first")
    return volume, meta


def check_finite(volume, path):
    """Refuse NaN or infinite grey values (a NaN slice would be labelled all pore); reads a float volume once."""
    if volume.dtype.kind != "f":
        return
    bad = (~np.isfinite(volume)).reshape(volume.shape[0] if volume.ndim == 3 else 1, -1).sum(axis=1).compute()
    if bad.any():
        where = f" (first in slice z = {int(np.argmax(bad > 0))})" if volume.ndim == 3 else ""
        raise SegmentInputError(f"{path}: {int(bad.sum())} NaN or infinite grey values{where}; fill or mask them "
                                "before segmenting")


def is_descriptors_result(obj):
    """True for what ``indi4d describe`` writes (so ``--out`` may replace it, and nothing else)."""
    return isinstance(obj, dict) and {"particle_count", "input"} <= set(obj)


def _scribbled_slice(volume, scribbles, z, path):
    """The index of the scribbled slice: ``z``, else the scribbles' source z, else the middle slice."""
    if volume.ndim == 2:
        return 0
    source_z = (scribbles or {}).get("source", {}).get("z")
    z = z if z is not None else source_z if source_z is not None else volume.shape[0] // 2
    if not 0 <= int(z) < volume.shape[0]:
        raise SegmentInputError(f"{path}: slice {z} is outside the volume's {volume.shape[0]} slices")
    return int(z)


def check_segment_input(volume_path, out_path, scribbles_path=None, model_dir=None, z=None, input_range=None,
                        voxel_size_nm=None, who="indi4d segment"):
    """Refuse a bad segmentation job before anything is computed; return what the computation needs.

    Parameters
    ----------
    volume_path, out_path : str or Path
        The grey-value volume (2D or 3D) and the label volume to write (never an input).
    scribbles_path : str or Path, optional
        Scribbles JSON drawn on one slice; needed unless ``model_dir`` holds a trained network.
    model_dir : str or Path, optional
        A segmentation model folder (trained there, or reused when finished).
    z : int, optional
        The scribbled slice (default: the scribbles' source z, else the middle slice).
    input_range : (float, float), optional
    voxel_size_nm : float, optional
        The volume's voxel size when the file states none (must agree with it otherwise).
    who : str
        Named first in the messages.

    Returns
    -------
    dict
        ``volume`` (lazy), ``voxel_size_nm``, ``z``, ``scribbles`` (or None),
        ``finished`` (``model_dir`` holds a trained network).
    """
    from ..io import VolumeError, volume_format
    from ..model_folder import SEGMENTATION_TASK, is_finished, model_path, model_task
    from .scribbles import read_scribbles

    check_output(out_path, [volume_path, scribbles_path, model_dir], kind="volume", who=who)
    if volume_format(out_path) == "tiff-folder":
        raise VolumeError(f"{out_path}: name the output .tif, .h5 (file.h5:/dataset) or .zarr")
    if model_dir is not None and Path(model_dir).exists() and not Path(model_dir).is_dir():
        raise SegmentInputError(f"{model_dir}: --model must be a folder (a segmentation model folder)")
    if model_dir is not None and model_path(model_dir, "config").exists():
        task = model_task(model_dir)  # a damaged config.json is named here, before anything is computed
        if task != SEGMENTATION_TASK:
            raise SegmentInputError(f"{model_dir}: an {task} model folder (indi4d train), not a segmentation one; "
                                    "give --model a new folder or one made by indi4d segment")
    finished = model_dir is not None and is_finished(model_dir)
    if scribbles_path is None and not finished:
        raise SegmentInputError(f"{who}: --scribbles FILE is needed (only a --model folder holding a trained "
                                "network can segment without them)")
    scribbles = read_scribbles(scribbles_path) if scribbles_path is not None else None
    volume, meta = open_volume_checked(volume_path, (2, 3), "grey-value volume")
    if volume.dtype.kind not in "uif":
        raise SegmentInputError(f"{volume_path}: dtype {volume.dtype} is not grey values (integers or floats)")
    voxel = voxel_size(meta, voxel_size_nm, volume_path)
    z = _scribbled_slice(volume, scribbles, z, volume_path)
    slice_shape = tuple(volume.shape[-2:])
    if scribbles is not None and tuple(scribbles["shape"]) != slice_shape:
        raise SegmentInputError(f"{scribbles_path}: drawn on a {tuple(scribbles['shape'])} slice, but the slices of "
                                f"{volume_path} are {slice_shape}")
    check_input_range(input_range, volume_path, SegmentInputError)
    check_finite(volume, volume_path)
    return {"volume": volume, "voxel_size_nm": voxel, "z": z, "scribbles": scribbles, "finished": finished}


def check_describe_input(labels_path, out_path, voxel_size_nm=None, who="indi4d describe"):
    """Refuse a bad descriptors job before anything is computed; return the label volume (lazy) and voxel size."""
    check_output(out_path, [labels_path], kind="json", who=who, earlier=is_descriptors_result)
    volume, meta = open_volume_checked(labels_path, (3,), "label volume")
    if volume.dtype.kind not in "iu":
        raise SegmentInputError(f"{labels_path}: dtype {volume.dtype} is not integer phase labels")
    return volume, voxel_size(meta, voxel_size_nm, labels_path)
