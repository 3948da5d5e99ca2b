"""The InDI ablation of chapter 04: each training change alone and all together, scored the same way.

Every variant is an InDI run on the same pairs, seed and (shortened) schedule,
differing only in the training parameters it names
(:data:`indi4d.training.recipes.PRESETS` keys). Each is swept over the step
count N on the held-out test slices and scored against the truth
(:func:`indi4d.evaluation.step_sweep`); N is chosen by the rule stated in
advance (:func:`indi4d.evaluation.select_steps`), so the table shows what each
idea buys at the N a user would get, and at N = 1 (the one-shot regressor the
sampler must beat).

Written into ``RUN_DIR/ablation/``: one model folder per variant and
``ablation.json`` (every row), the latter last.
"""

import time

from .settings import ABLATION_STEP_COUNTS

#: The original InDI training every variant starts from (the presets' values
#: before this ablation chose "auto" targets and p_one 1/3), so that each row
#: names exactly one change from the same baseline whatever the presets say.
BASELINE = {"target": "hq", "p_one": 0.1, "parametrisation": "x", "head": "tanh", "loss_weighting": "none",
            "eps": 0.0, "noise_schedule": "linear", "ema": 0.0}
#: name -> (what changes, in words; training overrides on top of :data:`BASELINE`). ``crop="whole"`` is the
#: whole slice (rounded down to the network's size factor). ``indi_deconv`` is a
#: separate method (targets sharper than any scan), never a default of InDI.
VARIANTS = {
    "baseline": ("x-prediction, tanh head, p_one 0.1, eps 0, 96-px crops, HQ targets", {}),
    "residual": ("residual (velocity) form, linear head, capped min-SNR weight",
                 {"parametrisation": "residual", "head": "linear", "loss_weighting": "min_snr"}),
    "p_one_third": ("t = 1 drawn a third of the time (p_one 1/3)", {"p_one": 1.0 / 3.0}),
    "eps": ("Brownian noise in x_t (std eps sqrt(t), eps 0.01), the same in training and sampling",
            {"eps": 0.01, "noise_schedule": "brownian"}),
    "ema": ("exponential moving average of the weights over a tenth of the run", {"ema": "tenth"}),
    "whole_slices": ("whole slices as crops", {"crop": "whole", "min_inside": 0.0}),
    "halves": ("Noise2Noise targets: two independent HQ halves (odd/even angles)", {"target": "halves"}),
}
#: the variants that are several changes together
COMBINED = {
    "chosen": ("the two winners together, the presets' defaults (HQ halves where the pairs have them, p_one 1/3)",
               ("p_one_third", "halves"), {}),
    "all": ("all of the above together", ("residual", "p_one_third", "eps", "ema", "whole_slices", "halves"), {}),
    "indi_deconv": ("all together, targets = HQ halves deconvolved by the measured HQ PSF (separate method)",
                    ("residual", "p_one_third", "eps", "ema", "whole_slices"), {"target": "halves_deconv"}),
}

#: The ablation's own schedule per preset (shorter than the main run's, so that
#: every variant fits in the book's budget) and the variants run by default.
PRESETS = {
    "tiny": {"epochs": 1, "steps_per_epoch": 4, "variants": ("baseline", "chosen", "all"),
             "steps": ABLATION_STEP_COUNTS[:2]},
    # the two winners alone and together, the residual form, and everything (eps, EMA and whole slices alone: by name)
    "default": {"epochs": 2, "steps_per_epoch": 100,
                "variants": ("baseline", "p_one_third", "halves", "chosen", "residual", "all", "indi_deconv"),
                "steps": ABLATION_STEP_COUNTS},
    "paper": {"epochs": 50, "steps_per_epoch": 200, "variants": (*VARIANTS, *COMBINED), "steps": ABLATION_STEP_COUNTS},
    # the workshop installs the default book's network instead of training: no ablation (seven trainings)
    "workshop": {"epochs": 2, "steps_per_epoch": 100, "variants": (), "steps": ABLATION_STEP_COUNTS},
}

#: the numbers kept per N (from :func:`indi4d.evaluation.step_sweep` rows)
ROW_KEYS = ("psnr", "ssim", "fwhm_nm", "edge_overshoot", "self_aligned_fwhm_nm", "edge_placement_rms_nm", "cnr",
            "false_particles_per_mm2")


