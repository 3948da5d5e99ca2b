"""The acquisition model: scanning a sample and reconstructing it, and moving it between scans.

Per z slice (:func:`acquire_slices`): parallel-beam projection of the
attenuation on a grid twice as fine as the scan (scikit-image's radon, for all
slices at once: :func:`.projection.radon_stack`), Beer-Lambert transmission, detector blur
(Gaussian along the detector row and along z) and pixel integration, sampling
at the scan's pixel size, photon counting (Poisson) at a dose in photons per
pixel, a per-pixel detector gain that the flat field corrects imperfectly
(constant over angles -> ring artefacts), ``-log`` and filtered
back-projection (``skimage.transform.iradon``). scikit-image is used rather
than astra-toolbox: it is already a dependency and deterministic on a CPU,
whereas astra adds ~380 MB of CUDA wheels for a speed-up we do not need at
these sizes.

Grey values of the written scans follow a fixed linear mapping
(:func:`mu_to_grey`, :func:`grey_to_mu`). :func:`draw_misalignment` draws the
small rigid motion of the sample between the LQ and the HQ scan.
"""

import math

import numpy as np
from scipy import ndimage as ndi

from .presets import stream_rng, with_progress
from .projection import radon_stack
from .rasterisation import attenuation_of, rasterise

# --------------------------------------------------------------------------- scan grids


def scan_axes(start_um, shape, voxel_nm, bin_factor=2, z_sub=2, z_margin=0):
    """Point coordinates (µm) of the grid a scan is projected from.

    In-plane the grid is ``bin_factor`` times finer than the scan and *aligned*
    with it: fine point ``b·j`` sits on the centre of scan pixel ``j``, so that
    the rotation axis of ``radon`` on the fine grid (index ``N // 2``) and of
    ``iradon`` on the scan grid (index ``M // 2``) coincide. Along z each scan
    slice is sampled at ``z_sub`` evenly spread points (averaged later: the
    detector pixel's extent along z), with ``z_margin`` extra slices each side
    so the detector blur sees the sample beyond the scanned rows.

    Returns
    -------
    z, y, x : ndarray, float64, shapes ((Z + 2 m) z_sub,), (b Y,), (b X,)
    """
    v = voxel_nm / 1000.0
    z0, y0, x0 = start_um
    nz, ny, nx = shape
    k = np.arange(-z_margin, nz + z_margin)
    z = (z0 + (k[:, None] + (np.arange(z_sub)[None, :] + 0.5) / z_sub) * v).ravel()
    y = y0 + (np.arange(ny * bin_factor) / bin_factor + 0.5) * v
    x = x0 + (np.arange(nx * bin_factor) / bin_factor + 0.5) * v
    return z, y, x


def subdivision_axes(start_um, shape, voxel_nm, factor=2):
    """Centres of the ``factor³`` sub-voxels of a grid (the HQ grid of an LQ grid, etc.), µm."""
    v = voxel_nm / 1000.0 / factor
    return tuple(s + (np.arange(n * factor) + 0.5) * v for s, n in zip(start_um, shape))


def blur_margin(acq, voxel_nm):
    return int(math.ceil(3 * acq["blur_sigma_nm"] / voxel_nm)) if acq["blur_sigma_nm"] > 0 else 0


#: What :func:`acquire_scan_products` can reconstruct from one set of projections.
SCAN_PRODUCTS = ("scan", "ideal", "half_a", "half_b")


