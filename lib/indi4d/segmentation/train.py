"""Training the segmentation U-Net on one labelled slice, through the project's one training loop.

The loop of :mod:`indi4d.training` takes ``(lq, hq)`` batches; here they are
``(image, labels)``: ``image`` (B, h, w, 1) float32 (the slice in [-1, 1], the
pairs' normalisation) and ``labels`` (B, h, w, 1) float32 holding the integer
phase of each pixel. The objective is the pixel-wise cross-entropy of the
network's softmax (:func:`cross_entropy_objective`), minimised by
:func:`indi4d.training.fit` (one-cycle cosine Adam, checkpoints, resume, the
model folder's ``config.json`` / ``history.json`` / ``model.keras``).

Augmentation (:func:`augmented_batches`): random crops, flips and quarter
turns applied alike to image and labels, and a random grey-level gain and
offset on the image only (the LQ, InDI and HQ slices differ in contrast).
Epoch ``e`` draws from ``default_rng(seed * SEED_STRIDE + e)``, so a resumed
run replays the same batches.
"""

import keras
import numpy as np
import tensorflow as tf

from .. import model_folder
from ..inference.tiling import crop_back, pad_to_multiple
from ..phases import PHASE_NAMES
from ..presets import preset_entry
from ..training import SEED_STRIDE, fit
from .network import PRESETS as NETWORK_PRESETS
from .network import build_attention_unet

#: One-slice training budgets (the same for the LQ, InDI and ideal-HQ networks).
TRAIN_PRESETS = {
    "tiny": {"crop": 32, "batch_size": 4, "epochs": 2, "steps_per_epoch": 20, "max_lr": 3e-3},
    "default": {"crop": 96, "batch_size": 4, "epochs": 20, "steps_per_epoch": 50, "max_lr": 2e-3},
    # a workshop's minutes: the default network, 100 steps on smaller crops of its 192 x 192 slices
    "workshop": {"crop": 64, "batch_size": 4, "epochs": 4, "steps_per_epoch": 25, "max_lr": 3e-3},
    "paper": {"crop": 256, "batch_size": 8, "epochs": 100, "steps_per_epoch": 100, "max_lr": 1e-3},
}
#: Image-only augmentation: gain in [1 - g, 1 + g], offset in [-o, o] (units of the [-1, 1] scale).
GAIN, OFFSET = 0.1, 0.05


def cross_entropy_objective(n_phases=len(PHASE_NAMES)):
    """Pixel-wise cross-entropy of the softmax output, for :func:`indi4d.training.fit`.

    Returns
    -------
    callable
        ``objective(network, image, labels, seed, training)`` -> scalar float32:
        ``mean_pixels(-log p[label])``, with ``labels`` (B, h, w, 1) holding
        phases ``0 .. n_phases - 1`` as floats; ``seed`` unused.
    """

    def objective(network, image, labels, seed, training):
        del seed
        probs = network(image, training=training)
        target = tf.cast(tf.round(labels[..., 0]), tf.int32)
        target = tf.clip_by_value(target, 0, n_phases - 1)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(target, probs))

    return objective


def _check_slice(image, labels, who):
    image, labels = np.asarray(image, np.float32), np.asarray(labels)
    if image.ndim != 2 or image.shape != labels.shape:
        raise ValueError(f"{who}: expected a 2D image and labels of the same shape, got {image.shape} and "
                         f"{labels.shape}")
    return image, labels.astype(np.float32)


def augment(image, labels, rng, crop):
    """One augmented crop: (crop, crop) image and labels, aligned flips/turns, grey gain and offset."""
    y = rng.integers(0, image.shape[0] - crop + 1)
    x = rng.integers(0, image.shape[1] - crop + 1)
    a, b = image[y:y + crop, x:x + crop], labels[y:y + crop, x:x + crop]
    k = int(rng.integers(4))
    a, b = np.rot90(a, k), np.rot90(b, k)
    if rng.random() < 0.5:
        a, b = a[:, ::-1], b[:, ::-1]
    a = a * rng.uniform(1 - GAIN, 1 + GAIN) + rng.uniform(-OFFSET, OFFSET)  # grey gain and offset, image only
    return a, b


def augmented_batches(image, labels, crop, batch_size, steps_per_epoch, seed=0):
    """``train_batches(epoch)`` for the loop: ``steps_per_epoch`` augmented batches of one slice.

    Parameters
    ----------
    image : ndarray, (H, W), float, in [-1, 1]
    labels : ndarray, (H, W), int phases
    crop, batch_size, steps_per_epoch : int
    seed : int

    Returns
    -------
    callable
        ``epoch`` -> list of ``(image, labels)``, each (batch_size, crop, crop, 1) float32.
    """
    image, labels = _check_slice(image, labels, "augmented_batches")
    if crop > min(image.shape):
        raise ValueError(f"augmented_batches: crop {crop} is larger than the {image.shape} slice")

    def batches(epoch):
        rng = np.random.default_rng(seed * SEED_STRIDE + epoch)
        out = []
        for _ in range(steps_per_epoch):
            pairs = [augment(image, labels, rng, crop) for _ in range(batch_size)]
            out.append((np.stack([p[0] for p in pairs])[..., None].astype(np.float32),
                        np.stack([p[1] for p in pairs])[..., None].astype(np.float32)))
        return out

    return batches


def size_factor(network):
    """``2 ** (number of pooling layers)``: slice sides are padded to multiples of it."""
    return 2 ** sum(isinstance(layer, keras.layers.MaxPooling2D) for layer in network.layers)


