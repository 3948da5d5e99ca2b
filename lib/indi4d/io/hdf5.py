"""HDF5 volumes (``file.h5:/dataset``): finding datasets, clear errors, atomic writes."""

import json
import shutil

from ..files import atomic_path
from .blocks import WRITE_CHUNK_BYTES, _slab_chunks, _store_blocks
from .paths import VolumeError


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


def _write_hdf5(file, dataset, volume, meta, lazy, progress):
    """Write ``volume`` as ``dataset`` of ``file``, keeping the file's other datasets."""
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
