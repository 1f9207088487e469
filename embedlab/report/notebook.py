"""Jupyter display: results render inline as a self-contained report in an iframe."""
from __future__ import annotations

import html
from typing import TYPE_CHECKING, Iterable

from embedlab.report.html import MAX_TABLE_ROWS, render_html, results_json

if TYPE_CHECKING:
    from embedlab.analysis import AnalysisResult


def result_html_standalone(result: AnalysisResult | Iterable[AnalysisResult], height: int | None = None) -> str:
    """One result (or several) as a self-contained iframe: Jupyter's inline display.

    The iframe's ``srcdoc`` holds a whole report, so BokehJS and the plots work in any
    notebook front end without ``output_notebook()`` and without network access.
    """
    results = list(result) if isinstance(result, (list, tuple)) else [result]
    title = results[0].title if len(results) == 1 else "embedlab results"
    doc = render_html(None, results, title=title)
    if height is None:
        n_figs = sum(len(r.figures) for r in results)
        n_rows = sum(min(len(df), MAX_TABLE_ROWS) + 2 for r in results for df in r.tables.values())
        height = min(6000, 260 + 180 * len(results) + 500 * n_figs + 12 * n_rows)
    return (f'<iframe srcdoc="{html.escape(doc, quote=True)}" style="width:100%;height:{height}px;border:0"></iframe>')


class ResultList(list):
    """A list of AnalysisResults that Jupyter displays as one inline report."""

    def _repr_html_(self) -> str:
        return result_html_standalone(list(self))

    def to_json(self) -> str:
        return results_json(None, self)

    def __repr__(self) -> str:
        return "[" + ", ".join(f"<{r.analysis}/{r.table}: {'error' if r.error else 'ok'}>" for r in self) + "]"
