"""Tiled inference equals whole-image inference; slices, volumes and files; bad input."""

import hashlib
import json

import numpy as np
import pytest
import tifffile

from indi4d import preprocess
from indi4d.indi import indi_sample
from indi4d.inference import Enhancer, enhance_file, enhance_slices, enhance_volume, load_enhancer, tile_starts, tile_weights
from indi4d.io import read_volume, write_volume
from indi4d.model import PRESETS, build_unet, influence_radius
from indi4d.training import save_model

NET = dict(PRESETS["tiny"], dilations=[1, 2])
CONFIG = {"network": NET, "training": {"eps": 0.0}}


@pytest.fixture(scope="module")
def network():
    return build_unet(**NET, seed=0)


@pytest.fixture(scope="module")
def model_dir(network, tmp_path_factory):
    """A model folder as training writes it (random weights are enough to test the plumbing)."""
    d = tmp_path_factory.mktemp("model")
    save_model(network, d / "model.keras")
    (d / "config.json").write_text(json.dumps(CONFIG))
    grey = np.linspace(0, 60000, 100).reshape(10, 10)
    norm = {"lq": preprocess.fit_normalisation(grey, method="none"),
            "hq": preprocess.fit_normalisation(grey, method="none")}
    (d / "normalisation.json").write_text(json.dumps(norm))
    return d


