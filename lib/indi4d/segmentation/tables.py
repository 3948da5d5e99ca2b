"""Markdown tables of chapter 07, all read from ``RUN_DIR/segmentation/metrics.json`` (the results dict)."""

import numpy as np

from .settings import DESCRIPTORS


def _num(value, fmt="{:.3f}"):
    return "–" if value is None or not np.isfinite(value) else fmt.format(value)


def _mean(values):
    v = [x for x in values if x is not None and np.isfinite(x)]
    return float(np.mean(v)) if v else float("nan")


def forest_table(results):
    """Dice per phase of the random-forest labels of the scribbled slice, per image (vs the true slice)."""
    methods = list(results["forest_scores"])
    head = "| phase | " + " | ".join(results["methods"][m] for m in methods) + " |"
    rows = [head, "|---|" + "---:|" * len(methods)]
    for phase in results["phases"] + ["mean"]:
        rows.append(f"| {phase} | " + " | ".join(_num(results["forest_scores"][m][phase]["dice"])
                                                 for m in methods) + " |")
    return "\n".join(rows)


def dice_table(results, score="dice"):
    """Per-phase ``score`` (``dice``, ``iou`` or ``boundary_f``) per method, mean over the time steps, and per step.

    Held-out voxels only (the training slice and its neighbours are left out).
    """
    methods = list(results["scores"])
    times = results["times"]
    head = "| phase | " + " | ".join(results["methods"][m] for m in methods) + " | " + \
        " | ".join(f"{results['methods'][m]} {t}" for m in methods for t in times) + " |"
    rows = [head, "|---|" + "---:|" * (len(methods) * (1 + len(times)))]
    for phase in results["phases"] + ["mean"]:
        per = {m: [sc[phase][score] for sc in results["scores"][m]] for m in methods}
        rows.append(f"| {phase} | " + " | ".join(f"**{_num(_mean(per[m]))}**" for m in methods) + " | "
                    + " | ".join(_num(v) for m in methods for v in per[m]) + " |")
    return "\n".join(rows)


def descriptor_table(results, index):
    """Descriptors of time step ``index`` per segmentation and the truth, with the signed error vs truth."""
    methods = [m for m in results["methods"] if m in results["descriptors"]]
    d = results["descriptors"]
    head = "| descriptor | truth | " + " | ".join(f"{results['methods'][m]} (error)" for m in methods) + " |"
    rows = [head, "|---|---:|" + "---:|" * len(methods)]
    for key, (label, unit, scale) in DESCRIPTORS.items():
        fmt = "{:.0f}" if key == "particle_count" else "{:.3g}"
        truth = d["truth"][index][key]
        cells = []
        for m in methods:
            value, error = d[m][index][key], results["errors"][m][index][key]
            cells.append(f"{_num(value * scale, fmt)} ({_num(100 * error, '{:+.0f}')} %)"
                         if error is not None and np.isfinite(error) else _num(value * scale, fmt))
        rows.append(f"| {label}{f' ({unit})' if unit else ''} | {_num(truth * scale, fmt)} | " + " | ".join(cells)
                    + " |")
    return "\n".join(rows)


def swelling_table(results):
    """Mean swelling T0 -> last step (diameter and solid volume, %) per segmentation and the truth."""
    methods = [m for m in results["methods"] if m in results["swelling"]] + ["truth"]
    names = {**results["methods"], "truth": "truth"}
    rows = ["| | " + " | ".join(names[m] for m in methods) + " |", "|---|" + "---:|" * len(methods)]
    for key, label in (("diameter_change", "mean diameter change (%)"),
                       ("solid_volume_change", "solid volume change (%)")):
        rows.append(f"| {label} | " + " | ".join(_num(100 * results["swelling"][m][key], "{:+.1f}")
                                                 for m in methods) + " |")
    return "\n".join(rows)


def mean_score(results, method, phase="mean", score="dice"):
    """Mean of a per-phase score of ``method`` over the time steps (NaN-aware)."""
    return _mean([s[phase][score] for s in results["scores"][method]])


def gap_closed(results, score="dice"):
    """Share of the gap between the LQ and the upper-bound segmentation that the InDI one closes (mean ``score``).

    ``(InDI - LQ) / (ideal - LQ)``; NaN when the upper bound is not above LQ.
    """
    lq, indi, ideal = (mean_score(results, m, score=score) for m in ("lq", "indi", "ideal"))
    return (indi - lq) / (ideal - lq) if ideal - lq > 1e-9 else float("nan")


def descriptor_mean_errors(results, keys=None):
    """Mean |relative error| (%) over the time steps per descriptor and method (time steps where it is defined)."""
    keys = keys or list(DESCRIPTORS)
    return {key: {m: 100 * _mean([abs(x[key]) if x[key] is not None else None for x in errs])
                  for m, errs in results["errors"].items()} for key in keys}


def findings(results):
    """The chapter's conclusions as Markdown, every number read from ``results``."""
    names = results["methods"]
    d = {m: mean_score(results, m) for m in results["scores"]}
    closed = gap_closed(results)
    lines = ["- Mean Dice over phases and time steps: " + ", ".join(f"{names[m]} {v:.3f}" for m, v in d.items())
             + (f"; enhancement closes {100 * closed:.0f} % of the gap between LQ and the upper bound."
                if np.isfinite(closed) else "; the upper bound is not above LQ here, so there is no gap to close.")]
    for key, per in descriptor_mean_errors(results).items():
        finite = {m: v for m, v in per.items() if np.isfinite(v)}
        if not finite:
            continue
        best = min(finite, key=finite.get)
        label = DESCRIPTORS[key][0]
        lines.append(f"- {label}: mean |error| over the time steps " + ", ".join(
            f"{names[m]} {_num(v, '{:.0f}')} %" for m, v in per.items()) + f" (closest to the truth: {names[best]})")
    sw = results.get("swelling_error") or {}
    if sw:
        lines.append("- solid-volume swelling T0 → last step, error in percentage points: " + ", ".join(
            f"{names[m]} {_num(100 * e['solid_volume_change'], '{:+.1f}')}" for m, e in sw.items()))
    return "\n".join(lines)
