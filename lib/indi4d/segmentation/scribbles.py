"""Sparse scribbles -> dense labels with a random-forest pixel classifier (what ilastik does).

A user draws a few strokes per phase on one slice; every pixel gets
multiscale features (Gaussian-smoothed intensity, edges and texture at
``sigma_min .. sigma_max``, :func:`skimage.feature.multiscale_basic_features`);
a random forest learns the scribbled pixels (:func:`skimage.future.fit_segmenter`)
and labels the whole slice (:func:`skimage.future.predict_segmenter`).

The scribbles file (JSON; small, readable and diff-able, so a chapter is
reproducible)::

    {"format": "indi4d-scribbles", "version": 1,
     "shape": [H, W],                  # the slice the strokes were drawn on
     "brush_radius_px": 1,             # strokes are this thick (0: one pixel)
     "source": {...},                  # free provenance, e.g. file and z
     "strokes": {"pore": [[[y0, x0], [y1, x1], ...], ...],   # polylines per phase
                 "binder": [...], "particle": [...]}}

Phases are named as in :data:`indi4d.phases.PHASE_NAMES`; a phase may be
absent (the forest then never predicts it).
"""

import inspect

import numpy as np
from scipy import ndimage as ndi
from skimage.draw import line
from skimage.feature import multiscale_basic_features
from skimage.future import fit_segmenter, predict_segmenter
from skimage.morphology import disk
from sklearn.ensemble import RandomForestClassifier

from ..files import read_json, write_json
from ..phases import PHASE_NAMES

FORMAT, VERSION = "indi4d-scribbles", 1
#: Pixel-classifier settings (ilastik's defaults are sigmas 0.3 .. 10 and 100 trees).
FOREST_DEFAULTS = {"sigma_min": 1.0, "sigma_max": 8.0, "n_estimators": 50, "max_depth": 12}


class ScribbleError(ValueError):
    """A scribbles file or object is malformed."""


def make_scribbles(shape, strokes, brush_radius_px=1, source=None):
    """A scribbles object (the file's content) from strokes per phase.

    Parameters
    ----------
    shape : (int, int)
        (H, W) of the slice.
    strokes : dict
        ``{phase_name: [polyline, ...]}``, a polyline a list of ``[y, x]`` vertices (pixels).
    brush_radius_px : int
    source : dict, optional
        Provenance (file, slice index, ...).

    Returns
    -------
    dict
        Checked by :func:`check_scribbles`.
    """
    obj = {"format": FORMAT, "version": VERSION, "shape": [int(s) for s in shape],
           "brush_radius_px": int(brush_radius_px), "source": dict(source or {}),
           "strokes": {name: [[[int(y), int(x)] for y, x in poly] for poly in polys]
                       for name, polys in strokes.items()}}
    return check_scribbles(obj)


