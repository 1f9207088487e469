"""Nearest neighbours of an entity (cosine or euclidean), and finding the entity a person names.

The one place this is computed: the ``neighbors`` analysis, the ``embedlab neighbors``
command and :meth:`embedlab.Run.neighbors` all call :func:`nearest` and :func:`find_entity`.
Entities are found by :meth:`embedlab.EmbeddingTable.find`'s rules (case-insensitive and
forgiving; see its docstring).
"""

from __future__ import annotations

import contextlib
import os
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


def nearest(
    table: EmbeddingTable, row: int, k: int, candidates: np.ndarray | None = None, metric: str = "cosine"
) -> pd.DataFrame:
    """The ``k`` entities nearest to ``row`` among ``candidates`` (default: all), the entity
    itself excluded: the most cosine-similar, or the closest by euclidean distance over the raw
    vectors; columns: rank, key, label, cosine (or distance) and :func:`annotation_columns`.
    Ties are broken by row order (stable)."""
    found, score = knn_lists(table.vectors, k, candidates, metric, queries=[row])
    keep = found[0] >= 0
    rows, score = found[0][keep].astype(np.int64), score[0][keep]
    out = pd.DataFrame(
        {
            "rank": np.arange(1, len(rows) + 1),
            "key": table.keys[rows],
            "label": table.labels[rows],
            ("cosine" if metric == "cosine" else "distance"): score.astype(float),
        }
    )
    for col in annotation_columns(table):
        out[col] = table.metadata[col].to_numpy()[rows]
    return out


def knn_threads() -> int:
    """Threads for :func:`knn_lists` by default: the cores the load average leaves idle, at least
    one. On a busy machine OpenMP threads spin waiting for each other (benchmarks/knn.py, load
    ~10 on 2 cores: faiss with 2 threads used 2.5x the CPU of one thread and took longer)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # no load average (Windows): every core
        return cores
    return int(max(1, min(cores, round(cores - load))))


@contextlib.contextmanager
def _threads(n: int | None):
    """torch's intra-op threads set to ``n`` for a block (None: left alone), then restored."""
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _exact_keys(v: np.ndarray, q: np.ndarray, at: np.ndarray, unit: bool) -> np.ndarray:
    """Exact float64 keys (smaller is nearer: minus the cosine, or the squared distance) of the
    rows ``at`` (queries x any) for the query rows ``q``, each pair computed from the two rows
    alone in the same order wherever it is needed, so equal vectors tie exactly."""
    qv = v[q].astype(np.float64)[:, None, :]
    c = v[at.reshape(len(q), -1)].astype(np.float64)
    if unit:
        den = np.sqrt((c * c).sum(-1)) * np.sqrt((qv * qv).sum(-1))
        out = -np.where(den > 0, (c * qv).sum(-1) / np.where(den > 0, den, 1.0), 0.0)
    else:
        diff = c - qv
        out = (diff * diff).sum(-1)
    return out.reshape(at.shape)


def knn_engine(engine: str | None = None) -> str:
    """The shortlist engine :func:`knn_lists` uses: ``faiss`` (faiss-cpu's flat indexes, when
    installed: ``pip install embedlab[faiss]``) or ``torch`` (always there); None: faiss if it
    imports. The lists are the same either way (the shortlist is re-ranked exactly)."""
    if engine not in (None, "faiss", "torch"):
        raise UsageError(f"knn engine {engine!r}: choose faiss or torch")
    if engine is None:
        try:
            import faiss  # noqa: F401
        except ImportError:
            return "torch"
        return "faiss"
    return engine


def _shortlists(engine: str, base32: np.ndarray, unit: bool, p: int, threads: int | None):
    """A function (query vectors n x d float32, own positions in the base or -1) -> (approximate
    keys n x p float64, positions n x p): each query's ``p`` best base rows by float32 products,
    its own position never among them (the ``faiss`` or ``torch`` engine)."""
    if engine == "faiss":
        import faiss

        index = (faiss.IndexFlatIP if unit else faiss.IndexFlatL2)(base32.shape[1])
        index.add(base32)

        def faiss_short(qv, own):
            before = faiss.omp_get_max_threads()
            faiss.omp_set_num_threads(int(threads))
            try:
                val, at = index.search(qv, p)
            finally:
                faiss.omp_set_num_threads(before)
            val = -val.astype(np.float64) if unit else val.astype(np.float64)
            at = at.astype(np.int64)
            val[(at == own[:, None]) | (at < 0)] = np.inf
            return val, np.maximum(at, 0)

        return faiss_short
    import torch

    base = torch.from_numpy(base32)
    sq = (base.double() * base.double()).sum(1).float()

    def torch_short(qv, own):
        with _threads(threads), torch.no_grad():
            q = torch.from_numpy(qv)
            if unit:
                key = torch.mm(q, base.T).neg_()
            else:  # the squared distance less |q|^2 (the same order), added back below
                key = torch.addmm(sq[None, :], q, base.T, beta=1, alpha=-2)
            has = np.flatnonzero(own >= 0)
            key[torch.from_numpy(has), torch.from_numpy(own[has])] = float("inf")  # never itself
            val, at = torch.topk(key, p, dim=1, largest=False, sorted=False)
        val = val.numpy().astype(np.float64)
        if not unit:
            val += (qv.astype(np.float64) ** 2).sum(1)[:, None]
        return val, at.numpy().astype(np.int64)

    return torch_short


