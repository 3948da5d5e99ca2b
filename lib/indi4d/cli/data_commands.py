"""``indi4d simulate`` and ``indi4d fetch``: data, simulated or published, and the data cache."""

import sys
from pathlib import Path

from ..safety import check_folder_is_ours, check_output
from .common import add_parser, add_preset, announce_preset, preset_times, print_json, seed_type, who

#: Expected time of ``indi4d simulate`` per preset: chapter 01's measured time (book/timings.json).
SIMULATE_TIMES = preset_times("01_data_retrieval", "this simulation and its figures", {
    "tiny": "toy volumes for trying the commands",
    "workshop": "a smaller sample of the default beamline, for a class on laptops", "default": "the book's volumes",
    "paper": "the paper's sizes, for a large machine",
})

CACHE_NOTE = ("The data cache is $INDI4D_DATA_DIR when set, otherwise the user cache folder "
              "(e.g. ~/.cache/indi4d).")


def _is_simulation(folder, meta_name):
    """True when ``folder`` holds the ``meta.json`` of a simulation (a ``files`` map and a ``preset``)."""
    from ..files import read_json

    try:
        meta = read_json(Path(folder) / meta_name, "the simulation's metadata")
    except (OSError, ValueError):
        return False
    return isinstance(meta, dict) and isinstance(meta.get("files"), dict) and "preset" in meta


def _cmd_simulate(args):
    from ..data import data_cache_dir
    from ..runs import file_name

    meta_name = file_name("data", "meta")
    # With --cached the cache is an input: the output may not lie inside it, nor hold it.
    check_output(args.out_dir, [data_cache_dir()] if args.cached else [], kind="folder", who=who(args))
    check_folder_is_ours(args.out_dir, [meta_name], "simulation", who=who(args),
                         recognise=lambda folder: _is_simulation(folder, meta_name))
    if args.cached:
        _simulate_cached(args, meta_name)
        return
    announce_preset(args, SIMULATE_TIMES)
    from ..data.datasets import dataset_names
    from ..files import atomic_dir
    from ..simulate import simulate_beamline

    # staged in a temporary folder and renamed: a killed run leaves no complete-looking files under OUT_DIR
    with atomic_dir(args.out_dir, owned=dataset_names(args.out_dir), what="simulation folder") as staging:
        meta = simulate_beamline(staging, preset=args.preset, seed=args.seed)
    print_json({"out_dir": str(args.out_dir), "files": sorted(meta.get("files", {}))})


def _simulate_cached(args, meta_name):
    """Copy the cached data set of (preset, seed) into OUT_DIR, simulating it first when missing."""
    from ..data import materialise, simulated_dataset, simulated_dataset_dir
    from ..data.datasets import dataset_names
    from ..files import check_ours, read_json

    cached = simulated_dataset_dir(args.preset, args.seed)
    out = Path(args.out_dir)
    # materialise replaces the folder as a whole: only an earlier data set may be there (dot-files count)
    check_ours(out, dataset_names(out), "simulation folder")
    if not cached.exists():
        announce_preset(args, SIMULATE_TIMES)
    print(f"indi4d simulate: data set from the cache {cached}", file=sys.stderr)
    source = simulated_dataset(preset=args.preset, seed=args.seed)
    materialise(source, out)
    meta = read_json(out / meta_name, "the simulation's metadata")
    print_json({"out_dir": str(out), "cache": str(source), "files": sorted(meta.get("files", {}))})


def _cmd_fetch(args):
    from ..data import REGISTRY_FILE, data_cache_dir, load_registry, registry_fetch

    if not args.names:
        registry = args.registry or REGISTRY_FILE
        print_json({"cache": str(data_cache_dir()), "registry": str(registry),
                    "entries": sorted(load_registry(args.registry))})
        return
    for name in args.names:
        print(registry_fetch(name, registry=args.registry, progressbar=sys.stderr.isatty()))


SIMULATE_HELP = """\
Simulate the beamline: LQ (100 nm) and HQ (50 nm) scans of one sample, an in situ series of a
second one, the true phase labels and attenuation, and meta.json, into OUT_DIR.
OUT_DIR must be new, empty, or an earlier simulation's folder.

{cache}
""".format(cache=CACHE_NOTE)

FETCH_HELP = """\
Download registry entries (the registry.txt shipped with the package) into the data cache,
check their sha256, and print where they are. Without NAME: list the registry's entries and the cache folder.

{cache}
""".format(cache=CACHE_NOTE)


def add_parsers(sub):
    """Add ``simulate`` and ``fetch`` to the sub-command parsers."""
    p = add_parser(sub, "simulate", "simulate LQ/HQ scans and an in situ series with known truth",
                   SIMULATE_HELP, _cmd_simulate)
    p.add_argument("out_dir", metavar="OUT_DIR", help="output folder")
    add_preset(p, SIMULATE_TIMES, "the simulated volumes")
    p.add_argument("--seed", type=seed_type, default=0, help="random seed: the same preset and seed give the same files")
    p.add_argument("--cached", action="store_true",
                   help="take the data set from the data cache ($INDI4D_DATA_DIR), simulating and "
                        "caching it only when it is not there, and copy it into OUT_DIR")

    p = add_parser(sub, "fetch", "download published volumes of the data registry into the data cache",
                   FETCH_HELP, _cmd_fetch)
    p.add_argument("names", nargs="*", metavar="NAME", help="registry entry to fetch")
    p.add_argument("--registry", default=None,
                   help="another registry file in the same format (default: the package's registry.txt)")
