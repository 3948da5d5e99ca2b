"""The in situ series of chapter 06: LQ scans, truth labels and both in physical units.

The simulated beamline (chapter 01) scans a second sample, never used in
training, at three time steps ``T0, T1, T2``: ``data/insitu_t{k}.tif`` (uint16
LQ grey values, 100 nm voxels) with ``data/insitu_t{k}_labels.tif`` (uint8 phase
labels of :mod:`indi4d.phases` on the 50 nm grid, twice the LQ grid). Grey values
and attenuation are tied by the fixed mapping of ``meta["grey_mapping"]``
(:func:`indi4d.simulate.acquisition.grey_to_mu`), and each phase has the
attenuation ``meta["attenuation_per_um"][phase name]``: every volume of the
chapter is compared in 1/µm, with no grey-level fit.
"""

import numpy as np

from .. import runs
from ..phases import PHASE_NAMES

#: Number of time steps of the simulated in situ series.
N_TIMES = 3


def grey_to_attenuation(grey, meta):
    """Grey values (uint16 units, any real dtype) -> attenuation μ (1/µm, float32).

    Parameters
    ----------
    grey : ndarray, real
        Grey values on the fixed scale of the simulated scans.
    meta : dict
        ``meta.json`` of the data folder (``grey_mapping`` with ``offset`` and ``per_inv_um``).

    Returns
    -------
    ndarray, float32, shape of ``grey``
    """
    from ..simulate.acquisition import grey_to_mu

    g = _grey_mapping(meta)
    return grey_to_mu(grey, g["offset"], g["per_inv_um"])


def attenuation_to_grey(mu, meta):
    """Attenuation μ (1/µm) -> uint16 grey values (rounded, clipped); the inverse of :func:`grey_to_attenuation`."""
    from ..simulate.acquisition import mu_to_grey

    g = _grey_mapping(meta)
    return mu_to_grey(mu, g["offset"], g["per_inv_um"])


def _grey_mapping(meta):
    g = meta.get("grey_mapping") if isinstance(meta, dict) else None
    if not isinstance(g, dict) or "offset" not in g or "per_inv_um" not in g:
        raise ValueError("meta.json: no 'grey_mapping' with 'offset' and 'per_inv_um'; the in situ chapter needs the "
                         "simulated beamline's fixed grey scale (chapter 01)")
    if not float(g["per_inv_um"]) > 0:
        raise ValueError(f"meta.json: grey_mapping.per_inv_um must be > 0, got {g['per_inv_um']}")
    return g


def truth_attenuation(labels, meta):
    """True attenuation of phase labels: ``meta["attenuation_per_um"][PHASE_NAMES[label]]``.

    Parameters
    ----------
    labels : ndarray of int (uint8), values in 0..3 (:mod:`indi4d.phases`)
    meta : dict
        ``meta.json`` with ``attenuation_per_um`` (1/µm per phase name).

    Returns
    -------
    ndarray, float32, shape of ``labels``, 1/µm
    """
    att = meta.get("attenuation_per_um") if isinstance(meta, dict) else None
    missing = [n for n in PHASE_NAMES if not isinstance(att, dict) or n not in att]
    if missing:
        raise ValueError(f"meta.json: 'attenuation_per_um' lacks the phases {missing}")
    lab = np.asarray(labels)
    if lab.size and (lab.min() < 0 or lab.max() >= len(PHASE_NAMES)):
        raise ValueError(f"labels must lie in 0..{len(PHASE_NAMES) - 1}, got {lab.min()}..{lab.max()}")
    table = np.array([att[n] for n in PHASE_NAMES], np.float32)
    return table[lab]


def valid_disc(shape_yx, meta, voxel_nm, margin_px=2):
    """The (Y, X) disc inside the sample cylinder where scores are taken.

    Parameters
    ----------
    shape_yx : (int, int)
        Slice shape on the scored grid.
    meta : dict
        ``meta.json``; ``sample.sample_radius_um`` is the radius of the sample
        cylinder (both simulated samples share it), else 0.92 of the half width.
    voxel_nm : float
        Voxel size of the scored grid (nm).
    margin_px : int
        The disc stays this many voxels inside the cylinder.

    Returns
    -------
    ndarray of bool, shape ``shape_yx``
    """
    from ..core.preprocess import disc_mask

    h, w = (int(s) for s in shape_yx)
    r_um = (meta.get("sample") or {}).get("sample_radius_um")
    radius = (float(r_um) * 1000.0 / float(voxel_nm)) if r_um else 0.92 * min(h, w) / 2.0
    return disc_mask((h, w), radius=max(1.0, radius - margin_px))


def load_series(run_dir, times=range(N_TIMES)):
    """The in situ LQ scans and their truth, as written by chapter 01.

    Parameters
    ----------
    run_dir : str or Path
    times : iterable of int
        Time steps to load.

    Returns
    -------
    dict
        ``lq`` list of uint16 (Z, Y, X) LQ volumes; ``labels`` list of uint8
        (2Z, 2Y, 2X) truth labels; ``meta`` (``meta.json``); ``lq_voxel_nm``,
        ``voxel_nm`` (of the labels, half the LQ voxel); ``paths`` {key: Path};
        ``times`` list of int.

    Raises
    ------
    indi4d.runs.MissingArtifactError
        When a file is missing (naming chapter 01).
    ValueError
        When a label volume is not on the grid twice the LQ grid.
    """
    from ..files import read_json
    from ..io import read_volume

    meta_path = runs.require_artifact(run_dir, "data", "meta")
    meta = read_json(meta_path, "the data folder's metadata")
    out = {"lq": [], "labels": [], "meta": meta, "paths": {}, "times": [int(k) for k in times]}
    for k in out["times"]:
        lq_path = runs.require_artifact(run_dir, "data", f"insitu_t{k}")
        lab_path = runs.require_artifact(run_dir, "data", f"insitu_t{k}_labels")
        lq, lq_meta = read_volume(lq_path, expect_ndim=3)
        labels, lab_meta = read_volume(lab_path, expect_ndim=3)
        if labels.shape != tuple(2 * s for s in lq.shape):
            raise ValueError(f"{lab_path}: labels of shape {labels.shape} are not on the grid twice that of "
                             f"{lq_path.name} {lq.shape}")
        out["lq"].append(lq)
        out["labels"].append(labels.astype(np.uint8))
        out["paths"][f"insitu_t{k}"] = lq_path
        out["paths"][f"insitu_t{k}_labels"] = lab_path
        out["lq_voxel_nm"] = float(lq_meta.get("voxel_size_nm") or meta["voxel_size_nm"]["lq"])
        out["voxel_nm"] = float(lab_meta.get("voxel_size_nm") or out["lq_voxel_nm"] / 2)
    return out
