"""Radial power spectra of every method against the truth's: numbers and figure."""

import numpy as np

from .settings import METHODS


def method_spectra(physical, test, n_bins=None):
    """Radial power spectrum of every method (physical units) and of the truth, on the test slices.

    Parameters
    ----------
    physical : dict
        method -> (n, H, W) in physical units.
    test : dict
        :func:`~indi4d.evaluation.testset.load_test_set`.
    n_bins : int, optional

    Returns
    -------
    dict
        ``"freq_per_um"`` (list, cycles per µm) and, for ``"truth"`` (when
        present) and each method, ``{"power": list, "ratio": list or None}``
        (``ratio`` = power / the truth's power, ring by ring).
    """
    from ..metrics import radial_power_spectrum

    px, mask = test["pixel_size_nm"], test["mask"]
    truth = None
    out = {}
    if test.get("truth_mu") is not None:
        freq, truth = radial_power_spectrum(test["truth_mu"], px, mask, n_bins)
        out["truth"] = {"power": truth.tolist(), "ratio": None}
    for method, image in physical.items():
        freq, power = radial_power_spectrum(image, px, mask, n_bins)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = None if truth is None else np.where(truth > 0, power / truth, np.nan).tolist()
        out[method] = {"power": power.tolist(), "ratio": ratio}
    out["freq_per_um"] = freq.tolist()
    return out


def plot_power_spectra(spectra, steps=None):
    """Radial power spectra (left) and their ratio to the truth's (right), one line per method.

    Parameters
    ----------
    spectra : dict
        :func:`method_spectra`.
    steps : int, optional
        InDI's N, for its label.

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    f = np.asarray(spectra["freq_per_um"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    names = dict(METHODS, indi=f"InDI (N = {steps})" if steps else "InDI", truth="truth")
    for key in ["truth"] + [m for m in METHODS if m in spectra]:
        if key not in spectra:
            continue
        style = {"color": "k", "lw": 2} if key == "truth" else {"lw": 1.2}
        axes[0].semilogy(f, spectra[key]["power"], label=names[key], **style)
        if spectra[key]["ratio"] is not None:
            axes[1].semilogy(f, np.asarray(spectra[key]["ratio"], float), label=names[key], **style)
    axes[1].axhline(1.0, color="k", lw=0.8, ls=":")
    axes[0].set_ylabel("power (units² · pixel²)")
    axes[1].set_ylabel("power / truth's power")
    for ax in axes:
        ax.set_xlabel("spatial frequency (1/µm)")
        ax.grid(alpha=0.3)
    axes[1].set_title("> 1: added noise or texture; < 1: smoothed away", fontsize=9)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return fig
