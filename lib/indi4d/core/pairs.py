"""The ``pairs`` folder of chapter 02: registered LQ/HQ slice pairs and their provenance.

Files (names from :data:`indi4d.runs.FILES` ``["pairs"]``):

- ``pairs.npz``: ``lq`` and ``hq`` float32 (S, H, W) in [-1, 1], ``mask`` bool
  (H, W) (reconstruction disc), ``z`` int (S,) slice index in the HQ volume,
  ``split`` str (S,) in :data:`SPLITS`; optionally ``hq_a`` and ``hq_b``
  float32 (S, H, W), two independent reconstructions of the HQ scan (the
  Noise2Inverse halves, ``indi4d register --hq-halves``) on HQ's grid with
  HQ's mask and normalisation;
- ``phi.json``: the registration report (:func:`indi4d.registration.register_volumes`);
- ``normalisation.json``: ``{"lq": params, "hq": params}`` for
  :func:`indi4d.core.preprocess.normalise` / :func:`indi4d.core.preprocess.denormalise`;
- ``pairs.json``: provenance (inputs and their sha256, Φ, mask, split).

``pairs.json`` is written last, after the files of an earlier run have been
removed: a folder without it was not finished (a killed or failed run), and
:func:`load_pairs` refuses it instead of reading a mixture of two runs.

The pairs themselves are built by :func:`indi4d.registration.build_pairs`.
Nothing here imports TensorFlow, spam or the preprocessing code.
"""

import math
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .. import runs
from ..files import atomic_path, read_json, write_json

#: Names of the splits stored in ``pairs.npz``.
SPLITS = ("train", "val", "test")

#: The arrays of ``pairs.npz``.
ARRAYS = ("lq", "hq", "mask", "z", "split")

#: Optional arrays of ``pairs.npz``: the two HQ halves (written together or not at all).
HALVES = ("hq_a", "hq_b")

#: The JSON files of a pairs folder: key of ``runs.FILES["pairs"]`` -> what it holds (for messages).
_JSON = {"phi": "the registration report", "normalisation": "the grey-value normalisation",
         "provenance": "the provenance of the pairs"}


def pairs_file(pairs_dir, key):
    """Path of one file of a pairs folder; ``key`` is a key of ``runs.FILES["pairs"]`` (e.g. ``"phi"``)."""
    return Path(pairs_dir) / runs.file_name("pairs", key)


def discard_pairs(pairs_dir):
    """Remove the files of an earlier run from a pairs folder, ``pairs.json`` first.

    Only the pairs files themselves are removed, nothing else in the folder.
    Removing the completeness mark first means an interruption half-way
    leaves a folder that :func:`load_pairs` refuses.
    """
    for key in ("provenance", "pairs", "normalisation", "phi", "unconverged"):
        pairs_file(pairs_dir, key).unlink(missing_ok=True)


def write_registration_report(pairs_dir, report):
    """Write ``phi_unconverged.json``: the report of a registration refused as not converged.

    The pairs of an earlier run in the folder are left as they were (a failed
    run never deletes what a good one wrote); the report marks the folder as
    a pairs folder, so the advised rerun with ``--allow-unconverged`` is accepted.

    Returns
    -------
    Path
        The report written.
    """
    Path(pairs_dir).mkdir(parents=True, exist_ok=True)
    return write_json(pairs_file(pairs_dir, "unconverged"), report)


def _checked_arrays(lq, hq, mask, z, split, hq_a=None, hq_b=None):
    """The pairs as the dtypes ``pairs.npz`` stores, or ValueError saying what is wrong."""
    if (hq_a is None) != (hq_b is None):
        raise ValueError("save_pairs: give both HQ halves hq_a and hq_b, or neither")
    halves = {} if hq_a is None else {"hq_a": np.asarray(hq_a, np.float32), "hq_b": np.asarray(hq_b, np.float32)}
    lq, hq = np.asarray(lq, np.float32), np.asarray(hq, np.float32)
    mask, z, split = np.asarray(mask, bool), np.asarray(z, np.int64), np.asarray(split).astype("<U5")
    if lq.ndim != 3 or lq.shape != hq.shape:
        raise ValueError(f"save_pairs: lq {lq.shape} and hq {hq.shape} must be equal (S, H, W) stacks")
    if mask.shape != lq.shape[1:] or z.shape != (lq.shape[0],) or split.shape != (lq.shape[0],):
        raise ValueError("save_pairs: mask must be (H, W), z and split (S,)")
    if not set(split.tolist()) <= set(SPLITS):
        raise ValueError(f"save_pairs: split labels must be in {SPLITS}, got {sorted(set(split.tolist()))}")
    for name, a in halves.items():
        if a.shape != hq.shape:
            raise ValueError(f"save_pairs: {name} {a.shape} must have the shape of hq {hq.shape}")
    for name, a in (("lq", lq), ("hq", hq), *halves.items()):
        if not np.all(np.isfinite(a)) or a.min() < -1.0 or a.max() > 1.0:
            raise ValueError(f"save_pairs: {name} must be finite and in [-1, 1]")
    return {"lq": lq, "hq": hq, "mask": mask, "z": z, "split": split, **halves}


