"""The continuous anode phantom: particles, carbon-binder domain, in situ changes.

A :class:`Phantom` is a list of ellipsoidal Si/SiOx particles packed in a
cylinder, a carbon-binder domain given by a thresholded smooth random field,
and (for the in situ sample) cracks and a dense surface phase. It has no grid:
:func:`indi4d.simulate.rasterisation.rasterise` evaluates it wherever a scan or
a truth volume needs it. All lengths in µm, positions in the sample frame (z, y, x).
"""

import dataclasses
import math

import numpy as np
from scipy import ndimage as ndi
from scipy import special

from ..phases import PARTICLE
from .presets import stream_rng
from .rasterisation import rasterise

# --------------------------------------------------------------------------- the sample


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
    rng = stream_rng(seed, stream)
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


# --------------------------------------------------------------------------- in situ changes


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
    rng = stream_rng(seed, "insitu_features")
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
