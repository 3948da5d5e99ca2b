"""Presets of the simulated beamline, its random streams and its progress bars.

A preset fixes everything the simulation needs: the sample (particle sizes and
packing, binder, in situ changes), the two acquisitions (LQ and HQ optics,
dose, detector defects) and the fixed grey-value mapping. ``tiny`` runs in
seconds (tests), ``default`` in minutes (the book), ``workshop`` is the
default at about a third of the volume, ``paper`` needs a large machine. Every
random draw comes from a named, independent stream of one seed.
"""

import math

import numpy as np
from tqdm import tqdm

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

#: The book's sample: 128³ LQ voxels (12.8 µm), about 3 CPU minutes.
_DEFAULT = dict(
    _COMMON,
    lq_shape=(128, 128, 128),
    # particle radii: lognormal law (median, log std) truncated to a range; cracks only in the larger ones
    radius_median_um=0.6, radius_log_sigma=0.4, radius_range_um=(0.15, 2.5), crack_min_radius_um=0.6,
    binder_grid_nm=100.0,
    lq=dict(_ACQ_LQ), hq=dict(_ACQ_HQ),
    real_size=64, real_voxel_nm=100.0,
)

#: The default and what ``tiny`` (tests, seconds) and ``paper`` change in it.
PRESETS = {
    "tiny": dict(
        _DEFAULT,
        lq_shape=(32, 32, 32),
        radius_median_um=0.3, radius_log_sigma=0.35, radius_range_um=(0.12, 0.8), crack_min_radius_um=0.3,
        # thinner cracks and shells for the small particles of the tiny sample
        crack_width_um=(0.0, 0.05, 0.08), dense_thickness_um=(0.0, 0.05, 0.08),
        binder_grid_nm=50.0,
        lq=dict(_ACQ_LQ, n_angles=48), hq=dict(_ACQ_HQ, n_angles=48),
        real_size=32,
    ),
    "default": _DEFAULT,
    # workshop: the default beamline and sample (the default book's published network applies unchanged),
    # three quarters of its width and 48 slices (48 x 96 x 96 LQ voxels, 9.6 µm across): about a third of the volume
    "workshop": dict(_DEFAULT, lq_shape=(48, 96, 96), real_size=32),
    # paper: 51.2 µm LQ field of view; hours of CPU and ~20 GB of memory, never run in tests
    "paper": dict(
        _DEFAULT,
        lq_shape=(512, 512, 512),
        radius_median_um=0.8, radius_log_sigma=0.5, radius_range_um=(0.15, 3.0), crack_min_radius_um=0.8,
        lq=dict(_ACQ_LQ, n_angles=800), hq=dict(_ACQ_HQ, n_angles=800),
    ),
}

# --------------------------------------------------------------------------- seeds and progress

#: Independent random streams: np.random.SeedSequence([seed, stream]).
_STREAMS = {
    "phantom": 1, "misalignment": 2, "lq": 3, "hq": 4, "insitu_phantom": 5, "insitu_features": 6,
    "insitu_scan": 7, "real": 8,
}


def with_progress(iterable, progress, desc, weight=1):
    """Iterate with progress: a shared tqdm bar (advanced by ``weight`` per item), a bar of its own, or none."""
    if hasattr(progress, "update"):
        for item in iterable:
            yield item
            progress.update(weight(item) if callable(weight) else weight)
    else:
        yield from tqdm(iterable, desc=desc, disable=not progress, leave=False)


def stream_rng(seed, stream, *extra):
    """A generator for one named stream of a seed (independent of the other streams)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        shown = int(seed) if isinstance(seed, np.integer) else repr(seed)  # 20, not np.int64(20)
        raise ValueError(f"seed must be a non-negative int, got {shown}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), _STREAMS[stream], *extra]))


# --------------------------------------------------------------------------- checks


def check_preset(p):
    """Refuse a resolved preset the beamline cannot simulate; return the LQ shape (Z, N, N) as ints."""
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
