"""The domain check's thresholds, set from held-out in-domain scans, and its detection rates out of domain.

Run from the repository root (chapters 01 and 02 must have run into RUN_DIR)::

    .venv/bin/python benchmarks/domain.py [--run-dir runs/default] [--draws 400]

How the check sees a scan: :data:`indi4d.domain.N_SLICES` slices, x2 upscaled,
normalised with the model's LQ normalisation, their central part
(:func:`indi4d.domain.scan_slices`), scored against the training record
(:func:`indi4d.domain.domain_score`). Here every scan's slices are prepared
once and ``--draws`` random subsets of that many slices are scored
(:func:`indi4d.domain.subset_scores`): each draw is one scan as the check
would sample it.

* **Record**: ``RUN_DIR/model/domain.json`` when the model holds one, else the
  same record computed from ``RUN_DIR/pairs`` (train LQ slices), which is what
  training writes.
* **Calibration (in domain, held out)**: the LQ scan's slices outside the
  z-range the HQ scan covers (never in a training pair) and the pairs' val and
  test slices. ``warn`` = their 99th percentile (at most 1 % false warnings),
  ``refuse`` = 2 x ``warn`` (:func:`indi4d.domain.thresholds_from_scores`).
* **Validation (in domain, not used to set them)**: the in situ scan T0 of a
  second, pristine sample: its rates are the false alarms to expect.
* **Out of domain**: the in situ T1 and T2 scans (swollen, cracked, with the
  dense phase the training sample lacks); spam's snow and concrete through the
  same LQ scan (:func:`indi4d.simulate.acquire_real_volume`); the training
  sample's LQ scan at 0.1x, 0.3x, 3x and 10x the dose
  (:func:`indi4d.insitu.lq_scan_at_dose`, slices below the HQ region).

Writes ``benchmarks/results/domain.json``: the thresholds, the rule, and for
every scan the median score and the share of draws at or above each level.
The constants :data:`indi4d.domain.WARN` / :data:`~indi4d.domain.REFUSE` are
copied from it (``tests/test_domain.py`` checks that they agree).
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))

from indi4d import domain, model_folder, runs  # noqa: E402
from indi4d.core import pairs
from indi4d.files import read_json, write_json  # noqa: E402
from indi4d.io import read_volume  # noqa: E402

DOSE_FACTORS = (0.1, 0.3, 3.0, 10.0)


def prepared(volume, lq_params, indices=None):
    """Every (or the given) slice of a grey-value volume as the check sees it."""
    idx = list(range(volume.shape[0])) if indices is None else list(indices)
    return domain.scan_slices(volume, lq_params, indices=idx)[0]


def rates(scores, warn, refuse):
    """Median score and the shares of draws at or above each level."""
    s = np.asarray(scores)
    return {"median": float(np.median(s)), "p01": float(np.quantile(s, 0.01)), "p99": float(np.quantile(s, 0.99)),
            "warned_or_refused": float(np.mean(s >= warn)), "refused": float(np.mean(s >= refuse)),
            "draws": int(s.size)}


def out_of_domain_scans(run_dir, meta, progress=False):
    """name -> (description, uint16 volume) of the out-of-domain scans."""
    from indi4d import insitu, simulate

    preset, seed = meta["preset"], int(meta["seed"])
    scans = {f"insitu_t{k}": (f"in situ T{k}: swollen, cracked, dense phase", read_volume(
        runs.artifact(run_dir, "data", f"insitu_t{k}"))[0]) for k in (1, 2)}
    for name in simulate.REAL_VOLUMES:
        real = simulate.acquire_real_volume(name, preset=preset, seed=seed, progress=progress)
        scans[name] = (f"spam's {name} through the LQ scan", real["lq_grey"])
    n_slab = max(8, meta["lq_shape"][0] // 4)
    for factor in DOSE_FACTORS:
        dose = factor * float(meta["dose"]["lq"])
        scans[f"dose_x{factor:g}"] = (f"the training sample's LQ scan at {factor:g}x the dose ({dose:g} photons)",
                                      insitu.lq_scan_at_dose(dose, preset=preset, seed=seed, n_slices=n_slab))
    return scans


def run_record(run_dir):
    """The record, its source and the LQ normalisation of a run folder's model (or its pairs)."""
    pairs_dir = runs.stage_dir(run_dir, "pairs")
    model_dir = runs.stage_dir(run_dir, "model")
    record = model_folder.read_domain(model_dir) if model_dir.is_dir() else None
    source = str(model_folder.model_path(model_dir, "domain")) if record else None
    if record is None:
        record, source = domain.record_from_pairs(pairs_dir), f"computed from {pairs_dir} (train LQ slices)"
    return record, source, pairs.load_pairs_info(pairs_dir)["normalisation"]["lq"]


