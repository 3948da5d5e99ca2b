"""``indi4d segment`` and ``indi4d describe``: phase labels from scribbles, and the descriptors of a label volume.

Both check everything they can before any computation (the output is
writable, of a known format and no input; the inputs are readable, of the
right shape and dtype; the scribbles fit the slice; the voxel size is known)
and name the file in every error. The logic lives in
:mod:`indi4d.segmentation`; here are only the checks and the plumbing.
"""

import math
import sys
from pathlib import Path

import numpy as np

from ..safety import check_output, split_spec
from .common import PRESET_NAMES, positive_number, print_json, seed_type, who

#: Grey values between these percentiles of the volume are mapped onto [-1, 1] unless --input-range is given.
PERCENTILES = (0.5, 99.5)


class SegmentInputError(ValueError):
    """A segment/describe job refused before any computation (the message names the file)."""


def _voxel_size(meta, given, path):
    from ..io import isotropic_voxel_size

    stored = isotropic_voxel_size(meta, path)
    if given is not None:
        given = float(given)
        if not (math.isfinite(given) and given > 0):
            raise SegmentInputError(f"{path}: --voxel-size-nm must be a positive number, got {given}")
        if stored is not None and not math.isclose(float(stored), given, rel_tol=0.01):
            raise SegmentInputError(f"{path}: the file states a voxel size of {float(stored):g} nm but "
                                    f"--voxel-size-nm says {given:g} nm")
        return given
    if stored is None:
        raise SegmentInputError(f"{path}: the file carries no voxel size; state it with --voxel-size-nm")
    return float(stored)


def _open(path, ndims, what):
    """The volume at ``path`` opened lazily (nothing read), its metadata; shape checked."""
    from ..io import open_volume_lazy

    if not split_spec(path)[0].exists():
        raise FileNotFoundError(f"{path}: no such {what}")
    volume, meta = open_volume_lazy(path)
    if volume.ndim not in ndims:
        raise SegmentInputError(f"{path}: shape {tuple(volume.shape)} is not a "
                                + " or ".join(f"{n}D" for n in ndims) + f" {what}")
    if volume.ndim == 3 and volume.shape[-1] in (3, 4) and 2 in ndims:
        raise SegmentInputError(f"{path}: shape {tuple(volume.shape)} looks like RGB(A) colour channels; "
                                "convert to one grey channel first")
    return volume, meta


def _check_finite(volume, path):
    """Refuse NaN or infinite grey values (a NaN slice would be labelled all pore); reads a float volume once."""
    if volume.dtype.kind != "f":
        return
    bad = (~np.isfinite(volume)).reshape(volume.shape[0] if volume.ndim == 3 else 1, -1).sum(axis=1).compute()
    if bad.any():
        where = f" (first in slice z = {int(np.argmax(bad > 0))})" if volume.ndim == 3 else ""
        raise SegmentInputError(f"{path}: {int(bad.sum())} NaN or infinite grey values{where}; fill or mask them "
                                "before segmenting")


