"""Volumes at beamline scale: lazy, z-chunked enhancement on dask (``indi4d enhance``).

The volume is read lazily (:func:`indi4d.io.open_volume_lazy`) in chunks of
whole z-slices. Each chunk is enhanced slice by slice through the same per-slice
path as :func:`~indi4d.inference.volumes.enhance_volume`
(:func:`~indi4d.inference.volumes.enhance_grey_slice`, exact tiling inside a
slice), so xy needs no halo between chunks. The x2 cubic-spline upscaling along
z is global (the spline prefilter is recursive), so each output chunk is
upscaled from its enhanced slices plus :data:`Z_HALO` enhanced slices of each
neighbour and cropped: the prefilter's influence decays as 0.268^k, so the
seams are below float32 rounding (tested against the in-memory result).

Peak memory is a few chunks per worker, whatever the volume size; the output
is written chunk by chunk (zarr natively; TIFF/HDF5 through a scratch zarr
streamed by :func:`indi4d.io.write_volume`), atomically.
"""

import contextlib
import os
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from ..core import preprocess
from .checks import check_enhance_input, map_grey_range
from .volumes import enhance_grey_slice

#: Enhanced slices of each neighbouring chunk used for the z-spline (0.268^12 < 1e-6).
Z_HALO = 12

#: Target bytes of one chunk's enhanced output (float32, 4x the input slice area).
CHUNK_BYTES = 64 * 2**20

_CACHE, _LOCK = {}, threading.Lock()


class ModelRef:
    """A picklable handle on an enhancer: the model folder, loaded once per worker process.

    An :class:`~indi4d.inference.Enhancer` object can be given instead (only
    for schedulers inside this process: threads or ``processes=False``).
    """

    def __init__(self, model=None, preset="default"):
        from .enhancer import Enhancer

        self.enhancer = model if isinstance(model, Enhancer) else None
        self.model_dir = None if self.enhancer is not None else str(Path(model).resolve())
        self.preset = preset

    def get(self):
        if self.enhancer is not None:
            return self.enhancer
        from .enhancer import load_enhancer

        key = (self.model_dir, self.preset)
        with _LOCK:
            if key not in _CACHE:
                _CACHE[key] = load_enhancer(self.model_dir, preset=self.preset)
            return _CACHE[key]

    def normalisation(self):
        if self.enhancer is not None:
            return self.enhancer.normalisation
        from ..model_folder import read_normalisation

        return read_normalisation(self.model_dir)

    def token(self):
        return self.model_dir or f"enhancer-{id(self.enhancer)}"


def _load_model(ref):
    """Load ``ref``'s model into this worker's cache (run on every worker by :func:`preload_model`)."""
    ref.get()


def preload_model(client, ref):
    """Load the model on every worker of ``client`` now, all in parallel (no-op without a client).

    Without it each worker imports TensorFlow and builds the network when its
    first chunk arrives, and the workers that start late hold up the others;
    a benchmark would also time those start-ups as enhancement.
    """
    if client is not None and ref.model_dir is not None:
        client.run(_load_model, ref)


class NonFiniteInputError(ValueError):
    """Input slices hold NaN or infinite grey values (found while their chunk is read)."""


def _xy_block(block, ref, steps, eps, seed, stochastic, input_range, block_info=None):
    """Enhance the slices of one z-chunk; slice ``z`` (global index) uses the seed ``(seed, z)``."""
    z0 = block_info[0]["array-location"][0][0] if block_info else 0
    bad = ~np.isfinite(block).reshape(block.shape[0], -1).all(axis=1)
    if bad.any():  # only a float input can hold them; found here, the first time its voxels are read
        raise NonFiniteInputError(f"NaN or infinite grey values in slice z = {z0 + int(np.argmax(bad))}")
    enhancer = ref.get()
    norm = enhancer.normalisation
    lq_range = (norm["lq"]["lo"], norm["lq"]["hi"])
    out = np.empty((block.shape[0], 2 * block.shape[1], 2 * block.shape[2]), np.float32)
    for i, image in enumerate(block):
        if input_range is not None:
            image = map_grey_range(image, input_range, lq_range)
        out[i] = enhance_grey_slice(enhancer, norm, image, steps, eps,
                                    None if seed is None else (int(seed), z0 + i), stochastic)
    return out


def _z_upscale_crop(block, start, length):
    """x2 cubic spline along z of a chunk with its halo, cropped to the chunk's own output slices."""
    return preprocess.upscale(block, 2, axes=(0,))[start:start + length]


