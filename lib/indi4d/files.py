"""Low-level file handling shared by every module: atomic writes, sha256, JSON, what is ours.

Nothing here knows about volumes, models or runs; ``data``, ``simulate``, ``io``
and the training code all build on it, so it imports nothing from the package.

Two records keep every write from touching what this tool did not make:

* **Temporary files are recorded by the process that made them.** Each temp
  (``.<name>.<pid>.<random>.part<suffix>`` beside its final name) gets a record
  in this user's state folder (``$INDI4D_STATE_DIR``, default
  ``~/.local/state/indi4d``): the writer's pid and start time, the temp's path,
  device and inode. :func:`remove_stale_temps` deletes only recorded temps whose
  writer is gone and whose inode is still the recorded one, never a file
  because of its name (an input called ``.o.tif.999.x.part.tif`` is safe).
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
import secrets
import shutil
import tempfile
from pathlib import Path

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


def temp_prefix(path):
    return f".{path.name}.{os.getpid()}."


def state_dir():
    """This user's folder for the tool's own bookkeeping (temp records, write locks).

    ``$INDI4D_STATE_DIR`` when set, else ``$XDG_STATE_HOME/indi4d`` (default
    ``~/.local/state/indi4d``); never a folder of the user's data.
    """
    if os.environ.get("INDI4D_STATE_DIR"):
        return Path(os.environ["INDI4D_STATE_DIR"])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "indi4d"


# --------------------------------------------------------------------------- temporary files, recorded


def _process_start(pid):
    """Start time of process ``pid`` (clock ticks since boot), or None when unknown (no /proc)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            # the command name may hold spaces and brackets: the fields follow the last ')'
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def _writer_alive(pid, start):
    """True while the process that wrote a record runs (a reused pid with another start time is not it)."""
    if pid == os.getpid():
        return start is None or start == _process_start(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        pass
    now = _process_start(pid)
    return start is None or now is None or now == start


def _records():
    return state_dir() / "temps"


def _real(path):
    """``path`` with its folder resolved (the entry itself is not followed)."""
    path = Path(os.path.abspath(Path(path).expanduser()))
    return Path(os.path.realpath(path.parent)) / path.name


def _record_temp(tmp, final):
    """Write the record of temp ``tmp`` (for ``final``); a failure only leaves the temp unrecorded (kept)."""
    tmp, info = _real(tmp), os.lstat(tmp)
    record = {"pid": os.getpid(), "start": _process_start(os.getpid()), "temp": str(tmp),
              "final": str(_real(final)), "dev": info.st_dev, "ino": info.st_ino}
    folder = _records()
    path = folder / f"{record['pid']}-{record['start']}-{secrets.token_hex(6)}.json"
    with contextlib.suppress(OSError):
        folder.mkdir(parents=True, exist_ok=True)
        part = path.with_suffix(".writing")
        part.write_text(json.dumps(record))
        os.replace(part, path)
        return path
    return None


def _read_records():
    """``[(record path, record dict or None), ...]``: every temp record of every writer."""
    folder = _records()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("*.json")):
        try:
            found.append((path, json.loads(path.read_text())))
        except (OSError, ValueError):
            found.append((path, None))
    return found


def _writer_of(record_path, record):
    """``(pid, start)`` of a record (from its name when its content is damaged)."""
    if record is not None:
        return int(record["pid"]), record.get("start")
    pid, start = record_path.name.split("-")[:2]
    return int(pid), None if start == "None" else int(start)


def _is_recorded_entry(record):
    """True when the record's temp still exists with the recorded device and inode."""
    try:
        info = os.lstat(record["temp"])
    except OSError:
        return False
    return (info.st_dev, info.st_ino) == (record["dev"], record["ino"])


def _delete(path):
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def make_temp(path, directory=False, suffix=".part"):
    """Create a hidden temporary file (or folder) beside ``path`` and record it; return its path.

    The record (this process, the temp's inode) is what lets a later run
    remove it if this process is killed (:func:`remove_stale_temps`); call
    :func:`release_temp` once it is renamed, :func:`discard_temp` to drop it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if directory:
        tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=suffix, dir=path.parent))
    else:
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp)
    _record_temp(tmp, path)
    return tmp


def _own_records(tmp):
    tmp = str(_real(tmp))
    return [(p, r) for p, r in _read_records()
            if r is not None and r["temp"] == tmp and r["pid"] == os.getpid()]


def release_temp(tmp):
    """Forget the record of a temp this process made (after renaming it onto its final name)."""
    for record_path, _ in _own_records(tmp):
        record_path.unlink(missing_ok=True)


def discard_temp(tmp):
    """Remove a temp this process made, and its record."""
    for record_path, record in _own_records(tmp):
        if _is_recorded_entry(record):
            _delete(tmp)
        record_path.unlink(missing_ok=True)
    if Path(tmp).exists() and not _own_records(tmp):  # unrecorded (the state folder is not writable)
        _delete(tmp)


def is_recorded_temp(path):
    """True when ``path`` is a temp some indi4d writer recorded (and it still is that file)."""
    path = str(_real(path))
    return any(r is not None and r["temp"] == path and _is_recorded_entry(r) for _, r in _read_records())


def _remove_dead_writers_temps(match):
    """Delete the recorded temps of writers that are gone, for which ``match(record)`` holds."""
    removed = []
    for record_path, record in _read_records():
        pid, start = _writer_of(record_path, record)
        if _writer_alive(pid, start):
            continue
        if record is not None and match(record):
            if _is_recorded_entry(record):  # still the file the writer made, not something put there since
                _delete(record["temp"])
                removed.append(Path(record["temp"]))
            record_path.unlink(missing_ok=True)
        elif record is None or not Path(record["temp"]).exists():
            record_path.unlink(missing_ok=True)  # a record of nothing
    return removed


def remove_stale_temps(path):
    """Delete the temporary siblings of ``path`` that a writer now gone made and recorded.

    Parameters
    ----------
    path : str or Path
        The final name of a file or folder written with :func:`atomic_path` or
        :func:`atomic_dir`.

    Returns
    -------
    list of Path
        What was removed. A file is never removed for its name alone: only a
        recorded temp of a dead writer that is still the recorded inode.
    """
    final = str(_real(path))
    return _remove_dead_writers_temps(lambda record: record["final"] == final)


def remove_stale_temps_in(folder):
    """Delete every recorded temp in ``folder`` of a writer now gone, whatever its final name.

    For folders whose entries each have their own name (``checkpoints/ckpt_<step>``).

    Returns
    -------
    list of Path
        What was removed.
    """
    folder = Path(os.path.realpath(folder))
    return _remove_dead_writers_temps(lambda record: Path(record["temp"]).parent == folder)


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
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing ({what})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: {what} is not valid JSON ({exc})") from exc
