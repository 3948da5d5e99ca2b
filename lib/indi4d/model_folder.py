"""The model folder: the one reader and writer of a trained network's files.

A model folder (``indi4d train``'s output, ``RUN_DIR/model``, ``RUN_DIR/baselines/cnn``)
holds::

    model.keras              final network (written last: its presence means "finished")
    discriminator.keras      the GAN baseline's discriminator (GAN folders only)
    config.json              network and training parameters, ``pairs_sha256``
    normalisation.json       {"lq": params, "hq": params} copied from the pairs folder
    history.json             per-epoch loss, val_loss, lr, seconds, steps
    checkpoints/ckpt_<step>  resume state (weights, optimiser, loop state)
    steps.json               the chosen InDI step count N and the rule that chose it
    summary.json             what the training call did (steps, budget, ``stopped_by``)

Every other module asks this one for these files. Writers are atomic; readers
raise errors that name the file. Nothing is written by :func:`accept_config`
until the configuration has been compared with what the folder already holds.
"""

import math
import shutil
import warnings
from pathlib import Path

from .files import atomic_dir, atomic_path, read_json, remove_stale_temps_in, write_json
from .runs import FILES as _RUN_FILES

FILES = _RUN_FILES["model"]
#: ``indi4d`` commands that take ``--restart`` (named in the refusal message).
_COMMANDS = ("train",)
#: Steps used by ``indi4d enhance`` when the model folder holds no chosen N.
FALLBACK_STEPS = 10


class ModelFolderError(ValueError):
    """A model folder is missing a file, damaged, or holds another run."""


def model_path(model_dir, key):
    """Path of file ``key`` (a key of :data:`FILES`) inside ``model_dir``."""
    return Path(model_dir) / FILES[key]


def _json_equal(a, b):
    from .files import json_ready

    return json_ready(a) == json_ready(b)


# --------------------------------------------------------------------------- configuration


#: Types of the keys of ``config.json`` that readers rely on (any key may be absent).
CONFIG_TYPES = {"network": dict, "training": dict, "pairs_dir": str, "pairs_sha256": str, "task": str,
                "lq_voxel_size_nm": (int, float), "lq_dtype": str}

#: The ``task`` of a segmentation model folder's ``config.json`` (InDI and baseline folders have none).
SEGMENTATION_TASK = "segmentation"


def read_config(model_dir):
    """The folder's ``config.json`` (dict), its keys' types checked; errors name the file and the key.

    Raises
    ------
    FileNotFoundError
        The file is missing.
    ModelFolderError
        Not a JSON object, or a key of :data:`CONFIG_TYPES` of another type.
    """
    path = model_path(model_dir, "config")
    config = read_json(path, "the model's configuration")
    if not isinstance(config, dict):
        raise ModelFolderError(f"{path}: expected a JSON object, got {type(config).__name__}; the model folder is "
                               "damaged: restore config.json or train again (indi4d train --restart)")
    for key, kind in CONFIG_TYPES.items():
        value = config.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise ModelFolderError(f"{path}: {key!r} is {value!r:.60}, not a {getattr(kind, '__name__', 'number')}; "
                                   "the model folder is damaged: restore config.json or train again")
    voxel = config.get("lq_voxel_size_nm")
    if voxel is not None and not (math.isfinite(voxel) and voxel > 0):
        raise ModelFolderError(f"{path}: 'lq_voxel_size_nm' must be a positive number, got {voxel!r}")
    return config


def model_task(model_dir):
    """What the folder's network does: ``"segmentation"`` or ``"enhancement"`` (InDI, CNN, GAN)."""
    return read_config(model_dir).get("task", "enhancement")


def config_differences(model_dir, config):
    """Top-level keys whose values differ between ``config`` and the stored one ([] when none stored)."""
    path = model_path(model_dir, "config")
    if not path.exists():
        return []
    stored = read_config(model_dir)
    return sorted(k for k in set(stored) | set(config) if not _json_equal(stored.get(k), config.get(k)))


def holds_run(model_dir):
    """True when ``model_dir`` holds anything of a training run (config, checkpoints or a model)."""
    return any(model_path(model_dir, k).exists() for k in ("config", "checkpoints", "model"))


