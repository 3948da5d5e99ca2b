"""Known answers of the honest edge and spectrum metrics: self-aligned width, placement, radial spectra."""

import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d import metrics

PIXEL_NM = 50.0
CENTRES = [(32, 32), (32, 96), (96, 32), (96, 96)]


def discs(radius=16.0, shifts=None, size=128, supersample=8):
    """Area coverage (0..1) of discs at CENTRES, each moved by ``shifts[i]`` = (dy, dx) pixels."""
    shifts = shifts if shifts is not None else [(0.0, 0.0)] * len(CENTRES)
    fine = (np.arange(size * supersample) + 0.5) / supersample - 0.5  # pixel centres at integers
    yy, xx = np.meshgrid(fine, fine, indexing="ij")
    img = np.zeros(yy.shape)
    for (cy, cx), (dy, dx) in zip(CENTRES, shifts):
        img[(yy - cy - dy) ** 2 + (xx - cx - dx) ** 2 <= radius**2] = 1.0
    return img.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def truth_labels(radius=16.0):
    return (discs(radius) >= 0.5).astype(np.uint8) * 2


def test_self_aligned_width_of_a_blurred_disc():
    sigma = 2.0
    image = ndi.gaussian_filter(discs(), sigma)
    res = metrics.edge_metrics(image, truth_labels() == 2, PIXEL_NM, half_length_px=10)
    expected = metrics.FWHM_PER_SIGMA * sigma * PIXEL_NM  # 2.355 sigma
    assert res["self_aligned_fwhm_nm"] == pytest.approx(expected, rel=0.10)
    assert res["aligned_fwhm_nm"] == pytest.approx(expected, rel=0.10)
    # 10-90 % rise of a Gaussian edge: 2 x 1.2816 sigma
    assert res["self_aligned_rise_10_90_nm"] == pytest.approx(2 * 1.2816 * sigma * PIXEL_NM, rel=0.10)
    assert res["self_aligned_overshoot"] < 0.02
    assert res["edge_placement_rms_nm"] < 0.15 * PIXEL_NM  # in place


def test_self_aligned_width_is_not_fooled_by_noise():
    sigma = 2.0
    rng = np.random.default_rng(0)
    image = ndi.gaussian_filter(discs(), sigma) + 0.15 * rng.standard_normal((128, 128))  # step 1, noise 0.15
    res = metrics.edge_metrics(image, truth_labels() == 2, PIXEL_NM, half_length_px=10)
    assert res["self_aligned_fwhm_nm"] == pytest.approx(metrics.FWHM_PER_SIGMA * sigma * PIXEL_NM, rel=0.20)


def test_placement_of_a_dilated_disc_is_the_dilation():
    delta = 0.6  # px, every edge moved outwards along its normal
    image = ndi.gaussian_filter(discs(16.0 + delta), 1.5)
    res = metrics.edge_metrics(image, truth_labels(16.0) == 2, PIXEL_NM, half_length_px=10)
    assert res["edge_placement_rms_nm"] == pytest.approx(delta * PIXEL_NM, rel=0.15)
    assert res["edge_placement_bias_nm"] == pytest.approx(delta * PIXEL_NM, rel=0.15)  # outwards: positive


def test_placement_of_a_shifted_disc():
    d = 0.8  # px along x: the normal offset is d cos(theta), RMS d / sqrt(2), mean 0
    image = ndi.gaussian_filter(discs(shifts=[(0.0, d)] * 4), 1.5)
    res = metrics.edge_metrics(image, truth_labels() == 2, PIXEL_NM, half_length_px=10)
    assert res["edge_placement_rms_nm"] == pytest.approx(d / math.sqrt(2) * PIXEL_NM, rel=0.15)
    assert abs(res["edge_placement_bias_nm"]) < 0.1 * d * PIXEL_NM


def test_random_misplacement_widens_the_averaged_edge_but_not_the_self_aligned_one():
    rng = np.random.default_rng(3)
    sigma = 1.5
    shifts = [tuple(rng.uniform(-2.5, 2.5, 2)) for _ in CENTRES]
    image = ndi.gaussian_filter(discs(shifts=shifts), sigma)
    res = metrics.edge_metrics(image, truth_labels() == 2, PIXEL_NM, half_length_px=10)
    expected = metrics.FWHM_PER_SIGMA * sigma * PIXEL_NM
    assert res["aligned_fwhm_nm"] > 1.3 * expected  # misplacement reads as blur
    assert res["self_aligned_fwhm_nm"] == pytest.approx(expected, rel=0.10)
    assert res["edge_placement_rms_nm"] > 0.8 * PIXEL_NM


def test_profile_crossings_of_known_steps():
    s = np.arange(-40, 41) * 0.25
    profiles = np.stack([1.0 / (1.0 + np.exp((s - c) / 0.7)) for c in (-1.5, 0.0, 2.25)])  # 50 % at c
    np.testing.assert_allclose(metrics.profile_crossings(s, 3 * profiles + 5, smooth_px=0), [-1.5, 0.0, 2.25],
                               atol=0.02)
    assert np.isnan(metrics.profile_crossings(s, np.ones((1, s.size))))[0]


def test_white_noise_has_a_flat_spectrum_and_blur_lowers_high_frequencies():
    rng = np.random.default_rng(0)
    noise = rng.standard_normal((8, 128, 128))
    freq, power = metrics.radial_power_spectrum(noise, PIXEL_NM)
    assert freq[-1] < 1000.0 / (2 * PIXEL_NM) and freq[0] > 0  # rings up to Nyquist (10 cycles/µm)
    band = power[2:]  # the first rings hold the removed mean
    assert np.all(np.abs(band / 1.0 - 1.0) < 0.25)  # flat at the variance, 1
    assert abs(band.mean() - 1.0) < 0.05
    mask = np.zeros((128, 128), bool)
    mask[16:112, 16:112] = True
    _, masked = metrics.radial_power_spectrum(noise, PIXEL_NM, mask=mask)
    assert abs(masked[2:].mean() - 1.0) < 0.1  # the mask is accounted for
    f, ratio = metrics.power_ratio(ndi.gaussian_filter(noise, (0, 1.5, 1.5)), noise, PIXEL_NM)
    assert metrics.band_mean(f, ratio, 0, 1.0) > 0.7 and metrics.band_mean(f, ratio, 6.0, 10.0) < 0.05
