"""Output paths checked before any computation: never overwrite an input, never replace what is not ours.

Every command that writes (``indi4d enhance``, ``evaluate``, ``register``,
``train``, ``simulate``) calls :func:`check_output` first with its inputs.
Each input is resolved to the real files behind it
(:func:`indi4d.volume_paths.real_files`: links, a slice folder's slices, an
HDF5 dataset's external links and virtual-dataset sources), and paths are
compared as the file system sees them (resolved paths and inodes, so links
and ``./x`` vs ``x`` are caught). HDF5 specs ``file.h5:/dataset`` are compared
by file: writing any dataset of an input HDF5 file rewrites that file, so it
is refused whatever the dataset is called. An existing output is replaced
only when this tool wrote it (:data:`indi4d.volume_paths.MARKER` on an HDF5
dataset or zarr array, :data:`indi4d.files.MANIFEST` in a folder); an HDF5
group, a zarr group or a folder of someone else's files never is, and
:func:`check_folder_is_ours` keeps commands that write into a folder out of a
folder of someone else's files (dot-files count).

The volume path grammar lives in :mod:`indi4d.volume_paths`, below both this
module and :mod:`indi4d.io` (which calls :func:`check_output`), so there is no
import circle.
"""

import json
import os
from pathlib import Path

from .files import MANIFEST, is_recorded_temp
from .volume_paths import (
    DEFAULT_HDF5_DATASET,
    HDF5_SUFFIXES,
    VolumeError,
    folder_output_problem,
    hdf5_output_problem,
    real_files,
    split_spec,
    volume_format,
)

__all__ = ["HDF5_SUFFIXES", "UnsafeOutputError", "split_spec", "same_file", "overlapping", "check_output",
           "check_folder_is_ours"]


class UnsafeOutputError(ValueError):
    """An output path would overwrite or sit inside an input, or cannot be written."""


def _resolved(path):
    return Path(os.path.abspath(os.path.realpath(Path(path).expanduser())))


def same_file(a, b):
    """True when ``a`` and ``b`` are the same file or folder (inode when both exist, else resolved path)."""
    a, b = Path(a), Path(b)
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return _resolved(a) == _resolved(b)


def _inside(child, parent):
    """True when ``child`` lies strictly inside folder ``parent``."""
    child, parent = _resolved(child), _resolved(parent)
    return parent != child and parent in child.parents


def overlapping(out, inp):
    """Say how writing ``out`` would touch input ``inp`` (a sentence), or None when it would not.

    The input is resolved to the real files behind it (:func:`indi4d.volume_paths.real_files`:
    links, a slice folder's slices, HDF5 virtual sources and external links), and
    the output is compared with each.
    """
    out_file, out_ds = split_spec(out)
    in_file, in_ds = split_spec(inp)
    if same_file(out_file, in_file):
        if in_ds is not None or out_ds is not None:
            if (out_ds or DEFAULT_HDF5_DATASET) == (in_ds or DEFAULT_HDF5_DATASET):
                return f"it is the input dataset {in_file}:/{in_ds or out_ds}"
            return f"it is a dataset of the input file {in_file} (writing it rewrites that file)"
        return f"it is the input {inp}"
    if _inside(out_file, in_file):
        return f"it lies inside the input folder {in_file}"
    if _inside(in_file, out_file):
        return f"the input {inp} lies inside it"
    for real in real_files(inp)[1:]:
        if same_file(out_file, real):
            return f"it is {real}, which the input {inp} reads its data from (a link, slice or HDF5 source)"
        if _inside(out_file, real) or _inside(real, out_file):
            return f"it holds or lies inside {real}, which the input {inp} reads its data from"
    return None


def _writable_parent(path):
    """The nearest existing ancestor of ``path`` and whether we can create entries in it."""
    parent = _resolved(path).parent
    while not parent.exists():
        parent = parent.parent
    return parent, parent.is_dir() and os.access(parent, os.W_OK | os.X_OK)


