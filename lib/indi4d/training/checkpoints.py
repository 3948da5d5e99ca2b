"""Checkpoints of any set of networks and optimisers: weights, optimiser state and loop state.

A checkpoint is the folder ``MODEL_DIR/checkpoints/ckpt_<step>`` (written and
found by :mod:`indi4d.model_folder`). For every :class:`Part` it holds the
network's weights and its optimiser's variables, plus the loop state
``state.json`` (written last: its presence marks a complete checkpoint)::

    InDI, CNN:  model.weights.h5  optimizer.npz  state.json
    GAN:        generator.weights.h5  discriminator.weights.h5
                g_optimizer.npz  d_optimizer.npz  state.json
"""

from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from .. import model_checkpoints
from ..files import write_json


@dataclass
class Part:
    """One network the loop trains, its optimiser, and where each is stored.

    Attributes
    ----------
    network : keras.Model
    optimizer : keras.optimizers.Optimizer
    weights_file, optimizer_file : str
        File names inside a checkpoint folder.
    final : str
        Key of :data:`indi4d.model_folder.FILES` the trained network is saved
        as when the loop ends (``"model"`` or ``"discriminator"``).
    """

    network: keras.Model
    optimizer: keras.optimizers.Optimizer
    weights_file: str = "model.weights.h5"
    optimizer_file: str = "optimizer.npz"
    final: str = "model"

    def build(self):
        """Create the optimiser's (zero) variables for the network's trainable weights; once per run."""
        self.optimizer.build(self.network.trainable_variables)

    def has_average(self):
        """True when the optimiser keeps an exponential moving average (EMA) of the weights and has stepped."""
        return bool(getattr(self.optimizer, "use_ema", False)) and int(self.optimizer.iterations.numpy()) > 0


@contextmanager
def averaged_weights(parts):
    """Inside the block, every part whose optimiser keeps an EMA of the weights holds those averages.

    Keras 3's ``use_ema=True`` keeps ``a_k = m a_{k-1} + (1 - m) w_k`` (``a_1 =
    w_1``) in the optimiser; :meth:`keras.optimizers.Optimizer.finalize_variable_values`
    writes it into the weights. The raw weights are copied first and put back
    exactly on leaving, so training (and its checkpoints, which hold the raw
    weights and the averages) goes on as if nothing happened. Parts without an
    EMA are left alone.

    Parameters
    ----------
    parts : sequence of Part
    """
    saved = []
    for part in parts:
        if part.has_average():
            variables = part.network.trainable_variables
            saved.append((variables, [v.numpy().copy() for v in variables]))
            part.optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variables, values in saved:
            for var, value in zip(variables, values):
                var.assign(value)


def write_state(model_dir, parts, state, keep=2):
    """Write every part's weights and optimiser variables and the loop ``state`` as one checkpoint.

    The folder is assembled under a temporary name and renamed when complete
    (:func:`indi4d.model_checkpoints.write_checkpoint`), so a run killed while
    saving keeps its previous checkpoint.

    Parameters
    ----------
    model_dir : Path
    parts : sequence of Part
    state : dict
        JSON-serialisable loop state; must hold ``global_step``.
    keep : int
        Most recent checkpoints kept.

    Returns
    -------
    Path
        The checkpoint folder.
    """

    _check_free_space(model_dir, parts)

    def write(folder):
        for part in parts:
            part.network.save_weights(folder / part.weights_file)
            np.savez(folder / part.optimizer_file, *[np.asarray(v.numpy()) for v in part.optimizer.variables])
        write_json(folder / "state.json", state)

    return model_checkpoints.write_checkpoint(model_dir, state["global_step"], write, keep=keep)


#: A checkpoint is refused (before h5py writes a byte) unless the disk has this many times its size free.
FREE_SPACE_FACTOR = 2.0


def _check_free_space(model_dir, parts):
    """Refuse a checkpoint the disk cannot hold: h5py can crash the process when a write hits a full disk.

    The size is the weights plus the optimiser's variables (both float32).

    Raises
    ------
    OSError
        ``ENOSPC``, naming the folder, the space needed and free, and that the
        run resumes from its last checkpoint once there is room.
    """
    import errno
    import shutil

    need = sum(sum(int(np.prod(v.shape)) * 4 for v in part.network.weights + part.optimizer.variables)
               for part in parts)
    folder = Path(model_dir)
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    if free < FREE_SPACE_FACTOR * need:
        raise OSError(errno.ENOSPC, f"no space for a checkpoint: it needs about {need / 2**20:.1f} MiB, "
                      f"{free / 2**20:.1f} MiB are free; free some space and rerun the same command (training "
                      "resumes from the last checkpoint)", str(folder))


def restore_state(path, parts):
    """Load what :func:`write_state` wrote into built parts; return the loop state (dict).

    Raises
    ------
    ValueError, OSError
        A missing, damaged or mismatched file (the caller falls back to an
        older checkpoint).
    """
    path = Path(path)
    state = model_checkpoints.read_checkpoint_state(path)
    for part in parts:
        part.network.load_weights(path / part.weights_file)
        with np.load(path / part.optimizer_file) as data:
            values = [data[f"arr_{i}"] for i in range(len(data.files))]
        if len(values) != len(part.optimizer.variables):
            raise ValueError(f"{path / part.optimizer_file}: optimiser state has {len(values)} variables, "
                             f"the optimiser {len(part.optimizer.variables)}")
        for var, value in zip(part.optimizer.variables, values):
            var.assign(value)
    return state


def save_checkpoint(model_dir, network, optimizer, state, keep=2):
    """Write one network's checkpoint ``checkpoints/ckpt_<step>`` (see :func:`write_state`)."""
    return write_state(model_dir, [Part(network, optimizer)], state, keep)


def load_checkpoint(path, network, optimizer):
    """Restore one network and its optimiser from a checkpoint folder; return the loop state (dict)."""
    part = Part(network, optimizer)
    part.build()
    return restore_state(path, [part])
