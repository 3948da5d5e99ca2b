"""Training the InDI network (chapter 04), resumable and time-boxed.

:func:`train_indi` is what ``indi4d train PAIRS_DIR MODEL_DIR`` runs: it reads
the registered pairs of chapter 02, builds the U-Net of :mod:`indi4d.model`
and fits it with the InDI objective of :mod:`indi4d.indi` under a one-cycle
cosine learning-rate schedule. :func:`fit` is the loop itself, with the loss
passed in as a function, so chapter 05 trains its CNN/GAN baselines with the
same code.

The model folder (a contract, see CONTRIBUTING.md)::

    MODEL_DIR/model.keras          final weights (also written when stopped early)
    MODEL_DIR/config.json          network and training parameters, seed, pairs
    MODEL_DIR/normalisation.json   copied from the pairs folder
    MODEL_DIR/history.json         per epoch: loss, val_loss, lr, seconds, steps
    MODEL_DIR/checkpoints/ckpt_*   weights + optimiser state + loop position

Reproducibility: the weights start from ``seed``; the batches of epoch ``e``
come from ``pipeline.training_dataset(..., seed=seed * 1_000_003 + e)``; the
times and noise of global step ``k`` from the stateless seed ``(seed, k)``. So
a run that is stopped (``max_minutes``, ``max_steps``, or killed) and started
again from its last checkpoint replays exactly the batches it would have seen.
"""

import json
import math
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from tqdm.auto import tqdm

from ._atomic import atomic_path
from .data import file_sha256
from .presets import resolve

#: ``network``: :data:`indi4d.model.PRESETS` keys. ``crop``/``batch_size``: the
#: random training crops; ``steps_per_epoch`` None = one pass over the training
#: slices' area in crops. ``epochs`` x ``steps_per_epoch`` sets the one-cycle
#: schedule's length; crops lie at least ``min_inside`` inside the
#: reconstruction disc of the pairs; ``max_minutes`` is a budget on top (the run stops cleanly
#: after the step that exceeds it). ``val_crop``/``val_max_slices``: the fixed
#: validation set (centre crops). ``p_one``/``eps``/``threshold``: the InDI
#: objective (:mod:`indi4d.indi`).
PRESETS = {
    "tiny": {
        "network": "tiny", "crop": 16, "batch_size": 2, "epochs": 2, "steps_per_epoch": 4,
        "max_lr": 2e-3, "pct_start": 0.25, "val_crop": 32, "val_max_slices": 4, "max_minutes": None,
        "p_one": 0.1, "eps": 0.0, "threshold": 0.5, "jit_compile": False, "min_inside": 0.9,
    },
    "default": {
        "network": "default", "crop": 96, "batch_size": 4, "epochs": 30, "steps_per_epoch": 100,
        "max_lr": 1e-3, "pct_start": 0.2, "val_crop": 96, "val_max_slices": 8, "max_minutes": 15.0,
        "p_one": 0.1, "eps": 0.0, "threshold": 0.5, "jit_compile": False, "min_inside": 0.9,
    },
    "paper": {
        "network": "paper", "crop": 640, "batch_size": 2, "epochs": 1600, "steps_per_epoch": None,
        "max_lr": 5e-4, "pct_start": 0.25, "val_crop": 1024, "val_max_slices": 25, "max_minutes": None,
        "p_one": 0.1, "eps": 0.0, "threshold": 0.5, "jit_compile": True, "min_inside": 1.0,
    },
}

_SEED_STRIDE = 1_000_003  # epoch e of seed s draws its batches with seed s * stride + e


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


# --------------------------------------------------------------------------- checkpoints


def _write_json(path, obj):
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2) + "\n")


