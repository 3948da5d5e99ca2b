"""A simulated nano-tomography beamline with a known ground truth.

The paper's ESRF scans are not public, so the book's default data come from
this module: a 3D phantom of a Si/SiOx anode (particles, carbon-binder domain,
pores) is scanned twice, once as a low-quality (LQ) wide field of view scan at
100 nm voxels and once as a high-quality (HQ) scan of the central eighth of the
volume at 50 nm voxels, slightly misaligned as after moving the sample. A second,
unseen sample is scanned in situ at three time steps (swelling, cracks, new
dense phase). Every output has its true phase labels beside it.

Geometry and units
------------------
Positions are in micrometres in the *sample frame*: the LQ volume spans
``[0, shape * 0.1 µm)`` on each axis, LQ voxel ``k`` has its centre at
``(k + 0.5) * 0.1 µm`` and HQ voxels subdivide LQ voxels (two per LQ voxel and
axis). The sample is a cylinder along z, air outside. Attenuation
coefficients are *effective* values in 1/µm: nano-tomography of such anodes is
done with phase contrast (holo-tomography and Paganin-type phase retrieval in
the paper), whose retrieved images behave like attenuation maps with a much
better signal-to-noise ratio than true absorption at 29.6 keV would give.

Acquisition model (:func:`acquire_slices`)
------------------------------------------
Per z slice: parallel-beam projection (``skimage.transform.radon``) of the
attenuation on a grid twice as fine as the scan, Beer-Lambert transmission,
detector blur (Gaussian along the detector row and along z) and pixel
integration, sampling at the scan's pixel size, photon counting (Poisson) at a
dose in photons per pixel, a per-pixel detector gain that the flat field
corrects imperfectly (constant over angles -> ring artefacts), ``-log`` and
filtered back-projection (``skimage.transform.iradon``). scikit-image is used
rather than astra-toolbox: it is already a dependency, is deterministic on a
CPU and costs ~0.2 s per 256² slice, whereas astra adds ~380 MB of CUDA wheels
for a speed-up we do not need at these sizes.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi
from scipy import optimize, special
from tqdm import tqdm

from ._atomic import atomic_path
from .data import file_sha256
from .presets import resolve

# --------------------------------------------------------------------------- phases

PORE, BINDER, PARTICLE, DENSE = 0, 1, 2, 3
PHASE_NAMES = ("pore", "binder", "particle", "dense")

#: Effective attenuation coefficients (1/µm) per phase, and of air outside the sample.
ATTENUATION_PER_UM = {"air": 0.0, "pore": 0.01, "binder": 0.03, "particle": 0.08, "dense": 0.16}

_ACQ_LQ = {
    "n_angles": 192,
    "blur_sigma_nm": 330.0,  # detector PSF at the sample plane (LQ optics)
    "dose": 500.0,  # photons per detector pixel per projection (flat field)
    "gain_nonuniformity": 0.05,  # relative std of the detector pixel gains
    "flat_field_error": 0.003,  # relative std of what the flat field fails to correct
    "filter_name": "shepp-logan",
}
_ACQ_HQ = dict(_ACQ_LQ, blur_sigma_nm=145.0, dose=5000.0, flat_field_error=0.002)

_COMMON = {
    "lq_voxel_nm": 100.0,
    "hq_voxel_nm": 50.0,
    "sample_radius_fraction": 0.92,  # sample cylinder radius / half the LQ width
    "particle_volume_fraction": 0.35,
    "ellipsoid_fraction": 0.4,
    "ellipsoid_max_aspect": 1.6,
    "contact_probability": 0.3,  # chance a particle is placed against an earlier one
    "overlap": 0.05,  # allowed interpenetration of bounding spheres (fraction of r_i + r_j)
    "binder_fraction": 0.3,  # fraction of the non-particle volume that is carbon-binder
    "binder_correlation_um": 0.15,
    "binder_affinity": 1.0,  # preference of binder for particle surfaces (in field std)
    "binder_affinity_length_um": 0.25,
    "attenuation_per_um": dict(ATTENUATION_PER_UM),
    "rings": True,
    "translation_range_vox": (0.3, 1.5),  # |t| per axis, HQ voxels
    "rotation_range_deg": (0.5, 1.5),  # |r|, degrees
    # in situ series (T0, T1, T2)
    "insitu_radius_growth": (0.0, 0.08, 0.16),  # relative radius growth (swelling)
    "crack_width_um": (0.0, 0.06, 0.10),
    "cracks_per_particle": 2,
    "crack_depth": 0.6,  # cracks reach this fraction of the radius in from the surface
    "dense_particle_fraction": 0.5,  # particles that grow a dense surface phase
    "dense_thickness_um": (0.0, 0.08, 0.15),
    "dense_coverage": (0.0, 0.4, 0.7),  # fraction of a shell covered by the dense patches
    # fixed grey-value mapping: grey = offset + per_inv_um * mu, clipped to uint16
    "grey_offset": 16384.0,
    "grey_per_inv_um": 160000.0,
}

PRESETS = {
    "tiny": dict(
        _COMMON,
        lq_shape=(32, 32, 32),
        radius_median_um=0.3,
        radius_log_sigma=0.35,
        radius_range_um=(0.12, 0.8),
        crack_min_radius_um=0.3,
        # thinner cracks and shells for the small particles of the tiny sample
        crack_width_um=(0.0, 0.05, 0.08),
        dense_thickness_um=(0.0, 0.05, 0.08),
        binder_grid_nm=50.0,
        lq=dict(_ACQ_LQ, n_angles=48),
        hq=dict(_ACQ_HQ, n_angles=48),
        real_size=32,
        real_voxel_nm=100.0,
    ),
    "default": dict(
        _COMMON,
        lq_shape=(128, 128, 128),
        radius_median_um=0.6,
        radius_log_sigma=0.4,
        radius_range_um=(0.15, 2.5),
        crack_min_radius_um=0.6,
        binder_grid_nm=100.0,
        lq=dict(_ACQ_LQ),
        hq=dict(_ACQ_HQ),
        real_size=64,
        real_voxel_nm=100.0,
    ),
    # paper: 51.2 µm LQ field of view; hours of CPU and ~20 GB of memory, never run in tests
    "paper": dict(
        _COMMON,
        lq_shape=(512, 512, 512),
        radius_median_um=0.8,
        radius_log_sigma=0.5,
        radius_range_um=(0.15, 3.0),
        crack_min_radius_um=0.8,
        binder_grid_nm=100.0,
        lq=dict(_ACQ_LQ, n_angles=800),
        hq=dict(_ACQ_HQ, n_angles=800),
        real_size=64,
        real_voxel_nm=100.0,
    ),
}

#: Independent random streams: np.random.SeedSequence([seed, stream]).
_STREAMS = {
    "phantom": 1, "misalignment": 2, "lq": 3, "hq": 4, "insitu_phantom": 5, "insitu_features": 6,
    "insitu_scan": 7, "real": 8,
}


def _steps(iterable, progress, desc, weight=1):
    """Iterate with progress: a shared tqdm bar (advanced by ``weight`` per item), a bar of its own, or none."""
    if hasattr(progress, "update"):
        for item in iterable:
            yield item
            progress.update(weight(item) if callable(weight) else weight)
    else:
        yield from tqdm(iterable, desc=desc, disable=not progress, leave=False)


def _rng(seed, stream, *extra):
    """A generator for one named stream of a seed (independent of the other streams)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), _STREAMS[stream], *extra]))


