"""Bokeh building blocks shared by the report and analysis plugins' ``render`` steps.

Functions return Bokeh models and never save or show them (umap.plot's convention). Every
label shown in a tooltip comes from a ColumnDataSource field, which Bokeh escapes.

Public names: ``__all__``; the plugin guide documents each with an example:
``embedlab plugins guide "embedlab.toolkit.plotting"``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

__all__ = ["PALETTE", "scatter", "histogram", "bar_chart", "line_chart"]

PALETTE = [
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
    "#393b79",
    "#637939",
    "#8c6d31",
    "#843c39",
    "#7b4173",
    "#3182bd",
    "#e6550d",
    "#31a354",
    "#756bb1",
    "#636363",
]


def line_chart(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool = False,
    width: int = 640,
    height: int = 320,
):
    """One line per named series (x, y)."""
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    fig = figure(
        title=title,
        width=width,
        height=height,
        x_axis_label=x_label,
        y_axis_label=y_label,
        x_axis_type="log" if x_log else "linear",
        tools="pan,wheel_zoom,box_zoom,reset,save",
        output_backend="webgl",
    )
    for n, (name, (x, y)) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        fig.line(list(map(float, x)), list(map(float, y)), legend_label=str(name), color=color, line_width=2)
        fig.scatter(list(map(float, x)), list(map(float, y)), color=color, size=4)
    fig.add_tools(HoverTool(tooltips=[("x", "@x{0.[0000]}"), ("y", "@y{0.[0000]}")]))
    if series:
        fig.legend.location = "top_right"
        fig.legend.click_policy = "hide"
    return fig


def _hover_value(values: pd.Series) -> np.ndarray:
    """Tooltip values: floats rounded to 4 significant places (and float32), text as str."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype(str).to_numpy()
    if pd.api.types.is_integer_dtype(values):
        return values.to_numpy()
    if pd.api.types.is_float_dtype(values):
        v = values.to_numpy(dtype=np.float64)
        return np.round(v, 4).astype(np.float32)
    return values.astype(str).fillna("").to_numpy()


def scatter(
    frame: pd.DataFrame,
    x: str,
    y: str,
    title: str,
    hover: Sequence[str] = ("label",),
    color_by: str | None = None,
    size_by: str | None = None,
    x_label: str | None = None,
    y_label: str | None = None,
    width: int = 640,
    height: int = 480,
    max_categories: int = 12,
    annotate: Sequence[int] | None = None,
    label_column: str = "label",
    max_hover_chars: int = 4_000_000,
):
    """A WebGL scatter with hover tooltips, optionally coloured by a column and sized by one.

    A categorical ``color_by`` with many values keeps its most frequent ``max_categories``
    and folds the rest into "other"; a numeric one uses a continuous colour map. ``annotate``
    (row positions) writes those points' ``label_column`` beside them (drawn on the canvas,
    so text from data is never interpreted as HTML; tooltips are escaped by Bokeh).

    Coordinates travel as float32 (Bokeh ships numeric arrays as binary), so a 60,000-point
    scatter stays small; when the tooltip text would exceed ``max_hover_chars`` characters,
    tooltip columns beyond the label, colour and size are dropped to keep the report small.
    The first renderer is always the points (callers restyle ``fig.renderers[0].glyph``).
    """
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    frame = frame.reset_index(drop=True)
    df = pd.DataFrame(
        {
            "x": frame[x].to_numpy(dtype=np.float64).astype(np.float32),
            "y": frame[y].to_numpy(dtype=np.float64).astype(np.float32),
        }
    )
    wanted = [c for c in dict.fromkeys(hover) if c in frame and c not in (x, y)]
    tooltips = _hover_columns(frame, df, wanted, {label_column, color_by, size_by}, max_hover_chars)
    fig = figure(
        title=title,
        width=width,
        height=height,
        x_axis_label=x_label or x,
        y_axis_label=y_label or y,
        tools="pan,wheel_zoom,box_zoom,reset,save",
        output_backend="webgl",
    )
    renderers = _draw_points(fig, frame, df, color_by, size_by, max_categories)
    fig.add_tools(
        HoverTool(
            renderers=renderers, tooltips=tooltips + [(x_label or x, "@x{0.[000]}"), (y_label or y, "@y{0.[000]}")]
        )
    )
    if annotate is not None and len(annotate) and label_column in frame:
        _annotate(fig, df, frame[label_column].to_numpy(), annotate, width, height)
    return fig


