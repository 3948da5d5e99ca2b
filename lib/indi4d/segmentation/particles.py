"""Particles of a phase-label volume: the solid split by a distance-transform watershed, and their envelopes.

Split out of :mod:`indi4d.segmentation.descriptors` (which re-exports every
name): the definitions are stated there. Everything here works on boolean or
label volumes (z, y, x) in voxels; no physical units.
"""

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
from skimage.morphology import reconstruction
from skimage.segmentation import watershed

from ..phases import DENSE, PARTICLE, PORE

#: Defaults of :func:`indi4d.segmentation.describe` (voxels of the label volume).
DEFAULTS = {"min_distance_vox": 3, "min_particle_vox": 8, "merge_depth_vox": 1.0, "closing_vox": 3, "smooth_vox": 0.7}


def solid_mask(labels):
    """Solid = particle ∪ dense; bool, the shape of ``labels``."""
    return np.isin(labels, (PARTICLE, DENSE))


#: Up to this radius (voxels) :func:`ball_closing` uses a ball footprint (binary dilation and erosion),
#: above it two distance transforms; the results are the same, the footprint is ~3x faster at r = 3.
FOOTPRINT_MAX_RADIUS = 4.0


def ball_footprint(radius_vox, ndim=3):
    """The digital ball ``|offset| <= r`` (bool, side ``2 floor(r) + 1``)."""
    k = int(np.floor(radius_vox))
    offsets = np.indices((2 * k + 1,) * ndim) - k
    return (offsets**2).sum(axis=0) <= float(radius_vox) ** 2


def ball_closing(mask, radius_vox):
    """Morphological closing of ``mask`` by a Euclidean ball of radius ``r`` voxels.

    ``dilated = d(x, mask) <= r`` and ``closed = d(x, not dilated) > r``:
    computed with a ball footprint (:func:`scipy.ndimage.binary_dilation` /
    :func:`~scipy.ndimage.binary_erosion`) up to :data:`FOOTPRINT_MAX_RADIUS`,
    through two distance transforms (:func:`scipy.ndimage.distance_transform_edt`)
    above it; both give the same set. The array is padded by ``r + 1`` so
    nothing leaks across its edges, and the erosion, like the distance
    transform, sees nothing but the padded array.

    Parameters
    ----------
    mask : ndarray, bool, (Z, Y, X)
    radius_vox : float

    Returns
    -------
    ndarray, bool, the shape of ``mask``
    """
    r = float(radius_vox)
    if r <= 0 or not np.any(mask):
        return np.asarray(mask, bool).copy()
    pad = int(np.ceil(r)) + 1
    m = np.pad(np.asarray(mask, bool), pad)
    if r <= FOOTPRINT_MAX_RADIUS:
        ball = ball_footprint(r, m.ndim)
        dilated = ndi.binary_dilation(m, ball)  # within r of the mask
        closed = ndi.binary_erosion(dilated, ball, border_value=1)  # no non-dilated voxel within r
    else:
        dilated = ndi.distance_transform_edt(~m) <= r  # within r of the mask
        closed = ndi.distance_transform_edt(dilated) > r  # farther than r from outside the dilation
    return closed[(slice(pad, -pad),) * m.ndim] | np.asarray(mask, bool)


def fill_holes(mask):
    """``mask`` with its holes filled: background components that do not touch the array's faces.

    The same result as :func:`scipy.ndimage.binary_fill_holes` (face
    connectivity), from one labelling of the background instead of an
    iterated dilation: much faster on large boxes.
    """
    mask = np.asarray(mask, bool)
    background, n = ndi.label(~mask)
    if n == 0:
        return mask.copy()
    faces = np.concatenate([np.take(background, i, axis=a).ravel() for a in range(mask.ndim) for i in (0, -1)])
    open_to_outside = np.zeros(n + 1, bool)
    open_to_outside[faces] = True
    open_to_outside[0] = True  # the mask itself
    return mask | ~open_to_outside[background]


