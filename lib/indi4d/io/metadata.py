"""Metadata dicts: attribute values to JSON types, the voxel size, what a writer stores."""

import contextlib
import json
import math

import numpy as np

from ..volume_paths import MARKER, VolumeError


def _plain(value):
    """NumPy / bytes attribute values -> JSON-friendly Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype.kind in "OSU" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def meta_from_attrs(attrs):
    """Dataset/array attributes -> metadata dict (``metadata_json`` expanded)."""
    meta = {}
    for key, value in attrs.items():
        if key == "metadata_json" or key in MARKER:  # the marker says who wrote it; it is not metadata
            continue
        meta[key] = _plain(value)
    if "metadata_json" in attrs:
        with contextlib.suppress(ValueError, TypeError):
            meta.update(json.loads(_plain(attrs["metadata_json"])))
    return meta


def normalise_meta(meta):
    if "voxel_size_nm" in meta and meta["voxel_size_nm"] is not None:
        with contextlib.suppress(TypeError, ValueError):
            meta["voxel_size_nm"] = float(meta["voxel_size_nm"])
    return meta


def isotropic_voxel_size(meta, label, rtol=0.01):
    """The voxel size (nm) of ``meta``, or None when it states none; anisotropic voxels are refused.

    A Fiji TIFF states its z spacing and its y-x pixel size in separate tags
    (``voxel_size_zyx_nm``); the method assumes isotropic voxels, so a z
    spacing unlike the pixel size is an error naming both, never a silent
    choice of one.

    Raises
    ------
    VolumeError
        The z spacing differs from the y-x pixel size by more than ``rtol``.
    """
    zyx = meta.get("voxel_size_zyx_nm")
    if zyx and zyx[0] is not None and zyx[1] is not None and not math.isclose(zyx[0], zyx[1], rel_tol=rtol):
        raise VolumeError(f"{label}: anisotropic voxels, z spacing {zyx[0]:g} nm but y-x pixel size {zyx[1]:g} nm "
                          "(the file's ImageJ calibration); indi4d needs isotropic voxels: resample z to "
                          f"{zyx[1]:g} nm first, or fix the calibration in Fiji (Image > Properties)")
    value = meta.get("voxel_size_nm")
    return None if value is None else float(value)


def write_meta(voxel_size_nm, extra):
    """The metadata dict a writer stores: ``extra`` plus a validated ``voxel_size_nm``."""
    meta = dict(extra or {})
    if voxel_size_nm is not None:
        voxel_size_nm = float(voxel_size_nm)
        if not math.isfinite(voxel_size_nm) or voxel_size_nm <= 0:
            raise ValueError(f"voxel_size_nm must be a positive number, got {voxel_size_nm}")
        meta["voxel_size_nm"] = voxel_size_nm
    json.dumps(meta)  # fail before writing anything if extra is not JSON-serialisable
    return meta
