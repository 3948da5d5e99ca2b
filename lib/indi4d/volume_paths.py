"""What a volume path names on disk: its format, the real files behind it, and whether an output is ours.

The one owner of the path grammar that :mod:`indi4d.io` (reading, writing)
and :mod:`indi4d.safety` (refusing outputs) share, so neither imports the
other's internals: suffixes and ``file.h5:/dataset`` specs
(:func:`split_spec`, :func:`volume_format`); the real files an input stands
for (:func:`real_files`: links followed, a slice folder's slices, an HDF5
dataset's virtual sources, external links and external raw files); and what
an existing output holds (:func:`hdf5_output_problem`,
:func:`folder_output_problem`): only a dataset or array carrying
:data:`MARKER` was written by this tool and may be replaced. Imports nothing
of the package but :mod:`indi4d.files`.
"""

import os
import re
import stat
from pathlib import Path

from .files import foreign_entries

TIFF_SUFFIXES = (".tif", ".tiff")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".nxs")
ZARR_SUFFIXES = (".zarr",)

#: Dataset name used when writing HDF5 without an explicit ``file.h5:/name``.
DEFAULT_HDF5_DATASET = "volume"

#: Attributes every HDF5 dataset and zarr array this tool writes carries; only those are ever replaced.
MARKER = {"written_by": "indi4d"}

# ``file.h5:/path/in/file`` -> ("file.h5", "/path/in/file"); the suffix before
# the colon keeps Windows drive letters ("C:\...") from being taken as one.
_HDF5_SPEC = re.compile(
    r"^(?P<file>.*?\.(?:" + "|".join(s.lstrip(".") for s in HDF5_SUFFIXES) + r")):(?P<dataset>.*)$", re.IGNORECASE
)


class VolumeError(ValueError):
    """A volume file is unreadable or not what was expected; the message names the file."""


def split_spec(path):
    """``file.h5:/a/b`` -> ``(Path("file.h5"), "a/b")``; any other path -> ``(Path(path), None)``.

    Dataset names are normalised (no leading/trailing ``/``), so ``x.h5:/entry/data``
    and ``x.h5:entry/data`` name the same dataset.
    """
    match = _HDF5_SPEC.match(str(path))
    if match:
        return Path(match.group("file")), match.group("dataset").strip().strip("/") or None
    return Path(str(path)), None


def is_zarr_store(folder):
    """True when ``folder`` holds a zarr v2 or v3 metadata file."""
    return any((Path(folder) / name).exists() for name in ("zarr.json", ".zarray", ".zgroup"))


def volume_format(path):
    """Name the on-disk format a path stands for.

    Returns
    -------
    str
        ``"tiff"``, ``"tiff-folder"``, ``"hdf5"`` or ``"zarr"``.

    Raises
    ------
    VolumeError
        For a suffix that is none of the supported ones (and not a folder).
    """
    file, _ = split_spec(path)
    suffix = file.suffix.lower()
    if suffix in TIFF_SUFFIXES:
        return "tiff"
    if suffix in HDF5_SUFFIXES:
        return "hdf5"
    if suffix in ZARR_SUFFIXES:
        return "zarr"
    if file.is_dir():
        return "zarr" if is_zarr_store(file) else "tiff-folder"  # a zarr store not named *.zarr
    if suffix == "" and not file.exists():
        return "tiff-folder"  # a folder of slices still to be written (or missing)
    raise VolumeError(
        f"{file}: unsupported volume format {suffix or '(no suffix)'!r}; expected one of "
        f"{', '.join(TIFF_SUFFIXES + HDF5_SUFFIXES + ZARR_SUFFIXES)} or a folder of TIFF slices"
    )


def require_regular(path, what="file"):
    """Refuse anything but a regular file or a folder (a FIFO or device would block a reader forever)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise VolumeError(f"{path}: no such {what}") from None
    except OSError as exc:
        raise VolumeError(f"{path}: cannot be read ({exc.strerror})") from None
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        kind = "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a device or socket"
        raise VolumeError(f"{path}: is {kind}, not a regular file; give the {what} itself")


def _natural_key(path):
    # slice_2 before slice_10: compare digit runs as numbers.
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def tiff_slices(folder):
    """The visible ``*.tif``/``*.tiff`` entries of a folder, in natural order; each must be a regular file.

    A link is followed (its target must be a regular file); a broken link, a
    FIFO or a sub-folder named ``.tif`` is refused rather than skipped, since a
    skipped slice would shift every slice after it.
    """
    files = [p for p in Path(folder).iterdir()
             if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".")]
    for path in files:
        if not path.exists():
            raise VolumeError(f"{path}: a slice of {folder} is a broken link; fix or remove it")
        if not path.is_file():
            require_regular(path, "slice")
            raise VolumeError(f"{path}: a slice of {folder} is a folder, not a TIFF file; move it out")
    if not files:
        raise VolumeError(f"{folder}: folder holds no .tif/.tiff slices")
    return sorted(files, key=_natural_key)


def _resolved(path):
    return Path(os.path.abspath(os.path.realpath(Path(path).expanduser())))


def _hdf5_real_files(file, dataset):
    """Files an HDF5 dataset's data live in: its file, external links on the way, VDS sources, raw files."""
    import h5py

    found = []
    try:
        with h5py.File(file, "r") as h5:
            if dataset is None:
                names = []
                h5.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
            else:
                names = [dataset]
            for name in names:
                found += _links_on_the_way(h5, file, name)
                obj = h5.get(name)
                if not isinstance(obj, h5py.Dataset):
                    continue
                found.append(Path(obj.file.filename))  # where an external link led
                base = Path(obj.file.filename).parent
                if obj.is_virtual:
                    found += [Path(obj.file.filename) if vs.file_name == "." else base / vs.file_name
                              for vs in obj.virtual_sources()]
                found += [base / ext[0].decode() if isinstance(ext[0], bytes) else base / ext[0]
                          for ext in (obj.external or [])]
    except OSError:  # not HDF5 (yet): the reader names the problem; the file itself is still an input
        pass
    return found