# --------------------------------------------------------------------------- phantom


@dataclasses.dataclass(frozen=True)
class Phantom:
    """A continuous 3D anode phantom: particles, binder field, cracks, dense phase.

    Evaluate it on any grid with :func:`rasterise`. All lengths in µm, positions
    in the sample frame (z, y, x).

    Attributes
    ----------
    extent_um : ndarray, shape (3,)
        Size of the LQ volume (z, y, x).
    sample_radius_um : float
        Radius of the sample cylinder (axis along z through the middle of y, x).
    centres : ndarray, float64, shape (P, 3)
        Particle centres.
    axes : ndarray, float64, shape (P, 3)
        Semi-axes of each ellipsoid along its principal directions.
    rotations : ndarray, float64, shape (P, 3, 3)
        Columns are the principal directions (sample frame).
    field_spacing_um : float
        Spacing of the coarse grids of ``binder_field`` and ``dense_field``
        (point ``k`` at ``k * spacing``).
    binder_field : ndarray, float32, shape (Nz, Ny, Nx) or None
        Binder is where the trilinearly interpolated field exceeds ``binder_threshold``.
    dense_field : ndarray, float32 or None
        Patch field of the dense phase (standard normal marginals).
    dense_threshold : float
        Dense phase where ``dense_field`` exceeds it inside a particle's shell.
    dense_thickness_um : ndarray, shape (P,)
        Thickness of the dense shell around each particle (0: none).
    crack_particle : ndarray of int, shape (C,)
        Particle of each crack.
    crack_normal, crack_side : ndarray, shape (C, 3)
        Unit normal of the crack plane and the in-plane direction it opens towards.
    crack_offset_um : ndarray, shape (C,)
        Signed distance of the crack plane from the particle centre.
    crack_width_um : ndarray, shape (C,)
        Opening of each crack (0: closed).
    crack_depth : float
        Cracks reach ``crack_depth * radius`` in from the surface.
    """

    extent_um: np.ndarray
    sample_radius_um: float
    centres: np.ndarray
    axes: np.ndarray
    rotations: np.ndarray
    field_spacing_um: float
    binder_field: np.ndarray | None = None
    binder_threshold: float = np.inf
    dense_field: np.ndarray | None = None
    dense_threshold: float = np.inf
    dense_thickness_um: np.ndarray | None = None
    crack_particle: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0, int))
    crack_normal: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))
    crack_side: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros((0, 3)))
    crack_offset_um: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    crack_width_um: np.ndarray = dataclasses.field(default_factory=lambda: np.zeros(0))
    crack_depth: float = 0.6

    @property
    def n_particles(self):
        return len(self.centres)

    @property
    def equivalent_radii(self):
        """Radius of the sphere of equal volume, (a b c)^(1/3), shape (P,), µm."""
        return np.cbrt(np.prod(self.axes, axis=1))

    @property
    def bounding_radii(self):
        """Largest semi-axis of each particle, shape (P,), µm."""
        return self.axes.max(axis=1) if len(self.axes) else np.zeros(0)


def lognormal_radii(rng, n, median_um, log_sigma, range_um):
    """Draw ``n`` particle radii from a lognormal law truncated to ``range_um``.

    ``log r ~ N(log(median_um), log_sigma²)``; values outside ``range_um`` are
    redrawn (not clipped) so the shape of the law is kept inside the range.

    Returns
    -------
    ndarray, float64, shape (n,), µm
    """
    lo, hi = range_um
    if not 0 < lo < median_um < hi:
        raise ValueError(f"radius range {range_um} must contain the median {median_um} (µm) and be positive")
    out = np.empty(0)
    while len(out) < n:
        r = np.exp(rng.normal(math.log(median_um), log_sigma, size=2 * (n - len(out)) + 8))
        out = np.concatenate([out, r[(r >= lo) & (r <= hi)]])
    return out[:n]


def random_rotations(rng, n):
    """Uniformly random rotation matrices (QR of Gaussian matrices), shape (n, 3, 3)."""
    q, r = np.linalg.qr(rng.standard_normal((n, 3, 3)))
    q = q * np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]  # Haar measure
    det = np.linalg.det(q)
    q[det < 0, :, 0] *= -1  # proper rotations only
    return q


def _particle_shapes(rng, radii, ellipsoid_fraction, max_aspect):
    """Semi-axes and orientations for particles of given equivalent radii.

    An ellipsoid keeps the volume of its sphere: axes ``r * (s1, s2, s3)`` with
    ``s1 s2 s3 = 1``.
    """
    n = len(radii)
    stretch = np.ones((n, 3))
    is_ell = rng.random(n) < ellipsoid_fraction
    k = int(is_ell.sum())
    if k:
        a = np.exp(rng.uniform(0, math.log(max_aspect), size=k))  # long axis / short axes
        b = np.exp(rng.uniform(-0.15, 0.15, size=k))
        s = np.stack([a, b, 1.0 / b], axis=1)
        stretch[is_ell] = s / np.cbrt(np.prod(s, axis=1))[:, None]
    rot = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    if k:
        rot[is_ell] = random_rotations(rng, k)
    return radii[:, None] * stretch, rot


