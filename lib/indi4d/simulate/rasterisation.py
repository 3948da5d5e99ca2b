"""Phase labels of a phantom on a grid, and what is derived from labels.

:func:`rasterise` evaluates a :class:`~indi4d.simulate.phantom.Phantom` exactly
at grid points, optionally seen through a rigid motion; the other functions
turn labels into attenuation, phase fractions and coarser grids.
"""

import math

import numpy as np
from scipy import ndimage as ndi

from ..phases import BINDER, DENSE, PARTICLE, PHASE_NAMES, PORE
from .presets import with_progress


def _field_at(field, spacing, pts):
    """Trilinear interpolation of a coarse field at points (..., 3) in µm."""
    coords = (pts.reshape(-1, 3) / spacing).T
    return ndi.map_coordinates(field, coords, order=1, mode="nearest").reshape(pts.shape[:-1])


def _index_range(axis, lo, hi):
    """Indices of a uniform, increasing 1D axis that fall inside [lo, hi] (a slice)."""
    if len(axis) == 1:
        return slice(0, 1) if lo <= axis[0] <= hi else slice(0, 0)
    d = axis[1] - axis[0]
    i0 = max(0, int(math.ceil((lo - axis[0]) / d)))
    i1 = min(len(axis), int(math.floor((hi - axis[0]) / d)) + 1)
    return slice(i0, max(i0, i1))


def rasterise(phantom, z_um, y_um, x_um, rotation=None, translation_um=None, centre_um=None, slab=8,
              progress=False, desc="rasterise"):
    """Phase labels of a phantom at the points of a grid, optionally moved rigidly.

    The grid points are ``(z_um[i], y_um[j], x_um[k])`` in the scanner frame. With
    a rigid motion the scanner sees the sample moved by ``Φ(p) = c + R (p - c) + t``
    (spam's convention about the centre ``c``), so a grid point ``p`` shows the
    sample at ``Φ⁻¹(p) = c + Rᵀ (p - c - t)``. Points are evaluated exactly (no
    interpolation of labels), slab by slab to bound memory.

    Parameters
    ----------
    phantom : Phantom
    z_um, y_um, x_um : ndarray, shape (Z,), (Y,), (X,)
        Uniformly spaced, increasing point coordinates (µm).
    rotation : ndarray, shape (3, 3), optional
        ``R`` (default identity).
    translation_um : ndarray, shape (3,), optional
        ``t`` in µm (default 0).
    centre_um : ndarray, shape (3,), optional
        ``c`` in µm (default 0).
    slab : int
        z planes per chunk.
    progress : bool
        tqdm bar over slabs.

    Returns
    -------
    labels : ndarray, uint8, shape (Z, Y, X)
        :data:`PORE`, :data:`BINDER`, :data:`PARTICLE`, :data:`DENSE`; 0 outside the sample too.
    inside : ndarray, bool, shape (Z, Y, X)
        True inside the sample cylinder (False: air).
    """
    z_um, y_um, x_um = (np.asarray(a, float) for a in (z_um, y_um, x_um))
    rot = np.eye(3) if rotation is None else np.asarray(rotation, float)
    t = np.zeros(3) if translation_um is None else np.asarray(translation_um, float)
    c = np.zeros(3) if centre_um is None else np.asarray(centre_um, float)
    shape = (len(z_um), len(y_um), len(x_um))
    labels = np.zeros(shape, np.uint8)
    inside = np.zeros(shape, bool)
    cy, cx = phantom.extent_um[1] / 2, phantom.extent_um[2] / 2

    # bounding spheres of the particles in the scanner frame (rigid: radius unchanged)
    thick = phantom.dense_thickness_um if phantom.dense_thickness_um is not None else np.zeros(phantom.n_particles)
    reach = phantom.bounding_radii + thick
    cen_scan = (phantom.centres - c) @ rot.T + c + t
    has_dense = (thick > 0) & np.isfinite(phantom.dense_threshold) & (phantom.dense_field is not None)
    cracks_of = {}
    for ci in np.flatnonzero(phantom.crack_width_um > 0):
        cracks_of.setdefault(int(phantom.crack_particle[ci]), []).append(ci)
    inv_axes = 1.0 / phantom.axes if phantom.n_particles else np.zeros((0, 3))
    req = phantom.equivalent_radii

    starts = range(0, shape[0], slab)
    for z0 in with_progress(starts, progress, desc, weight=lambda z0: min(slab, shape[0] - z0)):
        zs = slice(z0, min(z0 + slab, shape[0]))
        zz = z_um[zs]
        pts = np.empty((len(zz), shape[1], shape[2], 3))
        pts[..., 0] = zz[:, None, None]
        pts[..., 1] = y_um[None, :, None]
        pts[..., 2] = x_um[None, None, :]
        # sample-frame coordinates, row-vector form of c + Rᵀ (p - c - t)
        s = (pts - c - t) @ rot + c
        ins = (s[..., 1] - cy) ** 2 + (s[..., 2] - cx) ** 2 <= phantom.sample_radius_um**2
        lab = np.zeros(ins.shape, np.uint8)
        if phantom.binder_field is not None:
            lab[_field_at(phantom.binder_field, phantom.field_spacing_um, s) > phantom.binder_threshold] = BINDER
        zlo, zhi = zz[0], zz[-1]
        near = np.flatnonzero((cen_scan[:, 0] + reach >= zlo) & (cen_scan[:, 0] - reach <= zhi))
        blocks = []
        for p in near:
            r = reach[p]
            sz = _index_range(zz, cen_scan[p, 0] - r, cen_scan[p, 0] + r)
            sy = _index_range(y_um, cen_scan[p, 1] - r, cen_scan[p, 1] + r)
            sx = _index_range(x_um, cen_scan[p, 2] - r, cen_scan[p, 2] + r)
            if sz.stop <= sz.start or sy.stop <= sy.start or sx.stop <= sx.start:
                continue
            d = s[sz, sy, sx] - phantom.centres[p]
            # normalised radius: q = Σ_k ((d · e_k) / a_k)², surface at q = 1
            rad = np.sqrt(np.sum(((d @ phantom.rotations[p]) * inv_axes[p]) ** 2, axis=-1))
            blocks.append((p, (sz, sy, sx), d, rad))
        for p, sl, d, rad in blocks:  # dense patches on shells first: particles override them
            if has_dense[p]:
                shell = (rad > 1) & (rad <= 1 + thick[p] / req[p])
                if shell.any():
                    patch = _field_at(phantom.dense_field, phantom.field_spacing_um, s[sl]) > phantom.dense_threshold
                    lab[sl][shell & patch] = DENSE
        for p, sl, d, rad in blocks:
            lab[sl][rad <= 1] = PARTICLE
        for p, sl, d, rad in blocks:  # cracks last: thin pore slits cut from the surface inwards
            for ci in cracks_of.get(int(p), ()):
                w = phantom.crack_width_um[ci]
                cut = (
                    (rad <= 1)
                    & (rad > 1 - phantom.crack_depth)
                    & (np.abs(d @ phantom.crack_normal[ci] - phantom.crack_offset_um[ci]) < w / 2)
                    & (d @ phantom.crack_side[ci] > 0)
                )
                lab[sl][cut] = PORE
        lab[~ins] = PORE
        labels[zs] = lab
        inside[zs] = ins
    return labels, inside


