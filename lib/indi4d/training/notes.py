"""What chapter 04 says about a training, in Markdown: which network, how it was trained, what stopped it.

Every sentence is built from the model folder's records (the training summary,
``config.json``, the install record), so the chapter only displays them.
"""

from ..model_folder import run_seconds


def model_note(run):
    """The network the rest of the book uses, when it is a published one.

    Parameters
    ----------
    run : dict
        :func:`indi4d.training.indi_model` (``how``; ``name``, ``sha256`` and
        ``trained`` when installed).

    Returns
    -------
    str
        Markdown; empty when the network was trained here.
    """
    if run["how"] != "installed":
        return ""
    summary = run["trained"]
    return (f"**The rest of the book uses the published reference network `{run['name']}`** "
            f"(SHA-256 `{run['sha256'][:16]}…`, checked against the data registry), trained once in "
            f"{summary['global_step']} steps ({run_seconds(summary) / 60:.0f} min on the machine that made it).")


def summary_list(summary):
    """A training summary (``summary.json``) as a Markdown list, one key a line."""
    return "\n".join(f"- **{k}**: {v}" for k, v in summary.items())


def target_note(run, target, preset_target):
    """The training target and how the steps were run (here, elsewhere, or earlier).

    Parameters
    ----------
    run : dict
        :func:`indi4d.training.indi_model`.
    target : str
        The target the network was trained on (``config.json``: ``training.target``).
    preset_target : str
        What the preset asks for (e.g. ``"auto"``).

    Returns
    -------
    str
        Markdown, one sentence.
    """
    summary = run["trained"]
    if summary.get("seconds_per_step"):
        where = "the machine that trained it" if run["how"] == "installed" else "this machine"
        seconds = run_seconds(summary)  # the whole run: a resumed run's earlier calls too
        how = (f"{summary['global_step']} steps in {seconds / 60:.1f} min "
               f"({seconds / summary['global_step']:.2f} s a step on {where})")
    else:  # the model folder already held this finished run: nothing was left to train
        how = f"{summary['global_step']} steps, all run before this execution of the chapter (reused)"
    return f"Training target: **{target}** (`{preset_target}` in the preset); {how}."


def budget_note(summary, safeguard):
    """Whether the run took all its steps or the wall-time safeguard stopped it; skipped checkpoints.

    Parameters
    ----------
    summary : dict
        The training summary (``stopped_by``, ``global_step``, ``total_steps``,
        ``resumed_after_damaged``, ``resumed_from``).
    safeguard : float or None
        The preset's ``max_minutes`` (None or 0: no safeguard).

    Returns
    -------
    str
        Markdown.
    """
    if summary["stopped_by"] == "wall_time_budget":
        note = (f"**The wall-time safeguard fired** ({safeguard:g} min) after {summary['global_step']} of "
                f"{summary['total_steps']} steps: this network, and every number below, depends on the "
                "machine's speed. Running the chapter again continues the run from its last checkpoint.")
    else:
        note = (f"The run took all {summary['total_steps']} scheduled steps; the wall-time safeguard "
                + ("did not fire" if safeguard else "is off for this preset")
                + (f" ({safeguard:g} min)." if safeguard else "."))
    if summary.get("resumed_after_damaged"):
        note += (f" Damaged checkpoint(s) {', '.join(summary['resumed_after_damaged'])} were skipped: "
                 f"the run resumed from step {summary['resumed_from']}.")
    return note


def deconv_note(deconv, psf):
    """How the run got its indi-deconv network, and the PSF its targets were deconvolved by.

    Parameters
    ----------
    deconv : dict
        :func:`indi4d.training.indi_deconv_model`.
    psf : dict or None
        ``config.json``: ``training.target_psf`` of that network (``sigma_nm``, ``source``).

    Returns
    -------
    str
        Markdown, one sentence.
    """
    if deconv["how"] == "skipped":
        return f"No indi-deconv network: {deconv['why']}."
    psf = psf or {}
    which = f" (`{deconv['name']}`, SHA-256 `{deconv['sha256'][:16]}…`)" if deconv["how"] == "installed" else ""
    return (f"indi-deconv **{deconv['how']}**{which}: {deconv['trained'].get('global_step')} steps; "
            f"targets deconvolved by a Gaussian PSF of σ = {psf.get('sigma_nm', float('nan')):.0f} nm "
            f"({psf.get('source', 'source not recorded')}).")
