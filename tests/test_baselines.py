"""CNN and GAN baselines: PatchGAN geometry, the discriminator learns, losses fall, resume is exact, InDI's step
budget bounds them (a wall-time cap only when asked for, and recorded), refused runs change nothing."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage as ndi

from indi4d import baselines
from indi4d.files import file_sha256
from synthetic import make_pairs


def budget(steps=24, minutes=10.0, epochs=3, steps_per_epoch=8):
    """An InDI budget as indi_budget returns it, for the tiny network."""
    return {"network": {"base_filters": 8, "depth": 1, "blocks_per_level": 1, "dilations": [1, 2], "time_dim": 16},
            "crop": 32, "batch_size": 2, "epochs": epochs, "steps_per_epoch": steps_per_epoch, "max_lr": 3e-3,
            "pct_start": 0.25, "min_inside": 1.0, "val_crop": 32, "val_max_slices": 4, "jit_compile": False,
            "seed": 0, "steps": steps, "minutes": minutes, "model_dir": "synthetic"}


@pytest.fixture(scope="module")
def pairs(tmp_path_factory):
    return make_pairs(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(scope="module")
def whole_runs(pairs, tmp_path_factory):
    """Uninterrupted tiny CNN and GAN runs (24 steps each), shared by several tests."""
    base = tmp_path_factory.mktemp("whole")
    cnn = baselines.train_cnn(pairs, base / "cnn", budget(), preset="tiny", progress=False)
    gan = baselines.train_gan(pairs, base / "gan", budget(), preset="tiny", progress=False)
    return base, cnn, gan


def _weights(path):
    return keras.saving.load_model(path, compile=False).get_weights()


def _max_diff(w1, w2):
    return max(float(np.abs(a - b).max()) for a, b in zip(w1, w2))


def _tree(folder):
    """Every entry below ``folder``: file -> sha256, folder -> "dir"."""
    return {str(p.relative_to(folder)): "dir" if p.is_dir() else file_sha256(p) for p in sorted(folder.rglob("*"))}


# --------------------------------------------------------------------------- PatchGAN


@pytest.mark.parametrize("n_layers, expected", [(1, 16), (2, 34), (3, 70)])
def test_patchgan_receptive_field_formula_and_measured(n_layers, expected):
    assert baselines.patchgan_receptive_field(n_layers) == expected  # pix2pix: 16, 34, 70
    keras.utils.set_random_seed(0)
    d = baselines.build_patchgan(1, base_filters=4, n_layers=n_layers, norm="none", seed=0)
    size = 160
    x = tf.constant(np.random.default_rng(0).standard_normal((1, size, size, 1)).astype(np.float32))
    c = tf.zeros_like(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = d([c, x])
        centre = out.shape[1] // 2
        target = out[0, centre, centre, 0]
    grad = np.abs(tape.gradient(target, x).numpy()[0, :, :, 0])
    rows, cols = np.nonzero(grad.max(axis=1))[0], np.nonzero(grad.max(axis=0))[0]
    # the one output pixel depends on exactly an R x R input patch (leaky ReLU: no dead paths)
    assert rows.max() - rows.min() + 1 == expected
    assert cols.max() - cols.min() + 1 == expected


def test_patchgan_output_is_one_logit_per_patch():
    d = baselines.build_patchgan(1, base_filters=8, n_layers=3, seed=0)
    out = d([np.zeros((2, 96, 64, 1), np.float32), np.zeros((2, 96, 64, 1), np.float32)])
    assert tuple(out.shape) == (2, 96 // 8, 64 // 8, 1)
    d2 = baselines.build_patchgan(1, base_filters=8, n_layers=2, seed=0)
    assert tuple(d2([np.zeros((1, 32, 32, 1), np.float32)] * 2).shape) == (1, 8, 8, 1)
    with pytest.raises(ValueError, match="norm"):
        baselines.build_patchgan(norm="batch")


def _toy(rng, n, size=32):
    """Conditions: smooth fields; real = the field sharpened a little; fake = the field + strong white noise."""
    cond = ndi.gaussian_filter(rng.standard_normal((n, size, size)), (0, 3, 3))
    cond = (cond / cond.std()).astype(np.float32) * 0.3
    real = np.clip(cond * 1.2, -1, 1).astype(np.float32)
    fake = np.clip(cond + 0.5 * rng.standard_normal(cond.shape), -1, 1).astype(np.float32)
    return cond[..., None], real[..., None], fake[..., None]


def test_discriminator_learns_to_separate_real_from_obvious_fakes():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    d = baselines.build_patchgan(1, base_filters=8, n_layers=2, seed=0)
    opt = keras.optimizers.Adam(2e-3, beta_1=0.5)

    @tf.function
    def step(cond, real, fake):
        with tf.GradientTape() as tape:
            losses = baselines.gan_losses(d([cond, real], training=True), d([cond, fake], training=True),
                                          fake, real)
        grads = tape.gradient(losses["d_loss"], d.trainable_variables)
        opt.apply_gradients(zip(grads, d.trainable_variables))
        return losses["d_loss"]

    first = None
    for _ in range(40):
        loss = float(step(*_toy(rng, 4)))
        first = loss if first is None else first
    cond, real, fake = _toy(np.random.default_rng(99), 8)  # unseen samples
    held = baselines.gan_losses(d([cond, real]), d([cond, fake]), fake, real)
    assert first == pytest.approx(math.log(2.0), abs=0.1)  # an untrained D is unsure: ln 2
    assert float(held["d_loss"]) < 0.3
    assert float(held["d_real_acc"]) > 0.9 and float(held["d_fake_acc"]) > 0.9


def test_gan_losses_known_values():
    fake = tf.constant(np.full((1, 4, 4, 1), 0.5, np.float32))
    target = tf.constant(np.zeros((1, 4, 4, 1), np.float32))
    unsure = baselines.gan_losses(tf.zeros((1, 2, 2, 1)), tf.zeros((1, 2, 2, 1)), fake, target, l1_weight=100.0)
    assert float(unsure["d_loss"]) == pytest.approx(math.log(2.0), rel=1e-6)
    assert float(unsure["g_adv"]) == pytest.approx(math.log(2.0), rel=1e-6)
    assert float(unsure["g_l1"]) == pytest.approx(0.5)
    assert float(unsure["g_loss"]) == pytest.approx(math.log(2.0) + 50.0, rel=1e-6)
    sure = baselines.gan_losses(tf.fill((1, 2, 2, 1), 20.0), tf.fill((1, 2, 2, 1), -20.0), fake, target)
    assert float(sure["d_loss"]) < 1e-8 and float(sure["g_adv"]) == pytest.approx(20.0, rel=1e-6)
    assert float(sure["d_real_acc"]) == 1.0 and float(sure["d_fake_acc"]) == 1.0


def test_regression_objective_known_values():
    net = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Lambda(lambda x: x * 0.0 + 0.5)])
    hq = np.array([0.0, 1.0, -1.0, 0.5], np.float32).reshape(1, 2, 2, 1)
    lq = np.zeros_like(hq)
    mae = baselines.regression_objective("mae")(net, lq, hq, None, False)
    mse = baselines.regression_objective("mse")(net, lq, hq, None, False)
    assert float(mae) == pytest.approx((0.5 + 0.5 + 1.5 + 0.0) / 4)
    assert float(mse) == pytest.approx((0.25 + 0.25 + 2.25 + 0.0) / 4)
    with pytest.raises(ValueError, match="mae"):
        baselines.regression_objective("l3")


def test_two_channel_targets_use_channel_1_and_lq_as_input():
    # a network that returns its input: the loss is |lq - target| with target = channel 1 of hq
    net = keras.Sequential([keras.Input((None, None, 1)), keras.layers.Lambda(lambda x: x * 1.0)])
    rng = np.random.default_rng(3)
    lq, target = (rng.uniform(-1, 1, (2, 8, 8, 1)).astype(np.float32) for _ in range(2))
    other = rng.uniform(-1, 1, target.shape).astype(np.float32)
    for loss in ("mae", "mse"):
        objective = baselines.regression_objective(loss)
        one = objective(net, lq, target, None, False)
        assert float(objective(net, lq, np.concatenate([other, target], -1), None, False)) == pytest.approx(float(one))
        assert float(objective(net, lq, np.concatenate([target, target], -1), None, False)) == pytest.approx(
            float(one))
    from indi4d.core.model import build_unet

    gen = build_unet(**budget()["network"], time_embedding=False, seed=0)
    disc = baselines.build_patchgan(1, base_filters=4, n_layers=1, norm="none", seed=1)
    method = baselines.gan_method(gen, disc, *baselines.gan_optimizers(1e-3, 4, 0.25))
    val_one = method.val_loss(tf.constant(lq), tf.constant(target), None)
    val_two = method.val_loss(tf.constant(lq), tf.constant(np.concatenate([other, target], -1)), None)
    expected = np.mean(np.abs(np.asarray(gen(lq)) - target))
    assert float(val_two) == pytest.approx(float(val_one), rel=1e-6) and float(val_one) == pytest.approx(expected,
                                                                                                         rel=1e-5)
    out = method.train_step(tf.constant(lq), tf.constant(np.concatenate([other, target], -1)), None)
    assert np.isfinite(float(out["g_loss"]))


# --------------------------------------------------------------------------- training on pairs


def test_cnn_and_gan_lower_their_losses(whole_runs):
    base, cnn, gan = whole_runs
    assert cnn["complete"] and gan["complete"] and cnn["global_step"] == gan["global_step"] == 24
    assert cnn["stopped_by"] == gan["stopped_by"] == "steps"
    hc = json.loads((base / "cnn" / "history.json").read_text())
    hg = json.loads((base / "gan" / "history.json").read_text())
    assert hc["val_loss"][-1] < 0.8 * hc["val_loss"][0] and hc["loss"][-1] < hc["loss"][0]
    assert hg["val_loss"][-1] < 0.8 * hg["val_loss"][0] and hg["g_l1"][-1] < hg["g_l1"][0]
    for key in ("loss", "val_loss", "g_adv", "g_l1", "d_loss", "d_real_acc", "d_fake_acc", "lr", "seconds", "steps"):
        assert len(hg[key]) == 3, key
    for name in ("model.keras", "config.json", "normalisation.json", "history.json", "summary.json"):
        assert (base / "cnn" / name).exists() and (base / "gan" / name).exists()
    assert (base / "gan" / "discriminator.keras").exists()
    # the baselines are image-only networks of the InDI backbone
    net = baselines.load_baseline(base / "gan")
    assert len(net.inputs) == 1 and net.count_params() == gan["n_params"] == cnn["n_params"]
    pred = baselines.predict_direct(net, np.zeros((3, 30, 34), np.float32), factor=2)
    assert pred.shape == (3, 30, 34) and pred.dtype == np.float32


@pytest.mark.parametrize("kind", ["cnn", "gan"])
def test_interrupted_run_resumes_to_the_same_weights(kind, pairs, whole_runs, tmp_path):
    base, *_ = whole_runs
    train = baselines.train_cnn if kind == "cnn" else baselines.train_gan
    part = train(pairs, tmp_path / kind, budget(), preset="tiny", max_steps=5, progress=False)
    assert part["global_step"] == 5 and not part["complete"]
    assert not (tmp_path / kind / "summary.json").exists()  # unfinished: not reusable yet
    rest = train(pairs, tmp_path / kind, budget(), preset="tiny", progress=False)
    assert rest["resumed_from"] == 5 and rest["global_step"] == 24 and rest["complete"]
    assert _max_diff(_weights(tmp_path / kind / "model.keras"), _weights(base / kind / "model.keras")) < 1e-4
    h1 = json.loads((base / kind / "history.json").read_text())
    h2 = json.loads((tmp_path / kind / "history.json").read_text())
    np.testing.assert_allclose(h2["val_loss"], h1["val_loss"], rtol=1e-4)
    again = train(pairs, tmp_path / kind, budget(), preset="tiny", progress=False)
    assert again["reused"] and again["global_step"] == 24
    before = _tree(tmp_path / kind)
    with pytest.raises(ValueError, match="other parameters"):  # a different setup never resumes this run
        train(pairs, tmp_path / kind, budget(), preset="tiny", progress=False, l1_weight=10.0, cnn_loss="mse",
              max_steps=1)
    assert _tree(tmp_path / kind) == before


def test_baselines_are_bounded_by_indis_steps_not_by_its_minutes(pairs, tmp_path):
    # InDI took 5 of its 24 scheduled steps, so does the baseline
    s = baselines.train_gan(pairs, tmp_path / "g", budget(steps=5), preset="tiny", progress=False)
    assert s["global_step"] == 5 and s["complete"] and s["stopped_by"] == "steps"
    # InDI's minutes are recorded, not matched: the default preset does not stop at a tiny InDI time
    c = baselines.train_cnn(pairs, tmp_path / "c", budget(steps=3, minutes=1e-4), preset="default", progress=False)
    assert c["global_step"] == 3 and c["stopped_by"] == "steps" and c["complete"]
    assert baselines.PRESETS["default"]["max_minutes"] >= 60  # only a safeguard


def test_an_explicit_wall_time_cap_is_honoured_warned_and_recorded(pairs, tmp_path):
    with pytest.warns(RuntimeWarning, match="wall-time"):
        c = baselines.train_cnn(pairs, tmp_path / "c", budget(), preset="tiny", minutes=1e-3, progress=False)
    assert c["global_step"] == 1 and c["stopped_by"] == "wall_time_budget" and c["complete"]
    assert c["budget_minutes"] == pytest.approx(1e-3)
    assert json.loads((tmp_path / "c" / "summary.json").read_text())["stopped_by"] == "wall_time_budget"
    again = baselines.train_cnn(pairs, tmp_path / "c", budget(), preset="tiny", minutes=1e-3, progress=False)
    assert again["reused"] and again["global_step"] == 1


def test_indi_budget_reads_the_model_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({
        "seed": 3, "network": budget()["network"],
        "training": {k: budget()[k] for k in ("crop", "batch_size", "epochs", "steps_per_epoch", "max_lr",
                                              "pct_start", "min_inside", "val_crop", "val_max_slices",
                                              "jit_compile")}}))
    (tmp_path / "history.json").write_text(json.dumps({"steps": [8, 16], "seconds": [30.0, 60.0],
                                                       "loss": [1, 0.5], "val_loss": [1, 0.5]}))
    b = baselines.indi_budget(tmp_path)
    assert b["steps"] == 16 and b["minutes"] == pytest.approx(1.5) and b["seed"] == 3 and b["crop"] == 32
    with pytest.raises(FileNotFoundError, match="chapter 04"):
        baselines.indi_budget(tmp_path / "nothing")
