"""How far a scan is from the one a network was trained on: the domain record and the domain score.

A network trained on one LQ/HQ pair is applied to scans it never saw. When a
scan's grey values, noise or edges differ too much from the training scan's,
the output can be wrong without looking wrong. This module measures that
distance on a few slices, *as the network sees them* (x2 cubic upscaling, the
model's LQ normalisation, values in [-1, 1]):

* the **record** (:func:`slice_statistics`, :func:`record_from_pairs`): the
  normalised grey-value quantiles, the noise level and the gradient-magnitude
  quantiles of sampled training LQ slices; written to the model folder as
  ``domain.json`` at training time (:func:`indi4d.model_folder.write_domain`);
* the **score** (:func:`domain_score`) of another scan's sampled slices
  against the record, the sum of three dimensionless distances::

      d_hist  = W1(grey values) / (q95 - q05 of the record)   (Wasserstein-1 over the 1..99 % quantiles)
      d_noise = |ln(noise / noise_record)|                     (noise = 1.4826 MAD of a 3x3 high-pass)
      d_edge  = mean over p in EDGE_LEVELS of |ln(g_p / g_p,record)|   (g = gradient magnitude, sigma 1 px)
      score   = d_hist + d_noise + d_edge

  0 for a scan with the record's statistics; a twice-as-noisy scan alone adds
  ln 2 = 0.69.
* the **thresholds** :data:`WARN` and :data:`REFUSE`, set by
  ``benchmarks/domain.py`` from held-out in-domain scans (at most 1 % false
  warnings) and recorded with its measured rates in
  ``benchmarks/results/domain.json``.

Nothing here imports TensorFlow or another module of the package that does.
"""

import numpy as np
from scipy import ndimage as ndi

from .core.preprocess import normalise
from .core.upscaling import upscale

#: Version of the record's layout (a record of another version is refused when read).
RECORD_VERSION = 1
#: Quantile levels (fractions) of the grey-value histogram kept in the record.
GREY_LEVELS = tuple(np.round(np.linspace(0.01, 0.99, 99), 4).tolist())
#: Quantile levels of the gradient magnitude compared by ``d_edge``.
EDGE_LEVELS = (0.5, 0.9, 0.99)
#: Gaussian sigma (pixels of the x2 grid) of the gradient magnitude.
EDGE_SIGMA_PX = 1.0
#: Slices sampled from a scan (and from the training slices for the record).
N_SLICES = 8
#: Share of each input slice's side kept, centred: the interior of the sample, away
#: from the air around it and the reconstruction disc's rim, as in the training pairs
#: (the HQ field of view is the central half of the LQ one).
CENTRAL_FRACTION = 0.5
#: Score thresholds, set by ``benchmarks/domain.py`` (``benchmarks/results/domain.json``, copied here):
#: WARN = the 99th percentile of held-out in-domain scans of the default, workshop and tiny data
#: pooled; REFUSE = 2 x WARN.
WARN = 0.327
REFUSE = 0.654

#: Keys of a record and of the statistics of a set of slices.
STAT_KEYS = ("grey_quantiles", "noise", "edge_quantiles")


def noise_level(image, mask=None):
    """Robust noise standard deviation of one image: 1.4826 MAD of a 3x3 high-pass.

    The high-pass is the image minus its 3x3 mean, scaled by 3/sqrt(8) so that
    i.i.d. noise of std sigma gives sigma back; the median absolute deviation
    ignores the few pixels at edges.

    Parameters
    ----------
    image : ndarray (H, W), float
    mask : ndarray of bool (H, W), optional

    Returns
    -------
    float
        In the image's units.
    """
    a = np.asarray(image, np.float64)
    high = (a - ndi.uniform_filter(a, 3, mode="reflect")) * (3.0 / np.sqrt(8.0))
    values = high[mask] if mask is not None else high.ravel()
    return float(1.4826 * np.median(np.abs(values - np.median(values))))


def gradient_magnitude(image, sigma=EDGE_SIGMA_PX):
    """Gradient magnitude of a Gaussian-smoothed image (float64, same shape), per pixel."""
    return ndi.gaussian_gradient_magnitude(np.asarray(image, np.float64), sigma, mode="reflect")