def predict_phases(network, images, batch_size=4):
    """Phase probabilities of slices, reflect-padded to the network's size factor and cropped back.

    Parameters
    ----------
    network : keras.Model
        From :func:`build_attention_unet`.
    images : ndarray, (H, W) or (n, H, W), float
    batch_size : int

    Returns
    -------
    ndarray, float32, ``images.shape + (n_phases,)``
    """
    a = np.asarray(images, np.float32)
    stack = a[None] if a.ndim == 2 else a
    padded, shape = pad_to_multiple(stack, size_factor(network))
    probs = np.concatenate([np.asarray(network(padded[i:i + batch_size, ..., None], training=False))
                            for i in range(0, len(padded), batch_size)])
    probs = np.moveaxis(crop_back(np.moveaxis(probs, -1, 1), shape), 1, -1).astype(np.float32)
    return probs[0] if a.ndim == 2 else probs


def segment(network, images, batch_size=4):
    """Phase labels (argmax of :func:`predict_phases`), uint8, the shape of ``images``."""
    return np.argmax(predict_phases(network, images, batch_size), axis=-1).astype(np.uint8)


def segmenter_config(slice_shape, *, preset="tiny", network_preset=None, seed=0, n_phases=len(PHASE_NAMES),
                     provenance=None, **overrides):
    """The ``config.json`` that :func:`train_segmenter` writes for these arguments.

    It is the whole recipe of a run (network, budget, seed, the training
    slice's shape and provenance), so a published network whose
    ``config.json`` equals it was trained exactly as this run would train
    (:func:`indi4d.pretrained.install_if_config`).

    Parameters
    ----------
    slice_shape : (int, int)
        Shape of the training slice, pixels.
    preset, network_preset, seed, n_phases, provenance, **overrides
        As in :func:`train_segmenter`.

    Returns
    -------
    dict
        JSON-ready: ``task``, ``network``, ``training``, ``seed``, ``train_slice_shape``
        and, when given, ``provenance``.
    """
    unknown = set(overrides) - set(TRAIN_PRESETS["tiny"])
    if unknown:
        raise ValueError(f"train_segmenter: unknown settings {sorted(unknown)}")
    settings = {**preset_entry(TRAIN_PRESETS, preset), **overrides}
    net_params = dict(preset_entry(NETWORK_PRESETS, network_preset or preset))
    config = {"task": "segmentation", "network": {"n_phases": n_phases, **net_params}, "training": settings,
              "seed": seed, "train_slice_shape": [int(n) for n in slice_shape]}
    if provenance:
        config["provenance"] = dict(provenance)
    return config


def train_segmenter(image, labels, model_dir, *, preset="tiny", network_preset=None, val=None, seed=0,
                    n_phases=len(PHASE_NAMES), max_minutes=None, progress=False, provenance=None, restart=False,
                    **overrides):
    """Train an attention residual U-Net on one labelled slice (the one loop, seeded, resumable).

    Parameters
    ----------
    image : ndarray, (H, W), float, in [-1, 1]
        The training slice.
    labels : ndarray, (H, W), int phases
        Its labels (e.g. :func:`indi4d.segmentation.forest_labels`).
    model_dir : str or Path
        The model folder (refused when it holds another run).
    preset : str
        Key of :data:`TRAIN_PRESETS`; ``network_preset`` (default: the same
        name) of :data:`indi4d.segmentation.network.PRESETS`.
    val : (image, labels), optional
        A validation slice; default: the training slice itself.
    seed : int
        Weights, batches and the loop's seeds.
    n_phases : int
    max_minutes : float, optional
        The loop's wall-time safeguard.
    progress : bool
    provenance : dict, optional
        Stored in ``config.json`` (e.g. a hash of the training slice): a
        finished folder is reused only for the same provenance.
    restart : bool
        Discard a folder holding another run (other config or provenance)
        instead of refusing it.
    **overrides
        Keys of :data:`TRAIN_PRESETS` entries.

    Returns
    -------
    network : keras.Model
    summary : dict
        :func:`indi4d.training.run_loop`'s summary.
    """
    image, labels = _check_slice(image, labels, "train_segmenter")
    config = segmenter_config(image.shape, preset=preset, network_preset=network_preset, seed=seed,
                              n_phases=n_phases, provenance=provenance, **overrides)
    settings = config["training"]
    net_params = {k: v for k, v in config["network"].items() if k != "n_phases"}
    network = build_attention_unet(n_phases=n_phases, seed=seed, **net_params)
    val_image, val_labels = _check_slice(*(val if val is not None else (image, labels)), "train_segmenter (val)")
    padded, _ = pad_to_multiple(np.stack([val_image, val_labels]), size_factor(network))
    val_labels_padded = np.rint(padded[1]).astype(np.float32)  # reflect padding keeps labels integer
    val_batches = [(padded[0][None, ..., None], val_labels_padded[None, ..., None])]
    if restart:
        from ..model_folder import accept_config

        accept_config(model_dir, config, restart=True, who="train_segmenter")
    train = augmented_batches(image, labels, settings["crop"], settings["batch_size"], settings["steps_per_epoch"],
                              seed)
    summary = fit(network, train, val_batches, cross_entropy_objective(n_phases), model_dir,
                  epochs=settings["epochs"], steps_per_epoch=settings["steps_per_epoch"], max_lr=settings["max_lr"],
                  seed=seed, max_minutes=max_minutes, config=config, progress=progress)
    model_folder.write_summary(model_dir, summary)  # steps, seconds, machine, commit: a published U-Net's card
    return network, summary
