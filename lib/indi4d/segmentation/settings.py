"""Settings of the segmentation chapter (07): presets, the methods compared, the descriptors tabulated."""

#: ``train``/``network``: presets of :data:`indi4d.segmentation.TRAIN_PRESETS` and of the network;
#: ``indi_method``: which chapter-06 volume is "InDI" (``indi_xy``: the paper's recipe, xy slices and
#: z-interpolation; ``indi_fused``: the three-axis fusion); ``tolerance_px``: of the boundary F-score
#: (50 nm voxels); ``holdout_px``: slices within this distance of the training slice are left out of
#: every score; ``mask_margin_px``: the scored disc stays this far inside the sample cylinder;
#: ``min_agreement``: a stored scribbles file is used while this share of its pixels lies on its phases;
#: ``val_offset``: the validation slice lies this share of the stack away from the training slice;
#: ``batch_size``: slices per network call when segmenting a volume; ``train_overrides``: entries of the
#: training preset changed for the chapter (tiny: more, still cheap, steps: tracing dominates its time);
#: ``describe``: the segmentations whose descriptors are computed (besides the truth's): a 256³ volume costs
#: one to two minutes on 2 CPU cores, so the larger presets leave out the upper bound's; ``z_slices``: analyse
#: only this many slices around the scribbled one (segmentation, scores, descriptors; None: every slice).
PRESETS = {
    "tiny": {"train": "tiny", "network": "tiny", "indi_method": "indi_xy", "tolerance_px": 2.0, "holdout_px": 2,
             "mask_margin_px": 2, "min_agreement": 0.95, "val_offset": 0.25, "batch_size": 64,
             "train_overrides": {"epochs": 4, "steps_per_epoch": 25}, "describe": ["lq", "indi", "ideal"],
             "z_slices": None},
    "default": {"train": "default", "network": "default", "indi_method": "indi_xy", "tolerance_px": 2.0,
                "holdout_px": 2, "mask_margin_px": 4, "min_agreement": 0.95, "val_offset": 0.25, "batch_size": 8,
                "train_overrides": {}, "describe": ["lq", "indi"], "z_slices": None},
    # a workshop's minutes: the default network trained 100 steps (TRAIN_PRESETS["workshop"]), on a slab of
    # half the stack (2.4 µm, still several particle diameters)
    "workshop": {"train": "workshop", "network": "default", "indi_method": "indi_xy", "tolerance_px": 2.0,
                 "holdout_px": 2, "mask_margin_px": 4, "min_agreement": 0.95, "val_offset": 0.25, "batch_size": 8,
                 "train_overrides": {}, "describe": ["lq", "indi"], "z_slices": 48},
    "paper": {"train": "paper", "network": "paper", "indi_method": "indi_xy", "tolerance_px": 2.0,
              "holdout_px": 4, "mask_margin_px": 8, "min_agreement": 0.95, "val_offset": 0.25, "batch_size": 4,
              "train_overrides": {}, "describe": ["lq", "indi"], "z_slices": None},
}

#: The images segmented, in table order, and their display names. ``ideal`` is the upper bound: the
#: true attenuation blurred by the HQ scan's measured PSF, without noise or rings (the in situ series
#: has no HQ scan; this is what an ideal HQ scan of it would show).
METHODS = {"lq": "LQ (bicubic)", "indi": "InDI", "ideal": "ideal HQ (upper bound)"}

#: Scalar descriptors of the tables and plots: key of :func:`indi4d.segmentation.describe` -> (label, unit, scale).
DESCRIPTORS = {
    "particle_volume_fraction": ("particle volume fraction", "%", 100.0),
    "dense_fraction": ("dense-phase fraction", "%", 100.0),
    "porosity": ("porosity", "%", 100.0),
    "particle_count": ("particle count", "", 1.0),
    "mean_diameter_um": ("mean equivalent diameter", "µm", 1.0),
    "specific_surface_area_per_um": ("specific surface area", "1/µm", 1.0),
    "crack_fraction": ("crack fraction", "%", 100.0),
}
