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
they stop after the number of optimiser steps *and* the wall-clock minutes
InDI used, whichever comes first. The CNN is trained by
:func:`indi4d.training.fit`; the GAN by :func:`fit_gan`, its own loop with two
optimisers, checkpoints holding both optimisers' state, resume, a progress
bar and a per-epoch history.

Model folders (``RUN_DIR/baselines/cnn`` and ``RUN_DIR/baselines/gan``) follow
the InDI model-folder contract: ``model.keras`` (the CNN / the GAN's
generator, input ``image`` only), ``config.json``, ``normalisation.json``,
``history.json`` (per epoch ``loss`` and ``val_loss``, plus the GAN's loss
terms), ``checkpoints/``; the GAN adds ``discriminator.keras``. Each also gets
``summary.json`` once its budget is used up: a folder with it (and the same
config) is reused as it is.
"""

import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from tqdm.auto import tqdm

from ._atomic import atomic_path
from .presets import resolve
from .training import _checkpoints, _write_json, budget_spent, epoch_batches, save_model  # one layout, one loop

#: ``cnn_loss``: "mae" or "mse" for the CNN regressor. ``l1_weight``: pix2pix's
#: lambda. ``disc_filters``/``disc_layers``/``disc_norm``: the PatchGAN (3 layers
#: = pix2pix's 70 x 70 patches). ``disc_lr_factor``: the discriminator's maximum
#: learning rate relative to the generator's (InDI's). ``beta_1``: Adam's first
#: moment decay for both GAN optimisers (pix2pix: 0.5). ``budget_factor``:
#: multiplies InDI's steps and minutes (1 = the same budget). ``match_minutes``:
#: also stop at InDI's wall-clock minutes (off for ``tiny``, whose few steps
#: take less time than tracing the graph, so only the step count is matched).
PRESETS = {
    "tiny": {"cnn_loss": "mae", "l1_weight": 100.0, "disc_filters": 8, "disc_layers": 2, "disc_norm": "instance",
             "disc_lr_factor": 1.0, "beta_1": 0.5, "budget_factor": 1.0, "match_minutes": False},
    "default": {"cnn_loss": "mae", "l1_weight": 100.0, "disc_filters": 32, "disc_layers": 3, "disc_norm": "instance",
                "disc_lr_factor": 1.0, "beta_1": 0.5, "budget_factor": 1.0, "match_minutes": True},
    "paper": {"cnn_loss": "mae", "l1_weight": 100.0, "disc_filters": 64, "disc_layers": 3, "disc_norm": "instance",
              "disc_lr_factor": 1.0, "beta_1": 0.5, "budget_factor": 1.0, "match_minutes": True},
}

_SUMMARY = "summary.json"


# --------------------------------------------------------------------------- the discriminator


def patchgan_receptive_field(n_layers=3):
    """Side (pixels) of the input patch that one output of :func:`build_patchgan` sees.

    The network has ``n_layers`` 4x4 stride-2 convolutions, then two 4x4
    stride-1 ones at the coarsest scale. A k x k convolution where one feature
    pixel spans ``j`` input pixels widens the field by ``(k - 1) j``::

        R = 1 + 3 (1 + 2 + ... + 2**(n-1)) + 2 * 3 * 2**n = 9 * 2**n - 2

    so 16, 34 and 70 pixels for 1, 2 and 3 layers (pix2pix's "70 x 70 PatchGAN").

    Returns
    -------
    int
    """
    if n_layers < 1:
        raise ValueError(f"patchgan_receptive_field: n_layers must be >= 1, got {n_layers}")
    return 9 * 2 ** int(n_layers) - 2


def build_patchgan(in_channels=1, base_filters=64, n_layers=3, norm="instance", seed=None, name="patchgan"):
    """A conditional PatchGAN discriminator (pix2pix).

    The condition (the LQ input) and the image to judge (real HQ or generated)
    are stacked as channels; ``n_layers`` 4x4 stride-2 convolutions
    (``base_filters``, doubled per layer up to 8x) with leaky ReLU (0.2) follow,
    then a 4x4 stride-1 convolution and a 4x4 convolution to one channel. Each
    output value is the logit "this patch is real" for the input patch of side
    :func:`patchgan_receptive_field` around it.

    Parameters
    ----------
    in_channels : int
        Channels of each of the two inputs.
    base_filters : int
        Filters of the first convolution (pix2pix: 64).
    n_layers : int
        Stride-2 convolutions (3: 70 x 70 patches).
    norm : {"instance", "none"}
        Normalisation after every convolution but the first and last (pix2pix
        uses batch norm with batch size 1, i.e. instance norm).
    seed : int, optional
        Seed of the N(0, 0.02) weight initialisation.
    name : str

    Returns
    -------
    keras.Model
        Inputs ``[condition (B, H, W, C), image (B, H, W, C)]``; output logits
        ``(B, H / 2**n_layers, W / 2**n_layers, 1)`` float32 (``H`` and ``W``
        multiples of ``2**n_layers``).
    """
    if norm not in ("instance", "none"):
        raise ValueError(f"build_patchgan: norm must be 'instance' or 'none', got {norm!r}")
    if n_layers < 1 or base_filters < 1:
        raise ValueError(f"build_patchgan: need n_layers >= 1 and base_filters >= 1, got {n_layers}, {base_filters}")
    counter = iter(range(1000))

    def conv(filters, strides, lname):
        # pix2pix initialises every convolution from N(0, 0.02)
        init = keras.initializers.RandomNormal(0.0, 0.02, seed=None if seed is None else seed + next(counter))
        return layers.Conv2D(filters, 4, strides=strides, padding="same", kernel_initializer=init, name=lname)

    condition = keras.Input((None, None, in_channels), name="condition")
    image = keras.Input((None, None, in_channels), name="image")
    x = layers.Concatenate(name="stack")([condition, image])
    x = conv(base_filters, 2, "down0")(x)
    x = layers.LeakyReLU(0.2, name="down0_lrelu")(x)
    for i in range(1, n_layers + 1):
        strides = 2 if i < n_layers else 1  # the last feature layer keeps the resolution
        x = conv(base_filters * min(2**i, 8), strides, f"down{i}" if strides == 2 else "feature")(x)
        if norm == "instance":
            x = layers.GroupNormalization(groups=-1, name=f"norm{i}")(x)  # groups = channels: instance norm
        x = layers.LeakyReLU(0.2, name=f"lrelu{i}")(x)
    logits = conv(1, 1, "patch_logits")(x)
    return keras.Model([condition, image], logits, name=name)


# --------------------------------------------------------------------------- losses


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
        ``seed`` is unused (a direct regressor has no randomness).
    """
    if loss not in ("mae", "mse"):
        raise ValueError(f"regression_objective: loss must be 'mae' or 'mse', got {loss!r}")

    def objective(network, lq, hq, seed, training):
        del seed
        err = network(lq, training=training) - tf.cast(hq, tf.float32)
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


# --------------------------------------------------------------------------- GAN checkpoints

def _optimizer_values(optimizer):
    return [np.asarray(v.numpy()) for v in optimizer.variables]


def _restore_optimizer(path, optimizer, variables):
    optimizer.build(variables)
    with np.load(path) as data:
        values = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"{path}: optimiser state has {len(values)} variables, the optimiser {len(optimizer.variables)}")
    for var, value in zip(optimizer.variables, values):
        var.assign(value)


