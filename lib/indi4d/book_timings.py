"""The chapters' measured times as the book and the README show them, from ``BOOK/timings.json``.

:func:`indi4d.book.record_timings` writes the file at every ``make book``; here
it is read (:func:`read_timings`) and rendered: one chapter's line for its
"Time to run" section (:func:`time_page`), the table of every chapter and
preset (:func:`timings_table`), and that table copied into the README
(:func:`update_readme_timings`).
"""

from pathlib import Path

from .book import TIMING_KEYS, TIMINGS_FILE
from .files import atomic_path, read_json


#: The order presets are listed in on the time pages (others follow, sorted).
PRESET_ORDER = ("tiny", "workshop", "default", "paper")


def _presets_in_order(timings):
    """The presets of ``timings``: those of :data:`PRESET_ORDER` in its order, then any others, sorted."""
    return [p for p in PRESET_ORDER if p in timings] + sorted(p for p in timings if p not in PRESET_ORDER)


def duration(seconds):
    """A measured time for a reader: ``21 s``, ``3.7 min``, ``66 min``, ``2.1 h``."""
    if seconds < 0.5:
        return "< 1 s"
    if seconds < 59.5:
        return f"{seconds:.0f} s"
    minutes = seconds / 60
    if minutes < 9.95:
        return f"{minutes:.1f} min"
    if minutes < 99.5:
        return f"{minutes:.0f} min"
    return f"{minutes / 60:.1f} h"


def _where(entry):
    cores = entry.get("machine")
    where = f"{cores} CPU core{'s' if cores != 1 else ''}" if cores else "an unrecorded machine"
    return f"{where}, {entry['date']}" if entry.get("date") else where


def time_page(timings, stem):
    """Markdown: one chapter's measured time for every preset in ``timings`` (``BOOK/timings.json``).

    Parameters
    ----------
    timings : dict
        ``{preset: {chapter_stem: seconds, "date": ..., "machine": cores, ...}}``
        (:func:`indi4d.book.merge_timings`).
    stem : str
        The chapter, e.g. ``"01_data_retrieval"``.

    Returns
    -------
    str
        One line, e.g. ``**Measured** ...: `tiny` 21 s · `default` 3.7 min (2 CPU cores, 2026-12-01).``;
        where presets were measured on different machines or days each says its own.
        A chapter no build has timed yet says so.
    """
    presets = _presets_in_order(timings)
    measured = [(p, timings[p]) for p in presets if timings[p].get(stem) is not None]
    if not measured:
        return "*Not measured yet: `make book` records every chapter's time here.*\n"
    places = {_where(entry) for _, entry in measured}
    parts = [f"`{p}` {duration(entry[stem])}" + ("" if len(places) == 1 else f" ({_where(entry)})")
             for p, entry in measured]
    tail = f" ({places.pop()})" if len(places) == 1 else ""
    return ("**Measured** by `make book` (papermill, kernel start included): "
            + " · ".join(parts) + tail + ".\n")


def timings_table(timings):
    """Markdown table: every chapter's measured time (rows) for every preset (columns), with totals.

    Parameters
    ----------
    timings : dict
        ``BOOK/timings.json`` as read (:func:`read_timings`).

    Returns
    -------
    str
        A table whose last rows are the total and where it was measured
        (cores and date); a chapter a preset never timed shows ``-``.
    """
    presets = _presets_in_order(timings)
    if not presets:
        return "*No build has been timed yet: `make book` records every chapter's time.*\n"
    stems = sorted({k for p in presets for k in timings[p] if k not in TIMING_KEYS})
    lines = ["| chapter | " + " | ".join(f"`{p}`" for p in presets) + " |", "|---" * (len(presets) + 1) + "|"]
    for stem in stems:
        cells = [duration(timings[p][stem]) if timings[p].get(stem) is not None else "-" for p in presets]
        lines.append(f"| {stem} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{duration(timings[p].get('total_s', 0.0))}**" for p in presets)
                 + " |")
    lines.append("| measured on | " + " | ".join(_where(timings[p]) for p in presets) + " |")
    return "\n".join(lines) + "\n"


#: The README's block that :func:`update_readme_timings` rewrites at every build.
README_TIMINGS = ("<!-- timings: written by `make book` from book/timings.json; do not edit -->",
                  "<!-- /timings -->")


def update_readme_timings(readme_path, timings):
    """Rewrite the README's chapter-time table (between :data:`README_TIMINGS`) from ``timings``.

    Returns True when the file changed. A README without the markers is left
    alone (False); the file is replaced atomically, never half-written.
    """
    readme_path = Path(readme_path)
    if not readme_path.is_file():
        return False
    text = readme_path.read_text()
    start, end = README_TIMINGS
    i, j = text.find(start), text.find(end)
    if i < 0 or j < i:
        return False
    new = text[:i + len(start)] + "\n" + timings_table(timings) + text[j:]
    if new == text:
        return False
    with atomic_path(readme_path) as tmp:
        Path(tmp).write_text(new)
    return True


def read_timings(book_dir):
    """``BOOK/timings.json`` as a dict; ``{}`` when the book has none yet."""
    path = Path(book_dir) / TIMINGS_FILE
    return read_json(path, "the chapters' measured times") if path.exists() else {}
