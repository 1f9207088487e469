"""``umap``: a 2-D UMAP map of each embedding table, with recorded parameters.

The speed/reproducibility trade-off (umap-learn runs single-threaded whenever it is given a
``random_state``; measured on 2 cores, 10,000 x 40 took 51 s seeded and 7.7 s unseeded):

- up to ``--umap-seeded-max`` points (default 5,000): seeded, so the same run gives the same
  map on the same machine;
- above that: unseeded and parallel (all cores), 200 epochs and a PCA initialisation: the
  layout varies slightly between invocations, and the report says so;
- above ``--umap-max-points`` (default 50,000): a seeded random sample of that many points is
  mapped, and the report says how many of how many.

Neighbours are exact wherever that is cheap: a vectorised distance matrix below 4,096 points
(where umap-learn would loop over pairs in Python) and blocked matrix products up to 100,000
(where umap-learn would compile pynndescent's NN-descent, ~50 s of numba that cannot be
cached). umap-learn's own numba code is compiled once into numba's on-disk cache (see
:func:`import_umap`), so only the first map after an install pays its ~12 s of compilation.

Every choice is stated in the result's summary and recorded in its ``parameters`` table.
"""
from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit.selection import (MIN_COUNT, SEED, TOP_N, color_column, count_column, hover_columns, labels_meaningful,
                      neighbour_agreement, plural, select_entities)

DEFAULT_SEEDED_MAX = 5_000
DEFAULT_MAX_POINTS = 50_000
MIN_ROWS = 50  # below this a UMAP map says nothing a PCA plot does not
EXACT_MAX = 4_095  # umap-learn's own limit for exact (rather than approximate) neighbours
KNN_EXACT_MAX = 100_000  # above this NN-descent's one-off compile is cheaper than n^2 products
VECTORISED_METRICS = {"cosine", "euclidean", "l2", "manhattan", "l1", "cityblock", "correlation", "chebyshev"}


def umap_layout(vectors: np.ndarray, *, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "cosine",
                seed: int = 0, seeded_max: int = DEFAULT_SEEDED_MAX) -> tuple[np.ndarray, dict[str, Any]]:
    """2-D UMAP coordinates (float32) and the parameters actually used.

    Seeded (reproducible, one thread) up to ``seeded_max`` points; unseeded and parallel above.
    """
    umap = import_umap()
    n = len(vectors)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {n}")
    seeded = n <= seeded_max
    params: dict[str, Any] = {
        "n_neighbors": int(min(n_neighbors, n - 1)), "min_dist": float(min_dist), "metric": metric,
        "n_components": 2, "random_state": int(seed) if seeded else None,
        "n_jobs": 1 if seeded else (os.cpu_count() or 1),
        "init": "spectral" if seeded else "pca",
        "n_epochs": None if seeded else 200, "umap_version": umap.__version__, "points": n,
    }
    kwargs = {k: params[k] for k in ("n_neighbors", "min_dist", "metric", "n_components", "random_state",
                                     "n_jobs", "init", "n_epochs")}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n_jobs/random_state notes, disconnected-graph notes
        x = np.asarray(vectors, dtype=np.float32)
        if n <= EXACT_MAX and metric in VECTORISED_METRICS:
            # the same exact neighbours umap would find, without its per-pair Python loop
            kwargs["metric"] = "precomputed"
            x = exact_distances(x, metric)
            params["neighbours"] = "exact (full distance matrix)"
        elif n <= KNN_EXACT_MAX and metric in ("cosine", "euclidean"):
            # exact k nearest neighbours by blocked matrix products: faster than compiling
            # pynndescent's NN-descent, which numba cannot cache (~50 s on 2 cores)
            kwargs["precomputed_knn"] = exact_knn(x, params["n_neighbors"], metric)
            params["neighbours"] = "exact (blocked matrix products)"
        else:
            params["neighbours"] = "approximate (NN-descent)"
        coords = umap.UMAP(**kwargs).fit_transform(x)
    params["seconds"] = round(time.perf_counter() - t0, 2)
    coords = np.asarray(coords, dtype=np.float32)
    if not np.isfinite(coords).all():
        raise ValueError("UMAP produced non-finite coordinates (degenerate input vectors?)")
    return coords, params


def exact_distances(x: np.ndarray, metric: str) -> np.ndarray:
    """The full distance matrix, vectorised, for the tables umap-learn searches exhaustively.

    Below 4,096 points umap-learn computes exact distances through scikit-learn with its own
    numba metric called once per pair from Python (about 5 s for 1,000 points); scikit-learn's
    vectorised metrics give the same matrix in milliseconds.
    """
    from sklearn.metrics import pairwise_distances

    d = pairwise_distances(np.asarray(x, dtype=np.float64), metric=metric)
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, None).astype(np.float32)


