"""The published networks of the workshop preset: hashed like any download, and better than bicubic."""

import shutil
import zipfile

import numpy as np
import pytest

from indi4d import metrics, pretrained
from indi4d.core import preprocess
from indi4d.data import HashMismatchError, load_registry
from indi4d.files import NotOursError, file_sha256, read_json
from indi4d.inference import load_enhancer
from indi4d.insitu import grey_to_attenuation, indi_volume, truth_attenuation, valid_disc
from indi4d.io import read_volume
from indi4d.model_folder import default_steps
from indi4d.presets import resolve
from indi4d.simulate import PRESETS as SIM_PRESETS
from indi4d.simulate import simulate_beamline


@pytest.fixture
def cache(tmp_path, monkeypatch):
    folder = tmp_path / "cache"
    monkeypatch.setenv("INDI4D_DATA_DIR", str(folder))
    return folder


def test_every_published_archive_has_its_registered_hash():
    entries = load_registry()
    names = pretrained.names_for("workshop")
    assert set(names) == {"indi", "indi_deconv", "cnn", "gan"}
    for name in names.values():
        shipped = pretrained.ARCHIVE_DIR / name
        assert entries[name]["url"] == shipped.as_uri()
        assert file_sha256(shipped) == entries[name]["sha256"], name
    # the default book reads the reference networks too, unless told to train them (make book TRAIN=1)
    assert pretrained.names_for("default") == names and pretrained.names_for("default", retrain=True) == {}
    assert pretrained.names_for("tiny") == {} and pretrained.names_for("workshop", retrain=True) == {}


def test_a_changed_archive_is_refused_and_nothing_is_unpacked(cache, tmp_path):
    name = pretrained.names_for("workshop")["indi"]
    sha = load_registry()[name]["sha256"]
    (tmp_path / "pretrained").mkdir()
    changed = tmp_path / "pretrained" / name
    shutil.copyfile(pretrained.ARCHIVE_DIR / name, changed)
    with zipfile.ZipFile(changed, "a") as archive:  # still a valid zip, one member more
        archive.writestr("extra.json", "{}")
    registry = tmp_path / "registry.txt"
    registry.write_text(f"{name} sha256:{sha} pretrained/{name}\n")  # a path relative to the registry
    with pytest.raises(HashMismatchError, match=sha):
        pretrained.fetch_model(name, registry=registry)
    assert not (cache / "models").exists()
    assert not list(cache.rglob("*.zip"))  # the changed copy was not kept either


