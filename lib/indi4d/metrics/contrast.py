"""Contrast-to-noise ratio and the two-phase (particle / background) segmentation it is measured on."""

import math

import numpy as np
from scipy import ndimage as ndi

from ..phases import PARTICLE
from ._inputs import as_float, broadcast_mask
from .hallucination import large_components


def cnr(image, particle_mask, background_mask):
    """Contrast-to-noise ratio ``|mean(particles) − mean(background)| / std(background)``.

    Parameters
    ----------
    image : ndarray, real
    particle_mask, background_mask : ndarray of bool, same shape as ``image``
        The two classes of a segmentation (:func:`two_phase_masks`); the standard
        deviation is the population one (ddof=0).

    Returns
    -------
    float
        Dimensionless; ``inf`` for a noise-free background with contrast.
    """
    image = as_float(image, "image")
    p = broadcast_mask(particle_mask, image.shape, "particle_mask")
    b = broadcast_mask(background_mask, image.shape, "background_mask")
    if p.sum() < 1 or b.sum() < 2:
        raise ValueError(f"cnr: need particle and background pixels, got {int(p.sum())} and {int(b.sum())}")
    contrast = abs(image[p].mean() - image[b].mean())
    noise = image[b].std()
    if noise == 0:
        return math.inf if contrast > 0 else math.nan
    return float(contrast / noise)


def two_phase_masks(image, labels=None, valid_mask=None, particle_phase=PARTICLE, margin_px=2, particles_bright=True,
                    smooth_sigma_px=2.0, min_size_px=9, otsu_classes=2):
    """Particle and background masks for CNR and edge analysis.

    With ``labels`` (the truth): particles are ``labels ∈ particle_phase``, the
    background is every other label. Without: the image is smoothed in-plane by a
    Gaussian of ``smooth_sigma_px`` (so pixel noise does not speckle the mask),
    thresholded at Otsu's threshold over the valid mask (particles = the bright
    class when ``particles_bright``; with ``otsu_classes > 2``, multi-Otsu and the
    brightest — or darkest — class, for images with several background phases), and 4-connected specks of either class
    smaller than ``min_size_px`` pixels are flipped to the other class. Both masks
    are then eroded in-plane by ``margin_px`` so that the blurred rim between them
    counts as neither, and restricted to the valid mask.

    Parameters
    ----------
    image : ndarray (H, W) or (Z, H, W), real
    labels : ndarray of int, same shape, optional
    valid_mask : ndarray of bool, optional
        Same shape or (H, W).
    particle_phase : int or sequence of int
    margin_px : int
        Erosion, pixels.
    particles_bright : bool
    smooth_sigma_px : float
        Smoothing before Otsu, pixels (unused with labels).
    min_size_px : int
        Smallest component kept by the Otsu segmentation, pixels.
    otsu_classes : int
        Number of grey classes of the Otsu segmentation (2 = plain Otsu).

    Returns
    -------
    particles, background : ndarray of bool, shape of ``image``
        Eroded masks, for :func:`cnr`.
    raw_particles : ndarray of bool, shape of ``image``
        The particle segmentation before erosion, for :func:`fwhm_edge_resolution`.
    """
    from skimage.filters import threshold_multiotsu, threshold_otsu

    image = as_float(image, "image")
    if image.ndim not in (2, 3):
        raise ValueError(f"two_phase_masks: expected a 2D or 3D image, got shape {image.shape}")
    valid = broadcast_mask(valid_mask, image.shape, "valid_mask")
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != image.shape or not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels: expected integer labels of shape {image.shape}, got {labels.dtype} {labels.shape}")
        part = np.isin(labels, np.atleast_1d(particle_phase))
    else:
        sig = (0.0, smooth_sigma_px, smooth_sigma_px)[-image.ndim:]
        sm = ndi.gaussian_filter(image, sig) if smooth_sigma_px > 0 else image
        if not valid.any():
            raise ValueError("two_phase_masks: the valid mask selects no pixel")
        if otsu_classes > 2:
            ts = threshold_multiotsu(sm[valid], classes=int(otsu_classes))
            part = sm > ts[-1] if particles_bright else sm <= ts[0]
        else:
            t = threshold_otsu(sm[valid])
            part = sm > t if particles_bright else sm <= t
        planes = part[None] if image.ndim == 2 else part
        for z in range(planes.shape[0]):
            # drop particle specks, then fill background specks (holes)
            planes[z] = large_components(planes[z], min_size_px)[0] > 0
            planes[z] = ~(large_components(~planes[z], min_size_px)[0] > 0)
    back = ~part
    if margin_px > 0:
        # erode in-plane only: z slices of a volume are treated independently
        st = ndi.generate_binary_structure(2, 1)
        st = st[None] if image.ndim == 3 else st
        pe = ndi.binary_erosion(part, st, iterations=margin_px, border_value=1)
        be = ndi.binary_erosion(back, st, iterations=margin_px, border_value=1)
    else:
        pe, be = part, back
    return pe & valid, be & valid, part
