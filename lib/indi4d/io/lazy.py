"""Lazy reading: a volume as a chunked dask array that reads only the chunks a computation touches."""

import numpy as np
import tifffile

from .blocks import LAZY_CHUNK_BYTES, slab_chunks
from .checks import check_dtype, check_shape
from .hdf5 import hdf5_dataset, open_hdf5
from .metadata import meta_from_attrs, normalise_meta
from .paths import VolumeError, require_volume_file, split_hdf5, tiff_slices, volume_format
from .tiff import check_tiff_pages, meta_from_tiff
from .zarr_store import check_zarr_complete, open_zarr


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
        if self.fmt == "zarr":
            return self._zarr(index)
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


    def _zarr(self, index):
        """Read from the zarr array, naming the store when a chunk does not decode."""
        import zarr

        try:
            node = zarr.open(store=self.file, mode="r")
            return np.asarray((node[self.dataset] if self.dataset else node)[index])
        except Exception as exc:  # zarr and its codecs raise many types for a damaged chunk
            raise VolumeError(f"{self.file}: a chunk of the zarr store does not decode ({type(exc).__name__}: {exc}) "
                              f"at index {index}; the store is damaged, restore it from a copy") from exc


def _tiff_layout(fmt, file):
    """``(shape, dtype, meta, files)`` of a TIFF file or folder of slices, from the headers only.

    Every slice of a folder is checked (its first page's shape and dtype, read
    from the header), so one float or differently sized slice is refused here,
    before any computation, instead of being cast or broadcast later.
    """
    files = tiff_slices(file) if fmt == "tiff-folder" else None
    first = files[0] if files else file
    try:
        with tifffile.TiffFile(first) as tif:
            if files is None:
                check_tiff_pages(tif, file)
                series = tif.series[0]
                shape, dtype = series.shape, series.dtype
            else:
                page = tif.pages.first
                shape, dtype = (len(files),) + tuple(page.shape), page.dtype
            meta = meta_from_tiff(tif)
    except VolumeError:
        raise
    except Exception as exc:
        raise VolumeError(f"{first}: not a readable TIFF ({exc})") from exc
    if files is not None:
        _check_slice_headers(files, shape[1:], dtype)
    return shape, dtype, meta, None if files is None else [str(f) for f in files]


def _check_slice_headers(files, shape, dtype):
    """Every slice of a folder is a one-page 2D TIFF of ``shape`` and ``dtype`` (headers only)."""
    if len(shape) != 2:
        raise VolumeError(f"{files[0]}: slices of a folder must be 2D, got shape {tuple(shape)}")
    for path in files[1:]:
        try:
            with tifffile.TiffFile(path) as tif:
                page = tif.pages.first
                found, kind, pages = tuple(page.shape), page.dtype, len(tif.pages)
        except Exception as exc:  # tifffile raises many types for a damaged file
            raise VolumeError(f"{path}: not a readable TIFF ({exc}); fix or remove this slice") from exc
        if found != tuple(shape) or kind != dtype or pages != 1:
            raise VolumeError(f"{path}: slice {found} {kind}{f' with {pages} pages' if pages != 1 else ''} differs "
                              f"from the first slice {files[0].name} {tuple(shape)} {dtype}; every slice of a "
                              "folder must have one shape and dtype: convert or remove it")


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
    file, dataset = split_hdf5(path, dataset)
    require_volume_file(file)
    label = str(file)
    files = None
    if fmt == "zarr":
        arr = open_zarr(file, dataset)
        check_shape(label, arr.shape)  # a damaged header first: counting its chunks would be meaningless
        check_zarr_complete(arr, label)
        dataset, shape, dtype = arr.path or None, arr.shape, arr.dtype
        meta = meta_from_attrs(arr.attrs.asdict())
        chunks = chunks or arr.chunks
    elif fmt == "hdf5":
        with open_hdf5(file) as h5:
            dset = hdf5_dataset(h5, file, dataset)
            dataset, shape, dtype = dset.name, dset.shape, dset.dtype
            meta = meta_from_attrs(dset.attrs)
    else:
        shape, dtype, meta, files = _tiff_layout(fmt, file)
    check_dtype(label, dtype)
    check_shape(label, shape)
    reader = _SliceReader(fmt, file, dataset, shape, dtype, files=files)
    if chunks is None:
        chunks = slab_chunks(shape, np.dtype(dtype).itemsize, LAZY_CHUNK_BYTES)
    # The name must change when the file does, so dask never reuses stale results.
    stat = file.stat()
    name = "indi4d-" + tokenize(str(file.resolve()), dataset, stat.st_mtime_ns, stat.st_size, chunks)
    lazy = da.from_array(reader, chunks=chunks, name=name, asarray=True, lock=False,
                         meta=np.empty((0,) * len(shape), dtype=dtype))
    return lazy, normalise_meta(meta)
