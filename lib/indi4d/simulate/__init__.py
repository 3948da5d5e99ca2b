"""A simulated nano-tomography beamline with a known ground truth.

The paper's ESRF scans are not public, so the book's default data come from
this package: a 3D phantom of a Si/SiOx anode (particles, carbon-binder domain,
pores) is scanned twice, once as a low-quality (LQ) wide field of view scan at
100 nm voxels and once as a high-quality (HQ) scan of the central eighth of the
volume at 50 nm voxels, slightly misaligned as after moving the sample. A second,
unseen sample is scanned in situ at three time steps (swelling, cracks, new
dense phase). Every output has its true phase labels beside it.

Geometry and units
------------------
Positions are in micrometres in the *sample frame*: the LQ volume spans
``[0, shape * 0.1 µm)`` on each axis, LQ voxel ``k`` has its centre at
``(k + 0.5) * 0.1 µm`` and HQ voxels subdivide LQ voxels (two per LQ voxel and
axis). The sample is a cylinder along z, air outside. Attenuation
coefficients are *effective* values in 1/µm: nano-tomography of such anodes is
done with phase contrast (holo-tomography and Paganin-type phase retrieval in
the paper), whose retrieved images behave like attenuation maps with a much
better signal-to-noise ratio than true absorption at 29.6 keV would give.

Modules
-------
``presets``        :data:`PRESETS` (sample, acquisitions, grey mapping), :data:`ATTENUATION_PER_UM`
``phantom``        :class:`Phantom`, particle packing, binder, in situ cracks and dense phase
``rasterisation``  :func:`rasterise` a phantom on a grid; attenuation, phase fractions, block mode/mean
``projection``     :func:`~.projection.radon_stack`: scikit-image's radon of every slice at once
``acquisition``    the scan model (:func:`acquire_slices`, :func:`scan_phantom`), the ideal scan and the
                   Noise2Inverse halves of one scan (:func:`acquire_scan_products`), grey mapping, misalignment
``calibration``    what a scan resolves: edge FWHM, noise, CNR, rings, the measured PSF (:func:`measured_psf`)
``real_volumes``   real CT volumes from ``spam.datasets`` through the same scans
``beamline``       :func:`simulate_beamline`, the files of chapter 01
``figures``, ``tables``  what chapter 01 shows (matplotlib is imported only when a figure is drawn)

Everything public is importable from ``indi4d.simulate`` itself. Phase labels
are those of :mod:`indi4d.phases` (re-exported here).
"""

from ..phases import BINDER, DENSE, PARTICLE, PHASE_NAMES, PORE
from .acquisition import (SCAN_PRODUCTS, acquire_scan_products, acquire_slices, draw_misalignment, grey_to_mu,
                          mu_to_grey, scan_axes, scan_phantom, subdivision_axes)
from .beamline import simulate_beamline
from .calibration import (acquisition_characteristics, calibration_disc, disc_edge_fwhm, measured_psf, radial_profile,
                          ring_index)
from .phantom import Phantom, add_insitu_features, build_phantom, insitu_state, lognormal_radii, random_rotations
from .presets import ATTENUATION_PER_UM, PRESETS
from .figures import (central_slices, common_grey_range, hq_region_um, plot_hq_vs_truth, plot_insitu_series,
                      plot_lq_with_hq_fov, plot_orthogonal_views, plot_real_volume)
from .rasterisation import attenuation_of, block_mean, block_mode, phase_fractions, rasterise
from .real_volumes import REAL_VOLUMES, acquire_real_volume, segment_real_volume
from .tables import PAPER_FWHM_NM, calibration_table, field_of_view_um, files_table, insitu_table, scan_table

#: By topic, in the order of the modules above.
__all__ = [
    "PORE", "BINDER", "PARTICLE", "DENSE", "PHASE_NAMES",
    "scan_axes", "subdivision_axes", "acquire_slices", "SCAN_PRODUCTS", "acquire_scan_products", "mu_to_grey", "grey_to_mu", "scan_phantom", "draw_misalignment",
    "simulate_beamline",
    "radial_profile", "disc_edge_fwhm", "ring_index", "calibration_disc", "acquisition_characteristics",
    "measured_psf",
    "Phantom", "lognormal_radii", "random_rotations", "build_phantom", "add_insitu_features", "insitu_state",
    "ATTENUATION_PER_UM", "PRESETS",
    "rasterise", "attenuation_of", "phase_fractions", "block_mode", "block_mean",
    "REAL_VOLUMES", "segment_real_volume", "acquire_real_volume",
    "hq_region_um", "central_slices", "common_grey_range", "plot_lq_with_hq_fov", "plot_hq_vs_truth",
    "plot_orthogonal_views", "plot_insitu_series", "plot_real_volume",
    "PAPER_FWHM_NM", "field_of_view_um", "scan_table", "calibration_table", "insitu_table", "files_table",
]
