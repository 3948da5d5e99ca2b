"""The training sample scanned again with the LQ optics at another dose: a known out-of-domain case."""

import numpy as np

from ..presets import resolve
from .acquisition import mu_to_grey, scan_phantom
from .phantom import build_phantom
from .presets import PRESETS, _rng, _validate


def lq_scan_at_dose(dose, preset="default", seed=0, n_slices=None, progress=False, **overrides):
    """The LQ scan of sample A (the training sample) at another ``dose``, as uint16 grey values.

    The same phantom as ``lq.tif`` of :func:`~indi4d.simulate.simulate_beamline`
    (same preset and seed), the same LQ optics, rings and grey mapping; only the
    photon dose differs, and the noise is drawn from its own stream. The slab
    scanned is the first ``n_slices`` LQ slices, below the region the HQ scan
    (and so the training pairs) covers when ``n_slices`` <= Z/4.

    Parameters
    ----------
    dose : float
        Photons per detector pixel per projection (the preset's LQ dose is 500).
    preset : str
    seed : int
    n_slices : int, optional
        Slices of the slab (default the whole volume); a multiple of 4.
    **overrides
        Entries of the preset.

    Returns
    -------
    ndarray uint16 (n_slices, Y, X)
        On the preset's fixed grey scale, at the LQ voxel size.
    """
    if not dose > 0:
        raise ValueError(f"lq_scan_at_dose: dose must be > 0 photons, got {dose}")
    p = resolve(PRESETS, preset, **overrides)
    shape = _validate(p)
    nz = shape[0] if n_slices is None else int(n_slices)
    if not 0 < nz <= shape[0]:
        raise ValueError(f"lq_scan_at_dose: n_slices must be in 1..{shape[0]}, got {n_slices}")
    phantom = build_phantom(p, seed, "phantom", progress=False)
    noise_seed = int(_rng(seed, "dose", int(round(float(dose) * 1000))).integers(2**31))
    mu = scan_phantom(phantom, (0, 0, 0), (nz,) + shape[1:], float(p["lq_voxel_nm"]), dict(p["lq"], dose=float(dose)),
                      p["attenuation_per_um"], rings=p["rings"], seed=noise_seed, progress=progress,
                      desc=f"LQ at dose {dose:g}")
    mu = mu[0] if isinstance(mu, tuple) else mu
    return mu_to_grey(np.asarray(mu), float(p["grey_offset"]), float(p["grey_per_inv_um"]))
