"""Volumes at scale: 1 and 2 single-core workers at the stored N and N = 10, where the time goes, memory, estimates.

Run from the repository root (the HTML reports need bokeh: ``pip install -e ".[bench]"``)::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/scale.py --model runs/default/model --preset default

Every measurement runs in a fresh subprocess (``--child``), so peak RSS
(``resource.getrusage`` in the child) is that run's alone, and the timed call
is :func:`indi4d.inference.enhance_chunked` (zarr in, zarr out), what
``indi4d enhance`` runs, with its input checks done before the clock.

* Throughput, at the model's stored N and at N = 10, on one volume of many
  slabs per worker, each run after a warm-up that loads TensorFlow and the
  network in every process and traces it:

  - ``in_process``: ``--workers 1`` (no dask.distributed), the process pinned to
    one core and TensorFlow to one thread;
  - ``cluster_1``, ``cluster_2``: a LocalCluster of 1 or 2 worker processes,
    each pinned to its own core with one TensorFlow thread, driven through
    ``enhance_chunked(scheduler=ADDRESS)``. These two runs record dask's
    ``performance_report`` (HTML, ``--reports``) and the task stream, from which
    the time is split into compute per task kind, transfers between workers,
    and idle worker time (scheduling, waiting on dependencies, the imbalance
    at the end); start-up (cluster, model load and trace) is timed apart.

  Goal (:func:`speed_up_goal`): ``cluster_2`` >= 1.8x ``cluster_1`` (one
  single-core worker), or ``in_process`` where ``cluster_1`` was not run (N = 10:
  it would double the time), at both N; both ratios are recorded.
* Peak RSS for two volumes 8x apart in z with the default slabs, one process
  on every core. Goal: within 1.3x of each other.
* Hours for 512^3 and 2048^3 LQ volumes at each N, from the measured seconds
  per LQ voxel of ``cluster_2`` (2 cores) and of one worker (each added worker
  adds one worker's throughput times the measured 2-worker efficiency).

On a shared machine, ``--pause-pgid PGID`` stops a long background job
(e.g. a training study) during each measurement only, and ``--wait-quiet S``
first waits up to S s for other processes to go idle; each result records the
wait and the CPU time other processes still used while it was timed.

Without ``--model`` a tiny random-weight network is built in a temporary
folder (the plumbing's cost only). Writes ``benchmarks/results/scale.json``
(atomically; ``--section`` writes one key of it, keeping the others).
"""

import argparse
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1", "OMP_NUM_THREADS": "1"}


def tiny_model(folder):
    """A model folder with the tiny network (random weights), its normalisation and LQ provenance."""
    import numpy as np

    from indi4d.core import preprocess
    from indi4d.core.model import PRESETS, build_unet
    from indi4d.training import save_model

    folder.mkdir(parents=True, exist_ok=True)
    net = dict(PRESETS["tiny"])
    save_model(build_unet(**net, seed=0), folder / "model.keras")
    config = {"network": net, "training": {"eps": 0.0}, "lq_voxel_size_nm": 100.0, "lq_dtype": "uint16"}
    (folder / "config.json").write_text(json.dumps(config))
    grey = np.linspace(0, 60000, 100)
    norm = {k: preprocess.fit_normalisation(grey, method="none") for k in ("lq", "hq")}
    (folder / "normalisation.json").write_text(json.dumps(norm))
    return folder


def write_scan(path, shape, seed=0):
    """A uint16 scan of grey values in the training range, (Z, Y, X), as a zarr store."""
    import numpy as np

    from indi4d.io import write_volume

    vol = np.random.default_rng(seed).integers(15000, 33000, shape).astype(np.uint16)
    write_volume(path, vol, voxel_size_nm=100)
    return path


def pin_this_process(cores):
    """Pin every thread of this process to ``cores`` (threads started later inherit it): a one-core worker."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cores)


def busy_cpu_s():
    """CPU seconds the whole machine has been busy since boot (every process, niced ones too)."""
    import psutil

    times = psutil.cpu_times()
    return times.user + times.nice + times.system + times.irq + times.softirq


@contextlib.contextmanager
def other_load(record):
    """Record in ``record`` the CPU time that processes outside this one and its children used meanwhile.

    What else ran on the machine during a timed run: system-wide busy CPU
    seconds minus this process tree's (a second developer's tests, a notebook).
    """
    import psutil

    def tree_cpu():
        me, total = psutil.Process(), 0.0
        for proc in [me] + me.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                total += times.user + times.system
        return total

    b0, c0, w0 = busy_cpu_s(), tree_cpu(), time.perf_counter()
    yield record
    other = max(0.0, (busy_cpu_s() - b0) - (tree_cpu() - c0))
    record.update(other_processes_cpu_s=other, other_processes_cores=other / (time.perf_counter() - w0))


def time_budget(records, t0, t1, workers):
    """Where the worker time of a timed run went, from dask's task stream.

    Parameters
    ----------
    records : list of dict
        ``get_task_stream(...).data``: one entry per task with ``key`` and
        ``startstops`` (``action`` in compute / transfer / disk-*, ``start``,
        ``stop`` in seconds since the epoch).
    t0, t1 : float
        The timed call's start and end (``time.time()``).
    workers : int

    Returns
    -------
    dict
        Seconds of compute per task kind, of transfers, of idle worker time
        (``workers * (t1 - t0)`` minus busy time: scheduling, waiting on
        dependencies, imbalance), and the client's time before the first and
        after the last task.
    """
    from dask.utils import key_split

    compute, other, edges = {}, {}, []
    for rec in records:
        for ss in rec["startstops"]:
            seconds = ss["stop"] - ss["start"]
            edges += [ss["start"], ss["stop"]]
            if ss["action"] == "compute":
                kind = key_split(rec["key"])
                compute[kind] = compute.get(kind, 0.0) + seconds
            else:
                other[ss["action"]] = other.get(ss["action"], 0.0) + seconds
    worker_s = workers * (t1 - t0)
    busy = sum(compute.values()) + sum(other.values())
    return {"worker_seconds": worker_s, "compute_s": sum(compute.values()), "compute_by_task_s": compute,
            "transfer_s": other.get("transfer", 0.0), "other_actions_s": other, "idle_s": worker_s - busy,
            "idle_fraction": (worker_s - busy) / worker_s, "tasks": len(records),
            "client_before_first_task_s": (min(edges) - t0) if edges else None,
            "client_after_last_task_s": (t1 - max(edges)) if edges else None}


def child(spec):
    """One measurement in this fresh process; prints a JSON line."""
    import resource

    import numpy as np

    if spec.get("cores"):
        pin_this_process(sorted(os.sched_getaffinity(0))[: spec["cores"]])
    from indi4d.inference import check_enhance_input, enhance_chunked, enhance_volume, load_enhancer
    from indi4d.io import read_volume

    result, out = {}, Path(spec["out"])
    # force: the random test scan is far from the training scan's domain, which is not what is measured
    options = {"preset": spec["preset"], "chunk_slices": spec.get("chunk_slices"), "progress": False, "force": True}
    if spec["mode"] == "in-memory":
        volume, _ = read_volume(spec["input"])
        start = time.perf_counter()
        enhance_volume(volume, load_enhancer(spec["model"], preset=spec["preset"]), spec["steps"], progress=False)
        result["seconds"] = time.perf_counter() - start
    elif spec["mode"] == "in-process":
        if spec.get("warm"):
            start = time.perf_counter()
            enhance_chunked(spec["warm"], out.with_name(out.stem + "-warm.zarr"), spec["model"], steps=spec["steps"],
                            **dict(options, chunk_slices=1))
            result["start_up_s"] = time.perf_counter() - start
        job = check_enhance_input(spec["input"], out, spec["model"], steps=spec["steps"], force=True)
        with other_load(result):
            start = time.perf_counter()
            enhance_chunked(spec["input"], out, spec["model"], steps=spec["steps"], job=job, **options)
            result["seconds"] = time.perf_counter() - start
    else:
        result.update(cluster_run(spec, out, options))
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result["lq_voxels"] = int(np.prod(spec["shape"]))
    print("RESULT " + json.dumps(result), flush=True)


def cluster_run(spec, out, options):
    """A LocalCluster of one-core workers: start-up, then the timed run with its report and task stream."""
    from distributed import Client, LocalCluster, get_task_stream, performance_report

    from indi4d.inference import check_enhance_input, enhance_chunked

    workers, result = spec["workers"], {}
    start = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=ONE_THREAD) as cluster, Client(cluster) as client:
        cores = sorted(os.sched_getaffinity(0))
        for i, address in enumerate(sorted(client.scheduler_info()["workers"])):
            client.run(pin_this_process, [cores[i % len(cores)]], workers=[address])
        result["cluster_start_s"] = time.perf_counter() - start
        options = dict(options, scheduler=cluster.scheduler_address)
        start = time.perf_counter()  # every worker imports TensorFlow, loads the network and traces it
        enhance_chunked(spec["warm"], out.with_name(out.stem + "-warm.zarr"), spec["model"], steps=spec["steps"],
                        **dict(options, chunk_slices=1))
        result["warm_up_s"] = time.perf_counter() - start
        job = check_enhance_input(spec["input"], out, spec["model"], steps=spec["steps"], force=True)
        drawable = importlib.util.find_spec("bokeh") is not None  # performance_report draws with bokeh
        report = performance_report(filename=spec["report"]) if spec.get("report") and drawable else \
            contextlib.nullcontext()
        with report, get_task_stream(client) as stream, other_load(result):
            t0 = time.time()
            enhance_chunked(spec["input"], out, spec["model"], steps=spec["steps"], job=job, **options)
            t1 = time.time()
        result["seconds"] = t1 - t0
        result["time_budget"] = time_budget(stream.data, t0, t1, workers)
        result["chunk_sweep"] = [chunk_run(spec, out, dict(options, chunk_slices=cz), job, client)
                                 for cz in spec.get("sweep", [])]
    return result


def chunk_run(spec, out, options, job, client):
    """One timed run at another slab size on the warm cluster: seconds, and the split of the worker time."""
    from distributed import get_task_stream

    from indi4d.inference import enhance_chunked

    with get_task_stream(client) as stream:
        t0 = time.time()
        enhance_chunked(spec["input"], out.with_name(f"sweep-{options['chunk_slices']}.zarr"), spec["model"],
                        steps=spec["steps"], job=job, **options)
        t1 = time.time()
    budget = time_budget(stream.data, t0, t1, spec["workers"])
    return {"chunk_slices": options["chunk_slices"], "seconds": t1 - t0, "tasks": budget["tasks"],
            "seconds_per_xy_task": budget["compute_by_task_s"].get("xy", 0.0) / max(1, budget["tasks"] / 2),
            "compute_by_task_s": budget["compute_by_task_s"], "idle_s": budget["idle_s"]}


@contextlib.contextmanager
def paused(pgid):
    """The process group ``pgid`` (a long background job) stopped for the duration, always resumed."""
    if pgid:
        os.killpg(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        if pgid:
            os.killpg(pgid, signal.SIGCONT)


def busy_cores(seconds):
    """Cores the whole machine kept busy over ``seconds`` (this process sleeping meanwhile)."""
    b0, t0 = busy_cpu_s(), time.perf_counter()
    time.sleep(seconds)
    return (busy_cpu_s() - b0) / (time.perf_counter() - t0)


def wait_for_quiet(pgid, limit_s, threshold=0.25):
    """Wait until the machine, ``pgid`` paused, is idle (< ``threshold`` busy cores), at most ``limit_s``.

    Returns ``(seconds waited, busy cores at the last look)``: a measurement
    taken while others still ran says so in its result.
    """
    start = time.perf_counter()
    while True:
        with paused(pgid):
            load = busy_cores(3.0)
        waited = time.perf_counter() - start
        if load < threshold or waited >= limit_s:
            return waited, load
        time.sleep(15.0)  # the paused job runs meanwhile


def measure(spec, work, pgid=None, quiet_s=0.0):
    """Run :func:`child` in a fresh interpreter, ``pgid`` paused; returns its result dict.

    With ``quiet_s`` it first waits (up to that long) for other processes to go idle.
    """
    name = f"out_{spec['mode']}_{spec.get('workers', 1)}_{spec['steps']}_{spec['shape'][0]}.zarr"
    spec = dict(spec, out=str(work / name))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", **(ONE_THREAD if spec.get("cores") == 1 else {}))
    waited, load = wait_for_quiet(pgid, quiet_s) if quiet_s else (0.0, None)
    with paused(pgid):
        proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True,
                              text=True, env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"measurement {spec} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1][7:]), waited_for_quiet_s=waited, busy_cores_before=load,
                **{k: spec.get(k) for k in ("mode", "workers", "shape", "steps")})


def throughput(run):
    """Seconds and voxel rates of one timed run."""
    return {"seconds": run["seconds"], "lq_voxels_per_s": run["lq_voxels"] / run["seconds"],
            "output_voxels_per_s": 8 * run["lq_voxels"] / run["seconds"],
            **{k: run[k] for k in ("time_budget", "cluster_start_s", "warm_up_s", "start_up_s", "other_processes_cpu_s",
                                   "other_processes_cores", "waited_for_quiet_s", "busy_cores_before") if k in run}}


def throughput_at(steps, base, scan, warm, work, reports, tag, sweep=(), cluster_1=True, quiet=None):
    """The throughput runs at ``steps`` (and the slab-size sweep on 2 workers); speed-ups and the goal.

    ``cluster_1`` False skips the 1-worker cluster (it only splits dask's own
    cost from the in-process run, and at N = 10 it would double the time).
    ``quiet``: keyword arguments of :func:`measure` (the job to pause, the wait for quiet).
    """
    quiet = quiet or {}
    runs = {"in_process": measure(dict(base, mode="in-process", cores=1, steps=steps, input=str(scan),
                                       warm=str(warm)), work, **quiet)}
    for workers in (1, 2) if cluster_1 else (2,):
        report = str(reports / f"scale-report-{tag}{workers}w-n{steps}.html") if reports else None
        runs[f"cluster_{workers}"] = measure(dict(base, mode="cluster", workers=workers, steps=steps, input=str(scan),
                                                  warm=str(warm), report=report,
                                                  sweep=list(sweep) if workers == 2 else []), work, **quiet)
    for key, run in runs.items():
        print(f"N = {steps}, {key}: {run['seconds']:.1f} s", file=sys.stderr)
    sweep_runs = runs["cluster_2"].pop("chunk_sweep", [])
    ratio = runs["in_process"]["seconds"] / runs["cluster_2"]["seconds"]
    return {"steps": steps, "shape": base["shape"], **{k: throughput(v) for k, v in runs.items()},
            "ratio_2_workers_over_in_process": ratio,
            "ratio_2_workers_over_1_worker_cluster": runs["cluster_1"]["seconds"] / runs["cluster_2"]["seconds"]
            if cluster_1 else None,
            "met_vs_in_process": ratio >= 1.8,
            **({"chunk_sweep_2_workers": sweep_runs} if sweep_runs else {})}


def speed_up_goal(throughput):
    """The goal at each N: 2 single-core workers >= 1.8x one single-core worker.

    Judged against the 1-worker cluster where it was measured (one
    single-core dask worker, the goal's own terms), else against this process
    on one core (a stricter baseline: no dask.distributed costs); both ratios
    are given.
    """
    out = {}
    for key, entry in throughput.items():
        vs_worker = entry.get("ratio_2_workers_over_1_worker_cluster")
        vs_process = entry["ratio_2_workers_over_in_process"]
        judged = vs_worker if vs_worker is not None else vs_process
        out[key] = {"vs_one_single_core_worker": vs_worker, "vs_this_process_on_one_core": vs_process,
                    "judged_on": "1-worker cluster" if vs_worker is not None else "this process on one core",
                    "goal": ">= 1.8", "met": judged >= 1.8}
    return out


def extrapolate(entry):
    """Hours for 512^3 and 2048^3 LQ voxels at this N: on 2 cores, and what each added worker brings."""
    per_voxel_2 = 1.0 / entry["cluster_2"]["lq_voxels_per_s"]
    one = entry["in_process"]["lq_voxels_per_s"]
    efficiency = entry["ratio_2_workers_over_in_process"] / 2
    out = {"steps": entry["steps"], "lq_voxels_per_s_one_worker": one, "efficiency_per_worker": efficiency}
    for side in (512, 2048):
        voxels = side**3
        out[f"lq_{side}_cubed_hours_2_cores"] = voxels * per_voxel_2 / 3600
        out[f"lq_{side}_cubed_hours_by_workers"] = {w: voxels / (one * (1 if w == 1 else w * efficiency)) / 3600
                                                    for w in (1, 2, 4, 8, 16)}
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: a tiny random network)")
    parser.add_argument("--preset", default="tiny", help="tiling preset of load_enhancer")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="N of the timed runs (default: stored, 10)")
    parser.add_argument("--throughput-shape", type=int, nargs=3, default=[128, 256, 256], metavar=("Z", "Y", "X"),
                        help="volume of the runs at the stored N")
    parser.add_argument("--n10-slices", type=int, default=32, help="z size of the volume of the N = 10 runs")
    parser.add_argument("--sweep", type=int, nargs="*", default=[2, 4, 16],
                        help="slab sizes (LQ slices) also timed on 2 workers at the stored N")
    parser.add_argument("--chunk-slices", type=int, default=None, help="LQ slices per slab (default: the library's)")
    parser.add_argument("--memory-slices", type=int, nargs=2, default=[8, 64], metavar=("Z1", "Z2"))
    parser.add_argument("--memory-xy", type=int, default=128, help="slice side of the memory runs")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--reports", default=str(RESULTS.parent), help="folder of the HTML reports ('' for none)")
    parser.add_argument("--tag", default="", help="prefix of the report names, e.g. 'before-'")
    parser.add_argument("--section", default=None, help="write only this key of the JSON (e.g. 'before')")
    parser.add_argument("--note", default="", help="what else ran on the machine")
    parser.add_argument("--pause-pgid", type=int, default=None,
                        help="process group of a long background job to stop during each measurement (resumed after)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                        help="before each measurement, wait up to S s for other processes to go idle")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))

    from indi4d.model_folder import default_steps

    started = time.time()
    reports = Path(args.reports) if args.reports else None
    with tempfile.TemporaryDirectory(prefix="indi4d-scale-") as tmp:
        work = Path(tmp)
        model = Path(args.model) if args.model else tiny_model(work / "model")
        stored_n = default_steps(model)
        base = {"model": str(model), "preset": args.preset, "chunk_slices": args.chunk_slices}
        found = {"stored_n": stored_n, "runs": [], "memory": []}
        quiet = {"pgid": args.pause_pgid, "quiet_s": args.wait_quiet}
        for z in [] if args.no_memory else args.memory_slices:
            mshape = [z, args.memory_xy, args.memory_xy]
            mscan = write_scan(work / f"memory_{z}.zarr", mshape, seed=1)
            found["memory"].append(measure(dict(base, mode="in-process", shape=mshape, input=str(mscan),
                                                steps=stored_n, chunk_slices=None), work, **quiet))
            print(f"memory {mshape}: {found['memory'][-1]['peak_rss_mib']:.0f} MiB", file=sys.stderr)
        shape = list(args.throughput_shape)
        # two one-slice slabs: every worker loads TensorFlow and traces the network on this slice shape
        warm = write_scan(work / "warm.zarr", [2] + shape[1:], seed=2)
        for n in args.steps or sorted({stored_n, 10}):  # N = 10 on a shorter volume: the same slabs, fewer
            n_shape = shape if n == stored_n else [min(shape[0], args.n10_slices)] + shape[1:]
            scan = write_scan(work / f"throughput_{n_shape[0]}.zarr", n_shape)
            found["runs"].append(throughput_at(n, dict(base, shape=n_shape), scan, warm, work, reports, args.tag,
                                               sweep=args.sweep if n == stored_n else (), cluster_1=n == stored_n,
                                               quiet=quiet))
            save(args, started, found, reports)  # what is measured so far survives a run cut short
    print(json.dumps(save(args, started, found, reports), indent=2))
    return 0


def save(args, started, found, reports):
    """Write the results measured so far (``--out``, or its ``--section`` key); returns what was written."""
    from indi4d.files import read_json, write_json
    from indi4d.machine import machine_record

    runs, memory = found["runs"], found["memory"]
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds_total": time.time() - started,
        "machine": machine_record(),
        "note": args.note, "model": str(args.model) if args.model else "tiny random-weight network: plumbing only",
        "preset": args.preset, "stored_n": found["stored_n"], "chunk_slices": args.chunk_slices or "library default",
        "throughput": {f"n_{r['steps']}": r for r in runs},
        "speed_up_goal": speed_up_goal({f"n_{r['steps']}": r for r in runs}),
        "reports": sorted(p.name for p in reports.glob(f"scale-report-{args.tag}*.html")) if reports else [],
        "extrapolation": {f"n_{r['steps']}": extrapolate(r) for r in runs},
    }
    if len(memory) == 2:
        rss_ratio = memory[1]["peak_rss_mib"] / memory[0]["peak_rss_mib"]
        results["memory"] = {"runs": [{k: m[k] for k in ("shape", "peak_rss_mib", "seconds")} for m in memory],
                             "size_ratio": memory[1]["lq_voxels"] / memory[0]["lq_voxels"], "rss_ratio": rss_ratio,
                             "goal": "<= 1.3", "met": rss_ratio <= 1.3}
    whole = read_json(args.out) if Path(args.out).exists() else {}
    if args.section:
        results = dict(whole, **{args.section: results})
    else:  # a section measured apart (e.g. 'before', the library before a change) is kept
        results = dict(results, benchmark="scale", **{k: v for k, v in whole.items() if k == "before"})
    write_json(args.out, results)
    return results


if __name__ == "__main__":
    sys.exit(main())
