"""``indi4d register``: register the upscaled LQ scan onto the HQ scan and write training pairs."""

from ..safety import check_folder_is_ours, check_output
from .common import add_parser, add_preset, announce_preset, preset_times, print_json, seed_type, who

#: Expected time of ``indi4d register`` per preset: chapter 02's measured time (book/timings.json).
REGISTER_TIMES = preset_times("02_registration", "this registration and its figures", {
    "tiny": "toy volumes, too small and noisy to register: refused with advice unless --allow-unconverged",
    "default": "the book's volumes", "paper": "the paper's sizes, for a large machine",
})


def _cmd_register(args):
    from ..runs import FILES

    check_output(args.out_dir, [args.lq, args.hq, args.meta, *(args.hq_halves or [])], kind="folder", who=who(args))
    # pairs.json (the provenance) or a refused run's report tells an earlier pairs folder;
    # pairs.npz alone is too common a name
    check_folder_is_ours(args.out_dir, [FILES["pairs"]["provenance"], FILES["pairs"]["unconverged"]], "pairs",
                         who=who(args))
    announce_preset(args, REGISTER_TIMES)
    from ..registration import register_scans

    # a non-converged registration raises RegistrationError (a RuntimeError: exit status 2)
    # unless --allow-unconverged is given
    phi = register_scans(
        args.lq, args.hq, args.out_dir, meta_path=args.meta, preset=args.preset, seed=args.seed,
        allow_unconverged=args.allow_unconverged, hq_start_vox=args.hq_start, hq_halves=args.hq_halves,
    )
    keys = ("translation_vox", "rotation_deg", "zoom", "status", "converged", "iterations",
            "residual_before", "residual_after", "error_vs_applied")
    print_json({k: phi[k] for k in keys if k in phi})


REGISTER_HELP = """\
Upscale the LQ scan x2, register it onto the HQ scan with spam, and write the registered,
normalised slice pairs (pairs.npz, phi.json, normalisation.json, pairs.json) into OUT_DIR.
With --hq-halves A B, two independent HQ reconstructions (same grid as HQ) are stored too.
LQ and HQ: TIFF (file or folder of slices), HDF5 (file.h5:/dataset) or zarr.
OUT_DIR must be new, empty, or an earlier pairs folder, and not hold an input.
"""


def add_parsers(sub):
    """Add ``register`` to the sub-command parsers."""
    p = add_parser(sub, "register", "register upscaled LQ onto HQ with spam and write training pairs",
                   REGISTER_HELP, _cmd_register)
    p.add_argument("lq", metavar="LQ", help="the low-quality scan (100 nm voxels, whole sample)")
    p.add_argument("hq", metavar="HQ", help="the high-quality scan (50 nm voxels, a part of the sample)")
    p.add_argument("out_dir", metavar="OUT_DIR", help="output pairs folder")
    p.add_argument("--meta", default=None,
                   help="meta.json of a simulation, giving the HQ region inside LQ (default: none; "
                        "then --hq-start, or a search)")
    p.add_argument("--hq-start", type=int, nargs=3, default=None, metavar=("Z", "Y", "X"),
                   help="coarse start of the HQ region inside LQ, in LQ voxels (default: from --meta)")
    p.add_argument("--hq-halves", nargs=2, default=None, metavar=("A", "B"),
                   help="two independent reconstructions of the HQ scan on HQ's grid (e.g. the even and odd "
                        "projection angles: hq_half_a.tif hq_half_b.tif of a simulation), stored as hq_a, hq_b "
                        "in pairs.npz for Noise2Noise targets (default: none)")
    p.add_argument("--allow-unconverged", action="store_true",
                   help="write the pairs even when spam did not converge (flagged in phi.json)")
    add_preset(p, REGISTER_TIMES, "the registration")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed of the train/val/test split")
