"""``indi4d train`` and ``indi4d enhance``: the InDI network, trained on pairs and applied to scans."""

import argparse
import sys
from pathlib import Path

from ..model_folder import FALLBACK_STEPS, FILES, model_path, read_chosen_steps, read_config
from ..safety import check_folder_is_ours, check_output
from .common import add_parser, add_preset, announce_preset, print_json, who

#: Expected time of ``indi4d train`` per preset (chapter 04's measurements).
TRAIN_TIMES = {
    "tiny": "under a minute (a toy network)",
    "default": "about 8 min on 2 CPU cores (3000 steps)",
    "paper": "days; meant for a GPU (the paper's network and 640^2 crops)",
}


def _positive_int(text):
    """An argparse type: an integer >= 1, with a plain message otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def _is_model_folder(folder):
    """True when ``folder`` holds a network, checkpoints, or a training ``config.json`` (with a ``network``)."""
    if model_path(folder, "model").exists() or model_path(folder, "checkpoints").is_dir():
        return True
    try:
        return "network" in read_config(folder)
    except (OSError, ValueError):
        return False


def _cmd_train(args):
    check_output(args.model_dir, [args.pairs_dir], kind="folder", who=who(args))
    check_folder_is_ours(args.model_dir, [], "model", who=who(args), recognise=_is_model_folder)
    announce_preset(args, TRAIN_TIMES)
    from ..training import train_indi

    summary = train_indi(
        args.pairs_dir, args.model_dir, preset=args.preset, epochs=args.epochs,
        max_minutes=args.max_minutes, seed=args.seed, restart=args.restart,
    )
    print_json(summary)


def _steps(args):
    """The InDI step count to use and where it comes from, in words."""
    if args.steps is not None:
        return args.steps, "--steps"
    choice = read_chosen_steps(args.model)
    if choice is None:
        return FALLBACK_STEPS, f"the model folder holds no chosen N ({FILES['steps']}); the fallback"
    return int(choice["steps"]), f"chosen by the evaluation, {model_path(args.model, 'steps')}"


def _cmd_enhance(args):
    from ..io import VolumeError, read_metadata, volume_format

    # Before anything is read or computed: the output touches no input, and names a format we write.
    check_output(args.output, [args.input, args.model], kind="volume", who=who(args))
    if volume_format(args.output) == "tiff-folder":
        raise VolumeError(f"{args.output}: name the output .tif, .h5 (file.h5:/dataset) or .zarr")
    read_metadata(args.input)  # a missing or unreadable input is named before the network loads
    if not Path(args.model).is_dir():
        raise FileNotFoundError(f"{args.model}: no such model folder (made by indi4d train)")
    steps, source = _steps(args)
    print(f"indi4d enhance: {args.input} -> {args.output}, {steps} InDI steps ({source})", file=sys.stderr)
    from ..inference import enhance_file

    enhance_file(args.input, args.output, model_dir=args.model, steps=steps, seed=args.seed)
    print(args.output)


TRAIN_HELP = """\
Train InDI on a pairs folder (indi4d register) and write a model folder. An unfinished run
with the same parameters is resumed from its last intact checkpoint; a finished one is left
as it is; a run with other parameters or pairs is refused unless --restart.
MODEL_DIR must be new, empty or a model folder, and not the pairs folder.
"""

ENHANCE_HELP = """\
Enhance a 2D or 3D low-quality scan with a trained InDI model. The output has half the
input's voxel size and the input's dtype.
Reads TIFF (a multi-page file or a folder of slices), HDF5 (file.h5:/dataset) and zarr
(store.zarr); writes TIFF, HDF5 or zarr, the format following OUTPUT's suffix
(e.g. out.tif, out.h5:/entry/data, out.zarr). The output is written atomically and may not
be the input, any dataset of an input HDF5 file, or inside the model folder.
"""


def add_parsers(sub):
    """Add ``train`` and ``enhance`` to the sub-command parsers."""
    p = add_parser(sub, "train", "train the InDI network on registered pairs",
                   TRAIN_HELP, _cmd_train)
    p.add_argument("pairs_dir", metavar="PAIRS_DIR", help="pairs folder made by indi4d register")
    p.add_argument("model_dir", metavar="MODEL_DIR", help="output model folder")
    add_preset(p, TRAIN_TIMES, "the network and the training")
    p.add_argument("--epochs", type=_positive_int, default=None, metavar="E",
                   help="number of epochs (default: the preset's)")
    p.add_argument("--max-minutes", type=float, default=None, metavar="M",
                   help="wall-time safeguard: stop cleanly after this many minutes, recorded in the "
                        "model folder (default: the preset's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights, batches and noise")
    p.add_argument("--restart", action="store_true",
                   help="discard a run with other parameters or other pairs in MODEL_DIR and start afresh")

    p = add_parser(sub, "enhance", "enhance an LQ scan with a trained InDI model",
                   ENHANCE_HELP, _cmd_enhance)
    p.add_argument("input", metavar="INPUT", help="the LQ scan: scan.tif, slices/, scan.h5:/dataset or scan.zarr")
    p.add_argument("output", metavar="OUTPUT", help="the enhanced scan: out.tif, out.h5:/dataset or out.zarr")
    p.add_argument("--model", required=True, metavar="MODEL_DIR", help="model folder made by indi4d train")
    p.add_argument("--steps", type=_positive_int, default=None, metavar="N",
                   help="InDI steps N (default: the N chosen by the evaluation, stored in "
                        f"MODEL_DIR/{FILES['steps']}; {FALLBACK_STEPS} when the model folder holds none)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler's noise")
