"""The model folder: the one reader and writer of a trained network's files.

A model folder (``indi4d train``'s output, ``RUN_DIR/model``, ``RUN_DIR/baselines/cnn``)
holds::

    model.keras              final network (written last: its presence means "finished")
    discriminator.keras      the GAN baseline's discriminator (GAN folders only)
    config.json              network and training parameters, ``pairs_sha256``
    normalisation.json       {"lq": params, "hq": params} copied from the pairs folder
    history.json             per-epoch loss, val_loss, lr, seconds, steps
    checkpoints/ckpt_<step>  resume state (weights, optimiser, loop state): :mod:`indi4d.model_checkpoints`
    steps.json               the chosen InDI step count N and the rule that chose it
    summary.json             what the training call did (steps, budget, ``stopped_by``)
    domain.json              statistics of the training LQ slices (:mod:`indi4d.domain`), for enhance's domain check

Every other module asks this one (and :mod:`indi4d.model_checkpoints`, for
the checkpoint folders) for these files. Writers are atomic; readers
raise errors that name the file. Nothing is written by :func:`accept_config`
until the configuration has been compared with what the folder already holds.
"""

import math
import shutil
from pathlib import Path

from .core.pairs import check_normalisation
from .core.steps import check_steps
from .files import atomic_path, read_json, write_json
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
    """Remove a run's config, checkpoints, history, model, chosen steps, summary, domain record and install record.

    Nothing else: a user's file in the folder stays.
    """
    model_dir = Path(model_dir)
    shutil.rmtree(model_path(model_dir, "checkpoints"), ignore_errors=True)
    for key in ("config", "history", "model", "discriminator", "steps", "summary", "normalisation",
                "validation_metrics", "domain", "source"):
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


def run_seconds(summary, history=None):
    """Seconds the whole run trained, over all its calls, from its records (None when unknown).

    ``summary["seconds"]`` is the last call's time only: a run resumed from a
    checkpoint spent more. ``run_seconds`` (recorded since it existed), else the
    sum of ``history["seconds"]`` (each epoch's seconds), else the last call's.
    """
    summary = summary or {}
    if summary.get("run_seconds") is not None:
        return float(summary["run_seconds"])
    if history and history.get("seconds"):
        return round(float(sum(history["seconds"])), 2)
    return None if summary.get("seconds") is None else float(summary["seconds"])


def write_summary(model_dir, summary):
    """Write ``summary.json`` (dict), atomically; a call that trained no step keeps the run's record.

    A finished run asked again (the book rebuilt, ``indi4d train`` rerun)
    resumes at its last step and trains nothing: its seconds, machine and
    commit would overwrite those of the training that made the network, which
    a published network's card reports. Such a call leaves a summary of the
    same step count in place.
    """
    path = model_path(model_dir, "summary")
    if summary.get("resumed_from") is not None and summary.get("resumed_from") == summary.get("global_step"):
        try:
            old = read_summary(model_dir)
        except ValueError:  # damaged: replaced below
            old = None
        if old and old.get("global_step") == summary.get("global_step"):
            return path
    return write_json(path, summary)


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


# --------------------------------------------------------------------------- the domain record


def _check_domain(record, path):
    """Refuse a domain record that :func:`indi4d.domain.domain_score` cannot use (names the file and the key)."""
    from .domain import RECORD_VERSION

    def numbers(key, n=None, positive=False):
        values = record.get(key)
        values = values if isinstance(values, list) else [values]
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
        if not ok or (n is not None and len(values) != n) or (positive and min(values) <= 0):
            want = f"{n} finite numbers" if n is not None else "a finite number"
            raise ModelFolderError(f"{path}: '{key}' must be {want}{' > 0' if positive else ''}; the domain record "
                                   "is damaged: recompute it (indi4d.domain.record_from_pairs and "
                                   "model_folder.write_domain) or delete it to skip the domain check")
        return values

    if not isinstance(record, dict) or record.get("version") != RECORD_VERSION:
        got = record.get("version") if isinstance(record, dict) else type(record).__name__
        raise ModelFolderError(f"{path}: not a domain record of version {RECORD_VERSION} (got {got!r}); recompute it "
                               "(indi4d.domain.record_from_pairs) or delete it to skip the domain check")
    levels = numbers("grey_levels")
    grey = numbers("grey_quantiles", len(levels))
    if any(b < a for a, b in zip(grey, grey[1:])):
        raise ModelFolderError(f"{path}: 'grey_quantiles' must not decrease; the domain record is damaged")
    numbers("noise", positive=True)
    numbers("edge_quantiles", len(numbers("edge_levels")), positive=True)
    return record


def write_domain(model_dir, record):
    """Write ``domain.json`` (a record of :func:`indi4d.domain.record_from_slices`), checked first."""
    path = model_path(model_dir, "domain")
    return write_json(path, _check_domain(record, path))


def read_domain(model_dir):
    """The folder's domain record (dict), or None when it has none (e.g. a published network).

    Raises
    ------
    ModelFolderError
        The file is there but damaged (unreadable, another version, a missing
        or non-finite statistic): the message names the file and what to do.
    """
    path = model_path(model_dir, "domain")
    if not path.exists():
        return None
    try:
        record = read_json(path, "the domain record")
    except ValueError as exc:
        raise ModelFolderError(f"{exc}; recompute the domain record or delete it to skip the domain check") from exc
    return _check_domain(record, path)


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
    steps = check_steps(steps, "write_chosen_steps: steps")
    return write_json(model_path(model_dir, "steps"), {"steps": steps, "rule": str(rule), **details})


def read_chosen_steps(model_dir):
    """The stored choice as a dict (``steps``, ``rule``, ...), or None when none was stored."""
    path = model_path(model_dir, "steps")
    if not path.exists():
        return None
    choice = read_json(path, "the chosen step count")
    check_steps(choice.get("steps") if isinstance(choice, dict) else None, f"{path}: 'steps'", ModelFolderError)
    return choice


def resolve_steps(model_dir, steps=None, fallback=FALLBACK_STEPS):
    """The InDI step count N to use for ``model_dir`` and where it came from, in words.

    Parameters
    ----------
    model_dir : str or Path or None
        A model folder (its ``steps.json``, written by chapter 05, is read when present).
    steps : int, optional
        N given by the caller: returned as it is (check it with :func:`check_steps`).
    fallback : int
        N when none is given and the folder holds no choice.

    Returns
    -------
    (n, source)
        ``source`` is ``"given"``, ``"chosen by the evaluation, <steps.json path>"``
        or ``"the model folder holds no chosen N (steps.json); the fallback"``.
    """
    if steps is not None:
        return steps, "given"
    choice = read_chosen_steps(model_dir) if model_dir is not None and Path(model_dir).is_dir() else None
    if choice:
        return int(choice["steps"]), f"chosen by the evaluation, {model_path(model_dir, 'steps')}"
    return int(fallback), f"the model folder holds no chosen N ({FILES['steps']}); the fallback"


def default_steps(model_dir, fallback=FALLBACK_STEPS):
    """The chosen N of ``model_dir`` when stored, else ``fallback`` (:func:`resolve_steps`, without the source)."""
    return resolve_steps(model_dir, None, fallback)[0]
