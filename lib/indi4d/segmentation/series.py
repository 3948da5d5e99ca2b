"""The images segmented in chapter 07: LQ, InDI and the ideal-HQ upper bound of every in situ time step.

All three are put on one grid (the truth's 50 nm voxels) and one grey scale:
attenuation (1/µm, through the beamline's fixed grey mapping, as in chapter
06), mapped linearly onto [-1, 1] by the span of the phase attenuations
(:func:`to_network_scale`). No image is fitted to another, so a network sees
the same physical contrast whichever image it segments.

* ``lq``: the LQ scan, x2 cubic-spline upscaled (:func:`indi4d.core.preprocess.upscale`);
* ``indi``: chapter 06's enhanced volume (``RUN_DIR/insitu/enhanced/<indi_method>_t<k>.tif``);
* ``ideal``: the upper bound. The in situ series was scanned with the LQ
  setting only, so there is no HQ scan of it, let alone an ideal one. What an
  ideal HQ scan (infinite dose, no rings) would show is the true attenuation
  blurred by the HQ point-spread function, which chapter 01 measured on its
  calibration disc (``meta["psf"]["hq"]["sigma_nm"]``): :func:`ideal_hq`.
"""

import numpy as np
from scipy import ndimage as ndi

from .. import runs
from ..phases import PHASE_NAMES


def attenuation_window(meta):
    """``(lo, hi)``: the smallest and largest phase attenuation (1/µm) of ``meta["attenuation_per_um"]``."""
    att = [float(meta["attenuation_per_um"][n]) for n in PHASE_NAMES]
    return min(att), max(att)


def to_network_scale(mu, window):
    """Attenuation (1/µm) -> the networks' scale: ``2 (mu - lo) / (hi - lo) - 1``, float32 (lo -> -1, hi -> 1)."""
    lo, hi = window
    return (2.0 * (np.asarray(mu, np.float32) - lo) / (hi - lo) - 1.0).astype(np.float32)


def hq_psf_sigma_nm(meta):
    """Gaussian sigma (nm) of the HQ scan's PSF: the measured one, else the detector blur of the HQ setting."""
    psf = (meta.get("psf") or {}).get("hq") or {}
    if psf.get("sigma_nm"):
        return float(psf["sigma_nm"])
    acq = ((meta.get("acquisition") or {}).get("hq") or {})
    if acq.get("blur_sigma_nm"):
        return float(acq["blur_sigma_nm"])
    raise ValueError("meta.json: neither psf.hq.sigma_nm nor acquisition.hq.blur_sigma_nm; the ideal-HQ upper "
                     "bound needs the HQ scan's blur (chapter 01)")


def ideal_hq(labels, meta, voxel_nm):
    """The ideal HQ image of a label volume: true attenuation blurred by the HQ PSF (1/µm, float32).

    Parameters
    ----------
    labels : ndarray, (Z, Y, X), uint8 phases
    meta : dict
        ``meta.json`` (``attenuation_per_um``, ``psf.hq.sigma_nm``).
    voxel_nm : float
        Voxel size of ``labels``.

    Returns
    -------
    ndarray, float32, the shape of ``labels``
    """
    from ..insitu import truth_attenuation

    sigma_vox = hq_psf_sigma_nm(meta) / float(voxel_nm)  # nm -> voxels
    return ndi.gaussian_filter(truth_attenuation(labels, meta), sigma_vox, mode="nearest").astype(np.float32)


def method_attenuation(method, series, i, run_dir, indi_method="indi_xy"):
    """The attenuation volume (1/µm, float32, the truth's grid) of ``method`` at time index ``i``.

    Raises
    ------
    indi4d.runs.MissingArtifactError
        ``indi``: chapter 06's volume is missing.
    """
    from ..core import preprocess
    from ..insitu import enhanced_path, grey_to_attenuation, read_enhanced

    if method == "lq":
        return grey_to_attenuation(preprocess.upscale(series["lq"][i], 2), series["meta"])
    if method == "indi":
        k = series["times"][i]
        path = enhanced_path(run_dir, indi_method, k)
        if not path.exists():
            raise runs.MissingArtifactError(f"{path} is missing: run chapter 06_insitu first with the same run_dir "
                                            f"({run_dir}).")
        return grey_to_attenuation(read_enhanced(path), series["meta"])
    if method == "ideal":
        return ideal_hq(series["labels"][i], series["meta"], series["voxel_nm"])
    raise ValueError(f"unknown method {method!r}; expected lq, indi or ideal")


