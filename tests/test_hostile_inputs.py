"""Hostile inputs: no corner of the file system loses data, and every bad input is refused before compute.

Each test is one case of a hostile pass over the commands (issue 21): real
files, real HDF5 groups, virtual datasets and external links, zarr groups,
symlinks and FIFOs. Every input is hashed before and after (it must be byte
for byte the same), and the command either does the right thing or exits
with status 2 and a message that names the file and says what to do.
"""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import zarr
from scipy import ndimage as ndi

from indi4d.cli import main
from indi4d.files import atomic_path, state_dir
from indi4d.io import read_metadata, write_volume
from indi4d.io.hdf5 import hdf5_write_lock
from synthetic import make_pairs
from test_safety import make_model_dir

# --------------------------------------------------------------------------- helpers


def fingerprint(*paths):
    """``{path: sha256 or link target or 'dir'}`` of everything at or under ``paths`` (links not followed)."""
    found = {}
    for path in map(Path, paths):
        entries = [path] + (sorted(path.rglob("*")) if path.is_dir() and not path.is_symlink() else [])
        for entry in entries:
            if entry.is_symlink():
                found[str(entry)] = "link -> " + os.readlink(entry)
            elif entry.is_dir():
                found[str(entry)] = "dir"
            elif entry.is_file():
                found[str(entry)] = hashlib.sha256(entry.read_bytes()).hexdigest()
    return found


def run(capsys, argv):
    """``indi4d argv`` in this process; returns (exit status, stderr)."""
    rc = main([str(a) for a in argv])
    return rc, capsys.readouterr().err


def refused(capsys, argv, *names, what=None):
    """Assert ``indi4d argv`` exits 2 with a one-line error naming every ``names`` (and ``what``); return it."""
    rc, err = run(capsys, argv)
    assert rc == 2, err
    assert f"indi4d {argv[0]}: error: " in err and "Traceback" not in err, err
    for name in names:
        assert str(name) in err, err
    if what is not None:
        assert what in err, err
    return err


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging (a FIFO blocks its reader forever)."""
    def expire(*_):
        raise TimeoutError(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def grey(shape, seed=0, lo=5000, hi=45000):
    """A smooth uint16 scan spanning ``lo..hi``."""
    field = ndi.gaussian_filter(np.random.default_rng(seed).uniform(0, 1, shape), 1)
    field = (field - field.min()) / (field.max() - field.min())
    return (lo + field * (hi - lo)).astype(np.uint16)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A tiny InDI model folder (random weights; LQ grey range 0..60000)."""
    return make_model_dir(tmp_path_factory.mktemp("run") / "model")


@pytest.fixture
def scan(tmp_path):
    path = tmp_path / "scan.tif"
    write_volume(path, grey((6, 32, 32)), voxel_size_nm=100)
    return path


def enhance(model, *args):
    return ["enhance", *args, "--model", model, "--steps", "1", "--no-progress"]


# --------------------------------------------------------------------------- 1-7: data lost


def test_1_an_hdf5_group_is_never_deleted(model, scan, tmp_path, capsys):
    out = tmp_path / "out.h5"
    with h5py.File(out, "w") as h5:
        h5["entry/a"] = np.arange(10)
        h5["entry/b"] = np.ones(3)
    before = fingerprint(out, scan)
    refused(capsys, enhance(model, scan, f"{out}:/entry"), out, what="group")
    refused(capsys, enhance(model, scan, f"{out}:/entry/a"), out, what="not written by indi4d")
    refused(capsys, enhance(model, scan, f"{out}:/entry/a/x"), out, what="is a dataset")
    assert fingerprint(out, scan) == before
    # a new dataset beside them is added, and the group keeps what it held
    assert run(capsys, enhance(model, scan, f"{out}:/entry/new"))[0] == 0
    assert run(capsys, enhance(model, scan, f"{out}:/entry/new"))[0] == 0  # ours: replaced
    with h5py.File(out) as h5:
        assert sorted(h5["entry"]) == ["a", "b", "new"]
        np.testing.assert_array_equal(h5["entry/a"][()], np.arange(10))
        assert h5["entry/new"].attrs["written_by"] == "indi4d"


