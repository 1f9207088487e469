"""Nearest neighbours of an entity (cosine or euclidean), and finding the entity a person names.

The one place this is computed: the ``neighbors`` analysis, the ``embedlab neighbors``
command and :meth:`embedlab.Run.neighbors` all call :func:`nearest` and :func:`find_entity`.
Entities are found by :meth:`embedlab.EmbeddingTable.find`'s rules (case-insensitive and
forgiving; see its docstring).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedlab.errors import UsageError
from embedlab.io.strictjson import jsonable
from embedlab.run import EmbeddingTable, Match
from embedlab.toolkit.selection import color_column, count_column, labels_meaningful, select_entities, target_column

if TYPE_CHECKING:
    from embedlab.run import Run


#: The neighbour lists' default minimum count, shared by ``embedlab neighbors --min-count`` and
#: the report's explorer: entities observed only a few times keep embeddings near their random
#: start and would crowd every list (a film rated twice as Toy Story's nearest).
__all__ = ["find_entity", "Found", "nearest", "neighbors", "unit_rows"]

DEFAULT_MIN_COUNT = 10
METRICS = ("cosine", "euclidean")


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.where(norms > 0, norms, 1.0)


def annotation_columns(table: EmbeddingTable) -> list[str]:
    """The metadata columns a neighbour list shows: the category, count and mean target, and
    for tables whose labels say nothing (users) a few more that say who they are."""
    cols = [c for c in (color_column(table), count_column(table), target_column(table)) if c]
    if not labels_meaningful(table):
        cols += [c for c in table.metadata.columns if c not in cols and c not in ("key", "label")][:3]
    return list(dict.fromkeys(cols))


def nearest(table: EmbeddingTable, row: int, k: int, candidates: np.ndarray | None = None,
            metric: str = "cosine") -> pd.DataFrame:
    """The ``k`` entities nearest to ``row`` among ``candidates`` (default: all), the entity
    itself excluded: the most cosine-similar, or the closest by euclidean distance over the raw
    vectors; columns: rank, key, label, cosine (or distance) and :func:`annotation_columns`.
    Ties are broken by row order (stable)."""
    if metric not in METRICS:
        raise UsageError(f"metric {metric!r}: choose one of {', '.join(METRICS)}")
    cand = np.arange(len(table)) if candidates is None else np.asarray(candidates)
    cand = cand[cand != row]
    if metric == "cosine":
        score = unit_rows(table.vectors[cand]) @ unit_rows(table.vectors[row:row + 1])[0]
        order_by = -score
    else:
        diff = np.asarray(table.vectors[cand], dtype=np.float32) - np.asarray(table.vectors[row], dtype=np.float32)
        score = np.sqrt((diff * diff).sum(1))
        order_by = score
    k = min(int(k), len(cand))
    top = np.argpartition(order_by, k - 1)[:k] if 0 < k < len(cand) else np.arange(len(cand))[:max(k, 0)]
    top = top[np.lexsort((cand[top], order_by[top]))]
    rows = cand[top]
    out = pd.DataFrame({"rank": np.arange(1, len(rows) + 1), "key": table.keys[rows],
                        "label": table.labels[rows],
                        ("cosine" if metric == "cosine" else "distance"): score[top].astype(float)})
    for col in annotation_columns(table):
        out[col] = table.metadata[col].to_numpy()[rows]
    return out


def knn_lists(vectors: np.ndarray, k: int, candidates: np.ndarray, metric: str = "cosine",
              progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Every row's ``k`` nearest among ``candidates`` (itself excluded), exactly, by
    :func:`nearest`'s rule: (rows n x k int32, -1 where fewer; scores n x k float32).

    Blocked float32 matrix products and a top-(k+2) per block (torch, as
    :func:`embedlab.toolkit.projection.exact_knn`; memory ~ 50M scores per block), then the
    exact order and ties (by row) of those few, as :func:`nearest` breaks them.
    """
    import torch

    v = np.asarray(vectors, dtype=np.float32)
    cand = np.asarray(candidates, dtype=np.int64)
    n = len(v)
    unit = metric == "cosine"
    base = torch.from_numpy(np.ascontiguousarray(unit_rows(v[cand]) if unit else v[cand]))
    sq = (base * base).sum(1)
    pos = np.full(n, -1, np.int64)
    pos[cand] = np.arange(len(cand))
    kk = min(int(k) + 3, len(cand))
    rows = np.full((n, k), -1, np.int32)
    scores = np.full((n, k), np.nan, np.float32)
    block = max(64, int(5e7 // max(len(cand), 1)))
    with torch.no_grad():
        for s in range(0, n, block):
            q = torch.from_numpy(np.ascontiguousarray(unit_rows(v[s:s + block]) if unit else v[s:s + block]))
            prod = q @ base.T
            key = -prod if unit else ((q * q).sum(1)[:, None] + sq[None, :] - 2 * prod).clamp_min(0)
            own = pos[s:s + len(q)]
            has = np.flatnonzero(own >= 0)
            key[torch.from_numpy(has), torch.from_numpy(own[has])] = float("inf")  # never itself
            val, at = torch.topk(key, kk, dim=1, largest=False)
            val, at = val.numpy(), at.numpy()
            for j in range(len(q)):  # exact order and ties (by row) as nearest() breaks them
                o = np.lexsort((cand[at[j]], val[j]))
                o = o[np.isfinite(val[j][o])][:k]
                rows[s + j, :len(o)] = cand[at[j][o]]
                scores[s + j, :len(o)] = -val[j][o] if unit else np.sqrt(val[j][o])
            if progress is not None:
                progress(min(n, s + block), n)
    return rows, scores


@dataclass(frozen=True)
class Found:
    """An entity found in a run: its ``table`` name, ``row``, the :class:`~embedlab.run.Match`
    and a ``note`` for the person (a label shared by several entities, a query that also names
    an entity of another table); empty when there is nothing to explain."""

    table: str
    row: int
    match: Match
    note: str = ""


def find_entity(run: Run, query: str, table: str | None = None) -> Found:
    """The entity ``query`` names in ``table`` (default: any table of the run).

    Each table is searched by :meth:`EmbeddingTable.find`'s rules; the table where an earlier
    rule matches wins (an exact title beats a user key that merely resembles it), ties go to
    the run's table order, and the note says which other table also matched (``--table`` picks
    it). Nothing found: a UsageError with each table's suggestions, labels first.
    """
    names = [table] if table else run.table_names
    found = []
    for name in names:
        hit = run.table(name)._matches(query)
        if hit is not None:
            found.append((hit[0], name))
    if not found:
        hints = []
        for name in names:
            ideas = run.table(name).suggestions(query)
            if ideas:
                hints.append(f"{name}: {'; '.join(ideas)}")
        where = f"table {table!r}" if table else f"tables {', '.join(names)}"
        hint = (" — did you mean " + " | ".join(hints)) if hints else ""
        raise UsageError(f"no entity with label or key {query!r} in {where}{hint}")
    best = min(stage for stage, _ in found)
    tied = [name for stage, name in found if stage == best]
    name = tied[0]
    match = run.table(name).find(query)
    notes = [match.note] if match.note else []
    if len(tied) > 1:
        notes.append(f"{query!r} also names an entity of table {', '.join(tied[1:])} "
                     f"(choose with --table / table=)")
    return Found(name, match.row, match, "; ".join(notes))


def neighbors(run: Run, query: str, k: int = 10, table: str | None = None, top_n: int | None = 0,
              min_count: int | None = None, metric: str = "cosine") -> pd.DataFrame:
    """The ``k`` nearest neighbours (cosine) of the entity ``query`` names (see
    :func:`find_entity`), among the entities kept by ``top_n``/``min_count`` (default: all).

    The frame's ``attrs`` say what was asked: ``table``, ``entity`` (key and label),
    ``matched`` (how the query matched), ``note`` and ``candidates`` (a sentence).
    """
    found = find_entity(run, query, table)
    t = run.table(found.table)
    sel = select_entities(t, top_n, min_count)
    frame = nearest(t, found.row, k, sel.index, metric)
    frame.attrs.update({"table": found.table, "entity": {"key": jsonable(t.keys[found.row]),
                                                          "label": str(t.labels[found.row])},
                        "matched": found.match.how, "note": found.note, "candidates": sel.description})
    return frame


def run_neighbors(run: Run, query: str, k: int = 10, table: str | None = None, top_n: int | None = 0,
                  min_count: int | None = None) -> pd.DataFrame:
    """``run.neighbors("star wars", k=10)``: the ``k`` nearest neighbours (cosine) of the
    entity ``query`` names (a label or key, found by :meth:`EmbeddingTable.find`'s forgiving
    rules; ``table`` narrows the search) among the entities kept by ``top_n``/``min_count``
    (default: all). A DataFrame: rank, key, label, cosine and the table's main annotations;
    its ``attrs`` say which entity was found and how. A choice among entities sharing a label
    is explained in a warning."""
    frame = neighbors(run, query, k, table, top_n, min_count)
    if frame.attrs.get("note"):
        import warnings

        warnings.warn(frame.attrs["note"], stacklevel=2)
    return frame