def _finish(block, hq_range, input_range, dtype):
    """Map back to the input's grey range, check finiteness, round and clip to an integer dtype."""
    out = block if input_range is None else map_grey_range(block, hq_range, input_range)
    if not np.all(np.isfinite(out)):
        raise ValueError("enhancement produced NaN or infinite values")
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(dtype)
    return np.asarray(out, dtype)


def default_chunk_slices(shape, target_bytes=CHUNK_BYTES):
    """LQ slices per chunk so that one chunk's enhanced output is about ``target_bytes`` (at least 4)."""
    per_slice = 16 * int(shape[-1]) * int(shape[-2])  # float32 on the (2Y, 2X) grid
    return int(max(4, min(int(shape[0]), target_bytes // per_slice)))


def enhance_lazy(volume, model, steps, eps=None, seed=0, stochastic=False, z_upscale=True, input_range=None,
                 chunk_slices=None, preset="default", dtype=np.float32):
    """The enhanced volume as a lazy dask array, chunk by chunk along z.

    Equal (within float32 rounding) to
    :func:`~indi4d.inference.volumes.enhance_volume` on the whole volume.

    Parameters
    ----------
    volume : dask.array.Array or ndarray, shape (Z, Y, X)
        LQ grey values (e.g. from :func:`indi4d.io.open_volume_lazy`).
    model : str, Path or Enhancer
        A model folder (loaded once in each worker) or a loaded enhancer
        (in-process schedulers only).
    steps, eps, seed, stochastic
        As in :func:`~indi4d.inference.volumes.enhance_volume`.
    z_upscale : bool
        x2 cubic spline along z at the end.
    input_range : (float, float), optional
        Input grey values ``LO, HI`` mapped onto the model's LQ training range,
        and the output mapped back from its HQ range.
    chunk_slices : int, optional
        LQ z-slices per chunk (default :func:`default_chunk_slices`).
    preset : str
        Tiling preset of :func:`~indi4d.inference.load_enhancer`.
    dtype : numpy dtype
        Output dtype; integers are rounded and clipped.

    Returns
    -------
    dask.array.Array, shape (2Z, 2Y, 2X) (or (Z, 2Y, 2X) without ``z_upscale``)
    """
    import dask.array as da
    from dask.base import tokenize

    ref = model if isinstance(model, ModelRef) else ModelRef(model, preset)
    vol = volume if hasattr(volume, "dask") else da.from_array(np.asarray(volume))
    if vol.ndim != 3:
        raise ValueError(f"enhance_lazy: expected a (Z, Y, X) volume, got shape {vol.shape}")
    nz, ny, nx = vol.shape
    cz = int(chunk_slices or default_chunk_slices(vol.shape))
    vol = vol.rechunk((cz, -1, -1))
    token = tokenize(vol.name, ref.token(), ref.preset, steps, eps, seed, stochastic, input_range, Z_HALO)
    xy = vol.map_blocks(_xy_block, ref, steps, eps, seed, stochastic, input_range,
                        chunks=(vol.chunks[0], (2 * ny,), (2 * nx,)), dtype=np.float32,
                        name=f"indi4d-xy-{token}")
    if z_upscale:
        bounds = np.concatenate([[0], np.cumsum(xy.chunks[0])]).astype(int)
        pieces = []
        for a, b in zip(bounds[:-1], bounds[1:]):
            lo, hi = max(0, a - Z_HALO), min(nz, b + Z_HALO)
            sub = xy[lo:hi].rechunk({0: -1})
            pieces.append(sub.map_blocks(_z_upscale_crop, start=2 * (a - lo), length=2 * (b - a),
                                         chunks=((2 * (b - a),), (2 * ny,), (2 * nx,)), dtype=np.float32,
                                         name=f"indi4d-z-{token}-{a}"))
        xy = da.concatenate(pieces, axis=0)
    hq = ref.normalisation()["hq"]
    return xy.map_blocks(_finish, (hq["lo"], hq["hi"]), input_range, np.dtype(dtype), dtype=np.dtype(dtype),
                         name=f"indi4d-out-{token}-{np.dtype(dtype).str}")


@contextlib.contextmanager
def dask_scheduler(workers=1, scheduler=None, processes=True):
    """Where the graph runs: an existing cluster, a LocalCluster of ``workers``, or one local thread.

    Yields a ``distributed.Client`` or None (the local threaded scheduler).

    * ``scheduler="tcp://host:8786"``: a running dask.distributed scheduler,
      e.g. one started on SLURM with dask-jobqueue::

          from dask_jobqueue import SLURMCluster
          cluster = SLURMCluster(cores=8, processes=1, memory="64GB", walltime="04:00:00",
                                 job_extra_directives=["--gres=gpu:1"])
          cluster.scale(jobs=4)          # 4 SLURM jobs, one worker each
          print(cluster.scheduler_address)   # pass it as --scheduler / scheduler=

      (every worker needs indi4d installed and the model folder and the
      volumes on a shared file system).
    * ``workers > 1``: a ``LocalCluster`` of that many single-threaded workers,
      each process given its share of the cores for TensorFlow
      (``processes=False`` keeps them as threads of this process).
    * otherwise the local threaded scheduler with one thread (TensorFlow
      already uses every core inside one network call).
    """
    import dask

    if scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            yield client
    elif workers and int(workers) > 1:
        from distributed import Client, LocalCluster

        extra = {}
        if processes:
            # Each worker process gets its share of the cores: TensorFlow would otherwise start
            # one thread per core in every worker and they would fight over the cores.
            share = str(max(1, (os.cpu_count() or 1) // int(workers)))
            extra["env"] = {"TF_NUM_INTRAOP_THREADS": share, "OMP_NUM_THREADS": share}
        with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=processes,
                          dashboard_address=None, **extra) as cluster, Client(cluster) as client:
            yield client
    else:
        with dask.config.set(scheduler="threads", num_workers=1):
            yield None


def compute_with_progress(graph, client, progress=True):
    """Compute a dask collection (or delayed) with a progress bar: dask's or distributed's."""
    import dask

    if client is not None:
        future = client.compute(graph)
        if progress:
            from distributed import progress as distributed_progress

            distributed_progress(future)
            print(file=sys.stderr)
        return future.result()
    if progress:
        from dask.diagnostics import ProgressBar

        with ProgressBar(out=sys.stderr):
            return dask.compute(graph)[0]
    return dask.compute(graph)[0]


def _store_zarr(store, array, meta, client, progress):
    """Write ``array`` into a new zarr v3 store folder, one zarr chunk per dask block (no locks needed)."""
    import dask.array as da
    import zarr

    from ..volume_paths import MARKER

    z = zarr.create_array(store=str(store), shape=array.shape, dtype=array.dtype,
                          chunks=tuple(c[0] for c in array.chunks), zarr_format=3, overwrite=True)
    compute_with_progress(da.store(array, z, lock=False, compute=False), client, progress)
    z.attrs.update({**meta, **MARKER})


def write_lazy(out_path, array, voxel_size_nm, extra, client=None, progress=True):
    """Write a lazy volume chunk by chunk, atomically: zarr natively, TIFF/HDF5 through a scratch zarr.

    The scratch store is a hidden sibling recorded as this process's temp
    (:func:`indi4d.files.make_temp`), removed afterwards (or, after a kill, by
    the next write of the same output).
    """
    import dask.array as da

    from ..files import discard_temp, make_temp, remove_stale_temps
    from ..io import volume_format, write_volume
    from ..io.metadata import write_meta
    from ..io.paths import split_hdf5
    from ..io.zarr_store import replace_store

    meta = write_meta(voxel_size_nm, extra)
    if volume_format(out_path) == "zarr":
        with replace_store(Path(out_path)) as tmp:
            _store_zarr(tmp, array, meta, client, progress)
        return Path(out_path)
    file, _ = split_hdf5(out_path, None)
    file.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(file)
    scratch = make_temp(file, directory=True)
    try:
        _store_zarr(scratch, array, {}, client, progress)
        meta = dict(meta)
        voxel = meta.pop("voxel_size_nm", None)
        write_volume(out_path, da.from_zarr(str(scratch)), voxel_size_nm=voxel, extra=meta, progress=progress)
    finally:
        discard_temp(scratch)
    return Path(out_path)


def enhance_chunked(in_path, out_path, model_dir, steps=None, seed=0, eps=None, stochastic=False, preset="default",
                    input_range=None, voxel_size_nm=None, force=False, workers=1, scheduler=None, processes=True,
                    chunk_slices=None, progress=True, job=None, record=None):
    """Enhance a volume file of any size, lazily and chunk by chunk (``indi4d enhance``).

    Every input is checked first (:func:`~indi4d.inference.checks.check_enhance_input`);
    then the volume is read in z-chunks, enhanced (:func:`enhance_lazy`) on
    dask (see :func:`dask_scheduler` for ``workers``, ``scheduler`` and a
    dask-jobqueue SLURM example) and written chunk by chunk, atomically. Peak
    memory is bounded by the chunk size, not the volume size.

    Parameters
    ----------
    in_path, out_path : str or Path
        TIFF, ``file.h5:/dataset`` or ``.zarr`` (2D or 3D); the input is never modified.
    model_dir : str or Path
    steps : int, optional
        InDI steps (default: the model's chosen N); above
        :data:`~indi4d.inference.checks.MAX_STEPS` only with ``force``.
    seed, eps, stochastic
        InDI's sampling (:func:`~indi4d.core.indi.indi_sample`; ``eps`` None: the training's).
    preset : str
        Tiling preset of :func:`~indi4d.inference.enhancer.load_enhancer`.
    input_range, voxel_size_nm, force
        See :func:`~indi4d.inference.checks.check_enhance_input`.
    workers : int
        1: the local threaded scheduler; N > 1: a LocalCluster of N workers.
    scheduler : str, optional
        Address of a running dask.distributed scheduler (overrides ``workers``).
    processes : bool
        LocalCluster workers as processes (True) or threads.
    chunk_slices : int, optional
        LQ z-slices per chunk.
    progress : bool
    job : EnhanceJob, optional
        The result of :func:`~indi4d.inference.checks.check_enhance_input` for
        these same arguments, when the caller already checked them.
    record : dict, optional
        JSON-ready entries added to the output's ``indi4d_enhance`` metadata;
        the domain check's result is always there, as ``domain``. ``indi4d
        enhance`` passes the sanity check of
        :func:`indi4d.evaluation.sanity.output_sanity` here (run by the caller:
        this package does not import ``evaluation``, which imports it).

    Returns
    -------
    Path
        The output written.

    Examples
    --------
    On SLURM, through dask-jobqueue (see :func:`dask_scheduler`)::

        cluster = SLURMCluster(cores=8, processes=1, memory="64GB", walltime="04:00:00")
        cluster.scale(jobs=4)
        enhance_chunked("scan.h5:/entry/data", "scan_indi.zarr", "runs/default/model",
                        scheduler=cluster.scheduler_address)
    """
    if job is None:
        job = check_enhance_input(in_path, out_path, model_dir, steps=steps, force=force, input_range=input_range,
                                  voxel_size_nm=voxel_size_nm)
        for note in job.notes:
            warnings.warn(note, stacklevel=2)
    volume = job.volume
    flat = volume.ndim == 2
    if flat:
        volume = volume[None]
    dtype = volume.dtype if np.issubdtype(volume.dtype, np.integer) else np.dtype(np.float32)
    extra = {"indi4d_enhance": {"input": str(in_path), "model_dir": str(model_dir), "steps": job.steps,
                                "seed": seed, "stochastic": bool(stochastic), "input_range": job.input_range,
                                "chunked": True, "domain": job.domain, **(record or {})}}
    with dask_scheduler(workers, scheduler, processes) as client:
        ref = ModelRef(model_dir, preset)
        preload_model(client, ref)
        out = enhance_lazy(volume, ref, job.steps, eps=eps, seed=seed, stochastic=stochastic, z_upscale=not flat,
                           input_range=job.input_range, chunk_slices=chunk_slices, dtype=dtype)
        if flat:
            out = out[0]
        try:
            return write_lazy(out_path, out, job.voxel_size_nm / 2.0, extra, client=client, progress=progress)
        except NonFiniteInputError as err:  # nothing was kept (write_lazy is atomic): name the file
            raise NonFiniteInputError(f"{in_path}: {err}; nothing was written") from err


def enhance_file(in_path, out_path, model_dir, steps=None, seed=0, eps=None, stochastic=False, preset="default",
                 **options):
    """Enhance a 2D or 3D LQ volume file and write the result: the library's one path for files.

    :func:`enhance_chunked` (every input checked before anything is read or
    computed, then the volume enhanced chunk by chunk on dask and written
    atomically) with one local worker and no progress bar unless ``options``
    say otherwise. The output has half the input's voxel size and the input's
    integer dtype (rounded and clipped), or float32 for float input.

    Parameters
    ----------
    in_path, out_path, model_dir, seed, eps, stochastic, preset
        As in :func:`enhance_chunked`.
    steps : int, optional
        InDI steps ``N``; None = the N chosen for this model by chapter 05
        (``steps.json``, :func:`indi4d.model_folder.default_steps`).
    **options
        ``input_range``, ``voxel_size_nm``, ``force``, ``workers``,
        ``scheduler``, ``chunk_slices``, ``progress`` (default False) of :func:`enhance_chunked`.

    Returns
    -------
    Path
        The output written, ``out_path``.

    Raises
    ------
    indi4d.safety.UnsafeOutputError, indi4d.inference.checks.EnhanceInputError
        The job was refused; nothing was read beyond metadata, nothing written.
    """
    options.setdefault("progress", False)
    return enhance_chunked(in_path, out_path, model_dir, steps=steps, seed=seed, eps=eps, stochastic=stochastic,
                           preset=preset, **options)
