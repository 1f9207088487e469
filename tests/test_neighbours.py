"""``embedlab neighbors --metric --min-count``: the metric and the minimum count the report's
explorer offers, with the default they share (toolkit.neighbors.DEFAULT_MIN_COUNT)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, knn_lists, nearest
from embedlab.toolkit.selection import select_entities
from test_report import two_table_run


def _cli(*args):
    from embedlab.cli import make_cli

    res = CliRunner().invoke(make_cli(), ["neighbors", *map(str, args), "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_cli_metric_and_shared_minimum_count(tmp_path):
    run = two_table_run()
    run.save(tmp_path / "r")
    items = run.table("item")
    default = select_entities(items, 0, DEFAULT_MIN_COUNT).index
    for metric, col in (("cosine", "cosine"), ("euclidean", "distance")):
        out = _cli(tmp_path / "r", "Film number 12 (1962)", "-k", 10, "--metric", metric)
        want = nearest(items, 12, 10, default, metric)
        assert [r["key"] for r in out["neighbors"]] == list(want["key"])
        np.testing.assert_allclose([r[col] for r in out["neighbors"]], want[col], rtol=1e-5)
        assert f"at least {DEFAULT_MIN_COUNT} times" in out["candidates"]
    out = _cli(tmp_path / "r", "Film number 12 (1962)", "--min-count", 0)  # 0: every observed entity
    assert [r["key"] for r in out["neighbors"]] == list(
        nearest(items, 12, 10, select_entities(items, 0, 0).index)["key"]
    )
    euclid = nearest(items, 12, 10, default, "euclidean")["distance"].to_numpy()
    assert (np.diff(euclid) >= 0).all()


def test_knn_lists_equal_nearest_for_every_row():
    run = two_table_run(n_items=120)
    items = run.table("item")
    cand = select_entities(items, 0, DEFAULT_MIN_COUNT).index
    for metric, col in (("cosine", "cosine"), ("euclidean", "distance")):
        rows, scores = knn_lists(items.vectors, 10, cand, metric)
        for row in range(len(items)):
            want = nearest(items, row, 10, cand, metric)
            assert list(rows[row]) == list(
                want.index.map(lambda j: int(np.flatnonzero(items.keys == want["key"][j])[0]))
            )
            np.testing.assert_allclose(scores[row], want[col], rtol=1e-4, atol=1e-5)


def _brute_force(v, k, cand, queries, metric):
    """The rule spelled out the slow way: float64 scores row by row, nearest first, ties to the lower row."""
    rows, scores = [], []
    for q in queries:
        keys = []
        for c in cand:
            if c == q:
                continue
            if metric == "cosine":
                den = float(np.sqrt(np.dot(v[c], v[c])) * np.sqrt(np.dot(v[q], v[q])))
                keys.append((-(float(np.dot(v[c], v[q])) / den) if den > 0 else 0.0, int(c)))
            else:
                keys.append((float(np.dot(v[c] - v[q], v[c] - v[q])), int(c)))
        best = sorted(keys)[:k]
        rows.append([c for _, c in best])
        scores.append([-s if metric == "cosine" else np.sqrt(s) for s, _ in best])
    return rows, scores


@pytest.mark.parametrize("engine", ["torch", "faiss"])
def test_knn_lists_equal_brute_force_with_ties(engine):
    """Either engine's fast path (float32 products, a top-(k+6), float64 re-ranking, every candidate where the
    edge is in doubt) lists exactly what the rule says, ties included: rows copied many times
    (more equal vectors than the fast path keeps), rows scaled by two (equal cosines), a zero row,
    a candidate subset, queries outside it, and k larger than the candidates."""
    if engine == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(3)
    v = rng.normal(size=(400, 12))
    v[100:120] = v[7]  # 20 equal vectors: ties past the k + 6 the fast path keeps
    v[120:130] = 2 * v[8]  # equal cosines to v[8]'s, different distances
    away = rng.normal(size=12)  # near ties float32 cannot tell apart, the higher rows nearer
    v[130:170] = v[9] + np.sort(rng.uniform(1e-5, 3e-4, 40))[::-1, None] * away / np.linalg.norm(away)
    v[170] = 0
    cand = np.sort(rng.choice(400, 300, replace=False))
    cand = np.union1d(cand, [7, 8, 9, *range(100, 171)])
    queries = np.array([7, 8, 9, 100, 121, 135, 169, 170, 3, *rng.choice(400, 25, replace=False)])
    for metric in ("cosine", "euclidean"):
        rows, scores = knn_lists(v, 10, cand, metric, queries=queries, engine=engine)
        want_rows, want_scores = _brute_force(v, 10, cand, queries, metric)
        assert rows.tolist() == want_rows, metric
        np.testing.assert_allclose(scores, want_scores, rtol=1e-12, atol=1e-12)
        few = np.array([1, 2, 3, 7])
        rows, scores = knn_lists(
            v, 10, few, metric, queries=[7, 5], engine=engine
        )  # fewer candidates than k: -1 and NaN
        want_rows, _ = _brute_force(v, 10, few, [7, 5], metric)
        assert [r[r >= 0].tolist() for r in rows] == want_rows and np.isnan(scores[0, 3:]).all()
