"""What the top-level ``embedlab`` group does for every command: global options (``--debug``,
``-q``) accepted after any subcommand, every user error as one line, and the line a slow command
prints at once (no silent wait)."""

from __future__ import annotations

import sys

import click

from embedlab.errors import debug_enabled


#: options of the top-level group that may also follow the subcommand, however deep
GLOBAL_AFTER = ("--debug", "-q", "--quiet")


def global_options_first(group: click.Group, ctx: click.Context, args: list[str]) -> list[str]:
    """``embedlab analyze RUN --debug`` is ``embedlab --debug analyze RUN``: a global option
    after the subcommand moves before it, unless the command it follows declares that option
    itself (``-q`` of the dataset commands, analyze and compare: they read the global one too,
    io.progress.quiet), so a plugin's command keeps its own meaning of it. Nothing after ``--``
    moves."""
    end = args.index("--") if "--" in args else len(args)
    if not any(a in GLOBAL_AFTER for a in args[1:end]):
        return args
    command, taken = group, set()
    for arg in args[:end]:  # the command path: words that name a subcommand of the one before
        if arg.startswith("-") or not isinstance(command, click.Group):
            continue
        try:
            sub = command.get_command(ctx, arg)
        except Exception:  # noqa: BLE001 - the command itself will say what is wrong when it runs
            break
        if sub is not None:
            command = sub
            taken = {o for p in sub.params if isinstance(p, click.Option) for o in p.opts + p.secondary_opts}
    moved = [a for a in args[1:end] if a in GLOBAL_AFTER and a not in taken]
    if not moved:
        return args
    kept = [a for i, a in enumerate(args[:end]) if i == 0 or a not in moved]
    return list(dict.fromkeys(moved)) + kept + args[end:]


def as_click_error(exc: Exception) -> click.ClickException:
    """The one-line message click prints for a user error: an :class:`EmbedlabError` (a plain
    exception, so that Python callers never meet click) becomes a ClickException with its message
    and exit code; control characters are escaped (a label in a message can never drive the
    terminal), and under ``--debug`` the traceback is printed first, as plain lines."""
    from embedlab.report.terminal import escape_control

    if debug_enabled():
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    if isinstance(exc, click.ClickException):
        if isinstance(getattr(exc, "message", None), str):
            exc.message = escape_control(exc.message)
        return exc
    error = click.ClickException(escape_control(str(exc)))
    error.exit_code = getattr(exc, "exit_code", 1)
    return error


#: commands that load torch, the plugins or a dataset before their first line of their own
SLOW_COMMANDS = ("train", "lr-find", "compare", "analyze", "neighbors", "predict", "export", "import")


def startup_status(argv: list[str], watched: bool) -> str | None:
    """The line a slow command prints at once, before torch and the plugins load (no silent
    wait): only when a person watches (io.progress's rule: stderr a terminal, no -q) and not
    for --help/--version."""
    words = [a for a in argv if not a.startswith("-")]
    if not watched or not words or words[0] not in SLOW_COMMANDS:
        return None
    if any(a in ("-h", "--help", "--version", "-q", "--quiet") for a in argv):
        return None
    return f"embedlab {words[0]}: starting (loading torch and the plugins) ..."
