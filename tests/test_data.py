"""Data retrieval: real HTTP downloads from a local server, hash checks, caches."""

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest

from indi4d import __version__
from indi4d.data import (
    REGISTRY_FILE,
    DataError,
    HashMismatchError,
    data_cache_dir,
    fetch_volume,
    file_sha256,
    load_registry,
    materialise,
    registry_fetch,
    simulated_dataset,
    simulated_dataset_dir,
    verify_dataset,
)
from indi4d.files import MANIFEST
from indi4d.io import read_volume, write_volume


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache folder given through ``$INDI4D_DATA_DIR``."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("INDI4D_DATA_DIR", str(folder))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return folder


@pytest.fixture
def server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving ``tmp_path/served``; counts requests."""
    served = tmp_path / "served"
    served.mkdir()
    requests_seen = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requests_seen.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served, requests_seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _serve_volume(served, name="vol.tif", seed=0):
    volume = np.random.default_rng(seed).integers(0, 2**16, size=(5, 16, 16), dtype=np.uint16)
    path = write_volume(served / name, volume, voxel_size_nm=100.0)
    return volume, hashlib.sha256(path.read_bytes()).hexdigest()


def _killed_temp(final, suffix=".part"):
    """The recorded temp folder a writer of ``final`` left when it was killed (a real, dead process)."""
    code = ("import os, sys; from indi4d.files import make_temp\n"
            f"tmp = make_temp({str(final)!r}, directory=True, suffix={suffix!r})\n"
            "(tmp / 'half.tif').write_bytes(b'half'); print(tmp); os._exit(9)\n")
    out = subprocess.run([sys.executable, "-c", code], env=dict(os.environ), capture_output=True, text=True)
    return Path(out.stdout.strip())


def _dead_pid():
    """The pid of a process that has just exited (not reused within the test)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _valid_looking(cache, name):
    """Files under the cache named like the download (hidden temporaries excluded)."""
    return [p for p in cache.rglob(name) if not any(part.startswith(".") for part in p.relative_to(cache).parts)]


# --------------------------------------------------------------------------- basics


