"""Tests of indi4d.core.preprocess: upscaling, disc masks, normalisation, split, pairs folder."""

import json

import numpy as np
import pytest

from indi4d.core import preprocess as P


# --------------------------------------------------------------------------- upscaling


def test_upscale_of_binned_ramp_gives_back_the_ramp():
    # a linear ramp binned 2x2x2 holds the ramp's value at the cell centre 2i+0.5,
    # and a cubic spline reproduces linear functions: upscaling must give the ramp back
    # (the mirror extension at the borders is not linear: check the interior)
    z, y, x = np.indices((32, 32, 32)).astype(np.float64)
    fine = 3.0 * z + 2.0 * y - x
    coarse = fine.reshape(16, 2, 16, 2, 16, 2).mean(axis=(1, 3, 5))
    up = P.upscale(coarse, 2)
    assert up.shape == (32, 32, 32) and up.dtype == np.float32
    inner = (slice(10, -10),) * 3
    np.testing.assert_allclose(up[inner], fine[inner], atol=2e-3)
    # nearest-neighbour upscaling repeats each voxel twice along every axis
    np.testing.assert_array_equal(P.upscale(coarse, 2, order=0)[::2, ::2, ::2], coarse.astype(np.float32))


def test_upscale_selected_axes_and_bad_factor():
    a = np.arange(12, dtype=np.uint16).reshape(3, 4)
    assert P.upscale(a, 2, axes=[-1]).shape == (3, 8)
    assert P.upscale(a, 3).shape == (9, 12)
    with pytest.raises(ValueError, match="factor"):
        P.upscale(a, 1.5)


@pytest.mark.parametrize("start, stop", [(0, 9), (3, 5), (0, 1), (8, 9)])
def test_upscale_part_is_the_crop_of_the_whole_bit_for_bit(start, stop):
    from indi4d.core.upscaling import upscale_part

    a = np.random.default_rng(0).normal(size=(9, 5, 4)).astype(np.float32)
    whole = P.upscale(a, 2, axes=(0,))
    np.testing.assert_array_equal(upscale_part(a, 2, 0, start, stop), whole[2 * start: 2 * stop])
    with pytest.raises(ValueError, match="start < stop"):
        upscale_part(a, 2, 0, 4, 4)


# --------------------------------------------------------------------------- masks


def test_disc_mask_small_known_answer():
    m = P.disc_mask((5, 5), radius=1.0)
    expected = np.zeros((5, 5), bool)
    expected[2, 1:4] = expected[1:4, 2] = True  # the centre and its 4 neighbours
    np.testing.assert_array_equal(m, expected)


def test_disc_mask_area_and_default_radius():
    m = P.disc_mask((3, 201, 201))  # leading axes ignored
    assert m.shape == (201, 201)
    assert abs(m.sum() - np.pi * 100.5**2) / (np.pi * 100.5**2) < 0.01
    assert m[100, 100] and not m[0, 0] and m[100, 0] and m[0, 100]
    with pytest.raises(ValueError, match="radius"):
        P.disc_mask((8, 8), radius=0)


def test_estimate_disc_radius_of_a_reconstruction_disc():
    rng = np.random.default_rng(0)
    vol = np.full((12, 64, 64), 1000.0, np.float32)  # constant outside the disc, as FBP leaves it
    disc = P.disc_mask((64, 64), radius=20.0)
    vol[:, disc] = rng.normal(3000, 300, (12, int(disc.sum())))
    assert abs(P.estimate_disc_radius(vol) - 20.0) <= 1.0
    # no empty outside: the whole slice (up to its corners) is data
    full = rng.normal(0, 1, (6, 32, 32))
    assert P.estimate_disc_radius(full) >= 16.0


# --------------------------------------------------------------------------- normalisation


@pytest.fixture
def scan():
    """A uint16 'scan' with two phases, ties, and a constant outside-the-disc region."""
    rng = np.random.default_rng(1)
    vol = np.zeros((6, 48, 48), np.uint16)
    mask = P.disc_mask((48, 48), radius=22)
    phase = rng.random((6, 48, 48)) < 0.3
    values = np.where(phase, rng.normal(30000, 2000, vol.shape), rng.normal(12000, 1500, vol.shape))
    vol[:] = np.clip(values, 0, 65535).astype(np.uint16)
    vol[:, ~mask] = 0
    return vol, mask


@pytest.mark.parametrize("method", ["none", "global"])
def test_normalise_range_and_round_trip_within_one_grey_level(scan, method):
    vol, mask = scan
    before = vol.copy()
    params = P.fit_normalisation(vol, mask, method=method)
    params = json.loads(json.dumps(params))  # must survive JSON
    u = P.normalise(vol, params)
    assert u.dtype == np.float32 and u.shape == vol.shape
    assert u.min() >= -1.0 and u.max() <= 1.0
    inside = u[:, mask]
    assert inside.min() == pytest.approx(-1.0, abs=1e-3) and inside.max() == pytest.approx(1.0, abs=1e-3)
    back = P.denormalise(u, params)
    err = np.abs(back[:, mask].astype(np.float64) - vol[:, mask])
    assert err.max() <= 1.0
    np.testing.assert_array_equal(vol, before)  # input untouched


