"""Statistics shared by the discovery analyses (geography, calendar cycles).

Claims such as "the state embeddings resemble the map" or "the weekdays line up like the
calendar" are usually made from a picture. The functions here turn them into numbers with a
significance level, so an analysis can say how strong a finding is and how likely it is to
arise by chance:

- :func:`mantel`: rank (or linear) correlation of two distance matrices, with a permutation
  p-value (exact enumeration of all orderings when there are few entities).
- :func:`great_circle_km`, :func:`circular_distance`, :func:`pairwise_distances`: the
  distance matrices compared.
- :func:`procrustes_test`: how well a 2-D picture of the embeddings fits the map after the
  best rotation, reflection and scaling, with a permutation p-value.
- :func:`knn_overlap`: agreement of nearest neighbours in two spaces, beside its chance level.
- :func:`adjacency_rate`: how often calendar neighbours are embedding neighbours; the cyclic
  order itself (shortest tours, their tests) is :mod:`embedlab.toolkit.cycles`.
- :func:`spearman`, :func:`eta_squared`, :func:`neighbour_agreement`: how an embedding relates
  to one metadata column.

Everything is numpy-vectorised: 9,999 permutations over a 12 x 12 matrix take a few
milliseconds. Only numpy/scipy here: analyses and tests build on these without Bokeh. scipy is
imported inside the functions that use it: the analysis plugins import this module, and the CLI
loads every plugin before it can print its help (tests/test_startup.py).

Public names: ``__all__``; the plugin guide documents each with an example:
``embedlab plugins guide "embedlab.toolkit.stats"``.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

__all__ = [
    "embedding_distances",
    "pairwise_distances",
    "condensed",
    "great_circle_km",
    "circular_distance",
    "mantel",
    "MantelResult",
    "procrustes_test",
    "ProcrustesResult",
    "nearest_neighbours",
    "knn_overlap",
    "KnnOverlap",
    "describe_p",
    "affordable_permutations",
    "local_plane_km",
    "plane_to_latlon",
    "adjacency_rate",
]

EARTH_RADIUS_KM = 6371.0088  # mean Earth radius (IUGG)
EXACT_LIMIT = 40_320  # 8!: enumerate every ordering up to this many; sample beyond
_BATCH_ELEMENTS = 4_000_000  # gathered values per vectorised batch (bounds memory)
_EPS = 1e-12


# ---------------------------------------------------------------------------- distances
def condensed(matrix: np.ndarray) -> np.ndarray:
    """The upper triangle (i < j) of a square matrix as a vector, in scipy's pdist order."""
    matrix = np.asarray(matrix)
    iu, ju = np.triu_indices(len(matrix), k=1)
    return matrix[iu, ju]


def embedding_distances(vectors: np.ndarray, metric: str = "cosine") -> tuple[np.ndarray, str, list[str]]:
    """Pairwise embedding distances with the fallbacks analyses need, said in plain words.

    Cosine distance only sees the sign of a 1-dimensional embedding and is undefined for a
    zero vector; both fall back to euclidean distance. Returns (distances, metric used, notes).
    """
    notes: list[str] = []
    vectors = np.asarray(vectors)
    if metric == "cosine" and vectors.ndim == 2 and vectors.shape[1] == 1:
        metric = "euclidean"
        notes.append(
            "The embedding has one dimension, where cosine distance only sees the sign: euclidean distance was used."
        )
    try:
        return pairwise_distances(vectors, metric), metric, notes
    except ValueError:
        notes.append("Some vectors are zero, where cosine distance is undefined: euclidean distance was used.")
        return pairwise_distances(vectors, "euclidean"), "euclidean", notes


def pairwise_distances(vectors: np.ndarray, metric: str = "cosine") -> np.ndarray:
    """Square matrix of distances between the rows of ``vectors`` (cosine or euclidean).

    A 1-D array is treated as n points in one dimension. Cosine distance is undefined for a
    zero vector: a ValueError says so, and callers fall back to euclidean distance.
    """
    x = np.asarray(vectors, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"unknown metric {metric!r}; use 'cosine' or 'euclidean'")
    if len(x) < 2:
        return np.zeros((len(x), len(x)))
    if metric == "cosine" and np.any(np.linalg.norm(x, axis=1) == 0):
        raise ValueError("cosine distance is undefined for a zero vector")
    from scipy.spatial.distance import pdist, squareform

    d = squareform(pdist(x, metric=metric))
    return np.clip(d, 0.0, None)


