"""The ``embedlab`` command line: the top-level group and ``main``.

Each command lives in its own module of this package (train/lr-find: ``train``; analyze;
compare; predict; datasets, plugins and export: ``misc``) and the dataset commands share
:mod:`embedlab.cli.common`. This module imports them inside :func:`make_cli`, and none of them
imports this module, so the CLI starts without importing torch or any plugin.
"""
from __future__ import annotations

import sys

import click

from embedlab._version import __version__
from embedlab.cli.toplevel import as_click_error, global_options_first, startup_status
from embedlab.errors import EmbedlabError, debug_enabled, set_debug
from embedlab.io.progress import set_quiet

class EmbedlabCLI(click.Group):
    """The top-level group; plugins' commands are added on first use."""

    _plugins_loaded = False

    def _load_plugin_commands(self):
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from embedlab.plugins import get_plugin_manager

            before = set(self.commands)
            get_plugin_manager().hook.embedlab_register_commands(cli=self)
            del before

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load_plugin_commands()
        return super().get_command(ctx, name)

    def parse_args(self, ctx, args):
        """Global options work before or after the subcommand (:func:`global_options_first`)."""
        if args and not ctx.resilient_parsing:
            args = global_options_first(self, ctx, args)
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        """Every user error is one line, control characters escaped (a label in a message can
        never drive the terminal); under ``--debug`` its traceback is shown first, plain (one
        frame a line, paths unbroken). A deprecated form is one ``Warning:`` line on stderr."""
        from embedlab.deprecations import cli_warnings

        with cli_warnings(lambda line: click.echo(line, err=True)):
            return self._invoke(ctx)

    def _invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.ClickException, EmbedlabError) as exc:
            raise as_click_error(exc) from exc

    def main(self, *args, **kwargs):
        """click's ``main``, with an :class:`EmbedlabError` raised outside a command (while
        building ``--help`` or loading plugin commands) turned into its one line too."""
        try:
            return super().main(*args, **kwargs)
        except EmbedlabError as exc:
            error = as_click_error(exc)
            error.show()
            sys.exit(error.exit_code)

    def add_command(self, cmd, name=None):
        name = name or cmd.name
        if name in self.commands and self.commands[name] is not cmd:
            raise EmbedlabError(f"a plugin tried to add command {name!r}, which already exists")
        super().add_command(cmd, name)


def make_cli() -> click.Group:
    """A fresh CLI (tests build one after registering temporary plugins)."""

    @click.group(cls=EmbedlabCLI, context_settings={"help_option_names": ["-h", "--help"],
                                                    "max_content_width": 100})
    @click.version_option(__version__, prog_name="embedlab")
    @click.option("--debug", is_flag=True, expose_value=False, is_eager=True,
                  callback=lambda ctx, param, value: set_debug(bool(value)),
                  help="Show full tracebacks: of a failing analysis (in its error section), of "
                       "errors, and of unexpected ones (for plugin authors; also EMBEDLAB_DEBUG=1). "
                       "Also after the subcommand.")
    @click.option("--quiet", "-q", is_flag=True, expose_value=False, is_eager=True,
                  callback=lambda ctx, param, value: set_quiet(bool(value)),
                  help="No progress bars (the same as the command's own -q). Also after the subcommand.")
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
    from embedlab.cli.train import lr_find_group, train_group

    for command in (train_group(), lr_find_group(), analyze_command(), compare_group(), datasets_group,
                    plugins_command, export_command, predict_command, import_command, neighbors_command()):
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
        click.echo(escape_control(f"Error: unexpected {type(exc).__name__}{': ' + detail if detail else ''} "
                                  f"(a bug: run again with --debug or EMBEDLAB_DEBUG=1 for the traceback, "
                                  f"and report it)"), err=True)
        sys.exit(1)
