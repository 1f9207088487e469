"""Cyclic orders: recover one from embeddings (a shortest tour through the entities) and compare
it with the calendar, with permutation tests. Used by the ``cyclic`` analysis (weekdays, months).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from embedlab.toolkit.stats import _BATCH_ELEMENTS, _p_value, _permutations, _use_exact

__all__ = [
    "Tour",
    "shortest_tour",
    "TourTest",
    "tour_test",
    "circular_rank_agreement",
    "agreement_chance",
    "orient_tour",
    "same_cycle",
]


# ---------------------------------------------------------------------------- tours
def tour_length(distances: np.ndarray, order: Sequence[int]) -> float:
    """Length of the closed tour visiting ``order`` and returning to its start."""
    o = np.asarray(order, dtype=np.intp)
    return float(np.asarray(distances)[o, np.roll(o, -1)].sum())


def tour_lengths(distances: np.ndarray, orders: np.ndarray) -> np.ndarray:
    """Closed-tour lengths of many orders at once ((m, n) -> (m,))."""
    orders = np.asarray(orders, dtype=np.intp)
    return np.asarray(distances)[orders, np.roll(orders, -1, axis=1)].sum(axis=1)


@dataclass
class Tour:
    """A closed tour: ``order`` (a permutation starting at entity 0), its ``length`` and whether
    it is proven shortest (``exact``) or the best a local search found."""

    order: np.ndarray
    length: float
    exact: bool


def _held_karp(d: np.ndarray) -> np.ndarray:
    """Exact shortest closed tour by dynamic programming over subsets (Held-Karp), vectorised
    over the subsets of each size: O(2^n n^2), about 20 ms for 12 entities."""
    n = len(d)
    m = n - 1  # entity 0 is the fixed start; bit j stands for entity j + 1
    full = 1 << m
    w = d[1:, 1:]
    dp = np.full((full, m), np.inf)
    parent = np.full((full, m), -1, dtype=np.int16)
    for j in range(m):
        dp[1 << j, j] = d[0, j + 1]
    masks_all = np.arange(full)
    popcount = np.zeros(full, dtype=np.int16)
    for j in range(m):
        popcount += ((masks_all >> j) & 1).astype(np.int16)
    for size in range(2, m + 1):
        masks = masks_all[popcount == size]
        for j in range(m):
            sel = masks[((masks >> j) & 1) == 1]
            prev = sel ^ (1 << j)
            cand = dp[prev] + w[:, j][None, :]  # arrive at j from i, for every i in prev
            best = np.argmin(cand, axis=1)
            dp[sel, j] = cand[np.arange(len(sel)), best]
            parent[sel, j] = best
    last = int(np.argmin(dp[full - 1] + d[1:, 0]))
    path, mask, j = [], full - 1, last
    while j != -1:
        path.append(j + 1)
        prev_j = int(parent[mask, j])
        mask ^= 1 << j
        j = prev_j
    return np.array([0] + path[::-1], dtype=np.intp)


def _two_opt(d: np.ndarray, tour: np.ndarray) -> tuple[np.ndarray, bool]:
    """Best-improvement 2-opt (reverse a segment) until no move shortens the tour."""
    n = len(tour)
    improved_any = False
    i_idx, j_idx = np.triu_indices(n, k=2)
    keep = ~((i_idx == 0) & (j_idx == n - 1))  # those two edges are adjacent on the cycle
    i_idx, j_idx = i_idx[keep], j_idx[keep]
    for _ in range(50 * n):
        a, b = tour, np.roll(tour, -1)
        delta = d[a[i_idx], a[j_idx]] + d[b[i_idx], b[j_idx]] - d[a[i_idx], b[i_idx]] - d[a[j_idx], b[j_idx]]
        if len(delta) == 0:
            break
        best = int(np.argmin(delta))
        if delta[best] >= -1e-10:
            break
        i, j = i_idx[best], j_idx[best]
        tour = np.concatenate([tour[: i + 1], tour[i + 1 : j + 1][::-1], tour[j + 1 :]])
        improved_any = True
    return tour, improved_any


def _or_opt(d: np.ndarray, tour: np.ndarray) -> tuple[np.ndarray, bool]:
    """Or-opt: move a run of 1-3 entities (either way round) elsewhere when that is shorter."""
    n = len(tour)
    improved_any = False
    improved = True
    while improved:
        improved = False
        for seg_len in (1, 2, 3):
            if n - seg_len < 3:
                continue
            for i in range(n):
                t = np.roll(tour, -i)
                seg, rest = t[:seg_len], t[seg_len:]
                gain = d[rest[-1], seg[0]] + d[seg[-1], rest[0]] - d[rest[-1], rest[0]]
                left, right = rest[:-1], rest[1:]
                base = d[left, right]
                fwd = d[left, seg[0]] + d[seg[-1], right] - base
                rev = d[left, seg[-1]] + d[seg[0], right] - base
                k_f, k_r = int(np.argmin(fwd)), int(np.argmin(rev))
                cost, k, reverse = (fwd[k_f], k_f, False) if fwd[k_f] <= rev[k_r] else (rev[k_r], k_r, True)
                if cost < gain - 1e-10:
                    piece = seg[::-1] if reverse else seg
                    tour = np.concatenate([rest[: k + 1], piece, rest[k + 1 :]])
                    improved = improved_any = True
                    break
            if improved:
                break
    return tour, improved_any


def _local_search(d: np.ndarray, tour: np.ndarray) -> np.ndarray:
    while True:
        tour, a = _two_opt(d, tour)
        tour, b = _or_opt(d, tour)
        if not (a or b):
            return tour


def _nearest_neighbour_tour(d: np.ndarray, start: int) -> np.ndarray:
    n = len(d)
    seen = np.zeros(n, dtype=bool)
    tour = [start]
    seen[start] = True
    for _ in range(n - 1):
        row = np.where(seen, np.inf, d[tour[-1]])
        nxt = int(np.argmin(row))
        tour.append(nxt)
        seen[nxt] = True
    return np.array(tour, dtype=np.intp)


def _rotate_to_zero(order: np.ndarray) -> np.ndarray:
    order = np.asarray(order, dtype=np.intp)
    return np.roll(order, -int(np.flatnonzero(order == 0)[0]))


def shortest_tour(distances: np.ndarray, exact_max: int = 12, restarts: int = 8, seed: int | None = 0) -> Tour:
    """The shortest closed path through all entities: exact (Held-Karp) up to ``exact_max``
    entities, else the best of nearest-neighbour and random starts improved by 2-opt and
    or-opt (typically within a per cent or two of optimal for a few dozen points)."""
    d = np.asarray(distances, dtype=np.float64)
    n = len(d)
    if n <= 3:
        order = np.arange(n, dtype=np.intp)
        return Tour(order, tour_length(d, order) if n else 0.0, True)
    if n <= exact_max:
        order = _held_karp(d)
        return Tour(order, tour_length(d, order), True)
    rng = np.random.default_rng(seed)
    starts = [_nearest_neighbour_tour(d, s) for s in rng.choice(n, size=min(n, restarts), replace=False)]
    starts += [rng.permutation(n) for _ in range(max(2, restarts // 4))]
    best, best_len = None, np.inf
    for start in starts:
        tour = _local_search(d, start)
        length = tour_length(d, tour)
        if length < best_len - 1e-12:
            best, best_len = tour, length
    best = _rotate_to_zero(best)
    return Tour(best, best_len, False)


@dataclass
class TourTest:
    """The closed tour through the entities in calendar order, against the shortest tour
    (``ratio`` = calendar / shortest, 1 when the calendar order is the shortest) and against
    random orders (``p``: share of random orders whose tour is at least as short)."""

    calendar_length: float
    shortest: Tour
    ratio: float
    p: float
    permutations: int
    exact: bool


def tour_test(
    distances: np.ndarray,
    order: Sequence[int],
    permutations: int = 9999,
    seed: int | None = 0,
    exact: bool | None = None,
    shortest: Tour | None = None,
) -> TourTest:
    """Is the closed tour in ``order`` (the calendar) unusually short?

    With ``exact=None`` every distinct cyclic order is enumerated when (n-1)! <= 40,320
    (n <= 9) and p is the exact share of orders at least as short (the calendar's own
    included); beyond, ``permutations`` random orders give p = (1 + hits) / (1 + m).
    """
    d = np.asarray(distances, dtype=np.float64)
    order = np.asarray(order, dtype=np.intp)
    n = len(d)
    if n < 3 or sorted(order.tolist()) != list(range(n)):
        raise ValueError("tour_test needs at least 3 entities and an order that is a permutation")
    observed = tour_length(d, order)
    shortest = shortest or shortest_tour(d, seed=seed)
    if observed < shortest.length:  # a heuristic tour can miss the calendar's one
        shortest = Tour(_rotate_to_zero(order), observed, shortest.exact)
    ratio = observed / shortest.length if shortest.length > 0 else float("nan")
    use_exact = _use_exact(math.factorial(n - 1), exact)
    if use_exact:
        rest = np.array(list(itertools.permutations(range(1, n))), dtype=np.intp).reshape(-1, n - 1)
        orders = np.hstack([np.zeros((len(rest), 1), dtype=np.intp), rest])
    else:
        orders = _permutations(n, permutations, np.random.default_rng(seed), False)
    null = np.empty(len(orders))
    step = max(1, _BATCH_ELEMENTS // n)
    for start in range(0, len(orders), step):
        null[start : start + step] = tour_lengths(d, orders[start : start + step])
    p = _p_value(null, observed, "less", use_exact)
    return TourTest(observed, shortest, ratio, p, len(orders), use_exact)


# ---------------------------------------------------------------------------- cyclic orders
def _alignments(tour_rank: np.ndarray) -> np.ndarray:
    """All 2n rotations and reflections of cyclic ranks, as a (2n, n) array."""
    n = len(tour_rank)
    shifts = np.arange(n)[:, None]
    fwd = np.mod(tour_rank[None, :] + shifts, n)
    rev = np.mod(-tour_rank[None, :] + shifts, n)
    return np.vstack([fwd, rev])


def circular_rank_agreement(order: Sequence[int], positions: Sequence[float]) -> float:
    """How well a recovered cyclic order agrees with the calendar, ignoring where the cycle
    starts and which way it runs: the best Spearman correlation between the calendar ranks
    and the tour ranks over all rotations and reflections of the tour. 1 when the tour visits
    the entities in calendar order (either way round, from any start)."""
    from scipy import stats as sps

    order = np.asarray(order, dtype=np.intp)
    n = len(order)
    rank = np.empty(n, dtype=np.float64)
    rank[order] = np.arange(n)
    cal = sps.rankdata(np.asarray(positions, dtype=np.float64))
    cal = cal - cal.mean()
    cand = _alignments(rank)
    cand = cand - cand.mean(axis=1, keepdims=True)
    denom = np.linalg.norm(cand, axis=1) * np.linalg.norm(cal)
    if np.any(denom == 0):
        return float("nan")
    return float(np.max(cand @ cal / denom))


def agreement_chance(n: int, positions: Sequence[float], samples: int = 999, seed: int | None = 0) -> float:
    """Mean :func:`circular_rank_agreement` of random orders (its chance level, which is above
    0 because the best of 2n alignments is taken)."""
    from scipy import stats as sps

    rng = np.random.default_rng(seed)
    cal = sps.rankdata(np.asarray(positions, dtype=np.float64))
    cal = cal - cal.mean()
    norm_cal = np.linalg.norm(cal)
    if norm_cal == 0:
        return float("nan")
    ranks = rng.permuted(np.broadcast_to(np.arange(n, dtype=np.float64), (samples, n)), axis=1)
    shifts = np.arange(n)[None, :, None]
    cand = np.concatenate(
        [np.mod(ranks[:, None, :] + shifts, n), np.mod(-ranks[:, None, :] + shifts, n)], axis=1
    )  # (s, 2n, n)
    cand = cand - cand.mean(axis=2, keepdims=True)
    r = (cand @ cal) / (np.linalg.norm(cand, axis=2) * norm_cal)
    return float(r.max(axis=1).mean())


def orient_tour(order: Sequence[int], positions: Sequence[float]) -> np.ndarray:
    """The tour rotated to start at the calendar's first entity and turned to run the way the
    calendar runs (for printing: "Mon Tue Wed ..." rather than "Thu Wed Tue ...")."""
    from scipy import stats as sps

    order = np.asarray(order, dtype=np.intp)
    pos = np.asarray(positions, dtype=np.float64)
    first = int(np.argmin(pos))
    start = int(np.flatnonzero(order == first)[0])
    fwd = np.roll(order, -start)
    rev = np.concatenate([fwd[:1], fwd[1:][::-1]])
    idx = np.arange(len(order))

    def score(o: np.ndarray) -> float:
        if len(o) < 3:
            return 0.0
        return float(sps.spearmanr(idx, pos[o]).statistic)

    return fwd if score(fwd) >= score(rev) else rev


def same_cycle(order: Sequence[int], calendar_order: Sequence[int]) -> bool:
    """True when two closed tours visit the entities in the same cyclic sequence (up to the
    starting point and direction)."""
    a = list(np.asarray(order).tolist())
    b = list(np.asarray(calendar_order).tolist())
    if sorted(a) != sorted(b):
        return False
    n = len(a)
    if n == 0:
        return True
    start = a.index(b[0])
    fwd = a[start:] + a[:start]
    rev = [fwd[0]] + fwd[1:][::-1]
    return fwd == b or rev == b
