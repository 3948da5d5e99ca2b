"""Figures of the limits study: quality along each axis, and the perception-distortion plane."""

import numpy as np

from .points import AXES, BASE, NETWORKS, ORACLES

#: How each reference row is drawn (label, colour, line style).
REFERENCE_STYLE = {"bicubic": ("bicubic LQ", "0.55", ":"), "hq": ("HQ scan", "tab:green", "--"),
                   "hq_ideal": ("ideal HQ (ceiling of HQ targets)", "tab:purple", "-.")}
#: The outputs of each point drawn on the curves.
SERIES = {"indi_n1": ("InDI, N = 1", "tab:blue", "o"), "indi_rule": ("InDI, rule's N", "tab:orange", "s"),
          "cnn": ("CNN, same budget", "tab:red", "^")}
#: Axis titles and how their values are written.
AXIS_TITLES = {"steps": "optimiser steps", "network": "network", "data_fraction": "fraction of the training slices",
               "target": "training target"}
TARGET_SHORT = {"hq": "HQ", "halves": "halves", "halves_deconv": "halves\ndeconv.", "oracle_ideal": "oracle:\nideal HQ",
                "oracle_truth": "oracle:\ntruth"}


def points_on_axis(results, axis):
    """The scored points of ``results`` lying on ``axis``, in the axis's stated order."""
    order = list(AXES[axis])
    on = [p for p in results["points"] if axis in p["axes"]]
    return sorted(on, key=lambda p: order.index(p["recipe"][axis]))


def _tick(axis, value, card):
    if axis == "network":
        return f"{value}\n{card['n_params'] / 1e3:.0f} k params" if card.get("n_params") else str(value)
    if axis == "target":
        return TARGET_SHORT.get(value, str(value))
    return f"{value:g}"


def _references(ax, results, metric):
    for key, (label, colour, style) in REFERENCE_STYLE.items():
        ref = (results.get("references") or {}).get(key)
        if ref and ref.get(metric) is not None:
            ax.axhline(ref[metric], color=colour, ls=style, lw=1.2, label=label)


def plot_axes(results, metrics=(("psnr", "PSNR vs truth (dB)"), ("fwhm_nm", "edge FWHM (nm)"))):
    """Quality against each resource: one column per axis, one row per metric.

    Parameters
    ----------
    results : dict
        ``limits.json`` (:func:`indi4d.limits.run_study`).
    metrics : sequence of (key, label)

    Returns
    -------
    matplotlib.figure.Figure
        Each panel: InDI at N = 1, at the rule's N and the CNN against the
        axis's values (log scale for steps), the bicubic, HQ and ideal-HQ rows as
        horizontal lines. An axis with no scored point says so.
    """
    import matplotlib.pyplot as plt

    axes_names = list(AXES)
    fig, grid = plt.subplots(len(metrics), len(axes_names), figsize=(3.4 * len(axes_names), 3.0 * len(metrics)),
                             squeeze=False, sharey="row")
    for col, axis in enumerate(axes_names):
        pts = points_on_axis(results, axis)
        for row, (metric, label) in enumerate(metrics):
            ax = grid[row, col]
            _references(ax, results, metric)
            if not pts:
                ax.text(0.5, 0.5, "not measured yet", ha="center", va="center", transform=ax.transAxes)
            numeric = axis in ("steps", "data_fraction")
            xs = [p["recipe"][axis] for p in pts] if numeric else list(range(len(pts)))
            for key, (name, colour, marker) in SERIES.items():
                ys = [(p.get(key) or {}).get(metric) for p in pts]
                ys = [np.nan if y is None else y for y in ys]
                ax.plot(xs, ys, marker=marker, color=colour, label=name, lw=1.2)
            if axis == "steps":
                ax.set_xscale("log", base=2)
            if numeric:
                ax.set_xticks(xs, [_tick(axis, x, {}) for x in xs], fontsize=7)
            else:
                ax.set_xticks(xs, [_tick(axis, p["recipe"][axis], p["cards"]["indi"]) for p in pts], fontsize=7)
            if row == len(metrics) - 1:
                ax.set_xlabel(AXIS_TITLES[axis])
            if col == 0:
                ax.set_ylabel(label)
            if row == 0:
                ax.set_title(f"{AXIS_TITLES[axis]}")
            ax.grid(alpha=0.3)
    handles, labels = grid[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


def _point(results, pid):
    return next((p for p in results["points"] if p["id"] == pid), None)


def plot_perception_distortion(results, sharpness="fwhm_nm", curves=("base", "target=halves_deconv",
                                                                      "target=oracle_ideal", "target=oracle_truth")):
    """The perception-distortion plane: PSNR against the truth versus edge sharpness.

    Every method is a point; InDI is a curve over its step count N (one per
    point named in ``curves``), the N written beside it. Lower FWHM is
    sharper, so sharpness grows to the left; fidelity grows upwards.

    Parameters
    ----------
    results : dict
        ``limits.json``.
    sharpness : str
        The metric on the x axis (``"fwhm_nm"``, or ``"power_ratio_high"``).
    curves : sequence of str
        Point ids whose InDI sweep is drawn as a curve (missing ones are skipped).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for key, (label, colour, _) in REFERENCE_STYLE.items():
        ref = (results.get("references") or {}).get(key)
        if ref and ref.get(sharpness) is not None:
            ax.scatter(ref[sharpness], ref["psnr"], color=colour, marker="D", s=50, label=label, zorder=3)
    colours = {"base": "tab:blue", "target=halves_deconv": "tab:orange", "target=oracle_ideal": "tab:purple",
               "target=oracle_truth": "black"}
    for pid in curves:
        p = _point(results, pid)
        if p is None:
            continue
        sweep = [r for r in p["sweep"] if r.get(sharpness) is not None and r.get("psnr") is not None]
        colour = colours.get(pid, None)
        name = "InDI (the book's recipe)" if pid == "base" else f"InDI trained on the {p['recipe']['target']}"
        line, = ax.plot([r[sharpness] for r in sweep], [r["psnr"] for r in sweep], "-o", ms=4, color=colour,
                        label=f"{name}, over N")
        for r in sweep:
            ax.annotate(f"{r['steps']}", (r[sharpness], r["psnr"]), textcoords="offset points", xytext=(4, 3),
                        fontsize=7, color=line.get_color())
        cnn = p.get("cnn") or {}
        if cnn.get(sharpness) is not None:
            ax.scatter(cnn[sharpness], cnn["psnr"], marker="^", s=60, color=line.get_color(), edgecolor="k",
                       zorder=3, label=f"CNN on the same targets ({p['recipe']['target']})")
    if sharpness == "fwhm_nm":
        ax.set_xlabel("edge FWHM (nm)  ← sharper")
        ax.invert_xaxis()
    else:
        ax.set_xlabel(sharpness)
    ax.set_ylabel("PSNR vs truth (dB)  ↑ more faithful")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def network_sizes():
    """The capacity axis in words: name -> base filters, depth, dilations."""
    return {name: f"base {n['base_filters']}, depth {n['depth']}, dilations {tuple(n['dilations'])}"
            for name, n in NETWORKS.items()}


def is_oracle(point):
    """Whether a point's target exists only in simulation."""
    return point["recipe"]["target"] in ORACLES


def base_point(results):
    """The base point's record (:data:`indi4d.limits.points.BASE`), or None."""
    return next((p for p in results["points"] if p["recipe"] == BASE), None)