def test_file_sha256_known_answer(tmp_path):
    (tmp_path / "abc").write_bytes(b"abc")
    assert file_sha256(tmp_path / "abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_cache_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv("INDI4D_DATA_DIR", str(tmp_path / "env"))
    assert data_cache_dir() == (tmp_path / "env").resolve()
    assert data_cache_dir(tmp_path / "explicit") == (tmp_path / "explicit").resolve()
    monkeypatch.delenv("INDI4D_DATA_DIR")
    assert data_cache_dir().name == "indi4d"  # pooch.os_cache("indi4d")


# --------------------------------------------------------------------------- downloads


def test_download_then_cache_hit(cache, server):
    base, served, seen = server
    volume, sha = _serve_volume(served)
    path = fetch_volume(f"{base}/vol.tif", sha256=sha)
    assert path == cache.resolve() / "downloads" / sha[:16] / "vol.tif"
    assert seen == ["/vol.tif"]
    back, meta = read_volume(path)
    np.testing.assert_array_equal(back, volume)
    assert meta["voxel_size_nm"] == 100.0
    mtime = path.stat().st_mtime_ns
    # Second call: served from the cache, no request reaches the server.
    assert fetch_volume(f"{base}/vol.tif", sha256=f"sha256:{sha.upper()}") == path
    assert seen == ["/vol.tif"]
    assert path.stat().st_mtime_ns == mtime
    assert [p.name for p in path.parent.iterdir()] == ["vol.tif"]  # no temporaries left


def test_killed_download_leaves_nothing_that_stays(cache, server):
    """What a killed download left (a temp folder named after the file and its dead pid) goes on the next call."""
    base, served, seen = server
    _, sha = _serve_volume(served)
    folder = cache.resolve() / "downloads" / sha[:16]
    folder.mkdir(parents=True)
    stale = _killed_temp(folder / "vol.tif")
    assert stale.is_dir()
    # named like a dead download's temp, but recorded by no writer: left alone
    lookalike = folder / f".vol.tif.{_dead_pid()}.alive1.part"
    lookalike.mkdir()
    path = fetch_volume(f"{base}/vol.tif", sha256=sha)
    assert sorted(p.name for p in folder.iterdir()) == sorted(["vol.tif", lookalike.name])
    assert file_sha256(path) == sha


def test_wrong_hash_raises_and_keeps_nothing(cache, server):
    base, served, seen = server
    _, sha = _serve_volume(served)
    wrong = hashlib.sha256(b"something else").hexdigest()
    url = f"{base}/vol.tif"
    with pytest.raises(HashMismatchError) as err:
        fetch_volume(url, sha256=wrong)
    message = str(err.value)
    assert message.startswith(url)
    assert f"sha256 {sha}" in message and f"expected {wrong}" in message
    assert seen == ["/vol.tif"]
    assert _valid_looking(cache, "vol.tif") == []
    assert [p for p in cache.rglob("*") if p.is_file()] == []  # not even a temporary


def test_corrupted_cache_is_downloaded_again_or_refused(cache, server):
    base, served, seen = server
    volume, sha = _serve_volume(served)
    path = fetch_volume(f"{base}/vol.tif", sha256=sha)
    good = path.read_bytes()
    path.write_bytes(good[:-10] + b"0123456789")  # bit rot / someone edited it
    with pytest.raises(HashMismatchError, match="changed or corrupted after download") as err:
        fetch_volume(f"{base}/vol.tif", sha256=sha, on_mismatch="raise")
    assert str(err.value).startswith(str(path))
    assert len(seen) == 1
    with pytest.warns(UserWarning, match="downloading it again"):
        again = fetch_volume(f"{base}/vol.tif", sha256=sha)
    assert again == path and path.read_bytes() == good
    assert len(seen) == 2


def test_server_changed_file_under_a_cached_corruption(cache, server):
    # Cached copy corrupted AND the server now serves other bytes: the corrupt
    # copy must not survive under the final name.
    base, served, _ = server
    _, sha = _serve_volume(served)
    path = fetch_volume(f"{base}/vol.tif", sha256=sha)
    path.write_bytes(b"corrupt")
    _serve_volume(served, seed=1)
    with pytest.warns(UserWarning), pytest.raises(HashMismatchError):
        fetch_volume(f"{base}/vol.tif", sha256=sha)
    assert _valid_looking(cache, "vol.tif") == []


def test_http_error_names_the_url(cache, server):
    base, _, _ = server
    with pytest.raises(DataError, match="download failed") as err:
        fetch_volume(f"{base}/missing.tif", sha256="0" * 64)
    assert str(err.value).startswith(f"{base}/missing.tif")
    assert not cache.exists() or [p for p in cache.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("sha, pattern", [
    (None, "a known SHA-256 is required"),
    ("md5:" + "0" * 32, "only sha256"),
    ("xyz", "is not a SHA-256"),
])
def test_bad_hash_arguments(cache, sha, pattern):
    with pytest.raises(DataError, match=pattern):
        fetch_volume("http://127.0.0.1:9/vol.tif", sha256=sha)


def test_bad_urls_and_names(cache):
    with pytest.raises(DataError, match="not a URL or DOI"):
        fetch_volume("/local/file.tif", sha256="0" * 64)
    with pytest.raises(DataError, match="pass fname="):
        fetch_volume("http://127.0.0.1:9/", sha256="0" * 64)


def test_doi_file_name_and_fname(cache, server):
    from indi4d.data.downloads import _file_name_from_url

    assert _file_name_from_url("doi:10.5281/zenodo.1234567/scan_lq.tif") == "scan_lq.tif"
    assert _file_name_from_url("https://host/a/b%20c.h5?download=1") == "b c.h5"
    base, served, _ = server
    _, sha = _serve_volume(served)
    path = fetch_volume(f"{base}/vol.tif", sha256=sha, fname="lq_T0.tif")
    assert path.name == "lq_T0.tif" and file_sha256(path) == sha


# --------------------------------------------------------------------------- registry


def test_shipped_registry_is_well_formed():
    entries = load_registry()
    assert REGISTRY_FILE.name == "registry.txt" and REGISTRY_FILE.is_file()
    for name, entry in entries.items():
        assert len(entry["sha256"]) == 64, name
        assert entry["url"].startswith(("https://", "http://", "ftp://", "doi:", "file://")), name
        if entry["url"].startswith("file://"):  # shipped with the project: the file is there, with that hash
            shipped = Path(unquote(urlparse(entry["url"]).path))
            assert shipped.is_file() and file_sha256(shipped) == entry["sha256"], name


def test_registry_fetch(cache, server, tmp_path):
    base, served, seen = server
    volume, sha = _serve_volume(served, name="scan lq.tif")
    registry = tmp_path / "registry.txt"
    registry.write_text(
        "# a comment line\n"
        f"lq.tif sha256:{sha} {base}/scan%20lq.tif\n"
        f"other.tif sha256:{'1' * 64} {base}/other.tif\n"
    )
    assert load_registry(registry)["lq.tif"] == {"sha256": sha, "url": f"{base}/scan%20lq.tif"}
    path = registry_fetch("lq.tif", registry=registry)
    assert path.name == "lq.tif"
    np.testing.assert_array_equal(read_volume(path)[0], volume)
    registry_fetch("lq.tif", registry=registry)
    assert seen == ["/scan%20lq.tif"]
    with pytest.raises(KeyError, match="entries: lq.tif, other.tif"):
        registry_fetch("hq.tif", registry=registry)


@pytest.mark.parametrize("line, pattern", [
    ("a.tif sha256:{h}", "has no URL"),
    ("a.tif md5:" + "0" * 32 + " http://x/a.tif", "only sha256"),
    ("a.tif sha256:{h} http://x/a.tif extra", "malformed registry"),
])
def test_bad_registry(tmp_path, line, pattern):
    registry = tmp_path / "bad.txt"
    registry.write_text(line.format(h="0" * 64) + "\n")
    with pytest.raises(DataError, match=pattern) as err:
        load_registry(registry)
    assert str(registry) in str(err.value)
    with pytest.raises(DataError, match="registry file not found"):
        load_registry(tmp_path / "none.txt")


# --------------------------------------------------------------------------- simulated data sets


class ToyBeamline:
    """A small, deterministic stand-in for ``simulate_beamline`` that counts its runs.

    It writes what the real one promises: volumes and a meta.json whose
    ``files`` map holds their sha256.
    """

    def __init__(self, fail_after=None, lie=False):
        self.calls = 0
        self.fail_after = fail_after
        self.lie = lie

    def __call__(self, out_dir, preset="tiny", seed=0):
        self.calls += 1
        out_dir = Path(out_dir)
        rng = np.random.default_rng(seed)
        files = {}
        for k, name in enumerate(["lq.tif", "hq.tif"]):
            if self.fail_after is not None and k >= self.fail_after:
                raise RuntimeError("simulation interrupted")
            path = write_volume(out_dir / name, rng.integers(0, 2**16, (4, 8, 8), dtype=np.uint16),
                                voxel_size_nm=100.0 / (k + 1))
            files[name] = file_sha256(path)
        if self.lie:
            files["lq.tif"] = "0" * 64
        meta = {"version": __version__, "preset": preset, "seed": seed, "files": files}
        (out_dir / "meta.json").write_text(json.dumps(meta))
        return meta


def test_simulated_dataset_generated_once_then_reused(cache):
    toy = ToyBeamline()
    folder = simulated_dataset("tiny", seed=3, generator=toy)
    assert folder.parent == cache.resolve() / "simulated"
    assert folder.name.startswith(f"tiny-seed3-v{__version__}-")  # + the simulator's source hash
    assert folder == simulated_dataset_dir("tiny", 3)
    assert sorted(p.name for p in folder.iterdir()) == ["hq.tif", "lq.tif", "meta.json", "meta.json.sha256"]
    assert (folder / "meta.json.sha256").read_text() == f"{file_sha256(folder / 'meta.json')}  meta.json\n"
    assert verify_dataset(folder, expect={"preset": "tiny", "seed": 3}) == []
    mtimes = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    assert simulated_dataset("tiny", seed=3, generator=toy) == folder
    assert toy.calls == 1
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == mtimes
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporaries
    # Another seed is another data set.
    simulated_dataset("tiny", seed=4, generator=toy)
    assert toy.calls == 2


@pytest.mark.parametrize("tamper", ["edit-volume", "delete-volume", "edit-meta", "delete-sidecar"])
def test_tampered_dataset_is_regenerated_or_refused(cache, tamper):
    toy = ToyBeamline()
    folder = simulated_dataset("tiny", seed=0, generator=toy)
    original = {p.name: p.read_bytes() for p in folder.iterdir()}
    if tamper == "edit-volume":
        victim = folder / "lq.tif"
        victim.write_bytes(victim.read_bytes()[:-2] + b"\x00\x01")
    elif tamper == "delete-volume":
        victim = folder / "hq.tif"
        victim.unlink()
    elif tamper == "edit-meta":
        victim = folder / "meta.json"
        meta = json.loads(victim.read_text())
        meta["note"] = "edited by hand"
        victim.write_text(json.dumps(meta))
    else:
        victim = folder / "meta.json.sha256"
        victim.unlink()
    with pytest.raises(DataError, match="fails verification") as err:
        simulated_dataset("tiny", seed=0, generator=toy, on_mismatch="raise")
    assert str(err.value).startswith(str(folder))
    assert str(victim) in str(err.value)
    assert toy.calls == 1
    with pytest.warns(UserWarning, match="simulating it again"):
        assert simulated_dataset("tiny", seed=0, generator=toy) == folder
    assert toy.calls == 2
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == original  # same seed, same bytes
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]


def test_interrupted_generation_never_looks_complete(cache):
    with pytest.raises(RuntimeError, match="simulation interrupted"):
        simulated_dataset("tiny", seed=0, generator=ToyBeamline(fail_after=1))
    simulated = cache / "simulated"
    assert not simulated_dataset_dir("tiny", 0).exists()
    assert list(simulated.iterdir()) == []  # the temporary folder is gone too
    toy = ToyBeamline()
    simulated_dataset("tiny", seed=0, generator=toy)
    assert toy.calls == 1


def test_killed_simulation_is_cleaned_up_by_the_next_call(cache):
    """A simulation killed mid-way leaves a hidden temp folder; the next call removes it (a live writer's stays)."""
    final = simulated_dataset_dir("tiny", 0)
    final.parent.mkdir(parents=True)
    stale, stale_old = _killed_temp(final), _killed_temp(final, suffix=".old")
    assert stale.is_dir() and stale_old.is_dir()
    lookalike = final.parent / f".{final.name}.{_dead_pid()}.alive1.part"  # not recorded by any writer: kept
    lookalike.mkdir()
    assert simulated_dataset("tiny", seed=0, generator=ToyBeamline()) == final
    assert sorted(p.name for p in final.parent.iterdir()) == sorted([final.name, lookalike.name])


def test_simulator_hash_covers_every_file_of_the_simulate_package(tmp_path):
    """The cache key changes when any file of indi4d.simulate changes, not only one of them."""
    import indi4d.simulate
    from indi4d.data.datasets import _source_hash

    package = Path(indi4d.simulate.__file__).parent
    sources = sorted(p.name for p in package.glob("*.py"))
    assert len(sources) > 2 and "beamline.py" in sources
    assert simulated_dataset_dir("tiny", 0).name.endswith(f"-{_source_hash(package)}")
    copy = tmp_path / "simulate"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert _source_hash(copy) == _source_hash(package)
    seen = {_source_hash(copy)}
    for name in sources:  # an edit of any one file gives a new key
        original = (copy / name).read_bytes()
        (copy / name).write_bytes(original + b"\n")
        seen.add(_source_hash(copy))
        (copy / name).write_bytes(original)
    assert len(seen) == len(sources) + 1
    (copy / "extra.py").write_text("")
    assert _source_hash(copy) not in seen  # so does a new module
    (copy / "extra.py").unlink()
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "beamline.cpython-311.pyc").write_bytes(b"compiled")
    (copy / "notes.txt").write_text("not source")
    assert _source_hash(copy) == _source_hash(package)  # compiled files and non-sources do not count


