"""Figures of chapter 02: the scans before registration, the pair before and after Φ, the pairs.

Each ``plot_*`` function returns a matplotlib figure; the chapter saves and
shows it. Image panels carry a µm scale bar whose pixel size comes from the
volumes' metadata or the pairs' provenance.
"""

import numpy as np

from ..core.preprocess import normalise
from ..plotting import add_scale_bar
from .spam_driver import prepare_for_registration

#: Colours of the three splits in the figures.
SPLIT_COLOURS = {"train": "C0", "val": "C2", "test": "C3"}


def _no_ticks(ax):
    ax.set_xticks([])
    ax.set_yticks([])


def checkerboard(a, b, n=8):
    """Alternate ``n`` x ``n`` squares of two images of one shape.

    Parameters
    ----------
    a, b : ndarray (H, W)
        The two images.
    n : int
        Squares along each axis.

    Returns
    -------
    ndarray (H, W)
        ``a`` on the squares whose row + column index is even (the top-left one), ``b`` elsewhere.
    """
    yy, xx = np.indices(a.shape)
    tiles = ((yy * n // a.shape[0]) + (xx * n // a.shape[1])) % 2 == 0
    return np.where(tiles, a, b)


def comparison_blur(phi):
    """The Gaussian sigma (HQ voxels) that brings HQ to the LQ resolution, as spam compared them.

    Parameters
    ----------
    phi : dict
        The registration report (``phi.json``: ``parameters.blur_sigma`` and ``hq_blur_sigma``).

    Returns
    -------
    float
        ``hypot(blur_sigma, hq_blur_sigma)``: both blurs applied one after the other.
    """
    return float(np.hypot(phi["parameters"]["blur_sigma"], phi["hq_blur_sigma"]))


def plot_scans(lq, lq_up, hq, start, stop, lq_nm, hq_nm):
    """An LQ slice with the HQ footprint, the LQ crop, that crop upscaled x2, and the HQ slice.

    Parameters
    ----------
    lq : ndarray (Z, Y, X)
        The LQ scan.
    lq_up : ndarray (Z', Y', X')
        Its HQ region upscaled onto the HQ grid (Φ = identity).
    hq : ndarray (Z', Y', X')
        The HQ scan.
    start, stop : array of int (3,)
        The HQ region in LQ voxels (half-open).
    lq_nm, hq_nm : float or None
        Voxel sizes of the scans, nm (the upscaled crop is on HQ's grid).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    zc = hq.shape[0] // 2  # middle HQ slice
    z_lq = start[0] + zc // 2  # the LQ slice holding it
    fig, axes = plt.subplots(1, 4, figsize=(15, 4))
    axes[0].imshow(lq[z_lq], cmap="gray")
    axes[0].add_patch(plt.Rectangle((start[2] - 0.5, start[1] - 0.5), stop[2] - start[2], stop[1] - start[1],
                                    fill=False, edgecolor="red", lw=1.5))
    axes[0].set_title(f"LQ slice z={z_lq} (100 nm voxels)")
    axes[1].imshow(lq[z_lq, start[1]:stop[1], start[2]:stop[2]], cmap="gray")
    axes[1].set_title("LQ crop")
    axes[2].imshow(lq_up[zc], cmap="gray")
    axes[2].set_title("LQ crop, upscaled x2 (cubic)")
    axes[3].imshow(hq[zc], cmap="gray")
    axes[3].set_title(f"HQ slice z={zc} (50 nm voxels)")
    for ax, voxel_nm in zip(axes, (lq_nm, lq_nm, hq_nm, hq_nm)):
        add_scale_bar(ax, voxel_nm)
        _no_ticks(ax)
    fig.tight_layout()
    return fig


def plot_before_after(lq_up, lq_reg, hq, mask, blur, hq_nm):
    """The pair as spam compares it, before and after Φ: checkerboard and differences (xy, xz).

    Both scans are blurred by ``blur`` (so that noise does not hide the edges
    in the difference), as :func:`~indi4d.registration.spam_driver.prepare_for_registration`
    prepares them for spam.

    Parameters
    ----------
    lq_up, lq_reg : ndarray (Z, Y, X)
        The LQ crop on the HQ grid before (Φ = identity) and after the recovered Φ.
    hq : ndarray (Z, Y, X)
        The HQ scan.
    mask : ndarray of bool (Y, X)
        The reconstruction disc.
    blur : float
        Gaussian sigma, HQ voxels (:func:`comparison_blur`).
    hq_nm : float or None
        HQ voxel size, nm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    hq_s = prepare_for_registration(hq, mask, blur)
    views = {"before": prepare_for_registration(lq_up, mask, blur),
             "after": prepare_for_registration(lq_reg, mask, blur)}
    zc, yc = hq.shape[0] // 2, hq.shape[1] // 2
    lo, hi = np.percentile(hq_s[:, mask], [1, 99])
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5))
    for row, (name, lq_s) in enumerate(views.items()):
        diff = np.where(mask, lq_s[zc] - hq_s[zc], 0.0)
        rms = np.sqrt(np.mean(diff[mask] ** 2))
        axes[row, 0].imshow(np.where(mask, checkerboard(lq_s[zc], hq_s[zc]), lo), cmap="gray", vmin=lo, vmax=hi)
        axes[row, 0].set_title(f"{name}: checkerboard LQ / HQ (xy)")
        axes[row, 1].imshow(diff, cmap="RdBu_r", vmin=-1, vmax=1)
        axes[row, 1].set_title(f"{name}: LQ - HQ (xy), RMS {rms:.3f}")
        diff_xz = np.where(mask[yc][None, :], lq_s[:, yc] - hq_s[:, yc], 0.0)  # the disc's chord along x
        axes[row, 2].imshow(diff_xz, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        axes[row, 2].set_title(f"{name}: LQ - HQ (xz)")
    for (_, col), ax in np.ndenumerate(axes):
        add_scale_bar(ax, hq_nm, color="white" if col == 0 else "black")  # a dark bar on the difference maps
        _no_ticks(ax)
    fig.tight_layout()
    return fig


def plot_histograms(hq, lq_reg, mask, radius_px, normalisation, hq_nm):
    """The HQ slice with the mask, and the grey values of HQ and registered LQ before and after scaling.

    Parameters
    ----------
    hq, lq_reg : ndarray (Z, Y, X)
        The HQ scan and the registered LQ scan on its grid.
    mask : ndarray of bool (Y, X)
        The reconstruction disc.
    radius_px : float
        Its radius, HQ pixels (``pairs.json``: ``mask.radius_px``), named in the title.
    normalisation : dict
        ``{"lq": params, "hq": params}`` of the pairs (:func:`indi4d.core.preprocess.normalise`).
    hq_nm : float or None
        HQ voxel size, nm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    zc = hq.shape[0] // 2
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    axes[0].imshow(hq[zc], cmap="gray")
    axes[0].contour(mask, levels=[0.5], colors="yellow", linewidths=1)
    axes[0].set_title(f"HQ slice and the mask (radius {radius_px:.1f} px)")
    add_scale_bar(axes[0], hq_nm)
    _no_ticks(axes[0])
    inside = np.broadcast_to(mask, hq.shape)
    for name, vol, which, colour in (("HQ", hq, "hq", "C1"), ("LQ (registered)", lq_reg, "lq", "C0")):
        axes[1].hist(vol[inside], bins=200, histtype="step", color=colour, label=name, density=True)
        axes[2].hist(normalise(vol[inside], normalisation[which]), bins=100, histtype="step", color=colour,
                     label=name, density=True)
    axes[1].set_title("grey values inside the mask")
    axes[1].set_xlabel("grey value (uint16)")
    axes[2].set_title("after scaling to [-1, 1]")
    axes[2].set_xlabel("normalised value")
    for ax in axes[1:]:
        ax.legend()
        ax.set_ylabel("density")
    fig.tight_layout()
    return fig


def plot_split(z, split, n_slices):
    """Which HQ slices serve for training, validation and test (white: guard slices, unused).

    Parameters
    ----------
    z : ndarray of int (S,)
        The pairs' slice indices in the HQ volume.
    split : ndarray of str (S,)
        Their split, ``"train"``, ``"val"`` or ``"test"``.
    n_slices : int
        Slices of the HQ volume.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(12, 1.3))
    for zi, s in zip(z, split):
        ax.axvspan(zi - 0.5, zi + 0.5, color=SPLIT_COLOURS[s], lw=0)
    ax.set_xlim(-0.5, n_slices - 0.5)
    ax.set_yticks([])
    ax.set_xlabel("HQ slice z")
    ax.legend(handles=[plt.Rectangle((0, 0), 1, 1, color=c, label=s) for s, c in SPLIT_COLOURS.items()],
              loc="upper center", bbox_to_anchor=(0.5, -0.6), ncol=3)
    ax.set_title("split of the slices (white: guard slices, unused)")
    return fig


