"""Volumes at scale: slab-by-slab enhancement == in-memory, 2 worker processes == one process bit for bit,
bad inputs refused first, nothing complete-looking after a failure."""

import json

import numpy as np
import pytest
import tifffile

from indi4d.cli import main
from indi4d.inference import EnhanceInputError, check_enhance_input, enhance_chunked, enhance_volume, load_enhancer
from indi4d.inference import chunked, execution, slabs
from indi4d.io import read_volume, write_volume
from indi4d.core.model import PRESETS, build_unet
from synthetic import write_model_folder

NET = dict(PRESETS["tiny"], dilations=[1, 2])


def _model(folder, pairs_dir=None):
    """A model folder as training writes it (random weights), optionally with the pairs' provenance."""
    config = {"network": NET, "training": {"eps": 0.0}}
    if pairs_dir is not None:
        pairs_dir.mkdir(parents=True)
        (pairs_dir / "pairs.json").write_text(json.dumps(
            {"inputs": {"lq": {"voxel_size_nm": 100.0, "dtype": "uint16"}, "hq": {"voxel_size_nm": 50.0}}}))
        config["pairs_dir"] = str(pairs_dir)
    return write_model_folder(folder, build_unet(**NET, seed=0), config)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    root = tmp_path_factory.mktemp("run")
    return _model(root / "model", pairs_dir=root / "pairs")


def _scan(shape=(20, 24, 20), seed=0):
    return np.random.default_rng(seed).integers(1000, 50000, shape).astype(np.uint16)


def _rel(a, b):
    return float(np.abs(np.asarray(a, np.float64) - b).max() / np.abs(b).max())


def _slab_run(tmp_path, vol, enh, chunk_slices, **options):
    """The slab tasks in this process on an in-memory volume, float32 out, returned as an array."""
    work = slabs.SlabWork(vol, slabs.ModelRef(enh), scratch=str(tmp_path / "xy.zarr"), out=str(tmp_path / "o.zarr"),
                          steps=2, **options)
    slabs.create_stores(work, chunk_slices)
    plan = slabs.plan_slabs(vol.shape[0], chunk_slices, work.halo if work.z_upscale else 0)
    execution.run_slabs(work, plan, client=None, progress=False)
    import zarr

    return zarr.open_array(str(tmp_path / "o.zarr"), mode="r")[...]


def test_slabs_equal_in_memory_and_would_show_seams(model, tmp_path):
    enh = load_enhancer(model, preset="tiny")
    vol = _scan()
    whole = enhance_volume(vol, enh, steps=2, progress=False)
    out = _slab_run(tmp_path, vol, enh, 3)  # 7 slabs, each z step reading up to Z_HALO slices of its neighbours
    assert out.shape == whole.shape == (40, 48, 40)
    assert _rel(out, whole) < 1e-5
    flat = _slab_run(tmp_path, vol, enh, 3, z_upscale=False)
    assert _rel(flat, enhance_volume(vol, enh, steps=2, z_upscale=False, progress=False)) < 1e-5
    # Without the z halo the slab seams are visible: the comparison above would catch them.
    assert _rel(_slab_run(tmp_path, vol, enh, 3, halo=0), whole) > 1e-4


def test_a_slab_reads_the_slabs_within_the_halo_and_no_others():
    plan = slabs.plan_slabs(20, 3, 4)
    assert [(s.start, s.stop) for s in plan] == [(0, 3), (3, 6), (6, 9), (9, 12), (12, 15), (15, 18), (18, 20)]
    assert plan[0].needs == (0, 1, 2) and plan[3].needs == (1, 2, 3, 4, 5) and plan[-1].needs == (4, 5, 6)
    assert [s.needs for s in slabs.plan_slabs(5, 2, 0)] == [(0,), (1,), (2,)]
    assert slabs.default_chunk_slices((4096, 128, 128)) == round(slabs.CHUNK_VOXELS / 128**2)
    assert slabs.default_chunk_slices((100, 4096, 4096)) == slabs.MIN_SLAB_SLICES  # the halo's cost stays small
    assert slabs.default_chunk_slices((3, 8, 8)) == 3
    # output chunks divide a slab's region and stay under the limit: 16 slices of 32 MiB -> chunks of 2
    assert slabs.out_chunk_slices(16, 32 * 2**20) == 2 and slabs.out_chunk_slices(16, 1) == 16
    assert slabs.out_chunk_slices(6, 10**9) == 1


