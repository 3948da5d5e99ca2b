"""The pages the book generates instead of having them typed: the rerun commands and parameter tables."""

import pytest

from indi4d.book_pages import beamline_page, chapter_parameters, parameters_page

CHAPTER = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# 9. A chapter

```{code-cell} ipython3
:tags: [parameters]
preset = "default"
seed = 0
run_dir = "../runs/default"
# how many things
count = 3
scale = 1.5  # in µm
```

```{code-cell} ipython3
not_a_parameter = 1
```
'''


def test_the_parameters_cell_is_read_as_written(tmp_path):
    (tmp_path / "09_chapter.md").write_text(CHAPTER)
    title, params = chapter_parameters(tmp_path / "09_chapter.md")
    assert title == "9. A chapter"
    names = [p[0] for p in params]
    assert names == ["preset", "seed", "run_dir", "count", "scale"]
    by_name = {name: (value, meaning) for name, value, meaning in params}
    assert by_name["preset"][0] == '"default"' and by_name["count"] == ("3", "how many things")
    assert by_name["scale"] == ("1.5", "in µm") and "same figures" in by_name["seed"][1]
    page = parameters_page(tmp_path)
    assert "### 9. A chapter" in page and "notebooks/09_chapter.md" in page
    assert "| `scale` | `1.5` | in µm |" in page and "not_a_parameter" not in page
    assert "-p preset tiny -p run_dir /tmp/run" in page


def test_a_chapter_without_exactly_one_parameters_cell_is_named(tmp_path):
    (tmp_path / "09_none.md").write_text(CHAPTER.replace(":tags: [parameters]\n", ""))
    with pytest.raises(ValueError, match="09_none.md: expected one cell tagged 'parameters', found 0"):
        chapter_parameters(tmp_path / "09_none.md")


def test_every_real_chapter_lists_the_shared_parameters():
    from pathlib import Path

    page = parameters_page(Path(__file__).resolve().parents[1] / "notebooks")
    assert page.count("| `run_dir` |") == page.count("### ") >= 6


def test_the_beamline_table_is_read_from_the_run(tmp_path):
    import json

    data = tmp_path / "run" / "data"
    data.mkdir(parents=True)
    meta = {"preset": "tiny", "seed": 3, "voxel_size_nm": {"lq": 100.0, "hq": 50.0},
            "lq_shape": [32, 32, 32], "hq_shape": [32, 32, 32], "dose": {"lq": 500.0, "hq": 5000.0},
            "acquisition": {"lq": {"n_angles": 48, "blur_sigma_nm": 330.0}, "hq": {"n_angles": 96, "blur_sigma_nm": 145.0}},
            "psf": {"hq": {"sigma_nm": 152.7, "fwhm_nm": 359.6, "source": "a disc"}},
            "attenuation_per_um": {"pore": 0.01, "particle": 0.08}}
    (data / "meta.json").write_text(json.dumps(meta))
    page = beamline_page(tmp_path / "run")
    assert "| voxel size | 100 nm | 50 nm |" in page and "| projection angles | 48 | 96 |" in page
    assert "σ = 153 nm, FWHM = 360 nm (a disc)" in page and "particle 0.08" in page and "seed 3" in page
    assert "no simulated data set" in beamline_page(tmp_path / "elsewhere")
