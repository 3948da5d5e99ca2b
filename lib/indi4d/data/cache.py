"""The data cache folder and the errors of data retrieval.

Everything :mod:`indi4d.data` fetches or simulates lives in one cache folder,
``$INDI4D_DATA_DIR`` when set, otherwise the user cache
(``pooch.os_cache("indi4d")``, e.g. ``~/.cache/indi4d``).
"""

import os
from pathlib import Path

#: Environment variable that overrides the cache folder.
ENV_VAR = "INDI4D_DATA_DIR"


class DataError(ValueError):
    """Data could not be fetched, verified or placed; the message names the URL or file."""


class HashMismatchError(DataError):
    """A file's SHA-256 is not the one it was supposed to have."""


def data_cache_dir(cache_dir=None):
    """The cache folder: ``cache_dir``, else ``$INDI4D_DATA_DIR``, else the user cache.

    Parameters
    ----------
    cache_dir : str or Path, optional
        Explicit folder; wins over the environment.

    Returns
    -------
    Path
        Absolute path (not created here).
    """
    if cache_dir is None:
        cache_dir = os.environ.get(ENV_VAR) or None
    if cache_dir is None:
        import pooch

        cache_dir = pooch.os_cache("indi4d")
    return Path(cache_dir).expanduser().resolve()
