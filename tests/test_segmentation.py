"""Segmentation (chapter 07): descriptors, scores, scribbles + random forest, the attention U-Net and its training.

Known answers: digital spheres of known radii (count, diameters, volumes,
porosity, surface area), a crack slab of known volume, discs offset by a known
amount (analytic Dice), scribbles on a noisy two-phase image, and one-slice
training that must beat the untrained network.
"""

import json
import math

import numpy as np
import pytest
from scipy import ndimage as ndi

from indi4d.phases import BINDER, DENSE, PARTICLE, PHASE_NAMES, PORE
from indi4d.segmentation import (ScribbleError, attention_gate, boundary_f_score, build_attention_unet,
                                 crack_mask, describe, descriptor_errors, dice, difference_map, fit_forest,
                                 forest_labels, iou, make_scribbles, phase_scores, predict_forest, read_scribbles,
                                 residual_block, scribble_agreement, scribble_mask, scribbles_from_labels, segment,
                                 separate_particles, swelling, train_segmenter, write_scribbles)

VOXEL_NM = 50.0


def spheres(shape, specs, background=PORE, phase=PARTICLE):
    """uint8 label volume: ``background`` with balls ``(centre_vox, radius_vox)`` of ``phase``."""
    v = np.full(shape, background, np.uint8)
    z, y, x = np.indices(shape)
    for (cz, cy, cx), r in specs:
        v[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= r * r] = phase
    return v


SPECS = [((12, 12, 12), 6), ((12, 12, 34), 8), ((34, 24, 20), 10), ((30, 9, 41), 5)]


@pytest.fixture(scope="module")
def four_spheres():
    v = spheres((48, 48, 52), SPECS)
    return v, describe(v, VOXEL_NM)


# --------------------------------------------------------------------------- descriptors


def test_spheres_count_diameters_volumes_and_porosity(four_spheres):
    v, d = four_spheres
    assert d["particle_count"] == len(SPECS)
    um = VOXEL_NM / 1000
    expected_d = sorted(2 * r * um for _, r in SPECS)
    assert np.allclose(sorted(d["equivalent_diameter_um"]), expected_d, rtol=0.03)
    expected_v = sorted(4 / 3 * math.pi * (r * um) ** 3 for _, r in SPECS)
    assert np.allclose(sorted(d["particle_volume_um3"]), expected_v, rtol=0.08)
    solid = sum(4 / 3 * math.pi * r**3 for _, r in SPECS) / v.size
    assert d["particle_volume_fraction"] == pytest.approx(solid, rel=0.03)
    assert d["porosity"] == pytest.approx(1 - solid, rel=0.01)
    assert d["porosity"] + d["particle_volume_fraction"] == pytest.approx(1.0)
    assert d["dense_fraction"] == 0 and d["crack_fraction"] == 0


def test_spheres_surface_area_within_five_percent(four_spheres):
    v, d = four_spheres
    um = VOXEL_NM / 1000
    area = sum(4 * math.pi * (r * um) ** 2 for _, r in SPECS)  # µm²
    volume = v.size * um**3
    assert d["specific_surface_area_per_um"] == pytest.approx(area / volume, rel=0.05)


def test_anisotropic_voxels_scale_diameters():
    v = spheres((30, 30, 30), [((15, 15, 15), 8)])
    iso = describe(v, 50.0)["equivalent_diameter_um"][0]
    assert describe(v, (100.0, 50.0, 50.0))["equivalent_diameter_um"][0] == pytest.approx(iso * 2 ** (1 / 3))


def test_touching_spheres_are_separated_and_a_neck_is_no_crack():
    v = spheres((40, 40, 60), [((20, 20, 19), 11), ((20, 20, 40), 11)])
    assert ndi.label(v == PARTICLE)[1] == 1  # one connected solid
    d = describe(v, VOXEL_NM)
    assert d["particle_count"] == 2
    assert np.allclose(d["equivalent_diameter_um"], 22 * VOXEL_NM / 1000, rtol=0.05)
    assert d["crack_fraction"] == 0


