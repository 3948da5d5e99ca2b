"""Tests of indi4d.metrics: every metric against a case whose answer is known."""

import hashlib
import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi
from scipy.special import erf

from indi4d import metrics as M

SQRT2 = math.sqrt(2.0)


# --------------------------------------------------------------------------- synthetic images
def blurred_discs(shape, discs, sigma, noise=0.0, seed=0, inside=1.0, outside=0.2):
    """Discs (cy, cx, r) convolved with a Gaussian of ``sigma`` px, sampled at pixel centres.

    For r >> sigma the edge is ``erf``: the exact Gaussian-blurred step.
    Returns (image float64, true disc mask bool).
    """
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(float)
    edge = np.zeros(shape)
    mask = np.zeros(shape, bool)
    for cy, cx, r in discs:
        d = np.hypot(yy - cy, xx - cx)
        edge = np.maximum(edge, 0.5 * (1 + erf((r - d) / (SQRT2 * sigma))))
        mask |= d <= r
    img = outside + (inside - outside) * edge
    if noise:
        img = img + np.random.default_rng(seed).normal(0.0, noise, shape)
    return img, mask


FOUR_DISCS = [(60, 60, 30), (140, 140, 35), (60, 145, 25), (140, 55, 28)]


def disc_scene(n=256, seed=0, count=60):
    """Grey discs of random size and level on a flat background (a SIFT-rich image)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    img = np.full((n, n), 0.2)
    for _ in range(count):
        cy, cx = rng.uniform(0, n, 2)
        img[np.hypot(yy - cy, xx - cx) <= rng.uniform(3, 14)] = rng.uniform(0.4, 1.0)
    return ndi.gaussian_filter(img, 0.7)


def phase_scene(n=192, seed=0, n_particles=8, three_phase=True):
    """Truth labels: 0 pore, 1 carbon-binder (if three_phase), 2 separated round particles."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:n, :n]
    lab = np.zeros((n, n), np.uint8)
    if three_phase:
        lab[ndi.gaussian_filter(rng.normal(size=(n, n)), 6) > 0] = 1
    placed = []
    while len(placed) < n_particles:
        c, r = rng.uniform(25, n - 25, 2), rng.uniform(8, 16)
        if all(np.hypot(*(c - c2)) > r + r2 + 6 for c2, r2 in placed):
            placed.append((c, r))
    for c, r in placed:
        lab[np.hypot(yy - c[0], xx - c[1]) <= r] = 2
    return lab


GREY = np.array([0.1, 0.35, 1.0])  # grey value of phases 0, 1, 2


# --------------------------------------------------------------------------- PSNR / SSIM
def test_psnr_known_value_and_mask():
    ref = np.tile(np.linspace(0.0, 1.0, 64), (32, 1))  # data range exactly 1
    assert M.psnr(ref + 0.1, ref) == pytest.approx(20.0)  # 10·log10(1 / 0.01)
    assert M.psnr(ref + 0.1, ref, data_range=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    assert M.psnr(ref, ref) == math.inf
    # an error outside the mask does not count
    bad = ref.copy()
    bad[:, :8] += 5.0
    mask = np.zeros(ref.shape, bool)
    mask[:, 8:] = True
    assert M.psnr(bad, ref, mask=mask) == math.inf
    assert M.psnr(bad, ref) < 10


def test_affine_fit_recovers_gain_and_offset():
    rng = np.random.default_rng(1)
    ref = rng.random((40, 50))
    pred = (ref - 7.0) / 3.0  # grey values in another unit
    a, b = M.affine_fit(pred, ref)
    assert (a, b) == (pytest.approx(3.0), pytest.approx(7.0))
    assert M.psnr(pred, ref, fit="affine") > 100  # exact up to rounding
    assert M.psnr(pred, ref, fit="none") < 0
    assert M.ssim(pred, ref, fit="affine") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fit must be"):
        M.psnr(pred, ref, fit="quadratic")


def test_ssim_matches_scikit_image_and_respects_mask():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(2)
    ref = ndi.gaussian_filter(rng.random((64, 64)), 2)
    pred = ref + rng.normal(0, 0.02, ref.shape)
    dr = float(ref.max() - ref.min())
    assert M.ssim(ref, ref) == pytest.approx(1.0)
    assert M.ssim(pred, ref) == pytest.approx(structural_similarity(ref, pred, data_range=dr))
    # corrupting pixels farther than half a window outside the mask changes nothing
    mask = np.zeros(ref.shape, bool)
    mask[10:54, 10:54] = True
    bad = pred.copy()
    bad[:6] = 5.0
    assert M.ssim(bad, ref, mask=mask) == pytest.approx(M.ssim(pred, ref, mask=mask))
    assert M.ssim(bad, ref) < M.ssim(pred, ref)


def test_pair_checks():
    with pytest.raises(ValueError, match="shapes differ"):
        M.psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="NaN"):
        M.ssim(np.full((8, 8), np.nan), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="constant"):
        M.psnr(np.zeros((8, 8)), np.ones((8, 8)))


