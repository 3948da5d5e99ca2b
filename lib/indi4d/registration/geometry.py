"""The geometry of the LQ/HQ misalignment: Φ, and the LQ scan resampled onto the HQ grid.

Convention (spam's; see CONTRIBUTING.md): Φ is a 4×4 deformation function about
the centre of the HQ volume, ``(shape - 1) / 2``, and the HQ scan shows the
sample moved by Φ relative to the ×2-upscaled LQ crop::

    hq ≈ spam.DIC.applyPhi(lq_up, Φ)          i.e.  hq(x) = lq_up(Φ⁻¹·x)
    Φ  = spam.DIC.register(lq_up, hq)["Phi"]  (spam: im1(x) = im2(Φ·x))

:func:`compute_phi` / :func:`decompose_phi` go between Φ and a translation
(voxels) and a rotation vector (degrees); :func:`misalignment_error` compares a
recovered Φ with a known one; :func:`hq_region` says where the HQ scan lies in
the LQ scan; :func:`resample_lq_onto_hq` cuts, upscales and aligns the LQ scan
in one interpolation.
"""

import warnings

import numpy as np
import scipy.ndimage as ndi

from .._spam import import_spam


def decompose_phi(phi):
    """Translation, rotation and zoom of a 4×4 Φ (``spam.deformation.decomposePhi``).

    Parameters
    ----------
    phi : array_like, shape (4, 4)

    Returns
    -------
    dict
        ``translation_vox`` [z, y, x] (voxels), ``rotation_deg`` [rz, ry, rx]
        (spam's rotation vector, degrees), ``zoom`` [z, y, x], all lists of float.
    """
    deformation = import_spam("deformation")
    d = deformation.decomposePhi(np.asarray(phi, dtype=float))
    return {
        "translation_vox": [float(v) for v in d["t"]],
        "rotation_deg": [float(v) for v in d["r"]],
        "zoom": [float(v) for v in d["z"]],
    }


def compute_phi(translation_vox=(0.0, 0.0, 0.0), rotation_deg=(0.0, 0.0, 0.0)):
    """The 4×4 Φ of a rigid motion (``spam.deformation.computePhi``), as a float64 array."""
    deformation = import_spam("deformation")
    return np.asarray(deformation.computePhi({"t": list(translation_vox), "r": list(rotation_deg)}), dtype=float)


def misalignment_error(phi, reference_phi):
    """How far a recovered Φ is from a known one.

    Parameters
    ----------
    phi, reference_phi : array_like, shape (4, 4)
        Recovered and true Φ (same centre).

    Returns
    -------
    dict
        ``translation_vox`` (Euclidean norm of the translation difference,
        voxels), ``rotation_deg`` (angle of the relative rotation, degrees),
        ``zoom`` (largest |zoom difference|).
    """
    a, b = decompose_phi(phi), decompose_phi(reference_phi)
    dt = np.subtract(a["translation_vox"], b["translation_vox"])
    ra = compute_phi(rotation_deg=a["rotation_deg"])[:3, :3]
    rb = compute_phi(rotation_deg=b["rotation_deg"])[:3, :3]
    # angle of R_a R_b^T: cos(θ) = (trace - 1) / 2
    cos = np.clip((np.trace(ra @ rb.T) - 1.0) / 2.0, -1.0, 1.0)
    return {
        "translation_vox": float(np.linalg.norm(dt)),
        "rotation_deg": float(np.degrees(np.arccos(cos))),
        "zoom": float(np.max(np.abs(np.subtract(a["zoom"], b["zoom"])))),
    }


def apply_phi(volume, phi):
    """Apply Φ to a volume with spam's trilinear interpolator (``spam.DIC.applyPhi``).

    ``apply_phi(lq_up, Φ)`` brings the upscaled LQ crop onto the HQ scan.

    Parameters
    ----------
    volume : ndarray, shape (Z, Y, X)
    phi : array_like, shape (4, 4)
        About the volume centre ``(shape - 1) / 2``.

    Returns
    -------
    ndarray, float32, shape (Z, Y, X)
        Voxels mapped from outside the input are 0.
    """
    volume = np.asarray(volume)
    if volume.ndim != 3 or min(volume.shape) < 2:
        raise ValueError(f"apply_phi: expected a 3D volume, got shape {volume.shape}")
    return import_spam("DIC").applyPhi(volume.astype(np.float32), Phi=np.asarray(phi, dtype=float))


