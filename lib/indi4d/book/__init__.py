"""The book's machinery: execute the chapters, generate the pages around them, keep their times.

- :mod:`~indi4d.book.build`: papermill runs of the chapters (re-run only when
  their fingerprint changed), the HTML build (any Sphinx warning fails it), and
  ``python -m indi4d.book`` (what ``make book`` runs);
- :mod:`~indi4d.book.pages`: the pages generated at every build into
  ``book/_generated/`` (parameters tables, the landing page's figure and table,
  the beamline's settings, the discussion's numbers, the chapters' times);
- :mod:`~indi4d.book.timings`: the chapters' measured times, per build in the
  run folder and per preset in the committed ``book/timings.json``;
  ``python -m indi4d.book.timings`` is what ``make timings`` runs.

The modules are imported by name (``from indi4d.book import build``): this
package face imports none of them, so that ``python -m indi4d.book.timings``
runs its module once (a re-export here would import it a second time before
running it).
"""