def great_circle_km(latitude: Sequence[float], longitude: Sequence[float]) -> np.ndarray:
    """Square matrix of great-circle distances in km between points given in degrees (on a
    sphere; the atan2 form, accurate from neighbouring points to antipodes)."""
    lat = np.radians(np.asarray(latitude, dtype=np.float64))
    lon = np.radians(np.asarray(longitude, dtype=np.float64))
    dlon = lon[:, None] - lon[None, :]
    s1, c1 = np.sin(lat)[:, None], np.cos(lat)[:, None]
    s2, c2 = np.sin(lat)[None, :], np.cos(lat)[None, :]
    num = np.hypot(c2 * np.sin(dlon), c1 * s2 - s1 * c2 * np.cos(dlon))
    d = EARTH_RADIUS_KM * np.arctan2(num, s1 * s2 + c1 * c2 * np.cos(dlon))
    np.fill_diagonal(d, 0.0)
    return d


def local_plane_km(latitude: Sequence[float], longitude: Sequence[float]) -> np.ndarray:
    """(n, 2) east/north coordinates in km around the points' centre (equirectangular).

    Good to a few per cent over a country, which is all a Procrustes fit of a picture needs.
    """
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    lat0 = np.radians(np.mean(lat))
    k = np.pi / 180 * EARTH_RADIUS_KM
    return np.column_stack([(lon - np.mean(lon)) * k * np.cos(lat0), (lat - np.mean(lat)) * k])


