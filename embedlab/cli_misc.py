"""``embedlab datasets`` and ``embedlab plugins``."""
from __future__ import annotations

import json
from dataclasses import asdict

import click


@click.group("datasets")
def datasets_group():
    """List, describe and download datasets."""


@datasets_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def datasets_list(as_json: bool):
    """List the registered datasets."""
    from .registry import datasets

    items = datasets()
    if as_json:
        click.echo(json.dumps([{"name": s.name, "kind": s.kind, "description": s.description}
                               for s in items.values()], indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "description")
    for spec in items.values():
        table.add_row(spec.name, spec.kind, spec.description)
    Console().print(table)


@datasets_group.command("info")
@click.argument("name")
def datasets_info(name: str):
    """Describe one dataset: kind, splits, options, source."""
    from .registry import get_dataset

    spec = get_dataset(name)
    click.echo(f"{spec.name} ({spec.kind})\n  {spec.description}")
    if spec.homepage:
        click.echo(f"  source: {spec.homepage}")
    if spec.splits:
        click.echo(f"  canonical splits: {', '.join(spec.splits)}")
    click.echo(f"  downloadable: {'yes (embedlab datasets fetch ' + name + ')' if spec.fetch else 'no'}")
    for opt in spec.options:
        click.echo(f"  {', '.join(opt.opts)}: {opt.help or ''}")


@datasets_group.command("fetch")
@click.argument("name")
def datasets_fetch(name: str):
    """Download a dataset's official archive into the cache (checksum verified)."""
    from .errors import UsageError
    from .registry import get_dataset

    spec = get_dataset(name)
    if spec.fetch is None:
        raise UsageError(f"dataset {name!r} cannot be downloaded; give its files with --data-dir")
    click.echo(str(spec.fetch()))


@click.command("plugins")
@click.option("--all", "show_all", is_flag=True, help="Include embedlab's built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(show_all: bool, as_json: bool):
    """List installed plugins: name, distribution, version and hooks."""
    from .plugins import plugin_infos

    infos = plugin_infos(include_builtins=show_all)
    if as_json:
        click.echo(json.dumps([asdict(i) for i in infos], indent=2))
        return
    if not infos:
        click.echo("no third-party plugins installed (use --all to list built-ins)", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "distribution", "version", "hooks")
    for i in infos:
        table.add_row(i.name, i.distribution or "-", i.version or "-", ", ".join(i.hooks))
    Console().print(table)
