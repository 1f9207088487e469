"""``embedlab datasets``, ``embedlab plugins`` and ``embedlab export``."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import click


@click.group("datasets")
def datasets_group():
    """List, describe and download datasets."""


@datasets_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def datasets_list(as_json: bool):
    """List the registered datasets."""
    from embedlab.registry import datasets

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
    from embedlab.registry import get_dataset

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
    from embedlab.errors import UsageError
    from embedlab.registry import get_dataset

    spec = get_dataset(name)
    if spec.fetch is None:
        raise UsageError(f"dataset {name!r} cannot be downloaded; give its files with --data-dir")
    click.echo(str(spec.fetch()))


@click.group("plugins", invoke_without_command=True)
@click.option("--all", "show_all", is_flag=True, help="Include embedlab's built-in plugins.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins_command(ctx: click.Context, show_all: bool, as_json: bool):
    """List installed plugins: name, distribution, version and hooks.

    `embedlab plugins new NAME` scaffolds a new plugin distribution.
    """
    if ctx.invoked_subcommand is not None:
        return
    from embedlab.plugins import plugin_infos

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


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--table", "-t", default=None,
              help="Embedding table to export (required when the run has several).")
@click.option("--format", "fmt", type=click.Choice(["projector", "word2vec", "npy", "csv"]), default="projector",
              show_default=True,
              help="projector: TensorFlow Embedding Projector vectors.tsv + metadata.tsv; word2vec: text "
                   "format vectors.txt; npy: vectors.npy + keys.txt; csv: coordinates.csv with PCA (and "
                   "--umap) coordinates.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Folder to write into (created; files of the same names are replaced).")
@click.option("--umap", "with_umap", is_flag=True, help="csv: add 2-D UMAP coordinates (slower).")
def export_command(run_dir: Path, table: str | None, fmt: str, out: Path, with_umap: bool):
    """Export an embedding table for other tools.

    \b
    Example:
      embedlab export runs/ml100k-u1 --table item --format projector --out export/
    """
    from embedlab.errors import UsageError
    from embedlab.io.exchange import export_table
    from embedlab.run import load_run

    run = load_run(run_dir)
    if table is None:
        if len(run.table_names) != 1:
            raise UsageError(f"the run has several tables; choose one with --table: {', '.join(run.table_names)}")
        table = run.table_names[0]
    files = export_table(run.table(table), fmt, out, umap=with_umap)
    for f in files:
        click.echo(str(f))
    click.echo(f"exported table {table!r} ({len(run.table(table)):,} x {run.table(table).dim}) as {fmt}", err=True)


@plugins_command.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Folder in which to create embedlab-NAME/.")
def plugins_new(name: str, parent: Path):
    """Scaffold a pip-installable analysis plugin in embedlab-NAME/.

    \b
    It holds setup.cfg (with the `embedlab` entry point), pyproject.toml, a module with an
    example analysis, a test using embedlab.authoring.testing and a README. Then:
      cd embedlab-NAME && pip install -e '.[test]' && pytest
      embedlab plugins
    """
    from embedlab.authoring.scaffold import scaffold

    path = scaffold(name, parent)
    click.echo(str(path))
    click.echo(f"created {path}; next: cd {path} && pip install -e '.[test]' && pytest, "
               f"then `embedlab analyze RUN --only {name}` (the guide: docs/plugins.md)", err=True)
