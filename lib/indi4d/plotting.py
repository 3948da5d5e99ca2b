"""Shared helpers of the book's figures: scale bars in µm on image panels, the phase colours.

Every image panel of a slice or a volume section carries a scale bar whose
length comes from the pixel size of the data shown (the volume's metadata, the
pairs' provenance), never from a typed number. :func:`add_scale_bar` works on
any matplotlib image axis: pixel coordinates or a physical ``extent``, square
or not, zoomed or not. Phase labels are drawn with one set of colours everywhere
(:data:`PHASE_COLOURS`, :func:`phase_image_kw`, :func:`phase_legend_handles`).
"""

import numpy as np

__all__ = ["PHASE_COLOURS", "add_scale_bar", "data_units_per_pixel", "nice_length_um", "phase_image_kw",
           "phase_legend_handles"]

#: One colour per phase label (0 pore, 1 carbon-binder, 2 Si/SiOx particle, 3 dense new phase;
#: :mod:`indi4d.phases`), used by every figure that shows labels (chapters 01 and 07).
PHASE_COLOURS = ("#1f3b73", "#9a9a9a", "#f0a030", "#d62728")

#: Where a scale bar may go, as axes fractions of its anchor (x, y).
_LOCATIONS = {"lower left": (0.05, 0.06), "lower right": (0.95, 0.06),
              "upper left": (0.05, 0.94), "upper right": (0.95, 0.94)}


def nice_length_um(width_um, fraction=0.3):
    """A round scale-bar length near a fraction of a field of view.

    Parameters
    ----------
    width_um : float
        Width of the field of view, µm.
    fraction : float, optional
        The bar is the longest 1, 2 or 5 × 10^k µm that is at most
        ``fraction * width_um``.

    Returns
    -------
    float
        The bar length in µm.

    Examples
    --------
    >>> nice_length_um(3.2)
    0.5
    >>> nice_length_um(12.8)
    2.0
    """
    target = max(float(width_um) * float(fraction), 1e-6)
    p = 10.0 ** np.floor(np.log10(target))
    length = max((m * p for m in (1, 2, 5) if m * p <= target * (1 + 1e-12)), default=p)
    return float(f"{length:.12g}")  # 0.30000000000000004 -> 0.3


def data_units_per_pixel(ax, width_px=None):
    """How many data units of ``ax``'s x axis one image pixel spans.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    width_px : int, optional
        Width of the image in pixels. Default: the width of the first image
        drawn on ``ax``. With no image on ``ax`` it says how many pixels the
        current x range holds.

    Returns
    -------
    float
        1 for an image drawn in pixel coordinates; µm per pixel for an image
        drawn with an ``extent`` in µm.

    Raises
    ------
    ValueError
        When ``ax`` holds no image and ``width_px`` is not given.
    """
    images = ax.get_images()
    if images:
        left, right, _, _ = images[0].get_extent()
        shape = np.shape(images[0].get_array())
        width = float(width_px) if width_px is not None else float(shape[1])
        return abs(right - left) / width
    if width_px is None:
        raise ValueError("data_units_per_pixel: the axes hold no image; pass width_px")
    x_lo, x_hi = ax.get_xlim()
    return abs(x_hi - x_lo) / float(width_px)


