"""Checks of an ``indi4d enhance`` job before any computation: input, grey values, voxel size, output, steps.

:func:`check_enhance_input` is called by the CLI and by
:func:`indi4d.inference.chunked.enhance_chunked` before the network is loaded
or a voxel is read: everything it checks comes from metadata (the input's
header, the model folder's JSON files), so a refused job costs nothing and
leaves every file untouched.
"""

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

#: ``--steps`` above this are refused unless ``force``: InDI's quality saturates
#: long before, and the time grows linearly (``N`` network passes per slice).
MAX_STEPS = 100

#: Voxels of one slice above which a header is refused: one enhanced slice (2Y x 2X float32, and
#: the network's activations) must fit in memory; 2^31 is a 46 000^2 slice.
MAX_SLICE_VOXELS = 2**31

#: Relative tolerance when comparing voxel sizes.
VOXEL_RTOL = 0.01

#: The grey values InDI is trained on when the model folder does not say.
TRAINED_DTYPE = "uint16"

#: Grey-range check on the middle slice: at least this share of its voxels must
#: lie within the LQ training range widened by half its width on each side.
GREY_RANGE_SHARE = 0.5

#: ... and its brightest voxels (99.9th percentile) must reach past this fraction of
#: the training range: a 12-bit scan in a uint16 file (values up to 4095) sits
#: inside a 16-bit training range but at its dark end.
GREY_TOP_FRACTION = 0.125


class EnhanceInputError(ValueError):
    """An enhancement job refused before any computation (the message names the file and the problem)."""


@dataclass
class EnhanceJob:
    """What :func:`check_enhance_input` found: everything the computation needs."""

    in_path: str
    out_path: str
    model_dir: str
    steps: int
    volume: object  # dask.array.Array (Z, Y, X) or (Y, X), nothing read yet
    meta: dict
    voxel_size_nm: float
    input_range: tuple = None
    model_lq: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def model_lq_record(model_dir):
    """``{"voxel_size_nm", "dtype"}`` of the LQ scan the model was trained on (values None when unknown).

    Looked up in ``config.json`` (``lq_voxel_size_nm`` / ``lq_dtype`` when
    present) and then in the provenance of the pairs folder it was trained on
    (``config["pairs_dir"]/pairs.json``, ``inputs.lq``).
    """
    from ..files import read_json
    from ..model_folder import read_config

    record = {"voxel_size_nm": None, "dtype": None, "source": None}
    try:
        config = read_config(model_dir)
    except (OSError, ValueError):
        return record
    if config.get("lq_voxel_size_nm") is not None:
        record.update(voxel_size_nm=float(config["lq_voxel_size_nm"]), dtype=config.get("lq_dtype"),
                      source=f"{Path(model_dir) / 'config.json'}")
        return record
    pairs_dir = config.get("pairs_dir")
    if pairs_dir:
        path = Path(pairs_dir) / "pairs.json"
        try:
            lq = read_json(path, "the pairs' provenance").get("inputs", {}).get("lq", {})
        except (OSError, ValueError, AttributeError):
            lq = {}
        if lq.get("voxel_size_nm") is not None:
            record.update(voxel_size_nm=float(lq["voxel_size_nm"]), source=str(path))
        if lq.get("dtype"):
            record.update(dtype=str(lq["dtype"]), source=str(path))
    return record


