"""Coordinates of embedding vectors: PCA, t-SNE and UMAP, shared by the analyses and by export.

One place computes the coordinates a report shows, so that an exported CSV (``embedlab export
--format csv``) and the ``pca`` and ``umap`` analyses' plots agree: :func:`coordinates` is what
the export writes, built from the same :func:`pca_project` and :func:`umap_project` the
analyses call; the ``tsne`` analysis's map comes from :func:`tsne_project` (``export --tsne``).

t-SNE (scikit-learn's Barnes-Hut ``TSNE``): 2 components, perplexity ``min(30, max(2, (n - 1) /
3))`` (sklearn needs it below the point count; 3.7 for Rossmann's 12 states), learning rate
"auto" (n / 12, at least 50), PCA initialisation (Kobak & Berens: steadier global layout), 1,000
iterations, the cosine metric by default, ``random_state`` = the seed (reproducible; with PCA
initialisation the seed barely moves the layout), one OpenMP thread, one seeded
random sample of :data:`DEFAULT_TSNE_MAX_POINTS` points above that (measured on 2 shared cores:
1,115 x 40 points take about 5 s, 5,000 about 20 s).

UMAP's speed/reproducibility trade-off (umap-learn runs single-threaded whenever it is given a
``random_state``; measured on 2 cores, 10,000 x 40 took 51 s seeded and 7.7 s unseeded):

- up to ``seeded_max`` points (default :data:`DEFAULT_SEEDED_MAX`): seeded, so the same table
  gives the same map on the same machine;
- above that: unseeded and parallel (all cores), 200 epochs and a PCA initialisation;
- above ``max_points`` (default :data:`DEFAULT_MAX_POINTS`): a seeded random sample of that
  many points is mapped.

Neighbours are exact wherever that is cheap: a vectorised distance matrix below 4,096 points
(where umap-learn would loop over pairs in Python) and blocked matrix products up to 100,000
(where umap-learn would compile pynndescent's NN-descent, ~50 s of numba that cannot be
cached). umap-learn's own numba code is compiled once into numba's on-disk cache (see
:func:`import_umap`).

umap, scikit-learn, scipy and torch are imported inside the functions that use them: the CLI
imports this module through the plugins and must start without them (tests/test_startup.py).

Public names: ``__all__``; the plugin guide documents each with an example:
``embedlab plugins guide "embedlab.toolkit.projection"``.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

from embedlab.io.jit import numba_threads
from embedlab.run import EmbeddingTable
from embedlab.toolkit.options import DEFAULT_TOP_N
from embedlab.toolkit.selection import Selection, select_entities, spearman, target_column
from embedlab.toolkit.stats import pad_columns

__all__ = [
    "project_2d",
    "pca_project",
    "pca_columns",
    "umap_project",
    "umap_columns",
    "neighbourhood_kept",
    "coordinates",
    "tsne_project",
    "tsne_columns",
    "PCA_COMPONENTS",
    "DEFAULT_SEEDED_MAX",
    "DEFAULT_MAX_POINTS",
    "DEFAULT_TSNE_MAX_POINTS",
    "TSNE_PERPLEXITY",
]

PCA_COMPONENTS = 3  # components the export writes (the pca analysis's default --n-components)
DEFAULT_SEEDED_MAX = 5_000
DEFAULT_MAX_POINTS = 50_000
EXACT_MAX = 4_095  # umap-learn's own limit for exact (rather than approximate) neighbours
KNN_EXACT_MAX = 100_000  # above this NN-descent's one-off compile is cheaper than n^2 products
VECTORISED_METRICS = {"cosine", "euclidean", "l2", "manhattan", "l1", "cityblock", "correlation", "chebyshev"}


DEFAULT_TSNE_MAX_POINTS = 5_000
TSNE_PERPLEXITY = 30.0
TSNE_ITERATIONS = 1000


def project_2d(vectors: np.ndarray, method: str = "pca", seed: int | None = 0, metric: str = "euclidean") -> np.ndarray:
    """A 2-D picture of the vectors: PCA (deterministic), t-SNE (:func:`tsne_layout`, the
    ``tsne`` analysis's map) or UMAP (seeded). A 1-D embedding gives its single coordinate and
    a zero second column."""
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    n = len(x)
    if method == "pca" or x.shape[1] == 1 or n < 4:
        c = x - x.mean(axis=0)
        if x.shape[1] == 1:
            return pad_columns(c, 2)
        u, s, _ = np.linalg.svd(c, full_matrices=False)
        out = pad_columns(u[:, :2] * s[:2], 2)
        # fix each axis's sign (largest |loading| positive) so pictures are stable across runs
        signs = np.sign(out[np.argmax(np.abs(out), axis=0), [0, 1]])
        return out * np.where(signs == 0, 1, signs)
    if method == "tsne":
        return tsne_layout(x, metric=metric, seed=0 if seed is None else int(seed))[0].astype(np.float64)
    if method == "umap":
        import umap

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            reducer = umap.UMAP(
                n_components=2,
                n_neighbors=int(max(2, min(15, n - 1))),
                metric=metric,
                init="spectral" if n > 30 else "random",
                random_state=seed,
            )
            return np.asarray(reducer.fit_transform(x), dtype=np.float64)
    raise ValueError(f"unknown projection {method!r}; use pca, tsne or umap")


# ---------------------------------------------------------------------------- PCA
def pca_fit(vectors: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(scores n x c, components c x k, explained variance ratio c, mean k) of centred vectors.

    In float64 through the k x k covariance's eigendecomposition (k = embedding size): exact
    and, for tall tables (60,000 x 40), far cheaper and steadier than an SVD of the whole
    matrix, whose threaded LAPACK call stalls on a busy 2-core machine. Wide inputs (n < k)
    use the SVD.
    """
    x = np.asarray(vectors)
    if not np.isfinite(x).all():  # a diverged run: LAPACK would fail with "did not converge"
        from embedlab.errors import DataError

        raise DataError(
            "the embedding vectors hold NaN or inf (the run's training diverged); there is "
            "nothing to project: train it again with a lower --lr"
        )
    mean = x.mean(axis=0, dtype=np.float64)
    # centred float64 rows a block at a time: a 1,000,000-row table never needs a float64 copy
    blocks = [slice(s, s + 65_536) for s in range(0, x.shape[0], 65_536)]
    if x.shape[0] >= x.shape[1]:
        cov = np.zeros((x.shape[1], x.shape[1]))
        for b in blocks:
            xc = x[b].astype(np.float64) - mean
            cov += xc.T @ xc
        evals, evecs = np.linalg.eigh(cov)
        order = np.argsort(evals)[::-1]
        var = np.clip(evals[order], 0, None)
        vt = evecs[:, order].T
    else:
        _, s, vt = np.linalg.svd(x.astype(np.float64) - mean, full_matrices=False)
        var = s**2
    total = float(var.sum()) or 1.0
    c = min(n_components, vt.shape[0])
    comps = vt[:c]
    scores = (
        np.concatenate([(x[b].astype(np.float64) - mean) @ comps.T for b in blocks]) if blocks else np.zeros((0, c))
    )
    return scores, comps, var[:c] / total, mean


def orient(scores: np.ndarray, comps: np.ndarray, reference: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, components), copies with each component's sign flipped so its high end goes
    with a higher ``reference`` (e.g. mean rating); without a reference, so that its longest
    tail is positive. SVD signs are arbitrary; fixing them makes reports comparable between
    runs."""
    scores, comps = scores.copy(), comps.copy()
    for i in range(scores.shape[1]):
        s = scores[:, i]
        rho = spearman(s, reference) if reference is not None else float("nan")
        flip = rho < 0 if np.isfinite(rho) else abs(s.min()) > abs(s.max())
        if flip:
            scores[:, i] *= -1
            comps[i] *= -1
    return scores, comps


def orientation_reference(table: EmbeddingTable, index: np.ndarray) -> np.ndarray | None:
    """The values :func:`orient` points components at, for rows ``index`` of ``table``: its
    mean target (:func:`~embedlab.toolkit.selection.target_column`), else its observation
    counts, else None."""
    tgt = target_column(table)
    if tgt:
        return table.metadata[tgt].to_numpy(dtype=float)[index]
    if table.count is not None:
        return np.asarray(table.count, dtype=float)[index]
    return None


def pca_project(
    table: EmbeddingTable,
    top_n: int | None = DEFAULT_TOP_N,
    min_count: int | None = None,
    n_components: int = PCA_COMPONENTS,
) -> tuple[Selection, np.ndarray, np.ndarray, np.ndarray]:
    """(selection, oriented scores n x c, components c x k, explained variance ratio c) of the
    entities :func:`~embedlab.toolkit.selection.select_entities` picks; ``c`` is
    ``n_components`` capped by the embedding size and the number of entities less one.

    Raises ValueError when fewer than 3 entities are selected.
    """
    sel = select_entities(table, top_n, min_count)
    if len(sel) < 3:
        raise ValueError(f"PCA needs at least 3 entities; {sel.description}")
    n_components = max(1, min(int(n_components), table.dim, len(sel) - 1))
    scores, comps, evr, _ = pca_fit(table.vectors[sel.index], n_components)
    scores, comps = orient(scores, comps, orientation_reference(table, sel.index))
    return sel, scores, comps, evr


def pca_columns(scores: np.ndarray) -> dict[str, np.ndarray]:
    """``{"PC1": ..., "PC2": ...}``: one float32 column per component of ``scores``, the names
    and precision the pca analysis plots and :func:`coordinates` returns."""
    return {f"PC{i + 1}": scores[:, i].astype(np.float32) for i in range(scores.shape[1])}


# ---------------------------------------------------------------------------- UMAP
def umap_layout(
    vectors: np.ndarray,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    seed: int = 0,
    seeded_max: int = DEFAULT_SEEDED_MAX,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(2-D UMAP coordinates n x 2 as float32, the parameters actually used).

    Seeded (reproducible, one thread) up to ``seeded_max`` points; unseeded and parallel above.
    The parameters record the metric, neighbour search, seed, threads, umap-learn's version
    and the seconds taken. Raises ValueError below 4 points or on non-finite coordinates.
    """
    umap = import_umap()
    n = len(vectors)
    if n < 4:
        raise ValueError(f"UMAP needs at least 4 points, got {n}")
    seeded = n <= seeded_max
    params: dict[str, Any] = {
        "n_neighbors": int(min(n_neighbors, n - 1)),
        "min_dist": float(min_dist),
        "metric": metric,
        "n_components": 2,
        "random_state": int(seed) if seeded else None,
        "n_jobs": 1 if seeded else (os.cpu_count() or 1),
        "init": "spectral" if seeded else "pca",
        "n_epochs": None if seeded else 200,
        "umap_version": umap.__version__,
        "points": n,
    }
    kwargs = {
        k: params[k]
        for k in ("n_neighbors", "min_dist", "metric", "n_components", "random_state", "n_jobs", "init", "n_epochs")
    }
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
        with numba_threads():  # numba's OpenMP layer would leave torch on every core
            coords = umap.UMAP(**kwargs).fit_transform(x)
    params["seconds"] = round(time.perf_counter() - t0, 2)
    coords = np.asarray(coords, dtype=np.float32)
    if not np.isfinite(coords).all():
        raise ValueError("UMAP produced non-finite coordinates (degenerate input vectors?)")
    return coords, params


def exact_distances(x: np.ndarray, metric: str) -> np.ndarray:
    """The full n x n distance matrix (float32, zero diagonal), vectorised, for the tables
    umap-learn searches exhaustively.

    Below 4,096 points umap-learn computes exact distances through scikit-learn with its own
    numba metric called once per pair from Python (about 5 s for 1,000 points); scikit-learn's
    vectorised metrics give the same matrix in milliseconds.
    """
    from sklearn.metrics import pairwise_distances

    d = pairwise_distances(np.asarray(x, dtype=np.float64), metric=metric)
    np.fill_diagonal(d, 0.0)
    return np.clip(d, 0.0, None).astype(np.float32)


def exact_knn(x: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """(indices n x k int64, distances n x k float32) of each row's ``k`` nearest rows,
    itself first, exactly (``metric``: cosine or euclidean): UMAP's precomputed graph.

    The rows after itself are :func:`embedlab.toolkit.neighbors.knn_lists`' (the one exact
    engine: the explorer's and ``embedlab neighbors``' lists), cosine as a distance (1 - cosine).
    """
    from embedlab.toolkit.neighbors import knn_lists

    n = len(x)
    k = min(int(k), n)
    rows, scores = knn_lists(x, k - 1, None, metric)
    dist = np.clip(1.0 - scores, 0, None) if metric == "cosine" else scores
    idx = np.concatenate([np.arange(n)[:, None], rows.astype(np.int64)], axis=1)
    return idx, np.concatenate([np.zeros((n, 1)), dist], axis=1).astype(np.float32)


def import_umap():
    """The ``umap`` module, imported with its numba functions compiled to an on-disk cache.

    umap-learn compiles ~12 s of numba code on the first call in every process, and marks
    almost none of it ``cache=True``. Importing it while ``numba.njit``/``numba.jit`` default
    to ``cache=True`` stores the compiled code in ``<embedlab cache>/numba`` (or
    ``NUMBA_CACHE_DIR``; :func:`embedlab.io.jit.configure_numba`, keyed on the source file and
    the CPU), so later processes load it in
    well under a second. Decorators that set ``cache`` themselves are left alone; functions
    numba cannot cache are simply compiled as before. Nothing changes if umap is already
    imported.
    """
    import sys

    if "umap" in sys.modules:
        return sys.modules["umap"]
    from embedlab.io.jit import configure_numba

    configure_numba()  # the cache under embedlab's cache folder, idle worker threads asleep
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


def sample_index(index: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """A seeded uniform sample of ``max_points`` of the row positions ``index`` (sorted), or
    ``index`` itself when it is no longer (or ``max_points`` <= 0: no limit)."""
    if max_points <= 0 or len(index) <= max_points:
        return index
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(index, size=max_points, replace=False))


def umap_project(
    table: EmbeddingTable,
    top_n: int | None = DEFAULT_TOP_N,
    min_count: int | None = None,
    *,
    seed: int = 0,
    max_points: int = DEFAULT_MAX_POINTS,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    metric: str = "cosine",
    seeded_max: int = DEFAULT_SEEDED_MAX,
) -> tuple[Selection, np.ndarray, np.ndarray, dict[str, Any]]:
    """(selection, mapped rows, coordinates len(rows) x 2 float32, parameters) of a UMAP map
    of the entities :func:`~embedlab.toolkit.selection.select_entities` picks.

    ``rows`` are the table positions mapped: the selection, or a seeded sample of
    ``max_points`` of it (:func:`sample_index`). The parameters are :func:`umap_layout`'s plus
    ``sampled`` and ``sample_seed``.
    """
    return _sampled_map(
        table,
        top_n,
        min_count,
        max_points,
        seed,
        lambda x: umap_layout(
            x, n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, seed=seed, seeded_max=seeded_max
        ),
    )


def umap_columns(coords: np.ndarray) -> dict[str, np.ndarray]:
    """``{"UMAP 1": ..., "UMAP 2": ...}``: the float32 map coordinates under the names the
    umap analysis plots and :func:`coordinates` returns."""
    coords = np.asarray(coords, dtype=np.float32)
    return {"UMAP 1": coords[:, 0], "UMAP 2": coords[:, 1]}


def neighbourhood_kept(
    vectors: np.ndarray, coords: np.ndarray, metric: str, k: int = 10, max_queries: int = 2000, seed: int = 0
) -> float:
    """The mean share (0-1) of each point's ``k`` nearest neighbours in the embedding that are
    among its ``k`` nearest on the 2-D map, over a seeded sample of at most ``max_queries``
    points; NaN when there are no more than ``k + 1`` points."""
    from sklearn.neighbors import NearestNeighbors

    n = len(vectors)
    if n <= k + 1:
        return float("nan")
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(n, size=min(max_queries, n), replace=False))
    hi = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute" if metric == "cosine" else "auto").fit(
        vectors
    )
    lo = NearestNeighbors(n_neighbors=k + 1).fit(coords)
    _, a = hi.kneighbors(vectors[q])
    _, b = lo.kneighbors(coords[q])
    kept = [len((set(x) - {i}) & (set(y) - {i})) / k for x, y, i in zip(a, b, q)]
    return float(np.mean(kept))


