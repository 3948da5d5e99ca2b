"""The domain check of ``indi4d enhance``: known answers with a real (tiny) trained network.

A synthetic beamline in miniature: bright and dark grains blurred on the LQ
grid with Gaussian photon-like noise. The network is trained (a few steps) on
pairs made the way enhance sees a scan (x2 cubic, LQ normalisation); scans of
the same kind with another seed are in domain, scans with six times the noise
(another dose) or of another structure are not.
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d import domain, model_folder
from indi4d.core import preprocess
from indi4d.cli import main
from indi4d.io import read_volume, write_volume

ROOT = Path(__file__).resolve().parents[1]
SIZE, N = 64, 16  # LQ slices of 64 x 64, 16 slices


def truth_slices(seed, n=N, size=SIZE, kind="discs"):
    """(n, 2 size, 2 size) phases on the HQ grid: discs on a background, or square grains of three levels."""
    rng = np.random.default_rng(seed)
    s = 2 * size
    yy, xx = np.mgrid[:s, :s]
    out = np.zeros((n, s, s), np.float32)
    for k in range(n):
        if kind == "discs":
            for _ in range(60):  # dense enough that every central crop holds many edges
                cy, cx, r = rng.uniform(0, s), rng.uniform(0, s), rng.uniform(3, 8)
                out[k][(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1.0
        else:  # another structure: a chequer of 24-pixel grains at three levels, bright overall
            levels = rng.choice([0.6, 1.0, 1.6], size=(s // 24 + 1, s // 24 + 1))
            out[k] = levels[yy // 24, xx // 24]
    return out


def grey_scan(truth, noise, seed):
    """LQ grey values (uint16, LQ grid): the truth blurred, 2x2 binned, with Gaussian noise of std ``noise``."""
    rng = np.random.default_rng(seed + 1000)
    blurred = ndi.gaussian_filter(truth, (0, 2.0, 2.0))
    lq = blurred.reshape(truth.shape[0], SIZE, 2, SIZE, 2).mean(axis=(2, 4))
    return np.clip(8000 + 12000 * lq + rng.normal(0, noise, lq.shape), 0, 65535).astype(np.uint16)


def make_domain_pairs(pairs_dir, seed=0):
    """Pairs exactly as enhance prepares an LQ scan (x2 cubic, percentile normalisation), HQ from the truth."""
    truth = truth_slices(seed)
    lq_grey = grey_scan(truth, 400.0, seed)
    hq_grey = 8000 + 12000 * ndi.gaussian_filter(truth, (0, 1.0, 1.0))
    norm = {"lq": preprocess.fit_normalisation(lq_grey, method="percentile"),
            "hq": preprocess.fit_normalisation(hq_grey, method="percentile")}
    lq = preprocess.normalise(preprocess.upscale(lq_grey.astype(np.float64), 2, axes=(1, 2)), norm["lq"])
    hq = preprocess.normalise(hq_grey, norm["hq"])
    split = np.array(["train"] * (N - 4) + ["val"] * 2 + ["test"] * 2)
    preprocess.save_pairs(pairs_dir, lq, hq, np.ones(lq.shape[1:], bool), np.arange(N), split,
                          phi={"status": "synthetic"}, normalisation=norm, provenance={"synthetic": True, "inputs": {
                              "lq": {"voxel_size_nm": 100.0, "dtype": "uint16"},
                              "hq": {"voxel_size_nm": 50.0, "dtype": "uint16"}}})
    return pairs_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny InDI network trained for a few steps through ``indi4d train``; its pairs and a folder of scans."""
    root = tmp_path_factory.mktemp("domain")
    pairs = make_domain_pairs(root / "pairs")
    assert main(["train", str(pairs), str(root / "model"), "--preset", "tiny", "--epochs", "1"]) == 0
    scans = {"in_domain": grey_scan(truth_slices(7), 400.0, 7),
             "other_dose": grey_scan(truth_slices(8), 2400.0, 8),  # 6x the noise: ~1/36 of the dose
             "other_structure": grey_scan(truth_slices(9, kind="grains"), 400.0, 9)}
    for name, volume in scans.items():
        write_volume(root / f"{name}.tif", volume, voxel_size_nm=100.0)
    return root


def enhance(root, name, out, *extra, model="model"):
    return main(["enhance", str(root / f"{name}.tif"), str(out), "--model", str(root / model), "--steps", "2",
                 "--no-progress", "--sanity-samples", "2", *extra])


def test_training_records_the_domain_of_its_lq_slices(trained):
    record = model_folder.read_domain(trained / "model")
    again = json.loads(json.dumps(domain.record_from_pairs(trained / "pairs")))
    assert {k: record[k] for k in domain.STAT_KEYS + ("slices",)} == {k: again[k] for k in domain.STAT_KEYS + ("slices",)}
    assert record["split"] == "train" and record["noise"] > 0


def test_score_is_zero_on_the_record_and_ln2_for_twice_the_noise():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.05, (8, 64, 64))
    record = domain.record_from_slices(noise)
    assert domain.domain_score(record, domain.slice_statistics(noise))["score"] == pytest.approx(0, abs=1e-12)
    doubled = domain.domain_score(record, domain.slice_statistics(2 * noise))
    assert doubled["d_noise"] == pytest.approx(np.log(2), abs=0.02)
    assert doubled["noise_ratio"] == pytest.approx(2, rel=0.02)


