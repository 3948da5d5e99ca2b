"""Chapter 03's look at the network: its card, its layout, its time code, what it does untrained.

The ``plot_*`` functions return a matplotlib figure (the chapter saves and shows
it); the measurements behind them (:func:`checkerboard_energy`,
:func:`impulse_response`, :func:`measured_reach`) are plain functions with
known answers. Keras and matplotlib are imported inside the functions, so this
module costs nothing until it draws.
"""

import numpy as np

from ..plotting import add_scale_bar

#: Colours of the U-Net's parts in the architecture figure, by the prefix of a layer's name.
PART_COLOURS = {"stem": "tab:blue", "down": "tab:green", "bottleneck": "tab:purple", "up": "tab:orange",
                "head": "tab:red"}
#: Their legend entries, in the same order.
PART_LABELS = ("7×7 stem", "down path", "dilated bottleneck", "up path (sub-pixel first)", "7×7 tanh head")


def network_card(name, params, network):
    """One row of the network table: size, receptive field and cost of a configuration.

    Parameters
    ----------
    name : str
        The configuration's name in the table.
    params : dict
        Its :func:`indi4d.core.model.build_unet` arguments (``base_filters``, ``depth``, ``dilations``, ...).
    network : keras.Model
        The network built from them.

    Returns
    -------
    dict
        Column name -> text, in the table's order.
    """
    from .model import conv_flops_per_pixel, count_parameters, receptive_field

    return {
        "configuration": name,
        "first-block filters": params["base_filters"],
        "down-sampling blocks": params["depth"],
        "bottleneck dilations": ", ".join(str(d) for d in params["dilations"]),
        "parameters": f"{count_parameters(network):,}",
        "receptive field (px)": receptive_field(**params),
        "FLOPs per pixel per pass": f"{conv_flops_per_pixel(network):,.0f}",
    }


def markdown_table(rows):
    """Rows of equal keys (e.g. :func:`network_card`) as a Markdown table, columns in the first row's order."""
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _draw_architecture(network, title, ax):
    """Every convolution of ``network`` at the resolution it works at, with the skip connections."""
    import matplotlib.pyplot as plt

    from .model import architecture_table

    rows = architecture_table(network)
    levels = sorted({r["scale"] for r in rows})
    x_of = {}
    for i, r in enumerate(rows):
        level = levels.index(r["scale"])
        h = 0.25 + 0.12 * np.log2(r["filters"])
        kind = r["name"].split("_")[0].rstrip("0123456789")
        if r["stride"] == 2:
            level -= 0.5  # the stride-2 convolution sits between two levels
        ax.add_patch(plt.Rectangle((i - 0.4, -level - h / 2), 0.8, h, color=PART_COLOURS.get(kind, "grey"),
                                   alpha=0.8))
        label = f"{r['kernel']}×{r['kernel']}" + (f" d{r['dilation']}" if r["dilation"] > 1 else "")
        label += ("/2" if r["stride"] == 2 else "") + f"\n{r['filters']}"
        if "subpixel" in r["name"]:
            label += f"\nshuffle\n→ {r['filters'] // 4}, ×2"
        elif r["name"].startswith("up") and r["name"].endswith("_conv"):
            label = "×2 NN,\n" + label
        ax.text(i, -level - h / 2 - 0.08, label, ha="center", va="top", fontsize=6)
        x_of[r["name"]] = i
    # skip connections: end of each down level -> first block after the matching up-sampling
    for lev in range(sum(1 for r in rows if r["stride"] == 2)):
        src = max(x for n, x in x_of.items() if n.startswith(f"down{lev}_res"))
        dst = min(x for n, x in x_of.items() if n.startswith(f"up{lev}_res"))
        ax.annotate("", xy=(dst - 0.4, -lev + 0.45), xytext=(src + 0.4, -lev + 0.45),
                    arrowprops=dict(arrowstyle="->", color="k", lw=0.8, connectionstyle="arc3,rad=-0.15"))
    ax.set_xlim(-1, len(rows))
    ax.set_ylim(-len(levels) - 0.3, 1.0)
    ax.set_yticks([-k for k in range(len(levels))], [f"1/{s}" for s in levels])
    ax.set_ylabel("resolution")
    ax.set_xticks([])
    ax.set_title(title)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.8) for c in PART_COLOURS.values()]
    ax.legend(handles, PART_LABELS, fontsize=7, loc="lower right", ncol=2)


