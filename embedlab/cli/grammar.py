"""The one CLI grammar's shared pieces (docs/architecture.md, "CLI grammar"; checked over every
command by tests/test_cli_grammar.py): ``--force`` and ``--json`` as every command declares them,
JSON output, old option spellings kept as warning aliases; the grouped ``train DATASET --help`` is
cli/grouped_help.py (imported from here too)."""

from __future__ import annotations

from typing import Any

import click

from embedlab.cli.grouped_help import DISTRIBUTED_WORDS, GroupedCommand, option_sections  # noqa: F401 - old import path


#: the words of every command's ``--force`` (the grammar: docs/architecture.md, "CLI grammar")
FORCE_HELP = (
    "Let the outputs replace files or folders embedlab did not write (without it they are "
    "refused: embedlab writes only new paths or what it recognisably wrote itself)."
)


def FORCE_OPTION() -> click.Option:  # noqa: N802 - reads as the option it makes
    """``--force`` as every command that writes declares it."""
    return click.Option(["--force"], is_flag=True, help=FORCE_HELP)


def with_old_name(option: click.Option, old: str) -> list[click.Option]:
    """``option`` and a hidden alias ``old`` (its spelling before the one grammar): the alias
    sets the same value with a one-line deprecation warning (deprecations.RENAMED_OPTION)."""
    key = f"embedlab.renamed.{option.name}"
    new = max(option.opts, key=len)

    def old_given(ctx: click.Context, _param, value):
        if value is not None and value not in ((), False):
            from embedlab.deprecations import RENAMED_OPTION

            RENAMED_OPTION.warn(command=ctx.command_path, old=old, new=new)
            ctx.meta[key] = value

    def resolve(ctx: click.Context, param, value, _own=option.callback):
        if key in ctx.meta and ctx.get_parameter_source(param.name) in (None, click.core.ParameterSource.DEFAULT):
            value = ctx.meta[key]
        return _own(ctx, param, value) if _own else value

    option.callback = resolve
    alias = click.Option(
        [old],
        type=option.type,
        is_flag=option.is_flag,
        multiple=option.multiple,
        hidden=True,
        expose_value=False,
        callback=old_given,
    )
    return [option, alias]


def JSON_OPTION() -> click.Option:  # noqa: N802 - reads as the option it makes
    """``--json`` as every command whose output is data declares it."""
    return click.Option(
        ["--json", "as_json"], is_flag=True, help="Print the result as JSON on stdout (the human lines go to stderr)."
    )


def emit_json(payload: Any, as_json: bool, command: str) -> None:
    """A command's data on stdout as JSON with ``--json``. Without it nothing goes to a terminal
    (the human lines are on stderr); a script reading stdout (not a terminal) still gets the JSON
    line that train, lr-find and compare always printed, with a one-line deprecation warning."""
    from embedlab.io.strictjson import dumps

    if not as_json:
        import sys

        if sys.stdout.isatty():
            return
        from embedlab.deprecations import JSON_WITHOUT_FLAG

        JSON_WITHOUT_FLAG.warn(command=f"embedlab {command}")
    click.echo(dumps(payload))


def old_switch_values(args: list[str], params: list[click.Parameter]) -> list[str]:
    """The old form of a boolean analysis option, ``--x true`` / ``--x=false`` (any of
    :data:`embedlab.deprecations.BOOL_WORDS`), rewritten to ``--x`` / ``--no-x`` with the
    deprecation warning that names the new form; everything else is left as it is."""
    from embedlab.deprecations import BOOL_OPTION_VALUE, BOOL_WORDS

    switches = {
        o.opts[0]: o.secondary_opts[0]
        for o in params
        if isinstance(o, click.Option) and o.is_bool_flag and o.secondary_opts and o.opts
    }
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return out + args[i:]
        flag, eq, value = arg.partition("=")
        if flag in switches and not eq and i + 1 < len(args) and args[i + 1].lower() in BOOL_WORDS:
            value, i = args[i + 1], i + 1
        elif not (flag in switches and eq and value.lower() in BOOL_WORDS):
            out.append(arg)
            i += 1
            continue
        new = flag if BOOL_WORDS[value.lower()] else switches[flag]
        BOOL_OPTION_VALUE.warn(flag=flag, value=value, new=new)
        out.append(new)
        i += 1
    return out
