"""``indi4d train PAIRS_DIR MODEL_DIR``: InDI trained on a pairs folder into a model folder."""

import math
from pathlib import Path

import keras

from .. import model_folder
from ..core import pairs
from ..domain import record_from_slices
from ..files import file_sha256
from ..presets import resolve
from .data import load_training_slices, resolve_target, slice_batches
from .single_network import adam, objective_method, start_run
from .loop import run_loop
from .recipes import PRESETS

def network_params(params):
    """Build arguments of :func:`indi4d.core.model.build_unet` and the network's size factor 2**depth."""
    from ..core import model

    net = params["network"]
    net = resolve(model.PRESETS, net) if isinstance(net, str) else dict(net)
    net["dilations"] = [int(d) for d in net["dilations"]]
    return net, 2 ** int(net["depth"])


def check_options(params):
    """Refuse unknown option values before anything is written; return the extra :func:`build_unet` arguments."""
    from ..core import indi, model
    from .data import TARGET_CHOICES

    choices = {"target": TARGET_CHOICES, "parametrisation": model.PARAMETRISATIONS, "head": model.HEADS,
               "loss_weighting": indi.LOSS_WEIGHTINGS, "noise_schedule": indi.NOISE_SCHEDULES}
    for key, allowed in choices.items():
        if params[key] not in allowed:
            raise ValueError(f"train: {key} must be one of {tuple(allowed)}, got {params[key]!r}; nothing was written")
    if not 0.0 <= float(params["ema"]) < 1.0:
        raise ValueError(f"train: ema must be 0 (off) or a decay in (0, 1), e.g. 0.999; got {params['ema']}")
    if not 0.0 <= float(params["p_one"]) <= 1.0 or float(params["eps"]) < 0:
        raise ValueError(f"train: need 0 <= p_one <= 1 and eps >= 0, got {params['p_one']} and {params['eps']}")
    return {"head": params["head"], "parametrisation": params["parametrisation"]}


def check_ema_horizon(ema, total_steps, share=1 / 3):
    """Refuse an EMA that averages over more than ``share`` of the run.

    Keras's average starts from the initial weights and has no bias
    correction: after ``n`` steps they still weigh ``ema**n`` (0.999 over 300
    steps: 74 %), so a short run with a long average saves a network close to
    its random start. The horizon ``1 / (1 - ema)`` must stay within a third of
    the run, where the initial weights weigh at most ``exp(-3)`` = 5 %.
    """
    ema = float(ema)
    if ema and 1.0 / (1.0 - ema) > share * total_steps:
        longest = 1.0 - 1.0 / (share * total_steps)
        raise ValueError(f"train: ema {ema:g} averages over ~{1 / (1 - ema):.0f} steps, more than a third of this "
                         f"run's {total_steps} steps, so the saved weights would still be mostly the random initial "
                         f"ones; use ema <= {longest:.4f} or a longer run; nothing was written")


def indi_config(preset, seed, pairs_dir, net_params, params, steps_per_epoch):
    """The ``config.json`` of an InDI run: what must be equal for a resume (not the safeguard)."""
    return {
        "preset": preset, "seed": int(seed), "pairs_dir": str(Path(pairs_dir).resolve()),
        "pairs_sha256": file_sha256(pairs.pairs_file(pairs_dir, "pairs")),
        "network": net_params,
        "training": {k: v for k, v in params.items() if k not in ("network", "max_minutes")}
        | {"steps_per_epoch": int(steps_per_epoch)},
        "objective": "indi",
        "normalisation": "normalisation.json",
        **pairs.lq_scan_record(pairs_dir),
    }


