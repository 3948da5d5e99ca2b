"""Chapter 05: InDI against bicubic, HQ, the CNN and GAN baselines, and the truth.

Everything is scored on the held-out *test* slices of the pairs folder
(chapter 02), against the HQ scan (as the paper does) and against the
simulated ground truth (``truth_mu_hq.tif`` / ``truth_labels_hq.tif``, on the
HQ grid with the HQ misalignment, so slice ``z`` of the pairs is slice ``z``
of the truth). The metrics are those of :mod:`indi4d.metrics`.

The steps, each a function of arrays or of a run folder:

1. :func:`load_test_set` -- test slices, their truth, mask and pixel size;
2. :func:`step_sweep` + :func:`select_steps` -- InDI at N in {1, ..., 50}
   steps, scored against the truth, and a stated rule that picks N;
3. :func:`predict_methods` + :func:`score_methods` -- every method's output and
   metrics (with spreads over slices and edge groups);
4. :func:`uncertainty` -- K stochastic InDI samples: per-pixel spread against
   the true error, with their Spearman rank correlation
   (:func:`rank_correlation`);
5. :func:`check_goals` and :func:`findings` -- the project's targets and a
   plain-language account of where InDI wins and where it does not, both
   computed from the numbers.

:func:`evaluate_run` runs them all (after training or reusing the baselines,
:func:`indi4d.baselines.train_baselines`) and writes ``RUN_DIR/eval/metrics.json``.
"""

import json
import math
import time
from pathlib import Path

import numpy as np

from ._atomic import atomic_path
from .presets import resolve

#: ``steps_sweep``: InDI step counts N tried; ``fwhm_tol``/``psnr_tol_db``: the
#: step-selection rule (:func:`select_steps`); ``uncertainty_samples``/``uncertainty_eps``:
#: K stochastic samples with noise scale eps; ``max_test_slices``: test slices used
#: (evenly spaced; None = all); ``metrics``/``tiling``: presets of
#: :mod:`indi4d.metrics` and :mod:`indi4d.inference`; ``roi_fraction``: side of the
#: zoomed region as a fraction of the slice; ``block_px``: block size of the
#: block-averaged uncertainty correlation.
PRESETS = {
    "tiny": {"steps_sweep": (1, 2, 4, 7, 10, 15, 20, 50), "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
             "uncertainty_samples": 4, "uncertainty_eps": 0.1, "max_test_slices": 4, "metrics": "tiny",
             "tiling": "tiny", "roi_fraction": 0.4, "block_px": 2},
    "default": {"steps_sweep": (1, 2, 4, 7, 10, 15, 20, 50), "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
                "uncertainty_samples": 8, "uncertainty_eps": 0.1, "max_test_slices": 16, "metrics": "default",
                "tiling": "default", "roi_fraction": 0.3, "block_px": 4},
    "paper": {"steps_sweep": (1, 2, 4, 7, 10, 15, 20, 50), "fwhm_tol": 0.05, "psnr_tol_db": 0.5,
              "uncertainty_samples": 16, "uncertainty_eps": 0.1, "max_test_slices": 32, "metrics": "paper",
              "tiling": "paper", "roi_fraction": 0.2, "block_px": 8},
}

#: The methods, in table order, and their display names.
METHODS = {"bicubic": "LQ (bicubic)", "hq": "HQ", "indi": "InDI", "cnn": "CNN", "gan": "GAN"}

#: Reference numbers of the paper (measured on real scans, Fig. 2C and the text):
#: resolution as FWHM mean ± std in nm, CNR. ``None`` = not reported.
PAPER_RESULTS = {
    "bicubic": {"fwhm_nm": 803.0, "fwhm_nm_std": 135.0, "cnr": 0.9},
    "hq": {"fwhm_nm": 357.0, "fwhm_nm_std": 53.0, "cnr": 2.4},
    "indi": {"fwhm_nm": 286.0, "fwhm_nm_std": 25.0, "cnr": 3.9},
    "cnn": {"fwhm_nm": 550.0, "fwhm_nm_std": 54.0, "cnr": None},
    "gan": {"fwhm_nm": 392.0, "fwhm_nm_std": 68.0, "cnr": None},
}

#: The project's quality goals for InDI (``benchmarks/quality.py``).
GOALS = (
    {"name": "InDI FWHM <= 0.9 x HQ FWHM", "metric": "fwhm_nm", "method": "indi", "against": "hq",
     "relation": "<=", "factor": 0.9},
    {"name": "InDI FWHM <= 0.45 x LQ FWHM", "metric": "fwhm_nm", "method": "indi", "against": "bicubic",
     "relation": "<=", "factor": 0.45},
    {"name": "InDI CNR >= 1.2 x HQ CNR", "metric": "cnr", "method": "indi", "against": "hq",
     "relation": ">=", "factor": 1.2},
    {"name": "InDI SIFT congruent points (vs HQ) >= 2 x LQ's", "metric": "sift_congruent_points", "reference": "hq",
     "method": "indi", "against": "bicubic", "relation": ">=", "factor": 2.0},
    {"name": "InDI PSNR vs truth >= bicubic + 3 dB", "metric": "psnr", "reference": "truth", "method": "indi",
     "against": "bicubic", "relation": ">=", "offset": 3.0},
)


# --------------------------------------------------------------------------- data


