"""Markdown tables of the evaluation's numbers."""

import math

from .scores import is_finite, no_reference
from .settings import METHODS, PAPER_RESULTS


def _fmt(v, digits=1, spread=None):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "∞" if v == math.inf else "–"
    s = f"{v:.{digits}f}"
    if spread is not None and is_finite(spread):
        s += f" ± {spread:.{digits}f}"
    return s


def _named_methods(scores, steps=None, truth_only=False):
    """(method, display name) of the methods in ``scores``, in table order; InDI's name carries N."""
    for method, name in METHODS.items():
        if method not in scores or (truth_only and scores[method].get("vs_truth") is None):
            continue
        yield method, f"InDI (N = {steps})" if method == "indi" and steps is not None else name


def _markdown(head, rows):
    """A Markdown table from its header line and rows of cell strings."""
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    return "\n".join(lines + ["| " + " | ".join(cells) + " |" for cells in rows])


def metrics_table(scores, steps=None, paper=PAPER_RESULTS, scoring=None):
    """A Markdown table of every method's metrics with spreads, and the paper's numbers beside them.

    ± is the standard deviation over test slices (PSNR, SSIM, SIFT) or over
    groups of edges (FWHM). Against HQ: the paper's way (normalised units,
    affine grey fit); against the truth: physical units, no grey fit.

    Parameters
    ----------
    scores : dict
    steps : int, optional
    paper : dict
    scoring : dict, optional
        :func:`~indi4d.evaluation.scores.scoring_conventions`: adds a line on
        each reference's units, fit and data range below the table.

    Returns
    -------
    str
    """
    head = ("| method | PSNR vs HQ (dB) | SSIM vs HQ | SIFT vs HQ | PSNR vs truth (dB) | SSIM vs truth "
            "| SIFT vs truth | FWHM (nm) | overshoot | CNR | paper FWHM (nm) | paper CNR |")
    rows = []
    for method, name in _named_methods(scores, steps):
        hq, tr = scores[method].get("vs_hq") or {}, scores[method].get("vs_truth") or {}
        nr = no_reference(scores, method) or {}
        pp = paper.get(method, {})
        rows.append([name,
                     _fmt(hq.get("psnr"), 2, hq.get("psnr_std")), _fmt(hq.get("ssim"), 3, hq.get("ssim_std")),
                     _fmt(hq.get("sift_congruent_points"), 1, hq.get("sift_congruent_points_std")),
                     _fmt(tr.get("psnr"), 2, tr.get("psnr_std")), _fmt(tr.get("ssim"), 3, tr.get("ssim_std")),
                     _fmt(tr.get("sift_congruent_points"), 1, tr.get("sift_congruent_points_std")),
                     _fmt(nr.get("fwhm_nm"), 0, nr.get("fwhm_nm_std")), _fmt(nr.get("edge_overshoot"), 2),
                     _fmt(nr.get("cnr"), 2), _fmt(pp.get("fwhm_nm"), 0, pp.get("fwhm_nm_std")),
                     _fmt(pp.get("cnr"), 1)])
    return _markdown(head, rows) + _conventions_note(scoring, ("hq", "truth"))


def _conventions_note(scoring, references):
    """A line per reference: units, grey fit and data range (empty without ``scoring``)."""
    if not scoring:
        return ""
    lines = [f"vs {ref}: {scoring[ref]['units']}, grey fit {scoring[ref]['fit']}, data range = "
             f"{scoring[ref]['data_range']}" for ref in references if ref in scoring]
    return "\n\n" + "; ".join(lines) + "."


def hallucination_table(scores, steps=None):
    """A Markdown table of the hallucination metrics against the truth, one row per method.

    Returns
    -------
    str
    """
    head = ("| method | false particles / mm² | missed particles / mm² | detected / true particles "
            "| false-edge fraction (%) | flat-region error |")
    rows = []
    for method, name in _named_methods(scores, steps, truth_only=True):
        t = scores[method]["vs_truth"]
        fe = t.get("false_edge_fraction")
        rows.append([name, _fmt(t.get("false_particles_per_mm2"), 0), _fmt(t.get("missed_particles_per_mm2"), 0),
                     f"{t.get('n_detected_particles', '–')} / {t.get('n_true_particles', '–')}",
                     _fmt(None if fe is None else 100.0 * fe, 2), _fmt(t.get("flat_region_error"), 3)])
    return _markdown(head, rows)


def _condition_note(g):
    """The extra conditions of a goal (``also``) as text, e.g. ``edge_overshoot 0.04 (target <= 0.05)``."""
    return "; ".join(f"{c['metric']} {_fmt(c['measured'], 2)} (target {_fmt(c['target'], 2)})"
                     for c in g.get("conditions", [])[1:])


