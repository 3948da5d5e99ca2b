"""The project's goals, measured: each against another method, InDI at N = 1, or a fixed target.

A goal is a dict (:data:`~indi4d.evaluation.settings.GOALS`):

* ``name``, ``group`` (e.g. "indi", "steps", "indi_deconv", "uncertainty", "budget");
* ``metric``, ``method`` and, for PSNR/SSIM/SIFT, ``reference`` ("hq", "truth", "hq_physical");
* ``relation``: "<=" or ">=";
* the target: ``against`` (another method, or ``"indi_n1"``: InDI at N = 1
  from the step sweep) with ``factor`` (target = factor x its value) or
  ``offset`` (target = its value + offset); or ``target``, a fixed number;
* ``source``: "scores" (default), "uncertainty" (:func:`uncertainty`'s numbers)
  "budget" (a dict a caller passes, e.g. the book's timings) or "project"
  (numbers read from the project's other measurements, :mod:`~indi4d.evaluation.project`);
* ``also``: more conditions of the same form (``method`` defaults to the
  goal's), all of which must hold too (e.g. "with overshoot <= HQ's + 0.03");
* ``why_missing``: the reason given when the goal's method or number is absent.
"""

from .scores import value

#: The pseudo-method of InDI at N = 1, read from the step sweep.
INDI_N1 = "indi_n1"


def _with_sweep(scores, sweep):
    """``scores`` plus InDI at N = 1 from the sweep rows (scored as the chosen N is)."""
    rows = [r for r in (sweep or []) if r.get("steps") == 1]
    if not rows:
        return scores
    row = rows[0]
    ref = row.get("reference", "truth")
    return {**scores, INDI_N1: {"vs_hq": row if ref == "hq" else None, "vs_truth": row if ref == "truth" else None}}


def _lookup(cond, goal, scores, context):
    """The measured value of a condition (None when undefined)."""
    source = cond.get("source", goal.get("source", "scores"))
    method = cond.get("method", goal.get("method"))
    if source == "scores":
        return value(scores, method, cond["metric"], cond.get("reference"))
    numbers = context.get(source) or {}
    v = numbers.get(cond["metric"])
    return None if v is None else float(v)


def _target(cond, scores):
    """(target, why) of a condition: from a fixed number or from another method's value."""
    if "target" in cond:
        return float(cond["target"]), None
    other = value(scores, cond["against"], cond["metric"], cond.get("reference"))
    if other is None:
        who = "InDI at N = 1 (step sweep)" if cond["against"] == INDI_N1 else cond["against"]
        return None, f"{cond['metric']} of {who} is not measured"
    return (other * cond["factor"] if "factor" in cond else other + cond["offset"]), None


def _check(cond, goal, scores, context):
    """One condition measured: ``{"metric", "measured", "target", "passed", "why"}``."""
    measured = _lookup(cond, goal, scores, context)
    target, why = _target(cond, scores)
    method = cond.get("method", goal.get("method"))
    if measured is None:
        if method is not None and cond.get("source", goal.get("source", "scores")) == "scores" and method not in scores:
            why = goal.get("why_missing") or f"method {method!r} is not in this run"
        else:
            why = goal.get("why_missing") or f"{cond['metric']} of {method} is not measured"
    if measured is None or target is None:
        return {"metric": cond["metric"], "measured": measured, "target": target, "passed": None, "why": why}
    passed = measured <= target if cond["relation"] == "<=" else measured >= target
    if "factor" in cond and target == 0 and cond["relation"] == ">=":
        passed = measured > 0  # "at least k times none" asks for something, not for none as well
    return {"metric": cond["metric"], "measured": measured, "target": target, "passed": bool(passed), "why": None}


def check_goals(scores, goals=None, sweep=None, uncertainty=None, budget=None, project=None):
    """The project's quality goals, measured.

    Parameters
    ----------
    scores : dict
        :func:`~indi4d.evaluation.scores.score_methods`.
    goals : sequence of dict, optional
        Default :data:`~indi4d.evaluation.settings.GOALS` (format in the module docstring).
    sweep : list of dict, optional
        :func:`~indi4d.evaluation.sweep.step_sweep` rows (for goals against ``"indi_n1"``).
    uncertainty : dict, optional
        :func:`~indi4d.evaluation.uncertainty.uncertainty` (``spearman``, ...).
    budget : dict, optional
        Numbers for the budget goals (``book_minutes``, ``max_training_minutes``):
        the hook through which the book's build reports them.
    project : dict, optional
        Numbers of the goals with ``source`` "project"
        (:func:`~indi4d.evaluation.project.project_numbers`).

    Returns
    -------
    list of dict
        ``name``, ``group``, ``measured``, ``target``, ``passed`` (None when
        undefined), ``why`` (why it is undefined, else None) and, with ``also``,
        ``conditions`` (each condition measured; ``passed`` is then all of them).
    """
    from .settings import GOALS

    goals = GOALS if goals is None else goals
    scores = _with_sweep(scores, sweep)
    context = {"uncertainty": uncertainty, "budget": budget, "project": project}
    out = []
    for g in goals:
        main = _check(g, g, scores, context)
        row = {"name": g["name"], "group": g.get("group", "indi"), "measured": main["measured"],
               "target": main["target"], "passed": main["passed"], "why": main["why"]}
        if g.get("also"):
            conds = [main] + [_check(c, g, scores, context) for c in g["also"]]
            row["conditions"] = conds
            if any(c["passed"] is False for c in conds):
                row["passed"] = False
            elif any(c["passed"] is None for c in conds):
                row["passed"] = None
                row["why"] = next(c["why"] for c in conds if c["passed"] is None)
        out.append(row)
    return out
