"""In situ scores in physical units against the truth (chapter 06).

Every volume is compared as attenuation μ (1/µm) on the 50 nm grid, inside the
valid disc of :func:`indi4d.insitu.valid_disc`, with no grey-level fit: a
method that shifts or scales attenuation pays for it.

* the paper's CNR, ``|mean(particles) − mean(background)| / std(background)``,
  on the true labels: Si/SiOx particles against pore and carbon-binder, both
  eroded in-plane (the dense new phase is in neither class);
* PSNR and SSIM against the true attenuation (range of the truth);
* edge FWHM (nm) in xy slices and in xz slices (the resolution along z),
  :func:`indi4d.metrics.fwhm_edge_resolution` on the true particle mask, with
  the profiles that cross the dense phase left out;
* false and missed particles per mm², :func:`indi4d.metrics.hallucination_metrics`
  (a particle together with its dense shell counts as one particle);
* mean absolute error and bias per phase, over all voxels of the phase and over
  those within ``near_px`` of a phase boundary (the dense phase is a thin
  shell, so its voxels are compared with other boundary voxels).
"""

import numpy as np
from scipy import ndimage as ndi

from ..phases import BINDER, DENSE, PARTICLE, PHASE_NAMES, PORE


def _mask3d(mask, shape):
    m = np.asarray(mask, bool)
    return np.broadcast_to(m, shape) if m.shape == tuple(shape[-2:]) else m


def _erode_inplane(mask, margin_px):
    """Erode each z slice by ``margin_px`` (a (1, 3, 3) cross, applied ``margin_px`` times)."""
    if margin_px <= 0:
        return mask
    cross = np.zeros((3, 3, 3), bool)
    cross[1] = ndi.generate_binary_structure(2, 1)  # in-plane 4-neighbours only
    return ndi.binary_erosion(mask, structure=cross, iterations=int(margin_px))


def cnr_masks(labels, valid, margin_px=2):
    """Particle and background masks of the paper's CNR from the true labels.

    Parameters
    ----------
    labels : ndarray (Z, Y, X) of int
    valid : ndarray of bool, (Y, X) or the shape of ``labels``
    margin_px : int
        In-plane erosion of both classes (pixels), so blurred rims count as neither.

    Returns
    -------
    particles, background : ndarray of bool, shape of ``labels``
        ``PARTICLE`` voxels; ``PORE`` and ``BINDER`` voxels.
    """
    lab = np.asarray(labels)
    m = _mask3d(valid, lab.shape)
    particles = _erode_inplane(lab == PARTICLE, margin_px) & m
    background = _erode_inplane((lab == PORE) | (lab == BINDER), margin_px) & m
    return particles, background


def boundary_band(labels, near_px):
    """Voxels within ``near_px`` (6-connected steps) of a change of label."""
    lab = np.asarray(labels)
    edge = np.zeros(lab.shape, bool)
    for ax in range(lab.ndim):
        diff = np.diff(lab, axis=ax) != 0
        lo = [slice(None)] * lab.ndim
        hi = [slice(None)] * lab.ndim
        lo[ax], hi[ax] = slice(0, -1), slice(1, None)
        edge[tuple(lo)] |= diff
        edge[tuple(hi)] |= diff
    if near_px > 1:
        edge = ndi.binary_dilation(edge, ndi.generate_binary_structure(lab.ndim, 1), iterations=int(near_px) - 1)
    return edge


def phase_errors(pred_mu, truth_mu, labels, valid, near_px=2):
    """Mean absolute error and bias of ``pred_mu`` per true phase (1/µm).

    Parameters
    ----------
    pred_mu, truth_mu : ndarray (Z, Y, X), float, 1/µm
    labels : ndarray (Z, Y, X) of int
    valid : ndarray of bool, (Y, X) or (Z, Y, X)
    near_px : int
        Width of the boundary band (voxels).

    Returns
    -------
    dict
        ``{phase name: {"mae", "bias", "n", "mae_boundary", "bias_boundary",
        "n_boundary"}}`` with ``bias = mean(pred − truth)``; NaN where a phase has
        no voxels (e.g. the dense phase at T0).
    """
    err = np.asarray(pred_mu, np.float64) - np.asarray(truth_mu, np.float64)
    lab = np.asarray(labels)
    m = _mask3d(valid, lab.shape)
    band = boundary_band(lab, near_px) & m
    out = {}
    for p, name in enumerate(PHASE_NAMES):
        rec = {}
        for suffix, region in (("", (lab == p) & m), ("_boundary", (lab == p) & band)):
            e = err[region]
            rec["mae" + suffix] = float(np.mean(np.abs(e))) if e.size else float("nan")
            rec["bias" + suffix] = float(np.mean(e)) if e.size else float("nan")
            rec["n" + suffix] = int(e.size)
        out[name] = rec
    return out


