"""Publishing a run's networks as the reference networks: checked, packed, hashed and registered.

A maintainer's step, run after ``make book TRAIN=1`` has trained every network
of the default book with the reference recipe (``make publish``)::

    python -m indi4d.publish runs/default

Each network of :data:`SOURCES` is taken from its folder in the run, refused
unless it was trained there (not installed), finished its steps, and used the
``default`` preset and seed 0; it is packed by :func:`indi4d.pretrained.pack_model`
into the package's ``pretrained/`` folder, and its registry line is replaced
with the new SHA-256. Its ``summary.json`` carries the machine and the commit
that trained it (the training loop records both), so its card
(:func:`indi4d.reference.training_card`) says where its seconds were measured.
Then ``tests/test_reference_networks.py`` retrains its first steps against the card.
"""

import argparse
import sys
from pathlib import Path

from . import model_folder, pretrained
from .files import atomic_path
from .package_data import PRETRAINED_DIR, REGISTRY_FILE

#: role -> (the model folder inside a run folder, the registry name it is published as).
SOURCES = {
    "indi": ("model", pretrained.REFERENCE["indi"]),
    "indi_deconv": ("indi_deconv", pretrained.REFERENCE["indi_deconv"]),
    "cnn": ("baselines/cnn", pretrained.REFERENCE["cnn"]),
    "gan": ("baselines/gan", pretrained.REFERENCE["gan"]),
    **{f"segmentation_{m}": (f"segmentation/networks/{m}", name) for m, name in pretrained.SEGMENTATION.items()},
}


class PublishError(ValueError):
    """A run's network that must not be published (installed, unfinished, another preset or seed)."""


def check_publishable(model_dir, preset="default", seed=0):
    """Refuse a model folder that is not a finished training of ``preset`` and ``seed`` made in this run.

    Returns
    -------
    dict
        The folder's ``summary.json`` (steps, seconds, machine, commit).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "model.keras").is_file():
        raise PublishError(f"{model_dir}: no trained network (model.keras); build the book with TRAIN=1 first")
    if pretrained.installed_from(model_dir):
        raise PublishError(f"{model_dir}: installed from {pretrained.installed_from(model_dir)['name']}, not trained "
                           "in this run; build the book with TRAIN=1")
    config = model_folder.read_config(model_dir)
    summary = model_folder.read_summary(model_dir) or {}
    if config.get("task") != "segmentation" and config.get("preset") != preset:
        raise PublishError(f"{model_dir}: trained with preset {config.get('preset')!r}, not {preset!r}")
    if config.get("seed") != seed:
        raise PublishError(f"{model_dir}: trained with seed {config.get('seed')!r}, not {seed}")
    if summary and summary.get("stopped_by") != "steps":
        raise PublishError(f"{model_dir}: stopped by {summary.get('stopped_by')!r} before its last step")
    return summary


def replace_registry_lines(registry, shas, relative_dir="pretrained"):
    """Set ``<name> sha256:<hex> <relative_dir>/<name>`` for each of ``shas`` (in place; new names appended)."""
    registry = Path(registry)
    lines = registry.read_text().splitlines()
    todo = dict(shas)
    for i, line in enumerate(lines):
        name = line.split(maxsplit=1)[0] if line.strip() and not line.startswith("#") else None
        if name in todo:
            lines[i] = f"{name} sha256:{todo.pop(name)} {relative_dir}/{name}"
    lines += [f"{name} sha256:{sha} {relative_dir}/{name}" for name, sha in todo.items()]
    with atomic_path(registry) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return registry


def publish_run(run_dir, roles=None, archive_dir=PRETRAINED_DIR, registry=REGISTRY_FILE):
    """Check, pack and register a run's networks; return ``{role: {"name", "sha256", "steps", "seconds"}}``.

    Every network is checked (:func:`check_publishable`) before any archive is
    written, so a refused run changes nothing.
    """
    run_dir = Path(run_dir)
    roles = list(roles or SOURCES)
    unknown = sorted(set(roles) - set(SOURCES))
    if unknown:
        raise PublishError(f"unknown roles {unknown}; expected some of {sorted(SOURCES)}")
    summaries = {role: check_publishable(run_dir / SOURCES[role][0]) for role in roles}
    published = {}
    for role in roles:
        folder, name = SOURCES[role]
        segmenter = model_folder.read_config(run_dir / folder).get("task") == "segmentation"
        required = ("model.keras", "config.json") + (() if segmenter else ("normalisation.json",))  # U-Nets have none
        sha = pretrained.pack_model(run_dir / folder, Path(archive_dir) / name, required=required)
        published[role] = {"name": name, "sha256": sha, "steps": summaries[role].get("global_step"),
                           "seconds": model_folder.run_seconds(summaries[role],
                                                               model_folder.read_history(run_dir / folder))}
    replace_registry_lines(registry, {p["name"]: p["sha256"] for p in published.values()})
    return published


def main(argv=None):
    """``python -m indi4d.publish RUN_DIR [--roles ...]`` (``make publish``)."""
    parser = argparse.ArgumentParser(description="publish a run's networks as the reference networks")
    parser.add_argument("run_dir", help="a default-book run folder built with make book TRAIN=1")
    parser.add_argument("--roles", nargs="*", choices=sorted(SOURCES), help="default: all")
    args = parser.parse_args(argv)
    try:
        published = publish_run(args.run_dir, args.roles)
    except (PublishError, FileNotFoundError) as err:
        print(f"indi4d.publish: {err}", file=sys.stderr)
        return 2
    for role, p in published.items():
        print(f"{role}: {p['name']} sha256:{p['sha256'][:16]}… ({p['steps']} steps, {p['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
