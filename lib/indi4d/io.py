"""Reading and writing volumes (TIFF stacks, HDF5, zarr) with voxel-size metadata.

Three on-disk forms are supported, chosen from the path:

============================  =================================================
path                          format
============================  =================================================
``scan.tif`` / ``scan.tiff``  one multi-page TIFF, pages are z-slices; metadata
                              as JSON in the first page's ImageDescription
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

Examples
--------
>>> write_volume("lq.h5:/scan", volume, voxel_size_nm=100.0)   # doctest: +SKIP
>>> volume, meta = read_volume("lq.h5:/scan", expect_ndim=3)   # doctest: +SKIP
>>> meta["voxel_size_nm"]                                       # doctest: +SKIP
100.0
"""

import contextlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import tifffile

from ._atomic import atomic_path

__all__ = [
    "VolumeError",
    "read_volume",
    "read_metadata",
    "open_volume_lazy",
    "write_volume",
    "write_tiff_slices",
    "convert_volume",
    "check_voxel_ratio",
    "volume_format",
]

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
ZARR_SUFFIXES = (".zarr",)

#: Dataset name used when writing HDF5 without an explicit ``file.h5:/name``.
DEFAULT_HDF5_DATASET = "volume"

#: Target size of one chunk when writing HDF5/zarr and when reading lazily.
#: 4 MiB keeps random access cheap; dask's own task overhead argues for
#: bigger lazy chunks, see ``LAZY_CHUNK_BYTES``.
WRITE_CHUNK_BYTES = 4 * 2**20
LAZY_CHUNK_BYTES = 64 * 2**20

# ``file.h5:/path/in/file`` -> ("file.h5", "/path/in/file"); the suffix before
# the colon keeps Windows drive letters ("C:\...") from being taken as one.
_HDF5_SPEC = re.compile(r"^(?P<file>.*?\.(?:h5|hdf5|hdf|nxs)):(?P<dataset>.*)$", re.IGNORECASE)


class VolumeError(ValueError):
    """A volume file is unreadable or not what was expected; the message names the file."""


