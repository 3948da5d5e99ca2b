"""The training data of a pairs folder: checked slices, seeded crops per epoch, fixed validation crops.

InDI and both baselines take their batches from here, so with the same seed
they see the very same crops in the same order.
"""

import numpy as np

SEED_STRIDE = 1_000_003  # epoch e of seed s draws its batches with seed s * stride + e


def load_training_slices(pairs_dir, crop):
    """The training and validation slices of a pairs folder, checked for use by the loop.

    Parameters
    ----------
    pairs_dir : str or Path
        Chapter 02's pairs folder.
    crop : int
        Side of the training crops; the slices must be at least this large.

    Returns
    -------
    dict
        ``lq_tr``, ``hq_tr``, ``lq_va``, ``hq_va`` float32 (n, H, W) in [-1, 1],
        ``mask`` bool (H, W) (reconstruction disc) and ``normalisation``
        (``{"lq": params, "hq": params}``).

    Raises
    ------
    ValueError
        No training or validation slices, non-finite values, or slices smaller
        than ``crop``; the message names ``pairs.npz``.
    """
    from .. import pairs

    lq_tr, hq_tr = pairs.load_pairs(pairs_dir, "train")
    lq_va, hq_va = pairs.load_pairs(pairs_dir, "val")
    info = pairs.load_pairs_info(pairs_dir)
    where = pairs.pairs_file(pairs_dir, "pairs")
    if lq_tr.shape[0] == 0:
        raise ValueError(f"{where}: no training slices")
    if lq_va.shape[0] == 0:
        raise ValueError(f"{where}: no validation slices (split == 'val')")
    for name, arr in (("train", lq_tr), ("train", hq_tr), ("val", lq_va), ("val", hq_va)):
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{where}: the {name} slices contain NaN or infinite values")
    if min(lq_tr.shape[1:]) < crop:
        raise ValueError(f"{where}: slices {tuple(int(s) for s in lq_tr.shape[1:])} are smaller than the crop {crop}")
    return {"lq_tr": lq_tr, "hq_tr": hq_tr, "lq_va": lq_va, "hq_va": hq_va, "mask": info["mask"],
            "normalisation": info["normalisation"]}


def epoch_batch_source(slices, crop, batch_size, steps_per_epoch, seed, min_inside):
    """``train_batches(epoch)``: the seeded random crops of one epoch (``steps_per_epoch`` batches).

    Epoch ``e`` uses :func:`indi4d.pipeline.training_dataset` seeded
    ``seed * SEED_STRIDE + e``, so every epoch is reproducible on its own (a
    resumed run replays it).
    """
    from .. import pipeline

    def train_batches(epoch):
        ds = pipeline.training_dataset(slices["lq_tr"], slices["hq_tr"], int(crop), int(batch_size),
                                       seed=int(seed) * SEED_STRIDE + int(epoch), mask=slices["mask"],
                                       min_inside=min_inside)
        return ds.repeat().take(int(steps_per_epoch))

    return train_batches


def _centre_crop(stack, size):
    """Centre ``size x size`` crop of a (n, H, W) stack."""
    _, h, w = stack.shape
    y0, x0 = (h - size) // 2, (w - size) // 2
    return stack[:, y0:y0 + size, x0:x0 + size]


def validation_batches(lq, hq, crop, batch_size, max_slices, multiple):
    """Fixed validation batches: centre crops of up to ``max_slices`` evenly spaced slices.

    Parameters
    ----------
    lq, hq : ndarray, float32, shape (n, H, W)
    crop : int
        Crop side; reduced to the slice size and rounded down to ``multiple``.
    batch_size, max_slices, multiple : int

    Returns
    -------
    list of (ndarray, ndarray), each (b, crop, crop, 1) float32
    """
    n = lq.shape[0]
    if n == 0:
        raise ValueError("no validation slices")
    pick = np.unique(np.linspace(0, n - 1, min(n, max_slices)).round().astype(int))
    size = min(crop, lq.shape[1], lq.shape[2]) // multiple * multiple
    if size < multiple:
        raise ValueError(f"validation slices {tuple(int(s) for s in lq.shape[1:])} are smaller than the "
                         f"network's factor {multiple}")
    lq_c = _centre_crop(lq[pick], size)[..., None].astype(np.float32)
    hq_c = _centre_crop(hq[pick], size)[..., None].astype(np.float32)
    return [(lq_c[i:i + batch_size], hq_c[i:i + batch_size]) for i in range(0, len(pick), batch_size)]


def slice_batches(slices, params, steps_per_epoch, seed, factor):
    """(``train_batches``, validation batches) of ``slices`` with the crop/batch parameters ``params``.

    ``params`` holds ``crop``, ``batch_size``, ``min_inside``, ``val_crop`` and
    ``val_max_slices`` (a training preset or an InDI budget).
    """
    train = epoch_batch_source(slices, params["crop"], params["batch_size"], steps_per_epoch, seed,
                               params["min_inside"])
    val = validation_batches(slices["lq_va"], slices["hq_va"], params["val_crop"], int(params["batch_size"]),
                             params["val_max_slices"], factor)
    return train, val
