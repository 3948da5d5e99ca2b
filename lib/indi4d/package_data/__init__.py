"""Files that ship inside the package: the data registry, the published networks, the book's scribbles.

Found through :mod:`importlib.resources`, so they are there wherever the package
is installed (``pip install .`` outside the repository included)::

    registry.txt                   the hashed registry (:func:`indi4d.data.load_registry`)
    pretrained/<name>.zip          the networks the default book trained (:mod:`indi4d.pretrained`)
    scribbles/insitu_t2_<preset>_seed<seed>.json
                                   the book's scribbles (:mod:`indi4d.segmentation.scribble_store`)
"""

from importlib.resources import files
from pathlib import Path

#: This folder, wherever the package is installed.
PACKAGE_DATA_DIR = Path(str(files(__name__)))
#: The data registry: ``<name> sha256:<hex> <url or path beside this file>`` per line.
REGISTRY_FILE = PACKAGE_DATA_DIR / "registry.txt"
#: The published networks (zip archives of model folders), listed in :data:`REGISTRY_FILE`.
PRETRAINED_DIR = PACKAGE_DATA_DIR / "pretrained"
#: The book's scribbles, one file per simulated data set.
SCRIBBLES_DIR = PACKAGE_DATA_DIR / "scribbles"