def save_pairs(pairs_dir, lq, hq, mask, z, split, phi, normalisation, provenance, hq_a=None, hq_b=None):
    """Write a ``pairs`` folder: ``pairs.npz``, ``phi.json``, ``normalisation.json``, ``pairs.json``.

    Every file is written atomically; the files of an earlier run are removed
    first and ``pairs.json`` is written last, so an interrupted write never
    leaves a folder that looks complete. Other files in the folder are left alone.

    Parameters
    ----------
    pairs_dir : str or Path
        Output folder (created).
    lq, hq : ndarray, float32, shape (S, H, W)
        Normalised, registered LQ (×2 upscaled) and HQ slices in [-1, 1].
    mask : ndarray, bool, shape (H, W)
        Reconstruction disc.
    z : ndarray, int, shape (S,)
        Slice index of each pair in the HQ volume.
    split : ndarray of str, shape (S,)
        ``"train"``, ``"val"`` or ``"test"``.
    phi : dict
        Registration report (see :func:`indi4d.registration.register_volumes`).
    normalisation : dict
        ``{"lq": params, "hq": params}``.
    provenance : dict
        Written as ``pairs.json``.
    hq_a, hq_b : ndarray, float32, shape (S, H, W), optional
        Two independent reconstructions of the HQ scan (Noise2Inverse halves),
        normalised with HQ's parameters, in [-1, 1]; stored as ``hq_a`` and ``hq_b``.

    Returns
    -------
    Path
        ``pairs_dir``.
    """
    arrays = _checked_arrays(lq, hq, mask, z, split, hq_a, hq_b)
    pairs_dir = Path(pairs_dir)
    pairs_dir.mkdir(parents=True, exist_ok=True)
    discard_pairs(pairs_dir)
    with atomic_path(pairs_file(pairs_dir, "pairs")) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    write_json(pairs_file(pairs_dir, "phi"), phi)
    write_json(pairs_file(pairs_dir, "normalisation"), normalisation)
    write_json(pairs_file(pairs_dir, "provenance"), provenance)  # last: marks the folder complete
    return pairs_dir


def _open_pairs(pairs_dir):
    """The path of ``pairs.npz`` and the open file, after checking the folder is complete."""
    path = pairs_file(pairs_dir, "pairs")
    if not path.exists():
        raise FileNotFoundError(f"{path}: no pairs file; run `indi4d register` (chapter 02_registration) first")
    mark = pairs_file(pairs_dir, "provenance")
    if not mark.exists():
        raise ValueError(f"{Path(pairs_dir)}: incomplete pairs folder ({mark.name} is missing: the run that wrote it "
                         "did not finish); run `indi4d register` again")
    try:
        data = _PairsFile(path, np.load(path, allow_pickle=False))
    except _DAMAGED as exc:
        raise ValueError(f"{path}: not a readable pairs file ({type(exc).__name__}: {exc}); it is truncated or "
                         "damaged: run `indi4d register` again") from exc
    missing = set(ARRAYS) - set(data.files)
    if missing:
        data.close()
        raise ValueError(f"{path}: missing arrays {sorted(missing)}")
    return path, data


#: What numpy and zipfile raise for a truncated or damaged ``.npz`` (a zip archive).
_DAMAGED = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


