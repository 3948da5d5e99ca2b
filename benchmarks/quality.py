"""Image quality of InDI against bicubic, HQ, the CNN and GAN baselines, and the truth.

Run from the repository root::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/quality.py [--run-dir runs/default] [--preset default]

This script computes nothing itself: the numbers are those of chapter 05,
written by the chapter's one orchestrator (:class:`indi4d.evaluation.Evaluation`)
to ``RUN_DIR/eval/metrics.json``.

* When that file holds this preset, seed and baseline budget (e.g. after
  ``make book``), it is read as it is.
* Otherwise the book's chapters 01-05 are executed into ``RUN_DIR`` exactly
  as ``make book`` executes them (:func:`indi4d.book.build.execute_chapters`, into
  ``book/chapters/``; a chapter whose source, parameters and library are
  unchanged is not executed again), and the file they write is read.

Writes ``benchmarks/results/quality.json`` (atomically) with every method's
metrics against HQ (the paper's: normalised units, affine grey fit), against
the truth (physical units, attenuation in 1/µm, no grey fit) and against HQ in
physical units, the reference rows (the ideal HQ scan, a classical denoiser
tuned on the validation slices), the step sweep and the chosen N, the
uncertainty correlation, how each reference was scored (``scoring``: units,
fit, data range), and every goal of issue 9
(:data:`indi4d.evaluation.GOALS`) with its measured value, target, pass/fail
and, when it could not be measured, why:

* InDI (chosen N): PSNR vs truth >= HQ + 1 dB, SSIM >= HQ's, FWHM <= 1.05 x
  HQ's with overshoot <= HQ's + 0.03, FWHM <= 0.9 x the CNN's, CNR >= 1.2 x
  HQ's, false particles / mm² <= HQ's;
* the steps earn their keep: FWHM at the chosen N <= 0.9 x N = 1's at a PSNR
  cost <= 0.5 dB;
* indi-deconv (when produced): FWHM <= 0.8 x HQ's with overshoot <= HQ's +
  0.03, PSNR vs truth >= HQ + 1 dB, false particles <= HQ's;
* uncertainty: Spearman(std of the stochastic samples, true error) >= 0.6;
* budget: the whole book <= 40 min (pass ``--book-minutes``), each model's
  training <= 15 min;
* issue 20's goals measured outside chapter 05
  (:data:`indi4d.evaluation.PROJECT_GOALS`): segmentation with InDI closes
  >= 50 % of the Dice gap (the run's chapter 07), the training loop within
  1.3x the raw step (``speed.json``), >= 12 points in ``limits.json``, the
  workshop book <= 10 min (``book/timings.json``).

The goals are recomputed here from chapter 05's numbers (so a budget measured
outside the chapter can be added). They are reported as measured, met or not;
the exit status is 0 either way (1 only when something fails to run).
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Metrics copied into the summary table of the results file.
SUMMARY_KEYS = ("psnr", "psnr_std", "ssim", "ssim_std", "sift_congruent_points", "sift_congruent_points_std")
NO_REFERENCE_KEYS = ("fwhm_nm", "fwhm_nm_std", "edge_overshoot", "cnr", "false_particles_per_mm2",
                     "missed_particles_per_mm2", "false_edge_fraction", "flat_region_error")
#: Edge and spectrum numbers measured against the truth (``indi4d.evaluation.TRUTH_EXTRA_KEYS``).
TRUTH_KEYS = ("edge_placement_rms_nm", "edge_placement_bias_nm", "self_aligned_fwhm_nm", "self_aligned_rise_10_90_nm",
              "self_aligned_overshoot", "power_ratio_mid", "power_ratio_high")
#: The chapters that produce ``RUN_DIR/eval/metrics.json``.
CHAPTERS = ("01", "02", "03", "04", "05")


def matches(results, preset, seed, baseline_minutes):
    """True when chapter 05's results were computed with these parameters."""
    return (results.get("preset") == preset and results.get("seed") == seed
            and results.get("baseline_minutes") == baseline_minutes)


