"""The chapter-06 orchestrator: :class:`InSitu`, stage by stage."""

import time

import numpy as np

from .. import runs
from ..core import preprocess
from ..phases import PHASE_NAMES
from ..presets import resolve
from .enhance import enhance_series, read_enhanced
from .scores import dense_summary, edge_geometries, score_volume
from .series import grey_to_attenuation, load_series, truth_attenuation, valid_disc
from .settings import METHODS, PAPER_TABLE1, PRESETS


class InSitu:
    """The in situ application of a trained model, without retraining (chapter 06).

    Stages, one call each: :meth:`load_series`, :meth:`enhance`,
    :meth:`score`, :meth:`domain_check`, :meth:`real_structures`, :meth:`save`;
    :meth:`attenuation` gives any method's volume (1/µm) for the figures.

    Parameters
    ----------
    run_dir : str or Path
        Holds ``data/`` (chapter 01), ``model/`` (chapter 04, with ``steps.json``
        from chapter 05 when it ran) and optionally ``baselines/cnn``.
    preset : {"tiny", "default", "paper"}
        :data:`indi4d.insitu.PRESETS`.
    seed : int
    steps : int, optional
        InDI steps N; default the model's stored choice
        (:func:`indi4d.model_folder.resolve_steps`, which also says where N came from).
    **overrides
        Entries of the preset (e.g. ``fuse=False``).
    """

    def __init__(self, run_dir, preset="default", seed=0, steps=None, **overrides):
        from ..model_folder import resolve_steps

        self.run_dir = run_dir
        self.preset, self.seed = preset, int(seed)
        self.params = resolve(PRESETS, preset, **overrides)
        model_dir = runs.stage_dir(run_dir, "model")
        runs.require_artifact(run_dir, "model", "model")
        steps, self.steps_source = resolve_steps(model_dir, steps)
        self.steps = int(steps)
        self.series = self.info = self.scores = self.domain = self.real = None
        self.seconds = {}

    def _timed(self, stage, t0):
        self.seconds[stage] = round(time.perf_counter() - t0, 2)

    def load_series(self):
        """Load the LQ series and its truth; compute the true attenuation and the valid disc."""
        t0 = time.perf_counter()
        s = load_series(self.run_dir)
        s["truth_mu"] = [truth_attenuation(lab, s["meta"]) for lab in s["labels"]]
        att = [float(s["meta"]["attenuation_per_um"][n]) for n in PHASE_NAMES]
        s["data_range"] = max(att) - min(att)  # one PSNR/SSIM scale for every time step, 1/µm
        s["valid"] = valid_disc(s["labels"][0].shape[1:], s["meta"], s["voxel_nm"], self.params["mask_margin_px"])
        self.series = s
        self._timed("load", t0)
        return s

    def enhance(self, progress=True):
        """Enhance every time step (InDI along xy, and xz/yz with the fusion; the CNN when trained)."""
        t0 = time.perf_counter()
        if self.series is None:
            self.load_series()
        self.info = enhance_series(self.run_dir, self.series, self.steps, preset=self.params["tiling"],
                                   seed=self.seed, fuse_axes=self.params["fuse"], progress=progress)
        self._timed("enhance", t0)
        return self.info

    @property
    def methods(self):
        """Methods scored, in table order (``lq``, ``indi_xy``, ..., ``truth``)."""
        have = set(self.info["paths"]) if self.info else set()
        single = [m for m in ("indi_xz", "indi_yz") if m in have] if self.params["score_single_axes"] else []
        return ["lq"] + [m for m in ("indi_xy",) if m in have] + single + \
            [m for m in ("indi_fused", "cnn") if m in have] + ["truth"]

    def attenuation(self, method, i):
        """The volume of ``method`` at time index ``i`` as attenuation (1/µm, float32, 50 nm grid)."""
        s = self.series
        if method == "truth":
            return s["truth_mu"][i]
        if method == "lq":  # bicubic (tricubic) x2 of the LQ scan
            return grey_to_attenuation(preprocess.upscale(s["lq"][i], 2), s["meta"])
        return grey_to_attenuation(read_enhanced(self.info["paths"][method][i]), s["meta"])

    def score(self):
        """Score every method at every time step against the truth (see :mod:`indi4d.insitu.scores`)."""
        t0 = time.perf_counter()
        s = self.series
        self.scores = {m: [] for m in self.methods}
        for i, _ in enumerate(s["times"]):
            # where the edge profiles lie depends on the truth only: found once for every method
            edges = edge_geometries(s["labels"][i], s["valid"], self.params, seed=self.seed)
            for m in self.methods:
                sc = score_volume(self.attenuation(m, i), s["truth_mu"][i], s["labels"][i], s["valid"],
                                  s["voxel_nm"], self.params, seed=self.seed, profiles=True,
                                  data_range=s["data_range"], edges=edges)
                self.scores[m].append(sc)
        self._timed("score", t0)
        return self.scores

    def domain_check(self, progress=False):
        """Each time step's domain score and sanity check (:func:`indi4d.insitu.domain.series_domain`)."""
        from ..inference import load_enhancer
        from .domain import series_domain

        t0 = time.perf_counter()
        if self.series is None:
            self.load_series()
        enhancer = load_enhancer(runs.stage_dir(self.run_dir, "model"), preset=self.params["tiling"])
        self.domain = series_domain(self.run_dir, self.series, enhancer, self.steps, seed=self.seed,
                                    samples=self.params["sanity_samples"], slabs=self.params["sanity_slabs"])
        self._timed("domain", t0)
        return self.domain

    def real_structures(self):
        """spam's real volumes enhanced without retraining, scored, with their domain score
        (:func:`indi4d.insitu.domain.real_structures`)."""
        from ..inference import load_enhancer
        from .domain import real_structures

        t0 = time.perf_counter()
        enhancer = load_enhancer(runs.stage_dir(self.run_dir, "model"), preset=self.params["tiling"])
        self.real = real_structures(self.run_dir, enhancer, self.steps, seed=self.seed)
        self._timed("real_structures", t0)
        return self.real

    def results(self):
        """Everything measured, JSON-ready (what :meth:`save` writes)."""
        s = self.series
        methods = self.methods
        times = list(range(len(s["times"])))
        scores = {m: [{k: v for k, v in sc.items() if k != "edge"} for sc in self.scores[m]] for m in methods}
        edges = {m: [sc["edge"] for sc in self.scores[m]] for m in methods}
        learned = [m for m in methods if m != "truth"]
        out = {
            "preset": self.preset, "seed": self.seed, "steps": self.steps, "steps_source": self.steps_source,
            "times": [f"T{k}" for k in s["times"]], "voxel_nm": s["voxel_nm"], "lq_voxel_nm": s["lq_voxel_nm"],
            "data_range_per_um": s["data_range"],
            "shape": list(s["labels"][0].shape), "lq_shape": list(s["lq"][0].shape),
            "valid_disc_radius_px": float(np.sqrt(s["valid"].sum() / np.pi)),
            "methods": {m: METHODS.get(m, m) for m in methods},
            "scores": scores, "edge_profiles": edges,
            "dense": dense_summary(self.scores, learned, times),
            "phase_fractions": [self._fractions(i) for i in times],
            "enhance": {k: v for k, v in (self.info or {}).items() if k != "paths"},
            "files": {m: [p.name for p in ps] for m, ps in (self.info or {"paths": {}})["paths"].items()},
            "paper": PAPER_TABLE1, "params": self.params, "seconds": dict(self.seconds),
        }
        out["fusion"] = fusion_summary(scores) if "indi_fused" in scores else None
        out["domain"], out["real_structures"] = self.domain, self.real
        return out

    def _fractions(self, i):
        lab = self.series["labels"][i][:, self.series["valid"]]
        counts = np.bincount(lab.ravel(), minlength=len(PHASE_NAMES))
        return {n: float(c / max(1, lab.size)) for n, c in zip(PHASE_NAMES, counts)}

    def save(self):
        """Write :meth:`results` to ``RUN_DIR/insitu/metrics.json`` (atomically); return the path."""
        from ..files import write_json

        path = runs.artifact(self.run_dir, "insitu", "metrics")
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_json(path, self.results(), keep_inf=True)


def fusion_summary(scores):
    """Whether the 3-axis fusion beats xy enhancement with z-interpolation, per score and time step.

    Returns
    -------
    dict
        For ``psnr_db``, ``ssim`` (higher is better), ``mae``, ``fwhm_xy_nm``,
        ``fwhm_z_nm`` (lower is better): ``fused``, ``xy`` (lists over time),
        ``fused_better`` (list of bool) and ``always_better`` (bool).
    """
    out = {}
    for key, higher in (("psnr_db", True), ("ssim", True), ("mae", False), ("fwhm_xy_nm", False),
                        ("fwhm_z_nm", False)):
        f = [sc[key] for sc in scores["indi_fused"]]
        x = [sc[key] for sc in scores["indi_xy"]]
        better = [bool(a > b) if higher else bool(a < b) for a, b in zip(f, x)]
        out[key] = {"fused": f, "xy": x, "fused_better": better, "always_better": all(better)}
    return out
