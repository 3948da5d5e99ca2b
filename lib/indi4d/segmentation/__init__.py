"""Segmentation (chapter 07): scribbles -> random-forest labels, an attention residual U-Net, scores, descriptors.

Modules:

- :mod:`~indi4d.segmentation.scribbles`: the scribbles file (JSON strokes per
  phase), :func:`scribbles_from_labels`, the ilastik-style random-forest pixel
  classifier (:func:`fit_forest`, :func:`predict_forest`, :func:`forest_labels`);
- :mod:`~indi4d.segmentation.network`: :func:`build_attention_unet`
  (residual blocks, attention gates, softmax over phases);
- :mod:`~indi4d.segmentation.train`: :func:`train_segmenter` (one slice,
  augmentation, the one training loop), :func:`segment`, :func:`predict_phases`;
- :mod:`~indi4d.segmentation.scores`: Dice, IoU, boundary F-score, difference maps;
- :mod:`~indi4d.segmentation.descriptors`: :func:`describe` (volume fractions,
  particle count and sizes, porosity, specific surface area, cracks) and
  :func:`swelling`; :mod:`~indi4d.segmentation.particles`: the watershed
  particle separation and the particles' envelopes (cracks);
- :mod:`~indi4d.segmentation.scribble_store`: the book's stored scribbles
  (``package_data/scribbles/``) and the seeded rule that drew them;
- ``indi4d segment`` / ``indi4d describe``: :mod:`~indi4d.segmentation.checks`
  (:func:`check_segment_input`, :func:`check_describe_input`: everything before any
  computation) and :mod:`~indi4d.segmentation.scan` (:func:`segment_scan`,
  :func:`network_scale`, :func:`describe_labels`);
- chapter 07: :mod:`~indi4d.segmentation.series` (LQ, InDI and ideal-HQ images
  on one scale), :mod:`~indi4d.segmentation.run` (:class:`Segmentation`, the
  orchestrator), :mod:`~indi4d.segmentation.tables`,
  :mod:`~indi4d.segmentation.figures`, :mod:`~indi4d.segmentation.settings`.
"""

from .checks import SegmentInputError, check_describe_input, check_segment_input
from .descriptors import (DEFAULTS as DESCRIPTOR_DEFAULTS, crack_mask, describe, descriptor_errors,
                          interface_area_um2, particle_sizes, phase_fractions, separate_particles, solid_mask,
                          specific_surface_area, swelling)
from .figures import (plot_descriptors, plot_forest, plot_particle_swelling, plot_scribbles, plot_segmentations,
                      plot_size_distributions, plot_training_curves)
from .network import PRESETS as NETWORK_PRESETS
from .network import attention_gate, build_attention_unet, residual_block
from .particles import ball_closing, fill_holes
from .run import Segmentation, particle_boxes
from .scores import (boundary_f_score, confusion_matrix, dice, difference_map, iou, phase_scores)
from .scan import describe_labels, network_scale, segment_scan
from .scribbles import (FOREST_DEFAULTS, ScribbleError, check_scribbles, fit_forest, forest_labels, make_scribbles,
                        pixel_features, predict_forest, read_scribbles, scribble_agreement, scribble_mask,
                        scribbles_from_labels, write_scribbles)
from .scribble_store import (SCRIBBLES_DIR, choose_slice, draw_scribbles, scribbles_for_slice, store_scribbles,
                             stored_scribbles_path)
from .series import attenuation_window, ideal_hq, to_network_scale
from .settings import DESCRIPTORS, METHODS
from .settings import PRESETS as CHAPTER_PRESETS
from .tables import descriptor_table, dice_table, forest_table, swelling_table
from .train import (TRAIN_PRESETS, augmented_batches, cross_entropy_objective, predict_phases, segment,
                    train_segmenter)

__all__ = [
    "SegmentInputError", "check_describe_input", "check_segment_input", "describe_labels", "network_scale",
    "segment_scan",
    "CHAPTER_PRESETS", "DESCRIPTORS", "METHODS", "SCRIBBLES_DIR", "Segmentation", "particle_boxes", "attenuation_window",
    "ball_closing", "choose_slice", "descriptor_table", "dice_table", "draw_scribbles", "fill_holes", "forest_table",
    "ideal_hq", "plot_descriptors", "plot_forest", "plot_particle_swelling", "plot_scribbles", "plot_segmentations",
    "plot_size_distributions", "plot_training_curves", "scribbles_for_slice", "store_scribbles", "stored_scribbles_path",
    "swelling_table", "to_network_scale",
    "DESCRIPTOR_DEFAULTS", "FOREST_DEFAULTS", "NETWORK_PRESETS", "TRAIN_PRESETS", "ScribbleError",
    "attention_gate", "augmented_batches", "boundary_f_score", "build_attention_unet", "check_scribbles",
    "confusion_matrix", "crack_mask", "cross_entropy_objective", "describe", "descriptor_errors", "dice",
    "difference_map", "fit_forest", "forest_labels", "interface_area_um2", "iou", "make_scribbles",
    "particle_sizes", "phase_fractions", "phase_scores", "pixel_features", "predict_forest", "predict_phases",
    "read_scribbles", "residual_block", "scribble_agreement", "scribble_mask", "scribbles_from_labels", "segment",
    "separate_particles", "solid_mask", "specific_surface_area", "swelling", "train_segmenter",
    "write_scribbles",
]
