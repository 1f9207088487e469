"""The explorer's Bokeh models: the widgets, the map, the neighbour and selection tables (their
columns as wide as their content) and the callbacks into :mod:`embedlab.report.explorer_js`,
assembled from what :mod:`embedlab.report.explorer` computed (``compute``) and worded
(``describe``). Bokeh is imported inside the functions.

Models tests drive are named ``explorer-<role>-<table>``: ``search`` (TextInput), ``matches``
(Select), ``neighbours`` (ColumnDataSource: rank, label, key, cosine, best first), ``color``
and ``map`` (Select), ``size`` (CheckboxGroup), ``points`` and ``selected`` (ColumnDataSource),
``status`` and ``summary`` (Div).
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedlab.report import explorer_js as JS
from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, METRICS

if TYPE_CHECKING:
    from embedlab.report.explorer import Computed
    from embedlab.run import EmbeddingTable

K = 10  # neighbours listed (the neighbors command's default -k)
K_CHOICES = (5, 10, 20, 50, 100)  # k offered in the page when the vectors travel
LOD_EVERY = 10  # while a large map moves, every tenth drawn point (Bokeh's own level of detail is canvas-only)
MISSING = "#c8c8c8"
WIDTH, HEIGHT, LEGEND_WIDTH, SIDE_WIDTH = 620, 560, 110, 480  # 1,210 px: a 1,280 px window


def _numeral(c: Computed, col: str) -> str:
    """A numeric column's format as fmt_value writes numbers: 11,200 but 1995."""
    big = np.nanmax(np.abs(np.asarray(c.data[c.fields[col]], dtype=float)), initial=0) >= 10_000
    return "0,0.[00]" if big else "0.[00]"


def _bounds(v) -> tuple[float, float]:
    """A map axis' explicit range (centring on an entity moves the view)."""
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if len(v) else (0.0, 1.0)
    pad = ((hi - lo) or 1.0) * 0.05
    return lo - pad, hi + pad


def assemble(t: EmbeddingTable, name: str, c: Computed, d: dict):
    """The Bokeh layout of an explorer from what ``compute`` and ``describe`` made."""
    from bokeh.layouts import column, row
    from bokeh.models import Div

    m = _widgets(t, name, c, d)
    _map_figure(t, name, c, d, m)
    tables = _tables(name, c, d, m)
    _wire(m)
    header = Div(text=d["header"], width=WIDTH + LEGEND_WIDTH + SIDE_WIDTH, name=f"explorer-note-{name}")
    controls = row(m["search"], m["searchin"], m["map"], m["colour"], m["size"])
    side = column(
        m["matches"],
        row(m["k"], m["metric"], m["mincount"], width=SIDE_WIDTH),
        row(m["back"], m["forward"], m["clear"]),
        m["status"],
        tables[0],
        width=SIDE_WIDTH,
    )
    return column(
        header,
        controls,
        row(m["fig"], m["legend"], side),
        row(m["summary"], m["isolate"], m["export"]),
        tables[1],
        name=f"explorer-{name}",
    )


def _sources(name: str, c: Computed, cfg: dict) -> dict:
    """The explorer's data sources by role: the points, the vectors or lists, the tables' rows, the rings."""
    from bokeh.models import ColumnDataSource

    points = ColumnDataSource(c.data, name=f"explorer-points-{name}")
    points.tags = [json.dumps(cfg, allow_nan=False)]  # read once by embedlabExplorer.config
    return {
        "points": points,
        "vectors": ColumnDataSource(
            {f: v for f, v in c.store.items() if not f.endswith("_score")}, name=f"explorer-vectors-{name}"
        ),
        "scores": ColumnDataSource(
            {f: v for f, v in c.store.items() if f.endswith("_score")},  # 1/3 the length
            name=f"explorer-scores-{name}",
        ),
        "neighbours": ColumnDataSource({f: [] for f in cfg["neighbour_fields"]}, name=f"explorer-neighbours-{name}"),
        "selected": ColumnDataSource({x: [] for x, _ in cfg["selection_fields"]}, name=f"explorer-selected-{name}"),
        "highlight": ColumnDataSource(
            {"x": [], "y": [], "role": [], "name_r": [], "name_l": []}, name=f"explorer-highlight-{name}"
        ),
    }


