"""InDI training: schedule, learning on tiny data, resume after interruption or damage, step bound and
wall-time safeguard, and a model folder that is never half-written nor changed by a refused run."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from indi4d import model_checkpoints, model_folder
from indi4d.files import file_sha256
from indi4d.training import PRESETS, one_cycle_cosine, train_indi
from synthetic import make_pairs

SEED1 = dict(preset="tiny", seed=1, progress=False)  # tiny: 2 epochs of 4 steps


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def whole(pairs, tmp_path_factory):
    """An uninterrupted tiny run (seed 1, 8 steps) that interrupted ones must reproduce."""
    folder = tmp_path_factory.mktemp("whole") / "m"
    return folder, train_indi(pairs, folder, **SEED1)


def _history(folder):
    return json.loads((folder / "history.json").read_text())


def _weights(folder):
    return keras.saving.load_model(folder / "model.keras", compile=False).get_weights()


def _tree(folder):
    """Every entry below ``folder``: file -> sha256, folder -> "dir"."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else file_sha256(p) for p in sorted(folder.rglob("*"))}


def test_one_cycle_schedule_shape():
    s = one_cycle_cosine(1e-3, 100, pct_start=0.2, div_factor=25, final_div_factor=1e3)
    lr = np.array([float(s(k)) for k in range(101)])
    assert lr[0] == pytest.approx(1e-3 / 25, rel=1e-5)  # float32 arithmetic
    assert lr.max() == pytest.approx(1e-3, rel=1e-5) and lr.argmax() == 20
    assert lr[100] == pytest.approx(1e-3 / 25 / 1e3, rel=1e-4)
    assert np.all(np.diff(lr[:21]) > 0) and np.all(np.diff(lr[20:]) < 0)
    assert lr[60] == pytest.approx(lr[100] + (1e-3 - lr[100]) / 2, rel=1e-4)  # half-way down the cosine
    again = type(s).from_config(s.get_config())
    assert float(again(37)) == float(s(37))


def test_a_few_steps_lower_the_validation_loss(pairs, tmp_path):
    summary = train_indi(pairs, tmp_path / "m", preset="tiny", seed=0, progress=False,
                         overrides={"epochs": 3, "steps_per_epoch": 8, "max_lr": 3e-3})
    history = _history(tmp_path / "m")
    assert len(history["val_loss"]) == 3 == summary["epochs_done"]
    assert history["val_loss"][-1] < 0.85 * history["val_loss"][0]
    assert summary["stopped"] is None and summary["n_train"] == 8 and summary["n_val"] == 2
    assert summary["stopped_by"] == "steps" and summary["global_step"] == summary["total_steps"] == 24
    for name in ("model.keras", "config.json", "normalisation.json", "history.json", "summary.json"):
        assert (tmp_path / "m" / name).exists()
    assert model_folder.read_summary(tmp_path / "m")["stopped_by"] == "steps"
    assert json.loads((tmp_path / "m" / "normalisation.json").read_text())["lq"]["method"] == "none"
    net = keras.saving.load_model(tmp_path / "m" / "model.keras", compile=False)
    assert net.count_params() == summary["n_params"]
    # the LQ scan's voxel size and dtype travel with the model: enhance checks a new scan without the pairs
    from indi4d.inference.checks import model_lq_record

    record = model_lq_record(tmp_path / "m")
    assert (record["voxel_size_nm"], record["dtype"]) == (100.0, "uint16")
    assert record["source"].endswith("config.json")


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(pairs, whole, tmp_path):
    whole_dir, whole_summary = whole
    part = train_indi(pairs, tmp_path / "split", max_steps=3, **SEED1)  # stops mid-epoch 0 (4 steps/epoch)
    assert part["stopped_by"] == "max_steps" and part["global_step"] == 3 and part["epochs_done"] == 0
    assert (tmp_path / "split" / "model.keras").exists()  # a usable model even when stopped
    rest = train_indi(pairs, tmp_path / "split", **SEED1)
    assert rest["resumed_from"] == 3 and rest["global_step"] == whole_summary["global_step"] == 8
    # the run's time counts both calls (the epochs' seconds); ``seconds`` is the second call's alone
    split_history = _history(tmp_path / "split")
    assert rest["run_seconds"] == pytest.approx(sum(split_history["seconds"]), abs=0.02)
    assert model_folder.run_seconds(rest) == rest["run_seconds"]
    older = {k: v for k, v in rest.items() if k != "run_seconds"}  # a record written before run_seconds existed
    assert model_folder.run_seconds(older, split_history) == pytest.approx(sum(split_history["seconds"]), abs=0.01)
    h1, h2 = _history(whole_dir), _history(tmp_path / "split")
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-4)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-4)
    w1, w2 = _weights(whole_dir), _weights(tmp_path / "split")
    assert max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)) < 1e-4
    again = train_indi(pairs, tmp_path / "split", **SEED1)  # a finished run is not trained again
    assert again["global_step"] == 8 and again["resumed_from"] == 8 and again["stopped_by"] == "steps"

    # a kill: stop at step 6, then remove what was written after the epoch-end checkpoint (step 4)
    train_indi(pairs, tmp_path / "killed", max_steps=6, **SEED1)
    ckpts = sorted((tmp_path / "killed" / "checkpoints").glob("ckpt_*"))
    assert [c.name for c in ckpts] == ["ckpt_000000004", "ckpt_000000006"]
    shutil.rmtree(ckpts[-1])
    (tmp_path / "killed" / "model.keras").unlink()
    revived = train_indi(pairs, tmp_path / "killed", **SEED1)
    assert revived["resumed_from"] == 4
    np.testing.assert_allclose(_history(tmp_path / "killed")["val_loss"], h1["val_loss"], rtol=1e-4)


