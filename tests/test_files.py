"""indi4d.files: atomic writes leave nothing half-written, stale temps of dead writers are removed."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from indi4d.files import (
    MANIFEST,
    NotOursError,
    atomic_dir,
    foreign_entries,
    atomic_path,
    json_ready,
    read_json,
    remove_stale_temps,
    remove_stale_temps_in,
    write_json,
)


def _killed_writer(target, directory=False):
    """Run a writer of ``target`` in another process and kill it mid-write; return the temp it left.

    A real :func:`atomic_path` / :func:`atomic_dir` writer, so its temp is
    recorded exactly as a killed run's would be.
    """
    writer = "atomic_dir" if directory else "atomic_path"
    code = (f"import os; from indi4d.files import {writer}\n"
            f"with {writer}({str(target)!r}) as tmp:\n"
            "    (tmp / 'x').write_text('half') if tmp.is_dir() else tmp.write_bytes(b'half')\n"
            "    os._exit(9)\n")
    before = set(target.parent.iterdir()) if target.parent.exists() else set()
    subprocess.run([sys.executable, "-c", code], env=dict(os.environ), check=False)
    left = sorted(set(target.parent.iterdir()) - before)
    assert len(left) == 1, left
    return left[0]


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
    stale = _killed_writer(target)
    stale_dir = _killed_writer(tmp_path / "vol.zarr", directory=True)
    other = _killed_writer(tmp_path / "other.tif")  # another target's temp is not this write's to remove
    # named exactly like a dead writer's temp, but nobody recorded it: a user's file, never removed
    lookalike = tmp_path / f".vol.tif.{os.getpid() + 999999}.keep.part.tif"
    lookalike.write_bytes(b"user data")
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"done")
    assert target.read_bytes() == b"done"
    assert not stale.exists() and stale_dir.exists() and other.exists() and lookalike.read_bytes() == b"user data"
    assert remove_stale_temps(tmp_path / "vol.zarr") == [stale_dir]


def test_a_live_writers_temp_is_kept(tmp_path):
    target = tmp_path / "vol.tif"
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"writing")
        assert remove_stale_temps(target) == [] and tmp.exists()  # this process still runs


def test_a_temp_replaced_by_another_file_is_not_removed(tmp_path):
    stale = _killed_writer(tmp_path / "vol.tif")
    other = tmp_path / "elsewhere"
    other.write_bytes(b"someone else's file under the same name")
    os.replace(other, stale)  # another inode now holds the temp's name
    assert remove_stale_temps(tmp_path / "vol.tif") == []
    assert stale.exists()


def test_atomic_dir_swaps_in_complete_folder_only(tmp_path):
    target = tmp_path / "store"
    with atomic_dir(target) as tmp:
        (tmp / "old").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "new").write_text("2")
            raise ValueError("failed half way")
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, "old"]
    with atomic_dir(target) as tmp:
        (tmp / "new").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == [MANIFEST, "new"]
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
    dead = sorted([_killed_writer(tmp_path / "ckpt_000000100", directory=True),
                   _killed_writer(tmp_path / "ckpt_000000200", directory=True)])
    lookalike = tmp_path / f".ckpt_000000300.{os.getpid() + 999999}.c3.part"  # not recorded: kept
    lookalike.mkdir()
    complete = tmp_path / "ckpt_000000050"
    complete.mkdir()
    assert sorted(remove_stale_temps_in(tmp_path)) == dead
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([lookalike.name, complete.name])


def test_atomic_dir_never_replaces_a_folder_it_did_not_write(tmp_path):
    target = tmp_path / "store"
    target.mkdir()
    (target / "thesis.docx").write_bytes(b"years of work")
    with pytest.raises(NotOursError, match="thesis.docx"):
        with atomic_dir(target) as tmp:
            (tmp / "new").write_text("2")
    assert (target / "thesis.docx").read_bytes() == b"years of work"
    target.joinpath("thesis.docx").unlink()
    with atomic_dir(target) as tmp:  # empty: ours to fill
        (tmp / "new").write_text("2")
    (target / ".notes").write_text("a user's dot-file")  # added later: not in the manifest
    with pytest.raises(NotOursError, match=".notes"):
        with atomic_dir(target) as tmp:
            pass
    assert (target / ".notes").exists() and foreign_entries(target) == [".notes"]
