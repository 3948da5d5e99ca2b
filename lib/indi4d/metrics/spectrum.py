"""Radial power spectra: how much structure (or noise) an image holds at each spatial frequency, against the truth's."""

import numpy as np

from ._inputs import as_float, broadcast_mask


def radial_power_spectrum(image, pixel_size_nm, mask=None, n_bins=None):
    """Azimuthally averaged power spectrum of a slice or a stack of slices, frequency in 1/µm.

    Each slice has the mean inside ``mask`` removed, is multiplied by the mask
    and a separable Hann window (so the disc's rim and the image border do not
    leak power into every frequency), and its power ``|FFT|² / Σ w²`` is
    averaged over rings of radial frequency ``|k|`` and over slices. With this
    normalisation white noise of variance σ² has a flat spectrum of height σ²
    (per unit of ``pixel²``).

    Parameters
    ----------
    image : ndarray (H, W) or (n, H, W), real
    pixel_size_nm : float
    mask : ndarray of bool, optional
        (H, W) or the image's shape; default everything.
    n_bins : int, optional
        Rings from 0 to the Nyquist frequency; default ``min(H, W) // 2``
        (one ring per frequency step ``1 / (N Δx)``).

    Returns
    -------
    freq_per_um : ndarray (n_bins,) float64
        Centre of each ring, cycles per µm (Nyquist = ``1000 / (2 pixel_size_nm)``).
    power : ndarray (n_bins,) float64
        Mean power in each ring (image units² · pixel²); NaN for an empty ring.
    """
    img = as_float(image, "image")
    if img.ndim == 2:
        img = img[None]
    if img.ndim != 3:
        raise ValueError(f"radial_power_spectrum: expected (H, W) or (n, H, W), got shape {img.shape}")
    if not pixel_size_nm > 0:
        raise ValueError(f"radial_power_spectrum: pixel_size_nm must be > 0, got {pixel_size_nm}")
    m = broadcast_mask(mask, img.shape).astype(np.float64)
    n, h, w = img.shape
    hann = np.outer(np.hanning(h), np.hanning(w))
    weights = m * hann  # (n, H, W)
    mean = (img * m).sum(axis=(1, 2)) / np.maximum(m.sum(axis=(1, 2)), 1.0)
    x = (img - mean[:, None, None]) * weights
    power2d = np.abs(np.fft.fft2(x)) ** 2 / np.maximum((weights**2).sum(axis=(1, 2)), 1e-12)[:, None, None]
    fy, fx = np.fft.fftfreq(h), np.fft.fftfreq(w)  # cycles per pixel
    k = np.hypot(fy[:, None], fx[None, :])
    n_bins = int(n_bins or min(h, w) // 2)
    edges = np.linspace(0.0, 0.5, n_bins + 1)
    ring = np.digitize(k, edges) - 1  # ring index of every frequency; >= n_bins beyond Nyquist
    inside = (ring >= 0) & (ring < n_bins)
    counts = np.bincount(ring[inside], minlength=n_bins)
    total = np.bincount(ring[inside], weights=power2d.mean(axis=0)[inside], minlength=n_bins)
    power = np.where(counts > 0, total / np.maximum(counts, 1), np.nan)
    freq = 0.5 * (edges[:-1] + edges[1:]) * 1000.0 / pixel_size_nm  # cycles/pixel -> cycles/µm
    return freq, power


def power_ratio(image, truth, pixel_size_nm, mask=None, n_bins=None):
    """Radial power spectrum of ``image`` over that of ``truth``, ring by ring.

    1 where the image holds the truth's power at that frequency; < 1 where it
    is smoothed away (blur); > 1 where it adds power (noise, ringing,
    invented texture). Compare images in the truth's units (or the ratio's
    level carries their grey-scale gain squared).

    Returns
    -------
    freq_per_um : ndarray (n_bins,)
    ratio : ndarray (n_bins,)
        NaN where the truth has no power.
    """
    freq, p = radial_power_spectrum(image, pixel_size_nm, mask, n_bins)
    _, q = radial_power_spectrum(truth, pixel_size_nm, mask, n_bins)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(q > 0, p / q, np.nan)
    return freq, ratio


def band_mean(freq_per_um, values, low_per_um, high_per_um):
    """Mean of ``values`` over the rings with ``low <= f < high`` (NaN rings ignored; NaN when none)."""
    f = np.asarray(freq_per_um)
    v = np.asarray(values, np.float64)
    sel = (f >= low_per_um) & (f < high_per_um) & np.isfinite(v)
    return float(v[sel].mean()) if sel.any() else float("nan")
