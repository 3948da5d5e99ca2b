"""What the baselines minimise: the CNN's regression loss and pix2pix's GAN losses and step.

The step functions plug into the one training loop of :mod:`indi4d.training.loop`:
the CNN with :func:`indi4d.training.single_network.objective_method` and
:func:`regression_objective`, the GAN with :func:`gan_method` (two networks, two
optimisers, one forward pass per step).
"""

from pathlib import Path

import tensorflow as tf

from ..core.indi import split_target
from ..training.checkpoints import Part, restore_state, write_state
from ..training.single_network import adam, start_run
from ..training.loop import Method, run_loop

#: The GAN step's loss terms (history keys; ``g_loss`` is stored as ``loss``).
GAN_TERMS = ("g_loss", "g_adv", "g_l1", "d_loss", "d_real_acc", "d_fake_acc")


def regression_objective(loss="mae"):
    """The CNN baseline's objective for :func:`indi4d.training.fit`.

    Parameters
    ----------
    loss : {"mae", "mse"}
        ``mean |F(y) - x|`` or ``mean (F(y) - x)**2`` over pixels and batch.

    Returns
    -------
    callable
        ``objective(network, lq, hq, seed, training)`` -> scalar float32 tensor;
        ``seed`` is unused (a direct regressor has no randomness). ``hq`` is
        (B, H, W, 1) or (B, H, W, 2); with two channels (independent HQ
        halves) the target ``x`` is channel 1 (:func:`indi4d.core.indi.split_target`),
        the input is always ``lq``.
    """
    if loss not in ("mae", "mse"):
        raise ValueError(f"regression_objective: loss must be 'mae' or 'mse', got {loss!r}")

    def objective(network, lq, hq, seed, training):
        del seed
        _, target = split_target(hq)  # two channels: the target is channel 1
        err = network(lq, training=training) - target
        return tf.reduce_mean(tf.abs(err)) if loss == "mae" else tf.reduce_mean(tf.square(err))

    return objective


def gan_losses(d_real, d_fake, fake, target, l1_weight=100.0):
    """pix2pix losses from the discriminator's logits on real and generated pairs.

    With ``BCE(l, c) = mean(softplus(l) - c l)`` (binary cross-entropy of
    logits ``l`` against the constant label ``c``)::

        d_loss = (BCE(d_real, 1) + BCE(d_fake, 0)) / 2
        g_adv  = BCE(d_fake, 1)                 (the non-saturating form)
        g_l1   = mean |fake - target|
        g_loss = g_adv + l1_weight * g_l1

    Parameters
    ----------
    d_real, d_fake : tensor, (B, h, w, 1), float32
        Patch logits of D(lq, hq) and D(lq, G(lq)).
    fake, target : tensor, (B, H, W, 1), float32
        G(lq) and hq.
    l1_weight : float
        lambda (pix2pix: 100).

    Returns
    -------
    dict of scalar tensors
        ``g_loss``, ``g_adv``, ``g_l1``, ``d_loss``, and ``d_real_acc`` /
        ``d_fake_acc``: the fraction of real / generated patches classified
        correctly (logit > 0 / < 0).
    """
    bce = tf.nn.sigmoid_cross_entropy_with_logits
    d_real = tf.cast(d_real, tf.float32)
    d_fake = tf.cast(d_fake, tf.float32)
    d_loss = 0.5 * (tf.reduce_mean(bce(tf.ones_like(d_real), d_real)) +
                    tf.reduce_mean(bce(tf.zeros_like(d_fake), d_fake)))
    g_adv = tf.reduce_mean(bce(tf.ones_like(d_fake), d_fake))
    g_l1 = tf.reduce_mean(tf.abs(tf.cast(fake, tf.float32) - tf.cast(target, tf.float32)))
    return {"g_loss": g_adv + l1_weight * g_l1, "g_adv": g_adv, "g_l1": g_l1, "d_loss": d_loss,
            "d_real_acc": tf.reduce_mean(tf.cast(d_real > 0, tf.float32)),
            "d_fake_acc": tf.reduce_mean(tf.cast(d_fake < 0, tf.float32))}


def gan_method(generator, discriminator, g_opt, d_opt, l1_weight=100.0):
    """The pix2pix GAN as a :class:`~indi4d.training.loop.Method` for the one training loop.

    Each step updates the discriminator on ``(lq, hq)`` (real) and
    ``(lq, G(lq))`` (generated) and the generator on ``adv + l1_weight L1``
    (:func:`gan_losses`), both from the same forward pass. The validation loss
    is the mean ``|G(lq) - hq|``. Neither draws random numbers, so the step
    seed is unused. With a two-channel ``hq`` (independent HQ halves) the
    real image and the L1 target are channel 1 (:func:`indi4d.core.indi.split_target`).

    Parameters
    ----------
    generator : keras.Model
        Input ``image`` (B, H, W, 1), output (B, H, W, 1) in [-1, 1].
    discriminator : keras.Model
        Inputs ``[condition, image]`` (:func:`indi4d.baselines.build_patchgan`).
    g_opt, d_opt : keras.optimizers.Optimizer
    l1_weight : float
        pix2pix's lambda.

    Returns
    -------
    Method
        Terms :data:`GAN_TERMS`; the checkpoint files are ``generator.weights.h5``,
        ``discriminator.weights.h5``, ``g_optimizer.npz`` and ``d_optimizer.npz``;
        the final networks ``model.keras`` and ``discriminator.keras``.
    """
    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables

    def train_step(lq, hq, step_seed):
        del step_seed
        _, hq = split_target(hq)  # two channels: the target is channel 1
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator(lq, training=True)
            d_real = discriminator([lq, hq], training=True)
            d_fake = discriminator([lq, fake], training=True)
            losses = gan_losses(d_real, d_fake, fake, hq, l1_weight)
        g_grads = g_tape.gradient(losses["g_loss"], g_vars)
        d_grads = d_tape.gradient(losses["d_loss"], d_vars)
        g_opt.apply_gradients(zip(g_grads, g_vars))
        d_opt.apply_gradients(zip(d_grads, d_vars))
        return losses

    def val_loss(lq, hq, val_seed):
        del val_seed
        _, target = split_target(hq)
        return tf.reduce_mean(tf.abs(generator(lq, training=False) - target))

    return Method(parts=gan_parts(generator, discriminator, g_opt, d_opt), train_step=train_step,
                  val_loss=val_loss, terms=GAN_TERMS, show=(("g_l1", "l1"), ("d_loss", "d")), desc="GAN training")


