"""Figures of chapter 04: InDI's training path, the loss curves, the restored validation slices.

Each ``plot_*`` function returns a matplotlib figure; the chapter saves and
shows it. Image panels carry a µm scale bar whose pixel size is the pairs'
(:func:`indi4d.core.pairs.pixel_size_nm`); every slice is drawn in [-1, 1].
"""

import numpy as np

from ..plotting import add_scale_bar

#: Line colours of the bicubic LQ input, InDI and HQ.
COLOURS = {"bicubic LQ": "tab:blue", "InDI": "tab:orange", "HQ": "tab:green"}


def central_zoom(shape):
    """The central quarter of a slice (half of each side), as slices.

    Parameters
    ----------
    shape : (int, int)
        The slice's (H, W).

    Returns
    -------
    (slice, slice)
    """
    h, w = shape
    return slice(h // 4, h // 4 + h // 2), slice(w // 4, w // 4 + w // 2)


def plot_t_sampling(lq_batch, hq_batch, t_draws, eps, p_one, pixel_nm, path=(0.0, 0.25, 0.5, 0.75, 1.0)):
    """One crop along InDI's path from HQ (t = 0) to LQ (t = 1), and the times drawn in training.

    Parameters
    ----------
    lq_batch, hq_batch : array (B, crop, crop, C)
        A training batch (:func:`indi4d.core.pipeline.training_dataset`); its first crop is shown.
    t_draws : ndarray (K,)
        Times drawn as in training (:func:`indi4d.core.indi.sample_t`).
    eps : float
        InDI's noise scale of the path (:func:`indi4d.core.indi.degrade`, drawn noise-free here).
    p_one : float
        The share of times set to 1 (named in the title).
    pixel_nm : float or None
        The pairs' pixel size, nm.
    path : sequence of float
        The times shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from ..core.indi import degrade

    fig, axes = plt.subplots(1, len(path) + 1, figsize=(15, 3.2),
                             gridspec_kw={"width_ratios": [1] * len(path) + [1.6]})
    for ax, t in zip(axes, path):
        x_t = degrade(hq_batch[:1], lq_batch[:1], np.array([t], np.float32), eps=eps,
                      noise=np.zeros_like(hq_batch[:1]))
        ax.imshow(np.asarray(x_t)[0, :, :, 0], cmap="gray", vmin=-1, vmax=1)
        add_scale_bar(ax, pixel_nm)
        ax.set_title(f"$x_t$, t = {t:g}" + (" (HQ)" if t == 0 else " (LQ)" if t == 1 else ""))
        ax.axis("off")
    axes[-1].hist(t_draws, bins=50, range=(0, 1), color="tab:blue")
    axes[-1].set_xlabel("t")
    axes[-1].set_title(f"training times: U(0,1] + {p_one:.0%} at t = 1")
    fig.tight_layout()
    return fig


def plot_loss_curves(history, training):
    """Training and validation loss per epoch, and the one-cycle schedule with where the run ended.

    Parameters
    ----------
    history : dict
        The model folder's ``history.json`` (``loss``, ``val_loss``, ``steps``).
    training : dict
        ``config.json["training"]`` (``epochs``, ``steps_per_epoch``, ``max_lr``, ``pct_start``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .schedule import one_cycle_cosine

    epochs = np.arange(1, len(history["loss"]) + 1)
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    axes[0].plot(epochs, history["loss"], "o-", label="training (mean over the epoch's batches)")
    axes[0].plot(epochs, history["val_loss"], "s-", label="validation (fixed crops, times, noise)")
    axes[0].set_xlabel("epoch")
    axes[0].set_ylabel("berHu loss")
    axes[0].set_yscale("log")
    axes[0].legend()
    axes[0].set_title("loss")
    total = training["epochs"] * training["steps_per_epoch"]
    schedule = one_cycle_cosine(training["max_lr"], total, training["pct_start"])
    steps = np.arange(total + 1)
    axes[1].plot(steps, [float(schedule(s)) for s in steps])
    axes[1].axvline(history["steps"][-1] if history["steps"] else 0, color="k", ls="--", label="where this run is")
    axes[1].set_xlabel("optimiser step")
    axes[1].set_ylabel("learning rate")
    axes[1].set_title("one-cycle schedule (cosine warm-up and decay)")
    axes[1].legend()
    fig.tight_layout()
    return fig


def plot_validation_slices(lq, restored, hq, k, pixel_nm, show=(1, 4, 10, 20)):
    """One validation slice: bicubic LQ, InDI with increasing N, HQ; below, the central quarter enlarged.

    Parameters
    ----------
    lq, hq : ndarray (n, H, W)
        The validation slices, in [-1, 1].
    restored : dict of int -> ndarray (n, H, W)
        InDI's restorations per N (:func:`indi4d.evaluation.restore_validation`).
    k : int
        The slice shown.
    pixel_nm : float or None
        The pairs' pixel size, nm.
    show : sequence of int
        The N shown (keys of ``restored``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    h, w = lq.shape[1:]
    zoom = central_zoom((h, w))
    panels = [("bicubic LQ", lq[k])] + [(f"InDI, N = {n}", restored[n][k]) for n in show] + [("HQ", hq[k])]
    fig, axes = plt.subplots(2, len(panels), figsize=(2.6 * len(panels), 5.4))
    for j, (title, img) in enumerate(panels):
        axes[0, j].imshow(img, cmap="gray", vmin=-1, vmax=1)
        axes[0, j].set_title(title)
        axes[1, j].imshow(img[zoom], cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        for ax in axes[:, j]:
            add_scale_bar(ax, pixel_nm)  # every column lies on the HQ grid of the pairs
            ax.axis("off")
    axes[0, 0].add_patch(plt.Rectangle((zoom[1].start, zoom[0].start), w // 2, h // 2, fill=False, ec="yellow"))
    fig.suptitle("a validation slice (bottom: the central quarter, enlarged)")
    fig.tight_layout()
    return fig


def plot_sampler_path(trajectory, shape, pixel_nm, show=(0, 3, 6, 9, 10)):
    """The iterates of InDI's sampler on the central quarter of a slice, from t = 1 to t = 0.

    Parameters
    ----------
    trajectory : list of ndarray (H', W')
        The iterates (:func:`indi4d.core.indi.indi_sample` with ``return_trajectory=True``)
        of a padded slice; iterate ``i`` of ``N`` is at t = 1 - i / N.
    shape : (int, int)
        The slice's (H, W) before padding.
    pixel_nm : float or None
        The pairs' pixel size, nm.
    show : sequence of int
        The iterates shown.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    h, w = shape
    zoom = central_zoom(shape)
    n = len(trajectory) - 1
    fig, axes = plt.subplots(1, len(show), figsize=(3 * len(show), 3.2))
    for ax, i in zip(axes, show):
        ax.imshow(np.asarray(trajectory[i])[:h, :w][zoom], cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        add_scale_bar(ax, pixel_nm)
        ax.set_title(f"$x_{{t}}$, t = {1 - i / n:.1f}")
        ax.axis("off")
    fig.tight_layout()
    return fig


def plot_sharpness_vs_steps(results, steps):
    """Edge FWHM, edge overshoot and PSNR against HQ of the restorations per N, LQ and HQ dashed.

    Parameters
    ----------
    results : dict
        :func:`indi4d.evaluation.validation_results` (``"bicubic LQ"``, ``"HQ"``, ``"InDI N=<n>"``).
    steps : sequence of int
        The N on the x axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    indi = [results[f"InDI N={n}"] for n in steps]
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    ax = axes[0]
    ax.errorbar(steps, [r["fwhm_nm"] for r in indi], yerr=[r["fwhm_nm_std"] for r in indi], fmt="o-",
                color=COLOURS["InDI"], label="InDI")
    for name in ("bicubic LQ", "HQ"):
        ax.axhline(results[name]["fwhm_nm"], color=COLOURS[name], ls="--", label=name)
    ax.set_ylabel("edge FWHM (nm)")
    ax.set_title("resolution (lower is sharper)")
    ax.legend()
    ax = axes[1]
    ax.plot(steps, [r["edge_overshoot"] for r in indi], "o-", color=COLOURS["InDI"])
    for name in ("bicubic LQ", "HQ"):
        ax.axhline(results[name]["edge_overshoot"], color=COLOURS[name], ls="--")
    ax.set_ylabel("overshoot (fraction of the step)")
    ax.set_title("edge overshoot (ringing)")
    ax = axes[2]
    ax.plot(steps, [r["psnr_db"] for r in indi], "o-", color=COLOURS["InDI"])
    ax.axhline(results["bicubic LQ"]["psnr_db"], color=COLOURS["bicubic LQ"], ls="--")
    ax.set_ylabel("PSNR vs HQ (dB)")
    ax.set_title("fidelity to HQ")
    for ax in axes:
        ax.set_xlabel("InDI steps N")
    fig.tight_layout()
    return fig


def plot_edge_profiles(mean_edges):
    """The mean grey-value profile across particle edges and its derivative, whose FWHM is the edge width.

    Parameters
    ----------
    mean_edges : dict of str -> dict
        Per image name, :func:`indi4d.metrics.fwhm_edge_resolution`'s result (``s_nm``,
        ``mean_edge``, ``mean_derivative``, ``fwhm_nm``); names starting with a key of
        :data:`COLOURS` take its colour.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, r in mean_edges.items():
        colour = next((c for key, c in COLOURS.items() if name.startswith(key)), None)
        axes[0].plot(r["s_nm"], r["mean_edge"], color=colour, label=name)
        axes[1].plot(r["s_nm"], r["mean_derivative"], color=colour, label=f"{name}: FWHM {r['fwhm_nm']:.0f} nm")
    axes[0].set_xlabel("distance from the particle boundary (nm; inside < 0)")
    axes[0].set_ylabel("normalised grey value")
    axes[0].set_title("mean edge profile")
    axes[1].set_xlabel("distance from the particle boundary (nm)")
    axes[1].set_ylabel("−d(edge)/ds (1/nm)")
    axes[1].set_title("its derivative")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