def load_test_set(run_dir, max_slices=None):
    """The held-out test slices of a run folder with their truth.

    Parameters
    ----------
    run_dir : str or Path
        Needs ``pairs/`` (chapter 02) and ``data/`` (chapter 01).
    max_slices : int, optional
        Keep at most this many evenly spaced test slices.

    Returns
    -------
    dict
        ``lq``, ``hq``: float32 (n, H, W) in [-1, 1] (registered, x2-upscaled
        LQ and HQ); ``z``: int (n,) slice indices in the HQ volume; ``mask``:
        bool (H, W) reconstruction disc; ``truth_mu``: float32 (n, H, W) true
        attenuation (1/um) or None; ``truth_labels``: uint8 (n, H, W) phase
        labels or None; ``pixel_size_nm``: float (the HQ voxel size).

    Raises
    ------
    indi4d.runs.MissingArtifactError
        When the pairs folder is missing.
    ValueError
        When there are no test slices or the truth does not fit the pairs.
    """
    from . import preprocess, runs
    from .io import read_volume
    from .metrics import select_slices

    pairs_path = runs.require_artifact(run_dir, "pairs", "pairs.npz")
    info = preprocess.load_pairs_info(pairs_path.parent)
    lq, hq = preprocess.load_pairs(pairs_path.parent, "test")
    z = np.asarray(info["z"])[info["split"] == "test"]
    if lq.shape[0] == 0:
        raise ValueError(f"{pairs_path}: no test slices (split == 'test')")
    if max_slices is not None and lq.shape[0] > max_slices:
        keep = select_slices(lq.shape[0], max_slices)
        lq, hq, z = lq[keep], hq[keep], z[keep]
    data_dir = runs.stage_dir(run_dir, "data")
    pixel = 50.0
    meta_path = data_dir / "meta.json"
    if meta_path.exists():
        pixel = float(json.loads(meta_path.read_text()).get("voxel_size_nm", {}).get("hq", pixel))
    out = {"lq": lq, "hq": hq, "z": z.astype(int), "mask": info["mask"], "truth_mu": None, "truth_labels": None,
           "pixel_size_nm": pixel}
    for key, name in (("truth_mu", "truth_mu_hq.tif"), ("truth_labels", "truth_labels_hq.tif")):
        path = data_dir / name
        if not path.exists():
            continue
        vol, _ = read_volume(path)
        if vol.ndim != 3 or tuple(vol.shape[1:]) != tuple(lq.shape[1:]) or z.max() >= vol.shape[0]:
            raise ValueError(f"{path}: shape {vol.shape} does not hold the test slices z={z.tolist()} "
                             f"of size {lq.shape[1:]}")
        out[key] = np.asarray(vol[z])
    if out["truth_labels"] is not None and not np.issubdtype(out["truth_labels"].dtype, np.integer):
        raise ValueError(f"{data_dir / 'truth_labels_hq.tif'}: labels must be integers")
    return out


# --------------------------------------------------------------------------- predictions


def indi_restore(enhancer, slices, steps, eps=None, seed=0, stochastic=False):
    """InDI restoration of normalised slices (a thin wrapper of :func:`indi4d.inference.enhance_slices`).

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    slices : ndarray (n, H, W) float32 in [-1, 1]
    steps : int
    eps : float, optional
        Sampler noise scale (default the training one).
    seed : int
    stochastic : bool

    Returns
    -------
    ndarray (n, H, W) float32
    """
    from .inference import enhance_slices

    return enhance_slices(enhancer, slices, steps, eps=eps, seed=seed, stochastic=stochastic, progress=False)


def predict_methods(run_dir, test, steps, preset="default", indi_prediction=None):
    """Every method's output on the test slices, in the normalised [-1, 1] units.

    Parameters
    ----------
    run_dir : str or Path
        Holds ``model/`` (InDI) and ``baselines/cnn``, ``baselines/gan``.
    test : dict
        :func:`load_test_set`.
    steps : int
        InDI steps N.
    preset : str
        :data:`PRESETS` entry (tiling).
    indi_prediction : ndarray, optional
        InDI's output at ``steps`` when already computed (e.g. by the sweep).

    Returns
    -------
    dict
        ``bicubic``, ``hq``, ``indi``, ``cnn``, ``gan`` -> float32 (n, H, W).
    """
    from . import baselines, runs
    from .inference import load_enhancer

    p = resolve(PRESETS, preset)
    preds = {"bicubic": test["lq"], "hq": test["hq"]}
    if indi_prediction is None:
        enhancer = load_enhancer(runs.stage_dir(run_dir, "model"), preset=p["tiling"])
        indi_prediction = indi_restore(enhancer, test["lq"], steps)
    preds["indi"] = np.asarray(indi_prediction, np.float32)
    base = runs.stage_dir(run_dir, "baselines")
    for kind in ("cnn", "gan"):
        net = baselines.load_baseline(base / kind)
        config = json.loads((base / kind / "config.json").read_text())
        preds[kind] = baselines.predict_direct(net, test["lq"], factor=2 ** int(config["network"]["depth"]))
    return preds


# --------------------------------------------------------------------------- metrics


def score(pred, test, reference, preset="default", seed=0):
    """:func:`indi4d.metrics.evaluate_pair` of one output against HQ or the truth.

    Parameters
    ----------
    pred : ndarray (n, H, W)
    test : dict
        :func:`load_test_set`.
    reference : {"hq", "truth"}
        The HQ slices, or the true attenuation (grey levels mapped onto it by
        the least-squares affine fit of :func:`indi4d.metrics.psnr`).
    preset : str
        :data:`PRESETS` entry (metrics preset).
    seed : int

    Returns
    -------
    dict
        The metrics (see :func:`indi4d.metrics.evaluate_pair`); the true labels,
        when present, define particles and background for FWHM, CNR and the
        hallucination counts in both cases.
    """
    from .metrics import evaluate_pair

    p = resolve(PRESETS, preset)
    if reference == "truth":
        if test["truth_mu"] is None:
            raise ValueError("score: no truth in this run folder (truth_mu_hq.tif missing)")
        ref = test["truth_mu"]
    elif reference == "hq":
        ref = test["hq"]
    else:
        raise ValueError(f"score: reference must be 'hq' or 'truth', got {reference!r}")
    return evaluate_pair(np.asarray(pred), ref, labels=test["truth_labels"], pixel_size_nm=test["pixel_size_nm"],
                         mask=test["mask"], preset=p["metrics"], fit="affine", seed=seed)