def _widgets(t: EmbeddingTable, name: str, c: Computed, d: dict) -> dict:
    """The explorer's models by role: its sources, inputs, buttons and texts (no map yet)."""
    from bokeh.models import Button, CheckboxGroup, Div, NumberFormatter, Select, Spinner, TableColumn, TextInput

    cfg, count, precomputed = d["cfg"], d["count"], c.precomputed
    m = _sources(name, c, cfg)
    m |= {
        "status": Div(name=f"explorer-status-{name}", width=SIDE_WIDTH, text=d["status_hint"]),
        "summary": Div(
            name=f"explorer-summary-{name}",
            width=WIDTH + LEGEND_WIDTH + SIDE_WIDTH - 310,
            text="Select points with the box or lasso tool to list them here.",
        ),
        "legend": Div(name=f"explorer-legend-{name}", width=LEGEND_WIDTH, height=HEIGHT - 40),
        "matches": Select(name=f"explorer-matches-{name}", title="Matches", options=[], width=SIDE_WIDTH),
        "colour": Select(
            name=f"explorer-color-{name}",
            title="Color by",
            value=d["default_colour"] or "none",
            options=d["colour_names"],
            width=170,
        ),
        "size": CheckboxGroup(
            name=f"explorer-size-{name}",
            labels=[f"size by {count}" if count else "size by count"],
            active=[0] if count else [],
            disabled=count is None,
            width=170,
        ),
        "k": Select(
            name=f"explorer-k-{name}",
            title="k",
            value=str(K),
            width=60,
            options=[str(k) for k in K_CHOICES if not precomputed or k <= precomputed["k"]],
        ),
        "metric": Select(
            name=f"explorer-metric-{name}", title="distance", value="cosine", options=list(METRICS), width=95
        ),
        "mincount": Spinner(
            name=f"explorer-mincount-{name}",
            title=f"min {count}" if count else "min count",
            value=DEFAULT_MIN_COUNT if count else 0,
            low=0,
            step=1,
            width=80,
            disabled=count is None or precomputed is not None,
        ),
        "search": TextInput(
            name=f"explorer-search-{name}",
            title=f"Search {d['noun']} (text, or /regex/)",
            placeholder="e.g. " + str(t.labels[c.cand.index[0]] if len(c.cand) else ""),
            width=300,
        ),
        "searchin": Select(
            name=f"explorer-searchin-{name}",
            title="in",
            value=cfg["search_default"],
            options=[cfg["search_default"]] + list(c.embedded),
            width=120,
        ),
        "map": Select(
            name=f"explorer-map-{name}", title="Map", value=next(iter(c.maps)), options=list(c.maps), width=150
        ),
        "back": Button(name=f"explorer-back-{name}", label="◀ back", width=65),
        "forward": Button(name=f"explorer-forward-{name}", label="forward ▶", width=80),
        "clear": Button(name=f"explorer-clear-{name}", label="clear all", width=75, button_type="warning"),
        "export": Button(name=f"explorer-export-{name}", label="export selection (CSV)", width=170),
        "isolate": Button(name=f"explorer-isolate-{name}", label="isolate selection", width=120),
        "scorecol": TableColumn(
            field="score",
            title="cosine",
            width=_fit_width("distance", ["-0.000"]),
            formatter=NumberFormatter(format="0.000"),
        ),
    }
    return m


# roles the browser code reaches (``m.<role>`` in explorer_js); buttons are wired, not passed
_ARGS = (
    "points",
    "vectors",
    "scores",
    "neighbours",
    "selected",
    "highlight",
    "status",
    "summary",
    "legend",
    "matches",
    "colour",
    "size",
    "fig",
    "k",
    "metric",
    "mincount",
    "search",
    "scorecol",
    "isolate",
    "searchin",
    "map",
    "path",
    "density",
    "clusters",
    "dots",
    "lod",
)