def test_an_elongated_particle_stays_one_particle():
    z, y, x = np.indices((40, 60, 40))
    v = np.zeros(z.shape, np.uint8)
    v[((z - 20) / 5) ** 2 + ((y - 30) / 15) ** 2 + ((x - 20) / 5) ** 2 <= 1] = PARTICLE  # aspect 3
    assert separate_particles(v).max() == 1
    assert separate_particles(v, merge_depth_vox=0).max() > 1  # what the h-dome merge prevents


def test_region_restricts_fractions_surface_and_particles():
    v = spheres((40, 40, 40), [((12, 12, 12), 6), ((28, 28, 28), 6)])
    region = np.zeros(v.shape, bool)
    region[:20, :20, :20] = True  # holds the first sphere only
    whole, part = describe(v, VOXEL_NM), describe(v, VOXEL_NM, region=region)
    assert part["particle_count"] == 1 and whole["particle_count"] == 2
    assert part["particle_volume_fraction"] == pytest.approx(np.mean(v[region] == PARTICLE))
    assert part["specific_surface_area_per_um"] == pytest.approx(whole["specific_surface_area_per_um"] * 4, rel=0.02)
    with pytest.raises(ValueError, match="shape"):
        describe(v, VOXEL_NM, region=region[:10])


def test_dense_phase_counts_as_solid_and_has_its_fraction():
    v = spheres((30, 30, 30), [((15, 15, 15), 9)])
    shell = spheres((30, 30, 30), [((15, 15, 15), 9)], phase=1) & ~spheres((30, 30, 30), [((15, 15, 15), 7)],
                                                                          phase=1)
    v[(shell == 1) & (np.indices(v.shape)[2] > 15)] = DENSE
    d = describe(v, VOXEL_NM)
    assert d["particle_count"] == 1
    assert d["dense_fraction"] == pytest.approx(float(np.mean(v == DENSE)))
    assert d["solid_fraction"] == pytest.approx(float(np.mean(np.isin(v, (PARTICLE, DENSE)))))


def test_crack_slab_of_known_volume():
    n, c, r = 40, 20, 14
    z, y, x = np.indices((n, n, n))
    v = np.full((n, n, n), BINDER, np.uint8)
    ball = (z - c) ** 2 + (y - c) ** 2 + (x - c) ** 2 <= r * r
    v[ball] = PARTICLE
    slab = ball & (np.abs(z - c + 0.5) <= 1) & (x >= c + r - int(0.6 * r))  # 2 voxels wide, 0.6 r deep
    v[slab] = PORE
    particles = separate_particles(v)
    assert particles.max() == 1  # the crack does not split the particle
    cracks, envelope = crack_mask(v, particles)
    assert not (cracks & ~slab).any()  # nothing but the slab is called a crack
    assert cracks.sum() >= 0.85 * slab.sum()  # only the mouth at the curved surface may be missed
    d = describe(v, VOXEL_NM)
    assert d["crack_fraction"] == pytest.approx(slab.sum() / ball.sum(), rel=0.15)
    assert d["crack_volume_um3"] == pytest.approx(cracks.sum() * (VOXEL_NM / 1000) ** 3)


def test_swelling_of_spheres_grown_by_ten_percent():
    t0 = describe(spheres((50, 50, 50), [((15, 15, 15), 8), ((34, 34, 34), 10)]), VOXEL_NM)
    t2 = describe(spheres((50, 50, 50), [((15, 15, 15), 8.8), ((34, 34, 34), 11)]), VOXEL_NM)
    s = swelling(t0, t2)
    assert s["diameter_change"] == pytest.approx(0.10, abs=0.015)
    assert s["solid_volume_change"] == pytest.approx(1.1**3 - 1, abs=0.04)
    errors = descriptor_errors(t2, t0)
    assert errors["particle_count"] == 0 and errors["mean_diameter_um"] == pytest.approx(s["diameter_change"])


def test_describe_is_json_ready_and_refuses_bad_labels(four_spheres):
    json.dumps(four_spheres[1])
    with pytest.raises(ValueError, match="3D"):
        describe(np.zeros((4, 4), np.uint8), VOXEL_NM)
    with pytest.raises(ValueError, match="phases"):
        describe(np.full((4, 4, 4), 7, np.uint8), VOXEL_NM)
    with pytest.raises(ValueError, match="positive"):
        describe(np.zeros((4, 4, 4), np.uint8), 0.0)