def test_generator_whose_files_contradict_its_meta(cache):
    with pytest.raises(DataError, match="do not match its own meta.json") as err:
        simulated_dataset("tiny", seed=0, generator=ToyBeamline(lie=True))
    assert "lq.tif: sha256" in str(err.value)
    assert list((cache / "simulated").iterdir()) == []


def test_bad_preset_or_seed(cache):
    with pytest.raises(ValueError, match="plain name"):
        simulated_dataset("../escape", generator=ToyBeamline())
    with pytest.raises(ValueError, match="seed must be an int"):
        simulated_dataset("tiny", seed=1.5, generator=ToyBeamline())
    # a numpy integer is a seed like any other, written as a plain int
    toy = ToyBeamline()
    assert simulated_dataset("tiny", seed=np.int64(3), generator=toy) == simulated_dataset_dir("tiny", 3)
    assert simulated_dataset("tiny", seed=3, generator=toy).name.startswith("tiny-seed3-") and toy.calls == 1


# --------------------------------------------------------------------------- materialise


def test_materialise_copies_verifies_and_skips_repeats(cache, tmp_path):
    source = simulated_dataset("tiny", seed=0, generator=ToyBeamline())
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in source.iterdir()}
    run_data = tmp_path / "run" / "data"
    assert materialise(source, run_data) == run_data
    copied = {p.name: p.read_bytes() for p in run_data.iterdir() if p.name != MANIFEST}
    assert copied == {k: v[0] for k, v in before.items()}
    assert verify_dataset(run_data) == []
    mtimes = {p.name: p.stat().st_mtime_ns for p in run_data.iterdir()}
    materialise(source, run_data)  # already there: nothing copied
    assert {p.name: p.stat().st_mtime_ns for p in run_data.iterdir()} == mtimes
    # Another data set replaces it.
    other = simulated_dataset("tiny", seed=1, generator=ToyBeamline())
    materialise(other, run_data)
    assert json.loads((run_data / "meta.json").read_text())["seed"] == 1
    assert [p.name for p in run_data.parent.iterdir()] == ["data"]
    # The source is never touched.
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in source.iterdir()} == before


