"""Reading whole volumes and their metadata, and checking the LQ/HQ voxel-size ratio."""

import math
from pathlib import Path

import numpy as np

from .checks import check_dtype, check_finite, check_shape
from .hdf5 import hdf5_dataset, open_hdf5
from .metadata import meta_from_attrs, normalise_meta
from .paths import VolumeError, require_volume_file, split_hdf5, tiff_slices, volume_format
from .tiff import read_tiff_file, read_tiff_folder, read_tiff_metadata
from .zarr_store import check_zarr_complete, open_zarr


def read_metadata(path, dataset=None):
    """Read the metadata of a volume without loading its voxels.

    Parameters
    ----------
    path : str or Path
        TIFF file, folder of TIFF slices, ``file.h5[:/dataset]`` or ``store.zarr``.
    dataset : str, optional
        HDF5 dataset / zarr array path when not given in ``path``.

    Returns
    -------
    meta : dict
        Stored keys (``voxel_size_nm`` as float when present; for a TIFF
        without our JSON description, from ImageJ's calibration tags).
    """
    fmt = volume_format(path)
    file, dataset = split_hdf5(path, dataset)
    require_volume_file(file)
    if fmt == "hdf5":
        with open_hdf5(file) as h5:
            return normalise_meta(meta_from_attrs(hdf5_dataset(h5, file, dataset).attrs))
    if fmt == "zarr":
        return normalise_meta(meta_from_attrs(open_zarr(file, dataset).attrs.asdict()))
    first = tiff_slices(file)[0] if fmt == "tiff-folder" else file
    return normalise_meta(read_tiff_metadata(first))


def read_volume(path, dataset=None, expect_ndim=None, allow_float=True):
    """Read and validate a whole volume.

    Parameters
    ----------
    path : str or Path
        ``scan.tif``, a folder of 2D TIFF slices, ``scan.h5`` / ``scan.h5:/dataset``
        or ``scan.zarr``.
    dataset : str, optional
        HDF5 dataset or zarr array inside a group, when not in ``path``.
        With neither, a file holding exactly one dataset/array is read.
    expect_ndim : int, optional
        Required number of dimensions (3 for a scan).
    allow_float : bool
        Accept floating-point volumes (always checked for NaN/Inf).

    Returns
    -------
    volume : ndarray, shape (Z, Y, X) or (Y, X)
        The stored dtype, unchanged (uint16 for scans, uint8 for labels,
        float32 for attenuation maps).
    meta : dict
        ``voxel_size_nm`` (float, nm) and any other stored keys.

    Raises
    ------
    VolumeError
        Message starting with the file: missing, empty, truncated or corrupt
        file, missing dataset (the ones present are listed), wrong ndim,
        zero-size axes, unsupported dtype (bool, complex, object, strings),
        a float volume when ``allow_float=False``, NaN/Inf voxels.
    """
    fmt = volume_format(path)
    file, dataset = split_hdf5(path, dataset)
    require_volume_file(file)
    label = f"{file}:{dataset}" if dataset and fmt in ("hdf5", "zarr") else str(file)
    if fmt == "tiff":
        volume, meta = read_tiff_file(file)
    elif fmt == "tiff-folder":
        volume, meta = read_tiff_folder(file)
    elif fmt == "hdf5":
        with open_hdf5(file) as h5:
            dset = hdf5_dataset(h5, file, dataset)
            label = f"{file}:{dset.name}"
            check_dtype(label, dset.dtype, allow_float)
            check_shape(label, dset.shape, expect_ndim)
            try:
                volume = dset[()]
            except OSError as exc:  # truncated file: chunks beyond the end
                raise VolumeError(f"{label}: data unreadable, file truncated or corrupt ({exc})") from exc
            meta = meta_from_attrs(dset.attrs)
    else:
        arr = open_zarr(file, dataset)
        check_zarr_complete(arr, label)
        check_dtype(label, arr.dtype, allow_float)
        check_shape(label, arr.shape, expect_ndim)
        try:
            volume = arr[...]
        except Exception as exc:  # a chunk file that does not decode
            raise VolumeError(f"{label}: data unreadable, store corrupt ({exc})") from exc
        meta = meta_from_attrs(arr.attrs.asdict())
    volume = np.asarray(volume)
    check_dtype(label, volume.dtype, allow_float)
    check_shape(label, volume.shape, expect_ndim)
    check_finite(label, volume)
    return volume, normalise_meta(meta)


def check_voxel_ratio(lq_meta, hq_meta, expected=2.0, rtol=1e-3):
    """Check that two scans have the voxel-size ratio the method assumes.

    Parameters
    ----------
    lq_meta, hq_meta : dict or str or Path
        Metadata dicts from :func:`read_volume`, or volume paths (their
        metadata is read without loading voxels).
    expected : float
        Required ``lq_voxel / hq_voxel`` (2.0: 100 nm vs 50 nm).
    rtol : float
        Relative tolerance on the ratio.

    Returns
    -------
    ratio : float
        The measured ``lq_voxel_size_nm / hq_voxel_size_nm``.

    Raises
    ------
    VolumeError
        A voxel size is missing or not positive, or the ratio is off;
        the message names the files when paths were given.
    """
    def size(meta, role):
        label = str(meta) if isinstance(meta, (str, Path)) else f"{role} metadata"
        if isinstance(meta, (str, Path)):
            meta = read_metadata(meta)
        value = meta.get("voxel_size_nm")
        if value is None:
            raise VolumeError(f"{label}: no voxel_size_nm in the metadata ({role} scan); keys: {sorted(meta)}")
        value = float(value)
        if not math.isfinite(value) or value <= 0:
            raise VolumeError(f"{label}: voxel_size_nm must be positive, got {value} ({role} scan)")
        return value, label

    lq, lq_label = size(lq_meta, "LQ")
    hq, hq_label = size(hq_meta, "HQ")
    ratio = lq / hq
    if not math.isclose(ratio, expected, rel_tol=rtol):
        raise VolumeError(
            f"{lq_label} / {hq_label}: voxel sizes {lq:g} nm (LQ) and {hq:g} nm (HQ) give a ratio "
            f"of {ratio:.4g}, expected {expected:g}"
        )
    return ratio
