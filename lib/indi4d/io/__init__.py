"""Reading and writing volumes (TIFF stacks, HDF5, zarr) with voxel-size metadata.

Three on-disk forms are supported, chosen from the path:

============================  =================================================
path                          format
============================  =================================================
``scan.tif`` / ``scan.tiff``  one multi-page TIFF, pages are z-slices; metadata
                              as JSON in the first page's ImageDescription, the
                              voxel size also as ImageJ calibration (resolution
                              tags, ``unit=micron``, ``spacing=``), so Fiji
                              shows it and Fiji's files read back
``slices/`` (a folder)        a folder of 2D TIFF slices, natural sort order;
                              metadata from the first slice
``scan.h5:/entry/data``       an HDF5 dataset (also ``.hdf5``, ``.nxs``); the
                              dataset may instead be given as ``dataset=``;
                              metadata in the dataset's attributes
``scan.zarr``                 a zarr (v2 or v3) array, or a group with
                              ``dataset=`` naming the array; metadata in the
                              array's attributes
============================  =================================================

The voxel size is always stored under the key ``voxel_size_nm`` (isotropic,
nanometres). Scans are z-y-x arrays.

Two ways to read: :func:`read_volume` loads and validates a whole volume;
:func:`open_volume_lazy` returns a chunked :mod:`dask` array that reads only the
chunks a computation touches, for volumes that do not fit in memory
(2048^3 uint16 is 16 GiB). :func:`write_volume` accepts both NumPy and dask
arrays, streams dask arrays block by block, and always writes atomically.

Modules: ``paths`` (formats, ``file.h5:/dataset``; the grammar itself in :mod:`indi4d.volume_paths`), ``checks`` (dtype, shape,
finite), ``metadata`` (dicts), ``blocks`` (chunking), ``tiff``, ``hdf5``,
``zarr_store`` (one format each), ``read``, ``lazy``, ``write``.

Examples
--------
>>> write_volume("lq.h5:/scan", volume, voxel_size_nm=100.0)   # doctest: +SKIP
>>> volume, meta = read_volume("lq.h5:/scan", expect_ndim=3)   # doctest: +SKIP
>>> meta["voxel_size_nm"]                                       # doctest: +SKIP
100.0
"""

from .blocks import LAZY_CHUNK_BYTES, WRITE_CHUNK_BYTES
from .lazy import open_volume_lazy
from .metadata import isotropic_voxel_size
from .paths import (
    DEFAULT_HDF5_DATASET,
    HDF5_SUFFIXES,
    TIFF_SUFFIXES,
    ZARR_SUFFIXES,
    VolumeError,
    volume_format,
    volume_sha256,
)
from .read import check_voxel_ratio, read_metadata, read_volume
from .tiff import write_tiff_slices
from .write import convert_volume, write_volume

__all__ = [
    "VolumeError",
    "read_volume",
    "read_metadata",
    "open_volume_lazy",
    "write_volume",
    "write_tiff_slices",
    "convert_volume",
    "check_voxel_ratio",
    "isotropic_voxel_size",
    "volume_format",
    "volume_sha256",
]
