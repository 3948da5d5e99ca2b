"""Real X-ray CT microstructures (from ``spam.datasets``) pushed through the same scans.

A real volume is segmented into phases (Otsu), given the phases' attenuation
and read as if its voxels were as wide as an LQ voxel: a real microstructure at
the anode's scale with a known truth, scanned like the phantom.
"""

import numpy as np
from scipy import ndimage as ndi

from ..phases import BINDER, PARTICLE, PHASE_NAMES, PORE
from ..presets import resolve
from .acquisition import acquire_slices, blur_margin, cylinder_support, mu_to_grey, scan_axes
from .presets import PRESETS, stream_rng
from .rasterisation import attenuation_of

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
    from .._spam import import_spam

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
        m = blur_margin(acq, voxel)
        z, y, x = scan_axes((0.0, 0.0, 0.0), (size,) * 3, voxel, z_margin=m)
        # positions (µm) -> index coordinates of the real grid (voxel i centred at (i + 1/2) v)
        grid = np.meshgrid(*(a / (v_real / 1000) - 0.5 for a in (z, y, x)), indexing="ij")
        mu = ndi.map_coordinates(truth_mu, grid, order=1, mode="nearest").astype(np.float32)
        del grid
        mu = mu.reshape(-1, 2, mu.shape[1], mu.shape[2]).mean(axis=1)
        c = n * v_real / 1000 / 2
        mu = cylinder_support(mu, y, x, (c, c), r_real * v_real / 1000)
        stream = stream_rng(seed, "real", list(REAL_VOLUMES).index(name), 0 if which == "lq" else 1)
        noise_seed = int(stream.integers(2**31))
        rec = acquire_slices(mu, voxel, z_margin=m, rings=p["rings"], progress=progress, desc=f"{name} {which}",
                             seed=noise_seed, **acq)
        result[which] = rec
        result[f"{which}_grey"] = mu_to_grey(rec, p["grey_offset"], p["grey_per_inv_um"])
    return result
