"""Registration of the ×2-upscaled LQ scan onto the HQ scan with spam (chapter 02).

The HQ scan covers a small region of the LQ scan, but moving the sample between
the two acquisitions leaves a small rigid (or affine) misalignment. We crop
the LQ region that the HQ scan covers, upscale it ×2 onto the HQ grid, and
measure the misalignment with spam's image correlation
(``spam.DIC.registerMultiscale`` / ``spam.DIC.register``).

Convention (spam's; see CONTRIBUTING.md): Φ is a 4×4 deformation function about
the centre of the HQ volume, ``(shape - 1) / 2``, and the HQ scan shows the
sample moved by Φ relative to the upscaled LQ crop::

    hq ≈ spam.DIC.applyPhi(lq_up, Φ)          i.e.  hq(x) = lq_up(Φ⁻¹·x)
    Φ  = spam.DIC.register(lq_up, hq)["Phi"]  (spam: im1(x) = im2(Φ·x))

Modules:

- :mod:`.geometry` -- Φ (compute, decompose, compare, apply), the HQ region in
  the LQ scan, and the LQ scan resampled onto the HQ grid;
- :mod:`.spam_driver` -- preparing the scans and running spam (:func:`register_volumes`);
- :mod:`.convergence` -- whether a spam run converged, judged from Φ's stability over the
  last iterations, the residual drop and Φ's plausibility (:func:`judge_convergence`), and
  what to try when it did not (:func:`advice`);
- :mod:`.parameters` -- :data:`PRESETS` of the whole step;
- :mod:`.scans` -- :func:`register_scans`, the whole step: it writes the
  ``pairs`` folder (:mod:`indi4d.core.pairs`) that the training chapters read;
  :func:`register_run`, the same on a run folder (chapter 02, :func:`indi4d.reference.simulated_pairs`);
- :mod:`.tables`, :mod:`.figures` -- what chapter 02 shows (matplotlib is imported only when a
  figure is drawn).

Every public name is importable from ``indi4d.registration`` itself.
"""

from .convergence import advice, judge_convergence, phi_stability
from .geometry import apply_phi, compute_phi, decompose_phi, hq_region, misalignment_error, resample_lq_onto_hq
from .parameters import PRESETS, REGISTRATION_KEYS
from .figures import (SPLIT_COLOURS, checkerboard, comparison_blur, plot_batch, plot_before_after, plot_histograms,
                      plot_pairs, plot_scans, plot_split)
from .scans import build_pairs, register_run, register_scans
from .tables import phi_table
from .spam_driver import (
    SPAM_STATUS,
    RegistrationError,
    coarse_translation,
    match_resolution,
    prepare_for_registration,
    register_volumes,
)

__all__ = [
    "PRESETS", "REGISTRATION_KEYS", "SPAM_STATUS", "RegistrationError",
    "decompose_phi", "compute_phi", "misalignment_error", "apply_phi", "hq_region", "resample_lq_onto_hq",
    "prepare_for_registration", "match_resolution", "coarse_translation", "register_volumes",
    "build_pairs", "register_run", "register_scans",
    "SPLIT_COLOURS", "checkerboard", "comparison_blur", "plot_scans", "plot_before_after", "plot_histograms",
    "plot_split", "plot_pairs", "plot_batch", "phi_table", "judge_convergence", "phi_stability", "advice",
]