def test_2_a_zarr_group_or_foreign_array_is_never_replaced(model, scan, tmp_path, capsys):
    group = zarr.open_group(str(tmp_path / "out.zarr"), mode="w")
    group.create_array("x", shape=(4,), dtype="uint8")[...] = 7
    group.create_array("y", shape=(4,), dtype="uint8")[...] = 9
    foreign = zarr.create_array(store=str(tmp_path / "theirs.zarr"), shape=(4,), dtype="uint8")
    foreign[...] = 3
    before = fingerprint(tmp_path / "out.zarr", tmp_path / "theirs.zarr", scan)
    refused(capsys, enhance(model, scan, tmp_path / "out.zarr"), "out.zarr", what="zarr group")
    refused(capsys, enhance(model, scan, tmp_path / "theirs.zarr"), "theirs.zarr", what="not written by indi4d")
    assert fingerprint(tmp_path / "out.zarr", tmp_path / "theirs.zarr", scan) == before
    # our own earlier output is replaced
    assert run(capsys, enhance(model, scan, tmp_path / "mine.zarr"))[0] == 0
    assert run(capsys, enhance(model, scan, tmp_path / "mine.zarr"))[0] == 0
    (tmp_path / "mine.zarr" / ".notes").write_text("a user's note")  # a file we did not write: refused now
    refused(capsys, enhance(model, scan, tmp_path / "mine.zarr"), "mine.zarr", what=".notes")
    assert (tmp_path / "mine.zarr" / ".notes").read_text() == "a user's note"


def _source_file(path):
    with h5py.File(path, "w") as h5:
        h5["data"] = grey((6, 32, 32))
        h5["data"].attrs["voxel_size_nm"] = 100.0


def test_3_the_sources_of_a_virtual_dataset_or_external_link_are_inputs(model, tmp_path, capsys):
    src = tmp_path / "src.h5"
    _source_file(src)
    layout = h5py.VirtualLayout(shape=(6, 32, 32), dtype="uint16")
    layout[...] = h5py.VirtualSource(str(src), "data", shape=(6, 32, 32))
    with h5py.File(tmp_path / "vds.h5", "w") as h5:
        h5.create_virtual_dataset("scan", layout)
        h5["scan"].attrs["voxel_size_nm"] = 100.0
    with h5py.File(tmp_path / "link.h5", "w") as h5:
        h5["scan"] = h5py.ExternalLink("src.h5", "data")
    before = fingerprint(src, tmp_path / "vds.h5", tmp_path / "link.h5")
    for inp in [f"{tmp_path / 'vds.h5'}:/scan", f"{tmp_path / 'link.h5'}:/scan"]:
        refused(capsys, enhance(model, inp, f"{src}:/data"), src, what="reads its data from")
        refused(capsys, enhance(model, inp, f"{src}:/enhanced"), src, what="reads its data from")
    assert fingerprint(src, tmp_path / "vds.h5", tmp_path / "link.h5") == before


def test_4_a_slice_folder_of_links_protects_the_link_targets(model, tmp_path, capsys):
    store, slices = tmp_path / "store", tmp_path / "slices"
    store.mkdir(), slices.mkdir()
    for z, image in enumerate(grey((6, 32, 32))):
        tifffile.imwrite(store / f"s{z}.tif", image, resolution=(10.0, 10.0), resolutionunit=5)
        (slices / f"s{z}.tif").symlink_to(store / f"s{z}.tif")
    before = fingerprint(store, slices)
    refused(capsys, enhance(model, slices, store / "s3.tif"), store / "s3.tif", what="reads its data from")
    assert fingerprint(store, slices) == before


def test_5_an_input_named_like_a_temporary_file_is_never_deleted(model, tmp_path, capsys):
    inp = tmp_path / ".o.tif.999999.keep.part.tif"
    write_volume(inp, grey((6, 32, 32)), voxel_size_nm=100)
    sibling = tmp_path / ".o.tif.999998.x.part"  # a user's folder with a temp-like name
    sibling.mkdir()
    (sibling / "notes.txt").write_text("mine")
    before = fingerprint(inp, sibling)
    assert run(capsys, enhance(model, inp, tmp_path / "o.tif"))[0] == 0
    assert fingerprint(inp, sibling) == before and (tmp_path / "o.tif").is_file()


