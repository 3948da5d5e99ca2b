"""Prediction with trained networks: one path from a slice to the network and back (chapters 04-06).

* :mod:`~indi4d.inference.tiling` -- pad to the network's size factor, exact
  tiling for any network (:class:`TiledNetwork`), and direct prediction
  (:func:`predict_slices`, one pass: the CNN/GAN baselines);
* :mod:`~indi4d.inference.enhancer` -- a model folder loaded and checked as an
  :class:`Enhancer` (:func:`load_enhancer`);
* :mod:`~indi4d.inference.volumes` -- the InDI sampler on top: slices, images,
  volumes held in memory;
* :mod:`~indi4d.inference.checks` -- an enhancement job checked before any
  computation (:func:`check_enhance_input`), including the domain check
  (:func:`check_domain` against :func:`model_domain_record`);
* :mod:`~indi4d.inference.chunked` -- volume files of any size, slab by slab
  (:func:`enhance_chunked`, ``indi4d enhance``), and the library's one path
  for files (:func:`enhance_file`); the two tasks of one slab are in
  :mod:`~indi4d.inference.slabs`, where they run (this process or
  dask.distributed, :func:`dask_scheduler`) and the progress bar in
  :mod:`~indi4d.inference.execution`.

An enhancer is itself a network callable ``enhancer([x_t, t], training=False)``
that evaluates the U-Net tile by tile, so :func:`indi4d.core.indi.indi_sample` runs
unchanged on slices of any size.
"""

from .enhancer import Enhancer, check_network, expects_time_input, load_enhancer, load_network
from .tiling import (
    PRESETS,
    TiledNetwork,
    crop_back,
    exact_margin,
    pad_to_multiple,
    predict_slices,
    round_up,
    size_factor,
    tile_starts,
    tile_weights,
)
from .checks import (MAX_STEPS, EnhanceInputError, EnhanceJob, check_domain, check_enhance_input, model_domain_record,
                     model_lq_record)
from .chunked import enhance_chunked, enhance_file
from .execution import dask_scheduler
from .volumes import enhance_grey_slice, enhance_image, enhance_slices, enhance_volume

__all__ = [
    "MAX_STEPS", "EnhanceInputError", "EnhanceJob", "check_domain", "check_enhance_input", "model_domain_record", "dask_scheduler", "enhance_chunked",
    "enhance_grey_slice", "model_lq_record",
    "PRESETS", "Enhancer", "TiledNetwork", "check_network", "crop_back", "enhance_file", "enhance_image",
    "enhance_slices", "enhance_volume", "exact_margin", "expects_time_input", "load_enhancer", "load_network",
    "pad_to_multiple", "predict_slices", "round_up", "size_factor", "tile_starts", "tile_weights",
]
