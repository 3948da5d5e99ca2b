"""Every chapter executes through papermill with the tiny preset, and the book builds.

The chapters run in order into one run folder, as `make book` does, so each one
reads what the earlier ones wrote. The built book is then opened in a real
headless Chromium served from 127.0.0.1.
"""

import functools
import http.server
import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from indi4d.book.build import build_html, chapter_paths, execute_chapter

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = chapter_paths(ROOT / "notebooks")
EXECUTED = {}  # chapter stem -> executed notebook path

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A run folder and a private data cache shared by all chapters of this module."""
    base = tmp_path_factory.mktemp("tiny_book")
    old = os.environ.get("INDI4D_DATA_DIR")
    os.environ["INDI4D_DATA_DIR"] = str(base / "cache")  # inherited by the papermill kernels
    yield base
    if old is None:
        os.environ.pop("INDI4D_DATA_DIR", None)
    else:
        os.environ["INDI4D_DATA_DIR"] = old


def _outputs(nb, kind):
    return [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []) if kind(o)]


@pytest.mark.parametrize("md", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_chapter_executes_with_tiny_preset(md, tiny_run):
    earlier = [p.stem for p in CHAPTERS[: CHAPTERS.index(md)]]
    missing = [s for s in earlier if s not in EXECUTED]
    if missing:
        pytest.skip(f"earlier chapters failed: {missing}")
    out = tiny_run / "executed" / f"{md.stem}.ipynb"
    params = {"preset": "tiny", "seed": 0, "run_dir": str(tiny_run / "run")}
    execute_chapter(md, out, params)
    nb = json.loads(out.read_text())
    errors = _outputs(nb, lambda o: o.get("output_type") == "error")
    assert not errors, f"{md.name}: error outputs {errors}"
    figures = _outputs(nb, lambda o: "image/png" in o.get("data", {}))
    assert figures, f"{md.name}: the chapter shows no figure"
    # the parameters papermill injected are the ones we passed
    injected = [c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert injected and "tiny" in "".join(injected[0]["source"])
    EXECUTED[md.stem] = out


def test_every_chapter_has_the_cookbook_frame():
    """Overview, prerequisites and time to run first; summary and what comes next last."""
    for md in CHAPTERS:
        text = md.read_text()
        heads = [h for h in ("## Overview", "## Prerequisites", "## Time to run", "## Summary", "## What comes next")]
        positions = [text.find(h) for h in heads]
        assert all(p >= 0 for p in positions), f"{md.name}: missing one of {heads}"
        assert positions == sorted(positions), f"{md.name}: sections out of order"
        assert text.count(":tags: [parameters]") == 1, f"{md.name}: needs exactly one parameters cell"


def test_insitu_chapter_scores_every_time_step(tiny_run):
    """Chapter 06 wrote its enhanced volumes and metrics; the truth scored against itself is perfect."""
    if "06_insitu" not in EXECUTED:
        pytest.skip("chapter 06 did not execute")
    from indi4d import runs
    from indi4d.files import read_json
    from indi4d.io import read_metadata

    run = tiny_run / "run"
    results = read_json(runs.artifact(run, "insitu", "metrics"))
    assert results["times"] == ["T0", "T1", "T2"]
    for method in ("lq", "indi_xy", "truth"):
        assert len(results["scores"][method]) == 3, method
    truth = results["scores"]["truth"]
    assert all(s["psnr_db"] == float("inf") and s["mae"] == 0.0 and s["n_false_particles"] == 0 for s in truth)
    for name in results["files"]["indi_xy"]:
        path = runs.artifact(run, "insitu", "enhanced") / name
        assert read_metadata(path)["indi4d_insitu"]["steps"] == results["steps"]


def test_segmentation_of_a_slab_sees_only_its_slices(tiny_run):
    """With ``z_slices`` (the workshop's setting) chapter 07's run keeps that many slices around the scribbled
    one: truth, images, segmentations, scores and descriptors, with slice numbers reported in the whole stack."""
    if "06_insitu" not in EXECUTED:
        pytest.skip("chapter 06 did not execute")
    from indi4d import segmentation
    from indi4d.phases import PHASE_NAMES
    from indi4d.segmentation.network import build_attention_unet

    seg = segmentation.Segmentation(tiny_run / "run", preset="tiny", z_slices=6)
    series = seg.load()
    n = series["labels"][0].shape[0]
    whole_truth = [v.copy() for v in series["labels"]]
    seg.scribble()
    z0, z1 = seg.z_range
    assert z1 - z0 == 6 and 0 <= z0 and z1 <= n and 0 <= seg.z_train < 6 and 0 <= seg.z_val < 6
    for i, v in enumerate(series["labels"]):
        np.testing.assert_array_equal(v, whole_truth[i][z0:z1])
    assert all(len(v) == 6 for vols in seg.images.values() for v in vols)
    seg.forests()
    # untrained networks of the chapter's architecture: this test is about which slices are analysed
    seg.networks = {m: build_attention_unet(n_phases=len(PHASE_NAMES), base_filters=8, depth=2)
                    for m in seg.methods}
    seg.segment()
    seg.describe(["lq"])
    results = seg.results()
    assert all(lab.shape == series["labels"][0].shape for labs in seg.labels.values() for lab in labs)
    assert results["z_range"] == [z0, z1] and results["shape"][0] == 6
    assert results["scribbles"]["z"] == z0 + seg.z_train and z0 <= results["scribbles"]["val_z"] < z1


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI must install chromium (see .ci/run) for the browser check of the book")
    pytest.skip("no chromium on this machine")


#: Chromium's flags on a machine with a closed network (no background connections, no sandbox as root).
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]

#: What a page shows when a cell failed or wrote to stderr (myst-nb's output classes).
ERROR_SELECTOR = ".output.traceback, .output.error, .output.stderr"


def _book_pages(html):
    """Every page of a built book (relative paths), without Sphinx's index and search pages and
    jupyter-book's ``index.html`` (a redirect to the root page)."""
    return sorted(p.relative_to(html).as_posix() for p in html.rglob("*.html")
                  if not {"_static", "_sources", "_images"} & set(p.relative_to(html).parts)
                  and p.relative_to(html).as_posix() not in ("genindex.html", "search.html", "index.html"))


def _check_page(page, url):
    """Open one page; return what is wrong with it (broken images, error outputs, a traceback, equations
    MathJax did not typeset)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

    page.goto(url, wait_until="load")
    problems = []
    broken = page.evaluate("Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))"
                           ".map(i => i.getAttribute('src'))")
    if broken:
        problems.append(f"images that did not load: {broken}")
    if page.locator(ERROR_SELECTOR).count():
        problems.append(f"{page.locator(ERROR_SELECTOR).count()} error/stderr output block(s)")
    if "Traceback (most recent call last)" in page.inner_text("body"):
        problems.append("a traceback in the text")
    n_math = page.locator(".math").count()
    if n_math:  # MathJax ships with the book (book/_vendor): every equation is typeset, offline
        try:
            page.wait_for_function("document.querySelectorAll('mjx-container').length >= "
                                   "document.querySelectorAll('.math').length", timeout=30000)
        except PlaywrightTimeoutError:
            problems.append(f"{n_math - page.locator('mjx-container').count()} of {n_math} equations not typeset")
    return problems


def test_book_builds_and_renders_in_a_browser(tmp_path, tiny_run):
    """Every page of the tiny book in headless Chromium: images loaded, no error output, a screenshot each;
    the sidebar links every chapter; the search page finds InDI; the landing page carries the run's results."""
    if len(EXECUTED) != len(CHAPTERS):
        pytest.skip("not every chapter executed")
    book = tmp_path / "book"
    shutil.copytree(ROOT / "book", book, ignore=shutil.ignore_patterns("_build", "chapters", "_generated"))
    (book / "chapters").mkdir()
    for out in EXECUTED.values():
        shutil.copy(out, book / "chapters" / out.name)
    html = build_html(book, ROOT / "notebooks", run_dir=tiny_run / "run").parent
    # the rerun page's tables come from the chapters' parameters cells
    generated = (book / "_generated" / "parameters.md").read_text()
    for md in CHAPTERS:
        assert f"notebooks/{md.name}" in generated and "| `run_dir` |" in generated
    chromium = _chromium()
    from playwright.sync_api import sync_playwright

    shots = html.parent / "screenshots"  # under the build folder, one per page
    shots.mkdir()
    pages = _book_pages(html)
    assert {f"chapters/{md.stem}.html" for md in CHAPTERS} <= set(pages) and "intro.html" in pages
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            # the book is self-contained: scripts, fonts and MathJax come from the book's folder
            outside = []
            page.on("request", lambda r: None if r.url.startswith((base, "data:", "blob:")) else outside.append(r.url))
            problems = {}
            for rel in pages:
                found = _check_page(page, f"{base}/{rel}")
                if found:
                    problems[rel] = found
                page.screenshot(path=str(shots / (rel.replace("/", "_")[:-5] + ".png")))
            assert not problems, problems
            assert not outside, f"pages asked for files outside the book: {sorted(set(outside))}"
            # the chapters show their text and figures; the sidebar of the landing page links every chapter
            page.goto(f"{base}/chapters/{CHAPTERS[0].stem}.html", wait_until="load")
            assert "Overview" in page.inner_text("body") and page.locator("img").count() > 0
            page.goto(f"{base}/index.html", wait_until="load")  # redirects to the root page
            page.wait_for_url("**/intro.html")
            links = page.evaluate("Array.from(document.querySelectorAll('.bd-sidebar-primary a'))"
                                  ".map(a => a.getAttribute('href'))")
            for md in CHAPTERS:
                assert any(f"chapters/{md.stem}.html" in (h or "") for h in links), (md.stem, links)
            # the landing page carries the key figure and chapter 5's table, generated from the run
            body = page.inner_text("body")
            assert "Against the truth on the" in body and "HQ ideal" in body
            assert "This copy of the book was executed with the tiny preset, seed 0" in body
            assert page.locator("img[src*='key_figure']").count() == 1
            # Sphinx's search (a JavaScript index) finds the method's name
            page.goto(f"{base}/search.html?q=InDI", wait_until="load")
            page.wait_for_selector("#search-results li", timeout=30000)
            assert page.locator("#search-results li").count() > 0
            browser.close()
    finally:
        server.shutdown()
    from skimage.io import imread

    pixels = imread(shots / "intro.png")
    assert pixels.ndim == 3 and pixels.shape[0] >= 1000
    assert np.std(pixels[..., :3]) > 10, "the rendered landing page is blank"
    assert len(list(shots.glob("*.png"))) == len(pages)
