"""The run folder: where chapters leave artifacts for the chapters after them.

A run folder holds one sub-folder per stage::

    RUN_DIR/data/       chapter 01: simulated or user scans (lq.tif, hq.tif, meta.json, ...)
    RUN_DIR/pairs/      chapter 02: registered, normalised LQ/HQ slice pairs
    RUN_DIR/model/      chapter 04: the trained InDI network
    RUN_DIR/baselines/  chapter 05: CNN and GAN baselines
    RUN_DIR/eval/       chapter 05: metrics
    RUN_DIR/figures/    PNG copies of every chapter figure
"""

from pathlib import Path

#: stage name -> (sub-folder, chapter that writes it)
STAGES = {
    "data": ("data", "01_data_retrieval"),
    "pairs": ("pairs", "02_registration"),
    "model": ("model", "04_training"),
    "baselines": ("baselines", "05_evaluation"),
    "eval": ("eval", "05_evaluation"),
    "figures": ("figures", None),
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


def require_artifact(run_dir, stage, name):
    """Return ``RUN_DIR/<stage>/<name>``, or say which chapter to run first.

    Raises
    ------
    MissingArtifactError
        When the file is not there, naming the chapter that writes it.
    """
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
    path = stage_dir(run_dir, "figures", create=True) / f"{name}.png"
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path