def _place_particles(rng, bounding, extent_um, sample_radius_um, centres, bounds, contact_probability, overlap,
                     max_tries=300):
    """Random sequential addition of bounding spheres, largest first.

    A particle is accepted when it interpenetrates no placed particle by more
    than ``overlap`` of the sum of the two radii: ``|c_i - c_j| >= (1 - overlap)(ρ_i + ρ_j)``.
    With probability ``contact_probability`` a candidate is put in contact with a
    random earlier particle, which makes touching pairs and small clusters.

    Returns the indices (into ``bounding``) of the placed particles and the new centres.
    """
    cy, cx = extent_um[1] / 2, extent_um[2] / 2
    placed_c = list(centres)
    placed_r = list(bounds)
    new_idx, new_c = [], []
    for i in np.argsort(-bounding, kind="stable"):
        rho = bounding[i]
        pc = np.asarray(placed_c).reshape(-1, 3)
        pr = np.asarray(placed_r)
        for _ in range(max_tries):
            if len(pr) and rng.random() < contact_probability:
                j = rng.integers(len(pr))
                u = rng.standard_normal(3)
                u /= np.linalg.norm(u)
                c = pc[j] + u * (pr[j] + rho) * (1 - overlap / 2)
            else:
                # centres may lie up to rho outside the sample so its surface is cut like the bulk
                rad = (sample_radius_um + rho) * math.sqrt(rng.random())
                ang = rng.uniform(0, 2 * math.pi)
                c = np.array([rng.uniform(-rho, extent_um[0] + rho), cy + rad * math.sin(ang),
                              cx + rad * math.cos(ang)])
            if not (-rho <= c[0] <= extent_um[0] + rho and math.hypot(c[1] - cy, c[2] - cx) <= sample_radius_um + rho):
                continue
            if len(pr) and np.any(np.linalg.norm(pc - c, axis=1) < (1 - overlap) * (pr + rho)):
                continue
            placed_c.append(c)
            placed_r.append(rho)
            new_idx.append(i)
            new_c.append(c)
            break
    return np.asarray(new_idx, int), np.asarray(new_c, float).reshape(-1, 3)


def _smooth_field(rng, shape, sigma_vox):
    """White noise smoothed by a Gaussian and rescaled to unit variance, float32."""
    f = ndi.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="wrap")
    return ((f - f.mean()) / f.std()).astype(np.float32)


def _coarse_axes(extent_um, spacing_um):
    return [np.arange(int(math.ceil(e / spacing_um)) + 1) * spacing_um for e in extent_um]


def build_phantom(params, seed=0, stream="phantom", progress=False):
    """Build the continuous anode phantom of one sample.

    Particle radii are drawn from a truncated lognormal law and packed by
    random sequential addition (largest first, some in contact) until the
    particle volume fraction inside the sample cylinder reaches
    ``particle_volume_fraction`` (measured on the coarse field grid; extra
    rounds top it up). The carbon-binder domain is a smoothed Gaussian random
    field, raised near particle surfaces and thresholded so that binder fills
    ``binder_fraction`` of the space between particles.

    Parameters
    ----------
    params : dict
        A resolved preset of :data:`PRESETS`.
    seed : int
        Seed; ``stream`` selects an independent random stream of it.
    stream : str
        ``"phantom"`` for the training sample, ``"insitu_phantom"`` for the in situ one.
    progress : bool
        Progress bar of the coarse rasterisation.

    Returns
    -------
    Phantom
    """
    rng = _rng(seed, stream)
    extent = np.asarray(params["lq_shape"], float) * params["lq_voxel_nm"] / 1000.0
    r_s = params["sample_radius_fraction"] * min(extent[1], extent[2]) / 2
    target = float(params["particle_volume_fraction"])
    if not 0.0 <= target <= 0.55:
        raise ValueError(f"particle_volume_fraction must be in [0, 0.55] (random packing jams above), got {target}")
    h = params["binder_grid_nm"] / 1000.0
    axes_c = _coarse_axes(extent, h)

    # volume in which centres can fall (the sample widened by a typical radius)
    r_typ = params["radius_median_um"]
    v_ext = math.pi * (r_s + r_typ) ** 2 * (extent[0] + 2 * r_typ)
    centres = np.zeros((0, 3))
    semi = np.zeros((0, 3))
    rots = np.zeros((0, 3, 3))
    ph = Phantom(extent, r_s, centres, semi, rots, h)
    labels, inside = rasterise(ph, *axes_c)
    measured = 0.0
    for _round in range(8):  # top up until the measured fraction reaches the target
        deficit = target - measured
        if deficit <= 0.005:
            break
        mean_vol = 4 / 3 * math.pi * params["radius_median_um"] ** 3 * math.exp(4.5 * params["radius_log_sigma"] ** 2)
        n_new = max(1, int(round(deficit * v_ext / mean_vol)))
        radii = lognormal_radii(rng, n_new, params["radius_median_um"], params["radius_log_sigma"],
                                params["radius_range_um"])
        ax_new, rot_new = _particle_shapes(rng, radii, params["ellipsoid_fraction"], params["ellipsoid_max_aspect"])
        idx, c_new = _place_particles(rng, ax_new.max(axis=1), extent, r_s, centres,
                                      semi.max(axis=1) if len(semi) else np.zeros(0),
                                      params["contact_probability"], params["overlap"])
        centres = np.concatenate([centres, c_new])
        semi = np.concatenate([semi, ax_new[idx]])
        rots = np.concatenate([rots, rot_new[idx]])
        ph = Phantom(extent, r_s, centres, semi, rots, h)
        labels, inside = rasterise(ph, *axes_c, progress=progress)
        measured = float(np.mean(labels[inside] == PARTICLE))
    solid = labels == PARTICLE

    # binder: correlated noise + affinity for particle surfaces, thresholded by quantile
    field = _smooth_field(rng, solid.shape, params["binder_correlation_um"] / h)
    dist = ndi.distance_transform_edt(~solid) * h  # µm to the nearest particle voxel
    field = field + params["binder_affinity"] * np.exp(-dist / params["binder_affinity_length_um"]).astype(np.float32)
    free = inside & ~solid
    thr = float(np.quantile(field[free], 1 - params["binder_fraction"])) if free.any() else np.inf
    dense_field = _smooth_field(rng, solid.shape, 0.5 * params["binder_correlation_um"] / h)
    return dataclasses.replace(ph, binder_field=field.astype(np.float32), binder_threshold=thr,
                               dense_field=dense_field, dense_thickness_um=np.zeros(len(centres)))


