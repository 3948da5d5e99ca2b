"""The InDI network: a time-conditioned U-Net with a dilated bottleneck.

The architecture follows the paper's description (Materials and methods of
*GenAI-enhanced 4D nano-tomography*, J. Mater. Chem. A 2025):

* a U-Net with skip connections, ``base_filters`` in the first block, doubled
  after every down-sampling block;
* 3x3 kernels everywhere except the 7x7 first and last convolutions;
* few down-sampling blocks; the bottleneck instead stacks residual blocks of
  plain (dilation 1) and dilated convolutions, which widens the receptive field
  without losing resolution;
* swish activations, ``tanh`` on the output (``head="tanh"``, the paper's) or
  none (``head="linear"``);
* ``parametrisation="x"``: the network returns the restored image directly
  (the paper's); ``"residual"``: it returns ``F = x_t - t g(x_t, t)``, where
  the U-Net's output ``g`` estimates the velocity ``y - x`` (for the noise-free
  blend ``x_t - t (y - x) = x``), so at small ``t`` each step only refines
  ``x_t`` instead of re-drawing the whole image (:class:`ResidualParametrisation`);
* the time ``t`` enters through a sin/cos embedding, a dense layer, and a
  per-block dense projection added inside every residual block;
* the last up-sampling is a sub-pixel convolution (convolution to ``4 C``
  channels, then depth-to-space), initialised ICNR so that at initialisation it
  is exactly a nearest-neighbour up-sampling: no checkerboard to unlearn.

:func:`build_unet` returns a Keras 3 functional model with inputs
``[image (B, H, W, C), t (B,)]`` (or only ``image`` with
``time_embedding=False``, the form chapter 05 uses for its CNN/GAN baselines)
and output ``(B, H, W, out_channels)`` (in [-1, 1] for the default tanh head
and x-parametrisation: :func:`output_is_bounded`). ``H`` and ``W`` may be any
multiple of ``2 ** depth``.
"""

import keras
import numpy as np
from keras import layers

from .network_layers import ICNR, DepthToSpace, ResidualParametrisation, SinusoidalTimeEmbedding

__all__ = [
    "HEADS", "ICNR", "PARAMETRISATIONS", "PRESETS", "DepthToSpace", "ResidualParametrisation",
    "SinusoidalTimeEmbedding", "architecture_table", "build_unet", "conv_flops_per_pixel", "count_parameters",
    "influence_radius", "output_is_bounded", "receptive_field",
]

#: Network sizes. ``tiny``: tests (thousands of parameters); ``default``: the
#: book on two CPU cores (DESIGN.md section 8: base 16, one down block, dilated
#: bottleneck); ``paper``: the paper's width (64 filters) for a GPU. The paper
#: does not state its depth or bottleneck dilations; ``paper`` uses two down
#: blocks and dilations 1, 2, 4, 8.
PRESETS = {
    "tiny": {"base_filters": 8, "depth": 1, "blocks_per_level": 1, "dilations": (1, 2), "time_dim": 16},
    "default": {"base_filters": 16, "depth": 1, "blocks_per_level": 1, "dilations": (1, 2, 4), "time_dim": 64},
    "paper": {"base_filters": 64, "depth": 2, "blocks_per_level": 2, "dilations": (1, 2, 4, 8), "time_dim": 256},
}


#: ``head`` and ``parametrisation`` values of :func:`build_unet`.
HEADS = ("tanh", "linear")
PARAMETRISATIONS = ("x", "residual")


def output_is_bounded(network):
    """True when a network's output is guaranteed in [-1, 1]: its last layer is a tanh convolution.

    Parameters
    ----------
    network : keras.Model
        e.g. from :func:`build_unet`.

    Returns
    -------
    bool
        False for a linear head or the residual parametrisation (whose output
        the InDI sampler clips at its end), and for anything that is not a
        Keras model.
    """
    if not isinstance(network, keras.Model) or not network.layers:
        return False
    last = network.layers[-1]
    activation = getattr(last, "activation", None)
    return isinstance(last, layers.Conv2D) and getattr(activation, "__name__", "") == "tanh"


