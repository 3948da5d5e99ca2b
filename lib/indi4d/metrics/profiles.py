"""Edge profiles: grey values along the normals of particle boundaries, found automatically.

:func:`edge_geometry` finds where the profiles lie from the particle mask alone;
:func:`sample_edge_profiles` reads an image there; :func:`edge_profiles` does
both. :mod:`.sharpness` measures the FWHM on them.
"""

import numpy as np
from scipy import ndimage as ndi

from ._inputs import as_float, broadcast_mask, particle_mask_from


def edge_profiles(image, particles, valid_mask=None, half_length_px=16, step_px=0.25, spacing_px=2.0,
                  smooth_sigma_px=1.5, max_profiles=None, seed=0):
    """Grey-value profiles across particle edges, normal to the boundary, found automatically.

    For each 2D slice: the particle mask is smoothed with a Gaussian of
    ``smooth_sigma_px``; its 0.5 iso-contour (``skimage.measure.find_contours``,
    sub-pixel) is the boundary, sampled every ``spacing_px`` along its length; the
    outward normal is minus the gradient of the smoothed mask. The image is sampled
    along ``p + s·n`` for ``s`` in ``[-half_length_px, +half_length_px]`` with cubic
    splines (``scipy.ndimage.map_coordinates``, order 3). A profile is kept only
    when it is a *clean* edge: it stays inside the image and the valid mask, the
    particle mask is 1 for ``s < -1`` and 0 for ``s > +1`` (one crossing, no
    neighbouring particle or gap within the profile).

    The two halves are :func:`edge_geometry` (where, from the mask alone) and
    :func:`sample_edge_profiles` (the image's values there): to measure several
    images of one sample, find the geometry once and sample each image.

    Parameters
    ----------
    image : ndarray (H, W) or (Z, H, W), real
    particles : ndarray of bool or int, same shape as ``image``
        Particle mask, or labels where non-zero means particle.
    valid_mask : ndarray of bool, optional
        Same shape as ``image`` or (H, W).
    half_length_px : float
        Half-length of each profile, pixels; must exceed ~3 sigma of the blur.
    step_px : float
        Sampling step along the profile, pixels.
    spacing_px : float
        Spacing of the profiles along the boundary, pixels.
    smooth_sigma_px : float
        Smoothing of the mask before the contour and the normals are taken.
    max_profiles : int, optional
        Keep at most this many profiles, drawn at random with ``seed``.
    seed : int

    Returns
    -------
    s_px : ndarray (n_s,) float64
        Signed distance from the boundary, pixels; negative inside the particle.
    profiles : ndarray (n, n_s) float64
        Grey values along each profile, in the image's units.
    points : ndarray (n, 3) float64
        (z, y, x) of each profile's boundary point (z = 0 for a 2D image).
    normals : ndarray (n, 2) float64
        Outward unit normal (dy, dx) of each profile.
    """
    image = as_float(image, "image")
    if image.ndim not in (2, 3):
        raise ValueError(f"edge_profiles: expected a 2D or 3D image, got shape {image.shape}")
    s, points, normals = edge_geometry(particle_mask_from(particles, image.shape), valid_mask,
                                       half_length_px=half_length_px, step_px=step_px, spacing_px=spacing_px,
                                       smooth_sigma_px=smooth_sigma_px, max_profiles=max_profiles, seed=seed)
    return s, sample_edge_profiles(image, s, points, normals), points, normals


