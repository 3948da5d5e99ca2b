"""Data set folders: verified by their own ``meta.json``, simulated once and cached, copied into runs.

A data set folder holds volumes and a ``meta.json`` whose ``"files"`` map gives
each file's SHA-256 (as :func:`indi4d.simulate.simulate_beamline` writes it);
cached sets also pin ``meta.json`` itself in ``meta.json.sha256``::

    CACHE/simulated/<preset>-seed<seed>-v<version>-<simulator hash>/
"""

import hashlib
import importlib.util
import json
import numbers
import os
import re
import shutil
import warnings
from pathlib import Path

from ..files import (
    atomic_dir,
    atomic_path,
    discard_temp,
    file_sha256,
    make_temp,
    release_temp,
    remove_stale_temps,
    usual_permissions,
)
from .cache import DataError, data_cache_dir

#: Name of the file that pins ``meta.json``'s own hash in a data set folder.
META_SIDECAR = "meta.json.sha256"

# --------------------------------------------------------------------------- data set folders


def write_hash_sidecar(folder):
    """Pin ``meta.json``'s hash in ``meta.json.sha256`` (``sha256sum -c`` format).

    Parameters
    ----------
    folder : str or Path
        A data set folder holding ``meta.json``.

    Returns
    -------
    Path
        The sidecar file.
    """
    folder = Path(folder)
    sidecar = folder / META_SIDECAR
    with atomic_path(sidecar) as tmp:
        tmp.write_text(f"{file_sha256(folder / 'meta.json')}  meta.json\n")
    return sidecar


