"""The lr-find plot: loss against learning rate with each suggestion marked."""
from __future__ import annotations

from pathlib import Path

from .learner import LRFindResult


def lr_figure(result: LRFindResult, suggestions: dict[str, float], recommended: str, title: str):
    from bokeh.models import Span

    from .plotting import PALETTE, line_chart

    fig = line_chart({"smoothed loss": (result.lrs, result.losses)}, title, "learning rate (log)",
                     "loss", x_log=True)
    for n, (rule, lr) in enumerate(suggestions.items()):
        width = 3 if rule == recommended else 1
        fig.add_layout(Span(location=lr, dimension="height", line_color=PALETTE[(n + 1) % len(PALETTE)],
                            line_dash="dashed", line_width=width))
        y = min(result.losses)
        fig.scatter([lr], [y], size=10, color=PALETTE[(n + 1) % len(PALETTE)],
                    legend_label=f"{rule}: {lr:.1e}" + (" (recommended)" if rule == recommended else ""))
    return fig


def write_lr_plot(path: str | Path, result: LRFindResult, suggestions: dict[str, float],
                  recommended: str, title: str) -> Path:
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    from .atomic import write_text

    doc = file_html(lr_figure(result, suggestions, recommended, title), INLINE, title)
    write_text(path, doc)
    return Path(path)
