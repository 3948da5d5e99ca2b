"""zarr volumes (v2 or v3 arrays, or an array inside a group): opening and atomic writes."""

from ..files import atomic_dir
from ..volume_paths import MARKER, folder_output_problem
from .blocks import WRITE_CHUNK_BYTES, slab_chunks, store_blocks
from .paths import VolumeError


def open_zarr(file, dataset):
    """Open a zarr array (read-only); a group needs ``dataset`` unless it holds one array."""
    import zarr

    try:
        node = zarr.open(store=str(file), mode="r")
    except Exception as exc:  # zarr raises several types for a broken store
        raise VolumeError(f"{file}: not a readable zarr store ({exc})") from exc
    if isinstance(node, zarr.Array):
        if dataset not in (None, "", "/"):
            raise VolumeError(f"{file}: the store is a single array; it has no dataset {dataset!r}")
        return node
    arrays = sorted(name for name, member in node.members(max_depth=None) if isinstance(member, zarr.Array))
    if dataset in (None, "", "/"):
        if len(arrays) == 1:
            return node[arrays[0]]
        raise VolumeError(
            f"{file}: no dataset given and the zarr group holds {len(arrays)} arrays; "
            f"arrays there: {', '.join(arrays) or 'none'}"
        )
    key = str(dataset).strip("/")
    if key not in arrays:
        raise VolumeError(f"{file}: array {dataset!r} is not in the zarr group; arrays there: {', '.join(arrays) or 'none'}")
    return node[key]


def check_zarr_complete(arr, label):
    """Refuse a zarr array with chunks missing (zarr would read them as fill values, silently)."""
    missing = arr.nchunks - arr.nchunks_initialized
    if missing:
        raise VolumeError(f"{label}: {missing} of the zarr array's {arr.nchunks} chunks are missing (their files were "
                          "deleted or never written), which would read as zeros; restore the store or write it again")


def write_zarr(file, volume, meta, lazy, progress):
    """Write ``volume`` as a zarr v3 array store, replacing ``file`` as a whole."""
    import zarr

    chunks = slab_chunks(volume.shape, volume.dtype.itemsize, WRITE_CHUNK_BYTES)
    with replace_store(file) as tmp:
        arr = zarr.create_array(store=str(tmp), shape=volume.shape, dtype=volume.dtype,
                                chunks=chunks, zarr_format=3, overwrite=True)
        if lazy:
            store_blocks(arr, volume.rechunk(chunks), file, progress)
        else:
            arr[...] = volume
        arr.attrs.update({**meta, **MARKER})


def replace_store(file):
    """:func:`indi4d.files.atomic_dir` for a zarr store: refused unless an existing ``file`` is our array.

    Never replaces a zarr group, another program's array, or a folder holding
    other files (:func:`indi4d.volume_paths.folder_output_problem`).
    """
    problem = folder_output_problem(file)
    if problem:
        raise VolumeError(f"{file}: {problem}; nothing was written")
    return atomic_dir(file, what="zarr store")
