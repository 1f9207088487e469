"""The report writer: sections, failures in place, escaping, small inline BokehJS, terminal, JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedlab
from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisResult
from embedlab.runner import run_analyses
from embedlab.cli import make_cli
from embedlab.report.html import frame_html, render_html, results_json, write_report
from embedlab.report.notebook import ResultList, result_html_standalone
from embedlab.report.terminal import print_terminal
from embedlab.run import EmbeddingTable, Run, load_run

HOSTILE = "<img src=x onerror=alert(1)>"


class Broken(Analysis):
    name = "broken-test"
    title = "Always fails"

    def applies_to(self, run):
        return ["item"]

    def run(self, run, table, options):
        raise RuntimeError("planted failure <b>not bold</b>")


class BrokenPlugin:
    @hookimpl
    def embedlab_register_analyses(self, register):
        register(Broken())


@pytest.fixture
def broken_plugin():
    from embedlab.plugins import get_plugin_manager, register_plugin

    name = register_plugin(BrokenPlugin(), name="broken-test-plugin")
    try:
        yield name
    finally:
        get_plugin_manager().unregister(name=name)


def hostile_run(n: int = 60, seed: int = 0) -> Run:
    """A collab-like run whose first item is titled with HTML."""
    rng = np.random.default_rng(seed)
    labels = [HOSTILE] + [f"film {i} & <b>co</b>" for i in range(1, n)]
    meta = pd.DataFrame(
        {
            "count": rng.integers(5, 500, n),
            "mean_rating": rng.uniform(1, 5, n),
            "genre": rng.choice(["<i>drama</i>", "comedy"], n),
        }
    )
    item = EmbeddingTable(
        "item",
        np.arange(n),
        labels,
        rng.normal(size=(n, 8)),
        rng.normal(0, 0.3, n),
        meta,
        {"count_column": "count", "target_column": "mean_rating", "color_column": "genre"},
    )
    return Run(
        {
            "dataset": "hostile <script>alert(2)</script>",
            "kind": "collab",
            "config": {"x": "<y>"},
            "metrics": {"valid_loss": 0.5},
            "history": [
                {"epoch": 1, "train_loss": 1.0, "valid_loss": 0.9},
                {"epoch": 2, "train_loss": 0.8, "valid_loss": 0.7},
            ],
        },
        {"item": item},
    )


def test_report_sections_toc_and_escaping(tmp_path):
    run = hostile_run()
    results = run_analyses(run, ["bias-ranking", "pca", "neighbors"], {})
    assert all(r.ok for r in results) and all(r.figures for r in results if r.analysis != "neighbors")
    out = write_report(tmp_path / "r.html", run, results)
    text = out.read_text()
    # no raw HTML from data anywhere outside Bokeh's JSON (where it is a JSON string)
    html_part = text.split("<main>", 1)[1]
    for raw in (HOSTILE, "<b>co</b>", "<script>alert(2)", "<i>drama</i>"):
        assert raw not in html_part.split('<script type="application/json"')[0]
    assert "&lt;img src=x onerror=alert(1)&gt;" in html_part
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in text
    for anchor in ("bias-ranking-item", "pca-item", "neighbors-item"):
        assert f'id="{anchor}"' in text and f'href="#{anchor}"' in text
    # findings open the report; the run's configuration comes after the analyses
    assert text.index('id="findings"') < text.index('id="bias-ranking-item"') < text.index('id="run"')
    # summary comes before the figures and tables of a section
    sec = text[text.index('id="pca-item"') :]
    assert sec.index('class="summary"') < sec.index('class="figs"') < sec.index("<details")


def test_report_inlines_only_needed_bokehjs(tmp_path):
    run = hostile_run()
    results = run_analyses(run, ["pca"], {})
    text = render_html(None, results)  # no run: no explorer, so no widgets
    from bokeh.resources import INLINE

    full = len(INLINE.render())
    assert "<script src=" not in text and "<link " not in text  # nothing fetched: all inline
    assert len(text) < full * 0.6  # widgets, tables and MathJax bundles are left out
    assert "Bokeh" in text and "regl" in text.lower()  # the WebGL bundle is in
    with_explorer = render_html(run, results)  # the explorer's widgets and tables, still no MathJax
    assert "<script src=" not in with_explorer
    assert len(with_explorer) < full * 0.8  # the MathJax bundle (1.8 of 4 MB) stays out


def test_failing_analysis_becomes_error_section(tmp_path, broken_plugin, synthetic_run):
    run = load_run(synthetic_run)
    results = run_analyses(run, ["broken-test", "bias-ranking"], {})
    assert results[0].error and "planted failure" in results[0].error
    assert [r.ok for r in results[1:]] == [True, True]
    text = write_report(tmp_path / "r.html", run, results).read_text()
    assert 'class="error">This analysis failed: RuntimeError: planted failure &lt;b&gt;not bold&lt;/b&gt;' in text
    assert "(failed)" in text and 'id="bias-ranking-item"' in text

    cli = make_cli()
    args = ["analyze", str(synthetic_run), "--only", "broken-test,bias-ranking", "--report", str(tmp_path / "c.html")]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0 and "1 analysis section(s) failed" in res.output
    assert (tmp_path / "c.html").exists() and 'id="bias-ranking-user"' in (tmp_path / "c.html").read_text()
    res = CliRunner().invoke(cli, args + ["--strict"])
    assert res.exit_code == 1


def test_results_json_and_terminal():
    run = hostile_run()
    results = run_analyses(run, ["bias-ranking"], {}, render=False)
    payload = json.loads(results_json(run, results))
    r = payload["results"][0]
    assert r["analysis"] == "bias-ranking" and r["tables"]["highest bias"][0]["rank"] == 1
    assert isinstance(r["metrics"]["spearman_bias_mean_rating"], float)
    from rich.console import Console

    console = Console(record=True, width=100)
    print_terminal(results, console=console)
    out = console.export_text()
    assert "Bias ranking — item" in out and "Ranking by learned bias" in out and HOSTILE in out


def test_frame_html_escapes_and_truncates():
    df = pd.DataFrame({"label": [HOSTILE] * 250, "v": np.arange(250) / 3})
    out = frame_html(df)
    assert HOSTILE not in out and "&lt;img" in out and "first 200 of 250 rows" in out


def test_jupyter_display(synthetic_run):
    results = embedlab.analyze(synthetic_run, ["bias-ranking"])
    assert isinstance(results, ResultList)
    html = results._repr_html_()  # inline; the iframe form stays available for script-less front ends
    assert html.startswith('<div class="embedlab-nb">') and "Bias ranking" in html
    framed = result_html_standalone(list(results))
    assert framed.startswith('<iframe srcdoc="') and "&lt;!DOCTYPE html&gt;" in framed and "height:" in framed
    one = results[0]._repr_html_()
    assert "Bias ranking" in one and len(one) < len(html) + 10_000_000
    assert "error" in repr(ResultList([AnalysisResult("a", None, "A", error="x")]))


def test_report_without_run_and_without_figures(tmp_path):
    r = AnalysisResult(
        "x", None, "Only text", summary="plain <summary>", metrics={"m": 1.0}, tables={"t": pd.DataFrame({"a": [1]})}
    )
    text = write_report(tmp_path / "r.html", None, [r], title="T <1>").read_text()
    assert "<title>T &lt;1&gt;</title>" in text and "plain &lt;summary&gt;" in text and 'href="#x-run"' in text


def test_scatter_stays_small_and_declutters_labels():
    from bokeh.models import HoverTool

    from embedlab.toolkit.plotting import scatter

    n = 30_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "y": rng.normal(size=n),
            "label": [f"movie {i}" for i in range(n)],
            "genre": rng.choice(list("abc"), n),
            "note": ["a long free text note"] * n,
        }
    )
    fig = scatter(frame, "x", "y", "big", hover=("label", "genre", "note"), color_by="genre", max_hover_chars=400_000)
    points = [r for r in fig.renderers if "x" in r.data_source.data and len(r.data_source.data["x"]) > 100]
    assert len(points) == 3 and all(r.data_source.data["x"].dtype == np.float32 for r in points)
    names = [t[0] for t in fig.select_one(HoverTool).tooltips]
    assert "label" in names and "genre" in names and "note" not in names  # over budget: dropped
    # labels of coincident points are not drawn on top of each other
    frame = pd.DataFrame({"x": [0.0, 0.0, 0.0, 5.0], "y": [0.0, 0.0, 0.01, 5.0], "label": list("ABCD")})
    fig = scatter(frame, "x", "y", "t", annotate=[0, 1, 2, 3])
    texts = [t for r in fig.renderers if "text" in r.data_source.data for t in r.data_source.data["text"]]
    assert sorted(texts) == ["A", "D"]


# ---------------------------------------------------------------------------- findings first, explorer
def two_table_run(n_items: int = 80, n_users: int = 40, seed: int = 3) -> Run:
    """Users (anonymous labels) listed before items (titles): the report must put items first."""
    rng = np.random.default_rng(seed)
    genres = rng.choice(["Drama|Romance", "Comedy", "Action|Sci-Fi", "Horror"], n_items)
    items = EmbeddingTable(
        "item",
        np.arange(1, n_items + 1),
        [f"Film number {i} ({1950 + i % 40})" for i in range(n_items)],
        rng.normal(size=(n_items, 6)),
        rng.normal(0, 0.3, n_items),
        pd.DataFrame(
            {
                "count": rng.integers(1, 300, n_items),
                "mean_rating": rng.uniform(1, 5, n_items),
                "genres": genres,
                "genre": [g.split("|")[0] for g in genres],
            }
        ),
        {"count_column": "count", "target_column": "mean_rating", "color_column": "genre"},
    )
    users = EmbeddingTable(
        "user",
        np.arange(1, n_users + 1),
        [f"user {i}" for i in range(1, n_users + 1)],
        rng.normal(size=(n_users, 6)),
        rng.normal(0, 0.3, n_users),
        pd.DataFrame(
            {
                "count": rng.integers(1, 100, n_users),
                "mean_rating": rng.uniform(1, 5, n_users),
                "age": rng.integers(18, 70, n_users),
                "gender": rng.choice(["F", "M"], n_users),
            }
        ),
        {"count_column": "count", "target_column": "mean_rating"},
    )
    meta = {
        "dataset": "two-tables",
        "kind": "collab",
        "seed": 3,
        "split": {"name": "u1"},
        "config": {"n_factors": 6, "y_range": [0.0, 12.655577087402344], "lr": 0.005, "freeze": None},
        "metrics": {"valid_rmse": 0.9088347832799758, "train_rows": 80000},
        "history": [
            {"epoch": 1, "train_loss": 1.0, "valid_loss": 0.9},
            {"epoch": 2, "train_loss": 0.8, "valid_loss": 0.85},
        ],
    }
    return Run(meta, {"user": users, "item": items})


def models_by_name(model) -> dict:
    return {m.name: m for m in model.references() if getattr(m, "name", None)}


def test_report_opens_with_findings_labelled_tables_first_run_last():
    run = two_table_run()
    results = run_analyses(run, ["bias-ranking", "neighbors"], {})
    text = render_html(run, results)
    body = text.split("<main>", 1)[1]
    # one line per analysis and table, each linking to its section, items (titled) before users
    findings = body[body.index('id="findings"') : body.index("</nav>")]
    links = [a.split('"')[0] for a in findings.split('href="#')[1:]]
    assert links[:4] == ["bias-ranking-item", "neighbors-item", "bias-ranking-user", "neighbors-user"]
    import html as H

    finding = next(r.finding for r in results if r.analysis == "bias-ranking" and r.table == "item")
    assert (
        "mean_rating" in finding and ", rho " in finding and H.escape(finding) in findings
    )  # the plugin's finding, not its summary
    order = [
        body.index(f'id="{a}"')
        for a in ("findings", "explorer-item", "explorer-user", "bias-ranking-item", "bias-ranking-user", "run")
    ]
    assert order == sorted(order)
    # the configuration is written for a person
    run_part = body[body.index('id="run"') :]
    assert "0 – 12.66" in run_part and "12.655577087402344" not in body and "y range" in run_part
    assert "freeze</span> —" in run_part


def test_headline_metrics_come_first_and_are_never_folded():
    from embedlab.report.html import metrics_html

    metrics = {f"m{i}": float(i) for i in range(30)}
    out = metrics_html(metrics, max_open=5, headline=["m29", "m28", "absent"])
    opened = out.split("<details>")[0]
    assert opened.index("m29") < opened.index("m28") < opened.index("m0")
    assert "<td>m4</td>" in opened and "<td>m5</td>" not in opened and "23 more metrics" in out
    assert out.count("class=lead") == 2


def test_numbers_are_formatted_one_way():
    from embedlab.report.html import fmt_value

    cases = {
        11200: "11,200",
        8008: "8008",
        67840.0: "67,840",
        12.655577: "12.66",
        0.8123: "0.81",
        0.0031: "3.1e-3",
        0.003: "3e-3",
        1995.0: "1995",
        float("nan"): "–",
        "text": "text",
        123.45: "123.5",
    }
    assert {k if k == k else "nan": fmt_value(k) for k in cases} == {
        k if k == k else "nan": v for k, v in cases.items()
    }


def test_tables_sort_filter_and_scroll():
    df = pd.DataFrame({"label": [f"x{i}" for i in range(30)], "n": np.arange(30) * 1000, "f": np.linspace(0, 1, 30)})
    out = frame_html(df)
    assert '<div class="scroll"><table class="data sortable">' in out and 'class="filter"' in out
    assert "<td class=num>29,000</td>" in out and "<th class=num>n</th>" in out
    assert 'class="filter"' not in frame_html(df.head(5))
    # one format per column: 0.90 under 0.92, 4.00 beside 4.20; integral floats as integers
    out = frame_html(pd.DataFrame({"cosine": [0.92, 0.9], "rating": [4.2, 4.0], "year": [1995.0, 1977.0]}))
    assert all(f"<td class=num>{v}</td>" in out for v in ("0.92", "0.90", "4.20", "4.00", "1995", "1977"))


def test_explorer_models_vectors_and_names():
    from embedlab.report.explorer import explorer
    from embedlab.toolkit.neighbors import unit_rows

    run = two_table_run()
    items = run.table("item")
    named = models_by_name(explorer(run, "item"))
    for role in ("search", "neighbours", "color", "map", "size", "points", "selected", "status", "summary"):
        assert f"explorer-{role}-item" in named, role
    colour = named["explorer-color-item"]
    assert colour.value == "genre" and {"genre", "genres", "mean_rating", "count", "bias"} <= set(colour.options)
    vectors = named["explorer-vectors-item"].data["v"]
    np.testing.assert_array_equal(vectors, unit_rows(items.vectors).reshape(-1))  # the full vectors, all rows
    points = named["explorer-points-item"].data
    assert list(points["label"]) == list(items.labels)
    np.testing.assert_allclose(points["_norm"], np.linalg.norm(items.vectors, axis=1), rtol=1e-5)
    assert (points["_cand"] == (items.count > 0)).all()
    # multi-valued metadata travels whole (hover and tables show every genre)
    field = next(k for k, v in points.items() if k.startswith("m") and list(v) == list(items.metadata["genres"]))
    assert "Drama|Romance" in set(points[field])


def test_explorer_precomputes_every_entitys_neighbours_when_vectors_do_not_fit(monkeypatch):
    """Over the vector budget no vector travels: every entity's exact lists do (both metrics),
    equal to embedlab neighbors' (its default minimum count), and the page says so."""
    from embedlab.report import explorer as E
    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, nearest
    from embedlab.toolkit.selection import select_entities

    monkeypatch.setattr(E, "VECTOR_BUDGET", 100)
    run = two_table_run(n_items=80)
    items = run.table("item")
    named = models_by_name(E.explorer(run, "item"))
    store = {**named["explorer-vectors-item"].data, **named["explorer-scores-item"].data}
    assert "v" not in store and "_norm" not in named["explorer-points-item"].data
    cand = select_entities(items, 0, DEFAULT_MIN_COUNT).index
    k = E.K_PRECOMPUTED
    for metric, col in (("cosine", "cosine"), ("euclidean", "distance")):
        cfg = json.loads(named["explorer-points-item"].tags[0])
        rows, scores = E.unpack_lists(
            store[f"{metric[0]}_idx"], store[f"{metric[0]}_score"], cfg["precomputed"]["scales"][metric], k
        )
        for row in range(80):  # every entity, observed or not, has its list
            want = nearest(items, row, k, cand, metric)
            assert list(items.keys[rows[row]]) == list(want["key"])
            np.testing.assert_allclose(scores[row], want[col], atol=1e-4)
    assert store["c_idx"].dtype == np.uint8 and store["c_score"].dtype == np.uint16  # 5 bytes a neighbour
    assert "precomputed for all 80 items" in named["explorer-note-item"].text
    assert named["explorer-k-item"].options == ["5", "10"] and named["explorer-mincount-item"].disabled


