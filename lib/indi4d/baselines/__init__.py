"""CNN and GAN baselines for chapter 05, trained on InDI's pairs with InDI's budget.

Two learned baselines show what InDI's many small steps buy over a single pass:

* **CNN** -- the InDI U-Net without its time input
  (``model.build_unet(..., time_embedding=False)``) trained as a direct
  regressor ``F(y) ~ x`` with a mean absolute (or squared) error. A regressor
  that minimises an average error predicts the conditional *mean* of the
  plausible HQ images, which is smooth where the LQ scan is ambiguous: the
  "regression to the mean" that blurs fine edges.
* **GAN** -- pix2pix (Isola et al. 2017): the same U-Net as generator, a
  PatchGAN discriminator that sees the LQ input together with a real or a
  generated HQ image and scores every ``R x R`` patch (``R`` its receptive
  field), and the generator loss ``adv + lambda L1`` with ``lambda = 100``.

Both use the pairs, crops, batches (same seeds, so the same batches), network
width/depth and one-cycle learning-rate schedule of the InDI run they are
compared with (:func:`indi_budget` reads them from the InDI model folder), and
they are bounded by the number of optimiser steps InDI took. A wall-time cap
applies only when asked for (``minutes``) or as the preset's safeguard; when it
stops a baseline the summary says ``stopped_by = "wall_time_budget"``. Both are
trained by the one loop of :mod:`indi4d.training.loop`, each with its own step
function: the CNN's (:func:`indi4d.training.single_network.objective_method` with
:func:`regression_objective`) and the GAN's (:func:`gan_method`: two networks,
two optimisers).

Modules: :mod:`~indi4d.baselines.networks` (the PatchGAN),
:mod:`~indi4d.baselines.objectives` (losses, the GAN step, :func:`fit_gan`),
:mod:`~indi4d.baselines.budget` (:func:`indi_budget`, caps),
:mod:`~indi4d.baselines.train` (:data:`PRESETS`, :func:`train_cnn`,
:func:`train_gan`, :func:`train_baselines`), :mod:`~indi4d.baselines.predict`
(:func:`load_baseline`, :func:`predict_direct`).

Model folders (``RUN_DIR/baselines/cnn`` and ``RUN_DIR/baselines/gan``) follow
the InDI model-folder contract: ``model.keras`` (the CNN / the GAN's
generator, input ``image`` only), ``config.json``, ``normalisation.json``,
``history.json`` (per epoch ``loss`` and ``val_loss``, plus the GAN's loss
terms), ``checkpoints/``; the GAN adds ``discriminator.keras``. Each also gets
``summary.json`` once its budget is used up: a folder with it (and the same
config) is reused as it is. Training reads and writes these files through
:mod:`indi4d.model_folder`.
"""

from .budget import indi_budget, trained_state
from .networks import build_patchgan, patchgan_receptive_field
from .objectives import (GAN_TERMS, fit_gan, gan_losses, gan_method, gan_optimizers, load_gan_checkpoint,
                         regression_objective, save_gan_checkpoint)
from .predict import load_baseline, predict_direct
from .train import PRESETS, train_baselines, train_cnn, train_gan

__all__ = [
    "GAN_TERMS", "PRESETS", "build_patchgan", "fit_gan", "gan_losses", "gan_method", "gan_optimizers", "indi_budget",
    "load_baseline", "load_gan_checkpoint", "patchgan_receptive_field", "predict_direct", "regression_objective",
    "save_gan_checkpoint", "train_baselines", "train_cnn", "train_gan", "trained_state",
]