def slice_statistics(slices, mask=None):
    """The grey-value quantiles, noise and edge statistics of normalised slices.

    Parameters
    ----------
    slices : ndarray (n, H, W) or (H, W), float, normalised (the network's [-1, 1])
    mask : ndarray of bool, (H, W) or (n, H, W), optional
        Pixels that count (e.g. the reconstruction disc).

    Returns
    -------
    dict
        ``grey_quantiles`` (list of len(:data:`GREY_LEVELS`)), ``noise``
        (median over slices of :func:`noise_level`), ``edge_quantiles``
        (gradient-magnitude quantiles at :data:`EDGE_LEVELS`, pooled),
        ``n_slices``, ``n_pixels``.
    """
    a = np.asarray(slices, np.float64)
    a = a[None] if a.ndim == 2 else a
    if a.ndim != 3 or a.shape[0] == 0:
        raise ValueError(f"slice_statistics: expected (n, H, W) slices, got shape {np.shape(slices)}")
    m = np.ones(a.shape, bool) if mask is None else np.broadcast_to(np.asarray(mask, bool), a.shape)
    if not m.any():
        raise ValueError("slice_statistics: the mask holds no pixel")
    grads = np.stack([gradient_magnitude(s) for s in a])
    noise = [noise_level(s, k) for s, k in zip(a, m) if k.any()]
    return {"grey_quantiles": np.quantile(a[m], GREY_LEVELS).tolist(), "noise": float(np.median(noise)),
            "edge_quantiles": np.quantile(grads[m], EDGE_LEVELS).tolist(),
            "n_slices": int(a.shape[0]), "n_pixels": int(m.sum())}


def sample_indices(n, k=N_SLICES, margin=0.1):
    """``k`` evenly spaced slice indices of ``n``, away from the first and last ``margin`` share."""
    if n <= 0:
        raise ValueError("sample_indices: no slice to sample")
    lo, hi = margin * (n - 1), (1 - margin) * (n - 1)
    return sorted(set(np.rint(np.linspace(lo, hi, min(k, n))).astype(int).tolist()))


def central_crop(image, fraction=CENTRAL_FRACTION):
    """The centred ``fraction`` of the last two axes of ``image``."""
    h, w = image.shape[-2:]
    ch, cw = max(2, int(round(h * fraction))), max(2, int(round(w * fraction)))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    return image[..., y0:y0 + ch, x0:x0 + cw]


def scan_slices(volume, lq_params, input_range=None, indices=None, k=N_SLICES):
    """Sampled slices of a scan, as the network sees them: x2 upscaled, normalised, central part.

    Parameters
    ----------
    volume : array-like (Z, Y, X) or (Y, X), grey values
        A NumPy or dask array; only the sampled slices are read.
    lq_params : dict
        The model's LQ normalisation (``normalisation.json["lq"]``).
    input_range : (float, float), optional
        Grey values mapped onto the LQ training range first (``--input-range``).
    indices : list of int, optional
        Slices to take (default :func:`sample_indices`).

    Returns
    -------
    slices : ndarray float32 (n, h, w)
    indices : list of int
    """
    flat = len(volume.shape) == 2
    indices = [0] if flat else (indices if indices is not None else sample_indices(volume.shape[0], k))
    out = []
    for z in indices:
        image = np.asarray(volume if flat else volume[z], np.float64)
        if input_range is not None:
            lo, hi = float(lq_params["lo"]), float(lq_params["hi"])
            image = lo + (image - input_range[0]) * ((hi - lo) / (input_range[1] - input_range[0]))
        out.append(central_crop(normalise(upscale(image, 2), lq_params)))
    return np.stack(out).astype(np.float32), list(indices)


def record_from_slices(slices, mask=None, source="", k=N_SLICES, **details):
    """A domain record (dict for ``domain.json``) from normalised training LQ slices.

    ``k`` slices are sampled evenly from ``slices`` (n, H, W); ``source`` says
    where they come from; ``details`` (JSON-ready) are stored beside.
    """
    a = np.asarray(slices)
    idx = sample_indices(a.shape[0], k, margin=0.0)
    m = None if mask is None else np.asarray(mask, bool)
    if m is not None and m.ndim == 3:
        m = m[idx]
    stats = slice_statistics(a[idx], m)
    return {"version": RECORD_VERSION, **stats, "grey_levels": list(GREY_LEVELS), "edge_levels": list(EDGE_LEVELS),
            "edge_sigma_px": EDGE_SIGMA_PX, "slices": idx, "source": str(source), **details}


