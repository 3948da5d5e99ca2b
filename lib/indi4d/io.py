"""Reading and writing volumes (TIFF stacks, HDF5, zarr) with voxel-size metadata."""

import json
from pathlib import Path

import numpy as np
import tifffile

from ._atomic import atomic_path


class VolumeError(ValueError):
    """A volume file is unreadable or not what was expected; the message names the file."""


def write_volume(path, volume, voxel_size_nm=None, extra=None):
    """Write a 2D or 3D array as a TIFF (z-y-x), atomically.

    Parameters
    ----------
    path : str or Path
        Output ``.tif`` file.
    volume : ndarray, shape (Z, Y, X) or (Y, X)
        Any numeric dtype tifffile supports (uint16 for scans, uint8 for labels).
    voxel_size_nm : float, optional
        Isotropic voxel size, stored in the TIFF description as JSON.
    extra : dict, optional
        More metadata stored beside the voxel size.
    """
    meta = dict(extra or {})
    if voxel_size_nm is not None:
        meta["voxel_size_nm"] = float(voxel_size_nm)
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, np.asarray(volume), description=json.dumps(meta), metadata=None)
    return Path(path)


def read_volume(path):
    """Read a TIFF written by :func:`write_volume` (or any TIFF stack).

    Returns
    -------
    volume : ndarray
    meta : dict
        ``voxel_size_nm`` and other stored keys when present.
    """
    path = Path(path)
    if not path.exists():
        raise VolumeError(f"{path}: no such file")
    try:
        with tifffile.TiffFile(path) as tif:
            volume = tif.asarray()
            desc = tif.pages[0].description or ""
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise VolumeError(f"{path}: not a readable TIFF ({exc})") from exc
    try:
        meta = json.loads(desc) if desc.strip().startswith("{") else {}
    except json.JSONDecodeError:
        meta = {}
    return volume, meta
