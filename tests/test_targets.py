"""Training targets: deconvolution by a known PSF, HQ halves in the pairs, and load_training_slices' targets."""

import json
import math
import os
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d.core import deconvolution as D
from indi4d.core import pairs, preprocess
from indi4d.io import read_volume, write_volume
from indi4d.simulate import calibration_disc, disc_edge_fwhm

# --------------------------------------------------------------------------- deconvolution (known answers)


@pytest.fixture(scope="module")
def disc():
    """A sharp disc (area-weighted edge) of radius 30 px in a 128² slice, and its centre."""
    mu, centre = calibration_disc(128, 30.0, 1.0, n_slices=1, bin_factor=1)
    return mu[0].astype(np.float64), centre


def _edge_sigma(image, centre):
    return disc_edge_fwhm(image, 1.0, centre, 30.0)["sigma_nm"]  # 1 "nm" per pixel: sigma in pixels


def test_wiener_gives_a_blurred_disc_its_edge_back(disc):
    truth, c = disc
    blurred = ndi.gaussian_filter(truth, 1.5, mode="reflect")
    s_truth, s_blur = _edge_sigma(truth, c), _edge_sigma(blurred, c)
    assert s_blur == pytest.approx(math.hypot(1.5, s_truth), rel=0.05)
    sharp = D.wiener_deconvolve(blurred, 1.5, nsr=1e-6)
    assert sharp.dtype == np.float32 and sharp.shape == truth.shape
    assert _edge_sigma(sharp, c) == pytest.approx(s_truth, abs=0.25)  # the truth's edge width, not the blur's
    assert sharp.mean() == pytest.approx(blurred.mean(), abs=1e-5)  # the filter keeps the mean exactly
    # more regularisation, less sharpening: the width falls monotonically with nsr
    widths = [_edge_sigma(D.wiener_deconvolve(blurred, 1.5, nsr), c) for nsr in (1e-1, 1e-2, 1e-3, 1e-4)]
    assert all(w1 > w2 for w1, w2 in zip(widths, widths[1:])) and widths[0] < s_blur
    # a stack is deconvolved slice by slice
    stack = D.wiener_deconvolve(np.stack([blurred, 2 * blurred]), 1.5, nsr=1e-3)
    np.testing.assert_allclose(stack[1], 2 * stack[0], rtol=1e-4, atol=1e-4)


def test_noise_gain_grows_as_nsr_falls_and_matches_parseval():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((4, 128, 128))
    gains = []
    for nsr in (1e-1, 1e-2, 1e-3, 1e-4):
        measured = D.wiener_deconvolve(noise, 1.5, nsr).std()
        predicted = D.wiener_noise_gain(1.5, nsr, (128, 128))
        assert measured == pytest.approx(predicted, rel=0.15)
        gains.append(measured)
    assert all(g1 < g2 for g1, g2 in zip(gains, gains[1:]))
    assert gains[0] < 1.0 < gains[-1]


def test_richardson_lucy_sharpens_with_iterations(disc):
    truth, c = disc
    blurred = ndi.gaussian_filter(truth, 2.0, mode="reflect") * 100 + 20  # grey-like units with an offset
    widths = [_edge_sigma(D.deconvolve(blurred, 2.0, method="richardson_lucy", num_iter=n), c) for n in (5, 50)]
    assert widths[1] < widths[0] < _edge_sigma(blurred, c)
    assert widths[1] < 0.6 * 2.0
    with pytest.raises(ValueError, match="unknown method"):
        D.deconvolve(blurred, 2.0, method="blind")


def test_sigma_from_a_measured_edge_profile():
    x = np.arange(-600.0, 600.0, 25.0)  # nm
    profile = 10 + 50 * 0.5 * (1 - np.vectorize(math.erf)((x - 40.0) / (math.sqrt(2) * 150.0)))  # σ = 150 nm
    fit = D.sigma_from_edge(profile + np.random.default_rng(1).normal(0, 0.2, x.size), positions=x)
    assert fit["sigma_nm"] == pytest.approx(150.0, rel=0.05) and fit["edge_nm"] == pytest.approx(40.0, abs=10)
    assert fit["fwhm_nm"] == pytest.approx(D.FWHM_PER_SIGMA * fit["sigma_nm"])
    rising = D.sigma_from_edge(profile[::-1], spacing_nm=25.0)  # a rising edge works too
    assert rising["sigma_nm"] == pytest.approx(150.0, rel=0.05)
    assert D.sigma_px(150.0, 50.0) == 3.0
    kernel = D.gaussian_psf(2.0)
    assert kernel.shape == (17, 17) and kernel.sum() == pytest.approx(1.0)
    for bad in (lambda: D.sigma_from_edge(np.ones(10)), lambda: D.sigma_px(-1, 50),
                lambda: D.wiener_deconvolve(np.zeros((8, 8)), 1.0, nsr=0), lambda: D.gaussian_psf(0)):
        with pytest.raises(ValueError):
            bad()


