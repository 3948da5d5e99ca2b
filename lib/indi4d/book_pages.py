"""The book's pages that are generated at every build instead of typed (``BOOK/_generated/``).

* ``parameters.md``: each chapter's papermill command and parameters table,
  read from its ``parameters`` cell (:func:`parameters_page`);
* ``headline.md`` and ``key_figure.png``: the landing page's figure and table
  against the truth, from chapter 5's results (:func:`headline_page`);
* ``beamline.md``: the simulated beamline's settings and calibration, from
  the run's ``meta.json`` (:func:`beamline_page`).

Pages include them with ``{include}``, so a number on them is always the
number of the run the book was built from.
"""

from pathlib import Path

from .book import chapter_paths
from .files import atomic_path

def _comments_by_line(source):
    """``{line number: comment text}`` of a cell's ``#`` comments."""
    import io
    import tokenize

    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    return {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}


#: What the parameters every chapter shares mean (a chapter's own comment wins).
COMMON_PARAMETERS = {
    "preset": "sizes of everything: `tiny` (tests, seconds), `default` (this book, 2 CPU cores), `paper` (a GPU)",
    "seed": "seed of every random draw: the same seed gives the same figures",
    "run_dir": "the run's folder, shared by all chapters (each reads what the earlier ones wrote)",
}


def chapter_parameters(md_path):
    """A chapter's title and the parameters its ``parameters`` cell sets, as written there.

    Returns
    -------
    title : str
        The chapter's first ``# `` heading.
    params : list of (name, default, meaning)
        ``default`` is the assignment's source text (``"default"``, ``0``,
        ``True``); ``meaning`` the comment on its line (or the line above), or "".
    """
    import ast

    import jupytext

    nb = jupytext.read(md_path)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"{md_path}: expected one cell tagged 'parameters', found {len(cells)}")
    source = cells[0].source
    comments = _comments_by_line(source)
    params = []
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            meaning = comments.get(node.end_lineno) or comments.get(node.lineno - 1) or COMMON_PARAMETERS.get(name, "")
            params.append((name, ast.get_source_segment(source, node.value), meaning))
    title = next((c.source.splitlines()[0][2:].strip() for c in nb.cells
                  if c.cell_type == "markdown" and c.source.startswith("# ")), Path(md_path).stem)
    return title, params


def parameters_page(notebooks_dir):
    """Markdown: for every chapter, the papermill command that reruns it and its parameters table.

    Generated from the chapters' ``parameters`` cells at every build, so the
    book can never list a parameter a chapter does not have.
    """
    lines = []
    for md in chapter_paths(notebooks_dir):
        title, params = chapter_parameters(md)
        flags = " ".join(f"-p {name} {value}" for name, value in (("preset", "tiny"), ("run_dir", "/tmp/run")))
        lines += [f"### {title}", "", "```bash",
                  f".venv/bin/jupytext --to ipynb notebooks/{md.name} -o /tmp/{md.stem}.ipynb",
                  f".venv/bin/papermill /tmp/{md.stem}.ipynb /tmp/{md.stem}_out.ipynb {flags}", "```", "",
                  "| parameter | default | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | `{value}` | {meaning} |" for name, value, meaning in params]
        lines.append("")
    return "\n".join(lines)


#: The landing page's key figure: chapter 5's side-by-side test slice (bicubic LQ ... HQ, truth).
KEY_FIGURE = "05_comparison.png"