def record_from_pairs(pairs_dir, split="train", k=N_SLICES, lq_params=None):
    """The domain record of a pairs folder's LQ slices of ``split`` (what :func:`train_indi` records).

    ``lq_params``: the LQ normalisation of the model the record is for; when
    the pairs were normalised otherwise, their slices are mapped back to grey
    values and normalised with it, so the record is in the model's units.
    """
    from .core.pairs import load_pairs, load_pairs_info
    from .core.preprocess import denormalise

    lq, _ = load_pairs(pairs_dir, split)
    info = load_pairs_info(pairs_dir)
    own = info["normalisation"]["lq"]
    renormalised = lq_params is not None and lq_params != own
    if renormalised:
        lq = normalise(denormalise(lq, own), lq_params)
    return record_from_slices(lq, info.get("mask"), source=f"{pairs_dir} ({split} LQ slices)", k=k, split=split,
                              renormalised=bool(renormalised))


def domain_score(record, stats):
    """The domain score of a scan's statistics against a record, and its components.

    Parameters
    ----------
    record : dict
        A domain record (:func:`record_from_slices`).
    stats : dict
        :func:`slice_statistics` of the scan's sampled, normalised slices.

    Returns
    -------
    dict
        ``score`` = ``d_hist + d_noise + d_edge`` (see the module's docstring),
        the three components, ``noise_ratio`` (scan / record) and ``edge_ratio``
        (at the median level); all floats.
    """
    q_rec, q_in = np.asarray(record["grey_quantiles"]), np.asarray(stats["grey_quantiles"])
    levels = np.asarray(record.get("grey_levels", GREY_LEVELS))
    spread = np.interp(0.95, levels, q_rec) - np.interp(0.05, levels, q_rec)
    d_hist = float(np.mean(np.abs(q_in - q_rec)) / max(spread, 1e-6))
    tiny = 1e-9  # a flat image has zero noise and gradient: its ratios are then huge, not infinite
    noise_ratio = (stats["noise"] + tiny) / (record["noise"] + tiny)
    g_rec, g_in = np.asarray(record["edge_quantiles"]) + tiny, np.asarray(stats["edge_quantiles"]) + tiny
    d_noise = float(abs(np.log(noise_ratio)))
    d_edge = float(np.mean(np.abs(np.log(g_in / g_rec))))
    return {"score": d_hist + d_noise + d_edge, "d_hist": d_hist, "d_noise": d_noise, "d_edge": d_edge,
            "noise_ratio": float(noise_ratio), "edge_ratio": float(g_in[0] / g_rec[0])}


def verdict(score, warn=WARN, refuse=REFUSE):
    """``"in domain"`` below ``warn``, ``"warn"`` below ``refuse``, else ``"refuse"``."""
    return "in domain" if score < warn else "warn" if score < refuse else "refuse"


def score_scan(volume, record, lq_params, input_range=None, k=N_SLICES, warn=WARN, refuse=REFUSE):
    """Score a scan's sampled slices against a record: :func:`domain_score` plus the verdict and slices used."""
    slices, idx = scan_slices(volume, lq_params, input_range=input_range, k=k)
    result = domain_score(record, slice_statistics(slices))
    return dict(result, verdict=verdict(result["score"], warn, refuse), warn=float(warn), refuse=float(refuse),
                slices=idx)


# --------------------------------------------------------------------------- thresholds from data


def subset_scores(slices, record, draws=200, k=N_SLICES, seed=0, mask=None):
    """Scores of ``draws`` random ``k``-slice subsets of a scan's prepared slices (how the check sees a scan).

    Parameters
    ----------
    slices : ndarray (n, h, w) float
        Normalised slices (:func:`scan_slices` of every slice, or pairs slices).
    record : dict
    draws, k, seed : int
        ``k`` is capped at ``n``; subsets are drawn without replacement, seeded.
    mask : ndarray of bool (h, w), optional
        Pixels that count (as for :func:`slice_statistics`).

    Returns
    -------
    ndarray float64 (draws,)
    """
    rng = np.random.default_rng(seed)
    a = np.asarray(slices)
    k = min(int(k), a.shape[0])
    return np.array([domain_score(record, slice_statistics(a[np.sort(rng.choice(a.shape[0], k, replace=False))],
                                                           mask))["score"] for _ in range(int(draws))])


def thresholds_from_scores(in_domain, false_alarm=0.01, refuse_factor=2.0):
    """Warn and refuse levels from held-out in-domain scores.

    ``warn`` is the ``1 - false_alarm`` quantile of the in-domain scores (so at
    most that share of in-domain scans is warned about); ``refuse`` is
    ``refuse_factor`` times it: a scan twice as far from the training scan as
    the farthest in-domain percent.

    Returns
    -------
    (float, float)
    """
    warn = float(np.quantile(np.asarray(in_domain, np.float64), 1.0 - float(false_alarm)))
    return warn, float(refuse_factor) * warn
