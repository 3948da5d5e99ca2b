"""The one training loop of InDI, the CNN baseline and the GAN baseline.

A method is described by a :class:`Method`: the networks it trains with their
optimisers (:class:`~indi4d.training.checkpoints.Part`) and a *step function*
that updates them on one batch and returns its loss terms. :func:`run_loop`
does everything else, the same way for every method: epochs of
``steps_per_epoch`` batches, per-epoch validation and history, a checkpoint
after every epoch and when it stops, resume from the newest intact checkpoint
with the data position replayed, a progress bar, and the stop rules.

The run is bounded by its steps (``epochs * steps_per_epoch``, the length of
the learning-rate schedule, or ``stop_at`` when smaller: a baseline stops at
InDI's step count on InDI's schedule). Two more rules can stop one call early:
``max_steps`` (optimiser steps in this call: a reproducible pause) and
``max_minutes`` (a wall-time safeguard, which makes the result depend on the
machine and is therefore warned about and recorded). ``stopped_by`` says which
rule ended the call: ``"steps"``, ``"max_steps"`` or ``"wall_time_budget"``.

Reproducibility: step ``k`` gets the stateless seed ``(seed, k)``; validation
batch ``i`` gets ``(seed + 1, i)`` every epoch; the batches of epoch ``e`` come
from ``train_batches(e)``. A run stopped and resumed therefore replays exactly
the batches and draws of an uninterrupted one.
"""

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from .. import model_checkpoints, model_folder
from ..machine import PACKAGE_ROOT, machine_record, source_commit
from .checkpoints import averaged_weights, restore_state, write_state

STOP_RULES = ("steps", "max_steps", "wall_time_budget")


@dataclass
class Method:
    """What the loop trains and how one step does it.

    Attributes
    ----------
    parts : sequence of Part
        The networks and optimisers; the first one's learning rate is logged.
    train_step : callable
        ``train_step(lq, hq, seed) -> dict`` of scalar tensors, one per name of
        ``terms``; ``seed`` is a (2,) int32 tensor. Updates the networks.
        Traced once by ``tf.function``.
    val_loss : callable
        ``val_loss(lq, hq, seed) -> scalar tensor`` on one validation batch.
    terms : tuple of str
        The step's loss terms, averaged per epoch into the history; the first
        is stored as ``loss``.
    show : tuple of (str, str)
        (term, label) pairs shown on the progress bar.
    desc : str
        Progress-bar title.
    """

    parts: tuple
    train_step: Callable
    val_loss: Callable
    terms: tuple = ("loss",)
    show: tuple = (("loss", "loss"),)
    desc: str = "training"

    def history_keys(self):
        return ("loss", "val_loss") + tuple(self.terms[1:]) + ("lr", "seconds", "steps")


def check_length(epochs, steps_per_epoch, val_batches, max_steps=None, who="training"):
    """Refuse a run that cannot take a step, before anything is written.

    Raises
    ------
    ValueError
        ``epochs`` or ``steps_per_epoch`` below 1, ``max_steps`` given and
        below 1, or no validation batches.
    """
    if int(epochs) < 1 or int(steps_per_epoch) < 1:
        raise ValueError(f"{who}: epochs and steps per epoch must be at least 1, got {int(epochs)} and "
                         f"{int(steps_per_epoch)}; nothing was written")
    if max_steps is not None and int(max_steps) < 1:
        raise ValueError(f"{who}: max_steps must be at least 1, got {int(max_steps)}; nothing was written")
    if not val_batches:
        raise ValueError(f"{who}: no validation batches")


#: An epoch's batches are drawn in blocks of at most this many bytes before any of them is trained on.
#: Drawn while the step ran, the input pipeline's threads and the step shared the cores: on 2 CPU
#: cores a default-preset step took 0.13 s instead of 0.079 s (+ 0.009 s to draw a batch alone).
DRAW_AHEAD_BYTES = 256 * 2**20


def _batch_bytes(batch):
    """Bytes of one batch (a tuple of arrays or tensors)."""
    return sum(np.asarray(part).nbytes for part in batch)