def test_empty_solid_gives_zero_particles():
    d = describe(np.zeros((8, 8, 8), np.uint8), VOXEL_NM)
    assert d["particle_count"] == 0 and d["specific_surface_area_per_um"] == 0 and d["porosity"] == 1


# --------------------------------------------------------------------------- scores


def disc(shape, cy, cx, r):
    yy, xx = np.indices(shape)
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def test_dice_and_iou_of_discs_offset_by_a_known_amount():
    r, s = 20.0, 10.0
    a, b = disc((100, 120), 50, 50, r), disc((100, 120), 50, 50 + s, r)
    lens = 2 * r * r * math.acos(s / (2 * r)) - (s / 2) * math.sqrt(4 * r * r - s * s)  # overlap of two discs
    expected_dice = lens / (math.pi * r * r)
    assert dice(a, b) == pytest.approx(expected_dice, rel=0.02)
    assert iou(a, b) == pytest.approx(expected_dice / (2 - expected_dice), rel=0.02)  # J = D / (2 - D)
    assert dice(a, a) == 1 and iou(a, a) == 1
    assert math.isnan(dice(np.zeros(4, bool), np.zeros(4, bool)))


def test_boundary_f_score_tolerates_shifts_within_the_tolerance():
    a, b = disc((80, 80), 40, 40, 15), disc((80, 80), 40, 42, 15)  # boundaries 0..2 px apart
    assert boundary_f_score(a, b, tolerance_px=2)["f_score"] == pytest.approx(1.0)
    shifted = boundary_f_score(a, disc((80, 80), 40, 48, 15), tolerance_px=2)
    assert 0 < shifted["f_score"] < 0.6
    assert shifted["precision"] == pytest.approx(shifted["recall"], abs=0.05)  # same discs, symmetric


def test_phase_scores_difference_map_and_accuracy():
    truth = np.zeros((40, 40), np.uint8)
    truth[:, 20:] = PARTICLE
    pred = truth.copy()
    pred[:, 18:20] = PARTICLE  # two columns of pore called particle
    s = phase_scores(pred, truth)
    assert s["particle"]["dice"] == pytest.approx(2 * 800 / (880 + 800))
    assert s["pore"]["dice"] == pytest.approx(2 * 720 / (720 + 800))
    assert math.isnan(s["binder"]["dice"]) and math.isnan(s["dense"]["dice"])
    assert s["accuracy"] == pytest.approx(1 - 80 / 1600)
    diff = difference_map(pred, truth, PARTICLE)
    assert (diff == 1).sum() == 80 and (diff == -1).sum() == 0
    assert difference_map(pred, truth).sum() == 80
    with pytest.raises(ValueError, match="shape"):
        phase_scores(pred, truth[:10])


# --------------------------------------------------------------------------- scribbles and the random forest


def two_phase_image(seed=0, size=64, noise=0.25):
    rng = np.random.default_rng(seed)
    truth = np.zeros((size, size), np.uint8)
    for _ in range(6):
        cy, cx, r = rng.uniform(8, size - 8, 2).tolist() + [rng.uniform(5, 10)]
        truth[disc(truth.shape, cy, cx, r)] = PARTICLE
    image = np.where(truth == PARTICLE, 0.5, -0.5) + noise * rng.standard_normal(truth.shape)
    return ndi.gaussian_filter(image, 0.7).astype(np.float32), truth


def test_scribbles_round_trip_and_rasterise(tmp_path):
    s = make_scribbles((20, 30), {"pore": [[[1, 1], [1, 10]]], "particle": [[[10, 5], [15, 5], [15, 9]]]},
                       brush_radius_px=0, source={"z": 3})
    path = write_scribbles(tmp_path / "scribbles.json", s)
    assert read_scribbles(path) == s
    mask = scribble_mask(s)
    assert (mask == PORE + 1).sum() == 10 and (mask == PARTICLE + 1).sum() == 6 + 4
    assert mask[0, 0] == 0


