"""What limits the enhancement: InDI and the CNN trained along four axes, scored against the truth.

Run from the repository root, after chapters 01-02 of the default book (``make book`` or
``python -m indi4d.book --only 01 02``)::

    TF_CPP_MIN_LOG_LEVEL=2 .venv/bin/python benchmarks/limits.py [--run-dir runs/default] [--points ID ...]

Each point is the default book's InDI recipe with one change (:mod:`indi4d.limits.points`):
optimiser steps (750 to 12 000), network capacity (three sizes), training data (a quarter,
half, all of the training slices) or the training target (HQ, the HQ halves, the halves
deconvolved, and two oracles only a simulation has: the ideal HQ and the true attenuation).
For every point InDI is scored at N = 1 and at the rule's N, and the CNN at the same budget,
on the same held-out test slices, in attenuation (1/µm) against the truth, beside the bicubic,
HQ and ideal-HQ rows. The reference recipe is then picked by the rule stated in
:data:`indi4d.limits.points.RULE`.

Training is checkpointed: stop the script at any time and run it again to resume.
``benchmarks/results/limits.json`` is rewritten after every point, with the machine, the
date and the commit; ``complete`` says whether every point asked for is in it. On two CPU
cores the default points take 25-60 min each, the largest network several hours.
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    from indi4d.limits import ORDER, default_out, run_study

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", default="runs/default", help="run folder with chapters 01-02 (default %(default)s)")
    parser.add_argument("--points", nargs="*", help=f"point ids, default all in this order: {' '.join(ORDER)}")
    parser.add_argument("--max-points", type=int, default=None, help="stop after training this many points")
    parser.add_argument("--preset", default="default", help="evaluation preset (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="default benchmarks/results/limits.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    out = Path(args.out) if args.out else default_out(ROOT)
    result = run_study(args.run_dir, out, args.points, preset=args.preset, seed=args.seed, root=ROOT,
                       max_points=args.max_points, progress=not args.no_progress)
    print(f"{len(result['points'])} point(s) in {out}; complete: {result['complete']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
