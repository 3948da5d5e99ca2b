"""Physics and contract tests of the simulated beamline (indi4d.simulate), tiny sizes."""

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d import simulate as sim
from indi4d._spam import import_spam
from indi4d.files import file_sha256
from indi4d.io import read_volume
from indi4d.presets import resolve

FILES = ["lq.tif", "hq.tif", "hq_ideal.tif", "hq_half_a.tif", "hq_half_b.tif", "truth_labels_hq.tif",
         "truth_mu_hq.tif"] + [
    f"insitu_t{k}{s}.tif" for k in range(3) for s in ("", "_labels")
]


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """The tiny data set written twice (CLI and function, same seed) and once with another seed."""
    from indi4d.cli import main

    a = tmp_path_factory.mktemp("sim_cli")
    b = tmp_path_factory.mktemp("sim_fn")
    c = tmp_path_factory.mktemp("sim_seed1")
    assert main(["simulate", str(a), "--preset", "tiny", "--seed", "0"]) == 0
    meta = sim.simulate_beamline(b, preset="tiny", seed=0, progress=False)
    sim.simulate_beamline(c, preset="tiny", seed=1, progress=False)
    return a, b, c, meta


def _one_sphere(radius_um, centre_um, extent_um=(2.0, 2.0, 2.0)):
    return sim.Phantom(
        extent_um=np.asarray(extent_um), sample_radius_um=0.95 * extent_um[1] / 2,
        centres=np.asarray([centre_um], float), axes=np.full((1, 3), radius_um), rotations=np.eye(3)[None],
        field_spacing_um=0.05,
    )


# --------------------------------------------------------------------------- phantom


def test_lognormal_radii_follow_the_asked_law():
    r = sim.lognormal_radii(np.random.default_rng(0), 20000, median_um=0.5, log_sigma=0.4, range_um=(0.01, 50))
    assert abs(np.median(np.log(r)) - math.log(0.5)) < 0.02
    assert abs(np.std(np.log(r)) - 0.4) < 0.01
    r = sim.lognormal_radii(np.random.default_rng(0), 2000, median_um=0.5, log_sigma=0.4, range_um=(0.3, 0.8))
    assert r.min() >= 0.3 and r.max() <= 0.8


def test_rasterised_sphere_and_ellipsoid_have_their_volume():
    ph = _one_sphere(0.5, (1.0, 1.0, 1.0))
    ax = [(np.arange(80) + 0.5) * 0.025] * 3  # 25 nm grid over 2 µm
    labels, inside = sim.rasterise(ph, *ax)
    vol = np.sum(labels == sim.PARTICLE) * 0.025**3
    assert vol == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.02)
    # an ellipsoid of the same equivalent radius, rotated, keeps the volume
    rot = sim.random_rotations(np.random.default_rng(1), 1)
    ell = sim.Phantom(ph.extent_um, ph.sample_radius_um, ph.centres, np.array([[0.7, 0.5, 0.5**3 / 0.35]]), rot, 0.05)
    labels, _ = sim.rasterise(ell, *ax)
    assert np.sum(labels == sim.PARTICLE) * 0.025**3 == pytest.approx(4 / 3 * math.pi * 0.5**3, rel=0.02)
    # the cylinder: nothing is "inside" beyond the sample radius
    yy = ax[1][None, :, None] - 1.0
    xx = ax[2][None, None, :] - 1.0
    assert not np.any(inside & (np.hypot(yy, xx) > ph.sample_radius_um + 1e-9))


