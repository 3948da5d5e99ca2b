"""The machine a measurement ran on, and the commit it ran: one record for every benchmark's JSON.

Times differ 2-4x between machines, so every JSON that holds a time or a
throughput (``benchmarks/results/*.json``) names its machine the same way:
:func:`machine_record`. Reading ``/proc`` and ``git`` only: no TensorFlow.
"""

import os
import platform
import subprocess
from pathlib import Path

#: The checkout the package runs from (a git work tree in development; anything else when installed).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]

#: CPU features that decide which kernels oneDNN picks (AVX512-BF16 for bf16, AVX2 at least).
CPU_FLAGS = ("avx512f", "avx512_bf16", "amx_bf16", "avx2")


def _cpuinfo_field(key):
    """The first ``key : value`` of /proc/cpuinfo (None off Linux or when absent)."""
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.split(":", 1)[0].strip() == key), None)
    except OSError:
        return None


def cpu_flags(wanted=CPU_FLAGS):
    """Which of ``wanted`` the CPU advertises in /proc/cpuinfo (empty off Linux)."""
    flags = (_cpuinfo_field("flags") or "").split()
    return [f for f in wanted if f in flags]


def machine_record():
    """The machine the numbers were measured on.

    Returns
    -------
    dict
        ``platform``, ``cpus`` (logical CPUs of the machine), ``cpu_model``,
        ``cpu_flags`` (:data:`CPU_FLAGS` present), ``python``, and
        ``load_average_1min`` (how busy the machine was as the run began;
        None where the OS has none).
    """
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"platform": platform.platform(), "cpus": os.cpu_count(), "cpu_model": _cpuinfo_field("model name"),
            "cpu_flags": cpu_flags(), "python": platform.python_version(), "load_average_1min": load}


def source_commit(root=PACKAGE_ROOT):
    """The git commit of ``root`` (with ``+dirty`` when tracked files differ from it), or None outside git.

    An installed package (``root`` is not the top of a work tree) gives None
    rather than the commit of whatever repository happens to enclose it.
    """
    try:
        top = subprocess.run(["git", "-C", str(root), "rev-parse", "--show-toplevel"], capture_output=True, text=True,
                             check=True).stdout.strip()
        if Path(top).resolve() != Path(root).resolve():
            return None
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")
