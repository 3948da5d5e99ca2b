"""Physical units for scoring: normalised [-1, 1] slices back to attenuation (1/µm) or grey values.

The pairs are stored normalised (``normalisation.json``, often a histogram
equalisation, which no affine grey fit can undo). Every method is therefore
mapped back before it is scored against the truth: ``preprocess.denormalise``
with the parameters of the side its output is in (the bicubic LQ input and
the classical row built on it: ``"lq"``; HQ, the ideal HQ and every network
output: ``"hq"``) gives grey values, and the simulated beamline's fixed grey
mapping (``meta.json["grey_mapping"]``) gives attenuation in 1/µm. A user's
data has no grey mapping: the scores are then in denormalised grey values.
"""

import numpy as np

#: The normalisation side each method's output is in (any other method: "hq").
LQ_SIDE_METHODS = ("bicubic", "classical")

ATTENUATION = "attenuation (1/µm)"
GREY = "grey values (denormalised scan units)"
NORMALISED = "normalised [-1, 1] (pairs units)"


def method_side(method):
    """``"lq"`` for the bicubic LQ input (and what is built on it), ``"hq"`` for HQ and every network output."""
    return "lq" if method in LQ_SIDE_METHODS else "hq"


def physical_units(test):
    """The units :func:`to_physical` returns for this test set (one of the module's unit strings)."""
    if test.get("normalisation") is None:
        return NORMALISED
    return ATTENUATION if test.get("grey_mapping") else GREY


def to_physical(slices, side, test):
    """Normalised slices of one method in physical units.

    Parameters
    ----------
    slices : ndarray (..., H, W), values in [-1, 1]
    side : {"lq", "hq"}
        The normalisation the slices are in (:func:`method_side`).
    test : dict
        :func:`~indi4d.evaluation.testset.load_test_set` (``normalisation``,
        ``grey_mapping``).

    Returns
    -------
    ndarray, float32, same shape
        Attenuation (1/µm) with a grey mapping: ``grey_to_mu(denormalise(x))``;
        denormalised grey values without one; the slices unchanged when the
        test set carries no normalisation (:func:`physical_units` says which).
    """
    from ..core.preprocess import denormalise
    from ..simulate.acquisition import grey_to_mu

    norm = test.get("normalisation")
    if norm is None:
        return np.asarray(slices, np.float32)
    if side not in norm:
        raise ValueError(f"to_physical: no {side!r} normalisation in the pairs (have {sorted(norm)})")
    grey = denormalise(slices, norm[side])
    mapping = test.get("grey_mapping")
    if not mapping:
        return grey
    return grey_to_mu(grey, mapping["offset"], mapping["per_inv_um"])


def to_normalised(physical, side, test):
    """Inverse of :func:`to_physical`: physical slices back into the pairs' [-1, 1] units of ``side``.

    Returns
    -------
    ndarray, float32, same shape (values outside the fitted range are clipped)
    """
    from ..core.preprocess import normalise

    norm = test.get("normalisation")
    if norm is None:
        return np.asarray(physical, np.float32)
    x = np.asarray(physical, np.float64)
    mapping = test.get("grey_mapping")
    if mapping:
        x = mapping["offset"] + mapping["per_inv_um"] * x  # grey = offset + per_inv_um · µ (unrounded)
    return normalise(x, norm[side])
