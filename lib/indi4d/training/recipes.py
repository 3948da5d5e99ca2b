"""The training presets of InDI (``indi4d train --preset``), readable without TensorFlow.

The CLI states each preset's length and measured time in its help, and must
answer ``--help`` in a fraction of a second: so the presets live here, apart
from the training code (:mod:`indi4d.training.indi_run`), and import nothing
heavier than :mod:`indi4d.training.data`'s target names.
"""

from ..presets import preset_entry
from .data import DEFAULT_TARGET

#: ``network``: :data:`indi4d.core.model.PRESETS` keys. ``crop``/``batch_size``: the
#: random training crops; ``steps_per_epoch`` None = one pass over the training
#: slices' area in crops. ``epochs`` x ``steps_per_epoch`` is the run's length:
#: the bound of the training and the one-cycle schedule's length. Crops lie at
#: least ``min_inside`` inside the reconstruction disc of the pairs.
#: ``default`` is the reference recipe (chapter 08 picks it from the limits study; the
#: reference networks were trained with it, :mod:`indi4d.reference`); ``quick`` is the short
#: run (1500 steps) for trying the commands. Their times are the reference network's own
#: record (``indi4d train --help``), never typed here.
#: ``max_minutes`` is only a wall-time safeguard, well above the expected time:
#: when it fires the run
#: stops cleanly, says so, and records ``stopped_by = "wall_time_budget"``.
#: ``val_crop``/``val_max_slices``: the fixed validation set (centre crops).
#: ``p_one``/``eps``/``threshold``: the InDI objective (:mod:`indi4d.core.indi`);
#: ``eps`` is also the default noise of sampling (``config.json``).
#: The training options below (all recorded in ``config.json["training"]``, so a
#: resume with other values is refused) default to the original behaviour
#: except ``target`` ("auto") and ``p_one`` (1/3): the two changes that won
#: chapter 04's ablation (:mod:`indi4d.evaluation.ablation`, whose baseline is the original).
#: ``target`` "auto" | "hq" | "halves" | "halves_deconv" and ``psf_sigma_nm``
#: (None = the measured one): what the network learns to produce
#: (:func:`indi4d.training.data.load_training_slices`; "auto", the presets'
#: choice, is "halves" when the pairs hold the HQ halves, else "hq", and the
#: resolved target is what ``config.json`` records); ``parametrisation``
#: "x" | "residual" and ``head`` "tanh" | "linear" (:func:`indi4d.core.model.build_unet`);
#: ``loss_weighting`` "none" | "min_snr" (:func:`indi4d.core.indi.loss_scale`);
#: ``noise_schedule`` "linear" | "brownian" (:func:`indi4d.core.indi.noise_std`, the
#: sampler reads it from the folder); ``ema`` 0 (off) or the decay of an
#: exponential moving average of the weights, used for validation and saved
#: in ``model.keras``. ``crop`` may equal the slice size (whole slices; lower
#: ``min_inside`` then, the disc covers ~79 % of a square slice) and so may ``val_crop``.
_OPTIONS = {"target": DEFAULT_TARGET, "psf_sigma_nm": None, "parametrisation": "x", "head": "tanh",
            "loss_weighting": "none", "noise_schedule": "linear", "ema": 0.0}
#: The book's run (the reference recipe); ``quick`` and ``workshop`` are it with a change.
_BOOK_RUN = {
    "network": "default", "crop": 96, "batch_size": 4, "epochs": 15, "steps_per_epoch": 800,
    "max_lr": 1e-3, "pct_start": 0.2, "val_crop": 96, "val_max_slices": 8, "max_minutes": 180.0,
    "p_one": 1 / 3, "eps": 0.0, "threshold": 0.5, "jit_compile": False, "min_inside": 0.9,
    **_OPTIONS,
}
PRESETS = {
    "tiny": {
        "network": "tiny", "crop": 16, "batch_size": 2, "epochs": 2, "steps_per_epoch": 4,
        "max_lr": 2e-3, "pct_start": 0.25, "val_crop": 32, "val_max_slices": 4, "max_minutes": None,
        "p_one": 1 / 3, "eps": 0.0, "threshold": 0.5, "jit_compile": False, "min_inside": 0.9,
        **_OPTIONS,
    },
    "default": _BOOK_RUN,
    # today's short run: the default network and crops, 1500 steps, for trying the commands
    "quick": {**_BOOK_RUN, "epochs": 15, "steps_per_epoch": 100},
    # the default run, whose network the workshop installs instead of training (indi4d.pretrained); only
    # the crops the chapter shows change, to fit the workshop's 96 x 96 HQ slices
    "workshop": {**_BOOK_RUN, "crop": 48, "val_crop": 48},
    "paper": {
        "network": "paper", "crop": 640, "batch_size": 2, "epochs": 1600, "steps_per_epoch": None,
        "max_lr": 5e-4, "pct_start": 0.25, "val_crop": 1024, "val_max_slices": 25, "max_minutes": None,
        "p_one": 1 / 3, "eps": 0.0, "threshold": 0.5, "jit_compile": True, "min_inside": 1.0,
        **_OPTIONS,
    },
}


def preset_steps(name):
    """Optimiser steps of a preset with a fixed length (``epochs * steps_per_epoch``), else None."""
    entry = preset_entry(PRESETS, name)
    return entry["epochs"] * entry["steps_per_epoch"] if entry["steps_per_epoch"] else None
