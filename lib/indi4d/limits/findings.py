"""The limits study's conclusions in numbers and words, computed from ``limits.json`` (never typed)."""

import math

import numpy as np

from ..book.timings import duration
from .figures import base_point, points_on_axis
from .points import AXES, BASE, ORACLES, ORDER

#: The axes a user can change (the oracle targets exist only in simulation).
USER_AXES = ("steps", "network", "data_fraction")


def _metric(point, series, metric):
    value = (point.get(series) or {}).get(metric)
    return None if value is None or not math.isfinite(value) else float(value)


def axis_effect(results, axis, metric="psnr", series="indi_rule"):
    """How one metric moves along one axis.

    Parameters
    ----------
    results : dict
        ``limits.json``.
    axis : {"steps", "network", "data_fraction"}
    metric : str
    series : {"indi_n1", "indi_rule", "cnn"}

    Returns
    -------
    dict or None
        ``first``/``last`` (axis values), ``at_first``/``at_last`` (metric),
        ``change`` (last - first), ``best`` (the axis value with the best
        metric: highest PSNR/SSIM, lowest FWHM) and, for ``steps`` and
        ``data_fraction``, ``per_doubling`` (least-squares slope of the metric
        against log2 of the value) and ``n``; None with fewer than two scored points.
    """
    pts = [p for p in points_on_axis(results, axis) if _metric(p, series, metric) is not None]
    if len(pts) < 2:
        return None
    values = [p["recipe"][axis] for p in pts]
    ys = np.array([_metric(p, series, metric) for p in pts])
    lower_is_better = metric in ("fwhm_nm", "edge_placement_rms_nm", "false_particles_per_mm2", "flat_region_error")
    best = values[int(np.argmin(ys) if lower_is_better else np.argmax(ys))]
    out = {"axis": axis, "metric": metric, "series": series, "first": values[0], "last": values[-1],
           "at_first": float(ys[0]), "at_last": float(ys[-1]), "change": float(ys[-1] - ys[0]), "best": best,
           "n": len(pts)}
    if axis in ("steps", "data_fraction"):
        slope = np.polyfit(np.log2(np.asarray(values, float)), ys, 1)[0]  # metric per doubling of the resource
        out["per_doubling"] = float(slope)
    return out


def best_psnr(point):
    """A point's InDI PSNR at its most faithful N (the sweep's maximum), or None."""
    values = [r["psnr"] for r in point.get("sweep") or [] if r.get("psnr") is not None and math.isfinite(r["psnr"])]
    return max(values) if values else None


def gap_budget(results):
    """The gap between the book's InDI and the ideal-HQ ceiling, split by what the oracles reach.

    PSNR against the truth at each network's most faithful N (the sweep's
    maximum; N = 1 in practice). With the same LQ inputs, network and budget,
    the InDI trained on the ideal HQ (HQ's blur, no noise) shows what perfect
    HQ-like targets give: the rest of the gap to the ideal HQ scan is what this
    network, at this budget, does not recover from the LQ scan. The
    truth-trained InDI bounds what any target could give.

    Returns
    -------
    dict
        ``ceiling`` (ideal HQ PSNR vs truth), ``hq`` (the HQ scan's), ``indi``
        (the base point's), ``oracle_ideal``, ``oracle_truth``, ``cnn`` (the
        CNN of the base point), ``gap`` (ceiling - indi), ``targets_cost``
        (oracle_ideal - indi), ``lq_lacks`` (ceiling - oracle_ideal); dB, None
        when not measured.
    """
    refs = results.get("references") or {}
    base = base_point(results)
    oracle = {t: next((p for p in results["points"] if p["id"] == f"target={t}"), None) for t in ORACLES}
    out = {"ceiling": (refs.get("hq_ideal") or {}).get("psnr"), "hq": (refs.get("hq") or {}).get("psnr"),
           "indi": best_psnr(base) if base else None, "cnn": _metric(base, "cnn", "psnr") if base else None,
           **{t: (best_psnr(p) if p else None) for t, p in oracle.items()}}
    diff = lambda a, b: None if a is None or b is None else float(a - b)  # noqa: E731
    out.update(gap=diff(out["ceiling"], out["indi"]), targets_cost=diff(out["oracle_ideal"], out["indi"]),
               lq_lacks=diff(out["ceiling"], out["oracle_ideal"]))
    return out


