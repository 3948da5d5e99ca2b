"""Temporary files recorded by the process that made them, so cleanup never goes by name.

Each temp (``.<name>.<pid>.<random>.part<suffix>`` beside its final name) gets
a record in this user's state folder (:func:`state_dir`): the writer's pid and
start time, the temp's path, device and inode. :func:`remove_stale_temps`
deletes only recorded temps whose writer is gone and whose inode is still the
recorded one: an input that merely looks like a temp (``.o.tif.999.x.part.tif``)
is never touched, nor a file put under a temp's name since. A failure to
record only leaves a temp behind (never deletes one). Imports nothing of the
package; :mod:`indi4d.files` builds its atomic writes on it.
"""

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path


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


