"""The checkpoint folders of a model folder: ``checkpoints/ckpt_<step>``, written atomically, newest intact restored.

A checkpoint is complete when its ``state.json`` is there (the loop state);
what else it holds (weights, optimiser state) is the training loop's business
(:mod:`indi4d.training.checkpoints`). The last ``keep`` are kept; a damaged
newest one falls back to the previous intact one, with a warning.
"""

import shutil
import warnings
from pathlib import Path

from .files import atomic_dir, read_json, remove_stale_temps_in
from .model_folder import ModelFolderError, model_path


def remove_stale_checkpoint_temps(model_dir):
    """Delete the half-written checkpoint folders that a killed run left in ``checkpoints/``."""
    return remove_stale_temps_in(model_path(model_dir, "checkpoints"))


def read_checkpoint_state(path):
    """The loop state (dict) stored in checkpoint folder ``path`` (its ``state.json``)."""
    state = read_json(Path(path) / "state.json", "the checkpoint's training state")
    if not isinstance(state, dict) or "global_step" not in state:
        raise ModelFolderError(f"{Path(path) / 'state.json'}: expected a JSON object with 'global_step'")
    return state


def latest_checkpoint_state(model_dir):
    """The state of the newest checkpoint whose ``state.json`` is readable, or None."""
    for path in reversed(checkpoints(model_dir)):
        try:
            return read_checkpoint_state(path)
        except ValueError:  # damaged: an older one may still be readable
            continue
    return None


def checkpoints(model_dir):
    """Complete checkpoint folders (``checkpoints/ckpt_<step>`` with a ``state.json``), oldest first."""
    folder = model_path(model_dir, "checkpoints")
    if not folder.is_dir():
        return []
    done = [p for p in folder.glob("ckpt_*") if (p / "state.json").exists() and not p.name.startswith(".")]
    return sorted(done, key=lambda p: int(p.name.split("_")[1]))


def write_checkpoint(model_dir, step, write, keep=2):
    """Write ``checkpoints/ckpt_<step>`` atomically through ``write(tmp_folder)``; keep the last ``keep``.

    ``write`` must create ``state.json`` (its presence marks a complete checkpoint).
    """
    folder = model_path(model_dir, "checkpoints")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"ckpt_{int(step):09d}"
    with atomic_dir(path) as tmp:
        write(tmp)
        if not (tmp / "state.json").exists():
            raise RuntimeError(f"{path}: the checkpoint writer wrote no state.json")
    for old in checkpoints(model_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def restore_latest_checkpoint(model_dir, restore):
    """Restore the newest checkpoint that ``restore(path)`` can read, falling back to older ones.

    Damaged checkpoints newer than the restored one are removed (the run goes
    on from the restored one and rewrites them), with a warning that names
    each and the checkpoint resumed instead.

    Parameters
    ----------
    model_dir : str or Path
    restore : callable
        ``restore(path) -> state``; raises on a damaged checkpoint.

    Returns
    -------
    (state, path) or (None, None)
        ``(None, None)`` when there is no checkpoint. After a fall-back the
        state holds ``resumed_after_damaged``: the names of the damaged ones.

    Raises
    ------
    ModelFolderError
        Every checkpoint is damaged (names each and why).
    """
    remove_stale_checkpoint_temps(model_dir)
    problems, damaged = [], []
    for path in reversed(checkpoints(model_dir)):
        try:
            state = restore(path)
        except Exception as exc:  # h5py, numpy and JSON each raise their own types for a damaged file
            problems.append(f"{path.name}: {type(exc).__name__}: {exc}")
            damaged.append(path)
            continue
        if damaged:
            warnings.warn(f"{model_dir}: damaged checkpoint(s) {', '.join(p.name for p in damaged)} "
                          f"({'; '.join(problems)}); resuming from the previous intact one, {path.name}",
                          RuntimeWarning, stacklevel=2)
            for bad in damaged:
                shutil.rmtree(bad, ignore_errors=True)
            state = dict(state, resumed_after_damaged=[p.name for p in damaged])
        return state, path
    if problems:
        raise ModelFolderError(f"{model_dir}: every checkpoint is damaged ({'; '.join(problems)}); "
                               "restart the run (`indi4d train --restart`)")
    return None, None
