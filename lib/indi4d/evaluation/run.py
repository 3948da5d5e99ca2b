"""The one orchestrator of chapter 05: :class:`Evaluation`, stage by stage, and :func:`evaluate_run`.

Chapter 05 calls the stages one at a time to show figures between them;
:func:`evaluate_run` (``benchmarks/quality.py``) calls them all. Either way the
same code runs in the same order and writes the same files:

* ``RUN_DIR/eval/metrics.json`` -- every number of the chapter;
* ``RUN_DIR/model/steps.json`` -- the chosen InDI step count N and the rule
  that chose it, which ``indi4d enhance`` uses by default.
"""

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..presets import resolve
from .predictions import has_indi_deconv, load_method, predict_methods
from .goals import check_goals
from .references import reference_predictions
from .scores import score_methods, scoring_conventions
from .spectra import method_spectra
from .settings import PAPER_RESULTS, PRESETS
from .sweep import select_steps, step_sweep
from .testset import load_test_set
from .uncertainty import uncertainty

#: the numbers of :func:`~indi4d.evaluation.uncertainty.uncertainty` kept in the results (not the maps)
UNCERTAINTY_NUMBERS = ("spearman", "spearman_block", "samples", "eps", "eps_source", "steps", "block_px", "units",
                       "fit")