def test_phantom_volume_fraction_binder_fraction_and_sizes():
    p = resolve(sim.PRESETS, "tiny", lq_shape=(48, 48, 48), particle_volume_fraction=0.3, binder_fraction=0.3)
    ph = sim.build_phantom(p, seed=3)
    ax = sim.subdivision_axes((0, 0, 0), p["lq_shape"], p["lq_voxel_nm"], factor=2)  # 50 nm
    labels, inside = sim.rasterise(ph, *ax)
    f = sim.phase_fractions(labels, inside)
    assert abs(f["particle"] - 0.3) < 0.03
    assert abs(f["binder"] / (1 - f["particle"]) - 0.3) < 0.05
    assert f["dense"] == 0.0
    # sizes: the placed particles keep the lognormal law (median and log-std)
    logr = np.log(ph.equivalent_radii)
    assert ph.n_particles > 150
    assert abs(np.median(logr) - math.log(p["radius_median_um"])) < 0.15
    assert abs(np.std(logr) - p["radius_log_sigma"]) < 0.1
    # some particles touch (bounding spheres in contact), and ellipsoids are there
    d = np.linalg.norm(ph.centres[:, None] - ph.centres[None], axis=-1)
    rr = ph.bounding_radii[:, None] + ph.bounding_radii[None]
    touching = np.triu((d < 1.001 * rr) & (d > 0), 1).sum()
    assert touching >= 0.1 * ph.n_particles
    aspect = ph.axes.max(1) / ph.axes.min(1)
    assert 0.2 < np.mean(aspect > 1.05) < 0.6


def test_same_seed_same_phantom_other_seed_other_phantom():
    p = resolve(sim.PRESETS, "tiny")
    a, b, c = sim.build_phantom(p, 5), sim.build_phantom(p, 5), sim.build_phantom(p, 6)
    assert np.array_equal(a.centres, b.centres) and np.array_equal(a.binder_field, b.binder_field)
    assert a.n_particles != c.n_particles or not np.allclose(a.centres, c.centres)


# --------------------------------------------------------------------------- misalignment


def test_rigid_motion_follows_spam_applyPhi_and_register_recovers_it():
    p = resolve(sim.PRESETS, "tiny")
    ph = sim.build_phantom(p, seed=0)
    mis = sim.draw_misalignment(p, seed=4)
    phi = np.asarray(mis["phi"])
    spam_def = import_spam("deformation")
    dec = spam_def.decomposePhi(phi)
    assert np.allclose(dec["t"], mis["translation_vox"], atol=1e-9)
    assert np.allclose(dec["r"], mis["rotation_deg"], atol=1e-6)
    assert all(0.3 <= abs(t) <= 1.5 for t in mis["translation_vox"])
    assert 0.5 <= np.linalg.norm(mis["rotation_deg"]) <= 1.5

    v = 0.05  # HQ grid, 48³ voxels in the middle of the tiny sample
    start = np.array([0.4, 0.4, 0.4])
    axes = [start[i] + (np.arange(48) + 0.5) * v for i in range(3)]
    centre = start + 48 * v / 2
    still = sim.attenuation_of(*sim.rasterise(ph, *axes), p["attenuation_per_um"])
    moved = sim.attenuation_of(*sim.rasterise(ph, *axes, rotation=phi[:3, :3], translation_um=phi[:3, 3] * v,
                                              centre_um=centre), p["attenuation_per_um"])
    dic = import_spam("DIC")
    inner = (slice(6, -6),) * 3
    # compare slightly smoothed maps: trilinear warping of a sharp label map errs at every edge
    still_s, moved_s = ndi.gaussian_filter(still, 1.0), ndi.gaussian_filter(moved, 1.0)

    def err(a):
        return np.mean(np.abs(a - moved_s)[inner])

    assert err(dic.applyPhi(still_s, Phi=phi)) < 0.2 * err(still_s)
    assert err(dic.applyPhi(still_s, Phi=phi)) < 0.15 * err(dic.applyPhi(still_s, Phi=np.linalg.inv(phi)))
    # spam.DIC.register(still, moved) recovers Φ (blurred images: smooth correlation landscape)
    reg = dic.register(ndi.gaussian_filter(still, 1.5), ndi.gaussian_filter(moved, 1.5), margin=4, maxIterations=80,
                       PhiRigid=True, verbose=False)
    got = spam_def.decomposePhi(reg["Phi"])
    assert np.allclose(got["t"], mis["translation_vox"], atol=0.1)
    assert np.allclose(got["r"], mis["rotation_deg"], atol=0.15)


# --------------------------------------------------------------------------- acquisition physics


def _disc_scan(voxel_nm, blur_nm, dose, rings, seed=0, width=64, radius=20.0, n_slices=4, gain_error=0.004):
    mu, centre = sim.calibration_disc(width, radius, 0.08, n_slices=n_slices)
    rec = sim.acquire_slices(mu, voxel_nm, n_angles=96, blur_sigma_nm=blur_nm, dose=dose, gain_nonuniformity=0.05,
                             flat_field_error=gain_error, rings=rings, seed=seed)
    return rec, centre