def scored_region(shape, valid, z_train, holdout_px):
    """Where segmentations are scored: the valid disc of every slice but those near the training slice.

    Parameters
    ----------
    shape : (Z, Y, X)
    valid : ndarray, bool, (Y, X)
    z_train : int
    holdout_px : int
        Slices ``|z - z_train| <= holdout_px`` are left out.

    Returns
    -------
    ndarray, bool, ``shape``
    """
    z = np.arange(shape[0])
    keep = np.abs(z - int(z_train)) > int(holdout_px)
    return keep[:, None, None] & np.asarray(valid, bool)[None]


def slab_around(n, z, n_keep=None):
    """The slices ``(z0, z1)`` of a stack of ``n`` that keep ``n_keep`` of them centred on slice ``z``.

    The slab is shifted to stay inside the stack; ``n_keep`` None or at least
    ``n`` keeps every slice, ``(0, n)``.
    """
    if n_keep is None or int(n_keep) >= n:
        return 0, int(n)
    n_keep = int(n_keep)
    if n_keep < 1:
        raise ValueError(f"slab_around: n_keep must be at least 1, got {n_keep}")
    z0 = min(max(int(z) - n_keep // 2, 0), n - n_keep)
    return z0, z0 + n_keep


def pick_particle(labels, valid=None, margin_fraction=0.3):
    """A particle to follow through time: the largest one of ``labels`` whose grown box stays in the sample
    and that no face of the volume cuts.

    Parameters
    ----------
    labels : ndarray, (Z, Y, X), phases (the truth at the first time step)
    valid : ndarray, bool, (Y, X), optional
    margin_fraction : float
        The box is the particle's bounding box grown by this share of its size
        (room for the swelling) and 2 voxels.

    Returns
    -------
    box : tuple of slice
    particle : ndarray, bool, the box's shape
        The particle in ``labels`` (the reference to follow).
    """
    from .particles import separate_particles

    particles = separate_particles(labels)
    sizes = np.bincount(particles.ravel())
    sizes[0] = 0
    inside = np.ones(labels.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    for index in np.argsort(sizes)[::-1]:
        if sizes[index] == 0:
            break
        found = ndi.find_objects((particles == index).astype(np.int8))[0]
        box = tuple(slice(max(0, s.start - int(margin_fraction * (s.stop - s.start)) - 2),
                          min(n, s.stop + int(margin_fraction * (s.stop - s.start)) + 2))
                    for s, n in zip(found, labels.shape))
        # in the sample's disc, and not cut by the volume's first or last slice (a cut particle cannot be measured)
        if inside[box[1], box[2]].all() and found[0].start > 0 and found[0].stop < labels.shape[0]:
            return box, particles[box] == index
    raise ValueError("pick_particle: no particle lies inside the sample")


def follow_particle(labels, box, reference):
    """The particle of ``labels`` (one time step, one source) in ``box`` that overlaps ``reference`` most.

    Parameters
    ----------
    labels : ndarray, (Z, Y, X), phases
    box : tuple of slice
    reference : ndarray, bool, the box's shape

    Returns
    -------
    ndarray, bool, the box's shape (empty when no particle overlaps)
    """
    from .particles import separate_particles

    particles = separate_particles(labels[box])
    overlap = np.bincount(particles[reference], minlength=particles.max() + 1)
    overlap[0] = 0
    return particles == int(np.argmax(overlap)) if overlap.max() > 0 else np.zeros(reference.shape, bool)
