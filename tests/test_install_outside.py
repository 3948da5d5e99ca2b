"""The package works outside the repository: installed (not editable) into a temporary folder,
it finds its registry and fetches and installs a published network from the files it ships."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHECK = """
import json, sys
from pathlib import Path
import indi4d
from indi4d import pretrained
from indi4d.data import load_registry
from indi4d.segmentation.scribble_store import stored_scribbles_path

registry = load_registry()
folder = pretrained.fetch_model("indi-default-seed0.zip")
pretrained.install_model("indi-default-seed0.zip", Path("model"))
print(json.dumps({"package": indi4d.__file__, "registry": sorted(registry), "fetched": str(folder),
                  "model": sorted(p.name for p in Path("model").iterdir()),
                  "scribbles": stored_scribbles_path("tiny").is_file()}))
"""


def _copy_sources(dest):
    """What ``pip install .`` reads: the project file, the README and the package (no build folder in the repo)."""
    dest.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, dest / name)
    shutil.copytree(ROOT / "lib", dest / "lib", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))


def test_an_installed_package_fetches_a_published_network_outside_the_repository(tmp_path):
    source, target, work = tmp_path / "source", tmp_path / "target", tmp_path / "work"
    _copy_sources(source)
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                              "--no-index", "--target", str(target), str(source)], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    assert (target / "indi4d" / "package_data" / "registry.txt").is_file()
    work.mkdir()
    # the installed copy and the environment's dependencies only: not lib/ of this checkout
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "INDI4D_DATA_DIR")}
    env.update(PYTHONPATH=str(target), INDI4D_DATA_DIR=str(tmp_path / "cache"), TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run([sys.executable, "-c", CHECK], cwd=work, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(found["package"]).is_relative_to(target), found["package"]
    assert {"indi-default-seed0.zip", "cnn-default-seed0.zip", "gan-default-seed0.zip"} <= set(found["registry"])
    assert Path(found["fetched"]).is_relative_to(tmp_path / "cache")
    assert "model.keras" in found["model"] and "config.json" in found["model"]
    assert found["scribbles"]
