"""The whole registration step (the ``indi4d register`` command): two scans in, a pairs folder out.

:func:`register_scans` reads the LQ and HQ scans, registers the ×2-upscaled
LQ crop onto HQ (:mod:`.spam_driver`), resamples the LQ scan with the
recovered Φ (:mod:`.geometry`), builds the slice pairs (:func:`build_pairs`)
and writes them with :func:`indi4d.core.pairs.save_pairs`.
"""

import time
import warnings
from pathlib import Path

import numpy as np

from .. import __version__, runs
from ..core import pairs, preprocess
from ..files import file_sha256, read_json
from ..io import read_volume, volume_sha256
from ..presets import resolve
from ..safety import check_output
from .geometry import hq_region, misalignment_error, resample_lq_onto_hq
from .parameters import PRESETS, REGISTRATION_KEYS
from .spam_driver import RegistrationError, register_volumes


def _load_scan(path, what):
    volume, vmeta = read_volume(path)
    if volume.ndim != 3:
        raise ValueError(f"{path}: the {what} scan must be a 3D (Z, Y, X) volume, got shape {volume.shape}")
    if not np.issubdtype(volume.dtype, np.number) or np.iscomplexobj(volume):
        raise ValueError(f"{path}: the {what} scan has non-numeric dtype {volume.dtype}")
    if np.issubdtype(volume.dtype, np.floating) and not np.all(np.isfinite(volume)):
        raise ValueError(f"{path}: the {what} scan contains NaN or infinite values")
    if volume.min() == volume.max():
        raise ValueError(f"{path}: the {what} scan is constant ({volume.min()}); nothing to register")
    return volume, vmeta.get("voxel_size_nm")


def _disc_radius(params, meta, hq):
    """Radius (HQ pixels) of the reconstruction disc, and where it came from.

    A preset parameter wins, then ``meta.json``, then an estimate from the HQ data.
    """
    if params["disc_radius"]:
        return float(params["disc_radius"]), "parameter"
    if meta is not None and meta.get("hq_disc_radius_vox"):
        return float(meta["hq_disc_radius_vox"]), "meta.json"
    return preprocess.estimate_disc_radius(hq), "estimated from the HQ data"


def _load_halves(paths, hq, hq_vs, hq_path):
    """Read the two HQ halves and check they lie on HQ's grid (shape and voxel size), naming the file if not."""
    if len(paths) != 2:
        raise ValueError(f"hq_halves must be two files (half A, half B), got {len(paths)}: {list(paths)}")
    halves = []
    for path in paths:
        half, vs = _load_scan(Path(path), "HQ half")
        if half.shape != hq.shape:
            raise ValueError(f"{path}: the HQ half has shape {half.shape}, but the HQ scan {hq_path} has "
                             f"{hq.shape}; the halves must be reconstructions on HQ's grid")
        if (vs is None) != (hq_vs is None) or (vs is not None and not np.isclose(float(vs), float(hq_vs),
                                                                                   rtol=1e-3)):
            raise ValueError(f"{path}: the HQ half has voxel size {vs} nm, but the HQ scan {hq_path} has "
                             f"{hq_vs} nm; the halves must be reconstructions on HQ's grid")
        halves.append(half)
    return halves


