"""Jupyter display: results, figures and the Python API's objects render inline.

Inline, not in an iframe: BokehJS (about 1.3 MB, more with widgets) travels once per notebook,
with the first output that needs it, and every later output only carries its own plots.
:data:`_SENT` remembers, per kernel, which BokehJS bundles were sent; a later output whose
plots need another bundle (widgets, tables, WebGL) sends just that one. Each plot's script
waits for BokehJS, so a notebook reopened from disk renders in order. A kernel restart starts
over (the next output carries BokehJS again); :func:`reset_bokehjs` does the same by hand
(after clearing the output that carried it).

Results are addressable (:class:`ResultList`): ``res["pca", "item"]``, ``res.pca.item``,
``res["pca"]`` (every table's), ``res["item"]`` (every analysis of a table).
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any, Iterable

from embedlab.report.html import MAX_TABLE_ROWS, render_html, results_json

if TYPE_CHECKING:
    from embedlab.analysis import AnalysisResult

#: BokehJS bundles already sent to this kernel's notebook ("bokeh", "bokeh-gl", ...)
_SENT: set[str] = set()

NOTEBOOK_CSS = """
.embedlab-nb{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#222;max-width:1280px}
.embedlab-nb h3{margin:.6em 0 .3em} .embedlab-nb .summary{background:#eef5ff;border-left:4px solid #4a90d9;
padding:8px 12px;border-radius:4px;white-space:pre-wrap;line-height:1.45}
.embedlab-nb .error{background:#fff0f0;border-left:4px solid #d9534f;padding:8px 12px;white-space:pre-wrap;font-family:monospace}
.embedlab-nb table.data{border-collapse:collapse;font-size:.85em;margin:6px 0}
.embedlab-nb table.data th,.embedlab-nb table.data td{border:1px solid #ddd;padding:2px 7px;text-align:left}
.embedlab-nb .row,.embedlab-nb .figs,.embedlab-nb .tables{display:flex;flex-wrap:wrap;gap:14px;align-items:flex-start}
.embedlab-nb .muted{color:#888;font-size:.85em}
"""


def reset_bokehjs() -> None:
    """Forget that BokehJS was sent: the next output carries it again."""
    _SENT.clear()


def _bundles(models: list) -> tuple[list[str], str]:
    """The BokehJS components these models need (core first) and any custom-model code."""
    try:
        from bokeh.embed import bundle as b

        objs = b._all_objs(models)
        names = ["bokeh"] + [
            name
            for name, use in (
                ("bokeh-gl", b._use_gl),
                ("bokeh-widgets", b._use_widgets),
                ("bokeh-tables", b._use_tables),
                ("bokeh-mathjax", b._use_mathjax),
            )
            if use(objs)
        ]
        ext = b.bundle_models([type(o) for o in objs]) or ""
        return names, ext
    except Exception:  # noqa: BLE001 - a private Bokeh API changed: send everything once
        return ["bokeh", "bokeh-gl", "bokeh-widgets", "bokeh-tables", "bokeh-mathjax"], ""


def bokehjs_once(models: list) -> str:
    """``<script>`` tags with the BokehJS bundles these models need that this notebook has not
    received yet ('' when it has them all)."""
    from bokeh.resources import INLINE

    if not models:
        return ""
    names, ext = _bundles(models)
    missing = [n for n in names if n not in _SENT]
    out = ""
    if missing:
        out = INLINE.clone(components=missing).render_js()
        _SENT.update(missing)
    if ext:
        out += f'<script type="text/javascript">{ext}</script>'
    return out


def _plot_script(raw: str) -> str:
    """Bokeh's embedding code, run once BokehJS is there (it may arrive with an earlier output)."""
    return (
        '<script type="text/javascript">(function(){var n=0;function go(){'
        "if(window.Bokeh&&window.Bokeh.embed){" + raw + "}else if(n++<200){setTimeout(go,50)}"
        'else{console.log("embedlab: BokehJS is missing; run the notebook from the top")}}go();})();</script>'
    )


def figures_html(models: list) -> tuple[str, list[str]]:
    """(scripts, one div per model): the plots inline, BokehJS sent once per notebook."""
    from bokeh.embed import components

    if not models:
        return "", []
    raw, divs = components(models, wrap_script=False)
    return bokehjs_once(models) + _plot_script(raw), list(divs)


def _fragment(body: str, scripts: str) -> str:
    return f'<div class="embedlab-nb"><style>{NOTEBOOK_CSS}</style>{body}</div>{scripts}'


def results_html(results: Iterable[AnalysisResult]) -> str:
    """Results as inline HTML (summary, metrics, figures, tables), the report's sections."""
    from embedlab.report.html import _result_section

    results = list(results)
    models = [f for r in results for f in r.figures]
    scripts, divs = figures_html(models)
    body, at = [], 0
    for r in results:
        mine = divs[at : at + len(r.figures)]
        at += len(r.figures)
        section = _result_section(r).replace("<h2>", "<h3>").replace("</h2>", "</h3>")
        figs = '<div class="figs">' + "".join(mine) + "</div>" if mine else ""
        body.append(section.replace("{figs:" + r.anchor + "}", figs, 1))
    return _fragment("\n".join(body), scripts)


def result_html(result: AnalysisResult) -> str:
    """One result inline (Jupyter's display of an AnalysisResult)."""
    return results_html([result])


class Figures(list):
    """Bokeh figures that Jupyter displays inline (BokehJS once per notebook)."""

    def __init__(self, figures: Iterable = (), caption: str = "") -> None:
        super().__init__(figures)
        self.caption = caption

    def _repr_html_(self) -> str:
        scripts, divs = figures_html(list(self))
        caption = f'<p class="muted">{html.escape(self.caption)}</p>' if self.caption else ""
        return _fragment('<div class="figs">' + "".join(divs) + "</div>" + caption, scripts)

    def __repr__(self) -> str:
        return f"<Figures: {', '.join(getattr(f, 'title', None) and f.title.text or type(f).__name__ for f in self)}>"


def result_html_standalone(result: AnalysisResult | Iterable[AnalysisResult], height: int | None = None) -> str:
    """One result (or several) as a self-contained iframe, BokehJS included in each.

    For a front end that runs no scripts in inline HTML: the iframe's ``srcdoc`` holds a whole
    report. Jupyter's display (:func:`results_html`) sends BokehJS once per notebook instead.
    """
    results = list(result) if isinstance(result, (list, tuple)) else [result]
    title = results[0].title if len(results) == 1 else "embedlab results"
    doc = render_html(None, results, title=title)
    if height is None:
        n_figs = sum(len(r.figures) for r in results)
        n_rows = sum(min(len(df), MAX_TABLE_ROWS) + 2 for r in results for df in r.tables.values())
        height = min(6000, 260 + 180 * len(results) + 500 * n_figs + 12 * n_rows)
    return f'<iframe srcdoc="{html.escape(doc, quote=True)}" style="width:100%;height:{height}px;border:0"></iframe>'


class ResultList(list):
    """AnalysisResults that Jupyter displays inline; addressable by analysis and table.

    ``res["pca", "item"]`` is one result; ``res["pca"]`` the pca results of every table and
    ``res["item"]`` every analysis of table ``item`` (a ResultList, or the one result when the
    list was already narrowed to one analysis or one table: ``res.pca.item``). Attribute
    access takes analysis names with ``_`` for ``-`` (``res.bias_ranking``); run-level results
    have table ``"run"``. Integers and slices index as in a list.
    """

    def __getitem__(self, key: Any):
        if isinstance(key, slice):
            return ResultList(list.__getitem__(self, key))
        if isinstance(key, tuple):
            if len(key) != 2:
                raise KeyError(f"{key!r}: index results by (analysis, table)")
            analysis, table = key
            hits = [r for r in self if _same(r.analysis, analysis) and (r.table or "run") == (table or "run")]
            if len(hits) != 1:
                raise KeyError(f"no result for analysis {analysis!r} and table {table!r}; {self._choices()}")
            return hits[0]
        if isinstance(key, str):
            return self._select(key)
        return list.__getitem__(self, key)

    def _select(self, name: str):
        analyses = {r.analysis for r in self}
        tables = {r.table or "run" for r in self}
        by_analysis = [r for r in self if _same(r.analysis, name)]
        if by_analysis:
            return by_analysis[0] if len(tables) == 1 and len(by_analysis) == 1 else ResultList(by_analysis)
        by_table = [r for r in self if (r.table or "run") == name]
        if by_table:
            return by_table[0] if len(analyses) == 1 and len(by_table) == 1 else ResultList(by_table)
        raise KeyError(f"no result for {name!r}; {self._choices()}")

    def _choices(self) -> str:
        analyses = list(dict.fromkeys(r.analysis for r in self))
        tables = list(dict.fromkeys(r.table or "run" for r in self))
        return f"analyses: {', '.join(analyses) or '(none)'}; tables: {', '.join(tables) or '(none)'}"

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._select(name)
        except KeyError as exc:
            raise AttributeError(str(exc.args[0])) from None

    def __dir__(self):
        names = {r.analysis.replace("-", "_") for r in self} | {r.table or "run" for r in self}
        return sorted(set(super().__dir__()) | {n for n in names if n.isidentifier()})

    @property
    def analyses(self) -> list[str]:
        return list(dict.fromkeys(r.analysis for r in self))

    @property
    def tables(self) -> list[str]:
        return list(dict.fromkeys(r.table or "run" for r in self))

    def _repr_html_(self) -> str:
        return results_html(list(self))

    def to_json(self) -> str:
        return results_json(None, self)

    def __repr__(self) -> str:
        return "[" + ", ".join(f"<{r.analysis}/{r.table}: {'error' if r.error else 'ok'}>" for r in self) + "]"


def _same(analysis: str, name: str) -> bool:
    return analysis == name or analysis.replace("-", "_") == name
