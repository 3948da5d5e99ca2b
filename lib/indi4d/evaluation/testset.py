"""The held-out test slices of a run folder with their truth (step 1 of chapter 05)."""

import numpy as np


def _read_slices(run_dir, name, z, size):
    """Slices ``z`` of ``RUN_DIR/data/<name>`` as an ndarray (n, H, W), or None when the file is absent."""
    from .. import runs
    from ..io import read_volume

    path = runs.artifact(run_dir, "data", name)
    if not path.exists():
        return None
    vol, _ = read_volume(path)
    if vol.ndim != 3 or tuple(vol.shape[1:]) != tuple(size) or (len(z) and z.max() >= vol.shape[0]):
        raise ValueError(f"{path}: shape {vol.shape} does not hold the slices z={z.tolist()} of size {tuple(size)}")
    return np.asarray(vol[z])


def _grey_mapping(meta, path):
    """``meta["grey_mapping"]`` checked (``offset``, ``per_inv_um`` != 0), or None when absent."""
    mapping = meta.get("grey_mapping")
    if mapping is None:
        return None
    try:
        mapping = {"offset": float(mapping["offset"]), "per_inv_um": float(mapping["per_inv_um"])}
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{path}: grey_mapping must hold numbers 'offset' and 'per_inv_um', got {mapping!r}") from None
    if mapping["per_inv_um"] == 0:
        raise ValueError(f"{path}: grey_mapping per_inv_um is 0")
    return mapping


def load_split(run_dir, split="test", max_slices=None):
    """The slices of one split of the pairs (``"test"`` or ``"val"``) with their truth; see :func:`load_test_set`."""
    from .. import runs
    from ..core import preprocess
    from ..files import read_json
    from ..metrics import select_slices
    from ..simulate.acquisition import grey_to_mu

    pairs_path = runs.require_artifact(run_dir, "pairs", "pairs")
    info = preprocess.load_pairs_info(pairs_path.parent)
    lq, hq = preprocess.load_pairs(pairs_path.parent, split)
    z = np.asarray(info["z"])[info["split"] == split]
    if lq.shape[0] == 0:
        raise ValueError(f"{pairs_path}: no {split} slices (split == {split!r})")
    if max_slices is not None and lq.shape[0] > max_slices:
        keep = select_slices(lq.shape[0], max_slices)
        lq, hq, z = lq[keep], hq[keep], z[keep]
    pixel, mapping = 50.0, None
    meta_path = runs.artifact(run_dir, "data", "meta")
    if meta_path.exists():
        meta = read_json(meta_path, "the data description")
        pixel = float(meta.get("voxel_size_nm", {}).get("hq", pixel))
        mapping = _grey_mapping(meta, meta_path)
    out = {"lq": lq, "hq": hq, "z": z.astype(int), "mask": info["mask"], "truth_mu": None, "truth_labels": None,
           "pixel_size_nm": pixel, "split": split, "normalisation": info.get("normalisation"),
           "grey_mapping": mapping, "hq_ideal": None}
    size = lq.shape[1:]
    out["truth_mu"] = _read_slices(run_dir, "truth_mu_hq", z, size)
    out["truth_labels"] = _read_slices(run_dir, "truth_labels_hq", z, size)
    if out["truth_labels"] is not None and not np.issubdtype(out["truth_labels"].dtype, np.integer):
        raise ValueError(f"{runs.artifact(run_dir, 'data', 'truth_labels_hq')}: labels must be integers")
    ideal = _read_slices(run_dir, "hq_ideal", z, size)
    if ideal is not None:  # uint16 grey -> attenuation (1/µm) with the grey mapping, else grey values
        ideal = ideal.astype(np.float32)
        out["hq_ideal"] = grey_to_mu(ideal, **mapping) if mapping else ideal
    return out


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
        labels or None; ``pixel_size_nm``: float (the HQ voxel size);
        ``normalisation``: the pairs' ``{"lq": params, "hq": params}``
        (:func:`indi4d.core.preprocess.denormalise`); ``grey_mapping``:
        ``{"offset", "per_inv_um"}`` of ``meta.json`` or None (a user's data);
        ``hq_ideal``: float32 (n, H, W) the HQ scan at infinite dose
        (``hq_ideal.tif``, same z and grid as ``hq.tif``) in attenuation
        (1/µm; grey values without a grey mapping) or None; ``split``: "test".

    Raises
    ------
    indi4d.runs.MissingArtifactError
        When the pairs folder is missing.
    ValueError
        When there are no test slices or the truth does not fit the pairs.
    """
    return load_split(run_dir, "test", max_slices)
