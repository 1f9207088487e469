"""t-SNE: one layout function (toolkit.projection), the ``tsne`` analysis with the paper's Fig. 3
statistics for tables with coordinates, the explorer's map and ``export --format csv --tsne``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab.registry import analyses
from embedlab.runner import run_analyses
from embedlab.toolkit import projection as P


@pytest.fixture(scope="module")
def state_results(guo_tiny_run):
    res = run_analyses(guo_tiny_run, ["tsne", "geography"], {"projection": "tsne", "permutations": 999}, render=True)
    return {(r.analysis, r.table): r for r in res}


def test_layout_is_seeded_and_states_its_parameters():
    x = np.random.default_rng(0).normal(size=(40, 6)).astype(np.float32)
    a, pa = P.tsne_layout(x, seed=3)
    b, _ = P.tsne_layout(x, seed=3)
    assert a.shape == (40, 2) and a.dtype == np.float32
    assert np.array_equal(a, b)  # PCA initialisation: the seed only breaks ties
    assert pa["perplexity"] == pytest.approx(13.0) and pa["init"] == "pca" and pa["random_state"] == 3
    assert pa["metric"] == "cosine" and pa["max_iter"] == 1000 and "sklearn_version" in pa
    assert P.tsne_perplexity(12) == pytest.approx(11 / 3) and P.tsne_perplexity(1000) == 30.0
    # project_2d (geography's and cyclic's --projection tsne) is the same layout
    assert np.array_equal(P.project_2d(x, "tsne", seed=3, metric="cosine"), a.astype(np.float64))
    with pytest.raises(ValueError, match="at least 3"):
        P.tsne_layout(x[:2])


def test_tsne_is_named_only_and_maps_small_tables(guo_tiny_run):
    entry = analyses()["tsne"]
    assert not entry.by_default
    names = entry.applies_to(guo_tiny_run)
    assert "State" in names and "Promo" not in names  # 12 states mapped; a 2-entity table is not


def test_state_map_carries_the_papers_fig3_statistics(state_results, guo_tiny_run):
    r = state_results[("tsne", "State")]
    assert r.error is None, r.error
    table = guo_tiny_run.table("State")
    m = r.maps["t-SNE"]
    assert list(m.columns) == ["key", "x", "y"] and len(m) == len(table)
    sel, rows, coords, _ = P.tsne_project(table, seed=0, metric="cosine")
    assert np.array_equal(m[["x", "y"]].to_numpy(), coords)
    for key in ("mantel_r", "mantel_p", "procrustes_r2", "procrustes_p"):
        assert np.isfinite(r.metrics[key])
    # the same statistics as the geography analysis with --projection tsne: one layout, one test
    g = state_results[("geography", "State")]
    assert r.metrics["procrustes_r2"] == pytest.approx(g.metrics["procrustes_r2"])
    assert r.metrics["mantel_r"] == pytest.approx(g.metrics["mantel_r"])
    assert "Fig. 3" in r.summary and "perplexity 3.6667" in r.summary
    assert r.headline == ["mantel_r", "procrustes_r2"] and "Mantel" in r.tables["geography of the t-SNE map"].iloc[0, 0]
    assert "Mantel r" in r.figures[0].title.text


def test_large_tables_are_sampled_and_said_so(synthetic_run):
    run = embedlab.load_run(synthetic_run)
    r = run_analyses(run, ["tsne"], {"tsne_max_points": 60, "top_n": 0})
    item = next(x for x in r if x.table == "item")
    assert item.error is None, item.error
    assert item.metrics["n_points"] == 60 and item.metrics["sampled"] == 1.0
    assert "random sample of 60" in item.summary and len(item.maps["t-SNE"]) == 60
    assert "knn_same_genre" in item.metrics  # genres are groups; the map is scored against them


def test_export_csv_writes_the_tsne_map(synthetic_run, tmp_path):
    from embedlab.authoring.testing import invoke

    run = embedlab.load_run(synthetic_run)
    res = invoke(
        ["export", str(synthetic_run), "--table", "item", "--format", "csv", "--tsne", "--out", str(tmp_path / "x")]
    )
    assert res.exit_code == 0, res.output
    csv = pd.read_csv(tmp_path / "x" / "coordinates.csv")
    assert {"pca_1", "tsne_1", "tsne_2"} <= set(csv.columns) and "umap_1" not in csv.columns
    result = run_analyses(run, ["tsne"], {"top_n": 0})
    m = next(x for x in result if x.table == "item").maps["t-SNE"]
    merged = csv.merge(m, on="key")
    assert len(merged) == len(m) == len(csv)
    assert np.allclose(merged["tsne_1"], merged["x"], atol=1e-5) and np.allclose(
        merged["tsne_2"], merged["y"], atol=1e-5
    )