def variant_overrides(name, whole_crop, total_steps=3000):
    """The training overrides of one variant (a :data:`VARIANTS` or :data:`COMBINED` key).

    Parameters
    ----------
    name : str
    whole_crop : int
        The crop that ``"whole"`` stands for (pixels).
    total_steps : int
        Length of the variant's run: ``ema="tenth"`` becomes the decay whose
        horizon ``1 / (1 - ema)`` is a tenth of it (3000 steps: 0.9967; under
        10 steps: 0, no average).

    Returns
    -------
    (str, dict)
        The description and the overrides (:data:`BASELINE` updated with the variant's).
    """
    over = dict(BASELINE)
    if name in VARIANTS:
        text, own = VARIANTS[name]
        over.update(own)
    elif name in COMBINED:
        text, parts, extra = COMBINED[name]
        for part in parts:
            over.update(VARIANTS[part][1])
        over.update(extra)
    else:
        raise ValueError(f"unknown ablation variant {name!r}; expected one of {list(VARIANTS) + list(COMBINED)}")
    if over.get("crop") == "whole":
        over["crop"] = int(whole_crop)
    if over.get("ema") == "tenth":
        horizon = max(1.0, total_steps / 10.0)  # steps the average spans, 1 / (1 - ema)
        over["ema"] = round(1.0 - 1.0 / horizon, 6)  # a run under 10 steps gets none (0: off)
    return text, over


def whole_slice_crop(pairs_dir, factor):
    """The largest crop that fits a pair slice and is a multiple of the network's ``factor``."""
    from ..core import pairs

    shape = pairs.load_pairs_info(pairs_dir)["mask"].shape
    return int(min(shape) // factor * factor)


def _pick(row):
    return {k: row.get(k) for k in ("steps", *ROW_KEYS)}


def run_ablation(run_dir, names=None, *, preset="default", seed=0, epochs=None, steps_per_epoch=None,
                 steps=None, eval_preset=None, progress=True):
    """Train and score each ablation variant on a run folder's pairs.

    Parameters
    ----------
    run_dir : str or Path
        With ``data/`` and ``pairs/`` (chapters 01-02); the pairs need the HQ
        halves for the ``halves`` and ``indi_deconv`` variants.
    names : sequence of str, optional
        Variants to run, in order (default: the preset's, :data:`PRESETS`).
    preset : str
        InDI training preset (:data:`indi4d.training.recipes.PRESETS`).
    seed : int
    epochs, steps_per_epoch : int, optional
        The schedule of every variant (default :data:`PRESETS`: shorter than
        the main run's; the whole one-cycle schedule is run, so the learning
        rate ends annealed, unlike a run cut short).
    steps : sequence of int, optional
        The N swept for each variant (default :data:`PRESETS`).
    eval_preset : str, optional
        Evaluation preset (tiling, metrics, the step rule); default ``preset``.
    progress : bool

    Returns
    -------
    dict
        ``rows`` (one per variant: ``name``, ``change``, ``overrides``,
        ``train_steps``, ``train_seconds``, ``chosen_steps``, ``rule``,
        ``at_chosen`` and ``at_one`` metric dicts, ``sweep``), ``schedule``,
        ``reference``, ``complete``; written to ``RUN_DIR/ablation/ablation.json``
        after every variant (``complete`` is true only once all have run).
    """
    from .. import runs
    from ..files import write_json
    from ..inference import load_enhancer
    from ..presets import resolve
    from ..training import train_indi
    from ..training.indi_run import PRESETS as TRAIN_PRESETS
    from ..training.indi_run import network_params
    from .settings import PRESETS as EVAL_PRESETS
    from .sweep import select_steps, step_sweep
    from .testset import load_test_set

    eval_preset = eval_preset or preset
    ev = resolve(EVAL_PRESETS, eval_preset)
    own = resolve(PRESETS, preset)
    names = list(names or own["variants"])
    steps = tuple(steps or own["steps"])
    epochs = own["epochs"] if epochs is None else epochs
    steps_per_epoch = own["steps_per_epoch"] if steps_per_epoch is None else steps_per_epoch
    for name in names:  # refuse an unknown name before any training
        variant_overrides(name, 0)
    if steps_per_epoch is None:
        raise ValueError("run_ablation: give steps_per_epoch (the ablation's runs must have a known length)")
    pairs_dir = runs.require_artifact(run_dir, "pairs", "pairs").parent
    _, factor = network_params(resolve(TRAIN_PRESETS, preset))
    whole = whole_slice_crop(pairs_dir, factor)
    schedule = {k: v for k, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)) if v is not None}
    test = load_test_set(run_dir, ev["max_test_slices"])
    out_dir = runs.stage_dir(run_dir, "ablation", create=True)
    rows = []
    results = {"preset": preset, "seed": int(seed), "schedule": schedule or "the preset's",
               "test_slices": test["z"].tolist(), "variants": names, "complete": False, "rows": rows}
    for name in names:
        change, over = variant_overrides(name, whole, total_steps=epochs * steps_per_epoch)
        t0 = time.perf_counter()
        summary = train_indi(pairs_dir, out_dir / name, preset=preset, seed=seed, overrides={**over, **schedule},
                             restart=True, progress=progress)
        seconds = time.perf_counter() - t0
        enhancer = load_enhancer(out_dir / name, preset=ev["tiling"])
        sweep, _ = step_sweep(enhancer, test, steps, eval_preset, seed, progress=False)
        by_n = {r["steps"]: r for r in sweep}
        try:
            choice = select_steps(sweep, ev["fwhm_tol"], ev["psnr_tol_db"])
        except ValueError as err:  # e.g. too few edges on tiny slices: say so instead of guessing an N
            choice = {"steps": None, "rule": f"nothing chosen: {err}"}
        rows.append({"name": name, "change": change, "overrides": over, "train_steps": summary.get("global_step"),
                     "stopped_by": summary.get("stopped_by"), "train_seconds": round(seconds, 1),
                     "chosen_steps": choice["steps"], "rule": choice["rule"],
                     "at_chosen": _pick(by_n[choice["steps"]]) if choice["steps"] else {},
                     "at_one": _pick(by_n[min(by_n)]), "sweep": [_pick(r) for r in sweep]})
        results["reference"] = sweep[0]["reference"]
        # after every variant, so a long ablation stopped half-way keeps what it measured ("complete": false)
        write_json(runs.artifact(run_dir, "ablation", "results"), results)
    results["complete"] = True
    write_json(runs.artifact(run_dir, "ablation", "results"), results)
    return results