def test_global_equalisation_is_uniform_and_matches_skimage(scan):
    from skimage import exposure

    vol, mask = scan
    params = P.fit_normalisation(vol, mask, method="global")
    u = P.normalise(vol, params)[:, mask]
    # equalised values are uniform on [-1, 1]: mean 0, std 1/sqrt(3)
    assert abs(u.mean()) < 0.01 and abs(u.std() - 1 / np.sqrt(3)) < 0.01
    ref = 2.0 * exposure.equalize_hist(vol[:, mask].astype(np.float64), nbins=4096) - 1.0
    assert np.abs(u - ref).max() < 0.02


def test_none_is_linear(scan):
    vol, mask = scan
    params = P.fit_normalisation(vol, mask, method="none")
    lo, hi = vol[:, mask].min(), vol[:, mask].max()
    assert params["lo"] == lo and params["hi"] == hi
    mid = (float(lo) + float(hi)) / 2
    np.testing.assert_allclose(P.normalise(np.array([lo, mid, hi]), params), [-1, 0, 1], atol=1e-6)
    assert P.normalise(np.array([0.0, 70000.0]), params).tolist() == [-1.0, 1.0]  # clipped


def test_percentile_is_linear_robust_and_invertible_between_its_ends(scan):
    vol, mask = scan
    params = json.loads(json.dumps(P.fit_normalisation(vol, mask, method="percentile", percentiles=(1.0, 99.0))))
    inside = vol[:, mask].astype(np.float64)
    lo, hi = np.percentile(inside, [1.0, 99.0])
    assert params["lo"] == pytest.approx(lo) and params["hi"] == pytest.approx(hi) and params["invertible"]
    np.testing.assert_allclose(P.normalise(np.array([lo, (lo + hi) / 2, hi]), params), [-1, 0, 1], atol=1e-6)
    u = P.normalise(vol, params)[:, mask]
    assert np.mean(u == -1.0) == pytest.approx(0.01, abs=0.003) and np.mean(u == 1.0) == pytest.approx(0.01, abs=0.003)
    # linear: the normalised mean of two values is the normalised value of their mean (Noise2Noise stays unbiased)
    a, b = inside.ravel()[:1000], inside.ravel()[1000:2000]
    between = (a > lo) & (a < hi) & (b > lo) & (b < hi)
    np.testing.assert_allclose(((P.normalise(a, params) + P.normalise(b, params)) / 2)[between],
                               P.normalise((a + b) / 2, params)[between], atol=1e-6)
    back = P.denormalise(P.normalise(vol, params), params)[:, mask]
    keep = (inside >= lo) & (inside <= hi)
    assert np.abs(back[keep] - inside[keep]).max() <= 1.0
    with pytest.raises(ValueError, match="percentiles"):
        P.fit_normalisation(vol, mask, method="percentile", percentiles=(50, 10))


def test_clahe_range_and_approximate_inverse(scan):
    vol, mask = scan
    params = P.fit_normalisation(vol, mask, method="clahe")
    assert params["invertible"] is False
    json.dumps(params)
    u = P.normalise(vol, params)
    assert u.min() >= -1 and u.max() <= 1
    back = P.denormalise(u, params)[:, mask]
    # a global approximation of a local map: grey values come back to within
    # a fraction of the contrast between the two phases (18000 grey levels)
    assert np.median(np.abs(back - vol[:, mask])) < 3000


def test_normalisation_bad_input():
    with pytest.raises(ValueError, match="unknown method"):
        P.fit_normalisation(np.ones((4, 4)), method="hist")
    with pytest.raises(ValueError, match="NaN"):
        P.fit_normalisation(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="mask"):
        P.fit_normalisation(np.ones((4, 4)), mask=np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="fit_normalisation"):
        P.normalise(np.ones(3), {"method": "other"})


# --------------------------------------------------------------------------- split


@pytest.mark.parametrize("n,guard,seed", [(100, 0, 0), (100, 2, 1), (37, 1, 5), (250, 3, 2)])
def test_split_blocks_are_contiguous_disjoint_and_sized(n, guard, seed):
    labels = P.split_slices(n, 0.1, 0.1, guard=guard, seed=seed)
    assert labels.shape == (n,)
    for name in ("val", "test"):
        idx = np.nonzero(labels == name)[0]
        assert idx.size == round(0.1 * n)
        assert np.all(np.diff(idx) == 1)  # one contiguous block
        # no training slice within `guard` slices of a held-out block
        near = np.arange(max(0, idx[0] - guard), min(n, idx[-1] + guard + 1))
        assert not np.any(labels[near] == "train")
    assert set(labels.tolist()) <= {"train", "val", "test", "guard"}
    assert np.sum(labels == "guard") <= 4 * guard
    np.testing.assert_array_equal(labels, P.split_slices(n, 0.1, 0.1, guard=guard, seed=seed))


