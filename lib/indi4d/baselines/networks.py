"""The GAN baseline's discriminator: a conditional PatchGAN (pix2pix)."""

import keras
from keras import layers


def patchgan_receptive_field(n_layers=3):
    """Side (pixels) of the input patch that one output of :func:`build_patchgan` sees.

    The network has ``n_layers`` 4x4 stride-2 convolutions, then two 4x4
    stride-1 ones at the coarsest scale. A k x k convolution where one feature
    pixel spans ``j`` input pixels widens the field by ``(k - 1) j``::

        R = 1 + 3 (1 + 2 + ... + 2**(n-1)) + 2 * 3 * 2**n = 9 * 2**n - 2

    so 16, 34 and 70 pixels for 1, 2 and 3 layers (pix2pix's "70 x 70 PatchGAN").

    Returns
    -------
    int
    """
    if n_layers < 1:
        raise ValueError(f"patchgan_receptive_field: n_layers must be >= 1, got {n_layers}")
    return 9 * 2 ** int(n_layers) - 2


def build_patchgan(in_channels=1, base_filters=64, n_layers=3, norm="instance", seed=None, name="patchgan"):
    """A conditional PatchGAN discriminator (pix2pix).

    The condition (the LQ input) and the image to judge (real HQ or generated)
    are stacked as channels; ``n_layers`` 4x4 stride-2 convolutions
    (``base_filters``, doubled per layer up to 8x) with leaky ReLU (0.2) follow,
    then a 4x4 stride-1 convolution and a 4x4 convolution to one channel. Each
    output value is the logit "this patch is real" for the input patch of side
    :func:`patchgan_receptive_field` around it.

    Parameters
    ----------
    in_channels : int
        Channels of each of the two inputs.
    base_filters : int
        Filters of the first convolution (pix2pix: 64).
    n_layers : int
        Stride-2 convolutions (3: 70 x 70 patches).
    norm : {"instance", "none"}
        Normalisation after every convolution but the first and last (pix2pix
        uses batch norm with batch size 1, i.e. instance norm).
    seed : int, optional
        Seed of the N(0, 0.02) weight initialisation.
    name : str

    Returns
    -------
    keras.Model
        Inputs ``[condition (B, H, W, C), image (B, H, W, C)]``; output logits
        ``(B, H / 2**n_layers, W / 2**n_layers, 1)`` float32 (``H`` and ``W``
        multiples of ``2**n_layers``).
    """
    if norm not in ("instance", "none"):
        raise ValueError(f"build_patchgan: norm must be 'instance' or 'none', got {norm!r}")
    if n_layers < 1 or base_filters < 1:
        raise ValueError(f"build_patchgan: need n_layers >= 1 and base_filters >= 1, got {n_layers}, {base_filters}")
    counter = iter(range(1000))

    def conv(filters, strides, lname):
        # pix2pix initialises every convolution from N(0, 0.02)
        init = keras.initializers.RandomNormal(0.0, 0.02, seed=None if seed is None else seed + next(counter))
        return layers.Conv2D(filters, 4, strides=strides, padding="same", kernel_initializer=init, name=lname)

    condition = keras.Input((None, None, in_channels), name="condition")
    image = keras.Input((None, None, in_channels), name="image")
    x = layers.Concatenate(name="stack")([condition, image])
    x = conv(base_filters, 2, "down0")(x)
    x = layers.LeakyReLU(0.2, name="down0_lrelu")(x)
    for i in range(1, n_layers + 1):
        strides = 2 if i < n_layers else 1  # the last feature layer keeps the resolution
        x = conv(base_filters * min(2**i, 8), strides, f"down{i}" if strides == 2 else "feature")(x)
        if norm == "instance":
            x = layers.GroupNormalization(groups=-1, name=f"norm{i}")(x)  # groups = channels: instance norm
        x = layers.LeakyReLU(0.2, name=f"lrelu{i}")(x)
    logits = conv(1, 1, "patch_logits")(x)
    return keras.Model([condition, image], logits, name=name)
