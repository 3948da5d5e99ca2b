"""Checks of an ``indi4d enhance`` job before any computation: input, grey values, voxel size, output, steps,
domain.

:func:`check_enhance_input` is called by the CLI and by
:func:`indi4d.inference.chunked.enhance_chunked` before the network is loaded:
everything it checks comes from metadata (the input's header, the model
folder's JSON files) and a few sampled slices (the grey range, the domain
score of :mod:`indi4d.domain`), so a refused job costs little and leaves
every file untouched.
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
    domain: dict = None  # :func:`check_domain`'s result, recorded in the output's metadata


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


def check_input_range(input_range, in_path, error=EnhanceInputError):
    """``input_range`` as ``(lo, hi)`` floats (None stays None): two finite numbers, LO < HI, else ``error``."""
    if input_range is None:
        return None
    lo, hi = (float(v) for v in input_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise error(f"{in_path}: --input-range needs two finite numbers LO < HI, got {input_range}")
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


def stated_voxel_size(meta, given, path, error=EnhanceInputError):
    """A volume file's voxel size in nm: ``given`` (``--voxel-size-nm``) or the file's; None when neither says.

    ``given`` must be a positive number and agree with the file's within
    :data:`VOXEL_RTOL`; otherwise ``error`` is raised naming ``path``.
    """
    from ..io import isotropic_voxel_size

    stored = isotropic_voxel_size(meta, path)  # anisotropic voxels (a Fiji z spacing unlike x-y) refused
    if given is None:
        return None if stored is None else float(stored)
    given = float(given)
    if not (math.isfinite(given) and given > 0):
        raise error(f"{path}: --voxel-size-nm must be a positive number, got {given}")
    if stored is not None and not math.isclose(float(stored), given, rel_tol=VOXEL_RTOL):
        raise error(f"{path}: the file states a voxel size of {float(stored):g} nm but --voxel-size-nm says "
                    f"{given:g} nm")
    return given


def _check_voxel(meta, voxel_size_nm, model_lq, in_path, model_dir, notes):
    voxel_size_nm = stated_voxel_size(meta, voxel_size_nm, in_path)
    if voxel_size_nm is None:
        raise EnhanceInputError(f"{in_path}: the file carries no voxel size; state it with --voxel-size-nm "
                                f"(the model was trained on {_nm(model_lq['voxel_size_nm'])} LQ voxels)")
    trained = model_lq.get("voxel_size_nm")
    if trained is None:
        notes.append(f"{model_dir}: the LQ voxel size of the training scan is not recorded; "
                     f"{voxel_size_nm:g} nm accepted unchecked")
    elif not math.isclose(voxel_size_nm, trained, rel_tol=VOXEL_RTOL):
        raise EnhanceInputError(f"{in_path}: voxel size {voxel_size_nm:g} nm, but the model {model_dir} was trained "
                                f"on {trained:g} nm LQ voxels ({model_lq['source']}); resample the scan first")
    return voxel_size_nm


def model_domain_record(model_dir, pairs_dir=None):
    """The domain record a scan is scored against, and where it comes from.

    In order: the model folder's ``domain.json`` (written at training time);
    else one computed from ``pairs_dir`` when given (e.g. the run's own pairs
    for a published network); else from the pairs folder the model was
    trained on (``config["pairs_dir"]``) when it is still there *and* its
    ``pairs.npz`` has the SHA-256 the model recorded. A published network
    carries its ``domain.json`` in its archive (:data:`indi4d.pretrained.ARCHIVED`);
    one packed before it did, whose pairs are elsewhere, has none: then the
    check is skipped, saying so. A record computed from
    pairs is in the model's LQ normalisation (:func:`indi4d.domain.record_from_pairs`).

    Returns
    -------
    record : dict or None
    source : str
        Where the record comes from, or why there is none.

    Raises
    ------
    indi4d.model_folder.ModelFolderError
        ``domain.json`` is there but damaged.
    """
    from ..domain import record_from_pairs
    from ..files import file_sha256
    from ..model_folder import model_path, read_config, read_domain, read_normalisation
    from ..core.pairs import pairs_file

    record = read_domain(model_dir)
    if record is not None:
        return record, str(model_path(model_dir, "domain"))
    if pairs_dir is not None:  # in the model's LQ units, whatever the pairs' normalisation
        record = record_from_pairs(pairs_dir, lq_params=read_normalisation(model_dir)["lq"])
        return record, f"computed from {pairs_dir} (train LQ slices)"
    try:
        config = read_config(model_dir)
    except (OSError, ValueError):
        config = {}
    trained_on = config.get("pairs_dir")
    npz = pairs_file(trained_on, "pairs") if trained_on else None
    if npz is not None and npz.is_file() and config.get("pairs_sha256") == file_sha256(npz):
        return record_from_pairs(trained_on), f"computed from the training pairs {trained_on}"
    return None, (f"no domain record ({model_path(model_dir, 'domain').name}) in {model_dir} and its training pairs "
                  "are not here; check skipped")


def check_domain(volume, model_dir, lq, input_range=None, force=False, in_path="", pairs_dir=None, thresholds=None,
                 notes=None):
    """Score a scan's sampled slices against the model's domain record; refuse far scans unless ``force``.

    Parameters
    ----------
    volume : array-like (Z, Y, X) or (Y, X)
        Opened lazily: only :data:`indi4d.domain.N_SLICES` slices are read.
    model_dir : str or Path
    lq : dict
        The model's LQ normalisation.
    input_range : (float, float), optional
    force : bool
        Enhance (with a note) a scan whose score is above the refusal threshold.
    in_path : str
        For the messages.
    pairs_dir : str or Path, optional
        Compute the record from these pairs when the model folder has none.
    thresholds : (float, float), optional
        ``(warn, refuse)``; default :data:`indi4d.domain.WARN`, :data:`~indi4d.domain.REFUSE`.
    notes : list, optional
        Gets the warning, or the note that the check was skipped or forced.

    Returns
    -------
    dict
        :func:`indi4d.domain.score_scan`'s result with ``record`` (its
        source) and ``forced``; or ``{"verdict": "skipped", "reason": ...}``.

    Raises
    ------
    EnhanceInputError
        The score is at or above the refusal threshold and not ``force``:
        names the file, the score, its components and the thresholds.
    """
    from ..domain import REFUSE, WARN, score_scan

    notes = [] if notes is None else notes
    record, source = model_domain_record(model_dir, pairs_dir)
    if record is None:
        notes.append(f"domain check: {source}")
        return {"verdict": "skipped", "reason": source}
    warn, refuse = thresholds or (WARN, REFUSE)
    result = dict(score_scan(volume, record, lq, input_range=input_range, warn=warn, refuse=refuse), record=source,
                  forced=False)
    said = (f"domain score {result['score']:.2f} (grey-value distance {result['d_hist']:.2f}, noise "
            f"{result['noise_ratio']:.2f}x, edges {result['edge_ratio']:.2f}x the training scan's; warn at "
            f"{warn:.2f}, refuse at {refuse:.2f}; record: {source})")
    if result["verdict"] == "refuse" and not force:
        raise EnhanceInputError(
            f"{in_path}: {said}: this scan is too far from what the network {model_dir} was trained on for its output "
            "to be trusted; nothing was written. Retrain on a pair like this scan, or pass --force to enhance it "
            "anyway (the score is recorded in the output's metadata)")
    if result["verdict"] == "refuse":
        result["forced"] = True
        notes.append(f"domain check: {in_path}: {said}: above the refusal threshold, enhanced because of --force")
    elif result["verdict"] == "warn":
        notes.append(f"domain check: WARNING {in_path}: {said}: the output may be wrong where the scan differs")
    return result


def check_enhance_input(in_path, out_path, model_dir, steps=None, force=False, input_range=None,
                        voxel_size_nm=None, chunks=None, who="indi4d enhance", domain_pairs=None,
                        domain_thresholds=None):
    """Refuse a bad enhancement job before anything is loaded or computed.

    Checks, in order: the output (writable, a format we write, not an input
    nor inside the model folder: :func:`indi4d.safety.check_output`); the
    model folder and its normalisation; ``steps`` (1..:data:`MAX_STEPS`
    unless ``force``); the input (readable, opened lazily, 2D or 3D grey
    values: RGB or 4D refused); its dtype against the training scan's
    (uint16 unless the model says otherwise; another dtype needs
    ``input_range``); its voxel size against the model's LQ voxel size; its
    grey values (the middle slice only) against the training scan's range;
    the domain score of a few sampled slices (:func:`check_domain`).

    Parameters
    ----------
    in_path, out_path : str or Path
        As for :func:`indi4d.inference.enhance_file`.
    model_dir : str or Path
    steps : int, optional
        None = the model's chosen N (:func:`indi4d.model_folder.default_steps`).
    force : bool
        Allow ``steps`` > :data:`MAX_STEPS`, and a scan whose domain score is
        above the refusal threshold.
    input_range : (float, float), optional
        Grey values ``LO, HI`` of the input mapped linearly onto the model's
        LQ training range (and the output mapped back), for inputs of another
        dtype or scale, e.g. ``(0, 1)`` for a float scan.
    voxel_size_nm : float, optional
        The input's voxel size when the file carries none (must agree with it otherwise).
    chunks : tuple, optional
        Dask chunks to open the input with.
    domain_pairs : str or Path, optional
        A pairs folder to compute the domain record from when the model folder
        has none (:func:`model_domain_record`).
    domain_thresholds : (float, float), optional
        ``(warn, refuse)`` of the domain score.

    Returns
    -------
    EnhanceJob

    Raises
    ------
    EnhanceInputError, indi4d.safety.UnsafeOutputError, indi4d.io.VolumeError, FileNotFoundError
        Nothing was read beyond metadata, nothing was written.
    """
    from ..io import VolumeError, open_volume_lazy, volume_format
    from ..core.steps import check_steps
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
    steps = check_steps(default_steps(model_dir) if steps is None else steps, f"{who}: steps", EnhanceInputError)
    if steps > MAX_STEPS and not force:
        raise EnhanceInputError(f"{who}: {steps} InDI steps is more than {MAX_STEPS} (each step is one network "
                                "pass per slice, and quality saturates long before); pass --force to run it anyway")
    input_range = check_input_range(input_range, in_path)
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
    domain = check_domain(volume, model_dir, lq, input_range=input_range, force=force, in_path=in_path,
                          pairs_dir=domain_pairs, thresholds=domain_thresholds, notes=notes)
    return EnhanceJob(in_path=str(in_path), out_path=str(out_path), model_dir=str(model_dir), steps=int(steps),
                      volume=volume, meta=meta, voxel_size_nm=voxel, input_range=input_range, model_lq=model_lq,
                      notes=notes, domain=domain)