def edge_geometry(particles, valid_mask=None, half_length_px=16, step_px=0.25, spacing_px=2.0,
                  smooth_sigma_px=1.5, max_profiles=None, seed=0):
    """Where :func:`edge_profiles` samples: clean particle edges, their boundary points and normals.

    Depends on the particle mask and the valid mask only, not on any image.

    Parameters
    ----------
    particles : ndarray (H, W) or (Z, H, W) of bool or int
        Particle mask, or labels where non-zero means particle.
    valid_mask, half_length_px, step_px, spacing_px, smooth_sigma_px, max_profiles, seed
        As in :func:`edge_profiles`.

    Returns
    -------
    s_px : ndarray (n_s,) float64
    points : ndarray (n, 3) float64
        (z, y, x) of each profile's boundary point.
    normals : ndarray (n, 2) float64
        Outward unit normal (dy, dx).
    """
    from skimage.measure import find_contours

    particles = np.asarray(particles)
    if particles.ndim not in (2, 3):
        raise ValueError(f"edge_geometry: expected a 2D or 3D mask, got shape {particles.shape}")
    part = particle_mask_from(particles, particles.shape)
    valid = broadcast_mask(valid_mask, part.shape, "valid_mask")
    part3, valid3 = (part[None], valid[None]) if part.ndim == 2 else (part, valid)
    n_half = int(round(half_length_px / step_px))
    s = np.arange(-n_half, n_half + 1) * step_px
    points, normals = [], []
    for z in range(part3.shape[0]):
        sm = ndi.gaussian_filter(part3[z].astype(np.float64), smooth_sigma_px)
        gy, gx = np.gradient(sm)
        pts = []
        for contour in find_contours(sm, 0.5):
            if len(contour) < 2:
                continue
            # resample the contour every spacing_px of arc length
            arc = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(contour, axis=0).T))])
            at = np.arange(0.0, arc[-1], spacing_px)
            pts.append(np.stack([np.interp(at, arc, contour[:, 0]), np.interp(at, arc, contour[:, 1])], axis=1))
        if not pts:
            continue
        pts = np.concatenate(pts)
        g = np.stack([ndi.map_coordinates(gy, pts.T, order=1), ndi.map_coordinates(gx, pts.T, order=1)], axis=1)
        norm = np.hypot(g[:, 0], g[:, 1])
        ok = norm > 1e-6
        pts, nrm = pts[ok], -g[ok] / norm[ok, None]  # the mask is 1 inside: outward = −∇mask
        # sample positions p + s·n, shape (n, n_s)
        yy = pts[:, 0, None] + s[None] * nrm[:, 0, None]
        xx = pts[:, 1, None] + s[None] * nrm[:, 1, None]
        h, w = sm.shape
        inside_img = (yy.min(1) >= 0) & (yy.max(1) <= h - 1) & (xx.min(1) >= 0) & (xx.max(1) <= w - 1)
        yi = np.clip(np.rint(yy), 0, h - 1).astype(int)
        xi = np.clip(np.rint(xx), 0, w - 1).astype(int)
        in_valid = valid3[z][yi, xi].all(1)
        lab = part3[z][yi, xi]
        clean = lab[:, s < -1.0].all(1) & ~lab[:, s > 1.0].any(1)
        keep = inside_img & in_valid & clean
        if not keep.any():
            continue
        points.append(np.column_stack([np.full(keep.sum(), z, float), pts[keep]]))
        normals.append(nrm[keep])
    if not points:
        return s, np.zeros((0, 3)), np.zeros((0, 2))
    points, normals = np.concatenate(points), np.concatenate(normals)
    if max_profiles is not None and len(points) > max_profiles:
        pick = np.sort(np.random.default_rng(seed).choice(len(points), size=int(max_profiles), replace=False))
        points, normals = points[pick], normals[pick]
    return s, points, normals


def sample_edge_profiles(image, s_px, points, normals):
    """An image's grey values along the profiles of :func:`edge_geometry` (cubic splines, slice by slice).

    Parameters
    ----------
    image : ndarray (H, W) or (Z, H, W), real
    s_px : ndarray (n_s,)
    points : ndarray (n, 3)
    normals : ndarray (n, 2)

    Returns
    -------
    ndarray (n, n_s) float64
    """
    image = as_float(image, "image")
    vol = image[None] if image.ndim == 2 else image
    s = np.asarray(s_px, float)
    out = np.zeros((len(points), s.size))
    slice_of = points[:, 0].astype(int)
    for z in np.unique(slice_of):
        rows = np.flatnonzero(slice_of == z)
        yy = points[rows, 1, None] + s[None] * normals[rows, 0, None]
        xx = points[rows, 2, None] + s[None] * normals[rows, 1, None]
        # the spline of the whole slice, as in one call for all of its profiles
        out[rows] = ndi.map_coordinates(vol[z], [yy.ravel(), xx.ravel()], order=3,
                                        mode="nearest").reshape(-1, s.size)
    return out
