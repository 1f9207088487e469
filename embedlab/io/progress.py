"""Progress bars: rich on stderr in a terminal, one in-place display in a notebook, nothing when told so.

Every long step (training, lr-find, analyses, retraining analyses) reports through
:func:`progress_bar`, so one rule decides whether a person sees it:

* ``enabled=True``: always shown; ``False``: never (``progress=False``, the CLI's ``-q``, given
  before or after the subcommand: :func:`set_quiet` turns every bar off);
* ``enabled=None`` (the Python API's default): shown when a person is watching
  (:func:`watching`: stderr is a terminal, or the code runs in a Jupyter kernel).

In a terminal the bar is rich's (the CLI already prints with rich); in a notebook it is one
display output per progress context, redrawn in place (IPython's ``update_display``): the bars
and the lines printed under them (a fit's epoch rows). A saved or executed notebook keeps only
its final state, one block per fit, not a stream of refreshes; without IPython's display (a
kernel that lacks it) tqdm's text bar is used.
"""

from __future__ import annotations

import sys
from typing import Any


def in_notebook() -> bool:
    """True inside a Jupyter (ZMQ) kernel: a notebook, JupyterLab, VS Code's notebooks."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def watching() -> bool:
    """Whether a person is likely watching: stderr is a terminal, or this is a notebook."""
    if in_notebook():
        return True
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


_quiet = False


def set_quiet(on: bool = True) -> None:
    """``embedlab -q COMMAND``: no progress bar anywhere in this process."""
    global _quiet
    _quiet = bool(on)


def quiet() -> bool:
    """Whether ``embedlab -q`` asked for no progress bars."""
    return _quiet


def resolve(enabled: bool | None) -> bool:
    """``None`` -> :func:`watching`; a bool stays what it is; ``embedlab -q``: False."""
    if _quiet:
        return False
    return watching() if enabled is None else bool(enabled)


class _Null:
    """A bar that shows nothing (``progress=False``)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, description: str, total: float | None = None, info: str = "", completed: float = 0) -> int:
        return 0

    def update(
        self,
        task: int = 0,
        advance: float = 0,
        info: str | None = None,
        completed: float | None = None,
        total: float | None = None,
    ) -> None:
        pass

    def print(self, line: str) -> None:
        pass


class _Rich(_Null):
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
            console=Console(stderr=True),
            transient=False,
        )

    def __enter__(self):
        self._progress.__enter__()
        return self

    def __exit__(self, *exc):
        return self._progress.__exit__(*exc)

    def add_task(self, description, total=None, info="", completed=0):
        return self._progress.add_task(description, total=total, info=info, completed=completed)

    def update(self, task=0, advance=0, info=None, completed=None, total=None):
        kw: dict[str, Any] = {}
        if info is not None:
            kw["info"] = info
        if completed is not None:
            kw["completed"] = completed
        else:
            kw["advance"] = advance
        if total is not None:
            kw["total"] = total
        self._progress.update(task, **kw)

    def print(self, line):
        from rich.text import Text

        self._progress.console.print(Text(line), soft_wrap=True)  # whole lines in a pipe or a log, not cut at 80


class _NotebookBar(_Null):
    """Bars and printed lines as one notebook display output, updated in place (throttled to
    a few redraws a second; always redrawn when a bar completes and when the block ends)."""

    REDRAW_SECONDS = 0.25

    def __init__(self, display=None) -> None:
        if display is None:
            from IPython.display import display
        self._display = display
        self._handle = None
        self._tasks: list[dict[str, Any]] = []
        self._lines: list[str] = []
        self._drawn_at = 0.0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._draw(force=True)
        return False

    # what is shown: text for the saved notebook and terminals, <pre> HTML for the page
    def _text(self) -> str:
        import time

        rows = []
        for t in self._tasks:
            total, done = t["total"], t["completed"]
            if total:
                filled = int(round(20 * min(done / total, 1.0)))
                bar = "█" * filled + "░" * (20 - filled)
                count = f"{done:g}/{total:g}"
            else:
                bar, count = "", f"{done:g}"
            elapsed = int(time.monotonic() - t["start"])
            rows.append(f"{t['description']}  {bar} {count}  {elapsed // 60}:{elapsed % 60:02d}  {t['info']}".rstrip())
        return "\n".join(rows + self._lines)

    def _repr_pretty_(self, p, cycle):  # IPython's text/plain
        p.text(self._text())

    def _repr_html_(self) -> str:
        import html

        return f'<pre class="embedlab-progress" style="margin:0">{html.escape(self._text())}</pre>'

    def _draw(self, force: bool = False) -> None:
        import time

        now = time.monotonic()
        if not force and now - self._drawn_at < self.REDRAW_SECONDS:
            return
        self._drawn_at = now
        if self._handle is None:
            self._handle = self._display(self, display_id=True)
        else:
            self._handle.update(self)

    def add_task(self, description, total=None, info="", completed=0):
        import time

        self._tasks.append(
            {
                "description": description,
                "total": total,
                "completed": completed,
                "info": info,
                "start": time.monotonic(),
            }
        )
        self._draw(force=True)
        return len(self._tasks) - 1

    def update(self, task=0, advance=0, info=None, completed=None, total=None):
        t = self._tasks[task]
        if total is not None:
            t["total"] = total
        if info is not None:
            t["info"] = info
        t["completed"] = completed if completed is not None else t["completed"] + advance
        self._draw(force=bool(t["total"]) and t["completed"] >= t["total"])

    def print(self, line):
        self._lines.append(str(line))
        self._draw()


class _Tqdm(_Null):
    """tqdm bars (one per task) on stderr: Jupyter shows the text bar redrawn in place."""

    def __init__(self) -> None:
        try:
            import ipywidgets  # noqa: F401

            from tqdm.notebook import tqdm
        except ImportError:
            from tqdm.std import tqdm
        self._tqdm = tqdm
        self._bars: list = []

    def __exit__(self, *exc):
        for bar in self._bars:
            bar.close()
        return False

    def add_task(self, description, total=None, info="", completed=0):
        bar = self._tqdm(
            total=total, desc=description, initial=completed, file=sys.stderr, dynamic_ncols=True, leave=True
        )
        if info:
            bar.set_postfix_str(info, refresh=False)
        self._bars.append(bar)
        return len(self._bars) - 1

    def update(self, task=0, advance=0, info=None, completed=None, total=None):
        bar = self._bars[task]
        if total is not None:
            bar.total = total
        if info is not None:
            bar.set_postfix_str(info, refresh=False)
        if completed is not None:
            bar.n = completed
            bar.refresh()
        else:
            bar.update(advance)

    def print(self, line):
        self._tqdm.write(line, file=sys.stderr)


_Notebook = _NotebookBar  # what progress_bar builds in a notebook (tests give it a fake display)


def status(line: str, enabled: bool | None = None) -> None:
    """One status line on stderr before a wait without a bar of its own (writing a report,
    a step of ``compare --runs``), under the same rule as the bars (``None``: when a person
    watches; ``-q``: never)."""
    if resolve(enabled):
        print(line, file=sys.stderr, flush=True)


def progress_bar(enabled: bool | None = True):
    """A context manager with ``add_task(description, total, info)``, ``update(task, advance=,
    completed=, info=)`` and ``print(line)``: rich in a terminal, an in-place display in a notebook, a silent
    one when ``enabled`` resolves to False (see the module docstring)."""
    if not resolve(enabled):
        return _Null()
    if in_notebook():
        try:
            return _Notebook()
        except ImportError:  # pragma: no cover - a kernel without IPython's display
            return _Tqdm()
    return _Rich()
