"""The ``indi4d`` command line: contracts other work relies on."""

import json

import numpy as np
import pytest
from skimage.filters import gaussian

from indi4d import __version__
from indi4d.cli import build_parser, main
from indi4d.io import write_volume


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
