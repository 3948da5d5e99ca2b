"""The simulated beamline: the LQ/HQ training pair and the in situ series, with truth, into a folder."""

from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..files import file_sha256, write_json
from ..phases import PHASE_NAMES
from ..presets import resolve
from .acquisition import blur_margin, draw_misalignment, mu_to_grey, scan_phantom, subdivision_axes
from .calibration import measured_psf
from .phantom import add_insitu_features, build_phantom, insitu_state
from .presets import PRESETS, check_preset, stream_rng
from .rasterisation import attenuation_of, block_mean, block_mode, phase_fractions, rasterise


def simulate_beamline(out_dir, preset="default", seed=0, progress=True, **overrides):
    """Simulate the LQ/HQ training pair and the in situ series, with truth, into ``out_dir``.

    Writes (every file atomically, ``meta.json`` last)::

        lq.tif                  uint16 (Z, Y, X), 100 nm, whole volume of sample A
        hq.tif                  uint16 (2Z/2, ...), 50 nm, central 1/8 of A, sample moved by Φ
        hq_ideal.tif            uint16, the same HQ acquisition at infinite dose: same blur and motion,
                                no photon noise, no rings (the ceiling of any estimator trained on HQ)
        hq_half_a.tif           uint16, FBP of the even-indexed angles (0, 2, 4, ...) of hq.tif's sinogram
        hq_half_b.tif           uint16, FBP of the odd-indexed angles (1, 3, 5, ...) of the same sinogram
        truth_labels_hq.tif     uint8 labels on the HQ grid (mode of the 25 nm labels), moved by Φ
        truth_mu_hq.tif         float32 attenuation (1/µm) on the HQ grid (mean of 25 nm), moved by Φ
        insitu_t{0,1,2}.tif     uint16 LQ scans of sample B at three time steps
        insitu_t{k}_labels.tif  uint8 labels of B on the 50 nm grid (2x the LQ grid)
        meta.json               geometry, Φ, doses, grey mapping, HQ point-spread function, sha256 of every file

    The HQ sample is projected once; ``hq``, ``hq_ideal`` and the two halves
    are reconstructions of that one scan
    (:func:`indi4d.simulate.acquisition.acquire_scan_products`). The halves
    (Noise2Inverse) have independent photon noise, since they use disjoint
    projections, but the *same* rings, since the flat-field error is the same
    at every angle; their mean is ``hq`` up to grey-value rounding.
    ``meta["psf"]["hq"]`` is the HQ point-spread function measured on a
    calibration disc (:func:`indi4d.simulate.measured_psf`): ``sigma_nm``,
    ``fwhm_nm``, ``source``.

    Grey values: ``round(grey_offset + grey_per_inv_um · μ)`` clipped to uint16
    (``meta["grey_mapping"]``). The same preset and seed give byte-identical files.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created; existing files of the same names are replaced).
    preset : {"tiny", "default", "paper"}
        Sizes: tiny 32³ LQ voxels (seconds), default 128³ (about 3 CPU
        minutes, 0.7 GB of memory; the HQ ideal and halves add ~35 CPU s of
        reconstructions, the PSF calibration ~6 CPU s), paper 512³ (for a large machine: hours of
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
    from .. import __version__
    from ..io import write_volume

    p = resolve(PRESETS, preset, **overrides)
    shape = check_preset(p)
    stream_rng(seed, "phantom")  # validates the seed early
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    v_lq, v_hq = float(p["lq_voxel_nm"]), float(p["hq_voxel_nm"])
    att = p["attenuation_per_um"]
    grey = {"offset": float(p["grey_offset"]), "per_inv_um": float(p["grey_per_inv_um"])}
    acq_seed = lambda stream, *extra: int(stream_rng(seed, stream, *extra).integers(2**31))  # noqa: E731

    m_lq, m_hq = blur_margin(p["lq"], v_lq), blur_margin(p["hq"], v_hq)
    # one bar over slices: rasterised planes (2 per slice), projected and reconstructed slices
    scan_units = lambda z, m: 2 * (z + 2 * m) + (z + 2 * m) + z  # noqa: E731
    # the HQ scan has three more reconstructions (ideal and two halves)
    total = (4 * scan_units(shape[0], m_lq) + scan_units(2 * shape[0] // 2, m_hq) + 3 * shape[0] + 2 * shape[0]
             + 3 * 2 * shape[0])
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
    # one HQ scan, reconstructed four ways (the sample is projected once)
    hq_mu, _, _ = scan_phantom(phantom, 2 * start, hq_shape, v_hq, p["hq"], att, rings=p["rings"], motion=motion,
                               support_radius_vox=hq_disc, seed=acq_seed("hq"),
                               products=("scan", "ideal", "half_a", "half_b"), progress=bar, desc="HQ")
    for name, product, kind in (("hq.tif", "scan", "hq scan"),
                                ("hq_ideal.tif", "ideal", "hq scan at infinite dose, no rings"),
                                ("hq_half_a.tif", "half_a", "hq scan, FBP of the even-indexed angles"),
                                ("hq_half_b.tif", "half_b", "hq scan, FBP of the odd-indexed angles")):
        write(name, mu_to_grey(hq_mu.pop(product), grey["offset"], grey["per_inv_um"]), v_hq, kind)
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
    # the HQ point-spread function as a user would measure it (calibration disc, erf fit of its edge)
    psf_hq = measured_psf(preset, seed, "hq", **overrides)
    names = ["lq.tif", "hq.tif", "hq_ideal.tif", "hq_half_a.tif", "hq_half_b.tif", "truth_labels_hq.tif",
             "truth_mu_hq.tif"]
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
        "psf": {"hq": psf_hq},
        "hq_halves": {"hq_half_a.tif": "FBP of the even-indexed projection angles (0, 2, 4, ...) of the hq.tif scan",
                      "hq_half_b.tif": "FBP of the odd-indexed projection angles (1, 3, 5, ...) of the hq.tif scan",
                      "noise": "independent (disjoint projections)",
                      "rings": "shared (the flat-field error is the same at every angle)"},
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
    write_json(out / "meta.json", meta)
    return meta
