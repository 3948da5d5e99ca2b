"""Scale bars: a round length in µm from the pixel size, placed inside any image panel."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from indi4d import insitu, plotting  # noqa: E402


def _bar_in_axes_fraction(ax, bar):
    """The bar's ends and height in axes fractions (0..1 inside the panel)."""
    ax.figure.canvas.draw()
    pts = bar.get_transform().transform(np.column_stack(bar.get_data()))
    return ax.transAxes.inverted().transform(pts)


def test_nice_lengths_are_round_and_fit():
    assert plotting.nice_length_um(3.2) == 0.5
    assert plotting.nice_length_um(12.8) == 2.0
    assert plotting.nice_length_um(1.0) == 0.2 and plotting.nice_length_um(1.0, fraction=0.5) == 0.5
    for width in (0.01, 0.7, 3.0, 204.8, 5e4):
        length = plotting.nice_length_um(width)
        assert 0.3 * width / 2.5 <= length <= 0.3 * width * (1 + 1e-9)
        assert float(f"{length / 10 ** np.floor(np.log10(length)):.6g}") in (1.0, 2.0, 5.0)


def test_the_old_names_still_import_from_insitu():
    assert insitu.add_scale_bar is plotting.add_scale_bar
    assert insitu.nice_length_um is plotting.nice_length_um


@pytest.mark.parametrize("shape", [(32, 32), (8, 64), (64, 8)])
def test_bar_length_and_place_on_a_pixel_image_of_any_shape(shape):
    fig, ax = plt.subplots()
    ax.imshow(np.zeros(shape))
    bar, label = plotting.add_scale_bar(ax, 50.0)
    width_um = shape[1] * 0.05
    length_um = plotting.nice_length_um(width_um)
    x = bar.get_xdata()
    assert abs(x[1] - x[0]) == pytest.approx(length_um / 0.05)  # pixels
    assert label.get_text() == f"{length_um:g} µm"
    frac = _bar_in_axes_fraction(ax, bar)
    assert np.all((frac > 0) & (frac < 1)), "the bar lies inside the panel"
    assert frac[0, 1] < 0.5, "in the lower half"
    assert ax.get_xlim() == (-0.5, shape[1] - 0.5) and ax.get_ylim() == (shape[0] - 0.5, -0.5), "limits kept"
    plt.close(fig)


def test_bar_on_an_image_drawn_in_micrometres_and_zoomed():
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((40, 80)), extent=(1.0, 9.0, 4.0, 0.0), aspect="auto")  # 100 nm pixels, axes in µm
    bar, label = plotting.add_scale_bar(ax, 100.0)
    x = bar.get_xdata()
    assert abs(x[1] - x[0]) == pytest.approx(2.0) and label.get_text() == "2 µm"  # 8 µm wide -> 2 µm
    ax.set_xlim(2.0, 4.0)  # zoomed to 2 µm: a shorter bar
    bar2, label2 = plotting.add_scale_bar(ax, 100.0, loc="lower right")
    assert label2.get_text() == "0.5 µm" and np.max(bar2.get_xdata()) <= 4.0
    plt.close(fig)


def test_no_pixel_size_draws_nothing_and_bad_sizes_are_refused():
    fig, ax = plt.subplots()
    ax.imshow(np.zeros((8, 8)))
    assert plotting.add_scale_bar(ax, None) is None
    for bad in (0.0, -50.0, float("nan")):
        with pytest.raises(ValueError, match="pixel size"):
            plotting.add_scale_bar(ax, bad)
    with pytest.raises(ValueError, match="loc"):
        plotting.add_scale_bar(ax, 50.0, loc="middle")
    plt.close(fig)


def _bar_labels(fig):
    return [[t.get_text() for t in ax.texts if t.get_text().endswith("µm")] for ax in fig.axes]


def test_figure_modules_put_bars_on_image_panels_only():
    from indi4d import evaluation, segmentation

    rng = np.random.default_rng(0)
    mask = np.ones((40, 60), bool)
    images = {"lq": rng.random((40, 60)), "hq": rng.random((40, 60))}
    fig = evaluation.plot_comparison(images, mask, (5, 5, 16), pixel_nm=50.0)
    assert all(labels == ["0.5 µm"] for labels in _bar_labels(fig)[:2])  # 3 µm wide -> 0.5 µm
    assert all(labels == ["0.2 µm"] for labels in _bar_labels(fig)[2:])  # the 0.8 µm zoom -> 0.2 µm
    plt.close(fig)
    fig = evaluation.plot_comparison(images, mask, (5, 5, 16))  # no pixel size: no bars
    assert not any(_bar_labels(fig))
    plt.close(fig)
    labels = [rng.integers(0, 4, (40, 60))]
    fig = segmentation.plot_segmentations({"lq": labels}, labels, {"lq": "LQ"}, ["T0"], pixel_nm=50.0)
    assert [len(x) for x in _bar_labels(fig)] == [1, 1, 1]
    plt.close(fig)


def test_comparison_is_two_rows_of_slices_over_their_zooms():
    from indi4d import evaluation

    rng = np.random.default_rng(0)
    mask = np.ones((40, 40), bool)
    names = [f"m{i}" for i in range(8)]
    fig = evaluation.plot_comparison({n: rng.random((40, 40)) for n in names}, mask, (5, 5, 16))
    assert len(fig.axes) == 16  # 2 rows of 4 slices, each over its row of 4 zooms
    assert [ax.get_title() for ax in fig.axes[:4]] == names[:4]
    assert [ax.get_title() for ax in fig.axes[8:12]] == names[4:]
    width, height = fig.get_size_inches()
    assert width <= 9 and height > width  # a page's width, not a strip
    plt.close(fig)
    fig = evaluation.plot_comparison({n: rng.random((40, 40)) for n in names + ["truth"]}, mask, (5, 5, 16))
    assert len(fig.axes) == 18  # 5 over 4: the unfilled second row leaves no empty frames
    assert [ax.get_title() for ax in fig.axes[10:14]] == names[5:] + ["truth"]
    plt.close(fig)
    fig = evaluation.plot_comparison({n: rng.random((40, 40)) for n in names[:3]}, mask, (5, 5, 16))
    assert len(fig.axes) == 6  # up to four: one row
    plt.close(fig)
