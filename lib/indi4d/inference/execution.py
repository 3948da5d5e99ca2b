"""Where the slab tasks run: this process, a LocalCluster of pinned workers, or a running cluster; with progress.

:func:`dask_scheduler` gives a ``distributed.Client`` (or None for this
process); :func:`prepare_workers` pins each worker's threads to its cores and
loads the network there before any slab; :func:`run_slabs` runs the two tasks
of every slab (:mod:`indi4d.inference.slabs`), a slab's z step as soon as the
xy steps it reads are done, and moves a progress bar per slab written (LQ
voxels per second, time left).

The client submits every task itself, with no futures as arguments: a task
reads its inputs from the stores, so no worker ever sends data to another
(the task stream of ``benchmarks/scale.py`` shows no transfers).
"""

import contextlib
import os
import sys

from ..book.timings import cpu_count
from .slabs import ModelRef


@contextlib.contextmanager
def dask_scheduler(workers=1, scheduler=None, processes=True):
    """Where the slabs run: an existing cluster, a LocalCluster of ``workers``, or this process.

    Yields a ``distributed.Client``, or None (the slabs run one after the
    other in this process, TensorFlow using every core inside each call).

    * ``scheduler="tcp://host:8786"``: a running dask.distributed scheduler,
      e.g. one started on SLURM with dask-jobqueue::

          from dask_jobqueue import SLURMCluster
          cluster = SLURMCluster(cores=8, processes=1, memory="64GB", walltime="04:00:00",
                                 job_extra_directives=["--gres=gpu:1"])
          cluster.scale(jobs=4)          # 4 SLURM jobs, one worker each
          print(cluster.scheduler_address)   # pass it as --scheduler / scheduler=

      (every worker needs indi4d installed and the model folder, the input
      and the output's folder on a shared file system: tasks read and write
      the stores themselves).
    * ``workers > 1``: a ``LocalCluster`` of that many single-threaded worker
      processes (``processes=False``: threads of this process), each later
      pinned to its share of the cores by :func:`prepare_workers`.
    """
    if scheduler:
        from distributed import Client

        with Client(scheduler) as client:
            yield client
    elif workers and int(workers) > 1:
        from distributed import Client, LocalCluster

        share = str(max(1, cpu_count() // int(workers)))
        # set before each worker starts, so that TensorFlow's and OpenMP's pools are made this size
        env = {"TF_NUM_INTRAOP_THREADS": share, "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": share}
        with LocalCluster(n_workers=int(workers), threads_per_worker=1, processes=processes,
                          dashboard_address=None, **({"env": env} if processes else {})) as cluster, \
                Client(cluster) as client:
            yield client
    else:
        yield None


def core_shares(workers, cores=None):
    """Split ``cores`` (default: this process's) into ``workers`` disjoint, near-equal sets (round robin)."""
    cores = sorted(os.sched_getaffinity(0)) if cores is None else sorted(cores)
    return [set(cores[i::workers]) for i in range(workers)] if workers <= len(cores) else [set(cores)] * workers


def pin_worker(cores=None, tasks=1):
    """Pin this worker process to ``cores`` and size TensorFlow's thread pools to them.

    Every thread of the process gets the affinity (threads started later
    inherit it); TensorFlow gets one intra-op thread per core and ``tasks``
    inter-op threads (the tasks the worker runs at once). Must run before
    TensorFlow starts its runtime: later, its pools keep their size.

    Parameters
    ----------
    cores : set of int, optional
        CPU ids; None keeps the process's affinity (a worker of a cluster
        that placed it: e.g. a SLURM job's cores).
    tasks : int
        Threads of the dask worker.

    Returns
    -------
    int
        The intra-op threads TensorFlow got, or 0 when its runtime was already started.
    """
    if cores:
        for tid in os.listdir("/proc/self/task"):
            with contextlib.suppress(OSError):  # a thread that ended meanwhile
                os.sched_setaffinity(int(tid), cores)
    threads = max(1, cpu_count())
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, int(tasks)))
    except RuntimeError:  # the runtime is up (the worker ran TensorFlow before): its pools stay
        return 0
    return threads


def _load_model(ref):
    ref.get()


def prepare_workers(client, ref, own_cluster=False):
    """Pin every worker process of ``client`` and load the network there, all in parallel, before any slab.

    Workers of a LocalCluster made here (``own_cluster``) each get their share
    of this machine's cores (:func:`core_shares`); workers of another cluster
    keep the cores it gave them and only size TensorFlow's pools to them.
    Workers that are threads of this process are not pinned. Without this,
    each worker imports TensorFlow and builds the network when its first slab
    arrives, and the workers that start late hold up the others. No-op
    without a client or for an enhancer object (threads of this process).
    """
    if client is None or ref.model_dir is None:
        return
    workers = sorted(client.scheduler_info()["workers"].items())
    pids = client.run(os.getpid)
    shares = core_shares(len(workers)) if own_cluster else [None] * len(workers)
    for share, (address, info) in zip(shares, workers):
        if pids.get(address) != os.getpid():
            client.run(pin_worker, share, info.get("nthreads", 1), workers=[address])
    client.run(_load_model, ref)


def progress_bar(total, enabled, desc="enhancing"):
    """A tqdm bar counting LQ voxels: the rate in voxels per second and the time left."""
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="vox", unit_scale=True, file=sys.stderr,
                smoothing=0.1)


def _ready(pending, done):
    """The pending slabs whose z step can run: every slab it reads has its xy output written."""
    ready = [slab for slab in pending if all(j in done for j in slab.needs)]
    for slab in ready:
        pending.remove(slab)
    return ready


def run_slabs(work, slabs, client=None, progress=True):
    """Run the xy then z task of every slab of ``work``, on ``client`` or in this process.

    A slab's z task runs as soon as the xy tasks it reads are done, before
    the xy tasks still queued, so the bar moves slab by slab from the start.

    Parameters
    ----------
    work : indi4d.inference.slabs.SlabWork
    slabs : list of indi4d.inference.slabs.Slab
    client : distributed.Client, optional
    progress : bool

    Raises
    ------
    Exception
        The first task's error (the remaining tasks are cancelled).
    """
    per_slice = work.shape[1] * work.shape[2]
    pending = list(slabs)
    with progress_bar(per_slice * work.shape[0], progress) as bar:
        if client is None:
            done = set()
            for slab in slabs:
                done.add(work.xy(slab))
                for ready in _ready(pending, done):
                    work.z(ready)
                    bar.update(per_slice * (ready.stop - ready.start))
            return
        _run_on_cluster(work, slabs, pending, client, bar, per_slice)


def _run_on_cluster(work, slabs, pending, client, bar, per_slice):
    """:func:`run_slabs` on a dask.distributed client: the client submits each z task when its slabs are done."""
    from distributed import as_completed

    done = set()
    xy = {client.submit(work.xy, slab, pure=False, priority=0): slab for slab in slabs}
    futures, z = as_completed(xy), []
    try:
        for future in futures:
            index = future.result()  # the task's own error is raised here
            if future in xy:
                done.add(index)
                for ready in _ready(pending, done):
                    z.append(client.submit(work.z, ready, pure=False, priority=1))
                    futures.add(z[-1])
            else:
                slab = slabs[index]
                bar.update(per_slice * (slab.stop - slab.start))
    except BaseException:
        client.cancel(list(xy) + z)
        raise