def attenuation_of(labels, inside, attenuation_per_um):
    """Attenuation map (1/µm, float32) of phase labels; air outside the sample.

    Parameters
    ----------
    labels : ndarray, uint8
    inside : ndarray, bool, same shape
    attenuation_per_um : dict
        Keys ``"air"`` and :data:`PHASE_NAMES`.
    """
    table = np.array([attenuation_per_um[n] for n in PHASE_NAMES], np.float32)
    mu = table[labels]
    mu[~inside] = attenuation_per_um["air"]
    return mu


def phase_fractions(labels, inside=None):
    """Volume fraction of each phase inside the sample, ``{name: fraction}``."""
    lab = labels[inside] if inside is not None else labels.ravel()
    counts = np.bincount(lab, minlength=len(PHASE_NAMES))[: len(PHASE_NAMES)]
    total = max(1, lab.size)
    return {n: float(k / total) for n, k in zip(PHASE_NAMES, counts)}


def block_mode(labels, factor=2):
    """Most frequent label in each ``factor³`` block (ties go to the lower label).

    Parameters
    ----------
    labels : ndarray, uint8, shape (Z, Y, X), each divisible by ``factor``

    Returns
    -------
    ndarray, uint8, shape (Z/f, Y/f, X/f)
    """
    z, y, x = (n // factor for n in labels.shape)
    blocks = labels.reshape(z, factor, y, factor, x, factor)
    counts = np.stack([np.sum(blocks == k, axis=(1, 3, 5)) for k in range(len(PHASE_NAMES))])
    return np.argmax(counts, axis=0).astype(np.uint8)


def block_mean(volume, factor=2):
    """Mean over ``factor³`` blocks, float32."""
    z, y, x = (n // factor for n in volume.shape)
    return volume.reshape(z, factor, y, factor, x, factor).mean(axis=(1, 3, 5), dtype=np.float64).astype(np.float32)