def build_pairs(lq_aligned, hq, mask, params, seed, hq_halves=None, normalisation=None):
    """Equalise, scale, mask and split two aligned volumes into xy slice pairs.

    Parameters
    ----------
    lq_aligned, hq : ndarray, shape (Z, H, W)
        The LQ scan resampled onto the HQ grid, and the HQ scan (grey values).
    mask : ndarray of bool, shape (H, W)
        Reconstruction disc: the normalisation is fitted inside it, and both
        scans are set to -1 outside it.
    params : dict
        A resolved :data:`PRESETS` entry (``equalisation``, ``n_quantiles``,
        ``z_margin``, ``val_fraction``, ``test_fraction``, ``guard_slices``).
    seed : int
        Seed of the split.
    hq_halves : (ndarray, ndarray), optional
        Two independent reconstructions of the HQ scan on HQ's grid (grey
        values, shape of ``hq``). HQ is the fixed image of the registration, so
        they need no resampling: they take HQ's slices, HQ's mask and HQ's
        normalisation parameters (fitted on ``hq`` alone).
    normalisation : dict, optional
        ``{"lq": params, "hq": params}`` to use instead of fitting them to
        these scans: a trained model's ``normalisation.json``, so that the
        model sees these pairs scaled as in its own training.

    Returns
    -------
    dict
        ``lq``, ``hq`` float32 (S, H, W) in [-1, 1]; ``z`` int (S,) slice
        indices; ``split`` str (S,); ``normalisation`` ``{"lq": params, "hq":
        params}``; ``dropped_z`` int (the guard slices); with ``hq_halves``
        also ``hq_a``, ``hq_b`` float32 (S, H, W) in [-1, 1].
    """
    method = params["equalisation"]
    if normalisation is None:
        normalisation = {
            "lq": preprocess.fit_normalisation(lq_aligned, mask, method=method, n_quantiles=params["n_quantiles"]),
            "hq": preprocess.fit_normalisation(hq, mask, method=method, n_quantiles=params["n_quantiles"]),
        }
    zm = int(params["z_margin"])
    z_all = np.arange(zm, hq.shape[0] - zm)
    labels = preprocess.split_slices(z_all.size, params["val_fraction"], params["test_fraction"],
                                     guard=params["guard_slices"], seed=seed)
    keep = labels != "guard"
    z = z_all[keep]
    lq_n = preprocess.normalise(lq_aligned[z], normalisation["lq"])
    hq_n = preprocess.normalise(hq[z], normalisation["hq"])
    # outside the reconstruction disc there is no data: both set to -1 (black)
    lq_n[:, ~mask] = -1.0
    hq_n[:, ~mask] = -1.0
    out = {"lq": lq_n, "hq": hq_n, "z": z, "split": labels[keep], "normalisation": normalisation,
           "dropped_z": z_all[~keep]}
    if hq_halves is not None:
        for name, half in zip(("hq_a", "hq_b"), hq_halves):
            if half.shape != hq.shape:
                raise ValueError(f"build_pairs: {name} {half.shape} must have the shape of hq {hq.shape}")
            # HQ's parameters: the halves live in HQ's grey units (values beyond HQ's range clip to ±1)
            out[name] = preprocess.normalise(half[z], normalisation["hq"])
            out[name][:, ~mask] = -1.0
    return out


def _input_record(path, volume, voxel_size_nm):
    return {"path": str(path), "sha256": volume_sha256(path), "shape": list(volume.shape), "dtype": str(volume.dtype),
            "voxel_size_nm": voxel_size_nm}


def _split_record(built, guard_slices):
    z, split = built["z"], built["split"]
    blocks = {s: [int(z[split == s].min()), int(z[split == s].max()) + 1] if np.any(split == s) else None
              for s in pairs.SPLITS}
    return {"counts": {s: int(np.sum(split == s)) for s in pairs.SPLITS}, "z_blocks": blocks,
            "guard_slices": int(guard_slices), "dropped_z": built["dropped_z"].tolist()}


def _registration_report(lq, hq, start, stop, radius, meta, preset, params):
    """Register the upscaled LQ crop onto HQ; the report of :func:`register_volumes` plus where and against what."""
    # near the edge of the HQ disc the HQ scan sees a truncated sample (an interior
    # scan) while LQ does not: register on the central part only
    reg_mask = preprocess.disc_mask(hq.shape, radius=max(1.0, params["registration_radius_fraction"] * radius))
    lq_up = resample_lq_onto_hq(lq, start, stop, order=params["interpolation_order"])
    report = register_volumes(lq_up, hq, reg_mask, preset=preset, **{k: params[k] for k in REGISTRATION_KEYS})
    report["registration_mask_radius_px"] = float(params["registration_radius_fraction"] * radius)
    report["hq_region_in_lq"] = {"start_vox": start.tolist(), "stop_vox": stop.tolist()}
    report["centre"] = [(n - 1) / 2.0 for n in hq.shape]
    if meta is not None and "misalignment" in meta and "phi" in meta["misalignment"]:
        applied = meta["misalignment"]
        report["applied"] = {k: applied[k] for k in ("translation_vox", "rotation_deg", "phi") if k in applied}
        report["error_vs_applied"] = misalignment_error(report["phi"], applied["phi"])
    return report


