"""Volume paths: which format a path names, ``file.h5:/dataset`` specs, folders of slices.

The grammar itself lives in :mod:`indi4d.volume_paths` (shared with :mod:`indi4d.safety`).
"""

import hashlib

from ..files import file_sha256
from ..volume_paths import (
    DEFAULT_HDF5_DATASET,
    HDF5_SUFFIXES,
    TIFF_SUFFIXES,
    ZARR_SUFFIXES,
    VolumeError,
    require_regular,
    split_spec,
    tiff_slices,
    volume_format,
)

__all__ = ["HDF5_SUFFIXES", "TIFF_SUFFIXES", "ZARR_SUFFIXES", "DEFAULT_HDF5_DATASET", "VolumeError",
           "volume_format", "volume_sha256", "split_hdf5", "require_volume_file", "tiff_slices"]


def split_hdf5(path, dataset):
    """Split ``file.h5:/dataset`` into ``(Path(file.h5), dataset or None)``.

    The spec is parsed by :func:`indi4d.volume_paths.split_spec` (the same parser
    that decides whether an output overwrites an input). A dataset given both
    in the path and as ``dataset=`` must be the same one.
    """
    file, inner = split_spec(path)
    if inner is None:
        return file, dataset
    inner = "/" + inner  # split_spec strips the slashes; HDF5 names are absolute
    if dataset is not None and inner.strip("/") != str(dataset).strip("/"):
        raise VolumeError(
            f"{file}: two different datasets given ({inner!r} in the path, {dataset!r} as dataset=)"
        )
    return file, inner


def volume_sha256(path):
    """SHA-256 that pins a volume's bytes, whatever its format (the provenance of what was read).

    A TIFF or HDF5 file (``file.h5:/dataset``: the whole file) is hashed as a
    file; a folder (zarr store, TIFF slices) as the sorted list of its files'
    relative paths and contents, so that any change to any of them changes it.

    Returns
    -------
    str
        64 lower-case hex digits.
    """
    file, _ = split_hdf5(path, None)
    if not file.is_dir():
        return file_sha256(file)
    digest = hashlib.sha256()
    for member in sorted(p for p in file.rglob("*") if p.is_file()):
        digest.update(member.relative_to(file).as_posix().encode() + b"\0")
        digest.update(file_sha256(member).encode())
    return digest.hexdigest()


def require_volume_file(file):
    """Refuse a missing path, an empty file, or anything but a regular file or folder (a FIFO would hang)."""
    require_regular(file)
    if file.is_file() and file.stat().st_size == 0:
        raise VolumeError(f"{file}: empty file (0 bytes)")