def test_an_unpacked_folder_changed_in_the_cache_is_unpacked_again(cache):
    name = pretrained.names_for("workshop")["indi"]
    folder = pretrained.fetch_model(name)
    original = (folder / "model.keras").read_bytes()
    weights = bytearray(original)
    weights[len(weights) // 2] ^= 0xFF  # one flipped byte, same size
    (folder / "model.keras").write_bytes(bytes(weights))
    (folder / "planted.txt").write_text("not from the archive")
    assert pretrained.fetch_model(name) == folder
    assert (folder / "model.keras").read_bytes() == original and not (folder / "planted.txt").exists()
    (folder / "config.json").unlink()  # a member missing
    pretrained.fetch_model(name)
    assert (folder / "config.json").is_file()


def test_install_replaces_the_folder_and_records_the_archive(cache, tmp_path):
    name = pretrained.names_for("workshop")["indi"]
    model_dir = tmp_path / "run" / "model"
    model_dir.mkdir(parents=True)
    (model_dir / "notes.txt").write_text("a user's file")  # not a model folder's: never deleted
    with pytest.raises(NotOursError, match="notes.txt"):
        pretrained.install_model(name, model_dir)
    assert (model_dir / "notes.txt").read_text() == "a user's file"
    (model_dir / "notes.txt").unlink()
    (model_dir / "steps.json").write_text('{"steps": 3}')  # an earlier run's file of a model folder: replaced
    record = pretrained.install_model(name, model_dir)
    steps = model_dir / "steps.json"
    assert not steps.exists() or steps.read_text() != '{"steps": 3}'
    assert read_json(model_dir / pretrained.SOURCE_FILE) == {"name": name, "sha256": record["sha256"]}
    assert pretrained.installed_from(model_dir)["name"] == name
    assert record["trained"]["global_step"] == record["config"]["training"]["epochs"] * \
        record["config"]["training"]["steps_per_epoch"]
    # its normalisation is the one chapter 02 scales the workshop's pairs with
    assert pretrained.normalisation_for("workshop") == read_json(model_dir / "normalisation.json")
    # the default book installs the same network; the normalisation fitted to its own pairs is then the same
    assert pretrained.normalisation_for("default") == read_json(model_dir / "normalisation.json")
    assert pretrained.normalisation_for("default", retrain=True) is None and pretrained.normalisation_for("tiny") is None


def test_published_indi_beats_bicubic_on_an_unseen_sample(cache, tmp_path):
    """The workshop's network on slices of a sample it never saw, scored against the truth in 1/µm."""
    # the default beamline (the network's own), a thin sample of another seed: 8 LQ slices of 64 x 64
    assert resolve(SIM_PRESETS, "workshop")["lq"] == resolve(SIM_PRESETS, "default")["lq"]
    sample = tmp_path / "sample"
    meta = simulate_beamline(sample, preset="workshop", seed=7, progress=False, lq_shape=(8, 64, 64))
    lq, _ = read_volume(sample / "insitu_t0.tif")
    labels, _ = read_volume(sample / "insitu_t0_labels.tif")
    truth = truth_attenuation(labels, meta)
    model_dir = tmp_path / "model"
    pretrained.install_model(pretrained.names_for("workshop")["indi"], model_dir)
    enhancer = load_enhancer(model_dir, preset="tiny")
    indi = grey_to_attenuation(indi_volume(lq, enhancer, default_steps(model_dir)), meta)
    bicubic = grey_to_attenuation(preprocess.upscale(lq.astype(np.float32)), meta)
    assert indi.shape == bicubic.shape == truth.shape
    valid = valid_disc(truth.shape[1:], meta, 50.0, margin_px=4)
    inner = slice(2, -2)  # the z ends of a thin stack are extrapolated by the spline
    score = {name: metrics.psnr(vol[inner], truth[inner], mask=valid, data_range=float(np.ptp(truth[inner])))
             for name, vol in (("indi", indi), ("bicubic", bicubic))}
    # the default book measured +3.4 dB on its own in situ T0 (18.0 against 14.6 dB)
    assert score["indi"] > score["bicubic"] + 1.0, score


def test_workshop_falls_back_to_default_where_a_module_does_not_name_it():
    from indi4d.presets import preset_entry

    table = {"tiny": {"a": 1}, "default": {"a": 2}}
    assert resolve(table, "workshop") == {"a": 2}
    assert resolve(table, "workshop", a=5) == {"a": 5} and table["default"] == {"a": 2}  # a copy
    assert preset_entry({**table, "workshop": {"a": 3}}, "workshop") == {"a": 3}
    for name in ("paper", "Default"):  # no fallback for other names: still refused, with the known ones
        with pytest.raises(ValueError, match="unknown preset .* expected one of \\['default', 'tiny'\\]"):
            resolve(table, name)


def test_publishing_a_run_packs_registers_and_refuses_what_it_did_not_train(cache, tmp_path):
    """publish_run: a network trained in the run is packed and its registry line replaced; an installed one,
    or one of another seed, is refused before anything is written."""
    from indi4d import publish
    from indi4d.segmentation import train_segmenter

    run = tmp_path / "run"
    rng = np.random.default_rng(0)
    image = rng.uniform(-1, 1, (32, 32)).astype(np.float32)
    labels = (image > 0).astype(np.uint8) + 1
    train_segmenter(image, labels, run / "segmentation" / "networks" / "lq", preset="tiny", seed=0, epochs=1)
    archive_dir, registry = tmp_path / "pretrained", tmp_path / "registry.txt"
    archive_dir.mkdir()
    name = publish.SOURCES["segmentation_lq"][1]
    registry.write_text(f"# a comment\n{name} sha256:{'0' * 64} pretrained/{name}\nother.zip sha256:{'1' * 64} x\n")
    summary = read_json(run / "segmentation" / "networks" / "lq" / "summary.json")
    assert summary["machine"]["cpus"] >= 1 and "commit" in summary  # where the card's seconds were measured
    out = publish.publish_run(run, ["segmentation_lq"], archive_dir=archive_dir, registry=registry)
    sha = file_sha256(archive_dir / name)
    assert out["segmentation_lq"]["sha256"] == sha
    assert registry.read_text().splitlines() == ["# a comment", f"{name} sha256:{sha} pretrained/{name}",
                                                 f"other.zip sha256:{'1' * 64} x"]
    assert load_registry(registry)[name]["sha256"] == sha

    seed1 = tmp_path / "run_seed1"
    train_segmenter(image, labels, seed1 / "segmentation" / "networks" / "lq", preset="tiny", seed=1, epochs=1)
    before = registry.read_text()
    with pytest.raises(publish.PublishError, match="seed 1"):
        publish.publish_run(seed1, ["segmentation_lq"], archive_dir=archive_dir, registry=registry)
    installed = tmp_path / "run_installed"
    pretrained.install_model(name, installed / "segmentation" / "networks" / "lq", registry=registry)
    with pytest.raises(publish.PublishError, match="installed from"):
        publish.publish_run(installed, ["segmentation_lq"], archive_dir=archive_dir, registry=registry)
    assert registry.read_text() == before and file_sha256(archive_dir / name) == sha  # nothing changed
