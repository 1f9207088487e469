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
from embedlab.report.notebook import ResultList
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
    meta = pd.DataFrame({"count": rng.integers(5, 500, n), "mean_rating": rng.uniform(1, 5, n),
                         "genre": rng.choice(["<i>drama</i>", "comedy"], n)})
    item = EmbeddingTable("item", np.arange(n), labels, rng.normal(size=(n, 8)), rng.normal(0, 0.3, n), meta,
                          {"count_column": "count", "target_column": "mean_rating", "color_column": "genre"})
    return Run({"dataset": "hostile <script>alert(2)</script>", "kind": "collab", "config": {"x": "<y>"},
                "metrics": {"valid_loss": 0.5}, "history": [{"epoch": 1, "train_loss": 1.0, "valid_loss": 0.9},
                                                           {"epoch": 2, "train_loss": 0.8, "valid_loss": 0.7}]},
               {"item": item})


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
    assert text.index('id="run"') < text.index('id="bias-ranking-item"')
    # summary comes before the figures and tables of a section
    sec = text[text.index('id="pca-item"'):]
    assert sec.index('class="summary"') < sec.index('class="figs"') < sec.index("<details")


def test_report_inlines_only_needed_bokehjs(tmp_path):
    run = hostile_run()
    results = run_analyses(run, ["pca"], {})
    text = render_html(run, results)
    from bokeh.resources import INLINE

    full = len(INLINE.render())
    assert "<script src=" not in text and "<link " not in text  # nothing fetched: all inline
    assert len(text) < full * 0.6  # widgets, tables and MathJax bundles are left out
    assert "Bokeh" in text and "regl" in text.lower()  # the WebGL bundle is in


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
    html = results._repr_html_()
    assert html.startswith('<iframe srcdoc="') and "&lt;!DOCTYPE html&gt;" in html
    assert "Bias ranking" in html and "height:" in html
    one = results[0]._repr_html_()
    assert "Bias ranking" in one and len(one) < len(html) + 10_000_000
    assert "error" in repr(ResultList([AnalysisResult("a", None, "A", error="x")]))


def test_report_without_run_and_without_figures(tmp_path):
    r = AnalysisResult("x", None, "Only text", summary="plain <summary>", metrics={"m": 1.0},
                       tables={"t": pd.DataFrame({"a": [1]})})
    text = write_report(tmp_path / "r.html", None, [r], title="T <1>").read_text()
    assert "<title>T &lt;1&gt;</title>" in text and "plain &lt;summary&gt;" in text and 'href="#x-run"' in text


def test_scatter_stays_small_and_declutters_labels():
    from bokeh.models import HoverTool

    from embedlab.toolkit.plotting import scatter

    n = 30_000
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=n), "y": rng.normal(size=n), "label": [f"movie {i}" for i in range(n)],
                          "genre": rng.choice(list("abc"), n), "note": ["a long free text note"] * n})
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
