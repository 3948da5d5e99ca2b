"""A user's own scans through the command line, end to end: two scans in, an enhanced in situ series out.

The tiny simulated beamline stands in for a beamline user's files, written the
way a user would have them (the LQ scan as HDF5, the HQ scan and its two
half-reconstructions as TIFF, the in situ scans as TIFF, no ``meta.json``); only
the commands that ``book/using.md`` documents are used.
"""

import hashlib
import json

import numpy as np
import pytest

from indi4d.cli import main
from indi4d.io import read_volume, write_volume
from indi4d.simulate import simulate_beamline

pytestmark = pytest.mark.slow


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.filterwarnings("ignore::UserWarning")  # spam may not converge on 32³ (allowed with the flag)
def test_two_scans_to_an_enhanced_in_situ_series(tmp_path, capsys):
    sim = tmp_path / "beamline"
    meta = simulate_beamline(sim, preset="tiny", seed=0, progress=False)
    user = tmp_path / "my_scans"
    user.mkdir()
    lq, lq_meta = read_volume(sim / "lq.tif")
    write_volume(f"{user / 'lq.h5'}:/entry/data", lq, voxel_size_nm=lq_meta["voxel_size_nm"])
    for name in ("hq.tif", "hq_half_a.tif", "hq_half_b.tif", "insitu_t0.tif", "insitu_t1.tif", "insitu_t2.tif"):
        (user / name).write_bytes((sim / name).read_bytes())
    inputs = {p: _sha(p) for p in user.iterdir()}
    start = [str(v) for v in meta["hq_region_in_lq"]["start_vox"]]  # where the user placed the HQ field of view

    assert main(["register", f"{user / 'lq.h5'}:/entry/data", str(user / "hq.tif"), str(tmp_path / "pairs"),
                 "--hq-start", *start, "--hq-halves", str(user / "hq_half_a.tif"), str(user / "hq_half_b.tif"),
                 "--preset", "tiny", "--allow-unconverged"]) == 0
    assert main(["train", str(tmp_path / "pairs"), str(tmp_path / "model"), "--preset", "tiny"]) == 0
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["training"]["target"] == "halves" and config["lq_voxel_size_nm"] == 100.0
    for t in range(3):
        out = tmp_path / "series" / f"t{t}_indi.zarr"
        assert main(["enhance", str(user / f"insitu_t{t}.tif"), str(out), "--model", str(tmp_path / "model"),
                     "--steps", "2", "--no-progress"]) == 0
        enhanced, info = read_volume(out)
        scan, _ = read_volume(user / f"insitu_t{t}.tif")
        assert enhanced.shape == tuple(2 * s for s in scan.shape) and enhanced.dtype == np.uint16
        assert info["voxel_size_nm"] == 50.0 and info["indi4d_enhance"]["steps"] == 2
        assert 0 < enhanced.std()
    assert {p: _sha(p) for p in user.iterdir()} == inputs  # every input byte-identical
    capsys.readouterr()
