"""The evaluation's settings: presets, the methods compared, the paper's numbers and the project's goals."""

#: The candidate InDI step counts N: the one list every sweep draws from.
STEP_COUNTS = (1, 2, 4, 7, 10, 15, 20, 50)
#: The candidates the ablation scores (:mod:`indi4d.evaluation.ablation`: seven trainings, so fewer N).
ABLATION_STEP_COUNTS = tuple(n for n in STEP_COUNTS if n in (1, 2, 4, 10, 20))
#: The candidates chapter 04 scores on the validation slices (:mod:`indi4d.evaluation.validation`):
#: up to 20 steps, where the sharpness curve bends.
VALIDATION_STEP_COUNTS = tuple(n for n in STEP_COUNTS if n <= 20)

#: ``steps_sweep``: InDI step counts N tried (:data:`STEP_COUNTS`); ``fwhm_tol``/``psnr_tol_db``: the
#: step-selection rule (:func:`select_steps`); ``uncertainty_samples``/``uncertainty_eps``:
#: K stochastic samples with noise scale eps; ``max_test_slices``: test slices used
#: (evenly spaced; None = all); ``metrics``/``tiling``: presets of
#: :mod:`indi4d.metrics` and :mod:`indi4d.inference`; ``roi_fraction``: side of the
#: zoomed region as a fraction of the slice; ``block_px``: block size of the
#: block-averaged uncertainty correlation.
PRESETS = {
    "tiny": {"steps_sweep": STEP_COUNTS, "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
             "uncertainty_samples": 4, "uncertainty_eps": 0.1, "max_test_slices": 4, "metrics": "tiny",
             "tiling": "tiny", "roi_fraction": 0.4, "block_px": 2},
    "default": {"steps_sweep": STEP_COUNTS, "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
                "uncertainty_samples": 8, "uncertainty_eps": 0.1, "max_test_slices": 16, "metrics": "default",
                "tiling": "default", "roi_fraction": 0.3, "block_px": 4},
    "paper": {"steps_sweep": STEP_COUNTS, "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
              "uncertainty_samples": 16, "uncertainty_eps": 0.1, "max_test_slices": 32, "metrics": "paper",
              "tiling": "paper", "roi_fraction": 0.2, "block_px": 8},
}

#: The methods, in table order, and their display names.
#: ``hq_ideal`` (the HQ scan at infinite dose: the ceiling of HQ-trained estimators) and
#: ``classical`` (bicubic + tuned Gaussian or TV denoising) are reference rows;
#: ``indi_deconv`` is the InDI variant trained on deconvolved targets (a separate method).
METHODS = {"bicubic": "LQ (bicubic)", "classical": "classical (bicubic + denoising)", "hq": "HQ",
           "hq_ideal": "HQ ideal (infinite dose)", "indi": "InDI", "indi_deconv": "InDI-deconv", "cnn": "CNN",
           "gan": "GAN"}

#: Reference numbers of the paper (measured on real scans, Fig. 2C and the text):
#: resolution as FWHM mean ± std in nm, CNR. ``None`` = not reported.
PAPER_RESULTS = {
    "bicubic": {"fwhm_nm": 803.0, "fwhm_nm_std": 135.0, "cnr": 0.9},
    "hq": {"fwhm_nm": 357.0, "fwhm_nm_std": 53.0, "cnr": 2.4},
    "indi": {"fwhm_nm": 286.0, "fwhm_nm_std": 25.0, "cnr": 3.9},
    "cnn": {"fwhm_nm": 550.0, "fwhm_nm_std": 54.0, "cnr": None},
    "gan": {"fwhm_nm": 392.0, "fwhm_nm_std": 68.0, "cnr": None},
}

#: Goals of the ``indi_deconv`` method when it is absent from a run.
_NO_DECONV = "the indi-deconv method (method key 'indi_deconv') was not produced in this run"
_HQ_EDGE = {"metric": "edge_overshoot", "against": "hq", "relation": "<=", "offset": 0.03}

