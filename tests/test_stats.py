"""Unit tests of embedlab.toolkit.stats against hand-computed cases, brute force and scipy references."""

from __future__ import annotations

import itertools
import math
import time

import numpy as np
import pytest
from scipy import stats as sps
from scipy.spatial import procrustes as scipy_procrustes
from scipy.spatial.distance import squareform
from embedlab.toolkit import cycles as C
from embedlab.toolkit import projection as P

from embedlab.toolkit import stats as S


def _brute_mantel_p(x, y, method="spearman"):
    """Exact one-sided Mantel p by looping over every relabelling (independent of S.mantel)."""
    corr = sps.spearmanr if method == "spearman" else sps.pearsonr
    a = S.condensed(x)
    r0 = corr(a, S.condensed(y)).statistic
    rs = [corr(a, S.condensed(y[np.ix_(p, p)])).statistic for p in itertools.permutations(range(len(x)))]
    return r0, np.mean(np.array(rs) >= r0 - 1e-12)


# ---------------------------------------------------------------------------- distances
def test_great_circle_known_distances():
    d = S.great_circle_km([52.5200, 48.1351, 0.0, 0.0], [13.4050, 11.5820, 0.0, 1.0])
    assert d[0, 1] == pytest.approx(504.2, abs=1.5)  # Berlin - Munich
    assert d[2, 3] == pytest.approx(2 * np.pi * S.EARTH_RADIUS_KM / 360, rel=1e-9)  # 1 degree on the equator
    assert np.allclose(d, d.T) and np.all(np.diag(d) == 0)
    antipodes = S.great_circle_km([10.0, -10.0], [20.0, -160.0])
    assert antipodes[0, 1] == pytest.approx(np.pi * S.EARTH_RADIUS_KM, rel=1e-9)


def test_local_plane_round_trip_and_scale():
    lat, lon = np.array([47.5, 50.0, 54.5]), np.array([6.0, 10.0, 14.5])
    xy = S.local_plane_km(lat, lon)
    back_lat, back_lon = S.plane_to_latlon(xy, lat, lon)
    assert np.allclose(back_lat, lat) and np.allclose(back_lon, lon)
    # north-south distances are exact in the plane
    assert xy[2, 1] - xy[0, 1] == pytest.approx(S.great_circle_km([47.5, 54.5], [6.0, 6.0])[0, 1], rel=1e-9)


def test_circular_distance_hand_cases():
    d = S.circular_distance(np.arange(7), 7)
    assert d[0, 6] == 1 and d[0, 3] == 3 and d[0, 4] == 3 and d[1, 5] == 3 and d[2, 2] == 0
    assert np.array_equal(d, d.T)
    months = S.circular_distance([0, 11, 5], 12)
    assert months[0, 1] == 1 and months[0, 2] == 5 and months[1, 2] == 6


def test_pairwise_distances_match_scipy_and_reject_zero_vectors():
    x = np.random.default_rng(0).normal(size=(6, 3))
    from scipy.spatial.distance import pdist

    assert np.allclose(S.condensed(S.pairwise_distances(x, "cosine")), pdist(x, "cosine"))
    assert np.allclose(S.condensed(S.pairwise_distances(x, "euclidean")), pdist(x, "euclidean"))
    assert np.allclose(S.pairwise_distances(np.array([0.0, 1.0, 3.0]), "euclidean")[0], [0, 1, 3])
    with pytest.raises(ValueError, match="zero vector"):
        S.pairwise_distances(np.array([[0.0, 0.0], [1.0, 0.0]]), "cosine")


# ---------------------------------------------------------------------------- Mantel
def test_mantel_reference_example_exact():
    """jwcarr/mantel's worked example (4 objects, Pearson, upper tail): r = 0.9148936..., and
    exactly 1 of the 4! = 24 relabellings is at least as large: p = 1/24."""
    d1 = squareform([0.2, 0.4, 0.3, 0.6, 0.9, 0.4])
    d2 = squareform([0.3, 0.3, 0.2, 0.7, 0.8, 0.3])
    res = S.mantel(d1, d2, method="pearson")
    assert res.r == pytest.approx(0.9148936170212766, abs=1e-12)
    assert res.exact and res.permutations == 24
    assert res.p == pytest.approx(1 / 24)