def _hover_columns(
    frame: pd.DataFrame, df: pd.DataFrame, wanted: list, essential: set, max_hover_chars: int
) -> list[tuple[str, str]]:
    """Add the ``wanted`` columns to ``df`` as tooltip fields (``h0``, ``h1``...: safe names
    whatever the column is called) while their text fits ``max_hover_chars``, the ``essential``
    ones always; returns the tooltips."""
    tooltips = []
    budget = max_hover_chars
    for col in wanted:
        values = _hover_value(frame[col])
        chars = int(pd.Series(values).astype(str).str.len().sum()) if values.dtype == object else 6 * len(values)
        if col not in essential and chars > budget:
            continue
        budget -= chars
        name = f"h{len(tooltips)}"
        df[name] = values
        fmt = "{0.[000]}" if values.dtype.kind == "f" else ""
        tooltips.append((str(col), f"@{{{name}}}{fmt}"))
    return tooltips


def _draw_points(fig, frame: pd.DataFrame, df: pd.DataFrame, color_by, size_by, max_categories: int) -> list:
    """The points' renderers: sized by ``size_by``, coloured by a numeric ``color_by`` with many
    values (a colour bar), by a categorical one (a legend, one renderer per category) or in one colour."""
    from bokeh.models import ColumnDataSource

    if size_by is not None and size_by in frame:
        s = frame[size_by].astype(float).fillna(0).to_numpy()
        s = np.sqrt(np.clip(s, 0, None))
        df["_size"] = (4 + 14 * (s - s.min()) / (np.ptp(s) or 1.0)).astype(np.float32)
        size = "_size"
    else:
        size = 6.0 if len(df) < 5000 else 4.0
    alpha = 0.7 if len(df) < 5000 else 0.5
    if color_by is None or color_by not in frame:
        return [fig.scatter("x", "y", source=ColumnDataSource(_columns(df)), size=size, alpha=alpha, color=PALETTE[0])]
    if pd.api.types.is_numeric_dtype(frame[color_by]) and frame[color_by].nunique() > max_categories:
        return [_draw_by_value(fig, frame[color_by], df, size, alpha)]
    return _draw_by_category(fig, frame[color_by], df, size, alpha, max_categories)


def _draw_by_value(fig, column: pd.Series, df: pd.DataFrame, size, alpha: float):
    """One renderer coloured by a continuous colour map of ``column``, with its colour bar."""
    from bokeh.models import ColorBar, ColumnDataSource, LinearColorMapper
    from bokeh.palettes import Viridis256

    values = column.astype(float).to_numpy()
    df["_value"] = values.astype(np.float32)
    mapper = LinearColorMapper(palette=Viridis256, low=float(np.nanmin(values)), high=float(np.nanmax(values)))
    renderer = fig.scatter(
        "x",
        "y",
        source=ColumnDataSource(_columns(df)),
        size=size,
        alpha=alpha,
        color={"field": "_value", "transform": mapper},
    )
    fig.add_layout(ColorBar(color_mapper=mapper, title=str(column.name)), "right")
    return renderer


def _draw_by_category(fig, column: pd.Series, df: pd.DataFrame, size, alpha: float, max_categories: int) -> list:
    """One renderer per category of ``column`` (the most frequent ``max_categories``, the rest
    as "other"), with a legend that hides a category on click."""
    from bokeh.models import ColumnDataSource

    cats = column.astype(str).fillna("?")
    top = cats.value_counts().index[:max_categories]
    cats = cats.where(cats.isin(top), "other")
    renderers = []
    for n, cat in enumerate(list(top) + (["other"] if (cats == "other").any() else [])):
        mask = (cats == cat).to_numpy()
        renderers.append(
            fig.scatter(
                "x",
                "y",
                source=ColumnDataSource(_columns(df[mask])),
                size=size,
                alpha=alpha,
                color=PALETTE[n % len(PALETTE)],
                legend_label=str(cat),
            )
        )
    fig.legend.click_policy = "hide"
    fig.legend.label_text_font_size = "8pt"
    fig.legend.spacing = 0
    fig.legend.padding = 4
    fig.legend.background_fill_alpha = 0.6
    fig.add_layout(fig.legend[0], "right")
    return renderers


