"""The analysis plugins (bias-ranking, pca, umap, neighbors), the neighbors and export commands.

Unit tests use the small synthetic-collab run of conftest (planted genres and biases) and a
negative control with the planted labels shuffled; real-data tests (ml-100k u1) skip without
EMBEDLAB_DATA_DIR.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedlab
from embedlab.runner import run_analyses
from embedlab.cli import make_cli
from embedlab.errors import RunFormatError, UsageError
from embedlab.run import EmbeddingTable, Run, load_run


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def run(synthetic_run) -> Run:
    return load_run(synthetic_run)


def shuffled(run: Run, seed: int = 7) -> Run:
    """Negative control: the same embeddings with the planted annotations permuted (what
    ``--shuffle-truth`` does to the dataset; the ratings, hence the embeddings, are unchanged)."""
    rng = np.random.default_rng(seed)
    tables = {}
    for name, t in run.tables.items():
        meta = t.metadata.copy()
        for col in ("genre", "true_bias", "favourite_genre"):
            if col in meta:
                meta[col] = meta[col].to_numpy()[rng.permutation(len(meta))]
        tables[name] = EmbeddingTable(name, t.keys, t.labels, t.vectors, t.bias_values, meta, dict(t.attrs))
    return Run(dict(run.meta), tables)


def one(run: Run, analysis: str, table: str = "item", **options):
    results = [r for r in run_analyses(run, [analysis], options, render=False) if r.table == table]
    assert len(results) == 1, results
    r = results[0]
    assert r.error is None, r.error
    return r


def store_run(n: int = 300, seed: int = 0) -> Run:
    """A tabular-like run: store embeddings whose main direction follows mean sales, with a
    store type; no bias (as entity-embedding nets have none)."""
    rng = np.random.default_rng(seed)
    sales = rng.lognormal(8.5, 0.4, n)
    kind = rng.choice(list("abcd"), n)
    vec = rng.normal(0, 0.05, (n, 10))
    vec[:, 0] += (np.log(sales) - 8.5) * 2
    vec[:, 1] += np.array([{"a": 0.0, "b": 0.6, "c": -0.6, "d": 0.3}[k] for k in kind])
    meta = pd.DataFrame({"count": rng.integers(600, 942, n), "mean_sales": sales, "StoreType": kind})
    t = EmbeddingTable(
        "Store",
        np.arange(1, n + 1),
        [f"store {i}" for i in range(1, n + 1)],
        vec,
        metadata=meta,
        attrs={"count_column": "count", "target_column": "mean_sales", "color_column": "StoreType"},
    )
    return Run({"dataset": "stores", "kind": "tabular"}, {"Store": t})


# ---------------------------------------------------------------------------- registration
def test_plugins_registered_through_entry_points():
    from embedlab.plugins import plugin_infos
    from embedlab.registry import analyses

    found = analyses()
    for name in ("bias-ranking", "pca", "umap", "neighbors"):
        assert name in found
    infos = {i.name: i for i in plugin_infos()}
    for ep in ("bias-ranking", "pca", "umap", "neighbors"):
        assert infos[ep].builtin and infos[ep].module.startswith("embedlab_plugins.")
    from embedlab.cli import make_cli  # `embedlab neighbors` is a core command (cli/neighbors.py) on the toolkit

    assert make_cli().get_command(None, "neighbors") is not None


def test_applies_to(run):
    from embedlab.registry import analyses

    a = analyses()
    assert a["bias-ranking"].applies_to(run) == ["user", "item"]
    stores = store_run()
    assert a["bias-ranking"].applies_to(stores) == []  # no bias: nothing to rank
    assert a["pca"].applies_to(stores) == ["Store"] and a["neighbors"].applies_to(stores) == ["Store"]


# ---------------------------------------------------------------------------- bias ranking
def test_bias_ranking_recovers_planted_extremes(run):
    r = one(run, "bias-ranking")
    item = run.table("item")
    truth = pd.Series(item.metadata["true_bias"].to_numpy(), index=item.labels)
    top_q, bottom_q = truth.quantile(0.8), truth.quantile(0.2)
    high, low = r.tables["highest bias"], r.tables["lowest bias"]
    assert list(high["bias"]) == sorted(high["bias"], reverse=True) and list(low["bias"]) == sorted(low["bias"])
    assert (truth[high["label"].head(5)] >= top_q).mean() >= 0.8
    assert (truth[low["label"].head(5)] <= bottom_q).mean() >= 0.8
    assert r.metrics["spearman_bias_true_bias"] > 0.8
    assert 0.5 < r.metrics["spearman_bias_mean_rating"] <= 1
    # the summary says which filter and why bias differs from the mean rating
    assert "all 200 observed items" in r.summary and "paired with" in r.summary
    assert "mean_rating" in r.summary and "Spearman rho" in r.summary


def test_bias_ranking_negative_control(run):
    r = one(shuffled(run), "bias-ranking")
    assert abs(r.metrics["spearman_bias_true_bias"]) < 0.25
    truth = run.table("item").metadata["true_bias"]  # unshuffled learned biases, shuffled truth
    assert abs(r.metrics["spearman_bias_mean_rating"]) > 0.5 and len(truth) == 200


def test_bias_ranking_filters(run):
    counts = run.table("item").metadata["count"]
    r = one(run, "bias-ranking", top_n=50)
    assert r.metrics["n_entities"] == 50 and "the 50 most-observed of 200 items (--top-n 50" in r.summary
    assert r.tables["highest bias"]["count"].min() >= counts.sort_values().iloc[-50]
    r = one(run, "bias-ranking", min_count=100, n_show=3)
    assert r.metrics["n_entities"] == (counts >= 100).sum() and "--min-count 100" in r.summary
    assert len(r.tables["highest bias"]) == 3 and r.tables["lowest bias"]["count"].min() >= 100
    users = one(run, "bias-ranking", table="user")
    assert "key" in users.tables["highest bias"] and "restate keys" in users.summary


def test_bias_ranking_too_strict_filter_is_an_error_section(run):
    r = [x for x in run_analyses(run, ["bias-ranking"], {"min_count": 10**6}, render=False) if x.table == "item"][0]
    assert r.error and "lower --min-count" in r.error


# ---------------------------------------------------------------------------- PCA
def test_pca_separates_planted_genres(run):
    r = one(run, "pca")
    evr = [r.metrics[f"explained_variance_{i}"] for i in (1, 2, 3)]
    assert evr == sorted(evr, reverse=True) and 0 < sum(evr) <= 1
    from sklearn.decomposition import PCA

    item = run.table("item")
    assert np.allclose(evr, PCA(3).fit(item.vectors.astype(np.float64)).explained_variance_ratio_, atol=1e-6)
    assert r.metrics["pc1_eta2_genre"] > 0.5
    assert r.metrics["pc12_knn_same_genre"] > 0.8 > r.metrics["chance_same_genre"] + 0.3
    assert "Component 1 follows genre" in r.summary
    ends = r.tables["component 1: its two ends"]
    lo_genres = {l.split("(")[-1] for l in ends["low end"].head(5)}
    hi_genres = {l.split("(")[-1] for l in ends["high end"].head(5)}
    assert not lo_genres & hi_genres  # each end is its own genre(s)


def test_pca_negative_control(run):
    r = one(shuffled(run), "pca")
    assert r.metrics["pc1_eta2_genre"] < 0.1
    assert r.metrics["pc12_knn_same_genre"] < r.metrics["chance_same_genre"] + 0.1


def test_pca_follows_mean_sales_on_a_store_table():
    r = one(store_run(), "pca", table="Store")
    assert r.metrics["pc1_rho_mean_sales"] > 0.9
    import re

    assert re.search(r"Component 1 follows mean_sales \(rho (0\.9\d|1\.00)\)", r.summary), r.summary
    assert r.metrics["pc1_eta2_StoreType"] < r.metrics["pc2_eta2_StoreType"]
    assert "StoreType" in r.summary


def test_pca_top_n_restricts_and_render_builds_webgl_scatter(run):
    r = one(run, "pca", top_n=60, n_components=2)
    assert r.metrics["n_entities"] == 60 and "explained_variance_3" not in r.metrics
    from embedlab.registry import get_analysis

    figs = get_analysis("pca").render(r)
    assert len(figs) == 1 and figs[0].output_backend == "webgl"
    from bokeh.models import HoverTool

    hover = figs[0].select_one(HoverTool)
    assert hover.tooltips[0][0] == "label"


# ---------------------------------------------------------------------------- neighbours
def test_neighbours_share_planted_genre(run):
    r = one(run, "neighbors", k=10)
    assert r.metrics["knn_same_genre"] > 0.8
    table = next(iter(r.tables.values()))
    query = next(iter(r.tables)).removeprefix("neighbours of ")
    genre = run.table("item").metadata["genre"].to_numpy()[run.table("item").lookup(query)]
    assert (table["genre"] == genre).mean() >= 0.8
    assert query not in set(table["label"]) and list(table["cosine"]) == sorted(table["cosine"], reverse=True)
    assert len(r.tables) == 6  # the six most-observed items


def test_neighbours_negative_control(run):
    r = one(shuffled(run), "neighbors")
    assert r.metrics["knn_same_genre"] < r.metrics["chance_same_genre"] + 0.1
    assert "does not group" in r.summary


def test_neighbours_named_entities_and_missing_ones(run):
    r = one(run, "neighbors", entity=("item 4 (genre 3)", "nope"), k=3)
    assert list(r.tables) == ["neighbours of item 4 (genre 3)"] and len(r.tables["neighbours of item 4 (genre 3)"]) == 3
    assert "Not found in table item: nope" in r.summary


def test_nearest_is_exact_cosine(run):
    from embedlab_plugins.neighbors import nearest

    t = run.table("item")
    got = nearest(t, 0, 5)
    v = t.vectors / np.linalg.norm(t.vectors, axis=1, keepdims=True)
    sims = v @ v[0]
    sims[0] = -np.inf
    assert list(got["key"]) == list(t.keys[np.argsort(-sims)[:5]])
    assert np.allclose(got["cosine"], np.sort(sims)[::-1][:5], atol=1e-5)


# ---------------------------------------------------------------------------- UMAP
@pytest.mark.slow
def test_umap_seeded_reproducible_and_groups_genres(run):
    r1 = one(run, "umap")
    r2 = one(run, "umap")
    assert r1.metrics["seeded"] == 1 and r1.metrics["sampled"] == 0
    a, b = r1.data["plot"][["UMAP 1", "UMAP 2"]].to_numpy(), r2.data["plot"][["UMAP 1", "UMAP 2"]].to_numpy()
    assert np.array_equal(a, b)
    assert r1.metrics["knn_same_genre"] > 0.8 and r1.metrics["neighbours_kept_10"] > 0.3
    params = dict(zip(r1.tables["parameters"]["parameter"], r1.tables["parameters"]["value"]))
    assert params["random_state"] == "0" and params["metric"] == "cosine" and params["n_neighbors"] == "15"
    assert "random_state 0" in r1.summary and "reproducible" in r1.summary
    # sampling is stated, never silent
    r = one(run, "umap", umap_max_points=120)
    assert r.metrics["n_points"] == 120 and r.metrics["sampled"] == 1
    assert "random sample of 120 of these 200 items" in r.summary


@pytest.mark.slow
def test_umap_above_seeded_limit_runs_parallel_and_says_so(run):
    r = one(run, "umap", top_n=80, umap_seeded_max=50)
    assert r.metrics["seeded"] == 0 and "unseeded" in r.summary and "varies slightly" in r.summary
    assert len(r.data["plot"]) == 80


def test_exact_neighbours_for_umap_match_scikit_learn():
    from sklearn.neighbors import NearestNeighbors

    from embedlab.toolkit.projection import exact_distances, exact_knn

    rng = np.random.default_rng(3)
    x = rng.normal(size=(700, 12)).astype(np.float32)
    x[5] = x[4]  # a duplicate must still come first in its own row
    for metric in ("cosine", "euclidean"):
        idx, dist = exact_knn(x, 8, metric)
        ref_d, ref_i = NearestNeighbors(n_neighbors=8, metric=metric, algorithm="brute").fit(x).kneighbors(x)
        assert (idx[:, 0] == np.arange(700)).all() and np.allclose(dist[:, 0], 0, atol=1e-4)
        assert np.allclose(np.sort(dist, 1), np.sort(ref_d, 1), atol=1e-3)
        assert (idx[:, 1:4] == ref_i[:, 1:4]).mean() > 0.98  # ties aside, the same neighbours
    d = exact_distances(x[:50], "cosine")
    assert d.shape == (50, 50) and np.allclose(np.diag(d), 0) and (d >= 0).all()


# ---------------------------------------------------------------------------- export = report
# `embedlab export --format csv` writes toolkit.projection.coordinates; the pca and umap analyses
# plot from the same functions. These fail if the two ever compute different coordinates.
@pytest.mark.parametrize("table", ["item", "user"])
def test_export_coordinates_are_the_pca_plot(run, table):
    from embedlab.toolkit.projection import coordinates, projected_coordinates

    got = coordinates(run.table(table))
    plot = one(run, "pca", table=table, top_n=0).data["plot"]
    assert list(got.columns) == ["key", "PC1", "PC2", "PC3"] and len(got) == len(plot)
    assert np.array_equal(got["key"].to_numpy(), plot["key"].to_numpy())
    for col in ("PC1", "PC2", "PC3"):
        assert got[col].dtype == plot[col].dtype and np.array_equal(got[col].to_numpy(), plot[col].to_numpy())
    csv = projected_coordinates(run.table(table))
    assert np.array_equal(csv["key"].to_numpy(), plot["key"].to_numpy())
    assert np.array_equal(csv["pca_1"].to_numpy(), np.round(plot["PC1"].to_numpy(dtype=float), 6))


@pytest.mark.slow
def test_export_coordinates_are_the_umap_plot(run):
    from embedlab.toolkit.projection import coordinates

    got = coordinates(run.table("item"), umap=True, seed=3)
    plot = one(run, "umap", top_n=0, seed=3).data["plot"]
    pca = one(run, "pca", top_n=0).data["plot"]
    assert list(got.columns) == ["key", "PC1", "PC2", "PC3", "UMAP 1", "UMAP 2"]
    assert np.array_equal(got["key"].to_numpy(), plot["key"].to_numpy())
    for col in ("UMAP 1", "UMAP 2"):
        assert np.array_equal(got[col].to_numpy(), plot[col].to_numpy())
    assert np.array_equal(got["PC1"].to_numpy(), pca["PC1"].to_numpy())


def test_coordinates_leave_out_unobserved_and_unsampled_rows(run):
    from embedlab.toolkit.projection import coordinates, umap_project

    t = run.table("item")
    meta = t.metadata.copy()
    meta.loc[[0, 5, 9], "count"] = 0  # never observed: no coordinates, as in the analyses
    t = EmbeddingTable(t.name, t.keys, t.labels, t.vectors, t.bias_values, meta, dict(t.attrs))
    got = coordinates(t)
    assert len(got) == len(t) - 3 and not set(t.keys[[0, 5, 9]]) & set(got["key"])
    sel, rows, coords, params = umap_project(t, 0, None, seed=2, max_points=60)
    assert len(rows) == 60 and params["sampled"] and params["sample_seed"] == 2
    assert set(rows) <= set(sel.index) and list(rows) == sorted(rows) and coords.shape == (60, 2)


# ---------------------------------------------------------------------------- Python API
def test_analyze_api_returns_displayable_results(run):
    results = embedlab.analyze(run, ["pca"])
    assert [r.table for r in results] == ["user", "item"]
    html = results._repr_html_()  # inline (no iframe): BokehJS travels once per notebook (test_api.py)
    assert html.startswith('<div class="embedlab-nb">') and "Bokeh" in html and "PCA projection" in html
    assert results[1]._repr_html_().startswith('<div class="embedlab-nb">')
    assert results[1].figures and results[1].figures[0].output_backend == "webgl"


# ---------------------------------------------------------------------------- CLI
def test_cli_analyze_json(synthetic_run):
    res = CliRunner().invoke(
        make_cli(), ["analyze", str(synthetic_run), "--only", "bias-ranking,pca", "--json", "--top-n", "100"]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    got = {(r["analysis"], r["table"]) for r in payload["results"]}
    assert got == {("bias-ranking", "user"), ("bias-ranking", "item"), ("pca", "user"), ("pca", "item")}
    item = next(r for r in payload["results"] if r["analysis"] == "bias-ranking" and r["table"] == "item")
    assert item["metrics"]["n_entities"] == 100 and isinstance(item["tables"]["highest bias"], list)
    assert set(item["tables"]["highest bias"][0]) >= {"rank", "label", "bias", "count", "mean_rating"}


def test_cli_bad_inputs(tmp_path, synthetic_run):
    cli = make_cli()
    runner = CliRunner()
    res = runner.invoke(cli, ["analyze", str(tmp_path)])
    assert res.exit_code != 0 and "not an embedlab run" in res.output
    res = runner.invoke(cli, ["analyze", str(synthetic_run), "--only", "pca,bias-rank"])
    assert res.exit_code == 2 and "unknown analysis 'bias-rank'" in res.output
    assert "bias-ranking" in res.output and "neighbors" in res.output and "umap" in res.output
    newer = tmp_path / "newer"
    newer.mkdir()
    for f in Path(synthetic_run).iterdir():
        (newer / f.name).write_bytes(f.read_bytes())
    meta = json.loads((newer / "run.json").read_text())
    meta["format_version"] = 99
    (newer / "run.json").write_text(json.dumps(meta))
    res = runner.invoke(cli, ["analyze", str(newer)])
    assert res.exit_code != 0 and "format version 99" in res.output and "upgrade" in res.output
    with pytest.raises(RunFormatError):
        embedlab.analyze(str(newer))


def test_cli_neighbors(synthetic_run):
    cli = make_cli()
    runner = CliRunner()
    res = runner.invoke(cli, ["neighbors", str(synthetic_run), "item 4 (genre 3)", "-k", "4", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["table"] == "item" and len(out["neighbors"]) == 4 and out["entity"]["key"] == 4
    assert sum(n["genre"] == "genre 3" for n in out["neighbors"]) >= 3
    res = runner.invoke(cli, ["neighbors", str(synthetic_run), "ITEM 4 genre 3"])  # forgiving (rule 3)
    assert res.exit_code == 0 and "item 4 (genre 3) (item 4)" in res.stdout
    res = runner.invoke(cli, ["neighbors", str(synthetic_run), "item 4 (genre 9)"])
    assert res.exit_code == 2 and "did you mean" in res.output and "item 4 (genre 3)" in res.output
    res = runner.invoke(cli, ["neighbors", str(synthetic_run), "17", "--table", "item", "-k", "2"])
    assert res.exit_code == 0 and "item 17" in res.stdout
    res = runner.invoke(cli, ["neighbors", str(synthetic_run), "zzzzzz"])
    assert res.exit_code == 2 and "no entity with label or key 'zzzzzz'" in res.output


# ---------------------------------------------------------------------------- export
def hostile_table() -> EmbeddingTable:
    rng = np.random.default_rng(0)
    return EmbeddingTable(
        "item",
        np.array(["a b", "c", "d"]),
        ["tab\there", "new\nline", "<img src=x>"],
        rng.normal(size=(3, 4)),
        rng.normal(size=3),
        metadata=pd.DataFrame({"count": [3, 2, 1], "note": ["x\ty", None, "z"]}),
    )


def test_export_projector_word2vec_npy(tmp_path):
    from embedlab.io.exchange import export_table

    t = hostile_table()
    files = export_table(t, "projector", tmp_path / "p")
    assert [f.name for f in files] == ["vectors.tsv", "metadata.tsv"]
    vec = np.loadtxt(tmp_path / "p" / "vectors.tsv", delimiter="\t")
    assert vec.shape == (3, 4) and np.allclose(vec, t.vectors, atol=1e-5)
    lines = (tmp_path / "p" / "metadata.tsv").read_text().split("\n")
    assert lines[0] == "label\tkey\tbias\tcount\tnote" and len([l for l in lines if l]) == 4
    assert lines[1].startswith("tab here\ta b\t") and lines[2].startswith("new line\tc\t")
    assert all(len(l.split("\t")) == 5 for l in lines if l)

    export_table(t, "word2vec", tmp_path / "w")
    w = (tmp_path / "w" / "vectors.txt").read_text().splitlines()
    assert w[0] == "3 4" and w[1].split(" ")[0] == "a_b" and len(w[1].split(" ")) == 5
    assert np.allclose([float(x) for x in w[2].split(" ")[1:]], t.vectors[1], atol=1e-5)

    export_table(t, "npy", tmp_path / "n")
    assert np.array_equal(np.load(tmp_path / "n" / "vectors.npy", allow_pickle=False), t.vectors)
    assert (tmp_path / "n" / "keys.txt").read_text().splitlines() == ["a b", "c", "d"]
    with pytest.raises(UsageError, match="unknown export format"):
        export_table(t, "hdf5", tmp_path / "x")


def test_cli_export_projector_and_csv(tmp_path, synthetic_run):
    cli = make_cli()
    runner = CliRunner()
    res = runner.invoke(
        cli, ["export", str(synthetic_run), "--table", "item", "--format", "projector", "--out", str(tmp_path / "e")]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "e" / "vectors.tsv").read_text().count("\n") == 200
    meta = pd.read_csv(tmp_path / "e" / "metadata.tsv", sep="\t")
    assert list(meta.columns[:3]) == ["label", "key", "bias"] and len(meta) == 200
    res = runner.invoke(
        cli, ["export", str(synthetic_run), "--table", "item", "--format", "csv", "--out", str(tmp_path / "e")]
    )
    assert res.exit_code == 0, res.output
    coords = pd.read_csv(tmp_path / "e" / "coordinates.csv")
    assert {"key", "label", "pca_1", "pca_2", "pca_3", "genre"} <= set(coords.columns) and len(coords) == 200
    res = runner.invoke(cli, ["export", str(synthetic_run), "--out", str(tmp_path / "f")])
    assert res.exit_code == 2 and "--table" in res.output and "user, item" in res.output


# ---------------------------------------------------------------------------- real data
_TRAINED: dict[str, Path] = {}


def ml100k_run_dir(tmp_path_factory) -> Path:
    """An ml-100k u1 run with the default config, trained once per session (test_browser
    reuses it); skips without EMBEDLAB_DATA_DIR."""
    from conftest import data_dir

    folder = data_dir("ml-100k")
    if "ml-100k" not in _TRAINED:
        out = tmp_path_factory.mktemp("ml") / "ml100k-u1"
        embedlab.train("movielens-100k", out=out, data_dir=folder, split="u1")
        _TRAINED["ml-100k"] = out
    return _TRAINED["ml-100k"]


@pytest.fixture(scope="module")
def ml100k(tmp_path_factory):
    return load_run(ml100k_run_dir(tmp_path_factory))


FAMOUS = [
    "Schindler's List (1993)",
    "Shawshank Redemption, The (1994)",
    "Star Wars (1977)",
    "Titanic (1997)",
    "Silence of the Lambs, The (1991)",
    "Casablanca (1942)",
    "Usual Suspects, The (1995)",
    "Rear Window (1954)",
]


@pytest.mark.realdata
def test_ml100k_bias_ranking_and_neighbours(ml100k):
    r = one(ml100k, "bias-ranking")
    assert r.metrics["n_entities"] == 1000 and "1,000 most-observed of 1,682 items" in r.summary
    top = list(r.tables["highest bias"]["label"])
    assert len(set(top) & set(FAMOUS)) >= 2, top
    n = one(ml100k, "neighbors", entity=("Star Wars (1977)",))
    near = set(n.tables["neighbours of Star Wars (1977)"]["label"])
    assert near & {"Return of the Jedi (1983)", "Empire Strikes Back, The (1980)"}, near
    p = one(ml100k, "pca")
    assert p.metrics["n_entities"] == 1000 and "Component 1" in p.summary