def gan_parts(generator, discriminator, g_opt, d_opt):
    """The GAN's two :class:`~indi4d.training.checkpoints.Part` s, with their checkpoint and final file names."""
    return (Part(generator, g_opt, "generator.weights.h5", "g_optimizer.npz", "model"),
            Part(discriminator, d_opt, "discriminator.weights.h5", "d_optimizer.npz", "discriminator"))


def gan_optimizers(max_lr, total_steps, pct_start, disc_lr_factor=1.0, beta_1=0.5):
    """(generator, discriminator) Adam optimisers on one-cycle schedules.

    They peak at ``max_lr`` and ``disc_lr_factor * max_lr`` (:func:`indi4d.training.single_network.adam`).
    """
    return (adam(max_lr, total_steps, pct_start, beta_1=beta_1),
            adam(disc_lr_factor * max_lr, total_steps, pct_start, beta_1=beta_1))


def save_gan_checkpoint(model_dir, generator, discriminator, g_opt, d_opt, state, keep=2):
    """Write both networks, both optimisers' variables and the loop state as ``checkpoints/ckpt_<step>``."""
    return write_state(model_dir, gan_parts(generator, discriminator, g_opt, d_opt), state, keep)


def load_gan_checkpoint(path, generator, discriminator, g_opt, d_opt):
    """Restore what :func:`save_gan_checkpoint` wrote; return the loop state (dict)."""
    parts = gan_parts(generator, discriminator, g_opt, d_opt)
    for part in parts:
        part.build()
    return restore_state(path, parts)


def fit_gan(generator, discriminator, train_batches, val_batches, model_dir, *, epochs, steps_per_epoch, max_lr,
            pct_start=0.25, disc_lr_factor=1.0, l1_weight=100.0, beta_1=0.5, seed=0, max_minutes=None,
            max_steps=None, jit_compile=False, config=None, progress=True):
    """Train a pix2pix GAN (:func:`gan_method`) with the one training loop: checkpoints, resume, stop rules.

    Two Adam optimisers (``beta_1``) on one-cycle cosine schedules
    (:func:`indi4d.training.one_cycle_cosine`) of ``epochs * steps_per_epoch``
    steps: the generator's peaks at ``max_lr``, the discriminator's at
    ``disc_lr_factor * max_lr``. Given the same batches the steps are
    deterministic, so a run stopped and resumed from its last checkpoint ends
    with the weights of an uninterrupted one.

    Parameters
    ----------
    generator, discriminator : keras.Model
        As in :func:`gan_method`.
    train_batches : callable
        ``train_batches(epoch)`` -> iterable of ``(lq, hq)``, each (B, H, W, 1)
        float32, deterministic in ``epoch``.
    val_batches : list of (lq, hq)
        Fixed validation batches; ``val_loss`` is the mean ``|G(lq) - hq|`` on them.
    model_dir : str or Path
        ``config.json``, ``checkpoints/``, ``history.json``, ``model.keras``
        (the generator) and ``discriminator.keras`` go here; a checkpoint here
        with an equal ``config`` is resumed, another run refused.
    epochs, steps_per_epoch : int
        Length of the run and of the schedules.
    max_lr, pct_start : float
        The generator's schedule.
    disc_lr_factor, l1_weight, beta_1 : float
        See :data:`indi4d.baselines.PRESETS`.
    seed : int
        Step seeds (unused by the GAN step); the weights' seeds are set by
        whoever builds the networks.
    max_minutes : float, optional
        Wall-time safeguard of this call.
    max_steps : int, optional
        Stop after this many optimiser steps in this call.
    jit_compile : bool
        XLA-compile the step.
    config : dict, optional
        Saved as ``config.json``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        :func:`indi4d.training.loop.run_loop`'s summary; ``loss`` is the last
        epoch's mean generator loss. ``history.json`` holds per epoch ``loss``,
        ``val_loss``, ``g_adv``, ``g_l1``, ``d_loss``, ``d_real_acc``,
        ``d_fake_acc``, ``lr``, ``seconds`` and ``steps``.
    """
    model_dir = Path(model_dir)
    start_run(model_dir, config, epochs, steps_per_epoch, val_batches, "train", max_steps=max_steps)
    g_opt, d_opt = gan_optimizers(max_lr, epochs * steps_per_epoch, pct_start, disc_lr_factor, beta_1)
    method = gan_method(generator, discriminator, g_opt, d_opt, l1_weight)
    return run_loop(method, train_batches, val_batches, model_dir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                    seed=seed, max_minutes=max_minutes, max_steps=max_steps, jit_compile=jit_compile,
                    progress=progress)
