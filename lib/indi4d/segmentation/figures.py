"""Figures of chapter 07. Each function returns a matplotlib figure; the chapter saves and shows it."""

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from ..phases import PHASE_NAMES
from ..plotting import PHASE_COLOURS, add_scale_bar
from .settings import DESCRIPTORS

#: The phase colours shared with every figure of labels (:data:`indi4d.plotting.PHASE_COLOURS`).
PHASE_CMAP = ListedColormap(PHASE_COLOURS)
#: Line colours of the methods and of the truth.
METHOD_COLOURS = {"lq": "tab:blue", "indi": "tab:orange", "ideal": "tab:green", "truth": "black"}


def _labels(ax, labels, title, pixel_nm=None):
    ax.imshow(labels, cmap=PHASE_CMAP, vmin=-0.5, vmax=len(PHASE_NAMES) - 0.5, interpolation="nearest")
    add_scale_bar(ax, pixel_nm)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def _legend(fig):
    fig.legend(handles=[Patch(color=c, label=n) for c, n in zip(PHASE_COLOURS, PHASE_NAMES)], loc="lower center",
               ncol=len(PHASE_NAMES), frameon=False, bbox_to_anchor=(0.5, -0.04))


def plot_scribbles(image, mask, truth, title="scribbles", pixel_nm=None):
    """The scribbled slice with its strokes (left) and the true labels of the slice (right).

    Parameters
    ----------
    image : ndarray, (H, W), network scale
    mask : ndarray, uint8, (H, W)
        :func:`indi4d.segmentation.scribble_mask` (0: none, phase + 1).
    truth : ndarray, (H, W), phases
    title : str, optional
    pixel_nm : float, optional
        Pixel size of the slice (the series' ``voxel_nm``): scale bars in µm.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8, 4.2))
    axes[0].imshow(image, cmap="gray", vmin=-1, vmax=1)
    shown = np.ma.masked_equal(mask.astype(int) - 1, -1)
    axes[0].imshow(shown, cmap=PHASE_CMAP, vmin=-0.5, vmax=len(PHASE_NAMES) - 0.5, interpolation="nearest")
    add_scale_bar(axes[0], pixel_nm)
    axes[0].set_title(title, fontsize=9)
    axes[0].axis("off")
    _labels(axes[1], truth, "true labels of the slice", pixel_nm)
    _legend(fig)
    fig.tight_layout()
    return fig


def plot_forest(images, labels, names, truth, pixel_nm=None):
    """Each image's slice (top) and its random-forest labels (bottom), with the truth at the end.

    ``pixel_nm``, the slices' pixel size, gives every panel a scale bar in µm.
    """
    methods = list(images)
    fig, axes = plt.subplots(2, len(methods) + 1, figsize=(3 * (len(methods) + 1), 6.2))
    for j, m in enumerate(methods):
        axes[0, j].imshow(images[m], cmap="gray", vmin=-1, vmax=1)
        add_scale_bar(axes[0, j], pixel_nm)
        axes[0, j].set_title(names[m], fontsize=9)
        axes[0, j].axis("off")
        _labels(axes[1, j], labels[m], f"forest labels, {names[m]}", pixel_nm)
    axes[0, -1].axis("off")
    _labels(axes[1, -1], truth, "truth", pixel_nm)
    _legend(fig)
    fig.tight_layout()
    return fig


def plot_training_curves(histories, names):
    """Training and validation cross-entropy per epoch of each U-Net."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for m, h in histories.items():
        epochs = np.arange(1, len(h.get("loss", [])) + 1)
        ax.plot(epochs, h.get("loss", []), "-o", ms=3, color=METHOD_COLOURS.get(m), label=f"{names[m]} train")
        if h.get("val_loss"):
            ax.plot(epochs, h["val_loss"], "--", color=METHOD_COLOURS.get(m), label=f"{names[m]} validation")
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("cross-entropy")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_segmentations(labels, truth, names, times, valid=None, pixel_nm=None):
    """Rows: time steps; columns: each segmentation, its difference map to the truth, then the truth.

    Parameters
    ----------
    labels : dict
        ``{method: [(H, W) phases per time step]}``.
    truth : list of (H, W) phases
    names : dict
    times : list of str
    valid : ndarray, bool, (H, W), optional
        Difference maps are shown inside it only.
    pixel_nm : float, optional
        Pixel size of the slices: every panel gets a scale bar in µm.
    """
    methods = list(labels)
    ncol = 2 * len(methods) + 1
    fig, axes = plt.subplots(len(times), ncol, figsize=(2.2 * ncol, 2.3 * len(times)), squeeze=False)
    for i, t in enumerate(times):
        for j, m in enumerate(methods):
            _labels(axes[i, 2 * j], labels[m][i], f"{names[m]} {t}", pixel_nm)
            inside = np.ones(truth[i].shape, bool) if valid is None else valid
            wrong = (labels[m][i] != truth[i]) & inside
            axes[i, 2 * j + 1].imshow(wrong, cmap="Reds", vmin=0, vmax=1, interpolation="nearest")
            add_scale_bar(axes[i, 2 * j + 1], pixel_nm, color="black")
            axes[i, 2 * j + 1].set_title(f"wrong: {100 * wrong.sum() / max(inside.sum(), 1):.0f} % of the sample",
                                         fontsize=9)
            axes[i, 2 * j + 1].axis("off")
        _labels(axes[i, -1], truth[i], f"truth {t}", pixel_nm)
    _legend(fig)
    fig.tight_layout()
    return fig