def headline_page(run_dir, figure=None):
    """Markdown for the landing page: chapter 5's key figure and its table against the truth, from the run.

    Parameters
    ----------
    run_dir : str or Path or None
        The run the book was built from (``eval/metrics.json``, written by
        chapter 5); None or a run without it gives a short note instead.
    figure : str, optional
        Path of the key figure relative to the landing page (shown when given).

    Returns
    -------
    str
    """
    from . import runs
    from .evaluation import truth_table
    from .files import read_json

    path = None if run_dir is None else runs.artifact(run_dir, "eval", "metrics")
    if path is None or not Path(path).is_file():
        return ("*This build has no evaluated run (chapter 5's `eval/metrics.json`): "
                "run `make book` to see the headline results here.*\n")
    results = read_json(path, "chapter 5's results")
    lines = []
    if figure:
        lines += [f"```{{figure}} {figure}", ":width: 100%", "",
                  "One held-out test slice as every method restores it (InDI at its chosen "
                  f"N = {results['steps']}), beside the HQ scans and the true attenuation; the lower row enlarges "
                  "the region with the most phase boundaries (chapter 5).", "```", ""]
    lines += [f"Against the truth on the {len(results.get('test_slices') or [])} held-out test slices of this "
              f"build (preset `{results['preset']}`, seed {results['seed']}; table generated from "
              "chapter 5's results):", "",
              truth_table(results["scores"], results["steps"], results.get("scoring")), ""]
    return "\n".join(lines)


def _row(name, lq, hq, unit=""):
    return f"| {name} | {lq}{unit} | {hq}{unit} |"


def beamline_page(run_dir):
    """Markdown: the simulated beamline's LQ and HQ settings and the calibration measured on it.

    Read from the run's ``data/meta.json`` (chapter 1); a run without one
    (real data, or no run) gives a short note instead.
    """
    from . import runs
    from .files import read_json

    path = None if run_dir is None else runs.artifact(run_dir, "data", "meta")
    if path is None or not Path(path).is_file():
        return "*This build has no simulated data set (chapter 1's `meta.json`).*\n"
    meta = read_json(path, "the simulated data set's description")
    vox, acq, dose = meta["voxel_size_nm"], meta["acquisition"], meta["dose"]
    lines = [f"Settings of this build's simulation (preset `{meta['preset']}`, seed {meta['seed']}; "
             "from chapter 1's `meta.json`):", "",
             "| | LQ scan | HQ scan |", "|---|---|---|",
             _row("voxel size", f"{vox['lq']:g}", f"{vox['hq']:g}", " nm"),
             _row("volume (voxels)", " × ".join(map(str, meta["lq_shape"])), " × ".join(map(str, meta["hq_shape"]))),
             _row("projection angles", acq["lq"]["n_angles"], acq["hq"]["n_angles"]),
             _row("detector blur σ", f"{acq['lq']['blur_sigma_nm']:g}", f"{acq['hq']['blur_sigma_nm']:g}", " nm"),
             _row("dose (photons per detector pixel and projection)", f"{dose['lq']:g}", f"{dose['hq']:g}"), ""]
    psf = (meta.get("psf") or {}).get("hq")
    if psf:
        lines += [f"The HQ point-spread function measured on the calibration disc: σ = {psf['sigma_nm']:.0f} nm, "
                  f"FWHM = {psf['fwhm_nm']:.0f} nm ({psf['source']}).", ""]
    mu = meta.get("attenuation_per_um") or {}
    if mu:
        lines += ["True attenuation per phase (1/µm): "
                  + ", ".join(f"{name} {value:g}" for name, value in mu.items()) + ".", ""]
    return "\n".join(lines)


def write_generated_pages(book_dir, notebooks_dir, run_dir=None):
    """Write the pages the book includes but nobody types, into ``BOOK/_generated/``.

    ``parameters.md`` (:func:`parameters_page`), ``headline.md``
    (:func:`headline_page`), ``beamline.md`` (:func:`beamline_page`) and,
    from ``run_dir``, the key figure.
    """
    import shutil

    from . import runs

    folder = Path(book_dir) / "_generated"
    folder.mkdir(exist_ok=True)
    with atomic_path(folder / "parameters.md") as tmp:
        Path(tmp).write_text(parameters_page(notebooks_dir))
    figure = None
    source = None if run_dir is None else runs.stage_dir(run_dir, "figures") / KEY_FIGURE
    if source is not None and source.is_file():
        with atomic_path(folder / "key_figure.png") as tmp:
            shutil.copyfile(source, tmp)
        figure = "_generated/key_figure.png"
    with atomic_path(folder / "headline.md") as tmp:
        Path(tmp).write_text(headline_page(run_dir, figure))
    with atomic_path(folder / "beamline.md") as tmp:
        Path(tmp).write_text(beamline_page(run_dir))