def add_insitu_features(phantom, params, seed=0):
    """Draw where the in situ changes will happen: cracks and dense-phase particles.

    Cracks go into particles with equivalent radius above ``crack_min_radius_um``
    (``cracks_per_particle`` each, planes through random points near the centre,
    opening towards a random in-plane side); half open at T1, the rest at T2.
    ``dense_particle_fraction`` of the particles are flagged to grow dense patches.

    Returns
    -------
    phantom : Phantom
        The same sample with closed cracks (width 0) and no dense phase yet.
    onset : ndarray of int, shape (C,)
        Time step (1 or 2) at which each crack opens.
    dense_flag : ndarray of bool, shape (P,)
    """
    rng = _rng(seed, "insitu_features")
    req = phantom.equivalent_radii
    big = np.flatnonzero(req >= params["crack_min_radius_um"])
    k = params["cracks_per_particle"]
    cp = np.repeat(big, k)
    n = len(cp)
    normal = rng.standard_normal((n, 3))
    normal /= np.linalg.norm(normal, axis=1, keepdims=True)
    side = rng.standard_normal((n, 3))
    side -= np.sum(side * normal, axis=1, keepdims=True) * normal  # in the crack plane
    side /= np.linalg.norm(side, axis=1, keepdims=True)
    offset = rng.uniform(-0.3, 0.3, size=n) * req[cp]
    onset = rng.integers(1, 3, size=n)
    dense_flag = rng.random(phantom.n_particles) < params["dense_particle_fraction"]
    ph = dataclasses.replace(phantom, crack_particle=cp, crack_normal=normal, crack_side=side, crack_offset_um=offset,
                             crack_width_um=np.zeros(n), crack_depth=float(params["crack_depth"]))
    return ph, onset, dense_flag


def insitu_state(phantom, step, params, onset, dense_flag):
    """The in situ sample at time step ``step`` (0 = pristine T0).

    Particles keep their centres and swell by ``insitu_radius_growth[step]``
    (relative radius); cracks whose onset is at or before ``step`` open to
    ``crack_width_um[step]``; flagged particles carry a dense shell of
    ``dense_thickness_um[step]`` covered by patches over ``dense_coverage[step]``
    of its area.

    Returns
    -------
    Phantom
    """
    growth = params["insitu_radius_growth"]
    if not 0 <= step < len(growth):
        raise ValueError(f"time step {step} outside the series of {len(growth)} steps")
    width = np.where(onset <= step, params["crack_width_um"][step], 0.0) if step > 0 else np.zeros(len(onset))
    thick = np.where(dense_flag, params["dense_thickness_um"][step], 0.0)
    cov = params["dense_coverage"][step]
    # the patch field has standard normal marginals: P(field > thr) = coverage
    thr = float(special.ndtri(1 - cov)) if cov > 0 else np.inf
    return dataclasses.replace(phantom, axes=phantom.axes * (1 + growth[step]), crack_width_um=width,
                               dense_thickness_um=thick, dense_threshold=thr)


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
    for z0 in _steps(starts, progress, desc, weight=lambda z0: min(slab, shape[0] - z0)):
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


# --------------------------------------------------------------------------- misalignment


def draw_misalignment(params, seed=0):
    """A small rigid motion of the sample between the LQ and the HQ scan.

    Translation: each axis ``±U(translation_range_vox)`` HQ voxels; rotation: a
    rotation vector of random direction and length ``U(rotation_range_deg)``.

    Returns
    -------
    dict
        ``translation_vox`` (z, y, x), ``rotation_deg`` (spam rotation vector
        z, y, x), ``phi`` (4×4 from ``spam.deformation.computePhi``) and
        ``centre`` (a description of where Φ is centred).
    """
    from ._spam import import_spam

    rng = _rng(seed, "misalignment")
    t = rng.uniform(*params["translation_range_vox"], size=3) * rng.choice([-1.0, 1.0], size=3)
    u = rng.standard_normal(3)
    r = u / np.linalg.norm(u) * rng.uniform(*params["rotation_range_deg"])
    phi = import_spam("deformation").computePhi({"t": t, "r": r})
    return {
        "translation_vox": [float(v) for v in t],
        "rotation_deg": [float(v) for v in r],
        "phi": np.asarray(phi, float).tolist(),
        "centre": "centre of the HQ volume, (shape-1)/2",
    }


# --------------------------------------------------------------------------- acquisition


def scan_axes(start_um, shape, voxel_nm, bin_factor=2, z_sub=2, z_margin=0):
    """Point coordinates (µm) of the grid a scan is projected from.

    In-plane the grid is ``bin_factor`` times finer than the scan and *aligned*
    with it: fine point ``b·j`` sits on the centre of scan pixel ``j``, so that
    the rotation axis of ``radon`` on the fine grid (index ``N // 2``) and of
    ``iradon`` on the scan grid (index ``M // 2``) coincide. Along z each scan
    slice is sampled at ``z_sub`` evenly spread points (averaged later: the
    detector pixel's extent along z), with ``z_margin`` extra slices each side
    so the detector blur sees the sample beyond the scanned rows.

    Returns
    -------
    z, y, x : ndarray, float64, shapes ((Z + 2 m) z_sub,), (b Y,), (b X,)
    """
    v = voxel_nm / 1000.0
    z0, y0, x0 = start_um
    nz, ny, nx = shape
    k = np.arange(-z_margin, nz + z_margin)
    z = (z0 + (k[:, None] + (np.arange(z_sub)[None, :] + 0.5) / z_sub) * v).ravel()
    y = y0 + (np.arange(ny * bin_factor) / bin_factor + 0.5) * v
    x = x0 + (np.arange(nx * bin_factor) / bin_factor + 0.5) * v
    return z, y, x


def subdivision_axes(start_um, shape, voxel_nm, factor=2):
    """Centres of the ``factor³`` sub-voxels of a grid (the HQ grid of an LQ grid, etc.), µm."""
    v = voxel_nm / 1000.0 / factor
    return tuple(s + (np.arange(n * factor) + 0.5) * v for s, n in zip(start_um, shape))


def _z_margin(acq, voxel_nm):
    return int(math.ceil(3 * acq["blur_sigma_nm"] / voxel_nm)) if acq["blur_sigma_nm"] > 0 else 0


