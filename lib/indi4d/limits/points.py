"""The points of the limits study: one training recipe each, along four axes, stated before anything runs.

Every point is the reference recipe (:data:`BASE`: the default book's InDI run)
with one thing changed: the optimiser steps, the network's capacity, the amount
of training data, or the training target. Two targets exist only in simulation
(the *oracles*): the ideal HQ scan (the same blur at infinite dose) and the
true attenuation itself. Trained on the same LQ inputs, they separate what the
targets cost from what the LQ scan does not hold.

The rule that picks the reference recipe is stated here, before any point is
measured (:data:`RULE`, :func:`indi4d.limits.study.pick_reference`).
"""

#: The reference point every other point changes one thing of: the default book's InDI
#: (1500 steps of 4 crops of 96², the default network, all training slices, Noise2Inverse halves).
BASE = {"target": "halves", "steps": 1500, "network": "default", "data_fraction": 1.0}

#: Epochs of every run: the step count is spread over them (validation 15 times a run, as the book's).
EPOCHS = 15

#: Network sizes of the capacity axis (:func:`indi4d.core.model.build_unet` arguments).
NETWORKS = {
    "default": {"base_filters": 16, "depth": 1, "blocks_per_level": 1, "dilations": (1, 2, 4), "time_dim": 64},
    "base32_depth2": {"base_filters": 32, "depth": 2, "blocks_per_level": 1, "dilations": (1, 2, 4, 8),
                      "time_dim": 64},
    "paper_width_depth2": {"base_filters": 64, "depth": 2, "blocks_per_level": 1, "dilations": (1, 2, 4, 8),
                           "time_dim": 128},
}

#: What each target means. ``oracle`` targets replace the HQ slices of the pairs (simulation only).
TARGETS = {
    "hq": "the HQ scan (the paper's target)",
    "halves": "two independent HQ half-reconstructions, Noise2Noise (the book's)",
    "halves_deconv": "the halves deconvolved by the measured HQ PSF (indi-deconv), x-parametrisation",
    "oracle_ideal": "oracle: the HQ acquisition at infinite dose (HQ's blur, no noise, no rings)",
    "oracle_truth": "oracle: the true attenuation (no blur, no noise)",
}
ORACLES = ("oracle_ideal", "oracle_truth")

#: The axes and their values; each value is one point (the BASE value appears once, as "base").
AXES = {
    "target": ("hq", "halves", "halves_deconv", "oracle_ideal", "oracle_truth"),
    "steps": (750, 1500, 3000, 6000, 12000),
    "network": ("default", "base32_depth2", "paper_width_depth2"),
    "data_fraction": (0.25, 0.5, 1.0),
}

#: The order the points are trained in: the oracles first (they decide whether better targets
#: are the lever at all), then what a user can change, cheapest first.
ORDER = ("target=oracle_truth", "target=oracle_ideal", "base", "target=hq", "target=halves_deconv", "steps=750",
         "steps=3000", "data_fraction=0.25", "data_fraction=0.5", "network=base32_depth2", "steps=6000",
         "steps=12000", "network=paper_width_depth2")

#: The rule that picks the reference recipe, in words (applied by :func:`indi4d.limits.study.pick_reference`).
RULE = ("among the points a user can train with HQ-like targets (no oracle; not the deconvolved targets, which make "
        "indi-deconv, a separate method), the cheapest in training compute (optimiser steps x the network's FLOPs per "
        "pixel; equal costs: the higher PSNR) whose InDI PSNR against the truth at the rule's N is within 0.1 dB of "
        "the best such PSNR and whose FWHM at that N is within 2 % of the best such FWHM; when no point meets both, "
        "the cheapest within 0.1 dB of the best PSNR")
#: Targets that are never InDI's reference recipe: the oracles (simulation only) and the deconvolved
#: halves (targets sharper than any scan: indi-deconv, its own method with its own reference network).
NOT_CANDIDATES = (*ORACLES, "halves_deconv")
RULE_PSNR_DB = 0.1
RULE_FWHM_REL = 0.02


def point_id(axis, value):
    """The name of the point that sets ``axis`` to ``value`` (``"base"`` for the reference values)."""
    return "base" if BASE[axis] == value else f"{axis}={value}"


def all_points():
    """Every point of the study, in :data:`ORDER`, as ``{"id", "axes", "recipe"}`` dicts.

    ``axes`` lists the axes the point lies on (the base lies on all four);
    ``recipe`` is :data:`BASE` with the point's one change.
    """
    points = {}
    for axis, values in AXES.items():
        for value in values:
            pid = point_id(axis, value)
            entry = points.setdefault(pid, {"id": pid, "axes": [], "recipe": dict(BASE, **{axis: value})})
            entry["axes"].append(axis)
    unknown = set(points) ^ set(ORDER)
    if unknown:  # the order names every point exactly once
        raise RuntimeError(f"limits.points: ORDER and AXES disagree on {sorted(unknown)}")
    return [points[pid] for pid in ORDER]


def select_points(names=None):
    """The points named (default all), in :data:`ORDER`; an unknown name is refused before any work."""
    points = all_points()
    if not names:
        return points
    known = {p["id"]: p for p in points}
    missing = [n for n in names if n not in known]
    if missing:
        raise ValueError(f"limits: unknown point(s) {missing}; the points are {list(known)}")
    return [p for p in points if p["id"] in set(names)]


def training_overrides(recipe):
    """The :func:`indi4d.training.train_indi` overrides of a recipe (default preset underneath).

    The step count is spread over :data:`EPOCHS` epochs, so the one-cycle
    schedule always runs to its end and the learning rate ends annealed.
    Oracle targets are ``"hq"`` on their own pairs (:func:`indi4d.limits.study.point_pairs`).
    """
    steps = int(recipe["steps"])
    if steps % EPOCHS:
        raise ValueError(f"limits: steps {steps} must be a multiple of {EPOCHS} epochs")
    target = "hq" if recipe["target"] in ORACLES else recipe["target"]
    # a wall-time safeguard only (the bound is the step count): 6 s a step, ten times a base step on 2 cores
    return {"target": target, "network": dict(NETWORKS[recipe["network"]]), "epochs": EPOCHS,
            "steps_per_epoch": steps // EPOCHS, "max_minutes": max(60.0, 0.1 * steps)}
