"""Training (chapter 04): one loop for InDI, the CNN and the GAN, resumable and bounded by steps.

:func:`train_indi` is what ``indi4d train PAIRS_DIR MODEL_DIR`` runs: it reads
the registered pairs of chapter 02, builds the U-Net of :mod:`indi4d.core.model`
and fits it with the InDI objective of :mod:`indi4d.core.indi` under a one-cycle
cosine learning-rate schedule. The baselines of chapter 05 are trained by the
same loop with their own step functions (:mod:`indi4d.baselines`).

Modules:

- :mod:`~indi4d.training.schedule`: :func:`one_cycle_cosine`;
- :mod:`~indi4d.training.loop`: :func:`~indi4d.training.loop.run_loop`, the one
  loop (epochs, validation, history, checkpoints, resume with data replay,
  stop rules) over a :class:`~indi4d.training.loop.Method`: networks +
  optimisers + a step function;
- :mod:`~indi4d.training.checkpoints`: checkpoints of any set of networks and
  optimisers (:class:`~indi4d.training.checkpoints.Part`), and
  :func:`~indi4d.training.checkpoints.averaged_weights` (the EMA weights that
  validation and the saved model use when ``ema`` > 0);
- :mod:`~indi4d.training.single_network`: the single-network step of InDI and the CNN, and :func:`fit`;
- :mod:`~indi4d.training.data`: the crops of a pairs folder (shared, so every
  method sees the same batches);
- :mod:`~indi4d.training.indi_run`: :data:`PRESETS`, :func:`train_indi`, and a run's networks
  (:func:`indi_model`, :func:`indi_deconv_model`: the published one installed, or trained);
- :mod:`~indi4d.training.notes`: what chapter 04 says of a training, in Markdown;
- :mod:`~indi4d.training.figures`: what chapter 04 shows of a training (the path, the curves, the restorations).

The model folder (a contract, see CONTRIBUTING.md; files owned by
:mod:`indi4d.model_folder`)::

    MODEL_DIR/model.keras          final weights (also written when stopped early; the EMA when ema > 0)
    MODEL_DIR/config.json          network and training parameters, seed, pairs
    MODEL_DIR/normalisation.json   from the pairs folder
    MODEL_DIR/history.json         per epoch: loss, val_loss, lr, seconds, steps
    MODEL_DIR/summary.json         the last call: steps, stopped_by, resumed_from, ...
    MODEL_DIR/checkpoints/ckpt_*   weights + optimiser state + loop position

Reproducibility: the weights start from ``seed``; the batches of epoch ``e``
come from ``pipeline.training_dataset(..., seed=seed * 1_000_003 + e)``; the
times and noise of global step ``k`` from the stateless seed ``(seed, k)``. So
a run that is stopped (``max_steps``, the wall-time safeguard, or killed) and
started again from its last checkpoint replays exactly the batches it would
have seen. The run is bounded by its step count; the wall-time budget
(``max_minutes``) is a safeguard that is warned about and recorded as
``stopped_by = "wall_time_budget"`` when it fires.
"""

import importlib

#: Public name -> the module that owns it. Loaded on first use, so that the TensorFlow-free
#: parts (:mod:`~indi4d.training.recipes`, :mod:`~indi4d.training.data`) import without TensorFlow.
_OWNERS = {
    "save_model": ("..model_folder", "save_network"),
    **{name: (".checkpoints", name) for name in ("Part", "averaged_weights", "load_checkpoint", "save_checkpoint")},
    **{name: (".data", name) for name in ("SEED_STRIDE", "validation_batches")},
    **{name: (".single_network", name) for name in ("adam", "fit", "objective_method", "start_run")},
    **{name: (".indi_run", name) for name in ("indi_deconv_model", "indi_model", "train_indi")},
    **{name: (".figures", name) for name in ("plot_edge_profiles", "plot_loss_curves", "plot_sampler_path",
                                             "plot_sharpness_vs_steps", "plot_t_sampling", "plot_validation_slices")},
    "notes": (".notes", None),  # the module itself
    "PRESETS": (".recipes", "PRESETS"),
    **{name: (".loop", name) for name in ("STOP_RULES", "Method", "budget_spent", "epoch_batches", "run_loop")},
    **{name: (".schedule", name) for name in ("OneCycleCosine", "one_cycle_cosine")},
}

__all__ = sorted(_OWNERS)


def __getattr__(name):
    if name not in _OWNERS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _OWNERS[name]
    value = importlib.import_module(module, __name__)
    value = value if attr is None else getattr(value, attr)
    globals()[name] = value  # looked up once
    return value


def __dir__():
    return sorted(set(globals()) | set(_OWNERS))
