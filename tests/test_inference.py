"""Tiled inference equals whole-image inference for every network; slices, volumes and files; bad input; safety."""

import hashlib
import json
import shutil

import numpy as np
import pytest
import tifffile

from indi4d.core.indi import indi_sample
from indi4d import model_folder
from indi4d.inference import (
    Enhancer,
    TiledNetwork,
    enhance_file,
    enhance_slices,
    enhance_volume,
    exact_margin,
    load_enhancer,
    pad_to_multiple,
    predict_slices,
    tile_starts,
    tile_weights,
)
from indi4d.io import read_volume, write_volume
from indi4d.core.model import PRESETS, build_unet, influence_radius
from synthetic import write_model_folder

NET = dict(PRESETS["tiny"], dilations=[1, 2])
CONFIG = {"network": NET, "training": {"eps": 0.0}}


@pytest.fixture(scope="module")
def network():
    return build_unet(**NET, seed=0)


@pytest.fixture(scope="module")
def model_dir(network, tmp_path_factory):
    """A model folder as training writes it (random weights are enough to test the plumbing)."""
    return write_model_folder(tmp_path_factory.mktemp("model"), network, CONFIG)


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
    src2 = write_volume(tmp_path / "slice.tif", vol[0], voxel_size_nm=100.0)
    arr2, _ = read_volume(enhance_file(src2, tmp_path / "slice_out.tif", model_dir, steps=1))
    assert arr2.shape == (32, 32)
    with pytest.raises(ValueError, match="it is the input"):
        enhance_file(src, src, model_dir, steps=2)


def test_pad_to_multiple_reflects_and_crops_back():
    a = np.arange(15, dtype=np.float32).reshape(3, 5)
    padded, shape = pad_to_multiple(a, 4)
    assert padded.shape == (4, 8) and shape == (3, 5)
    np.testing.assert_array_equal(padded[3, :5], a[1])  # reflected about the last row
    np.testing.assert_array_equal(padded[:3, 5:], a[:, [3, 2, 1]])
    np.testing.assert_array_equal(padded[:3, :5], a)
    stack, _ = pad_to_multiple(np.stack([a, 2 * a]), 2)
    assert stack.shape == (2, 4, 6)
    with pytest.raises(ValueError, match="too small"):
        pad_to_multiple(np.zeros((1, 8), np.float32), 2)


@pytest.mark.parametrize("depth", [1, 2])
def test_tiled_direct_prediction_equals_one_pass_for_a_plain_generator(depth):
    """The CNN/GAN generator (no time input), slice sizes that are not multiples of the factor."""
    params = dict(NET, depth=depth)
    generator = build_unet(**params, time_embedding=False, seed=1)
    factor = 2 ** depth
    slices = _image((3, 150, 131), seed=7)  # 150 and 131: multiples of neither 2 nor 4
    one_pass = predict_slices(TiledNetwork(generator, factor=factor, tile=None, graph=False), slices)
    tiled_net = TiledNetwork(generator, factor=factor, margin=exact_margin(params), tile=80 if depth == 1 else 128,
                             tile_batch=3, blend=8)
    assert tiled_net.time_input is False
    tiled = predict_slices(tiled_net, slices)
    assert tiled.shape == one_pass.shape == slices.shape and tiled.dtype == np.float32
    assert np.abs(tiled - one_pass).max() < 1e-5
    # one pass is exactly the network applied to the reflect-padded stack, cropped back
    padded, _ = pad_to_multiple(slices, factor)
    direct = np.asarray(generator(padded[..., None], training=False))[:, :150, :131, 0]
    np.testing.assert_array_equal(one_pass, direct)
    np.testing.assert_array_equal(predict_slices(tiled_net, slices[0]), tiled[0])
    with pytest.raises(ValueError, match="time input"):
        predict_slices(TiledNetwork(build_unet(**params, seed=1), factor=factor, tile=None), slices)


def test_tiled_indi_sampling_equals_whole_slices_for_odd_sizes(network):
    slices = _image((2, 150, 131), seed=8)
    whole = enhance_slices(Enhancer(network=network, config=CONFIG, tile=256), slices, steps=3, progress=False)
    small = Enhancer(network=network, config=CONFIG, tile=80, tile_batch=3, blend=8)
    tiled = enhance_slices(small, slices, steps=3, progress=False)
    assert tiled.shape == slices.shape
    assert np.abs(tiled - whole).max() < 1e-5


def test_loading_checks_the_config_against_the_network(model_dir, tmp_path):
    assert load_enhancer(model_dir, preset="tiny").time_input is True
    for name, change in (("baseline", {"baseline": "cnn"}), ("depth", {"network": dict(NET, depth=2)}),
                         ("time", {"network": dict(NET, time_embedding=False)})):
        folder = tmp_path / name
        shutil.copytree(model_dir, folder)
        (folder / "config.json").write_text(json.dumps(dict(CONFIG, **change)))
        with pytest.raises(model_folder.ModelFolderError, match=str(folder)):
            load_enhancer(folder)


