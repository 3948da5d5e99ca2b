"""One network, one objective: the step function of InDI and of the CNN baseline, and :func:`fit`."""

from pathlib import Path

import keras
import tensorflow as tf

from .. import model_checkpoints, model_folder
from .checkpoints import Part
from .loop import Method, check_length, run_loop
from .schedule import one_cycle_cosine


def adam(max_lr, total_steps, pct_start, beta_1=0.9, ema=0.0):
    """Adam on a one-cycle cosine schedule of ``total_steps`` steps (:func:`one_cycle_cosine`).

    ``ema`` in [0, 1): 0 = no average; else Keras 3's exponential moving
    average of the weights (``use_ema=True, ema_momentum=ema``):
    ``a_k = ema a_{k-1} + (1 - ema) w_k`` after step k, ``a_1 = w_1``, kept in
    the optimiser's variables (so checkpoints carry it) and never written into
    the weights during training (``ema_overwrite_frequency=None``); the loop
    validates and saves with it (:func:`indi4d.training.checkpoints.averaged_weights`).
    """
    ema = float(ema or 0.0)
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema must be 0 (off) or a decay in (0, 1), e.g. 0.999; got {ema}")
    kw = {"use_ema": True, "ema_momentum": ema, "ema_overwrite_frequency": None} if ema > 0 else {}
    return keras.optimizers.Adam(learning_rate=one_cycle_cosine(max_lr, total_steps, pct_start), beta_1=beta_1, **kw)


def objective_method(network, objective, optimizer, desc="training"):
    """The :class:`~indi4d.training.loop.Method` that minimises ``objective`` over ``network``'s weights.

    Parameters
    ----------
    network : keras.Model
    objective : callable
        ``objective(network, lq, hq, seed, training)`` -> scalar loss tensor
        (:func:`indi4d.core.indi.indi_objective` for InDI,
        :func:`indi4d.baselines.regression_objective` for the CNN).
    optimizer : keras.optimizers.Optimizer
    desc : str
        Progress-bar title.

    Returns
    -------
    Method
        One step: the gradient of the batch loss, applied by ``optimizer``;
        its term ``loss``.
    """
    train_vars = network.trainable_variables

    def train_step(lq, hq, step_seed):
        with tf.GradientTape() as tape:
            loss = objective(network, lq, hq, step_seed, True)
        grads = tape.gradient(loss, train_vars)
        optimizer.apply_gradients(zip(grads, train_vars))
        return {"loss": loss}

    def val_loss(lq, hq, val_seed):
        return objective(network, lq, hq, val_seed, False)

    return Method(parts=(Part(network, optimizer),), train_step=train_step, val_loss=val_loss, desc=desc)


def start_run(model_dir, config, epochs, steps_per_epoch, val_batches, who, *, restart=False, normalisation=None,
              max_steps=None):
    """Check a run's length, then accept its configuration in ``model_dir`` (only then is anything written).

    Parameters
    ----------
    model_dir : str or Path
    config : dict or None
        Stored as ``config.json``; a folder holding another run is refused
        unless ``restart`` (:func:`indi4d.model_folder.accept_config`).
    epochs, steps_per_epoch : int
    val_batches : list
    who : str
        Command name for messages.
    restart : bool
        Discard another run in the folder instead of refusing.
    normalisation : dict, optional
        Stored as ``normalisation.json`` (compared first, like the config).
    max_steps : int, optional
        Refused when below 1.

    Returns
    -------
    list of Path
        The folder's complete checkpoints, oldest first (empty for a new run).
    """
    check_length(epochs, steps_per_epoch, val_batches, max_steps, who)
    model_folder.accept_config(model_dir, dict(config or {}), restart=restart, who=who, normalisation=normalisation)
    return model_checkpoints.checkpoints(model_dir)


def fit(network, train_batches, val_batches, objective, model_dir, *, epochs, steps_per_epoch,
        max_lr, pct_start=0.25, seed=0, max_minutes=None, max_steps=None, jit_compile=False,
        config=None, progress=True, ema=0.0):
    """Train ``network`` to minimise ``objective``, with checkpoints, resume and the stop rules of the loop.

    Parameters
    ----------
    network : keras.Model
    train_batches : callable
        ``train_batches(epoch)`` -> iterable of ``(lq, hq)`` batches, ``lq``
        (B, H, W, 1), ``hq`` (B, H, W, 1) or (B, H, W, 2) float32;
        deterministic in ``epoch``. At most
        ``steps_per_epoch`` batches are taken.
    val_batches : list of (lq, hq)
        Fixed validation batches.
    objective : callable
        ``objective(network, lq, hq, seed, training)`` -> scalar loss tensor,
        with ``seed`` a (2,) int32 tensor.
    model_dir : str or Path
        Where ``config.json``, ``checkpoints/``, ``history.json`` and
        ``model.keras`` go. A checkpoint there is resumed.
    epochs, steps_per_epoch : int
        Length of the run (and of the learning-rate schedule).
    max_lr, pct_start : float
        One-cycle schedule (:func:`one_cycle_cosine`).
    seed : int
        Stateless seeds of the steps and of the validation batches.
    max_minutes : float, optional
        Wall-time safeguard of this call.
    max_steps : int, optional
        Stop after this many optimiser steps in this call (a reproducible pause).
    jit_compile : bool
        XLA-compile the training step.
    config : dict, optional
        Saved as ``config.json``; a folder holding a run with another config is refused.
    progress : bool
        Show a tqdm progress bar.
    ema : float
        Decay of the exponential moving average of the weights (0 = off; :func:`adam`).

    Returns
    -------
    dict
        :func:`indi4d.training.loop.run_loop`'s summary.
    """
    model_dir = Path(model_dir)
    start_run(model_dir, config, epochs, steps_per_epoch, val_batches, "train", max_steps=max_steps)
    method = objective_method(network, objective, adam(max_lr, epochs * steps_per_epoch, pct_start, ema=ema))
    return run_loop(method, train_batches, val_batches, model_dir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                    seed=seed, max_minutes=max_minutes, max_steps=max_steps, jit_compile=jit_compile,
                    progress=progress)
