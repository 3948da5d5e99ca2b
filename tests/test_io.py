"""Volume I/O: round trips in every format, lazy reads, atomic writes, clear errors."""

import os
import pickle

import dask.array as da
import h5py
import numpy as np
import pytest
import tifffile
import zarr

from indi4d.files import MANIFEST

from indi4d.io import (
    VolumeError,
    check_voxel_ratio,
    convert_volume,
    open_volume_lazy,
    read_metadata,
    read_volume,
    volume_format,
    write_tiff_slices,
    write_volume,
)
from indi4d.safety import UnsafeOutputError

EXTRA = {"sample": "SiOx-C", "stage": [1, 2, 3], "nested": {"a": 1.5, "b": "x"}, "flag": True}


def _volume(dtype, shape=(6, 17, 11), seed=0):
    """A volume that uses the dtype's whole range, so a lossy path shows."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 1e3).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def _snapshot(path):
    """(bytes, mtime_ns) of every file under ``path``."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): (f.read_bytes(), f.stat().st_mtime_ns) for f in files}


def _leftovers(folder):
    """Hidden temporary entries the atomic writers would leave behind on a bug."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# --------------------------------------------------------------------------- round trips

TARGETS = ["vol.tif", "vol.tiff", "vol.h5", "vol.h5:/entry/data/scan", "vol.hdf5", "vol.zarr"]


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("dtype", ["uint16", "uint8", "int16", "float32", "float64"])
def test_round_trip_exact(tmp_path, target, dtype):
    volume = _volume(dtype)
    out = write_volume(tmp_path / target, volume, voxel_size_nm=50, extra=EXTRA)
    assert out.exists() and _leftovers(tmp_path) == []
    back, meta = read_volume(tmp_path / target, expect_ndim=3)
    assert back.dtype == volume.dtype
    np.testing.assert_array_equal(back, volume)
    assert meta["voxel_size_nm"] == 50.0
    for key, value in EXTRA.items():
        assert meta[key] == value
    assert read_metadata(tmp_path / target)["voxel_size_nm"] == 50.0


def test_folder_of_slices_round_trip(tmp_path):
    volume = _volume("uint16", shape=(12, 9, 7))
    write_tiff_slices(tmp_path / "slices", volume, voxel_size_nm=100.0, extra={"beamline": "ID16B"})
    names = sorted(p.name for p in (tmp_path / "slices").iterdir() if p.name != MANIFEST)
    assert names[0] == "slice_00000.tif" and len(names) == 12
    assert volume_format(tmp_path / "slices") == "tiff-folder"
    back, meta = read_volume(tmp_path / "slices")
    np.testing.assert_array_equal(back, volume)
    assert meta == {"beamline": "ID16B", "voxel_size_nm": 100.0}


def test_folder_natural_order_and_hidden_files(tmp_path):
    folder = tmp_path / "stack"
    folder.mkdir()
    # z = 0..10 written with unpadded numbers: "img10" must come after "img9".
    for z in range(11):
        tifffile.imwrite(folder / f"img{z}.tif", np.full((4, 5), z, np.uint16))
    (folder / ".img3.tif.abc.part").write_bytes(b"half written")  # an unfinished write is ignored
    back, _ = read_volume(folder)
    np.testing.assert_array_equal(back[:, 0, 0], np.arange(11))


@pytest.mark.parametrize("shape", [(16, 16, 3), (3, 16, 16), (4, 5, 6), (1, 8, 8)])
def test_tiff_small_axes_stay_z_y_x(tmp_path, shape):
    # A small last or first axis must not be taken for colour samples.
    volume = _volume("uint16", shape=shape)
    write_volume(tmp_path / "v.tif", volume)
    back, _ = read_volume(tmp_path / "v.tif", expect_ndim=3)
    assert back.shape == shape
    np.testing.assert_array_equal(back, volume)


@pytest.mark.parametrize("target", ["im.tif", "im.h5", "im.zarr"])
def test_2d_round_trip(tmp_path, target):
    image = _volume("uint16", shape=(13, 8))
    write_volume(tmp_path / target, image, voxel_size_nm=25)
    back, meta = read_volume(tmp_path / target, expect_ndim=2)
    np.testing.assert_array_equal(back, image)
    assert meta["voxel_size_nm"] == 25.0


def test_hdf5_dataset_argument_and_other_datasets_kept(tmp_path):
    a, b = _volume("uint16", seed=1), _volume("uint8", seed=2)
    write_volume(tmp_path / "scan.h5:/lq", a, voxel_size_nm=100)
    write_volume(tmp_path / "scan.h5", b, voxel_size_nm=50, dataset="/hq/labels")
    with h5py.File(tmp_path / "scan.h5", "r") as h5:
        assert sorted(h5.keys()) == ["hq", "lq"]
        assert h5["lq"].attrs["voxel_size_nm"] == 100.0
    np.testing.assert_array_equal(read_volume(tmp_path / "scan.h5", dataset="lq")[0], a)
    np.testing.assert_array_equal(read_volume(tmp_path / "scan.h5:/hq/labels")[0], b)


def test_hdf5_written_by_someone_else(tmp_path):
    # A beamline-style file: no JSON, plain attributes, one dataset deep in the tree.
    volume = _volume("uint16")
    with h5py.File(tmp_path / "beamline.nxs", "w") as h5:
        dset = h5.create_dataset("entry/instrument/detector/tomo data", data=volume)
        dset.attrs["voxel_size_nm"] = np.float32(100.0)
        dset.attrs["energy_keV"] = 17.5
        dset.attrs["operator"] = b"beamline"
    back, meta = read_volume(tmp_path / "beamline.nxs")  # the only dataset is found by itself
    np.testing.assert_array_equal(back, volume)
    assert meta == {"voxel_size_nm": 100.0, "energy_keV": 17.5, "operator": "beamline"}


def test_zarr_group_member(tmp_path):
    volume = _volume("uint16")
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    arr = group.create_array("recon/lq", shape=volume.shape, dtype=volume.dtype, chunks=(2, 17, 11))
    arr[...] = volume
    arr.attrs["voxel_size_nm"] = 100
    back, meta = read_volume(tmp_path / "g.zarr", dataset="recon/lq")
    np.testing.assert_array_equal(back, volume)
    assert meta["voxel_size_nm"] == 100.0
    lazy, _ = open_volume_lazy(tmp_path / "g.zarr", dataset="/recon/lq")
    assert lazy.chunks[0] == (2, 2, 2)
    np.testing.assert_array_equal(lazy.compute(), volume)


# ImageJ descriptions are ASCII: the micro sign is written as the text "\u00B5m".
@pytest.mark.parametrize("unit, spacing", [("um", 0.05), ("micron", 0.05), ("\\u00B5m", 0.05), ("nm", 50.0)])
def test_imagej_spacing_gives_voxel_size(tmp_path, unit, spacing):
    volume = _volume("uint16")
    tifffile.imwrite(tmp_path / "fiji.tif", volume, imagej=True,
                     metadata={"spacing": spacing, "unit": unit, "axes": "ZYX"})
    back, meta = read_volume(tmp_path / "fiji.tif")
    np.testing.assert_array_equal(back, volume)
    assert meta["voxel_size_nm"] == pytest.approx(50.0)


def test_voxel_size_round_trips_through_imagej_tags_alone(tmp_path):
    """A Fiji file (no JSON): the voxel size comes from ImageJ's spacing/unit or the resolution tags."""
    volume = _volume("uint16")
    tifffile.imwrite(tmp_path / "fiji.tif", volume, imagej=True, resolution=(1 / 0.05, 1 / 0.05),
                     metadata={"spacing": 0.05, "unit": "micron", "axes": "ZYX"})
    back, meta = read_volume(tmp_path / "fiji.tif")
    np.testing.assert_array_equal(back, volume)
    assert meta["voxel_size_nm"] == pytest.approx(50.0)
    # A single Fiji image has no z spacing: the X/Y resolution tags carry it.
    tifffile.imwrite(tmp_path / "fiji2d.tif", volume[0], imagej=True, resolution=(1 / 0.1, 1 / 0.1),
                     metadata={"unit": "um"})
    assert read_metadata(tmp_path / "fiji2d.tif")["voxel_size_nm"] == pytest.approx(100.0)
    # A plain TIFF with the standard ResolutionUnit (centimetre): 2e5 pixels/cm = 50 nm.
    tifffile.imwrite(tmp_path / "plain.tif", volume[0], resolution=(2e5, 2e5), resolutionunit="CENTIMETER")
    assert read_metadata(tmp_path / "plain.tif")["voxel_size_nm"] == pytest.approx(50.0)
    # 72 dpi (the usual default) says nothing about the sample: no voxel size.
    tifffile.imwrite(tmp_path / "dpi.tif", volume[0], resolution=(72, 72), resolutionunit="INCH")
    assert "voxel_size_nm" not in read_metadata(tmp_path / "dpi.tif")


