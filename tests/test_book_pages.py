"""The pages the book generates instead of having them typed: the rerun commands and parameter tables."""

import pytest

from indi4d.book_pages import beamline_page, chapter_parameters, discussion_numbers, headline_page, parameters_page

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


def test_the_discussion_and_headline_numbers_come_from_the_run(tmp_path):
    import json

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "insitu").mkdir()
    truth = {"bicubic": (8.1, 617), "hq": (11.7, 350), "hq_ideal": (16.4, 330), "indi": (12.3, 340),
             "cnn": (12.0, 420), "gan": (10.0, 360)}
    scores = {m: {"vs_truth": {"psnr": p, "ssim": 0.3, "fwhm_nm": f, "false_particles_per_mm2": 5.0}}
              for m, (p, f) in truth.items()}
    goals = [{"name": "a", "passed": True}, {"name": "b", "passed": False}, {"name": "c", "passed": None}]
    results = {"preset": "tiny", "seed": 0, "steps": 4, "test_slices": [1, 2], "scores": scores, "goals": goals,
               "uncertainty": {"spearman": 0.42, "samples": 8}}
    (run / "eval" / "metrics.json").write_text(json.dumps(results))
    insitu = {"methods": {"indi_xy": "InDI", "lq": "LQ"},
              "dense": {"indi_xy": {"dense_mae": 0.05, "ratio": 2.5}, "lq": {"dense_mae": 0.07, "ratio": 3.0}},
              "fusion": {"psnr_db": {"fused": [12.0, 11.0], "xy": [11.5, 11.25]}}}
    (run / "insitu" / "metrics.json").write_text(json.dumps(insitu))
    text = discussion_numbers(run)
    assert "InDI at N = 4 12.30 dB, the HQ scan 11.70 dB" in text and "reaches 16.40 dB" in text
    assert "InDI 340 nm, HQ 350 nm" in text and "1 of the 2 measured are met" in text and "is 0.42" in text
    assert "0.050 1/µm, 2.5×" in text and "(the bicubic LQ input: 0.070 1/µm, 3.0×)" in text
    assert "+0.50, -0.25 dB" in text
    head = headline_page(run, "_generated/key_figure.png")
    assert "```{figure} _generated/key_figure.png" in head and "N = 4" in head and "2 held-out test slices" in head
    assert "No chapter 5 results" in discussion_numbers(tmp_path / "none")
