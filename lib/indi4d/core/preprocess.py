"""Preprocessing of registered LQ/HQ volumes into 2D training pairs (chapter 02).

The steps, in the order :func:`indi4d.registration.register_scans` runs them:

1. :func:`upscale` -- cubic-spline ×2 upscaling of the LQ crop onto the HQ grid
   (in :mod:`indi4d.core.upscaling`, re-exported here).
2. :func:`disc_mask` / :func:`estimate_disc_radius` -- the reconstruction disc of
   every xy slice; outside it a filtered back-projection has no data.
3. :func:`fit_normalisation` / :func:`normalise` / :func:`denormalise` --
   histogram equalisation (none, global or CLAHE) or a linear robust scaling
   (percentile) to [-1, 1], with
   the statistics kept in a JSON-serialisable dict so network outputs map back
   to grey values.
4. :func:`split_slices` -- train/val/test split by contiguous blocks of z slices.

The ``pairs`` folder itself (:func:`save_pairs`, :func:`load_pairs`,
:func:`load_pairs_info`, :data:`SPLITS`) lives in :mod:`indi4d.core.pairs`; the
names are re-exported here because chapters and training code import them
from this module.

Nothing here imports TensorFlow or spam: the module stays cheap to import.

Grids are cell-centred: voxel ``i`` of a grid with spacing ``s`` covers
``[i*s, (i+1)*s)``, so LQ voxel ``i`` sits at HQ coordinate ``2*i + 0.5``.
"""

import numpy as np

# the pairs folder, re-exported (see the module docstring)
from .pairs import SPLITS, load_pairs, load_pairs_info, save_pairs  # noqa: F401
from .upscaling import upscale  # noqa: F401  (re-exported: callers use preprocess.upscale)

#: The equalisation methods :func:`fit_normalisation` knows.
EQUALISATIONS = ("none", "global", "clahe", "percentile")

#: Largest number of voxels used to fit a normalisation (a regular stride
#: subsample above it: deterministic, no random numbers involved).
_MAX_FIT_SAMPLES = 4_000_000


# --------------------------------------------------------------------------- masks


def disc_mask(shape, radius=None, centre=None):
    """Boolean mask of the reconstruction disc of an xy slice.

    Parameters
    ----------
    shape : tuple of int
        ``(Y, X)``, or any shape whose last two entries are ``(Y, X)``.
    radius : float, optional
        Disc radius in pixels; default ``min(Y, X) / 2`` (the inscribed disc).
    centre : (float, float), optional
        ``(y, x)`` centre in pixels; default the slice centre ``((Y-1)/2, (X-1)/2)``.

    Returns
    -------
    ndarray, bool, shape (Y, X)
        True inside the disc.
    """
    ny, nx = (int(s) for s in tuple(shape)[-2:])
    if ny < 1 or nx < 1:
        raise ValueError(f"disc_mask: empty slice shape {shape}")
    cy, cx = ((ny - 1) / 2.0, (nx - 1) / 2.0) if centre is None else (float(centre[0]), float(centre[1]))
    radius = min(ny, nx) / 2.0 if radius is None else float(radius)
    if radius <= 0:
        raise ValueError(f"disc_mask: radius must be positive, got {radius}")
    y, x = np.ogrid[:ny, :nx]
    # inside when (y - cy)^2 + (x - cx)^2 <= r^2
    return (y - cy) ** 2 + (x - cx) ** 2 <= radius**2