def test_precomputing_the_lists_shows_a_bar_where_a_person_watches(monkeypatch, capsys):
    """Minutes at 200,000 entities: the lists' computation is never a silent wait (#29)."""
    from embedlab.io import progress
    from embedlab.report import explorer as E

    monkeypatch.setattr(E, "VECTOR_BUDGET", 100)
    monkeypatch.setattr(progress, "watching", lambda: True)
    E.explorer(two_table_run(n_items=80), "item")
    err = capsys.readouterr().err
    assert "item: exact cosine neighbor lists" in err and "item: exact euclidean neighbor lists" in err
    monkeypatch.setattr(progress, "watching", lambda: False)  # a pipe, CI: silent
    E.explorer(two_table_run(n_items=80), "item")
    assert "neighbor lists" not in capsys.readouterr().err


def test_explorer_offers_the_maps_results_carry():
    from embedlab.report.explorer import explorer

    run = two_table_run()
    keys = run.table("item").keys
    umap = pd.DataFrame({"key": keys[::2], "x": np.arange(40.0), "y": -np.arange(40.0)})
    result = AnalysisResult("umap", "item", "UMAP", maps={"UMAP": umap})
    named = models_by_name(explorer(run, "item", [result, AnalysisResult("umap", "user", "U", maps={"X": umap})]))
    maps = named["explorer-map-item"].options
    assert maps[0] == "PCA 1 × 2" and "UMAP" in maps and "X" not in maps
    points = named["explorer-points-item"].data
    x = next(points[k] for k in points if k.startswith("map") and k.endswith("x"))
    assert x[2] == 1.0 and np.isnan(x[1])  # aligned by key; entities off the map are NaN
    cfg = json.loads(named["explorer-points-item"].tags[0])
    assert "UMAP places 40 of the 80 items; 40 not drawn" in cfg["maps"]["UMAP"][4]  # said on the map