def acquire_slices(mu, voxel_size_nm, *, n_angles, blur_sigma_nm, dose, gain_nonuniformity=0.0,
                   flat_field_error=0.0, rings=True, filter_name="shepp-logan", bin_factor=2, z_margin=0, seed=0,
                   progress=False, desc="scan"):
    """Scan a stack of attenuation slices and reconstruct it (parallel beam, FBP).

    Per detector pixel ``(z, u)`` and angle ``θ``:
    ``I = blur(exp(-∫ μ dl))`` sampled at the scan pitch,
    ``counts ~ Poisson(dose · g · I)`` with a pixel gain ``g``, flat-field
    corrected with an estimate ``ĝ = g (1 + ε)`` (``ε = 0`` when ``rings`` is
    False), ``p = -log(counts / (dose ĝ))``; each slice is then reconstructed by
    filtered back-projection. A residual ``ε`` is the same at every angle, so
    it back-projects into rings.

    Parameters
    ----------
    mu : ndarray, shape (Z, N, N)
        Attenuation (1/µm) on the grid of :func:`scan_axes`: in-plane spacing
        ``voxel_size_nm / bin_factor`` aligned with the scan pixels, z spacing
        ``voxel_size_nm``. Must be zero outside the disc of radius ``N // 2``
        around pixel ``N // 2`` (the reconstruction circle).
    voxel_size_nm : float
        Scan pixel size (nm).
    n_angles : int
        Projections over 180°.
    blur_sigma_nm : float
        Standard deviation of the Gaussian detector blur at the sample plane
        (nm), along the detector row and along z.
    dose : float
        Photons per detector pixel per projection without sample.
    gain_nonuniformity : float
        Relative std of the detector pixel gains.
    flat_field_error : float
        Relative std of the part of the gains the flat field does not correct.
    rings : bool
        Switch the flat-field error (ring artefacts) on or off.
    filter_name : str
        FBP filter of ``iradon`` (``"ramp"``, ``"shepp-logan"``, ...).
    bin_factor : int
        Fine grid points per scan pixel in-plane; ``N = bin_factor * M``.
    z_margin : int
        Slices at each end of ``mu`` that only feed the z blur; they are dropped.
    seed : int
        Seed of the photon noise and of the detector gains.
    progress : bool
        tqdm bars over slices.

    Returns
    -------
    ndarray, float32, shape (Z - 2 z_margin, M, M)
        Reconstructed attenuation (1/µm); zero outside the reconstruction circle.
    """
    return acquire_scan_products(mu, voxel_size_nm, n_angles=n_angles, blur_sigma_nm=blur_sigma_nm, dose=dose,
                                 gain_nonuniformity=gain_nonuniformity, flat_field_error=flat_field_error,
                                 rings=rings, filter_name=filter_name, bin_factor=bin_factor, z_margin=z_margin,
                                 seed=seed, progress=progress, desc=desc)["scan"]