@pytest.mark.parametrize("dtype", ["uint16", "float32", "float64", "int32"])
def test_our_tiffs_carry_imagej_calibration(tmp_path, dtype):
    """Fiji/ImageJ see the voxel size of a TIFF we write; our JSON description is kept beside it."""
    write_volume(tmp_path / "v.tif", _volume(dtype), voxel_size_nm=50, extra={"sample": "T0"})
    write_tiff_slices(tmp_path / "slices", _volume(dtype, shape=(3, 9, 7)), voxel_size_nm=65)
    with tifffile.TiffFile(tmp_path / "v.tif") as tif:
        page = tif.pages[0]
        assert tif.imagej_metadata["unit"] == "micron"
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.05)
        assert tif.imagej_metadata["images"] == 6
        assert page.tags["XResolution"].value == (20, 1) and page.tags["YResolution"].value == (20, 1)
        assert page.tags["ResolutionUnit"].value == tifffile.RESUNIT.NONE
        # ImageJ keeps the last description of the first page: its own must come last.
        descriptions = [tag.value for tag in page.tags if tag.code == 270]
        assert descriptions[-1].startswith("ImageJ=") and '"voxel_size_nm": 50.0' in descriptions[0]
    with tifffile.TiffFile(tmp_path / "slices" / "slice_00000.tif") as tif:
        assert tif.imagej_metadata["unit"] == "micron"
        assert 1 / np.divide(*tif.pages[0].tags["XResolution"].value) == pytest.approx(0.065, rel=1e-6)
    assert read_metadata(tmp_path / "v.tif") == {"voxel_size_nm": 50.0, "sample": "T0"}
    assert read_metadata(tmp_path / "slices") == {"voxel_size_nm": 65.0}


