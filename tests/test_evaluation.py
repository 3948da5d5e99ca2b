"""Chapter 05's evaluation logic: the N-selection rule, uncertainty correlation, oracle scores, goals, test sets."""

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d import evaluation
from indi4d.core import preprocess
from indi4d.io import write_volume

MU = {0: 0.1, 1: 0.6, 2: 2.0}  # attenuation (1/um) of pore, carbon-binder, particle


def synthetic_truth(n=3, size=64, seed=0):
    """Phase labels (binder band, particles) and their attenuation, plus HQ-like and LQ-like views of it."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    labels = np.zeros((n, size, size), np.uint8)
    labels[:, :, size // 2:] = 1
    for k in range(n):
        for _ in range(7):
            cy, cx, r = rng.uniform(9, size - 9), rng.uniform(9, size - 9), rng.uniform(4, 7)
            labels[k][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 2
    mu = np.vectorize(MU.get)(labels).astype(np.float32)
    hq = ndi.gaussian_filter(mu, (0, 1.0, 1.0)) + 0.05 * rng.standard_normal(mu.shape)
    lq = ndi.gaussian_filter(mu, (0, 2.5, 2.5)) + 0.15 * rng.standard_normal(mu.shape)
    scale = lambda a: np.clip((a - 1.0) / 1.2, -1, 1).astype(np.float32)  # noqa: E731 -- grey values in [-1, 1]
    return {"lq": scale(lq), "hq": scale(hq), "z": np.arange(n), "mask": np.ones((size, size), bool),
            "truth_mu": mu, "truth_labels": labels, "pixel_size_nm": 50.0}


@pytest.fixture(scope="module")
def test_set():
    return synthetic_truth()


# --------------------------------------------------------------------------- choosing N

SWEEP = {"steps": [1, 2, 4, 7, 10, 15, 20, 50],
         "psnr": [20.0, 20.3, 20.4, 20.2, 20.0, 19.8, 19.5, 18.0],
         "fwhm_nm": [400.0, 330.0, 300.0, 290.0, 282.0, 280.0, 279.0, 275.0]}


def rows(**changes):
    table = {**SWEEP, **changes}
    return [{"steps": n, "psnr": p, "fwhm_nm": f} for n, p, f in zip(table["steps"], table["psnr"], table["fwhm_nm"])]


def test_step_rule_picks_the_known_answer():
    # admissible (PSNR >= 20.4 - 0.5): N = 1, 2, 4, 7, 10; sharpest of those 282 nm; limit 296.1 nm -> N = 7
    choice = evaluation.select_steps(rows(), fwhm_tol=0.05, psnr_tol_db=0.5)
    assert choice["steps"] == 7
    assert choice["admissible"] == [1, 2, 4, 7, 10]
    assert choice["best_fwhm_nm"] == 282.0 and choice["fwhm_limit_nm"] == pytest.approx(296.1)
    assert "0.5 dB" in choice["rule"] and "1.05" in choice["rule"]
    # looser PSNR tolerance admits N = 50 (275 nm): limit 288.75 -> N = 10
    assert evaluation.select_steps(rows(), psnr_tol_db=3.0)["steps"] == 10
    # a 10 % FWHM tolerance takes the smaller N = 4 (300 <= 310.2)
    assert evaluation.select_steps(rows(), fwhm_tol=0.10)["steps"] == 4


def test_step_rule_skips_undefined_rows_and_refuses_an_empty_sweep():
    fw = list(SWEEP["fwhm_nm"])
    fw[3] = None  # N = 7 has no measurable edge
    assert evaluation.select_steps(rows(fwhm_nm=fw))["steps"] == 10
    fw[3] = 0.0  # nor does a zero width
    assert evaluation.select_steps(rows(fwhm_nm=fw))["steps"] == 10
    psnr = list(SWEEP["psnr"])
    psnr[2] = math.nan  # the best-PSNR row is undefined: the maximum is then 20.3
    choice = evaluation.select_steps(rows(psnr=psnr))
    assert choice["admissible"] == [1, 2, 7, 10, 15] and choice["steps"] == 7  # limit 1.05 x 280 nm
    with pytest.raises(ValueError, match="no sweep row"):
        evaluation.select_steps(rows(fwhm_nm=[None] * 8))


# --------------------------------------------------------------------------- uncertainty


def test_rank_correlation_known_answers():
    rng = np.random.default_rng(0)
    err = rng.random((2, 60, 60))
    mask = np.ones((60, 60), bool)
    mask[:10] = False
    assert evaluation.rank_correlation(np.exp(3 * err) - 7, err, mask) == pytest.approx(1.0)  # monotone
    assert evaluation.rank_correlation(-err**3, err) == pytest.approx(-1.0)
    assert abs(evaluation.rank_correlation(rng.random(err.shape), err, mask)) < 0.05  # independent, 6000 px
    assert math.isnan(evaluation.rank_correlation(np.ones_like(err), err))
    with pytest.raises(ValueError, match="shapes differ"):
        evaluation.rank_correlation(err, err[0])


def test_block_mean_known_values():
    a = np.arange(16, dtype=float).reshape(4, 4)
    np.testing.assert_array_equal(evaluation.block_mean(a, 2), [[2.5, 4.5], [10.5, 12.5]])
    assert evaluation.block_mean(np.ones((2, 5, 7)), 2).shape == (2, 2, 3)


def test_uncertainty_of_stochastic_samples(test_set):
    import keras

    from indi4d.inference import Enhancer
    from indi4d.core.model import PRESETS, build_unet

    net_params = dict(PRESETS["tiny"])
    keras.utils.set_random_seed(0)
    enhancer = Enhancer(network=build_unet(**net_params, seed=0), config={"network": net_params}, tile=128)
    u1 = evaluation.uncertainty(enhancer, test_set, steps=2, samples=3, eps=0.2, seed=5, block_px=4, progress=False)
    u2 = evaluation.uncertainty(enhancer, test_set, steps=2, samples=3, eps=0.2, seed=5, block_px=4, progress=False)
    assert u1["std"].shape == u1["error"].shape == u1["mean"].shape == test_set["lq"].shape
    np.testing.assert_array_equal(u1["std"], u2["std"])  # seeded
    assert u1["std"].min() >= 0 and u1["std"].mean() > 0
    assert -1.0 <= u1["spearman"] <= 1.0 and -1.0 <= u1["spearman_block"] <= 1.0
    # the error is that of the affinely fitted sample mean against the truth
    from indi4d.metrics import affine_fit

    a, b = affine_fit(u1["mean"], test_set["truth_mu"])
    np.testing.assert_allclose(u1["error"], np.abs(a * u1["mean"] + b - test_set["truth_mu"]), atol=1e-5)
    with pytest.raises(ValueError, match="eps > 0"):
        evaluation.uncertainty(enhancer, test_set, steps=2, samples=3, eps=0.0, progress=False)


# --------------------------------------------------------------------------- oracle scores and goals


@pytest.fixture(scope="module")
def scores(test_set):
    t = test_set
    preds = {"bicubic": t["lq"], "hq": t["hq"], "indi": t["truth_mu"]}  # InDI replaced by an oracle
    return evaluation.score_methods(preds, t, preset="tiny", progress=False)


def test_an_oracle_gets_the_best_possible_numbers(scores):
    oracle, lq = scores["indi"]["vs_truth"], scores["bicubic"]["vs_truth"]
    assert oracle["psnr"] == math.inf and oracle["ssim"] == pytest.approx(1.0)
    assert oracle["false_particles_per_mm2"] == 0 and oracle["missed_particles_per_mm2"] == 0
    assert oracle["false_edge_fraction"] == 0 and oracle["flat_region_error"] == pytest.approx(0.0, abs=1e-12)
    assert oracle["sift_congruent_points"] >= max(lq["sift_congruent_points"],
                                                  scores["hq"]["vs_truth"]["sift_congruent_points"])
    for m in ("bicubic", "hq"):
        other = scores[m]["vs_truth"]
        assert other["psnr"] < 40 and other["ssim"] < 0.99 and other["flat_region_error"] > 0.01
        assert oracle["fwhm_nm"] < other["fwhm_nm"]
        # the background holds pore and binder, so even the truth has a finite CNR; none is higher
        assert oracle["cnr"] >= other["cnr"]
    assert scores["hq"]["vs_hq"] is None  # HQ is not scored against itself


def test_goals_are_measured_against_the_other_methods(scores):
    goals = {g["name"]: g for g in evaluation.check_goals(scores)}
    psnr = goals["InDI PSNR vs truth >= HQ + 1 dB"]
    assert psnr["passed"] and psnr["measured"] == math.inf
    assert psnr["target"] == pytest.approx(scores["hq"]["vs_truth"]["psnr"] + 1.0)
    fw = goals["InDI FWHM <= 1.05 x HQ's with overshoot <= HQ's + 0.03"]
    assert fw["target"] == pytest.approx(1.05 * scores["hq"]["vs_truth"]["fwhm_nm"]) and fw["passed"]
    assert fw["conditions"][1]["target"] == pytest.approx(scores["hq"]["vs_truth"]["edge_overshoot"] + 0.03)
    cnr = goals["InDI CNR >= 1.2 x HQ's"]
    assert cnr["target"] == pytest.approx(1.2 * scores["hq"]["vs_truth"]["cnr"])
    assert cnr["passed"] == (cnr["measured"] >= cnr["target"])
    # no CNN in this run, no indi-deconv yet: undefined with a reason, not failed
    assert goals["InDI FWHM <= 0.9 x CNN's"]["passed"] is None and goals["InDI FWHM <= 0.9 x CNN's"]["why"]
    deconv = [g for g in goals.values() if g["group"] == "indi_deconv"]
    assert len(deconv) == 3 and all(g["passed"] is None and "indi_deconv" in g["why"] for g in deconv)
    # "k times none" needs something: 0 SIFT points do not double 0 (a goal of the caller's own)
    sift_goal = [{"name": "sift", "metric": "sift_congruent_points", "reference": "hq", "method": "indi",
                  "against": "bicubic", "relation": ">=", "factor": 2.0}]
    no_sift = {m: {"vs_hq": {"sift_congruent_points": 0.0}, "vs_truth": None} for m in ("bicubic", "indi")}
    sift = evaluation.check_goals(no_sift, sift_goal)[0]
    assert sift["target"] == 0 and sift["passed"] is False
    # a goal whose method is missing is undefined, not failed
    partial = evaluation.check_goals({k: v for k, v in scores.items() if k != "hq"})
    assert {g["name"]: g["passed"] for g in partial}["InDI CNR >= 1.2 x HQ's"] is None


def test_tables_and_findings_carry_the_numbers(scores):
    table = evaluation.metrics_table(scores, steps=7)
    assert "InDI (N = 7)" in table and "803 ± 135" in table and "∞" in table
    psnr_lq = scores["bicubic"]["vs_truth"]["psnr"]
    assert f"{psnr_lq:.2f}" in table
    assert table.count("\n") == 4  # header, rule, three methods
    hall = evaluation.hallucination_table(scores)
    assert "false particles" in hall and hall.count("\n") == 4
    text = evaluation.findings(scores, goals=evaluation.check_goals(scores))
    assert "Sharpness" in text and "project goals met" in text


def test_pick_roi_finds_the_busiest_window():
    labels = np.zeros((64, 64), np.uint8)
    labels[40:56:2, 8:24] = 2  # stripes: many boundaries in rows 40-56, columns 8-24
    mask = np.ones((64, 64), bool)
    y0, x0, s = evaluation.pick_roi(labels, mask, 16)
    assert s == 16 and 40 - 16 < y0 <= 40 and abs(x0 - 8) <= 1
    mask[:, :30] = False  # the stripes are outside the valid region now
    y0, x0, _ = evaluation.pick_roi(labels, mask, 16)
    assert x0 >= 30


# --------------------------------------------------------------------------- run folders


def synthetic_run(run, n=10, size=64):
    """A run folder with pairs (test split: pairs 7 and 8, HQ slices 9 and 10) and the truth; returns the truth."""
    truth = synthetic_truth(n=n, size=size, seed=1)
    split = np.array(["train"] * 6 + ["val", "test", "test", "train"])
    z = np.arange(n) + 2  # pairs start at HQ slice 2
    norm = {"lq": {"method": "none", "lo": -1.0, "hi": 1.0}, "hq": {"method": "none", "lo": -1.0, "hi": 1.0}}
    preprocess.save_pairs(run / "pairs", truth["lq"], truth["hq"], truth["mask"], z, split, phi={},
                          normalisation=norm, provenance={})
    vol_mu = np.zeros((n + 4, size, size), np.float32)
    vol_lab = np.zeros((n + 4, size, size), np.uint8)
    vol_mu[2:2 + n], vol_lab[2:2 + n] = truth["truth_mu"], truth["truth_labels"]
    write_volume(run / "data" / "truth_mu_hq.tif", vol_mu, voxel_size_nm=50.0)
    write_volume(run / "data" / "truth_labels_hq.tif", vol_lab, voxel_size_nm=50.0)
    (run / "data" / "meta.json").write_text(json.dumps({"voxel_size_nm": {"lq": 100.0, "hq": 50.0}}))
    return truth


def test_load_test_set_takes_the_truth_slices_of_the_test_split(tmp_path, test_set):
    run = tmp_path / "run"
    n, size = 10, 64
    truth = synthetic_run(run, n, size)
    t = evaluation.load_test_set(run)
    assert t["z"].tolist() == [9, 10] and t["lq"].shape == (2, size, size)
    np.testing.assert_array_equal(t["truth_labels"], truth["truth_labels"][[7, 8]])
    np.testing.assert_allclose(t["truth_mu"], truth["truth_mu"][[7, 8]])
    np.testing.assert_allclose(t["hq"], truth["hq"][[7, 8]])
    assert t["pixel_size_nm"] == 50.0
    assert evaluation.load_test_set(run, max_slices=1)["z"].tolist() == [9]
    from indi4d.runs import MissingArtifactError

    with pytest.raises(MissingArtifactError, match="02_registration"):
        evaluation.load_test_set(tmp_path / "empty")


def test_the_orchestrator_stores_the_chosen_steps_in_the_model_folder(tmp_path):
    """Evaluation.choose_steps: the sweep, the rule's N, and steps.json for `indi4d enhance`."""
    from indi4d import model_folder
    from indi4d.core.model import PRESETS, build_unet
    from indi4d.training import save_model

    run = tmp_path / "run"
    synthetic_run(run)
    net_params = dict(PRESETS["tiny"])
    save_model(build_unet(**net_params, seed=0), run / "model" / "model.keras")
    (run / "model" / "config.json").write_text(json.dumps({"network": net_params, "training": {"eps": 0.0}}))
    (run / "model" / "normalisation.json").write_text(json.dumps({"lq": {"method": "none", "lo": -1.0, "hi": 1.0},
                                                                  "hq": {"method": "none", "lo": -1.0, "hi": 1.0}}))
    ev = evaluation.Evaluation(run, preset="tiny", seed=0, progress=False)
    assert ev.load_test_set()["z"].tolist() == [9, 10]
    choice = ev.choose_steps()
    assert [r["steps"] for r in ev.sweep] == list(evaluation.PRESETS["tiny"]["steps_sweep"])
    assert choice == evaluation.select_steps(ev.sweep, 0.05, 0.5) and ev.steps == choice["steps"]
    stored = model_folder.read_chosen_steps(run / "model")
    assert stored["steps"] == choice["steps"] and stored["rule"] == choice["rule"]
    assert "truth" in stored["scored_on"] and len(stored["sweep"]) == len(ev.sweep)
    assert model_folder.default_steps(run / "model") == choice["steps"]
    assert f"| {choice['steps']} ←" in evaluation.sweep_table(ev.sweep, ev.steps)
    # a hand-set N is stored as such, with what the rule would have picked
    by_hand = evaluation.Evaluation(run, preset="tiny", steps=3, progress=False)
    by_hand.load_test_set()
    by_hand.choose_steps()
    stored = model_folder.read_chosen_steps(run / "model")
    assert stored["steps"] == 3 and "by hand" in stored["rule"]


