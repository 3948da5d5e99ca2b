"""Parameters of the registration step (chapter 02), per preset.

One table for the whole step: the spam registration (:mod:`.spam_driver`)
reads the entries in :data:`REGISTRATION_KEYS`, the rest (disc mask,
equalisation, split, resampling) are used by :func:`indi4d.registration.register_scans`.
"""

PRESETS = {
    # tests / CI: HQ volumes of 32-64^3 voxels, seconds
    "tiny": {
        "bin_start": 1,  # spam multiscale: first binning level (power of 2)
        "max_iterations": 60,  # per binning level
        "delta_phi_min": 1e-4,  # convergence: |ΔΦ| below this
        "rigid": True,  # rigid Φ (the sample is moved, not deformed) or affine (False, as in the paper)
        "margin_fraction": 0.1,  # spam margin, fraction of the smallest HQ side
        "blur_sigma": 1.0,  # Gaussian blur (HQ voxels) of both scans before registering
        "hq_blur_sigma": "auto",  # extra blur of HQ to match the LQ resolution: "auto" (from the data) or voxels
        "coarse_search": True,  # cross-correlation search for the initial translation
        "coarse_max_shift_vox": 4.0,  # largest translation it looks for, per axis (HQ voxels)
        "disc_radius": None,  # reconstruction disc radius (HQ pixels); None = from the data
        "disc_margin": 2,  # pixels trimmed off the disc edge (the mask of the pairs)
        "registration_radius_fraction": 0.95,  # registration keeps off the edge of the HQ disc
        "equalisation": "global",  # "none" | "global" | "clahe"
        "n_quantiles": 1024,  # size of the equalisation table
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "guard_slices": 1,  # slices dropped between a held-out block and training
        "z_margin": 0,  # slices dropped at each end of the HQ volume
        "interpolation_order": 3,  # spline order when resampling LQ onto HQ
    },
    # the book on 2 CPU cores: HQ volumes of ~128-256^3 voxels
    "default": {
        "bin_start": 2,
        "max_iterations": 60,
        "delta_phi_min": 1e-4,
        "rigid": True,
        "margin_fraction": 0.1,
        "blur_sigma": 2.0,  # noisy 100 nm LQ: more smoothing than for the tiny (clean) tests
        "hq_blur_sigma": "auto",
        "coarse_search": True,
        "coarse_max_shift_vox": 16.0,
        "disc_radius": None,
        "disc_margin": 2,
        "registration_radius_fraction": 0.95,
        "equalisation": "global",
        "n_quantiles": 1024,
        "val_fraction": 0.1,
        "test_fraction": 0.1,
        "guard_slices": 2,
        "z_margin": 0,
        "interpolation_order": 3,
    },
    # the paper's scale (2048^3 HQ, mask radius 1024 px), for a large machine
    "paper": {
        "bin_start": 8,
        "max_iterations": 50,
        "delta_phi_min": 1e-4,
        "rigid": False,
        "margin_fraction": 0.05,
        "blur_sigma": 1.0,
        "hq_blur_sigma": "auto",
        "coarse_search": True,
        "coarse_max_shift_vox": 64.0,
        "disc_radius": 1024.0,
        "disc_margin": 0,
        "registration_radius_fraction": 0.95,
        "equalisation": "global",
        "n_quantiles": 4096,
        "val_fraction": 0.05,
        "test_fraction": 0.05,
        "guard_slices": 4,
        "z_margin": 0,
        "interpolation_order": 3,
    },
}

#: The preset entries the spam registration (:func:`.spam_driver.register_volumes`) uses.
REGISTRATION_KEYS = ("bin_start", "max_iterations", "delta_phi_min", "rigid", "margin_fraction", "blur_sigma",
                     "hq_blur_sigma", "coarse_search", "coarse_max_shift_vox")