def _code(m: dict, body: str) -> str:
    """A callback's code: the explorer's models by role (``m``), its settings (``cfg``); the
    library is inlined once per report (report.html)."""
    names = ", ".join(f"{k}: {k}" for k in _ARGS if k in m)
    return f"const E = window.embedlabExplorer, m = {{{names}}}, cfg = E.config(m.points);\n{body}"


def _args(m: dict) -> dict:
    return {k: m[k] for k in _ARGS if k in m}


def _map_figure(t: EmbeddingTable, name: str, c: Computed, d: dict, m: dict) -> None:
    """The map (m["fig"]): density layer, points, rings, names, clusters, labels, tools."""
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    n, data = c.n, c.data
    x_label, y_label = c.maps[next(iter(c.maps))][2:4]
    fig = figure(
        name=f"explorer-map-plot-{name}",
        width=WIDTH,
        height=HEIGHT,
        output_backend="webgl",
        x_range=_bounds(data["x"]),
        y_range=_bounds(data["y"]),
        tools="pan,wheel_zoom,reset,save",
        x_axis_label=x_label,
        y_axis_label=y_label,
        title=f"{name}: {n:,} {d['noun']}",
    )
    m["fig"] = fig
    if c.cycle:
        m["path"] = ColumnDataSource({"x": data["x"][c.cycle], "y": data["y"][c.cycle]}, name=f"explorer-path-{name}")
        fig.line(
            "x",
            "y",
            source=m["path"],
            color="#999999",
            line_width=1.5,
            line_dash="dashed",
            legend_label="calendar order",
        )
        fig.add_layout(fig.legend[0], "below")  # outside the data
        fig.legend.orientation = "horizontal"
    if c.clusters:  # the first map's clusters, named on the canvas (text, not HTML); hidden on other maps
        m["clusters"] = ColumnDataSource(
            {
                "x": [x["x"] for x in c.clusters],
                "y": [x["y"] for x in c.clusters],
                "text": [x["label"] for x in c.clusters],
            },
            name=f"explorer-clusters-{name}",
        )
    dots = _map_points(name, c, m)
    _map_texts(c, d, m)
    _map_tools(name, c, m["fig"], dots)


def _transform(m: dict, body: str):
    """A CustomJSTransform of explorer_js' code over the explorer's models."""
    from bokeh.models import CustomJSTransform

    return CustomJSTransform(args=_args(m), v_func=_code(m, body))


def _map_points(name: str, c: Computed, m: dict):
    """The map's points (the density image and level of detail of large tables) and rings."""
    from bokeh.models import CDSView, IndexFilter, LinearColorMapper

    n, points, fig = c.n, m["points"], m["fig"]
    drawn = {}
    if c.density is not None:  # level of detail: every entity in a density image, the most observed as points
        den = c.density
        shades = LinearColorMapper(
            palette=[f"#{v:02x}{v:02x}{v:02x}" for v in range(230, 60, -3)],
            low=0.0,
            high=float(np.nanmax(den["shade"])),
            nan_color="rgba(0, 0, 0, 0)",
        )
        m["density"] = fig.image(
            image=[den["shade"]],
            x=den["x"],
            y=den["y"],
            dw=den["dw"],
            dh=den["dh"],
            color_mapper=shades,
            alpha=0.85,
            name=f"explorer-density-{name}",
        )
        drawn = {"view": CDSView(filter=IndexFilter(indices=den["drawn"].tolist()))}

    style = dict(
        size={"field": "i", "transform": _transform(m, JS.SIZE_TRANSFORM)},
        fill_color={"field": "i", "transform": _transform(m, JS.COLOUR_TRANSFORM)},
        line_color={"field": "i", "transform": _transform(m, JS.LINE_TRANSFORM)},
        line_width=0.5,
        fill_alpha=0.75 if n < 5000 else 0.55,
        line_alpha=0.6 if n < 5000 else 0.25,
        nonselection_fill_alpha=0.3,
        nonselection_line_alpha=0.2,
        selection_line_color="#000000",
        selection_fill_alpha=1.0,
    )
    dots = m["dots"] = fig.scatter("x", "y", source=points, name=f"explorer-dots-{name}", **drawn, **style)
    if c.density is not None:  # while the map moves (drag, wheel): a tenth of the points, shown by explorer_js
        m["lod"] = fig.scatter(
            "x",
            "y",
            source=points,
            visible=False,
            name=f"explorer-lod-{name}",
            **style,
            view=CDSView(filter=IndexFilter(indices=c.density["drawn"][::LOD_EVERY].tolist())),
        )
    fig.scatter(
        "x",
        "y",
        source=m["highlight"],
        size=15,
        fill_alpha=0,
        line_width=2,
        line_color={"field": "role", "transform": _role_colours()},
    )
    return dots