# --------------------------------------------------------------------------- lazy reading


@pytest.mark.parametrize("target", ["v.tif", "v.h5", "v.zarr", "slices"])
def test_lazy_matches_eager_and_pickles(tmp_path, target):
    volume = _volume("uint16", shape=(9, 21, 13))
    if target == "slices":
        write_tiff_slices(tmp_path / target, volume, voxel_size_nm=100)
    else:
        write_volume(tmp_path / target, volume, voxel_size_nm=100)
    lazy, meta = open_volume_lazy(tmp_path / target, chunks=(4, 21, 13) if target != "v.zarr" else None)
    assert isinstance(lazy, da.Array) and lazy.shape == volume.shape and lazy.dtype == volume.dtype
    assert meta["voxel_size_nm"] == 100.0
    if target != "v.zarr":
        assert lazy.chunks[0] == (4, 4, 1)
    np.testing.assert_array_equal(lazy.compute(), volume)
    np.testing.assert_array_equal(lazy[3:8:2, 5:9, -1].compute(), volume[3:8:2, 5:9, -1])
    np.testing.assert_array_equal(lazy[7].compute(), volume[7])
    # Picklable graph: what dask.distributed ships to workers.
    copy = pickle.loads(pickle.dumps(lazy))
    np.testing.assert_array_equal(copy.sum(axis=0).compute(), volume.sum(axis=0, dtype=np.uint64))


