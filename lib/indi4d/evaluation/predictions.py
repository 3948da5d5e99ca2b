"""Every method's output on the test slices, through the one prediction path (step 3 of chapter 05)."""

import numpy as np

from ..presets import resolve
from .settings import PRESETS


def indi_restore(enhancer, slices, steps, eps=None, seed=0, stochastic=False):
    """InDI restoration of normalised slices (a thin wrapper of :func:`indi4d.inference.enhance_slices`).

    Parameters
    ----------
    enhancer : indi4d.inference.Enhancer
    slices : ndarray (n, H, W) float32 in [-1, 1]
    steps : int
    eps : float, optional
        Sampler noise scale (default the training one).
    seed : int
    stochastic : bool

    Returns
    -------
    ndarray (n, H, W) float32
    """
    from ..inference import enhance_slices

    return enhance_slices(enhancer, slices, steps, eps=eps, seed=seed, stochastic=stochastic, progress=False)


def load_method(run_dir, kind, preset="default"):
    """A learned method of a run folder as a tiled network: ``indi``, ``indi_deconv`` (chapter 04), ``cnn`` or ``gan``.

    All three go through :func:`indi4d.inference.load_enhancer` (the
    configuration is checked against the network) with the tiling of
    :data:`PRESETS`; the baselines run eagerly, as Keras calls them.

    Returns
    -------
    indi4d.inference.Enhancer
    """
    from .. import runs
    from ..inference import load_enhancer

    tiling = resolve(PRESETS, preset)["tiling"]
    if kind == "indi":
        return load_enhancer(runs.stage_dir(run_dir, "model"), preset=tiling)
    if kind == "indi_deconv":
        return load_enhancer(runs.stage_dir(run_dir, "indi_deconv"), preset=tiling)
    folder = runs.stage_dir(run_dir, "baselines") / runs.file_name("baselines", kind)
    return load_enhancer(folder, preset=tiling, graph=False)


def has_indi_deconv(run_dir):
    """Whether chapter 04 left an indi-deconv network (``RUN_DIR/indi_deconv/model.keras``)."""
    from .. import model_folder, runs

    return model_folder.is_finished(runs.stage_dir(run_dir, "indi_deconv"))


def predict_methods(run_dir, test, steps, preset="default", indi_prediction=None, methods=None):
    """Every method's output on the test slices, in the normalised [-1, 1] units.

    Parameters
    ----------
    run_dir : str or Path
        Holds ``model/`` (InDI) and ``baselines/cnn``, ``baselines/gan``.
    test : dict
        :func:`~indi4d.evaluation.testset.load_test_set`.
    steps : int
        InDI steps N.
    preset : str
        :data:`PRESETS` entry (tiling).
    indi_prediction : ndarray, optional
        InDI's output at ``steps`` when already computed (e.g. by the sweep).
    methods : dict, optional
        ``kind -> ``:func:`load_method` for those already loaded.

    Returns
    -------
    dict
        ``bicubic``, ``hq``, ``indi``, ``cnn``, ``gan`` -> float32 (n, H, W).
    """
    from ..inference import predict_slices

    methods = dict(methods or {})
    get = lambda kind: methods[kind] if kind in methods else load_method(run_dir, kind, preset)  # noqa: E731
    preds = {"bicubic": test["lq"], "hq": test["hq"]}
    if indi_prediction is None:
        indi_prediction = indi_restore(get("indi"), test["lq"], steps)
    preds["indi"] = np.asarray(indi_prediction, np.float32)
    for kind in ("cnn", "gan"):
        preds[kind] = predict_slices(get(kind), test["lq"])  # one pass: direct prediction
    return preds
