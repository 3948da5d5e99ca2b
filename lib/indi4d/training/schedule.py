"""The one-cycle learning-rate schedule with cosine warm-up and decay (the paper's recipe)."""

import math

import keras
import tensorflow as tf


def one_cycle_cosine(max_lr, total_steps, pct_start=0.25, div_factor=25.0, final_div_factor=1e3):
    """One-cycle learning-rate schedule with cosine warm-up and cosine decay.

    ``lr`` rises from ``max_lr / div_factor`` to ``max_lr`` over the first
    ``pct_start`` of the steps, then decays to ``max_lr / (div_factor *
    final_div_factor)``, both along half cosines (Smith & Topin 2019, the
    fastai/PyTorch ``OneCycleLR`` shape).

    Parameters
    ----------
    max_lr : float
    total_steps : int
        Optimiser steps of the whole run.
    pct_start : float
        Fraction of the steps spent warming up, in (0, 1).
    div_factor, final_div_factor : float

    Returns
    -------
    OneCycleCosine
        A ``keras.optimizers.schedules.LearningRateSchedule``.
    """
    return OneCycleCosine(max_lr, total_steps, pct_start, div_factor, final_div_factor)


@keras.saving.register_keras_serializable(package="indi4d")
class OneCycleCosine(keras.optimizers.schedules.LearningRateSchedule):
    """One-cycle cosine learning rate as a function of the optimiser step; see :func:`one_cycle_cosine`."""

    def __init__(self, max_lr, total_steps, pct_start=0.25, div_factor=25.0, final_div_factor=1e3):
        if total_steps < 1 or not 0.0 < pct_start < 1.0:
            raise ValueError(f"one-cycle schedule: need total_steps >= 1 and 0 < pct_start < 1, "
                             f"got {total_steps}, {pct_start}")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = max(1.0, self.pct_start * self.total_steps)
        lr0 = self.max_lr / self.div_factor
        lr_end = lr0 / self.final_div_factor
        # half cosine from a to b as p goes 0 -> 1: b + (a - b) (1 + cos(pi p)) / 2
        p_up = tf.clip_by_value(step / warm, 0.0, 1.0)
        up = self.max_lr + (lr0 - self.max_lr) * (1.0 + tf.cos(math.pi * p_up)) / 2.0
        p_down = tf.clip_by_value((step - warm) / max(1.0, self.total_steps - warm), 0.0, 1.0)
        down = lr_end + (self.max_lr - lr_end) * (1.0 + tf.cos(math.pi * p_down)) / 2.0
        return tf.where(step < warm, up, down)

    def get_config(self):
        return {"max_lr": self.max_lr, "total_steps": self.total_steps, "pct_start": self.pct_start,
                "div_factor": self.div_factor, "final_div_factor": self.final_div_factor}
