"""The held-out test slices of a run folder with their truth (step 1 of chapter 05)."""

import numpy as np


def load_test_set(run_dir, max_slices=None):
    """The held-out test slices of a run folder with their truth.

    Parameters
    ----------
    run_dir : str or Path
        Needs ``pairs/`` (chapter 02) and ``data/`` (chapter 01).
    max_slices : int, optional
        Keep at most this many evenly spaced test slices.

    Returns
    -------
    dict
        ``lq``, ``hq``: float32 (n, H, W) in [-1, 1] (registered, x2-upscaled
        LQ and HQ); ``z``: int (n,) slice indices in the HQ volume; ``mask``:
        bool (H, W) reconstruction disc; ``truth_mu``: float32 (n, H, W) true
        attenuation (1/um) or None; ``truth_labels``: uint8 (n, H, W) phase
        labels or None; ``pixel_size_nm``: float (the HQ voxel size).

    Raises
    ------
    indi4d.runs.MissingArtifactError
        When the pairs folder is missing.
    ValueError
        When there are no test slices or the truth does not fit the pairs.
    """
    from .. import preprocess, runs
    from ..files import read_json
    from ..io import read_volume
    from ..metrics import select_slices

    pairs_path = runs.require_artifact(run_dir, "pairs", "pairs")
    info = preprocess.load_pairs_info(pairs_path.parent)
    lq, hq = preprocess.load_pairs(pairs_path.parent, "test")
    z = np.asarray(info["z"])[info["split"] == "test"]
    if lq.shape[0] == 0:
        raise ValueError(f"{pairs_path}: no test slices (split == 'test')")
    if max_slices is not None and lq.shape[0] > max_slices:
        keep = select_slices(lq.shape[0], max_slices)
        lq, hq, z = lq[keep], hq[keep], z[keep]
    pixel = 50.0
    meta_path = runs.artifact(run_dir, "data", "meta")
    if meta_path.exists():
        pixel = float(read_json(meta_path, "the data description").get("voxel_size_nm", {}).get("hq", pixel))
    out = {"lq": lq, "hq": hq, "z": z.astype(int), "mask": info["mask"], "truth_mu": None, "truth_labels": None,
           "pixel_size_nm": pixel}
    for key, name in (("truth_mu", "truth_mu_hq"), ("truth_labels", "truth_labels_hq")):
        path = runs.artifact(run_dir, "data", name)
        if not path.exists():
            continue
        vol, _ = read_volume(path)
        if vol.ndim != 3 or tuple(vol.shape[1:]) != tuple(lq.shape[1:]) or z.max() >= vol.shape[0]:
            raise ValueError(f"{path}: shape {vol.shape} does not hold the test slices z={z.tolist()} "
                             f"of size {lq.shape[1:]}")
        out[key] = np.asarray(vol[z])
    if out["truth_labels"] is not None and not np.issubdtype(out["truth_labels"].dtype, np.integer):
        raise ValueError(f"{runs.artifact(run_dir, 'data', 'truth_labels_hq')}: labels must be integers")
    return out
