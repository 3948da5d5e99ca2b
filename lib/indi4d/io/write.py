"""Writing volumes in the format a path names, atomically, and converting between formats."""

import numpy as np

from ..safety import check_output
from .blocks import is_lazy
from .checks import check_finite, validate_for_write
from .hdf5 import write_hdf5
from .lazy import open_volume_lazy
from .metadata import write_meta
from .paths import DEFAULT_HDF5_DATASET, VolumeError, split_hdf5, volume_format
from .tiff import write_tiff, write_tiff_slices
from .zarr_store import write_zarr


def write_volume(path, volume, voxel_size_nm=None, extra=None, dataset=None, progress=False):
    """Write a 2D or 3D array, atomically, in the format the suffix names.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff`` (multi-page TIFF; metadata as a JSON description,
        the voxel size also as ImageJ calibration tags), ``.h5``/``.hdf5``
        optionally with ``:/dataset`` (default dataset ``/volume``; other
        datasets of an existing file are kept), or ``.zarr`` (a zarr v3
        array store folder).
    volume : ndarray or dask.array.Array, shape (Z, Y, X) or (Y, X)
        Integer or float dtype. A dask array is written block by block and
        never loaded whole.
    voxel_size_nm : float, optional
        Isotropic voxel size in nanometres, stored as ``voxel_size_nm``.
    extra : dict, optional
        More JSON-serialisable metadata stored beside the voxel size.
    dataset : str, optional
        HDF5 dataset name (when not in ``path``).
    progress : bool
        Show a progress bar over the blocks of a dask array.

    Returns
    -------
    Path
        The file or folder written (without any ``:/dataset`` part).

    Raises
    ------
    VolumeError
        Unsupported dtype (bool, complex, object), zero-size axes, NaN/Inf
        values, more than 3 dimensions. Nothing is written then.

    Notes
    -----
    The data go to a hidden temporary name beside ``path`` (carrying this
    process's id) and are renamed onto it only when complete, so a reader
    never sees a partial file, a failure leaves any earlier ``path``
    untouched, and the temporary file of a killed writer is removed by the
    next write of the same path.
    """
    fmt = volume_format(path)
    file, dataset = split_hdf5(path, dataset)
    if fmt == "tiff-folder":
        raise VolumeError(f"{file}: to write a folder of slices use write_tiff_slices()")
    lazy = is_lazy(volume)
    if not lazy:
        volume = np.asarray(volume)
    validate_for_write(str(file), volume)
    meta = write_meta(voxel_size_nm, extra)
    if not lazy:
        check_finite(str(file), volume)
    if fmt == "tiff":
        write_tiff(file, volume, meta, lazy, progress)
    elif fmt == "hdf5":
        write_hdf5(file, dataset or DEFAULT_HDF5_DATASET, volume, meta, lazy, progress)
    else:
        write_zarr(file, volume, meta, lazy, progress)
    return file


def convert_volume(src, dst, dataset=None, progress=False):
    """Copy a volume to another format, chunk by chunk, keeping its metadata.

    Parameters
    ----------
    src : str or Path
        Any readable volume (``file.h5:/dataset`` accepted).
    dst : str or Path
        Output path; the format follows its suffix.
    dataset : str, optional
        Dataset of ``src`` when not in the path.
    progress : bool
        Progress bar over the chunks.

    Returns
    -------
    Path

    Raises
    ------
    indi4d.safety.UnsafeOutputError
        When writing ``dst`` would replace ``src``: the same file (also
        through a link or another spelling), any dataset of an input HDF5
        file (writing one rewrites the whole file), or a folder holding it.
        Nothing is read or written then.
    """
    check_output(dst, [src], kind="volume", who="volume conversion")
    volume, meta = open_volume_lazy(src, dataset=dataset)
    voxel = meta.pop("voxel_size_nm", None)
    if volume_format(dst) == "tiff-folder":
        return write_tiff_slices(dst, volume, voxel_size_nm=voxel, extra=meta)
    return write_volume(dst, volume, voxel_size_nm=voxel, extra=meta, progress=progress)
