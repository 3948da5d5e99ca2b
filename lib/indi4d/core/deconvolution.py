"""Deconvolution of xy slices by a known Gaussian point-spread function (the ``indi-deconv`` targets).

The HQ scan is blurred by its point-spread function (PSF): detector blur,
pixel integration and the FBP filter together, well described by a Gaussian
of std ``σ``. A user knows it either as a number (``sigma_nm``, e.g.
``meta["psf"]["hq"]["sigma_nm"]`` of a simulation, measured on a calibration
disc) or as a measured edge profile (:func:`sigma_from_edge`, an
error-function fit). :func:`wiener_deconvolve` and
:func:`richardson_lucy_deconvolve` undo that blur slice by slice, regularised.

Deconvolution is linear only in linear units (grey values or attenuation):
the pairs are stored equalised (a non-linear map), so
:func:`deconvolve_normalised` maps them back with the stored normalisation,
deconvolves and maps forward again.

Nothing here imports TensorFlow.
"""

import math

import numpy as np
from scipy import ndimage as ndi
from scipy import optimize, special

#: FWHM of a Gaussian over its std: ``2 √(2 ln 2)``.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))

#: The deconvolution methods :func:`deconvolve` knows.
METHODS = ("wiener", "richardson_lucy")

# --------------------------------------------------------------------------- the PSF


def sigma_px(sigma_nm, voxel_nm):
    """A PSF std in pixels: ``σ_px = σ_nm / voxel_nm`` (positive values only)."""
    if not (sigma_nm > 0 and voxel_nm > 0) or not math.isfinite(sigma_nm / voxel_nm):
        raise ValueError(f"PSF sigma ({sigma_nm} nm) and voxel size ({voxel_nm} nm) must be positive and finite")
    return float(sigma_nm) / float(voxel_nm)


def gaussian_psf(sigma, radius=None):
    """A normalised 2D Gaussian kernel.

    Parameters
    ----------
    sigma : float
        Std in pixels (> 0).
    radius : int, optional
        Half-width of the kernel; default ``ceil(4 σ)``.

    Returns
    -------
    ndarray, float64, shape (2 radius + 1, 2 radius + 1)
        ``h(y, x) ∝ exp(-(y² + x²) / (2 σ²))``, summing to 1.
    """
    if not sigma > 0:
        raise ValueError(f"gaussian_psf: sigma must be positive, got {sigma} px")
    r = int(math.ceil(4.0 * sigma)) if radius is None else int(radius)
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-(x**2) / (2.0 * sigma**2))  # separable: h(y, x) = g(y) g(x)
    h = np.outer(g, g)
    return h / h.sum()


