"""Chapter 06: how far each scan is from the training scan, beside how well the network did on it.

* :func:`domain_record` -- the record a run's scans are scored against: the
  model folder's ``domain.json``, or, for a published network without one,
  computed from the run's own pairs folder (the workshop);
* :func:`series_domain` -- the domain score and the sanity check of every in
  situ time step (:mod:`indi4d.domain`, :mod:`indi4d.evaluation.sanity`);
* :func:`real_structures` -- spam's real CT volumes (snow, concrete; chapter
  01) through the simulated LQ and HQ scans, enhanced without retraining and
  scored against their truth in 1/µm, with their domain score beside;
* :func:`lq_scan_at_dose` -- the training sample's LQ scan at another dose
  (an out-of-domain case of ``benchmarks/domain.py``).
"""

import numpy as np
from scipy import ndimage as ndi

from .. import runs

#: What :func:`real_structures` scans: spam's volumes (chapter 01), in this order.
REAL_NAMES = ("snow", "concrete")


def domain_record(run_dir):
    """``(record, source)`` for the run's model: its ``domain.json``, else computed from ``RUN_DIR/pairs``.

    A published network (the workshop) carries no record and was trained on
    pairs that are not here; the run's own pairs come from the same beamline,
    so their train LQ slices stand in for the training scan (the source says so).
    """
    from ..inference.checks import model_domain_record

    model_dir = runs.stage_dir(run_dir, "model")
    record, source = model_domain_record(model_dir)
    if record is None:
        pairs_dir = runs.stage_dir(run_dir, "pairs")
        runs.require_artifact(run_dir, "pairs", "provenance")
        record, source = model_domain_record(model_dir, pairs_dir=pairs_dir)
        source = f"{source}: the model folder has no domain record"
    return record, source


def scan_domain(volume, record, lq_params):
    """:func:`indi4d.domain.score_scan` of one grey-value volume (JSON-ready dict)."""
    from ..domain import score_scan

    return score_scan(volume, record, lq_params)


def series_domain(run_dir, series, enhancer, steps, seed=0, samples=2, slabs=2):
    """The domain score and the sanity check of every in situ time step.

    Parameters
    ----------
    run_dir : str or Path
    series : dict
        :func:`indi4d.insitu.load_series` (``lq``, ``times``).
    enhancer : indi4d.inference.Enhancer
        The InDI model folder, loaded.
    steps, seed : int
        Those of the enhancement.
    samples, slabs : int
        Of :func:`indi4d.evaluation.sanity.output_sanity`.

    Returns
    -------
    dict
        ``record`` (source), ``warn``, ``refuse``, ``times`` (list of
        ``{"time", "domain": score dict, "sanity": sanity dict}``).
    """
    from ..domain import REFUSE, WARN
    from ..evaluation.sanity import output_sanity

    record, source = domain_record(run_dir)
    lq_params = enhancer.normalisation["lq"]
    rows = [{"time": f"T{k}", "domain": scan_domain(volume, record, lq_params),
             "sanity": output_sanity(enhancer, volume, steps, seed=seed, samples=samples, slabs=slabs)}
            for k, volume in zip(series["times"], series["lq"])]
    return {"record": source, "warn": WARN, "refuse": REFUSE, "times": rows}


def truth_on_hq_grid(truth_mu):
    """The real volume's continuous sample (trilinear in its voxels) at the centres of the x2 finer grid.

    The real voxels are as wide as an LQ voxel, so HQ voxel ``i`` is centred
    at real index ``i / 2 - 1/4`` (the sample that
    :func:`indi4d.simulate.acquire_real_volume` scanned).
    """
    n = truth_mu.shape
    grid = np.meshgrid(*(np.arange(2 * s) / 2.0 - 0.25 for s in n), indexing="ij")
    return ndi.map_coordinates(np.asarray(truth_mu, np.float32), grid, order=1, mode="nearest").astype(np.float32)


def real_structures(run_dir, enhancer, steps, seed=0, names=REAL_NAMES, margin_px=4):
    """spam's real volumes through the simulated scans, enhanced without retraining, scored against the truth.

    Each volume is acquired with the data's preset and seed (chapter 01's
    ``acquire_real_volume``); its LQ grey values are enhanced in xy with z
    interpolation (:func:`indi4d.insitu.indi_volume`), mapped to attenuation
    with the beamline's fixed grey scale and scored in 1/µm, without a grey
    fit, inside the sample cylinder less ``margin_px`` HQ voxels, beside the
    bicubic (tricubic) LQ and the HQ scan. The domain score of the LQ scan
    against the model's record stands beside.

    Returns
    -------
    dict
        ``record``, ``rows``: one dict per volume with ``name``, ``domain``
        (score dict), ``psnr_db`` and ``ssim`` ({"lq", "indi", "hq"}),
        ``contrast`` (5-95 % spread of each in 1/µm, and of the truth),
        ``data_range``; ``steps``.
    """
    from ..core import preprocess
    from ..files import read_json
    from ..metrics import psnr, ssim
    from ..simulate import acquire_real_volume
    from .enhance import indi_volume
    from .series import grey_to_attenuation

    meta = read_json(runs.require_artifact(run_dir, "data", "meta"), "the data folder's metadata")
    record, source = domain_record(run_dir)
    att = meta["attenuation_per_um"]
    data_range = max(att.values()) - min(att.values())
    rows = []
    for name in names:
        real = acquire_real_volume(name, preset=meta["preset"], seed=int(meta["seed"]))
        truth = truth_on_hq_grid(real["truth_mu"])
        n = truth.shape[1]
        mask = preprocess.disc_mask((n, n), radius=real["disc_radius_vox"]["hq"] - margin_px)
        volumes = {"lq": grey_to_attenuation(preprocess.upscale(real["lq_grey"].astype(np.float32), 2), meta),
                   "indi": grey_to_attenuation(indi_volume(real["lq_grey"], enhancer, steps, seed=seed), meta),
                   "hq": grey_to_attenuation(real["hq_grey"], meta)}
        inner = truth[:, mask]
        rows.append({
            "name": name, "domain": scan_domain(real["lq_grey"], record, enhancer.normalisation["lq"]),
            "psnr_db": {k: psnr(v, truth, mask, data_range=data_range) for k, v in volumes.items()},
            "ssim": {k: ssim(v, truth, mask, data_range=data_range) for k, v in volumes.items()},
            "contrast": {**{k: _spread(v[:, mask]) for k, v in volumes.items()}, "truth": _spread(inner)},
            "data_range": float(data_range), "shape_hq": list(truth.shape)})
    return {"record": source, "rows": rows, "steps": int(steps)}


