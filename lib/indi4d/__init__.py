"""indi4d: InDI enhancement of 4D X-ray nano-tomography.

A small toolkit that reproduces and extends the workflow of
*GenAI-enhanced 4D nano-tomography for advanced battery microstructure
analysis* (J. Mater. Chem. A, 2025, 13, 29930): a simulated beamline with a
known ground truth, spam registration of low/high-quality scans, InDI training
and sampling, and the evaluation metrics used in the paper.
"""

from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("indi4d")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
