"""environment.yml and pyproject.toml must name the same packages with the same pins."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _split(req):
    """'dask[distributed]>=2024.8; marker' -> ('dask', '>=2024.8')."""
    req = req.split(";")[0].strip()
    m = re.match(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*(.*)$", req)
    return m.group(1).lower().replace("_", "-"), m.group(3).replace(" ", "")


def _pyproject_pins():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        reqs += extra
    pins = {}
    for req in reqs:
        name, spec = _split(req)
        # tensorflow (macOS/arm) and tensorflow-cpu (Linux x86-64) are one dependency
        pins[name] = spec
    pins.pop("tensorflow", None)
    return pins


def _environment_pins():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pins = {}
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-e") or item.split(">")[0].split("=")[0] in ("python", "pip"):
                continue
            name, spec = _split(item)
            if name in pins and pins[name] != spec:
                raise AssertionError(f"environment.yml pins {name} twice: {pins[name]} and {spec}")
            pins[name] = spec
    return pins


def test_environment_yml_matches_pyproject():
    py, env = _pyproject_pins(), _environment_pins()
    assert set(py) == set(env), (
        f"only in pyproject.toml: {sorted(set(py) - set(env))}; "
        f"only in environment.yml: {sorted(set(env) - set(py))}"
    )
    drift = {name: (py[name], env[name]) for name in py if py[name] != env[name]}
    assert not drift, f"pins differ (pyproject, environment.yml): {drift}"


def test_split_reads_extras_and_markers():
    assert _split("dask[distributed]>=2024.8") == ("dask", ">=2024.8")
    assert _split("tensorflow-cpu>=2.18,<2.22; platform_system == 'Linux'") == ("tensorflow-cpu", ">=2.18,<2.22")
