"""The lr-find plot: loss against learning rate with each suggestion marked on the curve."""

from __future__ import annotations

import math
from pathlib import Path

from embedlab.training.lr_find import SUGGESTION_RULES, LRFindResult


def lr_figure(result: LRFindResult, suggestions: dict[str, float], recommended: str, title: str):
    """The smoothed loss against lr (log axis); each rule a dashed line and a dot on the curve.

    The recommended rule's line is thicker and its legend entry says so; hovering a dot shows
    the rule, its lr and what the rule means.
    """
    from bokeh.models import ColumnDataSource, HoverTool, Span

    from embedlab.toolkit.plotting import PALETTE, line_chart

    finite = [(lr, loss) for lr, loss in zip(result.lrs, result.losses) if math.isfinite(loss)]
    fig = line_chart(
        {"smoothed loss": ([p[0] for p in finite], [p[1] for p in finite])},
        title,
        "learning rate (log)",
        "loss",
        x_log=True,
    )
    if finite:  # a blown-up tail would flatten the interesting part of the curve
        losses = [p[1] for p in finite]
        lo, start = min(losses), losses[0]
        top = max(start, lo) + 0.25 * (max(start, lo) - lo + 1e-12)
        fig.y_range.start, fig.y_range.end = lo - 0.05 * (top - lo), top
    for n, (rule, lr) in enumerate(suggestions.items()):
        color = PALETTE[(n + 1) % len(PALETTE)]
        chosen = rule == recommended
        fig.add_layout(
            Span(location=lr, dimension="height", line_color=color, line_dash="dashed", line_width=3 if chosen else 1)
        )
        src = ColumnDataSource(
            {"x": [lr], "y": [result.loss_at(lr)], "rule": [rule], "meaning": [SUGGESTION_RULES.get(rule, "")]}
        )
        glyph = fig.scatter(
            "x",
            "y",
            source=src,
            size=14 if chosen else 10,
            color=color,
            marker="star" if chosen else "circle",
            legend_label=f"{rule}: {lr:.1e}" + (" (recommended)" if chosen else ""),
        )
        fig.add_tools(
            HoverTool(
                renderers=[glyph],
                tooltips=[("rule", "@rule"), ("lr", "@x{0.0e}"), ("loss", "@y{0.0000}"), ("", "@meaning")],
            )
        )
    return fig


def write_lr_plot(
    path: str | Path,
    result: LRFindResult,
    suggestions: dict[str, float],
    recommended: str,
    title: str,
    force: bool = False,
) -> Path:
    """The plot as a standalone HTML file, under the write rule (new, or an HTML file embedlab
    wrote, or ``force``: :mod:`embedlab.io.ownership`); it carries embedlab's generator mark."""
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from embedlab.io.ownership import write_owned_html

    doc = file_html(lr_figure(result, suggestions, recommended, title), INLINE, title)
    return write_owned_html(path, doc, force=force, option="--plot")