def _conv(filters, kernel, name, dilation=1, strides=1, activation=None, initializer="glorot_uniform"):
    return layers.Conv2D(
        filters, kernel, strides=strides, dilation_rate=dilation, padding="same",
        activation=activation, kernel_initializer=initializer, name=name,
    )


def _residual_block(x, temb, filters, name, dilation=1):
    """Two 3x3 convolutions (dilated by ``dilation``) with the time projection added between them.

    ``out = skip(x) + swish(conv2(swish(conv1(x)) + dense(temb)))``; ``skip`` is
    a 1x1 convolution when the channel count changes, else the identity.
    """
    h = _conv(filters, 3, f"{name}_conv1", dilation=dilation, activation="swish")(x)
    if temb is not None:
        # the time projection shifts every channel's input to the second convolution
        proj = layers.Dense(filters, name=f"{name}_time")(temb)
        h = layers.Add(name=f"{name}_add_time")([h, layers.Reshape((1, 1, filters), name=f"{name}_time_hw")(proj)])
    h = _conv(filters, 3, f"{name}_conv2", dilation=dilation, activation="swish")(h)
    if x.shape[-1] != filters:
        x = _conv(filters, 1, f"{name}_skip")(x)
    return layers.Add(name=f"{name}_out")([x, h])


def build_unet(
    base_filters=16,
    depth=1,
    blocks_per_level=1,
    dilations=(1, 2, 4),
    time_dim=64,
    time_embedding=True,
    in_channels=1,
    out_channels=1,
    subpixel_init="icnr",
    seed=None,
    name="indi_unet",
    head="tanh",
    parametrisation="x",
):
    """Build the InDI U-Net.

    Parameters
    ----------
    base_filters : int
        Filters of the first block; doubled after every down-sampling block
        (paper: 64).
    depth : int
        Number of down-sampling (stride-2) blocks, >= 1. Inputs must have ``H``
        and ``W`` divisible by ``2 ** depth``.
    blocks_per_level : int
        Residual blocks at each resolution level, on the way down and up.
    dilations : sequence of int
        One residual block per entry in the bottleneck, with that dilation
        rate (1 = plain convolution).
    time_dim : int
        Width of the sin/cos time embedding and of the dense layer after it.
    time_embedding : bool
        ``True``: inputs ``[image, t]``. ``False``: input ``image`` only (a plain
        image-to-image regressor, used for the CNN/GAN baselines).
    in_channels, out_channels : int
        Channels of the input image and of the output.
    subpixel_init : {"icnr", "random"}
        Initialisation of the sub-pixel convolution: ICNR (starts as
        nearest-neighbour up-sampling) or plain Glorot-uniform (starts with a
        checkerboard; for comparison only).
    seed : int, optional
        Calls ``keras.utils.set_random_seed(seed)`` first so the initial weights
        are reproducible.
    name : str
        Model name.
    head : {"tanh", "linear"}
        Activation of the last 7x7 convolution: ``tanh`` (output in [-1, 1],
        the paper's) or none.
    parametrisation : {"x", "residual"}
        ``"x"``: the output is the last convolution's. ``"residual"``: the
        last convolution gives ``g`` and the model returns ``x_t - t g``
        (:class:`ResidualParametrisation`; ``image - g`` without time input);
        needs ``in_channels == out_channels``.

    Returns
    -------
    keras.Model
        Inputs ``image`` (B, H, W, in_channels) float32 and, with
        ``time_embedding``, ``t`` (B,) float32 in [0, 1]; output
        (B, H, W, out_channels) float32, in [-1, 1] for ``head="tanh"`` with
        ``parametrisation="x"`` (:func:`output_is_bounded`).
    """
    if int(depth) < 1:
        raise ValueError(f"build_unet: depth must be >= 1, got {depth}")
    if int(base_filters) < 1 or int(blocks_per_level) < 1:
        raise ValueError("build_unet: base_filters and blocks_per_level must be >= 1")
    if not dilations or any(int(d) < 1 for d in dilations):
        raise ValueError(f"build_unet: dilations must be positive integers, got {dilations}")
    if subpixel_init not in ("icnr", "random"):
        raise ValueError(f"build_unet: subpixel_init must be 'icnr' or 'random', got {subpixel_init!r}")
    if head not in HEADS:
        raise ValueError(f"build_unet: head must be one of {HEADS}, got {head!r}")
    if parametrisation not in PARAMETRISATIONS:
        raise ValueError(f"build_unet: parametrisation must be one of {PARAMETRISATIONS}, got {parametrisation!r}")
    if parametrisation == "residual" and int(in_channels) != int(out_channels):
        raise ValueError(f"build_unet: the residual parametrisation needs in_channels == out_channels, got "
                         f"{in_channels} and {out_channels}")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))

    image = keras.Input((None, None, in_channels), name="image")
    inputs = [image]
    temb = None
    if time_embedding:
        t = keras.Input((), name="t")
        inputs.append(t)
        temb = SinusoidalTimeEmbedding(time_dim, name="t_sincos")(t)
        temb = layers.Dense(time_dim, activation="swish", name="t_dense")(temb)

    filters = [base_filters * 2**level for level in range(depth + 1)]
    x = _conv(filters[0], 7, "stem_7x7")(image)

    skips = []
    for level in range(depth):
        for b in range(blocks_per_level):
            x = _residual_block(x, temb, filters[level], f"down{level}_res{b}")
        skips.append(x)
        # stride-2 3x3 convolution halves H, W; the filters double after it
        x = _conv(filters[level + 1], 3, f"down{level}_stride2", strides=2, activation="swish")(x)

    for d in dilations:
        x = _residual_block(x, temb, filters[depth], f"bottleneck_d{d}", dilation=int(d))

    for level in reversed(range(depth)):
        if level == 0:
            # sub-pixel convolution: conv to 4 C channels, pixel shuffle; ICNR = nearest-neighbour at start
            init = ICNR(2, seed=seed) if subpixel_init == "icnr" else "glorot_uniform"
            x = _conv(filters[0] * 4, 3, "up0_subpixel_conv", initializer=init)(x)
            x = DepthToSpace(2, name="up0_depth_to_space")(x)
            x = layers.Activation("swish", name="up0_swish")(x)
        else:
            x = layers.UpSampling2D(2, interpolation="nearest", name=f"up{level}_nearest")(x)
            x = _conv(filters[level], 3, f"up{level}_conv", activation="swish")(x)
        x = layers.Concatenate(name=f"up{level}_skip")([x, skips[level]])
        for b in range(blocks_per_level):
            x = _residual_block(x, temb, filters[level], f"up{level}_res{b}")

    out = _conv(out_channels, 7, "head_7x7", activation="tanh" if head == "tanh" else None)(x)
    if parametrisation == "residual":
        # the head estimates the velocity g ~ y - x; F = x_t - t g (t = 1 without time input)
        out = ResidualParametrisation(name="residual_x_t_minus_t_g")(inputs + [out])
    model = keras.Model(inputs if time_embedding else image, out, name=name)
    return model


