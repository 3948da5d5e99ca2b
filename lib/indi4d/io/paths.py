"""Volume paths: which format a path names, ``file.h5:/dataset`` specs, folders of slices."""

import re
from pathlib import Path

from ..safety import HDF5_SUFFIXES, split_spec

TIFF_SUFFIXES = (".tif", ".tiff")
ZARR_SUFFIXES = (".zarr",)

#: Dataset name used when writing HDF5 without an explicit ``file.h5:/name``.
DEFAULT_HDF5_DATASET = "volume"


class VolumeError(ValueError):
    """A volume file is unreadable or not what was expected; the message names the file."""


def _split_hdf5(path, dataset):
    """Split ``file.h5:/dataset`` into ``(Path(file.h5), dataset or None)``.

    The spec is parsed by :func:`indi4d.safety.split_spec` (the same parser
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


def volume_format(path):
    """Name the on-disk format a path stands for.

    Parameters
    ----------
    path : str or Path
        A volume path as accepted by :func:`read_volume` / :func:`write_volume`.

    Returns
    -------
    str
        ``"tiff"``, ``"tiff-folder"``, ``"hdf5"`` or ``"zarr"``.

    Raises
    ------
    VolumeError
        For a suffix that is none of the supported ones (and not a folder).
    """
    file, _ = _split_hdf5(path, None)
    suffix = file.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    if file.is_dir():
        # A zarr store that was not named *.zarr still has its metadata file.
        if (file / "zarr.json").exists() or (file / ".zarray").exists() or (file / ".zgroup").exists():
            return "zarr"
        return "tiff-folder"
    if suffix == "" and not file.exists():
        return "tiff-folder"  # a folder of slices still to be written (or missing)
    raise VolumeError(
        f"{file}: unsupported volume format {suffix or '(no suffix)'!r}; expected one of "
        f"{', '.join(TIFF_SUFFIXES + HDF5_SUFFIXES + ZARR_SUFFIXES)} or a folder of TIFF slices"
    )


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
    import hashlib

    from ..files import file_sha256

    file, _ = _split_hdf5(path, None)
    if not file.is_dir():
        return file_sha256(file)
    digest = hashlib.sha256()
    for member in sorted(p for p in file.rglob("*") if p.is_file()):
        digest.update(member.relative_to(file).as_posix().encode() + b"\0")
        digest.update(file_sha256(member).encode())
    return digest.hexdigest()


def _require_exists(file):
    if not file.exists():
        raise VolumeError(f"{file}: no such file or folder")
    if file.is_file() and file.stat().st_size == 0:
        raise VolumeError(f"{file}: empty file (0 bytes)")


def _natural_key(path):
    # slice_2 before slice_10: compare digit runs as numbers.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def _tiff_slices(folder):
    """The visible ``*.tif``/``*.tiff`` files of a folder, in natural order."""
    files = [
        p for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")
    ]
    if not files:
        raise VolumeError(f"{folder}: folder holds no .tif/.tiff slices")
    return sorted(files, key=_natural_key)