@pytest.mark.parametrize("edit, message", [
    (lambda s: s.update(format="other"), "not an indi4d-scribbles"),
    (lambda s: s["strokes"].update(rock=[[[0, 0]]]), "unknown phase 'rock'"),
    (lambda s: s["strokes"]["pore"].append([[0, 99]]), r"\[0, 99\] outside"),
    (lambda s: s["strokes"].pop("particle"), "at least two phases"),
    (lambda s: s["strokes"].update(particle=[[[1, 1]]]), "scribbled as 'particle' and as 'pore'"),
])
def test_bad_scribbles_are_refused_naming_the_file(tmp_path, edit, message):
    s = make_scribbles((20, 30), {"pore": [[[1, 1], [1, 10]]], "particle": [[[10, 5], [15, 5]]]})
    edit(s)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(s))
    with pytest.raises(ScribbleError, match=message) as info:
        scribble_mask(read_scribbles(path))
    if "scribbled as" not in message:
        assert str(path) in str(info.value)


def test_scribbles_from_labels_stay_inside_their_phase_and_are_seeded():
    _, truth = two_phase_image()
    s = scribbles_from_labels(truth, strokes_per_phase=4, erosion_px=2, seed=3)
    assert s == scribbles_from_labels(truth, strokes_per_phase=4, erosion_px=2, seed=3)
    assert set(s["strokes"]) == {"pore", "particle"}
    mask = scribble_mask(s)
    drawn = mask > 0
    assert np.all(truth[drawn] == mask[drawn] - 1)
    assert drawn.mean() < 0.05  # sparse
    assert scribble_agreement(s, truth) == {"pore": 1.0, "particle": 1.0, "all": 1.0}
    flipped = np.where(truth == PARTICLE, PORE, PARTICLE)
    assert scribble_agreement(s, flipped)["all"] == 0.0  # the slice changed under the scribbles


def test_random_forest_from_scribbles_segments_a_noisy_two_phase_image():
    image, truth = two_phase_image(noise=0.3)
    s = scribbles_from_labels(truth, strokes_per_phase=4, length_px=12, erosion_px=2, seed=0)
    labels = forest_labels(image, s, seed=0)
    assert labels.shape == truth.shape and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {PORE, PARTICLE}
    assert dice(labels == PARTICLE, truth == PARTICLE) > 0.9
    assert dice(labels == PORE, truth == PORE) > 0.9
    forest = fit_forest(image, s, seed=0)
    other, other_truth = two_phase_image(seed=1, noise=0.3)  # a held-out slice
    assert dice(predict_forest(forest, other) == PARTICLE, other_truth == PARTICLE) > 0.85
    assert np.array_equal(labels, forest_labels(image, s, seed=0))  # seeded


# --------------------------------------------------------------------------- the attention residual U-Net


def test_residual_block_and_attention_gate_keep_shapes():
    import keras

    x = keras.Input((16, 16, 6))
    g = keras.Input((8, 8, 12))
    assert tuple(residual_block(x, 6, "same").shape) == (None, 16, 16, 6)
    assert tuple(residual_block(x, 10, "wider").shape) == (None, 16, 16, 10)
    gated = attention_gate(x, g, 4, "gate")
    assert tuple(gated.shape) == (None, 16, 16, 6)
    model = keras.Model([x, g], gated)
    xs = np.random.default_rng(0).standard_normal((2, 16, 16, 6)).astype(np.float32)
    out = np.asarray(model([xs, np.zeros((2, 8, 8, 12), np.float32)]))
    ratio = out / np.where(xs == 0, 1, xs)
    assert np.all((ratio > 0) & (ratio < 1))  # x times a weight in (0, 1)


def test_attention_unet_outputs_phase_probabilities():
    net = build_attention_unet(n_phases=4, base_filters=4, depth=2, seed=0)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 48, 1)).astype(np.float32)
    p = np.asarray(net(x))
    assert p.shape == (2, 32, 48, 4)
    assert np.allclose(p.sum(-1), 1, atol=1e-5) and p.min() >= 0
    again = build_attention_unet(n_phases=4, base_filters=4, depth=2, seed=0)
    assert np.allclose(np.asarray(again(x)), p)  # seeded weights
    labels = segment(net, x[0, :30, :45, 0])  # any size: padded to the factor and cropped back
    assert labels.shape == (30, 45) and labels.dtype == np.uint8