def accept_config(model_dir, config, restart=False, who="train", normalisation=None):
    """Check ``config`` (and ``normalisation``) against the folder, then (only then) write them.

    A folder that holds a run with another configuration, or with another
    grey-level normalisation, is refused (nothing written) unless ``restart``:
    then that run's training state is discarded first. The same configuration
    is accepted (a resume or a finished run).

    Parameters
    ----------
    model_dir : str or Path
    config : dict
        JSON-serialisable.
    restart : bool
        Discard another run's state instead of refusing.
    who : str
        The ``indi4d`` command for the message (``indi4d <who> --restart``);
        anything else is told to pass ``restart=True``.
    normalisation : dict, optional
        ``{"lq": params, "hq": params}`` to store as ``normalisation.json``;
        compared with the stored one before anything is written.

    Returns
    -------
    bool
        True when the folder already held this configuration.

    Raises
    ------
    ModelFolderError
        The folder holds another run and ``restart`` is False.
    """
    model_dir = Path(model_dir)
    if model_dir.exists() and not model_dir.is_dir():
        raise ModelFolderError(f"{model_dir}: exists and is not a folder")
    differ = config_differences(model_dir, config) if model_dir.exists() else []
    if normalisation is not None and not differ and not _same_normalisation(model_dir, normalisation):
        differ.append("normalisation")
    orphan = model_dir.exists() and not model_path(model_dir, "config").exists() and holds_run(model_dir)
    if differ or orphan:
        if not restart:
            what = f"other parameters ({', '.join(differ)})" if differ else "a run without config.json"
            how = f"`indi4d {who} --restart`" if who in _COMMANDS else "restart=True"
            raise ModelFolderError(
                f"{model_dir}: holds a run with {what}; nothing was changed. Use the same parameters "
                f"to resume it, another folder, or restart ({how}) to discard it."
            )
        discard_training_state(model_dir)
    same = model_path(model_dir, "config").exists()
    model_dir.mkdir(parents=True, exist_ok=True)
    write_json(model_path(model_dir, "config"), config)
    if normalisation is not None:
        write_normalisation(model_dir, normalisation)
    return same


def _same_normalisation(model_dir, params):
    """False when ``model_dir`` holds a ``normalisation.json`` that differs from ``params`` (or is damaged)."""
    if not model_path(model_dir, "normalisation").exists():
        return True
    try:
        return _json_equal(read_normalisation(model_dir), params)
    except ValueError:  # damaged: not the same
        return False


def discard_training_state(model_dir):
    """Remove a run's config, checkpoints, history, model, chosen steps and summary (nothing else)."""
    model_dir = Path(model_dir)
    shutil.rmtree(model_path(model_dir, "checkpoints"), ignore_errors=True)
    for key in ("config", "history", "model", "discriminator", "steps", "summary", "normalisation",
                "validation_metrics"):
        model_path(model_dir, key).unlink(missing_ok=True)


# --------------------------------------------------------------------------- normalisation, history, summary


def read_normalisation(model_dir):
    """``{"lq": params, "hq": params}`` from ``normalisation.json``, checked (:func:`check_normalisation`)."""
    path = model_path(model_dir, "normalisation")
    params = read_json(path, "the grey-level normalisation")
    if not isinstance(params, dict) or not {"lq", "hq"} <= set(params):
        raise ModelFolderError(f"{path}: expected keys 'lq' and 'hq'")
    for key in ("lq", "hq"):
        check_normalisation(params[key], f"{path}: {key!r}")
    return params


