"""InDI's step count N: the one check that it is an integer >= 1.

Used by the sampler (:func:`indi4d.core.indi.indi_sample`), the model folder's
chosen N (:mod:`indi4d.model_folder`), the enhancement checks, the step sweep and
the command line, so that every place refuses the same values with the same words.
"""

import math
import numbers


def check_steps(steps, who="steps", error=ValueError):
    """InDI's step count N as an int: the one check that N is an integer >= 1.

    Parameters
    ----------
    steps : int or float
        An integer value (``3`` or ``3.0``); bools, strings and None are refused.
    who : str
        What the message names first, e.g. ``"indi_sample: steps"`` (``""``: nothing).
    error : type
        The exception raised (e.g. :class:`~indi4d.model_folder.ModelFolderError`,
        ``argparse.ArgumentTypeError``).

    Returns
    -------
    int
    """
    number = isinstance(steps, numbers.Real) and not isinstance(steps, bool)
    if not (number and math.isfinite(steps) and steps >= 1 and int(steps) == steps):
        raise error(f"{who + ' ' if who else ''}must be an integer >= 1, got {steps!r}")
    return int(steps)
