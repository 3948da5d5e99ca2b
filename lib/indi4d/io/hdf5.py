"""HDF5 volumes (``file.h5:/dataset``): finding datasets, clear errors, atomic and locked writes.

A write copies the file, writes the dataset into the copy and renames it over
the file; two writers of one file would each copy the file before the other's
rename and one dataset would be lost, so every writer holds the file's lock
(:func:`hdf5_write_lock`) from the copy to the rename. Only a dataset carrying
:data:`indi4d.volume_paths.MARKER` is replaced; groups and other datasets are
never deleted.
"""

import contextlib
import hashlib
import json
import os
import shutil
from pathlib import Path

from ..files import atomic_path
from ..temps import state_dir
from ..volume_paths import MARKER, hdf5_output_problem
from .blocks import WRITE_CHUNK_BYTES, slab_chunks, store_blocks
from .paths import VolumeError

#: Seconds a writer waits for another writer of the same HDF5 file before giving up.
LOCK_TIMEOUT_S = 3600


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


def open_hdf5(file):
    import h5py

    try:
        return h5py.File(file, "r")
    except OSError as exc:
        raise VolumeError(f"{file}: not a readable HDF5 file ({exc})") from exc


def hdf5_dataset(h5file, file, dataset):
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


@contextlib.contextmanager
def hdf5_write_lock(file, timeout=LOCK_TIMEOUT_S):
    """Hold the write lock of HDF5 ``file`` (one per real file, kept in :func:`indi4d.files.state_dir`).

    The lock file lives in the tool's state folder, named by the hash of the
    resolved path, so links to one file share one lock and no lock file is
    left beside the user's data. It serialises writers on this machine.
    """
    from filelock import FileLock, Timeout

    key = hashlib.sha256(os.path.realpath(file).encode()).hexdigest()[:32]
    folder = state_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(folder / f"{key}.lock"), timeout=timeout):
            yield
    except Timeout:
        raise VolumeError(f"{file}: another indi4d process has been writing this HDF5 file for over "
                          f"{timeout} s; wait for it to finish, or write another file") from None


def write_hdf5(file, dataset, volume, meta, lazy, progress):
    """Write ``volume`` as ``dataset`` of ``file``, keeping the file's other datasets and groups.

    Refused (nothing written) when ``dataset`` names a group, another
    program's dataset, or ``file`` is not HDF5 (:func:`indi4d.volume_paths.hdf5_output_problem`),
    checked again under the lock. A link is followed: the dataset goes into
    the real file (whose other datasets it keeps), and the link stays a link.
    """
    import h5py

    file = Path(os.path.realpath(file)) if Path(file).is_symlink() else Path(file)
    chunks = slab_chunks(volume.shape, volume.dtype.itemsize, WRITE_CHUNK_BYTES)
    with hdf5_write_lock(file), atomic_path(file) as tmp:
        problem = hdf5_output_problem(file, dataset)
        if problem:
            raise VolumeError(f"{file}: {problem}; nothing was written")
        if file.exists():
            # Keep the file's other datasets: start from a copy, replace ours.
            shutil.copyfile(file, tmp)
        with h5py.File(tmp, "a") as h5:
            if dataset in h5:  # ours (checked above): a dataset carrying the marker
                del h5[dataset]
            dset = h5.create_dataset(dataset, shape=volume.shape, dtype=volume.dtype, chunks=chunks)
            dset.attrs.update(MARKER)
            if lazy:
                store_blocks(dset, volume.rechunk(chunks), file, progress)
            else:
                dset[...] = volume
            for key, value in meta.items():
                if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                    dset.attrs[key] = value
            # Everything (lists, dicts, bools) also as one JSON attribute so
            # the round trip is exact.
            dset.attrs["metadata_json"] = json.dumps(meta)