def test_a_damaged_latest_checkpoint_resumes_from_the_previous_one_and_says_so(pairs, whole, tmp_path):
    folder = tmp_path / "m"
    train_indi(pairs, folder, max_steps=6, **SEED1)
    ckpt_dir = folder / "checkpoints"
    weights = ckpt_dir / "ckpt_000000006" / "model.weights.h5"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 3])  # a truncated write
    # a killed run's half-written checkpoint: a temp recorded by a process that is gone
    code = ("import os; from indi4d.files import make_temp\n"
            f"print(make_temp({str(ckpt_dir / 'ckpt_000000008')!r}, directory=True)); os._exit(9)\n")
    stale = Path(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip())
    assert stale.is_dir()
    with pytest.warns(RuntimeWarning, match="ckpt_000000006.*ckpt_000000004"):
        done = train_indi(pairs, folder, **SEED1)
    assert done["resumed_from"] == 4 and done["resumed_after_damaged"] == ["ckpt_000000006"]
    assert done["global_step"] == 8 and done["stopped_by"] == "steps"
    assert model_folder.read_summary(folder)["resumed_after_damaged"] == ["ckpt_000000006"]
    assert not stale.exists()
    # the replayed steps 4..8 are those of the uninterrupted run
    np.testing.assert_allclose(_history(folder)["val_loss"], _history(whole[0])["val_loss"], rtol=1e-4)


def test_every_checkpoint_damaged_is_refused_with_the_way_out(pairs, tmp_path):
    folder = tmp_path / "m"
    train_indi(pairs, folder, max_steps=1, **SEED1)
    (folder / "checkpoints" / "ckpt_000000001" / "state.json").write_text("{not json")
    with pytest.raises(ValueError, match="every checkpoint is damaged.*--restart"):
        train_indi(pairs, folder, **SEED1)


def test_wall_time_safeguard_stops_cleanly_says_so_and_is_recorded(pairs, tmp_path):
    with pytest.warns(RuntimeWarning, match="wall-time"):
        summary = train_indi(pairs, tmp_path / "m", preset="tiny", max_minutes=1e-6, progress=False)
    assert summary["stopped_by"] == "wall_time_budget" and summary["global_step"] == 1
    assert model_folder.read_summary(tmp_path / "m")["stopped_by"] == "wall_time_budget"
    net = keras.saving.load_model(tmp_path / "m" / "model.keras", compile=False)
    out = np.asarray(net([np.zeros((1, 32, 32, 1), np.float32), np.ones(1, np.float32)]))
    assert out.shape == (1, 32, 32, 1) and np.all(np.isfinite(out))