def check_normalisation(params, label, fix=None):
    """Refuse grey-level parameters that would give a constant or inverted output.

    ``lo`` and ``hi`` must be finite with ``lo < hi``; a quantile table must be
    finite and non-decreasing.

    ``fix`` says what to do (default: about a model folder).

    Raises
    ------
    ModelFolderError
        Naming ``label`` (the file and key) and what is wrong.
    """
    fix = fix or "the model folder is damaged: restore normalisation.json from its pairs folder, or train again"
    if not isinstance(params, dict) or not isinstance(params.get("method"), str):
        raise ModelFolderError(f"{label}: expected an object with a 'method' (from fit_normalisation); {fix}")
    try:
        lo, hi = float(params["lo"]), float(params["hi"])
    except (KeyError, TypeError, ValueError):
        raise ModelFolderError(f"{label}: 'lo' and 'hi' must be numbers; {fix}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ModelFolderError(f"{label}: needs finite lo < hi, got lo = {lo:g}, hi = {hi:g} (equal ends give a "
                               f"constant output, swapped ends an inverted one); {fix}")
    table = params.get("quantiles")
    if table is not None:
        try:
            grey = [float(v) for v in table["grey"]]
            level = [float(v) for v in table["level"]]
        except (KeyError, TypeError, ValueError):
            raise ModelFolderError(f"{label}: the quantile table needs lists 'grey' and 'level'; {fix}") from None
        ok = all(map(math.isfinite, grey + level)) and len(grey) == len(level) >= 2
        if not ok or any(b < a for a, b in zip(grey, grey[1:])) or any(b < a for a, b in zip(level, level[1:])):
            raise ModelFolderError(f"{label}: the quantile table must be finite, of equal lengths and "
                                   f"non-decreasing; {fix}")


def write_normalisation(model_dir, params):
    """Write ``normalisation.json``; refuses to replace a different one of a stored run."""
    path = model_path(model_dir, "normalisation")
    if path.exists() and not _json_equal(read_json(path, "the grey-level normalisation"), params):
        raise ModelFolderError(f"{path}: the folder's normalisation differs from the new one; refusing to replace it")
    return write_json(path, params)


def read_history(model_dir):
    """``history.json`` as a dict of lists (empty dict when there is none yet)."""
    path = model_path(model_dir, "history")
    return read_json(path, "the training history") if path.exists() else {}


def write_history(model_dir, history):
    """Write ``history.json`` (dict of per-epoch lists), atomically."""
    return write_json(model_path(model_dir, "history"), history)


def read_summary(model_dir):
    """``summary.json`` (dict: what the last training call did), or None when there is none."""
    path = model_path(model_dir, "summary")
    return read_json(path, "the training summary") if path.exists() else None


def write_summary(model_dir, summary):
    """Write ``summary.json`` (dict), atomically."""
    return write_json(model_path(model_dir, "summary"), summary)


def write_validation_metrics(model_dir, metrics):
    """Write ``validation_metrics.json`` (chapter 04's scores; infinite PSNRs kept as ``Infinity``)."""
    return write_json(model_path(model_dir, "validation_metrics"), metrics, keep_inf=True)


def is_finished(model_dir):
    """True when the final network ``model.keras`` is there."""
    return model_path(model_dir, "model").is_file()


def save_network(network, path):
    """Save a Keras model as ``path`` (a ``.keras`` file), atomically; return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:  # the temp name ends in ".keras", as Keras insists
        network.save(tmp)
    return path


def write_network(model_dir, network, key="model"):
    """Save ``network`` as the folder's file ``key`` (``"model"`` or ``"discriminator"``), atomically."""
    return save_network(network, model_path(model_dir, key))


# --------------------------------------------------------------------------- the chosen step count


def write_chosen_steps(model_dir, steps, rule, **details):
    """Store the InDI step count N chosen for this model (read by ``indi4d enhance``).

    Parameters
    ----------
    model_dir : str or Path
    steps : int
        N >= 1.
    rule : str
        The rule that chose it, stated in words.
    **details
        JSON-serialisable extras (e.g. the sweep that was scored, where).
    """
    if int(steps) != steps or int(steps) < 1:
        raise ValueError(f"write_chosen_steps: steps must be an integer >= 1, got {steps!r}")
    return write_json(model_path(model_dir, "steps"), {"steps": int(steps), "rule": str(rule), **details})


def read_chosen_steps(model_dir):
    """The stored choice as a dict (``steps``, ``rule``, ...), or None when none was stored."""
    path = model_path(model_dir, "steps")
    if not path.exists():
        return None
    choice = read_json(path, "the chosen step count")
    steps = choice.get("steps") if isinstance(choice, dict) else None
    if not isinstance(steps, int) or steps < 1:
        raise ModelFolderError(f"{path}: 'steps' must be an integer >= 1, got {steps!r}")
    return choice


def default_steps(model_dir, fallback=FALLBACK_STEPS):
    """The chosen N of ``model_dir`` when stored, else ``fallback``."""
    choice = read_chosen_steps(model_dir) if model_dir is not None and Path(model_dir).is_dir() else None
    return int(choice["steps"]) if choice else int(fallback)


# --------------------------------------------------------------------------- checkpoints


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
