"""tf.data input pipelines over registered LQ/HQ slice pairs (chapters 03-05).

:func:`training_dataset` streams random crops of the pairs, augmented by flips
and 90° rotations applied identically to LQ and HQ, in batches, forever. The
stream is a pure function of ``seed``: every random draw of element ``i`` uses
the stateless seed ``(seed, i)``, so the same seed gives the same batches in
the same order, whatever the parallelism.

HQ may carry a channel axis, (n, H, W, 2): two independent HQ targets of the
same slices (the Noise2Inverse halves). Channel 0 is the image InDI builds
``x_t`` from and channel 1 the loss target (Noise2Noise); the training stream
swaps the two at random per sample (a seeded draw), so each half is the target
half of the time.

TensorFlow is imported inside the functions, so importing this module is cheap.
"""

import numpy as np

PRESETS = {
    "tiny": {"crop": 16, "batch_size": 2},  # fits inside the disc of a 32 x 32 tiny slice
    "default": {"crop": 64, "batch_size": 4},  # fits inside the disc of a 128 x 128 default slice
    "workshop": {"crop": 48, "batch_size": 4},  # fits inside the disc of a 96 x 96 workshop slice
    # the paper: random 640 x 640 crops, batch of two
    "paper": {"crop": 640, "batch_size": 2},
}


