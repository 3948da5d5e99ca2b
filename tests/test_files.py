"""indi4d.files: atomic writes leave nothing half-written, stale temps of dead writers are removed."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from indi4d.files import (
    atomic_dir,
    atomic_path,
    json_ready,
    read_json,
    remove_stale_temps,
    remove_stale_temps_in,
    write_json,
)


def _dead_pid():
    """The pid of a process that has just exited (not reused within the test)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_failed_write_leaves_target_untouched_and_no_temp(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_stale_temp_of_dead_writer_is_removed_on_next_write(tmp_path):
    target = tmp_path / "vol.tif"
    stale = tmp_path / f".vol.tif.{_dead_pid()}.abc123.part.tif"
    stale.write_bytes(b"x" * 100)
    stale_dir = tmp_path / f".vol.tif.{_dead_pid()}.zz9.part"
    stale_dir.mkdir()
    live = tmp_path / f".vol.tif.{os.getppid()}.keep1.part.tif"  # a live writer (our parent) keeps its temp
    live.write_bytes(b"y")
    other = tmp_path / f".other.tif.{_dead_pid()}.abc.part.tif"  # another target's temp is not ours to remove
    other.write_bytes(b"z")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert not stale.exists() and not stale_dir.exists()
    assert live.exists() and other.exists()


def test_remove_stale_temps_reports_what_it_removed(tmp_path):
    stale = tmp_path / f".a.zarr.{_dead_pid()}.q1.part"
    stale.mkdir()
    assert remove_stale_temps(tmp_path / "a.zarr") == [stale]
    assert remove_stale_temps(tmp_path / "missing" / "a.zarr") == []


def test_atomic_dir_swaps_in_complete_folder_only(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "old").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "new").write_text("2")
            raise ValueError("failed half way")
    assert sorted(p.name for p in target.iterdir()) == ["old"]
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["new"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]


def test_json_round_trip_with_numpy_types(tmp_path):
    obj = {"n": np.int64(20), "x": np.float32(0.5), "a": np.arange(3), "nan": float("nan"), "t": (1, 2)}
    path = write_json(tmp_path / "o.json", obj)
    assert json.loads(path.read_text()) == {"n": 20, "x": 0.5, "a": [0, 1, 2], "nan": None, "t": [1, 2]}
    assert json_ready(np.int64(20)) == 20 and type(json_ready(np.int64(20))) is int


def test_read_json_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="c.json: missing \\(the model's configuration\\)"):
        read_json(tmp_path / "c.json", "the model's configuration")
    (tmp_path / "c.json").write_text("{not json")
    with pytest.raises(ValueError, match="c.json: the model's configuration is not valid JSON"):
        read_json(tmp_path / "c.json", "the model's configuration")


def test_remove_stale_temps_in_takes_every_dead_writers_temp_of_a_folder(tmp_path):
    dead = [tmp_path / f".ckpt_000000100.{_dead_pid()}.a1.part", tmp_path / f".ckpt_000000200.{_dead_pid()}.b2.old"]
    for d in dead:
        d.mkdir()
    live = tmp_path / f".ckpt_000000300.{os.getppid()}.c3.part"
    live.mkdir()
    complete = tmp_path / "ckpt_000000050"
    complete.mkdir()
    assert remove_stale_temps_in(tmp_path) == dead
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live.name, complete.name])
