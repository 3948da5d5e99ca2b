"""What a scan resolves: edge sharpness, noise, contrast and rings of a calibration object.

:func:`acquisition_characteristics` scans a disc-in-a-cylinder with each of a
preset's acquisitions and measures it with :func:`disc_edge_fwhm` (edge FWHM
from an error-function fit of the radial profile) and :func:`ring_index`.
"""

import math

import numpy as np
from scipy import optimize, special

from ..presets import resolve
from .acquisition import acquire_slices
from .presets import PRESETS, stream_rng

# --------------------------------------------------------------------------- measurements


def radial_profile(image, centre_vox, bin_width=0.25, r_max=None):
    """Azimuthal mean of an image (or a stack, pooled over z) in radius bins.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    centre_vox : (y, x)
        Centre in pixel coordinates (pixel ``i`` has its centre at ``i``).
    bin_width : float
        Bin width in pixels.

    Returns
    -------
    r : ndarray, bin centres (pixels); mean : ndarray; count : ndarray
    """
    img = np.asarray(image, np.float64)
    if img.ndim == 2:
        img = img[None]
    yy, xx = np.indices(img.shape[1:])
    r = np.hypot(yy - centre_vox[0], xx - centre_vox[1])
    r_max = r.max() if r_max is None else r_max
    idx = np.floor(r / bin_width).astype(int)
    nb = int(r_max / bin_width) + 1
    sel = idx < nb
    npix = np.bincount(idx[sel], minlength=nb)  # pixels per bin in one slice
    vals = np.bincount(idx[sel], weights=img[:, sel].sum(axis=0), minlength=nb)
    count = npix * img.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = vals / count
    return (np.arange(nb) + 0.5) * bin_width, mean, count


def disc_edge_fwhm(image, voxel_size_nm, centre_vox, radius_vox, half_width_vox=None):
    """Edge sharpness of a reconstructed uniform disc, from an error-function fit.

    The azimuthally averaged radial profile (0.25 px bins, pooled over slices)
    around the edge is fitted with ``f(r) = lo + (hi - lo) · ½ erfc((r - R) / (√2 σ))``,
    the edge of a disc blurred by a Gaussian of std ``σ``; the line-spread
    FWHM is ``2 √(2 ln 2) σ``. Averaging thousands of pixels first keeps noise
    from biasing the fit.

    Parameters
    ----------
    image : ndarray, shape (Y, X) or (Z, Y, X)
    voxel_size_nm : float
    centre_vox : (y, x)
        Disc centre in pixel coordinates.
    radius_vox : float
        Nominal disc radius (pixels).
    half_width_vox : float, optional
        Fit window ``R ± half_width`` (default ``min(0.6 R, 12)``).

    Returns
    -------
    dict
        ``fwhm_nm``, ``sigma_nm``, ``radius_vox`` (fitted), ``inside``, ``outside`` (levels).
    """
    w = half_width_vox if half_width_vox is not None else min(0.6 * radius_vox, 12.0)
    r, prof, count = radial_profile(image, centre_vox, r_max=radius_vox + w)
    sel = (r >= radius_vox - w) & (count > 0)
    r, prof = r[sel], prof[sel]

    def model(rr, lo, hi, r0, sigma):
        return lo + (hi - lo) * 0.5 * special.erfc((rr - r0) / (math.sqrt(2) * abs(sigma)))

    p0 = (np.median(prof[-5:]), np.median(prof[:5]), radius_vox, 1.0)
    popt, _ = optimize.curve_fit(model, r, prof, p0=p0, maxfev=20000)
    sigma = abs(popt[3])
    return {
        "fwhm_nm": float(2 * math.sqrt(2 * math.log(2)) * sigma * voxel_size_nm),
        "sigma_nm": float(sigma * voxel_size_nm),
        "radius_vox": float(popt[2]),
        "inside": float(popt[1]),
        "outside": float(popt[0]),
    }


