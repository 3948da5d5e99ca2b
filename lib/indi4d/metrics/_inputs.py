"""Input checks shared by every metric: real finite images, one shape, boolean masks.

Images are read as float64 copies, never modified in place. A mask is a bool
(or 0/1 integer) array of the image's shape, or of one slice's shape (H, W) for
a volume, where it is repeated over z.
"""

import numpy as np


def as_float(array, name):
    """``array`` as a float64 copy; refuses non-numeric, complex, NaN or infinite values (``name`` in the message)."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{name}: expected a real numeric array, got dtype {array.dtype}")
    out = array.astype(np.float64)  # always a copy: inputs are never modified
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name}: contains NaN or infinite values")
    return out


def check_pair(pred, ref):
    """``pred`` and ``ref`` as float64 copies of one shape (see :func:`as_float`)."""
    pred = as_float(pred, "pred")
    ref = as_float(ref, "ref")
    if pred.shape != ref.shape:
        raise ValueError(f"pred and ref shapes differ: {pred.shape} vs {ref.shape}")
    return pred, ref


def broadcast_mask(mask, shape, name="mask"):
    """Return a bool mask of ``shape``; a (H, W) mask is repeated over z."""
    if mask is None:
        return np.ones(shape, dtype=bool)
    mask = np.asarray(mask)
    if mask.dtype != bool:
        if not np.issubdtype(mask.dtype, np.integer) or not np.isin(np.unique(mask), (0, 1)).all():
            raise ValueError(f"{name}: expected a boolean (or 0/1) array, got dtype {mask.dtype}")
        mask = mask.astype(bool)
    if mask.shape == tuple(shape):
        return mask
    if len(shape) == 3 and mask.shape == tuple(shape[1:]):
        return np.broadcast_to(mask, shape)
    raise ValueError(f"{name}: shape {mask.shape} matches neither the image {tuple(shape)} nor one slice")


def particle_mask_from(particles, shape):
    """Bool particle mask from a bool mask or integer labels (non-zero = particle)."""
    particles = np.asarray(particles)
    if particles.shape != tuple(shape):
        raise ValueError(f"particle mask/labels shape {particles.shape} differs from image shape {tuple(shape)}")
    if particles.dtype == bool:
        return particles
    if not np.issubdtype(particles.dtype, np.integer):
        raise ValueError(f"particle mask/labels: expected bool or integer labels, got dtype {particles.dtype}")
    return particles != 0