def knn_lists(
    vectors: np.ndarray,
    k: int,
    candidates: np.ndarray | None = None,
    metric: str = "cosine",
    progress=None,
    queries: np.ndarray | None = None,
    threads: int | None = None,
    engine: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Each query row's ``k`` nearest among ``candidates`` (default: every row), itself excluded,
    exactly: (rows len(queries) x k int32, -1 where fewer; scores float64, the cosine or the
    euclidean distance). The one place the rule is computed (:func:`nearest`, ``embedlab
    neighbors``, the report's precomputed lists): exact float64 scores, most similar (closest)
    first, ties to the lower row.

    A shortlist of k + 6 others per query from float32 products (faiss-cpu's flat index when it
    is installed, else blocked torch products and a top-k: :func:`knn_engine`; measured in
    ``benchmarks/knn.py``), re-ranked in float64. A query whose k-th exact score is within the
    float32 error bound of the shortlist's edge (equal or nearly equal vectors) is scored
    exactly against every candidate, so the lists do not depend on the engine.
    ``queries``: the rows to list (default: all); ``threads``: torch / faiss threads (default:
    :func:`knn_threads`, the idle cores); ``progress(done, total)`` is called after each block.
    """
    if metric not in METRICS:
        raise UsageError(f"metric {metric!r}: choose one of {', '.join(METRICS)}")
    engine = knn_engine(engine)
    threads = int(threads) if threads else knn_threads()
    v = np.asarray(vectors)
    v = v.reshape(len(v), -1)
    n, d = v.shape
    cand = np.arange(n, dtype=np.int64) if candidates is None else np.asarray(candidates, dtype=np.int64)
    qrows = np.arange(n, dtype=np.int64) if queries is None else np.asarray(queries, dtype=np.int64).reshape(-1)
    unit = metric == "cosine"
    k, m = int(k), len(cand)
    rows = np.full((len(qrows), max(k, 0)), -1, np.int32)
    scores = np.full((len(qrows), max(k, 0)), np.nan, np.float64)
    if k <= 0 or m == 0 or len(qrows) == 0:
        return rows, scores
    pos = np.full(n, -1, np.int64)
    pos[cand] = np.arange(m)
    p = min(k + 7, m)  # k + 6 others, and room for the query itself
    eps = 4.0 * (d + 4) * 2.0**-24  # float32 products' error bound (relative), with room

    def f32(r: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(unit_rows(v[r]) if unit else v[r], dtype=np.float32)

    base32 = f32(cand)
    if not unit:  # the error of |q|^2 + |c|^2 - 2 q.c grows with the norms
        sq = (np.asarray(v[qrows], dtype=np.float64) ** 2).sum(1)
        top = float((base32.astype(np.float64) ** 2).sum(1).max())

    shortlist = _shortlists(engine, base32, unit, p, threads)
    # torch: a block of products of ~16M floats; faiss blocks its own, fewer calls are faster
    block = 16384 if engine == "faiss" else int(max(16, min(4096, 2**24 // m)))
    for s in range(0, len(qrows), block):
        q = qrows[s : s + block]
        val, at = shortlist(f32(q), pos[q])
        found = cand[at]
        exact = _exact_keys(v, q, found, unit)
        exact[found == q[:, None]] = np.inf
        order = np.lexsort((found, exact), axis=-1)[:, :k]
        top_exact, top_rows = np.take_along_axis(exact, order, 1), np.take_along_axis(found, order, 1)
        # a candidate left out has an approximate key >= the shortlist's largest: exact >= that - slack
        edge = np.where(np.isfinite(val), val, -np.inf).max(1)
        slack = eps if unit else 2 * eps * (sq[s : s + block] + top)
        doubt = np.flatnonzero((p < m) & (top_exact[:, -1] >= edge - slack))
        for j in doubt:  # a tie, or nearly, at the edge: every candidate, exactly
            ex = _exact_keys(v, q[j : j + 1], cand[None, :], unit)[0]
            ex[cand == q[j]] = np.inf
            o = np.lexsort((cand, ex))[:k]
            top_exact[j, : len(o)], top_rows[j, : len(o)] = ex[o], cand[o]
        ok = np.isfinite(top_exact)
        w = top_rows.shape[1]
        rows[s : s + len(q), :w] = np.where(ok, top_rows, -1)
        scores[s : s + len(q), :w] = np.where(ok, -top_exact if unit else np.sqrt(np.maximum(top_exact, 0)), np.nan)
        if progress is not None:
            progress(min(len(qrows), s + block), len(qrows))
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
        notes.append(f"{query!r} also names an entity of table {', '.join(tied[1:])} (choose with --table / table=)")
    return Found(name, match.row, match, "; ".join(notes))


def neighbors(
    run: Run,
    query: str,
    k: int = 10,
    table: str | None = None,
    top_n: int | None = 0,
    min_count: int | None = None,
    metric: str = "cosine",
) -> pd.DataFrame:
    """The ``k`` nearest neighbours (cosine) of the entity ``query`` names (see
    :func:`find_entity`), among the entities kept by ``top_n``/``min_count`` (default: all).

    The frame's ``attrs`` say what was asked: ``table``, ``entity`` (key and label),
    ``matched`` (how the query matched), ``note`` and ``candidates`` (a sentence).
    """
    found = find_entity(run, query, table)
    t = run.table(found.table)
    sel = select_entities(t, top_n, min_count)
    frame = nearest(t, found.row, k, sel.index, metric)
    frame.attrs.update(
        {
            "table": found.table,
            "entity": {"key": jsonable(t.keys[found.row]), "label": str(t.labels[found.row])},
            "matched": found.match.how,
            "note": found.note,
            "candidates": sel.description,
        }
    )
    return frame


def run_neighbors(
    run: Run, query: str, k: int = 10, table: str | None = None, top_n: int | None = 0, min_count: int | None = None
) -> pd.DataFrame:
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