def target_line(results):
    """One sentence: every target's InDI (best N) and CNN PSNR, edge FWHM and false particles, beside HQ's."""
    pts = points_on_axis(results, "target")
    if not pts:
        return None
    hq = (results.get("references") or {}).get("hq") or {}
    parts = []
    for p in pts:
        n1, cnn = p.get("indi_n1") or {}, p.get("cnn") or {}
        parts.append(f"{p['recipe']['target']}: InDI {_fmt(best_psnr(p), ' dB')} / "
                     f"{_fmt(n1.get('fwhm_nm'), ' nm', digits=0)} "
                     f"({_fmt(n1.get('false_particles_per_mm2'), digits=0)} false particles/mm²), "
                     f"CNN {_fmt(cnn.get('psnr'), ' dB')} / {_fmt(cnn.get('fwhm_nm'), ' nm', digits=0)}")
    return ("**Targets** (PSNR against the truth / edge FWHM at N = 1): " + "; ".join(parts)
            + f". The HQ scan: {_fmt(hq.get('psnr'), ' dB')} / {_fmt(hq.get('fwhm_nm'), ' nm', digits=0)} "
            f"({_fmt(hq.get('false_particles_per_mm2'), digits=0)} false particles/mm²).")


def _fmt(x, unit="", signed=False, digits=2):
    if x is None:
        return "not measured"
    return f"{x:+.{digits}f}{unit}" if signed else f"{x:.{digits}f}{unit}"


def conclusions(results):
    """The study's conclusions as a list of Markdown sentences, every number read from ``results``."""
    lines = []
    g = gap_budget(results)
    if g["indi"] is not None and g["ceiling"] is not None:
        lines.append(f"At the base recipe ({BASE['steps']} steps), InDI scores **{_fmt(g['indi'], ' dB')}** against "
                     "the truth at its most faithful N "
                     f"(the CNN at the same budget {_fmt(g['cnn'], ' dB')}); the HQ scan "
                     f"{_fmt(g['hq'], ' dB')} and the ideal HQ scan, the ceiling of any estimator trained on HQ-like "
                     f"targets, {_fmt(g['ceiling'], ' dB')}: a gap of **{_fmt(g['gap'], ' dB')}**.")
    if g["oracle_ideal"] is not None and g["gap"] is not None:
        share = g["targets_cost"] / g["gap"] if g["gap"] else float("nan")
        lines.append(f"Trained on the ideal HQ instead (same LQ inputs, network and steps), InDI reaches "
                     f"{_fmt(g['oracle_ideal'], ' dB')}: noisy targets cost **{_fmt(g['targets_cost'], ' dB')}** "
                     f"({_fmt(100 * share, ' %', digits=0)} of the gap); the remaining "
                     f"**{_fmt(g['lq_lacks'], ' dB')}** is what this network, at this budget, cannot recover from "
                     "the LQ scan even with perfect targets.")
    if g["oracle_truth"] is not None:
        lines.append(f"Trained on the true attenuation itself, InDI reaches {_fmt(g['oracle_truth'], ' dB')} "
                     f"(the HQ scan: {_fmt(g['hq'], ' dB')}): the most any target gives this network, at this "
                     "budget, from these LQ scans.")
    targets = target_line(results)
    if targets:
        lines.append(targets)
    for axis in USER_AXES:
        e = axis_effect(results, axis)
        if e is None:
            lines.append(f"{axis}: fewer than two points measured yet.")
            continue
        f = axis_effect(results, axis, "fwhm_nm")
        slope = f" ({_fmt(e['per_doubling'], ' dB', signed=True)} per doubling)" if "per_doubling" in e else ""
        sharp = f", FWHM {_fmt(f['at_first'], ' nm', digits=0)} → {_fmt(f['at_last'], ' nm', digits=0)}" if f else ""
        text = (f"**{axis}** {e['first']} → {e['last']}: PSNR {_fmt(e['change'], ' dB', signed=True)}{slope}{sharp}; "
                f"best PSNR at {e['best']}.")
        lines.append(text)
    ref = results.get("reference_recipe")
    if ref:
        picked = next((p for p in results["points"] if p["id"] == ref["id"]), {})
        at = picked.get("indi_rule") or {}
        cnn = picked.get("cnn") or {}
        lines.append(f"By the rule stated before the study ({ref['rule']}), the reference recipe is **{ref['id']}**"
                     + ("" if ref["met"] else " (no point met both tolerances; the fallback applied)")
                     + f": InDI {_fmt(at.get('psnr'), ' dB')} / {_fmt(at.get('fwhm_nm'), ' nm', digits=0)} at the "
                     f"rule's N = {picked.get('chosen_steps')}, the CNN at the same budget {_fmt(cnn.get('psnr'), ' dB')} / "
                     f"{_fmt(cnn.get('fwhm_nm'), ' nm', digits=0)}.")
    missing = [pid for pid in ORDER if pid not in {p["id"] for p in results["points"]}]
    if missing:
        lines.append(f"Not measured yet: {', '.join(missing)}.")
    return lines