def test_one_slice_training_beats_the_untrained_network(tmp_path):
    image, truth = two_phase_image(seed=0, noise=0.2)
    held_out, held_truth = two_phase_image(seed=1, noise=0.2)
    untrained = build_attention_unet(n_phases=len(PHASE_NAMES), seed=0, base_filters=8, depth=2)
    before = dice(segment(untrained, held_out) == PARTICLE, held_truth == PARTICLE)
    network, summary = train_segmenter(image, truth, tmp_path / "seg", preset="tiny", seed=0)
    after_scores = phase_scores(segment(network, held_out), held_truth)
    assert summary["stopped_by"] == "steps"
    assert after_scores["particle"]["dice"] > max(before, 0.0) + 0.2
    assert after_scores["particle"]["dice"] > 0.8
    assert (tmp_path / "seg" / "history.json").is_file()
    import keras

    loaded = keras.saving.load_model(tmp_path / "seg" / "model.keras")  # built-in layers only: a plain file
    assert np.array_equal(segment(loaded, held_out), segment(network, held_out))


def test_a_published_segmenter_stands_in_only_for_exactly_the_same_run(tmp_path, monkeypatch):
    """Installed when recipe and slice hash equal the run's; otherwise nothing is touched and the run trains."""
    from indi4d import pretrained
    from indi4d.segmentation.run import _sha
    from indi4d.segmentation.scan import load_segmenter
    from indi4d.segmentation.train import segmenter_config

    monkeypatch.setenv("INDI4D_DATA_DIR", str(tmp_path / "cache"))
    image, truth = two_phase_image(seed=0, noise=0.2)
    held_out, _ = two_phase_image(seed=1, noise=0.2)
    provenance = {"method": "lq", "slice_sha256": _sha(image, truth)}
    network, _ = train_segmenter(image, truth, tmp_path / "trained", preset="tiny", seed=0, provenance=provenance)
    (tmp_path / "pub" / "pretrained").mkdir(parents=True)
    sha = pretrained.pack_model(tmp_path / "trained", tmp_path / "pub" / "pretrained" / "seg.zip",
                                required=("model.keras", "config.json"))
    registry = tmp_path / "pub" / "registry.txt"
    registry.write_text(f"seg.zip sha256:{sha} pretrained/seg.zip\n")

    other = {**provenance, "slice_sha256": _sha(image[::-1], truth)}  # another slice
    for config, key in ((segmenter_config(image.shape, preset="tiny", seed=0, provenance=other), "provenance"),
                        (segmenter_config(image.shape, preset="tiny", seed=1, provenance=provenance), "seed")):
        record, differs = pretrained.install_if_config("seg.zip", tmp_path / "run" / "seg", config, registry=registry)
        assert record is None and differs == [key]
        assert not (tmp_path / "run").exists()  # nothing touched

    same = segmenter_config(image.shape, preset="tiny", seed=0, provenance=provenance)
    record, differs = pretrained.install_if_config("seg.zip", tmp_path / "run" / "seg", same, registry=registry)
    assert differs == [] and record["sha256"] == sha
    assert np.array_equal(segment(load_segmenter(tmp_path / "run" / "seg"), held_out), segment(network, held_out))
    assert pretrained.installed_from(tmp_path / "run" / "seg")["name"] == "seg.zip"
    # training another run into the folder discards the installed one, its install record included
    train_segmenter(image, truth, tmp_path / "run" / "seg", preset="tiny", seed=0, provenance=other, restart=True,
                    epochs=1)
    assert pretrained.installed_from(tmp_path / "run" / "seg") is None


def test_the_shipped_segmenters_hold_the_default_recipe():
    """Changing chapter 07's default budget or network without publishing again fails here, not silently."""
    from indi4d import pretrained
    from indi4d.data import load_registry
    from indi4d.files import file_sha256
    from indi4d.segmentation.settings import PRESETS as CHAPTER
    from indi4d.segmentation.train import segmenter_config

    names = pretrained.segmentation_names_for("default")
    assert set(names) == {"lq", "indi", "ideal"} and pretrained.segmentation_names_for("default", retrain=True) == {}
    assert pretrained.segmentation_names_for("workshop") == {} == pretrained.segmentation_names_for("tiny")
    chapter = CHAPTER["default"]
    for method, name in names.items():
        assert file_sha256(pretrained.ARCHIVE_DIR / name) == load_registry()[name]["sha256"]
        config = pretrained.archived_json(name, "config.json")
        expected = segmenter_config(config["train_slice_shape"], preset=chapter["train"],
                                    network_preset=chapter["network"], seed=0, provenance=config["provenance"],
                                    **chapter["train_overrides"])
        assert config == json.loads(json.dumps(expected)) and config["provenance"]["method"] == method


