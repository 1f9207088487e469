"""``neighbors``: cosine nearest neighbours in an embedding table.

In the report: the neighbours of a few entities (the most observed, or those named with
``--entity``) and how often an entity's neighbours share its category (genre, store type).
On the command line: ``embedlab neighbors RUN "Star Wars (1977)" -k 10`` for any entity, by
label or key, found by :meth:`embedlab.EmbeddingTable.find`'s forgiving rules (case, accents,
punctuation, the year and the article do not matter: ``"star wars"`` works), with suggestions
(labels first) when nothing matches and the candidates when several do. The computation lives
in :mod:`embedlab.toolkit.neighbours` (shared with ``Run.neighbors``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import UsageError
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit.neighbours import (DEFAULT_MIN_COUNT, METRICS, find_entity, nearest,  # noqa: F401
                                         neighbors as neighbors_of, unit_rows)
from embedlab.toolkit.options import MIN_COUNT, TOP_N
from embedlab.toolkit.selection import color_column, display_names, labels_meaningful, neighbour_agreement, select_entities

DEFAULT_QUERIES = 6
MIN_ROWS = 10  # smaller tables are read whole; the neighbors command still queries them


class NeighborsAnalysis(Analysis):
    name = "neighbors"
    title = "Nearest neighbours"
    description = ("Cosine nearest neighbours of a few entities (the most observed, or --entity), and how "
                   "often an entity's neighbours share its category. Candidates are the entities kept by "
                   "--top-n/--min-count. The `embedlab neighbors` command queries any entity.")
    options = [AnalysisOption("k", int, 10, "Neighbours per entity."),
               AnalysisOption("entity", str, None, "Entity (label or key) whose neighbours the report lists; "
                                                   "repeat for several.", multiple=True),
               TOP_N, MIN_COUNT]

    def applies_to(self, run: Run) -> list[str]:
        return [name for name, t in run.tables.items() if len(t) >= MIN_ROWS]

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t = run.table(table)
        k = max(1, int(options.get("k") or 10))
        sel = select_entities(t, options.get("top_n"), options.get("min_count"))
        if len(sel) < 2:
            raise ValueError(f"too few entities to compare: {sel.description}")
        meaningful = labels_meaningful(t)
        wanted = list(options.get("entity") or [])
        queries: list[int] = []
        missing = []
        for q in wanted:
            try:
                queries.append(t.lookup(q))
            except UsageError:
                elsewhere = any(o._matches(q) is not None for name, o in run.tables.items() if name != table)
                if not elsewhere:  # an entity of another table is not "missing" here
                    missing.append(q)
        if not wanted or not queries:
            counts = t.count
            n_q = DEFAULT_QUERIES if meaningful else 3
            if counts is not None:
                order = sel.index[np.argsort(-np.asarray(counts, dtype=float)[sel.index], kind="stable")]
            else:
                order = sel.index
            queries = [int(i) for i in order[:n_q]]
        tables = {}
        names = display_names(t, np.asarray(queries, dtype=int))
        for row, name in zip(queries, names):
            found = nearest(t, row, k, sel.index)
            tables[f"neighbours of {name}"] = found if meaningful else found.drop(columns=["label"])
        metrics: dict[str, float] = {"n_candidates": float(len(sel)), "k": float(k)}
        parts = [f"Cosine nearest neighbours among {sel.description}."]
        if missing:
            parts.append(f"Not found in table {t.name}: {'; '.join(missing)} (the embedlab neighbors command "
                         f"suggests close labels).")
        first = tables[next(iter(tables))]
        head = names[0]
        if meaningful:
            parts.append(f"Closest to {head}: {'; '.join(first['label'].head(5))}.")
        color = color_column(t)
        if color and len(sel) > k + 1:
            groups = t.metadata[color].to_numpy()[sel.index]
            agree, chance = neighbour_agreement(t.vectors[sel.index], groups, k=k, metric="cosine")
            metrics[f"knn_same_{color}"] = agree
            metrics[f"chance_same_{color}"] = chance
            parts.append(f"On average {100 * agree:.0f}% of an entity's {k} nearest neighbours share its {color} "
                         f"(chance: {100 * chance:.0f}%): "
                         + ("the embedding groups entities by it." if agree > chance + 0.15 else
                            "the embedding does not group entities by it much." if agree <= chance + 0.05 else
                            "the embedding groups entities by it somewhat."))
        if t.dim:
            sims = _mean_top_similarity(t, sel.index, k)
            metrics["mean_cosine_of_kth_neighbour"] = sims
        return AnalysisResult(self.name, table, self.title, summary=" ".join(parts), metrics=metrics,
                              tables=tables, data={},
                              finding="; ".join(
                                  ([f"closest to {head}: {', '.join(first['label'].head(3))}"] if meaningful else [])
                                  + ([f"{100 * metrics[f'knn_same_{color}']:.0f}% of neighbours share their {color} "
                                      f"(chance {100 * metrics[f'chance_same_{color}']:.0f}%)"]
                                     if f"knn_same_{color}" in metrics else [])
                                  or [f"mean cosine of the {k}th neighbour "
                                      f"{metrics.get('mean_cosine_of_kth_neighbour', float('nan')):.2f}"]),
                              headline=[m for m in (f"knn_same_{color}", f"chance_same_{color}",
                                                    "mean_cosine_of_kth_neighbour") if m in metrics])


def _mean_top_similarity(t: EmbeddingTable, index: np.ndarray, k: int, max_queries: int = 1000) -> float:
    """Mean cosine similarity of the k-th neighbour: how tight neighbourhoods are."""
    unit = unit_rows(t.vectors[index])
    q = unit[:: max(1, len(unit) // max_queries)]
    sims = q @ unit.T
    kk = min(k + 1, unit.shape[0])
    part = -np.partition(-sims, kk - 1, axis=1)[:, kk - 1]
    return float(part.mean())


def neighbors_command() -> click.Command:
    @click.command("neighbors")
    @click.argument("run_dir", type=click.Path(path_type=Path))
    @click.argument("entity")
    @click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours to list.")
    @click.option("--table", "-t", default=None, help="Embedding table (default: the one where ENTITY matches best: "
                                                      "an exact label before a forgiving match, then table order).")
    @click.option("--top-n", type=click.IntRange(0), default=None,
                  help="Candidates: the N most-observed entities [default: all observed]; 0: all.")
    @click.option("--min-count", type=click.IntRange(0), default=None,
                  help=f"Candidates: entities observed at least this many times [default: {DEFAULT_MIN_COUNT}, "
                       f"as the report's explorer, unless --top-n is given; 0: all observed].")
    @click.option("--metric", type=click.Choice(METRICS), default="cosine", show_default=True,
                  help="Distance: cosine (most similar first) or euclidean (closest first).")
    @click.option("--json", "as_json", is_flag=True, help="Print the neighbours as JSON.")
    def neighbors(run_dir: Path, entity: str, k: int, table: str | None, top_n: int | None,
                  min_count: int | None, metric: str, as_json: bool):
        """Nearest neighbours (cosine or euclidean) of ENTITY, given by label or key.

        \b
        Example:
          embedlab neighbors runs/ml100k-u1 "Star Wars (1977)" -k 10
        """
        from embedlab.run import load_run

        run = load_run(run_dir)
        if min_count is None and top_n is None:
            min_count = DEFAULT_MIN_COUNT
        frame = neighbors_of(run, entity, k, table, top_n if top_n is not None else 0, min_count, metric)
        from embedlab.report.terminal import escape_control, safe_text  # labels may hold escape sequences

        name, info = frame.attrs["table"], frame.attrs["entity"]
        if frame.attrs["note"]:
            click.echo(escape_control(f"note: {frame.attrs['note']}"), err=True)
        if as_json:
            from embedlab.io.strictjson import dumps  # strict JSON: NaN -> null

            click.echo(dumps({"table": name, "entity": info, "matched": frame.attrs["matched"],
                                   "note": frame.attrs["note"] or None,
                                   "candidates": frame.attrs["candidates"],
                                   "neighbors": frame.to_dict("records")}, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        out = Table(title=safe_text(f"{info['label']} ({name} {info['key']}): {k} nearest by {metric}"),
                    title_justify="left")
        for col in frame.columns:
            out.add_column(safe_text(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
        for r in frame.itertuples(index=False):
            out.add_row(*[safe_text(f"{v:.3f}" if isinstance(v, float) else v) for v in r])
        Console(soft_wrap=True).print(out)
        click.echo(escape_control(f"candidates: {frame.attrs['candidates']}"), err=True)

    return neighbors


@hookimpl
def embedlab_register_analyses(register):
    register(NeighborsAnalysis())


@hookimpl
def embedlab_register_commands(cli):
    cli.add_command(neighbors_command())
