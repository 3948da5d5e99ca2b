"""``indi4d train`` and ``indi4d enhance``: the InDI network, trained on pairs and applied to scans."""

import argparse
import sys

from ..book.timings import cpu_count as available_cores  # the one count of the cores this process may use
from ..core.steps import check_steps
from ..model_folder import FALLBACK_STEPS, FILES, model_path, read_config, resolve_steps
from ..safety import check_folder_is_ours, check_output
from .common import add_parser, add_preset, announce_preset, positive_number, preset_times, print_json, seed_type, who

def train_times():
    """Expected time of ``indi4d train`` per preset, every number measured, none typed.

    ``default`` is the reference recipe: its steps and time are the reference
    network's own training record (shipped with the package, read without
    TensorFlow); ``quick`` is estimated from the same record's seconds a step
    (same network and crops); ``tiny`` and ``paper`` come from chapter 04's
    times (``book/timings.json``).
    """
    from ..book.timings import duration
    from ..model_folder import run_seconds
    from ..pretrained import REFERENCE, archived_json
    from ..training.recipes import preset_steps

    times = preset_times("04_training", "this training, then the ablation's", {
        "tiny": "a toy network", "default": "the book's network",
        "paper": "the paper's network and crops, meant for a GPU"})
    record = archived_json(REFERENCE["indi"], "summary.json") or {}
    seconds = run_seconds(record, archived_json(REFERENCE["indi"], "history.json"))  # all calls, resumes included
    quick = f"today's short run of the book's network, {preset_steps('quick')} steps"
    if seconds and record.get("global_step"):
        per_step = seconds / record["global_step"]
        times["default"] = (f"the reference recipe, {record['global_step']} steps: the reference network "
                            f"({REFERENCE['indi']}) took {duration(seconds)} on the machine that trained "
                            f"it ({per_step:.2f} s a step)")
        quick += f": about {duration(per_step * preset_steps('quick'))} at that machine's speed"
    return {"tiny": times["tiny"], "quick": quick, **{k: v for k, v in times.items() if k != "tiny"}}


TRAIN_TIMES = train_times()


def _positive_int(text):
    """An argparse type: an integer >= 1 (:func:`~indi4d.core.steps.check_steps`), with a plain message otherwise."""
    try:
        value = int(text)
    except ValueError:
        value = text
    return check_steps(value, "", argparse.ArgumentTypeError)


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


def _capped_workers(args):
    """``--workers``, capped at the available cores with a warning (a running ``--scheduler`` is not capped).

    More local worker processes than cores each load the network and fight
    for the cores: more memory and slower, never faster.
    """
    cores = available_cores()
    if args.scheduler or args.workers <= cores:
        return args.workers
    print(f"indi4d enhance: warning: --workers {args.workers} is more than the {cores} CPU cores available here; "
          f"using {cores} (each worker loads the network and they would share the cores)", file=sys.stderr)
    return cores


