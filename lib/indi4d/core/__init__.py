"""The InDI method (chapters 02-04): from registered volumes to a network and its sampler.

The pieces the book's method is made of, in the order the data go through them:

- :mod:`~indi4d.core.upscaling`: the cubic x2 onto the HQ grid (:func:`upscale`);
- :mod:`~indi4d.core.preprocess`: disc masks, normalisation to [-1, 1] and back,
  the slice split;
- :mod:`~indi4d.core.deconvolution`: Gaussian PSFs, Wiener and Richardson-Lucy
  (the ``indi-deconv`` targets);
- :mod:`~indi4d.core.pairs`: the pairs folder (``pairs.npz``, ``pairs.json``),
  written by :mod:`indi4d.registration` and read by training;
- :mod:`~indi4d.core.pipeline`: tf.data over the pairs (seeded, aligned crops);
- :mod:`~indi4d.core.network_layers` and :mod:`~indi4d.core.model`: the
  time-conditioned U-Net (:func:`~indi4d.core.model.build_unet`);
- :mod:`~indi4d.core.indi`: the InDI objective and sampler
  (:func:`~indi4d.core.indi.indi_sample`).

Only the names of the modules that load neither TensorFlow nor Keras are
re-exported here, so that importing the package (as ``indi4d.registration``
does) stays light; the network and the sampler are imported as modules:
``from indi4d.core import indi, model``.
"""

from .deconvolution import (deconvolve, deconvolve_normalised, gaussian_psf, richardson_lucy_deconvolve,
                            sigma_from_edge, wiener_deconvolve)
from .pairs import SPLITS, has_hq_halves, load_hq_halves, load_pairs, load_pairs_info, pixel_size_nm, save_pairs
from .pipeline import evaluation_dataset, training_dataset
from .preprocess import denormalise, disc_mask, estimate_disc_radius, fit_normalisation, normalise, split_slices
from .upscaling import upscale

__all__ = [
    "SPLITS", "deconvolve", "deconvolve_normalised", "denormalise", "disc_mask", "estimate_disc_radius",
    "evaluation_dataset", "fit_normalisation", "gaussian_psf", "has_hq_halves", "load_hq_halves", "load_pairs",
    "load_pairs_info", "normalise", "pixel_size_nm", "richardson_lucy_deconvolve", "save_pairs", "sigma_from_edge",
    "split_slices", "training_dataset", "upscale", "wiener_deconvolve",
]
