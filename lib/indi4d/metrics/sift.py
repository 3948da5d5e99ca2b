"""SIFT congruent points between two registered images (the paper's feature metric)."""

import numpy as np
from scipy import ndimage as ndi

from ._inputs import as_float, broadcast_mask


def to_uint8(image, mask=None, percentiles=(0.5, 99.5)):
    """Robust 8-bit conversion: a percentile window of the image mapped to 0–255.

    Parameters
    ----------
    image : ndarray (H, W), real
    mask : ndarray of bool (H, W), optional
        Pixels used for the percentiles (default all). Pixels outside the mask are
        set to the median inside it, so the mask border adds no artificial edge.
    percentiles : (float, float)
        Lower and upper percentiles of the window; values outside are clipped.

    Returns
    -------
    ndarray (H, W) uint8
    """
    image = as_float(image, "image")
    m = broadcast_mask(mask, image.shape)
    vals = image[m]
    if vals.size == 0:
        raise ValueError("to_uint8: the mask selects no pixel")
    lo, hi = np.percentile(vals, percentiles)
    image = np.where(m, image, np.median(vals))
    if hi <= lo:
        return np.zeros(image.shape, dtype=np.uint8)
    # linear window [lo, hi] -> [0, 255]
    return np.round(255.0 * np.clip((image - lo) / (hi - lo), 0.0, 1.0)).astype(np.uint8)


def sift_match_points(img, ref, ratio=0.75, mask=None, max_displacement_px=3.0, percentiles=(0.5, 99.5),
                      contrast_threshold=0.04, border_px=8):
    """Positions of SIFT congruent points between two registered 2D images.

    Procedure (the paper's SIFT metric, made explicit):

    1. each image is converted to 8 bits on its *own* robust window, the
       ``percentiles`` of its values inside the mask (:func:`to_uint8`), because
       the two images may be in different grey units;
    2. OpenCV SIFT (``cv2.SIFT_create``) detects key points and 128-D descriptors
       in each, inside the mask eroded by ``border_px`` (away from the mask rim);
    3. every descriptor of ``img`` is matched to its two nearest descriptors of
       ``ref`` (``BFMatcher(NORM_L2).knnMatch(k=2)``) and kept when it passes
       Lowe's ratio test ``d1 < ratio·d2``;
    4. since the images are registered, a kept match must also join key points at
       most ``max_displacement_px`` apart (``None`` skips this check).

    Parameters
    ----------
    img, ref : ndarray (H, W), real
        The image under test and the reference (HQ), on the same grid.
    ratio : float
        Lowe's ratio, in (0, 1].
    mask : ndarray of bool (H, W), optional
        Valid region.
    max_displacement_px : float or None
        Geometric-consistency radius in pixels.
    percentiles : (float, float)
        8-bit window of each image.
    contrast_threshold : float
        ``contrastThreshold`` of ``cv2.SIFT_create`` (OpenCV's default 0.04).
    border_px : int
        Key points closer than this to the mask rim or the image border are ignored.

    Returns
    -------
    pts_img, pts_ref : ndarray (n, 2) float64
        (x, y) pixel positions of the n congruent points in each image.
    """
    import cv2

    img = as_float(img, "img")
    ref = as_float(ref, "ref")
    if img.ndim != 2 or img.shape != ref.shape:
        raise ValueError(f"sift: expected two 2D images of one shape, got {img.shape} and {ref.shape}")
    if not 0 < ratio <= 1:
        raise ValueError(f"sift: ratio must be in (0, 1], got {ratio}")
    m = broadcast_mask(mask, img.shape)
    detect = ndi.binary_erosion(m, iterations=border_px, border_value=0) if border_px > 0 else m
    detect8 = detect.astype(np.uint8) * 255
    sift = cv2.SIFT_create(contrastThreshold=contrast_threshold)
    kp1, des1 = sift.detectAndCompute(to_uint8(img, m, percentiles), detect8)
    kp2, des2 = sift.detectAndCompute(to_uint8(ref, m, percentiles), detect8)
    empty = np.zeros((0, 2))
    if des1 is None or des2 is None or len(kp1) == 0 or len(kp2) < 2:
        return empty, empty.copy()
    matches = cv2.BFMatcher(cv2.NORM_L2).knnMatch(des1, des2, k=2)
    pts1, pts2 = [], []
    for pair in matches:
        if len(pair) < 2:
            continue
        best, second = pair
        if best.distance >= ratio * second.distance:  # Lowe's ratio test
            continue
        p1 = np.asarray(kp1[best.queryIdx].pt)
        p2 = np.asarray(kp2[best.trainIdx].pt)
        if max_displacement_px is not None and np.hypot(*(p1 - p2)) > max_displacement_px:
            continue
        pts1.append(p1)
        pts2.append(p2)
    if not pts1:
        return empty, empty.copy()
    return np.array(pts1, dtype=np.float64), np.array(pts2, dtype=np.float64)


def sift_congruent_points(img, ref, ratio=0.75, mask=None, max_displacement_px=3.0, percentiles=(0.5, 99.5),
                          contrast_threshold=0.04, border_px=8):
    """Number of SIFT congruent points between two registered 2D images (higher is better).

    See :func:`sift_match_points` for the procedure and the parameters.

    Returns
    -------
    int
    """
    pts, _ = sift_match_points(img, ref, ratio=ratio, mask=mask, max_displacement_px=max_displacement_px,
                               percentiles=percentiles, contrast_threshold=contrast_threshold,
                               border_px=border_px)
    return int(len(pts))