def _map_texts(c: Computed, d: dict, m: dict) -> None:
    """The names written on the map: clusters, the shown entity and its neighbours, every label of small tables."""
    fig, points = m["fig"], m["points"]
    if c.clusters:
        fig.text(
            "x",
            "y",
            text="text",
            source=m["clusters"],
            text_font_size="9pt",
            text_align="center",
            text_baseline="middle",
            text_color="#444444",
            text_font_style="italic",
            background_fill_color="#ffffff",
            background_fill_alpha=0.55,
        )
    for field, align, offset in (("name_r", "left", 9), ("name_l", "right", -9)):  # named on the canvas
        fig.text(
            "x",
            "y",
            text=field,
            source=m["highlight"],
            text_font_size="9pt",
            x_offset=offset,
            text_align=align,
            text_baseline="middle",
            text_color="#111111",
            text_font_style="bold",
            background_fill_color="#ffffff",
            background_fill_alpha=0.7,
        )
    if d["cfg"]["labels_points"]:  # labels drawn on the canvas: text, not HTML
        for body, align, offset in ((JS.LABELS_RIGHT, "left", 7), (JS.LABELS_LEFT, "right", -7)):
            fig.text(
                "x",
                "y",
                text={"field": "i", "transform": _transform(m, body)},
                source=points,
                text_font_size="8pt",
                x_offset=offset,
                text_align=align,
                text_baseline="middle",
                text_color="#333333",
            )


def _map_tools(name: str, c: Computed, fig, dots) -> None:
    """Hover, tap, box and lasso select on the drawn points."""
    from bokeh.models import BoxSelectTool, HoverTool, LassoSelectTool, TapTool

    fields, kinds = c.fields, c.kinds
    hover_fields = [("label", "@label"), (name, "@key")] + [
        (x, f"@{{{fields[x]}}}{{{_numeral(c, x)}}}" if kinds.get(x) == "numeric" else f"@{{{fields[x]}}}")
        for x in (["bias"] if "bias" in fields else []) + c.embedded[:8]
    ]
    fig.add_tools(
        HoverTool(renderers=[dots], tooltips=hover_fields),
        TapTool(renderers=[dots]),
        BoxSelectTool(renderers=[dots]),
        LassoSelectTool(renderers=[dots]),
    )
    fig.toolbar.autohide = False


def _tables(name: str, c: Computed, d: dict, m: dict):
    """The neighbour table (beside the map) and the selection table (below it)."""
    from bokeh.models import DataTable, NumberFormatter, StringFormatter, TableColumn

    def formatter(col: str):
        return NumberFormatter(format=_numeral(c, col)) if c.kinds.get(col) == "numeric" else StringFormatter()

    # every column as wide as its title and its typical values (autosize "none": the table scrolls
    # sideways when they add up to more than the panel); the label column keeps whole titles
    neighbours = DataTable(
        name=f"explorer-neighbours-table-{name}",
        source=m["neighbours"],
        width=SIDE_WIDTH,
        height=300,
        index_position=None,
        reorderable=False,
        autosize_mode="none",
        columns=[
            TableColumn(field="rank", title="#", width=_fit_width("#", [str(K_CHOICES[-1])])),
            TableColumn(field="label", title="label", width=300),
            m["scorecol"],
        ]
        + [
            TableColumn(field=f, title=html.escape(x), width=column_width(c, x), formatter=formatter(x))
            for x, f in d["neighbour_extra"]
        ],
    )
    pairs = d["selection_pairs"]
    widths = [260 if x == "label" else column_width(c, x) for x, _ in pairs]
    selection = DataTable(
        name=f"explorer-selection-table-{name}",
        source=m["selected"],
        width=WIDTH + LEGEND_WIDTH + SIDE_WIDTH,
        height=220,
        index_position=None,
        sortable=True,
        reorderable=False,
        autosize_mode="none" if sum(widths) > WIDTH + LEGEND_WIDTH + SIDE_WIDTH else "force_fit",
        columns=[
            TableColumn(field=f, title=html.escape(x), width=w, formatter=formatter(x))
            for (x, f), w in zip(pairs, widths)
        ],
    )
    return neighbours, selection


