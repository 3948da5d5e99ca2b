"""Low-level file handling shared by every module: atomic writes, sha256, JSON.

Nothing here knows about volumes, models or runs; ``data``, ``simulate``, ``io``
and the training code all build on it, so it imports nothing from the package.

Temporary names carry the writer's process id (``.<name>.<pid>.<random>.part<suffix>``):
:func:`remove_stale_temps` deletes those whose writer is gone (a killed run), and
never one that a live process is still writing.
"""

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.(part|old)(\.[^/]*)?$")


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


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _remove_dead_writers_temps(folder, final_name=None):
    """Delete the temps in ``folder`` whose writer is gone (only those of ``final_name`` when given)."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in sorted(folder.iterdir()):
        match = _TEMP.match(entry.name)
        if not match or _pid_alive(int(match.group("pid"))):
            continue
        if final_name is not None and match.group("name") != final_name:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def remove_stale_temps(path):
    """Delete temporary siblings of ``path`` left by a writer that no longer runs.

    Parameters
    ----------
    path : str or Path
        The final name of a file or folder written with :func:`atomic_path` or
        :func:`atomic_dir`.

    Returns
    -------
    list of Path
        What was removed.
    """
    path = Path(path)
    return _remove_dead_writers_temps(path.parent, path.name)


def remove_stale_temps_in(folder):
    """Delete every temp in ``folder`` left by a writer that no longer runs, whatever its final name.

    For folders whose entries each have their own name (``checkpoints/ckpt_<step>``).

    Returns
    -------
    list of Path
        What was removed.
    """
    return _remove_dead_writers_temps(folder)


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
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=f".part{path.suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if tmp.exists():
            usual_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path):
    """Yield a temporary folder beside ``path``; swap it in for ``path`` on success.

    An existing ``path`` is moved aside first and deleted only after the new
    folder is in place, so a failure never leaves a half-written store under
    the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".part", dir=path.parent))
    try:
        usual_permissions(tmp)
        yield tmp
        old = None
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=temp_prefix(path), suffix=".old", dir=path.parent))
            os.replace(path, old / path.name)
        os.replace(tmp, path)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
