"""The class of the top-level ``embedlab`` group (:class:`EmbedlabCLI`, made by
:func:`embedlab.cli.make_cli` and importable from :mod:`embedlab.cli` as before): plugins'
commands added on first use, global options after the subcommand, every user error one line."""

from __future__ import annotations

import sys

import click

from embedlab.cli.toplevel import as_click_error, global_options_first
from embedlab.errors import EmbedlabError


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
