"""Reference networks: the training card of a published network, and its first steps retrained to check it.

A card says what a published network is: the recipe (preset, seed, network,
training options), the hash of the pairs it learned from, the steps it took,
its wall time and machine (when recorded), and its loss curve. A card is a
claim until someone checks it: :func:`retrain_first_steps` trains the first
epoch again from the card alone, on pairs rebuilt from the simulator, and
compares the loss with the stored one.
"""

import tempfile
from pathlib import Path

from . import model_folder
from .core import pairs
from .files import file_sha256

#: What the card copies from a model folder's ``summary.json``.
SUMMARY_KEYS = ("global_step", "total_steps", "stopped_by", "seconds", "seconds_per_step", "n_params", "n_train",
                "n_val", "machine", "commit")


def training_card(model_dir):
    """The training card of a trained model folder.

    Parameters
    ----------
    model_dir : str or Path
        A model folder (``config.json``, ``summary.json``, ``history.json``).

    Returns
    -------
    dict
        ``objective`` (``"indi"``, or the baseline's name), ``preset``,
        ``seed``, ``network``, ``training`` (the options ``config.json``
        recorded), ``pairs_sha256``, the :data:`SUMMARY_KEYS` of the run
        (``machine`` and ``commit`` are None when the run did not record them),
        ``loss`` / ``val_loss`` / ``steps`` / ``epoch_seconds`` per epoch, and
        ``run_seconds`` (the whole run over all its calls,
        :func:`indi4d.model_folder.run_seconds`; ``seconds`` is the last call's).
    """
    config = model_folder.read_config(model_dir)
    summary = model_folder.read_summary(model_dir) or {}
    history = model_folder.read_history(model_dir) or {}
    return {"objective": config.get("objective") if config.get("baseline") is None else config["baseline"],
            "preset": config.get("preset"), "seed": config.get("seed"), "network": config.get("network"),
            "training": config.get("training"), "pairs_sha256": config.get("pairs_sha256"),
            **{k: summary.get(k) for k in SUMMARY_KEYS},
            "loss": history.get("loss"), "val_loss": history.get("val_loss"), "steps": history.get("steps"),
            "epoch_seconds": history.get("seconds"), "run_seconds": model_folder.run_seconds(summary, history)}


def check_pairs_match(card, pairs_dir):
    """Refuse pairs other than those the card's network learned from (the SHA-256 of ``pairs.npz``)."""
    path = pairs.pairs_file(pairs_dir, "pairs")
    found = file_sha256(path)
    if found != card["pairs_sha256"]:
        raise ValueError(f"{path}: SHA-256 {found[:16]}… is not the card's pairs "
                         f"({str(card['pairs_sha256'])[:16]}…); rebuild them with the card's data preset and seed (chapters 01-02)")
    return found


def retrain_first_steps(model_dir, pairs_dir, out_dir=None, epochs=1):
    """Train an InDI network's first epoch(s) again from its card, and compare the losses.

    Parameters
    ----------
    model_dir : str or Path
        The published (installed or fetched) InDI model folder.
    pairs_dir : str or Path
        The pairs it was trained on (checked by hash first).
    out_dir : str or Path, optional
        Where the new run goes (default: a temporary folder, removed after).
    epochs : int
        How many of the card's epochs to train again.

    Returns
    -------
    dict
        ``steps`` (optimiser steps retrained), ``stored`` and ``retrained``
        (per-epoch training and validation losses), ``max_abs_diff`` over both,
        ``diff_per_epoch`` (the largest of the two differences, epoch by epoch:
        rounding on another CPU grows slowly with the steps).
    """
    card = training_card(model_dir)
    if card["objective"] != "indi":
        raise ValueError(f"{model_dir}: retrain_first_steps retrains InDI networks; this one is {card['objective']!r}")
    check_pairs_match(card, pairs_dir)
    from .training import PRESETS, train_indi

    # the options a preset knows (config.json also records derived ones, e.g. the PSF a target was deconvolved with)
    training = {k: v for k, v in card["training"].items() if k in PRESETS[card["preset"]] or k == "steps_per_epoch"}
    steps = int(training["steps_per_epoch"]) * int(epochs)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out_dir) if out_dir is not None else Path(tmp) / "retrained"
        train_indi(pairs_dir, folder, preset=card["preset"], seed=card["seed"], max_steps=steps, progress=False,
                   overrides={**training, "network": card["network"]})
        again = model_folder.read_history(folder)
    stored = {"loss": card["loss"][:epochs], "val_loss": card["val_loss"][:epochs]}
    retrained = {"loss": again["loss"][:epochs], "val_loss": again["val_loss"][:epochs]}
    per_epoch = [max(abs(stored[k][e] - retrained[k][e]) for k in stored) for e in range(epochs)]
    return {"steps": steps, "stored": stored, "retrained": retrained, "max_abs_diff": float(max(per_epoch)),
            "diff_per_epoch": [float(d) for d in per_epoch]}


def plot_live_check(card, live):
    """The reference run's loss curves with the epochs trained live drawn over them.

    Parameters
    ----------
    card : dict
        :func:`training_card` of the reference network.
    live : dict
        :func:`retrain_first_steps` on the same pairs.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    epochs = range(1, len(card["loss"]) + 1)
    ax.plot(epochs, card["loss"], "-", color="tab:blue", label="reference run: training loss")
    ax.plot(epochs, card["val_loss"], "-", color="tab:orange", label="reference run: validation loss")
    done = range(1, len(live["retrained"]["loss"]) + 1)
    ax.plot(done, live["retrained"]["loss"], "o", mfc="none", ms=9, color="tab:blue", label="trained live: training")
    ax.plot(done, live["retrained"]["val_loss"], "s", mfc="none", ms=9, color="tab:orange",
            label="trained live: validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.set_title(f"the reference recipe: {live['steps']} steps trained live over the published run's curve")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def simulated_pairs(run_dir, preset="default", seed=0, progress=False):
    """Chapters 01-02 without the book: the simulated data set and its registered pairs in ``run_dir``.

    The data come from the cache (:func:`indi4d.data.simulated_dataset`, simulated
    once); the pairs are registered as chapter 02 registers them (HQ halves
    included, the published normalisation where the preset installs a network).
    Pairs already complete in ``run_dir`` are reused.

    Returns
    -------
    Path
        ``RUN_DIR/pairs``.
    """
    from . import pretrained, runs
    from .data import materialise, simulated_dataset
    from .registration import register_run

    pairs_dir = runs.stage_dir(run_dir, "pairs")
    if pairs.pairs_file(pairs_dir, "provenance").is_file():
        return pairs_dir
    materialise(simulated_dataset(preset, seed, progress=progress), runs.stage_dir(run_dir, "data", create=True))
    register_run(run_dir, preset, seed, normalisation=pretrained.normalisation_for(preset), progress=progress)
    return pairs_dir
