"""Synthetic LQ/HQ pairs in the chapter-02 layout, shared by the training and baseline tests."""

import numpy as np
from scipy import ndimage as ndi

from indi4d.core import preprocess


def make_pairs(pairs_dir, n=12, size=64, seed=0, grey_max=30000):
    """Synthetic pairs in the chapter-02 layout: bright discs; HQ = blur 1 px, LQ = blur 2.5 px, + noise.

    ``grey_max``: the top of the linear grey-value map stored as the pairs'
    normalisation (another value gives pairs with another ``normalisation.json``).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    truth = np.full((n, size, size), -0.6, np.float32)
    for k in range(n):
        for _ in range(6):
            cy, cx, r = rng.uniform(6, size - 6), rng.uniform(6, size - 6), rng.uniform(3, 8)
            truth[k][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 0.6
    hq = ndi.gaussian_filter(truth, (0, 1.0, 1.0)) + 0.03 * rng.standard_normal(truth.shape)
    lq = ndi.gaussian_filter(truth, (0, 2.5, 2.5)) + 0.06 * rng.standard_normal(truth.shape)
    lq, hq = np.clip(lq, -1, 1).astype(np.float32), np.clip(hq, -1, 1).astype(np.float32)
    split = np.array(["train"] * (n - 4) + ["val"] * 2 + ["test"] * 2)
    grey = np.linspace(1000, grey_max, 50).reshape(5, 10)  # a linear grey-value map to [-1, 1]
    norm = {"lq": preprocess.fit_normalisation(grey, method="none"),
            "hq": preprocess.fit_normalisation(grey, method="none")}
    preprocess.save_pairs(pairs_dir, lq, hq, np.ones((size, size), bool), np.arange(n), split,
                          phi={"status": "synthetic"}, normalisation=norm, provenance={"synthetic": True, "inputs": {
                              "lq": {"voxel_size_nm": 100.0, "dtype": "uint16"},
                              "hq": {"voxel_size_nm": 50.0, "dtype": "uint16"}}})
    return pairs_dir


def write_model_folder(folder, network, config):
    """A model folder as training writes it: ``network`` (random weights do for plumbing tests),
    ``config`` and a linear uint16 grey-value normalisation."""
    import json

    from indi4d.training import save_model

    folder.mkdir(parents=True, exist_ok=True)
    save_model(network, folder / "model.keras")
    (folder / "config.json").write_text(json.dumps(config))
    grey = np.linspace(0, 60000, 100).reshape(10, 10)
    norm = {"lq": preprocess.fit_normalisation(grey, method="none"),
            "hq": preprocess.fit_normalisation(grey, method="none")}
    (folder / "normalisation.json").write_text(json.dumps(norm))
    return folder