class _PairsFile:
    """An open ``pairs.npz`` whose array reads name the file when the archive is damaged."""

    def __init__(self, path, data):
        self.path, self.data, self.files = path, data, data.files

    def __getitem__(self, key):
        try:
            return self.data[key]
        except _DAMAGED as exc:
            raise ValueError(f"{self.path}: array {key!r} unreadable ({type(exc).__name__}: {exc}); the file is "
                             "truncated or damaged: run `indi4d register` again") from exc

    def close(self):
        self.data.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load_pairs(pairs_dir, split):
    """Load the LQ/HQ slice pairs of one split.

    Parameters
    ----------
    pairs_dir : str or Path
        A folder written by :func:`save_pairs`.
    split : {"train", "val", "test", "all"}
        Which slices.

    Returns
    -------
    lq, hq : ndarray, float32, shape (n, H, W)
        Values in [-1, 1], in increasing z order.
    """
    if split not in SPLITS + ("all",):
        raise ValueError(f"load_pairs: unknown split {split!r}; expected one of {SPLITS + ('all',)}")
    _, data = _open_pairs(pairs_dir)
    with data:
        keep = np.ones(data["split"].shape, bool) if split == "all" else data["split"] == split
        return data["lq"][keep].astype(np.float32), data["hq"][keep].astype(np.float32)


def has_hq_halves(pairs_dir):
    """Whether a pairs folder holds the two HQ halves (``hq_a``, ``hq_b`` in ``pairs.npz``)."""
    _, data = _open_pairs(pairs_dir)
    with data:
        return set(HALVES) <= set(data.files)


def load_hq_halves(pairs_dir, split):
    """Load the two HQ halves (Noise2Inverse reconstructions) of one split.

    Parameters
    ----------
    pairs_dir : str or Path
        A folder written by :func:`save_pairs` with ``hq_a`` and ``hq_b``
        (``indi4d register ... --hq-halves A B``).
    split : {"train", "val", "test", "all"}

    Returns
    -------
    hq_a, hq_b : ndarray, float32, shape (n, H, W)
        In [-1, 1] (HQ's normalisation), the same slices in the same order as
        :func:`load_pairs` returns.

    Raises
    ------
    ValueError
        The folder has no halves: the message names ``pairs.npz`` and says how to make them.
    """
    if split not in SPLITS + ("all",):
        raise ValueError(f"load_hq_halves: unknown split {split!r}; expected one of {SPLITS + ('all',)}")
    path, data = _open_pairs(pairs_dir)
    with data:
        if not set(HALVES) <= set(data.files):
            raise ValueError(
                f"{path}: no HQ halves (arrays {list(HALVES)}); register with two independent HQ reconstructions, "
                "e.g. `indi4d register LQ HQ OUT --hq-halves hq_half_a.tif hq_half_b.tif` "
                "(register_scans(..., hq_halves=(a, b))), or train on target='hq'")
        keep = np.ones(data["split"].shape, bool) if split == "all" else data["split"] == split
        return data["hq_a"][keep].astype(np.float32), data["hq_b"][keep].astype(np.float32)


def _scan_input(pairs_dir, which):
    """``inputs.<which>`` of the pairs' provenance (a dict) and its checked voxel size (float or None, nm)."""
    provenance = read_pairs_json(pairs_dir, "provenance")
    scan = (provenance.get("inputs") or {}).get(which) or {}
    path = pairs_file(pairs_dir, "provenance")
    if not isinstance(scan, dict):
        raise ValueError(f"{path}: 'inputs.{which}' must be an object; {_REDO}")
    voxel = scan.get("voxel_size_nm")
    if voxel is not None and (not isinstance(voxel, (int, float)) or not math.isfinite(voxel) or voxel <= 0):
        raise ValueError(f"{path}: 'inputs.{which}.voxel_size_nm' must be a positive number, "
                         f"got {voxel!r:.40}; {_REDO}")
    return scan, None if voxel is None else float(voxel)


def lq_scan_record(pairs_dir):
    """What a model must remember of the LQ scan it was trained on, from the pairs' provenance.

    Returns
    -------
    dict
        ``lq_voxel_size_nm`` (float or None) and ``lq_dtype`` (str or None):
        stored in a model's ``config.json`` so that ``indi4d enhance`` checks
        a new scan against them without the pairs folder
        (:func:`indi4d.inference.checks.model_lq_record`).
    """
    scan, voxel = _scan_input(pairs_dir, "lq")
    dtype = scan.get("dtype")
    if dtype is not None and not isinstance(dtype, str):
        raise ValueError(f"{pairs_file(pairs_dir, 'provenance')}: 'inputs.lq.dtype' must be a dtype name, "
                         f"got {dtype!r:.40}; {_REDO}")
    return {"lq_voxel_size_nm": voxel, "lq_dtype": dtype}