def _umask():
    """The process umask, read without changing it (``os.umask`` would, briefly)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    return 0o022


def _usual_permissions(path):
    """Give a temporary file/folder the mode a plain ``open``/``mkdir`` would have.

    ``mkstemp``/``mkdtemp`` create 0600/0700 entries, which would make shared
    data folders unreadable to other users.
    """
    path = Path(path)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


# --------------------------------------------------------------------------- paths


def _split_hdf5(path, dataset):
    """Split ``file.h5:/dataset`` into ``(Path(file.h5), dataset or None)``."""
    text = str(path)
    match = _HDF5_SPEC.match(text)
    if match:
        inner = match.group("dataset").strip() or None
        if dataset is not None and inner is not None and inner.strip("/") != str(dataset).strip("/"):
            raise VolumeError(
                f"{match.group('file')}: two different datasets given ({inner!r} in the path, "
                f"{dataset!r} as dataset=)"
            )
        return Path(match.group("file")), inner if inner is not None else dataset
    return Path(text), dataset


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
        p for p in folder.iterdir()
        if p.is_file() and p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")
    ]
    if not files:
        raise VolumeError(f"{folder}: folder holds no .tif/.tiff slices")
    return sorted(files, key=_natural_key)


# --------------------------------------------------------------------------- metadata


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
        if key == "metadata_json":
            continue
        meta[key] = _plain(value)
    if "metadata_json" in attrs:
        with contextlib.suppress(ValueError, TypeError):
            meta.update(json.loads(_plain(attrs["metadata_json"])))
    return meta


def _meta_from_tiff(tif):
    """Metadata of an open :class:`tifffile.TiffFile`.

    Our own files carry a JSON ImageDescription. For ImageJ files without it,
    the voxel size comes from ImageJ's ``spacing`` and ``unit``.
    """
    desc = tif.pages.first.description or ""
    meta = {}
    if desc.strip().startswith("{"):
        with contextlib.suppress(json.JSONDecodeError):
            loaded = json.loads(desc)
            if isinstance(loaded, dict):
                meta = loaded
                meta.pop("shape", None)  # tifffile's own record of the array shape
    if "voxel_size_nm" not in meta and tif.is_imagej:
        ij = tif.imagej_metadata or {}
        # ImageJ writes micrometres as "um", "micron", "\u00b5m" (micro sign),
        # the Greek mu, or the escaped text "\\u00B5m".
        to_nm = {"nm": 1.0, "nanometer": 1.0, "um": 1e3, "micron": 1e3, "\u00b5m": 1e3, "\u03bcm": 1e3,
                 "\\u00b5m": 1e3, "mm": 1e6}
        unit = str(ij.get("unit", "")).strip().lower()
        if "spacing" in ij and unit in to_nm:
            meta["voxel_size_nm"] = float(ij["spacing"]) * to_nm[unit]
    return meta


def _normalise_meta(meta):
    if "voxel_size_nm" in meta and meta["voxel_size_nm"] is not None:
        with contextlib.suppress(TypeError, ValueError):
            meta["voxel_size_nm"] = float(meta["voxel_size_nm"])
    return meta


# --------------------------------------------------------------------------- HDF5 helpers


def _hdf5_datasets(h5file):
    """``[(path, shape, dtype), ...]`` of every dataset in an open HDF5 file."""
    import h5py

    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            found.append((f"/{name}", obj.shape, obj.dtype))

    h5file.visititems(visit)
    return found


def _list_hdf5(h5file):
    """The datasets of a file as one line for an error message."""
    return "; ".join(f"{name} {shape} {dtype}" for name, shape, dtype in _hdf5_datasets(h5file)) or "none"


def _open_hdf5(file):
    import h5py

    try:
        return h5py.File(file, "r")
    except OSError as exc:
        raise VolumeError(f"{file}: not a readable HDF5 file ({exc})") from exc


def _hdf5_dataset(h5file, file, dataset):
    """Resolve ``dataset`` (or the only dataset of the file) to an h5py Dataset."""
    import h5py

    if dataset is None:
        found = _hdf5_datasets(h5file)
        if len(found) == 1:
            return h5file[found[0][0]]
        raise VolumeError(
            f"{file}: no dataset given and the file holds {len(found)} datasets "
            f"(use 'file.h5:/path' or dataset=); datasets there: {_list_hdf5(h5file)}"
        )
    obj = h5file.get(dataset)
    if not isinstance(obj, h5py.Dataset):
        what = "a group, not a dataset" if obj is not None else "not in the file"
        raise VolumeError(f"{file}: dataset {dataset!r} is {what}; datasets there: {_list_hdf5(h5file)}")
    return obj


# --------------------------------------------------------------------------- zarr helpers


def _open_zarr(file, dataset):
    """Open a zarr array (read-only); a group needs ``dataset`` unless it holds one array."""
    import zarr

    try:
        node = zarr.open(store=str(file), mode="r")
    except Exception as exc:  # zarr raises several types for a broken store
        raise VolumeError(f"{file}: not a readable zarr store ({exc})") from exc
    if isinstance(node, zarr.Array):
        if dataset not in (None, "", "/"):
            raise VolumeError(f"{file}: the store is a single array; it has no dataset {dataset!r}")
        return node
    arrays = sorted(name for name, member in node.members(max_depth=None) if isinstance(member, zarr.Array))
    if dataset in (None, "", "/"):
        if len(arrays) == 1:
            return node[arrays[0]]
        raise VolumeError(
            f"{file}: no dataset given and the zarr group holds {len(arrays)} arrays; "
            f"arrays there: {', '.join(arrays) or 'none'}"
        )
    key = str(dataset).strip("/")
    if key not in arrays:
        raise VolumeError(f"{file}: array {dataset!r} is not in the zarr group; arrays there: {', '.join(arrays) or 'none'}")
    return node[key]


# --------------------------------------------------------------------------- validation


def _check_dtype(label, dtype, allow_float=True):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        raise VolumeError(f"{label}: boolean volume; scans and labels must be integers (store masks as uint8)")
    if dtype.kind not in "uif":
        raise VolumeError(f"{label}: unsupported dtype {dtype} (expected unsigned/signed integers or floats)")
    if dtype.kind == "f" and not allow_float:
        raise VolumeError(f"{label}: floating-point volume ({dtype}) where an integer scan was expected")


def _check_shape(label, shape, expect_ndim=None):
    if expect_ndim is not None and len(shape) != expect_ndim:
        raise VolumeError(f"{label}: expected a {expect_ndim}D volume, got {len(shape)}D with shape {tuple(shape)}")
    if len(shape) == 0 or any(int(s) == 0 for s in shape):
        raise VolumeError(f"{label}: zero-size volume, shape {tuple(shape)}")


def _check_finite(label, array):
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise VolumeError(f"{label}: {int(bad.sum())} NaN/Inf voxels (first at z-y-x index {first})")


# --------------------------------------------------------------------------- reading


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
        Stored keys (``voxel_size_nm`` as float when present).
    """
    fmt = volume_format(path)
    file, dataset = _split_hdf5(path, dataset)
    _require_exists(file)
    if fmt == "hdf5":
        with _open_hdf5(file) as h5:
            return _normalise_meta(_meta_from_attrs(_hdf5_dataset(h5, file, dataset).attrs))
    if fmt == "zarr":
        return _normalise_meta(_meta_from_attrs(_open_zarr(file, dataset).attrs.asdict()))
    first = _tiff_slices(file)[0] if fmt == "tiff-folder" else file
    _require_exists(first)
    try:
        with tifffile.TiffFile(first) as tif:
            return _normalise_meta(_meta_from_tiff(tif))
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise VolumeError(f"{first}: not a readable TIFF ({exc})") from exc


