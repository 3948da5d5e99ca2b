"""What came out of an enhancement: contrast kept, and stochastic samples that agree, per slab.

A network applied far from its training data can return a nearly flat image
(the contrast collapses) or outputs that change with the sampler's noise. Both
are measured without a truth, on one slice at the centre of each of a few
z-slabs of the scan:

* ``contrast_ratio`` = contrast of the output slice / contrast of the input
  slice, each the 5-95 % grey-value spread of the central part (the region of
  :func:`indi4d.domain.central_crop`) in the network's normalised units (the
  output in the HQ normalisation, the input in the LQ one, so 1 means "as much
  contrast as the training pair had between its scans");
* ``spread_rel`` = mean per-pixel standard deviation of K stochastic InDI
  samples (:func:`indi4d.evaluation.uncertainty.stochastic_draws`, the
  machinery of chapter 05's uncertainty) / the output slice's contrast.

The output slice is computed by the very function and seed the chunked
enhancement uses for that slice (:func:`indi4d.inference.enhance_grey_slice`
with the seed ``(seed, z)``), so it *is* the output's slice before the z-spline.
A slab warns when ``contrast_ratio`` < :data:`CONTRAST_MIN` or ``spread_rel`` >
:data:`SPREAD_MAX`; every result is returned for the output's metadata.
"""

import numpy as np

#: Output contrast below this share of the input's: a collapse towards a flat image.
CONTRAST_MIN = 0.25
#: Stochastic spread above this share of the output's contrast: the samples disagree.
SPREAD_MAX = 0.25
#: Stochastic samples per slab, and slabs sampled.
SAMPLES = 3
SLABS = 4
#: Sampler noise when the model was trained without (chapter 05's uncertainty default).
DEFAULT_EPS = 0.1


def contrast(image):
    """5-95 % grey-value spread of the central part of an image (float, the image's units)."""
    from ..domain import central_crop

    lo, hi = np.percentile(central_crop(np.asarray(image, np.float64)), [5, 95])
    return float(hi - lo)


def slab_centres(nz, slabs=SLABS):
    """The centre slice of each of ``min(slabs, nz)`` equal z-slabs of a stack of ``nz`` slices."""
    n = max(1, min(int(slabs), int(nz)))
    edges = np.linspace(0, nz, n + 1)
    return sorted(set(((edges[:-1] + edges[1:]) / 2).astype(int).tolist()))


def slab_sanity(enhancer, image, z, steps, seed=0, eps=None, samples=SAMPLES, sample_eps=None):
    """The contrast ratio and stochastic spread of one LQ slice's enhancement.

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    image : ndarray (Y, X)
        LQ grey values on the training scan's scale (``--input-range`` applied).
    z : int
        The slice's index (its seed is ``(seed, z)``, as in the chunked path).
    steps, seed, eps
        As for :func:`indi4d.inference.enhance_grey_slice`.
    samples : int
        Stochastic samples K (0: contrast only).
    sample_eps : float, optional
        Their noise scale (default the training ``eps``, or :data:`DEFAULT_EPS` when that is 0).

    Returns
    -------
    dict
        ``z``, ``contrast_in``, ``contrast_out``, ``contrast_ratio``, ``spread``
        (normalised HQ units; None when ``samples`` < 2), ``spread_rel``.
    """
    from ..core import preprocess
    from ..inference import enhance_grey_slice
    from ..domain import central_crop
    from .uncertainty import stochastic_draws

    norm = enhancer.normalisation
    u = preprocess.normalise(preprocess.upscale(np.asarray(image, np.float64), 2), norm["lq"])
    out = preprocess.normalise(enhance_grey_slice(enhancer, norm, image, steps, eps, (int(seed), int(z)), False),
                               norm["hq"])
    c_in, c_out = contrast(u), contrast(out)
    result = {"z": int(z), "contrast_in": c_in, "contrast_out": c_out,
              "contrast_ratio": c_out / c_in if c_in > 0 else None, "spread": None, "spread_rel": None}
    if samples >= 2:
        trained = float(enhancer.config.get("training", {}).get("eps", 0.0))
        eps_k = float(sample_eps if sample_eps is not None else trained if trained > 0 else DEFAULT_EPS)
        draws = stochastic_draws(enhancer, u[None].astype(np.float32), steps, int(samples), eps_k, seed=int(seed))
        spread = float(central_crop(draws[:, 0].std(axis=0)).mean())
        result.update(spread=spread, spread_rel=spread / c_out if c_out > 0 else None, sample_eps=eps_k)
    return result


def output_sanity(enhancer, volume, steps, seed=0, eps=None, samples=SAMPLES, slabs=SLABS, input_range=None):
    """The sanity check of an enhancement, one slice per z-slab (see the module's docstring).

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    volume : array-like (Z, Y, X) or (Y, X), grey values
        NumPy or dask; only the slab centres are read.
    steps, seed, eps
        Those of the enhancement.
    samples, slabs : int
    input_range : (float, float), optional
        As for ``indi4d enhance``.

    Returns
    -------
    dict
        ``slabs`` (list of :func:`slab_sanity`), ``contrast_ratio_min``,
        ``spread_rel_max``, ``verdict`` (``"ok"`` or ``"warn"``), ``warnings``
        (sentences), ``rule`` (the thresholds, in words).
    """
    from ..inference.checks import map_grey_range

    flat = len(volume.shape) == 2
    lq = enhancer.normalisation["lq"]
    rows = []
    for z in [0] if flat else slab_centres(volume.shape[0], slabs):
        image = np.asarray(volume if flat else volume[z], np.float64)
        if input_range is not None:
            image = map_grey_range(image, input_range, (lq["lo"], lq["hi"]))
        rows.append(slab_sanity(enhancer, image, z, steps, seed=seed, eps=eps, samples=samples))
    warnings = []
    for r in rows:
        if r["contrast_ratio"] is None:
            warnings.append(f"slice z = {r['z']}: the input has no contrast in its central part; nothing to compare")
        elif r["contrast_ratio"] < CONTRAST_MIN:
            warnings.append(f"slice z = {r['z']}: the output keeps {r['contrast_ratio']:.2f} of the input's contrast "
                            f"(below {CONTRAST_MIN}): a collapse towards a flat image")
        if r["spread_rel"] is not None and r["spread_rel"] > SPREAD_MAX:
            warnings.append(f"slice z = {r['z']}: stochastic samples differ by {r['spread_rel']:.2f} of the output's "
                            f"contrast (above {SPREAD_MAX}): the network is unsure here")
    ratios = [r["contrast_ratio"] for r in rows if r["contrast_ratio"] is not None]
    spreads = [r["spread_rel"] for r in rows if r["spread_rel"] is not None]
    return {"slabs": rows, "contrast_ratio_min": min(ratios) if ratios else None,
            "spread_rel_max": max(spreads) if spreads else None, "samples": int(samples),
            "verdict": "warn" if warnings else "ok", "warnings": warnings,
            "rule": f"warn when output/input contrast < {CONTRAST_MIN} or stochastic spread / output contrast > "
                    f"{SPREAD_MAX}, one slice per z-slab"}


def sanity_line(result):
    """One sentence summing up :func:`output_sanity` (for the command line and the book)."""
    cr, sp = result["contrast_ratio_min"], result["spread_rel_max"]
    said = (f"contrast kept {cr:.2f}x (lowest of {len(result['slabs'])} slabs)" if cr is not None else
            "no input contrast to compare")
    said += f", stochastic spread {sp:.2f} of the output's contrast (highest)" if sp is not None else ""
    return said + ("; " + "; ".join(result["warnings"]) if result["warnings"] else "; ok")
