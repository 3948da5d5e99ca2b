"""The ``indi4d`` command line.

Sub-commands (a contract other work relies on)::

    indi4d simulate OUT_DIR --preset tiny|default --seed N
    indi4d register LQ HQ OUT_DIR [--meta meta.json]
    indi4d train PAIRS_DIR MODEL_DIR --preset tiny|default [--epochs E] [--max-minutes M]
    indi4d enhance IN OUT --model MODEL_DIR --steps N
    indi4d evaluate PRED TRUTH_OR_HQ [--labels LABELS] --out metrics.json

Heavy imports (TensorFlow, spam) happen inside each command so ``indi4d --help``
stays fast.
"""

import argparse
import json
import sys

from . import __version__


def _cmd_simulate(args):
    from .simulate import simulate_beamline

    meta = simulate_beamline(args.out_dir, preset=args.preset, seed=args.seed)
    print(json.dumps({"out_dir": str(args.out_dir), "files": sorted(meta.get("files", {}))}, indent=2))


def _cmd_register(args):
    from .registration import register_scans

    # a non-converged registration raises RegistrationError (a RuntimeError: exit status 2)
    # unless --allow-unconverged is given
    phi = register_scans(
        args.lq, args.hq, args.out_dir, meta_path=args.meta, preset=args.preset, seed=args.seed,
        allow_unconverged=args.allow_unconverged, hq_start_vox=args.hq_start,
    )
    keys = ("translation_vox", "rotation_deg", "zoom", "status", "converged", "iterations",
            "residual_before", "residual_after", "error_vs_applied")
    print(json.dumps({k: phi[k] for k in keys if k in phi}, indent=2))


def _cmd_train(args):
    from .training import train_indi

    summary = train_indi(
        args.pairs_dir, args.model_dir, preset=args.preset, epochs=args.epochs,
        max_minutes=args.max_minutes, seed=args.seed,
    )
    print(json.dumps(summary, indent=2, default=str))


def _cmd_enhance(args):
    from .inference import enhance_file

    enhance_file(args.input, args.output, model_dir=args.model, steps=args.steps, seed=args.seed)
    print(args.output)


def _cmd_evaluate(args):
    from .metrics import evaluate_files

    if args.mask in ("auto", "none"):
        mask = None if args.mask == "none" else "auto"
    else:
        from .io import read_volume

        mask = read_volume(args.mask)[0] != 0
    metrics = evaluate_files(
        args.pred, args.reference, labels=args.labels, out=args.out, mask=mask,
        pixel_size_nm=args.pixel_size_nm, preset=args.preset, fit=args.fit,
    )
    print(json.dumps(metrics, indent=2, default=float))


def build_parser():
    """Return the argparse parser of the ``indi4d`` command."""
    parser = argparse.ArgumentParser(prog="indi4d", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"indi4d {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="simulate LQ/HQ scans and an in situ series with known truth")
    p.add_argument("out_dir")
    p.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("register", help="register upscaled LQ onto HQ with spam and write training pairs")
    p.add_argument("lq")
    p.add_argument("hq")
    p.add_argument("out_dir")
    p.add_argument("--meta", default=None, help="meta.json giving the HQ region inside LQ")
    p.add_argument("--hq-start", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"),
                   help="coarse start of the HQ region inside LQ, in LQ voxels (instead of --meta)")
    p.add_argument("--allow-unconverged", action="store_true",
                   help="write the pairs even when spam did not converge (flagged in phi.json)")
    p.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_register)

    p = sub.add_parser("train", help="train the InDI network on registered pairs")
    p.add_argument("pairs_dir")
    p.add_argument("model_dir")
    p.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--max-minutes", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("enhance", help="enhance a 2D or 3D LQ TIFF with a trained InDI model")
    p.add_argument("input")
    p.add_argument("output")
    p.add_argument("--model", required=True)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_enhance)

    p = sub.add_parser("evaluate", help="metrics of a prediction against HQ or truth")
    p.add_argument("pred")
    p.add_argument("reference")
    p.add_argument("--labels", default=None, help="phase labels on the reference grid")
    p.add_argument("--out", required=True)
    p.add_argument("--mask", default="auto",
                   help="'auto' (find the reconstruction disc), 'none', or a mask volume file")
    p.add_argument("--pixel-size-nm", type=float, default=None, help="when the files carry no voxel size")
    p.add_argument("--preset", default="default", choices=["tiny", "default", "paper"])
    p.add_argument("--fit", default="affine", choices=["affine", "none"],
                   help="least-squares grey-level fit of PRED onto the reference before PSNR/SSIM")
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv=None):
    """Entry point of the ``indi4d`` console script."""
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"indi4d {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
