"""Published weights: trained model folders shipped with the project, fetched through the hashed registry.

The ``workshop`` preset runs the whole book in minutes on a laptop: instead of
training InDI (and the CNN and GAN baselines) it installs the networks the
default book trained (``preset="default"``, ``seed=0``). They are ordinary
model folders packed as zip archives shipped with the package
(``lib/indi4d/package_data/pretrained/``), listed in the data registry
(``package_data/registry.txt``) with their SHA-256 and a path relative
to the registry file, and fetched by :func:`indi4d.data.registry_fetch` like
any download: the archive is copied into the cache, hashed, and kept only
when the hash is the registered one. A changed archive is refused.

Layout::

    package_data/pretrained/<name>.zip              the archive (committed, installed with the package)
    CACHE/downloads/<sha256[:16]>/<name>.zip        the verified copy
    CACHE/models/<sha256[:16]>/<stem>/              the unpacked model folder

Only what prediction and the chapters read travels in an archive
(:data:`ARCHIVED`): no checkpoints, no GAN discriminator.
"""

import shutil
import zipfile
import zlib
from pathlib import Path

from . import model_folder
from .data import DataError, data_cache_dir, load_registry, registry_fetch
from .files import MANIFEST, atomic_dir, atomic_path, file_sha256, read_json, remove_stale_temps, write_json
from .package_data import PRETRAINED_DIR as ARCHIVE_DIR

#: The reference networks: trained once with the reference recipe on the default data, seed 0
#: (:mod:`indi4d.reference` holds their cards and retrains their first steps to check them).
REFERENCE = {"indi": "indi-default-seed0.zip", "indi_deconv": "indi-deconv-default-seed0.zip",
             "cnn": "cnn-default-seed0.zip", "gan": "gan-default-seed0.zip"}
#: preset -> {role: registry name}: the networks a preset installs instead of training them
#: (the default book reads the reference networks; ``make book TRAIN=1`` trains them again).
FOR_PRESET = {"workshop": REFERENCE, "default": REFERENCE}
#: Chapter 07's segmentation U-Nets of the default book, {method: registry name}: each was trained on one
#: slice of its method's image, so it stands in for a training only when this run's recipe and slice
#: (by hash) are the ones in its ``config.json`` (:func:`install_if_config`).
SEGMENTATION = {"lq": "seg-lq-default-seed0.zip", "indi": "seg-indi-default-seed0.zip",
                "ideal": "seg-ideal-default-seed0.zip"}
SEGMENTATION_FOR_PRESET = {"default": SEGMENTATION}

#: The files of a model folder that an archive carries (those present are packed).
ARCHIVED = ("model.keras", "config.json", "normalisation.json", "history.json", "summary.json", "steps.json",
            "validation_metrics.json",
            # the training LQ statistics, so that enhance's domain check works wherever the network is installed
            "domain.json")

#: Written into an installed model folder: which archive it came from.
SOURCE_FILE = model_folder.FILES["source"]


def names_for(preset, retrain=False):
    """``{role: registry name}`` of the networks ``preset`` installs (empty: it trains them, as with ``retrain``)."""
    return {} if retrain else dict(FOR_PRESET.get(preset, {}))


def segmentation_names_for(preset, retrain=False):
    """``{method: registry name}`` of the published segmentation U-Nets chapter 07 may install for ``preset``."""
    return {} if retrain else dict(SEGMENTATION_FOR_PRESET.get(preset, {}))


def archived_json(name, member):
    """One JSON file (e.g. ``summary.json``) of a published archive shipped with the package, read in place.

    For a look at a network's record (the CLI's help) without fetching and
    unpacking it; None when the archive or the member is absent.
    """
    import json

    path = ARCHIVE_DIR / name
    try:
        with zipfile.ZipFile(path) as archive:
            return json.loads(archive.read(member))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def pack_model(model_dir, out_zip, required=("model.keras", "config.json", "normalisation.json")):
    """Pack a trained model folder into a reproducible zip archive; return its SHA-256.

    Parameters
    ----------
    model_dir : str or Path
        A model folder (``model.keras``, ``config.json``, ``normalisation.json``, ...).
    out_zip : str or Path
        The archive to write (atomically).
    required : tuple of str
        Files the folder must hold (a segmentation U-Net has no ``normalisation.json``).

    Returns
    -------
    str
        The archive's SHA-256 (hex), for the registry line.
    """
    model_dir = Path(model_dir)
    for name in required:
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir}: not a model folder ({name} missing)")
    with atomic_path(out_zip) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in ARCHIVED:
                if (model_dir / name).is_file():
                    # a fixed date: the same files give the same bytes, so the same hash
                    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    archive.writestr(info, (model_dir / name).read_bytes())
    return file_sha256(out_zip)


def _unpack(archive_path, folder):
    """Extract the :data:`ARCHIVED` members of a model archive into ``folder``, refusing anything else."""
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
        strange = [n for n in names if n not in ARCHIVED]
        if strange or "model.keras" not in names:
            raise DataError(f"{archive_path}: not a model archive (members {names}); expected some of {ARCHIVED} "
                            "with model.keras")
        for name in names:
            (folder / name).write_bytes(archive.read(name))