def receptive_field(base_filters=None, depth=1, blocks_per_level=1, dilations=(1, 2, 4), **_ignored):
    """Side length (pixels) of the theoretical receptive field of :func:`build_unet`.

    Counted along the deepest path (through the bottleneck): a k x k
    convolution with dilation d applied where one feature pixel spans ``j``
    input pixels widens the field by ``(k - 1) d j``.

    Parameters
    ----------
    depth, blocks_per_level, dilations
        As in :func:`build_unet` (other keys, such as ``base_filters``, are
        accepted and ignored so a config dict can be passed with ``**``).

    Returns
    -------
    int
        Odd side length ``R``; output pixel ``(i, j)`` depends only on input
        pixels within ``(R - 1) / 2`` of it.
    """
    grow = 6  # stem 7x7
    for level in range(depth):
        j = 2**level
        grow += blocks_per_level * 2 * 2 * j  # residual blocks: two 3x3 convolutions
        grow += 2 * j  # the stride-2 3x3 convolution reads at the finer scale
    j = 2**depth
    grow += sum(2 * 2 * int(d) * j for d in dilations)  # bottleneck: two dilated 3x3 per block
    for level in reversed(range(depth)):
        grow += 2 * 2 ** (level + 1)  # up-sampling 3x3 convolution at the coarser scale
        grow += blocks_per_level * 2 * 2 * 2**level
    grow += 6  # head 7x7
    return 1 + grow


