"""The evaluation's figures: comparison with zoom, training curves, step sweep, uncertainty, hallucination."""

import math

import numpy as np

from ..plotting import add_scale_bar
from .scores import value
from .settings import METHODS


def pick_roi(labels, mask, size):
    """The ``size x size`` window inside the mask with the most phase boundaries.

    Parameters
    ----------
    labels : ndarray (H, W) int
        True phase labels of one slice (or any segmentation).
    mask : ndarray (H, W) bool
    size : int

    Returns
    -------
    (y0, x0, size) : tuple of int
        The top-left corner; ties go to the first in raster order.
    """
    labels = np.asarray(labels)
    mask = np.asarray(mask, bool)
    h, w = labels.shape
    size = int(min(size, h, w))
    edges = np.zeros((h, w), np.float64)
    edges[:-1] += labels[:-1] != labels[1:]
    edges[:, :-1] += labels[:, :-1] != labels[:, 1:]

    def window_sums(a):
        # summed-area table: sum over [y, y+size) x [x, x+size) = S[y+s,x+s] - S[y,x+s] - S[y+s,x] + S[y,x]
        s = np.zeros((h + 1, w + 1))
        s[1:, 1:] = a.cumsum(0).cumsum(1)
        return s[size:, size:] - s[:-size, size:] - s[size:, :-size] + s[:-size, :-size]

    inside = window_sums(mask.astype(np.float64)) >= size * size - 0.5
    counts = np.where(inside, window_sums(edges), -1.0)
    if counts.max() < 0:  # no window wholly inside the mask: fall back to the central window
        return (h - size) // 2, (w - size) // 2, size
    y0, x0 = np.unravel_index(int(np.argmax(counts)), counts.shape)
    return int(y0), int(x0), size


def _window(image, mask):
    lo, hi = np.percentile(np.asarray(image)[np.broadcast_to(mask, np.shape(image))], (1, 99))
    return float(lo), float(hi) if hi > lo else float(lo) + 1.0