@dataclass
class Evaluation:
    """Chapter 05 on one run folder, one stage per method; each stage keeps its result as an attribute.

    Run the stages in this order (each needs the ones before):
    :meth:`load_test_set`, :meth:`train_baselines`, :meth:`choose_steps`,
    :meth:`predict_and_score`, :meth:`estimate_uncertainty`, :meth:`check_goals`,
    then :meth:`save`; :meth:`run` does all of them.

    Parameters
    ----------
    run_dir : str or Path
        With the artifacts of chapters 01, 02 and 04.
    preset : {"tiny", "default", "paper"}
        Preset of :data:`~indi4d.evaluation.settings.PRESETS` and of :mod:`indi4d.baselines`.
    seed : int
        Seed of the metrics and of the stochastic samples. The baselines take
        the InDI run's seed (so all three learners start alike and see the same batches).
    minutes : float, optional
        Wall-clock cap of each baseline (default: the InDI run's training time).
    steps : int, optional
        Use this N instead of the one :func:`~indi4d.evaluation.sweep.select_steps` picks.
    progress : bool
    retrain : bool
        Train the baselines even where the preset installs the published reference ones.
    """

    run_dir: Path
    preset: str = "default"
    seed: int = 0
    minutes: float = None
    steps: int = None
    progress: bool = True
    retrain: bool = False
    params: dict = field(init=False)
    seconds: dict = field(init=False, default_factory=dict)
    methods: dict = field(init=False, default_factory=dict)
    test: dict = field(init=False, default=None)
    trained: dict = field(init=False, default=None)
    sweep: list = field(init=False, default=None)
    sweep_predictions: dict = field(init=False, default=None)
    choice: dict = field(init=False, default=None)
    deconv: dict = field(init=False, default=None)
    predictions: dict = field(init=False, default=None)
    physical: dict = field(init=False, default=None)
    classical: dict = field(init=False, default=None)
    spectra: dict = field(init=False, default=None)
    budget_numbers: dict = field(init=False, default=None)
    scores: dict = field(init=False, default=None)
    uncertainty: dict = field(init=False, default=None)
    goals: list = field(init=False, default=None)

    def __post_init__(self):
        self.params = resolve(PRESETS, self.preset)
        self._chosen_by_hand = self.steps is not None

    @contextlib.contextmanager
    def _stage(self, name):
        """Time a stage into :attr:`seconds` (the seconds of repeated calls add up)."""
        t0 = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0

    def _method(self, kind):
        if kind not in self.methods:
            self.methods[kind] = load_method(self.run_dir, kind, self.preset)
        return self.methods[kind]

    def load_test_set(self):
        """The held-out test slices and their truth (:func:`~indi4d.evaluation.testset.load_test_set`)."""
        with self._stage("test_set"):
            self.test = load_test_set(self.run_dir, self.params["max_test_slices"])
        return self.test

    def train_baselines(self):
        """Train or reuse the CNN and GAN at the InDI run's budget (:func:`indi4d.baselines.train_baselines`)."""
        from .. import baselines

        with self._stage("baselines"):
            # restart: baselines of another InDI run or other parameters are retrained, as chapter 04 does for InDI
            self.trained = baselines.train_baselines(self.run_dir, preset=self.preset, minutes=self.minutes,
                                                     progress=self.progress, restart=True, retrain=self.retrain)
        return self.trained

    def choose_steps(self):
        """Sweep InDI's N, pick N by the stated rule and store it in the model folder (``steps.json``).

        Returns
        -------
        dict
            :func:`~indi4d.evaluation.sweep.select_steps`' choice; the sweep rows
            and outputs are kept in :attr:`sweep` and :attr:`sweep_predictions`.
        """
        p = self.params
        with self._stage("sweep"):
            self.sweep, self.sweep_predictions = step_sweep(self._method("indi"), self.test, p["steps_sweep"],
                                                            self.preset, self.seed, self.progress)
            self.choice = select_steps(self.sweep, p["fwhm_tol"], p["psnr_tol_db"])
            self.steps = int(self.steps if self._chosen_by_hand else self.choice["steps"])
            self._store_steps()
        return self.choice

    def _store_steps(self):
        """Write N, the rule and what it was scored on into the InDI model folder (``steps.json``)."""
        from .. import model_folder, runs

        rule = (f"set by hand to {self.steps} (the rule would pick {self.choice['steps']})"
                if self._chosen_by_hand else self.choice["rule"])
        scored_on = (f"{len(self.test['z'])} held-out test slices (HQ z = {self.test['z'].tolist()}) of "
                     f"{runs.stage_dir(self.run_dir, 'pairs')}, against the {self.sweep[0]['reference']}")
        details = {k: self.choice[k] for k in ("admissible", "max_psnr", "best_fwhm_nm", "fwhm_limit_nm")}
        model_folder.write_chosen_steps(runs.stage_dir(self.run_dir, "model"), self.steps, rule=rule,
                                        sweep=self.sweep, scored_on=scored_on, preset=self.preset, seed=self.seed,
                                        **details)

    def predict_and_score(self):
        """Every method's output at the chosen N, the reference rows, and their metrics.

        The reference rows (:func:`~indi4d.evaluation.references.reference_predictions`)
        are the ideal HQ scan (when the run has ``hq_ideal.tif``) and the
        classical denoiser tuned on the validation slices. Scores are against
        HQ (the paper's), the truth and HQ in physical units
        (:func:`~indi4d.evaluation.scores.score_methods`).

        Returns
        -------
        dict
            The scores; the outputs are kept in :attr:`predictions` (normalised)
            and :attr:`physical` (physical units), the classical tuning in
            :attr:`classical`, the radial power spectra in :attr:`spectra`.
        """
        from .units import method_side, to_physical

        with self._stage("scores"):
            methods = {kind: self._method(kind) for kind in ("indi", "cnn", "gan")}
            self.predictions = predict_methods(self.run_dir, self.test, self.steps, self.preset,
                                               indi_prediction=self.sweep_predictions.get(self.steps),
                                               methods=methods)
            extra, physical, self.classical = reference_predictions(self.run_dir, self.test)
            self.predictions.update(extra)
            if has_indi_deconv(self.run_dir):
                self.predictions["indi_deconv"] = self._indi_deconv()
            self.physical = {m: physical[m] if m in physical else to_physical(x, method_side(m), self.test)
                             for m, x in self.predictions.items()}
            self.scores = score_methods(self.predictions, self.test, self.preset, self.seed, self.progress,
                                        physical=self.physical)
            self.spectra = method_spectra(self.physical, self.test)
        return self.scores

    def _indi_deconv(self):
        """indi-deconv at the N its own sweep and the same stated rule choose; the choice goes to :attr:`deconv`."""
        p = self.params
        rows, preds = step_sweep(self._method("indi_deconv"), self.test, p["steps_sweep"], self.preset, self.seed,
                                 progress=False)
        choice = select_steps(rows, p["fwhm_tol"], p["psnr_tol_db"])
        self.deconv = {"sweep": rows, "choice": choice, "steps": choice["steps"]}
        return preds[choice["steps"]]

    def estimate_uncertainty(self):
        """K stochastic samples at the chosen N against the truth (None without truth).

        Returns
        -------
        dict or None
            :func:`~indi4d.evaluation.uncertainty.uncertainty`, maps included.
        """
        if self.test["truth_mu"] is None:
            return None
        p = self.params
        enhancer = self._method("indi")
        trained_eps = float((enhancer.config or {}).get("training", {}).get("eps", 0.0) or 0.0)
        # sample at the noise the network was trained with; only a network trained without noise
        # falls back to the preset's eps, and the results say that those samples are out of distribution
        eps = trained_eps if trained_eps > 0 else p["uncertainty_eps"]
        with self._stage("uncertainty"):
            self.uncertainty = uncertainty(enhancer, self.test, self.steps, p["uncertainty_samples"],
                                           eps, self.seed, p["block_px"], self.progress)
        self.uncertainty["eps_source"] = ("the training eps" if trained_eps > 0 else
                                          "the preset's eps: the network was trained without noise (out of distribution)")
        return self.uncertainty

    def check_goals(self, budget=None):
        """The project's goals measured (:func:`~indi4d.evaluation.goals.check_goals`).

        Parameters
        ----------
        budget : dict, optional
            ``book_minutes`` (the whole book's build, known only to its caller)
            and ``max_training_minutes``; by default the longest training of
            InDI, the CNN and the GAN as recorded in their model folders.
        """
        self.budget_numbers = dict(self._training_minutes(), **(budget or {}))
        self.goals = check_goals(self.scores, sweep=self.sweep, uncertainty=self.uncertainty,
                                 budget=self.budget_numbers)
        return self.goals

    def _training_minutes(self):
        """``{"max_training_minutes": ...}`` from the training records, or {} when unknown."""
        if not self.trained:
            return {}
        minutes = [self.trained.get("budget", {}).get("minutes")]
        minutes += [self.trained.get(k, {}).get("minutes_done") for k in ("cnn", "gan")]
        minutes = [float(m) for m in minutes if m is not None]
        return {"max_training_minutes": max(minutes)} if minutes else {}

    def results(self):
        """Every number of the evaluation as one JSON-ready dict (what :meth:`save` writes)."""
        unc = None if self.uncertainty is None else {k: self.uncertainty[k] for k in UNCERTAINTY_NUMBERS}
        return {"preset": self.preset, "seed": self.seed, "run_dir": str(self.run_dir),
                "budget": self.trained["budget"], "baselines": {k: self.trained[k] for k in ("cnn", "gan")},
                "baseline_minutes": self.minutes, "test_slices": self.test["z"].tolist(),
                "pixel_size_nm": self.test["pixel_size_nm"], "sweep": self.sweep, "choice": self.choice,
                "steps": self.steps, "indi_deconv": self.deconv, "scores": self.scores, "uncertainty": unc,
                "goals": self.goals,
                "scoring": scoring_conventions(self.test), "classical": self.classical, "spectra": self.spectra,
                "budget_numbers": self.budget_numbers,
                "paper": PAPER_RESULTS, "seconds": {k: round(v, 1) for k, v in self.seconds.items()}}

    def save(self):
        """Write :meth:`results` to ``RUN_DIR/eval/metrics.json`` (atomically); return the path."""
        from .. import runs

        runs.stage_dir(self.run_dir, "eval", create=True)
        return save_results(runs.artifact(self.run_dir, "eval", "metrics"), self.results())

    def run(self):
        """Every stage in order, then :meth:`save`; returns :meth:`results`."""
        self.load_test_set()
        self.train_baselines()
        self.choose_steps()
        self.predict_and_score()
        self.estimate_uncertainty()
        self.check_goals()
        self.save()
        return self.results()


def save_results(path, results):
    """Write a results dict as JSON, atomically (``inf`` as ``Infinity``, NaN as ``null``)."""
    from ..files import write_json

    return write_json(path, results, keep_inf=True)


def evaluate_run(run_dir, preset="default", seed=0, minutes=None, steps=None, progress=True, retrain=False):
    """The whole of chapter 05 without figures: baselines, sweep, choice of N, metrics, uncertainty, goals.

    Parameters are those of :class:`Evaluation`.

    Returns
    -------
    dict
        ``budget``, ``baselines`` (training summaries), ``sweep`` (rows),
        ``choice``, ``steps``, ``scores`` (:func:`~indi4d.evaluation.scores.score_methods`),
        ``uncertainty`` (numbers only), ``goals``, ``seconds`` (per stage); also
        written to ``RUN_DIR/eval/metrics.json``, and the chosen N to
        ``RUN_DIR/model/steps.json``.
    """
    return Evaluation(run_dir, preset=preset, seed=seed, minutes=minutes, steps=steps, progress=progress,
                      retrain=retrain).run()
