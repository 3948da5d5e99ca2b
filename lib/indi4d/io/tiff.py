"""TIFF volumes: multi-page stacks and folders of slices, with a voxel size ImageJ reads too.

Every TIFF we write carries the voxel size twice in its first page:

* our JSON description (``{"shape": [...], "voxel_size_nm": ..., ...}``), the
  exact record :func:`indi4d.io.read_volume` prefers;
* ImageJ's calibration: XResolution = YResolution = pixels per micrometre,
  ResolutionUnit NONE, and an ImageJ description (``unit=micron``,
  ``spacing=`` the z step in micrometres), as Fiji and ImageJ write and read it.

ImageJ keeps the *last* ImageDescription tag of the first page, so ours comes
first and ImageJ's second (tifffile's ``imagej=True`` would drop ours, and it
refuses dtypes ImageJ cannot show). Reading a TIFF without our JSON (e.g. one
saved by Fiji) takes the voxel size from those tags.
"""

import contextlib
import json
import math
from pathlib import Path

import numpy as np
import tifffile

from ..files import atomic_dir, atomic_path
from .blocks import computed_blocks, is_lazy, progress_bar
from .checks import check_finite, validate_for_write
from .metadata import write_meta
from .paths import VolumeError, require_volume_file, tiff_slices

#: Length units as ImageJ and TIFF readers write them -> nanometres. ImageJ
#: writes micrometres as "um", "micron", the micro sign, the Greek mu, or the
#: escaped text "\\u00B5m" (its descriptions are ASCII).
UNIT_NM = {"nm": 1.0, "nanometer": 1.0, "nanometre": 1.0, "um": 1e3, "micron": 1e3, "micrometer": 1e3,
           "micrometre": 1e3, "\u00b5m": 1e3, "\u03bcm": 1e3, "\\u00b5m": 1e3, "mm": 1e6, "cm": 1e7}

#: TIFF ResolutionUnit codes with a length (2 = inch is left out: 72 dpi is
#: the default of many programs and says nothing about the sample) -> nm per unit.
#: 4 and 5 (millimetre, micrometre) are tifffile's extensions of the standard.
RESUNIT_NM = {3: 1e7, 4: 1e6, 5: 1e3}


# --------------------------------------------------------------------------- voxel size in tags


def _tiff_write_options(meta, shape, label):
    """Keyword arguments of ``tifffile.imwrite`` that store ``meta`` for us and for ImageJ.

    Parameters
    ----------
    meta : dict
        JSON-serialisable metadata, ``voxel_size_nm`` (nm) among them when known.
    shape : tuple of int
        Shape of the written array, (Z, Y, X) or (Y, X); stored so a (1, Y, X)
        volume reads back 3D.
    label : str
        The file, for messages.
    """
    if "shape" in meta:
        raise ValueError(f"{label}: 'shape' is reserved in TIFF metadata (it records the array shape)")
    shape = [int(s) for s in shape]
    # Our JSON first: ImageJ keeps the last description, tifffile reads both.
    descriptions = [json.dumps({"shape": shape, **meta})]
    options = dict(metadata=None, photometric="minisblack")
    voxel_nm = meta.get("voxel_size_nm")
    if voxel_nm is not None:
        voxel_um = float(voxel_nm) / 1e3
        axes = "ZYX" if len(shape) == 3 else "YX"
        descriptions.append(tifffile.imagej_description(shape, axes=axes, unit="micron", spacing=voxel_um))
        options.update(resolution=(1.0 / voxel_um, 1.0 / voxel_um), resolutionunit=tifffile.RESUNIT.NONE)
    # A photometric="minisblack" keeps a small last axis (e.g. shape (16, 16, 3))
    # from being taken for colour samples: pages are always z-slices.
    options["extratags"] = [(270, "s", 0, text, True) for text in descriptions]
    return options


