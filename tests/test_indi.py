"""InDI objective and sampler: known answers with oracle networks."""

import numpy as np
import pytest
import tensorflow as tf

from indi4d.core.indi import berhu_loss, degrade, indi_objective, indi_sample, loss_scale, noise_std, sample_t

RNG = np.random.default_rng(0)
X = RNG.uniform(-1, 1, (2, 16, 16, 1)).astype(np.float32)  # the "HQ" truth
Y = np.clip(X + 0.3 * RNG.standard_normal(X.shape), -1, 1).astype(np.float32)  # the "LQ"


def oracle(inputs, training=False):
    """F(x_t, t) = x: the perfect restorer."""
    assert training is False  # the sampler must call the network in inference mode
    return X


def identity(inputs, training=False):
    """F(x_t, t) = x_t: a network that changes nothing."""
    return inputs[0]


@pytest.mark.parametrize("steps", [1, 2, 7, 12, 30])
def test_oracle_network_gives_x_for_every_step_count(steps):
    out = indi_sample(oracle, Y, steps)
    np.testing.assert_allclose(out, X, atol=1e-6)


@pytest.mark.parametrize("stochastic", [False, True])
def test_oracle_with_noise_still_gives_x(stochastic):
    # the last step has delta / t = 1, so whatever noise was carried is replaced by F = x
    out = indi_sample(oracle, Y, 5, eps=0.2, seed=3, stochastic=stochastic)
    np.testing.assert_allclose(out, X, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 4, 10])
@pytest.mark.parametrize("stochastic", [False, True])
def test_identity_network_returns_y_unchanged(steps, stochastic):
    out = indi_sample(identity, Y, steps, stochastic=stochastic)
    np.testing.assert_allclose(out, Y, atol=1e-6)


def test_identity_network_with_noise_keeps_the_starting_noise():
    # deterministic: x_1 = y + eps n is a fixed point of F = identity
    n = np.random.default_rng(5).standard_normal(Y.shape, dtype=np.float32)
    out = indi_sample(identity, Y, 6, eps=0.1, seed=5)
    np.testing.assert_allclose(out, Y + 0.1 * n, atol=1e-5)


def test_two_step_update_by_hand():
    # F = c (a constant image): x_{1/2} = (1/2) c + (1/2) y, then x_0 = c
    c = np.full_like(Y, 0.25)

    def const(inputs, training=False):
        return c

    _, traj = indi_sample(const, Y, 2, return_trajectory=True)
    assert len(traj) == 3
    np.testing.assert_allclose(traj[0], Y)
    np.testing.assert_allclose(traj[1], 0.5 * c + 0.5 * Y, atol=1e-6)
    np.testing.assert_allclose(traj[2], c, atol=1e-6)


def test_sampler_passes_the_right_times():
    seen = []

    def record(inputs, training=False):
        seen.append(np.asarray(inputs[1]).copy())
        return inputs[0]

    indi_sample(record, Y, 4)
    np.testing.assert_allclose([s[0] for s in seen], [1.0, 0.75, 0.5, 0.25])
    assert all(s.shape == (2,) and s.dtype == np.float32 for s in seen)


def test_sampler_shapes_and_seeds():
    assert indi_sample(identity, Y[0, :, :, 0], 3).shape == (16, 16)
    assert indi_sample(identity, Y[..., 0], 3).shape == (2, 16, 16)
    a = indi_sample(identity, Y, 3, eps=0.1, seed=1, stochastic=True)
    b = indi_sample(identity, Y, 3, eps=0.1, seed=1, stochastic=True)
    c = indi_sample(identity, Y, 3, eps=0.1, seed=2, stochastic=True)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


@pytest.mark.parametrize("steps", [0, -3, 2.5])
def test_bad_step_counts_raise(steps):
    with pytest.raises(ValueError, match="steps"):
        indi_sample(identity, Y, steps)