def epoch_batches(train_batches, state, steps_per_epoch, who="training"):
    """The batches still due in ``state["epoch"]``, after replaying a resumed run's data position.

    ``state["step_in_epoch"]`` batches were used before a checkpoint; they are
    drawn again and dropped so the run continues on the same data. The caller
    advances ``state["step_in_epoch"]`` per batch. The batches are drawn ahead
    in blocks of up to :data:`DRAW_AHEAD_BYTES` (the same batches in the same
    order: only when they are drawn changes).

    Raises
    ------
    ValueError
        When ``train_batches(epoch)`` yields fewer than ``steps_per_epoch`` batches.
    """
    batches = iter(train_batches(state["epoch"]))
    drawn = 0

    def draw():
        nonlocal drawn
        try:
            batch = next(batches)
        except StopIteration:
            raise ValueError(f"{who}: epoch {state['epoch']} gave only {drawn} of {steps_per_epoch} batches") from None
        drawn += 1
        return batch

    for _ in range(state["step_in_epoch"]):
        draw()
    while drawn < steps_per_epoch:
        block = [draw()]
        room = max(1, DRAW_AHEAD_BYTES // max(1, _batch_bytes(block[0])))
        block += [draw() for _ in range(min(room, steps_per_epoch - drawn + 1) - 1)]
        yield from block


def budget_spent(steps_this_call, start, max_steps=None, max_minutes=None):
    """``"max_steps"`` or ``"wall_time_budget"`` once this call's allowance is used up, else None."""
    if max_steps is not None and steps_this_call >= max_steps:
        return "max_steps"
    if max_minutes is not None and time.perf_counter() - start > 60.0 * max_minutes:
        return "wall_time_budget"
    return None


def _new_state(method):
    return {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "sums": {k: 0.0 for k in method.terms},
            "epoch_seconds": 0.0, "history": {k: [] for k in method.history_keys()}}


def _resume(model_dir, method):
    """Build the optimisers, restore the newest intact checkpoint; (state, resumed_from, damaged names)."""
    for part in method.parts:
        part.build()
    state, _ = model_checkpoints.restore_latest_checkpoint(model_dir, lambda path: restore_state(path, method.parts))
    if state is None:
        return _new_state(method), None, []
    if "loss_sum" in state:  # a checkpoint written before the loops were one
        state["sums"] = {"loss": state.pop("loss_sum")}
    damaged = state.pop("resumed_after_damaged", [])
    return state, int(state["global_step"]), damaged


def _end_epoch(model_dir, method, state, steps_per_epoch, validate):
    """Append the finished epoch to the history, write it, and reset the per-epoch sums."""
    history = state["history"]
    means = {k: state["sums"][k] / steps_per_epoch for k in method.terms}
    history["loss"].append(means[method.terms[0]])
    history["val_loss"].append(validate())
    for k in method.terms[1:]:
        history[k].append(means[k])
    history["lr"].append(float(method.parts[0].optimizer.learning_rate))
    history["seconds"].append(round(state["epoch_seconds"], 3))
    history["steps"].append(state["global_step"])
    state.update(epoch=state["epoch"] + 1, step_in_epoch=0, sums={k: 0.0 for k in method.terms},
                 epoch_seconds=0.0)
    model_folder.write_history(model_dir, history)


def run_loop(method, train_batches, val_batches, model_dir, *, epochs, steps_per_epoch, seed=0,
             max_minutes=None, max_steps=None, stop_at=None, jit_compile=False, progress=True):
    """Train ``method``'s networks in an accepted model folder; resume from its newest intact checkpoint.

    Parameters
    ----------
    method : Method
    train_batches : callable
        ``train_batches(epoch)`` -> iterable of ``(lq, hq)`` batches, ``lq``
        (B, H, W, 1) and ``hq`` (B, H, W, 1) or (B, H, W, 2) float32 (two
        channels: channel 0 builds InDI's ``x_t``, channel 1 is the target);
        deterministic in ``epoch``.
    val_batches : list of (lq, hq)
        Fixed validation batches (same shapes). When an optimiser keeps an
        EMA of the weights (``use_ema``), validation and the saved networks use
        the averaged weights; the checkpoints hold the raw ones and the averages.
    model_dir : str or Path
        Whose configuration was accepted (:func:`indi4d.model_folder.accept_config`).
    epochs, steps_per_epoch : int
        Length of the run; the schedules of the optimisers must span it.
    seed : int
        Stateless seeds ``(seed, k)`` of step ``k``, ``(seed + 1, i)`` of validation batch ``i``.
    max_minutes : float, optional
        Wall-time safeguard of this call: stop after the step that exceeds it (warned).
    max_steps : int, optional
        Stop after this many optimiser steps in this call.
    stop_at : int, optional
        The run's step bound when smaller than the schedule (a baseline
        stops at InDI's step count); counted over all calls.
    jit_compile : bool
        XLA-compile the step.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``model_dir``, ``epochs_done``, ``global_step``, ``total_steps`` (the
        step bound: the schedule's length, or ``stop_at`` when smaller),
        ``stopped_by`` (:data:`STOP_RULES`), ``stopped`` (None when the run
        reached its steps, else ``stopped_by``), ``max_minutes``, ``loss`` /
        ``val_loss`` (last epoch), ``seconds`` and ``seconds_per_step`` (this
        call), ``run_seconds`` (the run's epochs over all its calls),
        ``resumed_from`` (global step or None) and ``resumed_after_damaged``
        (names of damaged checkpoints skipped).
    """
    model_dir = Path(model_dir)
    check_length(epochs, steps_per_epoch, val_batches, max_steps)
    state, resumed_from, damaged = _resume(model_dir, method)
    train_step = tf.function(method.train_step, jit_compile=jit_compile, reduce_retracing=True)
    val_step = tf.function(method.val_loss, reduce_retracing=True)

    def validate():  # with the averaged weights when the optimisers keep an EMA
        with averaged_weights(method.parts):
            return float(np.mean([float(val_step(tf.constant(lq), tf.constant(hq),
                                                 tf.constant([seed + 1, i], tf.int32)))
                                  for i, (lq, hq) in enumerate(val_batches)]))

    total = epochs * steps_per_epoch if stop_at is None else min(epochs * steps_per_epoch, int(stop_at))
    start = time.perf_counter()
    steps_this_call, stopped = 0, None
    bar = tqdm(total=total, initial=state["global_step"], desc=method.desc, unit="step", disable=not progress,
               dynamic_ncols=True)
    while state["epoch"] < epochs and state["global_step"] < total and stopped is None:
        epoch_start = time.perf_counter()
        for lq, hq in epoch_batches(train_batches, state, steps_per_epoch):
            out = train_step(lq, hq, tf.constant([seed, state["global_step"]], tf.int32))
            losses = {k: float(out[k]) for k in method.terms}
            if not all(math.isfinite(v) for v in losses.values()):
                raise RuntimeError(f"{model_dir}: the loss became non-finite at step {state['global_step']} "
                                   f"({losses}); lower max_lr")
            for k in method.terms:
                state["sums"][k] += losses[k]
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            steps_this_call += 1
            bar.update(1)
            bar.set_postfix(epoch=state["epoch"] + 1, **{label: f"{losses[k]:.4f}" for k, label in method.show})
            stopped = "steps" if state["global_step"] >= total else budget_spent(steps_this_call, start, max_steps,
                                                                                  max_minutes)
            if stopped and state["step_in_epoch"] < steps_per_epoch:
                break
        state["epoch_seconds"] += time.perf_counter() - epoch_start
        if state["step_in_epoch"] == steps_per_epoch:
            _end_epoch(model_dir, method, state, steps_per_epoch, validate)
            bar.set_postfix(epoch=state["epoch"], val=f"{state['history']['val_loss'][-1]:.4f}")
        write_state(model_dir, method.parts, state)
    bar.close()

    with averaged_weights(method.parts):  # the saved networks hold the EMA weights when there is one
        for part in method.parts:
            model_folder.write_network(model_dir, part.network, part.final)
    model_folder.write_history(model_dir, state["history"])
    stopped_by = "steps" if state["global_step"] >= total else stopped
    if stopped_by == "wall_time_budget":
        warnings.warn(f"{model_dir}: training stopped by its wall-time budget ({max_minutes:g} min for this call) "
                      f"after {state['global_step']} of {total} steps, so the result depends on the machine's speed",
                      RuntimeWarning, stacklevel=2)
    seconds = time.perf_counter() - start
    history = state["history"]
    return {
        "model_dir": str(model_dir), "epochs_done": state["epoch"], "global_step": state["global_step"],
        "total_steps": total, "stopped_by": stopped_by, "stopped": None if stopped_by == "steps" else stopped_by,
        "max_minutes": max_minutes,
        "loss": history["loss"][-1] if history["loss"] else None,
        "val_loss": history["val_loss"][-1] if history["val_loss"] else None,
        "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps_this_call, 4) if steps_this_call else None,
        # the whole run's training time over all its calls (a resumed run's earlier epochs included)
        "run_seconds": round(sum(history["seconds"]) + state["epoch_seconds"], 2),
        "resumed_from": resumed_from, "resumed_after_damaged": damaged,
        # where the seconds were measured and which code trained it: a published network's card shows both
        "machine": machine_record(), "commit": source_commit(PACKAGE_ROOT),
    }