def score_methods(preds, test, preset="default", seed=0, progress=True):
    """Metrics of every method against HQ and against the truth.

    Parameters
    ----------
    preds : dict
        :func:`predict_methods`.
    test : dict
        :func:`load_test_set`.
    preset : str
    seed : int
    progress : bool

    Returns
    -------
    dict
        ``method -> {"vs_hq": metrics or None, "vs_truth": metrics or None}``
        (HQ is not scored against itself; nothing is scored against a missing truth).
    """
    from tqdm.auto import tqdm

    out = {}
    for method in tqdm(list(preds), desc="scoring", disable=not progress):
        out[method] = {
            "vs_hq": None if method == "hq" else score(preds[method], test, "hq", preset, seed),
            "vs_truth": None if test["truth_mu"] is None else score(preds[method], test, "truth", preset, seed),
        }
    return out


def no_reference(scores, method):
    """The metrics of ``method`` that do not depend on the reference (FWHM, CNR, hallucination).

    Taken from the evaluation against the truth when there is one, else against HQ.
    """
    s = scores[method]
    return s["vs_truth"] if s.get("vs_truth") is not None else s.get("vs_hq")


def value(scores, method, metric, reference=None):
    """One number from :func:`score_methods`' result (None when undefined).

    ``reference`` "hq" or "truth" for PSNR, SSIM and SIFT; ignored for the
    reference-free metrics (FWHM, overshoot, CNR, hallucination).
    """
    if method not in scores:
        return None
    if reference is None:
        m = no_reference(scores, method)
    else:
        m = scores[method].get(f"vs_{reference}")
    if m is None:
        return None
    v = m.get(metric)
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return None
    if metric == "fwhm_nm" and v <= 0:  # a zero width means too few edges were measured, not a perfect edge
        return None
    return float(v)


# --------------------------------------------------------------------------- choosing N


def step_sweep(enhancer, test, steps=None, preset="default", seed=0, progress=True):
    """InDI at several step counts N, scored against the truth (or HQ without truth).

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    test : dict
        :func:`load_test_set`.
    steps : sequence of int, optional
        Default the preset's ``steps_sweep``.
    preset : str
    seed : int
    progress : bool

    Returns
    -------
    rows : list of dict
        One per N, in increasing N: ``steps``, ``reference`` ("truth" or "hq"),
        ``psnr``, ``psnr_std``, ``ssim``, ``ssim_std``, ``sift_congruent_points``,
        ``fwhm_nm``, ``fwhm_nm_std``, ``edge_overshoot``, ``cnr``,
        ``false_particles_per_mm2``, ``false_edge_fraction``, ``flat_region_error``,
        ``seconds`` (the restoration's wall time).
    predictions : dict
        N -> float32 (n, H, W) InDI output.
    """
    from tqdm.auto import tqdm

    p = resolve(PRESETS, preset)
    steps = sorted({int(n) for n in (steps or p["steps_sweep"])})
    if not steps or steps[0] < 1:
        raise ValueError(f"step_sweep: step counts must be integers >= 1, got {steps}")
    reference = "truth" if test["truth_mu"] is not None else "hq"
    keys = ("psnr", "psnr_std", "ssim", "ssim_std", "sift_congruent_points", "fwhm_nm", "fwhm_nm_std",
            "edge_overshoot", "cnr", "false_particles_per_mm2", "false_edge_fraction", "flat_region_error")
    rows, preds = [], {}
    for n in tqdm(steps, desc="step sweep", disable=not progress):
        t0 = time.perf_counter()
        preds[n] = indi_restore(enhancer, test["lq"], n)
        seconds = time.perf_counter() - t0
        m = score(preds[n], test, reference, preset, seed)
        rows.append({"steps": n, "reference": reference, **{k: m.get(k) for k in keys}, "seconds": round(seconds, 3)})
    return rows, preds


def select_steps(rows, fwhm_tol=0.05, psnr_tol_db=0.5):
    """Pick the InDI step count N from a sweep with a stated rule.

    The rule: among the N whose PSNR against the truth is within
    ``psnr_tol_db`` of the sweep's best PSNR (the *admissible* N: fidelity is
    not given away), find the sharpest edge ``f* = min FWHM``; choose the
    **smallest** admissible N whose FWHM is within ``fwhm_tol`` of it,
    ``FWHM(N) <= (1 + fwhm_tol) f*``. Fewer steps are cheaper and, past the
    point where edges stop sharpening, only add noise back. When the sharpest
    N is admissible this is "the smallest N within 5 % of the sweep's best
    FWHM while PSNR stays within 0.5 dB of its maximum". Rows with an undefined
    PSNR or FWHM (None, NaN, or a FWHM <= 0) are skipped.

    Parameters
    ----------
    rows : list of dict
        Each with ``steps``, ``psnr`` (dB), ``fwhm_nm`` (:func:`step_sweep`).
    fwhm_tol : float
        Relative FWHM tolerance (0.05 = 5 %).
    psnr_tol_db : float
        PSNR tolerance, dB.

    Returns
    -------
    dict
        ``steps`` (the chosen N), ``admissible`` (list of N), ``max_psnr``,
        ``best_fwhm_nm`` (f*), ``fwhm_limit_nm`` ((1 + tol) f*), ``rule`` (the
        rule in words, with the tolerances).
    """
    # a FWHM of 0 nm is no measurement (too few edges), not a perfect edge
    ok = [r for r in rows if _finite(r.get("psnr")) and _finite(r.get("fwhm_nm")) and r["fwhm_nm"] > 0]
    if not ok:
        raise ValueError("select_steps: no sweep row has both a PSNR and a FWHM")
    max_psnr = max(r["psnr"] for r in ok)
    admissible = sorted((r for r in ok if r["psnr"] >= max_psnr - psnr_tol_db), key=lambda r: r["steps"])
    best = min(r["fwhm_nm"] for r in admissible)
    limit = (1.0 + fwhm_tol) * best
    chosen = next(r for r in admissible if r["fwhm_nm"] <= limit)  # admissible is sorted by N
    rule = (f"smallest N with FWHM <= {1 + fwhm_tol:g} x the sharpest FWHM among the N whose PSNR vs truth "
            f"is within {psnr_tol_db:g} dB of the sweep's maximum")
    return {"steps": int(chosen["steps"]), "admissible": [int(r["steps"]) for r in admissible],
            "max_psnr": float(max_psnr), "best_fwhm_nm": float(best), "fwhm_limit_nm": float(limit), "rule": rule}