def test_split_depends_on_seed_and_rejects_too_few_slices():
    runs = {tuple(P.split_slices(100, 0.1, 0.1, seed=s)) for s in range(5)}
    assert len(runs) > 1
    with pytest.raises(ValueError, match="too few"):
        P.split_slices(5, 0.2, 0.2, guard=1)
    with pytest.raises(ValueError, match="val_fraction"):
        P.split_slices(100, 0.6, 0.1)


# --------------------------------------------------------------------------- pairs folder


def _pairs(tmp_path):
    rng = np.random.default_rng(3)
    lq = rng.uniform(-1, 1, (6, 8, 8)).astype(np.float32)
    hq = rng.uniform(-1, 1, (6, 8, 8)).astype(np.float32)
    split = np.array(["train", "train", "val", "train", "test", "train"])
    linear = {"method": "none", "lo": 0.0, "hi": 1.0}
    P.save_pairs(tmp_path, lq, hq, P.disc_mask((8, 8)), np.arange(6) + 10, split,
                 {"phi": np.eye(4).tolist()}, {"lq": linear, "hq": linear}, {"seed": 0})
    return lq, hq, split


def test_save_and_load_pairs_round_trip(tmp_path):
    lq, hq, split = _pairs(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["normalisation.json", "pairs.json", "pairs.npz", "phi.json"]
    for name in ("train", "val", "test"):
        a, b = P.load_pairs(tmp_path, name)
        assert a.dtype == np.float32 and a.shape == (int(np.sum(split == name)), 8, 8)
        np.testing.assert_array_equal(a, lq[split == name])
        np.testing.assert_array_equal(b, hq[split == name])
    info = P.load_pairs_info(tmp_path)
    assert info["z"].tolist() == list(range(10, 16)) and info["mask"].dtype == bool
    assert info["phi"]["phi"] == np.eye(4).tolist()
    with pytest.raises(ValueError, match="unknown split"):
        P.load_pairs(tmp_path, "training")


def test_load_pairs_missing_and_save_pairs_bad_values(tmp_path):
    with pytest.raises(FileNotFoundError, match="02_registration"):
        P.load_pairs(tmp_path / "nowhere", "train")
    bad = np.full((2, 4, 4), 1.5, np.float32)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        P.save_pairs(tmp_path, bad, bad, np.ones((4, 4), bool), np.arange(2), np.array(["train"] * 2), {}, {}, {})


def test_interrupted_save_leaves_no_folder_that_looks_complete(tmp_path):
    _pairs(tmp_path)  # the complete folder of an earlier run
    (tmp_path / "notes.txt").write_text("mine")
    new = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(TypeError):  # phi.json cannot be written: the run fails half-way
        P.save_pairs(tmp_path, new, new, np.ones((8, 8), bool), np.arange(2), np.array(["train", "val"]),
                     {"phi": object()}, {}, {})
    assert not (tmp_path / "pairs.json").exists()
    with pytest.raises(ValueError, match="incomplete pairs folder.*pairs.json"):
        P.load_pairs(tmp_path, "train")
    with pytest.raises(ValueError, match="incomplete pairs folder"):
        P.load_pairs_info(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # only the pairs files are replaced
    lq, _, _ = _pairs(tmp_path)  # the next complete write makes the folder whole again
    np.testing.assert_array_equal(P.load_pairs(tmp_path, "all")[0], lq)


def test_pairs_names_come_from_the_run_folder_layout_and_preprocess_reexports(tmp_path):
    from indi4d.core import pairs
    from indi4d import runs

    assert P.save_pairs is pairs.save_pairs and P.load_pairs is pairs.load_pairs and P.SPLITS == pairs.SPLITS
    _pairs(tmp_path)
    complete = [name for key, name in runs.FILES["pairs"].items() if key != "unconverged"]  # a refused run's report
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(complete)


@pytest.mark.parametrize("shape, axes, factor", [((7, 5, 6), None, 2), ((12, 9, 10), (0,), 2), ((3, 8, 9), (1, 2), 2),
                                                 ((9, 4), (1,), 3), ((1, 5), None, 2), ((2, 5, 4), (0,), 2)])
def test_cubic_upscale_is_ndimages_tricubic_zoom(shape, axes, factor):
    """ndimage's zoom of the sub-arrays spanned by ``axes`` (a zoom of 1 along the others is not exact in ndimage)."""
    from scipy import ndimage as ndi

    x = np.random.default_rng(len(shape) * factor).normal(size=shape).astype(np.float32)
    keep = [] if axes is None else [a for a in range(x.ndim) if a not in axes]
    moved = np.moveaxis(x, keep, list(range(len(keep))))
    subs = moved.reshape(-1, *moved.shape[len(keep):])
    zoomed = np.stack([ndi.zoom(sub, factor, order=3, mode="reflect", grid_mode=True) for sub in subs])
    expected = np.moveaxis(zoomed.reshape(*moved.shape[:len(keep)], *zoomed.shape[1:]), list(range(len(keep))), keep)
    got = P.upscale(x, factor, axes=axes)
    assert got.dtype == np.float32 and got.shape == expected.shape and got.flags.c_contiguous
    np.testing.assert_allclose(got, expected, atol=2e-6 * np.abs(expected).max())
