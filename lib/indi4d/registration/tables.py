"""Tables of chapter 02, as Markdown: the recovered misalignment Φ against the applied one."""


def _vector(values, fmt="{:+.3f}"):
    return "n/a" if values is None else ", ".join(fmt.format(x) for x in values)


def _number(value, unit=""):
    return "n/a" if value is None else f"{value:.3f}{unit}"


def phi_table(phi, applied=None):
    """The recovered Φ (translation, rotation, zoom, residual) beside the applied one and the error.

    Parameters
    ----------
    phi : dict
        The registration report (``phi.json``): ``translation_vox``, ``rotation_deg``,
        ``zoom``, ``residual_before``, ``residual_after`` and, when the applied Φ was
        known, ``error_vs_applied``.
    applied : dict, optional
        ``meta.json``'s ``misalignment`` (``translation_vox``, ``rotation_deg``);
        None or {} for real scans ("n/a").

    Returns
    -------
    str
        A Markdown table.
    """
    applied = applied or {}
    err = phi.get("error_vs_applied", {})
    return "\n".join([
        "| | recovered | applied | error |",
        "|---|---|---|---|",
        f"| translation (HQ voxels, z y x) | {_vector(phi['translation_vox'])} "
        f"| {_vector(applied.get('translation_vox'))} | {_number(err.get('translation_vox'), ' voxel')} |",
        f"| rotation vector (degrees, z y x) | {_vector(phi['rotation_deg'])} "
        f"| {_vector(applied.get('rotation_deg'))} | {_number(err.get('rotation_deg'), '°')} |",
        f"| zoom (z y x) | {_vector(phi['zoom'], '{:.4f}')} | 1, 1, 1 | {_number(err.get('zoom'))} |",
        f"| residual (IQR units) | {phi['residual_after']:.3f} "
        f"| before registration: {phi['residual_before']:.3f} | |",
    ])
