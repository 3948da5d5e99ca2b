"""Upscaling onto a finer grid: the cubic-spline ×2 that brings 100 nm LQ data onto the 50 nm HQ grid.

:func:`upscale` zooms the pixel extents (cell-centred grids). The cubic case is
separable and applied one axis at a time as a 4-tap filter per output phase
(:func:`_cubic_upscale_axis`), equal to ``scipy.ndimage.zoom(order=3,
mode="reflect", grid_mode=True)`` to float32 rounding but without its 4^ndim taps
per voxel; other orders go through ``ndimage.zoom``.
"""

import numpy as np
from scipy import ndimage as ndi


def upscale(array, factor=2, axes=None, order=3):
    """Upscale an array by an integer factor with spline interpolation on cell-centred grids.

    With ``order=3`` this is the bicubic (tricubic in 3D) upsampling used to
    bring the 100 nm LQ scan onto the 50 nm HQ grid: output voxel ``j`` samples
    the input at ``(j + 0.5) / factor - 0.5``, so a ×2 upscaling of a 2×2×2
    binned volume lands on the grid it was binned from.

    Parameters
    ----------
    array : ndarray, shape (..., Y, X)
        Grey values, any real dtype.
    factor : int
        Integer upscaling factor (2 for LQ -> HQ).
    axes : sequence of int, optional
        Axes to upscale; default all axes.
    order : int
        Spline order, 0..5 (3 = cubic).

    Returns
    -------
    ndarray, float32
        Shape ``factor * array.shape`` along ``axes``.
    """
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"upscale: expected a real numeric array, got dtype {array.dtype}")
    if int(factor) != factor or factor < 1:
        raise ValueError(f"upscale: factor must be a positive integer, got {factor}")
    axes = range(array.ndim) if axes is None else [a % array.ndim for a in axes]
    if order == 3:  # separable: one 4-tap filter per axis instead of ndimage's 4^ndim taps per voxel
        out = array.astype(np.float32)
        for axis in sorted(set(axes)):
            out = _cubic_upscale_axis(out, int(factor), axis)
        return out
    zoom = [float(factor) if a in axes else 1.0 for a in range(array.ndim)]
    # grid_mode=True: zoom the pixel *extents* (cell-centred grids); 'reflect' is
    # the half-sample symmetric extension that matches it at the borders.
    return ndi.zoom(array.astype(np.float32), zoom, order=order, mode="reflect", grid_mode=True)


def _cubic_bspline(x):
    """The cubic B-spline β3(x)."""
    x = abs(x)
    return 2 / 3 - x**2 + x**3 / 2 if x < 1 else (2 - x) ** 3 / 6 if x < 2 else 0.0


def _cubic_upscale_axis(array, factor, axis, keep=None):
    """``ndi.zoom(order=3, mode="reflect", grid_mode=True)`` along one axis, as a 4-tap filter per output phase.

    Output sample ``factor * i + r`` lies at ``i + d_r`` on the input grid,
    ``d_r = (r + 0.5) / factor - 0.5``: it is ``sum_k c[i + k] β3(d_r - k)`` over
    the four ``k`` around ``d_r``, with ``c`` the spline coefficients of the
    half-sample symmetric extension (what ndimage's "reflect" mode uses).
    Equal to ndimage's result to float32 rounding (tested). ``keep=(a, b)``:
    only the output samples of input positions ``a:b`` (the coefficients still
    come from the whole axis), the same numbers as cropping the whole result.
    """
    a = np.moveaxis(np.asarray(array, np.float64), axis, 0)
    n = a.shape[0]
    start, stop = (0, n) if keep is None else keep
    coef = ndi.spline_filter1d(a, 3, axis=0, mode="reflect")
    pad = 3
    coef = np.pad(coef, [(pad, pad)] + [(0, 0)] * (a.ndim - 1), mode="symmetric")  # half-sample symmetric
    out = np.empty((factor * (stop - start),) + a.shape[1:], np.float32)
    for r in range(factor):
        d = (r + 0.5) / factor - 0.5
        first = int(np.floor(d)) - 1
        out[r::factor] = sum(_cubic_bspline(d - k) * coef[pad + k + start: pad + k + stop]
                             for k in range(first, first + 4))
    return np.ascontiguousarray(np.moveaxis(out, 0, axis))  # C order, as ndimage returns (spam's C code needs it)


def upscale_part(array, factor, axis, start, stop):
    """The cubic x``factor`` upscaling along ``axis`` of ``array``, only for its input positions ``start:stop``.

    Equal to ``upscale(array, factor, axes=(axis,))`` cropped to
    ``factor * start : factor * stop`` along ``axis``, bit for bit, without
    computing the samples cropped away (the recursive spline prefilter still
    sees the whole axis). Used by the slab z step, whose window is mostly halo.

    Returns
    -------
    ndarray, float32, shape ``factor * (stop - start)`` along ``axis``
    """
    array = np.asarray(array)
    axis = axis % array.ndim
    if not 0 <= start < stop <= array.shape[axis]:
        raise ValueError(f"upscale_part: need 0 <= start < stop <= {array.shape[axis]}, got {start}, {stop}")
    return _cubic_upscale_axis(array.astype(np.float32), int(factor), axis, keep=(int(start), int(stop)))
