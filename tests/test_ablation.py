"""The InDI ablation trains what each variant names and scores every one the same way."""

import json

import pytest

from indi4d.evaluation import ablation
from indi4d import model_folder, runs
from indi4d.registration import register_scans
from indi4d.simulate import simulate_beamline
from indi4d.training import train_indi


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A tiny simulated run folder with pairs that carry the HQ halves."""
    run = tmp_path_factory.mktemp("ablation_run")
    data = runs.stage_dir(run, "data", create=True)
    simulate_beamline(data, "tiny", seed=0, progress=False)
    halves = tuple(runs.artifact(run, "data", k) for k in ("hq_half_a", "hq_half_b"))
    register_scans(runs.artifact(run, "data", "lq"), runs.artifact(run, "data", "hq"), runs.stage_dir(run, "pairs"),
                   meta_path=runs.artifact(run, "data", "meta"), preset="tiny", hq_halves=halves,
                   allow_unconverged=True, progress=False)
    return run


def test_unknown_variants_are_refused_before_any_training(tiny_run):
    with pytest.raises(ValueError, match="unknown ablation variant 'sharper'"):
        ablation.run_ablation(tiny_run, ["baseline", "sharper"], preset="tiny", progress=False)
    assert not runs.stage_dir(tiny_run, "ablation").exists()


def test_combined_variants_are_the_union_of_their_parts():
    _, everything = ablation.variant_overrides("all", whole_crop=48, total_steps=300)
    for part in ("residual", "p_one_third", "eps", "halves"):
        for key, value in ablation.VARIANTS[part][1].items():
            assert everything[key] == value
    assert everything["crop"] == 48 and everything["min_inside"] == 0.0
    # the average spans a tenth of the run: 1 / (1 - ema) = 30 steps of 300; none for a 4-step run
    assert everything["ema"] == pytest.approx(1 - 1 / 30)
    assert ablation.variant_overrides("ema", 48, total_steps=4)[1]["ema"] == 0.0
    _, deconv = ablation.variant_overrides("indi_deconv", whole_crop=48)
    assert deconv["target"] == "halves_deconv" and deconv["parametrisation"] == "residual"
    # every variant starts from the original training, whatever the presets now say
    _, base = ablation.variant_overrides("baseline", 48)
    _, halves = ablation.variant_overrides("halves", 48)
    assert base == ablation.BASELINE and halves == {**ablation.BASELINE, "target": "halves"}
    _, chosen = ablation.variant_overrides("chosen", 48)
    assert chosen == {**ablation.BASELINE, "target": "halves", "p_one": pytest.approx(1 / 3)}


def test_each_variant_trains_what_it_names_and_is_scored(tiny_run):
    results = ablation.run_ablation(tiny_run, ["baseline", "residual", "chosen"], preset="tiny", steps=(1, 2),
                                    progress=False)
    saved = json.loads(runs.artifact(tiny_run, "ablation", "results").read_text())
    assert [r["name"] for r in saved["rows"]] == ["baseline", "residual", "chosen"]
    for row in results["rows"]:
        config = model_folder.read_config(runs.stage_dir(tiny_run, "ablation") / row["name"])
        for key, value in row["overrides"].items():
            assert config["training"][key] == value, (row["name"], key)
        assert row["chosen_steps"] in (1, 2) or row["rule"].startswith("nothing chosen")
        assert row["at_one"]["steps"] == 1 and row["at_one"]["psnr"] is not None
        assert len(row["sweep"]) == 2
    table = ablation.ablation_table(results).splitlines()
    assert [line.split("|")[1].strip() for line in table[2:]] == ["baseline", "residual", "chosen"]
    # "chosen" is the preset's own run (its "auto" target is the halves these pairs hold): the same seed gives
    # the very same loss curve; the baseline is the original training, a different one
    direct = tiny_run / "direct_model"
    schedule = {k: ablation.PRESETS["tiny"][k] for k in ("epochs", "steps_per_epoch")}
    train_indi(runs.stage_dir(tiny_run, "pairs"), direct, preset="tiny", seed=0, overrides=schedule, progress=False)
    history = lambda d: json.loads((d / "history.json").read_text())["loss"]  # noqa: E731
    assert model_folder.read_config(direct)["training"]["target"] == "halves"
    assert history(runs.stage_dir(tiny_run, "ablation") / "chosen") == history(direct)
    assert history(runs.stage_dir(tiny_run, "ablation") / "baseline") != history(direct)