def test_lazy_default_chunks_are_z_slabs(tmp_path):
    volume = _volume("uint16", shape=(5, 40, 30))
    write_volume(tmp_path / "v.h5", volume)
    lazy, _ = open_volume_lazy(tmp_path / "v.h5")
    assert lazy.chunks == ((5,), (40,), (30,))  # 12 kB: one chunk


@pytest.mark.parametrize("target", ["w.tif", "w.h5", "w.zarr"])
def test_write_from_dask_streams_blocks(tmp_path, target):
    volume = _volume("float32", shape=(7, 12, 10))
    lazy = da.from_array(volume, chunks=(3, 5, 4))
    write_volume(tmp_path / target, lazy, voxel_size_nm=50, extra={"enhanced": True})
    back, meta = read_volume(tmp_path / target)
    np.testing.assert_array_equal(back, volume)
    assert meta["enhanced"] is True


def test_convert_volume_keeps_values_and_metadata(tmp_path):
    volume = _volume("uint16")
    write_volume(tmp_path / "a.tif", volume, voxel_size_nm=100, extra={"sample": "T0"})
    for dst in ["b.zarr", "c.h5:/x", "slices"]:
        convert_volume(tmp_path / "a.tif", tmp_path / dst)
        back, meta = read_volume(tmp_path / dst)
        np.testing.assert_array_equal(back, volume)
        assert meta == {"sample": "T0", "voxel_size_nm": 100.0}


def test_convert_refuses_to_overwrite_its_input(tmp_path):
    volume = _volume("uint16")
    write_volume(tmp_path / "a.tif", volume)
    write_volume(tmp_path / "a.h5:/lq", volume)
    before = {name: _snapshot(tmp_path / name) for name in ["a.tif", "a.h5"]}
    with pytest.raises(UnsafeOutputError, match="it is the input") as err:
        convert_volume(tmp_path / "a.tif", tmp_path / "." / "a.tif")
    assert str(tmp_path / "." / "a.tif") in str(err.value)
    # The same dataset spelled two ways, and another dataset of the input file
    # (writing it rewrites the whole file): both refused.
    with pytest.raises(UnsafeOutputError, match="input dataset"):
        convert_volume(f"{tmp_path / 'a.h5'}:/lq", f"{tmp_path / 'a.h5'}:lq")
    with pytest.raises(UnsafeOutputError, match="a dataset of the input file"):
        convert_volume(f"{tmp_path / 'a.h5'}:/lq", f"{tmp_path / 'a.h5'}:/lq_copy")
    assert {name: _snapshot(tmp_path / name) for name in ["a.tif", "a.h5"]} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.h5", "a.tif"]
    convert_volume(f"{tmp_path / 'a.h5'}:/lq", f"{tmp_path / 'b.h5'}:/lq_copy")
    np.testing.assert_array_equal(read_volume(tmp_path / "b.h5:/lq_copy")[0], volume)


# --------------------------------------------------------------------------- inputs untouched


@pytest.mark.parametrize("target", ["v.tif", "v.h5", "v.zarr", "slices"])
def test_reading_never_touches_the_input(tmp_path, target):
    volume = _volume("uint16")
    if target == "slices":
        write_tiff_slices(tmp_path / target, volume)
    else:
        write_volume(tmp_path / target, volume, voxel_size_nm=100)
    before = _snapshot(tmp_path / target)
    read_volume(tmp_path / target)
    read_metadata(tmp_path / target)
    open_volume_lazy(tmp_path / target)[0].compute()
    assert _snapshot(tmp_path / target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target]


# --------------------------------------------------------------------------- atomic writes


