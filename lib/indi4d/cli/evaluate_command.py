"""``indi4d evaluate``: image-quality metrics of a prediction against HQ or the truth."""

from ..safety import check_output
from .common import PRESET_NAMES, add_parser, positive_number, print_json, who


def _cmd_evaluate(args):
    mask_file = None if args.mask in ("auto", "none") else args.mask
    from ..metrics import evaluate_files
    from ..metrics.evaluate_files import is_evaluation_result

    check_output(args.out, [args.pred, args.reference, args.labels, mask_file], kind="json", who=who(args),
                 earlier=is_evaluation_result)

    mask = {"auto": "auto", "none": None}.get(args.mask, args.mask)
    metrics = evaluate_files(
        args.pred, args.reference, labels=args.labels, out=args.out, mask=mask,
        pixel_size_nm=args.pixel_size_nm, preset=args.preset, fit=args.fit,
    )
    print_json(metrics)


EVALUATE_HELP = """\
Measure PRED against REFERENCE (PSNR, SSIM, sharpness, contrast; with --labels the phase
metrics) and write them as JSON to --out. Inputs: TIFF, HDF5 (file.h5:/dataset) or zarr of
one shape. --out must be a new .json name (or an earlier result of evaluate), never one of the
inputs; labels must be the phases 0..3.
"""


def add_parsers(sub):
    """Add ``evaluate`` to the sub-command parsers."""
    p = add_parser(sub, "evaluate", "metrics of a prediction against HQ or truth",
                   EVALUATE_HELP, _cmd_evaluate)
    p.add_argument("pred", metavar="PRED", help="the prediction (e.g. an enhanced scan)")
    p.add_argument("reference", metavar="REFERENCE", help="the reference: the HQ scan or the true attenuation")
    p.add_argument("--labels", default=None, help="phase labels on the reference grid (default: none)")
    p.add_argument("--out", required=True, help="output JSON file")
    p.add_argument("--mask", default="auto",
                   help="'auto' (find the reconstruction disc), 'none', or a mask volume file")
    p.add_argument("--pixel-size-nm", type=positive_number, default=None,
                   help="pixel size in nm when the files carry none (default: from the files)")
    p.add_argument("--preset", default="default", choices=PRESET_NAMES,
                   help="metric parameters (seconds with any preset)")
    p.add_argument("--fit", default="affine", choices=["affine", "none"],
                   help="least-squares grey-level fit of PRED onto the reference before PSNR/SSIM")
