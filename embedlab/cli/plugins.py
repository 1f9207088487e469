"""``embedlab plugins``: the installed plugins (broken ones too), ``plugins new`` (a scaffold) and
``plugins guide`` (the plugin guide, which ships with embedlab)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click


@click.group("plugins", invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Include embedlab's built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins_command(ctx: click.Context, show_all: bool, as_json: bool):
    """List installed plugins: name, distribution, version and hooks.

    A plugin that failed to import is listed too, as broken, with its error and where it was
    raised (`--json`: "error" and "location"; null for plugins that loaded).

    \b
    `embedlab plugins new NAME` scaffolds a new plugin distribution;
    `embedlab plugins guide [TOPIC]` prints the plugin guide (it ships with embedlab).
    """
    if ctx.invoked_subcommand is not None:
        return
    import warnings

    from embedlab.plugins import disabled_plugins, plugin_failures, plugin_infos

    with warnings.catch_warnings():  # a broken plugin is listed below, not warned about twice
        warnings.simplefilter("ignore")
        infos = plugin_infos(include_builtins=show_all)
        broken = plugin_failures()
    if disabled_plugins():
        click.echo(f"disabled by EMBEDLAB_DISABLE_PLUGINS: {', '.join(disabled_plugins())}", err=True)
    if as_json:
        rows = [{**asdict(i), "error": None, "location": None} for i in infos]
        rows += [
            {
                "name": f.name,
                "distribution": f.distribution,
                "version": f.version,
                "builtin": f.builtin,
                "module": f.module,
                "hooks": [],
                "error": f.error,
                "location": f.location,
            }
            for f in broken
        ]
        click.echo(json.dumps(sorted(rows, key=lambda r: r["name"]), indent=2))
        return
    if not infos and not broken:
        click.echo("no third-party plugins installed (use --all to list built-ins)", err=True)
        return
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table("name", "distribution", "version", "hooks")
    for i in infos:
        table.add_row(escape(i.name), escape(i.distribution or "-"), escape(i.version or "-"), ", ".join(i.hooks))
    for f in broken:
        table.add_row(
            escape(f.name),
            escape(f.distribution or "-"),
            escape(f.version or "-"),
            f"[red]BROKEN[/red]: {escape(f.error)}" + (f" (at {escape(f.location)})" if f.location else ""),
        )
    Console(soft_wrap=True).print(table)
    if broken:
        click.echo(
            f"{len(broken)} plugin(s) failed to load; fix them, or leave them out with "
            f'EMBEDLAB_LOAD_PLUGINS (see `embedlab plugins guide "goes wrong"`)',
            err=True,
        )


@plugins_command.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "parent",
    type=click.Path(path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder in which to create embedlab-NAME/.",
)
@click.option(
    "--kind",
    type=click.Choice(["analysis", "trainer"]),
    default="analysis",
    show_default=True,
    help="analysis: an example analysis; trainer: the guide's worked trainer, with tests.",
)
def plugins_new(name: str, parent: Path, kind: str):
    """Scaffold a pip-installable analysis (or --kind trainer) plugin in embedlab-NAME/.

    \b
    It holds setup.cfg (with the `embedlab` entry point), pyproject.toml, a module with an
    example analysis, a test using embedlab.authoring.testing and a README. Then:
      cd embedlab-NAME && pip install -e '.[test]' && pytest
      embedlab plugins
    """
    from embedlab.authoring.scaffold import scaffold

    path = scaffold(name, parent, kind)
    click.echo(str(path))
    then = f"train synthetic-collab --trainer {name}" if kind == "trainer" else f"analyze RUN --only {name}"
    click.echo(
        f"created {path}; next: cd {path} && pip install -e '.[test]' && pytest, "
        f"then `embedlab {then}` (the guide: `embedlab plugins guide`)",
        err=True,
    )


@plugins_command.command("guide")
@click.argument("topic", required=False)
@click.option("--path", "show_path", is_flag=True, help="Print where the guide file is, not its text.")
def plugins_guide(topic: str | None, show_path: bool):
    """Print the plugin guide (it ships with embedlab: no internet needed).

    \b
    With TOPIC, only the sections whose heading contains it:
      embedlab plugins guide toolkit
      embedlab plugins guide "Testing your plugin"
    """
    from embedlab.authoring.guide import guide_path, guide_section, guide_text

    if show_path:
        click.echo(str(guide_path()))
        return
    click.echo(guide_section(topic) if topic else guide_text())
