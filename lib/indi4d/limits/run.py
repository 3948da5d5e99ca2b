"""The limits study run end to end: every point in its stated order, ``limits.json`` rewritten after each.

A study stopped part-way (a session's end, Ctrl-C) resumes where it stopped:
finished points are read back from their ``scores.json``, an unfinished one
resumes from its newest checkpoint. ``limits.json`` says which points are done
(``complete`` is true only when all asked for are).
"""

import time
from datetime import datetime, timezone
from pathlib import Path

from ..machine import machine_record, source_commit
from .points import AXES, BASE, NETWORKS, RULE, TARGETS, select_points
from .study import SCORED, SWEEP, limits_dir, pick_reference, reference_scores, run_point


def run_study(run_dir, out_path, points=None, *, preset="default", seed=0, root=".", max_points=None,
              progress=True, log=print):
    """Train, score and record the points of the limits study.

    Parameters
    ----------
    run_dir : str or Path
        A run folder with chapters 01-02 of a simulated data set (the truth is needed).
    out_path : str or Path
        ``limits.json`` (rewritten atomically after every point).
    points : sequence of str, optional
        Point ids (:func:`indi4d.limits.points.select_points`); default all, in the stated order.
    preset : str
        Evaluation preset (test slices, tiling, metrics, the step rule).
    seed : int
    root : str or Path
        The repository, for the commit recorded.
    max_points : int, optional
        Stop after this many points are done in this call (finished ones read back do not count).
    progress : bool
    log : callable

    Returns
    -------
    dict
        What ``limits.json`` holds: ``machine``, ``date``, ``commit``, ``rule``,
        ``axes``, ``references``, ``points`` (records of :func:`run_point`),
        ``reference_recipe`` (:func:`pick_reference`), ``complete``.
    """
    from ..evaluation import load_test_set
    from ..evaluation.settings import PRESETS as EVAL_PRESETS
    from ..files import write_json
    from ..presets import resolve

    chosen = select_points(points)  # unknown names refused before any work
    test = load_test_set(run_dir, resolve(EVAL_PRESETS, preset)["max_test_slices"])
    if test["truth_mu"] is None:
        raise ValueError(f"{run_dir}: the limits study needs the true attenuation (a simulated data set)")
    machine = machine_record()
    result = {"what": "held-out quality of InDI and the CNN against the training resources: steps, capacity, data, "
                      "targets (two oracle targets only a simulation has)",
              "scored": SCORED, "preset": preset, "seed": int(seed), "run_dir": str(run_dir), "machine": machine,
              "commit": source_commit(root), "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "sweep": list(SWEEP), "rule": RULE, "base": BASE, "axes": {k: list(v) for k, v in AXES.items()},
              "targets": TARGETS, "networks": NETWORKS, "test_slices": test["z"].tolist(),
              "references": reference_scores(test, preset, seed), "points": [], "complete": False}
    done_here = 0
    for point in chosen:
        if max_points is not None and done_here >= max_points:
            break
        t0 = time.perf_counter()
        log(f"[limits] point {point['id']} ({', '.join(point['axes'])}) ...")
        fresh = not limits_dir(run_dir, "points", point["id"], "scores.json").is_file()
        record = run_point(run_dir, point, test, machine, preset, seed, progress)
        done_here += int(fresh)
        result["points"].append(record)
        result["reference_recipe"] = pick_reference(result["points"])
        result["updated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        write_json(out_path, result)
        log(f"[limits] point {point['id']}: InDI N=1 {record['indi_n1']['psnr']:.2f} dB, "
            f"CNN {record['cnn']['psnr']:.2f} dB ({time.perf_counter() - t0:.0f} s)")
    result["complete"] = len(result["points"]) == len(chosen)
    write_json(out_path, result)
    return result


def read_results(path):
    """Read a ``limits.json`` written by :func:`run_study`, checked.

    Raises
    ------
    FileNotFoundError
        The file is missing: the message says how to make it.
    ValueError
        The file is not a limits study (no ``points`` or ``references``).
    """
    from ..files import read_json

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no limits study here; run `python benchmarks/limits.py` (after chapters "
                                "01-02 of the default book) to make it")
    results = read_json(path, "the limits study")
    if not isinstance(results, dict) or not isinstance(results.get("points"), list) or "references" not in results:
        raise ValueError(f"{path}: not a limits study (expected 'points' and 'references'; "
                         "written by benchmarks/limits.py)")
    return results


def provenance(results):
    """One Markdown paragraph: where, when and from which commit the study's numbers come, and how complete."""
    m = results.get("machine") or {}
    where = f"{m.get('cpus')} logical CPUs ({m.get('cpu_model') or 'CPU model not recorded'})"
    done = len(results["points"])
    status = "all points asked for" if results.get("complete") else "a study still running or stopped part-way"
    return (f"The study trained and scored **{done} point(s)** ({status}) on {where}, from "
            f"{results.get('started', '?')} to {results.get('updated', '?')} UTC, at commit "
            f"`{(results.get('commit') or 'unknown')[:12]}`, seed {results.get('seed')}, on the "
            f"`{results.get('preset')}` data's {len(results.get('test_slices', []))} held-out test slices.")


def default_out(root="."):
    """``benchmarks/results/limits.json`` of a repository."""
    return Path(root, "benchmarks", "results", "limits.json")
