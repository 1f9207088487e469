"""The project's error classes: every user-facing error is one of these.

They subclass :class:`click.ClickException`, so the CLI prints a one-line message and exits
non-zero without a traceback, while Python callers can catch ``EmbedlabError``.
"""
from __future__ import annotations

import click


class EmbedlabError(click.ClickException):
    """A user-facing error: the message names the file, column or value and what to do."""

    exit_code = 1


class UsageError(EmbedlabError):
    """Bad command-line usage (unknown dataset or split name, bad option value): exit code 2."""

    exit_code = 2


class DataError(EmbedlabError):
    """Input data is missing, malformed or out of range."""


class RunFormatError(EmbedlabError):
    """A folder is not a readable embedlab run (missing files, newer format, unsafe content)."""


class TrainingDiverged(EmbedlabError):
    """The loss (or the trained weights) became NaN or infinite: nothing is saved."""


_debug = False


def set_debug(on: bool = True) -> None:
    """``embedlab --debug``: show full tracebacks (plugin errors, unexpected errors)."""
    global _debug
    _debug = bool(on)


def debug_enabled() -> bool:
    """True under ``embedlab --debug`` or with the environment variable ``EMBEDLAB_DEBUG`` set
    to anything but empty, ``0``, ``false`` or ``no``."""
    import os

    env = os.environ.get("EMBEDLAB_DEBUG", "").strip().lower()
    return _debug or env not in ("", "0", "false", "no", "off")