def test_bad_images_raise():
    bad = Y.copy()
    bad[0, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        indi_sample(identity, bad, 3)
    with pytest.raises(ValueError, match="1 channel"):
        indi_sample(identity, np.zeros((1, 8, 8, 3), np.float32), 3)
    with pytest.raises(ValueError, match="floating"):
        indi_sample(identity, np.zeros((8, 8), np.uint16), 3)
    with pytest.raises(ValueError, match="eps"):
        indi_sample(identity, Y, 3, eps=-0.1)


def test_degrade_endpoints_and_midpoint():
    t = np.array([0.0, 1.0], np.float32)
    out = degrade(X, Y, t).numpy()
    np.testing.assert_allclose(out[0], X[0])
    np.testing.assert_allclose(out[1], Y[1])
    noise = np.ones_like(X)
    mid = degrade(X, Y, np.array([0.5, 0.5], np.float32), eps=0.2, noise=noise).numpy()
    np.testing.assert_allclose(mid, 0.5 * X + 0.5 * Y + 0.5 * 0.2, atol=1e-6)
    with pytest.raises(ValueError, match="noise"):
        degrade(X, Y, t, eps=0.1)


def test_sample_t_mixture():
    t = sample_t(20000, tf.constant([7, 0]), p_one=0.25).numpy()
    assert t.min() > 0.0 and t.max() == 1.0
    assert abs(np.mean(t == 1.0) - 0.25) < 0.02  # the point mass at t = 1
    rest = t[t < 1.0]
    assert abs(rest.mean() - 0.5) < 0.02 and abs(np.mean(rest < 0.25) - 0.25) < 0.02  # uniform on (0, 1)
    np.testing.assert_array_equal(t, sample_t(20000, tf.constant([7, 0]), p_one=0.25).numpy())


def test_berhu_loss_values_and_continuity():
    z = tf.zeros(1)
    assert float(berhu_loss(tf.constant([0.3]), z)) == pytest.approx(0.3)  # MAE branch
    assert float(berhu_loss(tf.constant([-1.0]), z)) == pytest.approx(1.25)  # e^2 + 0.25
    below, above = tf.constant([0.5 - 1e-4]), tf.constant([0.5 + 1e-4])
    assert float(berhu_loss(below, z)) == pytest.approx(float(berhu_loss(above, z)), abs=3e-4)
    for e in (0.5 - 1e-3, 0.5 + 1e-3, 1.5):
        v = tf.Variable([e])
        with tf.GradientTape() as tape:
            loss = berhu_loss(v, z)
        # slope 1 below the threshold, e / c = 2 e above: continuous at e = 0.5
        assert float(tape.gradient(loss, v)[0]) == pytest.approx(1.0 if e < 0.5 else 2 * e, rel=1e-2)
    with pytest.raises(ValueError):
        berhu_loss(z, z, threshold=0.0)


def test_objective_is_zero_for_the_oracle_and_seeded():
    hq = tf.constant(X)
    loss = indi_objective(lambda inputs, training: hq, tf.constant(Y), hq, tf.constant([1, 2]), eps=0.1)
    assert float(loss) == 0.0

    def half(inputs, training):  # returns x_t: the loss then depends on the drawn t and noise
        return inputs[0]

    a = indi_objective(half, Y, X, tf.constant([1, 2]), eps=0.1)
    b = indi_objective(half, Y, X, tf.constant([1, 2]), eps=0.1)
    c = indi_objective(half, Y, X, tf.constant([1, 3]), eps=0.1)
    assert float(a) == float(b) and float(a) != float(c) and float(a) > 0


def test_two_channel_objective_equals_one_channel_when_the_channels_are_equal():
    def half(inputs, training):
        return 0.5 * inputs[0]

    for kw in ({}, {"eps": 0.1, "p_one": 0.3}, {"loss_weighting": "min_snr", "noise_schedule": "brownian", "eps": 0.05}):
        one = indi_objective(half, Y, X, tf.constant([4, 1]), **kw)
        two = indi_objective(half, Y, np.concatenate([X, X], -1), tf.constant([4, 1]), **kw)
        assert float(one) == pytest.approx(float(two), rel=1e-6) and float(one) > 0
    # channel 0 builds x_t, channel 1 is the target: a network returning channel 1 has zero loss
    other = np.flip(X, axis=1).copy()
    assert float(indi_objective(lambda inputs, training: tf.constant(other), Y, np.concatenate([X, other], -1),
                                tf.constant([4, 1]))) == 0.0
    with pytest.raises(ValueError, match="1 or 2 channels"):
        indi_objective(half, Y, np.concatenate([X, X, X], -1), tf.constant([4, 1]))


def test_min_snr_scale_is_finite_and_capped():
    t = tf.constant([0.0, 1e-6, 0.05, 0.1, 0.5, 1.0])
    np.testing.assert_allclose(loss_scale(t, "min_snr", t_min=0.1).numpy(), [10, 10, 10, 10, 2, 1], rtol=1e-6)
    np.testing.assert_array_equal(loss_scale(t, "none").numpy(), np.ones(6))
    with pytest.raises(ValueError, match="loss_weighting"):
        loss_scale(t, "snr")


def test_min_snr_objective_is_the_berhu_of_the_scaled_error():
    # F = x + c: the x error is c everywhere, so the loss is mean_b berhu(c / max(t_b, 0.1)) (MAE branch: c / 0.1 < 0.5)
    c = 0.02
    seed = tf.constant([3, 9])
    loss = indi_objective(lambda inputs, training: X + c, Y, X, seed, p_one=0.0, loss_weighting="min_snr")
    t = sample_t(X.shape[0], seed, p_one=0.0).numpy()
    assert float(loss) == pytest.approx(np.mean(c / np.maximum(t, 0.1)), rel=1e-5)


def test_noise_std_schedules():
    assert noise_std(0.25, 0.1) == pytest.approx(0.025)  # linear: t eps
    assert noise_std(0.25, 0.1, "brownian") == pytest.approx(0.05)  # Brownian: sqrt(t) eps
    noise = np.ones_like(X)
    out = degrade(X, Y, np.array([0.25, 0.25], np.float32), eps=0.1, noise=noise, schedule="brownian").numpy()
    np.testing.assert_allclose(out, 0.75 * X + 0.25 * Y + 0.05, atol=1e-6)


BIG_X = np.random.default_rng(11).uniform(-0.5, 0.5, (4, 64, 64, 1)).astype(np.float32)
BIG_Y = np.random.default_rng(12).uniform(-0.5, 0.5, BIG_X.shape).astype(np.float32)


@pytest.mark.parametrize("schedule", ["linear", "brownian"])
def test_stochastic_sampler_keeps_the_training_noise_level(schedule):
    # with the oracle F = x, iterate k is the clean blend (1 - t) x + t y plus noise of std sigma_t (noise_std)
    steps, eps = 8, 0.1
    _, traj = indi_sample(lambda inputs, training=False: BIG_X, BIG_Y, steps, eps=eps, seed=2, stochastic=True,
                          noise_schedule=schedule, return_trajectory=True)
    for k in range(steps):
        t = 1.0 - k / steps
        level = np.std(traj[k] - ((1 - t) * BIG_X + t * BIG_Y))
        assert level == pytest.approx(noise_std(t, eps, schedule), rel=0.03)
    np.testing.assert_allclose(traj[-1], BIG_X, atol=1e-6)  # the last step replaces everything by F = x


def test_linear_schedule_stochastic_differs_from_deterministic_only_by_the_start():
    a = indi_sample(lambda inputs, training=False: 0.5 * inputs[0], Y, 4, eps=0.1, seed=5, stochastic=True)
    b = indi_sample(lambda inputs, training=False: 0.5 * inputs[0], Y, 4, eps=0.1, seed=5, stochastic=False)
    np.testing.assert_allclose(a, b, atol=1e-6)  # InDI's increment is zero when eps_t is constant


def test_unbounded_network_output_is_clipped_only_at_the_end():
    from indi4d.core.model import PRESETS, build_unet

    net = build_unet(**PRESETS["tiny"], head="linear", seed=0)
    head = net.get_layer("head_7x7")
    kernel, bias = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(bias, 3.0)])  # F = 3 everywhere
    _, traj = indi_sample(net, Y, 2, return_trajectory=True)
    np.testing.assert_allclose(traj[1], 0.5 * 3.0 + 0.5 * Y, atol=1e-6)  # not clipped on the way
    np.testing.assert_array_equal(traj[-1], np.ones_like(Y))  # the result is
    np.testing.assert_allclose(indi_sample(net, Y, 2, clip=False), 3.0)