def test_the_book_run_is_bounded_by_steps_not_by_the_clock():
    default = PRESETS["default"]
    # the reference recipe: the limits study's rule picked 12000 steps (benchmarks/results/limits.json)
    assert default["epochs"] * default["steps_per_epoch"] == 12000
    # the wall-time budget is only a safeguard: far above the ~15-35 min the run takes on two cores
    assert default["max_minutes"] is None or default["max_minutes"] >= 120


@pytest.mark.parametrize("kw", [{"epochs": 0}, {"max_steps": 0}, {"overrides": {"steps_per_epoch": 0}}])
def test_a_run_without_steps_is_refused_before_anything_is_written(pairs, tmp_path, kw):
    with pytest.raises(ValueError, match="at least 1"):
        train_indi(pairs, tmp_path / "m", preset="tiny", progress=False, **kw)
    assert not (tmp_path / "m").exists()


def test_a_refused_run_leaves_the_model_folder_byte_identical(pairs, tmp_path):
    folder = tmp_path / "m"
    train_indi(pairs, folder, preset="tiny", max_steps=5, progress=False)
    model_folder.write_chosen_steps(folder, 7, rule="test")
    before = _tree(folder)
    other = make_pairs(tmp_path / "other_pairs", seed=9, grey_max=20000)  # other data, other normalisation
    with pytest.raises(ValueError, match="pairs_sha256"):
        train_indi(other, folder, preset="tiny", progress=False)
    assert _tree(folder) == before
    with pytest.raises(ValueError, match="other parameters"):
        train_indi(pairs, folder, preset="tiny", seed=5, progress=False)
    assert _tree(folder) == before


def test_restart_discards_another_run_entirely(pairs, tmp_path):
    folder = tmp_path / "m"
    train_indi(pairs, folder, preset="tiny", max_steps=5, progress=False)
    model_folder.write_chosen_steps(folder, 7, rule="test")  # chapter 05's choice for *that* model
    other = make_pairs(tmp_path / "other_pairs", seed=9, grey_max=20000)
    fresh = train_indi(other, folder, preset="tiny", max_steps=2, restart=True, progress=False)
    assert fresh["resumed_from"] is None and fresh["global_step"] == 2
    assert model_folder.read_chosen_steps(folder) is None
    assert model_folder.read_normalisation(folder) == json.loads((other / "normalisation.json").read_text())
    assert [c.name for c in model_checkpoints.checkpoints(folder)] == ["ckpt_000000002"]
    assert model_folder.read_config(folder)["pairs_dir"] == str(other.resolve())


