"""The limits study: train each point's InDI (and the CNN at its budget), score both against the truth, resumably.

Layout, inside a run folder of chapters 01-02 (``RUN_DIR/limits/``)::

    pairs/<name>/            pairs folders a point trains on, derived from RUN_DIR/pairs
                             (an oracle target in place of HQ, or a subset of the training slices)
    points/<id>/indi/        the point's InDI model folder (checkpointed: a stopped study resumes)
    points/<id>/cnn/         the CNN baseline at the same budget and batches
    points/<id>/scores.json  the point's scores, written once both are trained and scored

Every point is scored on the same held-out test slices, in physical units
against the true attenuation (:func:`indi4d.evaluation.score`): InDI over a
sweep of N with the book's rule choosing N (:func:`indi4d.evaluation.select_steps`),
and the CNN in one pass. The reference rows (bicubic, HQ, the ideal HQ) are
scored once.
"""

import time
from pathlib import Path

import numpy as np

from .points import NOT_CANDIDATES, ORACLES, RULE, RULE_FWHM_REL, RULE_PSNR_DB, training_overrides

#: The N swept for every point (a subset of chapter 05's sweep: the study trains many networks).
SWEEP = (1, 2, 4, 7, 10, 20)
#: The numbers kept per scored output.
KEYS = ("psnr", "ssim", "fwhm_nm", "fwhm_nm_std", "edge_overshoot", "self_aligned_fwhm_nm", "edge_placement_rms_nm",
        "power_ratio_high", "cnr", "false_particles_per_mm2", "flat_region_error")
#: Stored with every result: what the study is and how its numbers were made.
SCORED = "held-out test slices of RUN_DIR/pairs, against the true attenuation (1/µm), no grey fit"


def limits_dir(run_dir, *parts):
    """``RUN_DIR/limits/<parts>`` (not created)."""
    return Path(run_dir, "limits", *map(str, parts))


def _pick(metrics):
    return {k: metrics.get(k) for k in KEYS}


def oracle_volume(run_dir, target):
    """An oracle target volume in HQ's grey values: the ideal HQ scan, or the truth mapped through the grey scale.

    Parameters
    ----------
    run_dir : str or Path
        Holds ``data/hq_ideal.tif``, ``data/truth_mu_hq.tif`` and ``data/meta.json``
        (a simulated data set: chapter 01).
    target : {"oracle_ideal", "oracle_truth"}

    Returns
    -------
    ndarray, float32, shape (Z, H, W) on HQ's grid
    """
    from .. import runs
    from ..files import read_json
    from ..io import read_volume
    from ..simulate.acquisition import mu_to_grey

    if target == "oracle_ideal":
        vol, _ = read_volume(runs.require_artifact(run_dir, "data", "hq_ideal"))
        return np.asarray(vol, np.float32)
    if target != "oracle_truth":
        raise ValueError(f"oracle_volume: target must be one of {ORACLES}, got {target!r}")
    meta_path = runs.require_artifact(run_dir, "data", "meta")
    mapping = read_json(meta_path, "the data description").get("grey_mapping")
    if not mapping:
        raise ValueError(f"{meta_path}: no grey_mapping, so the true attenuation cannot be put on HQ's grey scale")
    mu, _ = read_volume(runs.require_artifact(run_dir, "data", "truth_mu_hq"))
    # the grey value a perfect scan would record: HQ's own mapping of attenuation to grey
    return mu_to_grey(mu, mapping["offset"], mapping["per_inv_um"]).astype(np.float32)


