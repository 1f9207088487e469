"""Bokeh building blocks shared by the report and analysis plugins' ``render`` steps.

Functions return Bokeh models and never save or show them (umap.plot's convention). Every
label shown in a tooltip comes from a ColumnDataSource field, which Bokeh escapes.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import pandas as pd

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]


def line_chart(series: dict[str, tuple[Sequence[float], Sequence[float]]], title: str,
               x_label: str, y_label: str, x_log: bool = False, width: int = 640, height: int = 320):
    """One line per named series (x, y)."""
    from bokeh.models import HoverTool
    from bokeh.plotting import figure

    fig = figure(title=title, width=width, height=height, x_axis_label=x_label,
                 y_axis_label=y_label, x_axis_type="log" if x_log else "linear",
                 tools="pan,wheel_zoom,box_zoom,reset,save", output_backend="webgl")
    for n, (name, (x, y)) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        fig.line(list(map(float, x)), list(map(float, y)), legend_label=str(name), color=color, line_width=2)
        fig.scatter(list(map(float, x)), list(map(float, y)), color=color, size=4)
    fig.add_tools(HoverTool(tooltips=[("x", "@x{0.[0000]}"), ("y", "@y{0.[0000]}")]))
    if series:
        fig.legend.location = "top_right"
        fig.legend.click_policy = "hide"
    return fig


def scatter(frame: pd.DataFrame, x: str, y: str, title: str, hover: Sequence[str] = ("label",),
            color_by: str | None = None, size_by: str | None = None, x_label: str | None = None,
            y_label: str | None = None, width: int = 640, height: int = 480, max_categories: int = 12):
    """A WebGL scatter with hover tooltips, optionally coloured by a column and sized by one.

    A categorical ``color_by`` with many values keeps its most frequent ``max_categories``
    and folds the rest into "other"; a numeric one uses a continuous colour map.
    """
    from bokeh.models import ColorBar, ColumnDataSource, HoverTool, LinearColorMapper
    from bokeh.palettes import Viridis256
    from bokeh.plotting import figure

    df = pd.DataFrame({"x": frame[x].astype(float).to_numpy(), "y": frame[y].astype(float).to_numpy()})
    tooltips = []
    for col in hover:
        if col in frame:
            values = frame[col]
            df[col] = values.round(4).to_numpy() if pd.api.types.is_float_dtype(values) else values.astype(str).to_numpy()
            tooltips.append((col, f"@{{{col}}}"))
    fig = figure(title=title, width=width, height=height, x_axis_label=x_label or x,
                 y_axis_label=y_label or y, tools="pan,wheel_zoom,box_zoom,reset,save",
                 output_backend="webgl")
    if size_by is not None and size_by in frame:
        s = frame[size_by].astype(float).to_numpy()
        s = np.sqrt(np.clip(s, 0, None))
        df["_size"] = 4 + 14 * (s - s.min()) / (np.ptp(s) or 1.0)
    else:
        df["_size"] = 6.0
    color_bar = None
    if color_by is not None and color_by in frame and pd.api.types.is_numeric_dtype(frame[color_by]) \
            and frame[color_by].nunique() > max_categories:
        values = frame[color_by].astype(float).to_numpy()
        df["_value"] = values
        mapper = LinearColorMapper(palette=Viridis256, low=float(np.nanmin(values)), high=float(np.nanmax(values)))
        fig.scatter("x", "y", source=ColumnDataSource(df), size="_size", alpha=0.7,
                    color={"field": "_value", "transform": mapper})
        color_bar = ColorBar(color_mapper=mapper, title=color_by)
        fig.add_layout(color_bar, "right")
    elif color_by is not None and color_by in frame:
        cats = frame[color_by].astype(str).fillna("?")
        top = cats.value_counts().index[:max_categories]
        cats = cats.where(cats.isin(top), "other")
        for n, cat in enumerate(list(top) + (["other"] if (cats == "other").any() else [])):
            mask = (cats == cat).to_numpy()
            fig.scatter("x", "y", source=ColumnDataSource(df[mask]), size="_size", alpha=0.7,
                        color=PALETTE[n % len(PALETTE)], legend_label=str(cat))
        fig.legend.click_policy = "hide"
        fig.legend.label_text_font_size = "8pt"
    else:
        fig.scatter("x", "y", source=ColumnDataSource(df), size="_size", alpha=0.7, color=PALETTE[0])
    fig.add_tools(HoverTool(tooltips=tooltips + [(x_label or x, "@x{0.[000]}"), (y_label or y, "@y{0.[000]}")]))
    return fig
