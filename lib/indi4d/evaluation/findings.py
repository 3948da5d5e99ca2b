"""Where InDI wins and where it does not, in words computed from the numbers (step 5 of chapter 05)."""

import math

from .scores import is_finite, value
from .settings import METHODS


def _best(scores, metric, reference=None, lower=False, methods=("bicubic", "indi", "cnn", "gan")):
    vals = {m: value(scores, m, metric, reference) for m in methods if m in scores}
    vals = {m: v for m, v in vals.items() if v is not None and math.isfinite(v)}
    if not vals:
        return None, vals
    return (min if lower else max)(vals, key=vals.get), vals


def _within_spread(scores, a, b, metric, reference=None):
    """True when methods a and b differ by less than their combined spread (sqrt(s_a² + s_b²))."""
    va, vb = value(scores, a, metric, reference), value(scores, b, metric, reference)
    sa, sb = value(scores, a, f"{metric}_std", reference), value(scores, b, f"{metric}_std", reference)
    if None in (va, vb, sa, sb):
        return False
    return abs(va - vb) < math.hypot(sa, sb)


def findings(scores, choice=None, unc=None, goals=None, sweep=None):
    """Where InDI wins and where it does not, as Markdown bullet points computed from the numbers.

    Two methods whose difference is smaller than their combined spread
    (``sqrt(s_a**2 + s_b**2)``, the ± of :func:`metrics_table`) are called
    indistinguishable rather than ranked.

    Parameters
    ----------
    scores : dict
        :func:`score_methods`.
    choice : dict, optional
        :func:`select_steps`.
    unc : dict, optional
        :func:`uncertainty`.
    goals : list, optional
        :func:`check_goals`.
    sweep : list of dict, optional
        :func:`step_sweep` rows (adds how PSNR and FWHM moved with N).

    Returns
    -------
    str
    """
    name = dict(METHODS)
    out = []
    v = lambda m, k, r=None: value(scores, m, k, r)  # noqa: E731

    def verdict(best, metric, what, reference=None):
        if best == "indi":
            return f". InDI {what} of the four (HQ aside)."
        if "indi" in scores and _within_spread(scores, best, "indi", metric, reference):
            return f". {name[best]} leads, but InDI is within the spread of it."
        return f". {name[best]}, not InDI, {what}."

    best, vals = _best(scores, "fwhm_nm", lower=True)
    if best is not None:
        hq = v("hq", "fwhm_nm")
        ranking = ", ".join(f"{name[m]} {vals[m]:.0f} nm" for m in sorted(vals, key=vals.get))
        s = f"**Sharpness.** Edge FWHM from sharpest to broadest: {ranking}"
        if hq is not None:
            s += f" (HQ: {hq:.0f} nm)"
        s += verdict(best, "fwhm_nm", "has the sharpest edges")
        if hq is not None and "indi" in vals:
            s += (f" InDI's edges are {'sharper' if vals['indi'] < hq else 'broader'} than the HQ scan's"
                  f" ({vals['indi'] / hq:.2f}x).")
        ov = {m: v(m, "edge_overshoot") for m in ("indi", "hq", "gan")}
        if all(x is not None for x in ov.values()):
            s += (f" Edge overshoot (ringing, as a fraction of the step): InDI {ov['indi']:.2f}, "
                  f"HQ {ov['hq']:.2f}, GAN {ov['gan']:.2f}")
            s += (" — part of InDI's sharpness is overshoot." if ov["indi"] > max(ov["hq"], 0.05) + 0.05 else ".")
        out.append(s)

    best, vals = _best(scores, "psnr", "truth")
    if best is not None:
        ranking = ", ".join(f"{name[m]} {vals[m]:.2f} dB" for m in sorted(vals, key=vals.get, reverse=True))
        hq = v("hq", "psnr", "truth")
        s = f"**Fidelity to the truth.** PSNR against the true attenuation: {ranking}"
        if hq is not None:
            s += f" (the HQ scan itself: {hq:.2f} dB)"
        s += verdict(best, "psnr", "is the most faithful", "truth")
        if best == "cnn" and "indi" in vals:
            s += (f" The CNN's lead ({vals['cnn'] - vals['indi']:.2f} dB) is expected: a pixel-wise error rewards "
                  "the smooth conditional mean, which is exactly what a direct regressor learns.")
        out.append(s)

    refs = {m: v(m, "psnr", "truth") for m in ("hq_ideal", "classical", "indi")}
    if refs["hq_ideal"] is not None or refs["classical"] is not None:
        parts = []
        if refs["hq_ideal"] is not None:
            parts.append(f"the ideal HQ scan (infinite dose, the ceiling of any method trained on HQ targets) scores "
                         f"{refs['hq_ideal']:.2f} dB against the truth")
        if refs["classical"] is not None:
            parts.append(f"bicubic LQ with a tuned classical denoiser scores {refs['classical']:.2f} dB")
        s = "**Reference rows.** " + "; ".join(parts)
        if refs["indi"] is not None:
            s += f"; InDI {refs['indi']:.2f} dB"
        out.append(s + ".")

    lq, ind = v("bicubic", "sift_congruent_points", "hq"), v("indi", "sift_congruent_points", "hq")
    if lq is not None and ind is not None:
        s = f"**Congruent features.** SIFT congruent points with the HQ scan per slice: LQ {lq:.1f}, InDI {ind:.1f}"
        if lq > 0:
            s += f" ({ind / lq:.1f}x LQ)"
        for m in ("cnn", "gan"):
            x = v(m, "sift_congruent_points", "hq")
            if x is not None:
                s += f", {name[m]} {x:.1f}"
        out.append(s + ".")

    best, vals = _best(scores, "cnr")
    if best is not None:
        hq = v("hq", "cnr")
        s = "**Contrast-to-noise.** CNR: " + ", ".join(f"{name[m]} {vals[m]:.2f}" for m in vals)
        if hq is not None:
            s += f", HQ {hq:.2f}"
        s += f"; highest: {name[best]}."
        if hq is not None and "indi" in vals:
            s += f" InDI's CNR is {vals['indi'] / hq:.2f}x the HQ scan's."
        out.append(s)

    learned = ("indi", "cnn", "gan")
    fp = {m: v(m, "false_particles_per_mm2") for m in ("bicubic",) + learned}
    fe = {m: v(m, "false_edge_fraction") for m in ("bicubic",) + learned}
    if all(x is not None for x in fp.values()) and all(x is not None for x in fe.values()):
        worst_edges = max(learned, key=fe.get)
        worst_parts = max(learned, key=fp.get)
        s = ("**Hallucination.** False particles per mm²: "
             + ", ".join(f"{name[m]} {fp[m]:.0f}" for m in fp)
             + "; false edges in flat regions: " + ", ".join(f"{name[m]} {100 * fe[m]:.2f} %" for m in fe)
             + f". Of the learned methods, {name[worst_parts]} invents the most particles and "
             + f"{name[worst_edges]} the most edges.")
        if fe["indi"] > fe["bicubic"]:
            s += " InDI draws more edges in flat regions than its bicubic input has."
        out.append(s)

    if choice is not None:
        s = (f"**Number of steps.** The rule ({choice['rule']}) picks N = {choice['steps']} "
             f"(admissible: {choice['admissible']}).")
        rows = [r for r in (sweep or [])
                if is_finite(r.get("psnr")) and is_finite(r.get("fwhm_nm")) and r["fwhm_nm"] > 0]
        if len(rows) >= 2:
            a, b = rows[0], rows[-1]
            s += (f" From N = {a['steps']} to N = {b['steps']} the PSNR moved by {b['psnr'] - a['psnr']:+.2f} dB "
                  f"and the FWHM by {b['fwhm_nm'] - a['fwhm_nm']:+.0f} nm.")
        if choice["steps"] == 1:
            s += (" With N = 1 InDI is a one-shot regressor like the CNN: in this run, more steps did not buy "
                  "sharper edges at an acceptable cost in fidelity.")
        out.append(s)
    if unc is not None and is_finite(unc.get("spearman")):
        rho, rb = unc["spearman"], unc.get("spearman_block")
        strength = "strongly" if rho > 0.6 else "moderately" if rho > 0.3 else "weakly" if rho > 0.1 else "hardly"
        s = (f"**Uncertainty.** The spread of {unc['samples']} stochastic samples ranks pixels by their true error "
             f"{strength} (Spearman ρ = {rho:.2f}")
        if is_finite(rb):
            s += f"; {rb:.2f} on {unc['block_px']}-pixel blocks"
        out.append(s + ").")
    if goals:
        met = [g for g in goals if g["passed"]]
        missed = [g["name"] for g in goals if g["passed"] is False]
        unmeasured = [g for g in goals if g["passed"] is None]
        s = f"**Goals.** {len(met)} of {len(goals)} project goals met."
        if missed:
            s += " Not met: " + "; ".join(missed) + "."
        if unmeasured:
            s += f" Not measured in this run: {len(unmeasured)}."
        out.append(s)
    return "\n".join(f"- {s}" for s in out)
