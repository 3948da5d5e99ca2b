"""The run folder: where chapters leave artifacts for the chapters after them.

A run folder holds one sub-folder per stage::

    RUN_DIR/data/       chapter 01: simulated or user scans (lq.tif, hq.tif, meta.json, ...)
    RUN_DIR/pairs/      chapter 02: registered, normalised LQ/HQ slice pairs
    RUN_DIR/model/      chapter 04: the trained InDI network (a model folder)
    RUN_DIR/baselines/  chapter 05: CNN and GAN baselines (model folders cnn/ and gan/)
    RUN_DIR/eval/       chapter 05: metrics
    RUN_DIR/ablation/   chapter 04: one short InDI run per training change, and ablation.json
    RUN_DIR/live/       chapter 04: the reference recipe's first epochs trained live (a model folder)
    RUN_DIR/indi_deconv/ chapter 04: InDI trained on deconvolved HQ halves (indi-deconv, a separate method)
    RUN_DIR/insitu/     chapter 06: the in situ series enhanced, and its metrics
    RUN_DIR/segmentation/ chapter 07: segmentation networks, label volumes and metrics
    RUN_DIR/figures/    PNG copies of every chapter figure

This module is the one place that knows the file names inside each stage
(:data:`FILES`); code asks :func:`artifact` or :func:`require_artifact` for a
path instead of spelling a name. The files of a model folder are owned by
:mod:`indi4d.model_folder`.
"""

from pathlib import Path

#: stage name -> (sub-folder, chapter that writes it)
STAGES = {
    "data": ("data", "01_data_retrieval"),
    "pairs": ("pairs", "02_registration"),
    "model": ("model", "04_training"),
    "baselines": ("baselines", "05_evaluation"),
    "eval": ("eval", "05_evaluation"),
    "insitu": ("insitu", "06_insitu"),
    "ablation": ("ablation", "04_training"),
    "live": ("live", "04_training"),
    "indi_deconv": ("indi_deconv", "04_training"),
    "segmentation": ("segmentation", "07_segmentation"),
    "figures": ("figures", None),
}

#: stage -> {key: file name}; the keys are what code uses.
FILES = {
    "data": {
        "lq": "lq.tif", "hq": "hq.tif", "meta": "meta.json",
        "truth_labels_hq": "truth_labels_hq.tif", "truth_mu_hq": "truth_mu_hq.tif",
        # the HQ scan at infinite dose without rings (same optics, same motion): the ceiling of HQ targets
        "hq_ideal": "hq_ideal.tif",
        # two independent HQ reconstructions of the same scan, odd and even projection angles (Noise2Inverse)
        "hq_half_a": "hq_half_a.tif", "hq_half_b": "hq_half_b.tif",
        **{f"insitu_t{k}": f"insitu_t{k}.tif" for k in range(3)},
        **{f"insitu_t{k}_labels": f"insitu_t{k}_labels.tif" for k in range(3)},
    },
    "pairs": {"pairs": "pairs.npz", "phi": "phi.json", "normalisation": "normalisation.json",
              "provenance": "pairs.json",
              # the report of the last registration refused as not converged (earlier pairs stay intact)
              "unconverged": "phi_unconverged.json"},
    "model": {"model": "model.keras", "discriminator": "discriminator.keras", "config": "config.json",
              "normalisation": "normalisation.json", "history": "history.json", "checkpoints": "checkpoints",
              "steps": "steps.json", "validation_metrics": "validation_metrics.json", "summary": "summary.json",
              # statistics of the training LQ slices, for enhance's domain check (indi4d.domain)
              "domain": "domain.json",
              # the published archive a folder was installed from (indi4d.pretrained), absent when trained here
              "source": "pretrained.json"},
    "baselines": {"cnn": "cnn", "gan": "gan"},
    "eval": {"metrics": "metrics.json"},
    "insitu": {"metrics": "metrics.json", "enhanced": "enhanced"},
    "ablation": {"results": "ablation.json"},
    "live": {},
    "indi_deconv": {},
    "segmentation": {"metrics": "metrics.json", "networks": "networks", "labels": "labels"},
    "figures": {},
}


class MissingArtifactError(FileNotFoundError):
    """An artifact an earlier chapter should have written is missing."""


def stage_dir(run_dir, stage, create=False):
    """Return the folder of one stage inside a run folder.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    stage : str
        One of :data:`STAGES`.
    create : bool
        Create the folder when missing.

    Returns
    -------
    Path
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {sorted(STAGES)}")
    path = Path(run_dir) / STAGES[stage][0]
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def file_name(stage, key):
    """The file name of artifact ``key`` of ``stage`` (e.g. ``file_name("pairs", "pairs")``)."""
    try:
        return FILES[stage][key]
    except KeyError:
        known = sorted(FILES.get(stage, {}))
        raise ValueError(f"unknown artifact {key!r} of stage {stage!r}; known: {known}") from None


def artifact(run_dir, stage, key):
    """``RUN_DIR/<stage>/<file name of key>``, whether or not it exists."""
    return stage_dir(run_dir, stage) / file_name(stage, key)


def require_artifact(run_dir, stage, name):
    """Return ``RUN_DIR/<stage>/<name>``, or say which chapter to run first.

    ``name`` is a key of :data:`FILES` (``"pairs"``) or a file name (``"pairs.npz"``).

    Raises
    ------
    MissingArtifactError
        When the file is not there, naming the chapter that writes it.
    """
    name = FILES.get(stage, {}).get(name, name)
    path = stage_dir(run_dir, stage) / name
    if not path.exists():
        chapter = STAGES[stage][1]
        raise MissingArtifactError(
            f"{path} is missing: run chapter {chapter} first with the same run_dir "
            f"({Path(run_dir)})."
        )
    return path


def save_figure(fig, run_dir, name, dpi=110):
    """Save a matplotlib figure as ``RUN_DIR/figures/<name>.png`` and return the path."""
    from .files import atomic_path

    path = stage_dir(run_dir, "figures", create=True) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return path