def register_scans(lq_path, hq_path, out_dir, meta_path=None, preset="default", seed=0, hq_start_vox=None,
                   allow_unconverged=False, progress=True, hq_halves=None, normalisation=None, **overrides):
    """Register an LQ/HQ scan pair and write the training pairs (the ``indi4d register`` command).

    Steps: crop the LQ region under the HQ scan, upscale it ×2, register it
    onto HQ with spam, resample the LQ scan onto HQ with the recovered Φ,
    mask the reconstruction disc, equalise and scale both to [-1, 1], slice
    into xy pairs and split them by contiguous z blocks.

    Parameters
    ----------
    lq_path, hq_path : str or Path
        The LQ (e.g. 100 nm) and HQ (50 nm) scans, (Z, Y, X) volumes.
    out_dir : str or Path
        The ``pairs`` folder to write: ``pairs.npz``, ``phi.json``,
        ``normalisation.json``, ``pairs.json`` (see :mod:`indi4d.core.pairs`).
        Checked before any work: it may not be, contain or lie inside an input.
    meta_path : str or Path, optional
        ``meta.json`` of a simulated data set (``hq_region_in_lq``; its
        ``misalignment`` is compared with the recovered Φ when present).
    preset : str
        Key of :data:`PRESETS`.
    seed : int
        Seed of the train/val/test split.
    hq_start_vox : sequence of int, optional
        Coarse (z, y, x) start of the HQ region in LQ voxels, without ``meta_path``.
    allow_unconverged : bool
        Write the pairs even when spam did not converge (with a warning).
    progress : bool
        Show a progress bar over the steps.
    hq_halves : (str or Path, str or Path), optional
        Two independent reconstructions of the HQ scan (e.g. the even and odd
        projection angles, Noise2Inverse: ``hq_half_a.tif``, ``hq_half_b.tif``
        of a simulation), on HQ's grid: same shape and voxel size as the HQ
        scan (checked before registering). They are stored in ``pairs.npz`` as
        ``hq_a`` and ``hq_b`` with HQ's slices, mask and normalisation.
    normalisation : dict, optional
        A fixed ``{"lq": params, "hq": params}`` (a trained model's
        ``normalisation.json``) instead of one fitted to these scans
        (:func:`build_pairs`); recorded in ``pairs.json``.
    **overrides
        Preset parameters to replace.

    Returns
    -------
    dict
        The content of ``phi.json``.

    Raises
    ------
    indi4d.safety.UnsafeOutputError
        When ``out_dir`` is, contains or lies inside an input, or cannot be written.
    RegistrationError
        When spam did not converge and ``allow_unconverged`` is False
        (its report is written as ``phi_unconverged.json``; earlier pairs in the folder are kept).
    ValueError
        For bad input, naming the file.
    """
    from tqdm import tqdm

    halves_paths = None if hq_halves is None else [Path(h) for h in hq_halves]
    check_output(out_dir, inputs=[lq_path, hq_path, meta_path, *(halves_paths or [])], kind="folder",
                 who="indi4d register")
    params = resolve(PRESETS, preset, **overrides)
    lq_path, hq_path, out_dir = Path(lq_path), Path(hq_path), Path(out_dir)
    steps = tqdm(total=5, desc="register", disable=not progress)
    t_start = time.perf_counter()

    steps.set_postfix_str("reading")
    lq, lq_vs = _load_scan(lq_path, "LQ")
    hq, hq_vs = _load_scan(hq_path, "HQ")
    halves = None if halves_paths is None else _load_halves(halves_paths, hq, hq_vs, hq_path)
    halves_record = None if halves is None else [_input_record(path, half, hq_vs)
                                                 for path, half in zip(halves_paths, halves)]
    if lq_vs and hq_vs and not np.isclose(float(lq_vs), 2.0 * float(hq_vs), rtol=1e-3):
        raise ValueError(f"{lq_path}, {hq_path}: voxel sizes {lq_vs} and {hq_vs} nm are not in a 2:1 ratio")
    meta = None
    if meta_path is not None:
        meta_path = Path(meta_path)
        meta = read_json(meta_path, "metadata of the scans")
    start, stop = hq_region(lq.shape, hq.shape, meta=meta, hq_start_vox=hq_start_vox,
                            source=str(meta_path) if meta_path else f"{hq_path} in {lq_path}")
    steps.update()

    steps.set_postfix_str("registering")
    radius, radius_source = _disc_radius(params, meta, hq)
    mask = preprocess.disc_mask(hq.shape, radius=max(1.0, radius - params["disc_margin"]))
    report = _registration_report(lq, hq, start, stop, radius, meta, preset, params)
    steps.update()

    if not report["converged"]:
        msg = (f"spam registration of {hq_path} onto {lq_path} did not converge: status {report['status']} "
               f"({report['status_text']}) after {report['iterations']} iterations")
        report["timing_s"] = {"total": time.perf_counter() - t_start, "registration": report["wall_s"]}
        phi_path = pairs.write_registration_report(out_dir, report)
        if not allow_unconverged:
            steps.close()
            raise RegistrationError(msg + f"; see {phi_path} (pass allow_unconverged / --allow-unconverged to use it anyway)")
        warnings.warn(msg + "; using it anyway (allow_unconverged)", stacklevel=2)

    steps.set_postfix_str("resampling")
    lq_aligned = resample_lq_onto_hq(lq, start, stop, report["phi"], order=params["interpolation_order"])
    steps.update()

    steps.set_postfix_str("normalising")
    built = build_pairs(lq_aligned, hq, mask, params, seed, hq_halves=halves, normalisation=normalisation)
    del halves
    steps.update()

    steps.set_postfix_str("writing")
    report["timing_s"] = {"total": time.perf_counter() - t_start, "registration": report["wall_s"]}
    provenance = {
        "indi4d_version": __version__,
        "inputs": {
            "lq": _input_record(lq_path, lq, lq_vs),
            "hq": _input_record(hq_path, hq, hq_vs),
            "meta": None if meta_path is None else {"path": str(meta_path), "sha256": file_sha256(meta_path)},
            "hq_halves": halves_record,
        },
        "preset": preset,
        "seed": int(seed),
        "parameters": params,
        "hq_region_in_lq": report["hq_region_in_lq"],
        "phi": {k: report[k] for k in ("phi", "translation_vox", "rotation_deg", "zoom", "status", "converged")},
        "mask": {"radius_px": float(radius - params["disc_margin"]), "disc_radius_px": radius, "source": radius_source,
                 "shape": list(mask.shape)},
        "normalisation": {"method": params["equalisation"], "outside_mask_value": -1.0,
                          "fitted_to_these_scans": normalisation is None},
        "split": _split_record(built, params["guard_slices"]),
        # the scans' point-spread functions as meta.json measured them (the HQ one deconvolves indi-deconv targets)
        "psf": None if meta is None else meta.get("psf"),
    }
    pairs.save_pairs(out_dir, built["lq"], built["hq"], mask, built["z"], built["split"], report,
                     built["normalisation"], provenance, hq_a=built.get("hq_a"), hq_b=built.get("hq_b"))
    steps.update()
    steps.close()
    return report


