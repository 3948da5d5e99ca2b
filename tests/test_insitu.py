"""Chapter 06's library: fusion, physical units, scores against the truth, with known answers."""

import math

import numpy as np
import pytest

from indi4d import insitu
from indi4d.core import preprocess
from indi4d.phases import BINDER, DENSE, PARTICLE, PORE

META = {"grey_mapping": {"offset": 16384.0, "per_inv_um": 160000.0},
        "attenuation_per_um": {"air": 0.0, "pore": 0.01, "binder": 0.03, "particle": 0.08, "dense": 0.16},
        "sample": {"sample_radius_um": 1.1}}


def phantom_labels(shape=(16, 48, 48)):
    """Pore/binder background with four spherical particles; one has a dense shell on its top half."""
    z, y, x = np.indices(shape)
    labels = np.where((y // 12 + x // 12) % 2 == 0, PORE, BINDER).astype(np.uint8)  # blocks of 12 px
    centres = [(8, 14, 14), (8, 14, 34), (8, 34, 14), (8, 34, 34)]
    for k, (cz, cy, cx) in enumerate(centres):
        d2 = (z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2
        if k == 0:
            labels[(d2 <= 8**2) & (y < cy)] = DENSE
        labels[d2 <= 6**2] = PARTICLE
    return labels


def test_fusion_of_identical_volumes_is_that_volume():
    vol = np.random.default_rng(1).random((6, 8, 10)).astype(np.float32) * 1000
    np.testing.assert_allclose(insitu.fuse([vol, vol.copy(), vol.copy()]), vol, rtol=0, atol=1e-4)
    np.testing.assert_allclose(insitu.fuse([vol, 3 * vol]), 2 * vol, rtol=1e-6)
    with pytest.raises(ValueError, match="one shape"):
        insitu.fuse([vol, vol[:-1]])


def test_along_axis_is_the_same_enhancer_on_a_transposed_volume():
    """A separable x2 spline enhancer gives the same volume whichever axis the slices are taken along."""
    vol = np.random.default_rng(2).random((8, 10, 12)).astype(np.float32)
    ref = preprocess.upscale(vol, 2)
    for axis in (0, 1, 2):
        out = insitu.along_axis(vol, axis, lambda s: preprocess.upscale(s, 2))
        assert out.shape == (16, 20, 24)
        np.testing.assert_allclose(out, ref, atol=1e-5)
    # a slice-wise operator that is not isotropic shows which axis it ran along
    marked = insitu.along_axis(vol, 1, lambda s: np.repeat(np.repeat(np.repeat(s, 2, 0), 2, 1), 2, 2) * 0 +
                               np.arange(2 * s.shape[0])[:, None, None])
    assert np.all(marked[:, 3, :] == 3)


def test_physical_units_round_trip():
    mu = np.linspace(0.0, 0.2, 101, dtype=np.float32)
    back = insitu.grey_to_attenuation(insitu.attenuation_to_grey(mu, META), META)
    # rounding to uint16 costs at most half a grey step
    assert np.max(np.abs(back - mu)) <= 0.5 / META["grey_mapping"]["per_inv_um"] + 1e-7
    labels = np.array([[PORE, BINDER], [PARTICLE, DENSE]], np.uint8)
    np.testing.assert_allclose(insitu.truth_attenuation(labels, META), [[0.01, 0.03], [0.08, 0.16]])
    with pytest.raises(ValueError, match="grey_mapping"):
        insitu.grey_to_attenuation(mu, {})
    with pytest.raises(ValueError, match="0..3"):
        insitu.truth_attenuation(np.array([4], np.uint8), META)


def test_valid_disc_stays_inside_the_sample():
    disc = insitu.valid_disc((48, 48), META, voxel_nm=50.0, margin_px=2)
    radius = math.sqrt(disc.sum() / math.pi)
    assert abs(radius - (1100 / 50 - 2)) < 0.7


PARAMS = dict(insitu.PRESETS["tiny"], half_length_px=5)  # profiles fit inside the particles of radius 6


def test_scores_of_the_truth_are_perfect():
    labels = phantom_labels()
    truth = insitu.truth_attenuation(labels, META)
    valid = insitu.valid_disc(labels.shape[1:], META, 50.0, 0)
    s = insitu.score_volume(truth, truth, labels, valid, 50.0, PARAMS, profiles=True)
    assert math.isinf(s["psnr_db"]) and s["ssim"] == pytest.approx(1.0)
    assert s["mae"] == 0.0
    assert s["n_false_particles"] == 0 and s["n_missed_particles"] == 0 and s["n_true_particles"] > 0
    for name, rec in s["phase_errors"].items():
        assert rec["mae"] == 0.0 and rec["bias"] == 0.0 and rec["n"] > 0, name
    # a step edge: its FWHM is at most about a pixel in xy and along z
    assert s["fwhm_xy_nm"] < 80 and s["fwhm_z_nm"] < 80
    assert s["cnr"] > 1  # pore + binder background: contrast over their spread
    assert "edge" in s and len(s["edge"]["s_nm"]) == len(s["edge"]["mean_derivative"])


def test_a_blurred_and_biased_prediction_scores_worse_and_the_dense_error_is_found():
    from scipy import ndimage as ndi

    labels = phantom_labels()
    truth = insitu.truth_attenuation(labels, META)
    valid = insitu.valid_disc(labels.shape[1:], META, 50.0, 0)
    pred = truth.copy()
    pred[labels == DENSE] += 0.02  # a known bias in the dense phase only
    pe = insitu.phase_errors(pred, truth, labels, valid, near_px=2)
    assert pe["dense"]["mae"] == pytest.approx(0.02) and pe["dense"]["bias"] == pytest.approx(0.02)
    assert pe["particle"]["mae"] == 0.0 and pe["pore"]["bias"] == 0.0
    blurred = ndi.gaussian_filter(truth, 2.0)
    s = insitu.score_volume(blurred, truth, labels, valid, 50.0, PARAMS)
    # a Gaussian edge of sigma 2 px: FWHM = 2.355 x 2 px x 50 nm
    assert s["fwhm_xy_nm"] == pytest.approx(2.355 * 2 * 50, rel=0.2)
    assert s["psnr_db"] < 40 and s["ssim"] < 1
    # the edge profiles' places, found once from the truth (as chapter 06 does per time step), give the same scores
    from indi4d.insitu.scores import edge_geometries

    shared = insitu.score_volume(blurred, truth, labels, valid, 50.0, PARAMS,
                                 edges=edge_geometries(labels, valid, PARAMS))
    assert shared["fwhm_xy_nm"] == s["fwhm_xy_nm"] and shared["fwhm_z_nm"] == s["fwhm_z_nm"]
    assert shared["n_edge_profiles"] == s["n_edge_profiles"] > 0


def test_dense_summary_pools_time_steps_by_voxel_count():
    rec = lambda mae, bias, n: {"mae": mae, "bias": bias, "n": n, "mae_boundary": mae, "bias_boundary": bias,
                                "n_boundary": n}  # noqa: E731
    t0 = {"phase_errors": {"pore": rec(1.0, 0, 10), "binder": rec(1.0, 0, 10), "particle": rec(1.0, 0, 10),
                           "dense": rec(float("nan"), float("nan"), 0)}}
    t1 = {"phase_errors": {"pore": rec(1.0, 0, 10), "binder": rec(1.0, 0, 10), "particle": rec(1.0, 0, 10),
                           "dense": rec(3.0, -3.0, 5)}}
    d = insitu.dense_summary({"m": [t0, t1]}, ["m"], [0, 1])["m"]
    assert d["dense_mae"] == 3.0 and d["dense_bias"] == -3.0 and d["dense_voxels"] == 5
    assert d["known_boundary_mae"] == 1.0 and d["ratio"] == 3.0


def test_change_roi_finds_the_region_that_changes():
    a = np.zeros((4, 40, 40), np.uint8)
    b = a.copy()
    b[2, 25:30, 5:10] = DENSE
    y0, x0, z = insitu.change_roi([a, b], 10)
    assert z == 2 and y0 <= 25 and y0 + 10 >= 30 and x0 <= 5 and x0 + 10 >= 10


def test_scale_bar_lengths_are_round():
    assert insitu.nice_length_um(3.2) == 0.5
    assert insitu.nice_length_um(12.8) == 2.0
    assert insitu.fwhm_bar(np.arange(5.0), np.array([0, 1, 4, 1, 0.0]), 2.0) == (1.0, 3.0, 2.0)