def test_mantel_r_is_spearman_of_condensed_vectors():
    rng = np.random.default_rng(1)
    x = S.pairwise_distances(rng.normal(size=(12, 4)))
    y = S.great_circle_km(rng.uniform(47, 55, 12), rng.uniform(6, 15, 12))
    res = S.mantel(x, y, 999, seed=0)
    assert res.r == pytest.approx(sps.spearmanr(S.condensed(x), S.condensed(y)).statistic, abs=1e-12)
    pear = S.mantel(x, y, 99, method="pearson", seed=0)
    assert pear.r == pytest.approx(sps.pearsonr(S.condensed(x), S.condensed(y)).statistic, abs=1e-12)


@pytest.mark.parametrize("n,method", [(5, "spearman"), (6, "pearson"), (6, "spearman")])
def test_mantel_exact_p_matches_brute_force(n, method):
    rng = np.random.default_rng(n)
    pts = rng.normal(size=(n, 2))
    x = S.pairwise_distances(pts + rng.normal(0, 0.5, size=(n, 2)), "euclidean")
    y = S.pairwise_distances(pts, "euclidean")
    r0, p0 = _brute_mantel_p(x, y, method)
    res = S.mantel(x, y, method=method)
    assert res.exact and res.permutations == math.factorial(n)
    assert res.r == pytest.approx(r0, abs=1e-12)
    assert res.p == pytest.approx(p0, abs=1e-12)


def test_mantel_sampled_p_approximates_exact_and_is_seeded():
    rng = np.random.default_rng(3)
    pts = rng.normal(size=(7, 2))
    x = S.pairwise_distances(pts + rng.normal(0, 0.8, size=(7, 2)), "euclidean")
    y = S.pairwise_distances(pts, "euclidean")
    exact = S.mantel(x, y)
    sampled = S.mantel(x, y, 20000, seed=1, exact=False)
    assert not sampled.exact and sampled.permutations == 20000
    assert sampled.p == pytest.approx(exact.p, abs=0.01)
    assert S.mantel(x, y, 999, seed=5, exact=False).p == S.mantel(x, y, 999, seed=5, exact=False).p
    # the sampled p never reaches 0: (1 + hits) / (1 + permutations)
    same = S.mantel(y, y, 99, seed=0, exact=False)
    assert same.r == pytest.approx(1.0) and same.p >= 1 / 100


def test_mantel_alternatives_and_degenerate_input():
    rng = np.random.default_rng(4)
    pts = rng.normal(size=(6, 2))
    y = S.pairwise_distances(pts, "euclidean")
    x = y.max() - y  # perfectly anti-correlated (off the diagonal)
    np.fill_diagonal(x, 0)
    assert S.mantel(x, y).r == pytest.approx(-1.0)
    assert S.mantel(x, y).p == pytest.approx(1.0)
    assert S.mantel(x, y, alternative="less").p == pytest.approx(1 / 720)
    # two-sided: |r| = 1 only for the identity (no relabelling turns r = -1 into +1)
    assert S.mantel(x, y, alternative="two-sided").p == pytest.approx(1 / 720)
    flat = np.ones((6, 6)) - np.eye(6)
    res = S.mantel(flat, y)
    assert np.isnan(res.r) and np.isnan(res.p)
    with pytest.raises(ValueError):
        S.mantel(np.zeros((2, 2)), np.zeros((2, 2)))