def _fwhm(mu, geometry, voxel_nm, params, seed):
    """:func:`indi4d.metrics.fwhm_edge_resolution` along the profiles of one entry of :func:`edge_geometries`."""
    from ..metrics import fwhm_edge_resolution

    return fwhm_edge_resolution(mu, None, voxel_nm, n_groups=params["n_groups"], seed=seed, geometry=geometry)


def edge_geometries(labels, valid, params, seed=0):
    """Where :func:`score_volume` takes its edge profiles, from the truth alone: ``{"xy": ..., "xz": ...}``.

    The same for every method scored against the same truth, so the in situ
    chapter computes it once per time step (each entry is ``(s_px, points,
    normals)`` of :func:`indi4d.metrics.profiles.edge_geometry`; ``xz``: the
    volume with y as slice axis, for the resolution along z).
    """
    from ..metrics.profiles import edge_geometry

    lab = np.asarray(labels)
    particles = lab == PARTICLE
    # profiles that cross the dense phase are dropped (a brighter shell is no particle/background step)
    edge_valid = np.array(_mask3d(valid, lab.shape)) & (lab != DENSE)
    kw = {"half_length_px": params["half_length_px"], "max_profiles": params["max_profiles"], "seed": seed}
    return {"xy": edge_geometry(particles, edge_valid, **kw),
            "xz": edge_geometry(np.moveaxis(particles, 1, 0), np.moveaxis(edge_valid, 1, 0), **kw)}