def pixel_size_nm(pairs_dir):
    """The pairs' pixel size: the voxel size of the HQ scan whose grid they lie on.

    The one reader of it (chapters 02-04 and their figures' scale bars), from ``pairs.json``.

    Returns
    -------
    float or None
        nm; None when the HQ scan carried no voxel size.
    """
    return _scan_input(pairs_dir, "hq")[1]


#: What to do about a damaged pairs folder, for messages.
_REDO = "the pairs folder is damaged: run `indi4d register` again"


def check_normalisation(params, label, fix=None):
    """Refuse grey-level parameters that would give a constant or inverted output.

    ``lo`` and ``hi`` must be finite with ``lo < hi``; a quantile table must be
    finite and non-decreasing.

    ``fix`` says what to do (default: about a model folder).

    Raises
    ------
    ValueError
        Naming ``label`` (the file and key) and what is wrong.
    """
    fix = fix or "the model folder is damaged: restore normalisation.json from its pairs folder, or train again"
    if not isinstance(params, dict) or not isinstance(params.get("method"), str):
        raise ValueError(f"{label}: expected an object with a 'method' (from fit_normalisation); {fix}")
    try:
        lo, hi = float(params["lo"]), float(params["hi"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{label}: 'lo' and 'hi' must be numbers; {fix}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"{label}: needs finite lo < hi, got lo = {lo:g}, hi = {hi:g} (equal ends give a "
                               f"constant output, swapped ends an inverted one); {fix}")
    table = params.get("quantiles")
    if table is not None:
        try:
            grey = [float(v) for v in table["grey"]]
            level = [float(v) for v in table["level"]]
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"{label}: the quantile table needs lists 'grey' and 'level'; {fix}") from None
        ok = all(map(math.isfinite, grey + level)) and len(grey) == len(level) >= 2
        if not ok or any(b < a for a, b in zip(grey, grey[1:])) or any(b < a for a, b in zip(level, level[1:])):
            raise ValueError(f"{label}: the quantile table must be finite, of equal lengths and "
                                   f"non-decreasing; {fix}")


def read_pairs_json(pairs_dir, key):
    """One JSON file of a pairs folder (``key`` of :data:`_JSON`), checked to be what readers rely on.

    Every one is a JSON object; ``inputs`` of the provenance is an object;
    the normalisation's ``lq`` and ``hq`` pass
    :func:`indi4d.model_folder.check_normalisation` (so a garbage file is
    refused here, before training, not in a traceback or a flat output later).

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file and what is wrong.
    """
    path = pairs_file(pairs_dir, key)
    obj = read_json(path, _JSON[key])
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(obj).__name__}; {_REDO}")
    if key == "provenance" and not isinstance(obj.get("inputs", {}), dict):
        raise ValueError(f"{path}: 'inputs' must be an object; {_REDO}")
    if key == "normalisation":
        for part in ("lq", "hq"):
            if part not in obj:
                raise ValueError(f"{path}: missing {part!r}; {_REDO}")
            check_normalisation(obj[part], f"{path}: {part!r}", fix=_REDO)
    return obj


def load_pairs_info(pairs_dir):
    """Load the mask, slice indices and split labels of a ``pairs`` folder.

    Returns
    -------
    dict
        ``mask`` bool (H, W), ``z`` int (S,), ``split`` str (S,), ``hq_halves``
        (bool: ``pairs.npz`` holds ``hq_a`` and ``hq_b``), and the parsed
        ``phi``, ``normalisation`` and ``provenance`` JSON files.
    """
    _, data = _open_pairs(pairs_dir)
    with data:
        info = {"mask": data["mask"].astype(bool), "z": data["z"], "split": data["split"].astype(str),
                "hq_halves": set(HALVES) <= set(data.files)}
    for key in _JSON:
        info[key] = read_pairs_json(pairs_dir, key)
    return info
