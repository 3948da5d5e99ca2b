"""The book's HTML build fails on a warning: a broken reference stops `make book` and is named.

A one-page book with the real book's configuration is built twice with the
same code as `make book` (:func:`indi4d.book.build.run_jupyter_book`): with a
reference to a label that does not exist it fails, naming the label; with the
reference fixed it builds.
"""

import shutil
import sys
from pathlib import Path

import pytest

from indi4d.book.build import BookBuildError, run_jupyter_book

BOOK = Path(__file__).resolve().parents[1] / "book"

PAGE = """# A page

(a-section)=
## A section

See {ref}`TARGET` and {cite}`indi4d_paper`.

```{bibliography}
```
"""


def _one_page_book(folder, target):
    folder.mkdir()
    for name in ("_config.yml", "references.bib"):  # the real book's settings and bibliography
        shutil.copy(BOOK / name, folder / name)
    shutil.copytree(BOOK / "_vendor", folder / "_vendor")  # the static files the settings name (MathJax)
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (folder / "intro.md").write_text(PAGE.replace("TARGET", target))
    return folder


def test_a_broken_reference_fails_the_build_and_is_named(tmp_path):
    if not Path(sys.executable).with_name("jupyter-book").exists() and shutil.which("jupyter-book") is None:
        pytest.skip("jupyter-book is not installed (the `book` extra)")
    broken = _one_page_book(tmp_path / "broken", "no-such-label")
    named = r"broken: jupyter-book build failed[^\n]*\n[^\n]*intro\.md:\d+: WARNING: undefined label: 'no-such-label'"
    with pytest.raises(BookBuildError, match=named):
        run_jupyter_book(broken)
    fixed = _one_page_book(tmp_path / "fixed", "a-section")
    index = run_jupyter_book(fixed)
    assert index.is_file() and "A section" in (fixed / "_build" / "html" / "intro.html").read_text()