def fetch_model(name, registry=None, cache_dir=None):
    """The model folder of a registry entry: fetched, hash-checked and unpacked into the cache.

    Parameters
    ----------
    name : str
        Registry name of a model archive (e.g. ``"indi-default-seed0.zip"``).
    registry : str or Path, optional
        Default the package's registry (:data:`~indi4d.package_data.REGISTRY_FILE`).
    cache_dir : str or Path, optional
        Default :func:`indi4d.data.data_cache_dir`.

    Returns
    -------
    Path
        ``CACHE/models/<sha256[:16]>/<stem>/``, unpacked atomically from the verified archive;
        a folder unpacked before is reused only while every file still has the archive's
        size and CRC-32 (otherwise it is unpacked again).

    Raises
    ------
    indi4d.data.HashMismatchError
        The archive's hash is not the registered one (nothing is unpacked).
    KeyError
        No such registry entry.
    """
    return _fetch(name, registry, cache_dir)[0]


def _fetch(name, registry, cache_dir):
    """:func:`fetch_model`'s folder and the archive's SHA-256 (the registered one: ``registry_fetch`` checked it)."""
    archive = registry_fetch(name, registry=registry, cache_dir=cache_dir)  # hashed like any download
    sha = load_registry(registry)[name]["sha256"]
    folder = data_cache_dir(cache_dir) / "models" / sha[:16] / Path(name).stem
    remove_stale_temps(folder)
    if not _matches_archive(folder, archive):  # a folder changed since it was unpacked is unpacked again
        # the data cache is the tool's own folder: whatever is in an unpacked model there may be replaced
        with atomic_dir(folder, owned=lambda name: True) as tmp:
            _unpack(archive, tmp)
    return folder, sha


def _matches_archive(folder, archive_path):
    """True when ``folder`` holds exactly the archive's members, each with its size and CRC-32."""
    if not folder.is_dir():
        return False
    with zipfile.ZipFile(archive_path) as archive:
        members = {info.filename: info for info in archive.infolist()}
    if {p.name for p in folder.iterdir() if p.name != MANIFEST} != set(members):
        return False
    for name, info in members.items():
        data = (folder / name).read_bytes()
        if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
            return False
    return True


def install_model(name, model_dir, registry=None, cache_dir=None):
    """Replace ``model_dir`` by the published model folder ``name``; return what was installed.

    The folder is swapped in whole (:func:`indi4d.files.atomic_dir`), with a
    ``pretrained.json`` recording the archive's name and SHA-256.

    Parameters
    ----------
    name : str
        Registry name of a model archive.
    model_dir : str or Path
        The run's model folder (e.g. ``RUN_DIR/model``); its content is replaced.
    registry, cache_dir : optional
        As in :func:`fetch_model`.

    Returns
    -------
    dict
        ``name``, ``sha256`` (of the archive), ``model_dir``, ``trained`` (the
        summary of the run that made the weights: steps, seconds, preset) and
        ``config`` (its ``config.json``).
    """
    source, sha = _fetch(name, registry, cache_dir)
    # a model folder's own files may be replaced; anything else in it (a user's file) is refused
    owned = set(model_folder.FILES.values())
    with atomic_dir(model_dir, owned=owned, what="model folder") as tmp:
        for path in source.iterdir():
            if path.name != MANIFEST:
                shutil.copy2(path, tmp / path.name)
        write_json(tmp / SOURCE_FILE, {"name": name, "sha256": sha})
    return {"name": name, "sha256": sha, "model_dir": str(model_dir),
            "trained": model_folder.read_summary(model_dir) or {}, "config": model_folder.read_config(model_dir)}


def install_if_config(name, model_dir, config, registry=None, cache_dir=None):
    """Install the published model ``name`` into ``model_dir`` only when its ``config.json`` equals ``config``.

    A network trained on one particular input (chapter 07's U-Nets, each on
    one slice) may stand in for a training only when that run's whole recipe,
    the hash of its training slice included, is the one about to run.

    Parameters
    ----------
    name : str
        Registry name of a model archive.
    model_dir : str or Path
        The model folder a training would write; replaced only on a match.
    config : dict
        The ``config.json`` this run's training would write (JSON-ready).

    Returns
    -------
    record : dict or None
        :func:`install_model`'s record on a match, else None (nothing is touched).
    differs : list of str
        The top-level keys of ``config.json`` that differ (empty on a match).
    """
    # the comparison a resume makes (accept_config): the same keys, JSON-equal values
    differs = model_folder.config_differences(fetch_model(name, registry=registry, cache_dir=cache_dir), config)
    if differs:
        return None, differs
    return install_model(name, model_dir, registry=registry, cache_dir=cache_dir), []


def installed_from(model_dir):
    """``{"name", "sha256"}`` when ``model_dir`` was installed by :func:`install_model`, else None."""
    path = Path(model_dir) / SOURCE_FILE
    return read_json(path, "the record of a published model") if path.is_file() else None


def normalisation_for(preset, registry=None, cache_dir=None, retrain=False):
    """The grey-value normalisation of the InDI model ``preset`` installs, or None when it trains one.

    Chapter 02 normalises the pairs with it, so that the installed network sees
    its inputs scaled exactly as in the run that trained it.
    """
    name = names_for(preset, retrain).get("indi")
    if name is None:
        return None
    return model_folder.read_normalisation(fetch_model(name, registry=registry, cache_dir=cache_dir))