def _pixels_per_unit(page):
    """XResolution of a page as a float, or None when absent, zero or unequal to YResolution."""
    values = []
    for name in ("XResolution", "YResolution"):
        tag = page.tags.get(name)
        if tag is None:
            return None
        num, den = tag.value
        values.append(num / den if den else 0.0)
    if values[0] <= 0 or not math.isclose(values[0], values[1], rel_tol=1e-6):
        return None
    return values[0]


def _voxel_size_from_tags(tif):
    """Voxel size in nm from ImageJ's calibration or the resolution tags; None when they hold none.

    Each axis from its own tag: y-x from XResolution (in ImageJ's ``unit``,
    else in the TIFF ResolutionUnit: centimetre, millimetre or micrometre),
    z from ImageJ's ``spacing`` (a resolution of exactly 1 pixel per unit is
    the default of writers that set none, and is taken as unset). Returns ``{"voxel_size_nm": xy or z,
    "voxel_size_zyx_nm": [z, y, x]}`` (z None when not stated); an anisotropic
    file is refused by the readers that need isotropic voxels
    (:func:`isotropic_voxel_size`), never silently given the z spacing.
    """
    page = tif.pages.first
    per_unit = _pixels_per_unit(page)
    if per_unit == 1.0:  # one pixel per unit is what writers store when they set no resolution
        per_unit = None
    xy = z = None
    if tif.is_imagej:
        imagej = tif.imagej_metadata or {}
        to_nm = UNIT_NM.get(str(imagej.get("unit", "")).strip().lower())
        if to_nm is not None:
            with contextlib.suppress(TypeError, ValueError):
                if "spacing" in imagej and float(imagej["spacing"]) > 0:
                    z = float(imagej["spacing"]) * to_nm
            if per_unit:
                xy = to_nm / per_unit
    if xy is None:
        unit = page.tags.get("ResolutionUnit")
        to_nm = RESUNIT_NM.get(int(unit.value)) if unit is not None else None
        if to_nm is not None and per_unit:
            xy = to_nm / per_unit
    if xy is None and z is None:
        return None
    return {"voxel_size_nm": xy if xy is not None else z, "voxel_size_zyx_nm": [z, xy, xy]}


def meta_from_tiff(tif):
    """Metadata of an open :class:`tifffile.TiffFile`: our JSON description, else the calibration tags."""
    page = tif.pages.first
    meta = {}
    for description in (page.description, page.description1):
        if description and description.strip().startswith("{"):
            with contextlib.suppress(json.JSONDecodeError):
                loaded = json.loads(description)
                if isinstance(loaded, dict):
                    meta = loaded
                    meta.pop("shape", None)  # the record of the array shape, not metadata
                    break
    if "voxel_size_nm" not in meta:
        meta.update(_voxel_size_from_tags(tif) or {})
    return meta


# --------------------------------------------------------------------------- reading


def check_tiff_pages(tif, file):
    """Refuse a TIFF whose page directory chain is cut short.

    tifffile stores pages' data before their directories, so a truncated
    file can lose directories while the data still reads; the shape recorded
    in the description (ours, ImageJ's) says how many pages there must be.
    """
    page_size = math.prod(tif.pages.first.shape) or 1
    expected = None
    if tif.shaped_metadata and "shape" in tif.shaped_metadata[0]:
        expected = math.prod(tif.shaped_metadata[0]["shape"]) // page_size
    elif tif.is_imagej and tif.imagej_metadata and "images" in tif.imagej_metadata:
        expected = int(tif.imagej_metadata["images"])
    found = len(tif.pages)
    if expected is not None and found < expected:
        raise VolumeError(f"{file}: truncated or corrupt TIFF, {found} of {expected} pages readable")
    # Every directory and every strip/tile must end inside the file.
    size, layout = tif.filehandle.size, tif.tiff
    for k, page in enumerate(tif.pages):
        ifd_end = page.offset + layout.tagnosize + len(page.tags) * layout.tagsize + layout.offsetsize
        data_end = max((o + n for o, n in zip(page.dataoffsets, page.databytecounts)), default=0)
        if max(ifd_end, data_end) > size:
            raise VolumeError(f"{file}: truncated TIFF, page {k} needs {int(max(ifd_end, data_end))} bytes, "
                              f"the file has {int(size)}")