def save_model(network, path):
    """Save a Keras model as ``path`` (a ``.keras`` file), atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:  # the temp name ends in ".keras", as Keras insists
        network.save(tmp)
    return path


def start_run(model_dir, config, epochs, steps_per_epoch, val_batches, who):
    """Check a training run's arguments and its folder; write ``config.json``.

    A folder that already holds checkpoints of a run with other parameters is
    refused, so a resume never mixes two runs.

    Returns
    -------
    list of Path
        The folder's complete checkpoints, oldest first (empty for a new run).
    """
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    if epochs < 1 or steps_per_epoch < 1:
        raise ValueError(f"{who}: epochs and steps_per_epoch must be >= 1, got {epochs}, {steps_per_epoch}")
    if not val_batches:
        raise ValueError(f"{who}: no validation batches")
    config = dict(config or {})
    config_path = model_dir / "config.json"
    checkpoints = _checkpoints(model_dir)
    if checkpoints and config_path.exists():
        stored = json.loads(config_path.read_text())
        differ = sorted(k for k in set(stored) | set(config) if stored.get(k) != config.get(k))
        if differ:
            raise ValueError(
                f"{model_dir}: holds a run with other parameters ({', '.join(differ)}); "
                "use the same parameters to resume it, or another folder"
            )
    _write_json(config_path, config)
    return checkpoints


def _checkpoints(model_dir):
    """Complete checkpoint folders, oldest first."""
    folder = Path(model_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    done = [p for p in folder.glob("ckpt_*") if (p / "state.json").exists() and not p.name.startswith(".")]
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def save_checkpoint(model_dir, network, optimizer, state, keep=2):
    """Write weights, optimiser variables and the loop state as ``checkpoints/ckpt_<step>``.

    The folder is assembled under a temporary name and renamed when complete,
    so a run killed while saving leaves the previous checkpoint intact.

    Parameters
    ----------
    model_dir : Path
    network : keras.Model
    optimizer : keras.optimizers.Optimizer
    state : dict
        JSON-serialisable loop state; must hold ``global_step``.
    keep : int
        Number of most recent checkpoints kept.

    Returns
    -------
    Path
        The checkpoint folder.
    """
    folder = Path(model_dir) / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt_{int(state['global_step']):09d}"
    if path.exists():
        shutil.rmtree(path)
    with atomic_path(path) as tmp:
        tmp.unlink()
        tmp.mkdir()
        network.save_weights(tmp / "model.weights.h5")
        np.savez(tmp / "optimizer.npz", *[np.asarray(v.numpy()) for v in optimizer.variables])
        (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    for old in _checkpoints(model_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def load_checkpoint(path, network, optimizer):
    """Restore weights and optimiser state from a checkpoint folder; return the loop state (dict)."""
    path = Path(path)
    network.load_weights(path / "model.weights.h5")
    optimizer.build(network.trainable_variables)
    with np.load(path / "optimizer.npz") as data:
        values = [data[f"arr_{i}"] for i in range(len(data.files))]
    if len(values) != len(optimizer.variables):
        raise ValueError(f"{path}: optimiser state has {len(values)} variables, the optimiser {len(optimizer.variables)}")
    for var, value in zip(optimizer.variables, values):
        var.assign(value)
    return json.loads((path / "state.json").read_text())


# --------------------------------------------------------------------------- the loop


def epoch_batches(train_batches, state, steps_per_epoch, who):
    """The batches still due in ``state["epoch"]``, after replaying a resumed run's data position.

    ``state["step_in_epoch"]`` batches were used before a checkpoint; they are
    drawn again and dropped so the run continues on the same data. The caller
    advances ``state["step_in_epoch"]`` per batch.

    Raises
    ------
    ValueError
        When ``train_batches(epoch)`` yields fewer than ``steps_per_epoch`` batches.
    """
    batches = iter(train_batches(state["epoch"]))
    for _ in range(state["step_in_epoch"]):
        next(batches)
    for _ in range(state["step_in_epoch"], steps_per_epoch):
        try:
            yield next(batches)
        except StopIteration:
            raise ValueError(
                f"{who}: epoch {state['epoch']} gave only {state['step_in_epoch']} of {steps_per_epoch} batches"
            ) from None


def budget_spent(steps_this_call, start, max_steps=None, max_minutes=None):
    """``"max_steps"`` or ``"max_minutes"`` once this call's budget is used up, else None."""
    if max_steps is not None and steps_this_call >= max_steps:
        return "max_steps"
    if max_minutes is not None and time.perf_counter() - start > 60.0 * max_minutes:
        return "max_minutes"
    return None