def _image(shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


def test_tile_layout_known_answers():
    assert tile_starts(100, 40, 24, 2) == [0, 24, 48, 60]
    assert tile_starts(32, 64, 10, 2) == [0]
    w = tile_weights(20, 10, 40, margin=3, blend=4)  # an interior tile
    np.testing.assert_allclose(w, [0, 0, 0, .2, .4, .6, .8, 1, 1, 1, 1, 1, 1, .8, .6, .4, .2, 0, 0, 0], atol=1e-6)
    w0 = tile_weights(20, 0, 40, margin=3, blend=4)  # touching the image start: keeps its border pixels
    assert w0[0] == 1.0 and w0[-1] == 0.0
    with pytest.raises(ValueError):
        tile_starts(101, 40, 24, 2)


def test_tiled_equals_whole_image(network):
    enh = Enhancer(network=network, config=CONFIG, tile=80, tile_batch=3, blend=8)
    assert enh.margin >= influence_radius(**NET)
    x = _image((2, 192, 160, 1))
    t = np.array([1.0, 0.4], np.float32)
    whole = np.asarray(network([x, t], training=False))
    tiled = enh([x, t])
    assert tiled.shape == whole.shape
    # exact up to float rounding: every kept pixel saw the same inputs as in the whole image
    assert np.abs(tiled - whole).max() < 1e-4
    # the full sampler, tiled at every step, also matches
    y = x[:1, :, :, :]
    a = indi_sample(enh, y, 3)
    b = indi_sample(network, y, 3)
    assert np.abs(a - b).max() < 1e-3


def test_a_margin_below_the_receptive_field_is_not_exact(network):
    x = _image((1, 160, 160, 1), seed=1)
    t = np.ones(1, np.float32)
    whole = np.asarray(network([x, t], training=False))
    loose = Enhancer(network=network, config=CONFIG, tile=64, blend=8, margin=2)([x, t])
    assert np.abs(loose - whole).max() > 1e-4  # so the exact margin above is doing the work


def test_enhance_slices_pads_odd_sizes(model_dir):
    enh = load_enhancer(model_dir, preset="tiny")
    s = _image((2, 45, 37), seed=2)
    out = enhance_slices(enh, s, steps=2, progress=False)
    assert out.shape == s.shape and out.dtype == np.float32 and np.all(np.abs(out) <= 1)
    one = enhance_slices(enh, s[0], steps=2)
    np.testing.assert_allclose(one, out[0], atol=1e-5)


def test_enhance_volume_shapes_and_grey_values(model_dir):
    enh = load_enhancer(model_dir, preset="tiny")
    vol = np.random.default_rng(3).integers(10000, 50000, (4, 24, 20)).astype(np.uint16)
    before = vol.copy()
    out = enhance_volume(vol, enh, steps=2, progress=False)
    assert out.shape == (8, 48, 40) and out.dtype == np.float32
    np.testing.assert_array_equal(vol, before)  # input untouched
    assert 0 <= out.min() and out.max() <= 60000  # mapped back into the fitted grey range
    flat = enhance_volume(vol, enh, steps=2, z_upscale=False, progress=False)
    assert flat.shape == (4, 48, 40)


def test_enhance_file_2d_and_3d(model_dir, tmp_path):
    vol = np.random.default_rng(4).integers(10000, 50000, (3, 16, 16)).astype(np.uint16)
    src = write_volume(tmp_path / "lq.tif", vol, voxel_size_nm=100.0)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = enhance_file(src, tmp_path / "out.tif", model_dir, steps=2)
    arr, meta = read_volume(out)
    assert arr.shape == (6, 32, 32) and arr.dtype == np.uint16
    assert meta["voxel_size_nm"] == 50.0 and meta["indi4d_enhance"]["steps"] == 2
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    src2 = write_volume(tmp_path / "slice.tif", vol[0])
    arr2, _ = read_volume(enhance_file(src2, tmp_path / "slice_out.tif", model_dir, steps=1))
    assert arr2.shape == (32, 32)
    with pytest.raises(ValueError, match="overwrite"):
        enhance_file(src, src, model_dir, steps=2)


def test_bad_input_raises(network, model_dir, tmp_path):
    enh = Enhancer(network=network, config=CONFIG, tile=80, blend=8)
    with pytest.raises(ValueError, match="multiple of 2"):
        enh([_image((1, 33, 32, 1)), np.ones(1, np.float32)])
    with pytest.raises(ValueError, match=r"\(B, H, W, 1\)"):
        enh([_image((1, 32, 32, 3)), np.ones(1, np.float32)])
    with pytest.raises(ValueError, match="single-channel"):
        enhance_slices(enh, _image((2, 32, 32, 3)), steps=2)
    nan = _image((32, 32))
    nan[4, 4] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        enhance_slices(enh, nan, steps=2)
    for steps in (0, -1):
        with pytest.raises(ValueError, match="steps"):
            enhance_slices(enh, _image((32, 32)), steps=steps)
    with pytest.raises(ValueError, match="too small"):
        enhance_slices(enh, _image((1, 32)), steps=2)
    with pytest.raises(ValueError, match="tile"):
        Enhancer(network=network, config=CONFIG, tile=40, blend=8)
    with pytest.raises(FileNotFoundError, match="model.keras"):
        load_enhancer(tmp_path)
    bad = tmp_path / "nan.tif"
    tifffile.imwrite(bad, np.full((8, 8), np.nan, np.float32))
    with pytest.raises(ValueError, match="nan.tif.*NaN"):
        enhance_file(bad, tmp_path / "o.tif", model_dir, steps=2)
    four_d = tmp_path / "4d.tif"
    tifffile.imwrite(four_d, np.zeros((2, 2, 8, 8), np.uint16))
    with pytest.raises(ValueError, match="4d.tif"):
        enhance_file(four_d, tmp_path / "o.tif", model_dir, steps=2)


def test_cli_enhance(model_dir, tmp_path, capsys):
    from indi4d.cli import main

    src = write_volume(tmp_path / "lq.tif", np.full((2, 8, 8), 20000, np.uint16), voxel_size_nm=100.0)
    assert main(["enhance", str(src), str(tmp_path / "out.tif"), "--model", str(model_dir), "--steps", "2"]) == 0
    assert read_volume(tmp_path / "out.tif")[0].shape == (4, 16, 16)
    assert main(["enhance", str(src), str(tmp_path / "o2.tif"), "--model", str(tmp_path / "none"), "--steps", "2"]) == 2
    assert "model.keras" in capsys.readouterr().err
    assert main(["enhance", str(src), str(tmp_path / "o3.tif"), "--model", str(model_dir), "--steps", "0"]) == 2