CHAR_PX, CELL_PAD_PX, SORT_PX = 7, 10, 10  # a table cell's 12px sans-serif: a wide character, padding, sort arrow
WIDE_VALUES = 36  # characters: longer values (multi-valued genres, free text) are cut, hover shows them


def _fit_width(title: str, values: list[str]) -> int:
    """Pixels for a column: its title (beside the sort arrow) and the 90th percentile of its values."""
    lengths = sorted(len(v) for v in values) or [0]
    typical = min(lengths[int(0.9 * (len(lengths) - 1))], WIDE_VALUES)
    return math.ceil(max(len(title) * CHAR_PX + SORT_PX, typical * CHAR_PX) + CELL_PAD_PX)


def column_width(c: Computed, col: str) -> int:
    """A table column's width from its content at build time: the title and the values as shown."""
    v = pd.Series(c.data[c.fields[col]] if col in c.fields else [])
    v = v.iloc[:: max(1, len(v) // 5000)]  # a sample of large tables
    if c.kinds.get(col) == "numeric":  # as NumberFormatter writes "0,0.[00]" / "0.[00]"
        fmt = "{:,.2f}" if _numeral(c, col).startswith("0,0") else "{:.2f}"
        shown = [fmt.format(x).rstrip("0").rstrip(".") for x in pd.to_numeric(v, errors="coerce").dropna()]
    else:
        shown = [str(x) for x in v.dropna().to_numpy()]
    return _fit_width(col, shown)


def _wire(m: dict) -> None:
    """The browser code called on each change (explorer_js: ``E.on...``)."""
    from bokeh.models import CustomJS

    def js(body: str) -> CustomJS:
        return CustomJS(args=_args(m), code=_code(m, body))

    m["search"].js_on_change("value_input", js(JS.ON_TYPING))
    m["search"].js_on_change("value", js(JS.ON_SEARCH))
    m["matches"].js_on_change("value", js(JS.ON_PICK))
    m["points"].selected.js_on_change("indices", js(JS.ON_SELECT))
    m["neighbours"].selected.js_on_change("indices", js(JS.ON_NEIGHBOUR_CLICK))
    for role, body in (
        ("back", JS.ON_BACK),
        ("forward", JS.ON_FORWARD),
        ("clear", JS.ON_CLEAR),
        ("export", JS.ON_EXPORT),
        ("isolate", JS.ON_ISOLATE),
    ):
        m[role].js_on_click(js(body))
    m["searchin"].js_on_change("value", js(JS.ON_SEARCH_IN))
    for role in ("k", "metric", "mincount"):
        m[role].js_on_change("value", js(JS.ON_SETTINGS))
    m["colour"].js_on_change("value", js(JS.ON_RECOLOUR))
    m["size"].js_on_change("active", js(JS.ON_RESTYLE))
    m["map"].js_on_change("value", js(JS.ON_MAP))
    if "lod" in m:  # level of detail while the map moves
        m["fig"].js_on_event("panstart", js(JS.ON_MOVE_START))
        m["fig"].js_on_event("panend", js(JS.ON_MOVE_END))
        m["fig"].js_on_event("wheel", js(JS.ON_MOVE_START + JS.ON_MOVE_END))
    for r in (m["fig"].x_range, m["fig"].y_range):  # names and cluster labels laid out again
        r.js_on_change("start", js(JS.ON_VIEW))


def _role_colours():
    from bokeh.models import CategoricalColorMapper

    return CategoricalColorMapper(factors=["query", "neighbour"], palette=["#d62728", "#111111"])
