"""Analysis results -> one standalone HTML report, terminal text and JSON.

The report inlines BokehJS (``bokeh.resources.INLINE``), so it opens offline and makes no
network request. Every string that comes from data is escaped here or by Bokeh.
"""

from __future__ import annotations

import html
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

import numpy as np
import pandas as pd

from embedlab.io.ownership import html_mark  # the <meta name="generator"> that marks embedlab's files
from embedlab.report.explorer_js import LIBRARY as EXPLORER_LIBRARY
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
.side{min-width:220px} h3{font-size:1em;margin:1.2em 0 .3em}
.figs{display:grid;grid-template-columns:repeat(auto-fit,minmax(540px,1fr));gap:16px;margin:12px 0}
.figs>div{min-width:0} .explore{margin:8px 0}
.scroll{overflow-x:auto;max-width:100%} .frame{max-width:100%;min-width:0} .tables>details{max-width:100%;min-width:0}
table.data td.num,table.data th.num{text-align:right;font-variant-numeric:tabular-nums}
table.sortable th{cursor:pointer;user-select:none} table.sortable th[data-sort=asc]::after{content:" ▲"}
table.sortable th[data-sort=desc]::after{content:" ▼"} input.filter{margin:2px 0 4px;padding:2px 6px;font-size:.85em}
tr.lead td{font-weight:700} .headline{display:flex;flex-wrap:wrap;gap:6px 18px;margin:10px 0;font-size:.95em}
.headline span,.settings span{color:#666} .settings{display:flex;flex-wrap:wrap;gap:4px 22px;font-size:.9em}
#findings li{margin:3px 0;line-height:1.4} #findings li.failed{color:#d9534f} .runline{color:#444;font-size:.92em}
.explorers a{margin-right:10px}
"""

MAX_TABLE_ROWS = 200


def fmt_value(v: Any) -> str:
    """Numbers one way everywhere (the explorer's ``fmt`` in JS too): ``11,200``, ``8008``,
    ``12.66``, ``0.81``, ``3e-3``; integral floats as integers; text as it is."""
    if isinstance(v, bool) or not isinstance(v, (int, float)) and not hasattr(v, "dtype"):
        return str(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not math.isfinite(f):
        return "–" if math.isnan(f) else str(f)
    a = abs(f)
    if a >= 10_000:
        return f"{f:,.0f}"
    if f.is_integer() or a >= 1000:
        return f"{f:.0f}"
    if a < 0.01:
        return f"{f:.1e}".replace(".0e", "e").replace("e-0", "e-").replace("e+0", "e")
    if a < 1:
        return f"{f:.2g}"
    return f"{f:.2f}" if a < 100 else f"{f:.1f}"


SEARCHABLE_ROWS = 15  # longer tables get a filter box


def frame_html(df: pd.DataFrame, max_rows: int = MAX_TABLE_ROWS) -> str:
    """An escaped HTML table in a box that scrolls when it is wider than the page; columns
    sort on a click (``SORT_JS``), long tables get a filter box. Numbers go through
    :func:`fmt_value`."""
    shown = df.head(max_rows)
    numeric = [
        pd.api.types.is_numeric_dtype(shown[c]) and not pd.api.types.is_bool_dtype(shown[c]) for c in shown.columns
    ]
    head = "".join(
        f"<th{' class=num' if num else ''}>{html.escape(str(c))}</th>" for c, num in zip(shown.columns, numeric)
    )
    formats = [_column_format(shown[c]) if num else str for c, num in zip(shown.columns, numeric)]
    body = []
    for row in shown.itertuples(index=False):
        cells = []
        for v, num, fmt in zip(row, numeric, formats):
            text = "–" if v is None or (num and pd.isna(v)) else fmt(v)
            cells.append(f"<td{' class=num' if num else ''}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    search = (
        '<input class="filter" type="search" placeholder="filter rows" aria-label="filter rows">'
        if len(shown) > SEARCHABLE_ROWS
        else ""
    )
    out = (
        f'<div class="frame">{search}<div class="scroll"><table class="data sortable"><thead><tr>{head}</tr>'
        f"</thead><tbody>{''.join(body)}</tbody></table></div></div>"
    )
    if len(df) > max_rows:
        out += f'<p class="muted">first {max_rows} of {len(df):,} rows (all rows are in --json)</p>'
    return out


def _column_format(values: pd.Series):
    """One number format for a whole column (so 0.90 stands under 0.92, not 0.9): fixed
    decimals for ordinary magnitudes, :func:`fmt_value` for integers and for very large or
    small values."""
    v = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    v = v[np.isfinite(v)]
    if not len(v) or np.all(v == np.round(v)):
        return fmt_value
    top = float(np.abs(v).max())
    digits = 2 if top < 100 else 1 if top < 1000 else 0

    def fmt(x):
        a = abs(float(x))
        return f"{float(x):.{digits}f}" if a == 0 or 0.01 <= a < 1000 else fmt_value(x)

    return fmt


# Sorting and filtering of report tables: rows are moved, never rebuilt from text, so cell
# text stays escaped as written.
SORT_JS = """
document.addEventListener("click", (e) => {
  const th = e.target.closest("table.sortable th");
  if (!th) return;
  const table = th.closest("table"), body = table.tBodies[0], i = th.cellIndex;
  const asc = th.dataset.sort !== "asc";
  for (const other of th.parentNode.children) delete other.dataset.sort;
  th.dataset.sort = asc ? "asc" : "desc";
  const key = (tr) => { const t = tr.cells[i].textContent, n = parseFloat(t.replace(/,/g, ""));
    return th.classList.contains("num") ? (isNaN(n) ? Infinity : n) : t.toLowerCase(); };
  const rows = Array.from(body.rows).sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1); });
  for (const r of rows) body.appendChild(r);
});
document.addEventListener("input", (e) => {
  if (!e.target.matches(".frame input.filter")) return;
  const q = e.target.value.toLowerCase();
  for (const tr of e.target.parentNode.querySelector("tbody").rows)
    tr.style.display = tr.textContent.toLowerCase().includes(q) ? "" : "none";
});
"""


def metrics_html(metrics: dict[str, Any], max_open: int = 14, headline: Iterable[str] = ()) -> str:
    """Metrics as a two-column table: the ``headline`` ones first, in bold and never folded,
    then the others, of which long lists show the first ``max_open`` and fold the rest."""

    def rows(items):
        return "".join(
            f"<tr{' class=lead' if k in first else ''}><td>{html.escape(str(k))}</td>"
            f"<td>{html.escape(fmt_value(v))}</td></tr>"
            for k, v in items
        )

    first = [k for k in dict.fromkeys(headline) if k in metrics]
    items = [(k, metrics[k]) for k in first] + [(k, v) for k, v in metrics.items() if k not in first]
    max_open += len(first)
    out = f'<table class="data metrics"><tr><th>metric</th><th>value</th></tr>{rows(items[:max_open])}</table>'
    if len(items) > max_open:
        out += (
            f"<details><summary>{len(items) - max_open} more metrics</summary>"
            f'<table class="data metrics">{rows(items[max_open:])}</table></details>'
        )
    return out


def training_figures(run: Run) -> list:
    """The run section's plots: the schedule (learning rate and momentum per step, one line per
    layer group) and the loss of every step, from run.json's ``steps`` (lesson 5's one-cycle
    picture; runs written before steps were recorded have none), then the per-epoch curves."""
    from embedlab.report.schedule import schedule_figures
    from embedlab.toolkit.plotting import line_chart

    steps = run.meta.get("steps")
    figs_steps = schedule_figures(steps if isinstance(steps, dict) else None)
    hist = pd.DataFrame(run.history)
    if hist.empty or "epoch" not in hist:
        return figs_steps
    loss_cols = [c for c in hist.columns if c.endswith("loss")]
    figs = [
        line_chart(
            {c: (hist["epoch"], hist[c]) for c in loss_cols}, "Loss per epoch", "epoch", "loss", width=560, height=300
        )
    ]
    metric_cols = [c for c in hist.columns if c.startswith("valid_") and not c.endswith("loss")]
    if metric_cols:
        figs.append(
            line_chart(
                {c: (hist["epoch"], hist[c]) for c in metric_cols},
                "Validation metrics per epoch",
                "epoch",
                "value",
                width=560,
                height=300,
            )
        )
    return figs_steps + figs


def fmt_setting(v: Any) -> str:
    """A configuration value for a person: ``0 – 12.66`` for a range, ``—`` for unset."""
    if v is None or v == [] or v == {}:
        return "—"
    if isinstance(v, (list, tuple)):
        parts = [fmt_setting(x) for x in v]
        return (
            " – ".join(parts) if len(parts) == 2 and all(isinstance(x, (int, float)) for x in v) else ", ".join(parts)
        )
    if isinstance(v, dict):
        return ", ".join(f"{k} {fmt_setting(x)}" for k, x in v.items())
    if isinstance(v, bool):
        return "yes" if v else "no"
    return fmt_value(v) if isinstance(v, (int, float)) else str(v)


def _settings_html(settings: dict[str, Any]) -> str:
    cells = "".join(
        f"<div><span>{html.escape(str(k).replace('_', ' '))}</span> {html.escape(fmt_setting(v))}</div>"
        for k, v in settings.items()
    )
    return f'<div class="settings">{cells}</div>'


def run_line(run: Run) -> str:
    """One line under the findings: what was trained and how well."""
    split = run.split.get("name") if isinstance(run.split, dict) else None
    metrics = [(k, v) for k, v in run.metrics.items() if k.startswith("valid_") and k != "valid_loss"][:2]
    tables = ", ".join(f"{n} ({len(run.table(n)):,})" for n in run.table_names[:6]) + (
        f" and {len(run.table_names) - 6} more" if len(run.table_names) > 6 else ""
    )
    trainer = run.meta.get("trainer")
    bits = [
        f"{run.dataset}"
        + (f", trainer {trainer}" if trainer else "")
        + (f", split {split}" if split else "")
        + f", seed {run.seed}",
        "; ".join(f"{k} {fmt_value(v)}" for k, v in metrics),
        f"tables: {tables}",
    ]
    return (
        f'<p class="runline">{html.escape(" · ".join(b for b in bits if b))} '
        f'(<a href="#run">configuration and training</a>)</p>'
    )


def _run_section(run: Run) -> tuple[str, list]:
    tables = {n: f"{len(run.table(n)):,} x {run.table(n).dim}" for n in run.table_names}
    body = [
        '<section id="run"><h2>Run: configuration and training</h2>',
        _settings_html(
            {"dataset": run.dataset, "kind": run.kind, "trainer": run.meta.get("trainer"), "seed": run.seed}
        ),
        "<h3>Split</h3>",
        _settings_html(run.split if isinstance(run.split, dict) else {"split": run.split}),
        "<h3>Configuration</h3>",
        _settings_html(run.config),
        "<h3>Embedding tables (entities x dimensions)</h3>",
        _settings_html(tables),
        "<h3>Metrics</h3>",
        metrics_html(run.metrics),
        "{figs:run}",
        "</section>",
    ]
    return "\n".join(body), training_figures(run)


def finding_line(result: AnalysisResult) -> str:
    """The result's one-line finding: ``finding``, else its summary's first sentence."""
    if result.error:
        return "(failed) " + result.error.splitlines()[0]
    if result.finding:
        return result.finding
    first = re.split(r"(?<=[.!?])\s+", (result.summary or "").strip(), maxsplit=1)[0]
    return first if len(first) <= 200 else first[:199] + "…"


def _findings(results: list[AnalysisResult], explorers: list[str]) -> str:
    """The report's opening: one line per analysis and table, each linking to its section."""
    items = []
    for r in results:
        where = html.escape(r.title + (f" — {r.table}" if r.table else ""))
        css = ' class="failed"' if r.error else ""
        items.append(f'<li{css}><a href="#{html.escape(r.anchor)}">{where}</a>: {html.escape(finding_line(r))}</li>')
    links = " · ".join(f'<a href="#explorer-{html.escape(_anchor(n))}">{html.escape(n)}</a>' for n in explorers)
    explore = f'<p class="explorers"><b>Explore</b> {links}</p>' if explorers else ""
    return f'<nav id="findings"><b>Findings</b><ul>{"".join(items)}</ul>{explore}</nav>'