# --------------------------------------------------------------------------- SIFT
def test_sift_identical_unrelated_blurred_shifted():
    ref = disc_scene()
    same = M.sift_congruent_points(ref, ref)
    assert same > 100
    # a grey-level change does not matter: each image gets its own 8-bit window
    assert M.sift_congruent_points(3.0 * ref + 7.0, ref) == same
    other = disc_scene(seed=1)
    assert M.sift_congruent_points(other, ref) < 0.05 * same
    # Lowe's ratio test alone (no geometry) rejects most matches between unrelated images
    lowe = M.sift_congruent_points(other, ref, max_displacement_px=None)
    assert M.sift_congruent_points(other, ref, max_displacement_px=None, ratio=1.0) > 5 * lowe
    assert lowe < 0.2 * same
    counts = [M.sift_congruent_points(ndi.gaussian_filter(ref, s), ref) for s in (1, 2, 3)]
    assert same > counts[0] > counts[1] > counts[2]
    # registered images: matches farther than max_displacement_px are rejected
    shifted = np.roll(ref, 10, axis=1)
    assert M.sift_congruent_points(shifted, ref) < 0.05 * same
    assert M.sift_congruent_points(shifted, ref, max_displacement_px=None) > 0.5 * same
    p1, p2 = M.sift_match_points(shifted, ref, max_displacement_px=None)
    assert np.median(p1[:, 0] - p2[:, 0]) == pytest.approx(10.0, abs=0.5)  # (x, y) order


def test_to_uint8_window():
    img = np.linspace(0, 1, 1000).reshape(10, 100)
    u = M.to_uint8(img, percentiles=(0, 100))
    assert u.dtype == np.uint8 and u.min() == 0 and u.max() == 255
    assert M.to_uint8(np.ones((4, 4))).max() == 0


