"""Particles of a phase-label volume: the solid split by a distance-transform watershed, and their envelopes.

Split out of :mod:`indi4d.segmentation.descriptors` (which re-exports every
name): the definitions are stated there. Everything here works on boolean or
label volumes (z, y, x) in voxels; no physical units.
"""

import numpy as np
from scipy import ndimage as ndi
from skimage.feature import peak_local_max
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
    markers, n_markers = ndi.label(peak_mask, structure=np.ones((3,) * solid.ndim))  # a plateau's maxima: one
    if merge_depth_vox > 0 and n_markers:  # markers whose tops share an h-dome component: one particle
        markers = dome_markers(distance, markers, bridged, merge_depth_vox)
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


def region_saddles(regions, values):
    """Saddle height between every pair of touching regions: ``max min(values[a], values[b])`` over neighbours.

    Neighbours are the 26 of a voxel (the connectivity of the h-dome's
    components); region 0 (background) is left out.

    Parameters
    ----------
    regions : ndarray, int, (Z, Y, X)
    values : ndarray, float, same shape

    Returns
    -------
    pairs : ndarray, int64, (E, 2)
        ``i < j``.
    saddles : ndarray, float64, (E,)
    """
    ndim = regions.ndim
    found_i, found_j, found_s = [], [], []
    offsets = [o for o in np.ndindex((3,) * ndim) if o > (1,) * ndim]  # half of the 26 neighbours
    for offset in offsets:
        a_sl = tuple(slice(max(0, 1 - o), regions.shape[d] - max(0, o - 1)) for d, o in enumerate(offset))
        b_sl = tuple(slice(max(0, o - 1), regions.shape[d] - max(0, 1 - o)) for d, o in enumerate(offset))
        a, b = regions[a_sl], regions[b_sl]
        touch = (a != b) & (a > 0) & (b > 0)
        if not touch.any():
            continue
        ra, rb = a[touch], b[touch]
        found_i.append(np.minimum(ra, rb))
        found_j.append(np.maximum(ra, rb))
        found_s.append(np.minimum(values[a_sl][touch], values[b_sl][touch]))  # the lower of the two voxels
    if not found_i:
        return np.zeros((0, 2), np.int64), np.zeros(0)
    i, j, s = (np.concatenate(x) for x in (found_i, found_j, found_s))
    key = i.astype(np.int64) * (int(regions.max()) + 1) + j
    order = np.lexsort((-s, key))  # per pair, the highest saddle first
    first = np.ones(len(order), bool)
    first[1:] = key[order][1:] != key[order][:-1]
    pick = order[first]
    return np.stack([i[pick], j[pick]], axis=1).astype(np.int64), s[pick].astype(np.float64)


def _find(parent, k):
    while parent[k] != k:
        parent[k] = parent[parent[k]]
        k = parent[k]
    return k


