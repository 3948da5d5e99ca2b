"""The training data of a pairs folder: checked slices and targets, seeded crops per epoch, fixed validation crops.

The targets (:data:`TARGETS`) are the HQ scan, the two Noise2Inverse HQ halves
(two channels, Noise2Noise), or those halves deconvolved by the HQ
point-spread function (:mod:`indi4d.core.deconvolution`).

InDI and both baselines take their batches from here, so with the same seed
they see the very same crops in the same order.
"""

from pathlib import Path

import numpy as np

SEED_STRIDE = 1_000_003  # epoch e of seed s draws its batches with seed s * stride + e

#: Default deconvolution of the ``"halves_deconv"`` targets (:func:`indi4d.core.deconvolution.deconvolve`).
DECONVOLUTION = {"method": "wiener", "nsr": 1e-2, "num_iter": 20}


#: What the networks are trained to produce (``load_training_slices(target=...)``).
TARGETS = ("hq", "halves", "halves_deconv")
#: What a training preset may ask for: a target, or ``"auto"`` (:func:`resolve_target`).
TARGET_CHOICES = ("auto", *TARGETS)
#: The one default target of every training (InDI's presets, the CNN and GAN baselines,
#: :func:`load_training_slices`): ``"auto"``, resolved per pairs folder by :func:`resolve_target`.
DEFAULT_TARGET = "auto"


def resolve_target(target, pairs_dir):
    """The training target a preset's ``target`` stands for on one pairs folder.

    ``"auto"`` is ``"halves"`` when the pairs hold the two Noise2Inverse HQ
    halves (``indi4d register --hq-halves``) and ``"hq"`` otherwise: denoised
    targets whenever the data allow them (chapter 04's ablation), the paper's
    HQ targets for a user with one HQ reconstruction. Other values pass through.
    """
    from ..core import pairs

    if target != "auto":
        return target
    return "halves" if pairs.has_hq_halves(pairs_dir) else "hq"


def hq_psf(pairs_dir, psf_sigma_nm=None, info=None):
    """The HQ point-spread function to deconvolve the targets with: ``{"sigma_nm", "source"}``.

    In order: ``psf_sigma_nm`` when given (the user's own measurement); the
    PSF the pairs' provenance recorded from the data's ``meta.json``
    (``meta["psf"]["hq"]``, measured on a calibration object by the simulated
    beamline); that ``meta.json`` itself when the provenance points to it and it
    still exists.

    Raises
    ------
    ValueError
        No PSF anywhere: the message names ``pairs.json`` and says to pass ``psf_sigma_nm``.
    """
    from ..core import pairs
    from ..files import read_json

    if psf_sigma_nm is not None:
        if not float(psf_sigma_nm) > 0:
            raise ValueError(f"psf_sigma_nm must be a positive length in nm, got {psf_sigma_nm}")
        return {"sigma_nm": float(psf_sigma_nm), "source": "given (psf_sigma_nm)"}
    info = pairs.load_pairs_info(pairs_dir) if info is None else info
    prov = info["provenance"]
    where = pairs.pairs_file(pairs_dir, "provenance")
    psf = (prov.get("psf") or {}).get("hq")
    if psf and psf.get("sigma_nm"):
        return {"sigma_nm": float(psf["sigma_nm"]), "source": f"{where}: psf.hq ({psf.get('source', 'meta.json')})"}
    meta = (prov.get("inputs") or {}).get("meta")
    if meta and Path(meta["path"]).is_file():
        psf = (read_json(meta["path"], "metadata of the scans").get("psf") or {}).get("hq")
        if psf and psf.get("sigma_nm"):
            return {"sigma_nm": float(psf["sigma_nm"]), "source": f"{meta['path']}: psf.hq"}
    raise ValueError(f"{where}: no HQ point-spread function recorded (neither in the pairs' provenance nor in a "
                     "meta.json with psf.hq); pass psf_sigma_nm (the HQ PSF's Gaussian std in nm, e.g. from "
                     "indi4d.core.deconvolution.sigma_from_edge on a measured edge profile)")


def _hq_voxel_nm(info, where):
    vs = ((info["provenance"].get("inputs") or {}).get("hq") or {}).get("voxel_size_nm")
    if not vs:
        raise ValueError(f"{where}: the HQ voxel size is not recorded in the provenance; it is needed to turn the "
                         "PSF from nm into pixels")
    return float(vs)


