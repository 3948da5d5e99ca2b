"""The scribbles the book uses, shipped with the package (``package_data/scribbles/``), and how they were drawn.

A reader's scribbles are data: a chapter that drew new strokes at random on
every run would not be reproducible, and one that hides how they were drawn
would not be honest. The book's scribbles were therefore drawn **once** by
:func:`draw_scribbles` (seeded straight strokes inside each true phase of one
slice, :func:`indi4d.segmentation.scribbles_from_labels`) and committed as
``package_data/scribbles/insitu_t<k>_<preset>_seed<seed>.json``.

One file per simulated data set (preset and seed), in pixels of its slice, not
in fractional coordinates: the presets simulate different samples (other
particles at other places), so strokes scaled from one preset's slice onto
another's would land on other phases. A stored file is used only while it
still fits its slice (:func:`scribbles_for_slice`: the same shape, and at
least ``min_agreement`` of its pixels on the phase they name); otherwise, e.g.
after the simulator changed, the same seeded drawing is made afresh from the
truth and the chapter says so.
"""

from pathlib import Path

import numpy as np

from ..package_data import SCRIBBLES_DIR
from ..phases import DENSE, PHASE_NAMES
from .scribbles import read_scribbles, scribble_agreement, scribbles_from_labels

#: How the stored scribbles are drawn: strokes per phase, stroke length as a share of the slice width
#: (at least ``min_length_px``), and the erosion keeping strokes off boundaries (thin phases: ``thin_erosion_px``).
DRAWING = {"strokes_per_phase": 8, "length_fraction": 0.08, "min_length_px": 5, "erosion_px": 2,
           "thin_erosion_px": 1}
#: Phases that form thin layers (the dense shell), eroded less so they can be scribbled at all.
THIN_PHASES = (DENSE,)


def stored_scribbles_path(preset, seed=0, time=2, folder=None):
    """``package_data/scribbles/insitu_t<time>_<preset>_seed<seed>.json`` (whether or not it exists)."""
    return Path(folder or SCRIBBLES_DIR) / f"insitu_t{int(time)}_{preset}_seed{int(seed)}.json"


def choose_slice(labels, valid=None, phase=DENSE):
    """The slice to scribble on: in the middle half of the stack, the one with most voxels of ``phase``.

    The dense phase is the rarest and only grows over time, so the slice (and
    time step) that shows most of it is the one where a user can scribble
    every phase. Ties go to the slice nearest the middle.

    Parameters
    ----------
    labels : ndarray, (Z, Y, X), int phases
    valid : ndarray, bool, (Y, X), optional
        Count only inside it (the sample).
    phase : int

    Returns
    -------
    int
    """
    labels = np.asarray(labels)
    inside = np.ones(labels.shape[1:], bool) if valid is None else np.asarray(valid, bool)
    n = labels.shape[0]
    lo, hi = n // 4, max(n - n // 4, n // 4 + 1)
    counts = np.array([np.count_nonzero((labels[z] == phase) & inside) for z in range(lo, hi)])
    distance = np.abs(np.arange(lo, hi) - (n - 1) / 2)
    order = np.lexsort((distance, -counts))  # most voxels first, then nearest the middle
    return int(lo + order[0])


def draw_scribbles(labels, valid=None, seed=0, source=None, **drawing):
    """Seeded strokes inside every phase of a true label slice (the stand-in for a user's scribbles).

    Each phase is scribbled by :func:`indi4d.segmentation.scribbles_from_labels`
    with the settings of :data:`DRAWING`; thin phases (:data:`THIN_PHASES`) are
    eroded by ``thin_erosion_px`` only. Pixels outside ``valid`` are never
    scribbled.

    Parameters
    ----------
    labels : ndarray, (H, W), int phases
    valid : ndarray, bool, (H, W), optional
    seed : int
    source : dict, optional
        Provenance written into the file.
    **drawing
        Keys of :data:`DRAWING`.

    Returns
    -------
    dict
        A scribbles object (:func:`indi4d.segmentation.make_scribbles`).
    """
    unknown = set(drawing) - set(DRAWING)
    if unknown:
        raise ValueError(f"draw_scribbles: unknown settings {sorted(unknown)} (known: {sorted(DRAWING)})")
    d = {**DRAWING, **drawing}
    labels = np.asarray(labels).astype(np.int16)
    if valid is not None:
        labels = np.where(np.asarray(valid, bool), labels, -1)  # -1: no phase, never scribbled
    length = max(int(d["min_length_px"]), int(round(d["length_fraction"] * labels.shape[1])))
    erosion = {p: d["thin_erosion_px"] if p in THIN_PHASES else d["erosion_px"] for p in range(len(PHASE_NAMES))}
    source = {**(source or {}), "drawn_by": "indi4d.segmentation.draw_scribbles", "seed": int(seed),
              "drawing": {**d, "length_px": length}}
    # phases absent from the slice (or too thin to scribble) get no strokes
    return scribbles_from_labels(labels, d["strokes_per_phase"], length, erosion, seed=seed, source=source)