def test_bad_inputs_raise(pairs, tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs.npz"):
        train_indi(tmp_path / "nowhere", tmp_path / "m", preset="tiny")
    with pytest.raises(ValueError, match="multiple"):
        train_indi(pairs, tmp_path / "m", preset="tiny", overrides={"crop": 31})
    with pytest.raises(ValueError, match="unknown parameter"):
        train_indi(pairs, tmp_path / "m", preset="tiny", overrides={"learning_rate": 1.0})
    assert not (tmp_path / "m").exists()
    assert set(PRESETS) == {"tiny", "quick", "workshop", "default", "paper"}
    # quick: the short run for trying the commands, 1500 steps of the book's network
    assert PRESETS["quick"]["epochs"] * PRESETS["quick"]["steps_per_epoch"] == 1500
    assert {k: v for k, v in PRESETS["quick"].items() if k not in ("epochs", "steps_per_epoch")} == \
        {k: v for k, v in PRESETS["default"].items() if k not in ("epochs", "steps_per_epoch")}
    # the workshop installs the default run's network: only the crops its chapter shows differ
    uncropped = lambda p: {k: v for k, v in PRESETS[p].items() if "crop" not in k}  # noqa: E731
    assert uncropped("workshop") == uncropped("default")
    assert PRESETS["paper"]["max_lr"] == 5e-4 and PRESETS["paper"]["batch_size"] == 2


def test_cli_train(pairs, tmp_path, capsys):
    from indi4d.cli import main

    assert main(["train", str(pairs), str(tmp_path / "m"), "--preset", "tiny", "--epochs", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs_done"] == 1 and (tmp_path / "m" / "model.keras").exists()


def test_ema_weights_follow_the_recursion_and_differ_from_the_raw_ones():
    from indi4d.training import Part, adam
    from indi4d.training.checkpoints import averaged_weights

    keras.utils.set_random_seed(0)
    net = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, use_bias=False)])
    opt = adam(0.1, 10, 0.25, ema=0.5)
    part = Part(net, opt)
    part.build()
    with averaged_weights([part]):  # no step yet: nothing to average, the weights stay
        w0 = net.get_weights()[0].copy()
    raw = []
    for g in (1.0, -2.0):
        opt.apply_gradients([(np.full((2, 1), g, np.float32), net.trainable_variables[0])])
        raw.append(net.get_weights()[0].copy())
    assert not np.allclose(raw[0], w0)
    expected = 0.5 * raw[0] + 0.5 * raw[1]  # a_1 = w_1, a_2 = m a_1 + (1 - m) w_2
    with averaged_weights([part]):
        np.testing.assert_allclose(net.get_weights()[0], expected, rtol=1e-6)
        assert np.abs(net.get_weights()[0] - raw[1]).max() > 1e-3
    np.testing.assert_array_equal(net.get_weights()[0], raw[1])  # the raw weights are back, exactly
    with pytest.raises(ValueError, match="ema"):
        adam(0.1, 10, 0.25, ema=1.0)


#: every new option away from its default, and whole 64 x 64 slices as crops
OPTIONS = {"parametrisation": "residual", "head": "linear", "loss_weighting": "min_snr", "ema": 0.5, "eps": 0.01,
           "noise_schedule": "brownian", "p_one": 1 / 3, "crop": 64, "val_crop": 64, "min_inside": 0.0}


def test_new_options_resume_exactly_save_the_ema_weights_and_are_recorded(pairs, tmp_path):
    from indi4d import inference
    from indi4d.core.indi import indi_sample

    whole = train_indi(pairs, tmp_path / "whole", overrides=OPTIONS, **SEED1)
    part = train_indi(pairs, tmp_path / "split", max_steps=3, overrides=OPTIONS, **SEED1)
    assert part["global_step"] == 3
    rest = train_indi(pairs, tmp_path / "split", overrides=OPTIONS, **SEED1)
    assert rest["resumed_from"] == 3 and rest["global_step"] == whole["global_step"] == 8
    h1, h2 = _history(tmp_path / "whole"), _history(tmp_path / "split")
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-4)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-4)
    w1, w2 = _weights(tmp_path / "whole"), _weights(tmp_path / "split")
    assert max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)) < 1e-4
    # model.keras holds the EMA weights, the last checkpoint the raw ones
    ckpt = model_checkpoints.checkpoints(tmp_path / "whole")[-1]
    raw = keras.saving.load_model(tmp_path / "whole" / "model.keras", compile=False)
    raw.load_weights(ckpt / "model.weights.h5")
    assert max(float(np.abs(a - b).max()) for a, b in zip(w1, raw.get_weights())) > 1e-6
    training = model_folder.read_config(tmp_path / "whole")["training"]
    for key, value in OPTIONS.items():
        assert training[key] == pytest.approx(value) if isinstance(value, float) else training[key] == value
    assert training["target"] == "hq" and training["psf_sigma_nm"] is None
    # the one prediction path loads it; the sampler reads the schedule and clips the linear head's result
    enhancer = inference.load_enhancer(tmp_path / "whole", preset="tiny")
    out = indi_sample(enhancer, np.full((1, 64, 64, 1), 0.99, np.float32), 3, eps=training["eps"], seed=0,
                      stochastic=True)
    assert out.shape == (1, 64, 64, 1) and np.all(np.abs(out) <= 1.0)
    with pytest.raises(ValueError, match="other parameters"):  # a resume with another value is refused
        train_indi(pairs, tmp_path / "split", overrides={**OPTIONS, "ema": 0.6}, **SEED1)