def test_5b_a_killed_writers_recorded_temp_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "vol.tif"
    code = ("import os; from indi4d.files import atomic_path\n"
            f"with atomic_path({str(target)!r}) as tmp:\n    tmp.write_bytes(b'half'); os._exit(9)\n")
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ), check=False)
    (left,) = [p for p in tmp_path.iterdir() if p.name.startswith(".vol.tif.")]
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert not left.exists() and target.read_bytes() == b"done"


def test_6_a_users_dot_file_in_a_simulation_folder_is_never_deleted(tmp_path, capsys):
    folder = tmp_path / "sim"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"preset": "tiny", "files": {"lq.tif": "0" * 64}}))
    (folder / "lq.tif").write_bytes(b"an earlier simulation's scan")
    (folder / ".notes").write_text("a user's notes")
    before = fingerprint(folder)
    for extra in ([], ["--cached"]):
        err = refused(capsys, ["simulate", folder, "--preset", "tiny", *extra], folder, what=".notes")
        assert "nothing was changed" in err
    assert fingerprint(folder) == before


def _writer(out, dataset):
    code = ("import numpy as np; from indi4d.io import write_volume\n"
            f"write_volume({f'{out}:/{dataset}'!r}, np.full((4, 8, 8), {len(dataset)}, np.uint16))\n")
    return subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ))


def test_7_writers_of_one_hdf5_file_take_turns(tmp_path):
    out = tmp_path / "new.h5"
    with hdf5_write_lock(out):  # another writer is busy with the file: both new writers must wait
        writers = [_writer(out, "a"), _writer(out, "bb")]
        time.sleep(3)
        assert all(w.poll() is None for w in writers) and not out.exists()
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    with h5py.File(out) as h5:
        assert sorted(h5) == ["a", "bb"]
        assert h5["a"][0, 0, 0] == 1 and h5["bb"][0, 0, 0] == 2
    assert not [p for p in tmp_path.iterdir() if p.name != "new.h5"]  # no lock file beside the data
    assert list((state_dir() / "locks").glob("*.lock"))


# --------------------------------------------------------------------------- 8-14: silent wrong output


def test_8_a_12_bit_scan_in_uint16_is_refused_until_input_range(model, tmp_path, capsys):
    inp = tmp_path / "twelve.tif"
    write_volume(inp, grey((6, 32, 32), lo=0, hi=4095), voxel_size_nm=100)
    before = fingerprint(inp)
    refused(capsys, enhance(model, inp, tmp_path / "o.tif"), inp, what="--input-range")
    assert not (tmp_path / "o.tif").exists()
    assert run(capsys, enhance(model, inp, tmp_path / "o.tif") + ["--input-range", "0", "4095"])[0] == 0
    assert fingerprint(inp) == before


def test_9_fiji_z_spacing_and_xy_pixel_size_are_read_per_axis(model, tmp_path, capsys):
    inp = tmp_path / "fiji.tif"
    tifffile.imwrite(inp, grey((6, 32, 32)), imagej=True, resolution=(20.0, 20.0),  # 50 nm pixels
                     metadata={"spacing": 0.1, "unit": "um", "axes": "ZYX"})  # 100 nm slices
    meta = read_metadata(inp)
    assert meta["voxel_size_zyx_nm"] == pytest.approx([100.0, 50.0, 50.0])
    assert meta["voxel_size_nm"] == pytest.approx(50.0)  # y-x, never the z spacing
    before = fingerprint(inp)
    refused(capsys, enhance(model, inp, tmp_path / "o.tif"), inp, what="anisotropic")
    assert fingerprint(inp) == before


@pytest.mark.parametrize("odd", ["float", "int64", "shape"])
def test_10_every_slice_of_a_folder_is_checked_before_compute(model, tmp_path, capsys, odd):
    slices = tmp_path / "slices"
    slices.mkdir()
    for z, image in enumerate(grey((6, 32, 32))):
        if z == 4:
            image = {"float": image.astype(np.float32), "int64": image.astype(np.int64),
                     "shape": image[:30]}[odd]
        tifffile.imwrite(slices / f"s{z:02d}.tif", image, resolution=(10.0, 10.0), resolutionunit=5)
    before = fingerprint(slices)
    refused(capsys, enhance(model, slices, tmp_path / "o.tif"), slices / "s04.tif", what="differs from the first")
    assert fingerprint(slices) == before and not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("lo, hi", [(30000, 30000), (60000, 0), (0, float("nan"))])
