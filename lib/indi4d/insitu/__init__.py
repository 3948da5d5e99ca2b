"""Chapter 06: the trained model applied, without retraining, to the in situ series of an unseen sample.

* :mod:`~indi4d.insitu.series` -- the LQ series and its truth, grey values and
  labels to attenuation (1/µm), the valid disc;
* :mod:`~indi4d.insitu.enhance` -- InDI (and the CNN) through the one prediction
  path, along xy as the paper or along all three axes and fused; volumes written
  to ``RUN_DIR/insitu/enhanced/``;
* :mod:`~indi4d.insitu.scores` -- CNR, PSNR/SSIM, FWHM in xy and z, false/missed
  particles, error per phase (the dense phase is out of the training domain);
* :mod:`~indi4d.insitu.domain` -- the domain score and sanity check per time
  step, and spam's real volumes enhanced and scored with their domain score;
* :mod:`~indi4d.insitu.run` -- :class:`InSitu`, the orchestrator (results to
  ``RUN_DIR/insitu/metrics.json``);
* :mod:`~indi4d.insitu.tables`, :mod:`~indi4d.insitu.figures` -- what the chapter shows.
"""

from .domain import (REAL_NAMES, domain_record, domain_table, lq_scan_at_dose, real_structure_table, real_structures,
                     series_domain)
from .enhance import (along_axis, direct_volume, enhance_series, enhanced_path, fuse, indi_volume, read_enhanced,
                      stored_if_current, write_enhanced)
from ..plotting import add_scale_bar, nice_length_um  # re-exported: they lived here before moving to indi4d.plotting
from .figures import change_roi, fwhm_bar, plot_edge_profiles, plot_fusion, plot_zoom_series
from .run import InSitu, fusion_summary
from .scores import boundary_band, cnr_masks, dense_summary, phase_errors, score_volume
from .series import (N_TIMES, attenuation_to_grey, grey_to_attenuation, load_series, truth_attenuation,
                     valid_disc)
from .settings import AXES, METHODS, PAPER_TABLE1, PRESETS
from .tables import findings, fusion_table, phase_table, table1, truth_table

__all__ = [
    "REAL_NAMES", "domain_record", "domain_table", "lq_scan_at_dose", "real_structure_table", "real_structures", "series_domain",
    "AXES", "METHODS", "N_TIMES", "PAPER_TABLE1", "PRESETS", "InSitu",
    "add_scale_bar", "along_axis", "attenuation_to_grey", "boundary_band", "change_roi", "cnr_masks",
    "dense_summary", "direct_volume", "enhance_series", "enhanced_path", "findings", "fuse", "fusion_summary",
    "fusion_table", "fwhm_bar", "grey_to_attenuation", "indi_volume", "load_series", "nice_length_um",
    "phase_errors", "phase_table", "plot_edge_profiles", "plot_fusion", "plot_zoom_series", "read_enhanced",
    "score_volume", "stored_if_current", "table1", "truth_attenuation", "truth_table", "valid_disc",
    "write_enhanced",
]
