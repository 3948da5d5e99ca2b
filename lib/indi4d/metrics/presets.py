"""Parameters of the whole evaluation (:data:`PRESETS`) and the keys of its result (:data:`METRIC_KEYS`)."""

# the book on 2 CPU cores
_DEFAULT = {
    "max_slices": 8,
    "half_length_px": 16,
    "spacing_px": 2.0,
    "smooth_sigma_px": 1.5,
    "max_profiles": 4000,
    "n_groups": 10,
    "ssim_win_size": 7,
    "sift_ratio": 0.75,
    "sift_max_displacement_px": 3.0,
    "cnr_margin_px": 2,
    "otsu_classes": 2,
    "min_size_px": 9,
    "match_fraction": 0.25,
    "flat_distance_px": 3,
    "detector_sigma_px": 1.0,
    "edge_sigma_px": 1.0,
    "edge_low": 0.05,
    "edge_high": 0.1,
}

PRESETS = {
    # tests/CI: two slices, few profiles
    "tiny": dict(_DEFAULT, max_slices=2, half_length_px=10, max_profiles=800, n_groups=5),
    "default": _DEFAULT,
    # paper-sized volumes (2048² slices): more slices and profiles, longer profiles
    "paper": dict(_DEFAULT, max_slices=32, half_length_px=20, max_profiles=20000),
}

#: Keys of :func:`evaluate_pair`'s result, in order (a contract for chapter 05 and the CLI).
METRIC_KEYS = (
    "psnr", "psnr_std", "ssim", "ssim_std",
    "sift_congruent_points", "sift_congruent_points_std",
    "fwhm_nm", "fwhm_nm_mean", "fwhm_nm_std", "edge_overshoot", "n_edge_profiles",
    "cnr",
    "false_particles_per_mm2", "missed_particles_per_mm2", "n_false_particles",
    "n_missed_particles", "n_detected_particles", "n_true_particles",
    "false_edge_fraction", "flat_region_error",
)