def test_11_a_normalisation_that_gives_a_flat_or_inverted_output_is_refused(tmp_path, scan, capsys, lo, hi):
    folder = make_model_dir(tmp_path / "model")
    norm_file = folder / "normalisation.json"
    norm = json.loads(norm_file.read_text())
    norm["hq"].update(lo=lo, hi=hi)
    norm_file.write_text(json.dumps(norm))  # Python's json writes nan as NaN, as a careless tool would
    refused(capsys, enhance(folder, scan, tmp_path / "o.tif"), norm_file, what="lo < hi")
    assert not (tmp_path / "o.tif").exists()


@pytest.mark.parametrize("labels", [[1, 2, 3, 4], [-1, 0, 1, 2], [0, 9]])
def test_12_evaluate_labels_outside_the_phases_are_refused(tmp_path, capsys, labels):
    write_volume(tmp_path / "pred.tif", grey((6, 32, 32)), voxel_size_nm=50)
    write_volume(tmp_path / "ref.tif", grey((6, 32, 32), seed=1), voxel_size_nm=50)
    values = np.resize(np.array(labels, np.int16), (6, 32, 32))
    write_volume(tmp_path / "labels.tif", values, voxel_size_nm=50)
    before = fingerprint(tmp_path)
    refused(capsys, ["evaluate", tmp_path / "pred.tif", tmp_path / "ref.tif", "--labels", tmp_path / "labels.tif",
                     "--out", tmp_path / "m.json", "--preset", "tiny"], tmp_path / "labels.tif", what="phases")
    assert fingerprint(tmp_path) == before


def test_13_segment_refuses_nan_grey_values(tmp_path, capsys):
    volume = grey((6, 32, 32)).astype(np.float32)
    volume[2] = np.nan
    tifffile.imwrite(tmp_path / "v.tif", volume, description=json.dumps({"voxel_size_nm": 100.0}))
    scribbles = {"format": "indi4d-scribbles", "version": 1, "shape": [32, 32], "brush_radius_px": 1,
                 "strokes": {"pore": [[[2, 2], [2, 10]]], "particle": [[[20, 20], [28, 20]]]}}
    (tmp_path / "s.json").write_text(json.dumps(scribbles))
    before = fingerprint(tmp_path / "v.tif")
    refused(capsys, ["segment", tmp_path / "v.tif", tmp_path / "l.tif", "--scribbles", tmp_path / "s.json",
                     "--input-range", "0", "60000", "--slice", "0"], tmp_path / "v.tif", what="NaN")
    assert fingerprint(tmp_path / "v.tif") == before and not (tmp_path / "l.tif").exists()


@pytest.mark.parametrize("command", ["enhance", "describe"])
def test_14_a_fifo_is_refused_not_read(model, tmp_path, capsys, command):
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    argv = (enhance(model, fifo, tmp_path / "o.tif") if command == "enhance"
            else ["describe", fifo, "--out", tmp_path / "d.json"])
    with deadline(60):
        refused(capsys, argv, fifo, what="FIFO")


def test_14b_a_fifo_among_slices_or_as_output_is_refused(model, scan, tmp_path, capsys):
    slices = tmp_path / "slices"
    slices.mkdir()
    for z, image in enumerate(grey((3, 32, 32))):
        tifffile.imwrite(slices / f"s{z}.tif", image)
    os.mkfifo(slices / "s3.tif")
    os.mkfifo(tmp_path / "o.tif")
    with deadline(60):
        refused(capsys, enhance(model, slices, tmp_path / "x.tif"), slices / "s3.tif", what="FIFO")
        refused(capsys, enhance(model, scan, tmp_path / "o.tif"), tmp_path / "o.tif", what="not a regular file")


# --------------------------------------------------------------------------- weak: late, unclear, or a traceback


@pytest.mark.parametrize("config", ['[1, 2]', '{"network": 5}', '{"pairs_dir": 5}', '{"lq_voxel_size_nm": -100}'])
def test_a_garbage_config_json_is_named_before_anything_else(tmp_path, scan, capsys, config):
    folder = make_model_dir(tmp_path / "model")
    (folder / "config.json").write_text(config)
    err = refused(capsys, enhance(folder, scan, tmp_path / "o.tif"), folder / "config.json")
    assert "accepted unchecked" not in err