def test_an_in_domain_scan_passes_and_the_score_is_recorded(trained, tmp_path, capsys):
    out = tmp_path / "in.tif"
    assert enhance(trained, "in_domain", out) == 0
    err = capsys.readouterr().err
    assert "domain check: score" in err and "sanity check" in err
    meta = read_volume(out)[1]["indi4d_enhance"]
    assert meta["domain"]["verdict"] == "in domain" and meta["domain"]["score"] < domain.WARN
    assert meta["domain"]["record"].endswith("domain.json")
    assert meta["sanity"]["slabs"] and meta["sanity"]["contrast_ratio_min"] > 0


def test_another_dose_is_refused_naming_the_score_and_force_records_it(trained, tmp_path, capsys):
    out = tmp_path / "dose.h5"
    assert enhance(trained, "other_dose", f"{out}:/x") == 2
    err = capsys.readouterr().err
    assert "other_dose.tif" in err and "domain score" in err and f"refuse at {domain.REFUSE:.2f}" in err
    assert "--force" in err and not out.exists()
    named = float(err.split("domain score ")[1].split()[0])
    assert named >= domain.REFUSE
    assert enhance(trained, "other_dose", f"{out}:/x", "--force") == 0
    assert "above the refusal threshold, enhanced because of --force" in capsys.readouterr().err
    meta = read_volume(f"{out}:/x")[1]["indi4d_enhance"]
    assert meta["domain"]["verdict"] == "refuse" and meta["domain"]["forced"] is True
    assert round(meta["domain"]["score"], 2) == named and meta["domain"]["noise_ratio"] > 3


def test_another_structure_is_warned_about_or_refused(trained, tmp_path, capsys):
    rc = enhance(trained, "other_structure", tmp_path / "grains.zarr")
    err = capsys.readouterr().err
    assert "other_structure.tif" in err and "domain score" in err
    if rc == 0:  # warned: the warning names the score and the output records it
        assert "WARNING" in err
        assert read_volume(tmp_path / "grains.zarr")[1]["indi4d_enhance"]["domain"]["verdict"] == "warn"
    else:
        assert rc == 2 and "refuse at" in err


def test_a_corrupt_domain_record_is_refused_with_a_clear_error(trained, tmp_path, capsys):
    shutil.copytree(trained / "model", trained / "corrupt", dirs_exist_ok=True)
    path = trained / "corrupt" / "domain.json"
    record = json.loads(path.read_text())
    record["edge_quantiles"] = record["edge_quantiles"][:1]
    path.write_text(json.dumps(record))
    assert enhance(trained, "in_domain", tmp_path / "a.tif", model="corrupt") == 2
    err = capsys.readouterr().err
    assert "domain.json" in err and "edge_quantiles" in err and not (tmp_path / "a.tif").exists()
    path.write_text("{not json")
    assert enhance(trained, "in_domain", tmp_path / "a.tif", model="corrupt") == 2
    assert "domain.json" in capsys.readouterr().err


def test_a_model_without_record_uses_its_pairs_or_says_the_check_is_skipped(trained, tmp_path, capsys):
    shutil.copytree(trained / "model", trained / "published", dirs_exist_ok=True)
    (trained / "published" / "domain.json").unlink()
    assert enhance(trained, "other_dose", tmp_path / "a.tif", model="published") == 2  # record from its pairs
    assert "computed from the training pairs" in capsys.readouterr().err
    config = json.loads((trained / "published" / "config.json").read_text())
    config["pairs_dir"] = str(tmp_path / "gone")
    (trained / "published" / "config.json").write_text(json.dumps(config))
    assert enhance(trained, "other_dose", tmp_path / "b.tif", model="published") == 0
    assert "no domain record" in capsys.readouterr().err
    assert read_volume(tmp_path / "b.tif")[1]["indi4d_enhance"]["domain"]["verdict"] == "skipped"


def test_thresholds_are_those_the_benchmark_set():
    results = json.loads((ROOT / "benchmarks" / "results" / "domain.json").read_text())
    assert domain.WARN == pytest.approx(results["warn"], abs=0.005)
    assert domain.REFUSE == pytest.approx(results["refuse"], abs=0.005)


def test_sanity_measures_contrast_on_the_central_part_and_one_slice_per_slab():
    from indi4d.evaluation.sanity import contrast, slab_centres

    ramp = np.tile(np.linspace(-3, 3, 200), (200, 1))  # the central half spans -1.5..1.5
    assert contrast(ramp) == pytest.approx(0.9 * 3.0, rel=0.02)
    assert contrast(np.zeros((32, 32))) == 0.0
    assert slab_centres(8, 4) == [1, 3, 5, 7] and slab_centres(3, 4) == [0, 1, 2] and slab_centres(1) == [0]


def test_a_record_from_pairs_is_in_the_models_normalisation(trained):
    """Pairs normalised with a twice-narrower LQ range: in the model's units every quantile and the noise halve."""
    own = preprocess.load_pairs_info(trained / "pairs")["normalisation"]["lq"]
    width = own["hi"] - own["lo"]
    wider = dict(own, lo=own["lo"] - width / 2, hi=own["hi"] + width / 2)  # u -> u / 2, nothing clipped
    base = domain.record_from_pairs(trained / "pairs", lq_params=own)
    half = domain.record_from_pairs(trained / "pairs", lq_params=wider)
    assert not base["renormalised"] and half["renormalised"]
    np.testing.assert_allclose(half["grey_quantiles"], np.asarray(base["grey_quantiles"]) / 2, atol=1e-5)
    assert half["noise"] == pytest.approx(base["noise"] / 2, rel=1e-3)