def check_output(out, inputs=(), kind="volume", who="indi4d", overwrite=True, earlier=None):
    """Refuse an output path before any work is done.

    Parameters
    ----------
    out : str or Path
        The output path (``file.h5:/dataset`` allowed for volumes).
    inputs : sequence of str or Path or None
        Every input of the command (None entries are skipped).
    kind : {"volume", "json", "folder", "file"}
        ``"volume"`` checks the suffix names a format :mod:`indi4d.io` writes,
        the entry is of that kind (a file, or a folder for zarr/slices) and an
        existing one is ours to replace (:func:`_volume_output_problem`);
        ``"json"`` requires ``.json``; ``"folder"`` refuses an existing file.
    who : str
        Command name for the message.
    overwrite : bool
        When False, an existing ``out`` is refused too.
    earlier : callable, optional
        For ``kind="json"``: ``earlier(obj) -> bool`` tells an earlier result
        of this command (the parsed JSON); any other existing file is refused,
        never overwritten (a user's notes.json is not ours to replace).

    Returns
    -------
    Path
        The output file (without any HDF5 dataset part).

    Raises
    ------
    UnsafeOutputError
        With a message naming ``out`` and the problem.
    """
    out_file, _ = split_spec(out)
    for inp in inputs:
        if inp is None:
            continue
        problem = overlapping(out, inp)
        if problem:
            raise UnsafeOutputError(f"{who}: output {out}: {problem}; choose another output name "
                                    "(inputs are never overwritten)")
    if kind == "volume":
        problem = _volume_output_problem(out)
        if problem:
            raise UnsafeOutputError(f"{who}: output {out}: {problem}")
    elif kind == "json" and out_file.suffix.lower() != ".json":
        raise UnsafeOutputError(f"{who}: output {out}: expected a .json file name; choose a name ending in .json")
    elif kind == "json" and earlier is not None and out_file.is_file() and not _is_earlier(out_file, earlier):
        raise UnsafeOutputError(f"{who}: output {out}: exists and is not an earlier result of this command; "
                                "choose a new .json name")
    if kind == "folder":
        if out_file.exists() and not out_file.is_dir():
            raise UnsafeOutputError(f"{who}: output folder {out}: exists and is a file; choose a folder name")
    elif out_file.exists() and not out_file.is_dir() and not out_file.is_file():
        raise UnsafeOutputError(f"{who}: output {out}: exists and is not a regular file (a FIFO or device); "
                                "choose a file name")
    elif out_file.is_dir() and kind != "volume":
        raise UnsafeOutputError(f"{who}: output {out}: is a folder, expected a file name; choose a file name")
    if not overwrite and out_file.exists():
        raise UnsafeOutputError(f"{who}: output {out}: exists already; choose another name")
    parent, ok = _writable_parent(out_file if kind != "folder" or out_file.exists() else out_file / "x")
    if out_file.exists() and not os.access(out_file if out_file.is_dir() else out_file.parent, os.W_OK):
        raise UnsafeOutputError(f"{who}: output {out}: not writable (permission denied); "
                                "choose a place you can write to")
    if not ok:
        why = "a file, not a folder" if not parent.is_dir() else "not writable (permission denied)"
        raise UnsafeOutputError(f"{who}: output {out}: cannot write in {parent}, it is {why}; "
                                "choose a place you can write to")
    return out_file


def _is_earlier(path, earlier):
    """True when ``path`` parses as JSON that ``earlier`` recognises."""
    try:
        return bool(earlier(json.loads(Path(path).read_text())))
    except (OSError, ValueError, UnicodeDecodeError, AttributeError, TypeError):
        return False


def _volume_output_problem(out):
    """Why a volume output must be refused before any work (a sentence), or None.

    The name must be a format we write, of the right kind of entry (a file for
    ``.tif``/``.h5``, a folder for ``.zarr``/slices); an existing HDF5 file
    keeps every dataset but ours, an existing folder is replaced only when it
    is ours (:mod:`indi4d.volume_paths`).
    """
    try:
        fmt = volume_format(out)
    except VolumeError as exc:
        # the message of volume_format starts with the file name
        return f"{str(exc).split(': ', 1)[-1]}; choose a name with one of those suffixes"
    file, dataset = split_spec(out)
    if fmt in ("tiff", "hdf5") and file.is_dir():
        return f"is a folder, but a {fmt.upper()} output is a file; choose a new name"
    if fmt == "hdf5":
        return hdf5_output_problem(file, dataset or DEFAULT_HDF5_DATASET)
    if fmt in ("zarr", "tiff-folder"):
        return folder_output_problem(file)
    return None


def check_folder_is_ours(folder, own_names, what, who="indi4d", allowed=None, recognise=None):
    """Refuse an existing output folder that holds someone else's files.

    A command that writes files of known names into a folder (``simulate``,
    ``register``, ``train``) may replace its own earlier output, but not
    write over what a user keeps in a folder they named by mistake.

    Parameters
    ----------
    folder : str or Path
        The output folder (it may not exist yet).
    own_names : sequence of str
        File names only this kind of output has (e.g. ``pairs.json``); a
        folder holding one of them is an earlier output.
    what : str
        The kind of output, for the message (``"pairs"``).
    who : str
        Command name for the message.
    allowed : collection of str, optional
        When given, every visible entry must be one of these names (for a
        command that replaces the folder as a whole).
    recognise : callable, optional
        ``recognise(folder) -> bool`` instead of ``own_names`` when a file
        name alone is too common to tell (e.g. ``meta.json``).

    Raises
    ------
    UnsafeOutputError
        ``folder`` is not empty (recorded temporary entries aside) and is not
        an earlier output, or holds an entry outside ``allowed``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    # dot-files count: a user's .notes is theirs; only our manifest and recorded temps are not entries
    visible = sorted(p.name for p in folder.iterdir() if p.name != MANIFEST and not is_recorded_temp(p))
    if not visible:
        return
    ours = recognise(folder) if recognise is not None else any((folder / name).exists() for name in own_names)
    if not ours:
        raise UnsafeOutputError(f"{who}: output folder {folder}: holds other files ({_some(visible)}) and is "
                                f"not an earlier {what} folder; choose a new or empty folder")
    extra = [name for name in visible if allowed is not None and name not in allowed]
    if extra:
        raise UnsafeOutputError(f"{who}: output folder {folder}: holds files that are not part of the {what} "
                                f"({_some(extra)}), which replacing the folder would delete; choose a new folder")


def _some(names, n=3):
    """The first ``n`` names for a message."""
    return ", ".join(names[:n]) + (", ..." if len(names) > n else "")
