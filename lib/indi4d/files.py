"""Low-level file handling shared by every module: atomic writes, sha256, JSON, what is ours.

Nothing here knows about volumes, models or runs; ``data``, ``simulate``, ``io``
and the training code all build on it, so it imports nothing from the package
but :mod:`indi4d.temps` (below it).

Two records keep every write from touching what this tool did not make:

* **Temporary files are recorded by the process that made them**
  (:mod:`indi4d.temps`): :func:`remove_stale_temps` deletes only recorded temps
  of writers that are gone, never a file because of its name.
* **Folders this tool writes whole carry a manifest** (:data:`MANIFEST`, every
  entry written). :func:`atomic_dir` replaces an existing folder only when
  every entry in it, dot-files included, is in its manifest (or, for a folder
  without one, in the names its caller owns): :func:`foreign_entries`.
"""

import contextlib
import hashlib
import json
import math
import os
from pathlib import Path

from .temps import (  # re-exported: the temp records are part of how this module writes
    discard_temp,
    is_recorded_temp,
    make_temp,
    release_temp,
    remove_stale_temps,
    remove_stale_temps_in,
    state_dir,
    temp_prefix,
)

__all__ = ["MANIFEST", "NotOursError", "atomic_path", "atomic_dir", "check_ours", "foreign_entries",
           "write_manifest", "read_manifest", "file_sha256", "json_ready", "write_json", "read_json",
           "usual_permissions", "discard_temp", "is_recorded_temp", "make_temp", "release_temp",
           "remove_stale_temps", "remove_stale_temps_in", "state_dir", "temp_prefix"]

#: The file in a folder written by :func:`atomic_dir` that lists every entry written there.
MANIFEST = ".indi4d-manifest.json"


class NotOursError(ValueError):
    """An existing file or folder holds what this tool did not write; it is not replaced."""


def _umask():
    """The process umask, read without changing it (``os.umask`` would, briefly)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    return 0o022


def usual_permissions(path):
    """Give a temporary file/folder the mode a plain ``open``/``mkdir`` would have.

    ``mkstemp``/``mkdtemp`` create 0600/0700 entries, which would make shared
    data folders unreadable to other users.
    """
    path = Path(path)
    os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_umask())


# --------------------------------------------------------------------------- manifests of our folders


def _entries(folder):
    """Every entry under ``folder`` as a relative POSIX path (links not followed), sorted."""
    folder = Path(folder)
    found = []
    for root, dirs, names in os.walk(folder):
        rel = Path(root).relative_to(folder)
        found += [(rel / name).as_posix() for name in dirs + names]
    return sorted(found)


def write_manifest(folder):
    """Record every entry of ``folder`` in its :data:`MANIFEST` (this tool wrote them)."""
    folder = Path(folder)
    entries = [e for e in _entries(folder) if e != MANIFEST]
    (folder / MANIFEST).write_text(json.dumps({"written_by": "indi4d", "entries": entries}, indent=1) + "\n")


def read_manifest(folder):
    """The entries a folder's manifest lists, or None when it has no readable manifest."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("written_by") != "indi4d":
        return None
    return set(manifest.get("entries", []))


def foreign_entries(folder, owned=None):
    """Entries of an existing folder that this tool did not write (so must never delete).

    An entry is ours when the folder's manifest lists it, or when its
    top-level name is one its caller owns (``owned``: names the caller writes
    into the folder file by file, e.g. a model folder's ``steps.json``).

    Parameters
    ----------
    folder : str or Path
    owned : collection of str or callable, optional
        Top-level names the caller owns, or ``owned(name) -> bool``.

    Returns
    -------
    list of str
        Relative paths (the topmost foreign one of a tree), dot-files included;
        only the manifest itself and recorded temps of our writers are left
        out. Empty for a missing or empty folder.
    """
    folder = Path(folder)
    if folder.is_symlink():
        return [folder.name]
    if not folder.is_dir():
        return []
    listed = read_manifest(folder) or set()
    accept = owned if callable(owned) else (lambda name: name in (owned or ()))
    found = []
    for entry in _entries(folder):
        top = entry.split("/")[0]
        if entry == MANIFEST or entry in listed or accept(top):
            continue
        if any(entry.startswith(f + "/") for f in found):
            continue  # inside a foreign folder already named
        if not is_recorded_temp(folder / entry):
            found.append(entry)
    return found