def test_a_truncated_or_damaged_pairs_file_is_named(tmp_path, capsys):
    pairs = make_pairs(tmp_path / "pairs", n=8, size=32)
    npz = pairs / "pairs.npz"
    data = npz.read_bytes()
    npz.write_bytes(data[: len(data) // 2])  # truncated: no zip directory
    refused(capsys, ["train", pairs, tmp_path / "m1", "--preset", "tiny", "--epochs", "1"], npz, what="register")
    damaged = bytearray(data)
    damaged[len(data) // 3: len(data) // 3 + 64] = b"\0" * 64  # inside an array: a CRC error on read
    npz.write_bytes(bytes(damaged))
    refused(capsys, ["train", pairs, tmp_path / "m2", "--preset", "tiny", "--epochs", "1"], npz, what="register")


@pytest.mark.parametrize("source", ['"slice 3"', '{"z": -1}', '{"z": "3"}'])
def test_scribbles_with_a_bad_source_are_named(scan, tmp_path, capsys, source):
    scribbles = {"format": "indi4d-scribbles", "version": 1, "shape": [32, 32], "brush_radius_px": 1,
                 "strokes": {"pore": [[[2, 2], [2, 10]]], "particle": [[[20, 20], [28, 20]]]}}
    text = json.dumps(scribbles)[:-1] + f', "source": {source}}}'
    (tmp_path / "s.json").write_text(text)
    refused(capsys, ["segment", scan, tmp_path / "l.tif", "--scribbles", tmp_path / "s.json"], tmp_path / "s.json",
            what="source")


def test_segment_refuses_an_enhancement_model_folder(model, scan, tmp_path, capsys):
    before = fingerprint(model)
    refused(capsys, ["segment", scan, tmp_path / "l.tif", "--model", model], model, what="not a segmentation")
    assert fingerprint(model) == before


def test_evaluate_never_overwrites_a_json_it_did_not_write(tmp_path, capsys):
    write_volume(tmp_path / "pred.tif", grey((6, 32, 32)), voxel_size_nm=50)
    write_volume(tmp_path / "ref.tif", grey((6, 32, 32), seed=1), voxel_size_nm=50)
    (tmp_path / "notes.json").write_text('{"my": "notes"}')
    argv = ["evaluate", tmp_path / "pred.tif", tmp_path / "ref.tif", "--preset", "tiny", "--out"]
    refused(capsys, argv + [tmp_path / "notes.json"], tmp_path / "notes.json", what="not an earlier result")
    assert (tmp_path / "notes.json").read_text() == '{"my": "notes"}'
    assert run(capsys, argv + [tmp_path / "m.json"])[0] == 0
    assert run(capsys, argv + [tmp_path / "m.json"])[0] == 0  # its own earlier result: replaced
    # describe, the other command that writes a JSON result, by the same mechanism
    write_volume(tmp_path / "labels.tif", np.resize(np.array([0, 1, 2], np.uint8), (6, 32, 32)), voxel_size_nm=50)
    refused(capsys, ["describe", tmp_path / "labels.tif", "--out", tmp_path / "notes.json"], tmp_path / "notes.json",
            what="not an earlier result")
    assert (tmp_path / "notes.json").read_text() == '{"my": "notes"}'


def test_an_output_of_the_wrong_kind_is_refused_before_compute(model, scan, tmp_path, capsys):
    (tmp_path / "folder.tif").mkdir()
    (tmp_path / "text.h5").write_text("not HDF5")
    (tmp_path / "file.zarr").write_text("a file")
    before = fingerprint(tmp_path)
    refused(capsys, enhance(model, scan, tmp_path / "folder.tif"), "folder.tif", what="is a folder")
    refused(capsys, enhance(model, scan, f"{tmp_path / 'text.h5'}:/x"), "text.h5", what="not an HDF5 file")
    refused(capsys, enhance(model, scan, tmp_path / "file.zarr"), "file.zarr", what="not a folder")
    assert fingerprint(tmp_path) == before


def test_a_constant_input_is_enhanced_with_a_note(model, tmp_path, capsys):
    write_volume(tmp_path / "flat.tif", np.full((6, 32, 32), 20000, np.uint16), voxel_size_nm=100)
    rc, err = run(capsys, enhance(model, tmp_path / "flat.tif", tmp_path / "o.tif"))
    assert rc == 0 and "constant" in err and "flat.tif" in err


def _zarr_scan(path):
    arr = zarr.create_array(store=str(path), shape=(6, 32, 32), chunks=(1, 32, 32), dtype="uint16")
    arr[...] = grey((6, 32, 32))
    arr.attrs["voxel_size_nm"] = 100.0
    return path


def test_a_zarr_store_with_a_missing_or_damaged_chunk_is_named(model, tmp_path, capsys):
    store = _zarr_scan(tmp_path / "scan.zarr")
    (store / "c" / "1" / "0" / "0").unlink()
    before = fingerprint(store)
    refused(capsys, enhance(model, store, tmp_path / "o.tif"), store, what="chunks are missing")
    assert fingerprint(store) == before
    store = _zarr_scan(tmp_path / "scan2.zarr")
    (store / "c" / "1" / "0" / "0").write_bytes(b"garbage")  # not the middle slice: found while enhancing
    refused(capsys, enhance(model, store, tmp_path / "o.tif"), store, what="does not decode")
    assert not (tmp_path / "o.tif").exists()


def test_a_header_that_claims_absurd_sizes_is_refused_with_an_option_that_exists(model, tmp_path, capsys):
    store = _zarr_scan(tmp_path / "scan.zarr")
    meta = json.loads((store / "zarr.json").read_text())
    meta["shape"] = [2**40, 2**20, 2**20]
    (store / "zarr.json").write_text(json.dumps(meta))
    err = refused(capsys, enhance(model, store, tmp_path / "o.tif"), store, what="header")
    assert "--preset" not in err
    from indi4d.cli.common import describe_error

    assert "--preset" not in describe_error(MemoryError(), "enhance", has_preset=False)


def test_a_killed_simulate_leaves_nothing_under_its_name(tmp_path):
    out = tmp_path / "sim"
    code = "import sys; from indi4d.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "simulate", str(out), "--preset", "tiny"],
                            env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        limit = time.monotonic() + 120
        while time.monotonic() < limit and not any(tmp_path.glob(".sim.*/*.tif")):
            time.sleep(0.05)
        assert any(tmp_path.glob(".sim.*/*.tif")), "the simulation never wrote a file"
        proc.kill()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()  # no complete-looking files under the output's name
    assert main(["simulate", str(out), "--preset", "tiny"]) == 0  # the rerun works and clears the dead run's temp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim"]


@pytest.fixture(scope="module")
def tiny_sim(tmp_path_factory):
    from indi4d.simulate import simulate_beamline

    folder = tmp_path_factory.mktemp("tiny") / "data"
    simulate_beamline(folder, preset="tiny", seed=0, progress=False)
    return folder


def test_a_refused_register_keeps_earlier_pairs_and_the_advised_rerun_works(tiny_sim, tmp_path, capsys):
    out = make_pairs(tmp_path / "pairs", n=8, size=32)
    before = fingerprint(out)
    argv = ["register", tiny_sim / "lq.tif", tiny_sim / "hq.tif", out, "--meta", tiny_sim / "meta.json",
            "--preset", "tiny"]
    rc, err = run(capsys, argv)
    if rc == 0:
        pytest.skip("spam converged on this machine: nothing refused")
    assert rc == 2 and "--allow-unconverged" in err, err
    after = fingerprint(out)
    assert {k: v for k, v in after.items() if "phi_unconverged" not in k} == before  # earlier pairs intact
    assert run(capsys, argv + ["--allow-unconverged"])[0] == 0
    assert not (out / "phi_unconverged.json").exists() and (out / "pairs.json").exists()


def test_a_registry_name_that_is_no_file_name_is_refused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("INDI4D_DATA_DIR", str(tmp_path / "cache"))
    (tmp_path / "payload").write_bytes(b"x")
    sha = hashlib.sha256(b"x").hexdigest()
    registry = tmp_path / "registry.txt"
    registry.write_text(f"...zip sha256:{sha} payload\n")
    refused(capsys, ["fetch", "...zip", "--registry", registry], registry, what="not a plain file name")
    assert not (tmp_path / "cache").exists()


def test_workers_beyond_the_cores_are_capped_with_a_warning(capsys):
    from indi4d.cli.main import build_parser
    from indi4d.cli.model_commands import _capped_workers, available_cores

    args = build_parser().parse_args(["enhance", "a.tif", "b.tif", "--model", "m", "--workers", "999"])
    assert _capped_workers(args) == available_cores()
    assert "warning: --workers 999" in capsys.readouterr().err
    args.scheduler = "tcp://somewhere:8786"  # a cluster's workers are not this machine's cores
    assert _capped_workers(args) == 999


@pytest.mark.parametrize("argv", [["simulate", "x", "--seed", "-1"], ["train", "p", "m", "--max-minutes", "nan"],
                                  ["train", "p", "m", "--seed", "-1"], ["enhance", "a", "b", "--model", "m",
                                                                        "--voxel-size-nm", "inf"]])
def test_bad_numbers_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and "must be" in capsys.readouterr().err


def test_max_minutes_nan_is_refused_by_the_library_too(tmp_path):
    from indi4d.training import train_indi

    pairs = make_pairs(tmp_path / "pairs", n=8, size=32)
    with pytest.raises(ValueError, match="max_minutes must be a finite number"):
        train_indi(pairs, tmp_path / "model", preset="tiny", max_minutes=float("nan"))
    assert not (tmp_path / "model").exists()


def test_a_checkpoint_is_refused_before_h5py_writes_when_the_disk_is_too_full(tmp_path, monkeypatch):
    import keras

    from indi4d.core.model import PRESETS, build_unet
    from indi4d.training import checkpoints

    net = build_unet(**dict(PRESETS["tiny"], dilations=[1, 2]), seed=0)
    part = checkpoints.Part(net, keras.optimizers.Adam())
    part.build()
    # as if the disk had less free space than the factor asks for: the real free space, a larger need
    monkeypatch.setattr(checkpoints, "FREE_SPACE_FACTOR", 1e30)
    with pytest.raises(OSError, match="no space for a checkpoint") as exc:
        checkpoints.write_state(tmp_path / "model", [part], {"global_step": 1})
    assert exc.value.filename == str(tmp_path / "model") and exc.value.errno == 28
    from indi4d.cli.common import describe_error

    told = describe_error(exc.value, "train")
    assert str(tmp_path / "model") in told and "free some space" in told and "resumes" in told
    assert not (tmp_path / "model" / "checkpoints").exists() or not any((tmp_path / "model" / "checkpoints").iterdir())


@pytest.mark.parametrize("name, text", [("pairs.json", "[1]"), ("pairs.json", '{"inputs": 5}'),
                                        ("pairs.json", '{"inputs": {"lq": {"voxel_size_nm": "x"}}}'),
                                        ("normalisation.json", '{"lq": 5, "hq": {}}')])
def test_a_garbage_json_of_a_pairs_folder_is_named_before_training(tmp_path, capsys, name, text):
    pairs = make_pairs(tmp_path / "pairs", n=8, size=32)
    (pairs / name).write_text(text)
    refused(capsys, ["train", pairs, tmp_path / "model", "--preset", "tiny", "--epochs", "1"], pairs / name,
            what="indi4d register")
    assert not (tmp_path / "model").exists()


def test_a_fifo_given_as_a_json_input_is_refused(scan, tmp_path, capsys):
    os.mkfifo(tmp_path / "s.json")
    with deadline(60):
        refused(capsys, ["segment", scan, tmp_path / "l.tif", "--scribbles", tmp_path / "s.json"],
                tmp_path / "s.json", what="not a regular file")


def test_an_hdf5_output_through_a_link_is_written_into_the_real_file(tmp_path):
    real = tmp_path / "real.h5"
    with h5py.File(real, "w") as h5:
        h5["theirs"] = np.arange(5)
    (tmp_path / "link.h5").symlink_to(real)
    write_volume(f"{tmp_path / 'link.h5'}:/ours", grey((2, 8, 8)), voxel_size_nm=100)
    assert (tmp_path / "link.h5").is_symlink()  # the link stays a link
    with h5py.File(real) as h5:
        assert sorted(h5) == ["ours", "theirs"]
        np.testing.assert_array_equal(h5["theirs"][()], np.arange(5))