def check_scribbles(obj, where="scribbles"):
    """Validate a scribbles object; return it. Errors say what is wrong and where (``where``: the file).

    Raises
    ------
    ScribbleError
    """
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise ScribbleError(f"{where}: not an {FORMAT} file (missing \"format\": \"{FORMAT}\")")
    if obj.get("version") != VERSION:
        raise ScribbleError(f"{where}: version {obj.get('version')!r} is not supported (expected {VERSION})")
    shape = obj.get("shape")
    if not (isinstance(shape, list) and len(shape) == 2 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise ScribbleError(f"{where}: \"shape\" must be [H, W] positive integers, got {shape!r}")
    radius = obj.get("brush_radius_px", 0)
    if not isinstance(radius, int) or radius < 0:
        raise ScribbleError(f"{where}: \"brush_radius_px\" must be a non-negative integer, got {radius!r}")
    strokes = obj.get("strokes")
    if not isinstance(strokes, dict) or not strokes:
        raise ScribbleError(f"{where}: \"strokes\" must map phase names to lists of polylines")
    for name, polys in strokes.items():
        if name not in PHASE_NAMES:
            raise ScribbleError(f"{where}: unknown phase {name!r} (phases: {', '.join(PHASE_NAMES)})")
        if not isinstance(polys, list) or not polys:
            raise ScribbleError(f"{where}: phase {name!r} has no strokes")
        for k, poly in enumerate(polys):
            ok = isinstance(poly, list) and len(poly) >= 1 and all(
                isinstance(v, list) and len(v) == 2 and all(isinstance(c, int) for c in v) for v in poly)
            if not ok:
                raise ScribbleError(f"{where}: stroke {k} of {name!r} must be a list of [y, x] integer vertices")
            for y, x in poly:
                if not (0 <= y < shape[0] and 0 <= x < shape[1]):
                    raise ScribbleError(f"{where}: stroke {k} of {name!r} has vertex [{y}, {x}] outside the "
                                        f"{shape[0]}x{shape[1]} slice")
    if len(strokes) < 2:
        raise ScribbleError(f"{where}: scribbles of at least two phases are needed, got {list(strokes)}")
    source = obj.get("source")
    if source is not None and not isinstance(source, dict):
        raise ScribbleError(f"{where}: \"source\" must be an object (e.g. {{\"z\": 12}}), got {source!r:.60}")
    z = (source or {}).get("z")
    if z is not None and not (isinstance(z, int) and not isinstance(z, bool) and z >= 0):
        raise ScribbleError(f"{where}: \"source\".\"z\" must be a slice index >= 0, got {z!r:.60}")
    return obj


def write_scribbles(path, scribbles):
    """Write a scribbles object as JSON (atomically), after checking it; return the path."""
    return write_json(path, check_scribbles(scribbles, str(path)))


def read_scribbles(path):
    """Read and check a scribbles file (:class:`ScribbleError` names the file and the problem)."""
    return check_scribbles(read_json(path, "scribbles"), str(path))


def scribble_mask(scribbles):
    """Rasterise the strokes: uint8 (H, W), 0 = not scribbled, ``phase + 1`` on a stroke of ``phase``.

    Raises
    ------
    ScribbleError
        A pixel is scribbled with two phases.
    """
    scribbles = check_scribbles(scribbles)
    shape = tuple(scribbles["shape"])
    mask = np.zeros(shape, np.uint8)
    brush = disk(scribbles["brush_radius_px"]).astype(bool)
    for name, polys in scribbles["strokes"].items():
        drawn = np.zeros(shape, bool)
        for poly in polys:
            vertices = poly if len(poly) > 1 else poly * 2
            for (y0, x0), (y1, x1) in zip(vertices[:-1], vertices[1:]):
                rr, cc = line(y0, x0, y1, x1)
                drawn[rr, cc] = True
        drawn = ndi.binary_dilation(drawn, brush)
        clash = drawn & (mask > 0)
        if clash.any():
            y, x = np.argwhere(clash)[0]
            raise ScribbleError(f"scribbles: pixel [{y}, {x}] is scribbled as {name!r} and as "
                                f"{PHASE_NAMES[mask[y, x] - 1]!r}")
        mask[drawn] = PHASE_NAMES.index(name) + 1
    return mask


def scribbles_from_labels(labels, strokes_per_phase=3, length_px=12, erosion_px=2, seed=0, phases=None,
                          source=None):
    """Seeded straight strokes inside each phase of a true label slice (a stand-in for a user's scribbles).

    Each stroke starts at a random pixel of the phase eroded by ``erosion_px``
    (so strokes keep off the boundaries, as a careful user does), heads in a
    random direction and stops after ``length_px`` pixels or where it would
    leave the eroded phase.

    Parameters
    ----------
    labels : ndarray, (H, W), int phases
    strokes_per_phase : int
    length_px : int
    erosion_px : int or dict
        One erosion for every phase, or ``{phase: pixels}`` (phases not in it: 0).
    seed : int
    phases : sequence of int, optional
        Default: every phase present after erosion.
    source : dict, optional

    Returns
    -------
    dict
        A scribbles object (brush radius 0).
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"scribbles_from_labels: expected a 2D label slice, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    phases = range(len(PHASE_NAMES)) if phases is None else phases
    strokes = {}
    for p in phases:
        r = int(erosion_px.get(p, 0)) if isinstance(erosion_px, dict) else int(erosion_px)
        inside = ndi.binary_erosion(labels == p, disk(r)) if r else labels == p
        pixels = np.argwhere(inside)
        if not len(pixels):
            continue
        polys = []
        for _ in range(strokes_per_phase):
            y0, x0 = pixels[rng.integers(len(pixels))]
            angle = rng.uniform(0, 2 * np.pi)
            y1 = int(np.clip(round(y0 + length_px * np.sin(angle)), 0, labels.shape[0] - 1))
            x1 = int(np.clip(round(x0 + length_px * np.cos(angle)), 0, labels.shape[1] - 1))
            rr, cc = line(int(y0), int(x0), y1, x1)
            stay = np.cumprod(inside[rr, cc]).astype(bool)  # up to the first pixel outside
            end = int(stay.sum()) - 1
            polys.append([[int(y0), int(x0)], [int(rr[end]), int(cc[end])]])
        strokes[PHASE_NAMES[p]] = polys
    return make_scribbles(labels.shape, strokes, brush_radius_px=0, source=source)


def scribble_agreement(scribbles, labels):
    """Share of each phase's scribbled pixels that carry that phase in ``labels`` (e.g. the phantom's truth).

    A stored scribbles file stays valid only while the slice it was drawn on
    does; a chapter checks it with this before use.

    Parameters
    ----------
    scribbles : dict
    labels : ndarray, (H, W), int phases (the scribbles' shape)

    Returns
    -------
    dict
        ``{phase_name: fraction in [0, 1]}`` for every scribbled phase, and ``"all"``.
    """
    mask = scribble_mask(scribbles)
    labels = np.asarray(labels)
    if labels.shape != mask.shape:
        raise ScribbleError(f"scribbles drawn on a {mask.shape} slice do not fit labels {labels.shape}")
    drawn = mask > 0
    out = {PHASE_NAMES[p - 1]: float(np.mean(labels[mask == p] == p - 1)) for p in np.unique(mask[drawn])}
    out["all"] = float(np.mean(labels[drawn] == mask[drawn] - 1.0))
    return out


def pixel_features(image, sigma_min=FOREST_DEFAULTS["sigma_min"], sigma_max=FOREST_DEFAULTS["sigma_max"]):
    """Multiscale intensity, edge and texture features, float32 (H, W, F) (scikit-image)."""
    image = np.asarray(image, np.float32)
    if image.ndim != 2:
        raise ValueError(f"pixel_features: expected a 2D slice, got shape {image.shape}")
    # one worker (scikit-image >= 0.26 calls it ``workers``, earlier ``num_workers``)
    workers = "workers" if "workers" in inspect.signature(multiscale_basic_features).parameters else "num_workers"
    return multiscale_basic_features(image, intensity=True, edges=True, texture=True, sigma_min=sigma_min,
                                     sigma_max=sigma_max, **{workers: 1}).astype(np.float32)


def fit_forest(image, scribbles, seed=0, **settings):
    """Train the random-forest pixel classifier on the scribbled pixels of ``image``.

    Parameters
    ----------
    image : ndarray, (H, W), float
        The slice the scribbles were drawn on (its shape must be the scribbles').
    scribbles : dict
        :func:`read_scribbles` / :func:`make_scribbles`.
    seed : int
        The forest's ``random_state``.
    **settings
        Keys of :data:`FOREST_DEFAULTS`.

    Returns
    -------
    dict
        ``classifier`` (fitted ``RandomForestClassifier``) and ``settings``.
    """
    unknown = set(settings) - set(FOREST_DEFAULTS)
    if unknown:
        raise ValueError(f"fit_forest: unknown settings {sorted(unknown)} (known: {sorted(FOREST_DEFAULTS)})")
    settings = {**FOREST_DEFAULTS, **settings}
    mask = scribble_mask(scribbles)
    if mask.shape != np.shape(image):
        raise ScribbleError(f"scribbles drawn on a {mask.shape} slice do not fit the image {np.shape(image)}")
    clf = RandomForestClassifier(n_estimators=settings["n_estimators"], max_depth=settings["max_depth"],
                                 n_jobs=1, random_state=seed)
    features = pixel_features(image, settings["sigma_min"], settings["sigma_max"])
    return {"classifier": fit_segmenter(mask, features, clf), "settings": settings}


def predict_forest(forest, image):
    """Dense phase labels of ``image`` from a :func:`fit_forest` result; uint8 (H, W)."""
    s = forest["settings"]
    labels = predict_segmenter(pixel_features(image, s["sigma_min"], s["sigma_max"]), forest["classifier"])
    return (np.asarray(labels) - 1).astype(np.uint8)  # the mask's phase + 1 back to the phase


def forest_labels(image, scribbles, seed=0, **settings):
    """Scribbles -> dense labels of the same slice in one call (:func:`fit_forest` + :func:`predict_forest`)."""
    return predict_forest(fit_forest(image, scribbles, seed=seed, **settings), image)