def influence_radius(depth=1, blocks_per_level=1, dilations=(1, 2, 4), **_ignored):
    """How far (pixels) an input pixel can change the output of :func:`build_unet`.

    Half the receptive field, plus ``2 ** depth`` because stride-2 convolutions
    with "same" padding read one pixel more on one side than the other.
    Tiles whose discarded margin is at least this wide give exactly the
    whole-image result (see :mod:`indi4d.inference`).

    Returns
    -------
    int
    """
    rf = receptive_field(depth=depth, blocks_per_level=blocks_per_level, dilations=dilations)
    return (rf - 1) // 2 + 2**depth


def conv_flops_per_pixel(network, probe_size=64):
    """Multiply-add FLOPs per output pixel of one forward pass through the convolutions.

    Each Conv2D costs ``2 k_h k_w C_in C_out`` FLOPs per pixel *of its own
    output*; a layer at half resolution therefore costs a quarter per output
    pixel. The resolution of every convolution is read off a probe forward
    pass, so this holds for any model built of Conv2D layers (the baselines
    too). Dense layers of the time path (per sample, not per pixel),
    activations and additions are left out: they are < 1 % here.

    Parameters
    ----------
    network : keras.Model
        Inputs ``image`` (and optionally ``t``) as in :func:`build_unet`.
    probe_size : int
        Side of the probe image; a multiple of the network's down-sampling factor.

    Returns
    -------
    float
        FLOPs per output pixel.
    """
    convs = [layer for layer in network.layers if isinstance(layer, layers.Conv2D)]
    if not convs:
        raise ValueError(f"{network.name}: no Conv2D layers to count")
    probe = keras.Model(network.inputs, [layer.output for layer in convs])
    c_in = network.inputs[0].shape[-1]
    image = np.zeros((1, probe_size, probe_size, c_in), np.float32)
    feed = [image, np.zeros((1,), np.float32)] if len(network.inputs) == 2 else [image]
    outs = probe(feed, training=False)
    total = 0.0
    for layer, out in zip(convs, outs):
        kh, kw, cin, cout = layer.kernel.shape
        fraction = out.shape[1] * out.shape[2] / float(probe_size * probe_size)
        total += 2.0 * kh * kw * cin * cout * fraction
    return total


def architecture_table(network, probe_size=64):
    """One row per convolution of a network: what it does and at which resolution.

    Parameters
    ----------
    network : keras.Model
    probe_size : int
        Side of the probe image used to read each layer's resolution.

    Returns
    -------
    list of dict
        ``name``, ``kernel`` (k), ``dilation``, ``stride``, ``filters``,
        ``scale`` (input pixels per feature pixel along one axis), ``params``.
    """
    convs = [layer for layer in network.layers if isinstance(layer, layers.Conv2D)]
    probe = keras.Model(network.inputs, [layer.output for layer in convs])
    c_in = network.inputs[0].shape[-1]
    image = np.zeros((1, probe_size, probe_size, c_in), np.float32)
    feed = [image, np.zeros((1,), np.float32)] if len(network.inputs) == 2 else [image]
    outs = probe(feed, training=False)
    return [
        {"name": layer.name, "kernel": layer.kernel_size[0], "dilation": layer.dilation_rate[0],
         "stride": layer.strides[0], "filters": layer.filters, "scale": probe_size // out.shape[1],
         "params": int(layer.count_params())}
        for layer, out in zip(convs, outs)
    ]


def count_parameters(network):
    """Number of trainable parameters (int)."""
    return int(sum(np.prod(w.shape) for w in network.trainable_weights))