def _check_tiff_pages(tif, file):
    """Refuse a TIFF whose page directory chain is cut short.

    tifffile stores pages' data before their directories, so a truncated
    file can lose directories while the data still reads; the shape recorded
    in the description (tifffile, ImageJ) says how many pages there must be.
    """
    page_size = math.prod(tif.pages.first.shape) or 1
    expected = None
    if tif.shaped_metadata and "shape" in tif.shaped_metadata[0]:
        expected = math.prod(tif.shaped_metadata[0]["shape"]) // page_size
    elif tif.is_imagej and tif.imagej_metadata and "images" in tif.imagej_metadata:
        expected = int(tif.imagej_metadata["images"])
    found = len(tif.pages)
    if expected is not None and found < expected:
        raise VolumeError(f"{file}: truncated or corrupt TIFF, {found} of {expected} pages readable")
    # Every directory and every strip/tile must end inside the file.
    size, layout = tif.filehandle.size, tif.tiff
    for k, page in enumerate(tif.pages):
        ifd_end = page.offset + layout.tagnosize + len(page.tags) * layout.tagsize + layout.offsetsize
        data_end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts)), default=0)
        if max(ifd_end, data_end) > size:
            raise VolumeError(f"{file}: truncated TIFF, page {k} needs {max(ifd_end, data_end)} bytes, "
                              f"the file has {size}")


def _read_tiff_file(file):
    try:
        with tifffile.TiffFile(file) as tif:
            _check_tiff_pages(tif, file)
            volume = tif.asarray()
            meta = _meta_from_tiff(tif)
    except VolumeError:
        raise
    except Exception as exc:  # truncated data raises ValueError, garbage raises TiffFileError, ...
        raise VolumeError(f"{file}: not a readable TIFF ({exc})") from exc
    return volume, meta


