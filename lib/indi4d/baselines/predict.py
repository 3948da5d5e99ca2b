"""Prediction with a trained baseline: the one prediction path of :mod:`indi4d.inference`, one pass.

The CNN and the GAN's generator are plain image-to-image networks: direct
prediction pads each slice to the network's factor, runs it once (tiled
exactly when a slice exceeds the tile) and crops back
(:func:`indi4d.inference.predict_slices`). These two functions keep the
baselines' own names for it.
"""


def load_baseline(model_dir):
    """Load a baseline's ``model.keras`` (the CNN, or the GAN's generator): input ``image`` only.

    The folder's ``config.json`` is checked against the network
    (:func:`indi4d.inference.load_network`).

    Returns
    -------
    keras.Model

    Raises
    ------
    FileNotFoundError
        Naming the file and the chapter that writes it.
    indi4d.model_folder.ModelFolderError
        When the network is not the one ``config.json`` describes.
    """
    from ..inference import load_network

    return load_network(model_dir)[0]


def predict_direct(network, slices, factor=2, batch_size=4):
    """One forward pass of an image-to-image network over normalised slices.

    Parameters
    ----------
    network : keras.Model or indi4d.inference.TiledNetwork
        Input ``image`` (B, H, W, 1) (a baseline from :func:`load_baseline`);
        a Keras model runs whole slices eagerly, a tiled network (e.g.
        ``load_enhancer(model_dir, graph=False)``) tile by tile.
    slices : ndarray, (H, W) or (n, H, W), float, in [-1, 1]
    factor : int
        The network's down-sampling factor (for a Keras model); slices are
        reflect-padded at the bottom/right to a multiple of it and cropped back.
    batch_size : int
        Slices per network call.

    Returns
    -------
    ndarray, float32, the shape of ``slices``
    """
    from ..inference import TiledNetwork, predict_slices

    if not isinstance(network, TiledNetwork):
        network = TiledNetwork(network, factor=int(factor), tile=None, graph=False)
    return predict_slices(network, slices, batch_size=batch_size)