def test_reconstruction_recovers_attenuation_and_position():
    rec, centre = _disc_scan(100.0, 0.0, 1e9, rings=False)
    yy, xx = np.indices(rec.shape[1:])
    core = np.hypot(yy - centre[0], xx - centre[1]) < 15
    assert rec[:, core].mean() == pytest.approx(0.08, rel=0.02)  # 1/µm, the scaling of radon/iradon is right
    # a sphere at a known place reconstructs there: scan pixel j has its centre at (j + 1/2) v
    ph = _one_sphere(0.3, (0.8, 1.23, 0.71), extent_um=(1.6, 3.2, 3.2))
    z, y, x = sim.scan_axes((0, 0, 0), (16, 32, 32), 100.0)
    labels, inside = sim.rasterise(ph, z, y, x)
    mu = sim.attenuation_of(labels, inside, {"air": 0, "pore": 0, "binder": 0, "particle": 0.08, "dense": 0})
    mu = mu.reshape(16, 2, 64, 64).mean(1)
    rec = sim.acquire_slices(mu, 100.0, n_angles=96, blur_sigma_nm=0.0, dose=1e9, rings=False)
    expected = np.array([0.8, 1.23, 0.71]) / 0.1 - 0.5
    lo = np.round(expected).astype(int) - 5
    window = rec[lo[0]: lo[0] + 11, lo[1]: lo[1] + 11, lo[2]: lo[2] + 11]  # local centroid: FBP streaks elsewhere
    assert np.array(ndi.center_of_mass(window)) + lo == pytest.approx(expected, abs=0.05)


def test_edge_sharpness_lq_worse_than_hq_as_designed():
    p = resolve(sim.PRESETS, "tiny")
    fwhm = {}
    for which, voxel in (("lq", p["lq_voxel_nm"]), ("hq", p["hq_voxel_nm"])):
        acq = dict(p[which], n_angles=96)
        mu, centre = sim.calibration_disc(64, 20.0, 0.08, n_slices=4)
        rec = sim.acquire_slices(mu, voxel, rings=False, seed=1, **acq)
        fwhm[which] = sim.disc_edge_fwhm(rec, voxel, centre, 20.0)["fwhm_nm"]
        # Gaussian detector blur and the pixel box: FWHM = 2.355 sqrt(σ² + v²/12)
        expected = 2 * math.sqrt(2 * math.log(2)) * math.hypot(acq["blur_sigma_nm"], voxel / math.sqrt(12))
        assert fwhm[which] == pytest.approx(expected, rel=0.1)
    assert fwhm["lq"] > 2.0 * fwhm["hq"]
    assert 650 < fwhm["lq"] < 950 and 280 < fwhm["hq"] < 420  # near the paper's 803 and 357 nm


def test_noise_std_scales_as_one_over_sqrt_dose():
    std = []
    for dose in (1000.0, 4000.0):
        rec, centre = _disc_scan(100.0, 330.0, dose, rings=False, seed=2)
        yy, xx = np.indices(rec.shape[1:])
        core = np.hypot(yy - centre[0], xx - centre[1]) < 12
        std.append(rec[:, core].std())
    assert std[0] / std[1] == pytest.approx(2.0, rel=0.15)


def test_rings_appear_with_flat_field_errors_only():
    idx = {}
    for rings in (True, False):
        rec, centre = _disc_scan(100.0, 0.0, 1e6, rings=rings, seed=3, gain_error=0.01)
        idx[rings] = sim.ring_index(rec, centre, 2, 15)
    assert idx[True] > 5 * idx[False]


