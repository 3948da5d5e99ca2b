"""Markdown tables and generated statements of chapter 06, all from ``insitu/metrics.json``.

Each function takes the results as written by :meth:`indi4d.insitu.InSitu.save`
and read back (:func:`indi4d.files.read_json`), so what the chapter shows is
what the file holds. Missing values (NaN, stored as ``null``) show as "–".
"""

import math

from ..phases import PHASE_NAMES


def _f(value, digits=2, unit=""):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return f"{value:.{digits}f}{unit}"


def _pm(mean, std, digits=0):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "–"
    return f"{mean:.{digits}f} ± {_f(std, digits)}"


def _rows(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def table1(results):
    """The paper's Table 1 rebuilt: CNR per time step for each method, the paper's values beside it."""
    methods = [m for m in results["methods"] if m not in ("indi_xz", "indi_yz")]
    paper = results.get("paper", {}).get("cnr", {})
    header = ["time step"] + [results["methods"][m] for m in methods] + ["paper: LQ", "paper: InDI"]
    rows = []
    for i, t in enumerate(results["times"]):
        row = [t] + [_f(results["scores"][m][i]["cnr"]) for m in methods]
        row += [_f(paper.get("lq", [None] * 3)[i], 1), _f(paper.get("indi_xy", [None] * 3)[i], 1)]
        rows.append(row)
    return _rows(header, rows)


def truth_table(results):
    """Truth-based scores per time step and method (physical units, no grey fit).

    The truth's own row is the floor of each measure (e.g. the particles the
    detector misses even in the truth).
    """
    methods = [m for m in results["methods"] if m not in ("indi_xz", "indi_yz")]
    header = ["time", "method", "PSNR (dB)", "SSIM", "MAE (1/mm)", "FWHM xy (nm)", "FWHM z (nm)",
              "false particles / mm²", "missed particles / mm²"]
    rows = []
    for i, t in enumerate(results["times"]):
        for m in methods:
            s = results["scores"][m][i]
            rows.append([t, results["methods"][m], _f(s["psnr_db"]), _f(s["ssim"], 3), _f(1000 * s["mae"], 1),
                         _pm(s["fwhm_xy_nm"], s["fwhm_xy_nm_std"]), _pm(s["fwhm_z_nm"], s["fwhm_z_nm_std"]),
                         _f(s["false_particles_per_mm2"], 0), _f(s["missed_particles_per_mm2"], 0)])
    return _rows(header, rows)


def fusion_table(results):
    """xy enhancement + z-interpolation against each single axis and their fusion, per time step."""
    methods = [m for m in ("indi_xy", "indi_xz", "indi_yz", "indi_fused") if m in results["scores"]]
    names = {"indi_xy": "xy slices", "indi_xz": "xz slices", "indi_yz": "yz slices", "indi_fused": "fusion (mean)"}
    header = ["time", "InDI along", "PSNR (dB)", "SSIM", "MAE (1/mm)", "FWHM xy (nm)", "FWHM z (nm)"]
    rows = []
    for i, t in enumerate(results["times"]):
        for m in methods:
            s = results["scores"][m][i]
            rows.append([t, names[m], _f(s["psnr_db"]), _f(s["ssim"], 3), _f(1000 * s["mae"], 1),
                         _pm(s["fwhm_xy_nm"], s["fwhm_xy_nm_std"]), _pm(s["fwhm_z_nm"], s["fwhm_z_nm_std"])])
    return _rows(header, rows)


def phase_table(results, time_index=-1):
    """Mean absolute error (bias) per true phase at one time step, 1/mm; boundary voxels in brackets."""
    i = time_index % len(results["times"])
    methods = [m for m in results["methods"] if m not in ("indi_xz", "indi_yz", "truth")]
    header = ["method"] + [f"{n}: MAE (bias)" for n in PHASE_NAMES] + ["dense / known-boundary MAE"]
    rows = []
    for m in methods:
        pe = results["scores"][m][i]["phase_errors"]
        cells = [f"{_f(_milli(pe[n]['mae']), 1)} ({_f(_milli(pe[n]['bias']), 1)})" for n in PHASE_NAMES]
        rows.append([results["methods"][m]] + cells + [_f(results["dense"][m]["ratio"], 2)])
    return _rows(header, rows)


def _milli(v):
    return None if v is None else 1000.0 * v


def findings(results):
    """Statements generated from the results (no number typed by hand)."""
    s, names, t = results["scores"], results["methods"], results["times"]
    lines = []
    cnr_lq = [x["cnr"] for x in s["lq"]]
    cnr_in = [x["cnr"] for x in s["indi_xy"]]
    higher = sum(a > b for a, b in zip(cnr_in, cnr_lq))
    lines.append(f"- CNR: InDI is above LQ at {higher} of {len(t)} time steps "
                 f"(LQ {', '.join(_f(v) for v in cnr_lq)}; InDI {', '.join(_f(v) for v in cnr_in)}).")
    for key, label, unit, digits, better in (("psnr_db", "PSNR vs truth", " dB", 2, "higher"),
                                             ("fwhm_xy_nm", "edge FWHM in xy", " nm", 0, "lower"),
                                             ("fwhm_z_nm", "edge FWHM along z", " nm", 0, "lower")):
        lq = [x[key] for x in s["lq"]]
        ind = [x[key] for x in s["indi_xy"]]
        lines.append(f"- {label}: LQ {', '.join(_f(v, digits) for v in lq)}{unit}; "
                     f"InDI {', '.join(_f(v, digits) for v in ind)}{unit} ({better} is better).")
    fus = results.get("fusion")
    if fus:
        for key, label in (("psnr_db", "PSNR"), ("ssim", "SSIM"), ("fwhm_z_nm", "the FWHM along z")):
            won = sum(fus[key]["fused_better"])
            lines.append(f"- Fusion of three axes vs xy + z-interpolation: better {label} at {won} of {len(t)} "
                         "time steps.")
    d = results["dense"].get("indi_xy")
    if d and d["dense_voxels"]:
        lines.append(f"- Out of domain (dense phase, {d['dense_voxels']} voxels over the series): InDI's mean "
                     f"absolute error there is {_f(_milli(d['dense_mae']), 1)} /mm (bias "
                     f"{_f(_milli(d['dense_bias']), 1)} /mm), {_f(d['ratio'], 2)} × its error on the boundary "
                     f"voxels of the phases it was trained on ({_f(_milli(d['known_boundary_mae']), 1)} /mm); "
                     f"for LQ the ratio is {_f(results['dense']['lq']['ratio'], 2)}.")
    if "cnn" in s:
        lines.append(f"- CNN: PSNR {', '.join(_f(x['psnr_db']) for x in s['cnn'])} dB, FWHM xy "
                     f"{', '.join(_f(x['fwhm_xy_nm'], 0) for x in s['cnn'])} nm ({names['cnn']}).")
    return "\n".join(lines)