def _failing_dask(volume, bad_block=2):
    """A dask array whose ``bad_block``-th z-block raises, as a crashing writer would."""
    def maybe_fail(block, block_info=None):
        if block_info[None]["chunk-location"][0] == bad_block:
            raise RuntimeError("simulated crash while writing")
        return block

    return da.from_array(volume, chunks=(2, volume.shape[1], volume.shape[2])).map_blocks(maybe_fail, dtype=volume.dtype)


@pytest.mark.parametrize("target", ["w.tif", "w.h5", "w.zarr"])
def test_failed_write_leaves_nothing_and_keeps_old_file(tmp_path, target):
    volume = _volume("uint16", shape=(8, 6, 5))
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_volume(tmp_path / target, _failing_dask(volume))
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary
    # With an older complete file in place, a crash must leave it as it was.
    old = _volume("uint16", shape=(8, 6, 5), seed=7)
    write_volume(tmp_path / target, old, voxel_size_nm=100)
    before = _snapshot(tmp_path / target)
    with pytest.raises(RuntimeError, match="simulated crash"):
        write_volume(tmp_path / target, _failing_dask(volume))
    assert _snapshot(tmp_path / target) == before
    assert _leftovers(tmp_path) == []
    np.testing.assert_array_equal(read_volume(tmp_path / target)[0], old)


@pytest.mark.parametrize("target", ["n.tif", "n.h5", "n.zarr"])
def test_nan_found_while_streaming_aborts_the_write(tmp_path, target):
    volume = _volume("float32", shape=(6, 5, 5))
    volume[5, 2, 2] = np.nan  # in the last block: earlier blocks are already written
    with pytest.raises(VolumeError, match="NaN/Inf") as err:
        write_volume(tmp_path / target, da.from_array(volume, chunks=(2, 5, 5)))
    assert str(err.value).startswith(str(tmp_path / target.split(":")[0]))
    assert list(tmp_path.iterdir()) == []


def test_written_files_have_ordinary_permissions(tmp_path):
    write_volume(tmp_path / "v.tif", _volume("uint8"))
    write_volume(tmp_path / "v.h5", _volume("uint8"))
    umask = os.umask(0)
    os.umask(umask)
    for name in ["v.tif", "v.h5"]:
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------- bad input


def _assert_names(err, path):
    assert str(err.value).startswith(str(path)), str(err.value)


def test_missing_and_empty_files(tmp_path):
    for name in ["nope.tif", "nope.h5", "nope.zarr", "nope.h5:/data"]:
        with pytest.raises(VolumeError, match="no such file") as err:
            read_volume(tmp_path / name)
        _assert_names(err, tmp_path / name.split(":")[0])
    for name in ["empty.tif", "empty.h5"]:
        (tmp_path / name).write_bytes(b"")
        with pytest.raises(VolumeError, match="empty file") as err:
            read_volume(tmp_path / name)
        _assert_names(err, tmp_path / name)


@pytest.mark.parametrize("where", ["0.3", "0.6", "0.9", "last-data", "last-ifd"])
def test_truncated_tiff(tmp_path, where):
    path = tmp_path / "cut.tif"
    write_volume(path, _volume("uint16", shape=(6, 32, 32)), voxel_size_nm=100)
    data = path.read_bytes()
    with tifffile.TiffFile(path) as tif:
        last = tif.pages[-1]
        # tifffile writes all pixel data first, then the page directories.
        cut = {"last-data": last.dataoffsets[0] + 100, "last-ifd": last.offset + 20}.get(where)
    path.write_bytes(data[: cut or int(len(data) * float(where))])
    with pytest.raises(VolumeError) as err:
        read_volume(path)
    _assert_names(err, path)


def test_garbage_tiff_and_hdf5(tmp_path):
    for name in ["junk.tif", "junk.h5"]:
        (tmp_path / name).write_bytes(b"this is not a volume at all" * 10)
        with pytest.raises(VolumeError, match="not a readable") as err:
            read_volume(tmp_path / name)
        _assert_names(err, tmp_path / name)