def _anchor(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "-" for c in text)


def ordered(run: Run | None, results: list[AnalysisResult]) -> list[AnalysisResult]:
    """Run-level results first, then tables with labels before anonymous ones (films before
    users), each table's results in the order they came."""
    if run is None:
        return results
    from embedlab.report.explorer import table_order

    order = {n: i for i, n in enumerate(table_order(run))}
    return sorted(results, key=lambda r: -1 if r.table is None else order.get(r.table, len(order)))


def _result_section(result: AnalysisResult) -> str:
    heading = html.escape(result.title + (f" — {result.table}" if result.table else ""))
    parts = [f'<section id="{html.escape(result.anchor)}"><h2>{heading}</h2>']
    if result.error:
        parts.append(f'<div class="error">This analysis failed: {html.escape(result.error)}</div>')
    else:
        if result.summary:
            parts.append(f'<div class="summary">{html.escape(result.summary)}</div>')
        parts.append(_headline_html(result))
        parts.append("{figs:" + result.anchor + "}")
        if result.metrics or result.tables:
            parts.append('<div class="tables">')
            if result.metrics:
                parts.append(
                    f"<details open><summary>metrics</summary>"
                    f"{metrics_html(result.metrics, headline=result.headline)}</details>"
                )
            for name, df in result.tables.items():
                parts.append(f"<details open><summary>{html.escape(name)}</summary>{frame_html(df)}</details>")
            parts.append("</div>")
        parts.append(f'<p class="muted">{result.seconds:.2f} s</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _headline_html(result: AnalysisResult) -> str:
    shown = [k for k in dict.fromkeys(result.headline) if k in result.metrics]
    if not shown:
        return ""
    cells = "".join(
        f"<div><span>{html.escape(k)}</span> <b>{html.escape(fmt_value(result.metrics[k]))}</b></div>" for k in shown
    )
    return f'<div class="headline">{cells}</div>'


def _fit_width(model):
    """Plots take the width of their grid cell (two to a row on a wide page); other models
    keep their own size."""
    from bokeh.models import Plot

    if isinstance(model, Plot) and model.sizing_mode is None:
        model.sizing_mode = "stretch_width"
    return model


def bokeh_resources(models: list) -> str:
    """Inline BokehJS: only the bundles these models need (the core, plus WebGL when a plot asks
    for it; widgets, tables and MathJax only when used), so a report stays small and offline."""
    from bokeh.resources import INLINE

    try:
        from bokeh.embed.bundle import bundle_for_objs_and_resources

        return (
            "".join(bundle_for_objs_and_resources(models or None, INLINE))
            if models
            else INLINE.clone(components=["bokeh"]).render()
        )
    except Exception:  # noqa: BLE001 - a private Bokeh API changed: inline everything instead
        return INLINE.render()


def render_html(run: Run | None, results: Iterable[AnalysisResult], title: str | None = None) -> str:
    """The whole report as one HTML string (BokehJS inlined)."""
    from bokeh.embed import components

    results = ordered(run, list(results))
    sections, figures = [], {}
    explorers = []
    if run is not None:
        from embedlab.report.explorer import explorer, explorer_tables

        explorers = explorer_tables(run)
        for name in explorers:
            key = "explorer-" + _anchor(name)
            sections.append(
                f'<section id="{html.escape(key)}" class="explorer"><h2>Explore: {html.escape(name)}</h2>'
                "{figs:" + key + "}</section>"
            )
            figures[key] = [explorer(run, name, results)]
    for r in results:
        sections.append(_result_section(r))
        figures[r.anchor] = [_fit_width(f) for f in r.figures]
    if run is not None:
        text, figs = _run_section(run)
        sections.append(text)
        figures["run"] = [_fit_width(f) for f in figs]
    flat = [(key, i) for key, figs in figures.items() for i in range(len(figs))]
    models = [figures[key][i] for key, i in flat]
    script, divs = components(models) if models else ("", [])
    by_key: dict[str, list[str]] = {}
    for (key, _), div in zip(flat, divs):
        by_key.setdefault(key, []).append(div)
    body = "\n".join(sections)
    for key in figures:
        css = "explore" if key.startswith("explorer-") else "figs"
        divs_html = f'<div class="{css}">' + "\n".join(by_key[key]) + "</div>" if by_key.get(key) else ""
        body = body.replace("{figs:" + key + "}", divs_html, 1)
    heading = title or (f"embedlab report: {run.dataset}" if run is not None else "embedlab report")
    where = html.escape(str(run.path)) if run is not None and run.path else ""
    failed = sum(1 for r in results if r.error)
    note = (
        (
            f'<p class="sub" style="color:#d9534f">{failed} of {len(results)} sections failed; '
            f"their errors are shown in place.</p>"
        )
        if failed
        else ""
    )
    opening = _findings(results, explorers) + (run_line(run) if run is not None else "")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(heading)}</title>
{html_mark()}
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}</style>
{bokeh_resources(models)}
{f"<script>{EXPLORER_LIBRARY}</script>" if explorers else ""}
{script}
</head><body><main>
<h1>{html.escape(heading)}</h1><p class="sub">{where}</p>{note}
{opening}
{body}
</main><script>{SORT_JS}</script></body></html>
"""


def write_report(
    path: str | Path, run: Run | None, results: Iterable[AnalysisResult], title: str | None = None, force: bool = False
) -> Path:
    """Write the report atomically, under the write rule (new, or a report embedlab wrote, or
    ``force``: :mod:`embedlab.io.ownership`); returns its path."""
    from embedlab.io.ownership import check_file, write_owned_html
    from embedlab.io.progress import status

    check_file(path, force=force, option="--report", html=True)  # before seconds of rendering, not after
    status(f"writing the report {path} (rendering the figures) ...")
    return write_owned_html(path, render_html(run, results, title), force=force, option="--report")


def results_json(run: Run | None, results: Iterable[AnalysisResult]) -> str:
    payload = {
        "run": None
        if run is None
        else {"path": str(run.path), "dataset": run.dataset, "kind": run.kind, "metrics": run.metrics},
        "results": [r.to_json() for r in results],
    }
    from embedlab.io.strictjson import dumps  # NaN -> null: strict JSON

    return dumps(payload, indent=2)
