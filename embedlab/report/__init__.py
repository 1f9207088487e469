"""Rendering results for people: the HTML report (the only place HTML is written), terminal summaries, notebook display, the lr-find plot.

The package is also callable: ``embedlab.report(results, path)`` writes the standalone HTML
report of analysis results from Python (:func:`write`)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any


def write(results: Any, path: str | Path, run: Any = None, title: str | None = None, force: bool = False) -> Path:
    """``embedlab.report(results, path)``: write the standalone HTML report of ``results`` (what
    :func:`embedlab.analyze` returned, a list of AnalysisResults, or one) to ``path``, through the
    one report writer (:func:`embedlab.report.html.write_report`) and its write rule: a new file,
    or a report embedlab wrote; any other file only with ``force=True``. ``run``: the Run (or its
    folder) the results are about, for the report's explorer (default: the one
    ``embedlab.analyze`` recorded on its results). Returns the path written."""
    from embedlab.analysis import AnalysisResult
    from embedlab.report.html import write_report

    if run is None:
        run = getattr(results, "_embedlab_run", None)
    if isinstance(run, (str, Path)):
        from embedlab.run import load_run

        run = load_run(run)
    items = [results] if isinstance(results, AnalysisResult) else list(results)
    bad = next((r for r in items if not isinstance(r, AnalysisResult)), None)
    if bad is not None:
        from embedlab.errors import UsageError

        raise UsageError(
            f"embedlab.report: results must be AnalysisResults (embedlab.analyze's), not {type(bad).__name__}"
        )
    return write_report(path, run, items, title=title, force=force)


class _ReportPackage(types.ModuleType):
    """This package, callable: ``embedlab.report(results, path)`` is :func:`write`."""

    def __call__(
        self, results: Any, path: str | Path, run: Any = None, title: str | None = None, force: bool = False
    ) -> Path:
        return write(results, path, run=run, title=title, force=force)


sys.modules[__name__].__class__ = _ReportPackage