def test_truncated_hdf5(tmp_path):
    path = tmp_path / "cut.h5"
    write_volume(path, _volume("uint16", shape=(8, 64, 64)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VolumeError) as err:
        read_volume(path)
    _assert_names(err, path)


def test_wrong_ndim(tmp_path):
    write_volume(tmp_path / "im.tif", _volume("uint16", shape=(8, 8)))
    with pytest.raises(VolumeError, match="expected a 3D volume, got 2D") as err:
        read_volume(tmp_path / "im.tif", expect_ndim=3)
    _assert_names(err, tmp_path / "im.tif")
    with pytest.raises(VolumeError, match="2D or 3D"):
        write_volume(tmp_path / "4d.h5", np.zeros((2, 2, 2, 2), np.uint16))
    assert not (tmp_path / "4d.h5").exists()


@pytest.mark.parametrize("data, pattern", [
    (np.ones((2, 3, 3), np.complex64), "unsupported dtype complex64"),
    (np.ones((2, 3, 3), bool), "boolean volume"),
    (np.array([["a", "b"]], dtype=h5py.string_dtype()), "unsupported dtype object"),
])
def test_unsupported_dtypes(tmp_path, data, pattern):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as h5:
        h5["scan"] = data
    with pytest.raises(VolumeError, match=pattern) as err:
        read_volume(path)
    _assert_names(err, path)
    if data.dtype.kind != "O":
        with pytest.raises(VolumeError, match=pattern):
            write_volume(tmp_path / "out.tif", data)
        assert not (tmp_path / "out.tif").exists()


def test_float_refused_when_integers_expected(tmp_path):
    write_volume(tmp_path / "mu.tif", _volume("float32"))
    with pytest.raises(VolumeError, match="floating-point") as err:
        read_volume(tmp_path / "mu.tif", allow_float=False)
    _assert_names(err, tmp_path / "mu.tif")


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_nan_inf(tmp_path, value):
    volume = _volume("float32")
    volume[2, 3, 4] = value
    with pytest.raises(VolumeError, match="NaN/Inf"):
        write_volume(tmp_path / "bad.tif", volume)
    assert not (tmp_path / "bad.tif").exists()
    tifffile.imwrite(tmp_path / "bad.tif", volume)  # written by another tool
    with pytest.raises(VolumeError, match=r"1 NaN/Inf voxels \(first at z-y-x index \(2, 3, 4\)\)") as err:
        read_volume(tmp_path / "bad.tif")
    _assert_names(err, tmp_path / "bad.tif")


def test_zero_size_axes(tmp_path):
    with h5py.File(tmp_path / "z.h5", "w") as h5:
        h5.create_dataset("scan", shape=(0, 4, 4), dtype="uint16")
    with pytest.raises(VolumeError, match=r"zero-size volume, shape \(0, 4, 4\)") as err:
        read_volume(tmp_path / "z.h5")
    _assert_names(err, tmp_path / "z.h5")
    with pytest.raises(VolumeError, match="zero-size"):
        write_volume(tmp_path / "z.zarr", np.zeros((3, 0, 2), np.uint16))
    assert not (tmp_path / "z.zarr").exists()


def test_missing_hdf5_dataset_lists_the_ones_there(tmp_path):
    path = tmp_path / "scan.h5"
    write_volume(f"{path}:/entry/lq", _volume("uint16"))
    write_volume(f"{path}:/entry/hq", _volume("uint16", shape=(4, 4, 4)))
    with pytest.raises(VolumeError) as err:
        read_volume(f"{path}:/entry/missing")
    _assert_names(err, path)
    message = str(err.value)
    assert "'/entry/missing' is not in the file" in message
    assert "/entry/hq (4, 4, 4) uint16" in message and "/entry/lq (6, 17, 11) uint16" in message
    with pytest.raises(VolumeError, match="holds 2 datasets"):
        read_volume(path)
    with pytest.raises(VolumeError, match="a group, not a dataset"):
        read_volume(path, dataset="/entry")
    with pytest.raises(VolumeError, match="two different datasets"):
        read_volume(f"{path}:/entry/lq", dataset="/entry/hq")


def test_missing_zarr_array(tmp_path):
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    group.create_array("a", shape=(2, 2, 2), dtype="uint16")
    group.create_array("b", shape=(2, 2, 2), dtype="uint16")
    with pytest.raises(VolumeError, match="arrays there: a, b") as err:
        read_volume(tmp_path / "g.zarr", dataset="c")
    _assert_names(err, tmp_path / "g.zarr")
    with pytest.raises(VolumeError, match="holds 2 arrays"):
        read_volume(tmp_path / "g.zarr")


def test_folder_with_mismatched_or_no_slices(tmp_path):
    folder = tmp_path / "stack"
    folder.mkdir()
    with pytest.raises(VolumeError, match="no .tif/.tiff slices") as err:
        read_volume(folder)
    _assert_names(err, folder)
    tifffile.imwrite(folder / "s_000.tif", np.zeros((4, 4), np.uint16))
    tifffile.imwrite(folder / "s_001.tif", np.zeros((4, 5), np.uint16))
    with pytest.raises(VolumeError, match="differs from the first slice") as err:
        read_volume(folder)
    _assert_names(err, folder / "s_001.tif")


def test_unsupported_suffix(tmp_path):
    with pytest.raises(VolumeError, match="unsupported volume format '.raw'") as err:
        read_volume(tmp_path / "scan.raw")
    _assert_names(err, tmp_path / "scan.raw")


# --------------------------------------------------------------------------- voxel sizes


def test_check_voxel_ratio(tmp_path):
    write_volume(tmp_path / "lq.tif", _volume("uint16"), voxel_size_nm=100)
    write_volume(tmp_path / "hq.h5", _volume("uint16"), voxel_size_nm=50)
    write_volume(tmp_path / "hq_wrong.tif", _volume("uint16"), voxel_size_nm=60)
    write_volume(tmp_path / "none.tif", _volume("uint16"))
    assert check_voxel_ratio(tmp_path / "lq.tif", tmp_path / "hq.h5") == 2.0
    assert check_voxel_ratio({"voxel_size_nm": 100.0}, {"voxel_size_nm": 25.0}, expected=4.0) == 4.0
    with pytest.raises(VolumeError, match=r"ratio of 1\.667, expected 2") as err:
        check_voxel_ratio(tmp_path / "lq.tif", tmp_path / "hq_wrong.tif")
    assert str(err.value).startswith(f"{tmp_path / 'lq.tif'} / {tmp_path / 'hq_wrong.tif'}")
    with pytest.raises(VolumeError, match="no voxel_size_nm") as err:
        check_voxel_ratio(tmp_path / "lq.tif", tmp_path / "none.tif")
    _assert_names(err, tmp_path / "none.tif")
    with pytest.raises(VolumeError, match="must be positive"):
        check_voxel_ratio({"voxel_size_nm": 100.0}, {"voxel_size_nm": 0.0})


def test_volume_sha256_pins_files_datasets_and_folders(tmp_path):
    import hashlib

    from indi4d.io import volume_sha256

    vol = np.arange(2 * 4 * 4, dtype=np.uint16).reshape(2, 4, 4)
    tif = write_volume(tmp_path / "v.tif", vol, voxel_size_nm=50)
    assert volume_sha256(tif) == hashlib.sha256(tif.read_bytes()).hexdigest()
    write_volume(f"{tmp_path / 'v.h5'}:/entry/data", vol, voxel_size_nm=50)
    assert volume_sha256(f"{tmp_path / 'v.h5'}:/entry/data") == hashlib.sha256((tmp_path / "v.h5").read_bytes()).hexdigest()
    write_volume(tmp_path / "v.zarr", vol, voxel_size_nm=50)
    before = volume_sha256(tmp_path / "v.zarr")
    assert before == volume_sha256(tmp_path / "v.zarr")  # stable
    write_volume(tmp_path / "w.zarr", vol + 1, voxel_size_nm=50)
    assert volume_sha256(tmp_path / "w.zarr") != before  # another content, another hash