def _read_tiff_folder(folder):
    files = _tiff_slices(folder)
    first, meta = _read_tiff_file(files[0])
    if first.ndim != 2:
        raise VolumeError(f"{files[0]}: slices of a folder must be 2D, got shape {first.shape}")
    volume = np.empty((len(files),) + first.shape, dtype=first.dtype)
    volume[0] = first
    from tqdm.auto import tqdm

    for k, file in enumerate(tqdm(files[1:], desc=f"reading {folder.name}", disable=len(files) < 64), start=1):
        _require_exists(file)
        image, _ = _read_tiff_file(file)
        if image.shape != first.shape or image.dtype != first.dtype:
            raise VolumeError(
                f"{file}: slice {image.shape} {image.dtype} differs from the first slice "
                f"{files[0].name} {first.shape} {first.dtype}"
            )
        volume[k] = image
    return volume, meta


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
    file, dataset = _split_hdf5(path, dataset)
    _require_exists(file)
    label = f"{file}:{dataset}" if dataset and fmt in ("hdf5", "zarr") else str(file)
    if fmt == "tiff":
        volume, meta = _read_tiff_file(file)
    elif fmt == "tiff-folder":
        volume, meta = _read_tiff_folder(file)
    elif fmt == "hdf5":
        with _open_hdf5(file) as h5:
            dset = _hdf5_dataset(h5, file, dataset)
            label = f"{file}:{dset.name}"
            _check_dtype(label, dset.dtype, allow_float)
            _check_shape(label, dset.shape, expect_ndim)
            try:
                volume = dset[()]
            except OSError as exc:  # truncated file: chunks beyond the end
                raise VolumeError(f"{label}: data unreadable, file truncated or corrupt ({exc})") from exc
            meta = _meta_from_attrs(dset.attrs)
    else:
        arr = _open_zarr(file, dataset)
        _check_dtype(label, arr.dtype, allow_float)
        _check_shape(label, arr.shape, expect_ndim)
        try:
            volume = arr[...]
        except Exception as exc:  # a chunk file that does not decode
            raise VolumeError(f"{label}: data unreadable, store corrupt ({exc})") from exc
        meta = _meta_from_attrs(arr.attrs.asdict())
    volume = np.asarray(volume)
    _check_dtype(label, volume.dtype, allow_float)
    _check_shape(label, volume.shape, expect_ndim)
    _check_finite(label, volume)
    return volume, _normalise_meta(meta)


# --------------------------------------------------------------------------- lazy reading