def read_tiff_file(file):
    try:
        with tifffile.TiffFile(file) as tif:
            check_tiff_pages(tif, file)
            volume = tif.asarray()
            meta = meta_from_tiff(tif)
    except VolumeError:
        raise
    except Exception as exc:  # truncated data raises ValueError, garbage raises TiffFileError, ...
        raise VolumeError(f"{file}: not a readable TIFF ({exc})") from exc
    return volume, meta


def read_tiff_folder(folder):
    files = tiff_slices(folder)
    first, meta = read_tiff_file(files[0])
    if first.ndim != 2:
        raise VolumeError(f"{files[0]}: slices of a folder must be 2D, got shape {first.shape}")
    volume = np.empty((len(files),) + first.shape, dtype=first.dtype)
    volume[0] = first
    from tqdm.auto import tqdm

    for k, file in enumerate(tqdm(files[1:], desc=f"reading {folder.name}", disable=len(files) < 64), start=1):
        require_volume_file(file)
        image, _ = read_tiff_file(file)
        if image.shape != first.shape or image.dtype != first.dtype:
            raise VolumeError(
                f"{file}: slice {image.shape} {image.dtype} differs from the first slice "
                f"{files[0].name} {first.shape} {first.dtype}"
            )
        volume[k] = image
    return volume, meta


def read_tiff_metadata(file):
    """Metadata of a TIFF file without reading its pixels."""
    require_volume_file(file)
    try:
        with tifffile.TiffFile(file) as tif:
            return meta_from_tiff(tif)
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise VolumeError(f"{file}: not a readable TIFF ({exc})") from exc


# --------------------------------------------------------------------------- writing


def write_tiff(file, volume, meta, lazy, progress):
    """Write a multi-page TIFF atomically; a dask array is streamed slab by slab."""
    options = _tiff_write_options(meta, volume.shape, file)
    with atomic_path(file) as tmp:
        if lazy and volume.ndim == 3:
            # TIFF pages must be written in order: stream whole z-slabs.
            slabs = volume.rechunk({1: -1, 2: -1})

            def pages():
                for _, block in progress_bar(computed_blocks(slabs), len(slabs.chunks[0]), progress, f"writing {file.name}"):
                    check_finite(str(file), block)
                    yield from block

            tifffile.imwrite(tmp, pages(), shape=volume.shape, dtype=volume.dtype, **options)
        else:
            data = np.asarray(volume.compute()) if lazy else volume
            check_finite(str(file), data)
            tifffile.imwrite(tmp, data, **options)


def write_tiff_slices(folder, volume, voxel_size_nm=None, extra=None, prefix="slice_"):
    """Write a 3D volume as a folder of 2D TIFF slices, atomically.

    Parameters
    ----------
    folder : str or Path
        Output folder (replaced as a whole when it exists).
    volume : ndarray or dask.array.Array, shape (Z, Y, X)
    voxel_size_nm : float, optional
        Isotropic voxel size in nm, stored in every slice (our JSON and ImageJ's tags).
    extra : dict, optional
        More metadata, stored in every slice.
    prefix : str
        File names are ``{prefix}{z:05d}.tif``.

    Returns
    -------
    Path
    """
    folder = Path(folder)
    lazy = is_lazy(volume)
    volume = volume if lazy else np.asarray(volume)
    if volume.ndim != 3:
        raise VolumeError(f"{folder}: a folder of slices needs a 3D volume, got shape {tuple(volume.shape)}")
    validate_for_write(str(folder), volume)
    options = _tiff_write_options(write_meta(voxel_size_nm, extra), volume.shape[1:], folder)
    width = max(5, len(str(volume.shape[0] - 1)))
    with atomic_dir(folder) as tmp:
        for z in range(volume.shape[0]):
            image = np.asarray(volume[z].compute() if lazy else volume[z])
            check_finite(str(folder), image)
            tifffile.imwrite(tmp / f"{prefix}{z:0{width}d}.tif", image, **options)
    return folder
