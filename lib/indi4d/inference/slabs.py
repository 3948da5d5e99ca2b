"""One z-slab of a volume enhancement: the two tasks that run on a worker, with nothing passed between workers.

A volume of ``Z`` LQ slices is cut into slabs of whole slices
(:func:`plan_slabs`). Each slab goes through two tasks, both given paths and
slab bounds, never arrays, so a task on any worker of any machine reads what
it needs from the stores and writes its own region:

* :meth:`SlabWork.xy`: read the slab's LQ slices from the input, enhance them
  slice by slice (:func:`~indi4d.inference.volumes.enhance_grey_slice`, the
  per-slice path of :func:`~indi4d.inference.volumes.enhance_volume`; slice
  ``z`` uses the seed ``(seed, z)``) and write the float32 slices into a
  scratch zarr store, one zarr chunk per slice.
* :meth:`SlabWork.z`: once the xy tasks of every slab within :data:`Z_HALO`
  slices are done, read the slab plus its halo from the scratch store, upscale
  x2 along z (the cubic spline's prefilter is recursive, so each slab needs
  :data:`Z_HALO` enhanced slices of each neighbour: its influence decays as
  0.268^k), crop to the slab, map to the output dtype and write the slab's
  region of the output store (one zarr chunk per slab: no locks).

The output depends on the slab size (the halo's edge), never on the worker
count or the order the tasks ran in: any scheduler gives the same bytes.
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.upscaling import upscale_part
from .checks import map_grey_range
from .volumes import enhance_grey_slice

#: Enhanced slices of each neighbouring slab used for the z-spline (0.268^12 < 1e-6).
Z_HALO = 12

#: LQ voxels of one slab by default: a task of seconds on one core at N = 1. benchmarks/scale.py
#: measured about 6e-6 s per LQ voxel and step for the default network on one core (2^19 voxels:
#: about 3 s a task, against dask's few ms per task), and no transfers or idle workers to amortise.
CHUNK_VOXELS = 2**19

#: The fewest LQ slices of a default slab: the z step re-reads and re-filters Z_HALO slices on each
#: side of its slab, (S + 2 Z_HALO) / S times the slab's own; at S = 8 that is 4x, about 5 % of the
#: xy step at N = 1 (benchmarks/scale.py's slab sweep: 20 % at S = 1), whatever the slice size.
MIN_SLAB_SLICES = 8

#: Bytes of one chunk of the output store at most (a slab's region is written as whole chunks).
OUT_CHUNK_BYTES = 64 * 2**20

#: Bytes of float64 working memory of the z step, per strip of rows (the spline runs per column).
Z_STRIP_BYTES = 64 * 2**20

_CACHE, _LOCK = {}, threading.Lock()


class NonFiniteInputError(ValueError):
    """Input slices hold NaN or infinite grey values (found while their slab is read)."""


class ModelRef:
    """A picklable handle on an enhancer: the model folder, loaded once per worker process.

    An :class:`~indi4d.inference.Enhancer` object can be given instead (only
    for work that runs in this process).
    """

    def __init__(self, model=None, preset="default"):
        from .enhancer import Enhancer

        self.enhancer = model if isinstance(model, Enhancer) else None
        self.model_dir = None if self.enhancer is not None else str(Path(model).resolve())
        self.preset = preset

    def get(self):
        """The enhancer, loaded into this process's cache on first use."""
        if self.enhancer is not None:
            return self.enhancer
        from .enhancer import load_enhancer

        key = (self.model_dir, self.preset)
        with _LOCK:
            if key not in _CACHE:
                _CACHE[key] = load_enhancer(self.model_dir, preset=self.preset)
            return _CACHE[key]

    def normalisation(self):
        """The model's normalisation (read from the folder: no TensorFlow needed)."""
        if self.enhancer is not None:
            return self.enhancer.normalisation
        from ..model_folder import read_normalisation

        return read_normalisation(self.model_dir)


def cached_models():
    """Model folders loaded in this process (what a worker holds)."""
    return sorted(key[0] for key in _CACHE)


@dataclass(frozen=True)
class Slab:
    """LQ slices ``start:stop`` of the volume, and the slabs whose xy output its z step reads."""

    index: int
    start: int
    stop: int
    needs: tuple


def default_chunk_slices(shape, target_voxels=CHUNK_VOXELS, min_slices=MIN_SLAB_SLICES):
    """LQ slices per slab: about ``target_voxels`` LQ voxels, at least ``min_slices``, at most the stack.

    Parameters
    ----------
    shape : tuple of int
        (Z, Y, X) of the LQ volume.

    Returns
    -------
    int
        Slices per slab; the same for any worker count, so the output is too.
    """
    per_slice = int(shape[-1]) * int(shape[-2])
    return int(max(1, min(int(shape[0]), max(int(min_slices), round(target_voxels / per_slice)))))


def out_chunk_slices(per_slab, slice_bytes, limit=OUT_CHUNK_BYTES):
    """Output slices per zarr chunk: the largest divisor of ``per_slab`` whose chunk fits ``limit`` bytes (>= 1).

    A divisor, so that every slab's region is whole chunks: no two tasks write one chunk.
    """
    fits = [d for d in range(1, per_slab + 1) if per_slab % d == 0 and d * slice_bytes <= limit]
    return max(fits, default=1)


def plan_slabs(nz, chunk_slices, halo):
    """The slabs of a stack of ``nz`` slices, ``chunk_slices`` each (the last may be shorter).

    ``needs`` of a slab: the slabs that hold any slice within ``halo`` of it
    (itself included), whose xy output its z step reads.
    """
    bounds = list(range(0, nz, chunk_slices)) + [nz]
    slabs = list(zip(bounds[:-1], bounds[1:]))
    return [Slab(i, a, b, tuple(j for j, (c, d) in enumerate(slabs) if c < min(nz, b + halo) and d > a - halo))
            for i, (a, b) in enumerate(slabs)]


