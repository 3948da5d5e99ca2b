"""Image quality of InDI against bicubic, HQ, the CNN and GAN baselines, and the truth.

Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/quality.py [--run-dir runs/default] [--preset default]

It reuses what the run folder already holds (chapters 01-05 write the same
artifacts) and produces the rest with the chapters' library functions:
simulated data (:func:`indi4d.data.simulated_dataset`), registered pairs
(:func:`indi4d.registration.register_scans`), the InDI model
(:func:`indi4d.training.train_indi`), the baselines at InDI's budget and the
whole evaluation of chapter 05 (:func:`indi4d.evaluation.evaluate_run`).

Writes ``benchmarks/results/quality.json`` (atomically) with every method's
metrics against HQ and against the truth, the step sweep and the chosen N, the
uncertainty correlation, and the project's goals, each with its measured
value, target and pass/fail:

* InDI FWHM <= 0.9 x HQ's and <= 0.45 x LQ's;
* InDI CNR >= 1.2 x HQ's;
* InDI SIFT congruent points (vs HQ) >= 2 x LQ's;
* InDI PSNR vs truth >= bicubic + 3 dB.

The goals are reported as measured, met or not; the exit status is 0 either
way (1 only when something fails to run).
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Metrics copied into the summary table of the results file.
SUMMARY_KEYS = ("psnr", "psnr_std", "ssim", "ssim_std", "sift_congruent_points", "sift_congruent_points_std")
NO_REFERENCE_KEYS = ("fwhm_nm", "fwhm_nm_std", "edge_overshoot", "cnr", "false_particles_per_mm2",
                     "missed_particles_per_mm2", "false_edge_fraction", "flat_region_error")


def ensure_chain(run_dir, preset, seed, indi_minutes=None, progress=True):
    """Make sure ``run_dir`` holds data, pairs and an InDI model; produce what is missing.

    Returns
    -------
    dict
        What was reused or produced, and the seconds each stage took.
    """
    from indi4d import data, registration, runs, training

    run_dir = Path(run_dir)
    done, seconds = {}, {}
    data_dir = runs.stage_dir(run_dir, "data")
    t0 = time.perf_counter()
    if (data_dir / "meta.json").exists() and (data_dir / "lq.tif").exists():
        done["data"] = "reused"
    else:
        src = data.simulated_dataset(preset, seed, progress=progress)
        data.materialise(src, data_dir, progress=progress)
        done["data"] = f"simulated ({src})"
    seconds["data"] = time.perf_counter() - t0

    pairs_dir = runs.stage_dir(run_dir, "pairs")
    t0 = time.perf_counter()
    if (pairs_dir / "pairs.npz").exists():
        done["pairs"] = "reused"
    else:
        registration.register_scans(data_dir / "lq.tif", data_dir / "hq.tif", pairs_dir,
                                    meta_path=data_dir / "meta.json", preset=preset, seed=seed)
        done["pairs"] = "registered"
    seconds["pairs"] = time.perf_counter() - t0

    model_dir = runs.stage_dir(run_dir, "model")
    t0 = time.perf_counter()
    if (model_dir / "model.keras").exists() and (model_dir / "history.json").exists():
        done["model"] = "reused"
    else:
        summary = training.train_indi(pairs_dir, model_dir, preset=preset, seed=seed, max_minutes=indi_minutes,
                                      progress=progress)
        done["model"] = f"trained ({summary['global_step']} steps, stopped: {summary['stopped']})"
    seconds["model"] = time.perf_counter() - t0
    return {"stages": done, "seconds": {k: round(v, 1) for k, v in seconds.items()}}


def summarise(results):
    """A compact per-method table from :func:`indi4d.evaluation.evaluate_run`'s result."""
    from indi4d import evaluation

    scores = results["scores"]
    table = {}
    for method in scores:
        row = {}
        for ref in ("hq", "truth"):
            m = scores[method].get(f"vs_{ref}")
            row[f"vs_{ref}"] = None if m is None else {k: m.get(k) for k in SUMMARY_KEYS}
        nr = evaluation.no_reference(scores, method) or {}
        row.update({k: nr.get(k) for k in NO_REFERENCE_KEYS})
        table[method] = row
    return table


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "default"))
    parser.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-minutes", type=float, default=None,
                        help="cap each baseline's training time (default: the InDI run's)")
    parser.add_argument("--indi-minutes", type=float, default=None,
                        help="time budget when InDI has to be trained here (default: the preset's)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from indi4d import __version__, evaluation

    start = time.perf_counter()
    progress = not args.no_progress
    chain = ensure_chain(args.run_dir, args.preset, args.seed, args.indi_minutes, progress)
    results = evaluation.evaluate_run(args.run_dir, preset=args.preset, seed=args.seed,
                                      minutes=args.baseline_minutes, progress=progress)
    goals = results["goals"]
    out = {
        "version": __version__, "preset": args.preset, "seed": args.seed, "run_dir": str(args.run_dir),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "chain": chain, "budget": results["budget"], "baselines": results["baselines"],
        "baseline_minutes": args.baseline_minutes, "steps": results["steps"], "choice": results["choice"],
        "sweep": results["sweep"], "methods": summarise(results), "uncertainty": results["uncertainty"],
        "goals": goals, "goals_met": sum(bool(g["passed"]) for g in goals), "goals_total": len(goals),
        "paper": results["paper"], "test_slices": results["test_slices"],
        "seconds": dict(results["seconds"], total=round(time.perf_counter() - start, 1)),
        "scores": results["scores"],
    }
    path = evaluation.save_results(args.out, out)
    print(evaluation.metrics_table(results["scores"], results["steps"]))
    print()
    print(evaluation.goals_table(goals))
    print(f"\n{out['goals_met']} of {out['goals_total']} goals met; written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