def train_indi(pairs_dir, model_dir, preset="default", epochs=None, max_minutes=None, seed=0, *,
               max_steps=None, overrides=None, restart=False, progress=True):
    """Train InDI on a pairs folder and write a model folder (``indi4d train``).

    Everything is checked before anything is written: the pairs, the
    parameters (``epochs`` and ``max_steps`` at least 1) and the folder (a
    run with other parameters, other pairs or another normalisation is
    refused and left byte-identical unless ``restart``).

    Parameters
    ----------
    pairs_dir : str or Path
        From chapter 02 (``pairs.npz``, ``normalisation.json``).
    model_dir : str or Path
        Output model folder; an unfinished run there with the same parameters
        is resumed from its newest intact checkpoint, a finished one is left
        as it is (only its model is saved again).
    preset : {"tiny", "default", "paper"}
        :data:`PRESETS` entry.
    epochs : int, optional
        Overrides the preset's epochs.
    max_minutes : float, optional
        Overrides the preset's wall-time safeguard (per call).
    seed : int
        Weights, batches, times and noise all follow from it.
    max_steps : int, optional
        Stop after this many optimiser steps in this call (resume later).
    overrides : dict, optional
        Other preset parameters to replace (e.g. ``{"crop": 64}``, or this
        session's options ``{"parametrisation": "residual", "head": "linear",
        "loss_weighting": "min_snr", "ema": 0.999, "eps": 0.01, "p_one": 1/3,
        "target": "halves"}``, see :data:`PRESETS`); a ``"network"`` entry may
        be a preset name or a dict of :func:`indi4d.core.model.build_unet` arguments.
        Unknown keys or values are refused before anything is written.
    restart : bool
        When ``model_dir`` holds a run with other parameters or other pairs
        (their sha256 is part of the configuration), discard it and start
        afresh instead of raising ``ModelFolderError`` (a ``ValueError``).
    progress : bool
        Show a progress bar.

    Returns
    -------
    dict
        The loop's summary (:func:`indi4d.training.loop.run_loop`: ``stopped_by``
        is ``"steps"``, ``"max_steps"`` or ``"wall_time_budget"``) plus
        ``n_params``, ``n_train``, ``n_val`` and ``preset``; also written as
        ``summary.json``.
    """
    from ..core import indi, model

    params = resolve(PRESETS, preset, **{**dict(overrides or {}), **({} if epochs is None else {"epochs": epochs})})
    if max_minutes is not None:
        if not (math.isfinite(float(max_minutes)) and float(max_minutes) > 0):  # NaN would reach summary.json
            raise ValueError(f"train_indi: max_minutes must be a finite number > 0, got {max_minutes!r}")
        params["max_minutes"] = float(max_minutes)
    net_params, factor = network_params(params)
    if params["crop"] % factor:
        raise ValueError(f"training crop {params['crop']} must be a multiple of the network's size factor {factor}")
    build = check_options(params)
    params["target"] = resolve_target(params["target"], pairs_dir)
    slices = load_training_slices(pairs_dir, params["crop"], target=params["target"],
                                  psf_sigma_nm=params["psf_sigma_nm"])
    steps_per_epoch = params["steps_per_epoch"]
    if steps_per_epoch is None:  # one pass over the training area, counted in crops
        steps_per_epoch = max(1, math.ceil(slices["lq_tr"].size / (params["crop"] ** 2 * params["batch_size"])))
    epochs, steps_per_epoch = int(params["epochs"]), int(steps_per_epoch)
    check_ema_horizon(params["ema"], epochs * steps_per_epoch)
    train_batches, val = slice_batches(slices, params, steps_per_epoch, seed, factor)
    config = indi_config(preset, seed, pairs_dir, net_params, params, steps_per_epoch)
    if slices.get("psf") is not None:  # the PSF the targets were deconvolved with (measured or given)
        config["training"]["target_psf"] = slices["psf"]
    start_run(model_dir, config, epochs, steps_per_epoch, val, "train", restart=restart,
              normalisation=slices["normalisation"], max_steps=max_steps)
    # what the network is trained on, for enhance's domain check of the scans it is applied to later
    model_folder.write_domain(model_dir, record_from_slices(slices["lq_tr"], slices["mask"], split="train",
                                                            source=f"{pairs_dir} (train LQ slices)"))

    keras.utils.set_random_seed(int(seed))
    network = model.build_unet(**{**net_params, **build}, seed=int(seed))

    def objective(net, lq, hq, step_seed, training):
        return indi.indi_objective(net, lq, hq, step_seed, p_one=params["p_one"], eps=params["eps"],
                                   threshold=params["threshold"], training=training,
                                   loss_weighting=params["loss_weighting"], noise_schedule=params["noise_schedule"])

    method = objective_method(network, objective, adam(params["max_lr"], epochs * steps_per_epoch,
                                                       params["pct_start"], ema=params["ema"]))
    summary = run_loop(method, train_batches, val, model_dir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                       seed=int(seed), max_minutes=params["max_minutes"], max_steps=max_steps,
                       jit_compile=bool(params["jit_compile"]), progress=progress)
    summary.update(preset=preset, n_params=model.count_parameters(network),
                   n_train=int(slices["lq_tr"].shape[0]), n_val=int(slices["lq_va"].shape[0]))
    model_folder.write_summary(model_dir, summary)
    return summary


