"""``embedlab datasets`` and ``embedlab export`` (``embedlab plugins``: :mod:`embedlab.cli.plugins`)."""

from __future__ import annotations

import json
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
        click.echo(
            json.dumps(
                [{"name": s.name, "kind": s.kind, "description": s.description} for s in items.values()], indent=2
            )
        )
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("name", "kind", "description")
    for spec in items.values():
        table.add_row(spec.name, spec.kind, spec.description)
    Console().print(table)


@datasets_group.command("info")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the same fields as the text).")
def datasets_info(name: str, as_json: bool):
    """Describe one dataset: kind, splits, options, source."""
    from embedlab.registry import get_dataset
    from embedlab.report.terminal import escape_control

    info = get_dataset(name).info()
    if as_json:
        click.echo(json.dumps(info, indent=2))
        return
    lines = [f"{info['name']} ({info['kind']})", f"  {info['description']}"]
    if info["source"]:
        lines.append(f"  source: {info['source']}")
    if info["splits"]:
        lines.append(f"  canonical splits: {', '.join(info['splits'])}")
    lines.append(f"  downloadable: {'yes (embedlab datasets fetch ' + name + ')' if info['downloadable'] else 'no'}")
    lines += [f"  {', '.join(opt['flags'])}: {opt['help']}" for opt in info["options"]]
    for line in lines:  # a plugin's text: control characters escaped, one line each
        click.echo(escape_control(line))


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


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--table", "-t", default=None, help="Embedding table to export (required when the run has several).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["projector", "word2vec", "npy", "csv", "parquet"]),
    default="projector",
    show_default=True,
    help="projector: TensorFlow Embedding Projector vectors.tsv + metadata.tsv; word2vec: text "
    "format vectors.txt; npy: vectors.npy + keys.txt; csv: coordinates.csv with PCA (and "
    "--umap, --tsne) coordinates and the vectors; parquet: vectors.parquet in "
    "embedding-atlas' layout (vector column, projection_x/projection_y, metadata). Each "
    "reads back with `embedlab import`.",
)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Folder to write into (created). Files of the same names are replaced only when "
    "embedlab wrote them there (its .embedlab-files.json lists them) and they are "
    "unchanged; any other file of those names is refused (see --force).",
)
@click.option("--umap", "with_umap", is_flag=True, help="csv, parquet: add 2-D UMAP coordinates (slower).")
@click.option(
    "--tsne",
    "with_tsne",
    is_flag=True,
    help="csv: add 2-D t-SNE coordinates (tsne_1, tsne_2: the tsne analysis's map, seed 0; slower).",
)
@click.option("--force", is_flag=True, help="Replace files of the same names that embedlab did not write.")
def export_command(
    run_dir: Path, table: str | None, fmt: str, out: Path, with_umap: bool, force: bool = False, with_tsne: bool = False
):
    """Export an embedding table for other tools.

    \b
    Example:
      embedlab export runs/ml100k-u1 --table item --format projector --out export/
    """
    from embedlab.errors import UsageError
    from embedlab.io.exchange import check_export_target, export_table
    from embedlab.run import load_run

    check_export_target(out, fmt, force)  # before any work
    run = load_run(run_dir)
    if table is None:
        if len(run.table_names) != 1:
            raise UsageError(f"the run has several tables; choose one with --table: {', '.join(run.table_names)}")
        table = run.table_names[0]
    coords = None
    if fmt in ("csv", "parquet"):
        from embedlab.toolkit.projection import projected_coordinates

        coords = projected_coordinates(run.table(table), umap=with_umap, tsne=with_tsne)
    files = export_table(run.table(table), fmt, out, coords=coords, force=force)
    for f in files:
        click.echo(str(f))
    click.echo(f"exported table {table!r} ({len(run.table(table)):,} x {run.table(table).dim}) as {fmt}", err=True)
