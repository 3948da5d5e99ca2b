"""InDI training: schedule, learning on tiny data, resume after interruption, time budget."""

import json
import shutil

import keras
import numpy as np
import pytest

from indi4d.training import PRESETS, one_cycle_cosine, train_indi
from synthetic import make_pairs


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"))


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
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert len(history["val_loss"]) == 3 == summary["epochs_done"]
    assert history["val_loss"][-1] < 0.85 * history["val_loss"][0]
    assert summary["stopped"] is None and summary["n_train"] == 8 and summary["n_val"] == 2
    for name in ("model.keras", "config.json", "normalisation.json", "history.json"):
        assert (tmp_path / "m" / name).exists()
    assert json.loads((tmp_path / "m" / "normalisation.json").read_text())["lq"]["method"] == "none"
    net = keras.saving.load_model(tmp_path / "m" / "model.keras", compile=False)
    assert net.count_params() == summary["n_params"]


def test_interrupted_and_resumed_run_matches_an_uninterrupted_one(pairs, tmp_path):
    kw = dict(preset="tiny", seed=1, progress=False)
    whole = train_indi(pairs, tmp_path / "whole", **kw)
    part = train_indi(pairs, tmp_path / "split", max_steps=3, **kw)  # stops mid-epoch 0 (4 steps/epoch)
    assert part["stopped"] == "max_steps" and part["global_step"] == 3 and part["epochs_done"] == 0
    assert (tmp_path / "split" / "model.keras").exists()  # a usable model even when stopped
    rest = train_indi(pairs, tmp_path / "split", **kw)
    assert rest["resumed_from"] == 3 and rest["global_step"] == whole["global_step"] == 8
    h1 = json.loads((tmp_path / "whole" / "history.json").read_text())
    h2 = json.loads((tmp_path / "split" / "history.json").read_text())
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-4)
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-4)
    w1 = keras.saving.load_model(tmp_path / "whole" / "model.keras", compile=False).get_weights()
    w2 = keras.saving.load_model(tmp_path / "split" / "model.keras", compile=False).get_weights()
    assert max(float(np.abs(a - b).max()) for a, b in zip(w1, w2)) < 1e-4
    again = train_indi(pairs, tmp_path / "split", **kw)  # a finished run is not trained again
    assert again["global_step"] == 8 and again["resumed_from"] == 8

    # a kill: stop at step 6, then remove what was written after the epoch-end checkpoint (step 4)
    train_indi(pairs, tmp_path / "killed", max_steps=6, **kw)
    ckpts = sorted((tmp_path / "killed" / "checkpoints").glob("ckpt_*"))
    assert [c.name for c in ckpts] == ["ckpt_000000004", "ckpt_000000006"]
    shutil.rmtree(ckpts[-1])
    (tmp_path / "killed" / "model.keras").unlink()
    revived = train_indi(pairs, tmp_path / "killed", **kw)
    assert revived["resumed_from"] == 4
    h3 = json.loads((tmp_path / "killed" / "history.json").read_text())
    np.testing.assert_allclose(h3["val_loss"], h1["val_loss"], rtol=1e-4)


def test_time_budget_stops_cleanly_with_a_usable_model(pairs, tmp_path):
    summary = train_indi(pairs, tmp_path / "m", preset="tiny", max_minutes=1e-6, progress=False)
    assert summary["stopped"] == "max_minutes" and summary["global_step"] == 1
    net = keras.saving.load_model(tmp_path / "m" / "model.keras", compile=False)
    out = np.asarray(net([np.zeros((1, 32, 32, 1), np.float32), np.ones(1, np.float32)]))
    assert out.shape == (1, 32, 32, 1) and np.all(np.isfinite(out))


def test_resuming_with_other_parameters_is_refused(pairs, tmp_path):
    train_indi(pairs, tmp_path / "m", preset="tiny", max_steps=1, progress=False)
    with pytest.raises(ValueError, match="other parameters"):
        train_indi(pairs, tmp_path / "m", preset="tiny", seed=5, progress=False)
    other = make_pairs(tmp_path / "other_pairs", seed=9)  # same layout, other data
    with pytest.raises(ValueError, match="pairs_sha256"):
        train_indi(other, tmp_path / "m", preset="tiny", progress=False)
    fresh = train_indi(other, tmp_path / "m", preset="tiny", max_steps=2, restart=True, progress=False)
    assert fresh["resumed_from"] is None and fresh["global_step"] == 2


def test_bad_inputs_raise(pairs, tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs.npz"):
        train_indi(tmp_path / "nowhere", tmp_path / "m", preset="tiny")
    with pytest.raises(ValueError, match="multiple"):
        train_indi(pairs, tmp_path / "m", preset="tiny", overrides={"crop": 31})
    with pytest.raises(ValueError, match="unknown parameter"):
        train_indi(pairs, tmp_path / "m", preset="tiny", overrides={"learning_rate": 1.0})
    assert set(PRESETS) == {"tiny", "default", "paper"}
    assert PRESETS["paper"]["max_lr"] == 5e-4 and PRESETS["paper"]["batch_size"] == 2


def test_cli_train(pairs, tmp_path, capsys):
    from indi4d.cli import main

    assert main(["train", str(pairs), str(tmp_path / "m"), "--preset", "tiny", "--epochs", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["epochs_done"] == 1 and (tmp_path / "m" / "model.keras").exists()
