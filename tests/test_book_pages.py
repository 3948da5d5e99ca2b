"""The pages the book generates instead of having them typed: the rerun commands and parameter tables."""

from pathlib import Path

import pytest

from indi4d.book.pages import beamline_page, chapter_parameters, discussion_numbers, headline_page, parameters_page

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
    assert "## 9. A chapter" in page and "notebooks/09_chapter.md" in page
    assert "| `scale` | `1.5` | in µm |" in page and "not_a_parameter" not in page
    assert "-p preset tiny -p run_dir /tmp/run" in page


def test_a_chapter_without_exactly_one_parameters_cell_is_named(tmp_path):
    (tmp_path / "09_none.md").write_text(CHAPTER.replace(":tags: [parameters]\n", ""))
    with pytest.raises(ValueError, match="09_none.md: expected one cell tagged 'parameters', found 0"):
        chapter_parameters(tmp_path / "09_none.md")


def test_every_real_chapter_lists_the_shared_parameters():
    from pathlib import Path

    page = parameters_page(Path(__file__).resolve().parents[1] / "notebooks")
    assert page.count("| `run_dir` |") == page.count("\n## ") + page.startswith("## ") >= 6


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


def test_a_chapter_time_page_shows_every_measured_preset():
    from indi4d.book.timings import duration, time_page

    assert [duration(s) for s in (0.2, 21.4, 224.0, 3936.4, 7558.8)] == ["< 1 s", "21 s", "3.7 min", "66 min", "2.1 h"]
    timings = {"default": {"01_data": 224.0, "total_s": 224.0, "date": "2026-12-01", "machine": 2},
               "tiny": {"01_data": 21.4, "02_pairs": 25.1, "total_s": 46.5, "date": "2026-12-01", "machine": 2}}
    assert time_page(timings, "01_data") == ("**Measured** by `make book` (papermill, kernel start included): "
                                             "`tiny` 21 s · `default` 3.7 min (2 CPU cores, 2026-12-01).\n")
    # a preset that has not timed the chapter is left out; one measured elsewhere says where
    assert time_page(timings, "02_pairs").endswith(": `tiny` 25 s (2 CPU cores, 2026-12-01).\n")
    timings["paper"] = {"01_data": 30.0, "date": "2026-12-05", "machine": 1}
    assert time_page(timings, "01_data").endswith(
        ": `tiny` 21 s (2 CPU cores, 2026-12-01) · `default` 3.7 min (2 CPU cores, 2026-12-01)"
        " · `paper` 30 s (1 CPU core, 2026-12-05).\n")
    assert "Not measured yet" in time_page(timings, "09_other") and "Not measured yet" in time_page({}, "01_data")


def test_a_build_merges_its_times_into_the_book(tmp_path):
    import json

    from indi4d.book.timings import merge_timings, record_timings
    from indi4d.book.pages import write_generated_pages

    old = {"default": {"01_a": 200.0, "02_b": 50.0, "total_s": 250.0, "date": "2026-11-30", "machine": 2}}
    # a partial build (--only 01) of another preset adds that preset and keeps the first
    new = merge_timings(old, "tiny", {"01_a": 20.04}, "2026-12-01", 4)
    assert new["default"] == old["default"] and old == {"default": new["default"]}  # not modified
    assert new["tiny"] == {"01_a": 20.0, "total_s": 20.0, "date": "2026-12-01", "machine": 4}
    # a build that reused chapter 01 (None) and ran 02 replaces only 02, and the total follows
    again = merge_timings(new, "default", {"01_a": None, "02_b": 60.0}, "2026-12-02", 2)
    assert again["default"] == {"01_a": 200.0, "02_b": 60.0, "total_s": 260.0, "date": "2026-12-02", "machine": 2}
    assert again["tiny"] == new["tiny"]
    assert merge_timings(again, "default", {"01_a": None}, "2026-12-03", 2) == again  # nothing ran

    # record_timings reads, merges and writes BOOK/timings.json; the time pages are generated from it
    book, notebooks = tmp_path / "book", tmp_path / "notebooks"
    book.mkdir()
    notebooks.mkdir()
    (notebooks / "01_a.md").write_text(CHAPTER)
    (notebooks / "02_b.md").write_text(CHAPTER)
    (book / "timings.json").write_text(json.dumps(old))
    record_timings(book, "tiny", {"01_a": 21.0, "02_b": None}, date="2026-12-01", machine=2)
    stored = json.loads((book / "timings.json").read_text())
    assert stored["default"] == old["default"] and stored["tiny"]["01_a"] == 21.0 and "02_b" not in stored["tiny"]
    assert not list(book.glob("*.tmp*")) and sorted(p.name for p in book.iterdir()) == ["timings.json"]
    write_generated_pages(book, notebooks)
    assert (book / "_generated" / "time_01_a.md").read_text().endswith(
        ": `tiny` 21 s (2 CPU cores, 2026-12-01) · `default` 3.3 min (2 CPU cores, 2026-11-30).\n")
    assert ": `default` 50 s (2 CPU cores, 2026-11-30)." in (book / "_generated" / "time_02_b.md").read_text()
    # a book without timings.json still builds its pages
    (book / "timings.json").unlink()
    write_generated_pages(book, notebooks)
    assert "Not measured yet" in (book / "_generated" / "time_01_a.md").read_text()