def fit(network, train_batches, val_batches, objective, model_dir, *, epochs, steps_per_epoch,
        max_lr, pct_start=0.25, seed=0, max_minutes=None, max_steps=None, jit_compile=False,
        config=None, progress=True):
    """Train ``network`` to minimise ``objective``, with checkpoints, resume and a time budget.

    Parameters
    ----------
    network : keras.Model
    train_batches : callable
        ``train_batches(epoch)`` -> iterable of ``(lq, hq)`` batches, each
        (B, H, W, 1) float32; deterministic in ``epoch``. At most
        ``steps_per_epoch`` batches are taken.
    val_batches : list of (lq, hq)
        Fixed validation batches.
    objective : callable
        ``objective(network, lq, hq, seed, training)`` -> scalar loss tensor,
        with ``seed`` a (2,) int32 tensor: the loss of one batch (traced once
        by ``tf.function``). :func:`indi4d.indi.indi_objective` for InDI; a
        plain regression loss for the CNN baseline.
    model_dir : str or Path
        Where ``checkpoints/``, ``history.json`` and ``model.keras`` go. A
        checkpoint there is resumed.
    epochs, steps_per_epoch : int
        Length of the run (and of the learning-rate schedule).
    max_lr, pct_start : float
        One-cycle schedule (:func:`one_cycle_cosine`).
    seed : int
        Step ``k`` uses the stateless seed ``(seed, k)``; validation batch
        ``i`` uses ``(seed + 1, i)`` every epoch.
    max_minutes : float, optional
        Stop cleanly after the step that exceeds this many minutes (this call).
    max_steps : int, optional
        Stop after this many optimiser steps in this call (a reproducible budget).
    jit_compile : bool
        XLA-compile the training step.
    config : dict, optional
        Saved as ``config.json``; a checkpoint is only resumed with an equal config.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    dict
        ``epochs_done``, ``global_step``, ``stopped`` (None, "max_minutes" or
        "max_steps"), ``loss``/``val_loss`` (last epoch), ``seconds``,
        ``seconds_per_step``, ``resumed_from`` (global step or None).
    """
    model_dir = Path(model_dir)
    checkpoints = start_run(model_dir, config, epochs, steps_per_epoch, val_batches, "fit")

    total_steps = epochs * steps_per_epoch
    optimizer = keras.optimizers.Adam(learning_rate=one_cycle_cosine(max_lr, total_steps, pct_start))
    state = {"epoch": 0, "step_in_epoch": 0, "global_step": 0, "loss_sum": 0.0, "epoch_seconds": 0.0,
             "history": {"loss": [], "val_loss": [], "lr": [], "seconds": [], "steps": []}}
    resumed_from = None
    if checkpoints:
        state = load_checkpoint(checkpoints[-1], network, optimizer)
        resumed_from = state["global_step"]
    else:
        optimizer.build(network.trainable_variables)

    train_vars = network.trainable_variables

    def step_fn(lq, hq, step_seed):
        with tf.GradientTape() as tape:
            loss = objective(network, lq, hq, step_seed, True)
        grads = tape.gradient(loss, train_vars)
        optimizer.apply_gradients(zip(grads, train_vars))
        return loss

    train_step = tf.function(step_fn, jit_compile=jit_compile, reduce_retracing=True)
    val_step = tf.function(lambda lq, hq, s: objective(network, lq, hq, s, False), reduce_retracing=True)

    def validate():
        losses = [float(val_step(tf.constant(lq), tf.constant(hq), tf.constant([seed + 1, i], tf.int32)))
                  for i, (lq, hq) in enumerate(val_batches)]
        return float(np.mean(losses))

    start = time.perf_counter()
    steps_this_call = 0
    stopped = None
    bar = tqdm(total=total_steps, initial=state["global_step"], desc="training", unit="step",
               disable=not progress, dynamic_ncols=True)
    while state["epoch"] < epochs and stopped is None:
        epoch_start = time.perf_counter()
        for lq, hq in epoch_batches(train_batches, state, steps_per_epoch, "fit"):
            loss = float(train_step(lq, hq, tf.constant([seed, state["global_step"]], tf.int32)))
            if not math.isfinite(loss):
                raise RuntimeError(f"fit: the loss became {loss} at step {state['global_step']}; lower max_lr")
            state["loss_sum"] += loss
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            steps_this_call += 1
            bar.update(1)
            bar.set_postfix(epoch=state["epoch"] + 1, loss=f"{loss:.4f}")
            stopped = budget_spent(steps_this_call, start, max_steps, max_minutes)
            if stopped and state["step_in_epoch"] < steps_per_epoch:
                break
        state["epoch_seconds"] += time.perf_counter() - epoch_start
        if state["step_in_epoch"] == steps_per_epoch:
            history = state["history"]
            history["loss"].append(state["loss_sum"] / steps_per_epoch)
            history["val_loss"].append(validate())
            history["lr"].append(float(optimizer.learning_rate))
            history["seconds"].append(round(state["epoch_seconds"], 3))
            history["steps"].append(state["global_step"])
            state.update(epoch=state["epoch"] + 1, step_in_epoch=0, loss_sum=0.0, epoch_seconds=0.0)
            _write_json(model_dir / "history.json", history)
            bar.set_postfix(epoch=state["epoch"], loss=f"{history['loss'][-1]:.4f}",
                            val=f"{history['val_loss'][-1]:.4f}")
        save_checkpoint(model_dir, network, optimizer, state)
    bar.close()

    save_model(network, model_dir / "model.keras")
    _write_json(model_dir / "history.json", state["history"])
    seconds = time.perf_counter() - start
    history = state["history"]
    return {
        "model_dir": str(model_dir),
        "epochs_done": state["epoch"],
        "global_step": state["global_step"],
        "stopped": stopped,
        "loss": history["loss"][-1] if history["loss"] else None,
        "val_loss": history["val_loss"][-1] if history["val_loss"] else None,
        "seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps_this_call, 4) if steps_this_call else None,
        "resumed_from": resumed_from,
    }


