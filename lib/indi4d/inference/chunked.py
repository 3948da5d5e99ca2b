"""Volumes at beamline scale: slab by slab, on this process or dask.distributed (``indi4d enhance``).

Every input is checked before anything is computed
(:func:`~indi4d.inference.checks.check_enhance_input`). The volume is then
cut into z-slabs of whole slices (:mod:`indi4d.inference.slabs`): each slab's
xy task reads its LQ slices from the input file and writes its enhanced
slices into a scratch store; its z task reads them back with the
:data:`~indi4d.inference.slabs.Z_HALO` neighbouring slices the x2 z-spline
needs and writes its region of the output. Tasks get paths and slab bounds,
never arrays, so workers never send data to one another
(:mod:`indi4d.inference.execution` runs them and shows the progress).

Peak memory is one slab per worker, whatever the volume size. The output is
written atomically: zarr into a temporary store swapped in at the end, TIFF
and HDF5 streamed from a temporary zarr store by
:func:`indi4d.io.write_volume`; the scratch stores are temps of this process
(:func:`indi4d.files.make_temp`), so a killed run leaves nothing
complete-looking and the next write of the same output removes them.
Scratch disk: 16 bytes per LQ voxel (float32 on the (Z, 2Y, 2X) grid), plus
the output for TIFF/HDF5.
"""

import contextlib
from dataclasses import replace
import warnings
from pathlib import Path

import numpy as np

from .checks import check_enhance_input
from .execution import dask_scheduler, prepare_workers, run_slabs
from .slabs import ModelRef, NonFiniteInputError, SlabWork, create_stores, default_chunk_slices, plan_slabs


@contextlib.contextmanager
def scratch_store(beside):
    """A temporary folder beside ``beside``, recorded as this process's temp, removed afterwards."""
    from ..files import discard_temp, make_temp

    tmp = make_temp(beside, directory=True)
    try:
        yield tmp
    finally:
        discard_temp(tmp)


def fill_store(store, scratch, work, chunk_slices, meta, client, progress):
    """Enhance ``work``'s volume into a new zarr array at ``store`` (its metadata written last).

    ``scratch``: a new folder for the enhanced xy slices (float32), the z step's input.
    """
    from ..volume_paths import MARKER

    slabs = plan_slabs(work.shape[0], chunk_slices, work.halo if work.z_upscale else 0)
    work = replace(work, scratch=str(scratch), out=str(store))
    target = create_stores(work, chunk_slices)
    run_slabs(work, slabs, client, progress)
    target.attrs.update({**meta, **MARKER})


def write_enhanced(out_path, work, chunk_slices, voxel_size_nm, extra, client=None, progress=True):
    """Enhance and write ``work``'s volume, atomically: zarr natively, TIFF/HDF5 through a scratch zarr.

    The scratch stores live in one temp folder beside the output, recorded
    under the output's name, so the next write of that output removes what a
    killed run left. Returns the output path.
    """
    import dask.array as da

    from ..files import remove_stale_temps
    from ..io import volume_format, write_volume
    from ..io.metadata import write_meta
    from ..io.paths import split_hdf5
    from ..io.zarr_store import replace_store

    meta = write_meta(voxel_size_nm, extra)
    if volume_format(out_path) == "zarr":
        with replace_store(Path(out_path)) as tmp, scratch_store(Path(out_path)) as scratch:
            fill_store(tmp, scratch / "xy.zarr", work, chunk_slices, meta, client, progress)
        return Path(out_path)
    file, _ = split_hdf5(out_path, None)
    file.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(file)
    with scratch_store(file) as scratch:
        fill_store(scratch / "out.zarr", scratch / "xy.zarr", work, chunk_slices, {}, client, progress)
        meta = dict(meta)
        voxel = meta.pop("voxel_size_nm", None)
        write_volume(out_path, da.from_zarr(str(scratch / "out.zarr")), voxel_size_nm=voxel, extra=meta,
                     progress=progress)
    return Path(out_path)


def enhance_chunked(in_path, out_path, model_dir, steps=None, seed=0, eps=None, stochastic=False, preset="default",
                    input_range=None, voxel_size_nm=None, force=False, workers=1, scheduler=None, processes=True,
                    chunk_slices=None, progress=True, job=None, record=None):
    """Enhance a volume file of any size, slab by slab (``indi4d enhance``).

    Every input is checked first (:func:`~indi4d.inference.checks.check_enhance_input`);
    then the volume is enhanced in z-slabs (:mod:`indi4d.inference.slabs`) in
    this process or on dask.distributed (see
    :func:`~indi4d.inference.execution.dask_scheduler` for ``workers``,
    ``scheduler`` and a dask-jobqueue SLURM example) and written slab by slab,
    atomically. Peak memory is bounded by the slab size, not the volume size;
    the output is the same whatever ``workers`` or ``scheduler``.

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
        1: this process, slab after slab; N > 1: a LocalCluster of N worker
        processes, each pinned to its share of the cores.
    scheduler : str, optional
        Address of a running dask.distributed scheduler (overrides ``workers``).
    processes : bool
        LocalCluster workers as processes (True) or threads.
    chunk_slices : int, optional
        LQ z-slices per slab (default
        :func:`~indi4d.inference.slabs.default_chunk_slices`: about
        :data:`~indi4d.inference.slabs.CHUNK_VOXELS` LQ voxels a slab).
    progress : bool
        A progress bar per slab written (LQ voxels per second, time left).
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
    dtype = volume.dtype if np.issubdtype(volume.dtype, np.integer) else np.dtype(np.float32)
    extra = {"indi4d_enhance": {"input": str(in_path), "model_dir": str(model_dir), "steps": job.steps,
                                "seed": seed, "stochastic": bool(stochastic), "input_range": job.input_range,
                                "chunked": True, "domain": job.domain, **(record or {})}}
    source = volume[None] if flat else volume
    cz = int(chunk_slices or default_chunk_slices(source.shape))
    work = SlabWork(source, ModelRef(model_dir, preset), scratch="", out="", steps=job.steps, eps=eps, seed=seed,
                    stochastic=stochastic, input_range=job.input_range, z_upscale=not flat, dtype=np.dtype(dtype).str,
                    flat=flat)
    with dask_scheduler(workers, scheduler, processes) as client:
        prepare_workers(client, work.ref, own_cluster=not scheduler and processes)
        try:
            return write_enhanced(out_path, work, cz, job.voxel_size_nm / 2.0, extra, client=client,
                                  progress=progress)
        except NonFiniteInputError as err:  # nothing was kept (the write is atomic): name the file
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