def plot_pairs(pairs_dir, pixel_nm):
    """One pair from the middle of each split: registered LQ (top) and HQ (bottom), in [-1, 1].

    Parameters
    ----------
    pairs_dir : str or Path
        A pairs folder.
    pixel_nm : float or None
        The pairs' pixel size, nm (:func:`indi4d.core.pairs.pixel_size_nm`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from ..core.pairs import load_pairs, load_pairs_info

    info = load_pairs_info(pairs_dir)
    fig, axes = plt.subplots(2, 3, figsize=(12, 8))
    for col, split in enumerate(("train", "val", "test")):
        lq_s, hq_s = load_pairs(pairs_dir, split)
        k = len(lq_s) // 2
        z = info["z"][info["split"] == split][k]
        axes[0, col].imshow(lq_s[k], cmap="gray", vmin=-1, vmax=1)
        axes[0, col].set_title(f"{split} z={z}: LQ (registered, x2)")
        axes[1, col].imshow(hq_s[k], cmap="gray", vmin=-1, vmax=1)
        axes[1, col].set_title(f"{split} z={z}: HQ")
    for ax in axes.ravel():
        add_scale_bar(ax, pixel_nm)
        _no_ticks(ax)
    fig.tight_layout()
    return fig


def plot_batch(lq_batch, hq_batch, pixel_nm, n=4):
    """The first crops of a training batch: LQ (top) and HQ (bottom), in [-1, 1].

    Parameters
    ----------
    lq_batch, hq_batch : array (B, crop, crop, C)
        A batch of :func:`indi4d.core.pipeline.training_dataset` (channel 0 is shown).
    pixel_nm : float or None
        The pairs' pixel size, nm.
    n : int
        Crops shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, n, figsize=(3 * n, 6))
    for i in range(n):
        axes[0, i].imshow(np.asarray(lq_batch[i, ..., 0]), cmap="gray", vmin=-1, vmax=1)
        axes[1, i].imshow(np.asarray(hq_batch[i, ..., 0]), cmap="gray", vmin=-1, vmax=1)
        axes[0, i].set_title(f"LQ crop {i}")
        axes[1, i].set_title(f"HQ crop {i}")
    for ax in axes.ravel():
        add_scale_bar(ax, pixel_nm)
        _no_ticks(ax)
    fig.tight_layout()
    return fig