#: The goals of issue 20 that the study's curves speak to: (label, metric, against the HQ scan's value
#: times ``factor`` or plus ``offset``, the target of the point it is read on). Their thresholds are
#: those of :data:`indi4d.evaluation.settings.GOALS`, read from there by name.
CURVE_GOALS = (
    ("InDI PSNR vs truth >= HQ + 1 dB", "halves"),
    ("InDI FWHM <= 1.05 x HQ's with overshoot <= HQ's + 0.03", "halves"),
    ("indi-deconv FWHM <= 0.8 x HQ's with overshoot <= HQ's + 0.03", "halves_deconv"),
)


#: Beyond this many doublings (a million-fold) an axis is reported as no lever rather than extrapolated.
MAX_DOUBLINGS = 20


def goal_value(goal, reference):
    """The number a goal of :data:`indi4d.evaluation.settings.GOALS` asks for, given its reference's value."""
    return reference * goal.get("factor", 1.0) + goal.get("offset", 0.0)


def doublings_needed(effect, goal, now):
    """Doublings of an axis' resource that its measured log-linear trend needs to move ``now`` to ``goal``.

    ``effect`` is :func:`axis_effect`'s (with ``per_doubling``). Returns None
    when the trend does not move toward the goal (or there is none); 0 when the
    goal is already met. An extrapolation: the curves are measured over their
    points only, and nothing continues past the ideal-HQ ceiling.
    """
    slope = (effect or {}).get("per_doubling")
    gap = goal - now
    if gap == 0 or (effect and effect["metric"] == "fwhm_nm" and gap > 0) or (
            effect and effect["metric"] != "fwhm_nm" and gap < 0):
        return 0.0
    if slope is None or abs(slope) < 1e-9 or (slope > 0) != (gap > 0):  # flat (to rounding) or the wrong way
        return None
    return float(gap / slope)


def _seconds_per_step(results):
    """Median seconds a step of InDI over the points of the steps axis (this machine's speed, from the cards)."""
    speeds = [p["cards"]["indi"]["seconds"] / p["cards"]["indi"]["steps"] for p in points_on_axis(results, "steps")
              if (p["cards"]["indi"].get("seconds") or 0) > 0 and p["cards"]["indi"].get("steps")]
    return float(np.median(speeds)) if speeds else None