def test_builtin_analyses_state_a_finding_and_headline(synthetic_run):
    run = load_run(synthetic_run)
    results = run_analyses(run, ["bias-ranking", "pca", "neighbors"], {}, render=False)
    for r in results:
        assert r.finding and "\n" not in r.finding and len(r.finding) < 300, (r.analysis, r.finding)
        assert r.headline and set(r.headline) <= set(r.metrics), (r.analysis, r.headline)
    pca = next(r for r in results if r.analysis == "pca")
    ((name, frame),) = pca.maps.items()
    assert list(frame.columns) == ["key", "x", "y"] and len(frame) == pca.metrics["n_entities"]


def test_explorer_clusters_are_named_by_what_distinguishes_them():
    """Planted groups (the genre decides the vector): the map's k-means clusters are each named
    by their genre, listed with their sizes; labels stay text."""
    from embedlab.report.explorer import explorer, map_clusters

    rng = np.random.default_rng(0)
    genres = np.repeat(["Comedy", "Horror", "Western"], 120)
    centre = {"Comedy": [6, 0, 0, 0], "Horror": [0, 6, 0, 0], "Western": [0, 0, 6, 0]}
    vectors = np.array([centre[g] for g in genres], float) + rng.normal(0, 0.5, (360, 4))
    t = EmbeddingTable(
        "item",
        np.arange(360),
        [f"film {i}" for i in range(360)],
        vectors,
        None,
        pd.DataFrame({"genre": genres, "count": rng.integers(20, 90, 360)}),
        {"count_column": "count", "color_column": "genre"},
    )
    run = Run({"dataset": "planted", "kind": "collab", "config": {}, "metrics": {}}, {"item": t})
    named = models_by_name(explorer(run, "item"))
    labels = named["explorer-clusters-item"].data["text"]
    assert {g for lab in labels for g in ("Comedy", "Horror", "Western") if g in lab} == {"Comedy", "Horror", "Western"}
    for lab in labels:  # each cluster is named by one genre, not a mixture
        assert sum(g in lab for g in ("Comedy", "Horror", "Western")) == 1, lab
    xy = np.stack([named["explorer-points-item"].data["x"], named["explorer-points-item"].data["y"]], axis=1)
    found = map_clusters(t, xy, np.arange(360), ["genre", "count"], {"genre": "category", "count": "numeric"})
    assert sum(c["size"] for c in found) == 360
    assert "Clusters" in named["explorer-note-item"].text