def test_mantel_large_tables_agree_with_the_batched_path():
    """Tables above 64 entities take the row/column-copy path; same p as gathering pairs."""
    rng = np.random.default_rng(11)
    pts = rng.normal(size=(70, 2))
    x = S.pairwise_distances(pts + rng.normal(0, 1.5, size=(70, 2)), "euclidean")
    y = S.pairwise_distances(pts, "euclidean")
    big = S.mantel(x, y, 199, seed=2)
    a = sps.rankdata(S.condensed(x))
    perms = np.random.default_rng(2).permuted(np.broadcast_to(np.arange(70), (199, 70)), axis=1)
    null = [sps.pearsonr(a, sps.rankdata(S.condensed(y[np.ix_(p, p)]))).statistic for p in perms]
    assert big.p == pytest.approx((1 + np.sum(np.array(null) >= big.r - 1e-12)) / 200)


def test_mantel_9999_permutations_on_12_entities_is_fast():
    rng = np.random.default_rng(5)
    x = S.pairwise_distances(rng.normal(size=(12, 8)))
    y = S.great_circle_km(rng.uniform(47, 55, 12), rng.uniform(6, 15, 12))
    S.mantel(x, y, 99, seed=0)  # warm-up
    elapsed = np.inf
    for _ in range(3):  # CPU time, best of three: robust to a busy machine
        t0 = time.process_time()
        res = S.mantel(x, y, 9999, seed=0)
        elapsed = min(elapsed, time.process_time() - t0)
    assert res.permutations == 9999 and not res.exact
    assert elapsed < 0.5, f"9,999 permutations took {elapsed:.2f} s"


# ---------------------------------------------------------------------------- Procrustes
def test_procrustes_r2_matches_scipy_disparity():
    rng = np.random.default_rng(6)
    target = rng.normal(size=(15, 2))
    points = rng.normal(size=(15, 2)) + 0.7 * target
    _, _, disparity = scipy_procrustes(target, points)
    res = S.procrustes_test(points, target, 99, seed=0)
    assert res.r2 == pytest.approx(1 - disparity, abs=1e-12)
    assert S.procrustes_r2(points, target) == pytest.approx(1 - disparity, abs=1e-12)


def test_procrustes_recovers_rotated_reflected_scaled_copy():
    rng = np.random.default_rng(7)
    target = rng.normal(size=(10, 2)) * [300, 200] + [50, 10]
    theta = 1.1
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    points = (target @ rot) * [[-0.01, 0.01]] + 5.0  # rotated, mirrored, shrunk, shifted
    res = S.procrustes_test(points, target, 999, seed=0)
    assert res.r2 == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(res.aligned, target, atol=1e-6)
    assert res.p == pytest.approx(1 / 1000)


def test_procrustes_exact_p_matches_brute_force_and_pads_1d():
    rng = np.random.default_rng(8)
    target = rng.normal(size=(6, 2))
    points = target + rng.normal(0, 0.7, size=(6, 2))
    r0 = S.procrustes_r2(points, target)
    null = [S.procrustes_r2(points[list(p)], target) for p in itertools.permutations(range(6))]
    res = S.procrustes_test(points, target)
    assert res.exact and res.permutations == 720
    assert res.p == pytest.approx(np.mean(np.array(null) >= r0 - 1e-12))
    line = S.procrustes_test(target[:, 0], target, 99, seed=0)  # a 1-D picture against a 2-D map
    _, _, disparity = scipy_procrustes(target, np.c_[target[:, 0], np.zeros(6)])
    assert line.r2 == pytest.approx(1 - disparity, abs=1e-12)
    assert line.aligned.shape == (6, 2)