def test_a_book_build_writes_its_times_to_the_run_folder_only(tmp_path, monkeypatch):
    """`make book` leaves the checkout clean: the committed times and README change only by `make timings`."""
    import json
    import shutil

    from indi4d.book import build as book
    from indi4d.book import timings as book_timings

    root = Path(__file__).resolve().parents[1]
    copy = tmp_path / "repo"
    (copy / "book").mkdir(parents=True)
    shutil.copy(root / "README.md", copy / "README.md")
    shutil.copy(root / "book" / "timings.json", copy / "book" / "timings.json")
    committed = {p: p.read_bytes() for p in (copy / "README.md", copy / "book" / "timings.json")}
    # what build_book calls, without executing chapters or Sphinx
    ran = [("01_data_retrieval", 1.0), ("02_registration", None)]
    monkeypatch.setattr(book, "execute_chapters", lambda *a, **k: ran)
    monkeypatch.setattr(book, "build_html", lambda *a, **k: copy / "book" / "_build" / "html" / "index.html")
    book.build_book(copy, preset="tiny", run_dir=copy / "runs" / "tiny")
    assert {p: p.read_bytes() for p in committed} == committed
    run = json.loads((copy / "runs" / "tiny" / "book_timings.json").read_text())
    assert run["preset"] == "tiny" and run["chapters_s"] == {"01_data_retrieval": 1.0, "02_registration": None}
    assert sorted(run) == ["chapters_s", "date", "machine", "preset", "total_s"]

    # `make timings` copies them into the committed file and the README's table
    main = book_timings.main(["--root", str(copy), "--run-dir", str(copy / "runs" / "tiny")])
    stored = json.loads((copy / "book" / "timings.json").read_text())
    assert main == 0 and stored["tiny"]["01_data_retrieval"] == 1.0 and stored["tiny"]["date"] == run["date"]
    assert book_timings.timings_table(stored) in (copy / "README.md").read_text()
    # a run folder from before `make timings` existed says what to do
    (copy / "runs" / "old").mkdir()
    (copy / "runs" / "old" / "book_timings.json").write_text(json.dumps({"chapters_s": {}, "total_s": 1.0}))
    with pytest.raises(ValueError, match="no date, machine, preset .* build the book again"):
        book_timings.record_run(copy / "runs" / "old", copy / "book", copy / "README.md")


def test_every_chapter_includes_its_measured_time_and_types_none():
    """Each "Time to run" section includes its generated page (relative to book/chapters/, where the
    executed notebooks render) and keeps its prose free of typed times."""
    import re
    from pathlib import Path

    from indi4d.book.pages import chapter_paths

    root = Path(__file__).resolve().parents[1]
    toc = (root / "book" / "_toc.yml").read_text()
    timed = re.compile(r"\d\s*(s|sec|seconds?|min|minutes?|h|hours?)\b")
    for md in chapter_paths(root / "notebooks"):
        text = md.read_text()
        section = text[text.index("## Time to run"):]
        section = section[:section.index("\n```{code-cell}")]
        assert f"```{{include}} ../_generated/time_{md.stem}.md\n```" in section, md.name
        assert not timed.search(section), f"{md.name}: a typed time in 'Time to run': {timed.search(section)[0]!r}"
        assert f"file: chapters/{md.stem}\n" in toc, md.name  # so ../_generated is book/_generated


