"""Reference rows beside the learned methods: the ideal HQ scan and a classical denoiser a user would try first.

* ``hq_ideal``: the same HQ acquisition at infinite dose (same blur and
  motion, no noise, no rings; ``data/hq_ideal.tif``). Any estimator trained on
  HQ targets aims at most at this: it is the ceiling of HQ-trained methods.
* ``classical``: the bicubic LQ slices denoised by a Gaussian filter or by
  total-variation denoising (``skimage.restoration.denoise_tv_chambolle``),
  the kind and strength tuned on the *validation* slices of the pairs (split
  ``"val"``) for the best PSNR against the truth, or against HQ where the run
  has no truth. Denoising runs in physical units (attenuation, or grey values
  for a user's data), slice by slice.
"""

import math

import numpy as np

from .units import method_side, to_normalised, to_physical

#: Candidates tried by :func:`tune_classical`: Gaussian sigma in pixels, TV weight as a
#: fraction of the slice's robust grey range (1st-99th percentile inside the mask).
CLASSICAL_CANDIDATES = {"gaussian": (0.5, 0.75, 1.0, 1.5, 2.0, 3.0), "tv": (0.02, 0.05, 0.1, 0.2, 0.4, 0.8, 1.6)}


def classical_denoise(slices, kind, strength, mask=None):
    """Denoise physical slices one by one with a Gaussian filter or total variation.

    Parameters
    ----------
    slices : ndarray (n, H, W), real (physical units)
    kind : {"gaussian", "tv"}
    strength : float
        ``"gaussian"``: sigma in pixels. ``"tv"``: the Chambolle weight as a
        fraction of each slice's robust range ``r`` (1st to 99th percentile
        inside ``mask``): the slice is divided by ``r``, denoised with this
        weight and multiplied back, so the strength does not depend on units.
    mask : ndarray (H, W) bool, optional

    Returns
    -------
    ndarray (n, H, W) float32
    """
    from scipy import ndimage as ndi
    from skimage.restoration import denoise_tv_chambolle

    x = np.asarray(slices, np.float64)
    m = np.ones(x.shape[1:], bool) if mask is None else np.asarray(mask, bool)
    out = np.empty_like(x)
    for i, sl in enumerate(x):
        if kind == "gaussian":
            out[i] = ndi.gaussian_filter(sl, strength)
        elif kind == "tv":
            lo, hi = np.percentile(sl[m], (1, 99))
            r = hi - lo if hi > lo else 1.0
            out[i] = r * denoise_tv_chambolle(sl / r, weight=strength)  # TV on unit-range values
        else:
            raise ValueError(f"classical_denoise: kind must be 'gaussian' or 'tv', got {kind!r}")
    return out.astype(np.float32)


def _mean_psnr(pred, ref, mask, data_range):
    from ..metrics import psnr

    return float(np.mean([psnr(p, r, mask, data_range=data_range) for p, r in zip(pred, ref)]))


def tune_classical(val, candidates=CLASSICAL_CANDIDATES):
    """Choose the classical denoiser's kind and strength on validation slices.

    Parameters
    ----------
    val : dict
        :func:`~indi4d.evaluation.testset.load_split` of split ``"val"``.
    candidates : dict
        kind -> strengths (see :func:`classical_denoise`).

    Returns
    -------
    dict
        ``kind``, ``strength`` (the best), ``strength_units``, ``criterion``
        (what was maximised), ``tuned_on`` (split and z), ``units``, ``tried``
        (list of ``{"kind", "strength", "psnr"}``), ``psnr`` (the best value).
    """
    from .units import physical_units

    mask = val["mask"]
    lq = to_physical(val["lq"], method_side("bicubic"), val)
    if val["truth_mu"] is not None and val.get("grey_mapping"):
        ref, against = val["truth_mu"], "the true attenuation"
    else:
        ref, against = to_physical(val["hq"], method_side("hq"), val), "the HQ scan"
    data_range = float(ref[:, mask].max() - ref[:, mask].min())
    tried = []
    for kind, strengths in candidates.items():
        for s in strengths:
            tried.append({"kind": kind, "strength": float(s),
                          "psnr": _mean_psnr(classical_denoise(lq, kind, s, mask), ref, mask, data_range)})
    best = max(tried, key=lambda r: r["psnr"] if math.isfinite(r["psnr"]) else -math.inf)
    units = {"gaussian": "sigma, pixels", "tv": "Chambolle weight, fraction of the slice's 1-99 % range"}
    return {"kind": best["kind"], "strength": best["strength"], "strength_units": units[best["kind"]],
            "psnr": best["psnr"], "criterion": f"mean PSNR against {against} (no grey fit, data range of the "
                                              "reference inside the mask)",
            "tuned_on": {"split": val.get("split", "val"), "z": np.asarray(val["z"]).tolist()},
            "units": physical_units(val), "tried": tried}


def classical_prediction(test, tuning):
    """The classical row on the test slices: bicubic LQ denoised as :func:`tune_classical` chose.

    Returns
    -------
    normalised : ndarray (n, H, W) float32
        In the LQ side's [-1, 1] units (beside the bicubic input, for the scores vs HQ and the figures).
    physical : ndarray (n, H, W) float32
        In physical units (:func:`~indi4d.evaluation.units.to_physical`).
    """
    side = method_side("classical")
    physical = classical_denoise(to_physical(test["lq"], side, test), tuning["kind"], tuning["strength"],
                                 test["mask"])
    return to_normalised(physical, side, test), physical


def reference_predictions(run_dir, test, val=None):
    """The reference rows of a run: ``hq_ideal`` (when ``hq_ideal.tif`` exists) and ``classical``.

    Parameters
    ----------
    run_dir : str or Path
    test : dict
        :func:`~indi4d.evaluation.testset.load_test_set`.
    val : dict, optional
        The validation slices (default :func:`~indi4d.evaluation.testset.load_split` of ``"val"``).

    Returns
    -------
    preds : dict
        method -> float32 (n, H, W) in the pairs' normalised units.
    physical : dict
        method -> float32 (n, H, W) in physical units.
    tuning : dict or None
        :func:`tune_classical` (None when the pairs have no validation slices).
    """
    from .testset import load_split

    preds, physical, tuning = {}, {}, None
    if test.get("hq_ideal") is not None:
        physical["hq_ideal"] = np.asarray(test["hq_ideal"], np.float32)
        preds["hq_ideal"] = to_normalised(physical["hq_ideal"], method_side("hq_ideal"), test)
    try:
        val = val if val is not None else load_split(run_dir, "val")
    except ValueError:  # no validation slices: no tuned classical row
        return preds, physical, None
    tuning = tune_classical(val)
    preds["classical"], physical["classical"] = classical_prediction(test, tuning)
    return preds, physical, tuning
