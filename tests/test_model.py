"""The InDI U-Net: shapes, range, time conditioning, ICNR start, receptive field, FLOP count, residual form and
linear head."""

import keras
import numpy as np
import pytest

from indi4d.core.model import (
    ICNR,
    PRESETS,
    ResidualParametrisation,
    build_unet,
    conv_flops_per_pixel,
    count_parameters,
    influence_radius,
    output_is_bounded,
    receptive_field,
)


@pytest.fixture(scope="module")
def tiny():
    return build_unet(**PRESETS["tiny"], seed=0)


def _run(net, x, t):
    return np.asarray(net([x, np.asarray(t, np.float32)], training=False))


@pytest.mark.parametrize("shape", [(32, 32), (48, 64), (16, 80)])
def test_output_shape_equals_input_and_in_range(tiny, shape):
    x = np.random.default_rng(1).uniform(-1, 1, (2, *shape, 1)).astype(np.float32) * 3  # beyond [-1, 1] on purpose
    out = _run(tiny, x, [0.1, 1.0])
    assert out.shape == x.shape and out.dtype == np.float32
    assert np.all(np.abs(out) <= 1.0)  # tanh output


def test_time_changes_the_output(tiny):
    x = np.random.default_rng(2).uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    a, b = _run(tiny, x, [0.1]), _run(tiny, x, [0.9])
    assert np.abs(a - b).max() > 1e-4
    np.testing.assert_array_equal(a, _run(tiny, x, [0.1]))


def test_without_time_embedding_takes_the_image_only():
    net = build_unet(**{**PRESETS["tiny"], "time_embedding": False}, seed=0)
    assert len(net.inputs) == 1
    x = np.zeros((1, 32, 32, 1), np.float32)
    assert np.asarray(net(x)).shape == (1, 32, 32, 1)
    assert not any("time" in layer.name for layer in net.layers)


def test_paper_features_are_present():
    net = build_unet(**PRESETS["paper"], seed=0)
    convs = [layer for layer in net.layers if isinstance(layer, keras.layers.Conv2D)]
    assert convs[0].kernel_size == (7, 7) and convs[-1].kernel_size == (7, 7)
    assert {c.kernel_size for c in convs[1:-1]} <= {(3, 3), (1, 1)}
    assert convs[0].filters == 64
    strided = [c for c in convs if c.strides == (2, 2)]
    assert [c.filters for c in strided] == [128, 256]  # doubled after every down-sampling block
    assert {c.dilation_rate for c in convs} >= {(1, 1), (2, 2), (4, 4), (8, 8)}  # dilated bottleneck
    assert convs[-1].activation.__name__ == "tanh"
    assert any(type(layer).__name__ == "DepthToSpace" for layer in net.layers)  # sub-pixel up-sampling
    assert any(type(layer).__name__ == "SinusoidalTimeEmbedding" for layer in net.layers)
    assert count_parameters(net) > 5_000_000


def test_seed_makes_weights_reproducible():
    a = build_unet(**PRESETS["tiny"], seed=4).get_weights()
    b = build_unet(**PRESETS["tiny"], seed=4).get_weights()
    assert all(np.array_equal(u, v) for u, v in zip(a, b))


def test_icnr_subpixel_starts_as_nearest_neighbour(tiny):
    # at initialisation every 2x2 block of the depth-to-space output holds one value
    probe = keras.Model(tiny.inputs, tiny.get_layer("up0_depth_to_space").output)
    x = np.random.default_rng(3).uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    up = np.asarray(probe([x, np.array([0.5], np.float32)]))
    blocks = up.reshape(1, 16, 2, 16, 2, -1)
    assert np.abs(up).max() > 1e-3
    np.testing.assert_allclose(blocks, np.broadcast_to(blocks[:, :, :1, :, :1], blocks.shape), atol=1e-6)
    kernel = ICNR(2, seed=0)((3, 3, 5, 8))
    np.testing.assert_array_equal(np.asarray(kernel[..., :2]), np.asarray(kernel[..., 6:]))