def register_run(run_dir, preset="default", seed=0, normalisation=None, progress=False):
    """Register a run folder's scans into its pairs folder: chapter 02's one call.

    Reads ``RUN_DIR/data/`` (chapter 01: ``lq.tif``, ``hq.tif``, ``meta.json``,
    and the HQ halves ``hq_half_a.tif`` / ``hq_half_b.tif`` when the data set
    has them) and writes ``RUN_DIR/pairs/`` with :func:`register_scans`. The
    ``tiny`` preset's toy volumes are too small for spam to converge on, so
    their pairs are written anyway (with a warning); every other preset
    refuses an unconverged registration.

    Parameters
    ----------
    run_dir : str or Path
        The run folder.
    preset : str
        Key of :data:`PRESETS`.
    seed : int
        Seed of the train/val/test split.
    normalisation : dict, optional
        A fixed ``{"lq": params, "hq": params}`` (a published network's,
        :func:`indi4d.pretrained.normalisation_for`); None fits it to these scans.
    progress : bool
        Show a progress bar over the steps.

    Returns
    -------
    dict
        The registration report (the content of ``phi.json``).

    Raises
    ------
    indi4d.runs.MissingArtifactError
        ``RUN_DIR/data`` lacks a scan or ``meta.json``, naming chapter 01.
    """
    scans = {k: runs.require_artifact(run_dir, "data", k) for k in ("lq", "hq", "meta")}
    halves = tuple(runs.artifact(run_dir, "data", k) for k in ("hq_half_a", "hq_half_b"))
    return register_scans(scans["lq"], scans["hq"], runs.stage_dir(run_dir, "pairs", create=True),
                          meta_path=scans["meta"], preset=preset, seed=seed,
                          hq_halves=halves if all(h.exists() for h in halves) else None,
                          allow_unconverged=preset == "tiny", progress=progress, normalisation=normalisation)