# --------------------------------------------------------------------------- InDI on a pairs folder


def _centre_crop(stack, size):
    """Centre ``size x size`` crop of a (n, H, W) stack."""
    _, h, w = stack.shape
    y0, x0 = (h - size) // 2, (w - size) // 2
    return stack[:, y0:y0 + size, x0:x0 + size]


def validation_batches(lq, hq, crop, batch_size, max_slices, multiple):
    """Fixed validation batches: centre crops of up to ``max_slices`` evenly spaced slices.

    Parameters
    ----------
    lq, hq : ndarray, float32, shape (n, H, W)
    crop : int
        Crop side; reduced to the slice size and rounded down to ``multiple``.
    batch_size, max_slices, multiple : int

    Returns
    -------
    list of (ndarray, ndarray), each (b, crop, crop, 1) float32
    """
    n = lq.shape[0]
    if n == 0:
        raise ValueError("no validation slices")
    pick = np.unique(np.linspace(0, n - 1, min(n, max_slices)).round().astype(int))
    size = min(crop, lq.shape[1], lq.shape[2]) // multiple * multiple
    if size < multiple:
        raise ValueError(f"validation slices {lq.shape[1:]} are smaller than the network's factor {multiple}")
    lq_c = _centre_crop(lq[pick], size)[..., None].astype(np.float32)
    hq_c = _centre_crop(hq[pick], size)[..., None].astype(np.float32)
    return [(lq_c[i:i + batch_size], hq_c[i:i + batch_size]) for i in range(0, len(pick), batch_size)]