# ---------------------------------------------------------------------------- neighbours
def test_knn_overlap_hand_case_and_chance():
    line = S.pairwise_distances(np.array([0.0, 1.0, 2.0, 3.0, 4.0]), "euclidean")
    same = S.knn_overlap(line, line, 2)
    assert same.mean == 1.0 and same.chance == pytest.approx(2 / 4)
    # reversed space: identical neighbourhoods (distances are the same) -> still 1
    rev = S.pairwise_distances(np.array([4.0, 3.0, 2.0, 1.0, 0.0]), "euclidean")
    assert S.knn_overlap(line, rev, 1).mean == 1.0
    # a hand-made case: entity 0's nearest is 1 in space A and 4 in space B
    b = S.pairwise_distances(np.array([0.0, 5.0, 6.0, 7.0, 0.5]), "euclidean")
    res = S.knn_overlap(line, b, 1)
    expected = [0, 0, 1, 1, 0]  # entity 1 is equally near 0 and 2 in A: ties go to the lower index
    nn_a = S.nearest_neighbours(line, 1)[:, 0]
    nn_b = S.nearest_neighbours(b, 1)[:, 0]
    assert np.array_equal(res.per_entity, (nn_a == nn_b).astype(float))
    assert list(nn_a) == [1, 0, 1, 2, 3] and list(nn_b) == [4, 2, 1, 2, 0]
    assert list(res.per_entity) == [0, 0, 1, 1, 0] == expected


def test_knn_overlap_chance_level_is_unbiased():
    rng = np.random.default_rng(9)
    vals = [
        S.knn_overlap(
            S.pairwise_distances(rng.normal(size=(20, 3))), S.pairwise_distances(rng.normal(size=(20, 3))), 4
        ).mean
        for _ in range(300)
    ]
    assert np.mean(vals) == pytest.approx(4 / 19, abs=0.02)


def test_adjacency_rate_hand_case():
    cal = S.circular_distance(np.arange(6), 6)
    ring = S.pairwise_distances(np.c_[np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], "euclidean")
    rate, chance, nn = S.adjacency_rate(ring, cal)
    assert rate == 1.0 and chance == pytest.approx(2 / 5)
    across = S.pairwise_distances(np.array([0.0, 10, 20, 0.1, 10.1, 20.1]), "euclidean")  # 0~3, 1~4, 2~5
    rate, _, nn = S.adjacency_rate(across, cal)
    assert rate == 0.0 and list(nn) == [3, 4, 5, 0, 1, 2]


# ---------------------------------------------------------------------------- tours
def _brute_shortest(d):
    n = len(d)
    return min(C.tour_length(d, (0,) + p) for p in itertools.permutations(range(1, n)))


@pytest.mark.parametrize("n", [4, 5, 7, 8])
def test_shortest_tour_exact_matches_brute_force(n):
    rng = np.random.default_rng(n)
    d = S.pairwise_distances(rng.normal(size=(n, 3)))  # cosine: not even a metric
    tour = C.shortest_tour(d)
    assert tour.exact and sorted(tour.order) == list(range(n)) and tour.order[0] == 0
    assert tour.length == pytest.approx(_brute_shortest(d), abs=1e-12)
    assert tour.length == pytest.approx(C.tour_length(d, tour.order))


def test_shortest_tour_12_is_exact_and_fast_and_heuristic_close():
    rng = np.random.default_rng(12)
    d = S.pairwise_distances(rng.uniform(size=(12, 2)), "euclidean")
    t0 = time.process_time()
    exact = C.shortest_tour(d)
    assert exact.exact and time.process_time() - t0 < 2.0
    heuristic = C.shortest_tour(d, exact_max=0)
    assert not heuristic.exact
    assert exact.length <= heuristic.length + 1e-12
    assert heuristic.length <= exact.length * 1.03
    for seed in range(5):  # a random start is never better than the optimum
        assert C.tour_length(d, np.random.default_rng(seed).permutation(12)) >= exact.length - 1e-12


def test_heuristic_recovers_a_large_cycle():
    n = 52
    ang = 2 * np.pi * np.arange(n) / n
    rng = np.random.default_rng(0)
    perm = rng.permutation(n)
    pts = np.c_[np.cos(ang), np.sin(ang)][perm]  # entity i sits at angle of position perm[i]
    d = S.pairwise_distances(pts, "euclidean")
    tour = C.shortest_tour(d)
    assert not tour.exact
    assert C.same_cycle(tour.order, np.argsort(perm))
    assert tour.length == pytest.approx(n * 2 * np.sin(np.pi / n))


