"""Training the CNN and GAN baselines on InDI's pairs, batches and step budget."""

from pathlib import Path

import keras

from .. import model_folder
from ..core import pairs
from ..presets import resolve
from ..training.data import DEFAULT_TARGET, load_training_slices, resolve_target, slice_batches
from ..training.single_network import adam, objective_method, start_run
from ..training.loop import run_loop
from .budget import budget_caps, finish, indi_budget
from .networks import build_patchgan
from .objectives import gan_method, gan_optimizers, regression_objective

#: ``cnn_loss``: "mae" or "mse" for the CNN regressor. ``l1_weight``: pix2pix's
#: lambda. ``disc_filters``/``disc_layers``/``disc_norm``: the PatchGAN (3 layers
#: = pix2pix's 70 x 70 patches). ``disc_lr_factor``: the discriminator's maximum
#: learning rate relative to the generator's (InDI's). ``beta_1``: Adam's first
#: moment decay for both GAN optimisers (pix2pix: 0.5). ``budget_factor``:
#: multiplies InDI's steps (1 = the same budget). ``max_minutes``: a wall-time
#: safeguard of each baseline's whole run, well above the expected time (the
#: bound is the step count); recorded as ``stopped_by = "wall_time_budget"``
#: when it fires.
PRESETS = {
    "tiny": {"cnn_loss": "mae", "l1_weight": 100.0, "disc_filters": 8, "disc_layers": 2, "disc_norm": "instance",
             "disc_lr_factor": 1.0, "beta_1": 0.5, "budget_factor": 1.0, "max_minutes": None},
    "default": {"cnn_loss": "mae", "l1_weight": 100.0, "disc_filters": 32, "disc_layers": 3, "disc_norm": "instance",
                "disc_lr_factor": 1.0, "beta_1": 0.5, "budget_factor": 1.0, "max_minutes": 180.0},
    "paper": {"cnn_loss": "mae", "l1_weight": 100.0, "disc_filters": 64, "disc_layers": 3, "disc_norm": "instance",
              "disc_lr_factor": 1.0, "beta_1": 0.5, "budget_factor": 1.0, "max_minutes": None},
}


def _config(kind, preset, seed, pairs_dir, budget, p, minutes):
    """The part of a baseline's ``config.json`` shared by the CNN and the GAN (not the safeguard)."""
    indi = {k: budget[k] for k in ("steps", "minutes", "crop", "batch_size", "epochs", "steps_per_epoch", "max_lr",
                                   "pct_start")}
    return {"baseline": kind, "preset": preset, "seed": seed, "pairs_dir": str(Path(pairs_dir).resolve()),
            "network": budget["network"], "indi_budget": indi,
            "target": {"target": resolve_target(budget.get("target", DEFAULT_TARGET), pairs_dir),
                       "psf_sigma_nm": budget.get("psf_sigma_nm")},
            "budget": {"factor": p["budget_factor"], "minutes": minutes},
            "normalisation": "normalisation.json", **pairs.lq_scan_record(pairs_dir)}


def _reusable(model_dir, config):
    """The stored summary when ``model_dir`` holds a finished run with this ``config``, else None."""
    if not model_folder.model_path(model_dir, "config").is_file() or not model_folder.is_finished(model_dir):
        return None
    summary = model_folder.read_summary(model_dir)
    if not summary or not summary.get("complete") or model_folder.config_differences(model_dir, config):
        return None
    return summary