def test_two_worker_processes_equal_one_process_bit_for_bit(model, tmp_path, capsys):
    """A LocalCluster of 2 single-threaded worker processes writes the bytes one process writes, any format."""
    vol = _scan((9, 16, 16), seed=1)
    write_volume(tmp_path / "lq.zarr", vol, voxel_size_nm=100)
    one = enhance_chunked(tmp_path / "lq.zarr", tmp_path / "one.zarr", model, steps=1, chunk_slices=2,
                          preset="tiny", progress=True)
    assert "2.30k/2.30k" in capsys.readouterr().err  # 9 x 16 x 16 LQ voxels, counted slab by slab
    two = enhance_chunked(tmp_path / "lq.zarr", tmp_path / "two.h5:/x", model, steps=1, chunk_slices=2,
                          preset="tiny", workers=2, processes=True, progress=True)
    assert "2.30k/2.30k" in capsys.readouterr().err
    a, meta = read_volume(one)
    b, meta_b = read_volume(two)
    assert a.shape == (18, 32, 32) and a.dtype == np.uint16
    np.testing.assert_array_equal(a, b)
    assert meta["voxel_size_nm"] == meta_b["voxel_size_nm"] == 50.0 and meta["indi4d_enhance"]["chunked"]
    enhance_chunked(tmp_path / "lq.zarr", tmp_path / "three.tif", model, steps=1, chunk_slices=2, preset="tiny",
                    progress=False)
    np.testing.assert_array_equal(read_volume(tmp_path / "three.tif")[0], a)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lq.zarr", "one.zarr", "three.tif", "two.h5"]


def _tensorflow_threads():
    import tensorflow as tf

    return tf.config.threading.get_intra_op_parallelism_threads(), tf.config.threading.get_inter_op_parallelism_threads()


def test_every_worker_process_is_pinned_and_holds_the_model_before_the_first_slab(model):
    import os

    with execution.dask_scheduler(2, processes=True) as client:
        assert all(v == [] for v in client.run(slabs.cached_models).values())  # fresh processes: nothing loaded
        execution.prepare_workers(client, slabs.ModelRef(model, "tiny"), own_cluster=True)
        loaded = client.run(slabs.cached_models)
        cores = client.run(os.sched_getaffinity, 0)
        threads = client.run(_tensorflow_threads)
    assert len(loaded) == 2 and all(v == [str(model.resolve())] for v in loaded.values())
    shares = sorted(map(sorted, cores.values()))
    assert shares == sorted(map(sorted, execution.core_shares(2)))
    if len(os.sched_getaffinity(0)) >= 2:  # each worker on cores of its own, TensorFlow sized to them
        assert not set(shares[0]) & set(shares[1])
    assert sorted(threads.values()) == sorted((len(c), 1) for c in cores.values())


def test_input_range_maps_a_float_scan_and_back(model, tmp_path):
    vol = _scan((2, 16, 16)).astype(np.float32) / 60000.0
    write_volume(tmp_path / "f.tif", vol, voxel_size_nm=100)
    with pytest.raises(EnhanceInputError, match=r"f\.tif: dtype float32.*uint16.*--input-range"):
        check_enhance_input(tmp_path / "f.tif", tmp_path / "o.tif", model, steps=1)
    out = enhance_chunked(tmp_path / "f.tif", tmp_path / "o.tif", model, steps=1, input_range=(0, 1), preset="tiny",
                          progress=False)
    enhanced = read_volume(out)[0]
    assert enhanced.dtype == np.float32 and enhanced.shape == (4, 32, 32)
    assert 0.0 <= enhanced.min() and enhanced.max() <= 1.0


def _bad_inputs(d):
    """``{name: (input path, extra CLI args, words the error must hold)}``, files written into ``d``."""
    write_volume(d / "u8.tif", np.full((2, 16, 16), 100, np.uint8), voxel_size_nm=100)
    write_volume(d / "f01.h5:/data", np.full((2, 16, 16), 0.5, np.float32), voxel_size_nm=100)
    tifffile.imwrite(d / "rgb.tif", np.zeros((32, 32, 3), np.uint8), photometric="rgb")
    write_volume(d / "rgb16.tif", np.zeros((32, 32, 3), np.uint16), voxel_size_nm=100)
    tifffile.imwrite(d / "novoxel.tif", np.full((2, 16, 16), 20000, np.uint16))
    write_volume(d / "v200.zarr", np.full((2, 16, 16), 20000, np.uint16), voxel_size_nm=200)
    write_volume(d / "ok.tif", np.full((2, 16, 16), 20000, np.uint16), voxel_size_nm=100)
    (d / "garbage.tif").write_bytes(b"not a tiff at all")
    tifffile.imwrite(d / "4d.tif", np.zeros((2, 3, 16, 16), np.uint16), imagej=True)
    return {
        "uint8": ("u8.tif", [], ["u8.tif", "dtype uint8", "uint16", "--input-range"]),
        "float": ("f01.h5:/data", [], ["f01.h5", "dtype float32", "--input-range"]),
        "rgb": ("rgb.tif", ["--input-range", "0", "255"], ["rgb.tif"]),
        "rgb16": ("rgb16.tif", [], ["rgb16.tif", "RGB"]),
        "4D": ("4d.tif", [], ["4d.tif", "(2, 3, 16, 16)", "4D"]),
        "no voxel": ("novoxel.tif", [], ["novoxel.tif", "no voxel size", "--voxel-size-nm", "100 nm LQ"]),
        "wrong voxel": ("v200.zarr", [], ["v200.zarr", "200 nm", "100 nm"]),
        "flag against file": ("ok.tif", ["--voxel-size-nm", "50"], ["ok.tif", "100 nm", "50 nm"]),
        "too many steps": ("ok.tif", ["--steps", "101"], ["101", "--force"]),
        "unreadable": ("garbage.tif", [], ["garbage.tif"]),
        "output is input": ("ok.tif", ["OUT=ok.tif"], ["ok.tif"]),
        "bad range": ("ok.tif", ["--input-range", "5", "5"], ["LO < HI"]),
    }