def test_an_average_longer_than_a_third_of_the_run_is_refused(pairs, tmp_path):
    """ema 0.9 averages over ~10 steps: too long for an 8-step run (the initial weights would weigh 43 %)."""
    with pytest.raises(ValueError, match=r"ema 0.9 averages over ~10 steps.*8 steps.*ema <= 0.6250"):
        train_indi(pairs, tmp_path / "m", overrides={**OPTIONS, "ema": 0.9}, **SEED1)
    assert not (tmp_path / "m").exists()


def test_bad_option_values_are_refused_before_anything_is_written(pairs, tmp_path):
    for key, value in (("head", "relu"), ("parametrisation", "v"), ("loss_weighting", "snr"), ("ema", 1.5),
                       ("noise_schedule", "cosine"), ("target", "truth")):
        with pytest.raises(ValueError, match=key):
            train_indi(pairs, tmp_path / "m", preset="tiny", overrides={key: value}, progress=False)
    assert not (tmp_path / "m").exists()
    # the original behaviour but for the two changes that won chapter 04's ablation: denoised targets when
    # the pairs allow them ("auto") and t = 1 a third of the time
    assert all(PRESETS[p][k] == v for p in PRESETS for k, v in
               {"target": "auto", "psf_sigma_nm": None, "parametrisation": "x", "head": "tanh",
                "loss_weighting": "none", "ema": 0.0, "p_one": 1 / 3, "eps": 0.0, "noise_schedule": "linear"}.items())


def test_batches_drawn_ahead_are_the_same_batches_in_the_same_order(monkeypatch):
    """Drawing an epoch in blocks changes when a batch is made, never which: resume and short epochs included."""
    from indi4d.training import loop

    drawn_at = []

    def source(epoch):  # batch k of epoch e holds e * 100 + k; records how many were drawn before each
        for k in range(10):
            drawn_at.append(k)
            yield (np.full((2, 4, 4, 1), epoch * 100 + k, np.float32),)

    one_batch = 2 * 4 * 4 * 4
    monkeypatch.setattr(loop, "DRAW_AHEAD_BYTES", 3 * one_batch)  # blocks of three batches
    got = []
    for batch in loop.epoch_batches(source, {"epoch": 1, "step_in_epoch": 0}, 7):
        got.append(int(batch[0][0, 0, 0, 0]))
        assert len(drawn_at) == {0: 3, 1: 3, 2: 3, 3: 6, 4: 6, 5: 6, 6: 7}[len(got) - 1]  # whole blocks ahead
    assert got == [100 + k for k in range(7)]
    resumed = [int(b[0][0, 0, 0, 0]) for b in loop.epoch_batches(source, {"epoch": 2, "step_in_epoch": 5}, 9)]
    assert resumed == [205, 206, 207, 208]  # the used batches are drawn again and dropped
    with pytest.raises(ValueError, match="gave only 10 of 12 batches"):
        list(loop.epoch_batches(source, {"epoch": 0, "step_in_epoch": 0}, 12))


def test_a_finished_run_asked_again_keeps_its_training_record(tmp_path):
    """The no-op call of a finished run (0 steps) does not overwrite the seconds of the training that made it."""
    pairs = make_pairs(tmp_path / "pairs")
    first = train_indi(pairs, tmp_path / "m", preset="tiny", seed=0, progress=False)
    again = train_indi(pairs, tmp_path / "m", preset="tiny", seed=0, progress=False)
    assert again["resumed_from"] == again["global_step"] == first["global_step"]
    kept = model_folder.read_summary(tmp_path / "m")
    assert kept["seconds"] == first["seconds"] and kept["resumed_from"] is None and "machine" in kept