def test_project_goals_read_their_numbers_from_the_files_that_hold_them(tmp_path):
    # chapter 07's results: mean Dice LQ 0.5, InDI 0.75, ideal 1.0 -> half the gap closed (exact in floats)
    from indi4d import runs

    def step(d):
        return {"mean": {"dice": d}}
    seg = {"scores": {"lq": [step(0.5)], "indi": [step(0.75)], "ideal": [step(1.0)]}}
    path = runs.artifact(tmp_path / "run", "segmentation", "metrics")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(seg))
    results = tmp_path / "results"
    results.mkdir()
    (results / "speed.json").write_text(json.dumps({"loop": {"ratio_in_epochs": 1.4}}))
    scored = {"indi_n1": {"psnr": 1.0}, "indi_rule": {"psnr": 1.0}}
    (results / "limits.json").write_text(json.dumps({"points": [scored] * 12 + [{"indi_n1": None}]}))
    numbers = evaluation.project_numbers(tmp_path / "run", results, tmp_path / "no_book")
    assert numbers["dice_gap_closed"] == 0.5 and numbers["loop_ratio"] == 1.4
    assert numbers["limits_points"] == 12 and "workshop_book_minutes" not in numbers
    rows = evaluation.check_goals({}, goals=evaluation.PROJECT_GOALS, project=numbers)
    goals = {goal["metric"]: row for goal, row in zip(evaluation.PROJECT_GOALS, rows)}
    assert goals["dice_gap_closed"]["passed"] is True  # 0.5 >= 0.5
    assert goals["loop_ratio"]["passed"] is False  # 1.4 > 1.3
    assert goals["limits_points"]["passed"] is True
    assert goals["workshop_book_minutes"]["passed"] is None and "no workshop build" in goals["workshop_book_minutes"]["why"]