def _train_baseline(kind, pairs_dir, model_dir, budget, p, config, seed, minutes, max_steps, restart, progress,
                    build):
    """Reuse a finished baseline, or check everything, accept the folder and run the loop.

    ``build(seed, total_steps) -> (method, network whose parameters are counted)``
    is called after the weights' seed is set.
    """
    from ..core.model import count_parameters

    model_dir = Path(model_dir)
    stored = _reusable(model_dir, config)
    if stored is not None:
        return dict(stored, reused=True)
    # InDI's targets (the HQ scan, or two HQ halves: then the target is channel 1)
    slices = load_training_slices(pairs_dir, int(budget["crop"]), target=budget.get("target", DEFAULT_TARGET),
                                  psf_sigma_nm=budget.get("psf_sigma_nm"))
    epochs, steps_per_epoch = int(budget["epochs"]), int(budget["steps_per_epoch"])
    factor = 2 ** int(budget["network"]["depth"])
    # the very batches InDI saw: its seed, crops and epochs
    train_batches, val = slice_batches(slices, budget, steps_per_epoch, int(budget["seed"]), factor)
    start_run(model_dir, config, epochs, steps_per_epoch, val, f"train the {kind.upper()} baseline",
              restart=restart, normalisation=slices["normalisation"], max_steps=max_steps)
    cap_steps, cap_minutes, left_minutes = budget_caps(model_dir, budget, p, minutes)
    keras.utils.set_random_seed(seed)
    method, counted = build(seed, epochs * steps_per_epoch)
    if left_minutes == 0 and model_folder.is_finished(model_dir):  # the wall-time cap is spent: nothing to train
        summary = {"model_dir": str(model_dir), "stopped_by": "wall_time_budget", "resumed_from": None}
    else:
        summary = run_loop(method, train_batches, val, model_dir, epochs=epochs, steps_per_epoch=steps_per_epoch,
                           seed=seed, max_minutes=left_minutes, max_steps=max_steps, stop_at=cap_steps,
                           jit_compile=bool(budget["jit_compile"]), progress=progress)
    return dict(finish(model_dir, summary, cap_steps, cap_minutes, kind, count_parameters(counted)), reused=False)


def train_cnn(pairs_dir, model_dir, budget, preset="default", seed=None, minutes=None, max_steps=None,
              progress=True, restart=False, **overrides):
    """Train the CNN baseline: the InDI U-Net without time input, one pass, MAE or MSE.

    Parameters
    ----------
    pairs_dir : str or Path
        Chapter 02's pairs folder.
    model_dir : str or Path
        Output folder (``RUN_DIR/baselines/cnn``); a finished run with the same
        configuration is reused, an unfinished one resumed, another one
        refused (folder unchanged) unless ``restart``.
    budget : dict
        :func:`indi_budget` of the InDI run to match; optional ``target`` and
        ``psf_sigma_nm`` (InDI's targets, default :data:`~indi4d.training.data.DEFAULT_TARGET`: with two HQ halves
        the batches' ``hq`` has two channels and the target is channel 1).
    preset : {"tiny", "default", "paper"}
        :data:`PRESETS` entry; ``**overrides`` replace single parameters.
    seed : int, optional
        Weights seed (default: the InDI run's); batches always follow the InDI run's seed.
    minutes : float, optional
        Wall-clock cap of the whole run, min (default: only the preset's safeguard).
    max_steps : int, optional
        Stop after this many steps in this call (the run is then unfinished and
        resumes on the next call).
    progress : bool
    restart : bool
        Discard another run in ``model_dir`` instead of refusing.

    Returns
    -------
    dict
        The loop's summary plus ``baseline``, ``complete``, ``stopped_by``,
        ``budget_steps``, ``budget_minutes``, ``steps_done``, ``minutes_done``,
        ``n_params`` and ``reused``.
    """
    from ..core import model

    p = resolve(PRESETS, preset, **overrides)
    seed = int(budget["seed"] if seed is None else seed)
    config = _config("cnn", preset, seed, pairs_dir, budget, p, minutes) | {"objective": p["cnn_loss"]}

    def build(seed, total):
        net = model.build_unet(**budget["network"], time_embedding=False, seed=seed, name="cnn_unet")
        optimizer = adam(float(budget["max_lr"]), total, float(budget["pct_start"]))
        return objective_method(net, regression_objective(p["cnn_loss"]), optimizer, desc="CNN training"), net

    return _train_baseline("cnn", pairs_dir, model_dir, budget, p, config, seed, minutes, max_steps, restart,
                           progress, build)