def plot_architecture(networks):
    """The convolutions of one or more U-Nets, each at the resolution it works at.

    Parameters
    ----------
    networks : list of (str, keras.Model)
        ``(title, network)``; deeper networks get taller panels.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .model import architecture_table

    depth = [len({r["scale"] for r in architecture_table(net)}) for _, net in networks]
    fig, axes = plt.subplots(len(networks), 1, figsize=(12, 7.5), gridspec_kw={"height_ratios": depth},
                             squeeze=False)
    for ax, (title, net) in zip(axes[:, 0], networks):
        _draw_architecture(net, title, ax)
    fig.tight_layout()
    return fig


def plot_time_embedding(time_dim, n_times=4000):
    """The sinusoidal code of the time t in [0, 1] that the network receives.

    Parameters
    ----------
    time_dim : int
        Length of the code (:class:`~indi4d.core.network_layers.SinusoidalTimeEmbedding`).
    n_times : int
        Times drawn, fine enough for the fastest component.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    from .network_layers import SinusoidalTimeEmbedding

    t_grid = np.linspace(0.0, 1.0, n_times, dtype=np.float32)
    embedding = np.asarray(SinusoidalTimeEmbedding(time_dim)(t_grid))
    fig, ax = plt.subplots(figsize=(9, 3))
    im = ax.imshow(embedding.T, aspect="auto", cmap="RdBu_r", extent=[0, 1, time_dim, 0])
    ax.set_xlabel("t")
    ax.set_ylabel("embedding component")
    ax.set_title("sin/cos embedding of t (first half sines, second half cosines)")
    fig.colorbar(im, ax=ax, fraction=0.03)
    return fig


