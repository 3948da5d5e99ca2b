"""Tables of chapter 01, as Markdown: the scans, what they resolve, the in situ steps, the files.

Every number comes from ``meta.json``, the calibration scans or the files
themselves; the only typed numbers are the paper's measured edge widths
(:data:`PAPER_FWHM_NM`), quoted for comparison.
"""

#: Edge FWHM (nm) the paper measured on its real LQ and HQ scans (indi4d_paper), for comparison.
PAPER_FWHM_NM = {"lq": "803 ± 135", "hq": "357 ± 53"}


def field_of_view_um(shape, voxel_nm):
    """A volume's extent in µm per axis, as text.

    Parameters
    ----------
    shape : tuple of int
        The volume's shape (z, y, x).
    voxel_nm : float
        Its voxel size, nm.

    Returns
    -------
    str
        E.g. ``"3.2 × 6.4 × 6.4"`` for (32, 64, 64) voxels of 100 nm.
    """
    return " × ".join(f"{n * voxel_nm / 1000:.1f}" for n in shape)


def scan_table(meta, lq_shape, hq_shape, truth_shape):
    """The scans of a simulated data set: voxel, shape, field of view, dose, projections, blur.

    Parameters
    ----------
    meta : dict
        ``meta.json`` (``voxel_size_nm``, ``dose``, ``acquisition``).
    lq_shape, hq_shape, truth_shape : tuple of int
        Shapes of ``lq.tif`` (also the in situ scans'), ``hq.tif`` and the truth on the HQ grid.

    Returns
    -------
    str
        A Markdown table, one row per scan.
    """
    v_lq, v_hq = meta["voxel_size_nm"]["lq"], meta["voxel_size_nm"]["hq"]
    acq, dose = meta["acquisition"], meta["dose"]

    def row(name, which, shape, voxel):
        return (f"| {name} | {voxel:g} | {tuple(shape)} | {field_of_view_um(shape, voxel)} | {dose[which]:g} "
                f"| {acq[which]['n_angles']} | {acq[which]['blur_sigma_nm']:g} |")

    return "\n".join([
        "| scan | voxel (nm) | shape (z, y, x) | field of view (µm) | photons / pixel | projections "
        "| detector blur σ (nm) |",
        "|---|---|---|---|---|---|---|",
        row("LQ (`lq.tif`)", "lq", lq_shape, v_lq),
        row("HQ (`hq.tif`)", "hq", hq_shape, v_hq),
        row("in situ T0–T2", "lq", lq_shape, v_lq),
        f"| truth (labels, μ) | {v_hq:g} | {tuple(truth_shape)} | {field_of_view_um(truth_shape, v_hq)} "
        "| – | – | – |",
    ])


def calibration_table(chars):
    """What each scan resolves on the calibration disc, beside the paper's edge widths.

    Parameters
    ----------
    chars : dict
        :func:`indi4d.simulate.acquisition_characteristics`: per scan ``fwhm_nm``,
        ``noise_std_per_um``, ``noise_std_grey``, ``cnr``.

    Returns
    -------
    str
        A Markdown table, one row per scan (LQ, HQ).
    """
    rows = [
        "| scan | edge FWHM (nm) | paper's FWHM (nm) | noise std (1/µm) | noise std (grey) | CNR particle/binder |",
        "|---|---|---|---|---|---|",
    ]
    for which in ("lq", "hq"):
        c = chars[which]
        rows.append(f"| {which.upper()} | {c['fwhm_nm']:.0f} | {PAPER_FWHM_NM[which]} | {c['noise_std_per_um']:.4f} "
                    f"| {c['noise_std_grey']:.0f} | {c['cnr']:.1f} |")
    return "\n".join(rows)


def insitu_table(meta):
    """The in situ steps: radius growth, open cracks and phase fractions per time step.

    Parameters
    ----------
    meta : dict
        ``meta.json`` (``insitu.steps``).

    Returns
    -------
    str
        A Markdown table, one row per time step.
    """
    rows = ["| step | radius growth | open cracks | pore | binder | particle | dense |",
            "|---|---|---|---|---|---|---|"]
    for s in meta["insitu"]["steps"]:
        f = s["phase_fractions"]
        rows.append(f"| T{s['step']} | {100 * s['radius_growth']:.0f} % | {s['open_cracks']} | {f['pore']:.3f} "
                    f"| {f['binder']:.3f} | {f['particle']:.3f} | {f['dense']:.3f} |")
    return "\n".join(rows)


def files_table(data_dir, meta):
    """Every file of a data set: dtype, shape, voxel size and the start of its SHA-256.

    Parameters
    ----------
    data_dir : Path
        The data-set folder (``RUN_DIR/data``).
    meta : dict
        ``meta.json`` (``files``: name -> SHA-256).

    Returns
    -------
    str
        A Markdown table, one row per file (each is read to report its dtype and shape).
    """
    from ..io import read_volume

    rows = ["| file | dtype | shape | voxel (nm) | sha256 |", "|---|---|---|---|---|"]
    for name, digest in meta["files"].items():
        vol, m = read_volume(data_dir / name)
        rows.append(f"| `{name}` | {vol.dtype} | {tuple(vol.shape)} | {m.get('voxel_size_nm', '')} "
                    f"| `{digest[:16]}…` |")
    return "\n".join(rows)