def test_materialise_refusals(cache, tmp_path):
    source = simulated_dataset("tiny", seed=0, generator=ToyBeamline())
    with pytest.raises(DataError, match="into itself"):
        materialise(source, source)
    with pytest.raises(DataError, match="into itself"):
        materialise(source, source / "data")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("my own files")
    with pytest.raises(DataError, match="not a data set"):
        materialise(source, foreign)
    assert (foreign / "notes.txt").read_text() == "my own files"
    (source / "lq.tif").write_bytes(b"tampered")
    with pytest.raises(DataError, match="fails verification, not copied") as err:
        materialise(source, tmp_path / "run" / "data")
    assert str(source / "lq.tif") in str(err.value)
    assert not (tmp_path / "run" / "data").exists()


# --------------------------------------------------------------------------- the real simulation


def test_real_simulation_cached_verified_and_materialised(cache, tmp_path):
    simulate = pytest.importorskip("indi4d.simulate")
    from indi4d.io import check_voxel_ratio

    runs = []

    def counted(out_dir, preset, seed):
        runs.append(seed)
        return simulate.simulate_beamline(out_dir, preset=preset, seed=seed, progress=False)

    folder = simulated_dataset("tiny", seed=0, generator=counted)
    assert runs == [0] and verify_dataset(folder, expect={"preset": "tiny", "seed": 0}) == []
    meta = json.loads((folder / "meta.json").read_text())
    assert {"lq.tif", "hq.tif", "truth_labels_hq.tif", "insitu_t0.tif"} <= set(meta["files"])
    assert check_voxel_ratio(folder / "lq.tif", folder / "hq.tif") == 2.0
    lq, lq_meta = read_volume(folder / "lq.tif", expect_ndim=3, allow_float=False)
    assert lq.dtype == np.uint16 and list(lq.shape) == meta["lq_shape"]
    assert lq_meta["voxel_size_nm"] == meta["voxel_size_nm"]["lq"] == 100.0
    original = {p.name: p.read_bytes() for p in folder.iterdir()}

    assert simulated_dataset("tiny", seed=0, generator=counted) == folder
    assert runs == [0]  # reused, not simulated again

    (folder / "hq.tif").write_bytes(original["hq.tif"][:-4] + b"\x00\x00\x00\x00")
    with pytest.warns(UserWarning, match="simulating it again"):
        simulated_dataset("tiny", seed=0, generator=counted)
    assert runs == [0, 0]
    # Same preset and seed: the regenerated files are the same bytes.
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == original

    run_data = materialise(folder, tmp_path / "run" / "data")
    assert verify_dataset(run_data) == []


def test_atomic_path_gives_usual_permissions(tmp_path):
    import os

    from indi4d.files import atomic_path

    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    mode = (tmp_path / "out.txt").stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
