"""``neighbors``: cosine nearest neighbours in an embedding table.

In the report: the neighbours of a few entities (the most observed, or those named with
``--entity``) and how often an entity's neighbours share its category (genre, store type).
On the command line (``embedlab/cli/neighbors.py``): ``embedlab neighbors RUN "Star Wars (1977)" -k 10`` for any entity, by
label or key, found by :meth:`embedlab.EmbeddingTable.find`'s forgiving rules (case, accents,
punctuation, the year and the article do not matter: ``"star wars"`` works), with suggestions
(labels first) when nothing matches and the candidates when several do. The computation lives
in :mod:`embedlab.toolkit.neighbors` (shared with ``Run.neighbors``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import UsageError
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit.neighbors import find_entity, nearest, unit_rows
from embedlab.toolkit.options import MIN_COUNT, TOP_N
from embedlab.toolkit.selection import (
    color_column,
    display_names,
    labels_meaningful,
    neighbour_agreement,
    select_entities,
)

DEFAULT_QUERIES = 6
MIN_ROWS = 10  # smaller tables are read whole; the neighbors command still queries them


class NeighborsAnalysis(Analysis):
    name = "neighbors"
    title = "Nearest neighbours"
    description = (
        "Cosine nearest neighbours of a few entities (the most observed, or --entity), and how "
        "often an entity's neighbours share its category. Candidates are the entities kept by "
        "--top-n/--min-count. The `embedlab neighbors` command queries any entity."
    )
    options = [
        AnalysisOption("k", int, 10, "Neighbors per entity."),
        AnalysisOption(
            "entity",
            str,
            None,
            "Entity (label or key) whose neighbours the report lists; repeat for several.",
            multiple=True,
        ),
        TOP_N,
        MIN_COUNT,
    ]

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
                try:  # an entity of another table is not "missing" here
                    elsewhere = find_entity(run, q).table != table
                except UsageError:
                    elsewhere = False
                if not elsewhere:
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
            parts.append(
                f"Not found in table {t.name}: {'; '.join(missing)} (the embedlab neighbors command "
                f"suggests close labels)."
            )
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
            parts.append(
                f"On average {100 * agree:.0f}% of an entity's {k} nearest neighbours share its {color} "
                f"(chance: {100 * chance:.0f}%): "
                + (
                    "the embedding groups entities by it."
                    if agree > chance + 0.15
                    else "the embedding does not group entities by it much."
                    if agree <= chance + 0.05
                    else "the embedding groups entities by it somewhat."
                )
            )
        if t.dim:
            sims = _mean_top_similarity(t, sel.index, k)
            metrics["mean_cosine_of_kth_neighbour"] = sims
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=" ".join(parts),
            metrics=metrics,
            tables=tables,
            data={},
            finding="; ".join(
                ([f"closest to {head}: {', '.join(first['label'].head(3))}"] if meaningful else [])
                + (
                    [
                        f"{100 * metrics[f'knn_same_{color}']:.0f}% of neighbours share their {color} "
                        f"(chance {100 * metrics[f'chance_same_{color}']:.0f}%)"
                    ]
                    if f"knn_same_{color}" in metrics
                    else []
                )
                or [
                    f"mean cosine of the {k}th neighbour "
                    f"{metrics.get('mean_cosine_of_kth_neighbour', float('nan')):.2f}"
                ]
            ),
            headline=[
                m for m in (f"knn_same_{color}", f"chance_same_{color}", "mean_cosine_of_kth_neighbour") if m in metrics
            ],
        )


def _mean_top_similarity(t: EmbeddingTable, index: np.ndarray, k: int, max_queries: int = 1000) -> float:
    """Mean cosine similarity of the k-th neighbour: how tight neighbourhoods are."""
    unit = unit_rows(t.vectors[index])
    q = unit[:: max(1, len(unit) // max_queries)]
    kk = min(k + 1, unit.shape[0])
    block = max(1, int(2e7 // max(len(unit), 1)))  # queries per block: ~80 MB of similarities at a time
    part = [-np.partition(-(q[s : s + block] @ unit.T), kk - 1, axis=1)[:, kk - 1] for s in range(0, len(q), block)]
    return float(np.concatenate(part).mean())


@hookimpl
def embedlab_register_analyses(register):
    register(NeighborsAnalysis())
