"""The project's error classes: every user-facing error is one of these.

They are plain exception classes (Python callers catch ``EmbedlabError`` or a kind of it and
never meet click); the command line turns each into its one-line ``Error: ...`` message and
exit code (``embedlab.cli.EmbedlabCLI``), without a traceback unless ``--debug``.
"""

from __future__ import annotations


class EmbedlabError(Exception):
    """A user-facing error: the message names the file, column or value and what to do.

    ``message`` is that one line and ``exit_code`` the command line's exit status (1; 2 for a
    :class:`UsageError`)."""

    exit_code = 1

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message

    def format_message(self) -> str:
        """The message (the name click's exceptions use, kept for code written against it)."""
        return self.message


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