def test_explorer_draws_large_tables_as_a_density_and_the_most_observed_as_points(monkeypatch):
    from embedlab.report import explorer as E

    monkeypatch.setattr(E, "DENSITY_ABOVE", 50)
    monkeypatch.setattr(E, "DRAWN_MAX", 20)
    run = two_table_run(n_items=80)
    items = run.table("item")
    layout = E.explorer(run, "item")
    named = models_by_name(layout)
    image = named["explorer-density-item"].data_source.data["image"][0]
    assert image.shape == (E.DENSITY_BINS, E.DENSITY_BINS) and np.nansum(np.expm1(image)) == pytest.approx(80)
    drawn = list(named["explorer-dots-item"].view.filter.indices)
    assert drawn == sorted(np.argsort(-items.count, kind="stable")[:20].tolist())
    # while the map moves, every tenth of them (hidden until a drag: explorer_js onMove)
    assert list(named["explorer-lod-item"].view.filter.indices) == drawn[:: E.LOD_EVERY]
    assert not named["explorer-lod-item"].visible and named["explorer-dots-item"].visible
    assert "density" in named["explorer-note-item"].text and "PCA 1 × 3" not in named["explorer-map-item"].options
    assert "pc1" not in named["explorer-points-item"].data  # one map: x and y travel once


@pytest.mark.parametrize(
    "lo,hi,integral,text",
    [
        (30, 187.5, True, "30–190"),
        (3.48, 3.98, False, "3.5–4.0"),
        (1977.25, 1994, True, "1977–1994"),
        (1995, 1997, True, "1995–1997"),
        (-0.21, 0.33, False, "−0.21 to 0.33"),
        (12000, 56000, False, "12,000–56,000"),
    ],
)
def test_cluster_ranges_read_as_people_write_them(lo, hi, integral, text):
    from embedlab.report.explorer import human_range

    assert human_range(lo, hi, integral) == text
