"""Terminal summaries of analysis results (rich panels on stderr)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Iterable

from embedlab.report.html import fmt_value

if TYPE_CHECKING:
    from embedlab.analysis import AnalysisResult

#: characters that change a terminal rather than show as text: C0/C1 controls (ESC, BEL,
#: backspace, carriage return...), DEL, and the bidirectional overrides and isolates that
#: reorder what a line appears to say
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def escape_control(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control character written as a visible escape (``\\x1b``,
    ``\\u202e``), so a label from data can never move the cursor, retitle the window or
    recolour the terminal. With ``keep_newlines``, ``\\n`` and ``\\t`` stay (multi-line
    summaries). Everything printed to a terminal from data goes through here."""
    text = str(text)

    def escape(m: re.Match) -> str:
        ch = m.group()
        if keep_newlines and ch in "\n\t":
            return ch
        code = ord(ch)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"

    return _CONTROL.sub(escape, text)


def safe_text(text: object, style: str | None = None, keep_newlines: bool = False):
    """A rich ``Text`` of ``text``, control characters escaped (``Text`` is never read as
    rich markup, so ``[bold]`` or ``[/]`` in a label prints as it is)."""
    from rich.text import Text

    return Text(escape_control(text, keep_newlines), style=style or "")


def short_summary(text: str, limit: int = 600) -> str:
    """The first sentences of a summary, up to about ``limit`` characters (``analyze --brief``;
    the report and --json keep all of it)."""
    if len(text) <= limit:
        return text
    out = ""
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        if out and len(out) + len(sentence) + 1 > limit:
            return out + " […]"
        out = f"{out} {sentence}".strip()
    return out


TRACEBACK_START = "Traceback (most recent call last):"


def split_traceback(error: str) -> tuple[str, str]:
    """An error section's text parted into its message and the traceback ``--debug`` appended
    (``""`` without one)."""
    at = error.find(TRACEBACK_START)
    if at < 0:
        return error, ""
    return error[:at].rstrip(), error[at:]


def print_terminal(results: Iterable[AnalysisResult], console=None, brief: bool = False) -> None:
    """A rich panel per analysis (on stderr by default): its whole summary, wrapped to the
    terminal's width, and its first metrics; ``brief`` (``analyze --brief``) keeps the
    summary's first sentences only (:func:`short_summary`)."""
    from rich.console import Console
    from rich.panel import Panel

    console = console or Console(stderr=True)
    for r in results:
        head = safe_text(r.title + (f" — {r.table}" if r.table else ""))
        if r.error:
            message, tb = split_traceback(r.error)
            console.print(Panel(safe_text(message, keep_newlines=True), title=head, border_style="red"))
            if tb:  # --debug: plain lines, never wrapped or boxed, so paths stay whole for editors
                console.print(safe_text(tb, keep_newlines=True), soft_wrap=True, highlight=False)
            continue
        body = safe_text(short_summary(r.summary or "") if brief else (r.summary or ""), keep_newlines=True)
        if r.metrics:
            body.append(
                "\n" + escape_control("  ".join(f"{k}={fmt_value(v)}" for k, v in list(r.metrics.items())[:8])),
                style="dim",
            )
        console.print(Panel(body, title=head, border_style="blue"))


def print_ranked(table, metric: str, console=None) -> None:
    """A comparison's ranked table on stderr (``compare``): config, the metric, best epoch, time."""
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"ranked by {metric}")
    cols = [c for c in ("config", metric, "best_valid_loss", "best_epoch", "wall_seconds") if c in table]
    for c in cols:
        t.add_column(c, justify="left" if c == "config" else "right")
    for _, row in table.iterrows():
        t.add_row(*[(f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row[cols]])
    (console or Console(stderr=True)).print(t)


def print_across(
    first: list[AnalysisResult], rows: list[tuple[str, str, str]], n_runs: int, per_section: int = 4, console=None
) -> None:
    """What holds across several runs, on stderr: the ``first`` sections (what holds, multi-run
    analyses), then the stability ``rows`` (section, metric, mean ± sd (n)) as a table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console(stderr=True)
    print_terminal(first, console=console)
    t = Table(title=f"Across {n_runs} runs: mean ± sd (n)")
    for col in ("analysis / table", "metric", "across runs"):
        t.add_column(col)
    for row in rows:
        t.add_row(*row)
    console.print(t)
    console.print(
        f"(up to {per_section} metrics per section here; every metric in --json's `stability` and in the report)"
    )