def _finite(v):
    return v is not None and math.isfinite(float(v))


# --------------------------------------------------------------------------- uncertainty


def block_mean(image, block):
    """Mean over non-overlapping ``block x block`` tiles of the last two axes (edges cropped).

    Parameters
    ----------
    image : ndarray (..., H, W)
    block : int

    Returns
    -------
    ndarray (..., H // block, W // block) float64
    """
    a = np.asarray(image, np.float64)
    if block <= 1:
        return a
    h, w = a.shape[-2] // block * block, a.shape[-1] // block * block
    a = a[..., :h, :w]
    return a.reshape(a.shape[:-2] + (h // block, block, w // block, block)).mean(axis=(-3, -1))


def rank_correlation(a, b, mask=None):
    """Spearman rank correlation of two maps over a mask.

    ``rho`` is Pearson's correlation of the ranks (ties get their mean rank),
    ``scipy.stats.spearmanr``: 1 when ``b`` is any increasing function of
    ``a``, about 0 when they are independent.

    Parameters
    ----------
    a, b : ndarray, same shape, real
    mask : ndarray of bool, optional
        Same shape, or that of the last two axes.

    Returns
    -------
    float
        rho in [-1, 1]; NaN when either map is constant on the mask.
    """
    from scipy.stats import spearmanr

    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rank_correlation: shapes differ: {a.shape} vs {b.shape}")
    m = np.ones(a.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), a.shape)
    x, y = a[m], b[m]
    if x.size < 3:
        raise ValueError("rank_correlation: fewer than 3 pixels in the mask")
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def uncertainty(enhancer, test, steps, samples=8, eps=0.1, seed=0, block_px=4, progress=True):
    """Per-pixel spread of K stochastic InDI samples against the true error.

    Sample ``k`` starts from ``y + eps n`` and re-draws its noise at every step
    (the stochastic sampler of :func:`indi4d.indi.indi_sample`) with the seeds
    ``(seed + k, slice)``. The spread ``s = std_k(x_k)`` is compared with the
    error of the sample mean against the truth: ``e = |a mean_k(x_k) + b - mu|``
    with ``(a, b)`` the least-squares grey-level fit of the mean onto the true
    attenuation ``mu`` over the mask (:func:`indi4d.metrics.affine_fit`); the
    spread is reported in the same units, ``|a| s``.

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    test : dict
        :func:`load_test_set` (needs the truth).
    steps : int
        InDI steps N.
    samples : int
        K >= 2.
    eps : float
        Sampler noise scale, > 0.
    seed : int
    block_px : int
        Also correlate the maps averaged over ``block_px``-pixel blocks (local
        rather than pixel agreement).
    progress : bool

    Returns
    -------
    dict
        ``mean``, ``std``, ``error``: float32 (n, H, W) (``std`` and ``error`` in
        1/um); ``spearman`` (pixels in the mask), ``spearman_block`` (blocks
        wholly inside the mask), ``samples``, ``eps``, ``steps``.
    """
    from tqdm.auto import tqdm

    from .metrics import affine_fit

    if test["truth_mu"] is None:
        raise ValueError("uncertainty: needs the truth (truth_mu_hq.tif)")
    if samples < 2 or not eps > 0:
        raise ValueError(f"uncertainty: need samples >= 2 and eps > 0, got {samples}, {eps}")
    draws = np.stack([indi_restore(enhancer, test["lq"], steps, eps=eps, seed=seed + k, stochastic=True)
                      for k in tqdm(range(samples), desc="stochastic samples", disable=not progress)])
    mean = draws.mean(axis=0)
    mask = np.broadcast_to(test["mask"], mean.shape)
    a, b = affine_fit(mean, test["truth_mu"], mask)
    error = np.abs(a * mean + b - test["truth_mu"])  # |fitted mean - truth|, 1/um
    std = abs(a) * draws.std(axis=0)  # spread in the same units
    inner = block_mean(mask.astype(np.float64), block_px) == 1.0  # blocks wholly inside the mask
    return {"mean": mean.astype(np.float32), "std": std.astype(np.float32), "error": error.astype(np.float32),
            "spearman": rank_correlation(std, error, mask),
            "spearman_block": rank_correlation(block_mean(std, block_px), block_mean(error, block_px), inner),
            "samples": int(samples), "eps": float(eps), "steps": int(steps), "block_px": int(block_px)}


# --------------------------------------------------------------------------- goals, tables, findings


def check_goals(scores, goals=GOALS):
    """The project's quality goals, measured.

    Parameters
    ----------
    scores : dict
        :func:`score_methods`.
    goals : sequence of dict
        Each: ``name``, ``metric``, ``method``, ``against``, ``relation`` ("<="
        or ">="), and ``factor`` (target = factor x the other method's value)
        or ``offset`` (target = the other's value + offset); ``reference``
        ("hq"/"truth") for reference-based metrics.

    Returns
    -------
    list of dict
        ``name``, ``measured``, ``target``, ``passed`` (None when a value is undefined).
    """
    out = []
    for g in goals:
        ref = g.get("reference")
        measured = value(scores, g["method"], g["metric"], ref)
        other = value(scores, g["against"], g["metric"], ref)
        if measured is None or other is None:
            out.append({"name": g["name"], "measured": measured, "target": None, "passed": None})
            continue
        target = other * g["factor"] if "factor" in g else other + g["offset"]
        passed = measured <= target if g["relation"] == "<=" else measured >= target
        if "factor" in g and other == 0 and g["relation"] == ">=":
            passed = measured > 0  # "at least k times none" asks for something, not for none as well
        out.append({"name": g["name"], "measured": measured, "target": target, "passed": bool(passed)})
    return out


def _fmt(v, digits=1, spread=None):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "∞" if v == math.inf else "–"
    s = f"{v:.{digits}f}"
    if spread is not None and _finite(spread):
        s += f" ± {spread:.{digits}f}"
    return s


def metrics_table(scores, steps=None, paper=PAPER_RESULTS):
    """A Markdown table of every method's metrics with spreads, and the paper's numbers beside them.

    ± is the standard deviation over test slices (PSNR, SSIM, SIFT) or over
    groups of edges (FWHM).

    Returns
    -------
    str
    """
    head = ("| method | PSNR vs HQ (dB) | SSIM vs HQ | SIFT vs HQ | PSNR vs truth (dB) | SSIM vs truth "
            "| SIFT vs truth | FWHM (nm) | overshoot | CNR | paper FWHM (nm) | paper CNR |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for method, name in METHODS.items():
        if method not in scores:
            continue
        if method == "indi" and steps is not None:
            name = f"InDI (N = {steps})"
        hq, tr = scores[method].get("vs_hq") or {}, scores[method].get("vs_truth") or {}
        nr = no_reference(scores, method) or {}
        pp = paper.get(method, {})
        cells = [name,
                 _fmt(hq.get("psnr"), 2, hq.get("psnr_std")), _fmt(hq.get("ssim"), 3, hq.get("ssim_std")),
                 _fmt(hq.get("sift_congruent_points"), 1, hq.get("sift_congruent_points_std")),
                 _fmt(tr.get("psnr"), 2, tr.get("psnr_std")), _fmt(tr.get("ssim"), 3, tr.get("ssim_std")),
                 _fmt(tr.get("sift_congruent_points"), 1, tr.get("sift_congruent_points_std")),
                 _fmt(nr.get("fwhm_nm"), 0, nr.get("fwhm_nm_std")), _fmt(nr.get("edge_overshoot"), 2),
                 _fmt(nr.get("cnr"), 2), _fmt(pp.get("fwhm_nm"), 0, pp.get("fwhm_nm_std")), _fmt(pp.get("cnr"), 1)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def hallucination_table(scores, steps=None):
    """A Markdown table of the hallucination metrics against the truth, one row per method.

    Returns
    -------
    str
    """
    head = ("| method | false particles / mm² | missed particles / mm² | detected / true particles "
            "| false-edge fraction (%) | flat-region error |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for method, name in METHODS.items():
        if method not in scores or scores[method].get("vs_truth") is None:
            continue
        if method == "indi" and steps is not None:
            name = f"InDI (N = {steps})"
        t = scores[method]["vs_truth"]
        fe = t.get("false_edge_fraction")
        cells = [name, _fmt(t.get("false_particles_per_mm2"), 0), _fmt(t.get("missed_particles_per_mm2"), 0),
                 f"{t.get('n_detected_particles', '–')} / {t.get('n_true_particles', '–')}",
                 _fmt(None if fe is None else 100.0 * fe, 2), _fmt(t.get("flat_region_error"), 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals_table(goals):
    """A Markdown table of :func:`check_goals`' result."""
    lines = ["| goal | measured | target | met |", "|---|---|---|---|"]
    for g in goals:
        met = "–" if g["passed"] is None else ("yes" if g["passed"] else "no")
        lines.append(f"| {g['name']} | {_fmt(g['measured'], 2)} | {_fmt(g['target'], 2)} | {met} |")
    return "\n".join(lines)


def _best(scores, metric, reference=None, lower=False, methods=("bicubic", "indi", "cnn", "gan")):
    vals = {m: value(scores, m, metric, reference) for m in methods if m in scores}
    vals = {m: v for m, v in vals.items() if v is not None and math.isfinite(v)}
    if not vals:
        return None, vals
    return (min if lower else max)(vals, key=vals.get), vals


def _within_spread(scores, a, b, metric, reference=None):
    """True when methods a and b differ by less than their combined spread (sqrt(s_a² + s_b²))."""
    va, vb = value(scores, a, metric, reference), value(scores, b, metric, reference)
    sa, sb = value(scores, a, f"{metric}_std", reference), value(scores, b, f"{metric}_std", reference)
    if None in (va, vb, sa, sb):
        return False
    return abs(va - vb) < math.hypot(sa, sb)


def findings(scores, choice=None, unc=None, goals=None, sweep=None):
    """Where InDI wins and where it does not, as Markdown bullet points computed from the numbers.

    Two methods whose difference is smaller than their combined spread
    (``sqrt(s_a**2 + s_b**2)``, the ± of :func:`metrics_table`) are called
    indistinguishable rather than ranked.

    Parameters
    ----------
    scores : dict
        :func:`score_methods`.
    choice : dict, optional
        :func:`select_steps`.
    unc : dict, optional
        :func:`uncertainty`.
    goals : list, optional
        :func:`check_goals`.
    sweep : list of dict, optional
        :func:`step_sweep` rows (adds how PSNR and FWHM moved with N).

    Returns
    -------
    str
    """
    name = dict(METHODS)
    out = []
    v = lambda m, k, r=None: value(scores, m, k, r)  # noqa: E731

    def verdict(best, metric, what, reference=None):
        if best == "indi":
            return f". InDI {what} of the four (HQ aside)."
        if "indi" in scores and _within_spread(scores, best, "indi", metric, reference):
            return f". {name[best]} leads, but InDI is within the spread of it."
        return f". {name[best]}, not InDI, {what}."

    best, vals = _best(scores, "fwhm_nm", lower=True)
    if best is not None:
        hq = v("hq", "fwhm_nm")
        ranking = ", ".join(f"{name[m]} {vals[m]:.0f} nm" for m in sorted(vals, key=vals.get))
        s = f"**Sharpness.** Edge FWHM from sharpest to broadest: {ranking}"
        if hq is not None:
            s += f" (HQ: {hq:.0f} nm)"
        s += verdict(best, "fwhm_nm", "has the sharpest edges")
        if hq is not None and "indi" in vals:
            s += (f" InDI's edges are {'sharper' if vals['indi'] < hq else 'broader'} than the HQ scan's"
                  f" ({vals['indi'] / hq:.2f}x).")
        ov = {m: v(m, "edge_overshoot") for m in ("indi", "hq", "gan")}
        if all(x is not None for x in ov.values()):
            s += (f" Edge overshoot (ringing, as a fraction of the step): InDI {ov['indi']:.2f}, "
                  f"HQ {ov['hq']:.2f}, GAN {ov['gan']:.2f}")
            s += (" — part of InDI's sharpness is overshoot." if ov["indi"] > max(ov["hq"], 0.05) + 0.05 else ".")
        out.append(s)

    best, vals = _best(scores, "psnr", "truth")
    if best is not None:
        ranking = ", ".join(f"{name[m]} {vals[m]:.2f} dB" for m in sorted(vals, key=vals.get, reverse=True))
        hq = v("hq", "psnr", "truth")
        s = f"**Fidelity to the truth.** PSNR against the true attenuation: {ranking}"
        if hq is not None:
            s += f" (the HQ scan itself: {hq:.2f} dB)"
        s += verdict(best, "psnr", "is the most faithful", "truth")
        if best == "cnn" and "indi" in vals:
            s += (f" The CNN's lead ({vals['cnn'] - vals['indi']:.2f} dB) is expected: a pixel-wise error rewards "
                  "the smooth conditional mean, which is exactly what a direct regressor learns.")
        out.append(s)

    lq, ind = v("bicubic", "sift_congruent_points", "hq"), v("indi", "sift_congruent_points", "hq")
    if lq is not None and ind is not None:
        s = f"**Congruent features.** SIFT congruent points with the HQ scan per slice: LQ {lq:.1f}, InDI {ind:.1f}"
        if lq > 0:
            s += f" ({ind / lq:.1f}x LQ)"
        for m in ("cnn", "gan"):
            x = v(m, "sift_congruent_points", "hq")
            if x is not None:
                s += f", {name[m]} {x:.1f}"
        out.append(s + ".")

    best, vals = _best(scores, "cnr")
    if best is not None:
        hq = v("hq", "cnr")
        s = "**Contrast-to-noise.** CNR: " + ", ".join(f"{name[m]} {vals[m]:.2f}" for m in vals)
        if hq is not None:
            s += f", HQ {hq:.2f}"
        s += f"; highest: {name[best]}."
        if hq is not None and "indi" in vals:
            s += f" InDI's CNR is {vals['indi'] / hq:.2f}x the HQ scan's."
        out.append(s)

    learned = ("indi", "cnn", "gan")
    fp = {m: v(m, "false_particles_per_mm2") for m in ("bicubic",) + learned}
    fe = {m: v(m, "false_edge_fraction") for m in ("bicubic",) + learned}
    if all(x is not None for x in fp.values()) and all(x is not None for x in fe.values()):
        worst_edges = max(learned, key=fe.get)
        worst_parts = max(learned, key=fp.get)
        s = ("**Hallucination.** False particles per mm²: "
             + ", ".join(f"{name[m]} {fp[m]:.0f}" for m in fp)
             + "; false edges in flat regions: " + ", ".join(f"{name[m]} {100 * fe[m]:.2f} %" for m in fe)
             + f". Of the learned methods, {name[worst_parts]} invents the most particles and "
             + f"{name[worst_edges]} the most edges.")
        if fe["indi"] > fe["bicubic"]:
            s += " InDI draws more edges in flat regions than its bicubic input has."
        out.append(s)

    if choice is not None:
        s = (f"**Number of steps.** The rule ({choice['rule']}) picks N = {choice['steps']} "
             f"(admissible: {choice['admissible']}).")
        rows = [r for r in (sweep or []) if _finite(r.get("psnr")) and _finite(r.get("fwhm_nm")) and r["fwhm_nm"] > 0]
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            s += (f" From N = {a['steps']} to N = {b['steps']} the PSNR moved by {b['psnr'] - a['psnr']:+.2f} dB "
                  f"and the FWHM by {b['fwhm_nm'] - a['fwhm_nm']:+.0f} nm.")
        if choice["steps"] == 1:
            s += (" With N = 1 InDI is a one-shot regressor like the CNN: in this run, more steps did not buy "
                  "sharper edges at an acceptable cost in fidelity.")
        out.append(s)
    if unc is not None and _finite(unc.get("spearman")):
        rho, rb = unc["spearman"], unc.get("spearman_block")
        strength = "strongly" if rho > 0.6 else "moderately" if rho > 0.3 else "weakly" if rho > 0.1 else "hardly"
        s = (f"**Uncertainty.** The spread of {unc['samples']} stochastic samples ranks pixels by their true error "
             f"{strength} (Spearman ρ = {rho:.2f}")
        if _finite(rb):
            s += f"; {rb:.2f} on {unc['block_px']}-pixel blocks"
        out.append(s + ").")
    if goals:
        met = [g for g in goals if g["passed"]]
        missed = [g["name"] for g in goals if g["passed"] is False]
        s = f"**Goals.** {len(met)} of {len(goals)} project goals met."
        if missed:
            s += " Not met: " + "; ".join(missed) + "."
        out.append(s)
    return "\n".join(f"- {s}" for s in out)


# --------------------------------------------------------------------------- regions of interest and figures


def pick_roi(labels, mask, size):
    """The ``size x size`` window inside the mask with the most phase boundaries.

    Parameters
    ----------
    labels : ndarray (H, W) int
        True phase labels of one slice (or any segmentation).
    mask : ndarray (H, W) bool
    size : int

    Returns
    -------
    (y0, x0, size) : tuple of int
        The top-left corner; ties go to the first in raster order.
    """
    labels = np.asarray(labels)
    mask = np.asarray(mask, bool)
    h, w = labels.shape
    size = int(min(size, h, w))
    edges = np.zeros((h, w), np.float64)
    edges[:-1] += labels[:-1] != labels[1:]
    edges[:, :-1] += labels[:, :-1] != labels[:, 1:]

    def window_sums(a):
        # summed-area table: sum over [y, y+size) x [x, x+size) = S[y+s,x+s] - S[y,x+s] - S[y+s,x] + S[y,x]
        s = np.zeros((h + 1, w + 1))
        s[1:, 1:] = a.cumsum(0).cumsum(1)
        return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]

    inside = window_sums(mask.astype(np.float64)) >= size * size - 0.5
    counts = np.where(inside, window_sums(edges), -1.0)
    if counts.max() < 0:  # no window wholly inside the mask: fall back to the central window
        return (h - size) // 2, (w - size) // 2, size
    y0, x0 = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(y0), int(x0), size


def _window(image, mask):
    lo, hi = np.percentile(np.asarray(image)[np.broadcast_to(mask, np.shape(image))], (1, 99))
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def plot_comparison(images, mask, roi, titles=None):
    """Slices of several methods side by side, with a zoomed region of interest below each.

    Parameters
    ----------
    images : dict
        name -> (H, W) image (any grey units: each is shown on its own 1–99 %
        window inside the mask).
    mask : ndarray (H, W) bool
    roi : (y0, x0, size)
    titles : dict, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(images)
    fig, axes = plt.subplots(2, n, figsize=(2.6 * n, 5.6), squeeze=False)
    y0, x0, s = roi
    for j, (key, img) in enumerate(images.items()):
        lo, hi = _window(img, mask)
        shown = np.where(mask, img, lo)
        axes[0, j].imshow(shown, cmap="gray", vmin=lo, vmax=hi)
        axes[0, j].add_patch(Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, ec="tab:red", lw=1.2))
        axes[0, j].set_title((titles or {}).get(key, key), fontsize=10)
        axes[1, j].imshow(img[y0:y0 + s, x0:x0 + s], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
        for side in axes[1, j].spines.values():
            side.set_edgecolor("tab:red")
    axes[1, 0].set_ylabel("zoom", fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_curves(histories):
    """Loss curves of the learned models, one panel each, against the optimiser step.

    Parameters
    ----------
    histories : dict
        name -> ``history.json`` content (``steps``, ``loss``, ``val_loss``, and
        for the GAN ``g_l1``, ``g_adv``, ``d_loss``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(4.4 * len(histories), 3.4), squeeze=False)
    for ax, (name, h) in zip(axes[0], histories.items()):
        steps = h.get("steps") or list(range(1, len(h.get("loss", [])) + 1))
        minutes = sum(h.get("seconds", [])) / 60.0
        if "g_l1" in h:
            ax.plot(steps, h["g_l1"], "o-", label="generator L1 (train)")
            ax.plot(steps, h["val_loss"], "s--", label="L1 (validation)")
            ax.set_ylabel("L1")
            ax2 = ax.twinx()
            ax2.plot(steps, h["d_loss"], "^-", color="tab:red", alpha=0.7, label="discriminator")
            ax2.plot(steps, h["g_adv"], "v-", color="tab:purple", alpha=0.7, label="generator adversarial")
            ax2.set_ylabel("cross-entropy")
            lines = ax.get_legend_handles_labels()
            lines2 = ax2.get_legend_handles_labels()
            ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7)
        else:
            ax.plot(steps, h["loss"], "o-", label="train")
            ax.plot(steps, h["val_loss"], "s--", label="validation")
            ax.set_ylabel("loss")
            ax.legend(fontsize=8)
        ax.set_xlabel("optimiser step")
        ax.set_title(f"{name} ({minutes:.1f} min)", fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_sweep(rows, choice=None, references=None):
    """Distortion and sharpness of InDI against the number of steps N.

    Parameters
    ----------
    rows : list of dict
        :func:`step_sweep`.
    choice : dict, optional
        :func:`select_steps` (marks the chosen N and the FWHM limit).
    references : dict, optional
        name -> {metric: value} drawn as horizontal lines (e.g. bicubic, HQ, CNN).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = [r["steps"] for r in rows]
    get = lambda k: np.array([np.nan if r.get(k) is None else r[k] for r in rows], float)  # noqa: E731
    ref_word = rows[0]["reference"] if rows else "truth"
    panels = [("psnr", f"PSNR vs {ref_word} (dB)"), ("ssim", f"SSIM vs {ref_word}"), ("fwhm_nm", "edge FWHM (nm)"),
              ("sift_congruent_points", f"SIFT congruent points vs {ref_word}")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    styles = ["--", ":", "-."]
    colours = ["tab:blue", "tab:green", "tab:red", "tab:purple"]  # orange is InDI's
    for ax, (key, label) in zip(axes, panels):
        y = get(key)
        if key == "fwhm_nm":
            y[y <= 0] = np.nan  # no measurement
        err = get(f"{key}_std") if key in ("psnr", "ssim", "fwhm_nm") else None
        ax.errorbar(n, y, yerr=err, fmt="o-", color="tab:orange", capsize=3, label="InDI")
        for k, (name, vals) in enumerate((references or {}).items()):
            ref = vals.get(key)
            if ref is not None and math.isfinite(ref) and not (key == "fwhm_nm" and ref <= 0):
                ax.axhline(ref, ls=styles[k % 3], color=colours[k % 4], lw=1, label=name)
        if choice is not None:
            ax.axvline(choice["steps"], color="k", lw=0.8, alpha=0.6)
            if key == "fwhm_nm":
                ax.axhline(choice["fwhm_limit_nm"], color="k", lw=0.6, ls=":", label="FWHM limit of the rule")
        ax.set_xscale("log")
        ax.set_xticks(n)
        ax.set_xticklabels([str(v) for v in n])
        ax.set_xlabel("InDI steps N")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes:  # one legend for all panels, each label once
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if choice is not None:
        fig.suptitle(f"chosen N = {choice['steps']} (vertical line)", fontsize=10)
    fig.tight_layout()
    fig.legend(legend.values(), legend.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(legend),
               fontsize=8, frameon=False)
    return fig


def plot_uncertainty(unc, mask, index=0):
    """Stochastic-sample spread next to the true error on one slice, and their joint ranks.

    Parameters
    ----------
    unc : dict
        :func:`uncertainty`.
    mask : ndarray (H, W) bool
    index : int
        Which test slice to show.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    mean, std, err = unc["mean"][index], unc["std"][index], unc["error"][index]
    lo, hi = _window(mean, mask)
    axes[0].imshow(np.where(mask, mean, lo), cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title(f"mean of {unc['samples']} samples (N = {unc['steps']})", fontsize=9)
    for ax, img, title in ((axes[1], std, "spread (std), 1/µm"), (axes[2], err, "|error| vs truth, 1/µm")):
        # each map on its own scale: only the ranking is compared
        vmax = float(np.percentile(img[mask], 99)) or 1.0
        im = ax.imshow(np.where(mask, img, 0), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes[:3]:
        ax.set_xticks([])
        ax.set_yticks([])
    m = np.broadcast_to(mask, unc["std"].shape)
    rs, re = rankdata(unc["std"][m]) / m.sum(), rankdata(unc["error"][m]) / m.sum()
    axes[3].hist2d(rs, re, bins=40, cmap="viridis")
    axes[3].set_xlabel("rank of spread (fraction)")
    axes[3].set_ylabel("rank of error (fraction)")
    axes[3].set_title(f"Spearman ρ = {unc['spearman']:.2f} (all test slices)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_hallucination(scores, steps=None):
    """Bar charts of false and missed particles, false-edge fraction and flat-region error per method.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in scores and scores[m].get("vs_truth") is not None]
    labels = [f"InDI N={steps}" if m == "indi" and steps else METHODS[m] for m in methods]
    panels = [("false_particles_per_mm2", "false particles / mm²", 1.0),
              ("missed_particles_per_mm2", "missed particles / mm²", 1.0),
              ("false_edge_fraction", "false edges in flat regions (%)", 100.0),
              ("flat_region_error", "grey spread in flat regions (contrast units)", 1.0)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (key, title, scale) in zip(axes, panels):
        vals = [np.nan if value(scores, m, key) is None else scale * value(scores, m, key) for m in methods]
        ax.bar(range(len(methods)), vals, color=[f"C{i}" for i in range(len(methods))])
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- the whole evaluation


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def save_results(path, results):
    """Write a results dict as JSON, atomically (``inf`` as ``Infinity``, NaN as ``null``)."""
    from .metrics import _clean

    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(_clean(results), indent=2, default=_json_default) + "\n")
    return Path(path)


def evaluate_run(run_dir, preset="default", seed=0, minutes=None, steps=None, progress=True):
    """The whole of chapter 05 without figures: baselines, sweep, choice of N, metrics, uncertainty, goals.

    Parameters
    ----------
    run_dir : str or Path
        With the artifacts of chapters 01, 02 and 04.
    preset : {"tiny", "default", "paper"}
        Preset of this module and of :mod:`indi4d.baselines`.
    seed : int
    minutes : float, optional
        Wall-clock budget of each baseline (default: the InDI run's training time).
    steps : int, optional
        Use this N instead of the one :func:`select_steps` picks.
    progress : bool

    Returns
    -------
    dict
        ``budget``, ``baselines`` (training summaries), ``sweep`` (rows),
        ``choice``, ``steps``, ``scores`` (:func:`score_methods`), ``uncertainty``
        (numbers only), ``goals``, ``seconds`` (per stage); also written to
        ``RUN_DIR/eval/metrics.json``.
    """
    from . import baselines, runs
    from .inference import load_enhancer

    p = resolve(PRESETS, preset)
    timing = {}
    t0 = time.perf_counter()
    trained = baselines.train_baselines(run_dir, preset, seed=seed, minutes=minutes, progress=progress)
    timing["baselines"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    test = load_test_set(run_dir, p["max_test_slices"])
    enhancer = load_enhancer(runs.stage_dir(run_dir, "model"), preset=p["tiling"])
    rows, sweep_preds = step_sweep(enhancer, test, p["steps_sweep"], preset, seed, progress)
    choice = select_steps(rows, p["fwhm_tol"], p["psnr_tol_db"])
    n = int(steps or choice["steps"])
    timing["sweep"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    preds = predict_methods(run_dir, test, n, preset, indi_prediction=sweep_preds.get(n))
    scores = score_methods(preds, test, preset, seed, progress)
    timing["scores"] = time.perf_counter() - t0

    unc = None
    if test["truth_mu"] is not None:
        t0 = time.perf_counter()
        u = uncertainty(enhancer, test, n, p["uncertainty_samples"], p["uncertainty_eps"], seed, p["block_px"],
                        progress)
        unc = {k: u[k] for k in ("spearman", "spearman_block", "samples", "eps", "steps", "block_px")}
        timing["uncertainty"] = time.perf_counter() - t0
    goals = check_goals(scores)
    results = {"preset": preset, "seed": seed, "run_dir": str(run_dir), "budget": trained["budget"],
               "baselines": {k: trained[k] for k in ("cnn", "gan")}, "test_slices": test["z"].tolist(),
               "pixel_size_nm": test["pixel_size_nm"], "sweep": rows, "choice": choice, "steps": n,
               "scores": scores, "uncertainty": unc, "goals": goals, "paper": PAPER_RESULTS,
               "seconds": {k: round(v, 1) for k, v in timing.items()}}
    save_results(runs.stage_dir(run_dir, "eval", create=True) / "metrics.json", results)
    return results