def derived_pairs(run_dir, name, *, target=None, data_fraction=1.0):
    """A pairs folder derived from ``RUN_DIR/pairs``: an oracle target in place of HQ, or fewer training slices.

    The LQ inputs, mask, slice indices, normalisation and the validation and
    test slices are those of the run's pairs, so every point sees the same LQ
    and is scored on the same slices. Written once and reused.

    Parameters
    ----------
    run_dir : str or Path
    name : str
        Folder name under ``RUN_DIR/limits/pairs/``.
    target : {"oracle_ideal", "oracle_truth"}, optional
        Replace the HQ slices by this oracle, normalised with HQ's parameters
        (set to -1 outside the disc, like HQ); the halves are dropped.
    data_fraction : float
        Keep this fraction of the training slices, evenly spaced (0 < f <= 1).

    Returns
    -------
    Path
        The pairs folder.
    """
    from ..core import pairs, preprocess
    from .. import runs
    from ..files import read_json
    from ..metrics import select_slices

    if not 0.0 < float(data_fraction) <= 1.0:
        raise ValueError(f"derived_pairs: data_fraction must be in (0, 1], got {data_fraction}")
    out = limits_dir(run_dir, "pairs", name)
    if pairs.pairs_file(out, "provenance").is_file():
        return out
    src = runs.require_artifact(run_dir, "pairs", "pairs").parent
    info = pairs.load_pairs_info(src)
    lq, hq = pairs.load_pairs(src, "all")
    halves = pairs.load_hq_halves(src, "all") if info["hq_halves"] else (None, None)
    keep = np.ones(lq.shape[0], bool)
    train = np.flatnonzero(info["split"] == "train")
    if data_fraction < 1.0:
        kept = train[select_slices(train.size, max(1, round(train.size * float(data_fraction))))]
        keep[np.setdiff1d(train, kept)] = False
    if target is not None:
        vol = oracle_volume(run_dir, target)
        hq = preprocess.normalise(vol[np.asarray(info["z"])], info["normalisation"]["hq"]).astype(np.float32)
        hq[:, ~info["mask"]] = -1.0
        halves = (None, None)
    provenance = dict(read_json(pairs.pairs_file(src, "provenance"), "the pairs' provenance"))
    provenance["derived"] = {"from": str(src), "target": target, "data_fraction": float(data_fraction),
                             "train_slices": int(np.count_nonzero(keep[train]))}
    sub = lambda a: None if a is None else a[keep]  # noqa: E731
    return pairs.save_pairs(out, lq[keep], hq[keep], info["mask"], np.asarray(info["z"])[keep],
                            info["split"][keep], info["phi"], info["normalisation"], provenance,
                            hq_a=sub(halves[0]), hq_b=sub(halves[1]))


def point_pairs(run_dir, recipe):
    """The pairs folder a recipe trains on: the run's own, or one :func:`derived_pairs` writes."""
    from .. import runs

    target, fraction = recipe["target"], float(recipe["data_fraction"])
    if target not in ORACLES and fraction == 1.0:
        return runs.require_artifact(run_dir, "pairs", "pairs").parent
    name = "_".join(p for p in (target if target in ORACLES else "", f"f{fraction:g}" if fraction < 1 else "") if p)
    return derived_pairs(run_dir, name, target=target if target in ORACLES else None, data_fraction=fraction)


def reference_scores(test, preset="default", seed=0):
    """The reference rows, scored once: bicubic LQ, the HQ scan and the ideal HQ against the truth."""
    from ..evaluation import score

    rows = {"bicubic": _pick(score(test["lq"], test, "truth", preset, seed, side="lq")),
            "hq": _pick(score(test["hq"], test, "truth", preset, seed, side="hq"))}
    if test.get("hq_ideal") is not None:
        rows["hq_ideal"] = _pick(score(test["hq_ideal"], test, "truth", preset, seed, physical=test["hq_ideal"]))
    return rows


