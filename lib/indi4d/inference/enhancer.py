"""A trained model folder as a tiled network: :class:`Enhancer` and :func:`load_enhancer`.

Loading reads the folder through :mod:`indi4d.model_folder` and checks that
the stored network is the one its ``config.json`` describes (time input or
not, number of stride-2 levels), so a folder whose files do not belong
together is refused with a message naming it instead of giving wrong output.
The same loader serves the InDI network (``RUN_DIR/model``) and the CNN/GAN
baselines (``RUN_DIR/baselines/cnn``, ``.../gan``).
"""

from dataclasses import dataclass
from pathlib import Path

from ..presets import preset_entry
from .tiling import PRESETS, TiledNetwork, exact_margin, size_factor


@dataclass
class Enhancer(TiledNetwork):
    """A trained network with its configuration, normalisation and tiling settings.

    A :class:`~indi4d.inference.tiling.TiledNetwork` whose factor and exact
    margin come from ``config["network"]``. For the InDI network call it like
    the network, ``enhancer([x_t, t], training=False)``, with ``x_t`` (B, H, W, 1)
    float32 and ``t`` (B,) float32; for a baseline ``enhancer(x)``. ``H`` and
    ``W`` must be multiples of :attr:`factor`; images larger than :attr:`tile`
    are evaluated tile by tile (exactly, see :mod:`indi4d.inference.tiling`).

    Attributes
    ----------
    config : dict
        ``config.json`` of the model folder (``network`` holds the build arguments).
    normalisation : dict or None
        ``{"lq": params, "hq": params}`` for :func:`indi4d.core.preprocess.normalise`.
    model_dir : Path or None
    (and those of :class:`~indi4d.inference.tiling.TiledNetwork`; ``factor``
    and, unless given, ``margin`` are derived from ``config``.)
    """

    config: dict = None
    normalisation: dict = None
    model_dir: Path = None

    def __post_init__(self):
        if not isinstance(self.config, dict) or "depth" not in self.config.get("network", {}):
            raise ValueError("Enhancer: config must hold the network's build parameters (config['network'])")
        net = self.config["network"]
        self.factor = size_factor(net)
        if self.margin is None:
            self.margin = exact_margin(net)
        super().__post_init__()


def expects_time_input(config):
    """Whether the network a ``config.json`` describes takes ``[image, t]`` (InDI) or ``image`` only."""
    return bool(config["network"].get("time_embedding", not config.get("baseline")))


def stride2_levels(network):
    """Number of stride-2 convolutions of a Keras network (the U-Net's ``depth``)."""
    count = 0
    for layer in getattr(network, "layers", []):
        strides = getattr(layer, "strides", None)
        if strides is not None and type(layer).__name__ == "Conv2D" and tuple(strides) == (2, 2):
            count += 1
    return count


def check_network(network, config, model_dir):
    """Refuse a loaded network that is not the one ``config["network"]`` describes.

    Raises
    ------
    indi4d.model_folder.ModelFolderError
        Naming the folder, what the configuration says and what the network has.
    """
    from ..model_folder import ModelFolderError, model_path

    net = config.get("network")
    if not isinstance(net, dict) or "depth" not in net:
        raise ModelFolderError(f"{model_path(model_dir, 'config')}: no network parameters ('network' with 'depth')")
    timed = expects_time_input(config)
    n_inputs = len(getattr(network, "inputs", None) or [None])
    if n_inputs != (2 if timed else 1):
        has = "an image and a time input" if n_inputs == 2 else f"{n_inputs} input(s)"
        wants = "an image and a time input (InDI)" if timed else "an image input only (a baseline)"
        raise ModelFolderError(f"{model_dir}: the configuration describes a network with {wants}, but "
                               f"{model_path(model_dir, 'model').name} has {has}; the folder's files do not belong "
                               "together")
    levels = stride2_levels(network)
    if levels != int(net["depth"]):
        raise ModelFolderError(f"{model_dir}: the configuration says depth {int(net['depth'])} (size factor "
                               f"{size_factor(net)}), but {model_path(model_dir, 'model').name} has {levels} "
                               "down-sampling levels; the folder's files do not belong together")


def load_network(model_dir):
    """The Keras network and ``config.json`` of a model folder, checked against each other.

    Returns
    -------
    network : keras.Model
    config : dict

    Raises
    ------
    FileNotFoundError
        When ``model.keras`` or ``config.json`` is missing (naming it and what writes it).
    indi4d.model_folder.ModelFolderError
        When the network and its configuration disagree.
    ValueError
        When ``model.keras`` is not a loadable Keras model.
    """
    import keras

    from ..core import (
        model as _model,  # registers the custom layers for deserialisation
    )
    from ..model_folder import model_path, read_config

    del _model
    path = model_path(model_dir, "model")
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing; train the model first (InDI: `indi4d train` or chapter "
                                "04_training; the CNN/GAN baselines: chapter 05_evaluation)")
    config = read_config(model_dir)
    try:
        network = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # Keras raises several types for a damaged archive
        raise ValueError(f"{path}: not a loadable Keras model ({exc})") from exc
    check_network(network, config, Path(model_dir))
    return network, config


def load_enhancer(model_dir, preset="default", tile=None, margin=None, jit_compile=False, graph=True):
    """Load a model folder (InDI or a baseline) as an :class:`Enhancer`.

    Parameters
    ----------
    model_dir : str or Path
        Holds ``model.keras``, ``config.json`` and ``normalisation.json``.
    preset : {"tiny", "default", "paper"}
        Tiling preset (:data:`~indi4d.inference.tiling.PRESETS`).
    tile, margin : int, optional
        Override the preset's tile size / the exact margin.
    jit_compile : bool
        XLA-compile the forward pass.
    graph : bool
        Run the forward pass as a compiled graph (else eagerly, as Keras does).

    Returns
    -------
    Enhancer

    Raises
    ------
    FileNotFoundError
        When a file is missing (naming it and the command that writes it).
    indi4d.model_folder.ModelFolderError
        When the files do not belong together.
    """
    from ..model_folder import read_normalisation

    tiling = preset_entry(PRESETS, preset)  # an unknown preset is refused before the model is read
    model_dir = Path(model_dir)
    network, config = load_network(model_dir)
    normalisation = read_normalisation(model_dir)
    return Enhancer(network=network, config=config, normalisation=normalisation,
                    tile=int(tile or tiling["tile"]), tile_batch=tiling["tile_batch"], blend=tiling["blend"],
                    margin=margin if margin is not None else tiling["margin"], model_dir=model_dir,
                    graph=graph, jit_compile=jit_compile)