# --------------------------------------------------------------------------- edge resolution
@pytest.mark.parametrize("sigma", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("noise", [0.0, 0.2])
def test_fwhm_of_gaussian_blurred_discs(sigma, noise):
    img, mask = blurred_discs((200, 200), FOUR_DISCS, sigma, noise=noise)
    res = M.fwhm_edge_resolution(img, mask, pixel_size_nm=50.0, half_length_px=16)
    expected = M.FWHM_PER_SIGMA * sigma * 50.0  # nm
    assert res["n_profiles"] > 300
    assert res["fwhm_nm"] == pytest.approx(expected, rel=0.10)
    assert res["fwhm_nm_mean"] == pytest.approx(expected, rel=0.10)
    assert 0 <= res["fwhm_nm_std"] < 0.25 * expected
    assert res["edge_overshoot"] < 0.03


def test_fwhm_single_disc_other_pixel_size_and_dark_particle():
    # gaussian_filter of a binary disc: a staircase edge, still ~2.355 sigma
    yy, xx = np.mgrid[:160, :160]
    disc = np.hypot(yy - 80, xx - 80) <= 45
    img = ndi.gaussian_filter(np.where(disc, 0.1, 0.9), 2.5)  # dark particle, bright background
    res = M.fwhm_edge_resolution(img, disc, pixel_size_nm=30.0, half_length_px=14)
    assert res["fwhm_nm"] == pytest.approx(M.FWHM_PER_SIGMA * 2.5 * 30.0, rel=0.10)
    assert res["s_nm"][-1] == pytest.approx(14 * 30.0)
    assert res["mean_edge"][0] == pytest.approx(1.0, abs=0.02)  # normalised: 1 inside
    assert res["mean_edge"][-1] == pytest.approx(0.0, abs=0.02)


def test_per_edge_width_is_biased_on_noise_but_the_averaged_one_is_not():
    # DESIGN.md's lesson, pinned: raw single-edge derivatives read noisy edges too sharp
    img, mask = blurred_discs((200, 200), FOUR_DISCS, 3.0, noise=0.2)
    s, prof, _, _ = M.edge_profiles(img, mask, half_length_px=16)
    expected_px = M.FWHM_PER_SIGMA * 3.0

    def raw_width(p):
        e = (p - p[-12:].mean()) / (p[:12].mean() - p[-12:].mean())
        d = -np.gradient(e, s)
        i0 = np.argmax(np.where(np.abs(s) < 4, d, -np.inf))
        half = d[i0] / 2
        left = i0 - np.argmax(d[i0::-1] < half)
        right = i0 + np.argmax(d[i0:] < half)
        return s[right] - s[left]

    per_edge = np.median([raw_width(p) for p in prof])
    averaged, *_ = M.edge_spread_width(s, prof.mean(0))
    assert per_edge < 0.6 * expected_px
    assert averaged == pytest.approx(expected_px, rel=0.10)


def test_overshoot_flags_unsharp_masking():
    img, mask = blurred_discs((200, 200), FOUR_DISCS, 1.5, noise=0.02)
    sharpened = img + 1.0 * (img - ndi.gaussian_filter(img, 3.0))  # unsharp mask
    plain = M.fwhm_edge_resolution(img, mask, 50.0, half_length_px=16)
    sharp = M.fwhm_edge_resolution(sharpened, mask, 50.0, half_length_px=16)
    assert plain["edge_overshoot"] < 0.02
    assert sharp["edge_overshoot"] > 0.08
    assert sharp["fwhm_nm"] < plain["fwhm_nm"]  # "sharper", but by ringing


def test_fwhm_volume_pools_slices_and_is_seeded():
    img, mask = blurred_discs((120, 120), [(60, 60, 30)], 2.0, noise=0.1)
    one = M.fwhm_edge_resolution(img, mask, 50.0, half_length_px=12)
    vol = M.fwhm_edge_resolution(np.stack([img, img, img]), np.stack([mask] * 3), 50.0, half_length_px=12)
    assert vol["n_profiles"] == 3 * one["n_profiles"]
    assert vol["fwhm_nm"] == pytest.approx(one["fwhm_nm"])
    again = M.fwhm_edge_resolution(np.stack([img, img, img]), np.stack([mask] * 3), 50.0, half_length_px=12)
    assert again["fwhm_nm_mean"] == vol["fwhm_nm_mean"] and again["fwhm_nm_std"] == vol["fwhm_nm_std"]


def test_edge_geometry_found_once_measures_every_image_of_a_sample():
    """The profiles' places depend on the mask only: found once, they give each image's own FWHM, exactly as
    the one-call path does (three blurs of one set of discs, each within 10 % of its 2.355 sigma)."""
    from indi4d.metrics.profiles import edge_geometry, sample_edge_profiles

    mask = blurred_discs((200, 200), FOUR_DISCS, 1.0)[1]
    vol_mask = np.stack([mask, mask])
    geometry = edge_geometry(vol_mask, half_length_px=16, max_profiles=500, seed=4)
    assert len(geometry[1]) == 500 and set(np.unique(geometry[1][:, 0])) == {0.0, 1.0}
    for sigma in (1.5, 2.5, 3.5):
        img = np.stack([blurred_discs((200, 200), FOUR_DISCS, sigma, noise=0.05, seed=k)[0] for k in (0, 1)])
        one_call = M.edge_profiles(img, vol_mask, half_length_px=16, max_profiles=500, seed=4)
        np.testing.assert_array_equal(sample_edge_profiles(img, *geometry), one_call[1])
        shared = M.fwhm_edge_resolution(img, vol_mask, 50.0, half_length_px=16, max_profiles=500, seed=4,
                                        geometry=geometry)
        alone = M.fwhm_edge_resolution(img, vol_mask, 50.0, half_length_px=16, max_profiles=500, seed=4)
        assert shared["fwhm_nm_mean"] == alone["fwhm_nm_mean"] and shared["n_profiles"] == 500
        assert shared["fwhm_nm"] == pytest.approx(M.FWHM_PER_SIGMA * sigma * 50.0, rel=0.10)


def test_fwhm_without_clean_edges_is_nan():
    res = M.fwhm_edge_resolution(np.random.default_rng(0).random((40, 40)), np.zeros((40, 40), bool), 50.0)
    assert res["n_profiles"] == 0 and math.isnan(res["fwhm_nm"])
    # profiles crossing a neighbouring particle are not clean edges
    img, mask = blurred_discs((80, 80), [(40, 30, 8), (40, 50, 8)], 1.0)
    s, prof, pts, normals = M.edge_profiles(img, mask, half_length_px=12)
    gap_side = (np.abs(pts[:, 1] - 40) < 4) & (np.abs(pts[:, 2] - 40) < 3)
    assert not gap_side.any()


# --------------------------------------------------------------------------- CNR
def test_cnr_known_two_level_image():
    rng = np.random.default_rng(3)
    lab = np.zeros((200, 200), bool)
    lab[50:150, 50:150] = True
    img = np.where(lab, 1.0, 0.2) + rng.normal(0, 0.1, lab.shape)  # CNR = 0.8 / 0.1 = 8
    assert M.cnr(img, lab, ~lab) == pytest.approx(8.0, rel=0.03)
    # exact on a tiny example: background {0, 2} (std 1), particles mean 5 → 4
    im = np.array([[0.0, 2.0, 5.0, 5.0]])
    assert M.cnr(im, im == 5, im < 5) == pytest.approx(4.0)
    # Otsu (unsupervised) finds the same classes
    part, back, _ = M.two_phase_masks(img)
    assert M.cnr(img, part, back) == pytest.approx(8.0, rel=0.05)
    # truth labels, eroded by the margin
    labels = lab.astype(np.uint8) * 2
    part, back, raw = M.two_phase_masks(img, labels=labels, margin_px=2)
    assert raw.sum() == lab.sum() and part.sum() == 96 * 96
    with pytest.raises(ValueError, match="need particle"):
        M.cnr(img, np.zeros_like(lab), ~lab)


def test_multi_otsu_picks_the_particle_class():
    lab = phase_scene(seed=4)
    img = GREY[lab] + np.random.default_rng(0).normal(0, 0.03, lab.shape)
    _, _, raw3 = M.two_phase_masks(img, otsu_classes=3)
    assert (raw3 == (lab == 2)).mean() > 0.98


# --------------------------------------------------------------------------- hallucination
def test_hallucination_identical_fake_and_missed():
    lab = phase_scene()
    grey = GREY[lab]
    clean = ndi.gaussian_filter(grey, 1.0)
    h = M.hallucination_metrics(clean, lab, 50.0)
    assert (h["n_false_particles"], h["n_missed_particles"]) == (0, 0)
    assert h["n_detected_particles"] == h["n_true_particles"] == 8
    assert h["false_edge_fraction"] == 0.0 and h["flat_region_error"] < 1e-3
    area_mm2 = lab.size * (50.0 * 1e-6) ** 2
    assert h["area_mm2"] == pytest.approx(area_mm2)

    # one fake particle where the truth is flat pore/binder → exactly one false particle
    far = ndi.distance_transform_edt(lab != 2) > 20
    cy, cx = np.argwhere(far)[len(np.argwhere(far)) // 2]
    yy, xx = np.mgrid[: lab.shape[0], : lab.shape[1]]
    fake = grey.copy()
    fake[np.hypot(yy - cy, xx - cx) <= 5] = 1.0
    h = M.hallucination_metrics(ndi.gaussian_filter(fake, 1.0), lab, 50.0)
    assert (h["n_false_particles"], h["n_missed_particles"]) == (1, 0)
    assert h["false_particles_per_mm2"] == pytest.approx(1 / area_mm2)
    assert h["false_edge_fraction"] > 0

    # one true particle erased → exactly one missed
    comp, _ = ndi.label(lab == 2)
    erased = grey.copy()
    erased[comp == 1] = GREY[1]
    h = M.hallucination_metrics(ndi.gaussian_filter(erased, 1.0), lab, 50.0)
    assert (h["n_false_particles"], h["n_missed_particles"]) == (0, 1)
    assert h["missed_particles_per_mm2"] == pytest.approx(1 / area_mm2)


def test_flat_region_error_and_false_edges_have_known_scale():
    lab = phase_scene(three_phase=False, seed=5)
    contrast = GREY[2] - GREY[0]
    rng = np.random.default_rng(6)
    noisy = ndi.gaussian_filter(GREY[lab], 1.0) + rng.normal(0, 0.1 * contrast, lab.shape)
    h = M.hallucination_metrics(noisy, lab, 50.0)
    assert h["flat_region_error"] == pytest.approx(0.1, rel=0.05)  # noise / contrast
    # stripes of half the particle contrast in the flat background: false edges
    striped = GREY[lab] + 0.5 * contrast * (np.sin(np.arange(lab.shape[1]) / 3.0) > 0) * (lab == 0)
    h2 = M.hallucination_metrics(ndi.gaussian_filter(striped, 1.0), lab, 50.0)
    assert h2["false_edge_fraction"] > 0.1 > M.hallucination_metrics(GREY[lab], lab, 50.0)["false_edge_fraction"]


def test_hallucination_no_contrast_gives_nan():
    lab = phase_scene(three_phase=False)
    h = M.hallucination_metrics(np.ones(lab.shape), lab, 50.0)
    assert math.isnan(h["flat_region_error"]) and h["n_false_particles"] is None


# --------------------------------------------------------------------------- evaluate_pair / files / CLI
def _volume(n_slices=3, noise_pred=0.03, noise_hq=0.08):
    labs = np.stack([phase_scene(seed=s) for s in range(n_slices)])
    rng = np.random.default_rng(0)
    hq = np.stack([ndi.gaussian_filter(GREY[lab], 1.5) for lab in labs]) + rng.normal(0, noise_hq, labs.shape)
    pred = np.stack([ndi.gaussian_filter(GREY[lab], 1.0) for lab in labs]) + rng.normal(0, noise_pred, labs.shape)
    return pred, hq, labs


def test_evaluate_pair_volume_keys_values_and_determinism():
    pred, hq, labs = _volume()
    res = M.evaluate_pair(pred, hq, labs, pixel_size_nm=50.0, preset="tiny")
    assert tuple(res)[: len(M.METRIC_KEYS)] == M.METRIC_KEYS
    json.dumps(res, allow_nan=False)  # JSON-ready
    assert res["slices"] == [0, 2] and res["n_slices"] == 2 and res["segmentation"] == "labels"
    assert res["fwhm_nm"] == pytest.approx(M.FWHM_PER_SIGMA * 1.0 * 50, rel=0.10)
    assert res["reference"]["fwhm_nm"] == pytest.approx(M.FWHM_PER_SIGMA * 1.5 * 50, rel=0.10)
    assert res["n_false_particles"] == 0 and res["n_missed_particles"] == 0
    assert res["sift_congruent_points"] > 10
    assert res == M.evaluate_pair(pred, hq, labs, pixel_size_nm=50.0, preset="tiny")
    # the truth itself scores better than a blurred copy
    blurred = np.stack([ndi.gaussian_filter(p, 3) for p in pred])
    worse = M.evaluate_pair(blurred, hq, labs, pixel_size_nm=50.0, preset="tiny")
    assert worse["fwhm_nm"] > 1.5 * res["fwhm_nm"] and worse["sift_congruent_points"] < res["sift_congruent_points"]


def test_evaluate_pair_2d_without_labels():
    pred, hq, _ = _volume(n_slices=1)
    res = M.evaluate_pair(pred[0], hq[0], pixel_size_nm=50.0, preset="tiny", otsu_classes=3)
    assert res["segmentation"] == "otsu" and res["n_slices"] == 1 and res["psnr_std"] == 0.0
    assert res["false_particles_per_mm2"] is None and res["flat_region_error"] is None
    assert res["fwhm_nm"] == pytest.approx(M.FWHM_PER_SIGMA * 50, rel=0.15)
    with pytest.raises(ValueError, match="pixel_size_nm"):
        M.evaluate_pair(pred[0], hq[0])
    with pytest.raises(ValueError, match="unknown parameter"):
        M.evaluate_pair(pred[0], hq[0], pixel_size_nm=50.0, preset="tiny", no_such=1)


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_evaluate_on_tiffs(tmp_path, capsys):
    from indi4d.cli import main
    from indi4d.io import write_volume

    pred, hq, labs = _volume(n_slices=2)
    to16 = lambda a: np.clip(a * 20000 + 5000, 0, 65535).astype(np.uint16)  # noqa: E731
    write_volume(tmp_path / "pred.tif", to16(pred), voxel_size_nm=50.0)
    write_volume(tmp_path / "hq.tif", to16(hq), voxel_size_nm=50.0)
    write_volume(tmp_path / "labels.tif", labs, voxel_size_nm=50.0)
    before = {p.name: _sha(p) for p in tmp_path.glob("*.tif")}
    out = tmp_path / "eval" / "metrics.json"
    rc = main(["evaluate", str(tmp_path / "pred.tif"), str(tmp_path / "hq.tif"),
               "--labels", str(tmp_path / "labels.tif"), "--out", str(out)])
    assert rc == 0
    saved = json.loads(out.read_text())
    assert set(M.METRIC_KEYS) <= set(saved) and saved["pixel_size_nm"] == 50.0
    assert saved["files"]["labels"].endswith("labels.tif")
    assert saved["n_false_particles"] == 0
    assert {p.name: _sha(p) for p in tmp_path.glob("*.tif")} == before  # inputs untouched
    assert not list(out.parent.glob("*.part*"))  # atomic write left no temp file

    # shapes differ: a clear error naming both files, exit status 2
    write_volume(tmp_path / "small.tif", to16(hq[:, :100]), voxel_size_nm=50.0)
    rc = main(["evaluate", str(tmp_path / "pred.tif"), str(tmp_path / "small.tif"), "--out", str(tmp_path / "x.json")])
    err = capsys.readouterr().err
    assert rc == 2 and "pred.tif" in err and "small.tif" in err and "shapes differ" in err
    # voxel sizes differ
    write_volume(tmp_path / "hq100.tif", to16(hq), voxel_size_nm=100.0)
    with pytest.raises(ValueError, match="voxel sizes differ.*hq100.tif"):
        M.evaluate_files(tmp_path / "pred.tif", tmp_path / "hq100.tif")
    # no voxel size anywhere
    write_volume(tmp_path / "a.tif", to16(pred))
    write_volume(tmp_path / "b.tif", to16(hq))
    with pytest.raises(ValueError, match="no voxel_size_nm.*a.tif"):
        M.evaluate_files(tmp_path / "a.tif", tmp_path / "b.tif")
    assert M.evaluate_files(tmp_path / "a.tif", tmp_path / "b.tif", pixel_size_nm=50.0, preset="tiny")["n_slices"] == 2
    # labels must be integers
    write_volume(tmp_path / "flabels.tif", labs.astype(np.float32), voxel_size_nm=50.0)
    with pytest.raises(ValueError, match="flabels.tif: labels must be integers"):
        M.evaluate_files(tmp_path / "pred.tif", tmp_path / "hq.tif", labels=tmp_path / "flabels.tif")


def test_evaluate_pair_lazy_arrays_and_masks_agree():
    import dask.array as da

    pred, hq, labs = _volume(n_slices=5)
    eager = M.evaluate_pair(pred, hq, labs, pixel_size_nm=50.0, preset="tiny")
    lazy = M.evaluate_pair(da.from_array(pred, chunks=(1, 96, 96)), da.from_array(hq, chunks=(2, 192, 192)),
                           da.from_array(labs, chunks=(1, 192, 192)), pixel_size_nm=50.0, preset="tiny")
    assert lazy == eager and eager["slices"] == [0, 4]
    disc = np.hypot(*np.mgrid[-96:96, -96:96]) < 90  # a reconstruction disc
    flat = M.evaluate_pair(pred, hq, labs, pixel_size_nm=50.0, preset="tiny", mask=disc)
    full = M.evaluate_pair(pred, hq, labs, pixel_size_nm=50.0, preset="tiny", mask=np.stack([disc] * 5))
    assert flat == full and flat["psnr"] != eager["psnr"]
    with pytest.raises(ValueError, match="mask: shape"):
        M.evaluate_pair(pred, hq, pixel_size_nm=50.0, preset="tiny", mask=disc[:10])


def test_evaluate_files_2d_slice_with_mask(tmp_path):
    from indi4d.io import write_volume

    pred, hq, labs = _volume(n_slices=1)
    write_volume(tmp_path / "pred.tif", pred[0].astype(np.float32), voxel_size_nm=50.0)
    write_volume(tmp_path / "truth.tif", hq[0].astype(np.float32))  # takes pred's voxel size
    disc = np.hypot(*np.mgrid[-96:96, -96:96]) < 90
    res = M.evaluate_files(tmp_path / "pred.tif", tmp_path / "truth.tif", out=tmp_path / "m.json",
                           mask=disc, preset="tiny")
    direct = M.evaluate_pair(pred[0].astype(np.float32), hq[0].astype(np.float32), pixel_size_nm=50.0,
                             mask=disc, preset="tiny")
    assert res["slices"] is None and res["psnr"] == direct["psnr"]
    assert json.loads((tmp_path / "m.json").read_text())["ssim"] == pytest.approx(direct["ssim"])


def test_auto_mask_finds_the_reconstruction_disc(tmp_path):
    from indi4d.io import write_volume

    pred, hq, labs = _volume(n_slices=4)
    disc = np.hypot(*np.mgrid[-95.5:96, -95.5:96]) <= 80  # constant fill outside, as a reconstruction
    hq_filled = np.where(disc, hq, 0.5)
    mask, radius = M.auto_valid_mask(pred, hq_filled)
    assert radius == pytest.approx(79.5, abs=1.5) and not mask[0, 0] and mask[96, 96]
    assert M.auto_valid_mask(pred, hq) == (None, None)  # data everywhere: nothing excluded
    write_volume(tmp_path / "pred.tif", pred.astype(np.float32), voxel_size_nm=50.0)
    write_volume(tmp_path / "hq.tif", hq_filled.astype(np.float32), voxel_size_nm=50.0)
    auto = M.evaluate_files(tmp_path / "pred.tif", tmp_path / "hq.tif", preset="tiny")
    none = M.evaluate_files(tmp_path / "pred.tif", tmp_path / "hq.tif", preset="tiny", mask=None)
    assert auto["mask"]["disc_radius_px"] == pytest.approx(radius) and none["mask"] is None
    assert auto["psnr"] > none["psnr"] + 3  # the fill outside the disc is no longer scored


# --------------------------------------------------------------------------- evaluate: output safety
def _evaluation_files(folder, n_slices=2):
    """pred.tif, hq.tif, labels.tif (and a 100-px-wide small.tif) in ``folder``; returns their paths."""
    from indi4d.io import write_volume

    pred, hq, labs = _volume(n_slices=n_slices)
    paths = {name: folder / f"{name}.tif" for name in ("pred", "hq", "labels", "small")}
    write_volume(paths["pred"], pred.astype(np.float32), voxel_size_nm=50.0)
    write_volume(paths["hq"], hq.astype(np.float32), voxel_size_nm=50.0)
    write_volume(paths["labels"], labs, voxel_size_nm=50.0)
    write_volume(paths["small"], hq[:, :100].astype(np.float32), voxel_size_nm=50.0)
    return paths


@pytest.mark.parametrize("target", ["pred", "hq", "labels"])
def test_evaluate_files_refuses_an_input_as_output(tmp_path, target):
    from indi4d.safety import UnsafeOutputError

    paths = _evaluation_files(tmp_path)
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}
    # the same file spelled another way is caught too (resolved paths, not strings)
    spelled = tmp_path / "sub" / ".." / paths[target].name
    (tmp_path / "sub").mkdir()
    for out in (paths[target], spelled):
        with pytest.raises(UnsafeOutputError, match=f"{target}.tif.*input"):
            M.evaluate_files(paths["pred"], paths["hq"], labels=paths["labels"], out=out, preset="tiny")
    # refused before anything is read: the shape mismatch of small.tif is never reached
    other = "pred" if target == "hq" else "hq"
    given = {**paths, other: paths["small"]}
    with pytest.raises(UnsafeOutputError, match=f"{target}.tif.*input"):
        M.evaluate_files(given["pred"], given["hq"], labels=given["labels"], out=paths[target])
    after = {p.name: _sha(p) for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # inputs byte-identical, no temporary file left


def test_evaluate_files_refuses_a_mask_file_or_a_non_json_output(tmp_path):
    from indi4d.io import write_volume
    from indi4d.safety import UnsafeOutputError

    paths = _evaluation_files(tmp_path)
    disc = np.hypot(*np.mgrid[-96:96, -96:96]) < 90
    write_volume(tmp_path / "mask.tif", disc.astype(np.uint8))
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}
    with pytest.raises(UnsafeOutputError, match="mask.tif.*input"):
        M.evaluate_files(paths["pred"], paths["hq"], out=tmp_path / "mask.tif", mask=tmp_path / "mask.tif")
    for out in ("metrics.txt", "metrics.tif", "metrics"):
        with pytest.raises(UnsafeOutputError, match=r"\.json"):
            M.evaluate_files(paths["pred"], paths["hq"], out=tmp_path / out)
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(UnsafeOutputError, match="folder"):
        M.evaluate_files(paths["pred"], paths["hq"], out=tmp_path / "folder.json")
    assert {p.name: _sha(p) for p in tmp_path.iterdir() if p.is_file()} == before
    # a mask given as a file scores like the same mask given as an array, and is recorded
    from_file = M.evaluate_files(paths["pred"], paths["hq"], mask=tmp_path / "mask.tif", preset="tiny")
    from_array = M.evaluate_files(paths["pred"], paths["hq"], mask=disc, preset="tiny")
    assert from_file["psnr"] == from_array["psnr"] and from_file["mask"] == "given"
    assert from_file["files"]["mask"] == str(tmp_path / "mask.tif")
    write_volume(tmp_path / "bad_mask.tif", disc[:50].astype(np.uint8))
    with pytest.raises(ValueError, match="bad_mask.tif: mask shape"):
        M.evaluate_files(paths["pred"], paths["hq"], mask=tmp_path / "bad_mask.tif", preset="tiny")


def test_cli_evaluate_refuses_to_overwrite_its_input(tmp_path, capsys):
    from indi4d.cli import main

    paths = _evaluation_files(tmp_path)
    before = {p.name: _sha(p) for p in tmp_path.iterdir()}
    for target in ("pred", "labels"):
        rc = main(["evaluate", str(paths["pred"]), str(paths["hq"]), "--labels", str(paths["labels"]),
                   "--out", str(paths[target])])
        err = capsys.readouterr().err
        assert rc == 2 and f"{target}.tif" in err and "input" in err
    assert {p.name: _sha(p) for p in tmp_path.iterdir()} == before


def test_evaluate_files_writes_infinity_for_identical_images(tmp_path):
    paths = _evaluation_files(tmp_path)
    res = M.evaluate_files(paths["hq"], paths["hq"], labels=paths["labels"], out=tmp_path / "m.json", preset="tiny")
    text = (tmp_path / "m.json").read_text()
    assert res["psnr"] == math.inf and '"psnr": Infinity' in text  # a perfect score, not "undefined"
    assert json.loads(text) == res


def test_unsupervised_edge_resolution_avoids_aligning_on_noise():
    # correlated noise: a boundary from a lightly smoothed Otsu mask follows it and reads the edge too sharp
    img, mask = blurred_discs((240, 240), [(70, 70, 38), (170, 170, 40), (70, 170, 35), (170, 70, 36)], 4.0)
    noise = ndi.gaussian_filter(np.random.default_rng(0).normal(size=img.shape), 1.0)
    img = img + 0.1 * noise / noise.std()
    expected = M.FWHM_PER_SIGMA * 4.0 * 50.0
    _, _, fixed_mask = M.two_phase_masks(img, smooth_sigma_px=2.0)
    fixed = M.fwhm_edge_resolution(img, fixed_mask, 50.0, half_length_px=16)["fwhm_nm"]
    res = M.otsu_edge_resolution(img, 50.0, half_length_px=16)
    assert fixed < 0.92 * expected
    assert res["fwhm_nm"] == pytest.approx(expected, rel=0.08)
    assert res["segmentation_sigma_px"] > 2.0
    assert M.cnr(img, res["particles"], res["background"]) > 5