def add_scale_bar(ax, pixel_nm, width_px=None, color="white", *, loc="lower left", fraction=0.3, fontsize=8,
                  outline=True):
    """Draw a scale bar in µm on an image axis.

    The bar's length is a round number of µm (:func:`nice_length_um`) near
    ``fraction`` of the visible width; its position is a fixed fraction of the
    axes' width and height, so it sits in the corner of any image, square or
    not, in pixel coordinates or with a physical ``extent``, with equal or
    ``"auto"`` aspect. Call it after the image is drawn and the axis limits set.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        An axis showing an image (``imshow``).
    pixel_nm : float or None
        Size of one image pixel along x, nm: from the data's metadata
        (``voxel_size_nm`` of a volume, the pairs' provenance). ``None`` (a scan
        without a known voxel size) draws nothing.
    width_px : int, optional
        Width of the image in pixels; default the width of the image on ``ax``.
        Needed only for axes without an image.
    color : str, optional
        Colour of the bar and its label.
    loc : {"lower left", "lower right", "upper left", "upper right"}, optional
    fraction : float, optional
        Largest share of the visible width the bar may take.
    fontsize : float, optional
    outline : bool, optional
        Draw a thin contrasting outline around bar and label, so that they stay
        readable on bright and dark regions alike.

    Returns
    -------
    (matplotlib.lines.Line2D, matplotlib.text.Annotation) or None
        The bar and its label; ``None`` when ``pixel_nm`` is ``None``.

    Raises
    ------
    ValueError
        For a pixel size that is not a positive finite number or an unknown ``loc``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots()
    >>> _ = ax.imshow(np.zeros((32, 64)))
    >>> bar, label = add_scale_bar(ax, pixel_nm=100.0)
    >>> label.get_text()
    '1 µm'
    """
    import matplotlib.colors as mcolors
    import matplotlib.patheffects as patheffects
    from matplotlib.lines import Line2D
    from matplotlib.transforms import blended_transform_factory

    if pixel_nm is None:
        return None
    pixel_nm = float(pixel_nm)
    if not np.isfinite(pixel_nm) or pixel_nm <= 0:
        raise ValueError(f"add_scale_bar: the pixel size must be a positive number of nm, got {pixel_nm}")
    if loc not in _LOCATIONS:
        raise ValueError(f"add_scale_bar: unknown loc {loc!r}; expected one of {sorted(_LOCATIONS)}")

    per_px = data_units_per_pixel(ax, width_px)
    x_lo, x_hi = ax.get_xlim()
    span = x_hi - x_lo  # negative for an inverted x axis
    visible_um = abs(span) / per_px * pixel_nm / 1000.0
    length_um = nice_length_um(visible_um, fraction)
    length = length_um * 1000.0 / pixel_nm * per_px * np.sign(span)

    fx, fy = _LOCATIONS[loc]
    anchor = x_lo + fx * span
    x0, x1 = (anchor, anchor + length) if loc.endswith("left") else (anchor - length, anchor)
    bar_effects, text_effects = [], []
    if outline:
        r, g, b = mcolors.to_rgb(color)
        edge = "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"  # contrast to the bar's colour
        bar_effects = [patheffects.withStroke(linewidth=4.5, foreground=edge)]
        text_effects = [patheffects.withStroke(linewidth=1.5, foreground=edge)]
    trans = blended_transform_factory(ax.transData, ax.transAxes)  # x in data units, y in axes fractions
    bar = Line2D([x0, x1], [fy, fy], transform=trans, color=color, lw=3, solid_capstyle="butt", zorder=5,
                 path_effects=bar_effects)
    ax.add_artist(bar)  # an artist, not a plot: the axis limits stay as the image set them
    up = loc.startswith("lower")
    label = ax.annotate(f"{length_um:g} µm", xy=((x0 + x1) / 2, fy), xycoords=trans, xytext=(0, 3 if up else -4),
                        textcoords="offset points", ha="center", va="bottom" if up else "top", color=color,
                        fontsize=fontsize, zorder=5, path_effects=text_effects)
    return bar, label


def phase_image_kw():
    """Keywords of ``imshow`` that draw a phase-label image in :data:`PHASE_COLOURS`.

    Returns
    -------
    dict
        ``cmap`` (one colour per label), ``vmin``/``vmax`` (label ``k`` at the
        middle of its colour) and ``interpolation="nearest"`` (labels are never blended).
    """
    from matplotlib.colors import ListedColormap

    return dict(cmap=ListedColormap(PHASE_COLOURS), vmin=-0.5, vmax=len(PHASE_COLOURS) - 0.5,
                interpolation="nearest")


def phase_legend_handles(names):
    """Legend patches of the first ``len(names)`` phases, in :data:`PHASE_COLOURS`.

    Parameters
    ----------
    names : sequence of str
        The phase names in label order (e.g. :data:`indi4d.phases.PHASE_NAMES`, or its
        first three where the figure has no dense phase).

    Returns
    -------
    list of matplotlib.patches.Patch
    """
    from matplotlib.patches import Patch

    if len(names) > len(PHASE_COLOURS):
        raise ValueError(f"phase_legend_handles: {len(names)} names, but only {len(PHASE_COLOURS)} phase colours")
    return [Patch(color=c, label=n) for c, n in zip(PHASE_COLOURS, names)]