def sigma_from_edge(profile, spacing_nm=1.0, positions=None):
    """The Gaussian PSF behind a measured edge profile, by an error-function fit.

    A step blurred by a Gaussian of std ``σ`` is
    ``f(x) = lo + (hi - lo) · ½ erfc((x - x0) / (√2 σ))`` (falling from ``hi``
    to ``lo``; a rising edge has ``hi < lo``). Average many profiles across
    the same edge first: noise biases the fit much less then.

    Parameters
    ----------
    profile : array_like, shape (n,)
        Values across the edge (any linear units), n >= 5.
    spacing_nm : float
        Distance between samples (nm) when ``positions`` is not given.
    positions : array_like, shape (n,), optional
        Sample positions in nm.

    Returns
    -------
    dict
        ``sigma_nm``, ``fwhm_nm`` (line-spread FWHM, ``2 √(2 ln 2) σ``),
        ``edge_nm`` (the 50 % crossing ``x0``), ``lo``, ``hi``.
    """
    y = np.asarray(profile, np.float64).ravel()
    x = (np.arange(y.size) * float(spacing_nm) if positions is None
         else np.asarray(positions, np.float64).ravel())
    if y.size < 5 or x.shape != y.shape or not np.all(np.isfinite(y)) or not np.all(np.isfinite(x)):
        raise ValueError(f"sigma_from_edge: need >= 5 finite samples and as many positions, got {y.size} and {x.size}")
    if np.ptp(y) == 0:
        raise ValueError("sigma_from_edge: the profile is flat, there is no edge to fit")

    def model(xx, lo, hi, x0, sigma):
        return lo + (hi - lo) * 0.5 * special.erfc((xx - x0) / (math.sqrt(2.0) * abs(sigma)))

    k = max(1, y.size // 5)
    lo0, hi0 = np.median(y[-k:]), np.median(y[:k])
    half = np.argmin(np.abs(y - (lo0 + hi0) / 2.0))  # start at the sample nearest the 50 % level
    step = np.median(np.abs(np.diff(x)))
    popt, _ = optimize.curve_fit(model, x, y, p0=(lo0, hi0, x[half], 2.0 * step), maxfev=20000)
    sigma = abs(float(popt[3]))
    return {"sigma_nm": sigma, "fwhm_nm": FWHM_PER_SIGMA * sigma, "edge_nm": float(popt[2]),
            "lo": float(popt[0]), "hi": float(popt[1])}


def gaussian_otf(shape, sigma):
    """Optical transfer function of a Gaussian PSF on an FFT grid.

    The continuous Fourier transform of ``h(x) = exp(-|x|²/(2σ²)) / (2πσ²)``
    is ``H(f) = exp(-2 π² σ² |f|²)`` with ``f`` in cycles per pixel: real,
    positive, ``H(0) = 1`` (the blur keeps the mean).

    Returns
    -------
    ndarray, float64, shape ``shape`` (the layout of ``np.fft.rfft2`` when the last axis is halved)
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-2.0 * math.pi**2 * sigma**2 * (fy**2 + fx**2))


# --------------------------------------------------------------------------- deconvolution


def _as_slices(slices, what):
    a = np.asarray(slices)
    if a.ndim not in (2, 3) or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise ValueError(f"{what}: expected a real (H, W) slice or (n, H, W) stack, got {a.dtype} {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{what}: the slices contain NaN or infinite values")
    return a.astype(np.float64)[None] if a.ndim == 2 else a.astype(np.float64), a.ndim == 2


def _pad(sigma):
    """Reflection padding (pixels) that keeps the FFT's wrap-around away from the slice: 4 σ + 2."""
    return int(math.ceil(4.0 * sigma)) + 2


def wiener_deconvolve(slices, sigma, nsr=1e-2):
    """Wiener deconvolution of each xy slice by a Gaussian PSF.

    With ``Y = FFT(y - ȳ)`` and the OTF ``H`` (:func:`gaussian_otf`), the
    estimate is ``X̂ = H* Y / (|H|² + nsr)``, the linear filter that minimises
    the mean squared error for white noise and signal power spectra of ratio
    ``nsr`` (noise-to-signal). Where ``|H|² ≫ nsr`` it is ``Y / H`` (full
    deconvolution); where ``|H|² ≪ nsr`` it falls to zero (no noise is blown up).
    The slice mean ``ȳ`` is taken out and put back, so the filter's gain at
    zero frequency is exactly 1 (a plain Wiener filter would scale the mean by
    ``1 / (1 + nsr)``). Slices are reflection-padded by ``4 σ + 2`` pixels
    against wrap-around.

    Parameters
    ----------
    slices : ndarray, shape (H, W) or (n, H, W)
        Linear units (grey values or attenuation), not equalised values.
    sigma : float
        PSF std in pixels (:func:`sigma_px`).
    nsr : float
        Regularisation (> 0): smaller is sharper and noisier.

    Returns
    -------
    ndarray, float32, same shape
    """
    if not nsr > 0:
        raise ValueError(f"wiener_deconvolve: nsr must be positive, got {nsr}")
    if not sigma > 0:
        raise ValueError(f"wiener_deconvolve: the PSF sigma must be positive, got {sigma} px")
    y, single = _as_slices(slices, "wiener_deconvolve")
    p = _pad(sigma)
    out = np.empty(y.shape, np.float32)
    for k, s in enumerate(y):
        mean = s.mean()
        padded = np.pad(s - mean, p, mode="reflect")
        h = gaussian_otf(padded.shape, sigma)
        x = np.fft.irfft2(np.fft.rfft2(padded) * h / (h**2 + nsr), s=padded.shape)  # X̂ = H* Y / (|H|² + nsr)
        out[k] = x[p:-p, p:-p] + mean
    return out[0] if single else out


def wiener_noise_gain(sigma, nsr, shape=(256, 256)):
    """How much :func:`wiener_deconvolve` amplifies white noise: output std / input std.

    For white noise the output variance is the input variance times the mean
    over frequencies of ``|G|²``, ``G = H / (H² + nsr)`` (Parseval).

    Returns
    -------
    float
    """
    h = gaussian_otf(shape, sigma)
    g2 = (h / (h**2 + nsr)) ** 2
    # rfft layout: columns 1..W/2-1 stand for two frequencies each (f and -f)
    w = np.full(h.shape[1], 2.0)
    w[0] = 1.0
    if shape[1] % 2 == 0:
        w[-1] = 1.0
    return float(math.sqrt(np.sum(g2 * w[None, :]) / (shape[0] * shape[1])))


def richardson_lucy_deconvolve(slices, sigma, num_iter=20):
    """Richardson-Lucy deconvolution of each xy slice by a Gaussian PSF (``skimage.restoration.richardson_lucy``).

    The iteration ``x ← x · (h ⋆ (y / (h * x)))`` is the maximum-likelihood
    estimate under Poisson noise; it needs positive data, so each slice is
    shifted to a minimum of 1 % of its range above zero and scaled to at most 1
    first (undone after). Its regularisation is the number of iterations:
    fewer is smoother. Slices are reflection-padded against the boundary.

    Parameters
    ----------
    slices : ndarray, shape (H, W) or (n, H, W)
        Linear units.
    sigma : float
        PSF std in pixels.
    num_iter : int
        Iterations (>= 1).

    Returns
    -------
    ndarray, float32, same shape
    """
    from skimage.restoration import richardson_lucy

    if int(num_iter) < 1:
        raise ValueError(f"richardson_lucy_deconvolve: num_iter must be >= 1, got {num_iter}")
    if not sigma > 0:
        raise ValueError(f"richardson_lucy_deconvolve: the PSF sigma must be positive, got {sigma} px")
    y, single = _as_slices(slices, "richardson_lucy_deconvolve")
    psf = gaussian_psf(sigma)
    p = _pad(sigma)
    out = np.empty(y.shape, np.float32)
    for k, s in enumerate(y):
        span = max(float(np.ptp(s)), 1e-12)
        shift = s.min() - 0.01 * span  # positive data: s - shift >= 1 % of the range
        scale = s.max() - shift
        padded = np.pad((s - shift) / scale, p, mode="reflect")
        x = richardson_lucy(padded, psf, num_iter=int(num_iter), clip=False)
        out[k] = x[p:-p, p:-p] * scale + shift
    return out[0] if single else out


def deconvolve(slices, sigma, method="wiener", nsr=1e-2, num_iter=20):
    """Deconvolve xy slices by a Gaussian PSF with :func:`wiener_deconvolve` or :func:`richardson_lucy_deconvolve`."""
    if method == "wiener":
        return wiener_deconvolve(slices, sigma, nsr)
    if method == "richardson_lucy":
        return richardson_lucy_deconvolve(slices, sigma, num_iter)
    raise ValueError(f"deconvolve: unknown method {method!r}; expected one of {METHODS}")


def fill_outside(slices, mask):
    """Replace pixels outside a mask by the nearest pixel inside (so a deconvolution sees no artificial step).

    Parameters
    ----------
    slices : ndarray, shape (n, H, W)
    mask : ndarray of bool, shape (H, W)

    Returns
    -------
    ndarray, same dtype and shape
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("fill_outside: the mask selects no pixel")
    if mask.all():
        return np.array(slices)
    _, (iy, ix) = ndi.distance_transform_edt(~mask, return_indices=True)
    return np.asarray(slices)[..., iy, ix]


def deconvolve_normalised(slices, normalisation, sigma, mask=None, method="wiener", nsr=1e-2, num_iter=20):
    """Deconvolve normalised slices ([-1, 1], as ``pairs.npz`` stores them) in linear grey units.

    The equalisation of the pairs is non-linear, and a blur is linear only in
    grey values (or attenuation), so: ``x = denormalise(u)``, fill outside the
    mask with the nearest inside value, deconvolve ``x``, ``u' = normalise(x)``
    (values beyond the fitted grey range clip to ±1), -1 outside the mask again.

    Parameters
    ----------
    slices : ndarray, float32, shape (n, H, W)
        Normalised slices in [-1, 1].
    normalisation : dict
        Their parameters (``normalisation["hq"]`` of a pairs folder).
    sigma : float
        PSF std in pixels.
    mask : ndarray of bool, shape (H, W), optional
        Reconstruction disc; outside it the result is -1.
    method, nsr, num_iter
        See :func:`deconvolve`.

    Returns
    -------
    ndarray, float32, shape (n, H, W), in [-1, 1]
    """
    from .preprocess import denormalise, normalise

    grey = denormalise(slices, normalisation)
    if mask is not None:
        grey = fill_outside(grey, mask)
    out = normalise(deconvolve(grey, sigma, method=method, nsr=nsr, num_iter=num_iter), normalisation)
    if mask is not None:
        out[:, ~np.asarray(mask, bool)] = -1.0
    return out
