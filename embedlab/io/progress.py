"""Progress bars on stderr: rich in a terminal, tqdm in a notebook, nothing when told so.

Every long step (training, lr-find, analyses, retraining analyses) reports through
:func:`progress_bar`, so one rule decides whether a person sees it:

* ``enabled=True``: always shown; ``False``: never (``progress=False``, the CLI's ``-q``, given
  before or after the subcommand: :func:`set_quiet` turns every bar off);
* ``enabled=None`` (the Python API's default): shown when a person is watching
  (:func:`watching`: stderr is a terminal, or the code runs in a Jupyter kernel).

In a terminal the bar is rich's (the CLI already prints with rich); in a notebook it is tqdm's
(``tqdm.notebook`` with ipywidgets installed, else the text bar, which Jupyter redraws in place).
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

    def update(self, task: int = 0, advance: float = 0, info: str | None = None,
               completed: float | None = None, total: float | None = None) -> None:
        pass

    def print(self, line: str) -> None:
        pass


class _Rich(_Null):
    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                  TimeElapsedColumn(), TextColumn("{task.fields[info]}"),
                                  console=Console(stderr=True), transient=False)

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

        self._progress.console.print(Text(line))


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
        bar = self._tqdm(total=total, desc=description, initial=completed, file=sys.stderr,
                         dynamic_ncols=True, leave=True)
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


def progress_bar(enabled: bool | None = True):
    """A context manager with ``add_task(description, total, info)``, ``update(task, advance=,
    completed=, info=)`` and ``print(line)``: rich in a terminal, tqdm in a notebook, a silent
    one when ``enabled`` resolves to False (see the module docstring)."""
    if not resolve(enabled):
        return _Null()
    if in_notebook():
        try:
            return _Tqdm()
        except ImportError:  # pragma: no cover - tqdm is a dependency; rich prints the final state
            pass
    return _Rich()