def plot_forward_pass(x, outputs, pixel_nm):
    """An input slice, the untrained output at t = 1, and how the output changes with t alone.

    Parameters
    ----------
    x : ndarray (1, H, W, 1)
        The input slice in [-1, 1].
    outputs : dict of float -> ndarray (1, H, W, 1)
        The network's output per time t; must hold t = 1.
    pixel_nm : float or None
        The slice's pixel size, nm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    others = [t for t in outputs if t != 1.0]
    fig, axes = plt.subplots(1, 2 + len(others), figsize=(3.5 * (2 + len(others)), 3.6))
    axes[0].imshow(x[0, :, :, 0], cmap="gray", vmin=-1, vmax=1)
    axes[0].set_title("input: LQ validation slice")
    axes[1].imshow(outputs[1.0][0, :, :, 0], cmap="gray")
    axes[1].set_title("untrained output, t = 1")
    for ax, t in zip(axes[2:], others):
        d = outputs[t][0, :, :, 0] - outputs[1.0][0, :, :, 0]
        lim = np.abs(d).max()
        im = ax.imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"output(t = {t}) − output(t = 1)")
        fig.colorbar(im, ax=ax, fraction=0.046)
    for j, ax in enumerate(axes):
        add_scale_bar(ax, pixel_nm, color="white" if j < 2 else "black")  # a dark bar on the difference maps
        ax.axis("off")
    fig.tight_layout()
    return fig


def subpixel_features(params, x, subpixel_init, seed=0):
    """What an untrained U-Net holds right after its first depth-to-space shuffle.

    Parameters
    ----------
    params : dict
        :func:`indi4d.core.model.build_unet` arguments.
    x : ndarray (1, H, W, 1)
        The input slice (H and W multiples of the network's size factor).
    subpixel_init : {"icnr", "random"}
        Initialisation of the sub-pixel convolution.
    seed : int
        Seed of the weights.

    Returns
    -------
    ndarray (H', W', C)
        The features of layer ``up0_depth_to_space`` at t = 1.
    """
    import keras

    from .model import build_unet

    net = build_unet(**params, subpixel_init=subpixel_init, seed=seed)
    probe = keras.Model(net.inputs, net.get_layer("up0_depth_to_space").output)
    return np.asarray(probe([x, np.array([1.0], np.float32)], training=False))[0]


def checkerboard_energy(f):
    """How much a feature map alternates from pixel to pixel within its 2x2 blocks.

    Parameters
    ----------
    f : ndarray (H, W) or (H, W, C), H and W even

    Returns
    -------
    float
        Mean squared difference of each block's top-left pixel to its right and
        lower neighbours, over twice the variance of ``f``: 0 for a map that is
        constant on every 2x2 block (nearest-neighbour up-sampling), 2 for
        uncorrelated pixels, 4 for a pure checkerboard of two values.
    """
    inside = (f[0::2, 0::2] - f[0::2, 1::2]) ** 2 + (f[0::2, 0::2] - f[1::2, 0::2]) ** 2
    return float(inside.mean() / (2 * f.var()))


def plot_icnr(features, crop, pixel_nm):
    """The first feature channel after the depth-to-space shuffle, per initialisation, on a central crop.

    Parameters
    ----------
    features : dict of str -> ndarray (H, W, C)
        :func:`subpixel_features` per initialisation name.
    crop : slice
        Rows and columns shown.
    pixel_nm : float or None
        The features' pixel size, nm.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(features), figsize=(4.5 * len(features), 4.3))
    for ax, (name, f) in zip(np.atleast_1d(axes), features.items()):
        ax.imshow(f[crop, crop, 0], cmap="gray", interpolation="nearest")
        add_scale_bar(ax, pixel_nm)
        ax.set_title(f"{name} init: checkerboard energy {checkerboard_energy(f):.3f}")
        ax.axis("off")
    side = crop.stop - crop.start
    fig.suptitle(f"channel 0 after depth-to-space ({side}×{side} px crop)")
    fig.tight_layout()
    return fig


def impulse_response(network, size):
    """How far one bright pixel reaches through a network: ``|f(impulse) - f(0)|`` at t = 1.

    Parameters
    ----------
    network : keras.Model
        A time-conditioned network ``network([x, t])``.
    size : int
        Side of the square input (a multiple of the network's size factor); the
        pixel is at ``(size // 2, size // 2)``.

    Returns
    -------
    ndarray (size, size)
    """
    zero = np.zeros((1, size, size, 1), np.float32)
    hit = zero.copy()
    c = size // 2
    hit[0, c, c, 0] = 1.0
    t1 = np.ones(1, np.float32)
    return np.abs(np.asarray(network([hit, t1])) - np.asarray(network([zero, t1])))[0, :, :, 0]


def measured_reach(response):
    """The largest distance (Chebyshev, px) from the centre at which a response is non-zero.

    Parameters
    ----------
    response : ndarray (S, S)
        :func:`impulse_response`.

    Returns
    -------
    int
    """
    c = response.shape[0] // 2
    ys, xs = np.nonzero(response > 0)
    return int(max(np.abs(ys - c).max(), np.abs(xs - c).max()))


def plot_receptive_field(response, radius):
    """The response to one bright pixel on a log scale with the bound of its reach, and its profile.

    Parameters
    ----------
    response : ndarray (S, S)
        :func:`impulse_response`.
    radius : int
        The layer-counted bound of the reach (:func:`indi4d.core.model.influence_radius`).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    size = response.shape[0]
    c = size // 2
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    im = axes[0].imshow(np.log10(response + 1e-12), cmap="magma", vmin=-10)
    axes[0].add_patch(plt.Rectangle((c - radius, c - radius), 2 * radius, 2 * radius, fill=False, ec="cyan", lw=1))
    axes[0].set_title("log10 |response| to one bright pixel (cyan: bound)")
    fig.colorbar(im, ax=axes[0], fraction=0.046)
    axes[1].semilogy(np.arange(size) - c, response[c] + 1e-12)
    for sgn in (-1, 1):
        axes[1].axvline(sgn * radius, color="c", ls="--")
    axes[1].set_xlabel("distance from the bright pixel (px)")
    axes[1].set_ylabel("|response|")
    axes[1].set_ylim(1e-10, None)
    axes[1].set_title("profile through the centre")
    fig.tight_layout()
    return fig
