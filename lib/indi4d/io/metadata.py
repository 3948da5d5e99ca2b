"""Metadata dicts: attribute values to JSON types, the voxel size, what a writer stores."""

import contextlib
import json
import math

import numpy as np

from ..volume_paths import MARKER


def _plain(value):
    """NumPy / bytes attribute values -> JSON-friendly Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()] if value.dtype.kind in "OSU" else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _meta_from_attrs(attrs):
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


def _normalise_meta(meta):
    if "voxel_size_nm" in meta and meta["voxel_size_nm"] is not None:
        with contextlib.suppress(TypeError, ValueError):
            meta["voxel_size_nm"] = float(meta["voxel_size_nm"])
    return meta


def _write_meta(voxel_size_nm, extra):
    """The metadata dict a writer stores: ``extra`` plus a validated ``voxel_size_nm``."""
    meta = dict(extra or {})
    if voxel_size_nm is not None:
        voxel_size_nm = float(voxel_size_nm)
        if not math.isfinite(voxel_size_nm) or voxel_size_nm <= 0:
            raise ValueError(f"voxel_size_nm must be a positive number, got {voxel_size_nm}")
        meta["voxel_size_nm"] = voxel_size_nm
    json.dumps(meta)  # fail before writing anything if extra is not JSON-serialisable
    return meta