# ---------------------------------------------------------------------------- t-SNE
def tsne_perplexity(n: int, perplexity: float = TSNE_PERPLEXITY) -> float:
    """The perplexity used for ``n`` points: ``min(perplexity, max(2, (n - 1) / 3))``."""
    return float(min(float(perplexity), max(2.0, (n - 1) / 3)))


def tsne_layout(
    vectors: np.ndarray,
    *,
    perplexity: float = TSNE_PERPLEXITY,
    metric: str = "cosine",
    seed: int = 0,
    max_iter: int = TSNE_ITERATIONS,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(2-D t-SNE coordinates n x 2 as float32, the parameters actually used), seeded.

    scikit-learn's Barnes-Hut TSNE with PCA initialisation and learning rate "auto"; the
    perplexity is capped by :func:`tsne_perplexity`. The parameters record everything passed,
    scikit-learn's version, the final KL divergence and the seconds taken. Raises ValueError
    below 3 points or on non-finite coordinates.
    """
    import sklearn
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    n = len(x)
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    params: dict[str, Any] = {
        "n_components": 2,
        "perplexity": round(tsne_perplexity(n, perplexity), 4),
        "learning_rate": "auto",
        "init": "pca",
        "max_iter": int(max_iter),
        "metric": metric,
        "random_state": int(seed),
        "method": "barnes_hut",
        "threads": 1,
        "sklearn_version": sklearn.__version__,
        "points": n,
    }
    kwargs = {
        k: params[k]
        for k in ("n_components", "perplexity", "learning_rate", "init", "max_iter", "metric", "random_state", "method")
    }
    t0 = time.perf_counter()
    # one OpenMP thread: measured on 2 busy cores, 40 points took 14 s with sklearn's default
    # threads (spinning for each other) and 0.14 s with one; the layout is the same either way
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        model = TSNE(**kwargs)
        coords = np.asarray(model.fit_transform(x), dtype=np.float32)
    params["kl_divergence"] = round(float(model.kl_divergence_), 4)
    params["seconds"] = round(time.perf_counter() - t0, 2)
    if not np.isfinite(coords).all():
        raise ValueError("t-SNE produced non-finite coordinates (degenerate input vectors?)")
    return coords, params


def tsne_project(
    table: EmbeddingTable,
    top_n: int | None = DEFAULT_TOP_N,
    min_count: int | None = None,
    *,
    seed: int = 0,
    max_points: int = DEFAULT_TSNE_MAX_POINTS,
    perplexity: float = TSNE_PERPLEXITY,
    metric: str = "cosine",
    max_iter: int = TSNE_ITERATIONS,
) -> tuple[Selection, np.ndarray, np.ndarray, dict[str, Any]]:
    """(selection, mapped rows, coordinates len(rows) x 2 float32, parameters) of a t-SNE map
    of the entities :func:`~embedlab.toolkit.selection.select_entities` picks; above
    ``max_points`` a seeded sample of them (:func:`sample_index`). The parameters are
    :func:`tsne_layout`'s plus ``sampled`` and ``sample_seed``."""
    return _sampled_map(
        table,
        top_n,
        min_count,
        max_points,
        seed,
        lambda x: tsne_layout(x, perplexity=perplexity, metric=metric, seed=seed, max_iter=max_iter),
    )


def _sampled_map(
    table: EmbeddingTable, top_n: int | None, min_count: int | None, max_points: int, seed: int, layout
) -> tuple[Selection, np.ndarray, np.ndarray, dict[str, Any]]:
    """The shared steps of a sampled 2-D map: select the entities, sample ``max_points`` of
    them (seeded), lay them out with ``layout(vectors) -> (coords, params)``, record the sample."""
    sel = select_entities(table, top_n, min_count)
    rows = sample_index(sel.index, max_points, seed)
    coords, params = layout(table.vectors[rows])
    sampled = len(rows) < len(sel)
    params["sampled"] = sampled
    params["sample_seed"] = seed if sampled else None
    return sel, rows, coords, params


def tsne_columns(coords: np.ndarray) -> dict[str, np.ndarray]:
    """``{"t-SNE 1": ..., "t-SNE 2": ...}``: the float32 map coordinates under the names the
    tsne analysis plots and :func:`coordinates` returns."""
    coords = np.asarray(coords, dtype=np.float32)
    return {"t-SNE 1": coords[:, 0], "t-SNE 2": coords[:, 1]}


# ---------------------------------------------------------------------------- export
def coordinates(table: EmbeddingTable, umap: bool = False, seed: int = 0, tsne: bool = False) -> pd.DataFrame:
    """A DataFrame of ``key``, ``PC1``-``PC3``, with ``umap`` ``UMAP 1``-``UMAP 2`` and with
    ``tsne`` ``t-SNE 1``-``t-SNE 2`` (all float32), one row per observed entity in table order.

    These are exactly the values the ``pca``, ``umap`` and ``tsne`` analyses plot with
    ``--top-n 0`` (and ``--seed seed``, their other options at defaults): fewer PCA columns when
    the table has fewer dimensions or entities; above :data:`DEFAULT_MAX_POINTS` (UMAP) or
    :data:`DEFAULT_TSNE_MAX_POINTS` (t-SNE) entities a seeded sample is mapped and the others'
    values are NaN. Raises ValueError below 3 observed entities (4 with ``umap``).
    """
    sel, scores, _, _ = pca_project(table, 0, None, PCA_COMPONENTS)
    out = pd.DataFrame({"key": table.keys[sel.index], **pca_columns(scores)})
    maps = []
    if umap:
        _, rows, coords, _ = umap_project(table, 0, None, seed=seed)
        maps.append((rows, umap_columns(coords)))
    if tsne:
        _, rows, coords, _ = tsne_project(table, 0, None, seed=seed)
        maps.append((rows, tsne_columns(coords)))
    for rows, columns in maps:
        at = np.searchsorted(sel.index, rows)  # rows is a sorted subset of the sorted selection
        for name, values in columns.items():
            column = np.full(len(sel), np.nan, dtype=np.float32)
            column[at] = values
            out[name] = column
    return out


def _export_column(name: str) -> str:
    """The CSV's name of a :func:`~embedlab.toolkit.projection.coordinates` column:
    ``PC1`` -> ``pca_1``, ``UMAP 1`` -> ``umap_1``, ``t-SNE 1`` -> ``tsne_1``."""
    if name.startswith("UMAP "):
        return "umap_" + name[len("UMAP ") :]
    if name.startswith("t-SNE "):
        return "tsne_" + name[len("t-SNE ") :]
    return "pca_" + name[len("PC") :]


def projected_coordinates(table: EmbeddingTable, umap: bool = False, seed: int = 0, tsne: bool = False) -> pd.DataFrame:
    """key, label, bias, annotations, PCA 1-3 (and UMAP 1-2, t-SNE 1-2) of every entity (the
    coordinates are empty for entities never observed in training).

    What ``embedlab export --format csv`` writes (``io.exchange.export_table(coords=...)``).
    The coordinates are :func:`coordinates`, the values the ``pca``,
    ``umap`` and ``tsne`` analyses plot with ``--top-n 0``, so the CSV matches what a report
    shows; rounded to 6 decimals.
    """
    coords = coordinates(table, umap=umap, seed=seed, tsne=tsne)
    rounded = pd.DataFrame({"key": coords["key"].to_numpy()})
    for name in coords.columns[1:]:
        rounded[_export_column(name)] = np.round(coords[name].to_numpy(dtype=float), 6)
    return table.frame.merge(rounded, on="key", how="left")
