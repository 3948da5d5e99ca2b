"""``indi4d segment`` and ``indi4d describe``: known answers, and bad inputs refused before any work.

Known answers: a noisy two-phase volume segmented from scribbles of one slice
(random forest, and the U-Net trained on that slice) against its true labels;
digital spheres of known radii described through the command line. Every
refusal names the file, exits 2, writes nothing and leaves the inputs as
they were.
"""

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d.cli import main
from indi4d.files import file_sha256
from indi4d.io import read_volume, write_volume
from indi4d.phases import PARTICLE, PORE
from indi4d.segmentation import dice, scribbles_from_labels, write_scribbles

VOXEL_NM = 50.0


def two_phase_volume(shape=(6, 48, 48), seed=0, noise=150.0):
    """uint16 grey values of balls (particle) in pore, and their true labels."""
    rng = np.random.default_rng(seed)
    z, y, x = np.indices(shape)
    truth = np.full(shape, PORE, np.uint8)
    for _ in range(8):
        cz, cy, cx = rng.uniform(0, shape[0]), rng.uniform(6, shape[1] - 6), rng.uniform(6, shape[2] - 6)
        r = rng.uniform(5, 9)
        truth[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] = PARTICLE
    grey = np.where(truth == PARTICLE, 30000.0, 20000.0) + noise * 10 * rng.standard_normal(shape)
    grey = ndi.gaussian_filter(grey, (0, 0.8, 0.8))
    return np.clip(grey, 0, 65535).astype(np.uint16), truth


@pytest.fixture()
def scan(tmp_path):
    grey, truth = two_phase_volume()
    vol = tmp_path / "scan.tif"
    write_volume(vol, grey, voxel_size_nm=VOXEL_NM)
    z = 3
    scribbles = scribbles_from_labels(truth[z], strokes_per_phase=4, length_px=10, erosion_px=2, seed=0,
                                      source={"z": z})
    path = write_scribbles(tmp_path / "scribbles.json", scribbles)
    return {"volume": vol, "truth": truth, "scribbles": path, "sha": file_sha256(vol),
            "scribbles_sha": file_sha256(path)}


def inputs_untouched(scan):
    return file_sha256(scan["volume"]) == scan["sha"] and file_sha256(scan["scribbles"]) == scan["scribbles_sha"]


def test_segment_with_the_random_forest_recovers_the_phases(scan, tmp_path, capsys):
    out = tmp_path / "labels.tif"
    assert main(["segment", str(scan["volume"]), str(out), "--scribbles", str(scan["scribbles"])]) == 0
    labels, meta = read_volume(out)
    assert labels.dtype == np.uint8 and labels.shape == scan["truth"].shape
    assert meta["voxel_size_nm"] == pytest.approx(VOXEL_NM)  # copied from the input
    held_out = np.arange(labels.shape[0]) != 3  # every slice but the scribbled one
    assert dice(labels[held_out] == PARTICLE, scan["truth"][held_out] == PARTICLE) > 0.9
    assert dice(labels[held_out] == PORE, scan["truth"][held_out] == PORE) > 0.9
    report = json.loads(capsys.readouterr().out)
    assert report["slice"] == 3 and report["method"].startswith("random forest")
    assert inputs_untouched(scan)


def test_segment_trains_the_unet_on_the_slice_then_reuses_it(scan, tmp_path):
    out, model = tmp_path / "unet.tif", tmp_path / "model"
    assert main(["segment", str(scan["volume"]), str(out), "--scribbles", str(scan["scribbles"]),
                 "--model", str(model), "--preset", "tiny"]) == 0
    labels = read_volume(out)[0]
    assert (model / "model.keras").is_file() and (model / "history.json").is_file()
    assert dice(labels == PARTICLE, scan["truth"] == PARTICLE) > 0.8
    again = tmp_path / "again.tif"  # a trained folder segments without scribbles (the next time step)
    assert main(["segment", str(scan["volume"]), str(again), "--model", str(model)]) == 0
    assert np.array_equal(read_volume(again)[0], labels)
    assert inputs_untouched(scan)


def spheres(shape, specs):
    z, y, x = np.indices(shape)
    v = np.full(shape, PORE, np.uint8)
    for (cz, cy, cx), r in specs:
        v[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] = PARTICLE
    return v


