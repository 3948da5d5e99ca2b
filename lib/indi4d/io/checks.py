"""Checks every volume passes on the way in and out: dtype, shape, finite values."""

import math

import numpy as np

from .paths import VolumeError

#: Voxels above which a header is taken as damaged (2^48: a 65 536^3 volume, 512 TiB of uint16).
MAX_VOXELS = 2**48


def check_dtype(label, dtype, allow_float=True):
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        raise VolumeError(f"{label}: boolean volume; scans and labels must be integers (store masks as uint8)")
    if dtype.kind not in "uif":
        raise VolumeError(f"{label}: unsupported dtype {dtype} (expected unsigned/signed integers or floats)")
    if dtype.kind == "f" and not allow_float:
        raise VolumeError(f"{label}: floating-point volume ({dtype}) where an integer scan was expected")


def check_shape(label, shape, expect_ndim=None):
    if expect_ndim is not None and len(shape) != expect_ndim:
        raise VolumeError(f"{label}: expected a {expect_ndim}D volume, got {len(shape)}D with shape "
                          f"{tuple(int(s) for s in shape)}")
    if len(shape) == 0 or any(int(s) == 0 for s in shape):
        raise VolumeError(f"{label}: zero-size volume, shape {tuple(int(s) for s in shape)}")
    total = math.prod(int(s) for s in shape)
    if total > MAX_VOXELS:
        raise VolumeError(f"{label}: the header claims {total:.3g} voxels (shape {tuple(int(s) for s in shape)}), "
                          f"more than any scan ({MAX_VOXELS:.3g}): the header is damaged; re-export the volume")


def check_finite(label, array):
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise VolumeError(f"{label}: {int(bad.sum())} NaN/Inf voxels (first at z-y-x index {first})")


def validate_for_write(label, volume):
    if volume.ndim not in (2, 3):
        shape = tuple(int(s) for s in volume.shape)
        raise VolumeError(f"{label}: can only write 2D or 3D volumes, got shape {shape}")
    check_dtype(label, volume.dtype)
    check_shape(label, volume.shape)