def chapter_results(run_dir, preset, seed, baseline_minutes=None, force=False):
    """Chapter 05's results of ``run_dir``: read when they match, else produced by executing the chapters.

    Returns
    -------
    results : dict
        ``RUN_DIR/eval/metrics.json``.
    source : dict
        ``reused`` (bool) and, when chapters ran, ``chapters_s`` (seconds per
        chapter, None for one reused unchanged).
    """
    from indi4d import runs
    from indi4d.book import build as book
    from indi4d.files import read_json

    run_dir = Path(run_dir).resolve()
    path = runs.artifact(run_dir, "eval", "metrics")
    if not force and path.exists():
        results = read_json(path, "chapter 05's results")
        if matches(results, preset, seed, baseline_minutes):
            return results, {"reused": True, "metrics": repo_relative(path)}
    # the parameters `make book` gives the chapters (indi4d.book.build.build_book), so both share executed chapters
    parameters = {"preset": preset, "seed": int(seed), "run_dir": os.path.relpath(run_dir, ROOT / "notebooks")}
    if baseline_minutes is not None:
        parameters["baseline_minutes"] = baseline_minutes
    timings = book.execute_chapters(ROOT / "notebooks", ROOT / "book" / "chapters", parameters, only=CHAPTERS,
                                    force=force)
    results = read_json(runs.require_artifact(run_dir, "eval", "metrics"), "chapter 05's results")
    if not matches(results, preset, seed, baseline_minutes):
        raise RuntimeError(f"{path}: does not hold preset {preset!r}, seed {seed} after running the chapters")
    return results, {"reused": False, "metrics": repo_relative(path), "chapters_s": dict(timings)}


def summarise(results):
    """A compact per-method table from chapter 05's results."""
    from indi4d import evaluation

    scores = results["scores"]
    table = {}
    for method in scores:
        row = {}
        for ref in ("hq", "truth", "hq_physical"):
            m = scores[method].get(f"vs_{ref}")
            row[f"vs_{ref}"] = None if m is None else {k: m.get(k) for k in SUMMARY_KEYS + ("units", "fit")}
        nr = evaluation.no_reference(scores, method) or {}
        row.update({k: nr.get(k) for k in NO_REFERENCE_KEYS})
        truth = scores[method].get("vs_truth") or {}
        row.update({k: truth.get(k) for k in TRUTH_KEYS})
        table[method] = row
    return table


def repo_relative(path):
    """``path`` relative to the repository root when it lies inside it, else as given (no machine's root in JSON)."""
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--run-dir", default=str(ROOT / "runs" / "default"), help="the book's run folder")
    parser.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--baseline-minutes", type=float, default=None,
                        help="cap each baseline's training time (None: the InDI run's)")
    parser.add_argument("--force", action="store_true", help="execute the chapters again even when unchanged")
    parser.add_argument("--book-minutes", type=float, default=None,
                        help="the whole book's build time, for the budget goal (None: reported as not measured)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quality.json"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

    from indi4d import __version__, evaluation
    from indi4d.machine import machine_record
    from indi4d.safety import check_output

    check_output(args.out, inputs=[args.run_dir], kind="json", who="benchmarks/quality.py")
    start = time.perf_counter()
    results, source = chapter_results(args.run_dir, args.preset, args.seed, args.baseline_minutes, args.force)
    budget = dict(results.get("budget_numbers") or {})
    if args.book_minutes is not None:
        budget["book_minutes"] = args.book_minutes
    # issue 20's goals measured elsewhere: chapter 07's Dice gap, the loop's speed, limits.json, the workshop book
    project = evaluation.project_numbers(args.run_dir, ROOT / "benchmarks" / "results", ROOT / "book")
    goals = evaluation.check_goals(results["scores"], goals=evaluation.GOALS + evaluation.PROJECT_GOALS,
                                   sweep=results.get("sweep"), uncertainty=results.get("uncertainty"),
                                   budget=budget, project=project)
    out = {
        "version": __version__, "preset": args.preset, "seed": args.seed, "run_dir": repo_relative(args.run_dir),
        "machine": machine_record(),
        "source": source, "budget": results["budget"], "baselines": results["baselines"],
        "baseline_minutes": args.baseline_minutes, "steps": results["steps"], "choice": results["choice"],
        "sweep": results["sweep"], "methods": summarise(results), "uncertainty": results["uncertainty"],
        "scoring": results.get("scoring"), "classical": results.get("classical"), "spectra": results.get("spectra"),
        "goals": goals, "goals_met": sum(bool(g["passed"]) for g in goals), "goals_total": len(goals),
        "goals_not_measured": sum(g["passed"] is None for g in goals), "budget_numbers": budget,
        "project_numbers": project,
        "paper": results["paper"], "test_slices": results["test_slices"],
        "seconds": dict(results["seconds"], total=round(time.perf_counter() - start, 1)),
        "scores": results["scores"],
    }
    path = evaluation.save_results(args.out, out)
    print(evaluation.metrics_table(results["scores"], results["steps"]))
    print()
    print(evaluation.truth_table(results["scores"], results["steps"], results.get("scoring")))
    print()
    print(evaluation.goals_table(goals))
    print(f"\n{out['goals_met']} of {out['goals_total']} goals met ({out['goals_not_measured']} not measured); "
          f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