def _check_pairs(lq, hq, what="training_dataset"):
    """Both stacks as float32, HQ with a channel axis (n, H, W, c), c in {1, 2}; ValueError if they do not pair."""
    lq, hq = np.asarray(lq), np.asarray(hq)
    if lq.ndim != 3 or hq.ndim not in (3, 4):
        raise ValueError(f"{what}: lq must be an (n, H, W) stack and hq (n, H, W) or (n, H, W, 2), got shapes "
                         f"{lq.shape} and {hq.shape}")
    if hq.ndim == 3:
        hq = hq[..., None]
    if lq.shape != hq.shape[:3] or hq.shape[3] not in (1, 2):
        raise ValueError(f"{what}: lq {lq.shape} and hq {hq.shape} must have the same shape (n, H, W), hq with 1 or "
                         "2 channels")
    if lq.shape[0] == 0:
        raise ValueError(f"{what}: no slices")
    for name, a in (("lq", lq), ("hq", hq)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{what}: {name} contains NaN or infinite values")
    return lq.astype(np.float32), hq.astype(np.float32)


def crop_origins(shape, crop, mask=None, min_inside=1.0):
    """Top-left corners of the crops that lie (mostly) inside a mask.

    Parameters
    ----------
    shape : (int, int)
        Slice shape (H, W).
    crop : int
        Side of the square crop, pixels.
    mask : ndarray of bool, shape (H, W), optional
        Valid pixels (the reconstruction disc); default all.
    min_inside : float
        Smallest fraction of a crop's pixels that must be inside the mask.

    Returns
    -------
    ndarray, int32, shape (N, 2)
        ``(y, x)`` of every allowed top-left corner.
    """
    h, w = (int(s) for s in shape)
    crop = int(crop)
    if crop < 1 or crop > h or crop > w:
        raise ValueError(f"crop size {crop} does not fit slices of shape {(h, w)}")
    if mask is None:
        yy, xx = np.meshgrid(np.arange(h - crop + 1), np.arange(w - crop + 1), indexing="ij")
        return np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.int32)
    mask = np.asarray(mask, bool)
    if mask.shape != (h, w):
        raise ValueError(f"mask of shape {mask.shape} does not match slices of shape {(h, w)}")
    # summed-area table: pixels inside = S[y+c, x+c] - S[y, x+c] - S[y+c, x] + S[y, x]
    s = np.pad(mask.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    inside = s[crop:, crop:] - s[:-crop, crop:] - s[crop:, :-crop] + s[:-crop, :-crop]
    ok = inside >= min_inside * crop * crop - 1e-9
    if not ok.any():
        raise ValueError(
            f"no {crop}x{crop} crop has {min_inside:.0%} of its pixels inside the mask "
            f"({int(mask.sum())} pixels); use a smaller crop"
        )
    return np.argwhere(ok).astype(np.int32)


def training_dataset(lq, hq, crop, batch_size, seed, mask=None, min_inside=1.0):
    """An endless, seeded stream of augmented random crops of LQ/HQ pairs.

    Each element picks a slice and a crop position at random, then applies
    the same random left-right flip, up-down flip and rotation by k·90° to
    the LQ and the HQ crop, so the pair stays aligned.

    Parameters
    ----------
    lq : ndarray, float32, shape (n, H, W)
        LQ slices in [-1, 1] (:func:`indi4d.core.pairs.load_pairs`).
    hq : ndarray, float32, shape (n, H, W) or (n, H, W, 2)
        Their HQ targets; with two channels (two independent HQ halves) the
        channels are swapped at random per sample (seeded).
    crop : int
        Side of the square crops, pixels.
    batch_size : int
    seed : int
        Same seed -> same batches.
    mask : ndarray of bool, shape (H, W), optional
        Crops are taken where at least ``min_inside`` of their pixels are inside it.
    min_inside : float
        See ``mask``.

    Returns
    -------
    tf.data.Dataset
        Yields ``(lq, hq)`` float32, lq (batch_size, crop, crop, 1) and hq
        (batch_size, crop, crop, c) with c the channels of ``hq`` (1 or 2);
        infinite (it repeats): take ``steps_per_epoch`` batches per epoch.
    """
    lq, hq = _check_pairs(lq, hq)
    if int(batch_size) < 1:
        raise ValueError(f"training_dataset: batch_size must be >= 1, got {batch_size}")
    origins = crop_origins(lq.shape[1:], crop, mask, min_inside)
    import tensorflow as tf

    crop, n, c = int(crop), lq.shape[0], hq.shape[-1]
    # LQ and HQ as the channels of one tensor: every op below moves them together
    stack = tf.constant(np.concatenate([lq[..., None], hq], axis=-1))
    origins_t = tf.constant(origins)
    n_origins = origins.shape[0]
    base = tf.constant(int(seed), tf.int64)

    def sample(i):
        # a sixth draw (the swap of two HQ channels) only when there are two: one-channel streams are unchanged
        seeds = tf.random.experimental.stateless_split(tf.stack([base, i]), num=5 if c == 1 else 6)

        def draw(k, hi):
            return tf.random.stateless_uniform([], seed=seeds[k], minval=0, maxval=hi, dtype=tf.int32)

        o = origins_t[draw(1, n_origins)]
        pair = stack[draw(0, n), o[0] : o[0] + crop, o[1] : o[1] + crop, :]
        pair = tf.cond(draw(2, 2) > 0, lambda: tf.reverse(pair, [1]), lambda: pair)  # left-right
        pair = tf.cond(draw(3, 2) > 0, lambda: tf.reverse(pair, [0]), lambda: pair)  # up-down
        pair = tf.image.rot90(pair, k=draw(4, 4))
        pair = tf.ensure_shape(pair, [crop, crop, 1 + c])
        target = pair[..., 1:]
        if c == 2:  # Noise2Noise: either half builds x_t, the other is the target
            target = tf.cond(draw(5, 2) > 0, lambda: tf.reverse(target, [-1]), lambda: target)
        return pair[..., :1], target

    ds = tf.data.Dataset.counter(dtype=tf.int64)
    ds = ds.map(sample, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(int(batch_size), drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(lq, hq, batch_size=1, crop=None):
    """A finite, unaugmented pass over the pairs (validation and test losses).

    Parameters
    ----------
    lq : ndarray, float32, shape (n, H, W)
    hq : ndarray, float32, shape (n, H, W) or (n, H, W, 2)
        With two channels they stay in order (no swap).
    batch_size : int
    crop : int, optional
        Take the centred ``crop`` x ``crop`` window of each slice; default whole slices.

    Returns
    -------
    tf.data.Dataset
        Yields ``(lq, hq)`` float32, lq (B, crop, crop, 1) and hq (B, crop, crop, c) (last batch may be smaller).
    """
    lq, hq = _check_pairs(lq, hq, "evaluation_dataset")
    if crop is not None:
        h, w = lq.shape[1:]
        crop = int(crop)
        if crop < 1 or crop > h or crop > w:
            raise ValueError(f"evaluation_dataset: crop size {crop} does not fit slices of shape {(h, w)}")
        y0, x0 = (h - crop) // 2, (w - crop) // 2
        lq, hq = lq[:, y0 : y0 + crop, x0 : x0 + crop], hq[:, y0 : y0 + crop, x0 : x0 + crop]
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((lq[..., None], hq))
    return ds.batch(int(batch_size))
