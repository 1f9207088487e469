"""Every deprecated spelling embedlab still accepts, in one place (pytest's ``deprecated.py`` is
the model).

The rule (docs/architecture.md, "Compatibility"): a changed option, path or name keeps
accepting its old form for at least one minor version, with a one-line warning that names the
new form and the version that drops the old one. Each such form is one :class:`Deprecation`
below; the code that accepts the old form calls ``THE_DEPRECATION.warn(...)`` and nothing else
decides wording or timing. When a form's ``removed_in`` version comes, delete its entry and the
code that calls it; the tests that use the old form fail where it was still needed.

Warnings are :class:`EmbedlabDeprecationWarning` (a :class:`FutureWarning`, which Python shows to
end users by default); the command line prints each as one ``Warning: ...`` line on stderr
(:func:`cli_warnings`). A test turns them into errors with
``pytest.warns(EmbedlabDeprecationWarning)`` or ``-W error::embedlab.deprecations.EmbedlabDeprecationWarning``.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

__all__ = [
    "EmbedlabDeprecationWarning",
    "Deprecation",
    "DEPRECATIONS",
    "BOOL_OPTION_VALUE",
    "cli_warnings",
    "BOOL_WORDS",
    "FRAME_CALL",
]


class EmbedlabDeprecationWarning(FutureWarning):
    """An old form embedlab still accepts; the message names the new form."""


@dataclass(frozen=True)
class Deprecation:
    """One deprecated form. ``old`` and ``new`` are templates filled by :meth:`warn`'s keywords."""

    old: str
    new: str
    since: str
    removed_in: str

    def message(self, **values: Any) -> str:
        return (
            f"{self.old.format(**values)} is deprecated since embedlab {self.since}: write "
            f"{self.new.format(**values)} (the old form stops working in {self.removed_in})"
        )

    def warn(self, stacklevel: int = 3, **values: Any) -> None:
        warnings.warn(EmbedlabDeprecationWarning(self.message(**values)), stacklevel=stacklevel)


#: ``embedlab analyze RUN --x true`` for a boolean analysis option, now ``--x`` / ``--no-x``
#: (embedlab.cli.analyze rewrites the old form before click parses the arguments)
BOOL_OPTION_VALUE = Deprecation(old="`{flag} {value}`", new="`{new}`", since="0.1", removed_in="0.3")

#: the words ``--x VALUE`` accepted for a boolean option (the old form), as booleans
BOOL_WORDS = {"true": True, "false": False, "yes": True, "no": False, "on": True, "off": False, "1": True, "0": False}

#: an internal module that moved (``embedlab.toolkit.runs`` -> ``embedlab.engines.runs``); the
#: package root's import hook resolves the old path (``MOVED_MODULES`` in embedlab/__init__.py)
MOVED_MODULE = Deprecation(old="`import {old}`", new="`import {new}`", since="0.1", removed_in="0.3")

#: ``EmbeddingTable.frame()``, now the property ``EmbeddingTable.frame`` (as ``.bias`` and ``.count``)
FRAME_CALL = Deprecation(
    old="`table.frame()`", new="`table.frame` (a property, like `.bias`)", since="0.1", removed_in="0.3"
)

#: a command-line option renamed to the one grammar (docs/architecture.md, "CLI grammar"):
#: ``neighbors --metric`` -> ``--distance``; the old spelling stays as a hidden alias that warns
#: (embedlab.cli.grammar.with_old_name)
RENAMED_OPTION = Deprecation(old="`{command} {old}`", new="`{command} {new}`", since="0.1", removed_in="0.3")

#: a JSON line printed on a non-terminal stdout without ``--json`` (train, lr-find, compare):
#: data on stdout only when asked for, as every other command
JSON_WITHOUT_FLAG = Deprecation(
    old="`{command}` printing JSON without --json", new="`{command} --json`", since="0.1", removed_in="0.3"
)

#: ``embedlab.report.live.LiveLearner(prepared, ...)``: the live learner is the trainer's Learner
#: itself, with the live session attached (``embedlab.report.live.live_learner``, ``embedlab.learner``)
LIVE_LEARNER = Deprecation(
    old="`LiveLearner(prepared, ...)`",
    new="`embedlab.learner(...)` or `embedlab.report.live.live_learner(prepared, ...)` (a Learner)",
    since="0.1",
    removed_in="0.3",
)

#: a trainer module's ``OPTIONS`` list of click options, now its typed declaration
#: (``CollabOptions``, ``TabularOptions``: docs/architecture.md, "Trainer options")
OPTIONS_LIST = Deprecation(
    old="`{module}.OPTIONS`", new="`{module}.{new}` (`.click_options()` for the flags)", since="0.1", removed_in="0.3"
)

#: every deprecation, by name (the docs test and ``tests/test_deprecations.py`` read it)
DEPRECATIONS: dict[str, Deprecation] = {
    "BOOL_OPTION_VALUE": BOOL_OPTION_VALUE,
    "MOVED_MODULE": MOVED_MODULE,
    "FRAME_CALL": FRAME_CALL,
    "RENAMED_OPTION": RENAMED_OPTION,
    "JSON_WITHOUT_FLAG": JSON_WITHOUT_FLAG,
    "LIVE_LEARNER": LIVE_LEARNER,
    "OPTIONS_LIST": OPTIONS_LIST,
}


@contextlib.contextmanager
def cli_warnings(echo: Callable[[str], None]) -> Iterator[None]:
    """Within the block, each EmbedlabDeprecationWarning is one ``Warning: ...`` line through
    ``echo`` (the command line's stderr) instead of Python's two-line ``file:line`` form; other
    warnings are shown as Python shows them."""
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, EmbedlabDeprecationWarning):
            echo(f"Warning: {message}")
        else:
            shown(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", EmbedlabDeprecationWarning)
        warnings.showwarning = show
        yield