# --------------------------------------------------------------------------- chapter 07: scores in a region, stored scribbles


def test_scores_in_a_region_ignore_what_lies_outside():
    truth = np.zeros((40, 40), np.uint8)
    truth[:, 20:] = PARTICLE
    pred = truth.copy()
    pred[:, :5] = PARTICLE  # wrong, but outside the region
    region = np.zeros(truth.shape, bool)
    region[:, 10:] = True
    inside = phase_scores(pred, truth, region=region)
    assert inside["particle"]["dice"] == 1 and inside["accuracy"] == 1
    assert inside["particle"]["boundary_f"] == pytest.approx(1.0)
    assert phase_scores(pred, truth)["particle"]["dice"] < 1


def test_ball_closing_footprint_and_distance_transforms_agree():
    from indi4d.segmentation.particles import FOOTPRINT_MIN_VOXELS, ball_closing

    rng = np.random.default_rng(1)
    for trial in range(6):
        shape = (34, 36, 30)  # above FOOTPRINT_MIN_VOXELS: the footprint path
        assert np.prod(shape) >= FOOTPRINT_MIN_VOXELS
        m = ndi.gaussian_filter(rng.standard_normal(shape), 1.5) > 0.1
        for r in (1.5, 3, 4):
            pad = int(np.ceil(r)) + 1
            p = np.pad(m, pad)
            by_distance = ndi.distance_transform_edt(ndi.distance_transform_edt(~p) <= r) > r  # the closing
            expected = by_distance[pad:-pad, pad:-pad, pad:-pad] | m
            assert np.array_equal(ball_closing(m, r), expected), (trial, r)


