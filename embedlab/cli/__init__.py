"""The ``embedlab`` command line: the top-level group and ``main``.

Each command lives in its own module of this package (train; lr-find: ``lr_find``; analyze;
compare; predict; datasets, plugins and export: ``misc``) and the dataset commands share
:mod:`embedlab.cli.common`; the group's class is :mod:`embedlab.cli.group`. This module imports
the commands inside :func:`make_cli`, and none of them imports this module, so the CLI starts
without importing torch or any plugin.
"""

from __future__ import annotations

import sys

import click

from embedlab._version import __version__
from embedlab.cli.group import EmbedlabCLI
from embedlab.cli.toplevel import startup_status
from embedlab.errors import debug_enabled, set_debug
from embedlab.io.progress import set_quiet


def make_cli() -> click.Group:
    """A fresh CLI (tests build one after registering temporary plugins)."""

    @click.group(cls=EmbedlabCLI, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
    @click.version_option(__version__, prog_name="embedlab")
    @click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=lambda ctx, param, value: set_debug(bool(value)),
        help="Show full tracebacks: of a failing analysis (in its error section), of "
        "errors, and of unexpected ones (for plugin authors; also EMBEDLAB_DEBUG=1). "
        "Also after the subcommand.",
    )
    @click.option(
        "--quiet",
        "-q",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=lambda ctx, param, value: set_quiet(bool(value)),
        help="No progress bars (the same as the command's own -q). Also after the subcommand.",
    )
    def cli():
        """Train entity embeddings and find out what they learned.

        \b
        Quick start:
          embedlab datasets list
          embedlab train synthetic-collab --out runs/demo
          embedlab analyze runs/demo --report reports/demo.html
        """

    from embedlab.cli.analyze import analyze_command
    from embedlab.cli.compare import compare_group
    from embedlab.cli.imports import import_command
    from embedlab.cli.misc import datasets_group, export_command
    from embedlab.cli.neighbors import neighbors_command
    from embedlab.cli.plugins import plugins_command
    from embedlab.cli.predict import predict_command
    from embedlab.cli.lr_find import lr_find_group
    from embedlab.cli.train import train_group

    for command in (
        train_group(),
        lr_find_group(),
        analyze_command(),
        compare_group(),
        datasets_group,
        plugins_command,
        export_command,
        predict_command,
        import_command,
        neighbors_command(),
    ):
        cli.add_command(command)
    return cli


cli = make_cli()


def main(argv: list[str] | None = None) -> None:
    """The ``embedlab`` console script. An unexpected exception (a bug, here or in a plugin) is
    one line naming it and the way to its traceback; ``--debug`` or ``EMBEDLAB_DEBUG=1`` show it."""
    from embedlab.io.progress import resolve

    line = startup_status(list(sys.argv[1:] if argv is None else argv), resolve(None))
    if line:
        click.echo(line, err=True)
    try:
        cli.main(args=argv, prog_name="embedlab", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - click handles most; belt and braces
        click.echo("interrupted: nothing half-written was left behind", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence against a traceback
        if debug_enabled():
            raise
        from embedlab.report.terminal import escape_control

        detail = str(exc).splitlines()[0] if str(exc) else ""
        click.echo(
            escape_control(
                f"Error: unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
                f"(a bug: run again with --debug or EMBEDLAB_DEBUG=1 for the traceback, "
                f"and report it)"
            ),
            err=True,
        )
        sys.exit(1)
