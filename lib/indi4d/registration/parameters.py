"""Parameters of the registration step (chapter 02), per preset.

One table for the whole step: the spam registration (:mod:`.spam_driver`)
reads the entries in :data:`REGISTRATION_KEYS`, the rest (disc mask,
equalisation, split, resampling) are used by :func:`indi4d.registration.register_scans`.
"""

#: The ``tiny`` preset (tests / CI: HQ volumes of 32-64^3 voxels, seconds), with every key explained;
#: ``default`` and ``paper`` below say only what they change.
_TINY = {
    "bin_start": 1,  # spam multiscale: first binning level (power of 2)
    "max_iterations": 60,  # per binning level
    "delta_phi_min": 1e-4,  # spam's own stop: |ΔΦ| below this
    # our judgement (registration.convergence): Φ stable over the last iterations, residual down, Φ plausible
    "stability_window": 5,  # iterations over which Φ must be stable
    "stability_translation_vox": 0.05,  # largest translation change over the window (HQ voxels)
    "stability_rotation_deg": 0.05,  # largest rotation change over the window (degrees)
    "max_rotation_deg": 10.0,  # a sample moved between two scans: larger rotations are a false optimum
    "retry_blur_factors": (2.0,),  # coarse-to-fine retries when not converged: smoothing x factor, then refine
    "rigid": True,  # rigid Φ (the sample is moved, not deformed) or affine (False, as in the paper)
    "margin_fraction": 0.1,  # spam margin, fraction of the smallest HQ side
    "blur_sigma": 1.0,  # Gaussian blur (HQ voxels) of both scans before registering
    "hq_blur_sigma": "auto",  # extra blur of HQ to match the LQ resolution: "auto" (from the data) or voxels
    "coarse_search": True,  # cross-correlation search for the initial translation
    "coarse_max_shift_vox": 4.0,  # largest translation it looks for, per axis (HQ voxels)
    "disc_radius": None,  # reconstruction disc radius (HQ pixels); None = from the data
    "disc_margin": 2,  # pixels trimmed off the disc edge (the mask of the pairs)
    "registration_radius_fraction": 0.95,  # registration keeps off the edge of the HQ disc
    # linear between robust percentiles: averages (Noise2Noise targets) stay averages; "global" = histogram
    "equalisation": "percentile",  # "percentile" | "none" | "global" | "clahe"
    "n_quantiles": 1024,  # size of the equalisation table ("global", "clahe")
    "val_fraction": 0.1,
    "test_fraction": 0.1,
    "guard_slices": 1,  # slices dropped between a held-out block and training
    "z_margin": 0,  # slices dropped at each end of the HQ volume
    "interpolation_order": 3,  # spline order when resampling LQ onto HQ
}

PRESETS = {
    "tiny": _TINY,
    # the book on 2 CPU cores: HQ volumes of ~128-256^3 voxels
    "default": dict(_TINY, bin_start=2, blur_sigma=2.0,  # noisy 100 nm LQ: more smoothing than the tiny tests
                    coarse_max_shift_vox=16.0, guard_slices=2),
    # the paper's scale (2048^3 HQ, mask radius 1024 px), for a large machine
    "paper": dict(_TINY, bin_start=8, max_iterations=50, rigid=False, margin_fraction=0.05, coarse_max_shift_vox=64.0,
                  disc_radius=1024.0, disc_margin=0, n_quantiles=4096, val_fraction=0.05, test_fraction=0.05,
                  guard_slices=4),
}

#: The preset entries the spam registration (:func:`.spam_driver.register_volumes`) uses.
REGISTRATION_KEYS = ("bin_start", "max_iterations", "delta_phi_min", "rigid", "margin_fraction", "blur_sigma",
                     "hq_blur_sigma", "coarse_search", "coarse_max_shift_vox", "stability_window",
                     "stability_translation_vox", "stability_rotation_deg", "max_rotation_deg", "retry_blur_factors")
