"""``embedlab analyze``'s analysis options: one flag per option any analysis declares, added
when click first asks for the parameters (a broken plugin is not a traceback at import), the
old ``--x true`` spelling rewritten, and ``--help-analysis NAME``."""

from __future__ import annotations

import click

from embedlab.cli.grammar import old_switch_values


def analysis_options() -> list[click.Option]:
    """One flag per option name declared by any analysis (shared when names repeat)."""
    from embedlab.registry import analyses

    seen: set[str] = set()
    params = []
    found = analyses()  # one registry collection (each one calls every plugin's hook)
    for analysis in found.values():
        for opt in analysis.options:
            if opt.name in seen:
                continue
            seen.add(opt.name)
            users = [a.name for a in found.values() if any(o.name == opt.name for o in a.options)]
            option = opt.click_option()
            if option.name == "k" and "-k" not in option.opts:  # -k, as `neighbors -k` (the one grammar)
                option.opts.append("-k")
            option.help = f"[{', '.join(users)}] {option.help}"
            params.append(option)
    return params


def help_analysis(ctx: click.Context, _param, name: str | None) -> None:
    if not name or ctx.resilient_parsing:
        return
    from embedlab.registry import get_analysis
    from embedlab.report.terminal import escape_control

    # a plugin's text: no escapes reach the terminal
    click.echo(escape_control(get_analysis(name).help_text(), keep_newlines=True))
    ctx.exit(0)


class LazyAnalyzeCommand(click.Command):
    """Adds the analyses' options when click first asks for the parameters, not when the CLI
    is built: loading plugins at import time turned a broken plugin into a traceback."""

    analysis_options_added = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self.analysis_options_added:
            self.params.extend(analysis_options())
            self.analysis_options_added = True
        return super().get_params(ctx)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, old_switch_values(args, self.get_params(ctx)))
