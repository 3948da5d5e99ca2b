"""Image-quality metrics of chapter 05: fidelity, sharpness, contrast and hallucination.

Every metric is a function of arrays; :func:`evaluate_pair` gathers them for a
2D slice or a 3D volume and :func:`evaluate_files` is what ``indi4d evaluate``
runs. The definitions follow the paper's Materials and methods (PSNR, SSIM,
SIFT congruent points, edge FWHM, CNR), made automatic and reproducible, plus
measures against a known ground truth that the paper could not have
(false/missed particles, false edges and error where the truth is flat).

Where each metric lives (all are importable from ``indi4d.metrics``)
--------------------------------------------------------------------
* :mod:`~indi4d.metrics.fidelity`: PSNR and SSIM on a mask, optionally after a
  least-squares grey-level fit (:func:`affine_fit`).
* :mod:`~indi4d.metrics.sift`: SIFT congruent points: OpenCV SIFT, Lowe's ratio
  test, and (registered images) matched key points at most a few pixels apart.
* :mod:`~indi4d.metrics.sharpness`: resolution, the FWHM (nm) of the derivative
  of averaged grey-value profiles taken normal to automatically found particle
  boundaries, with the edge overshoot.
* :mod:`~indi4d.metrics.edges`: against the true boundary, the edge placement
  (RMS of the 50 % crossings, nm) and the self-aligned width (each profile
  aligned at its own crossing before averaging), which tell blur apart from
  sharp but misplaced edges.
* :mod:`~indi4d.metrics.spectrum`: radial power spectra (frequency in 1/µm) and
  their ratio to the truth's.
* :mod:`~indi4d.metrics.contrast`: CNR, ``|mean(particles) − mean(background)| /
  std(background)`` on a segmentation, and that segmentation.
* :mod:`~indi4d.metrics.hallucination`: against the truth, false and missed
  particles per mm², Canny edges where the truth is flat, grey-level spread
  where the truth is flat.
* :mod:`~indi4d.metrics.evaluate`: all of them on a pair of arrays;
  :mod:`~indi4d.metrics.evaluate_files`: on a pair of files (``indi4d evaluate``);
  :mod:`~indi4d.metrics.presets`: their parameters and the result's keys.

Conventions
-----------
* Images are z-y-x (volumes) or y-x (slices), any real dtype; they are read as
  float64 and never modified in place.
* ``mask`` is the valid region (e.g. the reconstruction disc): a bool array of the
  image's shape, or of one slice's shape (H, W) for a volume (broadcast over z).
* Phase labels are those of :mod:`indi4d.phases` (pore, carbon-binder, Si/SiOx
  particle, dense new phase); ``particle_phase`` picks the particle phase(s),
  :data:`indi4d.phases.PARTICLE` by default.
* Lengths are in pixels (``_px``) on the evaluated grid or in nm (``_nm``);
  densities are per mm² of evaluated slice area.
"""

from .contrast import cnr, two_phase_masks
from .edges import (aligned_mean_profile, edge_metrics, edge_placement, profile_crossings, rise_distance,
                    self_aligned_width)
from .evaluate import evaluate_pair, select_slices
from .evaluate_files import auto_valid_mask, evaluate_files
from .fidelity import affine_fit, psnr, ssim
from .hallucination import detect_particles, hallucination_metrics
from .presets import METRIC_KEYS, PRESETS
from .profiles import edge_profiles
from .sharpness import FWHM_PER_SIGMA, edge_spread_width, fwhm_edge_resolution, otsu_edge_resolution
from .spectrum import band_mean, power_ratio, radial_power_spectrum
from .sift import sift_congruent_points, sift_match_points, to_uint8

__all__ = [
    "PRESETS", "METRIC_KEYS", "FWHM_PER_SIGMA",
    "affine_fit", "psnr", "ssim",
    "to_uint8", "sift_match_points", "sift_congruent_points",
    "edge_profiles", "edge_spread_width", "fwhm_edge_resolution", "otsu_edge_resolution",
    "cnr", "two_phase_masks",
    "detect_particles", "hallucination_metrics",
    "profile_crossings", "edge_placement", "rise_distance", "aligned_mean_profile", "self_aligned_width",
    "edge_metrics", "radial_power_spectrum", "power_ratio", "band_mean",
    "select_slices", "evaluate_pair", "auto_valid_mask", "evaluate_files",
]