def _install(name, folder):
    """A published network installed into ``folder``, as :func:`indi_model` and :func:`indi_deconv_model` report it."""
    from .. import pretrained

    record = pretrained.install_model(name, folder)
    return {"how": "installed", "model_dir": str(folder), "name": record["name"], "sha256": record["sha256"],
            "trained": record["trained"]}


def indi_model(run_dir, preset="default", seed=0, retrain=False, progress=True):
    """The InDI network of a run (``RUN_DIR/model``): the published reference installed, or trained here.

    A preset with a published network (:func:`indi4d.pretrained.names_for`)
    installs it unless ``retrain``; otherwise the whole run is trained on the
    run's pairs with the preset's recipe (:func:`train_indi`, ``restart=True``).

    Parameters
    ----------
    run_dir : str or Path
        The run folder (``RUN_DIR/pairs`` from chapter 02).
    preset : str
        Key of :data:`PRESETS` (and of the published networks).
    seed : int
        Seed of the training.
    retrain : bool
        Train even where a published network exists (``make book TRAIN=1``).
    progress : bool
        Show the training's progress bar.

    Returns
    -------
    dict
        ``how`` ("installed" or "trained"), ``model_dir``, ``trained`` (the
        training summary), and ``name``/``sha256`` when installed.
    """
    from .. import pretrained, runs

    pairs_dir = runs.require_artifact(run_dir, "pairs", "pairs").parent
    folder = runs.stage_dir(run_dir, "model", create=True)
    published = pretrained.names_for(preset, retrain).get("indi")
    if published:
        return _install(published, folder)
    summary = train_indi(pairs_dir, folder, preset=preset, seed=seed, restart=True, progress=progress)
    return {"how": "trained", "model_dir": str(folder), "trained": summary}


def indi_deconv_model(run_dir, preset="default", seed=0, retrain=False, progress=True):
    """The indi-deconv network of a run (``RUN_DIR/indi_deconv``): installed, trained, or skipped with why.

    indi-deconv is InDI trained on the two HQ halves deconvolved by the HQ
    point-spread function (``target="halves_deconv"``), otherwise the preset's
    recipe: a separate method whose targets are sharper than any scan.
    A preset with a published one (:func:`indi4d.pretrained.names_for`) installs
    it unless ``retrain``; otherwise it is trained when the pairs hold the halves.

    Returns
    -------
    dict
        ``how`` ("installed", "trained" or "skipped"), ``model_dir``, and
        ``name``/``sha256`` (installed), the training summary (trained) or ``why`` (skipped).
    """
    from .. import pretrained, runs

    pairs_dir = runs.require_artifact(run_dir, "pairs", "pairs").parent
    folder = runs.stage_dir(run_dir, "indi_deconv")
    published = pretrained.names_for(preset, retrain).get("indi_deconv")
    if published:
        return _install(published, folder)
    if not pairs.has_hq_halves(pairs_dir):
        return {"how": "skipped", "model_dir": str(folder),
                "why": "the pairs hold no HQ halves to deconvolve (register with --hq-halves)"}
    summary = train_indi(pairs_dir, folder, preset=preset, seed=seed, overrides={"target": "halves_deconv"},
                         restart=True, progress=progress)
    return {"how": "trained", "model_dir": str(folder), "trained": summary}