def _executed_chapter(path, preset, seed, start, end, seconds):
    """An executed notebook as papermill leaves it: only the metadata provenance_page reads."""
    import json

    record = {"parameters": {"preset": preset, "seed": seed, "run_dir": "../runs/x"}, "start_time": start,
              "end_time": end, "duration": seconds}
    path.write_text(json.dumps({"cells": [], "metadata": {"papermill": record}, "nbformat": 4,
                                "nbformat_minor": 5}))


def test_the_landing_page_says_which_preset_built_the_book(tmp_path):
    from indi4d.book.pages import provenance_page

    assert "no executed chapter" in provenance_page(tmp_path)
    _executed_chapter(tmp_path / "01_a.ipynb", "workshop", 0, "2026-12-01T10:06:30+00:00",
                      "2026-12-01T10:08:30+00:00", 120.0)
    _executed_chapter(tmp_path / "02_b.ipynb", "workshop", 0, "2026-12-01T10:08:31+00:00",
                      "2026-12-01T10:16:31+00:00", 480.0)
    page = provenance_page(tmp_path)
    assert page.startswith("**This copy of the book** was executed with the `workshop` preset, seed 0: "
                           "2 chapters, 2026-12-01 10:06-10:16 UTC, 10 min of execution")
    # a chapter re-run with another preset is not hidden: the page lists each chapter's parameters
    _executed_chapter(tmp_path / "02_b.ipynb", "tiny", 3, "2026-12-02T09:00:00+00:00",
                      "2026-12-02T09:00:30+00:00", 30.0)
    page = provenance_page(tmp_path)
    assert "mixes chapters executed with different parameters" in page
    assert "| 01_a | `workshop` | 0 |" in page and "| 02_b | `tiny` | 3 |" in page
    assert "2026-12-01 10:06 to 2026-12-02 09:00 UTC" in page


def test_the_readme_table_of_times_is_rewritten_from_the_timings(tmp_path):
    from indi4d.book.timings import README_TIMINGS, timings_table, update_readme_timings

    timings = {"default": {"01_a": 200.0, "02_b": 7200.0, "total_s": 7400.0, "date": "2026-11-30", "machine": 2},
               "tiny": {"01_a": 20.0, "total_s": 20.0, "date": "2026-12-01", "machine": 4}}
    table = timings_table(timings)
    assert table.splitlines() == ["| chapter | `tiny` | `default` |", "|---|---|---|",
                                  "| 01_a | 20 s | 3.3 min |", "| 02_b | - | 2.0 h |",
                                  "| **total** | **20 s** | **2.1 h** |",
                                  "| measured on | 4 CPU cores, 2026-12-01 | 2 CPU cores, 2026-11-30 |"]
    readme = tmp_path / "README.md"
    start, end = README_TIMINGS
    readme.write_text(f"# title\n\ntext\n\n{start}\n| stale |\n{end}\n\nafter\n")
    assert update_readme_timings(readme, timings)
    assert readme.read_text() == f"# title\n\ntext\n\n{start}\n{table}{end}\n\nafter\n"
    assert not update_readme_timings(readme, timings)  # unchanged: not rewritten
    plain = tmp_path / "PLAIN.md"
    plain.write_text("no markers\n")
    assert not update_readme_timings(plain, timings) and plain.read_text() == "no markers\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PLAIN.md", "README.md"]  # no temporary file left


def test_the_committed_readme_shows_the_committed_times():
    """The README's table is the one `make timings` writes from book/timings.json (docs match the record)."""
    from indi4d.book.timings import README_TIMINGS, read_timings, timings_table

    root = Path(__file__).resolve().parents[1]
    text = (root / "README.md").read_text()
    start, end = README_TIMINGS
    block = text[text.index(start) + len(start):text.index(end)]
    assert block == "\n" + timings_table(read_timings(root / "book"))