def _check_mu(mu, bin_factor, z_margin, dose):
    """Refuse an attenuation stack :func:`acquire_scan_products` cannot scan; return it as an array."""
    mu = np.asarray(mu)
    if mu.ndim != 3 or mu.shape[1] != mu.shape[2]:
        raise ValueError(f"acquire_slices: expected a stack of square slices (Z, N, N), got shape {mu.shape}")
    b = int(bin_factor)
    n = mu.shape[1]
    if b < 1 or n % b or (n // b) % 2:
        raise ValueError(f"acquire_slices: slice width {n} must be bin_factor ({b}) times an even number")
    if mu.shape[0] <= 2 * z_margin:
        raise ValueError(f"acquire_slices: {mu.shape[0]} slices leave nothing inside a z margin of {z_margin}")
    if not np.all(np.isfinite(mu)) or mu.min() < 0:
        raise ValueError("acquire_slices: attenuation must be finite and non-negative")
    yy, xx = np.ogrid[:n, :n]
    outside = (yy - n // 2) ** 2 + (xx - n // 2) ** 2 > (n // 2) ** 2
    if np.any(mu[:, outside]):
        raise ValueError("acquire_slices: attenuation must be zero outside the reconstruction circle "
                         "(radius N//2 around pixel N//2); mask the sample first")
    if dose <= 0:
        raise ValueError(f"acquire_slices: dose must be positive, got {dose}")
    return mu


def _detector_intensity(mu, voxel_size_nm, theta, blur_sigma_nm, bin_factor, z_margin, progress, desc):
    """Noise-free transmitted intensity on the detector: (Z - 2 z_margin, M, n_angles), flat field = 1."""
    b = int(bin_factor)
    v_um = voxel_size_nm / 1000.0
    # radon sums fine pixels; times the fine pitch it is the line integral ∫μ dl (dimensionless)
    sino = radon_stack(mu, theta, progress=progress, desc=f"{desc}: project") * (v_um / b)
    intensity = np.exp(-sino)  # Beer-Lambert
    del sino
    if blur_sigma_nm > 0:
        intensity = ndi.gaussian_filter1d(intensity, blur_sigma_nm / voxel_size_nm * b, axis=1, mode="nearest")
        intensity = ndi.gaussian_filter1d(intensity, blur_sigma_nm / voxel_size_nm, axis=0, mode="nearest")
    if b > 1:
        # a detector pixel integrates a width b of fine samples centred on it (trapezoid = box on the
        # linear interpolant); keep the samples at the pixel centres, fine index b·j
        box = np.full(b + 1, 1.0 / b)
        box[[0, -1]] = 0.5 / b
        intensity = ndi.correlate1d(intensity, box, axis=1, mode="nearest")[:, ::b]
    return intensity[z_margin: intensity.shape[0] - z_margin]


def _fbp(proj, theta, m, v_um, filter_name, progress, desc):
    """Filtered back-projection of every slice of ``proj`` (Z, M, n_angles) at the angles ``theta``, 1/µm."""
    from skimage.transform import iradon

    out = np.empty((proj.shape[0], m, m), np.float32)
    for k in with_progress(range(proj.shape[0]), progress, f"{desc}: reconstruct"):
        # iradon assumes unit pixel pitch and divides by the number of angles: it returns μ·v per pixel
        out[k] = iradon(proj[k], theta, output_size=m, filter_name=filter_name, circle=True,
                        preserve_range=True) / v_um
    return out


def acquire_scan_products(mu, voxel_size_nm, *, n_angles, blur_sigma_nm, dose, gain_nonuniformity=0.0,
                          flat_field_error=0.0, rings=True, filter_name="shepp-logan", bin_factor=2, z_margin=0,
                          seed=0, products=("scan",), progress=False, desc="scan"):
    """One scan of a stack of slices and the reconstructions a beamline user can make of it.

    The sample is projected once (:func:`acquire_slices` explains the model);
    from those projections:

    - ``"scan"``: the noisy scan, FBP of every angle (what :func:`acquire_slices` returns);
    - ``"ideal"``: the same acquisition at infinite dose: same blur, same
      pixel integration, same motion, but no photon noise and a perfect flat
      field (no rings), ``p = -log I``; the noise-free mean of ``"scan"``
      up to the small bias of ``-log`` of Poisson counts;
    - ``"half_a"`` / ``"half_b"``: FBP of the even-indexed angles (0, 2, 4, …;
      the 1st, 3rd, … projections) / the odd-indexed angles (1, 3, 5, …) of the
      *same* noisy sinogram as ``"scan"`` (Noise2Inverse). Their photon noise
      is independent (disjoint projections), but the flat-field error is the
      same at every angle, so both halves carry the *same* rings. FBP is
      linear and ``iradon`` divides by the number of angles, so
      ``(half_a + half_b) / 2 == scan`` up to float rounding; each half has
      about twice the noise variance of the scan and the angular sampling of
      ``n_angles / 2`` projections.

    Parameters
    ----------
    mu, voxel_size_nm, n_angles, blur_sigma_nm, dose, gain_nonuniformity, flat_field_error, rings, filter_name,
    bin_factor, z_margin, seed, progress, desc
        As in :func:`acquire_slices`; the same ``seed`` gives the same ``"scan"``
        whatever ``products`` asks for.
    products : sequence of str
        Any of :data:`SCAN_PRODUCTS`.

    Returns
    -------
    dict
        product name -> ndarray, float32, shape (Z - 2 z_margin, M, M), attenuation (1/µm).
    """
    unknown = sorted(set(products) - set(SCAN_PRODUCTS))
    if unknown or not products:
        raise ValueError(f"acquire_scan_products: products must be some of {SCAN_PRODUCTS}, got {list(products)}")
    halves = {"half_a", "half_b"} & set(products)
    if halves and n_angles % 2:
        raise ValueError(f"acquire_scan_products: {n_angles} angles cannot be split into two equal halves")
    mu = _check_mu(mu, bin_factor, z_margin, dose)
    m = mu.shape[1] // int(bin_factor)
    v_um = voxel_size_nm / 1000.0
    theta = np.arange(n_angles) * 180.0 / n_angles
    intensity = _detector_intensity(mu, voxel_size_nm, theta, blur_sigma_nm, bin_factor, z_margin, progress, desc)

    rng = np.random.default_rng(seed)
    gain = 1.0 + gain_nonuniformity * rng.standard_normal(intensity.shape[:2])
    residual = flat_field_error * rng.standard_normal(intensity.shape[:2])
    counts = rng.poisson(dose * gain[..., None] * intensity)
    gain_estimate = gain * (1.0 + residual) if rings else gain
    measured = counts / (dose * gain_estimate[..., None])
    del counts
    out = {}
    if "ideal" in products:
        # infinite dose, perfect flat field: p = -log I, no noise and no rings
        out["ideal"] = _fbp(-np.log(intensity), theta, m, v_um, filter_name, progress, f"{desc} ideal")
    del intensity
    # -log of the flat-field corrected transmission; a zero count is read as half a photon
    proj = -np.log(np.maximum(measured, 0.5 / dose))
    del measured
    if "scan" in products:
        out["scan"] = _fbp(proj, theta, m, v_um, filter_name, progress, desc)
    for name, first in (("half_a", 0), ("half_b", 1)):
        if name in products:  # every other angle of the same sinogram: independent noise, the same rings
            out[name] = _fbp(proj[..., first::2], theta[first::2], m, v_um, filter_name, progress, f"{desc} {name}")
    return {name: out[name] for name in products}


def mu_to_grey(mu, offset, per_inv_um):
    """The fixed grey-value mapping of the simulated scans: ``round(offset + per_inv_um · μ)`` as uint16.

    Parameters
    ----------
    mu : ndarray
        Attenuation, 1/µm.
    offset, per_inv_um : float
        Grey value of μ = 0 and grey values per 1/µm.

    Returns
    -------
    ndarray, uint16 (values outside [0, 65535] are clipped)
    """
    return np.clip(np.rint(offset + per_inv_um * np.asarray(mu, np.float64)), 0, 65535).astype(np.uint16)


def grey_to_mu(grey, offset, per_inv_um):
    """Inverse of :func:`mu_to_grey` (up to rounding and clipping): attenuation in 1/µm, float32."""
    return ((np.asarray(grey, np.float64) - offset) / per_inv_um).astype(np.float32)


def cylinder_support(mu, y_um, x_um, centre_yx_um, radius_um):
    """Zero μ outside a cylinder (the field of view the scan is restricted to)."""
    out = (y_um[:, None] - centre_yx_um[0]) ** 2 + (x_um[None, :] - centre_yx_um[1]) ** 2 > radius_um**2
    mu[:, out] = 0.0
    return mu


def scan_phantom(phantom, start_vox, shape, voxel_nm, acq, attenuation_per_um, *, rings=True, motion=None,
                 support_radius_vox=None, seed=0, products=None, progress=False, desc="scan"):
    """Rasterise a phantom on a scan's projection grid and acquire it.

    Parameters
    ----------
    phantom : Phantom
    start_vox : sequence of int
        First voxel (z, y, x) of the scanned region, in units of ``voxel_nm``
        counted from the sample frame's origin.
    shape : tuple of int
        Shape (Z, Y, X) of the reconstruction, ``Y == X`` and even.
    voxel_nm : float
        Scan voxel size (nm).
    acq : dict
        ``n_angles``, ``blur_sigma_nm``, ``dose``, ``gain_nonuniformity``,
        ``flat_field_error``, ``filter_name`` (see :func:`acquire_slices`).
    attenuation_per_um : dict
        Phase -> μ (1/µm).
    rings : bool
        Flat-field error on/off.
    motion : tuple (R, t_um, c_um), optional
        Rigid motion of the sample seen by this scan (see :func:`rasterise`).
    support_radius_vox : float, optional
        Only material inside this radius (scan voxels) around the region's
        centre is in the beam (an idealised interior scan).
    seed : int
        Noise seed.
    products : sequence of str, optional
        Reconstructions of the one scan to return (see :func:`acquire_scan_products`);
        default only the noisy scan, returned as an array.

    Returns
    -------
    recon : ndarray, float32, shape ``shape``, or dict of them when ``products`` is given
        Reconstructed attenuation, 1/µm.
    labels : ndarray, uint8
        Labels on the projection grid (z sub-samples without margins, fine in-plane).
    inside : ndarray, bool
    """
    v = voxel_nm / 1000.0
    start_um = np.asarray(start_vox, float) * v
    m = blur_margin(acq, voxel_nm)
    z, y, x = scan_axes(start_um, shape, voxel_nm, bin_factor=2, z_sub=2, z_margin=m)
    rot, t, c = motion if motion is not None else (None, None, None)
    labels, inside = rasterise(phantom, z, y, x, rotation=rot, translation_um=t, centre_um=c, progress=progress,
                               desc=f"{desc}: rasterise")
    mu = attenuation_of(labels, inside, attenuation_per_um)
    mu = mu.reshape(-1, 2, mu.shape[1], mu.shape[2]).mean(axis=1)  # detector row integrates z
    centre = start_um[1:] + np.asarray(shape[1:]) * v / 2
    radius = (support_radius_vox if support_radius_vox is not None else shape[1] / 2 - 1) * v
    mu = cylinder_support(mu, y, x, centre, radius)
    recon = acquire_scan_products(mu, voxel_nm, bin_factor=2, z_margin=m, rings=rings, seed=seed,
                                  products=("scan",) if products is None else tuple(products), progress=progress,
                                  desc=desc, **acq)
    recon = recon["scan"] if products is None else recon
    keep = slice(2 * m, labels.shape[0] - 2 * m)
    return recon, labels[keep], inside[keep]


# --------------------------------------------------------------------------- misalignment


def draw_misalignment(params, seed=0):
    """A small rigid motion of the sample between the LQ and the HQ scan.

    Translation: each axis ``±U(translation_range_vox)`` HQ voxels; rotation: a
    rotation vector of random direction and length ``U(rotation_range_deg)``.

    Returns
    -------
    dict
        ``translation_vox`` (z, y, x), ``rotation_deg`` (spam rotation vector
        z, y, x), ``phi`` (4×4 from ``spam.deformation.computePhi``) and
        ``centre`` (a description of where Φ is centred).
    """
    from .._spam import import_spam

    rng = stream_rng(seed, "misalignment")
    t = rng.uniform(*params["translation_range_vox"], size=3) * rng.choice([-1.0, 1.0], size=3)
    u = rng.standard_normal(3)
    r = u / np.linalg.norm(u) * rng.uniform(*params["rotation_range_deg"])
    phi = import_spam("deformation").computePhi({"t": t, "r": r})
    return {
        "translation_vox": [float(v) for v in t],
        "rotation_deg": [float(v) for v in r],
        "phi": np.asarray(phi, float).tolist(),
        "centre": "centre of the HQ volume, (shape-1)/2",
    }
