"""The chapter-07 orchestrator: :class:`Segmentation`, stage by stage.

Scribbles on one slice -> a random forest per image (LQ, InDI, ideal HQ) ->
an attention U-Net per image trained on that slice (same budget and seed) ->
every time step segmented -> scores against the truth -> descriptors per
time step. Everything measured goes to ``RUN_DIR/segmentation/metrics.json``;
the networks to ``RUN_DIR/segmentation/networks/<method>/`` (model folders,
reused when the chapter runs again unchanged), the label volumes to
``RUN_DIR/segmentation/labels/<method>_t<k>.tif`` (uint8, 50 nm voxels).
"""

import hashlib
import time

import numpy as np

from .. import runs
from ..phases import PHASE_NAMES
from ..presets import resolve
from .descriptors import describe, descriptor_errors, swelling
from .scores import phase_scores
from .scribble_store import choose_slice, scribbles_for_slice
from .scribbles import fit_forest, predict_forest
from .series import attenuation_window, method_attenuation, scored_region, slab_around, to_network_scale
from .settings import DESCRIPTORS, METHODS, PRESETS


def _sha(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


class Segmentation:
    """Segmentation of the in situ series and its microstructure descriptors (chapter 07).

    Stages, one call each: :meth:`load`, :meth:`scribble`, :meth:`forests`,
    :meth:`train`, :meth:`segment`, :meth:`describe`, :meth:`save`.

    Parameters
    ----------
    run_dir : str or Path
        Holds ``data/`` (chapter 01) and ``insitu/enhanced/`` (chapter 06).
    preset : {"tiny", "default", "paper"}
    seed : int
    **overrides
        Entries of :data:`indi4d.segmentation.settings.PRESETS`.
    """

    def __init__(self, run_dir, preset="default", seed=0, **overrides):
        self.run_dir, self.preset, self.seed = run_dir, preset, int(seed)
        self.params = resolve(PRESETS, preset, **overrides)
        self.methods = list(METHODS)
        self.seconds = {}
        self.series = self.images = self.scribbles = self.origin = self.z_range = None
        self.rf, self.rf_scores, self.networks, self.histories = {}, {}, {}, {}
        self.sources = {}  # per method: the published network installed, or why it was trained
        self.labels, self.scores, self.descriptors = {}, {}, {}

    def _timed(self, stage, t0):
        self.seconds[stage] = round(self.seconds.get(stage, 0.0) + time.perf_counter() - t0, 2)

    @property
    def folder(self):
        """``RUN_DIR/segmentation``."""
        return runs.stage_dir(self.run_dir, "segmentation")

    def load(self):
        """Load the series (chapter 01), every method's image on the network scale (chapter 06), the valid disc."""
        from ..insitu import load_series, valid_disc

        t0 = time.perf_counter()
        s = load_series(self.run_dir)
        s["valid"] = valid_disc(s["labels"][0].shape[1:], s["meta"], s["voxel_nm"], self.params["mask_margin_px"])
        window = attenuation_window(s["meta"])
        self.images = {m: [to_network_scale(method_attenuation(m, s, i, self.run_dir, self.params["indi_method"]),
                                            window) for i in range(len(s["times"]))] for m in self.methods}
        self.series = s
        self._timed("load", t0)
        return s

    def scribble(self):
        """The scribbles: on the last time step (every phase is there), the slice showing most dense phase."""
        t0 = time.perf_counter()
        s = self.series
        self.i_train = len(s["times"]) - 1
        truth = s["labels"][self.i_train]
        z = choose_slice(truth, s["valid"])
        self.scribbles, self.origin = scribbles_for_slice(
            truth[z], s["valid"], self.preset, self.seed, s["times"][self.i_train], z,
            self.params["min_agreement"])
        self.z_train = int(self.scribbles["source"].get("z", z) if self.origin["stored"] else z)
        self.z_range = slab_around(truth.shape[0], self.z_train, self.params.get("z_slices"))
        if self.z_range != (0, truth.shape[0]):  # from here on, the chapter sees only the slab
            self._keep_slab(*self.z_range)
        n = self.z_range[1] - self.z_range[0]
        self.z_val = int((self.z_train + max(1, round(self.params["val_offset"] * n))) % n)
        self._timed("scribble", t0)
        return self.scribbles

    def _keep_slab(self, z0, z1):
        """Crop the truth and every image to slices ``z0:z1``; slice indices become relative to ``z0``."""
        self.series["labels"] = [v[z0:z1] for v in self.series["labels"]]
        self.images = {m: [v[z0:z1] for v in vols] for m, vols in self.images.items()}
        self.z_train -= z0

    def slice_of(self, method, z=None):
        """The training (or ``z``) slice of ``method`` at the training time step, network scale."""
        return self.images[method][self.i_train][self.z_train if z is None else z]

    def forests(self):
        """A random forest per image from the same scribbles; its labels of the slice, scored against the truth."""
        t0 = time.perf_counter()
        truth = self.series["labels"][self.i_train][self.z_train]
        for m in self.methods:
            forest = fit_forest(self.slice_of(m), self.scribbles, seed=self.seed)
            self.rf[m] = {"forest": forest, "labels": predict_forest(forest, self.slice_of(m)),
                          "val_labels": predict_forest(forest, self.slice_of(m, self.z_val))}
            self.rf_scores[m] = phase_scores(self.rf[m]["labels"], truth, self.params["tolerance_px"],
                                             region=self.series["valid"])
        self._timed("forests", t0)
        return self.rf

    def train(self, progress=False, published=None):
        """One attention U-Net per image on its slice and forest labels (same budget, same seed).

        Parameters
        ----------
        progress : bool
        published : dict, optional
            ``{method: registry name}`` of published U-Nets
            (:func:`indi4d.pretrained.segmentation_names_for`). One whose
            ``config.json`` is exactly the run about to start (recipe, seed,
            and the hash of the training and validation slices) is installed
            instead of trained; any difference and the network is trained.
            :attr:`sources` says, per method, which happened and why.
        """
        from ..model_folder import read_history
        from .scan import load_segmenter
        from .train import segmenter_config, train_segmenter

        t0 = time.perf_counter()
        for m in self.methods:
            model_dir = self.folder / "networks" / m
            image, labels = self.slice_of(m), self.rf[m]["labels"]
            val = (self.slice_of(m, self.z_val), self.rf[m]["val_labels"])
            provenance = {"method": m, "slice_sha256": _sha(image, labels, *val), "z": self.z_train,
                          "time": int(self.series["times"][self.i_train])}
            recipe = dict(preset=self.params["train"], network_preset=self.params["network"], seed=self.seed,
                          provenance=provenance, **self.params["train_overrides"])
            installed, differs = self._install_published((published or {}).get(m), model_dir,
                                                         segmenter_config(image.shape, **recipe))
            if installed:
                self.networks[m] = load_segmenter(model_dir)
                self.sources[m] = {"installed": installed["name"], "sha256": installed["sha256"]}
            else:
                self.networks[m], _ = train_segmenter(image, labels, model_dir, val=val, progress=progress,
                                                      restart=True, **recipe)
                self.sources[m] = {"trained": True, "published_differs_in": differs}
            self.histories[m] = read_history(model_dir)
        self._timed("train", t0)
        return self.histories

    def source_lines(self, names=None):
        """One line per network after :meth:`train`: installed (which archive) or trained here (and why)."""
        lines = []
        for m, source in self.sources.items():
            name = (names or {}).get(m, m)
            if "installed" in source:
                lines.append(f"{name}: installed the published {source['installed']} (same recipe and slices)")
            else:
                differs = source["published_differs_in"]
                lines.append(f"{name}: trained here"
                             + (f" (the published one differs in {', '.join(differs)})" if differs else ""))
        return lines

    @staticmethod
    def _install_published(name, model_dir, config):
        """:func:`indi4d.pretrained.install_if_config` when a published network is named, else ``(None, [])``."""
        if not name:
            return None, []
        from ..pretrained import install_if_config

        return install_if_config(name, model_dir, config)

    def segment(self):
        """Segment every time step with every network; score against the truth; write the label volumes."""
        from ..io import write_volume
        from .train import segment as segment_slices

        t0 = time.perf_counter()
        s = self.series
        region = scored_region(s["labels"][0].shape, s["valid"], self.z_train, self.params["holdout_px"])
        out = self.folder / "labels"
        out.mkdir(parents=True, exist_ok=True)
        for m in self.methods:
            self.labels[m], self.scores[m] = [], []
            for i, k in enumerate(s["times"]):
                lab = segment_slices(self.networks[m], self.images[m][i], batch_size=self.params["batch_size"])
                write_volume(out / f"{m}_t{k}.tif", lab, voxel_size_nm=float(s["voxel_nm"]))
                self.labels[m].append(lab)
                self.scores[m].append(phase_scores(lab, s["labels"][i], self.params["tolerance_px"], region=region))
        self._timed("segment", t0)
        return self.scores

    def describe(self, methods=None):
        """Descriptors of the segmentations (default: the preset's ``describe``) and of the truth, inside the sample."""
        t0 = time.perf_counter()
        s = self.series
        region = np.broadcast_to(s["valid"], s["labels"][0].shape)
        for m in list(methods or self.params["describe"]) + ["truth"]:
            vols = s["labels"] if m == "truth" else self.labels[m]
            self.descriptors[m] = [describe(v, s["voxel_nm"], region=region) for v in vols]
        self._timed("describe", t0)
        return self.descriptors

    def results(self):
        """Everything measured, JSON-ready (what :meth:`save` writes)."""
        s = self.series
        described = [m for m in self.methods if m in self.descriptors]
        truth = self.descriptors.get("truth")
        errors = {m: [descriptor_errors(d, t, tuple(DESCRIPTORS)) for d, t in zip(self.descriptors[m], truth)]
                  for m in described} if truth else {}
        swell = {m: swelling(self.descriptors[m][0], self.descriptors[m][-1]) for m in described + ["truth"]
                 if m in self.descriptors}
        return {
            "preset": self.preset, "seed": self.seed, "params": self.params,
            "times": [f"T{k}" for k in s["times"]], "voxel_nm": s["voxel_nm"], "shape": list(s["labels"][0].shape),
            "methods": {m: METHODS[m] for m in self.methods}, "phases": list(PHASE_NAMES),
            "z_range": list(self.z_range),
            # slice numbers in the whole stack
            "scribbles": {"z": self.z_range[0] + self.z_train, "time": f"T{s['times'][self.i_train]}",
                          "val_z": self.z_range[0] + self.z_val,
                          "origin": self.origin, "pixels": _scribbled_pixels(self.scribbles)},
            "forest_scores": self.rf_scores,
            "training": {m: {"history": h, "final_loss": h.get("loss", [None])[-1],
                             "final_val_loss": h.get("val_loss", [None])[-1], "source": self.sources.get(m)}
                         for m, h in self.histories.items()},
            "scores": self.scores,
            "descriptors": {m: [{k: v for k, v in d.items()} for d in ds] for m, ds in self.descriptors.items()},
            "errors": errors, "swelling": swell,
            "swelling_error": {m: {k: swell[m][k] - swell["truth"][k] for k in swell[m]} for m in described}
            if "truth" in swell else {},
            "files": {"labels": {m: [f"labels/{m}_t{k}.tif" for k in s["times"]] for m in self.labels}},
            "seconds": dict(self.seconds),
        }

    def save(self):
        """Write :meth:`results` to ``RUN_DIR/segmentation/metrics.json`` (atomically); return the path."""
        from ..files import write_json

        path = runs.artifact(self.run_dir, "segmentation", "metrics")
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_json(path, self.results())


def _scribbled_pixels(scribbles):
    from .scribbles import scribble_mask

    mask = scribble_mask(scribbles)
    return {PHASE_NAMES[p - 1]: int(np.count_nonzero(mask == p)) for p in range(1, len(PHASE_NAMES) + 1)}


def particle_boxes(seg, sources=("truth", "indi", "lq")):
    """One particle followed through time: ``{source: [bool box per time step]}`` for :func:`plot_particle_swelling`.

    Parameters
    ----------
    seg : Segmentation
        After :meth:`Segmentation.segment`.
    sources : sequence of str
        ``truth`` and methods of ``seg``.
    """
    from .series import follow_particle, pick_particle

    s = seg.series
    box, reference = pick_particle(s["labels"][0], s["valid"])
    out = {}
    for src in sources:
        vols = s["labels"] if src == "truth" else seg.labels[src]
        out[src] = [follow_particle(v, box, reference) for v in vols]
    return out
