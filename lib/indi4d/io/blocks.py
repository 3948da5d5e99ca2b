"""Chunking: z-slab chunk shapes, and streaming a dask array block by block."""

import math

import numpy as np

from .checks import check_finite

#: Target size of one chunk when writing HDF5/zarr and when reading lazily.
#: 4 MiB keeps random access cheap; dask's own task overhead argues for
#: bigger lazy chunks, see ``LAZY_CHUNK_BYTES``.
WRITE_CHUNK_BYTES = 4 * 2**20
LAZY_CHUNK_BYTES = 64 * 2**20


def slab_chunks(shape, itemsize, target_bytes):
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


def is_lazy(volume):
    return hasattr(volume, "dask") and hasattr(volume, "chunks") and hasattr(volume, "compute")


def computed_blocks(volume):
    """``(index, block)`` over a dask array's blocks in C order, each computed once."""
    from itertools import product

    offsets = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in volume.chunks]
    for idx in product(*(range(len(c)) for c in volume.chunks)):
        index = tuple(slice(int(o[i]), int(o[i + 1])) for o, i in zip(offsets, idx))
        yield index, np.asarray(volume[index].compute())


def progress_bar(iterable, total, enabled, desc):
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, disable=not enabled)


def store_blocks(target, volume, file, progress):
    """Copy a dask array into an array-like ``target`` (h5py dataset, zarr array), checking each block."""
    nblocks = math.prod(len(c) for c in volume.chunks)
    for index, block in progress_bar(computed_blocks(volume), nblocks, progress, f"writing {file.name}"):
        check_finite(str(file), block)
        target[index] = block
