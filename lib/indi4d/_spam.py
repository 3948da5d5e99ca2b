"""Import helpers for spam (Software for the Practical Analysis of Materials).

``spam.datasets`` uses ``importlib.resources`` without importing the
submodule, so on Python >= 3.11 its loaders raise
``AttributeError: module 'importlib' has no attribute 'resources'`` unless
something imported it first. Import spam through these helpers.
"""

import importlib
import importlib.resources  # noqa: F401  (must precede any spam import)


def import_spam(submodule="DIC"):
    """Return ``spam.<submodule>`` with the ``importlib.resources`` trap avoided.

    Parameters
    ----------
    submodule : str
        Name of the spam submodule, e.g. ``"DIC"``, ``"deformation"`` or
        ``"datasets"``.

    Returns
    -------
    module
    """
    return importlib.import_module(f"spam.{submodule}")