def train_indi(pairs_dir, model_dir, preset="default", epochs=None, max_minutes=None, seed=0, *,
               max_steps=None, overrides=None, restart=False, progress=True):
    """Train InDI on a pairs folder and write a model folder (``indi4d train``).

    Parameters
    ----------
    pairs_dir : str or Path
        From chapter 02 (``pairs.npz``, ``normalisation.json``).
    model_dir : str or Path
        Output model folder; an unfinished run there with the same parameters
        is resumed from its last checkpoint, a finished one is left as is.
    preset : {"tiny", "default", "paper"}
        :data:`PRESETS` entry.
    epochs : int, optional
        Overrides the preset's epochs.
    max_minutes : float, optional
        Overrides the preset's time budget.
    seed : int
        Weights, batches, times and noise all follow from it.
    max_steps : int, optional
        Stop after this many optimiser steps in this call (resume later).
    overrides : dict, optional
        Other preset parameters to replace (e.g. ``{"crop": 64}``); a
        ``"network"`` entry may be a preset name or a dict of
        :func:`indi4d.model.build_unet` arguments.
    restart : bool
        When ``model_dir`` holds a run with other parameters or other pairs
        (their sha256 is part of the configuration), discard it and start
        afresh instead of raising ``ValueError``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        :func:`fit`'s summary plus ``n_params``, ``n_train``, ``n_val`` and
        ``preset``.
    """
    from . import indi, model, pipeline, preprocess

    params = resolve(PRESETS, preset, **{**dict(overrides or {}), **({} if epochs is None else {"epochs": epochs})})
    if max_minutes is not None:
        params["max_minutes"] = float(max_minutes)
    net_params = params["network"]
    net_params = resolve(model.PRESETS, net_params) if isinstance(net_params, str) else dict(net_params)
    net_params["dilations"] = [int(d) for d in net_params["dilations"]]
    factor = 2 ** int(net_params["depth"])
    if params["crop"] % factor:
        raise ValueError(f"train_indi: crop {params['crop']} must be a multiple of {factor}")

    pairs_dir, model_dir = Path(pairs_dir), Path(model_dir)
    lq_tr, hq_tr = preprocess.load_pairs(pairs_dir, "train")
    lq_va, hq_va = preprocess.load_pairs(pairs_dir, "val")
    mask = preprocess.load_pairs_info(pairs_dir)["mask"]
    if lq_tr.shape[0] == 0:
        raise ValueError(f"{pairs_dir}/pairs.npz: no training slices")
    if lq_va.shape[0] == 0:
        raise ValueError(f"{pairs_dir}/pairs.npz: no validation slices (split == 'val')")
    for name, arr in (("train", lq_tr), ("train", hq_tr), ("val", lq_va), ("val", hq_va)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{pairs_dir}/pairs.npz: the {name} slices contain NaN or infinite values")
    if min(lq_tr.shape[1:]) < params["crop"]:
        raise ValueError(f"{pairs_dir}/pairs.npz: slices {lq_tr.shape[1:]} are smaller than the crop {params['crop']}")
    norm_src = pairs_dir / "normalisation.json"
    if not norm_src.exists():
        raise FileNotFoundError(f"{norm_src}: missing; run chapter 02_registration first")

    steps_per_epoch = params["steps_per_epoch"]
    if steps_per_epoch is None:
        # one pass over the training area, counted in crops
        steps_per_epoch = max(1, math.ceil(lq_tr.size / (params["crop"] ** 2 * params["batch_size"])))

    config = {
        "preset": preset, "seed": int(seed), "pairs_dir": str(pairs_dir.resolve()),
        "pairs_sha256": file_sha256(pairs_dir / "pairs.npz"),
        "network": net_params,
        "training": {k: v for k, v in params.items() if k not in ("network", "max_minutes")}
        | {"steps_per_epoch": int(steps_per_epoch)},
        "objective": "indi",
        "normalisation": "normalisation.json",
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    config_path = model_dir / "config.json"
    if restart and config_path.exists() and json.loads(config_path.read_text()) != json.loads(json.dumps(config)):
        # another run lives here: remove its training state (checkpoints, history, model), nothing else
        shutil.rmtree(model_dir / "checkpoints", ignore_errors=True)
        for name in ("history.json", "model.keras", "config.json"):
            (model_dir / name).unlink(missing_ok=True)
    keras.utils.set_random_seed(int(seed))
    network = model.build_unet(**net_params, seed=int(seed))
    shutil.copyfile(norm_src, model_dir / "normalisation.json")

    crop, batch = int(params["crop"]), int(params["batch_size"])

    def train_batches(epoch):
        ds = pipeline.training_dataset(lq_tr, hq_tr, crop, batch, seed=int(seed) * _SEED_STRIDE + int(epoch),
                                       mask=mask, min_inside=params["min_inside"])
        return ds.repeat().take(steps_per_epoch)

    val = validation_batches(lq_va, hq_va, params["val_crop"], batch, params["val_max_slices"], factor)

    def objective(net, lq, hq, step_seed, training):
        return indi.indi_objective(net, lq, hq, step_seed, p_one=params["p_one"], eps=params["eps"],
                                   threshold=params["threshold"], training=training)

    summary = fit(
        network, train_batches, val, objective, model_dir,
        epochs=int(params["epochs"]), steps_per_epoch=int(steps_per_epoch), max_lr=params["max_lr"],
        pct_start=params["pct_start"], seed=int(seed), max_minutes=params["max_minutes"], max_steps=max_steps,
        jit_compile=bool(params["jit_compile"]), config=config, progress=progress,
    )
    summary.update(preset=preset, n_params=model.count_parameters(network),
                   n_train=int(lq_tr.shape[0]), n_val=int(lq_va.shape[0]))
    return summary
