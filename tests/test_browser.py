"""Reports opened in headless Chromium: Bokeh idle, no SEVERE console entry, no network
request, WebGL in use, a screenshot that is not blank; hostile titles shown as text.

Skips cleanly without chromium + chromedriver (``.ci/run`` installs Debian's packages).
"""
from __future__ import annotations

import os

import pytest

from browser import check_report, open_report
from embedlab.runner import run_analyses
from embedlab.report.html import write_report
from embedlab.run import load_run
from test_report import HOSTILE, hostile_run

pytestmark = pytest.mark.browser


def test_synthetic_report_in_browser(tmp_path, synthetic_run):
    run = load_run(synthetic_run)
    results = run_analyses(run, ["bias-ranking", "pca", "neighbors"], {})
    path = write_report(tmp_path / "report.html", run, results)
    with open_report(path) as page:
        state = check_report(page, min_plots=6, screenshot=tmp_path / "shot.png")
        assert state["documents"] == 1 and state["idle"]
        assert state["webgl_plots"] >= 4  # the scatters and training curves draw with WebGL
        text = page.text("nav")
        assert "Bias ranking" in text and "PCA projection" in text


def test_hostile_title_is_shown_as_text(tmp_path):
    run = hostile_run()
    results = run_analyses(run, ["bias-ranking", "neighbors"], {"n_show": 60})
    path = write_report(tmp_path / "hostile.html", run, results)
    with open_report(path) as page:
        page.js("window.__alerts = 0; window.alert = () => { window.__alerts += 1; };")
        check_report(page, min_plots=2)
        # the title appears literally in the page text, and no <img> element was created
        assert HOSTILE in page.text("main")
        assert "hostile <script>alert(2)</script>" in page.text("h1")
        imgs = page.js("""
            const found = []; const walk = (root) => { for (const el of root.querySelectorAll('*')) {
              if (el.tagName === 'IMG' || el.tagName === 'SCRIPT' && el.textContent.includes('alert(2)')) found.push(el.outerHTML.slice(0, 80));
              if (el.shadowRoot) walk(el.shadowRoot); } };
            walk(document); return found;""")
        assert imgs == []
        assert page.js("return window.__alerts") == 0
        # Bokeh holds the label as the literal string (tooltips and canvas text show it as text)
        held = page.js("""
            const out = [];
            for (const m of Bokeh.documents[0].all_models) {
              if (m.type === 'ColumnDataSource') {
                const data = m.data instanceof Map ? m.data : new Map(Object.entries(m.data));
                for (const [k, v] of data) {
                for (const x of Array.from(v)) { if (typeof x === 'string' && x.includes('onerror')) out.push(x); } } } }
            return out;""")
        assert HOSTILE in held, held


@pytest.mark.realdata
@pytest.mark.slow
def test_ml100k_report_in_browser(tmp_path, tmp_path_factory):
    """The real report: every analysis on an ml-100k u1 run. Set EMBEDLAB_KEEP_SCREENSHOT=path
    to keep the full-page screenshot for a look."""
    from test_analyses import ml100k_run_dir

    run = load_run(ml100k_run_dir(tmp_path_factory))
    results = run_analyses(run, ["bias-ranking", "pca", "umap", "neighbors"], {})
    assert all(r.ok for r in results), [r.error for r in results if r.error]
    path = write_report(tmp_path / "ml100k.html", run, results)
    assert path.stat().st_size < 8_000_000
    with open_report(path) as page:
        state = check_report(page, min_plots=8)
        assert state["webgl_plots"] == state["webgl_requested"]
        keep = os.environ.get("EMBEDLAB_KEEP_SCREENSHOT")
        if keep:
            page.full_screenshot(keep)
