"""Getting data: hashed downloads, the data registry, and cached simulated data sets.

Everything lives in one cache folder, ``$INDI4D_DATA_DIR`` when set, otherwise
the user cache (``pooch.os_cache("indi4d")``, e.g. ``~/.cache/indi4d``)::

    CACHE/downloads/<sha256[:16]>/<file name>                             fetch_volume, registry_fetch
    CACHE/simulated/<preset>-seed<seed>-v<version>-<simulator hash>/      simulated_dataset

Nothing is trusted without its SHA-256: a download is kept only when its hash
is the one asked for, a cached file is re-hashed before it is returned, and a
simulated data set is checked against the hashes in its own ``meta.json``
(which is itself pinned by ``meta.json.sha256``). Everything is written under
a hidden temporary name and renamed when complete, so an interrupted download
or simulation never leaves anything that looks finished; what a killed one
left behind is removed by the next call.

Modules: ``cache`` (the cache folder, the errors), ``downloads`` (downloads
and the registry), ``datasets`` (data set folders, simulated data sets,
copying into a run folder). Every public name is importable from
``indi4d.data`` itself.

Examples
--------
>>> path = fetch_volume("https://example.org/scan.tif",               # doctest: +SKIP
...                     sha256="9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
>>> data_dir = simulated_dataset(preset="tiny", seed=0)               # doctest: +SKIP
>>> materialise(data_dir, "runs/tiny/data")                           # doctest: +SKIP
"""

from ..files import file_sha256
from .cache import ENV_VAR, DataError, HashMismatchError, data_cache_dir
from .datasets import (
    META_SIDECAR,
    materialise,
    simulated_dataset,
    simulated_dataset_dir,
    verify_dataset,
    write_hash_sidecar,
)
from .downloads import REGISTRY_FILE, fetch_volume, load_registry, registry_fetch

__all__ = [
    "DataError",
    "HashMismatchError",
    "ENV_VAR",
    "REGISTRY_FILE",
    "data_cache_dir",
    "file_sha256",
    "fetch_volume",
    "load_registry",
    "registry_fetch",
    "simulated_dataset",
    "simulated_dataset_dir",
    "verify_dataset",
    "write_hash_sidecar",
    "materialise",
]