def test_steps_none_uses_the_chosen_steps_of_the_model_folder(model_dir, tmp_path):
    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    src = write_volume(tmp_path / "lq.tif", np.full((1, 8, 8), 20000, np.uint16), voxel_size_nm=100.0)
    out = enhance_file(src, tmp_path / "fallback.tif", folder)
    assert read_volume(out)[1]["indi4d_enhance"]["steps"] == model_folder.FALLBACK_STEPS
    model_folder.write_chosen_steps(folder, 3, rule="a test rule")
    out = enhance_file(src, tmp_path / "chosen.tif", folder)
    assert read_volume(out)[1]["indi4d_enhance"]["steps"] == 3


def test_enhance_file_reads_and_writes_hdf5_and_zarr(model_dir, tmp_path):
    vol = np.random.default_rng(5).integers(10000, 50000, (2, 12, 10)).astype(np.uint16)
    write_volume(tmp_path / "scan.h5:/entry/lq", vol, voxel_size_nm=100.0)
    out_h5 = enhance_file(f"{tmp_path / 'scan.h5'}:/entry/lq", f"{tmp_path / 'out.h5'}:/enhanced", model_dir, steps=2)
    arr, meta = read_volume(f"{tmp_path / 'out.h5'}:/enhanced")
    assert arr.shape == (4, 24, 20) and arr.dtype == np.uint16 and meta["voxel_size_nm"] == 50.0
    assert str(out_h5).endswith("out.h5:/enhanced")
    enhance_file(f"{tmp_path / 'scan.h5'}:/entry/lq", tmp_path / "out.zarr", model_dir, steps=2)
    np.testing.assert_array_equal(read_volume(tmp_path / "out.zarr")[0], arr)
    enhance_file(tmp_path / "out.zarr", tmp_path / "again.tif", model_dir, steps=1)
    assert read_volume(tmp_path / "again.tif")[0].shape == (8, 48, 40)


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_enhance_file_refuses_to_touch_its_input_before_any_work(tmp_path):
    """Output = input (TIFF), the same HDF5 dataset spelled two ways, another dataset of the input file.

    The model folder does not even exist: a refusal that names the output
    proves the check ran before anything was loaded or computed.
    """
    from indi4d.safety import UnsafeOutputError

    missing_model = tmp_path / "no_model"
    vol = np.full((2, 8, 8), 20000, np.uint16)
    tif = write_volume(tmp_path / "lq.tif", vol, voxel_size_nm=100.0)
    h5 = tmp_path / "scan.h5"
    write_volume(f"{h5}:/entry/data", vol, voxel_size_nm=100.0)
    before = {tif: _digest(tif), h5: _digest(h5)}
    cases = [(tif, tif), (str(tif), f"{tmp_path}/./lq.tif"),
             (f"{h5}:/entry/data", f"{h5}:entry/data"), (f"{h5}:entry/data", f"{h5}:/entry/data/"),
             (f"{h5}:/entry/data", f"{h5}:/entry/enhanced"), (f"{h5}:/entry/data", str(h5))]
    for src, out in cases:
        with pytest.raises(UnsafeOutputError, match="input"):
            enhance_file(src, out, missing_model, steps=2)
    assert {p: _digest(p) for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lq.tif", "scan.h5"]  # nothing else written
    import h5py

    with h5py.File(h5) as f:
        assert list(f["entry"]) == ["data"]


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
    with pytest.raises(ValueError, match="nan.tif: dtype float32.*--input-range"):  # refused before any work
        enhance_file(bad, tmp_path / "o.tif", model_dir, steps=2, voxel_size_nm=100)
    with pytest.raises(ValueError, match=r"nan.tif: NaN or infinite grey values in slice z = 0; nothing was written"):
        enhance_file(bad, tmp_path / "o.tif", model_dir, steps=2, voxel_size_nm=100, input_range=(0, 1))
    # NaN outside the middle slice (the one checked before any work) is found when its chunk is read
    stack = np.full((3, 8, 8), 0.5, np.float32)
    stack[0, 2, 2] = np.nan
    tifffile.imwrite(tmp_path / "nan0.tif", stack)  # write_volume itself refuses NaN
    with pytest.raises(ValueError, match=r"nan0.tif: NaN or infinite grey values in slice z = 0; nothing was written"):
        enhance_file(tmp_path / "nan0.tif", tmp_path / "o.tif", model_dir, steps=2, input_range=(0, 1),
                     voxel_size_nm=100)
    assert not (tmp_path / "o.tif").exists()
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
    assert str(tmp_path / "none") in capsys.readouterr().err  # the message names the missing model folder
    try:  # refused by the argument parser (SystemExit) or by the command (exit status): 2 either way
        code = main(["enhance", str(src), str(tmp_path / "o3.tif"), "--model", str(model_dir), "--steps", "0"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and not (tmp_path / "o3.tif").exists()
