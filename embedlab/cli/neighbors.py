"""``embedlab neighbors RUN ENTITY``: the nearest neighbours of any entity, found by
:meth:`embedlab.EmbeddingTable.find`'s forgiving rules; the computation is
:func:`embedlab.toolkit.neighbors.neighbors` (shared with ``Run.neighbors`` and the
``neighbors`` analysis)."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from embedlab.cli.grammar import with_old_name
from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, METRICS, neighbors as neighbors_of


def neighbors_command() -> click.Command:
    return click.command("neighbors", params=_params())(_neighbors)


def _params() -> list[click.Parameter]:
    """The command's arguments and options, in --help's order."""
    return [
        click.Argument(["run_dir"], type=click.Path(path_type=Path)),
        click.Argument(["entity"]),
        # --distance as analyze's (the old --metric: a deprecated alias; --metric is a ranking metric elsewhere)
        *with_old_name(
            click.Option(
                ["--distance"],
                type=click.Choice(METRICS),
                default="cosine",
                show_default=True,
                help="cosine (most similar first) or euclidean (closest first).",
            ),
            "--metric",
        ),
        click.Option(
            ["-k", "--k", "k"], type=click.IntRange(1), default=10, show_default=True, help="Neighbors to list."
        ),
        click.Option(
            ["--table", "-t"],
            default=None,
            help="Embedding table (default: the one where ENTITY matches best: "
            "an exact label before a forgiving match, then table order).",
        ),
        click.Option(
            ["--top-n"],
            type=click.IntRange(0),
            default=None,
            help="Candidates: the N most-observed entities [default: all observed]; 0: all.",
        ),
        click.Option(
            ["--min-count"],
            type=click.IntRange(0),
            default=None,
            help=f"Candidates: entities observed at least this many times [default: {DEFAULT_MIN_COUNT}, "
            f"as the report's explorer, unless --top-n is given; 0: all observed].",
        ),
        click.Option(["--json", "as_json"], is_flag=True, help="Print the neighbours as JSON."),
    ]


def _neighbors(
    run_dir: Path,
    entity: str,
    k: int,
    table: str | None,
    top_n: int | None,
    min_count: int | None,
    as_json: bool,
    distance: str = "cosine",
):
    """Nearest neighbours (cosine or euclidean) of ENTITY, given by label or key.

    \b
    Example:
      embedlab neighbors runs/ml100k-u1 "Star Wars (1977)" -k 10
    """
    from embedlab.report.terminal import escape_control  # labels may hold escape sequences
    from embedlab.run import load_run

    run = load_run(run_dir)
    if min_count is None and top_n is None:
        min_count = DEFAULT_MIN_COUNT
    frame = neighbors_of(run, entity, k, table, top_n if top_n is not None else 0, min_count, distance)
    if frame.attrs["note"]:
        click.echo(escape_control(f"note: {frame.attrs['note']}"), err=True)
    if as_json:
        from embedlab.io.strictjson import dumps  # strict JSON: NaN -> null

        click.echo(dumps(_payload(frame), indent=2))
        return
    from rich.console import Console

    Console(soft_wrap=True).print(_rich_table(frame, k, distance))
    click.echo(escape_control(f"candidates: {frame.attrs['candidates']}"), err=True)


def _payload(frame: pd.DataFrame) -> dict:
    """The --json output: the table, the entity matched, the candidates and the neighbours."""
    return {
        "table": frame.attrs["table"],
        "entity": frame.attrs["entity"],
        "matched": frame.attrs["matched"],
        "note": frame.attrs["note"] or None,
        "candidates": frame.attrs["candidates"],
        "neighbors": frame.to_dict("records"),
    }


def _rich_table(frame: pd.DataFrame, k: int, metric: str):
    """The neighbours as a terminal table, titled with the entity and the distance."""
    from rich.table import Table

    from embedlab.report.terminal import safe_text

    name, info = frame.attrs["table"], frame.attrs["entity"]
    out = Table(
        title=safe_text(f"{info['label']} ({name} {info['key']}): {k} nearest by {metric}"), title_justify="left"
    )
    for col in frame.columns:
        out.add_column(safe_text(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
    for r in frame.itertuples(index=False):
        out.add_row(*[safe_text(f"{v:.3f}" if isinstance(v, float) else v) for v in r])
    return out