def hq_region(lq_shape, hq_shape, meta=None, hq_start_vox=None, source="meta.json"):
    """Where the HQ scan lies inside the LQ scan, in LQ voxels (half-open).

    Parameters
    ----------
    lq_shape, hq_shape : tuple of int
        (Z, Y, X) of the two scans.
    meta : dict, optional
        ``meta.json`` with ``hq_region_in_lq``.
    hq_start_vox : sequence of int, optional
        A coarse start (z, y, x) given by the user; used when ``meta`` is None.
        With neither, the HQ scan is assumed centred in the LQ scan.
    source : str
        Name of the metadata file, for the error messages.

    Returns
    -------
    start, stop : ndarray of int, shape (3,)
        ``stop - start == hq_shape / 2``.
    """
    lq_shape, hq_shape = np.asarray(lq_shape, int), np.asarray(hq_shape, int)
    if np.any(hq_shape % 2):
        raise ValueError(f"HQ volume shape {tuple(hq_shape)} must be even on every axis (two HQ voxels per LQ voxel)")
    size = hq_shape // 2
    if meta is not None:
        try:
            region = meta["hq_region_in_lq"]
            start, stop = np.asarray(region["start_vox"], int), np.asarray(region["stop_vox"], int)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{source}: no valid 'hq_region_in_lq' with 'start_vox' and 'stop_vox' ({exc!r})") from None
        if start.shape != (3,) or stop.shape != (3,):
            raise ValueError(f"{source}: 'hq_region_in_lq' must give 3 coordinates (z, y, x)")
        if np.any(stop - start != size):
            raise ValueError(
                f"{source}: hq_region_in_lq spans {tuple(stop - start)} LQ voxels but the HQ volume "
                f"{tuple(hq_shape)} needs {tuple(size)} (HQ shape = 2 x region)"
            )
    else:
        if hq_start_vox is None:
            start = (lq_shape - size) // 2
            warnings.warn(
                f"no meta.json and no hq_start_vox: assuming the HQ scan is centred in the LQ scan (start {tuple(start)})",
                stacklevel=2,
            )
        else:
            start = np.asarray(hq_start_vox, int)
            if start.shape != (3,):
                raise ValueError(f"hq_start_vox must be three integers (z, y, x), got {[int(v) if float(v).is_integer() else v for v in np.ravel(hq_start_vox)]}")
        stop = start + size
    if np.any(start < 0) or np.any(stop > lq_shape):
        raise ValueError(
            f"{source}: the HQ region {tuple(start)}..{tuple(stop)} is not inside the LQ volume of shape {tuple(lq_shape)}"
        )
    return start, stop


def resample_lq_onto_hq(lq, start, stop, phi=None, order=3):
    """Cut, upscale ×2 and align the LQ scan onto the HQ grid in one interpolation.

    Equivalent to ``apply_phi(upscale(lq[start:stop]), Φ)`` but with one cubic
    spline resampling instead of a cubic upscaling followed by a trilinear
    one (which would blur the LQ slices a second time), and with real LQ data
    (not zeros) where Φ reaches outside the crop.

    Parameters
    ----------
    lq : ndarray, shape (Z, Y, X)
        The whole LQ scan.
    start, stop : sequence of int
        The HQ region in LQ voxels (half-open), from :func:`hq_region`.
    phi : array_like, shape (4, 4), optional
        Φ about the centre of the HQ volume; default identity (plain upscaling).
    order : int
        Spline order (3 = cubic).

    Returns
    -------
    ndarray, float32, shape 2 * (stop - start)
    """
    lq = np.asarray(lq)
    start, stop = np.asarray(start, int), np.asarray(stop, int)
    out_shape = tuple(2 * (stop - start))
    phi = np.eye(4) if phi is None else np.asarray(phi, dtype=float)
    phi_inv = np.linalg.inv(phi)
    a, b = phi_inv[:3, :3], phi_inv[:3, 3]
    c = (np.asarray(out_shape) - 1) / 2.0
    # HQ voxel x samples lq_up at p = A (x - c) + b + c (spam's applyPhi), and
    # lq_up(p) = lq(start + (p + 0.5) / 2 - 0.5) on cell-centred grids.
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in out_shape], indexing="ij")).reshape(3, -1).T
    p = (corners - c) @ a.T + b + c
    if not np.all(np.isfinite(p)):
        raise ValueError(f"resample_lq_onto_hq: Φ is not finite (a diverged registration?): {phi.tolist()}")
    pad = order + 2  # LQ voxels the spline needs beyond the samples
    reach = int(np.ceil(np.max(np.abs(p - corners)) / 2.0)) + pad  # LQ voxels needed beyond the crop
    # the crop never needs more than the LQ volume and the spline's pad: beyond it the
    # samples are edge values ("nearest") anyway. Without this bound a diverged Φ
    # (translations of hundreds of voxels) asked for a crop of gigabytes.
    lo = np.maximum(start - reach, -pad)
    hi = np.minimum(stop + reach, np.asarray(lq.shape) + pad)
    # take the padded crop with edge values where it leaves the LQ volume
    idx = [np.clip(np.arange(l, h), 0, n - 1) for l, h, n in zip(lo, hi, lq.shape)]
    crop = lq[np.ix_(*idx)].astype(np.float32)
    matrix = a / 2.0
    offset = (b + c - a @ c + 0.5) / 2.0 - 0.5 + (start - lo)  # q = (A/2) x + offset in crop voxels
    return ndi.affine_transform(crop, matrix, offset=offset, output_shape=out_shape, order=order, mode="nearest").astype(np.float32)
