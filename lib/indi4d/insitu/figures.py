"""Figures of chapter 06: zoomed regions across time, edge profiles (the paper's Fig. 3B), fusion views."""

import numpy as np

from ..phases import DENSE
from ..plotting import add_scale_bar


def change_roi(labels, size):
    """The (y0, x0, z) of the ``size`` × ``size`` xy window that shows the most change over the series.

    Score of a window: voxels whose label changes between the first and the last
    time step plus the dense-phase voxels of the last step, in the z slice where
    that sum is largest among the central half of the slices (away from the
    ends of the scanned volume); box sums via a summed-area table.

    Parameters
    ----------
    labels : list of ndarray (Z, Y, X) of int
        Truth labels per time step (same grid).
    size : int
        Window side, pixels.

    Returns
    -------
    (int, int, int)
        ``y0, x0, z``.
    """
    first, last = np.asarray(labels[0]), np.asarray(labels[-1])
    change = (first != last).astype(np.float64) + (last == DENSE)
    nz = change.shape[0]
    lo, hi = nz // 4, max(nz // 4 + 1, 3 * nz // 4)
    z = lo + int(np.argmax(change[lo:hi].sum(axis=(1, 2))))
    plane = change[z]
    size = int(min(size, *plane.shape))
    sat = np.pad(plane.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = sat[size:, size:] - sat[:-size, size:] - sat[size:, :-size] + sat[:-size, :-size]
    y0, x0 = np.unravel_index(int(np.argmax(box)), box.shape)
    return int(y0), int(x0), z


def plot_zoom_series(panels, pixel_nm, times, window, roi_box=None):
    """Rows of methods, columns of time steps, every panel on one attenuation window, with scale bars.

    Parameters
    ----------
    panels : dict
        ``{row title: [2D attenuation image (1/µm) per time step]}``.
    pixel_nm : float
    times : sequence of str
    window : (float, float)
        Display range of the attenuation, 1/µm.
    roi_box : (y0, x0, size), optional
        Drawn on every panel (for full-slice overviews).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    rows = list(panels)
    fig, axes = plt.subplots(len(rows), len(times), figsize=(2.6 * len(times), 2.6 * len(rows)), squeeze=False)
    im = None
    for r, name in enumerate(rows):
        for c, t in enumerate(times):
            ax = axes[r, c]
            img = panels[name][c]
            im = ax.imshow(img, cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest")
            add_scale_bar(ax, pixel_nm, img.shape[1])
            if roi_box is not None:
                y0, x0, size = roi_box
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), size, size, fill=False, ec="tab:red", lw=1.2))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(t)
            if c == 0:
                ax.set_ylabel(name)
    fig.colorbar(im, ax=axes, shrink=0.6, label="attenuation (1/µm)")
    return fig


def fwhm_bar(s_nm, derivative, fwhm_nm):
    """Where to draw a FWHM on a derivative: (left, right, height) centred on its peak at half maximum."""
    d = np.asarray(derivative, np.float64)
    if not np.isfinite(fwhm_nm) or d.size == 0:
        return None
    i = int(np.nanargmax(d))
    return float(s_nm[i] - fwhm_nm / 2), float(s_nm[i] + fwhm_nm / 2), float(d[i] / 2)


def plot_edge_profiles(edges, names, colors=None):
    """The paper's Fig. 3B rebuilt: mean edge profiles and their derivative with the FWHM drawn.

    Parameters
    ----------
    edges : dict
        ``{method: {"s_nm", "mean_edge", "mean_derivative", "fwhm_nm"}}`` (one time step).
    names : dict
        Display names.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 3.8))
    for j, (m, e) in enumerate(edges.items()):
        if e is None or e.get("mean_edge") is None:
            continue
        s = np.asarray(e["s_nm"], float)
        color = (colors or {}).get(m, f"C{j}")
        a.plot(s, e["mean_edge"], color=color, label=names.get(m, m))
        d = np.asarray(e["mean_derivative"], float)
        b.plot(s, d, color=color, label=f"{names.get(m, m)}: FWHM {e['fwhm_nm']:.0f} nm"
               if e.get("fwhm_nm") is not None and np.isfinite(e["fwhm_nm"]) else names.get(m, m))
        bar = fwhm_bar(s, d, e.get("fwhm_nm") if e.get("fwhm_nm") is not None else np.nan)
        if bar:
            b.plot(bar[:2], [bar[2], bar[2]], color=color, lw=3, alpha=0.7)
    a.axvline(0, color="k", lw=0.6, ls=":")
    a.set_xlabel("distance from the true particle edge (nm), inside < 0")
    a.set_ylabel("normalised intensity (1 = particle)")
    a.set_title("mean profile across particle edges")
    a.legend(fontsize=8)
    b.set_xlabel("distance from the true particle edge (nm)")
    b.set_ylabel("−d(intensity)/ds (per nm)")
    b.set_title("its derivative; bars: FWHM at half maximum")
    b.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_fusion(panels, pixel_nm, window):
    """xz slices (z vertical) of several volumes side by side, one attenuation window, scale bars.

    Parameters
    ----------
    panels : dict
        ``{title: 2D (Z, X) attenuation image}``.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(2.8 * len(panels), 3.0), squeeze=False)
    for ax, (title, img) in zip(axes[0], panels.items()):
        ax.imshow(img, cmap="gray", vmin=window[0], vmax=window[1], interpolation="nearest")
        add_scale_bar(ax, pixel_nm, img.shape[1])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x")
        ax.set_ylabel("z")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