def test_bad_inputs_are_refused_before_any_work(model, tmp_path, monkeypatch, capsys):
    def no_work(*args, **kwargs):
        raise AssertionError("computation started")

    monkeypatch.setattr(chunked, "write_enhanced", no_work)
    monkeypatch.setattr(slabs.ModelRef, "get", no_work)
    cases = _bad_inputs(tmp_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    for name, (src, extra, words) in cases.items():
        out = str(tmp_path / "out.zarr")
        if extra and extra[0].startswith("OUT="):
            out, extra = str(tmp_path / extra[0][4:]), extra[1:]
        assert main(["enhance", str(tmp_path / src), out, "--model", str(model), *extra]) == 2, name
        err = capsys.readouterr().err
        for word in words:
            assert word in err, (name, word, err)
        assert "Traceback" not in err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "out.zarr").exists()
    # the same voxel size stated for a file without one, and --force, are accepted
    check_enhance_input(tmp_path / "novoxel.tif", tmp_path / "o.zarr", model, steps=101, force=True,
                        voxel_size_nm=100)
    with pytest.raises(EnhanceInputError, match="RGB"):
        check_enhance_input(tmp_path / "rgb.tif", tmp_path / "o.zarr", model, steps=1, input_range=(0, 255))


def test_a_scan_on_another_grey_scale_is_refused_unless_its_range_is_stated(tmp_path):
    """A 12-bit scan in a uint16 file passes the dtype check but not the grey-range check (middle slice)."""
    from indi4d.core import preprocess

    folder = _model(tmp_path / "model", pairs_dir=tmp_path / "pairs")
    norm = {k: preprocess.fit_normalisation(np.linspace(20000, 40000, 100), method="none") for k in ("lq", "hq")}
    (folder / "normalisation.json").write_text(json.dumps(norm))
    twelve_bit = np.random.default_rng(1).integers(0, 4096, (3, 16, 16)).astype(np.uint16)
    write_volume(tmp_path / "12bit.tif", twelve_bit, voxel_size_nm=100)
    write_volume(tmp_path / "same.tif", (twelve_bit * 5 + 20000).astype(np.uint16), voxel_size_nm=100)
    with pytest.raises(EnhanceInputError, match=r"12bit.tif: only 0% of the middle slice.*20000..40000.*--input-range"):
        check_enhance_input(tmp_path / "12bit.tif", tmp_path / "o.zarr", folder, steps=1)
    job = check_enhance_input(tmp_path / "12bit.tif", tmp_path / "o.zarr", folder, steps=1, input_range=(0, 4095))
    assert job.input_range == (0.0, 4095.0)
    check_enhance_input(tmp_path / "same.tif", tmp_path / "o.zarr", folder, steps=1)  # on the training scale
    assert not (tmp_path / "o.zarr").exists()


@pytest.mark.parametrize("suffix", ["zarr", "tif"])
def test_a_failed_run_leaves_no_complete_looking_output(model, tmp_path, monkeypatch, suffix):
    write_volume(tmp_path / "lq.tif", _scan((6, 16, 16)), voxel_size_nm=100)
    finish, calls = slabs.finish, []

    def dies_on_the_second_slab(block, *args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return finish(block, *args)

    monkeypatch.setattr(slabs, "finish", dies_on_the_second_slab)
    out = tmp_path / f"out.{suffix}"
    with pytest.raises(RuntimeError, match="killed"):
        enhance_chunked(tmp_path / "lq.tif", out, model, steps=1, chunk_slices=2, preset="tiny", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lq.tif"]
