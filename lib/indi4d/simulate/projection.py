"""Parallel-beam projection of a stack of slices: scikit-image's radon, for every slice at once.

:func:`radon_stack` gives the numbers of ``skimage.transform.radon(slice, theta,
circle=True)`` for each slice of a (Z, N, N) stack (bilinear rotation about
pixel ``N // 2``, zero outside, column sums), written as one sparse matrix per
block of angles that every slice shares.
"""

import math

import numpy as np

from .presets import with_progress


def _rotation_sum_matrix(n, angles_rad):
    """Sparse (len(angles) * N, N * N) matrix of scikit-image's radon: rotate bilinearly, sum the rows.

    Row ``j * N + x`` holds the weights with which every pixel of an N x N image
    enters detector bin ``x`` at angle ``j``: the image is rotated about pixel
    ``N // 2`` with the inverse map of ``skimage.transform.radon`` (bilinear,
    zero outside), and the rotated image's column ``x`` is summed.
    """
    from scipy import sparse

    centre = n // 2
    rows, cols = np.indices((n, n), dtype=np.float64)  # output pixel (row y, column x)
    data, out_idx, in_idx = [], [], []
    for j, angle in enumerate(angles_rad):
        c, s = math.cos(angle), math.sin(angle)
        # skimage's inverse map: x_in = c x + s y - centre (c + s - 1), y_in = -s x + c y - centre (c - s - 1)
        x_in = c * cols + s * rows - centre * (c + s - 1)
        y_in = -s * cols + c * rows - centre * (c - s - 1)
        x0, y0 = np.floor(x_in), np.floor(y_in)
        fx, fy = x_in - x0, y_in - y0
        for dy, dx, w in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            yy, xx = y0 + dy, x0 + dx
            ok = (yy >= 0) & (yy < n) & (xx >= 0) & (xx < n) & (w != 0)  # zero outside the image
            data.append(w[ok])
            in_idx.append((yy[ok] * n + xx[ok]).astype(np.int64))
            out_idx.append((j * n + cols[ok]).astype(np.int64))
    # duplicate (bin, pixel) entries -- the rows of one column -- are summed by the constructor
    return sparse.csr_matrix((np.concatenate(data), (np.concatenate(out_idx), np.concatenate(in_idx))),
                             shape=(len(angles_rad) * n, n * n))


def radon_stack(stack, theta, angles_per_block=16, progress=False, desc="project"):
    """``skimage.transform.radon(slice, theta, circle=True)`` of every slice of a stack at once.

    Every slice is rotated by the same angles, so the interpolation weights are
    computed once per block of angles, as a sparse matrix, and applied to all
    slices in one product: the same numbers as scikit-image (to float64
    rounding), several times faster than rotating slice by slice.

    Parameters
    ----------
    stack : ndarray, (Z, N, N)
        Images, zero outside the circle of radius ``N // 2`` about pixel ``N // 2``.
    theta : ndarray, (A,)
        Projection angles in degrees.
    angles_per_block : int
        Angles whose matrix is built at a time (memory: about 4 N² of them).

    Returns
    -------
    ndarray, float64, (Z, N, A)
        The sums along the rays, in pixels of the input (multiply by the pitch for ∫μ dl).
    """
    stack = np.asarray(stack, np.float64)
    z, n, n2 = stack.shape
    if n != n2:
        raise ValueError(f"radon_stack: slices must be square, got {stack.shape[1:]}")
    theta = np.asarray(theta, np.float64)
    pixels = np.ascontiguousarray(stack.reshape(z, n * n).T)  # (N², Z): one column per slice
    out = np.empty((z, n, theta.size))
    starts = range(0, theta.size, int(angles_per_block))
    for a0 in with_progress(starts, progress, desc):
        angles = np.deg2rad(theta[a0:a0 + int(angles_per_block)])
        proj = _rotation_sum_matrix(n, angles) @ pixels  # (len(angles) * N, Z)
        out[:, :, a0:a0 + angles.size] = proj.reshape(angles.size, n, z).transpose(2, 1, 0)
    return out
