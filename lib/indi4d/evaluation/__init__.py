"""Chapter 05: InDI against bicubic, HQ, the CNN and GAN baselines, and the truth.

Everything is scored on the held-out *test* slices of the pairs folder
(chapter 02), against the HQ scan (as the paper does) and against the
simulated ground truth (``truth_mu_hq.tif`` / ``truth_labels_hq.tif``, on the
HQ grid with the HQ misalignment, so slice ``z`` of the pairs is slice ``z``
of the truth). The metrics are those of :mod:`indi4d.metrics`.

The steps, each a function of arrays or of a run folder, one module each:

1. :mod:`~indi4d.evaluation.testset` -- :func:`load_test_set`: test slices,
   their truth, mask and pixel size, the pairs' normalisation, the grey
   mapping and the ideal HQ slices; :mod:`~indi4d.evaluation.units` maps
   every output back to physical units (attenuation, 1/µm) for scoring
   against the truth without a grey fit;
2. :mod:`~indi4d.evaluation.sweep` -- :func:`step_sweep` + :func:`select_steps`:
   InDI at N in {1, ..., 50} steps, scored against the truth, and a stated
   rule that picks N;
3. :mod:`~indi4d.evaluation.predictions` and :mod:`~indi4d.evaluation.scores`
   -- :func:`predict_methods` + :func:`score_methods`: every method's output
   (through the one prediction path of :mod:`indi4d.inference`) and metrics
   (with spreads over slices and edge groups); :mod:`~indi4d.evaluation.references`
   adds the ideal HQ scan and a classical denoiser tuned on the validation
   slices; :mod:`~indi4d.evaluation.spectra` the radial power spectra;
4. :mod:`~indi4d.evaluation.uncertainty` -- :func:`uncertainty`: K stochastic
   InDI samples, their per-pixel spread against the true error, with their
   Spearman rank correlation (:func:`rank_correlation`);
5. :func:`~indi4d.evaluation.goals.check_goals` and :mod:`~indi4d.evaluation.findings` -- the project's
   targets and a plain-language account of where InDI wins and where it does
   not, both computed from the numbers; :mod:`~indi4d.evaluation.tables` and
   :mod:`~indi4d.evaluation.figures` show them.

:mod:`~indi4d.evaluation.run` is the one orchestrator: :class:`Evaluation`
runs the stages one by one (chapter 05 shows figures between them) and
:func:`evaluate_run` all at once (``benchmarks/quality.py``); both train or
reuse the baselines (:func:`indi4d.baselines.train_baselines`), write
``RUN_DIR/eval/metrics.json`` and store the chosen N in the model folder
(``steps.json``, the default of ``indi4d enhance``).

Chapter 04 draws on the same package: :mod:`~indi4d.evaluation.validation` scores
the validation slices per N while the network is built (``validation_metrics.json``),
and :mod:`~indi4d.evaluation.ablation` trains and scores one short run per
training change.
"""

from .figures import (
    comparison_panels,
    pick_roi,
    plot_comparison,
    plot_hallucination,
    plot_sweep,
    plot_training_curves,
    plot_uncertainty,
    sweep_references,
    training_histories,
)
from .findings import findings
from .goals import INDI_N1, check_goals
from .references import (CLASSICAL_CANDIDATES, classical_denoise, classical_prediction, reference_predictions,
                         tune_classical)
from .predictions import indi_restore, load_method, predict_methods
from .run import Evaluation, evaluate_run, save_results
from .scores import (REFERENCES, TRUTH_EXTRA_KEYS, no_reference, score, score_methods, scoring_conventions,
                     truth_extras, value)
from .spectra import method_spectra, plot_power_spectra
from .project import project_numbers
from .settings import GOALS, METHODS, PAPER_RESULTS, PRESETS, PROJECT_GOALS
from .sweep import select_steps, step_sweep
from .tables import budget_table, goals_table, hallucination_table, metrics_table, sweep_table, truth_table
from .testset import load_split, load_test_set
from .units import method_side, physical_units, to_normalised, to_physical
from .sanity import output_sanity, sanity_line
from .uncertainty import block_mean, rank_correlation, stochastic_draws, uncertainty
from .validation import (restore_validation, validation_particles, validation_results, validation_scores,
                         validation_table)

__all__ = [
    "GOALS", "METHODS", "PAPER_RESULTS", "PRESETS", "PROJECT_GOALS", "project_numbers",
    "Evaluation", "block_mean", "budget_table", "check_goals",
    "comparison_panels", "evaluate_run", "findings", "goals_table", "hallucination_table", "indi_restore",
    "load_method", "load_test_set", "metrics_table", "no_reference", "pick_roi", "plot_comparison",
    "plot_hallucination", "plot_sweep", "plot_training_curves", "plot_uncertainty", "predict_methods",
    "rank_correlation", "save_results", "score", "score_methods", "select_steps", "step_sweep",
    "sweep_references", "sweep_table", "training_histories", "stochastic_draws", "uncertainty", "value",
    "INDI_N1", "CLASSICAL_CANDIDATES", "REFERENCES", "TRUTH_EXTRA_KEYS", "classical_denoise", "classical_prediction",
    "load_split", "output_sanity", "sanity_line",
    "method_side", "method_spectra", "physical_units", "plot_power_spectra", "reference_predictions",
    "scoring_conventions", "to_normalised", "to_physical", "truth_extras", "truth_table", "tune_classical",
    "restore_validation", "validation_particles", "validation_results", "validation_scores", "validation_table",
]