def check_ours(path, owned=None, what="folder"):
    """Raise :class:`NotOursError` when the existing folder ``path`` holds entries this tool did not write."""
    foreign = foreign_entries(path, owned)
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise NotOursError(f"{path}: the {what} holds entries indi4d did not write ({shown}), which replacing it "
                           "would delete; nothing was changed. Choose a new name, or move those files away")


# --------------------------------------------------------------------------- atomic writes


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    Leftovers of an earlier killed writer of the same ``path`` are removed first.

    Examples
    --------
    >>> with atomic_path("out.tif") as tmp:          # doctest: +SKIP
    ...     tifffile.imwrite(tmp, volume)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    # keep the real suffix last so tools that check it (papermill, tifffile, Keras) accept the temp name
    tmp = make_temp(path, suffix=f".part{path.suffix}")
    try:
        yield tmp
        if tmp.exists():
            usual_permissions(tmp)
        os.replace(tmp, path)
        release_temp(tmp)
    except BaseException:
        discard_temp(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path, owned=None, what="folder"):
    """Yield a temporary folder beside ``path``; swap it in for ``path`` on success.

    The new folder gets a :data:`MANIFEST` of what was written into it. An
    existing ``path`` is replaced only when it holds nothing this tool did
    not write (:func:`foreign_entries`, ``owned`` as there; checked before
    and again just before the swap); it is moved aside first and deleted only
    after the new folder is in place, so a failure never leaves a
    half-written store under the final name.

    Raises
    ------
    NotOursError
        ``path`` holds someone else's entries (nothing is changed).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    check_ours(path, owned, what)
    tmp = make_temp(path, directory=True)
    try:
        usual_permissions(tmp)
        yield tmp
        write_manifest(tmp)
        old = None
        if path.exists() or path.is_symlink():
            check_ours(path, owned, what)
            old = make_temp(path, directory=True, suffix=".old")
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        release_temp(tmp)
        if old is not None:
            discard_temp(old)
    except BaseException:
        discard_temp(tmp)
        raise


def file_sha256(path, block_size=2**20):
    """SHA-256 of a file's bytes, as 64 lower-case hex digits.

    Parameters
    ----------
    path : str or Path
    block_size : int
        Bytes read at a time (memory use stays at one block).

    Returns
    -------
    str
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(block_size), b""):
            digest.update(block)
    return digest.hexdigest()


def json_ready(obj, keep_inf=False):
    """``obj`` with numpy scalars/arrays, paths and tuples turned into plain JSON types.

    NaN becomes ``None`` (JSON has no NaN), and so does ±inf unless ``keep_inf``:
    then it stays, written as ``Infinity`` (which Python's :mod:`json` reads back),
    for results where infinity is a value, e.g. the PSNR of identical images.
    """
    if isinstance(obj, dict):
        return {str(k): json_ready(v, keep_inf) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v, keep_inf) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy scalar or array
        return json_ready(obj.tolist(), keep_inf)
    if isinstance(obj, float) and not math.isfinite(obj) and not (keep_inf and math.isinf(obj)):
        return None
    return obj


def write_json(path, obj, keep_inf=False):
    """Write ``obj`` as indented JSON to ``path``, atomically; return ``path``.

    Numpy types and paths are converted (:func:`json_ready`, ``keep_inf`` as
    there); anything else that JSON cannot hold raises ``TypeError`` before the
    file is touched.
    """
    text = json.dumps(json_ready(obj, keep_inf), indent=2) + "\n"
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def read_json(path, what="file"):
    """Read a JSON file; a missing or damaged file raises an error naming it.

    Parameters
    ----------
    path : str or Path
    what : str
        What the file is, for the message (e.g. ``"the model's configuration"``).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    ValueError
        ``path`` is not valid JSON.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a folder, or a FIFO that would block the read forever
        raise ValueError(f"{path}: {what} is not a regular file; give the JSON file itself")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {what} is not valid JSON ({exc})") from exc
