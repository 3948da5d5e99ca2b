"""No command can harm a user's data: outputs are checked against every input before any work.

Each command is handed one of its own inputs (or a place inside or around one)
as its output: it must exit with status 2, name the file, and leave every
input byte for byte as it was. A killed ``indi4d enhance`` leaves nothing that
looks complete, and the next run removes the dead writer's temporary file.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from indi4d.core import preprocess
from indi4d.cli import main
from indi4d.io import read_volume, write_volume
from indi4d.safety import UnsafeOutputError, check_folder_is_ours, check_output, split_spec
from synthetic import make_pairs


def make_model_dir(folder):
    """A model folder as training writes it: a tiny network with random weights (enough for the plumbing)."""
    from indi4d.core.model import PRESETS, build_unet
    from indi4d.training import save_model

    folder.mkdir(parents=True, exist_ok=True)
    net = dict(PRESETS["tiny"], dilations=[1, 2])
    save_model(build_unet(**net, seed=0), folder / "model.keras")
    (folder / "config.json").write_text(json.dumps({"network": net, "training": {"eps": 0.0}}))
    grey = np.linspace(0, 60000, 100).reshape(10, 10)
    norm = {"lq": preprocess.fit_normalisation(grey, method="none"),
            "hq": preprocess.fit_normalisation(grey, method="none")}
    (folder / "normalisation.json").write_text(json.dumps(norm))
    return folder


def snapshot(*paths):
    """``{file: (bytes, mtime_ns)}`` of every file at or under ``paths``."""
    files = []
    for path in paths:
        files += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(f): (f.read_bytes(), f.stat().st_mtime_ns) for f in files}


def refused(capsys, argv, name):
    """Run ``indi4d argv``; assert exit status 2 and a refusal that names ``name``; return the message."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"indi4d {argv[0]}: error: " in err and str(name) in err, err
    assert "output" in err and "choose" in err, err  # a refusal of the output, saying what to do instead
    assert "Traceback" not in err
    return err


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    """A simulation-like folder of tiny smooth volumes: LQ, HQ, a prediction, labels, an HDF5 scan, meta.json."""
    from scipy import ndimage as ndi

    d = tmp_path_factory.mktemp("sim")
    rng = np.random.default_rng(0)

    def grey(shape):
        return (ndi.gaussian_filter(rng.uniform(0, 1, shape), 2) * 40000 + 5000).astype(np.uint16)

    write_volume(d / "lq.tif", grey((16, 32, 32)), voxel_size_nm=100)
    write_volume(d / "hq.tif", grey((16, 32, 32)), voxel_size_nm=50)
    write_volume(d / "pred.tif", grey((16, 32, 32)), voxel_size_nm=50)
    write_volume(d / "labels.tif", rng.integers(0, 3, (16, 32, 32), dtype=np.uint8), voxel_size_nm=50)
    write_volume(d / "scan.h5:/entry/data", grey((4, 32, 32)), voxel_size_nm=100)
    # the HQ scan covers LQ voxels [4, 12) x [8, 24) x [8, 24), as a simulation's meta.json says
    (d / "meta.json").write_text(json.dumps({
        "preset": "tiny", "seed": 0, "voxel_size_nm": {"lq": 100.0, "hq": 50.0},
        "hq_region_in_lq": {"start_vox": [4, 8, 8], "stop_vox": [12, 24, 24]}, "files": {}}))
    return d


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("run") / "model")


# --------------------------------------------------------------------------- the check itself


def test_split_spec_normalises_hdf5_dataset_names():
    assert split_spec("x.h5:/entry/data") == split_spec("x.h5:entry/data/")
    assert split_spec("a/x.NXS:/e") == (split_spec("a/x.NXS")[0], "e")
    assert split_spec("C:\\scans\\a.tif")[1] is None  # a drive letter is no dataset