def ring_index(image, centre_vox, r_min_vox, r_max_vox):
    """Strength of ring artefacts in a flat region: std of the azimuthal mean over 1-px radius bins.

    Rings are constant along each circle around the rotation axis, so the
    azimuthal mean keeps them and averages the noise away.

    Returns
    -------
    float, in the image's units
    """
    if not 0 <= r_min_vox < r_max_vox:
        raise ValueError(f"ring_index: need 0 <= r_min < r_max, got {r_min_vox} and {r_max_vox} px")
    r, prof, count = radial_profile(image, centre_vox, bin_width=1.0, r_max=r_max_vox)
    sel = (r >= r_min_vox) & (r <= r_max_vox) & (count > 0)
    return float(np.std(prof[sel]))


def calibration_disc(width, radius_vox, mu_in, outer_radius_vox=None, mu_out=0.0, n_slices=6, z_margin=0,
                     bin_factor=2):
    """A z-invariant disc (optionally in a wider cylinder) on a scan's projection grid.

    Pixel ``j`` of the scan is fine pixel ``b·j``; the disc is centred on the
    scan's rotation axis, scan pixel ``M // 2``. Each fine pixel holds the
    covered area fraction (4×4 supersampling) for a fair partial-volume edge.

    Parameters
    ----------
    width : int
        Scan width ``M`` in pixels (even).
    radius_vox : float
        Disc radius, scan pixels.
    mu_in : float
        Attenuation inside the disc, 1/µm.
    outer_radius_vox : float, optional
        Radius of a surrounding cylinder of attenuation ``mu_out``.
    n_slices, z_margin : int
        Slices to reconstruct and extra slices at each end (see :func:`acquire_slices`).
    bin_factor : int
        Fine pixels per scan pixel.

    Returns
    -------
    mu : ndarray, float32, shape (n_slices + 2 z_margin, b M, b M)
    centre_vox : (y, x) in scan pixels
    """
    m = int(width)
    n = m * bin_factor
    ss = 4
    f = (np.arange(n * ss) + 0.5) / ss - 0.5  # fine pixel coordinates of the supersamples
    rr = np.hypot(f[:, None] - n // 2, f[None, :] - n // 2) / bin_factor  # in scan pixels
    img = np.where(rr <= radius_vox, mu_in, 0.0)
    if outer_radius_vox is not None:
        img = np.where((rr > radius_vox) & (rr <= outer_radius_vox), mu_out, img)
    img = img.reshape(n, ss, n, ss).mean(axis=(1, 3)).astype(np.float32)
    yy, xx = np.ogrid[:n, :n]
    img[(yy - n // 2) ** 2 + (xx - n // 2) ** 2 > (n // 2) ** 2] = 0.0
    return np.repeat(img[None], n_slices + 2 * z_margin, axis=0), (m // 2, m // 2)


def _calibration_scan(p, which, seed, n_slices):
    """Scan the calibration object with acquisition ``which`` of a resolved preset ``p``.

    A binder-like cylinder filling the reconstruction disc (at least 96 pixels
    across) with a particle-like disc of 40 % of its radius in the middle.

    Returns
    -------
    rec : ndarray, float32, shape (n_slices, W, W)
        Reconstruction, 1/µm.
    centre : (y, x); r_in, r_out : float
        Disc centre and the radii of the particle disc and the cylinder, pixels.
    """
    att = p["attenuation_per_um"]
    voxel = p[f"{which}_voxel_nm"]
    # at least 96 px across so that the edge, a flat core and a flat ring all fit beside the blur
    width = max(96, int(p["lq_shape"][1]))
    r_out = width / 2 - 2
    r_in = 0.4 * r_out
    # the object does not vary along z, so the z blur needs no margin slices
    mu, centre = calibration_disc(width, r_in, att["particle"], r_out, att["binder"], n_slices)
    rec = acquire_slices(mu, voxel, rings=p["rings"], seed=int(stream_rng(seed, which, 99).integers(2**31)), **p[which])
    return rec, centre, r_in, r_out


def measured_psf(preset="default", seed=0, which="hq", n_slices=6, **overrides):
    """The point-spread function of one acquisition, measured as a user would: the edge of a calibration disc.

    The calibration object of :func:`acquisition_characteristics` is scanned
    with the preset's ``which`` acquisition (its detector blur, pixel
    integration, FBP filter, noise and rings) and its particle edge is fitted
    with an error function (:func:`disc_edge_fwhm`): the Gaussian that best
    describes the whole scan's blur, which is what a deconvolution needs.

    Parameters
    ----------
    preset : str
    seed : int
        Seed of the calibration scan (its own stream; the same as
        :func:`acquisition_characteristics` uses, so both agree).
    which : {"lq", "hq"}
    n_slices : int
        Slices of the calibration scan (the profile is pooled over them).

    Returns
    -------
    dict
        ``sigma_nm`` (Gaussian std), ``fwhm_nm`` (``2 √(2 ln 2) σ``),
        ``detector_blur_sigma_nm`` (the preset's detector blur alone, for
        comparison), ``voxel_nm`` and ``source`` (how it was measured).
    """
    if which not in ("lq", "hq"):
        raise ValueError(f"measured_psf: which must be 'lq' or 'hq', got {which!r}")
    p = resolve(PRESETS, preset, **overrides)
    rec, centre, r_in, _ = _calibration_scan(p, which, seed, n_slices)
    edge = disc_edge_fwhm(rec, p[f"{which}_voxel_nm"], centre, r_in)
    return {"sigma_nm": edge["sigma_nm"], "fwhm_nm": edge["fwhm_nm"],
            "detector_blur_sigma_nm": float(p[which]["blur_sigma_nm"]), "voxel_nm": float(p[f"{which}_voxel_nm"]),
            "source": (f"error-function fit of the edge of a calibration disc ({n_slices} slices, particle in binder) "
                       f"scanned with the {which.upper()} acquisition (indi4d.simulate.measured_psf)")}


def acquisition_characteristics(preset="default", seed=0, n_slices=6, **overrides):
    """Measure what each scan of a preset resolves: edge FWHM, noise, CNR, rings.

    Each scan (LQ, HQ) images a calibration object as wide as the preset's
    scans (at least 96 pixels): a binder-like cylinder filling the
    reconstruction disc with a particle-like disc of 40 % of its radius in the
    middle. The particle edge gives the
    FWHM (:func:`disc_edge_fwhm`); the noise std is taken in the flat core of
    the particle disc and in the binder ring, the CNR is the particle-binder
    contrast over the binder noise.

    Returns
    -------
    dict
        ``{"lq": {...}, "hq": {...}}`` with ``fwhm_nm``, ``noise_std_per_um``,
        ``noise_std_grey``, ``cnr``, ``ring_index_per_um``, ``dose``, ``blur_sigma_nm``.
    """
    p = resolve(PRESETS, preset, **overrides)
    out = {}
    for which, voxel in (("lq", p["lq_voxel_nm"]), ("hq", p["hq_voxel_nm"])):
        acq = p[which]
        rec, centre, r_in, r_out = _calibration_scan(p, which, seed, n_slices)
        edge = disc_edge_fwhm(rec, voxel, centre, r_in)
        yy, xx = np.indices(rec.shape[1:])
        rr = np.hypot(yy - centre[0], xx - centre[1])
        blur_px = 3 * acq["blur_sigma_nm"] / voxel + 2
        core = rr < r_in - blur_px
        ring = (rr > r_in + blur_px) & (rr < r_out - blur_px)
        std_b = float(rec[:, ring].std())
        out[which] = {
            "fwhm_nm": edge["fwhm_nm"],
            "noise_std_per_um": std_b,
            "noise_std_core_per_um": float(rec[:, core].std()),
            "noise_std_grey": std_b * p["grey_per_inv_um"],
            "cnr": float(abs(rec[:, core].mean() - rec[:, ring].mean()) / std_b),
            "ring_index_per_um": ring_index(rec, centre, 2, r_in - blur_px),
            "dose": acq["dose"],
            "blur_sigma_nm": acq["blur_sigma_nm"],
            "voxel_nm": voxel,
        }
    return out