def test_scan_products_ideal_is_the_noise_free_mean_and_halves_share_rings_not_noise():
    """One scan, four reconstructions: ideal = mean of the scan; halves average to it; rings shared, noise not."""
    mu, centre = sim.calibration_disc(64, 20.0, 0.08, n_slices=6)
    kw = dict(n_angles=96, blur_sigma_nm=150.0, gain_nonuniformity=0.05, flat_field_error=0.01, seed=5)
    out = sim.acquire_scan_products(mu, 100.0, dose=2000.0, products=sim.SCAN_PRODUCTS, **kw)
    assert set(out) == set(sim.SCAN_PRODUCTS) and all(v.dtype == np.float32 for v in out.values())
    # the same seed gives the same noisy scan whatever else is reconstructed
    assert np.array_equal(out["scan"], sim.acquire_slices(mu, 100.0, dose=2000.0, **kw))
    yy, xx = np.indices(out["scan"].shape[1:])
    disc = np.hypot(yy - centre[0], xx - centre[1]) < 28
    # FBP is linear and iradon divides by the number of angles: the halves average to the scan
    assert np.abs((out["half_a"] + out["half_b"]) / 2 - out["scan"]).max() < 1e-5
    # at infinite dose and without rings the scan is the ideal; the ideal does not depend on the dose
    ideal_at_dose = sim.acquire_scan_products(mu, 100.0, dose=1e12, rings=False, products=("scan", "ideal"), **kw)
    assert np.abs(ideal_at_dose["scan"] - ideal_at_dose["ideal"]).max() < 1e-3 * 0.08
    assert np.array_equal(ideal_at_dose["ideal"], out["ideal"])
    # the ideal is the scan's noise-free mean: the residual is zero-mean noise (and rings)
    res = {k: out[k] - out["ideal"] for k in ("scan", "half_a", "half_b")}
    assert abs(res["scan"][:, disc].mean()) < 0.1 * res["scan"][:, disc].std()
    # each half has about twice the noise variance of the full scan
    assert res["half_a"][:, disc].var() / res["scan"][:, disc].var() == pytest.approx(2.0, rel=0.2)
    # rings (azimuthal means over 1-px radii, where noise averages out) are the same in both halves...
    prof = {k: np.stack([sim.radial_profile(r, centre, bin_width=1.0, r_max=26)[1][2:] for r in res[k]])
            for k in ("half_a", "half_b")}
    assert np.corrcoef(prof["half_a"].ravel(), prof["half_b"].ravel())[0, 1] > 0.8
    assert sim.ring_index(out["ideal"], centre, 2, 16) < 0.2 * sim.ring_index(out["half_a"], centre, 2, 16)
    # ...while their pixel noise is independent: without rings the residuals are uncorrelated, with
    # (strong) rings the shared part correlates them
    no_rings = sim.acquire_scan_products(mu, 100.0, dose=2000.0, rings=False, products=sim.SCAN_PRODUCTS, **kw)
    d_a, d_b = (no_rings[k] - no_rings["ideal"] for k in ("half_a", "half_b"))
    assert abs(np.corrcoef(d_a[:, disc].ravel(), d_b[:, disc].ravel())[0, 1]) < 0.05
    assert np.corrcoef(res["half_a"][:, disc].ravel(), res["half_b"][:, disc].ravel())[0, 1] > 0.1
    with pytest.raises(ValueError, match="products"):
        sim.acquire_scan_products(mu, 100.0, dose=10.0, products=("scan", "quarter"), **kw)
    with pytest.raises(ValueError, match="halves"):
        sim.acquire_scan_products(mu, 100.0, dose=10.0, products=("half_a",), **dict(kw, n_angles=95))


def test_measured_psf_matches_the_calibration_and_the_optics():
    psf = sim.measured_psf("tiny", seed=0, which="hq")
    fwhm = sim.acquisition_characteristics("tiny", seed=0)["hq"]["fwhm_nm"]
    assert psf["fwhm_nm"] == pytest.approx(fwhm)
    assert psf["fwhm_nm"] == pytest.approx(2 * math.sqrt(2 * math.log(2)) * psf["sigma_nm"])
    # detector blur, pixel box and the FBP filter: a little wider than the detector blur alone
    assert psf["detector_blur_sigma_nm"] < psf["sigma_nm"] < 1.25 * psf["detector_blur_sigma_nm"]
    assert "calibration disc" in psf["source"]
    with pytest.raises(ValueError, match="which"):
        sim.measured_psf("tiny", which="mq")


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="square"):
        sim.acquire_slices(np.zeros((2, 8, 10)), 100.0, n_angles=8, blur_sigma_nm=0, dose=10)
    with pytest.raises(ValueError, match="even"):
        sim.acquire_slices(np.zeros((2, 18, 18)), 100.0, n_angles=8, blur_sigma_nm=0, dose=10)
    with pytest.raises(ValueError, match="outside the reconstruction circle"):
        sim.acquire_slices(np.ones((2, 16, 16)), 100.0, n_angles=8, blur_sigma_nm=0, dose=10)
    with pytest.raises(ValueError, match="lq_shape"):
        sim.simulate_beamline("/nonexistent/never", preset="tiny", lq_shape=(30, 32, 32))
    with pytest.raises(ValueError, match="seed"):
        sim.simulate_beamline("/nonexistent/never", preset="tiny", seed=-1)
    with pytest.raises(ValueError, match=r"non-negative int, got -20$"):  # not np.int64(-20)
        sim.simulate_beamline("/nonexistent/never", preset="tiny", seed=np.int64(-20))
    with pytest.raises(ValueError, match="unknown real volume"):
        sim.acquire_real_volume("granite", "tiny")


