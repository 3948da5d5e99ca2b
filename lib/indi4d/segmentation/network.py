"""The segmentation network: an attention residual U-Net (Keras 3).

* **residual blocks**: two 3x3 convolutions with group normalisation and swish,
  added to the input (through a 1x1 convolution when the width changes);
  group (not batch) normalisation, so one-slice training with small batches
  behaves the same in training and inference;
* **attention gates on the skip connections** (Oktay et al. 2018, "Attention
  U-Net: learning where to look for the pancreas"): the coarser decoder
  feature ``g`` decides which pixels of the skip feature ``x`` pass:
  ``alpha = sigmoid(psi(relu(W_x x_down + W_g g)))``, up-sampled to ``x`` and
  multiplied in;
* **softmax over the phases** on the output.

:func:`build_attention_unet` returns a functional model, input
``image (B, H, W, C)``, output ``(B, H, W, n_phases)`` phase probabilities;
``H`` and ``W`` multiples of ``2 ** depth``. Only built-in layers are used, so
the model saves and loads as a plain ``.keras`` file.
"""

import keras
from keras import layers

#: Network sizes: ``tiny`` for tests, ``default`` for the book on CPUs, ``paper`` for a GPU.
PRESETS = {
    "tiny": {"base_filters": 8, "depth": 2},
    "default": {"base_filters": 16, "depth": 3},
    "paper": {"base_filters": 32, "depth": 4},
}


def _groups(filters):
    return next(g for g in (8, 4, 2, 1) if filters % g == 0)


def residual_block(x, filters, name):
    """Two 3x3 conv-norm-swish layers plus the (projected) input. (B, H, W, C) -> (B, H, W, filters)."""
    shortcut = x if x.shape[-1] == filters else layers.Conv2D(filters, 1, name=f"{name}_proj")(x)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv1")(x)
    y = layers.GroupNormalization(_groups(filters), name=f"{name}_norm1")(y)
    y = layers.Activation("swish", name=f"{name}_act1")(y)
    y = layers.Conv2D(filters, 3, padding="same", name=f"{name}_conv2")(y)
    y = layers.GroupNormalization(_groups(filters), name=f"{name}_norm2")(y)
    y = layers.Add(name=f"{name}_add")([shortcut, y])
    return layers.Activation("swish", name=f"{name}_out")(y)


def attention_gate(x, g, inter_filters, name):
    """Additive attention gate: weight the skip feature ``x`` by a map computed from ``x`` and ``g``.

    Parameters
    ----------
    x : tensor, (B, H, W, Cx)
        Skip connection (encoder feature).
    g : tensor, (B, H/2, W/2, Cg)
        Gating signal (the coarser decoder feature).
    inter_filters : int
        Width of the attention's intermediate space.
    name : str

    Returns
    -------
    tensor, (B, H, W, Cx)
        ``x * alpha`` with ``alpha`` in (0, 1), one weight per pixel.
    """
    theta_x = layers.Conv2D(inter_filters, 2, strides=2, name=f"{name}_theta_x")(x)  # W_x on x, down to g's grid
    phi_g = layers.Conv2D(inter_filters, 1, name=f"{name}_phi_g")(g)  # W_g g
    q = layers.Activation("relu", name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta_x, phi_g]))
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(q)  # (B, H/2, W/2, 1)
    alpha = layers.UpSampling2D(2, interpolation="bilinear", name=f"{name}_up")(alpha)
    return layers.Multiply(name=f"{name}_gate")([x, alpha])  # broadcast over channels


def build_attention_unet(n_phases=4, base_filters=8, depth=2, in_channels=1, seed=0, name="attention_res_unet"):
    """The attention residual U-Net.

    Parameters
    ----------
    n_phases : int
        Output classes (softmax channels).
    base_filters : int
        Width of the first level, doubled per level down.
    depth : int
        Down-sampling steps; inputs must be multiples of ``2 ** depth``.
    in_channels : int
    seed : int
        Weights are drawn after ``keras.utils.set_random_seed(seed)``.
    name : str

    Returns
    -------
    keras.Model
        ``image (B, H, W, in_channels)`` -> ``(B, H, W, n_phases)``, float32, sums to 1 over the last axis.
    """
    keras.utils.set_random_seed(int(seed))
    image = keras.Input((None, None, in_channels), name="image")
    x = residual_block(image, base_filters, "enc0")
    skips = []
    for level in range(1, depth + 1):
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
        x = residual_block(x, base_filters * 2**level, f"enc{level}")
    for level in range(depth - 1, -1, -1):
        filters = base_filters * 2**level
        skip = attention_gate(skips[level], x, max(filters // 2, 1), f"att{level}")
        x = layers.UpSampling2D(2, name=f"up{level}")(x)
        x = layers.Conv2D(filters, 3, padding="same", name=f"up{level}_conv")(x)
        x = layers.Concatenate(name=f"cat{level}")([x, skip])
        x = residual_block(x, filters, f"dec{level}")
    out = layers.Conv2D(n_phases, 1, name="logits")(x)
    out = layers.Activation("softmax", dtype="float32", name="phases")(out)
    return keras.Model(image, out, name=name)