def _links_on_the_way(h5, file, name):
    """Files that external links along ``name`` (``a/b/c``) point into."""
    import h5py

    found, path = [], ""
    for part in name.strip("/").split("/"):
        path = f"{path}/{part}"
        try:
            link = h5.get(path, getlink=True)
        except (KeyError, OSError, ValueError):
            break
        if isinstance(link, h5py.ExternalLink):
            found.append(Path(file).parent / link.filename)
    return found


def real_files(path):
    """Every real file or folder the volume (or file) ``path`` stands for, resolved, the path itself first.

    Links are followed; a folder of slices adds every slice's target; an HDF5
    dataset adds the files of its external links, virtual-dataset sources and
    external raw storage (the whole file's datasets when none is named); a
    FIFO or device is refused (:func:`require_regular`) before anything opens it.

    Returns
    -------
    list of Path
        Resolved paths (missing ones included: they may still be created).
    """
    file, dataset = split_spec(path)
    found = [file]
    if file.exists():
        require_regular(file)
        if file.is_dir() and not is_zarr_store(file):
            found += [p for p in file.iterdir() if p.suffix.lower() in TIFF_SUFFIXES]
        elif file.suffix.lower() in HDF5_SUFFIXES and file.is_file():
            found += _hdf5_real_files(file, dataset)
    unique = []
    for entry in map(_resolved, found):
        if entry not in unique:
            unique.append(entry)
    return unique


# --------------------------------------------------------------------------- what an existing output holds


def hdf5_output_problem(file, dataset):
    """Why writing ``dataset`` into the existing ``file`` must be refused (a sentence), or None.

    Refused: a file that is not HDF5; a name that is a group (groups are
    never deleted), or lies under a dataset; a dataset not carrying
    :data:`MARKER` (another program's data).
    """
    import h5py

    file = Path(file)
    if not file.exists():
        return None
    if not file.is_file():
        return "exists and is not a regular file; choose another file name"
    if not h5py.is_hdf5(file):
        return "exists and is not an HDF5 file (writing would replace it whole); choose another file name"
    with h5py.File(file, "r") as h5:
        path = ""
        for part in dataset.strip("/").split("/")[:-1]:
            path = f"{path}/{part}"
            if isinstance(h5.get(path), h5py.Dataset):
                return f"{path} is a dataset, so {dataset!r} cannot be created under it; name a new dataset"
        obj = h5.get(dataset)
        if obj is None:
            return None
        if not isinstance(obj, h5py.Dataset):
            return f"{dataset!r} is a group of the file (indi4d never deletes a group); name a new dataset"
        if any(obj.attrs.get(key) != value for key, value in MARKER.items()):
            return f"dataset {dataset!r} was not written by indi4d (no written_by attribute); name a new dataset"
    return None


def folder_output_problem(folder):
    """Why replacing the existing folder ``folder`` (a zarr store, slices) must be refused (a sentence), or None.

    Only a zarr array written by this tool (its :data:`MARKER` attribute and
    manifest, nothing else in the folder) is replaced; never a group, an
    array of another program, or a folder of other files.
    """
    folder = Path(folder)
    if not folder.exists() and not folder.is_symlink():
        return None
    if folder.is_symlink() or not folder.is_dir():
        return "exists and is not a folder (a zarr store or slices are folders); choose a new name"
    if not any(folder.iterdir()):
        return None
    if is_zarr_store(folder):
        import zarr

        try:
            node = zarr.open(store=str(folder), mode="r")
        except Exception:  # zarr raises several types for a broken store
            node = None
        if node is not None and not isinstance(node, zarr.Array):
            return "is a zarr group (indi4d never replaces a group); choose a new name"
        if node is None or any(node.attrs.get(key) != value for key, value in MARKER.items()):
            return "is a zarr store not written by indi4d; choose a new name"
    foreign = foreign_entries(folder)
    if foreign:
        return (f"holds entries indi4d did not write ({', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}), "
                "which writing the volume would delete; choose a new name")
    return None