def estimate_disc_radius(volume, rel_threshold=0.05):
    """Estimate the radius of the reconstruction disc from the data.

    Outside the disc a reconstruction is constant along z (filled with one
    value), inside it the sample varies from slice to slice. The radius is the
    largest radius whose ring still varies along z by more than
    ``rel_threshold`` times the median variation in the central quarter.
    A volume without such an empty outside gives the inscribed radius.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X)
        Grey values.
    rel_threshold : float
        Fraction of the typical inner variation below which a ring counts as empty.

    Returns
    -------
    float
        Radius in pixels, at most ``hypot(Y, X) / 2``.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3:
        raise ValueError(f"estimate_disc_radius: expected a (Z, Y, X) volume, got shape {volume.shape}")
    ny, nx = volume.shape[1:]
    spread = volume.astype(np.float32).std(axis=0)  # per-pixel variation along z
    y, x = np.indices((ny, nx))
    r = np.hypot(y - (ny - 1) / 2.0, x - (nx - 1) / 2.0)
    ring = np.round(r).astype(int)
    counts = np.bincount(ring.ravel())
    profile = np.bincount(ring.ravel(), weights=spread.ravel()) / np.maximum(counts, 1)
    inscribed = min(ny, nx) / 2.0
    # the reference variation: the central part, inside any reconstruction disc
    inner = np.median(spread[r <= max(1.5, inscribed / 4.0)])
    if inner <= 0:
        return float(inscribed)
    alive = np.nonzero(profile > rel_threshold * inner)[0]
    if alive.size == 0:
        return float(inscribed)
    # the last ring with data; +0.5 because ring k holds radii in [k-0.5, k+0.5)
    return float(min(alive.max() + 0.5, np.hypot(ny, nx) / 2.0))


# --------------------------------------------------------------------------- normalisation


def _masked_values(volume, mask, what="volume"):
    volume = np.asarray(volume)
    if not np.issubdtype(volume.dtype, np.number) or np.iscomplexobj(volume):
        raise ValueError(f"{what}: expected real grey values, got dtype {volume.dtype}")
    if mask is None:
        values = volume.ravel()
    else:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != volume.shape:
            try:
                mask = np.broadcast_to(mask, volume.shape)
            except ValueError:
                raise ValueError(
                    f"{what}: mask of shape {mask.shape} does not fit a volume of shape {volume.shape}"
                ) from None
        values = volume[mask]
    if values.size == 0:
        raise ValueError(f"{what}: the mask selects no voxel")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{what}: contains NaN or infinite values")
    return values.astype(np.float64)


def _quantile_table(values, n_quantiles):
    """Strictly increasing (grey, level) table of the empirical CDF, levels in [-1, 1]."""
    stride = max(1, values.size // _MAX_FIT_SAMPLES)
    sample = values[::stride]
    p = np.linspace(0.0, 1.0, int(n_quantiles))
    grey = np.quantile(sample, p)
    # the true extremes, so that every fitted value round-trips (no clipping)
    grey[0], grey[-1] = values.min(), values.max()
    grey = np.maximum.accumulate(grey)
    # ties (integer data) would make the table non-invertible: keep each grey
    # value once, at the mean CDF level of its tied quantiles
    unique, inverse = np.unique(grey, return_inverse=True)
    level = np.bincount(inverse, weights=p) / np.bincount(inverse)
    if unique.size == 1:  # a constant volume: map it to 0
        return [float(unique[0])], [0.0]
    return unique.tolist(), (2.0 * level - 1.0).tolist()


def fit_normalisation(volume, mask=None, method="global", n_quantiles=1024, clahe_kernel=None, clahe_clip=0.01,
                      percentiles=(0.1, 99.9)):
    """Fit the map from grey values to [-1, 1] on the voxels inside a mask.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X) or (Y, X)
        Grey values (uint16 scans, or float).
    mask : ndarray of bool, optional
        Voxels to fit on: same shape as ``volume`` or broadcastable to it (a
        (Y, X) disc applies to every slice). Default: all voxels.
    method : {"none", "global", "clahe"}
        ``"none"``: linear, min -> -1 and max -> +1.
        ``"global"``: histogram equalisation, ``u = 2 F(x) - 1`` with ``F`` the
        empirical CDF of the masked voxels, stored as a quantile table; exactly
        invertible by interpolation (the same map as
        ``skimage.exposure.equalize_hist``, scaled to [-1, 1]).
        ``"clahe"``: linear to [0, 1], then contrast-limited adaptive histogram
        equalisation per xy slice (``skimage.exposure.equalize_adapthist``).
        CLAHE is local, so its inverse is only approximate: a quantile table of
        CLAHE output against input grey values (``"invertible": false``).
        ``"percentile"``: linear, the ``percentiles[0]`` % quantile -> -1 and
        the ``percentiles[1]`` % quantile -> +1, values beyond clipped; exactly
        invertible in between. Being linear it commutes with averaging
        (``E f(x) = f(E x)`` away from the clipped tails), which Noise2Noise
        targets need and an equalisation breaks.
    n_quantiles : int
        Size of the quantile table (``"global"``, ``"clahe"``).
    clahe_kernel : int, optional
        CLAHE tile size in pixels; default 1/8 of the slice (skimage's default).
    clahe_clip : float
        CLAHE clip limit in (0, 1].
    percentiles : (float, float)
        Lower and upper percentiles (``"percentile"``), 0 <= lo < hi <= 100.

    Returns
    -------
    dict
        JSON-serialisable parameters for :func:`normalise` and :func:`denormalise`.
    """
    if method not in EQUALISATIONS:
        raise ValueError(f"fit_normalisation: unknown method {method!r}; expected one of {EQUALISATIONS}")
    if int(n_quantiles) < 2:
        raise ValueError(f"fit_normalisation: n_quantiles must be >= 2, got {n_quantiles}")
    values = _masked_values(volume, mask, what="fit_normalisation")
    lo, hi = float(values.min()), float(values.max())
    params = {"method": method, "lo": lo, "hi": hi, "invertible": method != "clahe", "n_fit_voxels": int(values.size)}
    if method == "percentile":
        q_lo, q_hi = (float(q) for q in percentiles)
        if not 0.0 <= q_lo < q_hi <= 100.0:
            raise ValueError(f"fit_normalisation: percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}")
        stride = max(1, values.size // _MAX_FIT_SAMPLES)
        lo, hi = (float(v) for v in np.percentile(values[::stride], [q_lo, q_hi]))
        # lo -> -1, hi -> +1: u = 2 (x - lo) / (hi - lo) - 1 (the "none" map with robust ends)
        params.update({"lo": lo, "hi": hi, "percentiles": [q_lo, q_hi], "min": float(values.min()),
                       "max": float(values.max())})
    if method == "global":
        grey, level = _quantile_table(values, n_quantiles)
        params["quantiles"] = {"grey": grey, "level": level}
    elif method == "clahe":
        params["clahe"] = {"kernel_size": None if clahe_kernel is None else int(clahe_kernel), "clip_limit": float(clahe_clip), "nbins": 256}
        volume = np.asarray(volume)
        eq = normalise(volume, params)
        out = _masked_values(eq, mask, what="fit_normalisation")
        # approximate inverse: match the quantiles of CLAHE output to those of the input
        p = np.linspace(0.0, 1.0, int(n_quantiles))
        stride = max(1, values.size // _MAX_FIT_SAMPLES)
        level = np.maximum.accumulate(np.quantile(out[::stride], p))
        grey = np.maximum.accumulate(np.quantile(values[::stride], p))
        level, keep = np.unique(level, return_index=True)
        params["quantiles"] = {"grey": grey[keep].tolist(), "level": level.tolist()}
    return params


def _check_params(params):
    if not isinstance(params, dict) or params.get("method") not in EQUALISATIONS:
        raise ValueError(f"normalisation parameters must be a dict from fit_normalisation, got {params!r:.200}")


def normalise(array, params):
    """Map grey values to [-1, 1] with parameters from :func:`fit_normalisation`.

    Parameters
    ----------
    array : ndarray, shape (..., Y, X)
        Grey values; for ``"clahe"`` a (Y, X) slice or a (Z, Y, X) stack.
    params : dict
        From :func:`fit_normalisation`.

    Returns
    -------
    ndarray, float32, same shape, values in [-1, 1]
        Values outside the fitted range are clipped.
    """
    _check_params(params)
    x = np.asarray(array, dtype=np.float64)
    lo, hi = params["lo"], params["hi"]
    method = params["method"]
    if method == "global":
        q = params["quantiles"]
        if len(q["grey"]) == 1:
            return np.zeros(x.shape, np.float32)
        # u = 2 F(x) - 1, F the piecewise-linear empirical CDF
        u = np.interp(x, q["grey"], q["level"])
    else:
        span = hi - lo if hi > lo else 1.0
        s = np.clip((x - lo) / span, 0.0, 1.0)  # linear to [0, 1]
        if method == "clahe":
            from skimage import exposure

            c = params["clahe"]
            slices = s.reshape((-1,) + s.shape[-2:])
            s = np.stack(
                [exposure.equalize_adapthist(sl, kernel_size=c["kernel_size"], clip_limit=c["clip_limit"], nbins=c["nbins"]) for sl in slices]
            ).reshape(s.shape)
        u = 2.0 * s - 1.0
    return np.clip(u, -1.0, 1.0).astype(np.float32)


def denormalise(array, params):
    """Map values in [-1, 1] back to grey values (the inverse of :func:`normalise`).

    Exact (up to float32 rounding) for ``"none"`` and ``"global"``: for every
    value inside the fitted range, ``denormalise(normalise(x)) == x`` within one
    grey level; for ``"percentile"`` the same between its two percentiles
    (values beyond them were clipped). For ``"clahe"`` the inverse is a global
    approximation.

    Parameters
    ----------
    array : ndarray
        Values in [-1, 1] (clipped to it first), e.g. network outputs.
    params : dict
        From :func:`fit_normalisation`.

    Returns
    -------
    ndarray, float32, same shape
        Grey values (cast to the scan's integer type yourself if needed).
    """
    _check_params(params)
    u = np.clip(np.asarray(array, dtype=np.float64), -1.0, 1.0)
    if params["method"] in ("none", "percentile"):
        # x = lo + (u + 1) / 2 * (hi - lo)
        x = params["lo"] + (u + 1.0) / 2.0 * (params["hi"] - params["lo"])
    else:
        q = params["quantiles"]
        if len(q["grey"]) == 1:
            x = np.full(u.shape, q["grey"][0])
        else:
            x = np.interp(u, q["level"], q["grey"])  # x = F^-1((u + 1) / 2)
    return x.astype(np.float32)


# --------------------------------------------------------------------------- split


def split_slices(n_slices, val_fraction=0.1, test_fraction=0.1, guard=0, seed=0):
    """Split z slices into train / val / test as contiguous blocks.

    Neighbouring slices of a tomogram are nearly identical, so a random split
    per slice would leak the validation set into training. Here the
    validation and the test slices each form one contiguous block of
    ``round(fraction * n_slices)`` slices, placed at random (seeded) without
    overlap; ``guard`` slices on each side of a held-out block are labelled
    ``"guard"`` and used by no split.

    Parameters
    ----------
    n_slices : int
        Number of slices.
    val_fraction, test_fraction : float
        Held-out fractions, each in [0, 0.5).
    guard : int
        Slices dropped between a held-out block and its neighbours.
    seed : int
        Seed of the block placement.

    Returns
    -------
    ndarray of str, shape (n_slices,)
        ``"train"``, ``"val"``, ``"test"`` or ``"guard"`` per slice.
    """
    n = int(n_slices)
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= f < 0.5:
            raise ValueError(f"split_slices: {name} must be in [0, 0.5), got {f}")
    if guard < 0:
        raise ValueError(f"split_slices: guard must be >= 0, got {guard}")
    n_val, n_test = int(round(val_fraction * n)), int(round(test_fraction * n))
    # room for both blocks, their guards on both sides and one training slice
    needed = n_val + n_test + 2 * guard * ((n_val > 0) + (n_test > 0)) + 1
    if n < needed:
        raise ValueError(
            f"split_slices: {n} slices are too few for {n_val} val + {n_test} test slices "
            f"with {guard} guard slices (need at least {needed})"
        )
    rng = np.random.default_rng(seed)
    blocks = [(name, size) for name, size in (("val", n_val), ("test", n_test)) if size > 0]
    labels = np.full(n, "train", dtype="<U5")
    for _ in range(100_000):
        labels[:] = "train"
        taken = np.zeros(n, bool)  # block or guard
        ok = True
        for name, size in blocks:
            start = int(rng.integers(0, n - size + 1))
            lo, hi = max(0, start - guard), min(n, start + size + guard)
            if taken[lo:hi].any():
                ok = False
                break
            taken[lo:hi] = True
            labels[lo:hi] = "guard"
            labels[start : start + size] = name
        if ok and (labels == "train").any():
            return labels
    raise ValueError(f"split_slices: could not place the held-out blocks in {n} slices")  # pragma: no cover
