"""Phase labels of the simulated anode, in one place.

Every labelled volume of the project (the phantom's truth, segmentations)
uses these integers, stored as uint8; :func:`check_phase_range` refuses any
other value wherever labels are read (``describe``, ``evaluate --labels``).
"""

import numpy as np

PORE, BINDER, PARTICLE, DENSE = 0, 1, 2, 3
#: Label -> name, in label order.
PHASE_NAMES = ("pore", "binder", "particle", "dense")


def check_phase_range(labels, who):
    """Refuse labels that are not integers or hold a value outside the phases ``0..len(PHASE_NAMES) - 1``.

    Parameters
    ----------
    labels : ndarray or dask.array.Array
        A dask array is reduced chunk by chunk (its minimum and maximum only).
    who : str
        The file (or caller), for the message.

    Raises
    ------
    ValueError
        Naming ``who``, the values found and the phases expected.
    """
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{who}: expected integer phase labels, got dtype {labels.dtype}")
    if not labels.size:
        return
    lo, hi = labels.min(), labels.max()
    if hasattr(lo, "compute"):  # one pass over a lazy volume for both
        import dask

        lo, hi = dask.compute(lo, hi)
    if lo < 0 or hi >= len(PHASE_NAMES):
        raise ValueError(f"{who}: labels must be phases 0..{len(PHASE_NAMES) - 1} ({', '.join(PHASE_NAMES)}), found "
                         f"{int(lo)}..{int(hi)}; relabel the volume to these phases first")