def _check_range(input_range, in_path):
    if input_range is None:
        return None
    lo, hi = (float(v) for v in input_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise EnhanceInputError(f"{in_path}: --input-range needs two finite numbers LO < HI, got {input_range}")
    return lo, hi


def _check_shape(volume, in_path):
    shape = tuple(volume.shape)
    if len(shape) not in (2, 3):
        raise EnhanceInputError(f"{in_path}: shape {shape} is not a 2D slice or a 3D (Z, Y, X) stack; "
                                "4D/RGB data are refused: extract one grey channel or time step first")
    if len(shape) == 3 and shape[-1] in (3, 4):
        raise EnhanceInputError(f"{in_path}: shape {shape} looks like RGB(A) colour channels on the last axis; "
                                "InDI enhances grey-value scans: convert to one grey channel first")
    if min(shape[-2:]) < 2:
        raise EnhanceInputError(f"{in_path}: slices of shape {shape[-2:]} are too small to enhance")
    voxels = int(shape[-2]) * int(shape[-1])
    if voxels > MAX_SLICE_VOXELS:
        raise EnhanceInputError(f"{in_path}: the header claims slices of {shape[-2]} x {shape[-1]} voxels "
                                f"({voxels:.3g}, more than {MAX_SLICE_VOXELS:.3g}); one slice is enhanced in memory "
                                "at 4x its size: the header is damaged, or crop the scan in y-x first")


def map_grey_range(x, src, dst):
    """Linear map of grey values ``x`` from the interval ``src = (lo, hi)`` onto ``dst`` (float64).

    How ``--input-range`` puts a scan on the training scan's scale (and the
    enhanced output back on the scan's).
    """
    return dst[0] + (np.asarray(x, np.float64) - src[0]) * ((dst[1] - dst[0]) / (src[1] - src[0]))


def _check_grey_range(volume, lq, input_range, in_path, model_dir, notes):
    """Refuse a scan whose grey values are not on the training scan's scale (one middle slice is read).

    A uint16 scan from another detector or reconstruction can pass the dtype
    check yet sit on another grey scale: an offset (most values outside the
    range), or a 12-bit scan in a uint16 file (values up to 4095, at the dark
    end of a 16-bit range): the network would then see an image unlike any it
    was trained on. A constant slice is said in ``notes``.
    """
    z = volume.shape[0] // 2 if volume.ndim == 3 else 0
    image = np.asarray(volume[z] if volume.ndim == 3 else volume, np.float64)
    if not np.all(np.isfinite(image)):  # the other slices are checked as their chunks are read
        raise EnhanceInputError(f"{in_path}: NaN or infinite grey values in slice z = {z}; nothing was written")
    if image.min() == image.max():
        notes.append(f"{in_path}: the middle slice z = {z} is constant (every voxel {image.min():g}); "
                     "the output will be flat there")
    if input_range is not None:  # the range the user stated is mapped onto the training range
        image = map_grey_range(image, input_range, (lq["lo"], lq["hi"]))
    width = lq["hi"] - lq["lo"]
    inside = np.mean((image >= lq["lo"] - width / 2) & (image <= lq["hi"] + width / 2))
    p1, p99, top = np.percentile(image, [1, 99, 99.9])
    mapped = ", after --input-range" if input_range is not None else ""
    advice = ("give --input-range LO HI with the grey values of this scan that correspond to the training scan's "
              "range")
    if inside < GREY_RANGE_SHARE:
        raise EnhanceInputError(
            f"{in_path}: only {inside:.0%} of the middle slice's grey values lie near the model's LQ training range "
            f"{lq['lo']:g}..{lq['hi']:g} ({model_dir}); this scan spans {p1:g}..{p99:g} (1st-99th percentile"
            f"{mapped}): {advice}")
    if top < lq["lo"] + GREY_TOP_FRACTION * width and image.max() > image.min():
        raise EnhanceInputError(
            f"{in_path}: the middle slice's grey values stop at {top:g} (99.9th percentile{mapped}), at the dark "
            f"end of the model's LQ training range {lq['lo']:g}..{lq['hi']:g} ({model_dir}): a 12-bit (or other "
            f"lower bit depth) scan in a {volume.dtype} file? {advice} (e.g. --input-range 0 4095 for 12 bits)")


def _nm(value):
    return "unrecorded" if value is None else f"{float(value):g} nm"


def _check_voxel(meta, voxel_size_nm, model_lq, in_path, model_dir, notes):
    from ..io import isotropic_voxel_size

    stored = isotropic_voxel_size(meta, in_path)
    if voxel_size_nm is not None:
        voxel_size_nm = float(voxel_size_nm)
        if not (math.isfinite(voxel_size_nm) and voxel_size_nm > 0):
            raise EnhanceInputError(f"{in_path}: --voxel-size-nm must be a positive number, got {voxel_size_nm}")
        if stored is not None and not math.isclose(float(stored), voxel_size_nm, rel_tol=VOXEL_RTOL):
            raise EnhanceInputError(f"{in_path}: the file states a voxel size of {float(stored):g} nm "
                                    f"but --voxel-size-nm says {voxel_size_nm:g} nm")
    elif stored is None:
        raise EnhanceInputError(f"{in_path}: the file carries no voxel size; state it with --voxel-size-nm "
                                f"(the model was trained on {_nm(model_lq['voxel_size_nm'])} LQ voxels)")
    else:
        voxel_size_nm = float(stored)
    trained = model_lq.get("voxel_size_nm")
    if trained is None:
        notes.append(f"{model_dir}: the LQ voxel size of the training scan is not recorded; "
                     f"{voxel_size_nm:g} nm accepted unchecked")
    elif not math.isclose(voxel_size_nm, trained, rel_tol=VOXEL_RTOL):
        raise EnhanceInputError(f"{in_path}: voxel size {voxel_size_nm:g} nm, but the model {model_dir} was trained "
                                f"on {trained:g} nm LQ voxels ({model_lq['source']}); resample the scan first")
    return voxel_size_nm


def check_enhance_input(in_path, out_path, model_dir, steps=None, force=False, input_range=None,
                        voxel_size_nm=None, chunks=None, who="indi4d enhance"):
    """Refuse a bad enhancement job before anything is loaded or computed.

    Checks, in order: the output (writable, a format we write, not an input
    nor inside the model folder: :func:`indi4d.safety.check_output`); the
    model folder and its normalisation; ``steps`` (1..:data:`MAX_STEPS`
    unless ``force``); the input (readable, opened lazily, 2D or 3D grey
    values: RGB or 4D refused); its dtype against the training scan's
    (uint16 unless the model says otherwise; another dtype needs
    ``input_range``); its voxel size against the model's LQ voxel size; its
    grey values (the middle slice only) against the training scan's range.

    Parameters
    ----------
    in_path, out_path : str or Path
        As for :func:`indi4d.inference.enhance_file`.
    model_dir : str or Path
    steps : int, optional
        None = the model's chosen N (:func:`indi4d.model_folder.default_steps`).
    force : bool
        Allow ``steps`` > :data:`MAX_STEPS`.
    input_range : (float, float), optional
        Grey values ``LO, HI`` of the input mapped linearly onto the model's
        LQ training range (and the output mapped back), for inputs of another
        dtype or scale, e.g. ``(0, 1)`` for a float scan.
    voxel_size_nm : float, optional
        The input's voxel size when the file carries none (must agree with it otherwise).
    chunks : tuple, optional
        Dask chunks to open the input with.

    Returns
    -------
    EnhanceJob

    Raises
    ------
    EnhanceInputError, indi4d.safety.UnsafeOutputError, indi4d.io.VolumeError, FileNotFoundError
        Nothing was read beyond metadata, nothing was written.
    """
    from ..io import VolumeError, open_volume_lazy, volume_format
    from ..model_folder import default_steps, model_task, read_normalisation
    from ..safety import check_output

    check_output(out_path, inputs=[in_path, model_dir], kind="volume", who=who)
    if volume_format(out_path) == "tiff-folder":
        raise VolumeError(f"{out_path}: name the output .tif, .h5 (file.h5:/dataset) or .zarr")
    if not Path(model_dir).is_dir():
        raise FileNotFoundError(f"{model_dir}: no such model folder (made by indi4d train)")
    # every JSON file of the model folder is checked before anything is said about the input
    if model_task(model_dir) != "enhancement":
        raise EnhanceInputError(f"{model_dir}: a {model_task(model_dir)} model folder, not an enhancement (InDI) "
                                "one; give --model a folder made by indi4d train")
    norm = read_normalisation(model_dir)
    steps = default_steps(model_dir) if steps is None else steps
    if int(steps) != steps or steps < 1:
        raise EnhanceInputError(f"{who}: steps must be an integer >= 1, got {steps!r}")
    if steps > MAX_STEPS and not force:
        raise EnhanceInputError(f"{who}: {steps} InDI steps is more than {MAX_STEPS} (each step is one network "
                                "pass per slice, and quality saturates long before); pass --force to run it anyway")
    input_range = _check_range(input_range, in_path)
    volume, meta = open_volume_lazy(in_path, chunks=chunks)
    _check_shape(volume, in_path)
    model_lq = model_lq_record(model_dir)
    trained = np.dtype(model_lq.get("dtype") or TRAINED_DTYPE)
    lq = norm["lq"]
    if input_range is None and volume.dtype != trained:
        raise EnhanceInputError(
            f"{in_path}: dtype {volume.dtype}, but the model {model_dir} expects {trained} grey values like its "
            f"training scan (LQ grey range {lq['lo']:g}..{lq['hi']:g}); give --input-range LO HI to map this "
            "file's grey values onto that range")
    notes = []
    voxel = _check_voxel(meta, voxel_size_nm, model_lq, in_path, model_dir, notes)
    _check_grey_range(volume, lq, input_range, in_path, model_dir, notes)
    return EnhanceJob(in_path=str(in_path), out_path=str(out_path), model_dir=str(model_dir), steps=int(steps),
                      volume=volume, meta=meta, voxel_size_nm=voxel, input_range=input_range, model_lq=model_lq,
                      notes=notes)