def check_segment_job(args):
    """Refuse a bad ``indi4d segment`` job before anything is computed; return what the computation needs."""
    from ..io import VolumeError, volume_format
    from ..model_folder import SEGMENTATION_TASK, model_path, model_task
    from ..segmentation import read_scribbles

    check_output(args.output, [args.volume, args.scribbles, args.model], kind="volume", who=who(args))
    if volume_format(args.output) == "tiff-folder":
        raise VolumeError(f"{args.output}: name the output .tif, .h5 (file.h5:/dataset) or .zarr")
    if args.model is not None and Path(args.model).exists() and not Path(args.model).is_dir():
        raise SegmentInputError(f"{args.model}: --model must be a folder (a segmentation model folder)")
    if args.model is not None and model_path(args.model, "config").exists():
        task = model_task(args.model)  # a damaged config.json is named here, before anything is computed
        if task != SEGMENTATION_TASK:
            raise SegmentInputError(f"{args.model}: an {task} model folder (indi4d train), not a segmentation one; "
                                    "give --model a new folder or one made by indi4d segment")
    finished = args.model is not None and model_path(args.model, "model").exists()
    if args.scribbles is None and not finished:
        raise SegmentInputError(f"{who(args)}: --scribbles FILE is needed (only a --model folder holding a trained "
                                "network can segment without them)")
    scribbles = read_scribbles(args.scribbles) if args.scribbles is not None else None
    volume, meta = _open(args.volume, (2, 3), "grey-value volume")
    if volume.dtype.kind not in "uif":
        raise SegmentInputError(f"{args.volume}: dtype {volume.dtype} is not grey values (integers or floats)")
    voxel = _voxel_size(meta, args.voxel_size_nm, args.volume)
    slice_shape = tuple(volume.shape[-2:])
    z = 0
    if volume.ndim == 3:
        source_z = (scribbles or {}).get("source", {}).get("z")
        z = args.slice if args.slice is not None else source_z if source_z is not None else volume.shape[0] // 2
        if not 0 <= int(z) < volume.shape[0]:
            raise SegmentInputError(f"{args.volume}: slice {z} is outside the volume's {volume.shape[0]} slices")
    if scribbles is not None and tuple(scribbles["shape"]) != slice_shape:
        raise SegmentInputError(f"{args.scribbles}: drawn on a {tuple(scribbles['shape'])} slice, but the slices of "
                                f"{args.volume} are {slice_shape}")
    if args.input_range is not None:
        lo, hi = (float(v) for v in args.input_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise SegmentInputError(f"{args.volume}: --input-range needs two finite numbers LO < HI, "
                                    f"got {args.input_range}")
    _check_finite(volume, args.volume)
    return {"volume": volume, "voxel_size_nm": voxel, "z": int(z), "scribbles": scribbles, "finished": finished}


def network_scale(volume, input_range=None):
    """Grey values -> [-1, 1] by ``input_range`` (LO, HI), else by the volume's 0.5 and 99.5 percentiles."""
    a = np.asarray(volume, np.float32)
    lo, hi = (float(v) for v in (input_range or np.percentile(a, PERCENTILES)))
    if not hi > lo:
        raise SegmentInputError(f"the volume is flat (grey range {lo:g}..{hi:g}): nothing to segment")
    return (2.0 * (a - lo) / (hi - lo) - 1.0).astype(np.float32), (lo, hi)


def _cmd_segment(args):
    job = check_segment_job(args)
    import keras

    from ..files import file_sha256
    from ..io import write_volume
    from ..segmentation import fit_forest, predict_forest, segment, train_segmenter

    image, grey_range = network_scale(job["volume"], args.input_range)
    stack = image[None] if image.ndim == 2 else image
    z = job["z"]
    report = {"output": str(args.output), "input": str(args.volume), "slice": z, "grey_range": grey_range,
              "voxel_size_nm": job["voxel_size_nm"]}
    if job["finished"]:
        print(f"indi4d segment: reusing the network in {args.model}", file=sys.stderr)
        network = keras.saving.load_model(Path(args.model) / "model.keras")
        report["method"] = f"U-Net of {args.model} (reused)"
    else:
        forest = fit_forest(stack[z], job["scribbles"], seed=args.seed)
        labels = predict_forest(forest, stack[z])
        report["scribbles"] = str(args.scribbles)
        if args.model is None:
            report["method"] = "random forest on every slice"
            network = None
        else:
            provenance = {"input_sha256": file_sha256(args.volume) if Path(args.volume).is_file() else None,
                          "scribbles_sha256": file_sha256(args.scribbles), "slice": z, "grey_range": grey_range}
            print(f"indi4d segment: training the U-Net on slice {z} into {args.model} (preset {args.preset})",
                  file=sys.stderr)
            network, _ = train_segmenter(stack[z], labels, args.model, preset=args.preset, seed=args.seed,
                                         provenance=provenance)
            report["method"] = f"U-Net trained on slice {z} in {args.model}"
    if network is None:
        out = np.stack([predict_forest(forest, s) for s in stack])
    else:
        out = segment(network, stack)
    out = out[0] if image.ndim == 2 else out
    write_volume(args.output, out.astype(np.uint8), voxel_size_nm=job["voxel_size_nm"])
    counts = np.bincount(out.ravel(), minlength=4)
    from ..phases import PHASE_NAMES

    report["phase_fractions"] = {n: float(c) / out.size for n, c in zip(PHASE_NAMES, counts)}
    print_json(report)


def check_describe_job(args):
    """Refuse a bad ``indi4d describe`` job before anything is computed; return the volume (lazy) and voxel size."""
    # only an earlier descriptors file may be replaced, never a user's JSON
    check_output(args.out, [args.labels], kind="json", who=who(args),
                 earlier=lambda obj: isinstance(obj, dict) and {"particle_count", "input"} <= set(obj))
    volume, meta = _open(args.labels, (3,), "label volume")
    if volume.dtype.kind not in "iu":
        raise SegmentInputError(f"{args.labels}: dtype {volume.dtype} is not integer phase labels")
    return volume, _voxel_size(meta, args.voxel_size_nm, args.labels)


def _cmd_describe(args):
    volume, voxel = check_describe_job(args)
    from ..files import write_json
    from ..segmentation import describe
    from ..segmentation.descriptors import check_labels

    try:
        labels = check_labels(np.asarray(volume), who=str(args.labels))
    except ValueError as exc:
        raise SegmentInputError(str(exc)) from None
    result = describe(labels, voxel)
    result["input"] = str(args.labels)
    write_json(args.out, result)
    print_json({k: result[k] for k in ("particle_count", "mean_diameter_um", "particle_volume_fraction", "porosity",
                                       "dense_fraction", "specific_surface_area_per_um", "crack_fraction")}
               | {"out": str(args.out)})


SEGMENT_HELP = """\
Label a grey-value volume with the phases pore (0), binder (1), particle (2), dense (3).
A random forest learns the scribbled pixels of one slice (--scribbles, a JSON file of strokes per
phase, as indi4d.segmentation.write_scribbles writes; drawn on slice --slice, by default the
file's source z, else the middle slice). Without --model the forest labels every slice; with
--model DIR an attention residual U-Net is trained on the forest's labels of that slice, saved in
DIR (resumed when interrupted) and segments every slice; a DIR that already holds a trained
network is reused without --scribbles (e.g. for the next time step of a series).
Grey values are mapped onto [-1, 1] by --input-range LO HI, else by the volume's 0.5 and 99.5
percentiles. Checked before any computation: OUT is a new volume name (.tif, .h5:/dataset,
.zarr), never an input; the scribbles fit the slice; the voxel size is known (it is copied to OUT).
"""

DESCRIBE_HELP = """\
Microstructure descriptors of a 3D phase-label volume (uint8 phases 0..3, as indi4d segment
writes): phase fractions, particle count and equivalent diameters (distance-transform
watershed), porosity, specific surface area (marching cubes), crack fraction. Lengths in µm from
the voxel size stored in the file (or --voxel-size-nm). Written as JSON to --out, never an input.
"""


def add_parsers(sub):
    """Add ``segment`` and ``describe`` to the sub-command parsers."""
    from .common import add_parser

    p = add_parser(sub, "segment", "phase labels of a volume from scribbles (random forest or U-Net)",
                   SEGMENT_HELP, _cmd_segment)
    p.add_argument("volume", metavar="VOLUME", help="grey-value volume: scan.tif, scan.h5:/dataset or scan.zarr")
    p.add_argument("output", metavar="OUT", help="the label volume to write (uint8): out.tif, out.h5:/dataset, out.zarr")
    p.add_argument("--scribbles", default=None, metavar="FILE",
                   help="scribbles JSON drawn on one slice of VOLUME (needed unless --model holds a trained network)")
    p.add_argument("--model", default=None, metavar="DIR",
                   help="segmentation model folder: trained there on the scribbled slice, or reused when trained "
                        "(default: none, the random forest labels every slice)")
    p.add_argument("--slice", type=int, default=None, metavar="Z",
                   help="index of the scribbled slice (default: the scribbles' source z, else the middle slice)")
    p.add_argument("--preset", default="default", choices=PRESET_NAMES,
                   help="size of the U-Net and of its training (tiny: seconds; default: minutes on 2 CPU cores)")
    p.add_argument("--seed", type=seed_type, default=0, help="seed of the forest, the network's weights and its batches")
    p.add_argument("--input-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="grey values mapped onto [-1, 1] (default: the volume's 0.5 and 99.5 percentiles)")
    p.add_argument("--voxel-size-nm", type=positive_number, default=None, metavar="NM",
                   help="the volume's voxel size when the file carries none (default: the file's)")

    p = add_parser(sub, "describe", "microstructure descriptors of a label volume",
                   DESCRIBE_HELP, _cmd_describe)
    p.add_argument("labels", metavar="LABELS", help="3D phase-label volume (e.g. written by indi4d segment)")
    p.add_argument("--out", required=True, metavar="FILE", help="output JSON file (descriptors.json)")
    p.add_argument("--voxel-size-nm", type=positive_number, default=None, metavar="NM",
                   help="the volume's voxel size when the file carries none (default: the file's)")