def layered_slice(size=64):
    """Pore, binder, particles with a thin dense shell on one side: every phase of a T2 slice."""
    yy, xx = np.indices((size, size))
    labels = np.full((size, size), PORE, np.uint8)
    labels[:, size // 2:] = BINDER
    for cy, cx in ((20, 20), (44, 44)):
        d = np.hypot(yy - cy, xx - cx)
        labels[d <= 11] = DENSE
        labels[d <= 9] = PARTICLE
    return labels


def test_drawn_scribbles_cover_every_phase_and_stay_inside_the_sample():
    from indi4d.segmentation import draw_scribbles

    labels = layered_slice()
    valid = disc(labels.shape, 32, 32, 28)
    s = draw_scribbles(labels, valid, seed=0)
    assert set(s["strokes"]) == set(PHASE_NAMES)  # the 2-pixel dense shell too (eroded by one pixel only)
    mask = scribble_mask(s)
    assert not (mask[~valid] > 0).any()
    assert scribble_agreement(s, labels)["all"] == 1.0
    assert s == draw_scribbles(labels, valid, seed=0) and s != draw_scribbles(labels, valid, seed=1)


def test_stored_scribbles_are_used_only_while_they_fit(tmp_path):
    from indi4d.segmentation import draw_scribbles, scribbles_for_slice, stored_scribbles_path

    labels = layered_slice()
    drawn, origin = scribbles_for_slice(labels, preset="tiny", seed=0, folder=tmp_path)
    assert not origin["stored"] and "does not exist" in origin["why"]
    path = write_scribbles(stored_scribbles_path("tiny", 0, folder=tmp_path), draw_scribbles(labels, seed=5))
    used, origin = scribbles_for_slice(labels, preset="tiny", seed=0, folder=tmp_path)
    assert origin["stored"] and used == read_scribbles(path)
    changed = np.where(labels == PARTICLE, PORE, labels)  # the sample changed under the file
    _, origin = scribbles_for_slice(changed, preset="tiny", seed=0, folder=tmp_path)
    assert not origin["stored"] and "lie on the phase" in origin["why"]
    _, origin = scribbles_for_slice(labels[:32, :32], preset="tiny", seed=0, folder=tmp_path)
    assert not origin["stored"] and "slice" in origin["why"]


def test_committed_scribbles_are_valid_files():
    from indi4d.segmentation import SCRIBBLES_DIR

    files = sorted(SCRIBBLES_DIR.glob("insitu_t*_seed*.json"))
    assert {f.name for f in files} >= {"insitu_t2_tiny_seed0.json", "insitu_t2_default_seed0.json"}
    for f in files:
        s = read_scribbles(f)
        assert set(s["strokes"]) == set(PHASE_NAMES) and "z" in s["source"]


def test_ideal_hq_is_the_truth_blurred_by_the_hq_psf():
    from indi4d.segmentation import attenuation_window, ideal_hq, to_network_scale

    meta = {"attenuation_per_um": {"pore": 0.01, "binder": 0.03, "particle": 0.08, "dense": 0.16},
            "psf": {"hq": {"sigma_nm": 100.0}}}
    labels = np.zeros((8, 32, 32), np.uint8)
    labels[:, :, 16:] = PARTICLE
    mu = ideal_hq(labels, meta, voxel_nm=50.0)
    row = mu[4, 16]
    assert row[0] == pytest.approx(0.01) and row[-1] == pytest.approx(0.08)
    assert (row[15] + row[16]) / 2 == pytest.approx((0.01 + 0.08) / 2, abs=1e-3)  # the edge stays in place
    expected = 0.01 + 0.07 * 0.5 * (1 + math.erf((17 - 15.5) / (2 * math.sqrt(2))))  # sigma = 2 voxels
    assert row[17] == pytest.approx(expected, rel=0.02)
    window = attenuation_window(meta)
    assert to_network_scale(np.array([0.01, 0.16]), window) == pytest.approx([-1, 1])


def test_fast_reconstruction_and_tolerance_band_equal_the_reference_functions():
    from skimage.morphology import reconstruction

    from indi4d.segmentation.particles import reconstruct_by_dilation
    from indi4d.segmentation.scores import within

    rng = np.random.default_rng(2)
    mask = ndi.gaussian_filter(rng.standard_normal((18, 22, 26)), 2) > 0
    distance = ndi.distance_transform_edt(mask)  # few distinct values, many ties
    for h in (0.5, 1.0, 2.0):
        assert np.array_equal(reconstruct_by_dilation(distance - h, distance), reconstruction(distance - h, distance))
    noise = rng.standard_normal((9, 11, 13))
    assert np.array_equal(reconstruct_by_dilation(noise - 0.3, noise), reconstruction(noise - 0.3, noise))
    edges = rng.random((20, 24, 28)) < 0.02
    for d in (0.5, 1, 1.5, 2, 3, 5):
        assert np.array_equal(within(edges, d), ndi.distance_transform_edt(~edges) <= d), d


def test_slab_around_a_slice_stays_in_the_stack():
    from indi4d.segmentation.series import slab_around

    assert slab_around(96, 40, None) == (0, 96) and slab_around(96, 40, 200) == (0, 96)
    assert slab_around(96, 40, 48) == (16, 64)  # centred on the slice
    assert slab_around(96, 5, 48) == (0, 48) and slab_around(96, 90, 48) == (48, 96)  # shifted inside
    z0, z1 = slab_around(97, 50, 7)
    assert z1 - z0 == 7 and z0 <= 50 < z1
    with pytest.raises(ValueError, match="n_keep"):
        slab_around(96, 40, 0)


def test_the_particle_followed_is_the_largest_one_no_face_cuts():
    from indi4d.segmentation.series import pick_particle

    labels = np.zeros((40, 40, 40), np.uint8)
    z, y, x = np.indices(labels.shape)
    labels[(z - 2) ** 2 + (y - 20) ** 2 + (x - 12) ** 2 <= 7 ** 2] = PARTICLE  # largest, cut by slice 0
    labels[(z - 20) ** 2 + (y - 20) ** 2 + (x - 30) ** 2 <= 5 ** 2] = PARTICLE  # whole
    box, particle = pick_particle(labels)
    assert particle.sum() == ((z - 20) ** 2 + (y - 20) ** 2 + (x - 30) ** 2 <= 5 ** 2).sum()
    assert box[0].start > 0 and box[0].stop < 40 and box[2].start > 17
    with pytest.raises(ValueError, match="no particle"):
        pick_particle(labels[:10])  # the only particle in these slices touches the first one