def train_point(run_dir, point, seed=0, progress=True, train_preset="default"):
    """Train (or resume, or reuse) a point's InDI and its CNN at the same budget.

    ``train_preset`` is the training preset under the recipe (crops, batch,
    learning rate: :data:`indi4d.training.recipes.PRESETS`); the recipe sets
    the steps, network, target and data.

    Returns
    -------
    dict
        ``indi`` and ``cnn``: the training summaries (``global_step``,
        ``seconds``, ``stopped_by``, ``n_params``, ...), and ``pairs_dir``.
    """
    from ..baselines import indi_budget, train_cnn
    from ..training import train_indi

    pairs_dir = point_pairs(run_dir, point["recipe"])
    over = training_overrides(point["recipe"])
    max_minutes = over.pop("max_minutes")
    folder = limits_dir(run_dir, "points", point["id"])
    indi = train_indi(pairs_dir, folder / "indi", preset=train_preset, seed=seed, overrides=over,
                      max_minutes=max_minutes, progress=progress)
    budget = indi_budget(folder / "indi")
    budget["target"] = over["target"]  # the CNN learns from the very same targets and batches
    cnn = train_cnn(pairs_dir, folder / "cnn", budget, preset=train_preset, minutes=None, progress=progress)
    return {"indi": indi, "cnn": cnn, "pairs_dir": str(pairs_dir)}


def score_point(run_dir, point, test, preset="default", seed=0):
    """A trained point scored on the test slices: InDI over :data:`SWEEP` with the rule's N, and the CNN.

    Returns
    -------
    dict
        ``chosen_steps``, ``rule``, ``indi_n1``, ``indi_rule`` (metrics at
        N = 1 and at the rule's N), ``sweep`` (metrics per N), ``cnn``.
    """
    from ..evaluation import score, select_steps, step_sweep
    from ..evaluation.settings import PRESETS as EVAL_PRESETS
    from ..inference import load_enhancer, predict_slices
    from ..presets import resolve

    ev = resolve(EVAL_PRESETS, preset)
    folder = limits_dir(run_dir, "points", point["id"])
    enhancer = load_enhancer(folder / "indi", preset=ev["tiling"])
    sweep, _ = step_sweep(enhancer, test, SWEEP, preset, seed, progress=False)
    by_n = {r["steps"]: r for r in sweep}
    try:
        choice = select_steps(sweep, ev["fwhm_tol"], ev["psnr_tol_db"])
    except ValueError as err:  # too few edges to measure: say so rather than guess an N
        choice = {"steps": None, "rule": f"nothing chosen: {err}"}
    cnn_net = load_enhancer(folder / "cnn", preset=ev["tiling"], graph=False)
    cnn = score(predict_slices(cnn_net, test["lq"]), test, "truth", preset, seed)
    n = choice["steps"]
    return {"chosen_steps": n, "rule": choice["rule"], "indi_n1": _pick(by_n[1]),
            "indi_rule": _pick(by_n[n]) if n else None,
            "sweep": [{"steps": r["steps"], **_pick(r), "seconds": r["seconds"]} for r in sweep],
            "cnn": _pick(cnn)}


def _relative(path, run_dir):
    """``path`` relative to the run folder when inside it (results name no machine's absolute paths)."""
    try:
        return str(Path(path).resolve().relative_to(Path(run_dir).resolve()))
    except ValueError:
        return str(path)


def training_card(run_dir, model_dir, summary, pairs_dir, machine):
    """What a point's network is, in one dict: recipe, pairs hash, seed, steps, wall time, machine, loss curve.

    Paths are relative to the run folder; the recipe and the curves are the
    folder's own card (:func:`indi4d.reference.training_card`), the steps and
    the stop those of this call's ``summary``.
    """
    from ..reference import training_card as folder_card

    card = folder_card(model_dir)
    epoch_seconds = card["epoch_seconds"]
    return {"model_dir": _relative(model_dir, run_dir), "pairs_dir": _relative(pairs_dir, run_dir),
            **{k: card[k] for k in ("pairs_sha256", "seed", "network", "training")},
            "steps": summary.get("global_step"), "stopped_by": summary.get("stopped_by"),
            # the epochs' own times, summed: a run resumed over several calls counts every call's share
            "seconds": round(float(sum(epoch_seconds or [])), 1), "epoch_seconds": epoch_seconds,
            "n_params": summary.get("n_params"), "machine": machine, "loss": card["loss"], "val_loss": card["val_loss"]}