def exact_knn(x: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(indices, distances) of each row's ``k`` nearest rows, itself first, exactly.

    Blocked float32 matrix products and a top-k per block (torch, already an embedlab
    dependency): 60,000 x 40 takes about 25 s of CPU, memory stays near 200 MB.
    """
    import torch

    v = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    n = v.shape[0]
    k = min(k, n)
    if metric == "cosine":
        v = torch.nn.functional.normalize(v, dim=1)
    sq = (v * v).sum(1)
    block = max(256, int(5e7 // max(n, 1)))
    idx, dist = np.empty((n, k), np.int64), np.empty((n, k), np.float32)
    with torch.no_grad():
        for s in range(0, n, block):
            prod = v[s:s + block] @ v.T
            if metric == "cosine":
                score = prod  # larger is nearer
            else:
                score = 2 * prod - sq[None, :] - sq[s:s + block, None]  # minus squared distance
            top, at = torch.topk(score, k, dim=1)
            idx[s:s + block] = at.numpy()
            d = (1 - top) if metric == "cosine" else (-top).clamp_min(0).sqrt()
            dist[s:s + block] = d.clamp_min(0).numpy()
    rows = np.arange(n)
    dist[idx == rows[:, None]] = 0.0  # float32 cancellation leaves ~1e-3 for a row to itself
    own = idx[:, 0] != rows  # duplicates may tie with the row itself: put the row first
    if own.any():
        for r in np.flatnonzero(own):
            where = np.flatnonzero(idx[r] == r)
            j = where[0] if len(where) else k - 1
            idx[r, 1:j + 1], dist[r, 1:j + 1] = idx[r, :j].copy(), dist[r, :j].copy()
            idx[r, 0], dist[r, 0] = r, 0.0
    return idx, dist


def import_umap():
    """Import umap-learn with its numba functions compiled to an on-disk cache.

    umap-learn compiles ~12 s of numba code on the first call in every process, and marks
    almost none of it ``cache=True``. Importing it while ``numba.njit``/``numba.jit`` default
    to ``cache=True`` stores the compiled code beside the module (numba's usual cache, keyed
    on the source file and the CPU; or ``NUMBA_CACHE_DIR``), so later processes load it in
    well under a second. Decorators that set ``cache`` themselves are left alone; functions
    numba cannot cache are simply compiled as before. Nothing changes if umap is already
    imported.
    """
    import sys

    if "umap" in sys.modules:
        return sys.modules["umap"]
    import numba

    njit, jit = numba.njit, numba.jit

    def cached(decorator):
        def wrapper(*args, **kwargs):
            kwargs.setdefault("cache", True)
            return decorator(*args, **kwargs)
        return wrapper

    numba.njit, numba.jit = cached(njit), cached(jit)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import umap
    finally:
        numba.njit, numba.jit = njit, jit
    return umap


def sample_rows(index: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of ``max_points`` of ``index`` (sorted), or all of it."""
    if max_points <= 0 or len(index) <= max_points:
        return index
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(index, size=max_points, replace=False))