def test_deconvolution_of_normalised_slices_happens_in_grey_units(disc):
    """Equalised slices are mapped back to grey values, deconvolved, and equalised again."""
    truth, c = disc
    grey = np.stack([ndi.gaussian_filter(truth, 2.0) * 20000 + 16384] * 2).astype(np.float32)
    mask = preprocess.disc_mask(grey.shape[1:], radius=60)
    params = preprocess.fit_normalisation(grey, mask, method="global")
    u = preprocess.normalise(grey, params)
    u[:, ~mask] = -1.0
    out = D.deconvolve_normalised(u, params, 2.0, mask=mask, nsr=1e-3)
    assert out.dtype == np.float32 and out.min() >= -1 and out.max() <= 1 and np.all(out[:, ~mask] == -1)
    # the same as deconvolving the grey values (inside the fitted range, away from the disc's border)
    expected = preprocess.normalise(D.wiener_deconvolve(grey, 2.0, 1e-3), params)
    centre = preprocess.disc_mask(grey.shape[1:], radius=45)
    assert np.abs(out[:, centre] - expected[:, centre]).max() < 0.02
    back = preprocess.denormalise(out, params)
    assert _edge_sigma(back[0], c) < 0.75 * _edge_sigma(grey[0], c)


# --------------------------------------------------------------------------- HQ halves in the pairs


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """The tiny simulation registered with its HQ halves (spam may not converge on 32³: allowed here)."""
    from indi4d.registration import register_scans
    from indi4d.simulate import simulate_beamline

    data = tmp_path_factory.mktemp("data")
    meta = simulate_beamline(data, preset="tiny", seed=0, progress=False)
    out = tmp_path_factory.mktemp("pairs") / "pairs"
    with warnings.catch_warnings():  # "did not converge, using it anyway" may or may not come on 32³
        warnings.simplefilter("ignore", UserWarning)
        register_scans(data / "lq.tif", data / "hq.tif", out, meta_path=data / "meta.json", preset="tiny", seed=3,
                       progress=False, allow_unconverged=True,
                       hq_halves=(data / "hq_half_a.tif", data / "hq_half_b.tif"))
    return data, out, meta


def test_pairs_carry_the_halves_on_hq_grid_with_hq_normalisation(registered):
    data, out, meta = registered
    lq, hq = pairs.load_pairs(out, "all")  # unchanged contract: two arrays
    a, b = pairs.load_hq_halves(out, "all")
    assert a.shape == b.shape == hq.shape and a.dtype == np.float32
    info = pairs.load_pairs_info(out)
    assert info["hq_halves"] and pairs.has_hq_halves(out)
    assert np.all(a[:, ~info["mask"]] == -1) and np.all(b[:, ~info["mask"]] == -1)
    # HQ's slices and normalisation: mapped back to grey, the halves average to the HQ slices
    norm = info["normalisation"]["hq"]
    full, _ = read_volume(data / "hq.tif")
    grey_hq = preprocess.denormalise(hq, norm)[:, info["mask"]]
    # exact between the percentiles; the linear map clips the 0.2 % beyond them
    np.testing.assert_allclose(grey_hq, np.clip(full[info["z"]][:, info["mask"]], norm["lo"], norm["hi"]), atol=2.0)
    mean = (preprocess.denormalise(a, norm) + preprocess.denormalise(b, norm)) / 2
    gap = np.abs(mean[:, info["mask"]] - grey_hq)
    assert np.median(gap) < 2.0 and np.mean(gap > 50) < 0.03  # a few pixels of a half clip beyond HQ's range
    prov = info["provenance"]
    assert [r["path"] for r in prov["inputs"]["hq_halves"]] == [str(data / "hq_half_a.tif"),
                                                                str(data / "hq_half_b.tif")]
    assert prov["psf"]["hq"]["sigma_nm"] == meta["psf"]["hq"]["sigma_nm"]
    for split in pairs.SPLITS:
        assert pairs.load_hq_halves(out, split)[0].shape == pairs.load_pairs(out, split)[1].shape


