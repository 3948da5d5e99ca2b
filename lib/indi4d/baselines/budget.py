"""The baselines' budget: InDI's setup and step count, read from its model folder.

A baseline is bounded by InDI's optimiser steps (times ``budget_factor``). A
wall-time cap only applies when the caller asks for one (``minutes``) or as the
preset's safeguard (``max_minutes``); when it ends a baseline's training the
summary records ``stopped_by = "wall_time_budget"``.
"""

from pathlib import Path

from .. import model_checkpoints, model_folder

#: The training parameters of an InDI ``config.json`` that a baseline copies.
INDI_TRAINING_KEYS = ("crop", "batch_size", "epochs", "steps_per_epoch", "max_lr", "pct_start", "min_inside",
                      "val_crop", "val_max_slices", "jit_compile")


def trained_state(model_dir):
    """(global_step, seconds) a model folder's run has spent so far (0, 0.0 when none).

    Read from the newest readable checkpoint state (which counts a
    half-finished epoch too), else from ``history.json``.
    """
    state = model_checkpoints.latest_checkpoint_state(model_dir)
    if state is not None:
        seconds = float(sum(state.get("history", {}).get("seconds", []))) + float(state.get("epoch_seconds", 0.0))
        return int(state["global_step"]), seconds
    h = model_folder.read_history(model_dir)
    return (int(h["steps"][-1]) if h.get("steps") else 0), float(sum(h.get("seconds", [])))


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
        ``seed``, ``steps`` (optimiser steps InDI took: the baselines' bound),
        ``minutes`` (its training wall-clock time, min, for the record) and
        ``model_dir``.

    Raises
    ------
    FileNotFoundError
        When ``config.json`` is missing (train InDI first: chapter 04).
    """
    model_dir = Path(indi_model_dir)
    path = model_folder.model_path(model_dir, "config")
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; train InDI first (chapter 04_training or `indi4d train`)")
    config = model_folder.read_config(model_dir)
    try:
        tr, net = config["training"], config["network"]
    except KeyError as exc:
        raise ValueError(f"{path}: no {exc.args[0]!r} section; not an InDI model folder") from None
    steps, seconds = trained_state(model_dir)
    if steps < 1:
        raise ValueError(f"{model_dir}: the InDI run has no recorded training steps (no checkpoint or history.json)")
    missing = [k for k in INDI_TRAINING_KEYS if k not in tr]
    if missing:
        raise ValueError(f"{path}: training parameters {missing} missing")
    budget = {k: tr[k] for k in INDI_TRAINING_KEYS}
    budget.update(network=dict(net), seed=int(config.get("seed", 0)), steps=int(steps),
                  minutes=round(seconds / 60.0, 4), model_dir=str(model_dir))
    return budget


def budget_caps(model_dir, budget, p, minutes):
    """What a baseline may spend: its step bound and what is left of its wall-time cap.

    Parameters
    ----------
    model_dir : Path
        The baseline's folder (its seconds so far count against the cap).
    budget : dict
        :func:`indi_budget`.
    p : dict
        The baseline preset (``budget_factor``, ``max_minutes``).
    minutes : float or None
        The caller's wall-time cap of the whole run; else the preset's safeguard.

    Returns
    -------
    tuple
        (step bound over all calls, minutes cap or None, minutes left or None).
    """
    cap_steps = max(1, int(round(budget["steps"] * p["budget_factor"])))
    cap_minutes = float(minutes) if minutes is not None else p["max_minutes"]
    _, done_seconds = trained_state(model_dir)
    left_minutes = None if cap_minutes is None else max(0.0, cap_minutes - done_seconds / 60.0)
    return cap_steps, cap_minutes, left_minutes


def finish(model_dir, summary, cap_steps, cap_minutes, kind, n_params):
    """Complete a baseline's summary; write ``summary.json`` once its budget is used up.

    The budget is used up when the step bound is reached, the schedule ended,
    or a wall-time cap fired -- not when the caller's own ``max_steps``
    stopped it early (the run then resumes on the next call).
    """
    done_steps, done_seconds = trained_state(model_dir)
    summary = dict(summary, baseline=kind, complete=summary.get("stopped_by") != "max_steps",
                   budget_steps=cap_steps, budget_minutes=None if cap_minutes is None else round(cap_minutes, 4),
                   steps_done=done_steps, minutes_done=round(done_seconds / 60.0, 4), n_params=n_params)
    if summary["complete"]:
        model_folder.write_summary(model_dir, summary)
    return summary