# --------------------------------------------------------------------------- the data set


def test_files_shapes_and_meta_follow_the_contract(tiny_runs):
    a, _, _, meta = tiny_runs
    disk = json.loads((a / "meta.json").read_text())
    assert disk == json.loads(json.dumps(meta))
    for key in ("version", "preset", "seed", "voxel_size_nm", "lq_shape", "hq_shape", "hq_region_in_lq",
                "misalignment", "dose", "files"):
        assert key in disk
    assert disk["voxel_size_nm"] == {"lq": 100.0, "hq": 50.0, "phantom": 25.0}
    assert disk["dose"]["hq"] > disk["dose"]["lq"]
    assert sorted(disk["files"]) == sorted(FILES)
    for name, digest in disk["files"].items():
        assert file_sha256(a / name) == digest
    lq, m = read_volume(a / "lq.tif")
    hq, mh = read_volume(a / "hq.tif")
    assert lq.dtype == np.uint16 and hq.dtype == np.uint16
    assert m["voxel_size_nm"] == 100.0 and mh["voxel_size_nm"] == 50.0
    assert list(lq.shape) == disk["lq_shape"] == [32, 32, 32]
    assert list(hq.shape) == disk["hq_shape"]
    start = np.array(disk["hq_region_in_lq"]["start_vox"])
    stop = np.array(disk["hq_region_in_lq"]["stop_vox"])
    assert np.all(start >= 0) and np.all(stop <= lq.shape)
    assert np.array_equal(np.array(hq.shape), 2 * (stop - start))
    for name in ("hq_ideal.tif", "hq_half_a.tif", "hq_half_b.tif"):
        other, mo = read_volume(a / name)
        assert other.shape == hq.shape and other.dtype == np.uint16 and mo["voxel_size_nm"] == 50.0
    assert set(disk["psf"]["hq"]) >= {"sigma_nm", "fwhm_nm", "source"}
    assert 100 < disk["psf"]["hq"]["sigma_nm"] < 200
    tl, _ = read_volume(a / "truth_labels_hq.tif")
    tm, _ = read_volume(a / "truth_mu_hq.tif")
    assert tl.dtype == np.uint8 and tm.dtype == np.float32 and tl.shape == tm.shape == hq.shape
    assert set(np.unique(tl)) <= {sim.PORE, sim.BINDER, sim.PARTICLE} and sim.PARTICLE in tl
    for k in range(3):
        scan, _ = read_volume(a / f"insitu_t{k}.tif")
        lab, ml = read_volume(a / f"insitu_t{k}_labels.tif")
        assert scan.shape == lq.shape and scan.dtype == np.uint16
        assert lab.shape == tuple(2 * s for s in lq.shape) and lab.dtype == np.uint8 and ml["voxel_size_nm"] == 50.0
    # the grey mapping: air outside the sample sits at the offset (mu = 0), particles are brighter than pores
    g = disk["grey_mapping"]
    mu = sim.grey_to_mu(hq, g["offset"], g["per_inv_um"])
    disc = np.hypot(*np.meshgrid(np.arange(32) - 15.5, np.arange(32) - 15.5, indexing="ij")) < 12
    core = disc[None] & (ndi.binary_erosion(tl == sim.PARTICLE, iterations=2))
    pore = disc[None] & (ndi.binary_erosion(tl == sim.PORE, iterations=2))
    assert mu[core].mean() > mu[pore].mean() + 0.02