def save_gan_checkpoint(model_dir, generator, discriminator, g_opt, d_opt, state, keep=2):
    """Write both networks, both optimisers' variables and the loop state as ``checkpoints/ckpt_<step>``.

    Assembled under a temporary name and renamed when complete, so a run
    killed while saving keeps its previous checkpoint.

    Parameters
    ----------
    model_dir : Path
    generator, discriminator : keras.Model
    g_opt, d_opt : keras.optimizers.Optimizer
    state : dict
        JSON-serialisable; must hold ``global_step``.
    keep : int
        Most recent checkpoints kept.

    Returns
    -------
    Path
    """
    folder = Path(model_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt_{int(state['global_step']):09d}"
    if path.exists():
        shutil.rmtree(path)
    with atomic_path(path) as tmp:
        tmp.unlink()
        tmp.mkdir()
        generator.save_weights(tmp / "generator.weights.h5")
        discriminator.save_weights(tmp / "discriminator.weights.h5")
        np.savez(tmp / "g_optimizer.npz", *_optimizer_values(g_opt))
        np.savez(tmp / "d_optimizer.npz", *_optimizer_values(d_opt))
        (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    for old in _checkpoints(model_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_gan_checkpoint(path, generator, discriminator, g_opt, d_opt):
    """Restore what :func:`save_gan_checkpoint` wrote; return the loop state (dict)."""
    path = Path(path)
    generator.load_weights(path / "generator.weights.h5")
    discriminator.load_weights(path / "discriminator.weights.h5")
    _restore_optimizer(path / "g_optimizer.npz", g_opt, generator.trainable_variables)
    _restore_optimizer(path / "d_optimizer.npz", d_opt, discriminator.trainable_variables)
    return json.loads((path / "state.json").read_text())


# --------------------------------------------------------------------------- the GAN loop

_GAN_TERMS = ("g_loss", "g_adv", "g_l1", "d_loss", "d_real_acc", "d_fake_acc")


def fit_gan(generator, discriminator, train_batches, val_batches, model_dir, *, epochs, steps_per_epoch, max_lr,
            pct_start=0.25, disc_lr_factor=1.0, l1_weight=100.0, beta_1=0.5, seed=0, max_minutes=None,
            max_steps=None, jit_compile=False, config=None, progress=True):
    """Train a pix2pix GAN with checkpoints, resume and a time budget.

    Each step updates the discriminator on ``(lq, hq)`` (real) and
    ``(lq, G(lq))`` (generated) and the generator on ``adv + l1_weight L1``
    (:func:`gan_losses`), both from the same forward pass, with two Adam
    optimisers on one-cycle cosine schedules
    (:func:`indi4d.training.one_cycle_cosine`). Given the same batches the
    steps are deterministic, so a run stopped and resumed from its last
    checkpoint ends with the weights of an uninterrupted one.

    Parameters
    ----------
    generator : keras.Model
        Input ``image`` (B, H, W, 1), output (B, H, W, 1) in [-1, 1].
    discriminator : keras.Model
        Inputs ``[condition, image]`` (:func:`build_patchgan`).
    train_batches : callable
        ``train_batches(epoch)`` -> iterable of ``(lq, hq)``, each (B, H, W, 1)
        float32, deterministic in ``epoch``.
    val_batches : list of (lq, hq)
        Fixed validation batches; ``val_loss`` is the mean ``|G(lq) - hq|`` on them.
    model_dir : str or Path
        ``checkpoints/``, ``history.json``, ``config.json``, ``model.keras``
        (the generator) and ``discriminator.keras`` go here; a checkpoint here
        with an equal ``config`` is resumed.
    epochs, steps_per_epoch : int
        Length of the run and of the schedules.
    max_lr : float
        Generator's maximum learning rate; the discriminator's is
        ``disc_lr_factor * max_lr``.
    pct_start : float
        Warm-up fraction of the schedules.
    disc_lr_factor, l1_weight, beta_1 : float
        See :data:`PRESETS`.
    seed : int
        Recorded in ``config``; the weights' seeds are set by whoever builds the
        networks.
    max_minutes : float, optional
        Stop after the step that exceeds this many minutes in this call.
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
        ``model_dir``, ``epochs_done``, ``global_step``, ``stopped`` (None,
        "max_minutes" or "max_steps"), ``loss`` (last epoch's mean generator
        loss), ``val_loss``, ``seconds``, ``seconds_per_step``, ``resumed_from``.
        ``history.json`` holds per epoch ``loss``, ``val_loss``, ``g_adv``,
        ``g_l1``, ``d_loss``, ``d_real_acc``, ``d_fake_acc``, ``lr``,
        ``seconds`` and ``steps``.
    """
    from .training import one_cycle_cosine, start_run

    model_dir = Path(model_dir)
    checkpoints = start_run(model_dir, config, epochs, steps_per_epoch, val_batches, "fit_gan")

    total = epochs * steps_per_epoch
    g_opt = keras.optimizers.Adam(learning_rate=one_cycle_cosine(max_lr, total, pct_start), beta_1=beta_1)
    d_opt = keras.optimizers.Adam(learning_rate=one_cycle_cosine(disc_lr_factor * max_lr, total, pct_start),
                                  beta_1=beta_1)
    history_keys = ("loss", "val_loss") + _GAN_TERMS[1:] + ("lr", "seconds", "steps")
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "sums": {k: 0.0 for k in _GAN_TERMS},
             "epoch_seconds": 0.0, "history": {k: [] for k in history_keys}}
    resumed_from = None
    if checkpoints:
        state = load_gan_checkpoint(checkpoints[-1], generator, discriminator, g_opt, d_opt)
        resumed_from = state["global_step"]
    else:
        g_opt.build(generator.trainable_variables)
        d_opt.build(discriminator.trainable_variables)

    g_vars, d_vars = generator.trainable_variables, discriminator.trainable_variables

    def step_fn(lq, hq):
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

    train_step = tf.function(step_fn, jit_compile=jit_compile, reduce_retracing=True)
    val_step = tf.function(lambda lq, hq: tf.reduce_mean(tf.abs(generator(lq, training=False) - hq)),
                           reduce_retracing=True)

    def validate():
        return float(np.mean([float(val_step(tf.constant(lq), tf.constant(hq))) for lq, hq in val_batches]))

    start = time.perf_counter()
    steps_this_call, stopped = 0, None
    bar = tqdm(total=total, initial=state["global_step"], desc="GAN training", unit="step",
               disable=not progress, dynamic_ncols=True)
    while state["epoch"] < epochs and stopped is None:
        epoch_start = time.perf_counter()
        for lq, hq in epoch_batches(train_batches, state, steps_per_epoch, "fit_gan"):
            losses = {k: float(v) for k, v in train_step(lq, hq).items()}
            if not all(math.isfinite(v) for v in losses.values()):
                raise RuntimeError(f"fit_gan: a loss became non-finite at step {state['global_step']} ({losses}); "
                                   "lower max_lr")
            for k in _GAN_TERMS:
                state["sums"][k] += losses[k]
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            steps_this_call += 1
            bar.update(1)
            bar.set_postfix(epoch=state["epoch"] + 1, l1=f"{losses['g_l1']:.4f}", d=f"{losses['d_loss']:.3f}")
            stopped = budget_spent(steps_this_call, start, max_steps, max_minutes)
            if stopped and state["step_in_epoch"] < steps_per_epoch:
                break
        state["epoch_seconds"] += time.perf_counter() - epoch_start
        if state["step_in_epoch"] == steps_per_epoch:
            h = state["history"]
            means = {k: state["sums"][k] / steps_per_epoch for k in _GAN_TERMS}
            h["loss"].append(means["g_loss"])
            for k in _GAN_TERMS[1:]:
                h[k].append(means[k])
            h["val_loss"].append(validate())
            h["lr"].append(float(g_opt.learning_rate))
            h["seconds"].append(round(state["epoch_seconds"], 3))
            h["steps"].append(state["global_step"])
            state.update(epoch=state["epoch"] + 1, step_in_epoch=0, sums={k: 0.0 for k in _GAN_TERMS},
                         epoch_seconds=0.0)
            _write_json(model_dir / "history.json", h)
            bar.set_postfix(epoch=state["epoch"], l1=f"{means['g_l1']:.4f}", val=f"{h['val_loss'][-1]:.4f}")
        save_gan_checkpoint(model_dir, generator, discriminator, g_opt, d_opt, state)
    bar.close()

    save_model(generator, model_dir / "model.keras")
    save_model(discriminator, model_dir / "discriminator.keras")
    _write_json(model_dir / "history.json", state["history"])
    seconds = time.perf_counter() - start
    h = state["history"]
    return {
        "model_dir": str(model_dir), "epochs_done": state["epoch"], "global_step": state["global_step"],
        "stopped": stopped, "loss": h["loss"][-1] if h["loss"] else None,
        "val_loss": h["val_loss"][-1] if h["val_loss"] else None, "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps_this_call, 4) if steps_this_call else None,
        "resumed_from": resumed_from,
    }


# --------------------------------------------------------------------------- budget and training on pairs


def _trained_state(model_dir):
    """(global_step, seconds) a model folder's run has spent so far (0, 0.0 when none).

    Read from the latest checkpoint's ``state.json`` (which counts a
    half-finished epoch too), else from ``history.json``.
    """
    model_dir = Path(model_dir)
    ckpts = _checkpoints(model_dir)
    if ckpts:
        state = json.loads((ckpts[-1] / "state.json").read_text())
        seconds = float(sum(state.get("history", {}).get("seconds", []))) + float(state.get("epoch_seconds", 0.0))
        return int(state["global_step"]), seconds
    hist = model_dir / "history.json"
    if hist.exists():
        h = json.loads(hist.read_text())
        return (int(h["steps"][-1]) if h.get("steps") else 0), float(sum(h.get("seconds", [])))
    return 0, 0.0


def indi_budget(indi_model_dir):
    """The training setup and budget of an InDI model folder (chapter 04), for fair baselines.

    Parameters
    ----------
    indi_model_dir : str or Path
        Holds ``config.json`` (network and training parameters) and the
        checkpoints / ``history.json`` of the run.

    Returns
    -------
    dict
        ``network`` (build arguments), ``crop``, ``batch_size``, ``epochs``,
        ``steps_per_epoch``, ``max_lr``, ``pct_start``, ``min_inside``,
        ``val_crop``, ``val_max_slices``, ``jit_compile`` (from the config),
        ``seed``, ``steps`` (optimiser steps InDI took), ``minutes`` (its
        training wall-clock time, min) and ``model_dir``.

    Raises
    ------
    FileNotFoundError
        When ``config.json`` is missing (train InDI first: chapter 04).
    """
    model_dir = Path(indi_model_dir)
    path = model_dir / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; train InDI first (chapter 04_training or `indi4d train`)")
    config = json.loads(path.read_text())
    try:
        tr, net = config["training"], config["network"]
    except KeyError as exc:
        raise ValueError(f"{path}: no {exc.args[0]!r} section; not an InDI model folder") from None
    steps, seconds = _trained_state(model_dir)
    if steps < 1:
        raise ValueError(f"{model_dir}: the InDI run has no recorded training steps (no checkpoint or history.json)")
    keys = ("crop", "batch_size", "epochs", "steps_per_epoch", "max_lr", "pct_start", "min_inside", "val_crop",
            "val_max_slices", "jit_compile")
    missing = [k for k in keys if k not in tr]
    if missing:
        raise ValueError(f"{path}: training parameters {missing} missing")
    budget = {k: tr[k] for k in keys}
    budget.update(network=dict(net), seed=int(config.get("seed", 0)), steps=int(steps),
                  minutes=round(seconds / 60.0, 4), model_dir=str(model_dir))
    return budget


def _load_data(pairs_dir, budget):
    from . import pipeline, preprocess
    from .training import _SEED_STRIDE, validation_batches

    pairs_dir = Path(pairs_dir)
    lq_tr, hq_tr = preprocess.load_pairs(pairs_dir, "train")
    lq_va, hq_va = preprocess.load_pairs(pairs_dir, "val")
    if lq_tr.shape[0] == 0 or lq_va.shape[0] == 0:
        raise ValueError(f"{pairs_dir}/pairs.npz: needs training and validation slices")
    mask = preprocess.load_pairs_info(pairs_dir)["mask"]
    crop, batch = int(budget["crop"]), int(budget["batch_size"])
    factor = 2 ** int(budget["network"]["depth"])
    seed = int(budget["seed"])

    def train_batches(epoch):
        # the very batches InDI saw: training_dataset seeded seed * stride + epoch, as train_indi does
        ds = pipeline.training_dataset(lq_tr, hq_tr, crop, batch, seed=seed * _SEED_STRIDE + int(epoch), mask=mask,
                                       min_inside=budget["min_inside"])
        return ds.repeat().take(int(budget["steps_per_epoch"]))

    val = validation_batches(lq_va, hq_va, budget["val_crop"], batch, budget["val_max_slices"], factor)
    return train_batches, val


def _reusable(model_dir, config):
    """The stored summary when ``model_dir`` holds a finished run with this ``config``, else None."""
    model_dir = Path(model_dir)
    paths = [model_dir / n for n in (_SUMMARY, "config.json", "model.keras")]
    if not all(p.exists() for p in paths):
        return None
    if json.loads(paths[1].read_text()) != json.loads(json.dumps(config)):
        return None
    summary = json.loads(paths[0].read_text())
    return summary if summary.get("complete") else None


def _start_baseline(model_dir, config, pairs_dir, budget):
    """Reuse a finished baseline trained with ``config``, or prepare its folder and data.

    Returns
    -------
    reused : dict or None
        The stored summary (with ``reused=True``) when the run is complete.
    train_batches, val : callable and list, or None
        InDI's batches (:func:`_load_data`) when training must run.
    """
    stored = _reusable(model_dir, config)
    if stored is not None:
        return dict(stored, reused=True), None, None
    _refuse_other_run(model_dir, config)
    train_batches, val = _load_data(pairs_dir, budget)
    model_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(pairs_dir) / "normalisation.json", model_dir / "normalisation.json")
    return None, train_batches, val


def _refuse_other_run(model_dir, config):
    """Raise when ``model_dir`` holds checkpoints of a run with another configuration."""
    path = Path(model_dir) / "config.json"
    if _checkpoints(model_dir) and path.exists():
        stored = json.loads(path.read_text())
        config = json.loads(json.dumps(config))
        differ = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
        if differ:
            raise ValueError(f"{model_dir}: holds a run with other parameters ({', '.join(differ)}); "
                             "use the same parameters to resume it, or another folder")


def _budget_caps(model_dir, budget, p, minutes, max_steps):
    """(total step cap, total minutes cap or None, steps left for this call, minutes left or None)."""
    factor = p["budget_factor"]
    cap_steps = max(1, int(round(budget["steps"] * factor)))
    if minutes is not None:
        cap_minutes = float(minutes)
    else:
        cap_minutes = budget["minutes"] * factor if p["match_minutes"] else None
    done_steps, done_seconds = _trained_state(model_dir)
    left_steps = cap_steps - done_steps
    left_minutes = None if cap_minutes is None else max(0.0, cap_minutes - done_seconds / 60.0)
    call_steps = left_steps if max_steps is None else min(left_steps, int(max_steps))
    return cap_steps, cap_minutes, call_steps, left_minutes


def _config(kind, preset, seed, pairs_dir, budget, p, minutes):
    """The part of a baseline's ``config.json`` shared by the CNN and the GAN."""
    indi = {k: budget[k] for k in ("steps", "minutes", "crop", "batch_size", "epochs", "steps_per_epoch", "max_lr",
                                   "pct_start")}
    return {"baseline": kind, "preset": preset, "seed": seed, "pairs_dir": str(Path(pairs_dir).resolve()),
            "network": budget["network"], "indi_budget": indi,
            "budget": {"factor": p["budget_factor"], "match_minutes": p["match_minutes"], "minutes": minutes},
            "normalisation": "normalisation.json"}


def _finish(model_dir, summary, cap_steps, cap_minutes, user_max_steps, kind, n_params):
    # the budget is used up when the schedule ended, the step cap or the minutes ran out -- not when
    # the caller's own max_steps stopped it early
    done_steps, done_seconds = _trained_state(model_dir)
    user_stop = (summary.get("stopped") == "max_steps" and user_max_steps is not None
                 and done_steps < cap_steps)
    summary = dict(summary, baseline=kind, complete=not user_stop, budget_steps=cap_steps,
                   budget_minutes=None if cap_minutes is None else round(cap_minutes, 4), steps_done=done_steps,
                   minutes_done=round(done_seconds / 60.0, 4), n_params=n_params)
    if summary["complete"]:
        _write_json(Path(model_dir) / _SUMMARY, summary)
    return summary


def train_cnn(pairs_dir, model_dir, budget, preset="default", seed=None, minutes=None, max_steps=None,
              progress=True, **overrides):
    """Train the CNN baseline: the InDI U-Net without time input, one pass, MAE or MSE.

    Parameters
    ----------
    pairs_dir : str or Path
        Chapter 02's pairs folder.
    model_dir : str or Path
        Output folder (``RUN_DIR/baselines/cnn``); a finished run with the same
        configuration is reused, an unfinished one resumed.
    budget : dict
        :func:`indi_budget` of the InDI run to match.
    preset : {"tiny", "default", "paper"}
        :data:`PRESETS` entry; ``**overrides`` replace single parameters.
    seed : int, optional
        Weights seed (default: the InDI run's); batches always follow the InDI run's seed.
    minutes : float, optional
        Wall-clock budget, min (default: InDI's minutes x ``budget_factor``).
    max_steps : int, optional
        Stop after this many steps in this call (the run is then unfinished and
        resumes on the next call).
    progress : bool

    Returns
    -------
    dict
        :func:`indi4d.training.fit`'s summary plus ``baseline``, ``complete``,
        ``budget_steps``, ``budget_minutes``, ``steps_done``, ``minutes_done``,
        ``n_params`` and ``reused``.
    """
    from . import model
    from .training import fit

    p = resolve(PRESETS, preset, **overrides)
    seed = int(budget["seed"] if seed is None else seed)
    model_dir = Path(model_dir)
    config = _config("cnn", preset, seed, pairs_dir, budget, p, minutes) | {"objective": p["cnn_loss"]}
    reused, train_batches, val = _start_baseline(model_dir, config, pairs_dir, budget)
    if reused is not None:
        return reused
    keras.utils.set_random_seed(seed)
    net = model.build_unet(**budget["network"], time_embedding=False, seed=seed, name="cnn_unet")
    cap_steps, cap_minutes, call_steps, left_minutes = _budget_caps(model_dir, budget, p, minutes, max_steps)
    if (call_steps < 1 or left_minutes == 0) and (model_dir / "model.keras").exists():
        summary = {"model_dir": str(model_dir), "stopped": "budget", "resumed_from": None}  # nothing left to train
    else:
        summary = fit(net, train_batches, val, regression_objective(p["cnn_loss"]), model_dir,
                      epochs=int(budget["epochs"]), steps_per_epoch=int(budget["steps_per_epoch"]),
                      max_lr=float(budget["max_lr"]), pct_start=float(budget["pct_start"]), seed=seed,
                      max_minutes=left_minutes, max_steps=max(1, call_steps),
                      jit_compile=bool(budget["jit_compile"]), config=config, progress=progress)
    return dict(_finish(model_dir, summary, cap_steps, cap_minutes, max_steps, "cnn", model.count_parameters(net)),
                reused=False)


def train_gan(pairs_dir, model_dir, budget, preset="default", seed=None, minutes=None, max_steps=None,
              progress=True, **overrides):
    """Train the pix2pix GAN baseline: U-Net generator + conditional PatchGAN, L1 + adversarial.

    Parameters are those of :func:`train_cnn`; the GAN's own ones (``l1_weight``,
    ``disc_filters``, ``disc_layers``, ``disc_norm``, ``disc_lr_factor``,
    ``beta_1``) come from :data:`PRESETS` and ``**overrides``.

    Returns
    -------
    dict
        :func:`fit_gan`'s summary plus ``baseline``, ``complete``,
        ``budget_steps``, ``budget_minutes``, ``steps_done``, ``minutes_done``,
        ``n_params`` (generator) and ``reused``.
    """
    from . import model

    p = resolve(PRESETS, preset, **overrides)
    seed = int(budget["seed"] if seed is None else seed)
    model_dir = Path(model_dir)
    factor = 2 ** int(p["disc_layers"])
    if int(budget["crop"]) % factor:
        raise ValueError(f"train_gan: the crop {budget['crop']} must be a multiple of 2**disc_layers = {factor}")
    config = _config("gan", preset, seed, pairs_dir, budget, p, minutes) | {
        "discriminator": {k: p[k] for k in ("disc_filters", "disc_layers", "disc_norm")},
        "objective": {"l1_weight": p["l1_weight"], "disc_lr_factor": p["disc_lr_factor"], "beta_1": p["beta_1"]}}
    reused, train_batches, val = _start_baseline(model_dir, config, pairs_dir, budget)
    if reused is not None:
        return reused
    keras.utils.set_random_seed(seed)
    gen = model.build_unet(**budget["network"], time_embedding=False, seed=seed, name="gan_generator")
    disc = build_patchgan(1, p["disc_filters"], p["disc_layers"], p["disc_norm"], seed=seed + 1)
    cap_steps, cap_minutes, call_steps, left_minutes = _budget_caps(model_dir, budget, p, minutes, max_steps)
    if (call_steps < 1 or left_minutes == 0) and (model_dir / "model.keras").exists():
        summary = {"model_dir": str(model_dir), "stopped": "budget", "resumed_from": None}  # nothing left to train
    else:
        summary = fit_gan(gen, disc, train_batches, val, model_dir, epochs=int(budget["epochs"]),
                          steps_per_epoch=int(budget["steps_per_epoch"]), max_lr=float(budget["max_lr"]),
                          pct_start=float(budget["pct_start"]), disc_lr_factor=p["disc_lr_factor"],
                          l1_weight=p["l1_weight"], beta_1=p["beta_1"], seed=seed, max_minutes=left_minutes,
                          max_steps=max(1, call_steps), jit_compile=bool(budget["jit_compile"]), config=config,
                          progress=progress)
    return dict(_finish(model_dir, summary, cap_steps, cap_minutes, max_steps, "gan", model.count_parameters(gen)),
                reused=False)


def train_baselines(run_dir, preset="default", seed=None, minutes=None, progress=True):
    """Train (or reuse) the CNN and GAN baselines of a run folder at the InDI run's budget.

    Parameters
    ----------
    run_dir : str or Path
        Needs ``pairs/`` (chapter 02) and ``model/`` (chapter 04); writes
        ``baselines/cnn`` and ``baselines/gan``.
    preset : {"tiny", "default", "paper"}
    seed : int, optional
        Weights seed (default: the InDI run's).
    minutes : float, optional
        Wall-clock budget of *each* baseline (default: the InDI run's training time).
    progress : bool

    Returns
    -------
    dict
        ``{"budget": indi_budget(...), "cnn": summary, "gan": summary}``.
    """
    from . import runs

    pairs_dir = runs.require_artifact(run_dir, "pairs", "pairs.npz").parent
    indi_dir = runs.require_artifact(run_dir, "model", "config.json").parent
    budget = indi_budget(indi_dir)
    out = runs.stage_dir(run_dir, "baselines", create=True)
    cnn = train_cnn(pairs_dir, out / "cnn", budget, preset, seed=seed, minutes=minutes, progress=progress)
    gan = train_gan(pairs_dir, out / "gan", budget, preset, seed=seed, minutes=minutes, progress=progress)
    return {"budget": budget, "cnn": cnn, "gan": gan}


def load_baseline(model_dir):
    """Load a baseline's ``model.keras`` (the CNN, or the GAN's generator): input ``image`` only.

    Raises
    ------
    FileNotFoundError
        Naming the file and the chapter that writes it.
    """
    from . import model as _model  # registers the custom layers

    del _model
    path = Path(model_dir) / "model.keras"
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; train the baselines first (chapter 05_evaluation)")
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises several types for a damaged archive
        raise ValueError(f"{path}: not a loadable Keras model ({exc})") from exc


def predict_direct(network, slices, factor=2, batch_size=4):
    """One forward pass of an image-to-image network over normalised slices.

    Parameters
    ----------
    network : keras.Model
        Input ``image`` (B, H, W, 1) (a baseline from :func:`load_baseline`).
    slices : ndarray, (H, W) or (n, H, W), float, in [-1, 1]
    factor : int
        The network's down-sampling factor; slices are reflect-padded at the
        bottom/right to a multiple of it and cropped back.
    batch_size : int

    Returns
    -------
    ndarray, float32, the shape of ``slices``
    """
    a = np.asarray(slices)
    if a.ndim not in (2, 3) or not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"predict_direct: expected float (H, W) or (n, H, W) slices, got {a.dtype} {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("predict_direct: the slices contain NaN or infinite values")
    stack = a[None] if a.ndim == 2 else a
    n, h, w = stack.shape
    pad_y, pad_x = -h % factor, -w % factor
    padded = np.pad(stack.astype(np.float32), ((0, 0), (0, pad_y), (0, pad_x)), mode="reflect")[..., None]
    out = np.concatenate([np.asarray(network(padded[i:i + batch_size], training=False))
                          for i in range(0, n, batch_size)])[:, :h, :w, 0].astype(np.float32)
    return out[0] if a.ndim == 2 else out
