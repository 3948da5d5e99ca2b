"""Figures of chapter 01: the simulated scans, their truth, the in situ series, a real volume.

Each ``plot_*`` function returns a matplotlib figure; the chapter saves and
shows it. Image panels carry a µm scale bar whose pixel size comes from the
data (``meta.json``, the volumes' metadata); labels are drawn in the book's
phase colours (:func:`indi4d.plotting.phase_image_kw`).
"""

import numpy as np

from ..phases import PARTICLE, PHASE_NAMES
from ..plotting import add_scale_bar, phase_image_kw, phase_legend_handles


def hq_region_um(meta):
    """Where the HQ scan lies in the LQ volume, in µm of the LQ volume's frame.

    Parameters
    ----------
    meta : dict
        ``meta.json`` of a simulated data set (``hq_region_in_lq``, ``voxel_size_nm``).

    Returns
    -------
    dict
        ``x``, ``y``, ``z``: (start, stop) in µm (half-open, from the LQ voxels).
    """
    v_lq = meta["voxel_size_nm"]["lq"]
    start, stop = meta["hq_region_in_lq"]["start_vox"], meta["hq_region_in_lq"]["stop_vox"]
    return {axis: (start[i] * v_lq / 1000, stop[i] * v_lq / 1000) for i, axis in enumerate("zyx")}


def central_slices(meta):
    """The LQ slice in the middle of the HQ region and the HQ slice at (almost) its height.

    Parameters
    ----------
    meta : dict
        ``meta.json`` (``hq_region_in_lq``).

    Returns
    -------
    (int, int)
        ``(z_lq, z_hq)``: LQ slice index, HQ slice index (``2 * (z_lq - start_z)``).
    """
    start, stop = meta["hq_region_in_lq"]["start_vox"], meta["hq_region_in_lq"]["stop_vox"]
    z_lq = (start[0] + stop[0]) // 2
    return z_lq, 2 * (z_lq - start[0])


def plot_lq_with_hq_fov(lq, hq, meta):
    """An LQ slice with the HQ scan's footprint and disc, beside the HQ slice, on one µm frame.

    Parameters
    ----------
    lq : ndarray (Z, Y, X)
        The LQ scan.
    hq : ndarray (Z', Y', X')
        The HQ scan (50 nm voxels, the central eighth of the LQ volume).
    meta : dict
        ``meta.json`` (voxel sizes, ``hq_region_in_lq``, ``hq_disc_radius_vox``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle, Rectangle

    v_lq, v_hq = meta["voxel_size_nm"]["lq"], meta["voxel_size_nm"]["hq"]
    z_lq, z_hq = central_slices(meta)
    region = hq_region_um(meta)
    (x0, x1), (y0, y1) = region["x"], region["y"]
    width = lq.shape[1] * v_lq / 1000
    r_disc = meta["hq_disc_radius_vox"] * v_hq / 1000

    fig, axes = plt.subplots(1, 2, figsize=(12, 5.6))
    axes[0].imshow(lq[z_lq], cmap="gray", extent=(0, width, width, 0))
    axes[0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="tab:red", lw=1.5))
    axes[0].add_patch(Circle(((x0 + x1) / 2, (y0 + y1) / 2), r_disc, fill=False, edgecolor="tab:red", ls="--"))
    axes[0].set_title(f"LQ slice z = {z_lq} ({v_lq:g} nm voxels), HQ region in red")
    axes[1].imshow(hq[z_hq], cmap="gray", extent=(x0, x1, y1, y0))
    axes[1].set_title(f"HQ slice z = {z_hq} ({v_hq:g} nm voxels)")
    for ax, voxel_nm in zip(axes, (v_lq, v_hq)):
        add_scale_bar(ax, voxel_nm)
        ax.set_xlabel("x (µm)")
        ax.set_ylabel("y (µm)")
    fig.tight_layout()
    return fig


def plot_hq_vs_truth(hq, truth_mu, truth_labels, meta):
    """The HQ slice as attenuation beside the true attenuation and the true labels (HQ grid).

    Parameters
    ----------
    hq : ndarray (Z, Y, X) of uint16
        The HQ scan (grey values).
    truth_mu, truth_labels : ndarray (Z, Y, X)
        True attenuation (1/µm) and phase labels on the HQ grid.
    meta : dict
        ``meta.json`` (``grey_mapping``, voxel sizes, the HQ region).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .acquisition import grey_to_mu

    grey = meta["grey_mapping"]
    _, z_hq = central_slices(meta)
    region = hq_region_um(meta)
    ext = (*region["x"], region["y"][1], region["y"][0])
    hq_mu = grey_to_mu(hq[z_hq], grey["offset"], grey["per_inv_um"])
    lo, hi = np.percentile(truth_mu[z_hq], [1, 99])
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    axes[0].imshow(hq_mu, cmap="gray", vmin=lo - 0.02, vmax=hi + 0.02, extent=ext)
    axes[0].set_title("HQ scan, μ (1/µm)")
    axes[1].imshow(truth_mu[z_hq], cmap="gray", vmin=lo - 0.02, vmax=hi + 0.02, extent=ext)
    axes[1].set_title("true attenuation μ (1/µm)")
    axes[2].imshow(truth_labels[z_hq], extent=ext, **phase_image_kw())
    axes[2].set_title("true phase labels")
    axes[2].legend(handles=phase_legend_handles(PHASE_NAMES[:3]), loc="lower right", fontsize=8, framealpha=0.8)
    for ax in axes:
        add_scale_bar(ax, meta["voxel_size_nm"]["hq"])  # the scan and its truth share the HQ grid
        ax.set_xlabel("x (µm)")
    fig.tight_layout()
    return fig


