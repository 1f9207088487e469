"""``embedlab neighbors --metric --min-count``: the metric and the minimum count the report's
explorer offers, with the default they share (toolkit.neighbors.DEFAULT_MIN_COUNT)."""
from __future__ import annotations

import json

import numpy as np
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
    assert [r["key"] for r in out["neighbors"]] == list(nearest(items, 12, 10, select_entities(items, 0, 0).index)["key"])
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
            assert list(rows[row]) == list(want.index.map(lambda j: int(np.flatnonzero(items.keys == want["key"][j])[0])))
            np.testing.assert_allclose(scores[row], want[col], rtol=1e-4, atol=1e-5)
