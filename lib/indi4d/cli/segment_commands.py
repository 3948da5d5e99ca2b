"""``indi4d segment`` and ``indi4d describe``: phase labels from scribbles, and the descriptors of a label volume.

Here only the parsing and the calls: the checks (everything before any
computation, :mod:`indi4d.segmentation.checks`) and the computation
(:mod:`indi4d.segmentation.scan`, :func:`indi4d.segmentation.describe`) live in
the library.
"""

from .common import PRESET_NAMES, positive_number, print_json, seed_type, who


def _cmd_segment(args):
    from ..segmentation.checks import check_segment_input

    job = check_segment_input(args.volume, args.output, args.scribbles, args.model, args.slice, args.input_range,
                              args.voxel_size_nm, who=who(args))
    from ..io import write_volume
    from ..segmentation.scan import segment_scan

    labels, report = segment_scan(job, args.volume, args.scribbles, args.model, args.input_range, args.preset,
                                  args.seed)
    write_volume(args.output, labels, voxel_size_nm=job["voxel_size_nm"])
    print_json({"output": str(args.output), **report})


def _cmd_describe(args):
    from ..segmentation.checks import check_describe_input

    volume, voxel = check_describe_input(args.labels, args.out, args.voxel_size_nm, who=who(args))
    from ..files import write_json
    from ..segmentation.scan import describe_labels

    result = describe_labels(volume, voxel, str(args.labels))
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
