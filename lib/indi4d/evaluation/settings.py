"""The evaluation's settings: presets, the methods compared, the paper's numbers and the project's goals."""

#: ``steps_sweep``: InDI step counts N tried; ``fwhm_tol``/``psnr_tol_db``: the
#: step-selection rule (:func:`select_steps`); ``uncertainty_samples``/``uncertainty_eps``:
#: K stochastic samples with noise scale eps; ``max_test_slices``: test slices used
#: (evenly spaced; None = all); ``metrics``/``tiling``: presets of
#: :mod:`indi4d.metrics` and :mod:`indi4d.inference`; ``roi_fraction``: side of the
#: zoomed region as a fraction of the slice; ``block_px``: block size of the
#: block-averaged uncertainty correlation.
PRESETS = {
    "tiny": {"steps_sweep": (1, 2, 4, 7, 10, 15, 20, 50), "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
             "uncertainty_samples": 4, "uncertainty_eps": 0.1, "max_test_slices": 4, "metrics": "tiny",
             "tiling": "tiny", "roi_fraction": 0.4, "block_px": 2},
    "default": {"steps_sweep": (1, 2, 4, 7, 10, 15, 20, 50), "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
                "uncertainty_samples": 8, "uncertainty_eps": 0.1, "max_test_slices": 16, "metrics": "default",
                "tiling": "default", "roi_fraction": 0.3, "block_px": 4},
    "paper": {"steps_sweep": (1, 2, 4, 7, 10, 15, 20, 50), "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
              "uncertainty_samples": 16, "uncertainty_eps": 0.1, "max_test_slices": 32, "metrics": "paper",
              "tiling": "paper", "roi_fraction": 0.2, "block_px": 8},
}

#: The methods, in table order, and their display names.
METHODS = {"bicubic": "LQ (bicubic)", "hq": "HQ", "indi": "InDI", "cnn": "CNN", "gan": "GAN"}

#: Reference numbers of the paper (measured on real scans, Fig. 2C and the text):
#: resolution as FWHM mean ± std in nm, CNR. ``None`` = not reported.
PAPER_RESULTS = {
    "bicubic": {"fwhm_nm": 803.0, "fwhm_nm_std": 135.0, "cnr": 0.9},
    "hq": {"fwhm_nm": 357.0, "fwhm_nm_std": 53.0, "cnr": 2.4},
    "indi": {"fwhm_nm": 286.0, "fwhm_nm_std": 25.0, "cnr": 3.9},
    "cnn": {"fwhm_nm": 550.0, "fwhm_nm_std": 54.0, "cnr": None},
    "gan": {"fwhm_nm": 392.0, "fwhm_nm_std": 68.0, "cnr": None},
}

#: The project's quality goals for InDI (``benchmarks/quality.py``).
GOALS = (
    {"name": "InDI FWHM <= 0.9 x HQ FWHM", "metric": "fwhm_nm", "method": "indi", "against": "hq",
     "relation": "<=", "factor": 0.9},
    {"name": "InDI FWHM <= 0.45 x LQ FWHM", "metric": "fwhm_nm", "method": "indi", "against": "bicubic",
     "relation": "<=", "factor": 0.45},
    {"name": "InDI CNR >= 1.2 x HQ CNR", "metric": "cnr", "method": "indi", "against": "hq",
     "relation": ">=", "factor": 1.2},
    {"name": "InDI SIFT congruent points (vs HQ) >= 2 x LQ's", "metric": "sift_congruent_points", "reference": "hq",
     "method": "indi", "against": "bicubic", "relation": ">=", "factor": 2.0},
    {"name": "InDI PSNR vs truth >= bicubic + 3 dB", "metric": "psnr", "reference": "truth", "method": "indi",
     "against": "bicubic", "relation": ">=", "offset": 3.0},
)
