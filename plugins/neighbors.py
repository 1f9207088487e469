"""``neighbors``: cosine nearest neighbours in an embedding table.

In the report: the neighbours of a few entities (the most observed, or those named with
``--entity``) and how often an entity's neighbours share its category (genre, store type).
On the command line: ``embedlab neighbors RUN "Star Wars (1977)" -k 10`` for any entity, by
label or key, with suggestions when the label is not found.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import UsageError
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit.options import MIN_COUNT, TOP_N
from embedlab.toolkit.selection import (color_column, count_column, display_names, labels_meaningful, neighbour_agreement, select_entities, target_column)

DEFAULT_QUERIES = 6
MIN_ROWS = 10  # smaller tables are read whole; the neighbors command still queries them


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def nearest(table: EmbeddingTable, row: int, k: int, candidates: np.ndarray | None = None) -> pd.DataFrame:
    """The ``k`` entities most cosine-similar to ``row`` among ``candidates`` (default: all),
    the entity itself excluded; columns: rank, key, label, cosine and the main annotations."""
    cand = np.arange(len(table)) if candidates is None else np.asarray(candidates)
    cand = cand[cand != row]
    unit = unit_rows(table.vectors[cand])
    q = unit_rows(table.vectors[row:row + 1])[0]
    sims = unit @ q
    k = min(k, len(cand))
    top = np.argpartition(-sims, k - 1)[:k] if k < len(cand) else np.arange(len(cand))
    top = top[np.lexsort((cand[top], -sims[top]))]
    rows = cand[top]
    out = pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "key": table.keys[rows],
                        "label": table.labels[rows], "cosine": sims[top].astype(float)})
    for col in _annotation_columns(table):
        out[col] = table.metadata[col].to_numpy()[rows]
    return out


def _annotation_columns(table: EmbeddingTable) -> list[str]:
    cols = [c for c in (color_column(table), count_column(table), target_column(table)) if c]
    if not labels_meaningful(table):  # users: show who they are instead of "user 17"
        cols += [c for c in table.metadata.columns if c not in cols and c not in ("key", "label")][:3]
    return list(dict.fromkeys(cols))


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
                elsewhere = any((o.labels == q).any() or (o.keys.astype(str) == q).any()
                                for name, o in run.tables.items() if name != table)
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
                              tables=tables, data={})


def _mean_top_similarity(t: EmbeddingTable, index: np.ndarray, k: int, max_queries: int = 1000) -> float:
    """Mean cosine similarity of the k-th neighbour: how tight neighbourhoods are."""
    unit = unit_rows(t.vectors[index])
    q = unit[:: max(1, len(unit) // max_queries)]
    sims = q @ unit.T
    kk = min(k + 1, unit.shape[0])
    part = -np.partition(-sims, kk - 1, axis=1)[:, kk - 1]
    return float(part.mean())


def find_entity(run: Run, query: str, table: str | None) -> tuple[str, int]:
    """(table, row) of ``query`` (a label or key); a UsageError with close labels when absent.

    Without ``table``: a label match wins over a key match; among tables, the run's order
    (a query like ``1`` that is both a user and an item key resolves to the first table).
    """
    names = [table] if table else run.table_names
    for name in names:  # label match first
        t = run.table(name)
        if (t.labels == query).any():
            return name, t.lookup(query)
    for name in names:
        t = run.table(name)
        if (t.keys.astype(str) == str(query)).any():
            return name, t.lookup(query)
    hints = []
    for name in names:
        try:
            run.table(name).lookup(query)
        except UsageError as exc:
            msg = exc.format_message()
            if "did you mean:" in msg:
                hints.append(f"{name}: {msg.split('did you mean:', 1)[1].strip()}")
    where = f"table {table!r}" if table else f"tables {', '.join(names)}"
    hint = ("; did you mean — " + " | ".join(hints)) if hints else "; check the spelling (labels are exact titles)"
    raise UsageError(f"no entity with label or key {query!r} in {where}{hint}")


def neighbors_command() -> click.Command:
    @click.command("neighbors")
    @click.argument("run_dir", type=click.Path(path_type=Path))
    @click.argument("entity")
    @click.option("-k", "k", type=click.IntRange(1), default=10, show_default=True, help="Neighbours to list.")
    @click.option("--table", "-t", default=None, help="Embedding table (default: the first whose labels or keys "
                                                      "contain ENTITY).")
    @click.option("--top-n", type=click.IntRange(0), default=None,
                  help="Candidates: the N most-observed entities [default: all observed]; 0: all.")
    @click.option("--min-count", type=click.IntRange(0), default=None,
                  help="Candidates: entities observed at least this many times.")
    @click.option("--json", "as_json", is_flag=True, help="Print the neighbours as JSON.")
    def neighbors(run_dir: Path, entity: str, k: int, table: str | None, top_n: int | None,
                  min_count: int | None, as_json: bool):
        """Nearest neighbours (cosine) of ENTITY, given by label or key.

        \b
        Example:
          embedlab neighbors runs/ml100k-u1 "Star Wars (1977)" -k 10
        """
        from embedlab.run import load_run

        run = load_run(run_dir)
        name, row = find_entity(run, entity, table)
        t = run.table(name)
        sel = select_entities(t, top_n if top_n is not None else 0, min_count)
        frame = nearest(t, row, k, sel.index)
        if as_json:
            click.echo(json.dumps({"table": name, "entity": {"key": _plain(t.keys[row]), "label": t.labels[row]},
                                   "candidates": sel.description,
                                   "neighbors": [{c: _plain(v) for c, v in r.items()}
                                                 for r in frame.to_dict("records")]}, indent=2))
            return
        from rich.console import Console
        from rich.table import Table

        out = Table(title=f"{t.labels[row]} ({name} {t.keys[row]}): {k} nearest by cosine", title_justify="left")
        for col in frame.columns:
            out.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
        for r in frame.itertuples(index=False):
            out.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in r])
        Console(soft_wrap=True).print(out)
        click.echo(f"candidates: {sel.description}", err=True)

    return neighbors


def _plain(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        f = float(v)
        return f if np.isfinite(f) else None
    return v


@hookimpl
def embedlab_register_analyses(register):
    register(NeighborsAnalysis())


@hookimpl
def embedlab_register_commands(cli):
    cli.add_command(neighbors_command())
