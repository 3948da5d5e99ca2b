"""Tests of indi4d.core.pipeline: seeded, aligned augmentation of LQ/HQ crops."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

from indi4d.core import pipeline
from indi4d.core.preprocess import disc_mask


def _batches(ds, n):
    return [(a.numpy(), b.numpy()) for a, b in ds.take(n)]


def _d4(window):
    """The 8 flips/rotations of a 2D window."""
    out = []
    for w in (window, window[:, ::-1]):
        out += [np.rot90(w, k) for k in range(4)]
    return out


@pytest.fixture(scope="module")
def slices():
    rng = np.random.default_rng(0)
    return rng.uniform(-1, 1, (4, 24, 24)).astype(np.float32)


def test_shapes_dtype_and_determinism(slices):
    ds = pipeline.training_dataset(slices, slices * 0.5, crop=8, batch_size=3, seed=7)
    first = _batches(ds, 5)
    again = _batches(pipeline.training_dataset(slices, slices * 0.5, crop=8, batch_size=3, seed=7), 5)
    other = _batches(pipeline.training_dataset(slices, slices * 0.5, crop=8, batch_size=3, seed=8), 5)
    for a, b in first:
        assert a.shape == b.shape == (3, 8, 8, 1) and a.dtype == b.dtype == np.float32
    for (a1, b1), (a2, b2) in zip(first, again):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    assert any(not np.array_equal(a1, a2) for (a1, _), (a2, _) in zip(first, other))


def test_identical_pair_in_identical_pair_out_and_pointwise_maps_survive(slices):
    for a, b in _batches(pipeline.training_dataset(slices, slices.copy(), 8, 4, seed=1), 6):
        np.testing.assert_array_equal(a, b)
    # HQ = -LQ pixel by pixel: after the same crop/flip/rotation it still is
    for a, b in _batches(pipeline.training_dataset(slices, -slices, 8, 4, seed=2), 6):
        np.testing.assert_array_equal(b, -a)


def test_crops_are_flipped_and_rotated_windows_of_the_slices():
    # distinct values everywhere, so each crop identifies its source window and orientation
    src = np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16) / 512.0
    seen = set()
    for a, _ in _batches(pipeline.training_dataset(src, src, 6, 8, seed=3), 8):
        for crop in a[..., 0]:
            # values grow with y and x: a window's smallest value is its top-left corner
            s, y, x = np.argwhere(src == crop.min())[0]
            matches = [k for k, w in enumerate(_d4(src[s, y : y + 6, x : x + 6])) if np.array_equal(w, crop)]
            found = matches[0] if matches else None
            assert found is not None
            seen.add(found)
    assert len(seen) >= 6  # most of the 8 orientations occur in 64 crops


def test_mask_keeps_crops_inside_the_disc():
    rng = np.random.default_rng(4)
    mask = disc_mask((40, 40), radius=18)
    lq = np.where(mask, rng.uniform(0, 1, (3, 40, 40)), -1.0).astype(np.float32)
    for a, _ in _batches(pipeline.training_dataset(lq, lq, 16, 4, seed=0, mask=mask), 10):
        assert a.min() >= 0.0  # no pixel from outside the disc
    origins = pipeline.crop_origins((40, 40), 16, mask)
    for y, x in origins:
        assert mask[y : y + 16, x : x + 16].all()
    # every fully-inside window is allowed: the corners of the box 2..22
    assert len(origins) > 0 and pipeline.crop_origins((40, 40), 16).shape == (25 * 25, 2)


def test_bad_input(slices):
    with pytest.raises(ValueError, match="does not fit"):
        pipeline.training_dataset(slices, slices, crop=32, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="same shape"):
        pipeline.training_dataset(slices, slices[:, :20], crop=8, batch_size=2, seed=0)
    with pytest.raises(ValueError, match=r"\(n, H, W\)"):
        pipeline.training_dataset(slices[0], slices[0], crop=8, batch_size=2, seed=0)
    bad = slices.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pipeline.training_dataset(bad, slices, crop=8, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="smaller crop"):
        pipeline.training_dataset(slices, slices, crop=20, batch_size=2, seed=0, mask=disc_mask((24, 24), 8))


def test_evaluation_dataset_is_finite_centred_and_unaugmented(slices):
    batches = _batches(pipeline.evaluation_dataset(slices, slices + 1, batch_size=3, crop=10), 10)
    assert [a.shape[0] for a, _ in batches] == [3, 1]
    np.testing.assert_array_equal(batches[0][0][0, ..., 0], slices[0, 7:17, 7:17])
    np.testing.assert_array_equal(batches[0][1][0, ..., 0], slices[0, 7:17, 7:17] + 1)


def test_two_hq_channels_move_with_lq_and_swap_at_random_per_sample(slices):
    """HQ halves (n, H, W, 2): same crop/flip/rotation as LQ; channels swapped about half the time, seeded."""
    hq = np.stack([-slices, 0.5 * slices], axis=-1)  # channel a = -lq, channel b = lq / 2, pixel by pixel
    ds = pipeline.training_dataset(slices, hq, crop=8, batch_size=4, seed=5)
    batches = _batches(ds, 25)
    swapped = []
    for a, b in batches:
        assert a.shape == (4, 8, 8, 1) and b.shape == (4, 8, 8, 2) and b.dtype == np.float32
        for lq_c, hq_c in zip(a[..., 0], b):
            straight = np.array_equal(hq_c[..., 0], -lq_c) and np.array_equal(hq_c[..., 1], 0.5 * lq_c)
            crossed = np.array_equal(hq_c[..., 1], -lq_c) and np.array_equal(hq_c[..., 0], 0.5 * lq_c)
            assert straight != crossed  # aligned, and exactly one of the two orders
            swapped.append(crossed)
    assert 0.3 < np.mean(swapped) < 0.7
    again = _batches(pipeline.training_dataset(slices, hq, crop=8, batch_size=4, seed=5), 25)
    for (a1, b1), (a2, b2) in zip(batches, again):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    # one channel given as (n, H, W, 1) is the (n, H, W) stream, draw for draw
    for (a1, b1), (a2, b2) in zip(_batches(pipeline.training_dataset(slices, slices[..., None], 8, 4, seed=5), 4),
                                  _batches(pipeline.training_dataset(slices, slices, 8, 4, seed=5), 4)):
        np.testing.assert_array_equal(a1, a2)
        np.testing.assert_array_equal(b1, b2)
    # evaluation: channels stay in order
    (a, b), = list(pipeline.evaluation_dataset(slices[:2], hq[:2], batch_size=2, crop=8).as_numpy_iterator())
    assert b.shape == (2, 8, 8, 2)
    np.testing.assert_array_equal(b[..., 0], -a[..., 0])
    with pytest.raises(ValueError, match="channels"):
        pipeline.training_dataset(slices, np.stack([slices] * 3, -1), 8, 4, seed=0)
