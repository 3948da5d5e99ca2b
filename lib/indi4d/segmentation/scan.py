"""A user's scan segmented from scribbles (``indi4d segment``) and described (``indi4d describe``).

The computation after the checks of :mod:`indi4d.segmentation.checks`.

:func:`segment_scan` takes the job :func:`indi4d.segmentation.checks.check_segment_input`
returned: grey values onto the networks' scale (:func:`network_scale`), then
a random forest learns the scribbled slice and labels every slice, or an
attention residual U-Net is trained on the forest's labels of that slice (or
reused from its model folder, :func:`load_segmenter`) and labels every slice.
"""

import sys
from pathlib import Path

import numpy as np

from ..phases import PHASE_NAMES
from .checks import SegmentInputError

#: Grey values between these percentiles of the volume are mapped onto [-1, 1] unless an input range is given.
PERCENTILES = (0.5, 99.5)


def network_scale(volume, input_range=None):
    """Grey values -> [-1, 1] by ``input_range`` (LO, HI), else by the volume's :data:`PERCENTILES`.

    Returns
    -------
    image : ndarray, float32
    grey_range : (float, float)
        The grey values mapped onto -1 and 1.
    """
    a = np.asarray(volume, np.float32)
    lo, hi = (float(v) for v in (input_range or np.percentile(a, PERCENTILES)))
    if not hi > lo:
        raise SegmentInputError(f"the volume is flat (grey range {lo:g}..{hi:g}): nothing to segment")
    return (2.0 * (a - lo) / (hi - lo) - 1.0).astype(np.float32), (lo, hi)


def load_segmenter(model_dir):
    """The trained network of a segmentation model folder (its ``model.keras``)."""
    import keras

    from ..model_folder import model_path

    return keras.saving.load_model(model_path(model_dir, "model"))


def segment_scan(job, volume_path, scribbles_path=None, model_dir=None, input_range=None, preset="default", seed=0):
    """Segment a checked scan; return the phase labels (uint8, the volume's shape) and a report.

    Parameters
    ----------
    job : dict
        :func:`~indi4d.segmentation.checks.check_segment_input` of the same arguments.
    volume_path, scribbles_path, model_dir : str or Path
        As given to the check (recorded in the report and the network's provenance).
    input_range : (float, float), optional
        Grey values mapped onto [-1, 1] (default: :data:`PERCENTILES` of the volume).
    preset : str
        Size of the U-Net and of its training (:data:`indi4d.segmentation.TRAIN_PRESETS`).
    seed : int
        Seed of the forest, the network's weights and its batches.

    Returns
    -------
    labels : ndarray, uint8
    report : dict
        ``output``-free summary: input, slice, grey range, voxel size, method, phase fractions.
    """
    from ..files import file_sha256
    from .scribbles import fit_forest, predict_forest
    from .train import segment, train_segmenter

    image, grey_range = network_scale(job["volume"], input_range)
    stack = image[None] if image.ndim == 2 else image
    z = job["z"]
    report = {"input": str(volume_path), "slice": z, "grey_range": grey_range, "voxel_size_nm": job["voxel_size_nm"]}
    forest = network = None
    if job["finished"]:
        print(f"indi4d segment: reusing the network in {model_dir}", file=sys.stderr)
        network = load_segmenter(model_dir)
        report["method"] = f"U-Net of {model_dir} (reused)"
    else:
        forest = fit_forest(stack[z], job["scribbles"], seed=seed)
        report["scribbles"] = str(scribbles_path)
        if model_dir is None:
            report["method"] = "random forest on every slice"
        else:
            provenance = {"input_sha256": file_sha256(volume_path) if Path(volume_path).is_file() else None,
                          "scribbles_sha256": file_sha256(scribbles_path), "slice": z, "grey_range": grey_range}
            print(f"indi4d segment: training the U-Net on slice {z} into {model_dir} (preset {preset})",
                  file=sys.stderr)
            network, _ = train_segmenter(stack[z], predict_forest(forest, stack[z]), model_dir, preset=preset,
                                         seed=seed, provenance=provenance)
            report["method"] = f"U-Net trained on slice {z} in {model_dir}"
    out = np.stack([predict_forest(forest, s) for s in stack]) if network is None else segment(network, stack)
    out = (out[0] if image.ndim == 2 else out).astype(np.uint8)
    counts = np.bincount(out.ravel(), minlength=4)
    report["phase_fractions"] = {n: float(c) / out.size for n, c in zip(PHASE_NAMES, counts)}
    return out, report


def describe_labels(volume, voxel_size_nm, name):
    """:func:`~indi4d.segmentation.describe` of a checked label volume, with its ``input`` recorded.

    Raises
    ------
    SegmentInputError
        The labels are not phases of :mod:`indi4d.phases` (the message names ``name``).
    """
    from .descriptors import check_labels, describe

    try:
        labels = check_labels(np.asarray(volume), who=name)
    except ValueError as exc:
        raise SegmentInputError(str(exc)) from None
    result = describe(labels, voxel_size_nm)
    result["input"] = name
    return result