def _targets(pairs_dir, split, hq, target, info, psf, deconvolution):
    """HQ targets of one split: ``hq`` (n, H, W), or the two halves stacked (n, H, W, 2), deconvolved or not."""
    from ..core import deconvolution as deconv
    from ..core import pairs

    if target == "hq":
        return hq
    hq_a, hq_b = pairs.load_hq_halves(pairs_dir, split)
    if target == "halves_deconv":
        # deconvolution is linear in grey values only: denormalise, deconvolve, normalise (same filter on both halves,
        # so their noise stays independent and Noise2Noise still targets the deconvolved mean)
        hq_a, hq_b = (deconv.deconvolve_normalised(h, info["normalisation"]["hq"], psf["sigma_px"], mask=info["mask"],
                                                   **deconvolution) for h in (hq_a, hq_b))
    return np.stack([hq_a, hq_b], axis=-1)


def load_training_slices(pairs_dir, crop, target=DEFAULT_TARGET, psf_sigma_nm=None, deconvolution=None):
    """The training and validation slices of a pairs folder, checked for use by the loop.

    Parameters
    ----------
    pairs_dir : str or Path
        Chapter 02's pairs folder.
    crop : int
        Side of the training crops; the slices must be at least this large.
    target : {"auto", "hq", "halves", "halves_deconv"}
        What the network learns to produce (``"auto"``: :func:`resolve_target`). ``"hq"``: the HQ scan (n, H, W).
        ``"halves"``: the two independent HQ reconstructions ``hq_a``, ``hq_b``
        of ``pairs.npz`` stacked as (n, H, W, 2) (Noise2Noise: channel 0
        builds InDI's ``x_t``, channel 1 is the target; the training stream
        swaps them at random). ``"halves_deconv"``: each half first
        deconvolved by the HQ point-spread function (:func:`hq_psf`), in grey
        units, then stacked.
    psf_sigma_nm : float, optional
        The HQ PSF's Gaussian std in nm for ``"halves_deconv"``; default the
        one recorded with the data (``meta.json``'s ``psf.hq`` via the pairs'
        provenance); without either, a ValueError says to pass one.
    deconvolution : dict, optional
        Keywords of :func:`indi4d.core.deconvolution.deconvolve`: ``method``
        (``"wiener"`` or ``"richardson_lucy"``), ``nsr``, ``num_iter``;
        default :data:`DECONVOLUTION`.

    Returns
    -------
    dict
        ``lq_tr``, ``lq_va`` float32 (n, H, W) and ``hq_tr``, ``hq_va`` float32
        (n, H, W) or (n, H, W, 2), in [-1, 1]; ``mask`` bool (H, W)
        (reconstruction disc); ``normalisation`` (``{"lq": params, "hq": params}``);
        ``target``; ``psf`` (``sigma_nm``, ``sigma_px``, ``source``, the
        deconvolution keywords; None unless ``"halves_deconv"``).

    Raises
    ------
    ValueError
        No training or validation slices, non-finite values, slices smaller
        than ``crop``, no HQ halves for a halves target (the message says to
        register with ``--hq-halves``), or no PSF; the message names the file.
    """
    from ..core import pairs

    if target not in TARGET_CHOICES:
        raise ValueError(f"load_training_slices: unknown target {target!r}; expected one of {TARGET_CHOICES}")
    target = resolve_target(target, pairs_dir)
    lq_tr, hq_tr = pairs.load_pairs(pairs_dir, "train")
    lq_va, hq_va = pairs.load_pairs(pairs_dir, "val")
    info = pairs.load_pairs_info(pairs_dir)
    where = pairs.pairs_file(pairs_dir, "pairs")
    if lq_tr.shape[0] == 0:
        raise ValueError(f"{where}: no training slices")
    if lq_va.shape[0] == 0:
        raise ValueError(f"{where}: no validation slices (split == 'val')")
    if min(lq_tr.shape[1:]) < crop:
        raise ValueError(f"{where}: slices {tuple(int(s) for s in lq_tr.shape[1:])} are smaller than the crop {crop}")
    psf = None
    deconvolution = dict(DECONVOLUTION, **(deconvolution or {}))
    if target == "halves_deconv":
        psf = hq_psf(pairs_dir, psf_sigma_nm, info)
        psf["sigma_px"] = psf["sigma_nm"] / _hq_voxel_nm(info, pairs.pairs_file(pairs_dir, "provenance"))
        psf.update(deconvolution)
    hq_tr = _targets(pairs_dir, "train", hq_tr, target, info, psf, deconvolution)
    hq_va = _targets(pairs_dir, "val", hq_va, target, info, psf, deconvolution)
    for name, arr in (("train", lq_tr), ("train", hq_tr), ("val", lq_va), ("val", hq_va)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: the {name} slices contain NaN or infinite values")
    return {"lq_tr": lq_tr, "hq_tr": hq_tr, "lq_va": lq_va, "hq_va": hq_va, "mask": info["mask"],
            "normalisation": info["normalisation"], "target": target, "psf": psf}


def epoch_batch_source(slices, crop, batch_size, steps_per_epoch, seed, min_inside):
    """``train_batches(epoch)``: the seeded random crops of one epoch (``steps_per_epoch`` batches).

    Epoch ``e`` uses :func:`indi4d.core.pipeline.training_dataset` seeded
    ``seed * SEED_STRIDE + e``, so every epoch is reproducible on its own (a
    resumed run replays it).
    """
    from ..core import pipeline

    def train_batches(epoch):
        ds = pipeline.training_dataset(slices["lq_tr"], slices["hq_tr"], int(crop), int(batch_size),
                                       seed=int(seed) * SEED_STRIDE + int(epoch), mask=slices["mask"],
                                       min_inside=min_inside)
        return ds.repeat().take(int(steps_per_epoch))

    return train_batches


def _centre_crop(stack, size):
    """Centre ``size x size`` crop of a (n, H, W) or (n, H, W, c) stack."""
    h, w = stack.shape[1:3]
    y0, x0 = (h - size) // 2, (w - size) // 2
    return stack[:, y0:y0 + size, x0:x0 + size]


def validation_batches(lq, hq, crop, batch_size, max_slices, multiple):
    """Fixed validation batches: centre crops of up to ``max_slices`` evenly spaced slices.

    Parameters
    ----------
    lq : ndarray, float32, shape (n, H, W)
    hq : ndarray, float32, shape (n, H, W) or (n, H, W, 2)
        Two channels (HQ halves) stay in order: channel 0 builds ``x_t``, channel 1 is the target.
    crop : int
        Crop side; reduced to the slice size and rounded down to ``multiple``.
    batch_size, max_slices, multiple : int

    Returns
    -------
    list of (ndarray, ndarray)
        float32 lq (b, crop, crop, 1) and hq (b, crop, crop, c), c = 1 or 2.
    """
    n = lq.shape[0]
    if n == 0:
        raise ValueError("no validation slices")
    pick = np.unique(np.linspace(0, n - 1, min(n, max_slices)).round().astype(int))
    size = min(crop, lq.shape[1], lq.shape[2]) // multiple * multiple
    if size < multiple:
        raise ValueError(f"validation slices {tuple(int(s) for s in lq.shape[1:])} are smaller than the "
                         f"network's factor {multiple}")
    lq_c = _centre_crop(lq[pick], size)[..., None].astype(np.float32)
    hq_c = _centre_crop(hq[pick], size)
    hq_c = (hq_c[..., None] if hq_c.ndim == 3 else hq_c).astype(np.float32)
    return [(lq_c[i:i + batch_size], hq_c[i:i + batch_size]) for i in range(0, len(pick), batch_size)]


def slice_batches(slices, params, steps_per_epoch, seed, factor):
    """(``train_batches``, validation batches) of ``slices`` with the crop/batch parameters ``params``.

    ``params`` holds ``crop``, ``batch_size``, ``min_inside``, ``val_crop`` and
    ``val_max_slices`` (a training preset or an InDI budget).
    """
    train = epoch_batch_source(slices, params["crop"], params["batch_size"], steps_per_epoch, seed,
                               params["min_inside"])
    val = validation_batches(slices["lq_va"], slices["hq_va"], params["val_crop"], int(params["batch_size"]),
                             params["val_max_slices"], factor)
    return train, val