def test_describe_spheres_through_the_command_line(tmp_path):
    specs = [((12, 12, 12), 6), ((12, 12, 34), 8), ((34, 24, 20), 10)]
    labels = tmp_path / "labels.tif"
    write_volume(labels, spheres((48, 48, 52), specs), voxel_size_nm=VOXEL_NM)
    sha = file_sha256(labels)
    out = tmp_path / "descriptors.json"
    assert main(["describe", str(labels), "--out", str(out)]) == 0
    d = json.loads(out.read_text())
    um = VOXEL_NM / 1000  # the voxel size came from the file
    assert d["particle_count"] == 3
    assert np.allclose(sorted(d["equivalent_diameter_um"]), sorted(2 * r * um for _, r in specs), rtol=0.03)
    solid = sum(4 / 3 * math.pi * r**3 for _, r in specs) / (48 * 48 * 52)
    assert d["particle_volume_fraction"] == pytest.approx(solid, rel=0.03)
    area = sum(4 * math.pi * (r * um) ** 2 for _, r in specs) / (48 * 48 * 52 * um**3)
    assert d["specific_surface_area_per_um"] == pytest.approx(area, rel=0.05)
    assert d["voxel_size_nm"] == [VOXEL_NM] * 3 and d["input"] == str(labels)
    assert file_sha256(labels) == sha


def refused(capsys, argv, *names):
    """Run ``argv``; it must exit 2 naming every one of ``names`` on stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"indi4d {argv[0]}: error: ")
    for name in names:
        assert str(name) in err, err
    return err


def test_segment_refuses_bad_jobs_before_any_work(scan, tmp_path, capsys):
    vol, scr = str(scan["volume"]), str(scan["scribbles"])
    refused(capsys, ["segment", vol, vol, "--scribbles", scr], vol)  # the output is the input
    refused(capsys, ["segment", vol, str(tmp_path / "out.txt"), "--scribbles", scr], "out.txt")  # unknown format
    refused(capsys, ["segment", vol, str(tmp_path / "out.tif")], "--scribbles")  # nothing to learn from
    small = tmp_path / "small.json"
    write_scribbles(small, scribbles_from_labels(scan["truth"][3, :20, :20], 2, 5, 1, seed=0))
    refused(capsys, ["segment", vol, str(tmp_path / "out.tif"), "--scribbles", str(small)], small, "(20, 20)")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something else"}')
    refused(capsys, ["segment", vol, str(tmp_path / "out.tif"), "--scribbles", str(broken)], broken)
    refused(capsys, ["segment", vol, str(tmp_path / "out.tif"), "--scribbles", scr, "--slice", "99"], vol, "99")
    refused(capsys, ["segment", str(tmp_path / "missing.tif"), str(tmp_path / "out.tif"), "--scribbles", scr],
            "missing.tif")
    nometa = tmp_path / "nometa.tif"
    import tifffile

    tifffile.imwrite(nometa, read_volume(scan["volume"])[0])
    refused(capsys, ["segment", str(nometa), str(tmp_path / "out.tif"), "--scribbles", scr], nometa, "voxel size")
    assert not (tmp_path / "out.tif").exists() and not list(tmp_path.glob("*.tmp*"))
    assert inputs_untouched(scan)


def test_describe_refuses_bad_jobs_before_any_work(tmp_path, capsys):
    labels = tmp_path / "labels.tif"
    write_volume(labels, spheres((20, 20, 20), [((10, 10, 10), 5)]), voxel_size_nm=VOXEL_NM)
    sha = file_sha256(labels)
    refused(capsys, ["describe", str(labels), "--out", str(labels)], labels)  # output = input
    refused(capsys, ["describe", str(labels), "--out", str(tmp_path / "d.txt")], "d.txt", ".json")
    grey = tmp_path / "grey.tif"
    write_volume(grey, np.zeros((8, 8, 8), np.float32), voxel_size_nm=VOXEL_NM)
    refused(capsys, ["describe", str(grey), "--out", str(tmp_path / "d.json")], grey, "float32")
    seven = tmp_path / "seven.tif"
    write_volume(seven, np.full((8, 8, 8), 7, np.uint8), voxel_size_nm=VOXEL_NM)
    refused(capsys, ["describe", str(seven), "--out", str(tmp_path / "d.json")], seven, "phases")
    flat = tmp_path / "flat.tif"
    write_volume(flat, np.zeros((8, 8), np.uint8), voxel_size_nm=VOXEL_NM)
    refused(capsys, ["describe", str(flat), "--out", str(tmp_path / "d.json")], flat, "3D")
    refused(capsys, ["describe", str(labels), "--out", str(tmp_path / "d.json"), "--voxel-size-nm", "80"],
            labels, "80")
    assert not (tmp_path / "d.json").exists() and file_sha256(labels) == sha