def calibration_scores(run_dir, meta, record, lq_params, draws, seed):
    """Draws of the held-out in-domain scans of one run folder: name -> scores."""
    pairs_dir = runs.stage_dir(run_dir, "pairs")
    lq = read_volume(runs.artifact(run_dir, "data", "lq"))[0]
    start, stop = meta["hq_region_in_lq"]["start_vox"][0], meta["hq_region_in_lq"]["stop_vox"][0]
    outside = [z for z in range(lq.shape[0]) if z < start or z >= stop]
    # the held-out pairs are prepared like the record's slices (whole, inside the reconstruction disc)
    held_out = np.concatenate([pairs.load_pairs(pairs_dir, s)[0] for s in ("val", "test")])
    mask = pairs.load_pairs_info(pairs_dir)["mask"]
    lq_slices = prepared(lq, lq_params, outside)
    return {"lq_outside_hq_region": domain.subset_scores(lq_slices, record, draws, seed=seed + 1),
            "pairs_val_test": domain.subset_scores(held_out, record, draws, seed=seed + 2, mask=mask)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-dir", action="append", default=None,
                    help="a run folder with data/ and pairs/ (repeat for several presets; default runs/default)")
    ap.add_argument("--draws", type=int, default=400, help="random slice subsets scored per scan")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "domain.json"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    run_dirs = [Path(r) for r in (args.run_dir or [ROOT / "runs" / "default"])]
    runs_seen = {}
    for run_dir in run_dirs:
        meta = read_json(runs.require_artifact(run_dir, "data", "meta"), "the simulation's metadata")
        record, source, lq_params = run_record(run_dir)
        runs_seen[str(run_dir)] = (meta, record, source, lq_params,
                                   calibration_scores(run_dir, meta, record, lq_params, args.draws, args.seed))
    # one pair of thresholds for every preset: the in-domain draws of all run folders pooled
    pooled = np.concatenate([s for *_, cal in runs_seen.values() for s in cal.values()])
    warn, refuse = domain.thresholds_from_scores(pooled)
    per_run = {}
    for run_dir, (meta, record, source, lq_params, cal) in runs_seen.items():
        draw = lambda volume, k: domain.subset_scores(prepared(volume, lq_params), record, args.draws,  # noqa: E731
                                                      seed=args.seed + k)
        in_domain = {name: rates(s, warn, refuse) for name, s in cal.items()}
        t0_scan = read_volume(runs.artifact(run_dir, "data", "insitu_t0"))[0]
        in_domain["insitu_t0 (validation)"] = rates(draw(t0_scan, 3), warn, refuse)
        out = {name: dict(rates(draw(volume, 10 + k), warn, refuse), what=what)
               for k, (name, (what, volume)) in enumerate(out_of_domain_scans(run_dir, meta).items())}
        per_run[meta["preset"]] = {
            "run_dir": run_dir, "preset": meta["preset"], "seed": meta["seed"], "lq_shape": meta["lq_shape"],
            "record": source, "in_domain": in_domain, "out_of_domain": out,
            "false_alarm_rate_validation": in_domain["insitu_t0 (validation)"]["warned_or_refused"],
            "detection_rate_mean": float(np.mean([r["warned_or_refused"] for r in out.values()]))}
    result = {
        "slices_per_scan": domain.N_SLICES, "draws_per_scan": args.draws,
        "warn": round(warn, 3), "refuse": round(refuse, 3),
        "rule": "warn = 99th percentile of the held-out in-domain draws of every run folder pooled (LQ slices outside "
                "the HQ region, pairs val/test); refuse = 2 x warn",
        "score": "d_hist + d_noise + d_edge (indi4d.domain)",
        "runs": per_run, "seconds": round(time.perf_counter() - t0, 1),
    }
    write_json(args.out, result)
    print(f"warn {warn:.3f}, refuse {refuse:.3f}")
    for preset, r in per_run.items():
        print(f"{preset}: validation (in situ T0) false alarms {r['false_alarm_rate_validation']:.1%}; per scan:")
        for name, x in {**r["in_domain"], **r["out_of_domain"]}.items():
            print(f"  {name:24s} median {x['median']:.2f}  warned {x['warned_or_refused']:.0%}  "
                  f"refused {x['refused']:.0%}")
    print(f"written to {args.out} in {result['seconds']} s")
    return result


if __name__ == "__main__":
    main()