def merge_shallow_regions(regions, values, depth, marker_values=None):
    """Group the watershed regions whose tops are joined by a ridge less than ``depth`` below them.

    The same grouping as the connected components (26-connected) of the
    h-dome ``values - reconstruction(values - depth, values) > 0``
    (:func:`skimage.morphology.reconstruction`) taken at the regions'
    markers, without reconstructing the whole volume: the regions' saddles are
    merged from the highest down (Kruskal on the region adjacency graph, one
    level at a time). At saddle level ``s``, the merged regions, whose highest
    value is ``M``, lie in one dome component when ``M < s + depth``: every
    voxel of theirs above ``s`` then has the top of its superlevel set within
    ``depth``. A marker of value ``v`` lies in the dome itself when the
    regions merged at level ``v`` peak below ``v + depth``; a region whose
    marker does not (it sits on a ridge that still rises) gets group 0, as
    the reconstruction gives it no marker.

    Parameters
    ----------
    regions : ndarray, int, (Z, Y, X)
        Watershed regions of ``-values`` (0: background), one per marker.
    values : ndarray, float, same shape
        E.g. the distance transform.
    depth : float
    marker_values : ndarray, float, (regions.max() + 1,), optional
        ``values`` at each region's marker (index 0 unused); default: every
        marker is taken to lie in the dome.

    Returns
    -------
    ndarray, int32, (regions.max() + 1,)
        Region -> group label (0: background, or a marker outside the dome;
        groups numbered 1.. in the order of their first region).
    """
    n = int(regions.max())
    lookup = np.zeros(n + 1, np.int32)
    if n == 0:
        return lookup
    top = np.zeros(n + 1)
    top[1:] = ndi.maximum(values, regions, np.arange(1, n + 1))
    pairs, saddles = region_saddles(regions, values)
    parent, dome = list(range(n + 1)), list(range(n + 1))
    highest = top.tolist()
    order = np.argsort(-saddles, kind="stable")
    tol = 1e-6  # the reconstruction's dome > 1e-6
    k = 0

    def merge_down_to(level):  # every saddle >= level, one level at a time
        nonlocal k
        while k < len(order) and saddles[order[k]] >= level:
            here = saddles[order[k]]
            group = []
            while k < len(order) and saddles[order[k]] == here:  # every merge at this level first
                i, j = (int(x) for x in pairs[order[k]])
                ri, rj = _find(parent, i), _find(parent, j)
                if ri != rj:
                    parent[rj] = ri
                    highest[ri] = max(highest[ri], highest[rj])
                group.append((i, j))
                k += 1
            for i, j in group:
                if highest[_find(parent, i)] < here + depth - tol:  # the saddle voxel is in the dome
                    di, dj = _find(dome, i), _find(dome, j)
                    if di != dj:
                        dome[max(di, dj)] = min(di, dj)

    in_dome = np.ones(n + 1, bool)
    if marker_values is not None:
        marker_values = np.asarray(marker_values, float)
        for r in np.argsort(-marker_values[1:], kind="stable") + 1:
            merge_down_to(marker_values[r])
            in_dome[r] = highest[_find(parent, int(r))] < marker_values[r] + depth - tol
    merge_down_to(-np.inf)
    roots = np.array([_find(dome, r) for r in range(n + 1)])
    _, first, inverse = np.unique(roots[1:], return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # groups numbered in the order of their first region
    lookup[1:] = rank[inverse] + 1
    lookup[~in_dome] = 0
    return lookup


def dome_markers(values, markers, mask, depth):
    """Markers relabelled by their h-dome component; markers outside the dome dropped.

    What ``ndi.label(values - reconstruction(values - depth, values) > 0)``
    taken at the markers gives, computed on the basins of ``values`` instead of
    the whole volume: every regional maximum floods its basin
    (:func:`skimage.segmentation.watershed` of ``-values``), the basins are
    grouped by :func:`merge_shallow_regions`, and each marker takes the group
    of its basin.

    Parameters
    ----------
    values : ndarray, float, (Z, Y, X)
    markers : ndarray, int, same shape
        0 or a marker label; each marker lies on a regional maximum (e.g. the
        peaks of :func:`skimage.feature.peak_local_max`).
    mask : ndarray, bool, same shape
    depth : float

    Returns
    -------
    ndarray, int32, same shape
    """
    full = np.ones((3,) * values.ndim, bool)
    tops = mask & (values >= ndi.maximum_filter(values, footprint=full, mode="constant", cval=-np.inf))
    tops, _ = ndi.label(tops, structure=full)  # plateaus of maxima (and of shoulders) as one
    basins = watershed(-values, tops, connectivity=values.ndim, mask=mask)  # 26-connected, as the dome
    top_values = np.zeros(tops.max() + 1)
    top_values[1:] = ndi.maximum(values, tops, np.arange(1, tops.max() + 1))
    groups = merge_shallow_regions(basins, values, depth, top_values)
    return np.where(markers > 0, groups[basins], 0).astype(np.int32)


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