def test_tour_test_exact_p_on_a_circle():
    ang = 2 * np.pi * np.arange(7) / 7
    d = S.pairwise_distances(np.c_[np.cos(ang), np.sin(ang)], "euclidean")
    res = C.tour_test(d, np.arange(7))
    # only the calendar cycle (one of (7-1)!/2 = 360 distinct closed tours) is that short
    assert res.exact and res.permutations == 720
    assert res.p == pytest.approx(1 / 360)
    assert res.ratio == pytest.approx(1.0)
    shuffled = C.tour_test(d, np.array([0, 3, 6, 2, 5, 1, 4]))  # the star heptagon: the longest
    assert shuffled.p == pytest.approx(1.0) and shuffled.ratio > 2


def test_tour_test_sampled_p_and_brute_force_exact():
    rng = np.random.default_rng(2)
    d = S.pairwise_distances(rng.normal(size=(6, 3)))
    order = rng.permutation(6)
    obs = C.tour_length(d, order)
    lengths = [C.tour_length(d, p) for p in itertools.permutations(range(6))]
    res = C.tour_test(d, order)
    assert res.p == pytest.approx(np.mean(np.array(lengths) <= obs + 1e-12))
    sampled = C.tour_test(d, order, 20000, seed=0, exact=False)
    assert sampled.p == pytest.approx(res.p, abs=0.015)
    with pytest.raises(ValueError):
        C.tour_test(d, [0, 1, 2, 3, 4, 4])


# ---------------------------------------------------------------------------- cyclic orders
def test_circular_rank_agreement_is_invariant_to_rotation_and_reflection():
    pos = np.arange(7)
    assert C.circular_rank_agreement([0, 1, 2, 3, 4, 5, 6], pos) == pytest.approx(1.0)
    assert C.circular_rank_agreement([3, 4, 5, 6, 0, 1, 2], pos) == pytest.approx(1.0)
    assert C.circular_rank_agreement([5, 4, 3, 2, 1, 0, 6], pos) == pytest.approx(1.0)
    # one swap: best alignment correlates ranks (0,1,2,3,4,6,5) with (0..6): 1 - 6*2/(7*48)
    assert C.circular_rank_agreement([0, 1, 2, 3, 4, 6, 5], pos) == pytest.approx(1 - 12 / 336)
    star = C.circular_rank_agreement([0, 3, 6, 2, 5, 1, 4], pos)
    chance = C.agreement_chance(7, pos, samples=4000, seed=0)
    assert star < 1 and 0 < chance < 1
    assert C.same_cycle([2, 1, 0, 6, 5, 4, 3], np.arange(7)) and not C.same_cycle([0, 2, 1, 3], np.arange(4))


def test_orient_tour_prints_in_calendar_direction():
    pos = np.array([3, 0, 1, 2])  # entity 1 is first in the calendar, then 2, 3, 0
    assert list(C.orient_tour([0, 3, 2, 1], pos)) == [1, 2, 3, 0]
    assert list(C.orient_tour([2, 1, 0, 3], pos)) == [1, 2, 3, 0]


def test_project_2d_pca_and_1d():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 5)) * [5, 2, 0.1, 0.1, 0.1]
    p = P.project_2d(x)
    assert p.shape == (10, 2)
    assert np.var(p[:, 0]) > np.var(p[:, 1])
    one = P.project_2d(np.arange(5.0)[:, None])
    assert one.shape == (5, 2) and np.all(one[:, 1] == 0)
    with pytest.raises(ValueError):
        P.project_2d(x, "nope")


def test_describe_p_marks_the_resolution_limit():
    assert S.describe_p(1 / 10000, 9999, False, 12).startswith("p <= 0.0001")
    assert S.describe_p(0.0312, 5040, True, 7) == "p = 0.031, exact over all 5,040 orderings"