def acquire_slices(mu, voxel_size_nm, *, n_angles, blur_sigma_nm, dose, gain_nonuniformity=0.0,
                   flat_field_error=0.0, rings=True, filter_name="shepp-logan", bin_factor=2, z_margin=0, seed=0,
                   progress=False, desc="scan"):
    """Scan a stack of attenuation slices and reconstruct it (parallel beam, FBP).

    Per detector pixel ``(z, u)`` and angle ``θ``:
    ``I = blur(exp(-∫ μ dl))`` sampled at the scan pitch,
    ``counts ~ Poisson(dose · g · I)`` with a pixel gain ``g``, flat-field
    corrected with an estimate ``ĝ = g (1 + ε)`` (``ε = 0`` when ``rings`` is
    False), ``p = -log(counts / (dose ĝ))``; each slice is then reconstructed by
    filtered back-projection. A residual ``ε`` is the same at every angle, so
    it back-projects into rings.

    Parameters
    ----------
    mu : ndarray, shape (Z, N, N)
        Attenuation (1/µm) on the grid of :func:`scan_axes`: in-plane spacing
        ``voxel_size_nm / bin_factor`` aligned with the scan pixels, z spacing
        ``voxel_size_nm``. Must be zero outside the disc of radius ``N // 2``
        around pixel ``N // 2`` (the reconstruction circle).
    voxel_size_nm : float
        Scan pixel size (nm).
    n_angles : int
        Projections over 180°.
    blur_sigma_nm : float
        Standard deviation of the Gaussian detector blur at the sample plane
        (nm), along the detector row and along z.
    dose : float
        Photons per detector pixel per projection without sample.
    gain_nonuniformity : float
        Relative std of the detector pixel gains.
    flat_field_error : float
        Relative std of the part of the gains the flat field does not correct.
    rings : bool
        Switch the flat-field error (ring artefacts) on or off.
    filter_name : str
        FBP filter of ``iradon`` (``"ramp"``, ``"shepp-logan"``, ...).
    bin_factor : int
        Fine grid points per scan pixel in-plane; ``N = bin_factor * M``.
    z_margin : int
        Slices at each end of ``mu`` that only feed the z blur; they are dropped.
    seed : int
        Seed of the photon noise and of the detector gains.
    progress : bool
        tqdm bars over slices.

    Returns
    -------
    ndarray, float32, shape (Z - 2 z_margin, M, M)
        Reconstructed attenuation (1/µm); zero outside the reconstruction circle.
    """
    from skimage.transform import iradon, radon

    mu = np.asarray(mu)
    if mu.ndim != 3 or mu.shape[1] != mu.shape[2]:
        raise ValueError(f"acquire_slices: expected a stack of square slices (Z, N, N), got shape {mu.shape}")
    b = int(bin_factor)
    n = mu.shape[1]
    if b < 1 or n % b or (n // b) % 2:
        raise ValueError(f"acquire_slices: slice width {n} must be bin_factor ({b}) times an even number")
    if mu.shape[0] <= 2 * z_margin:
        raise ValueError(f"acquire_slices: {mu.shape[0]} slices leave nothing inside a z margin of {z_margin}")
    if not np.all(np.isfinite(mu)) or mu.min() < 0:
        raise ValueError("acquire_slices: attenuation must be finite and non-negative")
    yy, xx = np.ogrid[:n, :n]
    outside = (yy - n // 2) ** 2 + (xx - n // 2) ** 2 > (n // 2) ** 2
    if np.any(mu[:, outside]):
        raise ValueError("acquire_slices: attenuation must be zero outside the reconstruction circle "
                         "(radius N//2 around pixel N//2); mask the sample first")
    if dose <= 0:
        raise ValueError(f"acquire_slices: dose must be positive, got {dose}")
    m = n // b
    v_um = voxel_size_nm / 1000.0
    theta = np.arange(n_angles) * 180.0 / n_angles

    sino = np.empty((mu.shape[0], n, n_angles))
    for k in _steps(range(mu.shape[0]), progress, f"{desc}: project"):
        # radon sums fine pixels; times the fine pitch it is the line integral ∫μ dl (dimensionless)
        sino[k] = radon(mu[k].astype(np.float64), theta, circle=True, preserve_range=True) * (v_um / b)
    intensity = np.exp(-sino)  # Beer-Lambert
    del sino
    if blur_sigma_nm > 0:
        intensity = ndi.gaussian_filter1d(intensity, blur_sigma_nm / voxel_size_nm * b, axis=1, mode="nearest")
        intensity = ndi.gaussian_filter1d(intensity, blur_sigma_nm / voxel_size_nm, axis=0, mode="nearest")
    if b > 1:
        # a detector pixel integrates a width b of fine samples centred on it (trapezoid = box on the
        # linear interpolant); keep the samples at the pixel centres, fine index b·j
        box = np.full(b + 1, 1.0 / b)
        box[[0, -1]] = 0.5 / b
        intensity = ndi.correlate1d(intensity, box, axis=1, mode="nearest")[:, ::b]
    intensity = intensity[z_margin: intensity.shape[0] - z_margin]

    rng = np.random.default_rng(seed)
    gain = 1.0 + gain_nonuniformity * rng.standard_normal(intensity.shape[:2])
    residual = flat_field_error * rng.standard_normal(intensity.shape[:2])
    counts = rng.poisson(dose * gain[..., None] * intensity)
    gain_estimate = gain * (1.0 + residual) if rings else gain
    measured = counts / (dose * gain_estimate[..., None])
    # -log of the flat-field corrected transmission; a zero count is read as half a photon
    proj = -np.log(np.maximum(measured, 0.5 / dose))
    del counts, measured, intensity

    out = np.empty((proj.shape[0], m, m), np.float32)
    for k in _steps(range(proj.shape[0]), progress, f"{desc}: reconstruct"):
        # iradon assumes unit pixel pitch: it returns μ·v per pixel
        out[k] = iradon(proj[k], theta, output_size=m, filter_name=filter_name, circle=True,
                        preserve_range=True) / v_um
    return out


def mu_to_grey(mu, offset, per_inv_um):
    """The fixed grey-value mapping of the simulated scans: ``round(offset + per_inv_um · μ)`` as uint16.

    Parameters
    ----------
    mu : ndarray
        Attenuation, 1/µm.
    offset, per_inv_um : float
        Grey value of μ = 0 and grey values per 1/µm.

    Returns
    -------
    ndarray, uint16 (values outside [0, 65535] are clipped)
    """
    return np.clip(np.rint(offset + per_inv_um * np.asarray(mu, np.float64)), 0, 65535).astype(np.uint16)


def grey_to_mu(grey, offset, per_inv_um):
    """Inverse of :func:`mu_to_grey` (up to rounding and clipping): attenuation in 1/µm, float32."""
    return ((np.asarray(grey, np.float64) - offset) / per_inv_um).astype(np.float32)


def _support(mu, y_um, x_um, centre_yx_um, radius_um):
    """Zero μ outside a cylinder (the field of view the scan is restricted to)."""
    out = (y_um[:, None] - centre_yx_um[0]) ** 2 + (x_um[None, :] - centre_yx_um[1]) ** 2 > radius_um**2
    mu[:, out] = 0.0
    return mu


def scan_phantom(phantom, start_vox, shape, voxel_nm, acq, attenuation_per_um, *, rings=True, motion=None,
                 support_radius_vox=None, seed=0, progress=False, desc="scan"):
    """Rasterise a phantom on a scan's projection grid and acquire it.

    Parameters
    ----------
    phantom : Phantom
    start_vox : sequence of int
        First voxel (z, y, x) of the scanned region, in units of ``voxel_nm``
        counted from the sample frame's origin.
    shape : tuple of int
        Shape (Z, Y, X) of the reconstruction, ``Y == X`` and even.
    voxel_nm : float
        Scan voxel size (nm).
    acq : dict
        ``n_angles``, ``blur_sigma_nm``, ``dose``, ``gain_nonuniformity``,
        ``flat_field_error``, ``filter_name`` (see :func:`acquire_slices`).
    attenuation_per_um : dict
        Phase -> μ (1/µm).
    rings : bool
        Flat-field error on/off.
    motion : tuple (R, t_um, c_um), optional
        Rigid motion of the sample seen by this scan (see :func:`rasterise`).
    support_radius_vox : float, optional
        Only material inside this radius (scan voxels) around the region's
        centre is in the beam (an idealised interior scan).
    seed : int
        Noise seed.

    Returns
    -------
    recon : ndarray, float32, shape ``shape``
        Reconstructed attenuation, 1/µm.
    labels : ndarray, uint8
        Labels on the projection grid (z sub-samples without margins, fine in-plane).
    inside : ndarray, bool
    """
    v = voxel_nm / 1000.0
    start_um = np.asarray(start_vox, float) * v
    m = _z_margin(acq, voxel_nm)
    z, y, x = scan_axes(start_um, shape, voxel_nm, bin_factor=2, z_sub=2, z_margin=m)
    rot, t, c = motion if motion is not None else (None, None, None)
    labels, inside = rasterise(phantom, z, y, x, rotation=rot, translation_um=t, centre_um=c, progress=progress,
                               desc=f"{desc}: rasterise")
    mu = attenuation_of(labels, inside, attenuation_per_um)
    mu = mu.reshape(-1, 2, mu.shape[1], mu.shape[2]).mean(axis=1)  # detector row integrates z
    centre = start_um[1:] + np.asarray(shape[1:]) * v / 2
    radius = (support_radius_vox if support_radius_vox is not None else shape[1] / 2 - 1) * v
    mu = _support(mu, y, x, centre, radius)
    recon = acquire_slices(mu, voxel_nm, bin_factor=2, z_margin=m, rings=rings, seed=seed, progress=progress,
                           desc=desc, **acq)
    keep = slice(2 * m, labels.shape[0] - 2 * m)
    return recon, labels[keep], inside[keep]


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
    att = p["attenuation_per_um"]
    out = {}
    # at least 96 px across so that the edge, a flat core and a flat ring all fit beside the blur
    width = max(96, int(p["lq_shape"][1]))
    for which, voxel in (("lq", p["lq_voxel_nm"]), ("hq", p["hq_voxel_nm"])):
        acq = p[which]
        r_out = width / 2 - 2
        r_in = 0.4 * r_out
        # the object does not vary along z, so the z blur needs no margin slices
        mu, centre = calibration_disc(width, r_in, att["particle"], r_out, att["binder"], n_slices)
        rec = acquire_slices(mu, voxel, rings=p["rings"], seed=int(_rng(seed, which, 99).integers(2**31)), **acq)
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


# --------------------------------------------------------------------------- real microstructures

#: name -> (spam.datasets loader, phases from dark to bright)
REAL_VOLUMES = {
    "snow": ("loadSnow", (PORE, PARTICLE)),
    "concrete": ("loadConcreteXr", (PORE, BINDER, PARTICLE)),
}


def segment_real_volume(volume, phases, mask=None, smooth_sigma_vox=1.0):
    """Threshold a real CT volume into phases with (multi-)Otsu.

    The volume is smoothed first (Gaussian, ``smooth_sigma_vox``) so the
    thresholds split the phases rather than the noise.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X)
    phases : sequence of int
        Label of each class, darkest first (2 classes: Otsu; 3+: multi-Otsu).
    mask : ndarray of bool, optional
        Voxels the thresholds are computed from (e.g. inside the sample).

    Returns
    -------
    labels : ndarray, uint8, shape (Z, Y, X)
    thresholds : list of float (grey values of the smoothed volume)
    """
    from skimage.filters import threshold_multiotsu, threshold_otsu

    smooth = ndi.gaussian_filter(np.asarray(volume, np.float32), smooth_sigma_vox)
    values = smooth[mask] if mask is not None else smooth.ravel()
    if len(phases) == 2:
        thresholds = [float(threshold_otsu(values))]
    else:
        thresholds = [float(t) for t in threshold_multiotsu(values, classes=len(phases))]
    classes = np.digitize(smooth, thresholds)
    return np.asarray(phases, np.uint8)[classes], thresholds


def acquire_real_volume(name="snow", preset="default", seed=0, progress=False, **overrides):
    """Push a real X-ray CT volume from ``spam.datasets`` through the LQ and HQ scans.

    A central cube of ``real_size`` voxels of the volume (snow or concrete,
    100³ in spam) is segmented with Otsu thresholds inside its inscribed
    cylinder, the phases get their attenuation and the voxels are *read as if
    they were* ``real_voxel_nm`` wide: a real microstructure at the scale of
    the anode, with a known truth. The continuous sample is the trilinear
    interpolant of those voxels inside the cylinder (air outside); it is
    scanned at 100 nm (LQ) and 50 nm (HQ) with the preset's acquisition
    parameters, both over the whole cube and without misalignment.

    Parameters
    ----------
    name : {"snow", "concrete"}
        ``spam.datasets.loadSnow`` or ``loadConcreteXr``.
    preset : str
        Acquisition parameters, ``real_size`` (voxels, multiple of 4) and
        ``real_voxel_nm`` (must equal the LQ voxel).
    seed : int
        Noise seed.

    Returns
    -------
    dict
        ``raw`` (uint16 crop of the original, real grid), ``labels`` (uint8,
        real grid), ``truth_mu`` (float32, real grid, 1/µm), ``lq`` and ``hq``
        (float32 reconstructions, 1/µm, shapes ``n`` and ``2n``), ``lq_grey``
        and ``hq_grey`` (uint16, fixed mapping), ``thresholds``, ``phases``,
        ``voxel_size_nm`` ({"real", "lq", "hq"}), ``disc_radius_vox`` ({"real", "lq", "hq"}).
    """
    from ._spam import import_spam

    if name not in REAL_VOLUMES:
        raise ValueError(f"unknown real volume {name!r}; expected one of {sorted(REAL_VOLUMES)}")
    p = resolve(PRESETS, preset, **overrides)
    loader, phases = REAL_VOLUMES[name]
    raw = np.asarray(getattr(import_spam("datasets"), loader)())
    n = int(p["real_size"])
    if n % 4 or n > min(raw.shape):
        raise ValueError(f"real_size must be a multiple of 4 no larger than {min(raw.shape)}, got {n}")
    v_real, v_hq, v_lq = float(p["real_voxel_nm"]), float(p["hq_voxel_nm"]), float(p["lq_voxel_nm"])
    if v_real != v_lq:
        raise ValueError(f"real_voxel_nm ({v_real}) must equal the LQ voxel ({v_lq} nm)")
    lo = [(s - n) // 2 for s in raw.shape]
    raw = raw[lo[0]: lo[0] + n, lo[1]: lo[1] + n, lo[2]: lo[2] + n]
    yy, xx = np.ogrid[:n, :n]
    r_real = n / 2 - 1  # sample cylinder, real voxels
    inside = np.broadcast_to((yy - (n - 1) / 2) ** 2 + (xx - (n - 1) / 2) ** 2 <= r_real**2, raw.shape)
    labels, thresholds = segment_real_volume(raw, phases, mask=inside)
    labels[~inside] = PORE
    att = p["attenuation_per_um"]
    truth_mu = attenuation_of(labels, inside, att)

    result = {"name": name, "raw": raw, "labels": labels, "truth_mu": truth_mu, "thresholds": thresholds,
              "phases": [PHASE_NAMES[k] for k in phases], "voxel_size_nm": {"real": v_real, "lq": v_lq, "hq": v_hq},
              "disc_radius_vox": {"real": r_real, "lq": r_real, "hq": 2 * r_real}}
    for which, voxel, size in (("lq", v_lq, n), ("hq", v_hq, 2 * n)):
        acq = p[which]
        m = _z_margin(acq, voxel)
        z, y, x = scan_axes((0.0, 0.0, 0.0), (size,) * 3, voxel, z_margin=m)
        # positions (µm) -> index coordinates of the real grid (voxel i centred at (i + 1/2) v)
        grid = np.meshgrid(*(a / (v_real / 1000) - 0.5 for a in (z, y, x)), indexing="ij")
        mu = ndi.map_coordinates(truth_mu, grid, order=1, mode="nearest").astype(np.float32)
        del grid
        mu = mu.reshape(-1, 2, mu.shape[1], mu.shape[2]).mean(axis=1)
        c = n * v_real / 1000 / 2
        mu = _support(mu, y, x, (c, c), r_real * v_real / 1000)
        noise_seed = int(_rng(seed, "real", list(REAL_VOLUMES).index(name), 0 if which == "lq" else 1).integers(2**31))
        rec = acquire_slices(mu, voxel, z_margin=m, rings=p["rings"], progress=progress, desc=f"{name} {which}",
                             seed=noise_seed, **acq)
        result[which] = rec
        result[f"{which}_grey"] = mu_to_grey(rec, p["grey_offset"], p["grey_per_inv_um"])
    return result


# --------------------------------------------------------------------------- the beamline


def _validate(p):
    shape = tuple(int(s) for s in p["lq_shape"])
    if len(shape) != 3 or shape[1] != shape[2] or any(s % 4 for s in shape) or min(shape) < 8:
        raise ValueError(f"lq_shape must be (Z, N, N) with every size a multiple of 4 and >= 8, got {p['lq_shape']}")
    if abs(p["lq_voxel_nm"] - 2 * p["hq_voxel_nm"]) > 1e-9:
        raise ValueError(f"the HQ voxel must be half the LQ voxel, got {p['hq_voxel_nm']} and {p['lq_voxel_nm']} nm")
    if not 1 / math.sqrt(2) + 0.05 < p["sample_radius_fraction"] <= 0.95:
        raise ValueError("sample_radius_fraction must be in (0.76, 0.95]: the HQ region must lie inside the sample "
                         "and the sample inside the reconstruction circle")
    for key in ("insitu_radius_growth", "crack_width_um", "dense_thickness_um", "dense_coverage"):
        if len(p[key]) != 3:
            raise ValueError(f"{key} must give one value per time step (T0, T1, T2), got {p[key]}")
    return shape


def simulate_beamline(out_dir, preset="default", seed=0, progress=True, **overrides):
    """Simulate the LQ/HQ training pair and the in situ series, with truth, into ``out_dir``.

    Writes (every file atomically, ``meta.json`` last)::

        lq.tif                  uint16 (Z, Y, X), 100 nm, whole volume of sample A
        hq.tif                  uint16 (2Z/2, ...), 50 nm, central 1/8 of A, sample moved by Φ
        truth_labels_hq.tif     uint8 labels on the HQ grid (mode of the 25 nm labels), moved by Φ
        truth_mu_hq.tif         float32 attenuation (1/µm) on the HQ grid (mean of 25 nm), moved by Φ
        insitu_t{0,1,2}.tif     uint16 LQ scans of sample B at three time steps
        insitu_t{k}_labels.tif  uint8 labels of B on the 50 nm grid (2x the LQ grid)
        meta.json               geometry, Φ, doses, grey mapping, sha256 of every file

    Grey values: ``round(grey_offset + grey_per_inv_um · μ)`` clipped to uint16
    (``meta["grey_mapping"]``). The same preset and seed give byte-identical files.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created; existing files of the same names are replaced).
    preset : {"tiny", "default", "paper"}
        Sizes: tiny 32³ LQ voxels (seconds), default 128³ (about 3 CPU
        minutes, 0.7 GB of memory), paper 512³ (for a large machine: hours of
        CPU and ~20 GB of memory; the simulation does not use a GPU).
    seed : int
        Non-negative seed of every random draw.
    progress : bool
        tqdm bars over slices.
    **overrides
        Replace entries of the preset (see :data:`PRESETS`).

    Returns
    -------
    dict
        The content of ``meta.json``.
    """
    from . import __version__
    from .io import write_volume

    p = resolve(PRESETS, preset, **overrides)
    shape = _validate(p)
    _rng(seed, "phantom")  # validates the seed early
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_lq, v_hq = float(p["lq_voxel_nm"]), float(p["hq_voxel_nm"])
    att = p["attenuation_per_um"]
    grey = {"offset": float(p["grey_offset"]), "per_inv_um": float(p["grey_per_inv_um"])}
    acq_seed = lambda stream, *extra: int(_rng(seed, stream, *extra).integers(2**31))  # noqa: E731

    m_lq, m_hq = _z_margin(p["lq"], v_lq), _z_margin(p["hq"], v_hq)
    # one bar over slices: rasterised planes (2 per slice), projected and reconstructed slices
    scan_units = lambda z, m: 2 * (z + 2 * m) + (z + 2 * m) + z  # noqa: E731
    total = 4 * scan_units(shape[0], m_lq) + scan_units(2 * shape[0] // 2, m_hq) + 2 * shape[0] + 3 * 2 * shape[0]
    bar = tqdm(total=total, desc=f"simulate {preset}", unit="slice", disable=not progress)

    def write(name, array, voxel, kind):
        extra = {"kind": kind, "preset": preset, "seed": int(seed)}
        if array.dtype == np.uint16:
            extra["grey_mapping"] = grey
        write_volume(out / name, array, voxel_size_nm=voxel, extra=extra)

    # sample A: the training pair
    phantom = build_phantom(p, seed, "phantom", progress=False)
    lq_mu, lq_labels, lq_inside = scan_phantom(phantom, (0, 0, 0), shape, v_lq, p["lq"], att, rings=p["rings"],
                                               seed=acq_seed("lq"), progress=bar, desc="LQ")
    write("lq.tif", mu_to_grey(lq_mu, grey["offset"], grey["per_inv_um"]), v_lq, "lq scan")
    fractions_a = phase_fractions(lq_labels, lq_inside)
    del lq_mu, lq_labels, lq_inside

    start = np.asarray(shape) // 4
    stop = start + np.asarray(shape) // 2
    hq_shape = tuple(int(s) for s in 2 * (stop - start))
    mis = draw_misalignment(p, seed)
    phi = np.asarray(mis["phi"])
    start_um = start * v_lq / 1000.0
    centre_um = start_um + np.asarray(hq_shape) * v_hq / 1000.0 / 2  # physical centre of the HQ volume
    motion = (phi[:3, :3], phi[:3, 3] * v_hq / 1000.0, centre_um)  # Φ's translation is in HQ voxels
    hq_disc = hq_shape[1] / 2 - 1
    hq_mu, _, _ = scan_phantom(phantom, 2 * start, hq_shape, v_hq, p["hq"], att, rings=p["rings"], motion=motion,
                               support_radius_vox=hq_disc, seed=acq_seed("hq"), progress=bar, desc="HQ")
    write("hq.tif", mu_to_grey(hq_mu, grey["offset"], grey["per_inv_um"]), v_hq, "hq scan")
    del hq_mu
    # truth on the HQ grid from the 25 nm sub-voxels, moved like the HQ scan
    fine = subdivision_axes(start_um, hq_shape, v_hq, factor=2)
    labels_f, inside_f = rasterise(phantom, *fine, rotation=motion[0], translation_um=motion[1], centre_um=centre_um,
                                   progress=bar, desc="truth")
    write("truth_labels_hq.tif", block_mode(labels_f), v_hq, "truth labels")
    write("truth_mu_hq.tif", block_mean(attenuation_of(labels_f, inside_f, att)), v_hq, "truth attenuation (1/um)")
    del labels_f, inside_f

    # sample B: the in situ series (an unseen sample, LQ only, centres fixed over time)
    base = build_phantom(p, seed, "insitu_phantom", progress=False)
    base, onset, dense_flag = add_insitu_features(base, p, seed)
    insitu = []
    lab_axes = subdivision_axes((0.0, 0.0, 0.0), shape, v_lq, factor=2)
    for k in range(3):
        state = insitu_state(base, k, p, onset, dense_flag)
        rec, _, _ = scan_phantom(state, (0, 0, 0), shape, v_lq, p["lq"], att, rings=p["rings"],
                                 seed=acq_seed("insitu_scan", k), progress=bar, desc=f"in situ T{k}")
        write(f"insitu_t{k}.tif", mu_to_grey(rec, grey["offset"], grey["per_inv_um"]), v_lq, f"in situ T{k} scan")
        labels_k, inside_k = rasterise(state, *lab_axes, progress=bar, desc=f"T{k} labels")
        write(f"insitu_t{k}_labels.tif", labels_k, v_lq / 2, f"in situ T{k} truth labels")
        insitu.append({"step": k, "radius_growth": float(p["insitu_radius_growth"][k]),
                       "crack_width_um": float(p["crack_width_um"][k]),
                       "open_cracks": int(np.sum(state.crack_width_um > 0)),
                       "phase_fractions": phase_fractions(labels_k, inside_k)})
        del rec, labels_k, inside_k

    bar.close()
    names = ["lq.tif", "hq.tif", "truth_labels_hq.tif", "truth_mu_hq.tif"]
    names += [f"insitu_t{k}.tif" for k in range(3)] + [f"insitu_t{k}_labels.tif" for k in range(3)]
    meta = {
        "version": __version__,
        "preset": preset,
        "seed": int(seed),
        "voxel_size_nm": {"lq": v_lq, "hq": v_hq, "phantom": v_hq / 2},
        "lq_shape": list(shape),
        "hq_shape": list(hq_shape),
        "hq_region_in_lq": {"start_vox": [int(s) for s in start], "stop_vox": [int(s) for s in stop]},
        "hq_disc_radius_vox": float(hq_disc),
        "misalignment": mis,
        "dose": {"lq": float(p["lq"]["dose"]), "hq": float(p["hq"]["dose"])},
        "acquisition": {"lq": dict(p["lq"]), "hq": dict(p["hq"]), "rings": bool(p["rings"]),
                        "projection": "parallel beam over 180 deg, skimage radon/iradon, 2x finer projection grid"},
        "grey_mapping": grey,
        "attenuation_per_um": dict(att),
        "phases": {str(i): n for i, n in enumerate(PHASE_NAMES)},
        "sample": {
            "sample_radius_um": float(phantom.sample_radius_um),
            "n_particles": int(phantom.n_particles),
            "phase_fractions": fractions_a,
            "particle_volume_fraction_target": float(p["particle_volume_fraction"]),
            "radius_median_um": float(p["radius_median_um"]),
            "radius_log_sigma": float(p["radius_log_sigma"]),
        },
        "insitu": {"n_particles": int(base.n_particles), "n_cracks": int(len(onset)),
                   "dense_particles": int(dense_flag.sum()), "steps": insitu,
                   "labels_voxel_size_nm": v_lq / 2},
        "files": {name: file_sha256(out / name) for name in names},
    }
    with atomic_path(out / "meta.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return meta
