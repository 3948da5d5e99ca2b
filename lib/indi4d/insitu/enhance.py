"""The in situ series enhanced without retraining, along one axis or three (chapter 06).

Every learned method goes through the project's one prediction path
(:mod:`indi4d.inference`): InDI through :func:`indi4d.inference.enhance_volume`
(x2 cubic upscaling of each slice, the model's stored normalisation, InDI at
the stored N, grey values back, then x2 cubic interpolation along the slice
axis), the CNN baseline through :func:`indi4d.inference.predict_slices` (the
same slice path, one network pass).

The paper enhances xy slices and interpolates along z. The LQ voxels are
isotropic (100 nm), so xz and yz slices are just as valid inputs: enhancing
along each of the three axes and averaging (:func:`fuse`) lets every
direction be restored by the network once and interpolated twice instead of
z always being interpolated.

The enhanced volumes are written (atomically, uint16 on the grey scale of the
scans, 50 nm voxels) to ``RUN_DIR/insitu/enhanced/<method>_t<k>.tif`` with
their provenance (input and model sha256, N, axis, seed) in the TIFF
metadata; a file whose provenance matches is reused instead of recomputed.
"""

import time
from pathlib import Path

import numpy as np

from .. import runs
from ..core import preprocess
from .settings import AXES


def along_axis(volume, axis, enhance_slices_first):
    """Apply a slice-wise enhancer with slices taken normal to ``axis``.

    Parameters
    ----------
    volume : ndarray (Z, Y, X)
        LQ grey values.
    axis : int
        0: xy slices (the paper), 1: xz slices, 2: yz slices.
    enhance_slices_first : callable
        ``f(stack) -> enhanced`` for a stack (n, A, B) with slices along axis 0,
        returning (2n, 2A, 2B) (slices enhanced, then interpolated along axis 0).

    Returns
    -------
    ndarray, shape (2Z, 2Y, 2X), the dtype ``f`` returns
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"along_axis: expected a (Z, Y, X) volume, got shape {vol.shape}")
    if axis not in (0, 1, 2):
        raise ValueError(f"along_axis: axis must be 0, 1 or 2, got {axis!r}")
    out = enhance_slices_first(np.moveaxis(vol, axis, 0))
    return np.moveaxis(out, 0, axis)


def indi_volume(volume, enhancer, steps, axis=0, seed=0):
    """InDI enhancement of an LQ volume with slices normal to ``axis``, then cubic interpolation along it.

    Parameters
    ----------
    volume : ndarray (Z, Y, X), real
        LQ grey values (100 nm voxels).
    enhancer : indi4d.inference.Enhancer
        The InDI model folder, loaded (:func:`indi4d.inference.load_enhancer`).
    steps : int
        InDI steps N.
    axis : int
        Slice normal: 0 (xy, the paper), 1 (xz) or 2 (yz).
    seed : int

    Returns
    -------
    ndarray float32 (2Z, 2Y, 2X)
        Enhanced grey values (50 nm voxels).
    """
    from ..inference import enhance_volume

    return along_axis(volume, axis, lambda stack: enhance_volume(stack, enhancer, steps, seed=seed, progress=False))


def direct_volume(volume, enhancer, axis=0, batch_size=4):
    """One-pass (CNN baseline) enhancement of an LQ volume with slices normal to ``axis``.

    Each slice is upscaled x2 (cubic spline), normalised with the model's LQ
    statistics, passed once through the network
    (:func:`indi4d.inference.predict_slices`) and mapped back with its HQ
    statistics; the stack is then upscaled x2 along the slice axis.

    Parameters
    ----------
    volume : ndarray (Z, Y, X), real
    enhancer : indi4d.inference.Enhancer
        A baseline model folder (image input only).
    axis : int
    batch_size : int

    Returns
    -------
    ndarray float32 (2Z, 2Y, 2X)
    """
    from ..inference import predict_slices

    norm = enhancer.normalisation
    if not norm:
        raise ValueError("direct_volume: the enhancer has no normalisation; load it with load_enhancer(model_dir)")

    def run(stack):
        up = preprocess.upscale(stack, 2, axes=(1, 2))  # every slice x2, cubic
        pred = predict_slices(enhancer, preprocess.normalise(up, norm["lq"]), batch_size=batch_size)
        return preprocess.upscale(preprocess.denormalise(pred, norm["hq"]), 2, axes=(0,))

    return along_axis(volume, axis, run)


def fuse(volumes):
    """Fuse enhanced volumes of the same grid by their voxel-wise mean.

    Parameters
    ----------
    volumes : sequence of ndarray, all of one shape
        E.g. the xy-, xz- and yz-enhanced volumes.

    Returns
    -------
    ndarray float32, that shape
        ``mean_i volumes[i]`` (float64 accumulation).
    """
    vols = [np.asarray(v) for v in volumes]
    if not vols:
        raise ValueError("fuse: no volumes given")
    shapes = {v.shape for v in vols}
    if len(shapes) != 1:
        raise ValueError(f"fuse: volumes must share one shape, got {sorted(shapes)}")
    total = np.zeros(vols[0].shape, np.float64)
    for v in vols:
        total += v
    return (total / len(vols)).astype(np.float32)


def enhanced_path(run_dir, name, k):
    """``RUN_DIR/insitu/enhanced/<name>_t<k>.tif``."""
    return runs.artifact(run_dir, "insitu", "enhanced") / f"{name}_t{int(k)}.tif"


def _as_uint16(grey):
    return np.clip(np.rint(np.asarray(grey, np.float64)), 0, 65535).astype(np.uint16)


def stored_if_current(path, provenance):
    """The stored volume at ``path`` when its provenance equals ``provenance``, else None."""
    from ..io import read_metadata, read_volume

    path = Path(path)
    if not path.exists():
        return None
    try:
        if read_metadata(path).get("indi4d_insitu") != provenance:
            return None
        return read_volume(path, expect_ndim=3)[0]
    except (OSError, ValueError):
        return None


def write_enhanced(path, grey, voxel_nm, provenance):
    """Write an enhanced volume (grey values, rounded and clipped to uint16) atomically; return it as uint16."""
    from ..io import write_volume

    vol = _as_uint16(grey)
    write_volume(path, vol, voxel_size_nm=float(voxel_nm), extra={"indi4d_insitu": provenance})
    return vol


def enhance_series(run_dir, series, steps, preset="default", seed=0, fuse_axes=True, with_cnn=True, progress=True):
    """Enhance every time step of the in situ series with InDI (and the CNN), writing each volume.

    Parameters
    ----------
    run_dir : str or Path
        Holds ``model/`` (InDI) and, optionally, ``baselines/cnn``.
    series : dict
        :func:`indi4d.insitu.load_series`.
    steps : int
        InDI steps N (the model's stored choice, :func:`indi4d.model_folder.default_steps`).
    preset : str
        Tiling preset of :func:`indi4d.inference.load_enhancer`.
    seed : int
    fuse_axes : bool
        Also enhance along y and x and write the fusion ``indi_fused``.
    with_cnn : bool
        Enhance with the CNN baseline when ``baselines/cnn/model.keras`` exists.
    progress : bool
        Print one line per volume.

    Returns
    -------
    dict
        ``paths`` {method: [Path per time step]} with methods ``indi_xy``
        (``indi_xz``, ``indi_yz``, ``indi_fused`` when fused; ``cnn``),
        ``seconds`` {method: total seconds spent computing (0 when reused)},
        ``reused`` (number of volumes reused), ``steps``.
    """
    from ..files import file_sha256
    from ..inference import load_enhancer
    from ..model_folder import model_path
    from ..safety import check_output

    model_dir = runs.stage_dir(run_dir, "model")
    runs.require_artifact(run_dir, "model", "model")
    cnn_dir = runs.stage_dir(run_dir, "baselines") / runs.file_name("baselines", "cnn")
    with_cnn = bool(with_cnn) and model_path(cnn_dir, "model").exists()
    out_dir = runs.artifact(run_dir, "insitu", "enhanced")
    check_output(out_dir, inputs=[series["paths"][f"insitu_t{k}"] for k in series["times"]], kind="folder",
                 who="chapter 06")
    out_dir.mkdir(parents=True, exist_ok=True)
    models = {"indi": (model_dir, file_sha256(model_path(model_dir, "model")))}
    if with_cnn:
        models["cnn"] = (cnn_dir, file_sha256(model_path(cnn_dir, "model")))
    loaded = {}

    def enhancer(kind):
        if kind not in loaded:
            loaded[kind] = load_enhancer(models[kind][0], preset=preset, graph=(kind == "indi"))
        return loaded[kind]

    axes = ("xy", "xz", "yz") if fuse_axes else ("xy",)
    jobs = [("indi", f"indi_{a}", a) for a in axes] + ([("cnn", "cnn", "xy")] if with_cnn else [])
    paths = {name: [] for _, name, _ in jobs}
    seconds = {name: 0.0 for _, name, _ in jobs}
    reused = 0
    for i, k in enumerate(series["times"]):
        lq = series["lq"][i]
        lq_sha = file_sha256(series["paths"][f"insitu_t{k}"])
        provs = {}
        for kind, name, axis_name in jobs:
            path = enhanced_path(run_dir, name, k)
            prov = {"method": name, "input_sha256": lq_sha, "model_sha256": models[kind][1],
                    "steps": int(steps) if kind == "indi" else None, "axis": axis_name, "seed": int(seed),
                    "tiling": preset}
            paths[name].append(path)
            provs[name] = prov
            if stored_if_current(path, prov) is not None:
                reused += 1
                continue
            t0 = time.perf_counter()
            if kind == "indi":
                grey = indi_volume(lq, enhancer(kind), steps, axis=AXES[axis_name], seed=seed)
            else:
                grey = direct_volume(lq, enhancer(kind), axis=AXES[axis_name])
            write_enhanced(path, grey, series["voxel_nm"], prov)
            seconds[name] += time.perf_counter() - t0
            if progress:
                print(f"T{k} {name}: {time.perf_counter() - t0:.1f} s -> {path.name}", flush=True)
        if fuse_axes:
            fused_path = enhanced_path(run_dir, "indi_fused", k)
            fused_prov = {"method": "indi_fused", "parts": [provs[f"indi_{a}"] for a in axes]}
            if stored_if_current(fused_path, fused_prov) is None:
                parts = [read_enhanced(paths[f"indi_{a}"][-1]) for a in axes]
                write_enhanced(fused_path, fuse(parts), series["voxel_nm"], fused_prov)
            else:
                reused += 1
            paths.setdefault("indi_fused", []).append(fused_path)
    return {"paths": paths, "seconds": seconds, "reused": reused, "steps": int(steps)}


def read_enhanced(path):
    """An enhanced volume written by :func:`enhance_series` (uint16 grey values, (2Z, 2Y, 2X))."""
    from ..io import read_volume

    return read_volume(path, expect_ndim=3)[0]
