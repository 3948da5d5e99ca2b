"""What every ``indi4d`` sub-command shares: help layout, preset notices, output checks, messages."""

import argparse
import errno
import json
import math
import sys
from pathlib import Path

PRESET_NAMES = ("tiny", "default", "paper")
#: The book folder of the checkout the package runs from: its committed ``timings.json``
#: gives the commands' expected times (absent from an installed package: then none is shown).
BOOK_DIR = Path(__file__).resolve().parents[3] / "book"


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` that shows every option's default and keeps the description's line breaks.

    An option whose help already states its default (``"(default: ...)"``,
    for defaults computed at run time) is left as written; switches show
    ``(default: off)``.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if ("(default" in text or action.default is argparse.SUPPRESS or action.required
                or not action.option_strings):
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)"
        return f"{text} (default: %(default)s)"


def add_parser(sub, name, summary, description, func):
    """A sub-command parser with the shared help layout; ``func(args)`` runs it."""
    parser = sub.add_parser(name, help=summary, description=description, formatter_class=HelpFormatter)
    parser.set_defaults(func=func)
    return parser


def chapter_time(stem, preset, book_dir=BOOK_DIR):
    """Chapter ``stem``'s time with ``preset`` as ``book/timings.json`` records it, in words; None when not timed."""
    from ..book.timings import duration, measured_on, read_timings

    try:
        entry = read_timings(book_dir).get(preset) or {}
    except (OSError, ValueError):
        return None
    return None if entry.get(stem) is None else f"{duration(entry[stem])} ({measured_on(entry)})"


def preset_times(stem, runs, notes, book_dir=BOOK_DIR):
    """``{preset: expected time in words}``: what the preset is, and the measured time of the chapter that runs it.

    Parameters
    ----------
    stem : str
        The book's chapter that runs the command, e.g. ``"04_training"``.
    runs : str
        What that chapter runs besides the command, e.g. ``"and the ablation"``.
    notes : dict
        ``{preset: what it is}`` in words, without times (those come from ``book/timings.json``):
        the presets the command offers, in order.
    """
    times = {}
    for name in notes:  # the presets the command offers, in the order given
        took = chapter_time(stem, name, book_dir)
        measured = f"chapter {stem[:2]} ({runs}) took {took}" if took else "not timed by the book"
        times[name] = f"{notes[name]}; {measured}"
    return times


def add_preset(parser, times, what="the run"):
    """``--preset`` (default ``default``) over the presets of ``times``, with each one's expected time in its help."""
    parser.add_argument("--preset", default="default", choices=list(times),
                        help=f"size of {what}; expected time: "
                        + "; ".join(f"{name}: {text}" for name, text in times.items()))


def announce_preset(args, times):
    """One line on stderr when the minutes-long default preset runs, pointing at the quick one."""
    if args.preset == "default":
        quick = "quick (a short run) or tiny" if "quick" in times else "tiny"
        print(f"indi4d {args.command}: preset default: {times['default']}; --preset {quick} for a quick try",
              file=sys.stderr)


def seed_type(text):
    """An argparse type: a seed, an integer >= 0 (numpy and TensorFlow refuse negative seeds, late)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text}")
    return value


def positive_number(text):
    """An argparse type: a finite number > 0 (``nan`` and ``inf`` refused)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def who(args):
    """The command as messages name it (``indi4d enhance``)."""
    return f"indi4d {args.command}"


def print_json(obj):
    """Print a result as indented JSON: numpy numbers as plain numbers, paths as text."""

    def plain(value):
        if hasattr(value, "tolist"):  # numpy scalar or array
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        return str(value)

    print(json.dumps(obj, indent=2, default=plain))


def describe_error(exc, command, has_preset=True):
    """An exception as one plain sentence naming the file, without repeating the command name.

    ``has_preset``: the command has ``--preset`` (so the advice may name it).
    """
    if isinstance(exc, MemoryError):
        return "out of memory; try a smaller volume" + (" or --preset tiny" if has_preset else "")
    if isinstance(exc, ImportError):
        return f"a package it needs cannot be imported ({exc}); reinstall with: pip install -e ."
    if isinstance(exc, OSError) and exc.filename and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}"
        if exc.errno == errno.ENOSPC and "free" not in exc.strerror:
            text += "; free some space and rerun (writes are atomic: nothing half-written was kept)"
    elif isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])  # str(KeyError) would add quotes
    else:
        text = str(exc) or type(exc).__name__
    prefix = f"indi4d {command}: "
    while text.startswith(prefix):
        text = text[len(prefix):]
    return text
