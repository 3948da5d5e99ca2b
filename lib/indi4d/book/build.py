"""Execute the chapters with papermill and build the Jupyter Book.

Chapters are jupytext MyST markdown files (``notebooks/NN_name.md``) with one
cell tagged ``parameters``. :func:`execute_chapter` converts one to a notebook,
runs it headlessly with papermill (any cell error fails) and writes the
executed copy; :func:`build_book` runs all chapters in order into
``book/chapters/`` and calls ``jupyter-book build``.

An executed chapter records a fingerprint (its source, its parameters and the
library's source) in its metadata, so ``make book`` re-runs only what changed.

Every build records the chapters' measured times in the run folder
(``RUN_DIR/book_timings.json``) and nothing in the checkout; ``make timings``
(:mod:`indi4d.book.timings`) copies them into the committed ``book/timings.json``
and the README, from which each chapter's "Time to run" section is generated
(:mod:`indi4d.book.pages`).
"""

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from ..files import atomic_path, write_json
from .pages import chapter_paths, write_generated_pages
from .timings import RUN_TIMINGS_FILE, run_timings

#: The ``indi4d`` package folder, whose every source file enters a chapter's fingerprint.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _fingerprint(md_path, parameters):
    """sha256 of a chapter's source, its parameters and every library source file."""
    h = hashlib.sha256()
    h.update(Path(md_path).read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    for src in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(src.name.encode())
        h.update(src.read_bytes())
    return h.hexdigest()


def _stored_fingerprint(ipynb_path):
    try:
        meta = json.loads(Path(ipynb_path).read_text())["metadata"]
        return meta.get("indi4d", {}).get("fingerprint")
    except (OSError, ValueError, KeyError):
        return None


def execute_chapter(md_path, out_path, parameters, cwd=None, kernel_name="python3", log_output=False):
    """Run one jupytext chapter through papermill and write the executed notebook.

    Parameters
    ----------
    md_path : str or Path
        The chapter source (jupytext MyST markdown).
    out_path : str or Path
        Where the executed ``.ipynb`` goes (written atomically: a failed run
        leaves no notebook that looks complete).
    parameters : dict
        Values injected after the ``parameters`` cell (``preset``, ``run_dir``, ...).
    cwd : str or Path, optional
        Working directory of the kernel; defaults to the chapter's folder.
    kernel_name : str
        Jupyter kernel; ``python3`` is the interpreter running this function.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    papermill.PapermillExecutionError
        When a cell fails; the message names the cell and the error.
    """
    import jupytext
    import nbformat
    import papermill

    md_path = Path(md_path)
    out_path = Path(out_path)
    nb = jupytext.read(md_path)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ValueError(f"{md_path}: no cell tagged 'parameters'")
    nb.metadata["kernelspec"] = {"name": kernel_name, "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    nb.metadata["indi4d"] = {"source": md_path.name, "fingerprint": _fingerprint(md_path, parameters)}
    with atomic_path(out_path.with_suffix(".input.ipynb")) as tmp_in:
        nbformat.write(nb, tmp_in)
        with atomic_path(out_path) as tmp_out:
            papermill.execute_notebook(
                str(tmp_in), str(tmp_out), parameters=parameters,
                cwd=str(cwd or md_path.parent), kernel_name=kernel_name,
                progress_bar=False, log_output=log_output, language="python",
            )
    out_path.with_suffix(".input.ipynb").unlink(missing_ok=True)
    return out_path


def execute_chapters(notebooks_dir, out_dir, parameters, only=None, force=False):
    """Execute every chapter in order; skip those whose fingerprint is unchanged.

    Returns
    -------
    list of (name, seconds or None)
        Wall time per executed chapter (None when reused).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    timings = []
    for md in chapter_paths(notebooks_dir):
        if only and not any(md.name.startswith(o) for o in only):
            continue
        out = out_dir / f"{md.stem}.ipynb"
        if not force and out.exists() and _stored_fingerprint(out) == _fingerprint(md, parameters):
            print(f"[book] {md.name}: unchanged, reusing {out}", flush=True)
            timings.append((md.stem, None))
            continue
        print(f"[book] {md.name}: executing with {parameters} ...", flush=True)
        t0 = time.perf_counter()
        execute_chapter(md, out, parameters)
        dt = time.perf_counter() - t0
        print(f"[book] {md.name}: done in {dt:.0f} s", flush=True)
        timings.append((md.stem, dt))
    return timings


def build_html(book_dir, notebooks_dir=None, run_dir=None):
    """Write the generated pages and build a book folder's HTML; return ``_build/html/index.html``.

    The generated pages (:func:`indi4d.book.pages.write_generated_pages`, from ``notebooks_dir``,
    default the ``notebooks/`` folder beside the book, and from the chapters'
    ``run_dir``) are written first, then :func:`run_jupyter_book` builds (any
    warning fails the build: :class:`BookBuildError`).
    """
    book_dir = Path(book_dir)
    notebooks_dir = Path(notebooks_dir) if notebooks_dir is not None else book_dir.parent / "notebooks"
    if not notebooks_dir.is_dir():
        raise FileNotFoundError(f"{notebooks_dir}: no chapter sources to generate the book's parameter tables from "
                                "(pass notebooks_dir)")
    write_generated_pages(book_dir, notebooks_dir, run_dir)
    return run_jupyter_book(book_dir)


class BookBuildError(RuntimeError):
    """``jupyter-book build`` failed or warned; the message lists its warnings and errors."""


#: ``jupyter-book build`` flags: every warning is an error (``-W``), nitpicky about every
#: reference (``-n``), all warnings reported before failing (``--keep-going``), and every page
#: re-read (``--all``: an incremental build would not re-emit the warnings of unchanged pages,
#: so a second build after a failed one would pass).
BUILD_FLAGS = ("-W", "-n", "--keep-going", "--all")


def run_jupyter_book(book_dir):
    """Run ``jupyter-book build`` on a book folder as it is; return ``_build/html/index.html``.

    The console script next to this interpreter is used, so the build runs in
    the same environment as the chapters. Its warnings (broken references,
    missing citations, duplicate labels, ...) fail the build (:data:`BUILD_FLAGS`).

    Raises
    ------
    BookBuildError
        The build failed or warned; the message names the book and quotes every
        warning and error line, e.g. ``intro.md:5: WARNING: undefined label: 'nowhere'``.
    """
    book_dir = Path(book_dir)
    exe = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(exe)] if exe.exists() else ["jupyter-book"]
    env = dict(os.environ, PYDEVD_DISABLE_FILE_VALIDATION="1")
    # stderr (Sphinx's warnings) is shown as it comes and kept for the error message
    proc = subprocess.Popen(cmd + ["build", str(book_dir), *BUILD_FLAGS], env=env, stderr=subprocess.PIPE, text=True)
    problems = []
    for line in proc.stderr:
        sys.stderr.write(line)
        if "WARNING" in line or "ERROR" in line or "CRITICAL" in line or "Error" in line:
            problems.append(re.sub(r"\x1b\[[0-9;]*m", "", line).rstrip())  # without terminal colours
    rc = proc.wait()
    index = book_dir / "_build" / "html" / "index.html"
    if rc != 0:
        found = "\n".join(problems) or "(no warning on stderr; see the output above)"
        raise BookBuildError(f"{book_dir}: jupyter-book build failed (exit status {rc}; warnings are errors):\n{found}")
    if not index.exists():
        raise BookBuildError(f"jupyter-book did not write {index}")
    return index


def build_book(root, preset="default", seed=0, run_dir=None, only=None, force=False, retrain=False):
    """Execute the chapters with a preset and build the HTML book.

    Parameters
    ----------
    root : str or Path
        The repository root (holding ``notebooks/`` and ``book/``).
    preset : str
        Parameter preset passed to every chapter.
    run_dir : str or Path, optional
        Where chapters keep their artifacts; default ``ROOT/runs/<preset>``.
    retrain : bool
        Train every network with its recipe instead of installing the published
        reference networks (``make book TRAIN=1``; the chapters' ``retrain`` parameter).

    Returns
    -------
    Path
        ``book/_build/html/index.html``.
    """
    root = Path(root).resolve()
    run_dir = Path(run_dir or root / "runs" / preset).resolve()
    # chapters run with notebooks/ as working directory: a relative run_dir keeps
    # this machine's absolute paths out of the rendered parameters cells
    parameters = {"preset": preset, "seed": int(seed), "run_dir": os.path.relpath(run_dir, root / "notebooks")}
    if retrain:  # only when asked: the chapters' own default is to read the reference networks
        parameters["retrain"] = True
    t0 = time.perf_counter()
    timings = execute_chapters(root / "notebooks", root / "book" / "chapters", parameters, only=only, force=force)
    index = build_html(root / "book", root / "notebooks", run_dir)
    # only the run folder: the committed book/timings.json and README table are a maintainer's
    # `make timings` (indi4d.book.timings), so a build leaves the checkout as it was
    write_json(run_dir / RUN_TIMINGS_FILE, run_timings(preset, dict(timings), time.perf_counter() - t0))
    return index


def main(argv=None):
    """``python -m indi4d.book``: what ``make book`` runs."""
    parser = argparse.ArgumentParser(prog="python -m indi4d.book", description="execute the chapters and build the book")
    parser.add_argument("--root", default=".")
    parser.add_argument("--preset", default="default")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--run-dir", default=None)
    parser.add_argument("--only", nargs="*", help="chapter number prefixes, e.g. 01 02")
    parser.add_argument("--force", action="store_true", help="re-execute unchanged chapters")
    parser.add_argument("--train", action="store_true",
                        help="train every network with its recipe instead of installing the reference networks")
    args = parser.parse_args(argv)
    index = build_book(args.root, args.preset, args.seed, args.run_dir, args.only, args.force, args.train)
    print(f"\nThe book is built: {index}\nOpen it with: python3 -m http.server -d {index.parent}  (then http://127.0.0.1:8000)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
