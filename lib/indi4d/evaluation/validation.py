"""Chapter 04's first look at a trained network: its validation slices scored against HQ per step count N.

The edges are those of the true particles where the run has the truth
(``truth_labels_hq.tif``), else of an Otsu segmentation of HQ; every image is
scored by the averaged edge FWHM (:func:`indi4d.metrics.fwhm_edge_resolution`)
and by PSNR and SSIM against HQ inside the reconstruction disc. The scores go
to the model folder's ``validation_metrics.json``. Chapter 05 scores the test
slices against the truth (:mod:`indi4d.evaluation.scores`); these validation
scores only follow the network while it is built.
"""

import numpy as np

from ..metrics import fwhm_edge_resolution, psnr, ssim, two_phase_masks
from ..phases import PARTICLE
from .settings import VALIDATION_STEP_COUNTS


def validation_particles(run_dir, z, hq, mask):
    """The particles whose edges are scored on the validation slices, and where they come from.

    Parameters
    ----------
    run_dir : str or Path
        The run folder (``RUN_DIR/data/truth_labels_hq.tif`` is used when present).
    z : ndarray of int (n,)
        The validation slices' indices in the HQ volume.
    hq : ndarray (n, H, W)
        The HQ validation slices, in [-1, 1] (segmented when there is no truth).
    mask : ndarray of bool (H, W)
        The reconstruction disc.

    Returns
    -------
    particles : ndarray of bool (n, H, W)
    source : str
        ``"true phase labels of the simulated sample"`` or ``"Otsu segmentation of HQ"``.
    """
    from .. import runs
    from ..io import read_volume

    truth_path = runs.stage_dir(run_dir, "data") / "truth_labels_hq.tif"
    if truth_path.exists():
        labels, _ = read_volume(truth_path)
        return labels[z] == PARTICLE, "true phase labels of the simulated sample"
    return two_phase_masks(hq, valid_mask=mask)[2], "Otsu segmentation of HQ"


def validation_scores(images, hq, particles, pixel_nm, mask, seed=0):
    """Edge FWHM, overshoot, PSNR and SSIM of a stack of validation slices.

    Parameters
    ----------
    images : ndarray (n, H, W)
        The slices scored, in [-1, 1] (LQ, a restoration, or HQ itself).
    hq : ndarray (n, H, W)
        The HQ slices, in [-1, 1].
    particles : ndarray of bool (n, H, W)
        :func:`validation_particles`.
    pixel_nm : float
        The slices' pixel size, nm (:func:`indi4d.core.pairs.pixel_size_nm`).
    mask : ndarray of bool (H, W)
        The reconstruction disc.
    seed : int
        Seed of the edge-profile groups.

    Returns
    -------
    dict
        ``fwhm_nm``, ``fwhm_nm_mean``, ``fwhm_nm_std`` (nm), ``edge_overshoot``
        (fraction of the step), ``n_profiles``, and ``psnr_db``, ``ssim``
        (means over the slices; data range 2).
    """
    if pixel_nm is None:
        raise ValueError("validation_scores: the pairs record no pixel size (their HQ scan had no voxel size), "
                         "so edge widths cannot be given in nm")
    r = fwhm_edge_resolution(images, particles, pixel_nm, valid_mask=mask, seed=seed)
    return {
        "fwhm_nm": r["fwhm_nm"], "fwhm_nm_mean": r["fwhm_nm_mean"], "fwhm_nm_std": r["fwhm_nm_std"],
        "edge_overshoot": r["edge_overshoot"], "n_profiles": r["n_profiles"],
        "psnr_db": float(np.mean([psnr(a, b, mask=mask, data_range=2.0) for a, b in zip(images, hq)])),
        "ssim": float(np.mean([ssim(a, b, mask=mask, data_range=2.0) for a, b in zip(images, hq)])),
    }


def restore_validation(enhancer, lq, steps=VALIDATION_STEP_COUNTS, seed=0):
    """The validation slices restored by InDI with each step count N.

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
        The trained network (:func:`indi4d.inference.load_enhancer`).
    lq : ndarray (n, H, W)
        The LQ validation slices, in [-1, 1].
    steps : sequence of int
        The step counts N (default :data:`~indi4d.evaluation.settings.VALIDATION_STEP_COUNTS`).
    seed : int
        Seed of the sampler.

    Returns
    -------
    dict of int -> ndarray (n, H, W)
    """
    from ..inference import enhance_slices

    return {n: enhance_slices(enhancer, lq, steps=n, seed=seed, progress=False) for n in steps}


def validation_results(lq, hq, restored, particles, pixel_nm, mask, seed=0):
    """:func:`validation_scores` of the bicubic LQ, HQ and every restoration.

    Parameters
    ----------
    lq, hq : ndarray (n, H, W)
        The validation slices, in [-1, 1].
    restored : dict of int -> ndarray (n, H, W)
        :func:`restore_validation`.
    particles, pixel_nm, mask, seed
        As in :func:`validation_scores`.

    Returns
    -------
    dict
        ``"bicubic LQ"``, ``"HQ"`` and ``"InDI N=<n>"`` -> scores, in that order.
    """
    def score(images):
        return validation_scores(images, hq, particles, pixel_nm, mask, seed=seed)

    results = {"bicubic LQ": score(lq), "HQ": score(hq)}
    results.update({f"InDI N={n}": score(images) for n, images in restored.items()})
    return results


def validation_table(results):
    """The validation scores as a Markdown table, one row per image (HQ's PSNR against itself: inf).

    Parameters
    ----------
    results : dict
        :func:`validation_results`.

    Returns
    -------
    str
    """
    rows = ["| image | edge FWHM (nm) | groups mean ± std (nm) | overshoot | PSNR vs HQ (dB) | SSIM vs HQ | edges |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(f"| {name} | {r['fwhm_nm']:.0f} | {r['fwhm_nm_mean']:.0f} ± {r['fwhm_nm_std']:.0f} | "
                    f"{r['edge_overshoot']:.2f} | {r['psnr_db'] if name != 'HQ' else float('inf'):.2f} | "
                    f"{r['ssim']:.3f} | {r['n_profiles']} |")
    return "\n".join(rows)
