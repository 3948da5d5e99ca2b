"""What limits the enhancement: InDI and the CNN trained along four axes, scored against the truth.

- :mod:`~indi4d.limits.points` -- the points, their recipes and the rule that picks the
  reference recipe, all stated before anything runs;
- :mod:`~indi4d.limits.study` -- pairs with oracle targets or fewer slices, training and
  scoring one point (resumable), the reference rows, :func:`pick_reference`;
- :mod:`~indi4d.limits.run` -- :func:`run_study`: every point in order, ``limits.json``
  rewritten after each (``benchmarks/limits.py`` runs it).
"""

from .points import AXES, BASE, NETWORKS, ORACLES, ORDER, RULE, TARGETS, all_points, select_points, training_overrides
from .run import default_out, provenance, read_results, run_study
from .study import (SWEEP, derived_pairs, limits_dir, oracle_volume, pick_reference, point_pairs, reference_scores,
                    run_point, score_point, train_point)

__all__ = [
    "AXES", "BASE", "NETWORKS", "ORACLES", "ORDER", "RULE", "SWEEP", "TARGETS", "all_points", "default_out",
    "derived_pairs", "limits_dir", "oracle_volume", "pick_reference", "point_pairs", "provenance",
    "read_results",
    "reference_scores", "run_point", "run_study", "score_point", "select_points",
    "train_point", "training_overrides",
]