def plot_descriptors(results, keys=None):
    """Descriptors over the time steps: one panel per descriptor, one line per segmentation, the truth in black."""
    keys = keys or list(DESCRIPTORS)
    d = results["descriptors"]
    methods = [m for m in results["methods"] if m in d] + ["truth"]
    names = {**results["methods"], "truth": "truth"}
    ncol = 4
    nrow = int(np.ceil(len(keys) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.3 * ncol, 2.8 * nrow), squeeze=False)
    x = np.arange(len(results["times"]))
    for ax, key in zip(axes.ravel(), keys):
        label, unit, scale = DESCRIPTORS[key]
        for m in methods:
            ax.plot(x, [v[key] * scale for v in d[m]], "-o", ms=4, color=METHOD_COLOURS.get(m),
                    lw=2.5 if m == "truth" else 1.5, label=names[m])
        ax.set_xticks(x, results["times"])
        ax.set_title(f"{label}{f' ({unit})' if unit else ''}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_size_distributions(results, indices=None, bins=12):
    """Equivalent-diameter distributions per time step (columns), one step line per segmentation and the truth."""
    d = results["descriptors"]
    indices = list(range(len(results["times"]))) if indices is None else list(indices)
    methods = [m for m in results["methods"] if m in d] + ["truth"]
    names = {**results["methods"], "truth": "truth"}
    every = np.concatenate([d[m][i]["equivalent_diameter_um"] for m in methods for i in indices] or [[0.0, 1.0]])
    edges = np.linspace(0.0, max(float(np.max(every)) if len(every) else 1.0, 1e-3), bins + 1)
    fig, axes = plt.subplots(1, len(indices), figsize=(3.6 * len(indices), 3.2), squeeze=False, sharey=True)
    for ax, i in zip(axes[0], indices):
        for m in methods:
            ax.hist(d[m][i]["equivalent_diameter_um"], bins=edges, histtype="step", lw=2.5 if m == "truth" else 1.5,
                    color=METHOD_COLOURS.get(m), label=f"{names[m]} ({d[m][i]['particle_count']})")
        ax.set_title(results["times"][i], fontsize=9)
        ax.set_xlabel("equivalent diameter (µm)")
        ax.legend(fontsize=7)
    axes[0, 0].set_ylabel("particles")
    fig.tight_layout()
    return fig


def plot_particle_swelling(masks, voxel_nm, names, times):
    """3D isosurfaces of one particle at every time step (columns) for each source (rows).

    Parameters
    ----------
    masks : dict
        ``{source: [bool (z, y, x) box per time step]}``, one box for every mask.
    voxel_nm : float
    names : dict
        Display names of the sources.
    times : list of str
    """
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage.measure import marching_cubes

    rows = list(masks)
    fig = plt.figure(figsize=(3.2 * len(times), 3.1 * len(rows)))
    um = float(voxel_nm) / 1000.0
    extent = max(s for m in rows for box in masks[m] for s in box.shape) * um
    for r, src in enumerate(rows):
        for c, box in enumerate(masks[src]):
            ax = fig.add_subplot(len(rows), len(times), r * len(times) + c + 1, projection="3d")
            vol = np.pad(np.asarray(box, np.float32), 1)
            if vol.max() > 0.5:
                verts, faces, _, _ = marching_cubes(vol, 0.5, spacing=(um, um, um))
                mesh = Poly3DCollection(verts[faces], alpha=0.9, linewidths=0)
                mesh.set_facecolor(METHOD_COLOURS.get(src, "tab:gray"))
                ax.add_collection3d(mesh)
                v_um3 = float(np.count_nonzero(box)) * um**3
                ax.set_title(f"{names.get(src, src)} {times[c]}\n{v_um3:.3f} µm³", fontsize=8)
            else:
                ax.set_title(f"{names.get(src, src)} {times[c]}\n(not found)", fontsize=8)
            for setter in (ax.set_xlim, ax.set_ylim, ax.set_zlim):
                setter(0, extent)
            ax.set_box_aspect((1, 1, 1))
            ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig
