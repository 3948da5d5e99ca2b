"""Volumes at scale: throughput with 1 and 2 dask workers, peak memory against volume size, a 2048^3 estimate.

Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/scale.py [--model MODEL_DIR] [--steps N] ...

Every measurement runs in a fresh subprocess (``--child``), so peak RSS
(``resource.getrusage`` in the child) is that run's alone. The enhancement is
the library's chunked path (:func:`indi4d.inference.enhance_lazy` written by
:func:`indi4d.inference.write_lazy`, zarr in and out), i.e. what
``indi4d enhance`` runs.

* Throughput: one volume enhanced with 1 worker (the local threaded
  scheduler) and with a LocalCluster of 2 worker processes, each given one
  core (TensorFlow's thread pools set to one thread); each child first
  enhances one small chunk to load TensorFlow and the model in every worker,
  then times the volume. Goal: ratio >= 1.8, i.e. a second worker on a
  second core nearly doubles the throughput. The 1-worker run with every
  core (what ``indi4d enhance`` does by default) is timed too: on a machine
  with as many cores as workers it is the practical comparison, and no
  worker count can beat it by much there.
* Peak RSS for two volumes 8x apart in z (same slices, same chunks). Goal:
  within 1.3x of each other (memory bounded by the chunk, not the volume).
  The in-memory :func:`indi4d.inference.enhance_volume` of the larger volume
  is measured beside it for comparison.
* The time of a 512^3 LQ volume at the model's stored N, extrapolated from the
  1-worker throughput (time per LQ voxel per step), and of a 2048^3 one (64x).

Without ``--model`` a tiny random-weight network is built in a temporary
folder (the plumbing's cost, not the real network's): pass a trained model
folder (e.g. ``runs/default/model``) for real numbers. Writes
``benchmarks/results/scale.json`` (atomically).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"


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
    import numpy as np

    from indi4d.io import write_volume

    vol = np.random.default_rng(seed).integers(1000, 50000, shape).astype(np.uint16)
    write_volume(path, vol, voxel_size_nm=100)
    return path


def child(spec):
    """One measurement in this fresh process; prints a JSON line."""
    import resource

    import numpy as np

    from indi4d.inference import dask_scheduler, enhance_lazy, enhance_volume, load_enhancer, write_lazy
    from indi4d.inference.chunked import ModelRef, preload_model
    from indi4d.io import open_volume_lazy, read_volume

    out = Path(spec["out"])
    result = {}
    if spec["mode"] == "in-memory":
        volume, _ = read_volume(spec["input"])
        start = time.perf_counter()
        enhance_volume(volume, load_enhancer(spec["model"], preset=spec["preset"]), spec["steps"], progress=False)
        result["seconds"] = time.perf_counter() - start
    else:
        with dask_scheduler(spec["workers"], processes=True) as client:
            volume, _ = open_volume_lazy(spec["input"])
            ref = ModelRef(spec["model"], spec["preset"])
            if spec.get("warm_up"):
                # every worker loads TensorFlow and the model, then traces the network on one chunk, before the clock
                preload_model(client, ref)
                warm = enhance_lazy(volume[: spec["chunk_slices"] * spec["workers"]], ref, 1,
                                    preset=spec["preset"], chunk_slices=spec["chunk_slices"], dtype=volume.dtype)
                write_lazy(out.with_name("warm.zarr"), warm, 50.0, {}, client=client, progress=False)
            start = time.perf_counter()
            lazy = enhance_lazy(volume, ref, spec["steps"], preset=spec["preset"],
                                chunk_slices=spec["chunk_slices"], dtype=volume.dtype)
            write_lazy(out, lazy, 50.0, {}, client=client, progress=False)
            result["seconds"] = time.perf_counter() - start
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    result["lq_voxels"] = int(np.prod(spec["shape"]))
    print("RESULT " + json.dumps(result), flush=True)


def measure(spec, work):
    """Run :func:`child` in a fresh interpreter; returns its result dict."""
    threads = spec.get("threads")
    spec = dict(spec, out=str(work / f"out_{spec['mode']}_{spec['workers']}_{threads}_{spec['shape'][0]}.zarr"))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    if threads:  # the cores one worker may use (a LocalCluster's workers get their share from the library)
        env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS="1", OMP_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env=env, cwd=ROOT)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"measurement {spec} failed:\n{proc.stderr[-3000:]}")
    return dict(json.loads(lines[-1][7:]), **{k: spec[k] for k in ("mode", "workers", "shape", "steps")})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: a tiny random network)")
    parser.add_argument("--preset", default="tiny", help="tiling preset of load_enhancer")
    parser.add_argument("--steps", type=int, default=2, help="InDI steps of the timed runs")
    parser.add_argument("--throughput-shape", type=int, nargs=3, default=[32, 96, 96], metavar=("Z", "Y", "X"))
    parser.add_argument("--memory-slices", type=int, nargs=2, default=[8, 64], metavar=("Z1", "Z2"),
                        help="z sizes of the two memory runs (8x apart by default)")
    parser.add_argument("--memory-xy", type=int, default=128, help="slice side of the memory runs")
    parser.add_argument("--chunk-slices", type=int, default=8)
    parser.add_argument("--no-in-memory", action="store_true", help="skip the in-memory comparison")
    parser.add_argument("--note", default="", help="a note stored in the JSON (e.g. the machine was loaded)")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(json.loads(args.child))

    from indi4d.files import write_json
    from indi4d.model_folder import default_steps

    started = time.time()
    with tempfile.TemporaryDirectory(prefix="indi4d-scale-") as tmp:
        work = Path(tmp)
        model = Path(args.model) if args.model else tiny_model(work / "model")
        base = {"model": str(model), "preset": args.preset, "steps": args.steps, "chunk_slices": args.chunk_slices}
        shape = list(args.throughput_shape)
        scan = write_scan(work / "throughput.zarr", shape)
        runs = {}
        for key, workers, threads in (("1_core", 1, 1), (2, 2, None), (1, 1, None)):
            runs[key] = measure(dict(base, mode="chunked", workers=workers, threads=threads, shape=shape,
                                     input=str(scan), warm_up=True), work)
            cores = threads or ("its share of the" if workers > 1 else "all")
            print(f"{workers} worker(s), {cores} core(s) each: {runs[key]['seconds']:.1f} s", file=sys.stderr)
        memory = []
        for z in args.memory_slices:
            mshape = [z, args.memory_xy, args.memory_xy]
            mscan = write_scan(work / f"memory_{z}.zarr", mshape, seed=1)
            memory.append(measure(dict(base, mode="chunked", workers=1, shape=mshape, input=str(mscan), steps=1),
                                  work))
            print(f"memory {mshape}: {memory[-1]['peak_rss_mib']:.0f} MiB", file=sys.stderr)
        in_memory = None
        if not args.no_in_memory:
            in_memory = measure(dict(base, mode="in-memory", workers=1, shape=memory[-1]["shape"], steps=1,
                                     input=str(work / f"memory_{args.memory_slices[-1]}.zarr")), work)
        stored_n = default_steps(model)

    def throughput(run):
        return {"seconds": run["seconds"], "lq_voxels_per_s": run["lq_voxels"] / run["seconds"],
                "output_voxels_per_s": 8 * run["lq_voxels"] / run["seconds"]}

    ratio = runs["1_core"]["seconds"] / runs[2]["seconds"]  # one core per worker: how the work scales
    rss_ratio = memory[1]["peak_rss_mib"] / memory[0]["peak_rss_mib"]
    per_voxel_step = runs[1]["seconds"] / (runs[1]["lq_voxels"] * args.steps)
    t512 = per_voxel_step * 512**3 * stored_n
    results = {
        "benchmark": "scale", "date": time.strftime("%Y-%m-%d %H:%M:%S"), "seconds_total": time.time() - started,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "note": args.note,
        "model": str(args.model) if args.model else "tiny random-weight network (PRESETS['tiny']): plumbing cost only",
        "preset": args.preset, "steps": args.steps, "chunk_slices": args.chunk_slices,
        "throughput": {"shape": shape, "workers_1": throughput(runs["1_core"]), "workers_2": throughput(runs[2]),
                       "ratio_2_over_1": ratio, "goal": ">= 1.8", "met": ratio >= 1.8,
                       "cores_per_worker": 1,
                       "workers_1_all_cores": throughput(runs[1]),
                       "ratio_2_workers_over_1_worker_all_cores": runs[1]["seconds"] / runs[2]["seconds"]},
        "memory": {"runs": [{"shape": m["shape"], "peak_rss_mib": m["peak_rss_mib"], "seconds": m["seconds"]}
                            for m in memory],
                   "size_ratio": memory[1]["lq_voxels"] / memory[0]["lq_voxels"],
                   "rss_ratio": rss_ratio, "goal": "<= 1.3", "met": rss_ratio <= 1.3,
                   "in_memory_enhance_volume": None if in_memory is None else
                   {"shape": in_memory["shape"], "peak_rss_mib": in_memory["peak_rss_mib"]}},
        "extrapolation": {"stored_n": stored_n, "seconds_per_lq_voxel_per_step_1_worker": per_voxel_step,
                          "lq_512_cubed_hours": t512 / 3600, "lq_2048_cubed_hours": 64 * t512 / 3600,
                          "how": "1-worker time per LQ voxel per step x voxels x stored N (linear in both)"},
    }
    write_json(args.out, results)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
