"""The book's pages that are generated at every build instead of typed (``BOOK/_generated/``).

* ``parameters.md``: each chapter's papermill command and parameters table,
  read from its ``parameters`` cell (:func:`parameters_page`);
* ``headline.md`` and ``key_figure.png``: the landing page's figure and table
  against the truth, from chapter 5's results (:func:`headline_page`);
* ``beamline.md``: the simulated beamline's settings and calibration, from
  the run's ``meta.json`` (:func:`beamline_page`);
* ``discussion_numbers.md``: the measured numbers the discussion rests on,
  from chapters 5 and 6 (:func:`discussion_numbers`);
* ``time_<chapter>.md``: each chapter's measured time per preset, from
  ``BOOK/timings.json`` (:func:`indi4d.book.timings.time_page`), included by
  the chapter's "Time to run" section;
* ``provenance.md``: which preset and seed built the chapters of this copy of
  the book, and when, from the executed notebooks' papermill metadata
  (:func:`provenance_page`), included by the landing page;
* ``timings.md``: the table of every chapter's time per preset
  (:func:`indi4d.book.timings.timings_table`), included by the rerun page
  and copied into the README.

Pages include them with ``{include}``, so a number on them is always the
number of the run the book was built from.
"""

from pathlib import Path

from ..files import atomic_path, read_json
from .timings import duration, read_timings, time_page, timings_table


def chapter_paths(notebooks_dir):
    """Return the chapter sources ``NN_*.md`` of a folder, in order."""
    paths = sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.md"))
    if not paths:
        raise FileNotFoundError(f"{notebooks_dir}: no chapters (NN_name.md) found")
    return paths


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
        lines += [f"## {title}", "", "```bash",
                  f".venv/bin/jupytext --to ipynb notebooks/{md.name} -o /tmp/{md.stem}.ipynb",
                  f".venv/bin/papermill /tmp/{md.stem}.ipynb /tmp/{md.stem}_out.ipynb {flags}", "```", "",
                  "| parameter | default | meaning |", "|---|---|---|"]
        lines += [f"| `{name}` | `{value}` | {meaning} |" for name, value, meaning in params]
        lines.append("")
    return "\n".join(lines)


#: The landing page's key figure: chapter 5's side-by-side test slice (bicubic LQ ... HQ, truth).
KEY_FIGURE = "05_comparison.png"


def _run_results(run_dir, stage, what):
    """A stage's ``metrics.json``/``meta.json`` of the run as a dict, or None when there is no such file."""
    from .. import runs

    key = "meta" if stage == "data" else "metrics"
    path = None if run_dir is None else runs.artifact(run_dir, stage, key)
    return read_json(path, what) if path is not None and Path(path).is_file() else None


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
    from ..evaluation import truth_table

    results = _run_results(run_dir, "eval", "chapter 5's results")
    if results is None:
        return ("*This build has no evaluated run (chapter 5's `eval/metrics.json`): "
                "run `make book` to see the headline results here.*\n")
    lines = []
    if figure:
        lines += [f"```{{figure}} {figure}", ":width: 100%", "",
                  "One held-out test slice as every method restores it (InDI at its chosen "
                  f"N = {results['steps']}), beside the HQ scans and the true attenuation, in two rows; below "
                  "each slice, the region with the most phase boundaries enlarged (chapter 5).", "```", ""]
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
    meta = _run_results(run_dir, "data", "the simulated data set's description")
    if meta is None:
        return "*This build has no simulated data set (chapter 1's `meta.json`).*\n"
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


def _truth(results, method, key):
    return ((results["scores"].get(method) or {}).get("vs_truth") or {}).get(key)


def _num(value, fmt):
    return "–" if value is None else format(value, fmt)


def discussion_numbers(run_dir):
    """Markdown bullets: the measured numbers the discussion rests on, from chapters 5 and 6 of the run.

    Every sentence is built from ``eval/metrics.json`` and
    ``insitu/metrics.json``; a missing file gives a note instead of a number.
    """
    lines = []
    r = _run_results(run_dir, "eval", "chapter 5's results")
    if r is not None:
        t = {m: {k: _truth(r, m, k) for k in ("psnr", "ssim", "fwhm_nm", "false_particles_per_mm2")}
             for m in ("bicubic", "hq", "hq_ideal", "indi", "cnn", "gan")}
        met = [g for g in r.get("goals", []) if g.get("passed")]
        measured = [g for g in r.get("goals", []) if g.get("passed") is not None]
        lines += [
            f"- **Fidelity against the truth** (PSNR, 1/µm, no grey fit): InDI at N = {r['steps']} "
            f"{_num(t['indi']['psnr'], '.2f')} dB, the HQ scan {_num(t['hq']['psnr'], '.2f')} dB, the CNN "
            f"{_num(t['cnn']['psnr'], '.2f')} dB, the GAN {_num(t['gan']['psnr'], '.2f')} dB; the ideal HQ scan "
            f"(infinite dose) reaches {_num(t['hq_ideal']['psnr'], '.2f')} dB, the ceiling of any method trained "
            "to reproduce HQ scans.",
            f"- **Sharpness** (edge FWHM): InDI {_num(t['indi']['fwhm_nm'], '.0f')} nm, HQ "
            f"{_num(t['hq']['fwhm_nm'], '.0f')} nm, CNN {_num(t['cnn']['fwhm_nm'], '.0f')} nm, GAN "
            f"{_num(t['gan']['fwhm_nm'], '.0f')} nm, bicubic LQ {_num(t['bicubic']['fwhm_nm'], '.0f')} nm.",
            f"- **Hallucination** (particles found where the truth has none, per mm²): InDI "
            f"{_num(t['indi']['false_particles_per_mm2'], '.0f')}, HQ {_num(t['hq']['false_particles_per_mm2'], '.0f')}, "
            f"GAN {_num(t['gan']['false_particles_per_mm2'], '.0f')}.",
            f"- **Goals** of this book's InDI (chapter 5): {len(met)} of the {len(measured)} measured are met.",
        ]
        unc = r.get("uncertainty") or {}
        if unc.get("spearman") is not None:
            lines.append(f"- **Uncertainty**: the rank correlation between the spread of {unc.get('samples')} "
                         f"stochastic samples and the true error is {unc['spearman']:.2f} per pixel.")
    else:
        lines.append("- *No chapter 5 results in this build.*")
    r = _run_results(run_dir, "insitu", "chapter 6's results")
    if r is not None:
        dense = r.get("dense") or {}
        indi, lq = dense.get("indi_xy") or {}, dense.get("lq") or {}
        if indi.get("dense_mae") is not None:
            line = (f"- **Out of domain** (chapter 6): InDI's error in the dense phase, which never appears in "
                    f"training, is {indi['dense_mae']:.3f} 1/µm, {indi['ratio']:.1f}× its error at the boundaries of "
                    "the phases it was trained on")
            if lq.get("dense_mae") is not None:
                line += f" (the bicubic LQ input: {lq['dense_mae']:.3f} 1/µm, {lq['ratio']:.1f}×)"
            lines.append(line + ".")
        fusion = (r.get("fusion") or {}).get("psnr_db") or {}
        if fusion.get("fused") and fusion.get("xy"):
            gains = [f - x for f, x in zip(fusion["fused"], fusion["xy"])]
            lines.append(f"- **Three-axis fusion** against xy enhancement with z-interpolation: PSNR change per time "
                         f"step {', '.join(f'{g:+.2f}' for g in gains)} dB.")
    else:
        lines.append("- *No chapter 6 results in this build.*")
    return "\n".join(lines) + "\n"