def _fmt(value, digits):
    return "–" if value is None else f"{value:.{digits}f}"


def ablation_table(results):
    """A Markdown table of the ablation: one row per variant, metrics at the chosen N and at N = 1.

    Columns: the change, the chosen N, PSNR and SSIM against the truth, the
    averaged-profile and self-aligned FWHM (nm), the overshoot (fraction of
    the edge step), then the FWHM and PSNR of the same network at N = 1.
    """
    head = ("| variant | change | N | PSNR (dB) | SSIM | FWHM (nm) | self-aligned FWHM (nm) | overshoot "
            "| FWHM at N=1 | PSNR at N=1 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results["rows"]:
        c, one = r["at_chosen"], r["at_one"]
        lines.append(f"| {r['name']} | {r['change']} | {r['chosen_steps'] or '–'} | {_fmt(c.get('psnr'), 2)} "
                     f"| {_fmt(c.get('ssim'), 3)} | {_fmt(c.get('fwhm_nm'), 0)} "
                     f"| {_fmt(c.get('self_aligned_fwhm_nm'), 0)} | {_fmt(c.get('edge_overshoot'), 3)} "
                     f"| {_fmt(one.get('fwhm_nm'), 0)} | {_fmt(one.get('psnr'), 2)} |")
    return "\n".join(lines)


def plot_ablation(results):
    """PSNR against edge FWHM over the swept N, one line per variant, the chosen N ringed.

    Up and to the left is better: sharper edges at a higher fidelity. A line
    that runs left as N grows is a network whose steps earn their keep.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, r in enumerate(results["rows"]):
        pts = [(s["fwhm_nm"], s["psnr"], s["steps"]) for s in r["sweep"]
               if s.get("fwhm_nm") is not None and s.get("psnr") is not None]
        if not pts:
            continue
        colour = f"C{i % 10}"
        ax.plot([p[0] for p in pts], [p[1] for p in pts], "-o", ms=3, color=colour, label=r["name"])
        ax.annotate(f"N={pts[0][2]}", pts[0][:2], fontsize=7, color=colour, xytext=(3, 3), textcoords="offset points")
        chosen = [p for p in pts if p[2] == r["chosen_steps"]]
        if chosen:
            ax.plot(chosen[0][0], chosen[0][1], "o", ms=10, mfc="none", color=colour)
    ax.set_xlabel("edge FWHM (nm), averaged profiles")
    ax.set_ylabel("PSNR vs truth (dB, 1/µm, no grey fit)")
    ax.set_title("each variant over N (ring: the N the rule chooses)")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig
