"""The chapters' measured times: recorded per build, kept per preset, shown in the book and the README.

``make book`` writes one build's times into its run folder only
(``RUN_DIR/book_timings.json``, :func:`run_timings`), so a build leaves the
checkout clean. ``make timings`` (``python -m indi4d.book.timings --run-dir RUN_DIR``,
a maintainer's step) merges them into the committed ``BOOK/timings.json``
(:func:`record_timings`) and rewrites the README's table (:func:`update_readme_timings`).
The book reads the committed file (:func:`read_timings`) and renders one chapter's
line for its "Time to run" section (:func:`time_page`) and the table of every
chapter and preset (:func:`timings_table`).
"""

import argparse
import datetime
import os
import sys
from pathlib import Path

from ..files import atomic_path, read_json, write_json

#: The chapters' measured times, per preset, in the book folder (committed with the book).
TIMINGS_FILE = "timings.json"
#: Keys of a preset's entry in ``timings.json`` that are not a chapter.
TIMING_KEYS = ("total_s", "date", "machine")


def cpu_count():
    """CPU cores this process may use (its affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux, or no affinity to read
        return os.cpu_count() or 1


def merge_timings(timings, preset, chapters_s, date, machine):
    """``timings`` (the content of ``timings.json``) with one build's chapter times merged in.

    Parameters
    ----------
    timings : dict
        ``{preset: {chapter_stem: seconds, "total_s": ..., "date": ..., "machine": cores}}``;
        not modified.
    preset : str
        The preset the build ran.
    chapters_s : dict
        ``{chapter_stem: seconds or None}`` of the build (None: reused, not run).
    date : str
        The build's date (ISO ``YYYY-MM-DD``).
    machine : int
        CPU cores of the machine that measured.

    Returns
    -------
    dict
        A new dict: the chapters that ran replace theirs; other presets and the
        chapters the build did not run (``--only``, or reused) keep theirs;
        ``total_s`` is the sum of the preset's chapters, ``date`` and ``machine``
        are this build's. A build that ran no chapter changes nothing.
    """
    merged = {p: dict(entry) for p, entry in (timings or {}).items()}
    ran = {stem: round(float(s), 1) for stem, s in chapters_s.items() if s is not None}
    if not ran:
        return merged
    old = merged.get(preset, {})
    chapters = {k: v for k, v in old.items() if k not in TIMING_KEYS} | ran
    entry = dict(sorted(chapters.items()))
    entry.update(total_s=round(sum(chapters.values()), 1), date=str(date), machine=int(machine))
    merged[preset] = entry
    return merged


def record_timings(book_dir, preset, chapters_s, date=None, machine=None):
    """Merge one build's chapter times into ``BOOK/timings.json`` (:func:`merge_timings`); return its path.

    Called by ``make timings`` (:func:`record_run`), never by ``make book``. ``date``
    defaults to today, ``machine`` to this process's CPU cores; the
    file is written atomically.
    """
    path = Path(book_dir) / TIMINGS_FILE
    old = read_timings(book_dir)
    date = date or datetime.date.today().isoformat()
    merged = merge_timings(old, preset, chapters_s, date, machine or cpu_count())
    if merged != old:
        write_json(path, merged)
    return path


#: One build's times, in its run folder (written by ``make book``, read by ``make timings``).
RUN_TIMINGS_FILE = "book_timings.json"


def run_timings(preset, chapters_s, total_s, date=None, machine=None):
    """One build's record for ``RUN_DIR/book_timings.json``.

    Parameters
    ----------
    preset : str
        The preset the build ran.
    chapters_s : dict
        ``{chapter_stem: seconds or None}`` (None: reused, not run).
    total_s : float
        The build's wall time, HTML included.
    date, machine : str and int, optional
        Default today and this process's CPU cores (:func:`cpu_count`).

    Returns
    -------
    dict
        ``{"preset", "chapters_s", "total_s", "date", "machine"}``: what
        :func:`record_run` merges into the committed file.
    """
    return {"preset": preset, "chapters_s": dict(chapters_s), "total_s": total_s,
            "date": date or datetime.date.today().isoformat(), "machine": int(machine or cpu_count())}


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


def measured_on(entry):
    """Where and when a preset's times were measured: ``2 CPU cores, 2026-12-01``."""
    cores = entry.get("machine")
    where = f"{cores} CPU core{'s' if cores != 1 else ''}" if cores else "an unrecorded machine"
    return f"{where}, {entry['date']}" if entry.get("date") else where


def time_page(timings, stem):
    """Markdown: one chapter's measured time for every preset in ``timings`` (``BOOK/timings.json``).

    Parameters
    ----------
    timings : dict
        ``{preset: {chapter_stem: seconds, "date": ..., "machine": cores, ...}}``
        (:func:`indi4d.book.timings.merge_timings`).
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
    places = {measured_on(entry) for _, entry in measured}
    parts = [f"`{p}` {duration(entry[stem])}" + ("" if len(places) == 1 else f" ({measured_on(entry)})")
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
    lines.append("| measured on | " + " | ".join(measured_on(timings[p]) for p in presets) + " |")
    return "\n".join(lines) + "\n"


#: The README's block that :func:`update_readme_timings` rewrites at every build.
README_TIMINGS = ("<!-- timings: written by `make timings` from book/timings.json; do not edit -->",
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


def record_run(run_dir, book_dir, readme_path):
    """``make timings``: merge a run folder's build times into ``BOOK/timings.json`` and the README's table.

    Parameters
    ----------
    run_dir : str or Path
        A run folder a ``make book`` wrote ``book_timings.json`` into (:func:`run_timings`).
    book_dir, readme_path : str or Path
        The committed book folder and README.

    Returns
    -------
    Path
        ``BOOK/timings.json``.
    """
    source = Path(run_dir) / RUN_TIMINGS_FILE
    run = read_json(source, "a book build's measured times (run `make book` first)")
    missing = sorted({"preset", "chapters_s", "date", "machine"} - set(run))
    if missing:
        raise ValueError(f"{source}: no {', '.join(missing)} (written by an older `make book`): build the book again")
    path = record_timings(book_dir, run["preset"], run["chapters_s"], date=run["date"], machine=run["machine"])
    update_readme_timings(readme_path, read_timings(book_dir))
    return path


def main(argv=None):
    """``python -m indi4d.book.timings --run-dir RUN_DIR``: what ``make timings`` runs."""
    parser = argparse.ArgumentParser(prog="python -m indi4d.book.timings",
                                     description="copy a book build's chapter times (RUN_DIR/book_timings.json) "
                                                 "into the committed book/timings.json and the README's table")
    parser.add_argument("--root", default=".", help="the repository root (holding book/ and README.md)")
    parser.add_argument("--run-dir", required=True, help="the run folder of the build, e.g. runs/default")
    args = parser.parse_args(argv)
    root = Path(args.root)
    path = record_run(args.run_dir, root / "book", root / "README.md")
    print(f"{path} and {root / 'README.md'}: chapter times from {Path(args.run_dir) / RUN_TIMINGS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
