"""The numbers of the goals measured outside chapter 05 (:data:`~indi4d.evaluation.settings.PROJECT_GOALS`).

Each is read from a file another part of the project wrote, never computed
again here: the segmentation Dice gap from the run's chapter 07, the training
loop's ratio from ``speed.json``, the trained points of ``limits.json``, and
the workshop book's time from the committed ``book/timings.json``.
"""

from pathlib import Path

from ..files import read_json


def _read(path, what):
    """``path`` read as JSON, or None when it does not exist."""
    path = Path(path)
    return read_json(path, what) if path.exists() else None


def project_numbers(run_dir=None, results_dir=None, book_dir=None):
    """The measured numbers of :data:`~indi4d.evaluation.settings.PROJECT_GOALS`, from the files that hold them.

    Parameters
    ----------
    run_dir : path, optional
        A book's run folder; ``segmentation/metrics.json`` gives ``dice_gap_closed``
        (:func:`indi4d.segmentation.tables.gap_closed`, a fraction).
    results_dir : path, optional
        ``benchmarks/results``: ``speed.json`` gives ``loop_ratio`` (loop seconds
        per step in its epochs over the raw step's) and ``limits.json`` gives
        ``limits_points`` (points scored at N = 1 and at the rule's N).
    book_dir : path, optional
        ``book/``: ``timings.json`` gives ``workshop_book_minutes``.

    Returns
    -------
    dict
        Only the numbers whose file exists and holds them; a goal without its
        number is reported as not measured, with its ``why_missing``.
    """
    from .. import runs
    from ..segmentation.tables import gap_closed

    numbers = {}
    if run_dir is not None:
        seg = _read(runs.artifact(run_dir, "segmentation", "metrics"), "chapter 07's segmentation metrics")
        if seg is not None:
            numbers["dice_gap_closed"] = gap_closed(seg)
    if results_dir is not None:
        speed = _read(Path(results_dir) / "speed.json", "benchmarks/speed.py's results") or {}
        if (speed.get("loop") or {}).get("ratio_in_epochs") is not None:
            numbers["loop_ratio"] = speed["loop"]["ratio_in_epochs"]
        limits = _read(Path(results_dir) / "limits.json", "the limits study")
        if limits is not None:
            numbers["limits_points"] = sum(bool(p.get("indi_n1")) and bool(p.get("indi_rule"))
                                           for p in limits.get("points", []))
    if book_dir is not None:
        timings = _read(Path(book_dir) / "timings.json", "the book's recorded timings") or {}
        if (timings.get("workshop") or {}).get("total_s") is not None:
            numbers["workshop_book_minutes"] = timings["workshop"]["total_s"] / 60
    return numbers