def _papermill_record(ipynb_path):
    """``(parameters, start_time, end_time, duration_s)`` of an executed chapter (papermill's metadata)."""
    import json

    with open(ipynb_path) as f:
        record = json.load(f).get("metadata", {}).get("papermill") or {}
    return (record.get("parameters") or {}, record.get("start_time"), record.get("end_time"),
            record.get("duration"))


def provenance_page(chapters_dir):
    """Markdown: which preset and seed the executed chapters of a book ran with, when, and for how long.

    Parameters
    ----------
    chapters_dir : str or Path
        The book's executed chapters (``BOOK/chapters/*.ipynb``, written by
        :func:`indi4d.book.build.execute_chapter`, which records papermill's metadata).

    Returns
    -------
    str
        One paragraph, e.g. ``This copy of the book was executed with the `workshop` preset, seed 0:
        7 chapters, 2026-12-01 10:06-10:27 UTC, 21 min of execution ...``. Chapters run with different
        parameters are listed one by one; a book with no executed chapter says so.
    """
    chapters = sorted(Path(chapters_dir).glob("*.ipynb"))
    records = {p.stem: _papermill_record(p) for p in chapters}
    if not records:
        return "*This copy of the book holds no executed chapter: run `make book`.*\n"
    runs_with = {(params.get("preset"), params.get("seed")) for params, *_ in records.values()}
    starts = [r[1] for r in records.values() if r[1]]
    ends = [r[2] for r in records.values() if r[2]]
    total = sum(r[3] or 0.0 for r in records.values())
    when = ""
    if starts and ends:
        first, last = min(starts), max(ends)  # ISO 8601 in UTC: sorts as text
        when = (f", {first[:10]} {first[11:16]}" + (f" to {last[:10]} " if last[:10] != first[:10] else "-")
                + f"{last[11:16]} UTC")
    if len(runs_with) == 1:
        preset, seed = runs_with.pop()
        return (f"**This copy of the book** was executed with the `{preset}` preset, seed {seed}: "
                f"{len(records)} chapters{when}, {duration(total)} of execution (papermill's record in each "
                "executed notebook). Other presets give other numbers; see {doc}`rerun`.\n")
    rows = [f"| {stem} | `{params.get('preset')}` | {params.get('seed')} |"
            for stem, (params, *_) in records.items()]
    return ("**This copy of the book mixes chapters executed with different parameters**"
            f"{when}; its numbers do not come from one run:\n\n| chapter | preset | seed |\n|---|---|---|\n"
            + "\n".join(rows) + "\n")


def write_generated_pages(book_dir, notebooks_dir, run_dir=None):
    """Write the pages the book includes but nobody types, into ``BOOK/_generated/``.

    ``parameters.md`` (:func:`parameters_page`), ``headline.md``
    (:func:`headline_page`), ``beamline.md`` (:func:`beamline_page`),
    ``discussion_numbers.md`` (:func:`discussion_numbers`), one
    ``time_<chapter>.md`` per chapter (:func:`time_page`, from
    ``BOOK/timings.json``), ``timings.md`` (:func:`timings_table`),
    ``provenance.md`` (:func:`provenance_page`, from ``BOOK/chapters/``) and,
    from ``run_dir``, the key figure.
    """
    import shutil

    from .. import runs

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
    with atomic_path(folder / "discussion_numbers.md") as tmp:
        Path(tmp).write_text(discussion_numbers(run_dir))
    timings = read_timings(book_dir)
    with atomic_path(folder / "timings.md") as tmp:
        Path(tmp).write_text(timings_table(timings))
    with atomic_path(folder / "provenance.md") as tmp:
        Path(tmp).write_text(provenance_page(Path(book_dir) / "chapters"))
    for md in chapter_paths(notebooks_dir):
        with atomic_path(folder / f"time_{md.stem}.md") as tmp:
            Path(tmp).write_text(time_page(timings, md.stem))