def plot_comparison(images, mask, roi, titles=None, pixel_nm=None, per_row=None):
    """Slices of several methods in two rows, each slice with its zoomed region of interest below it.

    Eight images make two rows of four, nine (the eight methods and the truth)
    a row of five over a row of four, each a row of slices over a row of
    zooms; panels of 1.75 in and titles wrapped at 18 characters keep the
    text legible when the figure is shrunk to the width of a book's page.

    Parameters
    ----------
    images : dict
        name -> (H, W) image (any grey units: each is shown on its own 1–99 %
        window inside the mask).
    mask : ndarray (H, W) bool
    roi : (y0, x0, size)
    titles : dict, optional
    pixel_nm : float, optional
        Pixel size of the images (the test set's ``pixel_size_nm``): every
        panel gets a scale bar in µm. None: no bars.
    per_row : int, optional
        Images per row; default half of them, rounded up (all of them when at most four).

    Returns
    -------
    matplotlib.figure.Figure
        Its axes in reading order: the slices of a row, then their zooms, row after row.
    """
    import textwrap

    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = len(images)
    cols = min(n, per_row or (n if n <= 4 else -(-n // 2)))
    rows = -(-n // cols)
    # a slice row is taller than its zoom row by the room of its (two-line) titles
    fig, axes = plt.subplots(2 * rows, cols, figsize=(1.75 * cols, 3.75 * rows), squeeze=False,
                             gridspec_kw={"height_ratios": [1.18, 1] * rows})
    y0, x0, s = roi
    for j, (key, img) in enumerate(images.items()):
        row, col = divmod(j, cols)
        full, zoom = axes[2 * row, col], axes[2 * row + 1, col]
        lo, hi = _window(img, mask)
        full.imshow(np.where(mask, img, lo), cmap="gray", vmin=lo, vmax=hi)
        full.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), s, s, fill=False, ec="tab:red", lw=1.2))
        full.set_title(textwrap.fill((titles or {}).get(key, key), 18), fontsize=10)
        zoom.imshow(img[y0:y0 + s, x0:x0 + s], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        for ax in (full, zoom):
            add_scale_bar(ax, pixel_nm, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        for side in zoom.spines.values():
            side.set_edgecolor("tab:red")
            side.set_linewidth(1.5)
    for j in range(n, rows * cols):  # an unfilled last row: no empty frames
        row, col = divmod(j, cols)
        fig.delaxes(axes[2 * row, col])
        fig.delaxes(axes[2 * row + 1, col])
    for row in range(rows):
        axes[2 * row + 1, 0].set_ylabel("zoom", fontsize=10)
    fig.tight_layout()
    return fig


def plot_training_curves(histories):
    """Loss curves of the learned models, one panel each, against the optimiser step.

    Parameters
    ----------
    histories : dict
        name -> ``history.json`` content (``steps``, ``loss``, ``val_loss``, and
        for the GAN ``g_l1``, ``g_adv``, ``d_loss``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(histories), figsize=(4.4 * len(histories), 3.4), squeeze=False)
    for ax, (name, h) in zip(axes[0], histories.items()):
        steps = h.get("steps") or list(range(1, len(h.get("loss", [])) + 1))
        minutes = sum(h.get("seconds", [])) / 60.0
        if "g_l1" in h:
            ax.plot(steps, h["g_l1"], "o-", label="generator L1 (train)")
            ax.plot(steps, h["val_loss"], "s--", label="L1 (validation)")
            ax.set_ylabel("L1")
            ax2 = ax.twinx()
            ax2.plot(steps, h["d_loss"], "^-", color="tab:red", alpha=0.7, label="discriminator")
            ax2.plot(steps, h["g_adv"], "v-", color="tab:purple", alpha=0.7, label="generator adversarial")
            ax2.set_ylabel("cross-entropy")
            lines = ax.get_legend_handles_labels()
            lines2 = ax2.get_legend_handles_labels()
            ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=7)
        else:
            ax.plot(steps, h["loss"], "o-", label="train")
            ax.plot(steps, h["val_loss"], "s--", label="validation")
            ax.set_ylabel("loss")
            ax.legend(fontsize=8)
        ax.set_xlabel("optimiser step")
        ax.set_title(f"{name} ({minutes:.1f} min)", fontsize=10)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def plot_sweep(rows, choice=None, references=None):
    """Distortion and sharpness of InDI against the number of steps N.

    Parameters
    ----------
    rows : list of dict
        :func:`step_sweep`.
    choice : dict, optional
        :func:`select_steps` (marks the chosen N and the FWHM limit).
    references : dict, optional
        name -> {metric: value} drawn as horizontal lines (e.g. bicubic, HQ, CNN).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    n = [r["steps"] for r in rows]
    get = lambda k: np.array([np.nan if r.get(k) is None else r[k] for r in rows], float)  # noqa: E731
    ref_word = rows[0]["reference"] if rows else "truth"
    panels = [("psnr", f"PSNR vs {ref_word} (dB)"), ("ssim", f"SSIM vs {ref_word}"), ("fwhm_nm", "edge FWHM (nm)"),
              ("sift_congruent_points", f"SIFT congruent points vs {ref_word}")]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    styles = ["--", ":", "-."]
    colours = ["tab:blue", "tab:green", "tab:red", "tab:purple"]  # orange is InDI's
    for ax, (key, label) in zip(axes, panels):
        y = get(key)
        if key == "fwhm_nm":
            y[y <= 0] = np.nan  # no measurement
        err = get(f"{key}_std") if key in ("psnr", "ssim", "fwhm_nm") else None
        ax.errorbar(n, y, yerr=err, fmt="o-", color="tab:orange", capsize=3, label="InDI")
        for k, (name, vals) in enumerate((references or {}).items()):
            ref = vals.get(key)
            if ref is not None and math.isfinite(ref) and not (key == "fwhm_nm" and ref <= 0):
                ax.axhline(ref, ls=styles[k % 3], color=colours[k % 4], lw=1, label=name)
        if choice is not None:
            ax.axvline(choice["steps"], color="k", lw=0.8, alpha=0.6)
            if key == "fwhm_nm":
                ax.axhline(choice["fwhm_limit_nm"], color="k", lw=0.6, ls=":", label="FWHM limit of the rule")
        ax.set_xscale("log")
        ax.set_xticks(n)
        ax.set_xticklabels([str(v) for v in n])
        ax.set_xlabel("InDI steps N")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    legend = {}
    for ax in axes:  # one legend for all panels, each label once
        for handle, label in zip(*ax.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if choice is not None:
        fig.suptitle(f"chosen N = {choice['steps']} (vertical line)", fontsize=10)
    fig.tight_layout()
    fig.legend(legend.values(), legend.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=len(legend),
               fontsize=8, frameon=False)
    return fig


def plot_uncertainty(unc, mask, index=0, pixel_nm=None):
    """Stochastic-sample spread next to the true error on one slice, and their joint ranks.

    Parameters
    ----------
    unc : dict
        :func:`uncertainty`.
    mask : ndarray (H, W) bool
    index : int
        Which test slice to show.
    pixel_nm : float, optional
        Pixel size of the test slices: the three maps get a scale bar in µm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt
    from scipy.stats import rankdata

    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    mean, std, err = unc["mean"][index], unc["std"][index], unc["error"][index]
    lo, hi = _window(mean, mask)
    axes[0].imshow(np.where(mask, mean, lo), cmap="gray", vmin=lo, vmax=hi)
    axes[0].set_title(f"mean of {unc['samples']} samples (N = {unc['steps']})", fontsize=9)
    for ax, img, title in ((axes[1], std, "spread (std), 1/µm"), (axes[2], err, "|error| vs truth, 1/µm")):
        # each map on its own scale: only the ranking is compared
        vmax = float(np.percentile(img[mask], 99)) or 1.0
        im = ax.imshow(np.where(mask, img, 0), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax, fraction=0.046)
    for ax in axes[:3]:
        add_scale_bar(ax, pixel_nm)
        ax.set_xticks([])
        ax.set_yticks([])
    m = np.broadcast_to(mask, unc["std"].shape)
    rs, re = rankdata(unc["std"][m]) / m.sum(), rankdata(unc["error"][m]) / m.sum()
    axes[3].hist2d(rs, re, bins=40, cmap="viridis")
    axes[3].set_xlabel("rank of spread (fraction)")
    axes[3].set_ylabel("rank of error (fraction)")
    axes[3].set_title(f"Spearman ρ = {unc['spearman']:.2f} (all test slices)", fontsize=9)
    fig.tight_layout()
    return fig


def plot_hallucination(scores, steps=None):
    """Bar charts of false and missed particles, false-edge fraction and flat-region error per method.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    methods = [m for m in METHODS if m in scores and scores[m].get("vs_truth") is not None]
    labels = [f"InDI N={steps}" if m == "indi" and steps else METHODS[m] for m in methods]
    panels = [("false_particles_per_mm2", "false particles / mm²", 1.0),
              ("missed_particles_per_mm2", "missed particles / mm²", 1.0),
              ("false_edge_fraction", "false edges in flat regions (%)", 100.0),
              ("flat_region_error", "grey spread in flat regions (contrast units)", 1.0)]
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.4))
    for ax, (key, title, scale) in zip(axes, panels):
        vals = [np.nan if value(scores, m, key) is None else scale * value(scores, m, key) for m in methods]
        ax.bar(range(len(methods)), vals, color=[f"C{i}" for i in range(len(methods))])
        ax.set_xticks(range(len(methods)))
        ax.set_xticklabels(labels, rotation=30, ha="right", fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def sweep_references(scores):
    """Bicubic, HQ, CNN and (when present) ideal-HQ numbers to draw beside the sweep (:func:`plot_sweep`)."""
    references = {}
    for m in ("bicubic", "hq", "cnn", "hq_ideal"):
        if m not in scores:
            continue
        ref = scores[m]["vs_truth"] or scores[m]["vs_hq"]
        if ref is not None:
            references[METHODS[m]] = ref
    return references


def comparison_panels(preds, test, steps, index, roi_fraction):
    """What :func:`plot_comparison` shows for test slice ``index``: images, titles and the zoomed region.

    The region is the window with the most true phase boundaries (of the HQ
    slice's bright phase when there is no truth), ``roi_fraction`` of the
    slice's shorter side (at least 8 pixels).

    Returns
    -------
    images : dict
        name -> (H, W) image: every method, and the true attenuation when known.
    titles : dict
    roi : (y0, x0, size)
    """
    h, w = test["lq"].shape[1:]
    labels = test["truth_labels"][index] if test["truth_labels"] is not None else test["hq"][index] > 0
    roi = pick_roi(labels, test["mask"], max(8, int(roi_fraction * min(h, w))))
    images = {m: preds[m][index] for m in METHODS if m in preds}
    titles = dict(METHODS, indi=f"InDI (N = {steps})")
    if test["truth_mu"] is not None:
        images["truth"] = test["truth_mu"][index]
        titles["truth"] = "truth (attenuation)"
    return images, titles, roi


def training_histories(run_dir):
    """``history.json`` of InDI (chapter 04) and the two baselines, for :func:`plot_training_curves`.

    Returns
    -------
    dict
        ``"InDI"``, ``"CNN"``, ``"GAN"`` -> history (only those that exist).
    """
    from .. import runs
    from ..model_folder import read_history

    base = runs.stage_dir(run_dir, "baselines")
    folders = {"InDI": runs.stage_dir(run_dir, "model"), "CNN": base / runs.file_name("baselines", "cnn"),
               "GAN": base / runs.file_name("baselines", "gan")}
    return {name: h for name, h in ((name, read_history(folder)) for name, folder in folders.items()) if h}
