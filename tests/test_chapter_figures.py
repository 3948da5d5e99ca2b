"""The library code behind chapters 01-04: measurements and tables with known answers, every figure drawn once.

The figure functions moved out of the chapters (``simulate.figures``,
``registration.figures``, ``core.figures``, ``training.figures``) are drawn on
small arrays here, so a broken figure fails a unit test and not only a chapter run.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from indi4d import plotting, registration, runs, simulate  # noqa: E402
from indi4d.core import figures as net_figures  # noqa: E402
from indi4d.core import pairs  # noqa: E402
from indi4d.evaluation import validation  # noqa: E402
from indi4d.evaluation.settings import STEP_COUNTS, VALIDATION_STEP_COUNTS  # noqa: E402
from indi4d.training import figures as train_figures  # noqa: E402
from synthetic import make_pairs  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def small_meta():
    """A ``meta.json`` of a 16^3 LQ volume whose HQ region is LQ voxels 4..12 on each axis."""
    return {
        "voxel_size_nm": {"lq": 100.0, "hq": 50.0},
        "hq_region_in_lq": {"start_vox": [4, 4, 4], "stop_vox": [12, 12, 12]},
        "hq_disc_radius_vox": 7.5,
        "grey_mapping": {"offset": 1000.0, "per_inv_um": 10000.0},
        "dose": {"lq": 100.0, "hq": 1000.0},
        "acquisition": {"lq": {"n_angles": 90, "blur_sigma_nm": 300.0},
                        "hq": {"n_angles": 180, "blur_sigma_nm": 130.0}},
        "insitu": {"steps": [{"step": 0, "radius_growth": 0.0, "open_cracks": 0,
                              "phase_fractions": {"pore": 0.4, "binder": 0.2, "particle": 0.4, "dense": 0.0}}]},
    }


# --- shared colours -------------------------------------------------------------------------------------------

def test_phase_colours_are_one_set():
    from indi4d.segmentation import figures as seg_figures

    kw = plotting.phase_image_kw()
    assert (kw["vmin"], kw["vmax"], kw["interpolation"]) == (-0.5, 3.5, "nearest")
    assert kw["cmap"](2 / 3) == matplotlib.colors.to_rgba(plotting.PHASE_COLOURS[2])  # label 2 at its colour
    handles = plotting.phase_legend_handles(["pore", "binder"])
    assert [h.get_label() for h in handles] == ["pore", "binder"]
    assert tuple(seg_figures.PHASE_CMAP.colors) == plotting.PHASE_COLOURS  # chapter 07 draws the same colours
    with pytest.raises(ValueError, match="only 4 phase colours"):
        plotting.phase_legend_handles(list("abcde"))


# --- chapter 01 ------------------------------------------------------------------------------------------------

def test_hq_region_and_central_slices():
    meta = small_meta()
    assert simulate.hq_region_um(meta) == {"z": (0.4, 1.2), "y": (0.4, 1.2), "x": (0.4, 1.2)}
    assert simulate.central_slices(meta) == (8, 8)  # LQ slice 8, HQ slice 2 * (8 - 4)


def test_common_grey_range_ignores_the_air_outside_the_disc():
    img = np.full((20, 20), 100.0)
    img[0, 0] = 1e6  # a corner, outside the disc
    assert simulate.common_grey_range([img, img + 1]) == pytest.approx((100.0, 101.0))


def test_chapter_01_tables():
    meta = small_meta()
    assert simulate.field_of_view_um((16, 32, 32), 100.0) == "1.6 × 3.2 × 3.2"
    table = simulate.scan_table(meta, (16, 16, 16), (16, 16, 16), (16, 16, 16))
    assert table.count("\n") == 5
    assert "| HQ (`hq.tif`) | 50 | (16, 16, 16) | 0.8 × 0.8 × 0.8 | 1000 | 180 | 130 |" in table
    chars = {w: {"fwhm_nm": 800.4, "noise_std_per_um": 0.01, "noise_std_grey": 100.2, "cnr": 3.04}
             for w in ("lq", "hq")}
    assert "| LQ | 800 | 803 ± 135 | 0.0100 | 100 | 3.0 |" in simulate.calibration_table(chars)
    assert "| T0 | 0 % | 0 | 0.400 | 0.200 | 0.400 | 0.000 |" in simulate.insitu_table(meta)


def test_chapter_01_figures_draw():
    meta = small_meta()
    rng = np.random.default_rng(0)
    lq, hq = rng.random((16, 16, 16)), rng.random((16, 16, 16)) * 1000 + 1000
    labels = rng.integers(0, 4, (16, 16, 16))
    assert len(simulate.plot_lq_with_hq_fov(lq, hq, meta).axes) == 2
    assert len(simulate.plot_hq_vs_truth(hq, rng.random((16, 16, 16)), labels, meta).axes) == 3
    assert len(simulate.plot_orthogonal_views(lq, hq, labels, meta).axes) == 9
    series, truth = [lq] * 2, [np.kron(labels, np.ones((2, 2, 2), int))] * 2
    assert len(simulate.plot_insitu_series(series, truth, [100.0] * 2, [50.0] * 2).axes) == 4
    real = {"raw": lq, "labels": labels, "hq": np.kron(hq, np.ones((2, 2, 2))), "lq": lq,
            "voxel_size_nm": {"real": 100.0, "hq": 50.0, "lq": 100.0}, "disc_radius_vox": {"real": 7.0}}
    assert len(simulate.plot_real_volume(real).axes) == 4


# --- chapter 02 ------------------------------------------------------------------------------------------------

def test_checkerboard_alternates_squares():
    a, b = np.zeros((4, 4)), np.ones((4, 4))
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 0], [1, 1, 0, 0]])
    np.testing.assert_array_equal(registration.checkerboard(a, b, n=2), expected)


def test_comparison_blur_adds_the_two_blurs_in_quadrature():
    assert registration.comparison_blur({"parameters": {"blur_sigma": 3.0}, "hq_blur_sigma": 4.0}) == 5.0


def test_phi_table_names_what_is_not_known():
    phi = {"translation_vox": [1.0, 0.0, -0.5], "rotation_deg": [0.0, 0.1, 0.0], "zoom": [1.0, 1.0, 1.0],
           "residual_before": 0.5, "residual_after": 0.1, "error_vs_applied": {"translation_vox": 0.02}}
    table = registration.phi_table(phi, {"translation_vox": [1.0, 0.0, -0.5]})
    assert "| translation (HQ voxels, z y x) | +1.000, +0.000, -0.500 | +1.000, +0.000, -0.500 | 0.020 voxel |" in table
    assert "| rotation vector (degrees, z y x) | +0.000, +0.100, +0.000 | n/a | n/a |" in table
    assert "n/a" in registration.phi_table(phi)  # real scans: nothing applied


def test_register_run_names_chapter_01_when_the_data_are_missing(tmp_path):
    with pytest.raises(runs.MissingArtifactError, match="01"):
        registration.register_run(tmp_path / "run", "tiny")


def test_chapter_02_figures_draw(tmp_path):
    rng = np.random.default_rng(0)
    lq, hq = rng.random((16, 16, 16)), rng.random((16, 16, 16))
    mask = np.hypot(*np.indices((16, 16)) - 7.5) < 7
    start, stop = np.array([4, 4, 4]), np.array([12, 12, 12])
    up = np.kron(lq[4:12, 4:12, 4:12], np.ones((2, 2, 2)))
    assert len(registration.plot_scans(lq, up, hq, start, stop, 100.0, 50.0).axes) == 4
    assert len(registration.plot_before_after(up, up, hq, mask, 1.0, 50.0).axes) == 6
    pairs_dir = make_pairs(tmp_path / "pairs")
    info = pairs.load_pairs_info(pairs_dir)
    assert len(registration.plot_histograms(hq, up, mask, 7.0, info["normalisation"], 50.0).axes) == 3
    assert len(registration.plot_split(info["z"], info["split"], 12).axes) == 1
    assert len(registration.plot_pairs(pairs_dir, pairs.pixel_size_nm(pairs_dir)).axes) == 6
    assert len(registration.plot_batch(rng.random((4, 8, 8, 1)), rng.random((4, 8, 8, 1)), 50.0).axes) == 8


def test_pixel_size_of_the_pairs_is_the_hq_scans(tmp_path):
    pairs_dir = make_pairs(tmp_path / "pairs")
    assert pairs.pixel_size_nm(pairs_dir) == 50.0
    assert pairs.lq_scan_record(pairs_dir) == {"lq_voxel_size_nm": 100.0, "lq_dtype": "uint16"}


# --- chapter 03 ------------------------------------------------------------------------------------------------

def test_checkerboard_energy_known_answers():
    blocks = np.kron(np.arange(16.0).reshape(4, 4), np.ones((2, 2)))  # nearest-neighbour up-sampling
    assert net_figures.checkerboard_energy(blocks) == 0.0
    board = np.indices((8, 8)).sum(axis=0) % 2 * 2.0 - 1.0  # +-1 alternating: variance 1, differences 2
    assert net_figures.checkerboard_energy(board) == 4.0  # (4 + 4) / (2 * 1)
    noise = np.random.default_rng(0).standard_normal((512, 512))
    assert net_figures.checkerboard_energy(noise) == pytest.approx(2.0, abs=0.05)  # uncorrelated pixels


def test_measured_reach_and_markdown_table():
    response = np.zeros((9, 9))
    response[4, 4], response[4, 7], response[2, 4] = 1.0, 1e-9, 1e-6
    assert net_figures.measured_reach(response) == 3
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    assert net_figures.markdown_table(rows) == "| a | b |\n|---|---|\n| 1 | x |\n| 2 | y |"


def test_chapter_03_figures_on_a_small_network():
    from indi4d.core.model import PRESETS, build_unet, influence_radius

    params = PRESETS["tiny"]
    net = build_unet(**params, seed=0)
    card = net_figures.network_card("tiny", params, net)
    assert card["down-sampling blocks"] == params["depth"] and card["parameters"] == f"{net.count_params():,}"
    factor = 2 ** params["depth"]
    response = net_figures.impulse_response(net, 4 * factor)
    assert response.shape == (4 * factor, 4 * factor) and response[2 * factor, 2 * factor] > 0
    assert net_figures.measured_reach(response) <= influence_radius(**params)
    x = np.zeros((1, 2 * factor, 2 * factor, 1), np.float32)
    feats = {k: net_figures.subpixel_features(params, x, k) for k in ("icnr", "random")}
    assert len(net_figures.plot_icnr(feats, slice(0, 4), 50.0).axes) == 2
    assert len(net_figures.plot_architecture([("tiny", net)]).axes) == 1
    assert len(net_figures.plot_time_embedding(params["time_dim"], n_times=64).axes) == 2  # with its colour bar
    outs = {1.0: x, 0.5: x + 0.1}
    assert len(net_figures.plot_forward_pass(x, outs, 50.0).axes) == 4  # 3 panels + 1 colour bar
    assert len(net_figures.plot_receptive_field(response, 3).axes) == 3


# --- chapter 04 ------------------------------------------------------------------------------------------------

def test_validation_step_counts_are_drawn_from_the_one_list():
    assert set(VALIDATION_STEP_COUNTS) <= set(STEP_COUNTS) and max(VALIDATION_STEP_COUNTS) == 20
    assert VALIDATION_STEP_COUNTS == (1, 2, 4, 7, 10, 15, 20)


def test_validation_scores_of_hq_against_itself(tmp_path):
    pairs_dir = make_pairs(tmp_path / "pairs")
    _, hq = pairs.load_pairs(pairs_dir, "val")
    mask = np.ones(hq.shape[1:], bool)
    particles, source = validation.validation_particles(tmp_path / "run", np.array([8, 9]), hq, mask)
    assert source == "Otsu segmentation of HQ" and particles.shape == hq.shape and particles.any()
    s = validation.validation_scores(hq, hq, particles, 50.0, mask)
    assert s["psnr_db"] == np.inf and s["ssim"] == pytest.approx(1.0) and s["n_profiles"] > 0
    results = validation.validation_results(hq, hq, {2: hq}, particles, 50.0, mask)
    assert list(results) == ["bicubic LQ", "HQ", "InDI N=2"]
    assert validation.validation_table(results).count("| inf |") == 3
    with pytest.raises(ValueError, match="no pixel size"):
        validation.validation_scores(hq, hq, particles, None, mask)


def test_chapter_04_figures_draw():
    rng = np.random.default_rng(0)
    assert train_figures.central_zoom((8, 12)) == (slice(2, 6), slice(3, 9))
    lq, hq = rng.random((3, 16, 16)) * 2 - 1, rng.random((3, 16, 16)) * 2 - 1
    restored = {n: lq for n in (1, 4, 10, 20)}
    assert len(train_figures.plot_validation_slices(lq, restored, hq, 1, 50.0).axes) == 12
    trajectory = [rng.random((16, 16)) for _ in range(11)]
    assert len(train_figures.plot_sampler_path(trajectory, (14, 14), 50.0).axes) == 5
    history = {"loss": [1.0, 0.5], "val_loss": [1.1, 0.6], "steps": [4, 8]}
    training = {"epochs": 2, "steps_per_epoch": 4, "max_lr": 1e-3, "pct_start": 0.3}
    assert len(train_figures.plot_loss_curves(history, training).axes) == 2
    batch = rng.random((2, 8, 8, 1)).astype(np.float32)
    assert len(train_figures.plot_t_sampling(batch, batch, rng.random(100), 0.0, 0.2, 50.0).axes) == 6
    score = {"fwhm_nm": 300.0, "fwhm_nm_std": 10.0, "edge_overshoot": 0.1, "psnr_db": 20.0}
    results = {"bicubic LQ": score, "HQ": score, **{f"InDI N={n}": score for n in (1, 2)}}
    assert len(train_figures.plot_sharpness_vs_steps(results, (1, 2)).axes) == 3
    edge = {"s_nm": [0, 1], "mean_edge": [0, 1], "mean_derivative": [1, 0], "fwhm_nm": 300.0}
    fig = train_figures.plot_edge_profiles({"bicubic LQ": edge, "InDI N=10": edge, "HQ": edge})
    assert [line.get_color() for line in fig.axes[0].lines] == ["tab:blue", "tab:orange", "tab:green"]


def test_chapter_04_notes_say_what_the_records_hold():
    from indi4d.training import notes

    summary = {"global_step": 1500, "seconds": 780.0, "seconds_per_step": 0.52, "stopped_by": "steps",
               "total_steps": 1500}
    installed = {"how": "installed", "name": "indi_default", "sha256": "ab" * 32, "trained": summary}
    assert notes.model_note(installed).startswith("**The rest of the book uses the published reference network "
                                                  "`indi_default`** (SHA-256 `abababababababab…`")
    assert "1500 steps (13 min on the machine that made it)" in notes.model_note(installed)
    assert notes.model_note({"how": "trained", "trained": summary}) == ""
    assert notes.summary_list({"a": 1, "b": "x"}) == "- **a**: 1\n- **b**: x"
    assert notes.target_note(installed, "halves", "auto") == (
        "Training target: **halves** (`auto` in the preset); 1500 steps in 13.0 min "
        "(0.52 s a step on the machine that trained it).")
    reused = {"how": "trained", "trained": {"global_step": 8}}
    assert notes.target_note(reused, "hq", "hq").endswith("8 steps, all run before this execution of the chapter "
                                                          "(reused).")
    assert notes.budget_note(summary, None).endswith("the wall-time safeguard is off for this preset.")
    fired = dict(summary, stopped_by="wall_time_budget", global_step=900, resumed_after_damaged=["ckpt_4"],
                 resumed_from=2)
    note = notes.budget_note(fired, 10.0)
    assert note.startswith("**The wall-time safeguard fired** (10 min) after 900 of 1500 steps")
    assert note.endswith("Damaged checkpoint(s) ckpt_4 were skipped: the run resumed from step 2.")
    assert notes.deconv_note({"how": "skipped", "why": "no halves"}, None) == "No indi-deconv network: no halves."
    trained = {"how": "trained", "trained": {"global_step": 8}}
    assert notes.deconv_note(trained, {"sigma_nm": 61.2, "source": "meta.json"}) == (
        "indi-deconv **trained**: 8 steps; targets deconvolved by a Gaussian PSF of σ = 61 nm (meta.json).")