def train_gan(pairs_dir, model_dir, budget, preset="default", seed=None, minutes=None, max_steps=None,
              progress=True, restart=False, **overrides):
    """Train the pix2pix GAN baseline: U-Net generator + conditional PatchGAN, L1 + adversarial.

    Parameters are those of :func:`train_cnn`; the GAN's own ones (``l1_weight``,
    ``disc_filters``, ``disc_layers``, ``disc_norm``, ``disc_lr_factor``,
    ``beta_1``) come from :data:`PRESETS` and ``**overrides``.

    Returns
    -------
    dict
        As :func:`train_cnn`; ``n_params`` counts the generator. The history
        adds the GAN's loss terms, the folder ``discriminator.keras``.
    """
    from ..core import model

    p = resolve(PRESETS, preset, **overrides)
    seed = int(budget["seed"] if seed is None else seed)
    factor = 2 ** int(p["disc_layers"])
    if int(budget["crop"]) % factor:
        raise ValueError(f"GAN baseline: the crop {int(budget['crop'])} must be a multiple of "
                         f"2**disc_layers = {factor}")
    config = _config("gan", preset, seed, pairs_dir, budget, p, minutes) | {
        "discriminator": {k: p[k] for k in ("disc_filters", "disc_layers", "disc_norm")},
        "objective": {"l1_weight": p["l1_weight"], "disc_lr_factor": p["disc_lr_factor"], "beta_1": p["beta_1"]}}

    def build(seed, total):
        gen = model.build_unet(**budget["network"], time_embedding=False, seed=seed, name="gan_generator")
        disc = build_patchgan(1, p["disc_filters"], p["disc_layers"], p["disc_norm"], seed=seed + 1)
        g_opt, d_opt = gan_optimizers(float(budget["max_lr"]), total, float(budget["pct_start"]),
                                      p["disc_lr_factor"], p["beta_1"])
        return gan_method(gen, disc, g_opt, d_opt, p["l1_weight"]), gen

    return _train_baseline("gan", pairs_dir, model_dir, budget, p, config, seed, minutes, max_steps, restart,
                           progress, build)


def train_baselines(run_dir, preset="default", seed=None, minutes=None, progress=True, restart=False,
                    retrain=False):
    """Train (or reuse) the CNN and GAN baselines of a run folder at the InDI run's step budget.

    Parameters
    ----------
    run_dir : str or Path
        Needs ``pairs/`` (chapter 02) and ``model/`` (chapter 04); writes
        ``baselines/cnn`` and ``baselines/gan``.
    preset : {"tiny", "workshop", "default", "paper"}
    seed : int, optional
        Weights seed (default: the InDI run's).
    minutes : float, optional
        Wall-clock cap of *each* baseline (default: none but the preset's safeguard).
    progress : bool
    restart : bool
        Discard baselines trained with another configuration instead of refusing.
    retrain : bool
        Train them even where the preset installs the published ones (``make book TRAIN=1``).

    Returns
    -------
    dict
        ``{"budget": indi_budget(...), "cnn": summary, "gan": summary}``. A
        preset with published baselines (:func:`indi4d.pretrained.names_for`,
        the workshop) installs them instead of training; their summaries then
        carry ``pretrained`` (the archive) and ``sha256``.
    """
    from .. import pretrained, runs

    pairs_dir = runs.require_artifact(run_dir, "pairs", "pairs").parent
    indi_dir = runs.require_artifact(run_dir, "model", "config").parent
    budget = indi_budget(indi_dir)
    indi_training = model_folder.read_config(indi_dir)["training"]
    for key, default in (("target", DEFAULT_TARGET), ("psf_sigma_nm", None)):  # InDI's targets, for the same batches
        budget.setdefault(key, indi_training.get(key, default))
    out = runs.stage_dir(run_dir, "baselines", create=True)
    published = pretrained.names_for(preset, retrain)
    if published.get("cnn") and published.get("gan"):  # the reference baselines, not trained
        installed = {kind: pretrained.install_model(published[kind], out / runs.file_name("baselines", kind))
                     for kind in ("cnn", "gan")}
        return {"budget": budget, **{kind: dict(rec["trained"], reused=False, pretrained=rec["name"],
                                                sha256=rec["sha256"]) for kind, rec in installed.items()}}
    kw = dict(seed=seed, minutes=minutes, progress=progress, restart=restart)
    cnn = train_cnn(pairs_dir, out / runs.file_name("baselines", "cnn"), budget, preset, **kw)
    gan = train_gan(pairs_dir, out / runs.file_name("baselines", "gan"), budget, preset, **kw)
    return {"budget": budget, "cnn": cnn, "gan": gan}