def _slab_chunks(shape, itemsize, target_bytes):
    """Chunks of whole z-slabs (tiling y, x only when one slice exceeds the target).

    Slab chunks suit slice-wise enhancement, which reads complete z-slices.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) < 3:
        return shape
    slice_bytes = itemsize * math.prod(shape[1:])
    if slice_bytes <= target_bytes:
        # k slices per chunk: k * slice_bytes <= target.
        return (max(1, min(shape[0], target_bytes // slice_bytes)),) + shape[1:]
    side = max(1, int(math.sqrt(target_bytes / itemsize)))
    return (1, min(shape[1], side), min(shape[2], side)) + shape[3:]


class _SliceReader:
    """Picklable array-like that opens the file on every read.

    Dask calls ``reader[index]`` once per chunk; holding no open handle keeps
    the graph picklable for ``dask.distributed`` workers and lets many
    threads read one file.
    """

    def __init__(self, fmt, file, dataset, shape, dtype, files=None):
        self.fmt, self.file, self.dataset = fmt, str(file), dataset
        self.shape, self.dtype, self.ndim = tuple(shape), np.dtype(dtype), len(shape)
        self.files = files

    def __getitem__(self, index):
        if self.fmt == "hdf5":
            import h5py

            with h5py.File(self.file, "r") as h5:
                return h5[self.dataset][index]
        if self.fmt == "tiff":
            import zarr

            with tifffile.TiffFile(self.file) as tif, tif.series[0].aszarr() as store:
                return np.asarray(zarr.open(store=store, mode="r")[index])
        # Folder of slices: read only the slices the z-index selects.
        zsel, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        chosen = np.arange(len(self.files))[zsel]
        if np.ndim(chosen) == 0:
            return tifffile.imread(self.files[int(chosen)])[rest]
        out = np.empty((len(chosen),) + self.shape[1:], dtype=self.dtype)
        for k, i in enumerate(chosen):
            out[k] = tifffile.imread(self.files[int(i)])
        return out[(slice(None),) + tuple(rest)]


def open_volume_lazy(path, dataset=None, chunks=None):
    """Open a volume as a chunked dask array without loading it.

    Parameters
    ----------
    path : str or Path
        As for :func:`read_volume`.
    dataset : str, optional
        HDF5 dataset / zarr array, when not in ``path``.
    chunks : tuple or "auto", optional
        Dask chunks; default: the zarr store's own chunks, otherwise slabs of
        whole z-slices of about 64 MiB.

    Returns
    -------
    volume : dask.array.Array, shape (Z, Y, X)
        Same dtype as stored. Nothing is read until ``.compute()`` (or a slice
        of it) is asked for. Dtype and shape are validated here; NaN/Inf are
        not (that would read everything) -- check blocks as you process them.
    meta : dict
        As for :func:`read_volume`.
    """
    import dask.array as da
    from dask.base import tokenize

    fmt = volume_format(path)
    file, dataset = _split_hdf5(path, dataset)
    _require_exists(file)
    label = str(file)
    if fmt == "zarr":
        arr = _open_zarr(file, dataset)
        _check_dtype(label, arr.dtype)
        _check_shape(label, arr.shape)
        meta = _normalise_meta(_meta_from_attrs(arr.attrs.asdict()))
        component = arr.path or None
        return da.from_zarr(str(file), component=component, chunks=chunks or arr.chunks), meta
    files = None
    if fmt == "hdf5":
        with _open_hdf5(file) as h5:
            dset = _hdf5_dataset(h5, file, dataset)
            dataset, shape, dtype = dset.name, dset.shape, dset.dtype
            meta = _meta_from_attrs(dset.attrs)
    elif fmt == "tiff":
        try:
            with tifffile.TiffFile(file) as tif:
                _check_tiff_pages(tif, file)
                series = tif.series[0]
                shape, dtype = series.shape, series.dtype
                meta = _meta_from_tiff(tif)
        except VolumeError:
            raise
        except Exception as exc:
            raise VolumeError(f"{file}: not a readable TIFF ({exc})") from exc
    else:
        files = _tiff_slices(file)
        try:
            with tifffile.TiffFile(files[0]) as tif:
                page = tif.pages.first
                shape, dtype = (len(files),) + tuple(page.shape), page.dtype
                meta = _meta_from_tiff(tif)
        except Exception as exc:
            raise VolumeError(f"{files[0]}: not a readable TIFF ({exc})") from exc
        files = [str(f) for f in files]
    _check_dtype(label, dtype)
    _check_shape(label, shape)
    reader = _SliceReader(fmt, file, dataset, shape, dtype, files=files)
    if chunks is None:
        chunks = _slab_chunks(shape, np.dtype(dtype).itemsize, LAZY_CHUNK_BYTES)
    # The name must change when the file does, so dask never reuses stale results.
    stat = file.stat()
    name = "indi4d-" + tokenize(str(file.resolve()), dataset, stat.st_mtime_ns, stat.st_size, chunks)
    lazy = da.from_array(reader, chunks=chunks, name=name, asarray=True, lock=False,
                         meta=np.empty((0,) * len(shape), dtype=dtype))
    return lazy, _normalise_meta(meta)


# --------------------------------------------------------------------------- writing


def _is_lazy(volume):
    return hasattr(volume, "dask") and hasattr(volume, "chunks") and hasattr(volume, "compute")


def _blocks(volume):
    """``(index, block)`` over a dask array's blocks in C order, each computed once."""
    from itertools import product

    offsets = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in volume.chunks]
    for idx in product(*(range(len(c)) for c in volume.chunks)):
        index = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx))
        yield index, np.asarray(volume[index].compute())


