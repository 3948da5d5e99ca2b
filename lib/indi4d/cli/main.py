"""The ``indi4d`` parser and entry point: sub-commands, exit status, error messages."""

import argparse
import os
import sys

from .. import __version__
from . import data_commands, evaluate_command, model_commands, register_command, segment_commands
from .common import HelpFormatter, describe_error

EPILOG = (
    "Every command checks its output paths before any work: an output that is, or lies inside, or\n"
    "holds one of its inputs is refused (exit status 2), and outputs are written atomically.\n"
    "Data cache: $INDI4D_DATA_DIR when set, else the user cache folder; used by 'simulate --cached'\n"
    "and 'fetch' (the other commands read and write only the paths they are given).\n"
    "Exit status: 0 done, 2 refused or failed (the message names the file), 130 interrupted."
)


def build_parser():
    """Return the argparse parser of the ``indi4d`` command."""
    parser = argparse.ArgumentParser(
        prog="indi4d", formatter_class=HelpFormatter, epilog=EPILOG,
        description="InDI enhancement of X-ray nano-tomography: simulate, register, train, enhance, evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"indi4d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_commands.add_parsers(sub)
    register_command.add_parsers(sub)
    model_commands.add_parsers(sub)
    evaluate_command.add_parsers(sub)
    segment_commands.add_parsers(sub)
    return parser


def quiet_tensorflow(environ=os.environ):
    """Keep TensorFlow's log lines off the user's terminal unless the user asked for them.

    Sets ``TF_CPP_MIN_LOG_LEVEL=2`` (TensorFlow's C++ warnings and errors only)
    and absl's Python log level to errors, before any command imports
    TensorFlow; a ``TF_CPP_MIN_LOG_LEVEL`` the user set is left as it is, and
    so is absl then. Returns True when it set them.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in environ:
        return False
    environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    try:
        from absl import logging as absl_logging
    except ImportError:  # absl comes with TensorFlow: without it there is nothing to quiet
        return True
    absl_logging.set_verbosity(absl_logging.ERROR)
    return True


def main(argv=None):
    """Entry point of the ``indi4d`` console script; returns the exit status.

    The package's errors (bad or unsafe paths, unreadable files, refused
    model folders, registration failures, permissions) are printed as
    ``indi4d COMMAND: error: ...`` with exit status 2; Ctrl-C exits with 130;
    neither shows a traceback. TensorFlow's log lines are quietened first
    (:func:`quiet_tensorflow`).
    """
    quiet_tensorflow()
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt:
        print(f"indi4d {args.command}: interrupted (nothing half-written is left under an output name)",
              file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError, RuntimeError, MemoryError, ImportError) as exc:
        print(f"indi4d {args.command}: error: {describe_error(exc, args.command, hasattr(args, 'preset'))}",
              file=sys.stderr)
        return 2
    return 0
