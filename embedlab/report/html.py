"""Analysis results -> one standalone HTML report, terminal text and JSON.

The report inlines BokehJS (``bokeh.resources.INLINE``), so it opens offline and makes no
network request. Every string that comes from data is escaped here or by Bokeh.
"""
from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import pandas as pd

from embedlab.io.atomic import write_text
from embedlab.run import Run

if TYPE_CHECKING:  # the report renders results it is handed; it never runs analyses
    from embedlab.analysis import AnalysisResult

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.7em;margin-bottom:0} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:2.2em}
.sub{color:#666;margin-top:4px} nav{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:8px 16px}
nav ul{margin:6px 0;padding-left:20px} nav li{margin:2px 0} nav .tables a{margin-right:10px}
.summary{background:#eef5ff;border-left:4px solid #4a90d9;padding:10px 14px;border-radius:4px;white-space:pre-wrap;line-height:1.45}
.error{background:#fff0f0;border-left:4px solid #d9534f;padding:10px 14px;border-radius:4px;white-space:pre-wrap;font-family:monospace}
table.data{border-collapse:collapse;font-size:.85em;margin:6px 0;background:#fff} table.data th,table.data td{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
table.data th{background:#f0f0f0} table.data td{max-width:360px;overflow-wrap:break-word}
table.metrics{font-size:.8em} .metrics td:first-child{font-family:monospace;color:#444}
.row{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start;margin:12px 0}
.figs{display:flex;flex-wrap:wrap;gap:16px;margin:0} .muted{color:#888;font-size:.85em}
.tables{display:flex;flex-wrap:wrap;gap:4px 28px;align-items:flex-start}
details{margin:6px 0} summary{cursor:pointer;color:#336;font-weight:600;font-size:.92em}
.side{min-width:220px}
"""

MAX_TABLE_ROWS = 200


def fmt_value(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def frame_html(df: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> str:
    """An escaped HTML table (pandas escapes cell text with escape=True)."""
    shown = df.head(max_rows)
    out = shown.to_html(index=False, escape=True, classes="data", border=0, na_rep="–",
                        float_format=lambda v: fmt_value(float(v)))
    if len(df) > max_rows:
        out += f'<p class="muted">first {max_rows} of {len(df):,} rows (all rows are in --json)</p>'
    return out


def metrics_html(metrics: dict[str, Any], max_open: int = 14) -> str:
    """Metrics as a two-column table; long lists show the first ``max_open`` and fold the rest."""
    def rows(items):
        return "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(fmt_value(v))}</td></tr>" for k, v in items)

    items = list(metrics.items())
    out = f'<table class="data metrics"><tr><th>metric</th><th>value</th></tr>{rows(items[:max_open])}</table>'
    if len(items) > max_open:
        out += (f"<details><summary>{len(items) - max_open} more metrics</summary>"
                f'<table class="data metrics">{rows(items[max_open:])}</table></details>')
    return out


def training_figures(run: Run) -> list:
    """Training curves from the run's per-epoch history."""
    from embedlab.toolkit.plotting import line_chart

    hist = pd.DataFrame(run.history)
    if hist.empty or "epoch" not in hist:
        return []
    loss_cols = [c for c in hist.columns if c.endswith("loss")]
    figs = [line_chart({c: (hist["epoch"], hist[c]) for c in loss_cols}, "Loss per epoch", "epoch", "loss",
                       width=560, height=300)]
    metric_cols = [c for c in hist.columns if c.startswith("valid_") and not c.endswith("loss")]
    if metric_cols:
        figs.append(line_chart({c: (hist["epoch"], hist[c]) for c in metric_cols},
                               "Validation metrics per epoch", "epoch", "value", width=560, height=300))
    return figs


def _run_section(run: Run) -> tuple[str, list]:
    cfg = ", ".join(f"{k}={v}" for k, v in run.config.items())
    split = ", ".join(f"{k}={v}" for k, v in run.split.items())
    tables = ", ".join(f"{n} ({len(run.table(n)):,} x {run.table(n).dim})" for n in run.table_names)
    body = [
        '<section id="run"><h2>Run</h2>',
        f"<p><b>dataset</b> {html.escape(str(run.dataset))} &middot; <b>kind</b> {html.escape(str(run.kind))}"
        f" &middot; <b>seed</b> {html.escape(str(run.seed))}</p>",
        f"<p><b>split</b> {html.escape(split)}</p><p><b>config</b> {html.escape(cfg)}</p>",
        f"<p><b>embedding tables</b> {html.escape(tables)}</p>",
        metrics_html(run.metrics),
        "{figs:run}",
        "</section>",
    ]
    return "\n".join(body), training_figures(run)


def _result_section(result: AnalysisResult) -> str:
    heading = html.escape(result.title + (f" — {result.table}" if result.table else ""))
    parts = [f'<section id="{html.escape(result.anchor)}"><h2>{heading}</h2>']
    if result.error:
        parts.append(f'<div class="error">This analysis failed: {html.escape(result.error)}</div>')
    else:
        if result.summary:
            parts.append(f'<div class="summary">{html.escape(result.summary)}</div>')
        side = f'<div class="side">{metrics_html(result.metrics)}</div>' if result.metrics else ""
        parts.append('<div class="row">{figs:' + result.anchor + "}" + side + "</div>")
        if result.tables:
            parts.append('<div class="tables">')
            for name, df in result.tables.items():
                parts.append(f"<details open><summary>{html.escape(name)}</summary>{frame_html(df)}</details>")
            parts.append("</div>")
        parts.append(f'<p class="muted">{result.seconds:.2f} s</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _toc(results: list[AnalysisResult], with_run: bool) -> str:
    """Contents grouped by analysis: 'Bias ranking: user · item'."""
    groups: dict[str, list[AnalysisResult]] = {}
    for r in results:
        groups.setdefault(r.title, []).append(r)
    items = ['<li><a href="#run">Run</a></li>'] if with_run else []
    for title, rs in groups.items():
        links = []
        for r in rs:
            text = html.escape(r.table or "run")
            failed = ' <span style="color:#d9534f">(failed)</span>' if r.error else ""
            links.append(f'<a href="#{html.escape(r.anchor)}">{text}</a>{failed}')
        if len(rs) == 1 and rs[0].table is None:
            failed = ' <span style="color:#d9534f">(failed)</span>' if rs[0].error else ""
            items.append(f'<li><a href="#{html.escape(rs[0].anchor)}">{html.escape(title)}</a>{failed}</li>')
        else:
            items.append(f'<li>{html.escape(title)}: <span class="tables">{" ".join(links)}</span></li>')
    return "<ul>" + "".join(items) + "</ul>"


def bokeh_resources(models: list) -> str:
    """Inline BokehJS: only the bundles these models need (the core, plus WebGL when a plot asks
    for it; widgets, tables and MathJax only when used), so a report stays small and offline."""
    from bokeh.resources import INLINE

    try:
        from bokeh.embed.bundle import bundle_for_objs_and_resources

        return "".join(bundle_for_objs_and_resources(models or None, INLINE)) if models else \
            INLINE.clone(components=["bokeh"]).render()
    except Exception:  # noqa: BLE001 - a private Bokeh API changed: inline everything instead
        return INLINE.render()


def render_html(run: Run | None, results: Iterable[AnalysisResult], title: str | None = None) -> str:
    """The whole report as one HTML string (BokehJS inlined)."""
    from bokeh.embed import components

    results = list(results)
    sections, figures = [], {}
    if run is not None:
        text, figs = _run_section(run)
        sections.append(text)
        figures["run"] = figs
    for r in results:
        sections.append(_result_section(r))
        figures[r.anchor] = r.figures
    flat = [(key, i) for key, figs in figures.items() for i in range(len(figs))]
    models = [figures[key][i] for key, i in flat]
    script, divs = components(models) if models else ("", [])
    by_key: dict[str, list[str]] = {}
    for (key, _), div in zip(flat, divs):
        by_key.setdefault(key, []).append(div)
    body = "\n".join(sections)
    for key in figures:
        divs_html = '<div class="figs">' + "\n".join(by_key[key]) + "</div>" if by_key.get(key) else ""
        body = body.replace("{figs:" + key + "}", divs_html, 1)
    heading = title or (f"embedlab report: {run.dataset}" if run is not None else "embedlab report")
    where = html.escape(str(run.path)) if run is not None and run.path else ""
    failed = sum(1 for r in results if r.error)
    note = (f'<p class="sub" style="color:#d9534f">{failed} of {len(results)} sections failed; '
            f"their errors are shown in place.</p>") if failed else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style>
{bokeh_resources(models)}
{script}
</head><body><main>
<h1>{html.escape(heading)}</h1><p class="sub">{where}</p>{note}
<nav><b>Contents</b>{_toc(results, run is not None)}</nav>
{body}
</main></body></html>
"""


def write_report(path: str | Path, run: Run | None, results: Iterable[AnalysisResult],
                 title: str | None = None) -> Path:
    """Write the report atomically; returns its path."""
    path = Path(path)
    write_text(path, render_html(run, results, title))
    return path


def results_json(run: Run | None, results: Iterable[AnalysisResult]) -> str:
    payload = {"run": None if run is None else {"path": str(run.path), "dataset": run.dataset,
                                                "kind": run.kind, "metrics": run.metrics},
               "results": [r.to_json() for r in results]}
    return json.dumps(payload, indent=2, default=str, allow_nan=False)