class UMAPAnalysis(Analysis):
    name = "umap"
    title = "UMAP projection"
    description = ("A 2-D UMAP map (umap-learn) of each table, coloured by a category, with hover labels. "
                   "Seeded up to --umap-seeded-max points, parallel above; larger tables than "
                   "--umap-max-points are sampled (said in the report).")
    options = [TOP_N, MIN_COUNT, SEED,
               AnalysisOption("umap_neighbors", int, 15, "UMAP n_neighbors (local vs global structure)."),
               AnalysisOption("umap_min_dist", float, 0.1, "UMAP min_dist (how tightly points pack)."),
               AnalysisOption("umap_metric", str, "cosine", "Distance between embedding vectors."),
               AnalysisOption("umap_seeded_max", int, DEFAULT_SEEDED_MAX,
                              "Largest map computed seeded (reproducible but single-threaded)."),
               AnalysisOption("umap_max_points", int, DEFAULT_MAX_POINTS,
                              "Map at most this many points (a seeded random sample above it; 0: no limit).")]

    def applies_to(self, run: Run) -> list[str]:
        return [name for name, t in run.tables.items() if len(t) >= MIN_ROWS and t.dim >= 2]

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t: EmbeddingTable = run.table(table)
        sel = select_entities(t, options.get("top_n"), options.get("min_count"))
        seed = int(options.get("seed") if options.get("seed") is not None else 0)
        max_points = int(options.get("umap_max_points") if options.get("umap_max_points") is not None
                         else DEFAULT_MAX_POINTS)
        rows = sample_rows(sel.index, max_points, seed)
        sampled = len(rows) < len(sel)
        coords, params = umap_layout(
            t.vectors[rows], n_neighbors=options.get("umap_neighbors") or 15,
            min_dist=options.get("umap_min_dist") if options.get("umap_min_dist") is not None else 0.1,
            metric=options.get("umap_metric") or "cosine", seed=seed,
            seeded_max=options.get("umap_seeded_max") if options.get("umap_seeded_max") is not None
            else DEFAULT_SEEDED_MAX)
        params["sampled"] = sampled
        params["sample_seed"] = seed if sampled else None
        noun = plural(t.name, len(rows))
        parts = [f"UMAP of {sel.description}."]
        if sampled:
            parts.append(f"The map shows a random sample of {len(rows):,} of these {len(sel):,} "
                         f"{plural(t.name, len(sel))} (seed {seed}; --umap-max-points {max_points:,}), so that a "
                         f"large table does not "
                         f"take minutes; raise --umap-max-points (0: no limit) to map them all.")
        how = (f"{params['metric']} metric, n_neighbors {params['n_neighbors']}, min_dist {params['min_dist']}, "
               f"{params['neighbours']} neighbours, umap-learn {params['umap_version']}")
        if params["random_state"] is not None:
            parts.append(f"Parameters: {how}, random_state {params['random_state']} — reproducible on this machine "
                         f"(umap-learn runs single-threaded when seeded; maps of up to "
                         f"{options.get('umap_seeded_max') or DEFAULT_SEEDED_MAX:,} points are seeded).")
        else:
            parts.append(f"Parameters: {how}, unseeded on {params['n_jobs']} threads with PCA initialisation and "
                         f"200 epochs, because {len(rows):,} points exceed the seeded limit "
                         f"(--umap-seeded-max): seeded umap-learn is single-threaded and several times slower. "
                         f"The layout varies slightly between invocations; distances within it do not carry "
                         f"meaning, only neighbourhoods do.")
        metrics: dict[str, float] = {"n_points": float(len(rows)), "n_selected": float(len(sel)),
                                     "n_table": float(sel.n_total), "seeded": float(params["random_state"] is not None),
                                     "sampled": float(sampled), "umap_seconds": float(params["seconds"])}
        # How faithful is the map? Share of each point's 10 nearest neighbours (in the
        # embedding) that stay among its 10 nearest on the map.
        metrics["neighbours_kept_10"] = neighbourhood_kept(t.vectors[rows], coords, params["metric"], seed=seed)
        parts.append(f"On average {100 * metrics['neighbours_kept_10']:.0f}% of an entity's 10 nearest neighbours "
                     f"in the embedding are among its 10 nearest on the map.")
        color = color_column(t)
        if color and len(rows) >= 10:
            groups = t.metadata[color].to_numpy()[rows]
            agree, chance = neighbour_agreement(coords, groups, k=10, seed=seed)
            metrics[f"knn_same_{color}"] = agree
            metrics[f"chance_same_{color}"] = chance
            parts.append(f"On the map, {100 * agree:.0f}% of an entity's 10 nearest neighbours share its {color} "
                         f"(chance: {100 * chance:.0f}%).")
        meaningful = labels_meaningful(t)
        plot = t.frame().iloc[rows].reset_index(drop=True)
        if not meaningful:
            plot["label"] = [f"{t.name} {k}" for k in t.keys[rows]]
        plot["UMAP 1"], plot["UMAP 2"] = coords[:, 0], coords[:, 1]
        ptable = pd.DataFrame({"parameter": list(params), "value": [str(v) for v in params.values()]})
        return AnalysisResult(self.name, table, self.title, summary=" ".join(parts), metrics=metrics,
                              tables={"parameters": ptable},
                              data={"plot": plot, "hover": hover_columns(t), "color": color, "noun": noun,
                                    "count": count_column(t)})

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import scatter

        d = result.data
        plot = d["plot"]
        title = f"{result.table}: UMAP ({len(plot):,} {d['noun']})"
        return [scatter(plot, "UMAP 1", "UMAP 2", title, hover=d["hover"], color_by=d["color"])]


def neighbourhood_kept(vectors: np.ndarray, coords: np.ndarray, metric: str, k: int = 10,
                       max_queries: int = 2000, seed: int = 0) -> float:
    """Mean share of the ``k`` nearest neighbours in the embedding kept on the 2-D map."""
    from sklearn.neighbors import NearestNeighbors

    n = len(vectors)
    if n <= k + 1:
        return float("nan")
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(n, size=min(max_queries, n), replace=False))
    hi = NearestNeighbors(n_neighbors=k + 1, metric=metric,
                          algorithm="brute" if metric == "cosine" else "auto").fit(vectors)
    lo = NearestNeighbors(n_neighbors=k + 1).fit(coords)
    _, a = hi.kneighbors(vectors[q])
    _, b = lo.kneighbors(coords[q])
    kept = [len((set(x) - {i}) & (set(y) - {i})) / k for x, y, i in zip(a, b, q)]
    return float(np.mean(kept))


@hookimpl
def embedlab_register_analyses(register):
    register(UMAPAnalysis())