def run_point(run_dir, point, test, machine, preset="default", seed=0, progress=True, train_preset="default"):
    """Train and score one point, or read its ``scores.json`` when it is already done; return its record.

    ``preset`` is the evaluation preset, ``train_preset`` the training one (:func:`train_point`).
    """
    from ..files import read_json, write_json

    path = limits_dir(run_dir, "points", point["id"], "scores.json")
    if path.is_file():
        record = read_json(path, "a point of the limits study")
        if record.get("recipe") == point["recipe"] and record.get("seed") == seed:
            return record
    t0 = time.perf_counter()
    trained = train_point(run_dir, point, seed, progress, train_preset)
    for kind in ("indi", "cnn"):
        if trained[kind].get("stopped_by") not in ("steps", None) or trained[kind].get("complete") is False:
            raise RuntimeError(f"limits: point {point['id']}: the {kind} run stopped early "
                               f"({trained[kind].get('stopped_by')}); run the study again to resume it")
    scores = score_point(run_dir, point, test, preset, seed)
    folder = limits_dir(run_dir, "points", point["id"])
    record = {"id": point["id"], "axes": point["axes"], "recipe": point["recipe"], "seed": seed, **scores,
              "cards": {kind: training_card(run_dir, folder / kind, trained[kind], trained["pairs_dir"], machine)
                        for kind in ("indi", "cnn")},
              "seconds_this_call": round(time.perf_counter() - t0, 1)}
    write_json(path, record)
    return record


def flops_per_pixel(network):
    """FLOPs per output pixel of one forward pass of an InDI network built from ``network`` (build arguments)."""
    from ..core import model

    net = model.build_unet(**{**network, "dilations": [int(d) for d in network["dilations"]]}, seed=0)
    return float(model.conv_flops_per_pixel(net))


def training_cost(record, flops=None):
    """A point's training compute: optimiser steps x the network's FLOPs per pixel (deterministic, unlike seconds).

    ``flops`` caches :func:`flops_per_pixel` per network (a dict keyed by the network's JSON).
    """
    import json

    card = record["cards"]["indi"]
    key = json.dumps(card["network"], sort_keys=True)
    flops = {} if flops is None else flops
    if key not in flops:
        flops[key] = flops_per_pixel(card["network"])
    return float(card["steps"]) * flops[key]


def pick_reference(records, cost=training_cost):
    """The reference recipe by the stated rule (:data:`indi4d.limits.points.RULE`).

    Parameters
    ----------
    records : list of dict
        :func:`run_point` records (``indi_rule`` metrics and the InDI card's ``steps`` and ``network``);
        points with a target in :data:`~indi4d.limits.points.NOT_CANDIDATES` are never picked.
    cost : callable
        ``cost(record, cache) -> float``: the compute a point took (default
        :func:`training_cost`); equal costs go to the higher PSNR.

    Returns
    -------
    dict or None
        ``id``, ``recipe``, ``rule``, ``met`` (whether a point met both tolerances),
        ``candidates``; None when no user-trainable point is scored yet.
    """
    ok = [r for r in records if r["recipe"]["target"] not in NOT_CANDIDATES and r.get("indi_rule")
          and r["indi_rule"].get("psnr") is not None and r["indi_rule"].get("fwhm_nm")]
    if not ok:
        return None
    best_psnr = max(r["indi_rule"]["psnr"] for r in ok)
    best_fwhm = min(r["indi_rule"]["fwhm_nm"] for r in ok)
    near = [r for r in ok if r["indi_rule"]["psnr"] >= best_psnr - RULE_PSNR_DB]
    both = [r for r in near if r["indi_rule"]["fwhm_nm"] <= (1 + RULE_FWHM_REL) * best_fwhm]
    flops = {}
    chosen = min(both or near, key=lambda r: (cost(r, flops), -r["indi_rule"]["psnr"]))
    return {"id": chosen["id"], "recipe": chosen["recipe"], "rule": RULE, "met": bool(both),
            "best_psnr": best_psnr, "best_fwhm_nm": best_fwhm, "candidates": [r["id"] for r in (both or near)]}