def plot_orthogonal_views(lq, hq, truth_labels, meta):
    """xy, xz and yz sections through the HQ region of the LQ crop, the HQ scan and the true labels.

    Parameters
    ----------
    lq, hq : ndarray (Z, Y, X)
        The LQ scan (whole volume; its HQ region is cropped here) and the HQ scan.
    truth_labels : ndarray (Z, Y, X) of int
        True phase labels on the HQ grid.
    meta : dict
        ``meta.json`` (voxel sizes, the HQ region).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    v_lq, v_hq = meta["voxel_size_nm"]["lq"], meta["voxel_size_nm"]["hq"]
    start, stop = meta["hq_region_in_lq"]["start_vox"], meta["hq_region_in_lq"]["stop_vox"]
    z_lq, z_hq = central_slices(meta)
    region = hq_region_um(meta)
    (x0, x1), (y0, y1), (z0, z1) = region["x"], region["y"], region["z"]
    yc, xc = hq.shape[1] // 2, hq.shape[2] // 2
    crop = lq[start[0]:stop[0], start[1]:stop[1], start[2]:stop[2]]
    views = [
        ("LQ crop", crop, dict(cmap="gray"), (z_lq - start[0], yc // 2, xc // 2), v_lq),
        ("HQ", hq, dict(cmap="gray"), (z_hq, yc, xc), v_hq),
        ("truth labels", truth_labels, phase_image_kw(), (z_hq, yc, xc), v_hq),
    ]
    fig, axes = plt.subplots(3, 3, figsize=(13, 12.5))
    for row, (name, vol, kw, (iz, iy, ix), voxel_nm) in enumerate(views):
        axes[row, 0].imshow(vol[iz], extent=(x0, x1, y1, y0), **kw)
        axes[row, 0].set_title(f"{name}: xy")
        axes[row, 1].imshow(vol[:, iy, :], extent=(x0, x1, z1, z0), **kw)
        axes[row, 1].set_title(f"{name}: xz")
        axes[row, 2].imshow(vol[:, :, ix], extent=(y0, y1, z1, z0), **kw)
        axes[row, 2].set_title(f"{name}: yz")
        for ax in axes[row]:
            add_scale_bar(ax, voxel_nm)
    for ax in axes.ravel():
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def common_grey_range(slices, disc_fraction=0.45, percentiles=(0.5, 99.5)):
    """One grey range for several slices of a scan, from the grey values inside its disc.

    Parameters
    ----------
    slices : sequence of ndarray (H, W)
        The slices shown on one grey scale (e.g. one slice per time step).
    disc_fraction : float
        Radius of the disc used, as a fraction of the slice's height (the air
        outside the sample is left out).
    percentiles : (float, float)
        Lower and upper percentile of the pooled values.

    Returns
    -------
    (float, float)
        ``(vmin, vmax)``.
    """
    shape = np.shape(slices[0])
    disc = np.hypot(*np.indices(shape) - (shape[0] - 1) / 2) < disc_fraction * shape[0]
    lo, hi = np.percentile(np.stack([np.asarray(s)[disc] for s in slices]), percentiles)
    return float(lo), float(hi)


def plot_insitu_series(series, labels, series_nm, labels_nm):
    """One xy slice of the in situ sample at every time step: the LQ scans over the true labels.

    Parameters
    ----------
    series : sequence of ndarray (Z, Y, X)
        The LQ scans T0, T1, ...
    labels : sequence of ndarray (2Z, 2Y, 2X) of int
        Their true labels on the twice finer grid.
    series_nm, labels_nm : sequence of float
        The voxel size of each scan and of each label volume, nm (from their metadata).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = len(series)
    zs = series[0].shape[0] // 2
    width = series[0].shape[1] * series_nm[0] / 1000
    vmin, vmax = common_grey_range([s[zs] for s in series])
    fig, axes = plt.subplots(2, n, figsize=(5 * n, 10), squeeze=False)
    for k in range(n):
        axes[0, k].imshow(series[k][zs], cmap="gray", vmin=vmin, vmax=vmax, extent=(0, width, width, 0))
        axes[0, k].set_title(f"T{k}: LQ scan")
        axes[1, k].imshow(labels[k][2 * zs], extent=(0, width, width, 0), **phase_image_kw())
        axes[1, k].set_title(f"T{k}: truth")
        add_scale_bar(axes[0, k], series_nm[k])
        add_scale_bar(axes[1, k], labels_nm[k])
    axes[1, n - 1].legend(handles=phase_legend_handles(PHASE_NAMES), loc="lower right", fontsize=8, framealpha=0.8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_real_volume(real):
    """A real CT volume (spam's) through the simulated scans: raw, its phases, after HQ and LQ.

    Parameters
    ----------
    real : dict
        What :func:`indi4d.simulate.acquire_real_volume` returns (``raw``,
        ``labels``, ``hq``, ``lq``, ``voxel_size_nm``, ``disc_radius_vox``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Circle

    k = real["raw"].shape[0] // 2
    voxel_um = real["voxel_size_nm"]["real"] / 1000
    width = real["raw"].shape[1] * voxel_um
    panels = [
        ("spam snow volume (raw)", real["raw"][k], dict(cmap="gray"), "real"),
        ("Otsu phases = truth", real["labels"][k], phase_image_kw(), "real"),
        ("after the HQ scan (50 nm)", real["hq"][2 * k], dict(cmap="gray"), "hq"),
        ("after the LQ scan (100 nm)", real["lq"][k], dict(cmap="gray"), "lq"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.8))
    for ax, (title, img, kw, grid) in zip(axes, panels):
        ax.imshow(img, extent=(0, width, width, 0), **kw)
        add_scale_bar(ax, real["voxel_size_nm"][grid])
        ax.set_title(title)
        ax.set_xlabel("x (µm)")
    # only the cylinder inscribed in the cube is kept (air outside), as for the anode sample;
    # the red line on the raw slice is the boundary of the thresholded ice
    r_um = real["disc_radius_vox"]["real"] * voxel_um
    axes[0].add_patch(Circle((width / 2, width / 2), r_um, fill=False, edgecolor="tab:red", ls="--"))
    centres_um = (np.arange(real["labels"].shape[1]) + 0.5) * voxel_um
    axes[0].contour(centres_um, centres_um, real["labels"][k] == PARTICLE, levels=[0.5], colors="tab:red",
                    linewidths=0.8)
    fig.tight_layout()
    return fig
