"""Settings of the in situ chapter: presets, the methods compared and the paper's Table 1."""

#: ``tiling``/``metrics``: presets of :mod:`indi4d.inference` and :mod:`indi4d.metrics`;
#: ``fuse``: also enhance along y and x and fuse; ``half_length_px``/``max_profiles``/``n_groups``: edge
#: profiles of the FWHM (:func:`indi4d.metrics.fwhm_edge_resolution`); ``margin_px``:
#: erosion of the CNR masks; ``near_px``: distance (50 nm voxels) that counts as "at a
#: phase boundary" in the per-phase errors; ``mask_margin_px``: the valid disc stays this
#: far inside the sample cylinder; ``roi_fraction``: side of the zoomed region;
#: ``score_single_axes``: also score the xz- and yz-only enhancements (the fusion table);
#: ``sanity_samples``/``sanity_slabs``: stochastic samples and z-slabs of the sanity check per time step.
PRESETS = {
    "tiny": {"tiling": "tiny", "fuse": True, "half_length_px": 10, "max_profiles": 1000, "n_groups": 5,
             "margin_px": 1, "near_px": 2, "mask_margin_px": 2, "roi_fraction": 0.5, "ssim_win": 7,
             "score_single_axes": False, "sanity_samples": 2, "sanity_slabs": 2},
    "default": {"tiling": "default", "fuse": True, "half_length_px": 16, "max_profiles": 4000, "n_groups": 10,
                "margin_px": 2, "near_px": 2, "mask_margin_px": 4, "roi_fraction": 0.3, "ssim_win": 7,
                "score_single_axes": True, "sanity_samples": 3, "sanity_slabs": 4},
    # a workshop's minutes: xy enhancement only (the fusion triples the network passes), fewer edge profiles
    "workshop": {"tiling": "default", "fuse": False, "half_length_px": 16, "max_profiles": 1000, "n_groups": 5,
                 "margin_px": 2, "near_px": 2, "mask_margin_px": 4, "roi_fraction": 0.3, "ssim_win": 7,
                 "score_single_axes": False, "sanity_samples": 2, "sanity_slabs": 2},
    "paper": {"tiling": "paper", "fuse": True, "half_length_px": 20, "max_profiles": 4000, "n_groups": 10,
              "margin_px": 2, "near_px": 2, "mask_margin_px": 8, "roi_fraction": 0.2, "ssim_win": 7,
              "score_single_axes": True, "sanity_samples": 3, "sanity_slabs": 4},
}

#: Methods in table order and their display names. ``indi_xy`` is the paper's
#: recipe (xy slices, cubic interpolation along z); ``indi_fused`` the mean of the
#: xy-, xz- and yz-enhanced volumes.
METHODS = {
    "lq": "LQ (bicubic)",
    "indi_xy": "InDI (xy + z-interp.)",
    "indi_fused": "InDI (3-axis fusion)",
    "cnn": "CNN (xy + z-interp.)",
    "truth": "truth",
}

#: The axis along which slices are taken for each single-axis enhancement
#: (0: xy slices, 1: xz slices, 2: yz slices).
AXES = {"xy": 0, "xz": 1, "yz": 2}

#: The paper's Table 1 (CNR, real in situ scans) and its in situ resolution (text),
#: GenAI-enhanced 4D nano-tomography, J. Mater. Chem. A, 2025, 13, 29930-29942.
PAPER_TABLE1 = {
    "cnr": {"lq": (4.1, 3.8, 3.6), "indi_xy": (5.1, 4.7, 4.4)},
    "fwhm_nm": {"lq": (866.0, 183.0), "indi_xy": (378.0, 81.0)},
}