def _cmd_enhance(args):
    from ..inference.checks import check_enhance_input

    # Before anything is computed: output, model, steps, input dtype/shape/voxel size (metadata only).
    job = check_enhance_input(args.input, args.output, args.model, steps=args.steps, force=args.force,
                              input_range=args.input_range, voxel_size_nm=args.voxel_size_nm, who=who(args))
    steps, source = resolve_steps(args.model, args.steps)
    workers = _capped_workers(args)
    for note in job.notes:
        print(f"indi4d enhance: note: {note}", file=sys.stderr)
    if job.domain.get("verdict") == "in domain":
        print(f"indi4d enhance: domain check: score {job.domain['score']:.2f}, below the warning level "
              f"{job.domain['warn']:.2f} ({job.domain['record']})", file=sys.stderr)
    from ..evaluation.sanity import output_sanity, sanity_line
    from ..inference.slabs import ModelRef

    # the sanity check enhances one slice per slab exactly as the chunks will (same function, same seeds)
    sanity = output_sanity(ModelRef(args.model).get(), job.volume, steps, seed=args.seed,
                           samples=args.sanity_samples, input_range=job.input_range)
    flag = " WARNING" if sanity["verdict"] == "warn" else ""
    print(f"indi4d enhance: sanity check of one output slice per z-slab{flag}: {sanity_line(sanity)}", file=sys.stderr)
    where = (f"the dask scheduler at {args.scheduler}" if args.scheduler else
             f"a LocalCluster of {workers} worker processes" if workers > 1 else "this process")
    print(f"indi4d enhance: {args.input} -> {args.output}, {steps} InDI steps ({source}); "
          f"enhancing slices of a {tuple(job.volume.shape)} {job.volume.dtype} volume on {where}", file=sys.stderr)
    from ..inference.chunked import enhance_chunked

    enhance_chunked(args.input, args.output, model_dir=args.model, steps=steps, seed=args.seed,
                    input_range=args.input_range, voxel_size_nm=args.voxel_size_nm, force=args.force,
                    workers=workers, scheduler=args.scheduler, chunk_slices=args.chunk_slices,
                    progress=not args.no_progress, job=job, record={"sanity": sanity})
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
The volume is enhanced in z-slabs, each read from the input and written to its own region of
the output (memory bounded by the slab size), with a progress bar per slab (voxels per second,
time left): in this process by default, on a LocalCluster of N worker processes each pinned to
its share of the cores with --workers N (at most the cores available), or on a running cluster
with --scheduler ADDRESS (e.g. dask-jobqueue's SLURMCluster(...).scheduler_address; the input,
the output's folder and the model on a file system every worker sees). The output is the same
whatever the workers.
Checked before any computation: the input is 2D/3D grey values of the training dtype
(uint16; other dtypes need --input-range LO HI) on the training scan's grey scale (the middle
slice is read; another scale needs --input-range too), its voxel size equals the model's LQ
voxel size (--voxel-size-nm when the file has none), and --steps is at most 100 (unless --force).
Domain check: a few sampled slices are scored against the statistics of the training scan
(grey-value histogram, noise, edges; MODEL_DIR/domain.json, or computed from the training pairs
when they are still there; skipped with a note otherwise). Above the warning level enhance
warns; above the refusal level it stops with exit status 2 unless --force. A sanity check
then enhances one slice per z-slab: output vs input contrast and the spread of a few
stochastic samples, warned about when off. Both go into the output's metadata.
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
    p.add_argument("--max-minutes", type=positive_number, default=None, metavar="M",
                   help="wall-time safeguard: stop cleanly after this many minutes, recorded in the "
                        "model folder (default: the preset's)")
    p.add_argument("--seed", type=seed_type, default=0, help="seed of the weights, batches and noise")
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
    p.add_argument("--seed", type=seed_type, default=0, help="seed of the sampler's noise")
    p.add_argument("--input-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                   help="map the input's grey values LO..HI onto the model's LQ training range (and the output "
                        "back): needed for any dtype other than the training scan's (uint16), or for grey values on "
                        "another scale")
    p.add_argument("--voxel-size-nm", type=positive_number, default=None, metavar="NM",
                   help="the input's voxel size, when the file carries none (default: the file's)")
    p.add_argument("--force", action="store_true",
                   help="allow --steps above 100, and a scan above the domain check's refusal level")
    p.add_argument("--sanity-samples", type=int, default=3, metavar="K",
                   help="stochastic samples per slab in the sanity check (0: contrast only)")
    p.add_argument("--workers", type=_positive_int, default=1, metavar="N",
                   help="1 = this process; N > 1 = a LocalCluster of N worker processes, each on its share of "
                        "the cores (capped at the cores available, with a warning)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (e.g. tcp://host:8786); overrides --workers")
    p.add_argument("--chunk-slices", type=_positive_int, default=None, metavar="K",
                   help="LQ z-slices per slab, the unit of work and of progress (default: "
                        "indi4d.inference.slabs.CHUNK_VOXELS LQ voxels a slab, seconds of work on one core)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