def separate_particles(labels, min_distance_vox=DEFAULTS["min_distance_vox"],
                       min_particle_vox=DEFAULTS["min_particle_vox"], merge_depth_vox=DEFAULTS["merge_depth_vox"],
                       closing_vox=DEFAULTS["closing_vox"]):
    """Split the solid into particles by a distance-transform watershed.

    The watershed runs on the solid closed by a ball of ``closing_vox``
    (:func:`ball_closing`), so a crack does not cut its particle in two; the
    particles returned are the solid voxels of each watershed region.

    Markers are the maxima of the distance to the non-solid
    (:func:`skimage.feature.peak_local_max`); maxima joined by a ridge that
    dips less than ``merge_depth_vox`` below them (one connected component of
    the h-dome of the distance, :func:`skimage.morphology.reconstruction`)
    become one marker, so an elongated particle with a rippled ridge stays one
    particle, while two balls meeting at a neck narrower than their radii
    minus ``merge_depth_vox`` are split.

    Parameters
    ----------
    labels : ndarray, (Z, Y, X), uint8 phases
    min_distance_vox : int
        Smallest distance between two maxima, voxels.
    min_particle_vox : int
        Regions with fewer voxels are removed (set to 0).
    merge_depth_vox : float
        h of the h-dome, voxels (0: every maximum is its own marker).
    closing_vox : float
        Radius of the closing that bridges cracks before the watershed (0: none).

    Returns
    -------
    ndarray, (Z, Y, X), int32
        0 outside particles, 1..n one label per particle (consecutive).
    """
    solid = solid_mask(labels)
    if not solid.any():
        return np.zeros(solid.shape, np.int32)
    bridged = ball_closing(solid, closing_vox)
    distance = ndi.distance_transform_edt(bridged)
    components, _ = ndi.label(bridged)
    peaks = peak_local_max(distance, min_distance=int(min_distance_vox), labels=components, exclude_border=False)
    peak_mask = np.zeros(solid.shape, bool)
    peak_mask[tuple(peaks.T)] = True
    if merge_depth_vox > 0:
        # h-dome: distance - (reconstruction by dilation of distance - h under distance), > 0 near every top
        dome = distance - reconstruction(distance - merge_depth_vox, distance, method="dilation")
        tops, _ = ndi.label(dome > 1e-6, structure=np.ones((3, 3, 3)))
        markers = np.where(peak_mask, tops, 0)
    else:
        markers, _ = ndi.label(peak_mask, structure=np.ones((3, 3, 3)))  # touching maxima of one plateau: one
    particles = watershed(-distance, markers, mask=bridged)
    particles[~solid] = 0
    sizes = np.bincount(particles.ravel())
    small = sizes < int(min_particle_vox)
    small[0] = False
    particles[small[particles]] = 0
    keep = np.unique(particles[particles > 0])
    lookup = np.zeros(particles.max() + 1, np.int32)
    lookup[keep] = np.arange(1, len(keep) + 1)
    return lookup[particles]


def crack_mask(labels, particles, closing_vox=DEFAULTS["closing_vox"]):
    """Crack voxels and particle envelopes (see the module's definition).

    Parameters
    ----------
    labels : ndarray, (Z, Y, X), uint8 phases
    particles : ndarray, (Z, Y, X), int
        From :func:`separate_particles`.
    closing_vox : int
        Radius of the closing ball: cracks narrower than ~2 radii are closed.

    Returns
    -------
    cracks, envelope : ndarray, (Z, Y, X), bool
    """
    envelope = np.zeros(labels.shape, bool)
    r = int(np.ceil(closing_vox))
    for index, box in enumerate(ndi.find_objects(particles), start=1):
        if box is None:
            continue
        grown = tuple(slice(max(s.start - r, 0), min(s.stop + r, n)) for s, n in zip(box, labels.shape))
        own = fill_holes(ball_closing(particles[grown] == index, closing_vox))
        envelope[grown] |= own
    return envelope & (labels == PORE), envelope