@contextlib.contextmanager
def _atomic_dir(path):
    """Yield a temporary folder beside ``path``; swap it in for ``path`` on success.

    An existing ``path`` is moved aside first and deleted only after the new
    folder is in place, so a failure never leaves a half-written store under
    the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        _usual_permissions(tmp)
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_meta(voxel_size_nm, extra):
    meta = dict(extra or {})
    if voxel_size_nm is not None:
        voxel_size_nm = float(voxel_size_nm)
        if not math.isfinite(voxel_size_nm) or voxel_size_nm <= 0:
            raise ValueError(f"voxel_size_nm must be a positive number, got {voxel_size_nm}")
        meta["voxel_size_nm"] = voxel_size_nm
    json.dumps(meta)  # fail before writing anything if extra is not JSON-serialisable
    return meta


def _validate_for_write(label, volume):
    if volume.ndim not in (2, 3):
        raise VolumeError(f"{label}: can only write 2D or 3D volumes, got shape {tuple(volume.shape)}")
    _check_dtype(label, volume.dtype)
    _check_shape(label, volume.shape)


def write_volume(path, volume, voxel_size_nm=None, extra=None, dataset=None, progress=False):
    """Write a 2D or 3D array, atomically, in the format the suffix names.

    Parameters
    ----------
    path : str or Path
        ``.tif``/``.tiff`` (multi-page TIFF, metadata as JSON description),
        ``.h5``/``.hdf5`` optionally with ``:/dataset`` (default dataset
        ``/volume``; other datasets of an existing file are kept), or
        ``.zarr`` (a zarr v3 array store folder).
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
    The data go to a hidden temporary name beside ``path`` and are renamed
    onto it only when complete, so a reader never sees a partial file and a
    failure leaves any earlier ``path`` untouched.
    """
    fmt = volume_format(path)
    file, dataset = _split_hdf5(path, dataset)
    if fmt == "tiff-folder":
        raise VolumeError(f"{file}: to write a folder of slices use write_tiff_slices()")
    lazy = _is_lazy(volume)
    if not lazy:
        volume = np.asarray(volume)
    _validate_for_write(str(file), volume)
    meta = _write_meta(voxel_size_nm, extra)
    if not lazy:
        _check_finite(str(file), volume)
    if fmt == "tiff":
        _write_tiff(file, volume, meta, lazy, progress)
    elif fmt == "hdf5":
        _write_hdf5(file, dataset or DEFAULT_HDF5_DATASET, volume, meta, lazy, progress)
    else:
        _write_zarr(file, volume, meta, lazy, progress)
    return file


def _progress(iterable, total, enabled, desc):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled)


def _write_tiff(file, volume, meta, lazy, progress):
    if "shape" in meta:
        raise ValueError(f"{file}: 'shape' is reserved in TIFF metadata (tifffile stores the array shape there)")
    # tifffile writes ``metadata`` as the JSON description plus the array
    # shape, so a (1, Y, X) volume reads back 3D. photometric="minisblack"
    # keeps a small last axis (e.g. shape (16, 16, 3)) from being taken for
    # colour samples: pages are always z-slices.
    kwargs = dict(metadata=meta, photometric="minisblack")
    with atomic_path(file) as tmp:
        if lazy and volume.ndim == 3:
            # TIFF pages must be written in order: stream whole z-slabs.
            slabs = volume.rechunk({1: -1, 2: -1})

            def pages():
                for _, block in _progress(_blocks(slabs), len(slabs.chunks[0]), progress, f"writing {file.name}"):
                    _check_finite(str(file), block)
                    yield from block

            tifffile.imwrite(tmp, pages(), shape=volume.shape, dtype=volume.dtype, **kwargs)
        else:
            data = np.asarray(volume.compute()) if lazy else volume
            _check_finite(str(file), data)
            tifffile.imwrite(tmp, data, **kwargs)
        _usual_permissions(tmp)


def _store_blocks(target, volume, file, progress):
    nblocks = math.prod(len(c) for c in volume.chunks)
    for index, block in _progress(_blocks(volume), nblocks, progress, f"writing {file.name}"):
        _check_finite(str(file), block)
        target[index] = block


def _write_hdf5(file, dataset, volume, meta, lazy, progress):
    import h5py

    chunks = _slab_chunks(volume.shape, volume.dtype.itemsize, WRITE_CHUNK_BYTES)
    with atomic_path(file) as tmp:
        if file.exists():
            # Keep the file's other datasets: start from a copy, replace ours.
            shutil.copyfile(file, tmp)
        with h5py.File(tmp, "a") as h5:
            if dataset in h5:
                del h5[dataset]
            dset = h5.create_dataset(dataset, shape=volume.shape, dtype=volume.dtype, chunks=chunks)
            if lazy:
                _store_blocks(dset, volume.rechunk(chunks), file, progress)
            else:
                dset[...] = volume
            for key, value in meta.items():
                if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                    dset.attrs[key] = value
            # Everything (lists, dicts, bools) also as one JSON attribute so
            # the round trip is exact.
            dset.attrs["metadata_json"] = json.dumps(meta)
        _usual_permissions(tmp)


def _write_zarr(file, volume, meta, lazy, progress):
    import zarr

    chunks = _slab_chunks(volume.shape, volume.dtype.itemsize, WRITE_CHUNK_BYTES)
    with _atomic_dir(file) as tmp:
        arr = zarr.create_array(store=str(tmp), shape=volume.shape, dtype=volume.dtype,
                                chunks=chunks, zarr_format=3, overwrite=True)
        if lazy:
            _store_blocks(arr, volume.rechunk(chunks), file, progress)
        else:
            arr[...] = volume
        arr.attrs.update(meta)


def write_tiff_slices(folder, volume, voxel_size_nm=None, extra=None, prefix="slice_"):
    """Write a 3D volume as a folder of 2D TIFF slices, atomically.

    Parameters
    ----------
    folder : str or Path
        Output folder (replaced as a whole when it exists).
    volume : ndarray, shape (Z, Y, X)
    voxel_size_nm : float, optional
        Stored in every slice's description.
    extra : dict, optional
        More metadata, stored in every slice.
    prefix : str
        File names are ``{prefix}{z:05d}.tif``.

    Returns
    -------
    Path
    """
    folder = Path(folder)
    lazy = _is_lazy(volume)
    volume = volume if lazy else np.asarray(volume)
    if volume.ndim != 3:
        raise VolumeError(f"{folder}: a folder of slices needs a 3D volume, got shape {tuple(volume.shape)}")
    _validate_for_write(str(folder), volume)
    description = json.dumps(_write_meta(voxel_size_nm, extra))
    width = max(5, len(str(volume.shape[0] - 1)))
    with _atomic_dir(folder) as tmp:
        for z in range(volume.shape[0]):
            image = np.asarray(volume[z].compute() if lazy else volume[z])
            _check_finite(str(folder), image)
            tifffile.imwrite(tmp / f"{prefix}{z:0{width}d}.tif", image, description=description,
                             metadata=None, photometric="minisblack")
    return folder


def _same_target(src, dst):
    """True when writing ``dst`` would replace the volume ``src`` is read from."""
    src_file, src_set = _split_hdf5(src, None)
    dst_file, dst_set = _split_hdf5(dst, None)
    if src_file.resolve() != dst_file.resolve():
        return False
    if volume_format(src) != "hdf5" or not src_set or not dst_set:
        return True
    # Another dataset of the same HDF5 file is a different volume.
    return src_set.strip("/") == dst_set.strip("/")


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
    VolumeError
        When ``dst`` is ``src`` itself: an input is never overwritten.
    """
    if _same_target(src, dst):
        raise VolumeError(f"{dst}: refusing to overwrite the input volume {src}")
    volume, meta = open_volume_lazy(src, dataset=dataset)
    voxel = meta.pop("voxel_size_nm", None)
    if volume_format(dst) == "tiff-folder":
        return write_tiff_slices(dst, volume, voxel_size_nm=voxel, extra=meta)
    return write_volume(dst, volume, voxel_size_nm=voxel, extra=meta, progress=progress)


# --------------------------------------------------------------------------- metadata checks


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