def _check_finite(block, z0):
    bad = ~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
    if bad.any():  # only a float input can hold them; found here, the first time its voxels are read
        raise NonFiniteInputError(f"NaN or infinite grey values in slice z = {z0 + int(np.argmax(bad))}")


def finish(block, hq_range, input_range, dtype):
    """Map back to the input's grey range, check finiteness, round and clip to an integer dtype."""
    out = block if input_range is None else map_grey_range(block, hq_range, input_range)
    if not np.all(np.isfinite(out)):
        raise ValueError("enhancement produced NaN or infinite values")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return np.asarray(out, dtype)


@dataclass(frozen=True, eq=False)  # no __eq__/__hash__ over the source array
class SlabWork:
    """Everything a slab's two tasks need, picklable: the source, the two store paths and the sampling.

    ``source`` is any array-like of shape (Z, Y, X) whose ``[a:b]`` gives
    those slices: a NumPy array, or the lazy dask array of
    :func:`indi4d.io.open_volume_lazy` (read in the task, from the file).
    ``scratch`` and ``out`` are zarr array folders made by
    :func:`create_stores`; ``z_upscale`` False writes the xy slices as they
    are; ``flat``: a 2D scan as a source of one slice, written 2D.
    """

    source: object
    ref: ModelRef
    scratch: str
    out: str
    steps: int
    eps: float = None
    seed: int = 0
    stochastic: bool = False
    input_range: tuple = None
    z_upscale: bool = True
    dtype: str = "float32"
    flat: bool = False
    halo: int = Z_HALO

    @property
    def shape(self):
        return tuple(int(s) for s in self.source.shape)

    def read(self, a, b):
        """LQ slices ``a:b`` as a NumPy array, read in this process (a lazy source is computed here)."""
        block = self.source[a:b]
        if hasattr(block, "dask"):
            block = block.compute(scheduler="sync")  # this task reads its own slices: no other worker involved
        return np.asarray(block)

    def xy(self, slab):
        """Enhance the slab's LQ slices into the scratch store, float32 (2Y, 2X) each, slice by slice.

        Each slice is written as soon as it is enhanced (one zarr chunk a
        slice), so a task holds one enhanced slice, not its slab.
        """
        import zarr

        block = self.read(slab.start, slab.stop)
        _check_finite(block, slab.start)
        enhancer = self.ref.get()
        norm = enhancer.normalisation
        lq_range = (norm["lq"]["lo"], norm["lq"]["hi"])
        scratch = zarr.open_array(self.scratch, mode="r+")
        for i, image in enumerate(block):
            if self.input_range is not None:
                image = map_grey_range(image, self.input_range, lq_range)
            seed = None if self.seed is None else (int(self.seed), slab.start + i)
            scratch[slab.start + i] = enhance_grey_slice(enhancer, norm, image, self.steps, self.eps, seed,
                                                         self.stochastic)
        return slab.index

    def z(self, slab):
        """x2 z-spline of the slab (with its halo) from the scratch store, in the output dtype, into the output."""
        import zarr

        scratch = zarr.open_array(self.scratch, mode="r")
        nz, ny2, nx2 = scratch.shape
        hq = self.ref.normalisation()["hq"]
        lo, hi = (max(0, slab.start - self.halo), min(nz, slab.stop + self.halo)) if self.z_upscale else \
            (slab.start, slab.stop)
        k = 2 if self.z_upscale else 1
        out = np.empty((k * (slab.stop - slab.start), ny2, nx2), np.dtype(self.dtype))
        # the spline runs along z, column by column: strips of rows bound the memory, the numbers are the same
        rows = max(1, Z_STRIP_BYTES // (8 * k * (hi - lo) * nx2))
        for y0 in range(0, ny2, rows):
            window = scratch[lo:hi, y0:y0 + rows]
            if self.z_upscale:
                window = upscale_part(window, 2, 0, slab.start - lo, slab.stop - lo)
            out[:, y0:y0 + rows] = finish(window, (hq["lo"], hq["hi"]), self.input_range, out.dtype)
        target = zarr.open_array(self.out, mode="r+")
        if self.flat:
            target[...] = out[0]
        else:
            target[k * slab.start: k * slab.stop] = out  # whole chunks of this slab: no other writer
        return slab.index

    def out_shape(self):
        """Shape of the output: (2Z, 2Y, 2X), or (Z, 2Y, 2X) without the z step."""
        nz, ny, nx = self.shape
        return (2 * ny, 2 * nx) if self.flat else ((2 if self.z_upscale else 1) * nz, 2 * ny, 2 * nx)


def create_stores(work, chunk_slices):
    """Create the scratch (float32, a chunk per slice) and output (whole chunks per slab) zarr arrays of ``work``."""
    import zarr

    nz, ny, nx = work.shape
    zarr.create_array(store=work.scratch, shape=(nz, 2 * ny, 2 * nx), dtype=np.float32, chunks=(1, 2 * ny, 2 * nx),
                      zarr_format=3, overwrite=True, compressors=None)  # transient: no time spent compressing
    per_slab = (2 if work.z_upscale else 1) * chunk_slices
    out_shape = work.out_shape()
    slice_bytes = np.dtype(work.dtype).itemsize * 4 * ny * nx
    chunks = out_shape if work.flat else \
        (min(out_chunk_slices(per_slab, slice_bytes), out_shape[0]),) + out_shape[1:]
    return zarr.create_array(store=work.out, shape=out_shape, dtype=np.dtype(work.dtype), chunks=chunks,
                             zarr_format=3, overwrite=True)