def _annotate(fig, df: pd.DataFrame, labels: np.ndarray, annotate: Sequence[int], width: int, height: int) -> None:
    """Write the labels of the ``annotate`` rows beside their points (those that do not overlap),
    towards the middle of the plot."""
    from bokeh.models import ColumnDataSource

    idx = _declutter(
        df["x"].to_numpy(),
        df["y"].to_numpy(),
        list(dict.fromkeys(int(i) for i in annotate)),
        [_shorten(str(v)) for v in labels],
        width,
        height,
    )
    xs, ys = df["x"].to_numpy()[idx], df["y"].to_numpy()[idx]
    texts = np.array([_shorten(str(v)) for v in labels[idx]], dtype=object)
    right = xs > np.median(df["x"].to_numpy())  # label towards the middle, never off the plot
    for mask, align, offset in ((~right, "left", 5), (right, "right", -5)):
        if mask.any():
            src = ColumnDataSource({"x": xs[mask], "y": ys[mask], "text": list(texts[mask])})
            fig.text(
                "x",
                "y",
                text="text",
                source=src,
                text_font_size="7.5pt",
                x_offset=offset,
                y_offset=0,
                text_align=align,
                text_baseline="middle",
                text_color="#333333",
                text_alpha=0.9,
            )


def _declutter(
    x: np.ndarray,
    y: np.ndarray,
    order: list[int],
    texts: list[str],
    width: int,
    height: int,
    char_px: float = 5.2,
    line_px: float = 12.0,
) -> np.ndarray:
    """The labels (in priority ``order``) that fit without overlapping an earlier one.

    Positions are mapped to approximate screen pixels of the plot area; each label is a box
    beside its point (to the right in the left half, to the left in the right half)."""
    if not order:
        return np.array([], dtype=int)
    fx, fy = np.isfinite(x), np.isfinite(y)
    x0, x1 = (float(x[fx].min()), float(x[fx].max())) if fx.any() else (0.0, 1.0)
    y0, y1 = (float(y[fy].min()), float(y[fy].max())) if fy.any() else (0.0, 1.0)
    pw, ph = max(width - 200, 100), max(height - 90, 100)  # minus axes, legend and toolbar
    mid = np.median(x[fx]) if fx.any() else 0.0
    boxes: list[tuple[float, float, float, float]] = []
    kept = []
    for i in order:
        px = (x[i] - x0) / ((x1 - x0) or 1.0) * pw
        py = (y[i] - y0) / ((y1 - y0) or 1.0) * ph
        w = char_px * len(texts[i]) + 6
        box = (px + 4, px + 4 + w) if x[i] <= mid else (px - 4 - w, px - 4)
        box = (*box, py - line_px / 2, py + line_px / 2)
        if any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in boxes):
            continue
        boxes.append(box)
        kept.append(i)
    return np.array(kept, dtype=int)


def _columns(df: pd.DataFrame) -> dict[str, np.ndarray]:
    """A DataFrame as plain column arrays (no index column, no pandas round trip in Bokeh)."""
    return {c: df[c].to_numpy() for c in df.columns}


def _shorten(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def histogram(values: Sequence[float], title: str, x_label: str, bins: int = 40, width: int = 640, height: int = 320):
    """A histogram of finite values."""
    from bokeh.plotting import figure

    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    counts, edges = np.histogram(v, bins=bins) if len(v) else (np.zeros(1), np.array([0.0, 1.0]))
    fig = figure(
        title=title,
        width=width,
        height=height,
        x_axis_label=x_label,
        y_axis_label="count",
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    fig.quad(
        top=counts.astype(float),
        bottom=0,
        left=edges[:-1],
        right=edges[1:],
        fill_color=PALETTE[0],
        line_color="white",
        alpha=0.8,
    )
    return fig


def bar_chart(
    categories: Sequence[str],
    series: dict[str, Sequence[float]],
    title: str,
    y_label: str,
    width: int = 640,
    height: int = 340,
):
    """Grouped vertical bars: one group per category, one bar per named series (NaN: no bar);
    hover shows the series, the category and the value."""
    from bokeh.models import ColumnDataSource, FactorRange, HoverTool
    from bokeh.plotting import figure

    cats = [str(c) for c in categories]
    names = [str(n) for n in series]
    factors = [(c, n) for c in cats for n in names]
    values = [float(series[n][i]) for i, _ in enumerate(cats) for n in series]
    keep = [i for i, v in enumerate(values) if np.isfinite(v)]
    source = ColumnDataSource(
        {
            "x": [factors[i] for i in keep],
            "value": [values[i] for i in keep],
            "series": [factors[i][1] for i in keep],
            "category": [factors[i][0] for i in keep],
            "color": [PALETTE[names.index(factors[i][1]) % len(PALETTE)] for i in keep],
        }
    )
    fig = figure(
        x_range=FactorRange(*factors),
        title=title,
        width=width,
        height=height,
        y_axis_label=y_label,
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    fig.vbar(x="x", top="value", width=0.9, source=source, fill_color="color", line_color="white")
    fig.add_tools(HoverTool(tooltips=[("", "@category: @series"), ("value", "@value{0.[0000]}")]))
    fig.xaxis.major_label_orientation = 0.9
    fig.y_range.start = 0
    return fig