def test_reruns_are_byte_identical_and_seeds_differ(tiny_runs):
    a, b, c, _ = tiny_runs
    for name in FILES + ["meta.json"]:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    assert (a / "lq.tif").read_bytes() != (c / "lq.tif").read_bytes()
    assert json.loads((c / "meta.json").read_text())["seed"] == 1


def test_ideal_and_halves_of_the_hq_scan_on_disk(tiny_runs):
    """hq_ideal is hq without noise; the halves average to hq and their noise is uncorrelated."""
    a = tiny_runs[0]
    hq, ideal, half_a, half_b = (read_volume(a / f"{n}.tif")[0].astype(np.float64)
                                 for n in ("hq", "hq_ideal", "hq_half_a", "hq_half_b"))
    n = hq.shape[1]
    disc = np.broadcast_to(np.hypot(*np.meshgrid(np.arange(n) - (n - 1) / 2, np.arange(n) - (n - 1) / 2,
                                                 indexing="ij")) < n / 2 - 4, hq.shape)
    noise = (hq - ideal)[disc]
    assert abs(noise.mean()) < 0.05 * noise.std()  # the ideal is the noise-free mean of the scan
    # mean of the halves = the full FBP, up to grey rounding (and a few pixels of a noisy half clipped at 0)
    gap = np.abs((half_a + half_b) / 2 - hq)[disc]
    assert np.median(gap) <= 1.0 and np.mean(gap > 1.0) < 0.005
    assert abs(np.corrcoef((half_a - ideal)[disc], (half_b - ideal)[disc])[0, 1]) < 0.1
    assert (half_a - ideal)[disc].std() > 1.2 * noise.std()


def test_truth_volumes_carry_the_meta_misalignment(tiny_runs):
    """Register the unmoved truth onto truth_mu_hq.tif: spam finds meta's Φ."""
    a, _, _, meta = tiny_runs
    p = resolve(sim.PRESETS, "tiny")
    ph = sim.build_phantom(p, seed=0)
    start = np.array(meta["hq_region_in_lq"]["start_vox"]) * 0.1
    fine = sim.subdivision_axes(start, meta["hq_shape"], 50.0, factor=2)
    labels, inside = sim.rasterise(ph, *fine)
    still = sim.block_mean(sim.attenuation_of(labels, inside, p["attenuation_per_um"]))
    moved, _ = read_volume(a / "truth_mu_hq.tif")
    dic, spam_def = import_spam("DIC"), import_spam("deformation")
    reg = dic.register(ndi.gaussian_filter(still, 1.0), ndi.gaussian_filter(moved, 1.0), margin=3, maxIterations=80,
                       PhiRigid=True, verbose=False)
    got = spam_def.decomposePhi(reg["Phi"])
    assert np.allclose(got["t"], meta["misalignment"]["translation_vox"], atol=0.15)
    assert np.allclose(got["r"], meta["misalignment"]["rotation_deg"], atol=0.35)
    # and the mode of the 25 nm labels is what truth_labels_hq holds
    tl, _ = read_volume(a / "truth_labels_hq.tif")
    assert np.mean(tl == sim.block_mode(labels)) < 0.995  # moved: not the unmoved labels...
    assert np.mean(tl == sim.block_mode(labels)) > 0.7  # ...but close to them