def lq_scan_at_dose(dose, preset="default", seed=0, n_slices=None, progress=False):
    """The LQ scan of sample A (the training sample) at another ``dose``, as uint16 grey values.

    The same phantom as ``lq.tif`` of :func:`indi4d.simulate.simulate_beamline`
    (same preset and seed), the same LQ optics, rings and grey mapping; only the
    photon dose differs, and the noise has its own seed. The slab scanned is
    the first ``n_slices`` LQ slices: below the region the HQ scan (and so the
    training pairs) covers when ``n_slices`` <= Z/4. (Here rather than in
    :mod:`indi4d.simulate`, whose files key the simulated data cache.)

    Parameters
    ----------
    dose : float
        Photons per detector pixel per projection (the presets' LQ dose is 500).
    preset : str
    seed : int
    n_slices : int, optional
        Slices of the slab (default the whole volume).

    Returns
    -------
    ndarray uint16 (n_slices, Y, X)
    """
    from ..presets import resolve
    from ..simulate import PRESETS, build_phantom, mu_to_grey, scan_phantom

    if not dose > 0:
        raise ValueError(f"lq_scan_at_dose: dose must be > 0 photons, got {dose}")
    p = resolve(PRESETS, preset)
    shape = tuple(int(s) for s in p["lq_shape"])
    nz = shape[0] if n_slices is None else int(n_slices)
    if not 0 < nz <= shape[0]:
        raise ValueError(f"lq_scan_at_dose: n_slices must be in 1..{shape[0]}, got {n_slices}")
    phantom = build_phantom(p, seed, "phantom", progress=False)
    # its own noise stream: (seed, a tag no simulator stream uses, the dose in millphotons)
    noise_seed = int(np.random.default_rng([int(seed), 901, int(round(float(dose) * 1000))]).integers(2**31))
    mu, _, _ = scan_phantom(phantom, (0, 0, 0), (nz,) + shape[1:], float(p["lq_voxel_nm"]),
                            dict(p["lq"], dose=float(dose)), p["attenuation_per_um"], rings=p["rings"],
                            seed=noise_seed, progress=progress, desc=f"LQ at dose {dose:g}")
    return mu_to_grey(np.asarray(mu), float(p["grey_offset"]), float(p["grey_per_inv_um"]))


def _spread(values):
    lo, hi = np.percentile(values, [5, 95])
    return float(hi - lo)


def domain_table(results):
    """Markdown: the domain score and sanity check per time step (``results["domain"]`` of :class:`InSitu`)."""
    d = results["domain"]
    rows = ["| time step | domain score | d_hist | noise ratio | edge ratio | verdict | contrast kept | "
            "stochastic spread | sanity |", "|---|---|---|---|---|---|---|---|---|"]
    for r in d["times"]:
        s, c = r["domain"], r["sanity"]
        spread = "–" if c["spread_rel_max"] is None else f"{c['spread_rel_max']:.2f}"
        kept = "–" if c["contrast_ratio_min"] is None else f"{c['contrast_ratio_min']:.2f}"
        rows.append(f"| {r['time']} | {s['score']:.2f} | {s['d_hist']:.2f} | {s['noise_ratio']:.2f} | "
                    f"{s['edge_ratio']:.2f} | {s['verdict']} | {kept} | {spread} | {c['verdict']} |")
    return "\n".join(rows)


def real_structure_table(real):
    """Markdown: each real volume's domain score beside its PSNR/SSIM against the truth."""
    rows = ["| volume | domain score | verdict | PSNR LQ (dB) | PSNR InDI (dB) | PSNR HQ (dB) | SSIM LQ | SSIM InDI | "
            "contrast InDI / truth |", "|---|---|---|---|---|---|---|---|---|"]
    for r in real["rows"]:
        p, s, c = r["psnr_db"], r["ssim"], r["contrast"]
        rows.append(f"| {r['name']} | {r['domain']['score']:.2f} | {r['domain']['verdict']} | {p['lq']:.2f} | "
                    f"{p['indi']:.2f} | {p['hq']:.2f} | {s['lq']:.3f} | {s['indi']:.3f} | "
                    f"{c['indi'] / c['truth']:.2f} |")
    return "\n".join(rows)