def test_impulse_response_stays_inside_the_influence_radius(tiny):
    cfg = PRESETS["tiny"]
    r = influence_radius(**cfg)
    assert receptive_field(**cfg) == 51  # 1 + 6 + 4 + 2 + 4 (1 + 2) x 2 + 4 + 4 + 6
    t = np.ones(1, np.float32)
    zero = np.zeros((1, 128, 128, 1), np.float32)
    for pos in (64, 65):  # both phases of the stride-2 grid
        hit = zero.copy()
        hit[0, pos, pos, 0] = 1.0
        diff = np.abs(_run(tiny, hit, t) - _run(tiny, zero, t))[0, :, :, 0]
        ys, xs = np.nonzero(diff > 0)
        reach = max(np.abs(ys - pos).max(), np.abs(xs - pos).max())
        assert r - 4 <= reach <= r  # reaches almost the bound, never past it


def test_flop_count_known_answer():
    image = keras.Input((None, None, 1))
    h = keras.layers.Conv2D(4, 3, padding="same")(image)  # 2 * 9 * 1 * 4 = 72 per pixel
    h = keras.layers.Conv2D(8, 3, strides=2, padding="same")(h)  # 2 * 9 * 4 * 8 / 4 = 144
    net = keras.Model(image, h)
    assert conv_flops_per_pixel(net, probe_size=32) == pytest.approx(72 + 144)


def test_save_and_load_round_trip(tiny, tmp_path):
    path = tmp_path / "net.keras"
    tiny.save(path)
    again = keras.saving.load_model(path, compile=False)
    x = np.random.default_rng(6).uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(_run(tiny, x, [0.3]), _run(again, x, [0.3]))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="depth"):
        build_unet(depth=0)
    with pytest.raises(ValueError, match="dilations"):
        build_unet(dilations=(1, 0))


def _with_head(net, bias):
    """Zero the head's kernel and set its bias: the head then outputs ``bias`` everywhere."""
    head = net.get_layer("head_7x7")
    kernel, b = head.get_weights()
    head.set_weights([np.zeros_like(kernel), np.full_like(b, bias)])
    return net


def test_residual_form_with_g_zero_returns_x_t_and_subtracts_t_g():
    net = _with_head(build_unet(**PRESETS["tiny"], head="linear", parametrisation="residual", seed=0), 0.0)
    x = np.random.default_rng(7).uniform(-1, 1, (2, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(_run(net, x, [0.3, 1.0]), x)  # g = 0: F = x_t
    _with_head(net, 0.5)  # g = 0.5 everywhere: F = x_t - t * 0.5
    np.testing.assert_allclose(_run(net, x, [0.2, 1.0]), x - np.array([0.1, 0.5]).reshape(2, 1, 1, 1), atol=1e-6)
    baseline = _with_head(build_unet(**{**PRESETS["tiny"], "time_embedding": False}, head="linear",
                                     parametrisation="residual", seed=0), 0.25)
    np.testing.assert_allclose(np.asarray(baseline(x)), x - 0.25, atol=1e-6)  # no time input: F = x - g


def test_linear_head_is_unbounded_and_tanh_head_is_not():
    x = np.zeros((1, 16, 16, 1), np.float32)
    linear = _with_head(build_unet(**PRESETS["tiny"], head="linear", seed=0), 5.0)
    np.testing.assert_allclose(_run(linear, x, [0.5]), 5.0)
    tanh = _with_head(build_unet(**PRESETS["tiny"], seed=0), 5.0)
    np.testing.assert_allclose(_run(tanh, x, [0.5]), np.tanh(5.0), rtol=1e-6)
    assert output_is_bounded(tanh) and not output_is_bounded(linear)
    assert not output_is_bounded(build_unet(**PRESETS["tiny"], parametrisation="residual", seed=0))


def test_residual_linear_model_saves_and_loads(tmp_path):
    net = build_unet(**PRESETS["tiny"], head="linear", parametrisation="residual", seed=3)
    net.save(tmp_path / "net.keras")
    again = keras.saving.load_model(tmp_path / "net.keras", compile=False)
    x = np.random.default_rng(8).uniform(-1, 1, (1, 32, 32, 1)).astype(np.float32)
    np.testing.assert_array_equal(_run(net, x, [0.3]), _run(again, x, [0.3]))
    assert any(isinstance(layer, ResidualParametrisation) for layer in again.layers)


def test_bad_head_or_parametrisation_raise():
    with pytest.raises(ValueError, match="head"):
        build_unet(**PRESETS["tiny"], head="relu")
    with pytest.raises(ValueError, match="parametrisation"):
        build_unet(**PRESETS["tiny"], parametrisation="v")
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        build_unet(**PRESETS["tiny"], parametrisation="residual", in_channels=2)