def test_insitu_series_swells_cracks_and_grows_a_dense_phase(tiny_runs):
    a, _, _, meta = tiny_runs
    labs = [read_volume(a / f"insitu_t{k}_labels.tif")[0] for k in range(3)]
    steps = meta["insitu"]["steps"]
    porosity = [s["phase_fractions"]["pore"] for s in steps]
    particle = [s["phase_fractions"]["particle"] for s in steps]
    dense = [s["phase_fractions"]["dense"] for s in steps]
    assert porosity[0] > porosity[1] > porosity[2]
    assert particle[0] < particle[1] < particle[2]
    assert dense[0] == 0.0 and 0.0 < dense[1] < dense[2]
    assert np.sum(labs[0] == sim.DENSE) == 0 and np.sum(labs[2] == sim.DENSE) > 0
    # centres stay put: what was particle at T0 is particle at T2, except where cracks cut it
    was = labs[0] == sim.PARTICLE
    assert np.all(np.isin(labs[2][was], [sim.PARTICLE, sim.PORE]))
    assert np.mean(labs[2][was] == sim.PARTICLE) > 0.8
    cracked = was & (labs[2] == sim.PORE)
    assert cracked.sum() > 0 and meta["insitu"]["steps"][2]["open_cracks"] > meta["insitu"]["steps"][1]["open_cracks"]
    # the in situ sample is another sample than the training one
    assert meta["insitu"]["n_particles"] != meta["sample"]["n_particles"] or not np.array_equal(
        labs[0][::2, ::2, ::2][8:24, 8:24, 8:24] >= sim.PARTICLE,
        read_volume(a / "truth_labels_hq.tif")[0] >= sim.PARTICLE)


def test_real_volume_through_the_same_scans():
    r = sim.acquire_real_volume("snow", "tiny", seed=0)
    n = 32
    assert r["raw"].shape == r["labels"].shape == r["truth_mu"].shape == (n, n, n)
    assert r["lq"].shape == (n, n, n) and r["hq"].shape == (2 * n,) * 3
    assert r["lq_grey"].dtype == np.uint16 and set(np.unique(r["labels"])) == {sim.PORE, sim.PARTICLE}
    yy, xx = np.indices((n, n))
    disc = np.hypot(yy - (n - 1) / 2, xx - (n - 1) / 2) < n / 2 - 6
    truth = r["truth_mu"][:, disc]
    hq_down = sim.block_mean(r["hq"])[:, disc]
    c_hq = np.corrcoef(hq_down.ravel(), truth.ravel())[0, 1]
    c_lq = np.corrcoef(r["lq"][:, disc].ravel(), truth.ravel())[0, 1]
    assert c_hq > c_lq > 0.2


# --------------------------------------------------------------------------- the package


def test_every_public_name_is_importable_from_the_package():
    """``from indi4d import simulate as sim; sim.X`` works for every name the book, tests and modules use."""
    import indi4d.phases as phases

    for name in sim.__all__:
        assert hasattr(sim, name), name
    assert (sim.PORE, sim.BINDER, sim.PARTICLE, sim.DENSE) == (phases.PORE, phases.BINDER, phases.PARTICLE,
                                                               phases.DENSE) == (0, 1, 2, 3)
    assert sim.PHASE_NAMES is phases.PHASE_NAMES
    assert set(sim.ATTENUATION_PER_UM) == {"air", *phases.PHASE_NAMES}
    assert set(sim.PRESETS) == {"tiny", "workshop", "default", "paper"}
    for name in ("rasterise", "build_phantom", "acquire_slices", "simulate_beamline", "acquisition_characteristics",
                 "acquire_real_volume", "grey_to_mu", "block_mode"):
        assert callable(getattr(sim, name)), name


def test_simulator_never_imports_the_data_module():
    """No import cycle: the simulator's modules do not import indi4d.data (data imports the simulator lazily)."""
    import subprocess
    import sys

    code = ("import sys; import indi4d.simulate; "
            "print(sorted(m for m in sys.modules if m == 'indi4d.data' or m.startswith('indi4d.data.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = ("import sys; import indi4d.data; "
            "print(sorted(m for m in sys.modules if m.startswith('indi4d.simulate')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("n", [32, 33, 64])
def test_radon_stack_is_scikit_images_radon_of_every_slice(n):
    from skimage.transform import radon

    from indi4d.simulate.projection import radon_stack

    yy, xx = np.indices((n, n))
    inside = (yy - n // 2) ** 2 + (xx - n // 2) ** 2 <= (n // 2) ** 2
    stack = np.random.default_rng(n).random((3, n, n)) * inside
    theta = np.linspace(0.0, 180.0, 37, endpoint=False)
    expected = np.stack([radon(s, theta, circle=True, preserve_range=True) for s in stack])
    got = radon_stack(stack, theta, angles_per_block=5)  # blocks that do not divide the angles
    assert got.shape == (3, n, theta.size)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12 * np.abs(expected).max())
