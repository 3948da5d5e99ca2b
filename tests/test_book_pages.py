"""The pages the book generates instead of having them typed: the rerun commands and parameter tables."""

import pytest

from indi4d.book import chapter_parameters, parameters_page

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