def scribbles_for_slice(labels, valid=None, preset="default", seed=0, time=2, z=None, min_agreement=0.95,
                        folder=None):
    """The book's scribbles for one slice: the stored file when it still fits, else drawn afresh.

    Parameters
    ----------
    labels : ndarray, (H, W), int phases
        The true labels of the slice.
    valid : ndarray, bool, (H, W), optional
    preset : str
    seed : int
    time : int
        Time step of the slice (part of the file name).
    z : int, optional
        Slice index, recorded in a fresh drawing's source.
    min_agreement : float
        Share of the stored file's pixels that must carry their phase in ``labels``.
    folder : str or Path, optional
        Default :data:`SCRIBBLES_DIR`.

    Returns
    -------
    scribbles : dict
    origin : dict
        ``{"stored": bool, "path": str, "agreement": {...}, "why": str}``.
    """
    path = stored_scribbles_path(preset, seed, time, folder)
    why = f"{path} does not exist"
    if path.exists():
        stored = read_scribbles(path)
        if tuple(stored["shape"]) != np.shape(labels):
            why = f"{path} was drawn on a {tuple(stored['shape'])} slice, this one is {np.shape(labels)}"
        else:
            agreement = scribble_agreement(stored, labels)
            if agreement["all"] >= min_agreement:
                return stored, {"stored": True, "path": str(path), "agreement": agreement, "why": "stored"}
            why = (f"only {100 * agreement['all']:.0f} % of the pixels of {path} lie on the phase they name "
                   f"(the simulated sample changed)")
    drawn = draw_scribbles(labels, valid, seed=seed, source={"preset": preset, "time": int(time),
                                                             "z": None if z is None else int(z)})
    return drawn, {"stored": False, "path": str(path), "agreement": scribble_agreement(drawn, labels),
                   "why": why + "; drawn afresh with the same seeded rule"}


def store_scribbles(data_dir, preset, seed=0, time=2, mask_margin_px=2, folder=None):
    """Draw the book's scribbles for one simulated data set and write them (what made ``package_data/scribbles/``).

    Parameters
    ----------
    data_dir : str or Path
        A data folder of chapter 01 (``meta.json``, ``insitu_t<time>_labels.tif``).
    preset, seed : the data set's preset and seed (the file name)
    time : int
        The time step scribbled (the last: every phase is present).
    mask_margin_px : int
        Strokes stay this far inside the sample cylinder (the chapter's scored disc).
    folder : str or Path, optional
        Default :data:`SCRIBBLES_DIR`.

    Returns
    -------
    Path
    """
    from ..files import read_json
    from ..insitu import valid_disc
    from ..io import read_volume
    from .scribbles import write_scribbles

    data_dir = Path(data_dir)
    meta = read_json(data_dir / "meta.json", "the data folder's metadata")
    name = f"insitu_t{int(time)}_labels.tif"
    labels, lab_meta = read_volume(data_dir / name, expect_ndim=3)
    voxel_nm = float(lab_meta.get("voxel_size_nm") or meta["voxel_size_nm"]["hq"])
    valid = valid_disc(labels.shape[1:], meta, voxel_nm, mask_margin_px)
    z = choose_slice(labels, valid)
    source = {"file": name, "preset": preset, "data_seed": int(meta.get("seed", seed)), "time": int(time), "z": z,
              "simulator": meta.get("version")}
    scribbles = draw_scribbles(labels[z], valid, seed=seed, source=source)
    return write_scribbles(stored_scribbles_path(preset, seed, time, folder), scribbles)