def goals_table(goals):
    """A Markdown table of :func:`~indi4d.evaluation.goals.check_goals`' result, with why a goal is not measured."""
    rows = []
    for g in goals:
        note = g.get("why") or ""
        extra = _condition_note(g)
        note = "; ".join(x for x in (extra, note) if x)
        rows.append([g["name"], _fmt(g["measured"], 2), _fmt(g["target"], 2),
                     "–" if g["passed"] is None else ("yes" if g["passed"] else "no"), note or "–"])
    return _markdown("| goal | measured | target | met | note |", rows)


def truth_table(scores, steps=None, scoring=None):
    """A Markdown table of every method against the truth in physical units, with the honest edge measures.

    Columns: PSNR and SSIM against the true attenuation (no grey fit; the
    units and data range are those of ``scoring["truth"]``), PSNR against HQ
    in physical units, the averaged-profile FWHM, the self-aligned FWHM (each
    edge aligned at its own 50 % crossing), the edge-placement RMS against the
    true boundary, the overshoot, and the power ratio to the truth's spectrum
    in the upper half of the frequencies (> 1: added noise; < 1: smoothed away).

    Parameters
    ----------
    scores : dict
        :func:`~indi4d.evaluation.scores.score_methods`.
    steps : int, optional
    scoring : dict, optional
        :func:`~indi4d.evaluation.scores.scoring_conventions` (adds a line on units and fit).

    Returns
    -------
    str
    """
    head = ("| method | PSNR vs truth (dB) | SSIM vs truth | PSNR vs HQ, physical (dB) | FWHM (nm) "
            "| self-aligned FWHM (nm) | edge placement RMS (nm) | overshoot | power ratio, high f |")
    rows = []
    for method, name in _named_methods(scores, steps, truth_only=True):
        t = scores[method]["vs_truth"]
        hp = scores[method].get("vs_hq_physical") or {}
        rows.append([name, _fmt(t.get("psnr"), 2, t.get("psnr_std")), _fmt(t.get("ssim"), 3, t.get("ssim_std")),
                     _fmt(hp.get("psnr"), 2), _fmt(t.get("fwhm_nm"), 0, t.get("fwhm_nm_std")),
                     _fmt(t.get("self_aligned_fwhm_nm"), 0), _fmt(t.get("edge_placement_rms_nm"), 0),
                     _fmt(t.get("edge_overshoot"), 2), _fmt(t.get("power_ratio_high"), 2)])
    return _markdown(head, rows) + _conventions_note(scoring, ("truth", "hq_physical"))


def budget_table(trained, baseline_minutes=None):
    """A Markdown table of the learned models' training: steps, minutes, parameters, reuse.

    Parameters
    ----------
    trained : dict
        :func:`indi4d.baselines.train_baselines` (``budget``, ``cnn``, ``gan``).
    baseline_minutes : float, optional
        The cap each baseline was given; adds a note that the budget is then not InDI's.

    Returns
    -------
    str
    """
    budget = trained["budget"]
    rows = [["InDI (chapter 4)", str(budget["steps"]), f"{budget['minutes']:.2f}", "–", "–",
             str(budget.get("stopped_by", "steps")).replace("_", " ")]]
    for kind in ("cnn", "gan"):
        s = trained[kind]
        rows.append([kind.upper(), str(s["steps_done"]), f"{s['minutes_done']:.2f}", f"{s['n_params']:,}",
                     "published weights" if s.get("pretrained") else "yes" if s["reused"] else "no",
                     str(s.get("stopped_by", "–")).replace("_", " ")])
    text = _markdown("| model | optimiser steps | training time (min) | parameters | reused | stopped by |", rows)
    if baseline_minutes is not None:
        text += (f"\n\n**Note:** each baseline was capped at {baseline_minutes} min, while InDI trained "
                 f"{budget['minutes']:.1f} min; the comparison is not at equal budget.")
    return text


def sweep_table(rows, steps=None):
    """A Markdown table of the step sweep (:func:`~indi4d.evaluation.sweep.step_sweep`), the chosen N marked ←."""
    ref = rows[0]["reference"] if rows else "truth"
    cells = [[f"{r['steps']}{' ←' if r['steps'] == steps else ''}", _fmt(r["psnr"], 2), _fmt(r["ssim"], 3),
              _fmt(r["fwhm_nm"], 0), _fmt(r.get("self_aligned_fwhm_nm"), 0), _fmt(r.get("edge_placement_rms_nm"), 0),
              _fmt(r["edge_overshoot"], 2), _fmt(r["sift_congruent_points"], 1), _fmt(r["seconds"], 1)] for r in rows]
    return _markdown(f"| N | PSNR vs {ref} (dB) | SSIM | FWHM (nm) | self-aligned FWHM (nm) | placement RMS (nm) "
                     "| overshoot | SIFT | time (s) |", cells)