def plane_to_latlon(
    xy: np.ndarray, latitude: Sequence[float], longitude: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`local_plane_km` for the same reference points: (lat, lon) in degrees."""
    lat = np.asarray(latitude, dtype=np.float64)
    lon = np.asarray(longitude, dtype=np.float64)
    lat0 = np.radians(np.mean(lat))
    k = np.pi / 180 * EARTH_RADIUS_KM
    xy = np.asarray(xy, dtype=np.float64)
    return xy[:, 1] / k + np.mean(lat), xy[:, 0] / (k * np.cos(lat0)) + np.mean(lon)


def circular_distance(positions: Sequence[float], length: int) -> np.ndarray:
    """Square matrix of distances around a cycle of ``length`` steps (Sunday-Monday is 1)."""
    pos = np.asarray(positions, dtype=np.float64)
    d = np.mod(np.abs(pos[:, None] - pos[None, :]), length)
    return np.minimum(d, length - d)


# ---------------------------------------------------------------------------- permutations
def n_orderings(n: int) -> int:
    return math.factorial(n)


def _permutations(n: int, permutations: int, rng: np.random.Generator, exact: bool) -> np.ndarray:
    """All n! orderings (exact) or ``permutations`` random ones, as an (m, n) int array."""
    if exact:
        return np.array(list(itertools.permutations(range(n))), dtype=np.intp).reshape(-1, n)
    base = np.broadcast_to(np.arange(n, dtype=np.intp), (permutations, n))
    return rng.permuted(base, axis=1)


def affordable_permutations(n: int, requested: int, budget: float = 1.5e8, floor: int = 999) -> int:
    """How many Mantel permutations of n entities fit a work budget (permuted distances, a few
    seconds by default): the requested number for small tables, never fewer than ``floor``. A
    Mantel test over 500 entities permutes 124,750 distances per permutation."""
    pairs = n * (n - 1) // 2
    if pairs == 0:
        return requested
    return int(min(requested, max(floor, budget // pairs)))


def _use_exact(n_total: int, exact: bool | None) -> bool:
    return n_total <= EXACT_LIMIT if exact is None else bool(exact)


def _p_value(null: np.ndarray, observed: float, alternative: str, exact: bool) -> float:
    """Permutation p-value. Exact: the share of all orderings (the observed one among them) at
    least as extreme. Sampled: (1 + hits) / (1 + m), which never reports p = 0."""
    if alternative == "greater":
        hits = np.count_nonzero(null >= observed - _EPS)
    elif alternative == "less":
        hits = np.count_nonzero(null <= observed + _EPS)
    elif alternative == "two-sided":
        hits = np.count_nonzero(np.abs(null) >= abs(observed) - _EPS)
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    return float(hits / len(null) if exact else (hits + 1) / (len(null) + 1))


@dataclass
class MantelResult:
    """Mantel test outcome. ``r``: correlation of the condensed distances; ``p``: permutation
    p-value; ``permutations``: orderings compared (n! when ``exact``)."""

    r: float
    p: float
    n: int
    permutations: int
    exact: bool
    method: str = "spearman"
    alternative: str = "greater"


def mantel(
    x: np.ndarray,
    y: np.ndarray,
    permutations: int = 9999,
    method: str = "spearman",
    alternative: str = "greater",
    seed: int | None = 0,
    exact: bool | None = None,
) -> MantelResult:
    """Mantel test: correlation between two square distance matrices over the same entities.

    ``r`` is Pearson's (``method="pearson"``) or Spearman's correlation of the upper
    triangles (scipy.stats.spearmanr of the condensed vectors). Its null distribution comes
    from relabelling the entities of ``y`` (rows and columns together), which keeps each
    matrix's internal structure and breaks only the link between them. With ``exact=None``
    all n! relabellings are enumerated when n! <= 40,320 (n <= 8); else ``permutations``
    random ones (seeded). The default alternative is "greater": close in one space, close in
    the other.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n = len(x)
    if x.shape != (n, n) or y.shape != (n, n):
        raise ValueError("mantel needs two square matrices of the same size")
    if n < 3:
        raise ValueError("mantel needs at least 3 entities")
    if method not in ("spearman", "pearson"):
        raise ValueError(f"unknown method {method!r}")
    a, b = condensed(x), condensed(y)
    if method == "spearman":
        from scipy import stats as sps

        a, b = sps.rankdata(a), sps.rankdata(b)
    a = a - a.mean()
    b = b - b.mean()
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    use_exact = _use_exact(n_orderings(n), exact)
    if denom == 0.0:  # one matrix has no variation: no correlation is defined
        return MantelResult(float("nan"), float("nan"), n, 0, use_exact, method, alternative)
    r = float(a @ b / denom)
    square = np.zeros((n, n))
    iu, ju = np.triu_indices(n, k=1)
    square[iu, ju] = b
    square[ju, iu] = b
    perms = _permutations(n, permutations, np.random.default_rng(seed), use_exact)
    null = np.empty(len(perms))
    if n <= 64:  # small tables: gather many permutations' upper triangles at once
        step = max(1, _BATCH_ELEMENTS // len(a))
        for start in range(0, len(perms), step):
            p = perms[start : start + step]
            null[start : start + step] = square[p[:, iu], p[:, ju]] @ a / denom
    else:  # large tables: whole-row then whole-column copies beat scattered gathers
        upper = np.zeros((n, n))
        upper[iu, ju] = a
        for k, p in enumerate(perms):
            null[k] = np.einsum("ij,ij->", square[p][:, p], upper) / denom
    return MantelResult(r, _p_value(null, r, alternative, use_exact), n, len(perms), use_exact, method, alternative)


# ---------------------------------------------------------------------------- Procrustes
def _standardise(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    centre = m.mean(axis=0)
    c = m - centre
    norm = float(np.linalg.norm(c))
    return (c / norm if norm > 0 else c), centre, norm


def pad_columns(m: np.ndarray, cols: int) -> np.ndarray:
    m = np.asarray(m, dtype=np.float64)
    if m.ndim == 1:
        m = m[:, None]
    if m.shape[1] < cols:
        m = np.hstack([m, np.zeros((len(m), cols - m.shape[1]))])
    return m


@dataclass
class ProcrustesResult:
    """``r2``: share of the target's spread the aligned points reproduce (1 - scipy's
    disparity); ``p``: permutation p-value; ``aligned``: the points mapped into the target's
    units (rotation/reflection, scale, shift)."""

    r2: float
    p: float
    n: int
    permutations: int
    exact: bool
    aligned: np.ndarray = field(repr=False, default_factory=lambda: np.zeros((0, 2)))


def procrustes_r2(points: np.ndarray, target: np.ndarray) -> float:
    """1 - scipy.spatial.procrustes disparity between ``target`` and ``points`` (padded to the
    same width): 1 when one is a rotated, reflected, scaled, shifted copy of the other."""
    cols = max(pad_columns(points, 1).shape[1], pad_columns(target, 1).shape[1])
    xs, _, nx = _standardise(pad_columns(points, cols))
    ys, _, ny = _standardise(pad_columns(target, cols))
    if nx == 0 or ny == 0:
        return float("nan")
    s = np.linalg.svd(ys.T @ xs, compute_uv=False).sum()
    return float(min(1.0, s**2))


def procrustes_test(
    points: np.ndarray, target: np.ndarray, permutations: int = 9999, seed: int | None = 0, exact: bool | None = None
) -> ProcrustesResult:
    """Orthogonal Procrustes fit of ``points`` (e.g. a 2-D projection of embeddings) onto
    ``target`` (map coordinates) and a permutation test of its ``r2``.

    The fit uses scipy.linalg.orthogonal_procrustes on centred, unit-norm data (reflections
    allowed: a projection's handedness is arbitrary). The null distribution reassigns the
    points to the targets at random (exactly when n! <= 40,320), so p answers "how often does
    a random matching of pictures to places fit this well?".
    """
    from scipy.linalg import orthogonal_procrustes

    points = pad_columns(points, 1)
    target = pad_columns(target, 1)
    cols = max(points.shape[1], target.shape[1])
    points, target = pad_columns(points, cols), pad_columns(target, cols)
    n = len(points)
    if len(target) != n:
        raise ValueError("points and target must have the same number of rows")
    if n < 3:
        raise ValueError("procrustes_test needs at least 3 points")
    xs, _, nx = _standardise(points)
    ys, ycentre, ny = _standardise(target)
    use_exact = _use_exact(n_orderings(n), exact)
    if nx == 0 or ny == 0:
        return ProcrustesResult(float("nan"), float("nan"), n, 0, use_exact, np.tile(ycentre, (n, 1)))
    rot, scale = orthogonal_procrustes(xs, ys)  # xs @ rot ~ ys; scale = sum of singular values
    r2 = float(min(1.0, scale**2))
    aligned = (xs @ rot) * scale * ny + ycentre
    perms = _permutations(n, permutations, np.random.default_rng(seed), use_exact)
    null = np.empty(len(perms))
    step = max(1, _BATCH_ELEMENTS // (n * cols))
    for start in range(0, len(perms), step):
        p = perms[start : start + step]
        m = np.einsum("nj,bnk->bjk", ys, xs[p])  # (batch, cols, cols) cross-covariances
        null[start : start + step] = np.linalg.svd(m, compute_uv=False).sum(axis=1) ** 2
    return ProcrustesResult(r2, _p_value(null, r2, "greater", use_exact), n, len(perms), use_exact, aligned)


# ---------------------------------------------------------------------------- neighbours
def nearest_neighbours(distances: np.ndarray, k: int) -> np.ndarray:
    """(n, k) indices of each row's k nearest other entities (ties: the lower index first)."""
    d = np.array(distances, dtype=np.float64)
    np.fill_diagonal(d, np.inf)
    return np.argsort(d, axis=1, kind="stable")[:, :k]


@dataclass
class KnnOverlap:
    """``mean``: average share of each entity's k nearest neighbours in one space that are also
    among its k nearest in the other; ``chance``: its expectation for unrelated spaces."""

    mean: float
    chance: float
    k: int
    per_entity: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(0))


def knn_overlap(a: np.ndarray, b: np.ndarray, k: int) -> KnnOverlap:
    """Neighbour agreement between two distance matrices. Under no relation, another entity's
    chance to be among k of the n - 1 others is k / (n - 1): that is the chance level."""
    n = len(a)
    if n < 2:
        raise ValueError("knn_overlap needs at least 2 entities")
    k = int(min(max(k, 1), n - 1))
    rows = np.arange(n)[:, None]
    in_a = np.zeros((n, n), dtype=bool)
    in_b = np.zeros((n, n), dtype=bool)
    in_a[rows, nearest_neighbours(a, k)] = True
    in_b[rows, nearest_neighbours(b, k)] = True
    per = (in_a & in_b).sum(axis=1) / k
    return KnnOverlap(float(per.mean()), k / (n - 1), k, per)


def adjacency_rate(distances: np.ndarray, calendar: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Share of entities whose nearest neighbour (in ``distances``) is a calendar neighbour
    (``calendar`` distance 1), its chance level (the mean share of calendar neighbours among
    the other entities) and each entity's nearest neighbour."""
    n = len(distances)
    nn = nearest_neighbours(distances, 1)[:, 0]
    adjacent = np.isclose(calendar, 1.0)
    np.fill_diagonal(adjacent, False)
    rate = float(adjacent[np.arange(n), nn].mean())
    chance = float((adjacent.sum(axis=1) / (n - 1)).mean())
    return rate, chance, nn


def describe_p(p: float, permutations: int, exact: bool, n: int) -> str:
    """'p = 0.0031 (9,999 permutations)' or 'p = 0.0028 (exact, all 5,040 orderings)'; at the
    resolution limit it says 'p <= ...' so nobody reads 1e-4 as a measured probability."""
    if not np.isfinite(p):
        return "p undefined"
    floor = 1 / permutations if exact else 1 / (permutations + 1)
    sign = "<=" if p <= floor + 1e-15 else "="
    how = f"exact over all {permutations:,} orderings" if exact else f"{permutations:,} permutations"
    return f"p {sign} {p:.2g}, {how}" if p < 0.001 else f"p {sign} {p:.3f}, {how}"