def verify_dataset(folder, expect=None, require_sidecar=True, progress=False):
    """Check a data set folder against the hashes its ``meta.json`` records.

    Parameters
    ----------
    folder : str or Path
        Holds ``meta.json`` with a ``"files": {name: sha256}`` map (as written
        by :func:`indi4d.simulate.simulate_beamline`) and, for cached sets,
        ``meta.json.sha256``.
    expect : dict, optional
        ``meta.json`` keys that must have these values (e.g. preset, seed).
    require_sidecar : bool
        Count a missing ``meta.json.sha256`` as a problem.
    progress : bool
        Progress bar over the files hashed.

    Returns
    -------
    problems : list of str
        Empty when everything matches; otherwise one line per problem, each
        starting with the offending file.
    """
    from tqdm.auto import tqdm

    folder = Path(folder)
    meta_path = folder / "meta.json"
    if not folder.is_dir():
        return [f"{folder}: no such folder"]
    if not meta_path.is_file():
        return [f"{meta_path}: missing"]
    problems = []
    sidecar = folder / META_SIDECAR
    if sidecar.is_file():
        pinned = sidecar.read_text().split()[:1]
        actual = file_sha256(meta_path)
        if pinned != [actual]:
            problems.append(f"{meta_path}: sha256 {actual} differs from the one pinned in {META_SIDECAR} "
                            f"({pinned[0] if pinned else 'empty'})")
    elif require_sidecar:
        problems.append(f"{sidecar}: missing")
    try:
        meta = json.loads(meta_path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        return problems + [f"{meta_path}: not valid JSON ({exc})"]
    files = meta.get("files") if isinstance(meta, dict) else None
    if not isinstance(files, dict) or not files:
        return problems + [f"{meta_path}: no 'files' map of name -> sha256"]
    for key, value in (expect or {}).items():
        if meta.get(key) != value:
            problems.append(f"{meta_path}: {key} is {meta.get(key)!r}, expected {value!r}")
    for name, expected in tqdm(sorted(files.items()), desc=f"verifying {folder.name}", disable=not progress):
        if name == "meta.json":  # a file cannot hold its own hash
            continue
        path = folder / name
        if not path.is_file():
            problems.append(f"{path}: missing")
            continue
        actual = file_sha256(path)
        if actual != str(expected).lower().removeprefix("sha256:"):
            problems.append(f"{path}: sha256 {actual}, meta.json records {expected}")
    return problems


# --------------------------------------------------------------------------- simulated data


def _source_hash(folder):
    """First 10 hex digits of the sha256 of a package's source: every ``*.py`` of ``folder``, by name.

    Each file contributes its name, its length and its bytes, so renaming,
    adding, removing or editing any file changes the hash; ``__pycache__`` does not.

    Parameters
    ----------
    folder : str or Path

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    for path in sorted(Path(folder).glob("*.py")):
        source = path.read_bytes()
        digest.update(f"{path.name}\0{len(source)}\0".encode())
        digest.update(source)
    return digest.hexdigest()[:10]


def simulated_dataset_dir(preset="default", seed=0, cache_dir=None):
    """Where :func:`simulated_dataset` keeps one data set (it may not exist yet).

    Returns
    -------
    Path
        ``CACHE/simulated/<preset>-seed<seed>-v<indi4d version>-<simulator hash>``,
        the hash being :func:`_source_hash` of the ``indi4d.simulate`` package,
        so a change to any of its files never reuses data made by an older simulator.
    """
    from .. import __version__

    if not isinstance(preset, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", preset):
        raise ValueError(f"preset must be a plain name like 'tiny', got {preset!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):  # numpy integers are ints too
        raise ValueError(f"seed must be an int, got {seed!r}")
    # located, not imported: data never imports the simulator unless it has to simulate
    simulator = _source_hash(importlib.util.find_spec("..simulate", __package__).submodule_search_locations[0])
    return data_cache_dir(cache_dir) / "simulated" / f"{preset}-seed{int(seed)}-v{__version__}-{simulator}"


def simulated_dataset(preset="default", seed=0, cache_dir=None, on_mismatch="regenerate", generator=None,
                      progress=False):
    """Return a verified simulated-beamline data set, simulating it only when needed.

    The first call runs the simulation into a hidden temporary folder, checks
    every file against the hashes in the ``meta.json`` it wrote, pins
    ``meta.json`` with ``meta.json.sha256`` and renames the folder into
    place. Later calls re-hash everything and return the folder unchanged.

    Parameters
    ----------
    preset : str
        Simulation preset (``"tiny"``, ``"default"``, ``"paper"``).
    seed : int
        Simulation seed: same preset and seed -> same files.
    cache_dir : str or Path, optional
        Default :func:`data_cache_dir`.
    on_mismatch : {"regenerate", "raise"}
        What to do with a cached set that fails verification (a file
        changed, missing or added to ``meta.json``): simulate it again, or
        raise :class:`DataError` listing the problems.
    generator : callable, optional
        ``generator(out_dir, preset=..., seed=...) -> meta`` that writes the
        files and a ``meta.json`` with a ``"files"`` map; default
        :func:`indi4d.simulate.simulate_beamline`.
    progress : bool
        Progress bar while hashing.

    Returns
    -------
    Path
        :func:`simulated_dataset_dir` (``CACHE/simulated/<preset>-seed<seed>-v<version>-<simulator hash>/``).

    Raises
    ------
    DataError
        A cached set fails verification and ``on_mismatch="raise"``, or the
        generator wrote files that do not match its own ``meta.json``.
    """
    if on_mismatch not in ("regenerate", "raise"):
        raise ValueError(f"on_mismatch must be 'regenerate' or 'raise', got {on_mismatch!r}")
    final = simulated_dataset_dir(preset, seed, cache_dir)
    seed = int(seed)
    expect = {"preset": preset, "seed": seed}
    if final.exists():
        problems = verify_dataset(final, expect=expect, progress=progress)
        if not problems:
            return final
        if on_mismatch == "raise":
            raise DataError(f"{final}: cached simulated data set fails verification:\n  " + "\n  ".join(problems)
                            + "\n(delete the folder or call with on_mismatch='regenerate')")
        warnings.warn(f"{final}: cached data set fails verification ({problems[0]}"
                      f"{' ...' if len(problems) > 1 else ''}); simulating it again", stacklevel=2)

    if generator is None:
        from ..simulate import simulate_beamline as generator

    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(final)  # what a killed simulation of this data set left behind
    staging = make_temp(final, directory=True)
    try:
        usual_permissions(staging)
        generator(staging, preset=preset, seed=seed)
        problems = verify_dataset(staging, expect=expect, require_sidecar=False, progress=progress)
        if problems:
            raise DataError(f"{final}: the simulation's files do not match its own meta.json:\n  "
                            + "\n  ".join(problems))
        write_hash_sidecar(staging)
        _swap_into_place(staging, final, expect, progress)
    finally:
        discard_temp(staging)
    return final


def _swap_into_place(staging, final, expect, progress):
    """Rename ``staging`` to ``final``, replacing a stale ``final``.

    When another process finished the same data set first and it verifies,
    that one is kept and ours discarded.
    """
    try:
        os.rename(staging, final)
        release_temp(staging)
        return
    except OSError:
        if not final.exists():
            raise
    if not verify_dataset(final, expect=expect, progress=progress):
        return  # someone else's complete, verified copy
    old = make_temp(final, directory=True, suffix=".old")
    os.replace(final, old / final.name)
    os.rename(staging, final)
    release_temp(staging)
    discard_temp(old)


# --------------------------------------------------------------------------- run folders


def dataset_names(folder):
    """The names a data set folder written before manifests may hold: its ``meta.json``'s files, and those."""
    try:
        files = json.loads((Path(folder) / "meta.json").read_text()).get("files", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {*files, "meta.json", META_SIDECAR} if isinstance(files, dict) else set()


def materialise(src_dir, dst_dir, progress=False):
    """Copy a verified data set into a run folder (e.g. ``run_dir/data``), atomically.

    Parameters
    ----------
    src_dir : str or Path
        A data set folder with ``meta.json`` (and its ``"files"`` hashes).
    dst_dir : str or Path
        Destination folder. If it already holds this very data set (same
        ``meta.json``, files verified) nothing is copied; if it holds another
        data set it is replaced; a non-empty folder without ``meta.json`` is
        refused (it is not ours to delete).
    progress : bool
        Progress bar while hashing.

    Returns
    -------
    Path
        ``dst_dir``.

    Raises
    ------
    DataError
        ``src_dir`` fails verification, ``dst_dir`` is ``src_dir`` or inside
        it (or the reverse), or ``dst_dir`` holds unrelated files.
    """
    src, dst = Path(src_dir).resolve(), Path(dst_dir).resolve()
    if src == dst or src in dst.parents or dst in src.parents:
        raise DataError(f"{dst}: refusing to materialise {src} into itself, a sub-folder or a parent")
    problems = verify_dataset(src, require_sidecar=False, progress=progress)
    if problems:
        raise DataError(f"{src}: data set fails verification, not copied:\n  " + "\n  ".join(problems))
    if dst.exists():
        same_meta = (dst / "meta.json").is_file() and file_sha256(dst / "meta.json") == file_sha256(src / "meta.json")
        if same_meta and not verify_dataset(dst, require_sidecar=False, progress=progress):
            return Path(dst_dir)
        if any(dst.iterdir()) and not (dst / "meta.json").is_file():
            raise DataError(f"{dst}: exists and holds files that are not a data set (no meta.json); "
                            "refusing to replace it")
    with atomic_dir(dst, owned=dataset_names(dst), what="data set folder") as staging:
        for path in sorted(src.rglob("*")):
            if path.name.startswith("."):  # temporary files of an unfinished write
                continue
            out = staging / path.relative_to(src)
            if path.is_dir():
                out.mkdir(parents=True, exist_ok=True)
            else:
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
        problems = verify_dataset(staging, require_sidecar=False, progress=progress)
        if problems:
            raise DataError(f"{dst}: copy fails verification:\n  " + "\n  ".join(problems))
    return Path(dst_dir)