#: The project's quality goals (issues 9 and 20), in the format of :mod:`~indi4d.evaluation.goals`:
#: on the held-out test slices, PSNR/SSIM in physical units against the truth.
GOALS = (
    {"name": "InDI PSNR vs truth >= HQ + 1 dB", "group": "indi", "metric": "psnr", "reference": "truth",
     "method": "indi", "against": "hq", "relation": ">=", "offset": 1.0},
    {"name": "InDI SSIM vs truth >= HQ's", "group": "indi", "metric": "ssim", "reference": "truth",
     "method": "indi", "against": "hq", "relation": ">=", "factor": 1.0},
    {"name": "InDI FWHM <= 1.05 x HQ's with overshoot <= HQ's + 0.03", "group": "indi", "metric": "fwhm_nm",
     "method": "indi", "against": "hq", "relation": "<=", "factor": 1.05, "also": [_HQ_EDGE]},
    {"name": "InDI FWHM <= 0.9 x CNN's", "group": "indi", "metric": "fwhm_nm", "method": "indi", "against": "cnn",
     "relation": "<=", "factor": 0.9},
    {"name": "InDI CNR >= 1.2 x HQ's", "group": "indi", "metric": "cnr", "method": "indi", "against": "hq",
     "relation": ">=", "factor": 1.2},
    {"name": "InDI false particles / mm² <= HQ's", "group": "indi", "metric": "false_particles_per_mm2",
     "method": "indi", "against": "hq", "relation": "<=", "factor": 1.0},
    {"name": "Steps earn their keep: FWHM at the chosen N <= 0.9 x N = 1's, PSNR cost <= 0.5 dB", "group": "steps",
     "metric": "fwhm_nm", "method": "indi", "against": "indi_n1", "relation": "<=", "factor": 0.9,
     "also": [{"metric": "psnr", "reference": "truth", "against": "indi_n1", "relation": ">=", "offset": -0.5}]},
    {"name": "indi-deconv FWHM <= 0.8 x HQ's with overshoot <= HQ's + 0.03", "group": "indi_deconv",
     "metric": "fwhm_nm", "method": "indi_deconv", "against": "hq", "relation": "<=", "factor": 0.8,
     "also": [_HQ_EDGE], "why_missing": _NO_DECONV},
    {"name": "indi-deconv PSNR vs truth >= HQ + 1 dB", "group": "indi_deconv", "metric": "psnr",
     "reference": "truth", "method": "indi_deconv", "against": "hq", "relation": ">=", "offset": 1.0,
     "why_missing": _NO_DECONV},
    {"name": "indi-deconv false particles / mm² <= HQ's", "group": "indi_deconv",
     "metric": "false_particles_per_mm2", "method": "indi_deconv", "against": "hq", "relation": "<=",
     "factor": 1.0, "why_missing": _NO_DECONV},
    {"name": "Uncertainty: Spearman(std of the stochastic samples, true error) >= 0.6 per pixel",
     "group": "uncertainty", "source": "uncertainty", "metric": "spearman", "relation": ">=", "target": 0.6,
     "why_missing": "no uncertainty estimate in this evaluation (it needs the truth and the stochastic samples)"},
    {"name": "Budget: the whole default book <= 40 min on 2 CPU cores, install included", "group": "budget",
     "source": "budget", "metric": "book_minutes", "relation": "<=", "target": 40.0,
     "why_missing": "measured by the book's build (make book timings), not by chapter 05"},
    {"name": "Budget: each model's training <= 15 min at the default preset", "group": "budget",
     "source": "budget", "metric": "max_training_minutes", "relation": "<=", "target": 15.0,
     "why_missing": "the training times are not known to this evaluation"},
)

#: Goals of issue 20 measured outside chapter 05 (``source`` "project"): the numbers are read by
#: :func:`indi4d.evaluation.project.project_numbers` from the run's chapter 07, the committed
#: ``benchmarks/results`` and ``book/timings.json``; ``benchmarks/quality.py`` checks them beside :data:`GOALS`.
PROJECT_GOALS = (
    {"name": "Segmentation with InDI closes >= 50 % of the mean Dice gap between LQ and the ideal HQ",
     "group": "segmentation", "source": "project", "metric": "dice_gap_closed", "relation": ">=", "target": 0.5,
     "why_missing": "the run has no chapter 07 results (segmentation/metrics.json)"},
    {"name": "Training loop within 1.3 x the raw step time (benchmarks/speed.py, in its epochs)", "group": "speed",
     "source": "project", "metric": "loop_ratio", "relation": "<=", "target": 1.3,
     "why_missing": "benchmarks/results/speed.json holds no training-loop measurement"},
    {"name": "limits.json: at least 12 trained points, each scored at N = 1 and at the rule's N", "group": "limits",
     "source": "project", "metric": "limits_points", "relation": ">=", "target": 12,
     "why_missing": "benchmarks/results/limits.json is missing"},
    {"name": "Budget: the workshop book <= 10 min on 2 CPU cores (its last recorded build)", "group": "budget",
     "source": "project", "metric": "workshop_book_minutes", "relation": "<=", "target": 10.0,
     "why_missing": "book/timings.json has no workshop build"},
)