def test_check_output_compares_files_not_strings(tmp_path):
    (tmp_path / "a.tif").write_bytes(b"scan")
    os.link(tmp_path / "a.tif", tmp_path / "hard.tif")
    (tmp_path / "soft.tif").symlink_to(tmp_path / "a.tif")
    inputs = [tmp_path / "a.tif"]
    for alias in [tmp_path / "." / "a.tif", tmp_path / "hard.tif", tmp_path / "soft.tif"]:
        with pytest.raises(UnsafeOutputError, match="it is the input"):
            check_output(alias, inputs, who="test")
    h5 = tmp_path / "x.h5"
    h5.write_bytes(b"hdf5")
    with pytest.raises(UnsafeOutputError, match="input dataset"):
        check_output(f"{h5}:entry/data", [f"{h5}:/entry/data"])
    with pytest.raises(UnsafeOutputError, match="a dataset of the input file"):
        check_output(f"{h5}:/entry/other", [f"{h5}:/entry/data"])
    with pytest.raises(UnsafeOutputError, match="lies inside the input folder"):
        check_output(tmp_path / "sub" / "out", [tmp_path], kind="folder")
    with pytest.raises(UnsafeOutputError, match="lies inside it"):
        check_output(tmp_path, [tmp_path / "a.tif"], kind="folder")
    with pytest.raises(UnsafeOutputError, match="expected a .json"):
        check_output(tmp_path / "m.tif", [], kind="json")
    assert check_output(f"{tmp_path / 'y.h5'}:/entry/data", inputs) == tmp_path / "y.h5"
    # A volume folder (TIFF slices, zarr) is replaced as a whole: never one that holds other files.
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("mine")
    for name in ["results", "results.zarr"]:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "notes.txt").write_text("mine")
        with pytest.raises(UnsafeOutputError, match="holds entries indi4d did not write \\(notes.txt\\)"):
            check_output(tmp_path / name, [])


def test_check_folder_is_ours(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(UnsafeOutputError, match="holds other files \\(thesis.docx\\) and is not an earlier run"):
        check_folder_is_ours(tmp_path / "mine", ["meta.json"], "run")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "meta.json").write_text("{}")
    check_folder_is_ours(tmp_path / "run", ["meta.json"], "run")
    (tmp_path / "run" / ".meta.json.123.x.part").write_text("")  # looks like a temp, but nobody recorded it
    with pytest.raises(UnsafeOutputError, match=".meta.json.123.x.part"):
        check_folder_is_ours(tmp_path / "run", ["meta.json"], "run", allowed={"meta.json"})
    (tmp_path / "run" / ".meta.json.123.x.part").unlink()
    check_folder_is_ours(tmp_path / "new", ["meta.json"], "run")
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UnsafeOutputError, match="notes.txt"):
        check_folder_is_ours(tmp_path / "run", ["meta.json"], "run", allowed={"meta.json"})
    with pytest.raises(UnsafeOutputError, match="not an earlier run"):
        check_folder_is_ours(tmp_path / "run", ["meta.json"], "run", recognise=lambda folder: False)


# --------------------------------------------------------------------------- every command


@pytest.mark.parametrize("out", ["pred", "reference", "labels"])
def test_evaluate_never_writes_over_an_input(scans, capsys, out):
    inputs = {"pred": scans / "pred.tif", "reference": scans / "hq.tif", "labels": scans / "labels.tif"}
    before = snapshot(scans)
    refused(capsys, ["evaluate", inputs["pred"], inputs["reference"], "--labels", inputs["labels"],
                     "--out", inputs[out], "--preset", "tiny"], inputs[out])
    assert snapshot(scans) == before


@pytest.mark.parametrize("output", [
    "{d}/lq.tif",                 # the input itself
    "{d}/./lq.tif",               # spelled another way
])
def test_enhance_never_writes_over_its_input(scans, model, capsys, output):
    before = snapshot(scans, model)
    refused(capsys, ["enhance", scans / "lq.tif", output.format(d=scans), "--model", model], scans / "lq.tif")
    assert snapshot(scans, model) == before


@pytest.mark.parametrize("output", [
    "{d}/scan.h5:entry/data",     # the input dataset, spelled without the leading slash
    "{d}/scan.h5:/entry/data/",   # ... and with a trailing one
    "{d}/scan.h5:/entry/enhanced",  # another dataset of the input file: writing it rewrites the file
    "{d}/scan.h5",                # the file itself (default dataset)
])
def test_enhance_refuses_any_dataset_of_an_input_hdf5_file(scans, model, capsys, output):
    before = snapshot(scans, model)
    refused(capsys, ["enhance", f"{scans}/scan.h5:/entry/data", output.format(d=scans), "--model", model],
            scans / "scan.h5")
    assert snapshot(scans, model) == before


def test_enhance_refuses_an_output_inside_the_model_folder(scans, model, capsys):
    before = snapshot(model)
    refused(capsys, ["enhance", scans / "lq.tif", model / "enhanced.tif", "--model", model], model)
    assert snapshot(model) == before


