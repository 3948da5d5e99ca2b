"""The ``indi4d`` command line: contracts other work relies on."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from skimage.filters import gaussian

from indi4d import __version__
from indi4d.cli import build_parser, main
from indi4d.io import read_volume, write_volume
from synthetic import make_pairs
from test_safety import make_model_dir


def test_every_contract_command_is_there():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert {"simulate", "register", "train", "enhance", "evaluate"} <= set(sub.choices)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_evaluate_with_a_mask_file_measures_a_known_blur(tmp_path):
    """A disc blurred with sigma = 1.5 px at 50 nm has an edge FWHM of 2.355 * 75 nm."""
    z, y, x = np.mgrid[:8, :64, :64]
    disc = (((y - 32) ** 2 + (x - 32) ** 2) < 12 ** 2).astype(float)
    noise = np.random.default_rng(0).normal(0, 5, disc.shape)
    write_volume(tmp_path / "ref.tif", (disc * 1000 + 1000).astype("uint16"), voxel_size_nm=50)
    blurred = gaussian(disc, (0, 1.5, 1.5)) * 1000 + 1000 + noise
    write_volume(tmp_path / "pred.tif", blurred.astype("uint16"), voxel_size_nm=50)
    write_volume(tmp_path / "mask.tif", (((y - 32) ** 2 + (x - 32) ** 2) < 30 ** 2).astype("uint8"), voxel_size_nm=50)
    out = tmp_path / "metrics.json"
    rc = main(["evaluate", str(tmp_path / "pred.tif"), str(tmp_path / "ref.tif"), "--out", str(out),
               "--mask", str(tmp_path / "mask.tif"), "--preset", "tiny"])
    assert rc == 0
    metrics = json.loads(out.read_text())
    assert metrics["fwhm_nm"] == pytest.approx(2.355 * 1.5 * 50, rel=0.1)


def test_missing_input_is_a_clear_error(tmp_path, capsys):
    rc = main(["evaluate", str(tmp_path / "a.tif"), str(tmp_path / "b.tif"), "--out", str(tmp_path / "m.json")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "a.tif" in err or "b.tif" in err
    assert not (tmp_path / "m.json").exists()


# --------------------------------------------------------------------------- help


def _sub_parsers():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices


def test_help_lists_every_option_with_its_default():
    for name, parser in _sub_parsers().items():
        formatter = parser._get_formatter()
        for action in parser._actions:
            if not action.option_strings or action.dest == "help" or action.required:
                continue
            text = formatter._get_help_string(action) % {"default": action.default}
            assert "(default: " in text, (name, action.option_strings, text)


def test_help_says_what_each_preset_costs_and_what_enhance_reads(capsys):
    """The times are the book's measurements (book/timings.json), never typed into the help."""
    from indi4d.book.timings import duration, read_timings
    from indi4d.cli.common import BOOK_DIR

    from indi4d.model_folder import run_seconds
    from indi4d.pretrained import REFERENCE, archived_json
    from indi4d.training.recipes import preset_steps

    timings = read_timings(BOOK_DIR)
    for name, stem in [("simulate", "01_data_retrieval"), ("register", "02_registration"), ("train", "04_training")]:
        with pytest.raises(SystemExit):
            main([name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for preset in ["tiny:", "default:", "paper:"]:
            assert preset in text, (name, text)
        # train's default is the reference recipe: its time is the reference network's own training record
        for preset in ["tiny"] if name == "train" else ["tiny", "default"]:
            assert f"took {duration(timings[preset][stem])} (2 CPU cores" in text, (name, preset, text)
        if name == "train":
            record = archived_json(REFERENCE["indi"], "summary.json")
            # the whole run's time: a resumed run's earlier calls count too
            seconds = run_seconds(record, archived_json(REFERENCE["indi"], "history.json"))
            assert (f"the reference recipe, {record['global_step']} steps: the reference network "
                    f"({REFERENCE['indi']}) took {duration(seconds)}") in text, text
            # quick: today's short run, its length read from the preset, its time from the same record's speed
            steps = preset_steps("quick")
            assert steps == 1500 and f"quick: today's short run of the book's network, {steps} steps: about " \
                f"{duration(seconds / record['global_step'] * steps)}" in text, text
        if name == "simulate":  # the workshop's smaller sample is a simulation preset too
            assert "workshop: a smaller sample" in text and "{tiny,workshop,default,paper}" in text, text
        assert "not timed by the book" in text  # paper
        assert "(default: default)" in text
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "TIFF" in text and "HDF5 (file.h5:/dataset)" in text and "zarr" in text
    assert "writes TIFF, HDF5 or zarr" in text
    assert "default: the N chosen by the evaluation, stored in MODEL_DIR/steps.json; 10" in text


def test_default_preset_is_announced_on_stderr(tmp_path, capsys):
    lq, hq = tmp_path / "missing_lq.tif", tmp_path / "missing_hq.tif"
    assert main(["register", str(lq), str(hq), str(tmp_path / "pairs")]) == 2
    err = capsys.readouterr().err
    assert "indi4d register: preset default: the book's volumes; chapter 02 (" in err and "--preset tiny" in err
    assert "missing_lq.tif" in err  # then the real problem, naming the file
    assert main(["register", str(lq), str(hq), str(tmp_path / "pairs"), "--preset", "tiny"]) == 2
    assert "preset default" not in capsys.readouterr().err


def test_tensorflow_is_quiet_unless_the_user_set_its_log_level(tmp_path):
    from absl import logging as absl_logging

    from indi4d.cli.main import quiet_tensorflow

    before = absl_logging.get_verbosity()
    try:
        environ = {}
        assert quiet_tensorflow(environ) and environ == {"TF_CPP_MIN_LOG_LEVEL": "2"}
        assert absl_logging.get_verbosity() == absl_logging.ERROR
        absl_logging.set_verbosity(before)
        mine = {"TF_CPP_MIN_LOG_LEVEL": "0"}
        assert not quiet_tensorflow(mine) and mine == {"TF_CPP_MIN_LOG_LEVEL": "0"}
        assert absl_logging.get_verbosity() == before
    finally:
        absl_logging.set_verbosity(before)
    # the entry point sets it before any command imports TensorFlow
    code = ("import os, sys; os.environ.pop('TF_CPP_MIN_LOG_LEVEL', None); from indi4d.cli import main; "
            "main(['evaluate', 'no.tif', 'no.tif', '--out', 'x.json']); "
            "print(os.environ['TF_CPP_MIN_LOG_LEVEL'], 'tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split() == ["2", "False"], out


# --------------------------------------------------------------------------- messages and exit status


def test_unwritable_output_is_named_before_any_work(tmp_path, capsys):
    write_volume(tmp_path / "a.tif", np.ones((4, 8, 8), np.uint16), voxel_size_nm=50)
    argv = ["evaluate", str(tmp_path / "a.tif"), str(tmp_path / "a.tif"), "--out"]
    (tmp_path / "notes.txt").write_text("a file where a folder should be")
    assert main(argv + [str(tmp_path / "notes.txt" / "m.json")]) == 2
    err = capsys.readouterr().err
    assert f"indi4d evaluate: error: output {tmp_path / 'notes.txt' / 'm.json'}: cannot write in " in err
    assert "it is a file, not a folder" in err
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        assert main(argv + [str(locked / "m.json")]) == 2
        assert "not writable (permission denied)" in capsys.readouterr().err


def test_interrupt_exits_130_without_traceback(tmp_path):
    log = tmp_path / "stderr.txt"
    code = "import sys; from indi4d.cli import main; sys.exit(main(sys.argv[1:]))"
    with open(log, "w") as err:
        # a test run started in the background (nohup, `&`) ignores SIGINT, and children inherit that:
        # give the child the default disposition, so that Python installs its KeyboardInterrupt handler
        proc = subprocess.Popen([sys.executable, "-c", code, "simulate", str(tmp_path / "sim"), "--preset", "tiny"],
                                stderr=err, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while "simulate tiny" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, log.read_text()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert "indi4d simulate: interrupted" in text and "Traceback" not in text
    assert not (tmp_path / "sim" / "meta.json").exists()  # written last: the folder does not look complete


def test_unknown_registry_entry_is_a_plain_message(tmp_path, capsys):
    registry = tmp_path / "registry.txt"
    registry.write_text(f"scan.tif sha256:{'0' * 64} https://example.invalid/scan.tif\n")
    assert main(["fetch", "nope.tif", "--registry", str(registry)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"indi4d fetch: error: {registry}: no entry 'nope.tif'; entries: scan.tif")


# --------------------------------------------------------------------------- the data cache


def test_fetch_uses_the_data_cache_of_INDI4D_DATA_DIR(tmp_path, monkeypatch, capsys):
    """A verified copy already in $INDI4D_DATA_DIR is returned without any download."""
    from indi4d.files import file_sha256

    scan = tmp_path / "scan.tif"
    write_volume(scan, np.arange(64, dtype=np.uint16).reshape(4, 4, 4), voxel_size_nm=100)
    sha = file_sha256(scan)
    cache = tmp_path / "cache"
    (cache / "downloads" / sha[:16]).mkdir(parents=True)
    shutil.copy(scan, cache / "downloads" / sha[:16] / "scan.tif")
    registry = tmp_path / "registry.txt"
    registry.write_text(f"scan.tif sha256:{sha} https://example.invalid/scan.tif\n")
    monkeypatch.setenv("INDI4D_DATA_DIR", str(cache))
    assert main(["fetch", "scan.tif", "--registry", str(registry)]) == 0
    assert capsys.readouterr().out.strip() == str(cache / "downloads" / sha[:16] / "scan.tif")
    assert main(["fetch", "--registry", str(registry)]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["cache"] == str(cache) and listing["entries"] == ["scan.tif"]


def test_simulate_cached_takes_the_data_set_from_INDI4D_DATA_DIR(tmp_path, monkeypatch, capsys):
    from indi4d.data import simulated_dataset_dir, write_hash_sidecar
    from indi4d.files import file_sha256

    monkeypatch.setenv("INDI4D_DATA_DIR", str(tmp_path / "cache"))
    cached = simulated_dataset_dir("tiny", 3)
    assert tmp_path / "cache" in cached.parents
    cached.mkdir(parents=True)
    write_volume(cached / "lq.tif", np.full((4, 4, 4), 7, np.uint16), voxel_size_nm=100)
    meta = {"preset": "tiny", "seed": 3, "files": {"lq.tif": file_sha256(cached / "lq.tif")}}
    (cached / "meta.json").write_text(json.dumps(meta))
    write_hash_sidecar(cached)
    # Taken from the cache: a real simulation would write many more files (and take seconds).
    assert main(["simulate", str(tmp_path / "sim"), "--preset", "tiny", "--seed", "3", "--cached"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cache"] == str(cached) and out["files"] == ["lq.tif"]
    assert (tmp_path / "sim" / "lq.tif").read_bytes() == (cached / "lq.tif").read_bytes()
    # A user's own file beside an earlier data set would be deleted by the copy: refused.
    (tmp_path / "sim" / "notes.txt").write_text("mine")
    assert main(["simulate", str(tmp_path / "sim"), "--preset", "tiny", "--seed", "3", "--cached"]) == 2
    assert "notes.txt" in capsys.readouterr().err and (tmp_path / "sim" / "notes.txt").exists()


# --------------------------------------------------------------------------- enhance and train


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_model_dir(tmp_path_factory.mktemp("run") / "model")


def test_enhance_steps_default_to_the_models_chosen_n(model, tmp_path, capsys):
    from indi4d import model_folder

    write_volume(tmp_path / "lq.h5:/entry/data", np.full((2, 16, 16), 20000, np.uint16), voxel_size_nm=100)
    assert main(["enhance", f"{tmp_path / 'lq.h5'}:/entry/data", str(tmp_path / "a.zarr"), "--model", str(model)]) == 0
    assert "10 InDI steps (the model folder holds no chosen N" in capsys.readouterr().err
    chosen = tmp_path / "chosen"
    shutil.copytree(model, chosen)
    model_folder.write_chosen_steps(chosen, 3, "test: a known N")
    assert main(["enhance", f"{tmp_path / 'lq.h5'}:/entry/data", str(tmp_path / "b.h5:/x"), "--model", str(chosen)]) == 0
    assert "3 InDI steps (chosen by the evaluation" in capsys.readouterr().err
    volume, meta = read_volume(f"{tmp_path / 'b.h5'}:/x")
    assert volume.shape == (4, 32, 32) and meta["voxel_size_nm"] == 50.0
    assert meta["indi4d_enhance"]["steps"] == 3
    assert main(["enhance", f"{tmp_path / 'lq.h5'}:/entry/data", str(tmp_path / "c.tif"), "--model", str(chosen),
                 "--steps", "1"]) == 0
    assert read_volume(tmp_path / "c.tif")[1]["indi4d_enhance"]["steps"] == 1
    with pytest.raises(SystemExit):
        main(["enhance", "a.tif", "b.tif", "--model", str(model), "--steps", "0"])
    assert "must be an integer >= 1, got 0" in capsys.readouterr().err


def test_train_restart(tmp_path, capsys):
    pairs = make_pairs(tmp_path / "pairs", n=8, size=32)
    model = tmp_path / "model"
    args = ["train", str(pairs), str(model), "--preset", "tiny", "--epochs", "1"]
    assert main(args) == 0
    capsys.readouterr()
    before = {p: p.read_bytes() for p in model.rglob("*") if p.is_file()}
    # Another run's parameters in the same folder: refused, the folder left as it was ...
    assert main(args[:-1] + ["2"]) == 2
    assert "--restart" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in model.rglob("*") if p.is_file()} == before
    # ... unless --restart, which discards the old run and trains the new one.
    assert main(args[:-1] + ["2", "--restart"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_done"] == 2 and summary["global_step"] == 8  # 4 steps per epoch, from scratch
    assert json.loads((model / "config.json").read_text())["training"]["epochs"] == 2


def test_train_help_reads_the_presets_without_tensorflow(tmp_path):
    """The presets and their times come from TensorFlow-free modules, so --help answers at once."""
    code = ("import sys; from indi4d.cli import main\n"
            "try:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split()[-2:] == ["False", "False"], out
    assert "quick:" in out.stdout
