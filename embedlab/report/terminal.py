"""Terminal summaries of analysis results (rich panels on stderr)."""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

from embedlab.report.html import fmt_value

if TYPE_CHECKING:
    from embedlab.analysis import AnalysisResult


def short_summary(text: str, limit: int = 600) -> str:
    """The first sentences of a summary, up to about ``limit`` characters (the terminal view;
    the report and --json keep all of it)."""
    if len(text) <= limit:
        return text
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if out and len(out) + len(sentence) + 1 > limit:
            return out + " […]"
        out = f"{out} {sentence}".strip()
    return out


def print_terminal(results: Iterable[AnalysisResult], console=None) -> None:
    """A short rich summary per analysis (on stderr by default)."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = console or Console(stderr=True)
    for r in results:
        head = r.title + (f" — {r.table}" if r.table else "")
        if r.error:
            console.print(Panel(Text(r.error), title=Text(head), border_style="red"))
            continue
        body = Text(short_summary(r.summary or ""))
        if r.metrics:
            body.append("\n" + "  ".join(f"{k}={fmt_value(v)}" for k, v in list(r.metrics.items())[:8]), style="dim")
        console.print(Panel(body, title=Text(head), border_style="blue"))