def test_halves_must_lie_on_hq_grid_and_missing_halves_say_how_to_make_them(registered, tmp_path):
    from indi4d.registration import register_scans

    data, out, _ = registered
    half, _ = read_volume(data / "hq_half_a.tif")
    write_volume(tmp_path / "small.tif", half[:, :-2], voxel_size_nm=50.0)
    write_volume(tmp_path / "coarse.tif", half, voxel_size_nm=100.0)
    for name, what in (("small.tif", "shape"), ("coarse.tif", "voxel size")):
        with pytest.raises(ValueError, match=rf"{name}: the HQ half has {what}"):
            register_scans(data / "lq.tif", data / "hq.tif", tmp_path / "o", meta_path=data / "meta.json",
                           preset="tiny", progress=False, hq_halves=(data / "hq_half_a.tif", tmp_path / name))
    assert not (tmp_path / "o" / "pairs.json").exists()
    # a pairs folder without halves
    plain = tmp_path / "plain"
    lq, hq = pairs.load_pairs(out, "all")
    info = pairs.load_pairs_info(out)
    pairs.save_pairs(plain, lq, hq, info["mask"], info["z"], info["split"], info["phi"], info["normalisation"],
                     info["provenance"])
    assert not pairs.load_pairs_info(plain)["hq_halves"]
    with pytest.raises(ValueError, match=r"pairs\.npz: no HQ halves.*--hq-halves"):
        pairs.load_hq_halves(plain, "train")
    from indi4d.training.data import load_training_slices

    with pytest.raises(ValueError, match=r"pairs\.npz: no HQ halves.*--hq-halves"):
        load_training_slices(plain, 8, target="halves")
    # the presets' "auto": the halves where the pairs hold them, the HQ scan where they do not
    from indi4d.training.data import resolve_target

    assert resolve_target("auto", out) == "halves" and resolve_target("auto", plain) == "hq"
    assert resolve_target("hq", out) == "hq" and resolve_target("halves_deconv", plain) == "halves_deconv"
    with pytest.raises(ValueError, match="both HQ halves"):
        pairs.save_pairs(tmp_path / "x", lq, hq, info["mask"], info["z"], info["split"], {}, {}, {}, hq_a=hq)


@pytest.mark.filterwarnings("ignore:spam registration:UserWarning")  # 32³ is too small for spam to converge
def test_cli_register_with_hq_halves(registered, tmp_path):
    from indi4d.cli import main

    data, _, _ = registered
    out = tmp_path / "cli"
    rc = main(["register", str(data / "lq.tif"), str(data / "hq.tif"), str(out), "--meta", str(data / "meta.json"),
               "--preset", "tiny", "--allow-unconverged", "--hq-halves", str(data / "hq_half_a.tif"),
               str(data / "hq_half_b.tif")])
    assert rc == 0 and pairs.has_hq_halves(out)
    # an input given as the output is refused before any work, halves included
    rc = main(["register", str(data / "lq.tif"), str(data / "hq.tif"), str(data / "hq_half_a.tif"), "--meta",
               str(data / "meta.json"), "--preset", "tiny", "--hq-halves", str(data / "hq_half_a.tif"),
               str(data / "hq_half_b.tif")])
    assert rc == 2


# --------------------------------------------------------------------------- training targets