def goal_lines(results, goals=None):
    """For each goal of :data:`CURVE_GOALS` missed: what the curves say it would need (Markdown sentences).

    The point read is the reference recipe's (or, for indi-deconv, the
    deconvolved-target point); its metric at the rule's N is extrapolated
    along the steps and data axes by their per-doubling trends, and the
    network axis is reported as measured (its points are not a continuum).
    """
    if goals is None:
        from ..evaluation.settings import GOALS as goals
    by_name = {g["name"]: g for g in goals}
    hq = (results.get("references") or {}).get("hq") or {}
    ceiling = ((results.get("references") or {}).get("hq_ideal") or {}).get("psnr")
    ref_id = (results.get("reference_recipe") or {}).get("id")
    per_step = _seconds_per_step(results)
    lines = []
    for name, target in CURVE_GOALS:
        goal = by_name.get(name)
        metric = goal and goal["metric"]
        if not goal or hq.get(metric) is None:
            continue
        if target == "halves":
            point = next((p for p in results["points"] if p["id"] == ref_id), None) or base_point(results)
        else:
            point = next((p for p in results["points"] if p["id"] == f"target={target}"), None)
        now = _metric(point, "indi_rule", metric) if point else None
        if now is None:
            continue
        want, unit = goal_value(goal, hq[metric]), (" dB" if metric == "psnr" else " nm")
        digits = 2 if metric == "psnr" else 0
        head = (f"**{name}** ({_fmt(want, unit, digits=digits)}): {point['id']} reaches "
                f"{_fmt(now, unit, digits=digits)} at the rule's N")
        if doublings_needed({"metric": metric, "per_doubling": 1.0}, want, now) == 0.0:
            lines.append(head + ": met.")
            continue
        parts = []
        for axis in ("steps", "data_fraction"):
            effect = axis_effect(results, axis, metric)
            k = doublings_needed(effect, want, now)
            trend = f"{_fmt((effect or {}).get('per_doubling'), unit, signed=True, digits=digits + 1)} per doubling"
            if k is None:
                parts.append(f"the {axis} trend ({trend if effect else 'not measured'}) does not lead there")
                continue
            if k > MAX_DOUBLINGS:
                parts.append(f"the {axis} trend ({trend}) would need {k:.0f} doublings: not a lever")
                continue
            steps = point["cards"]["indi"]["steps"] * 2 ** k
            cost = (f": about {steps:,.0f} steps, {duration(steps * per_step)} at this machine's "
                    f"{per_step:.2f} s a step") if axis == "steps" and per_step else ""
            borrowed = " of the halves targets" if target != "halves" else ""
            parts.append(f"on the {axis} trend{borrowed} ({trend}) {k:.1f} more doublings{cost}")
        net = axis_effect(results, "network", metric)
        if net:
            parts.append(f"the largest network measured ({net['last']}) moved it "
                         f"{_fmt(net['change'], unit, signed=True, digits=digits)} at the base budget")
        line = head + "; " + "; ".join(parts) + "."
        if metric == "psnr" and ceiling is not None and want > ceiling:
            line += f" The goal lies above the ideal-HQ ceiling ({_fmt(ceiling, ' dB')}): no HQ-like target reaches it."
        lines.append(line)
    return lines


def axes_table(results):
    """A Markdown table: every scored point with InDI at N = 1 and at the rule's N, and the CNN."""
    head = ("| point | InDI N=1 dB | rule N | InDI dB | FWHM nm | over-shoot | false /mm² | CNN dB | CNN FWHM | "
            "train s |\n|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for p in results["points"]:
        n1, rule, cnn = p.get("indi_n1") or {}, p.get("indi_rule") or {}, p.get("cnn") or {}
        cell = lambda d, k, dg=2: "–" if d.get(k) is None else f"{d[k]:.{dg}f}"  # noqa: E731
        rows.append(f"| {p['id']} | {cell(n1, 'psnr')} | {p.get('chosen_steps') or '–'} | {cell(rule, 'psnr')} | "
                    f"{cell(rule, 'fwhm_nm', 0)} | {cell(rule, 'edge_overshoot', 3)} | "
                    f"{cell(rule, 'false_particles_per_mm2', 1)} | {cell(cnn, 'psnr')} | {cell(cnn, 'fwhm_nm', 0)} | "
                    f"{p['cards']['indi'].get('seconds') or 0:.0f} |")
    for key, ref in (results.get("references") or {}).items():
        rows.append(f"| *{key}* | | | {ref['psnr']:.2f} | {ref['fwhm_nm'] or 0:.0f} | "
                    f"{(ref.get('edge_overshoot') or 0):.3f} | {(ref.get('false_particles_per_mm2') or 0):.1f} | | | |")
    return "\n".join([head, *rows])


__all__ = ["AXES", "CURVE_GOALS", "USER_AXES", "axes_table", "axis_effect", "best_psnr", "conclusions",
           "doublings_needed", "gap_budget", "goal_lines", "goal_value"]
