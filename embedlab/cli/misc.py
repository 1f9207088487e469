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

    from embedlab.report.terminal import escape_control

    spec = get_dataset(name)
    lines = [f"{spec.name} ({spec.kind})", f"  {spec.description}"]
    if spec.homepage:
        lines.append(f"  source: {spec.homepage}")
    if spec.splits:
        lines.append(f"  canonical splits: {', '.join(spec.splits)}")
    lines.append(f"  downloadable: {'yes (embedlab datasets fetch ' + name + ')' if spec.fetch else 'no'}")
    for opt in spec.options:
        lines.append(f"  {', '.join(opt.opts)}: {opt.help or ''}")
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
        rows += [{"name": f.name, "distribution": f.distribution, "version": f.version,
                  "builtin": f.builtin, "module": f.module, "hooks": [], "error": f.error,
                  "location": f.location} for f in broken]
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
        table.add_row(escape(f.name), escape(f.distribution or "-"), escape(f.version or "-"),
                      f"[red]BROKEN[/red]: {escape(f.error)}" + (f" (at {escape(f.location)})" if f.location else ""))
    Console(soft_wrap=True).print(table)
    if broken:
        click.echo(f"{len(broken)} plugin(s) failed to load; fix them, or leave them out with "
                   f"EMBEDLAB_LOAD_PLUGINS (see `embedlab plugins guide \"goes wrong\"`)", err=True)


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--table", "-t", default=None,
              help="Embedding table to export (required when the run has several).")
@click.option("--format", "fmt", type=click.Choice(["projector", "word2vec", "npy", "csv", "parquet"]),
              default="projector", show_default=True,
              help="projector: TensorFlow Embedding Projector vectors.tsv + metadata.tsv; word2vec: text "
                   "format vectors.txt; npy: vectors.npy + keys.txt; csv: coordinates.csv with PCA (and "
                   "--umap, --tsne) coordinates and the vectors; parquet: vectors.parquet in "
                   "embedding-atlas' layout (vector column, projection_x/projection_y, metadata). Each "
                   "reads back with `embedlab import`.")
@click.option("--out", "-o", "out", type=click.Path(path_type=Path), required=True,
              help="Folder to write into (created). Files of the same names are replaced only when "
                   "embedlab wrote them there (its .embedlab-files.json lists them) and they are "
                   "unchanged; any other file of those names is refused (see --force).")
@click.option("--umap", "with_umap", is_flag=True, help="csv, parquet: add 2-D UMAP coordinates (slower).")
@click.option("--tsne", "with_tsne", is_flag=True,
              help="csv: add 2-D t-SNE coordinates (tsne_1, tsne_2: the tsne analysis's map, seed 0; slower).")
@click.option("--force", is_flag=True, help="Replace files of the same names that embedlab did not write.")
def export_command(run_dir: Path, table: str | None, fmt: str, out: Path, with_umap: bool, force: bool = False,
                   with_tsne: bool = False):
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


@plugins_command.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(path_type=Path), default=Path("."), show_default=True,
              help="Folder in which to create embedlab-NAME/.")
@click.option("--kind", type=click.Choice(["analysis", "trainer"]), default="analysis", show_default=True,
              help="analysis: an example analysis; trainer: the guide's worked trainer, with tests.")
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
    click.echo(f"created {path}; next: cd {path} && pip install -e '.[test]' && pytest, "
               f"then `embedlab {then}` (the guide: `embedlab plugins guide`)", err=True)


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