def score_volume(pred_mu, truth_mu, labels, valid, voxel_nm, params, seed=0, profiles=False, data_range=None,
                 edges=None):
    """Every in situ score of one volume against the truth.

    Parameters
    ----------
    pred_mu : ndarray (Z, Y, X) float, 1/µm
        The method's attenuation on the 50 nm grid.
    truth_mu : ndarray, same shape, 1/µm
    labels : ndarray, same shape, int (phase labels)
    valid : ndarray of bool (Y, X)
    voxel_nm : float
    params : dict
        A preset of :data:`indi4d.insitu.PRESETS` (``margin_px``, ``near_px``,
        ``half_length_px``, ``n_groups``, ``max_profiles``, ``ssim_win``).
    seed : int
    profiles : bool
        Keep the mean edge profile and derivative of the xy FWHM (for the figure).
    data_range : float, optional
        ``R`` of PSNR and SSIM, 1/µm; default the truth's range inside the mask.
        Give the range of the phase attenuations to compare time steps with
        and without the dense phase on one scale.
    edges : dict, optional
        :func:`edge_geometries` of ``labels`` and ``valid`` with these ``params``
        and ``seed``, when several methods are scored against one truth;
        default: found here (the same result).

    Returns
    -------
    dict
        ``cnr``, ``psnr_db``, ``ssim``, ``fwhm_xy_nm``, ``fwhm_xy_nm_std``,
        ``fwhm_z_nm``, ``fwhm_z_nm_std``, ``false_particles_per_mm2``,
        ``missed_particles_per_mm2``, ``n_false_particles``, ``n_missed_particles``,
        ``n_true_particles``, ``phase_errors`` (:func:`phase_errors`),
        ``mae`` (all valid voxels); with ``profiles``: ``edge`` (``s_nm``,
        ``mean_edge``, ``mean_derivative``).
    """
    from ..metrics import cnr, hallucination_metrics, psnr, ssim

    pred = np.asarray(pred_mu, np.float32)
    truth = np.asarray(truth_mu, np.float32)
    lab = np.asarray(labels)
    if not pred.shape == truth.shape == lab.shape:
        raise ValueError(f"score_volume: shapes differ: prediction {pred.shape}, truth {truth.shape}, "
                         f"labels {lab.shape}")
    m3 = _mask3d(valid, lab.shape)
    rng = float(truth[m3].max() - truth[m3].min()) if data_range is None else float(data_range)
    part, back = cnr_masks(lab, valid, params["margin_px"])
    edges = edges or edge_geometries(lab, valid, params, seed)
    xy = _fwhm(pred, edges["xy"], voxel_nm, params, seed)
    # the resolution along z: the same measure in xz slices (y becomes the slice axis)
    xz = _fwhm(np.moveaxis(pred, 1, 0), edges["xz"], voxel_nm, params, seed)
    # the dense phase grows on particles and is brighter than them: a particle with its shell is one object
    hal = hallucination_metrics(pred, lab, voxel_nm, valid_mask=valid, particle_phase=(PARTICLE, DENSE))
    out = {
        "cnr": float(cnr(pred, part, back)),
        "psnr_db": float(psnr(pred, truth, mask=valid, data_range=rng)),
        "ssim": float(ssim(pred, truth, mask=valid, data_range=rng, win_size=params["ssim_win"])),
        "mae": float(np.mean(np.abs(pred[m3] - truth[m3]))),
        "fwhm_xy_nm": float(xy["fwhm_nm_mean"]), "fwhm_xy_nm_std": float(xy["fwhm_nm_std"]),
        "fwhm_z_nm": float(xz["fwhm_nm_mean"]), "fwhm_z_nm_std": float(xz["fwhm_nm_std"]),
        "n_edge_profiles": int(xy["n_profiles"]),
        "phase_errors": phase_errors(pred, truth, lab, valid, params["near_px"]),
    }
    for key in ("false_particles_per_mm2", "missed_particles_per_mm2", "n_false_particles", "n_missed_particles",
                "n_true_particles", "false_edge_fraction"):
        out[key] = hal[key]
    if profiles:
        out["edge"] = {"s_nm": xy["s_nm"], "mean_edge": xy["mean_edge"], "mean_derivative": xy["mean_derivative"],
                       "fwhm_nm": float(xy["fwhm_nm"])}
    return out


def dense_summary(scores, methods, times):
    """The out-of-domain error: the dense phase against the training phases' boundary voxels.

    Parameters
    ----------
    scores : dict
        ``scores[method][k]`` from :func:`score_volume` (``k`` the time index).
    methods : sequence of str
    times : sequence of int
        Indices into each method's list.

    Returns
    -------
    dict
        Per method: ``dense_mae``, ``dense_bias`` (1/µm, pooled over the time
        steps that have dense voxels, weighted by voxel count),
        ``known_boundary_mae``/``known_boundary_bias`` (particle, binder and pore
        voxels of the boundary band, pooled), ``ratio`` = dense / known MAE,
        ``dense_voxels``.
    """
    known = [n for i, n in enumerate(PHASE_NAMES) if i != DENSE]
    dense_name = PHASE_NAMES[DENSE]
    out = {}
    for method in methods:
        acc = {"d": [0.0, 0.0, 0], "k": [0.0, 0.0, 0]}
        for k in times:
            pe = scores[method][k]["phase_errors"]
            for tag, names, suffix in (("d", [dense_name], ""), ("k", known, "_boundary")):
                for name in names:
                    n = pe[name]["n" + suffix]
                    if n:
                        acc[tag][0] += pe[name]["mae" + suffix] * n
                        acc[tag][1] += pe[name]["bias" + suffix] * n
                        acc[tag][2] += n
        nan = float("nan")
        d_mae, d_bias = (acc["d"][0] / acc["d"][2], acc["d"][1] / acc["d"][2]) if acc["d"][2] else (nan, nan)
        k_mae, k_bias = (acc["k"][0] / acc["k"][2], acc["k"][1] / acc["k"][2]) if acc["k"][2] else (nan, nan)
        out[method] = {"dense_mae": d_mae, "dense_bias": d_bias, "known_boundary_mae": k_mae,
                       "known_boundary_bias": k_bias, "ratio": d_mae / k_mae if k_mae else nan,
                       "dense_voxels": int(acc["d"][2])}
    return out