@pytest.mark.parametrize("out_dir", ["{d}", "{d}/lq.tif", "{d}/meta.json"])
def test_register_never_writes_over_an_input(scans, capsys, out_dir):
    before = snapshot(scans)
    refused(capsys, ["register", scans / "lq.tif", scans / "hq.tif", out_dir.format(d=scans),
                     "--meta", scans / "meta.json", "--preset", "tiny", "--allow-unconverged"], scans)
    assert snapshot(scans) == before


def test_train_never_writes_into_its_pairs_folder(tmp_path, capsys):
    pairs = make_pairs(tmp_path / "pairs")
    before = snapshot(pairs)
    for model_dir in [pairs, pairs / "model"]:
        refused(capsys, ["train", pairs, model_dir, "--preset", "tiny", "--epochs", "1"], pairs)
    assert snapshot(pairs) == before


def test_commands_never_write_into_a_folder_of_other_files(tmp_path, scans, capsys):
    """A folder named by mistake (a user's own data) is refused before anything is written."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "lq.tif").write_bytes(b"a user's own scan, same name as a simulated one")
    (mine / "pairs.npz").write_bytes(b"a user's own array")  # the name alone does not make it a pairs folder
    (mine / "meta.json").write_text('{"beamline": "ID16B"}')  # nor a meta.json a simulation folder
    (mine / "config.json").write_text('{"colour": "blue"}')  # nor a config.json a model folder
    before = snapshot(mine)
    refused(capsys, ["simulate", mine, "--preset", "tiny"], mine)
    refused(capsys, ["register", scans / "lq.tif", scans / "hq.tif", mine,
                     "--preset", "tiny", "--allow-unconverged"], mine)
    pairs = make_pairs(tmp_path / "pairs")
    refused(capsys, ["train", pairs, mine, "--preset", "tiny", "--epochs", "1"], mine)
    refused(capsys, ["simulate", mine / "lq.tif", "--preset", "tiny"], mine / "lq.tif")  # a file, not a folder
    assert snapshot(mine) == before


def test_simulate_cached_never_writes_into_the_cache(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    (cache / "simulated").mkdir(parents=True)
    (cache / "simulated" / "keep.txt").write_text("cached")
    monkeypatch.setenv("INDI4D_DATA_DIR", str(cache))
    before = snapshot(cache)
    refused(capsys, ["simulate", cache / "simulated" / "run", "--preset", "tiny", "--cached"], cache)
    refused(capsys, ["simulate", tmp_path, "--preset", "tiny", "--cached"], cache)  # the cache is inside it
    assert snapshot(cache) == before


# --------------------------------------------------------------------------- a killed run


def test_killed_enhance_leaves_no_output_and_the_rerun_cleans_up(scans, model, tmp_path, capsys):
    lq = np.random.default_rng(1).integers(1000, 30000, (12, 48, 48), dtype=np.uint16)
    write_volume(tmp_path / "t1.tif", lq, voxel_size_nm=100)
    out = tmp_path / "t1_indi.tif"
    log = tmp_path / "stderr.txt"
    code = "import sys; from indi4d.cli import main; sys.exit(main(sys.argv[1:]))"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    with open(log, "w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code, "enhance", str(tmp_path / "t1.tif"), str(out),
                                 "--model", str(model), "--steps", "400", "--force"], stderr=err, env=env)
    try:
        deadline = time.monotonic() + 180
        while "enhancing slices" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, log.read_text()  # still computing: 400 steps x 24 slices
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not out.exists()
    # What the kill left: the dead writer's recorded scratch store beside the output, named after it.
    stale = [p for p in tmp_path.iterdir() if p.name.startswith(f".{out.name}.{proc.pid}.")]
    assert stale
    # named like a dead writer's temp, but not recorded by any writer: a user's file, kept
    lookalike = tmp_path / f".{out.name}.{proc.pid}.k1ll3d.part.tif"
    lookalike.write_bytes(b"user data")
    assert main(["enhance", str(tmp_path / "t1.tif"), str(out), "--model", str(model), "--steps", "1"]) == 0
    capsys.readouterr()
    assert not any(p.exists() for p in stale) and lookalike.read_bytes() == b"user data"
    enhanced, meta = read_volume(out)
    assert enhanced.shape == (24, 96, 96) and meta["voxel_size_nm"] == 50.0