def test_training_targets_hq_halves_and_deconvolved_halves(registered):
    from indi4d.training.data import load_training_slices, validation_batches

    _, out, meta = registered
    base = load_training_slices(out, 8, target="hq")
    assert load_training_slices(out, 8)["target"] == "halves"  # the default "auto": the halves, as the pairs hold them
    assert base["hq_tr"].ndim == 3 and base["target"] == "hq" and base["psf"] is None
    halves = load_training_slices(out, 8, target="halves")
    n, h, w = base["hq_tr"].shape
    assert halves["hq_tr"].shape == (n, h, w, 2) and halves["hq_va"].shape[-1] == 2
    a, b = pairs.load_hq_halves(out, "train")
    np.testing.assert_array_equal(halves["hq_tr"][..., 0], a)
    np.testing.assert_array_equal(halves["hq_tr"][..., 1], b)
    np.testing.assert_array_equal(halves["lq_tr"], base["lq_tr"])
    deconv = load_training_slices(out, 8, target="halves_deconv")
    psf = deconv["psf"]
    assert psf["sigma_nm"] == meta["psf"]["hq"]["sigma_nm"] and psf["sigma_px"] == pytest.approx(
        psf["sigma_nm"] / 50.0) and "pairs.json" in psf["source"] and psf["method"] == "wiener"
    assert deconv["hq_tr"].shape == (n, h, w, 2) and deconv["hq_tr"].min() >= -1 and deconv["hq_tr"].max() <= 1
    norm = deconv["normalisation"]["hq"]
    expected = D.deconvolve_normalised(a, norm, psf["sigma_px"], mask=deconv["mask"], nsr=psf["nsr"])
    np.testing.assert_array_equal(deconv["hq_tr"][..., 0], expected)
    # on the tiny data the halves are mostly noise: the Wiener filter passes the middle frequencies up and damps
    # the noise above its cut-off (the sharpening itself is pinned on a known disc above)
    assert np.abs(deconv["hq_tr"] - halves["hq_tr"])[:, deconv["mask"]].mean() > 0.02
    given = load_training_slices(out, 8, target="halves_deconv", psf_sigma_nm=100.0,
                                 deconvolution={"method": "richardson_lucy", "num_iter": 5})
    assert given["psf"]["sigma_px"] == 2.0 and given["psf"]["source"] == "given (psf_sigma_nm)"
    # validation batches keep both channels, in order
    val = validation_batches(halves["lq_va"], halves["hq_va"], 16, 2, 4, 4)
    assert val[0][0].shape[-1] == 1 and val[0][1].shape[-1] == 2
    with pytest.raises(ValueError, match="unknown target"):
        load_training_slices(out, 8, target="truth")


def test_deconvolved_targets_without_a_psf_ask_for_one(registered, tmp_path):
    from indi4d.training.data import load_training_slices

    _, out, _ = registered
    info = pairs.load_pairs_info(out)
    lq, hq = pairs.load_pairs(out, "all")
    a, b = pairs.load_hq_halves(out, "all")
    prov = dict(info["provenance"], psf=None)
    prov["inputs"] = dict(prov["inputs"], meta=None)
    bare = tmp_path / "bare"
    pairs.save_pairs(bare, lq, hq, info["mask"], info["z"], info["split"], info["phi"], info["normalisation"],
                     json.loads(json.dumps(prov)), hq_a=a, hq_b=b)
    with pytest.raises(ValueError, match=r"pairs\.json: no HQ point-spread function.*psf_sigma_nm"):
        load_training_slices(bare, 8, target="halves_deconv")
    assert load_training_slices(bare, 8, target="halves_deconv", psf_sigma_nm=150.0)["psf"]["sigma_px"] == 3.0


def test_noise2noise_bias_of_an_equalisation_and_none_for_a_linear_percentile_map():
    """E f(x + n) != f(x) for the non-linear histogram equalisation; the linear percentile map has no such bias."""
    rng = np.random.default_rng(0)
    x = np.where(rng.random(20000) < 0.3, 24384.0, 21184.0)  # binder and particle grey levels (0.05/µm apart)
    sigma = 2600.0  # the noise of one HQ half at the default preset, grey
    noisy_hq = x + sigma / math.sqrt(2) * rng.standard_normal(x.size)
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)  # E over the noise by Gauss-Hermite quadrature
    bias = {}
    for method in ("global", "percentile"):
        norm = preprocess.fit_normalisation(noisy_hq, None, method=method)
        mean_of_f = sum(w * preprocess.normalise(x + sigma * t, norm) for t, w in zip(nodes, weights)) / weights.sum()
        bias[method] = np.sqrt(np.mean((preprocess.denormalise(mean_of_f, norm) - x) ** 2))  # grey
    assert bias["global"] > 300 and bias["percentile"] < 0.1 * bias["global"]
