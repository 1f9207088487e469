"""Reports opened in headless Chromium: Bokeh idle, no SEVERE console entry, no network
request, WebGL in use, a screenshot that is not blank; hostile titles shown as text.

Skips cleanly without chromium + chromedriver (``.ci/run`` installs Debian's packages).
"""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from browser import check_report, open_report
from embedlab.runner import run_analyses
from embedlab.report.html import write_report
from embedlab.run import EmbeddingTable, Run, load_run
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
        # the explorer writes labels into its status line, tables and legend: as text too
        page.type_into("explorer-search-item", HOSTILE)
        assert HOSTILE in page.model_value("explorer-status-item", "text").replace("&lt;", "<").replace("&gt;", ">")
        page.select_rows("explorer-points-item", list(range(20)))
        page.set_model("explorer-color-item", "value", "genre")
        time.sleep(0.5)
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
    assert path.stat().st_size < 6_000_000  # the budget
    with open_report(path) as page:
        state = check_report(page, min_plots=8)
        assert state["webgl_plots"] == state["webgl_requested"]
        # typing "star wars" lists its sequels, exactly as `embedlab neighbors` does
        page.type_into("explorer-search-item", "star wars")
        drawn = page.wait_for(lambda: page.shown_column("explorer-neighbours-table-item", 1), what="the neighbours")
        assert {"Empire Strikes Back, The (1980)", "Return of the Jedi (1983)"} <= set(drawn[:3])
        shown = page.source("explorer-neighbours-item")
        from click.testing import CliRunner

        from embedlab.cli import make_cli

        res = CliRunner().invoke(make_cli(), ["neighbors", str(run.path), "Star Wars (1977)", "--json"])
        cli = json.loads(res.stdout)["neighbors"]
        assert drawn == shown["label"] == [n["label"] for n in cli]  # the same default minimum count
        np.testing.assert_allclose(shown["score"], [n["cosine"] for n in cli], atol=1e-6)
        assert page.truncated_cells("explorer-neighbours-table-item", 1) == []  # whole titles in the list
        assert page.clipped_text("explorer-neighbours-table-item") == []  # genre, mean_rating: whole
        _no_overlap(page, "explorer-map-plot-item")  # the names and the cluster labels on a dense map
        assert {"genre", "mean_rating"} <= set(page.model_value("explorer-color-item", "options"))
        assert not [e for e in page.console() if e.get("level") == "SEVERE"] and page.network_requests() == []
        keep = os.environ.get("EMBEDLAB_KEEP_SCREENSHOT")
        if keep:
            page.screenshot(Path(keep).with_name("ml100k-star-wars.png"))
            page.full_screenshot(keep)


# ---------------------------------------------------------------------------- the explorer
def _explorer_report(tmp_path):
    from test_report import two_table_run

    from embedlab.analysis import AnalysisResult

    run = two_table_run()
    results = run_analyses(run, ["bias-ranking", "neighbors"], {})
    keys = run.table("item").keys  # a map of half the items, as UMAP's of the most observed
    partial = pd.DataFrame({"key": keys[::2], "x": np.arange(40.0), "y": np.sin(np.arange(40.0))})
    results.append(AnalysisResult("umap", "item", "UMAP", maps={"UMAP": partial}))
    return run, write_report(tmp_path / "explorer.html", run, results)


def test_explorer_search_neighbours_colour_and_selection(tmp_path):
    """Type a title, read the neighbours (equal to embedlab's own), switch colour and map,
    select points and read the linked table: as a person would, no error, no request."""
    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, nearest
    from embedlab.toolkit.selection import select_entities

    run, path = _explorer_report(tmp_path)
    items = run.table("item")
    with open_report(path) as page:
        check_report(page, min_plots=3)
        # forgiving search: lower case, no year; the best match is selected and listed
        page.type_into("explorer-search-item", "film number 12")
        row = int(page.model_value("explorer-matches-item", "value"))
        assert items.labels[row] == "Film number 12 (1962)"
        assert page.selected_rows("explorer-points-item") == [row]
        got = page.source("explorer-neighbours-item")
        cand = select_entities(items, 0, DEFAULT_MIN_COUNT).index  # the page's and the CLI's default
        want = nearest(items, row, 10, cand)
        assert got["label"] == list(want["label"]) and got["rank"] == list(range(1, 11))
        np.testing.assert_allclose(got["score"], want["cosine"], atol=1e-6)
        assert "Film number 12 (1962)" in page.model_value("explorer-status-item", "text")
        # several matches are offered to pick from; picking one shows its neighbours
        page.type_into("explorer-search-item", "film number 1")
        options = page.model_value("explorer-matches-item", "options")
        assert len(options) > 5 and options[0][1].startswith("Film number 1 (1951)")
        other = int(options[3][0])
        page.set_model("explorer-matches-item", "value", str(other))
        assert page.source("explorer-neighbours-item")["label"] == list(nearest(items, other, 10, cand)["label"])
        # colour by a numeric column: a colour bar outside the plot; by a category: a legend
        page.set_model("explorer-color-item", "value", "mean_rating")
        assert "mean_rating" in page.model_value("explorer-legend-item", "text")
        assert "linear-gradient" in page.model_value("explorer-legend-item", "text")
        page.set_model("explorer-color-item", "value", "genres")
        legend = page.model_value("explorer-legend-item", "text")
        assert "(first value)" in legend and "Action" in legend and "linear-gradient" not in legend
        # box/lasso selection -> the linked table and its one-line summary
        rows = [int(i) for i in np.flatnonzero(items.metadata["genre"].to_numpy() == "Comedy")]
        page.select_rows("explorer-points-item", rows)
        table = page.source("explorer-selected-item")
        assert table["label"] == list(items.labels[rows])
        summary = page.model_value("explorer-summary-item", "text")
        mean = items.metadata["mean_rating"].to_numpy()[rows].mean()
        assert f"<b>{len(rows)}</b> selected" in summary and "most common genre: Comedy (100%)" in summary
        assert f"mean mean_rating {mean:.2f}" in summary
        # another map: the points move to the chosen PCA components
        page.set_model("explorer-map-item", "value", "PCA 1 × 3")
        points = page.source("explorer-points-item")
        assert points["x"] == points["pc1"] and points["y"] == points["pc3"]
        page.screenshot(tmp_path / "explorer.png")
        keep = os.environ.get("EMBEDLAB_KEEP_SCREENSHOT")
        if keep:
            page.screenshot(Path(keep).with_name("explorer-synthetic.png"))
        assert not [e for e in page.console() if e.get("level") == "SEVERE"]
        assert page.network_requests() == []


def calendar_and_states_run() -> Run:
    """A tabular-like run: German states with coordinates and names, weekdays in shuffled rows."""
    rng = np.random.default_rng(5)
    states = pd.DataFrame(
        {
            "label": ["Bavaria", "Berlin", "Hesse", "Saxony", "Hamburg", "Thuringia"],
            "name_de": ["Bayern", "Berlin", "Hessen", "Sachsen", "Hamburg", "Thüringen"],
            "latitude": [48.1, 52.5, 50.1, 51.0, 53.6, 50.9],
            "longitude": [11.6, 13.4, 8.7, 13.7, 10.0, 11.0],
            "count": rng.integers(100, 900, 6),
        }
    )
    state = EmbeddingTable(
        "State",
        np.array(["BY", "BE", "HE", "SN", "HH", "TH"]),
        states["label"],
        rng.normal(size=(6, 4)),
        None,
        states.drop(columns="label"),
        {"count_column": "count"},
    )
    days = ["Wed", "Mon", "Sun", "Tue", "Sat", "Thu", "Fri"]
    order = {d: i for i, d in enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"])}
    dow = EmbeddingTable(
        "DayOfWeek",
        np.array([order[d] + 1 for d in days]),
        days,
        rng.normal(size=(7, 4)),
        None,
        pd.DataFrame({"count": rng.integers(100, 900, 7), "cycle_order": [float(order[d]) for d in days]}),
        {"count_column": "count", "cycle_length": 7},
    )
    return Run(
        {"dataset": "states-and-days", "kind": "tabular", "seed": 0, "config": {}, "metrics": {}},
        {"DayOfWeek": dow, "State": state},
    )


def test_explorer_states_by_latitude_and_days_in_calendar_order(tmp_path):
    run = calendar_and_states_run()
    path = write_report(tmp_path / "tabular.html", run, [])
    with open_report(path) as page:
        check_report(page, min_plots=2, screenshot=tmp_path / "tabular.png")
        assert "latitude" in page.model_value("explorer-color-State", "options")
        page.set_model("explorer-color-State", "value", "latitude")
        assert "latitude" in page.model_value("explorer-legend-State", "text")
        page.select_rows("explorer-points-State", list(range(6)))
        page.wait_for(
            lambda: (
                {"Thüringen", "Bayern"} <= {c for r in page.shown_rows("explorer-selection-table-State") for c in r}
            ),
            what="the selected states' German names",
        )
        # the days are joined in calendar order, whatever the rows' order, and every label is drawn
        points, path_xy = page.source("explorer-points-DayOfWeek"), page.source("explorer-path-DayOfWeek")
        by_x = {round(x, 5): lab for x, lab in zip(points["x"], points["label"])}
        assert [by_x[round(x, 5)] for x in path_xy["x"]] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun", "Mon"]
        page.set_model("explorer-map-DayOfWeek", "value", "PCA 2 × 3")
        points, path_xy = page.source("explorer-points-DayOfWeek"), page.source("explorer-path-DayOfWeek")
        by_x = {round(x, 5): lab for x, lab in zip(points["x"], points["label"])}
        assert [by_x[round(x, 5)] for x in path_xy["x"]][:7] == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        assert not [e for e in page.console() if e.get("level") == "SEVERE"]


@pytest.mark.realdata
@pytest.mark.slow
def test_rossmann_state_and_weekday_explorers(tmp_path):
    """The real Rossmann data (a 40-store subset, one epoch): the State explorer colours by
    latitude and names the German states; the DayOfWeek map joins the days in calendar order."""
    import embedlab
    from conftest import data_dir

    run = embedlab.train(
        "rossmann", out=tmp_path / "ross", data_dir=data_dir("rossmann"), stores="1-40", epochs=1, seed=0
    )
    path = write_report(tmp_path / "ross.html", run, [])
    with open_report(path) as page:
        check_report(page, min_plots=2)
        page.set_model("explorer-color-State", "value", "latitude")
        assert "latitude" in page.model_value("explorer-legend-State", "text")
        labels = page.source("explorer-points-State")["label"]
        assert {"Bavaria", "North Rhine-Westphalia"} <= set(labels)
        page.select_rows("explorer-points-State", list(range(len(labels))))
        page.wait_for(
            lambda: "Bayern" in {c for r in page.shown_rows("explorer-selection-table-State") for c in r},
            what="Bayern in the selection table",
        )
        points, path_xy = page.source("explorer-points-DayOfWeek"), page.source("explorer-path-DayOfWeek")
        by_xy = {(round(x, 5), round(y, 5)): lab for x, y, lab in zip(points["x"], points["y"], points["label"])}
        walk = [by_xy[(round(x, 5), round(y, 5))] for x, y in zip(path_xy["x"], path_xy["y"])]
        days = run.table("DayOfWeek")  # the stores of this subset may be closed on Sundays: no Sunday row
        week = [d for d in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"] if d in set(days.labels)]
        assert len(week) >= 6 and walk == week + week[:1]
        assert not [e for e in page.console() if e.get("level") == "SEVERE"] and page.network_requests() == []
        keep = os.environ.get("EMBEDLAB_KEEP_SCREENSHOT")
        if keep:
            page.js("document.getElementById('explorer-State').scrollIntoView()")
            page.screenshot(Path(keep).with_name("rossmann-state.png"))


def test_explorer_redraws_what_it_means_over_a_sequence(tmp_path):
    """What the page SHOWS after each action (the drawn table cells, the visible status and
    legend), not its data sources: three searches in a row (same row count each time: Bokeh
    3.9's DataTable kept drawing the first list), a click on a neighbour, back, a deselect and
    a colour change."""
    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, nearest
    from embedlab.toolkit.selection import select_entities

    run, path = _explorer_report(tmp_path)
    items = run.table("item")
    cand = select_entities(items, 0, DEFAULT_MIN_COUNT).index

    def want(row):
        return list(nearest(items, row, 10, cand)["label"])

    table, status = "explorer-neighbours-table-item", "explorer-status-item"
    with open_report(path) as page:
        check_report(page, min_plots=3)
        for title in ("Film number 12 (1962)", "Film number 30 (1980)", "Film number 7 (1957)"):
            page.type_into("explorer-search-item", title.split(" (")[0].lower())
            row = int(np.flatnonzero(items.labels == title)[0])
            page.wait_for(lambda: page.shown_column(table, 1) == want(row), what=f"the neighbours of {title}")
            assert title in page.shown_text(status)
            assert page.shown_column(table, 0) == [str(i) for i in range(1, 11)]
        # a click on the third neighbour moves to it: its own neighbours, drawn
        third = want(row)[2]
        page.click_row(table, 2)
        nxt = int(np.flatnonzero(items.labels == third)[0])
        page.wait_for(lambda: page.shown_column(table, 1) == want(nxt), what=f"the neighbours of {third}")
        assert third in page.shown_text(status)
        # back returns to the entity before
        page.click_button("explorer-back-item")
        page.wait_for(lambda: page.shown_column(table, 1) == want(row), what="back to Film number 7")
        # clear: no neighbours drawn, no rings, the status says what to do
        page.click_button("explorer-clear-item")
        page.wait_for(lambda: page.shown_rows(table) == [], what="an empty neighbour table")
        assert "Film number" not in page.shown_text(status)
        assert page.source("explorer-highlight-item")["x"] == []
        assert page.shown_rows("explorer-selection-table-item") == []
        # a map that leaves entities out says so on the map
        page.set_model("explorer-map-item", "value", "UMAP")
        title = page.js(page._MODEL_JS.replace("arguments[0]", "'explorer-map-plot-item'") + "return m.title.text;")
        assert "UMAP places 40 of the 80 items; 40 not drawn" in title
        assert page.source("explorer-clusters-item")["x"] == []  # the clusters belong to the first map
        page.set_model("explorer-map-item", "value", "PCA 1 × 2")
        assert len(page.source("explorer-clusters-item")["x"]) >= 2
        # a colour change redraws the legend and the points (the drawn map's pixels: recoloured,
        # then back as they were; only the points' colours are restyled, not their data)
        plot = "explorer-map-plot-item"
        page.set_model("explorer-color-item", "value", "none")
        page.wait_for(lambda: "genre" not in page.shown_text("explorer-legend-item"), what="no legend")
        plain = page.wait_for(lambda: _settled(page, plot), what="the map drawn")[0]
        page.set_model("explorer-color-item", "value", "mean_rating")
        page.wait_for(lambda: "mean_rating" in page.shown_text("explorer-legend-item"), what="the legend")
        rated = page.wait_for(lambda: _settled(page, plot), what="the map drawn")[0]
        assert (np.abs(rated.astype(int) - plain).max(axis=2) > 40).sum() > 200  # the points changed colour
        page.set_model("explorer-color-item", "value", "none")
        page.wait_for(
            lambda: (np.abs(page.shown_pixels(plot).astype(int) - plain).max(axis=2) > 40).sum() < 20,
            what="the points in their first colour again",
        )
        page.set_model("explorer-color-item", "value", "genres")
        page.wait_for(lambda: "Action" in page.shown_text("explorer-legend-item"), what="the genres legend")
        assert not [e for e in page.console() if e.get("level") == "SEVERE"]


def _overlaps(labels: list[dict]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for j, a in enumerate(labels)
        for b in labels[j + 1 :]
        if a["left"] < b["right"] - 1
        and b["left"] < a["right"] - 1
        and a["top"] < b["bottom"] - 1
        and b["top"] < a["bottom"] - 1
    ]


def _no_overlap(page, plot: str) -> list[dict]:
    """The texts written on the map once they are laid out: none overlaps another."""
    labels = page.wait_for(
        lambda: (lambda got: [got] if got and not _overlaps(got) else None)(page.shown_labels(plot)),
        what=f"{plot}'s labels apart (overlaps: {_overlaps(page.shown_labels(plot))})",
    )[0]
    return labels


def test_explorer_labels_apart_and_in_words(tmp_path):
    """A dense map: the names of the shown entity and its neighbours and the clusters' labels
    never overlap on the canvas (measured where Bokeh draws them), for an entity at each
    cluster's centre and after a pan; cluster labels read as words (30–190, no 1.9e+02)."""
    import re

    run, path = _explorer_report(tmp_path)
    items = run.table("item")
    plot, status = "explorer-map-plot-item", "explorer-status-item"
    with open_report(path) as page:
        check_report(page, min_plots=3)
        shown = _no_overlap(page, plot)
        clusters = [x["text"] for x in shown if x["source"] == "explorer-clusters-item"]
        assert clusters, "no cluster label drawn"
        for text in clusters:
            assert not re.search(r"\de[+-]?\d|\d-\d|_", text), text
        src = page.source("explorer-clusters-item")
        pts = page.source("explorer-points-item")
        xy = np.stack([pts["x"], pts["y"]], axis=1)
        for cx, cy in zip(src["x"], src["y"]):  # the entity nearest each cluster's label
            row = int(np.argmin(((xy - [cx, cy]) ** 2).sum(1)))
            page.type_into("explorer-search-item", str(items.labels[row]))
            page.wait_for(lambda: str(items.labels[row]) in page.shown_text(status), what=str(items.labels[row]))
            names = [x for x in _no_overlap(page, plot) if x["source"] == "explorer-highlight-item"]
            assert str(items.labels[row]) in [x["text"] for x in names]
        page.js(
            page._MODEL_JS.replace("arguments[0]", f"'{plot}'")
            + "const r = m.x_range, w = r.end - r.start; r.setv({start: r.start + w / 7, end: r.end + w / 7});"
        )
        _no_overlap(page, plot)
        assert not [e for e in page.console() if e.get("level") == "SEVERE"]


def _settled(page, name):
    """The drawn pixels of ``name`` once two looks in a row agree (the canvas has been painted)."""
    a = page.shown_pixels(name)
    b = page.shown_pixels(name)
    return [b] if a.shape == b.shape and (a == b).all() else None  # a list: wait_for tests truth


def test_explorer_precomputed_lists_shown_for_any_entity(tmp_path, monkeypatch):
    """Over the vector budget the page reads the stored lists: the same drawn neighbours as
    embedlab neighbors' (both metrics), for an entity below the minimum count too."""
    from embedlab.report import explorer as E
    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, nearest
    from embedlab.toolkit.selection import select_entities
    from test_report import two_table_run

    monkeypatch.setattr(E, "VECTOR_BUDGET", 100)
    monkeypatch.setattr(E, "DENSITY_ABOVE", 50)  # the level of detail of large tables: a density layer
    monkeypatch.setattr(E, "DRAWN_MAX", 20)  # and the 20 most observed as points; search reaches all
    run = two_table_run()
    path = write_report(tmp_path / "pre.html", run, [])
    items = run.table("item")
    cand = select_entities(items, 0, DEFAULT_MIN_COUNT).index
    rare = int(np.flatnonzero(items.count < DEFAULT_MIN_COUNT)[0])
    table = "explorer-neighbours-table-item"
    with open_report(path) as page:
        check_report(page, min_plots=2)
        for metric in ("cosine", "euclidean"):
            page.set_model("explorer-metric-item", "value", metric)
            for row in (12, rare):
                page.type_into("explorer-search-item", str(items.labels[row]))
                want = list(nearest(items, row, 10, cand, metric)["label"])
                page.wait_for(lambda: page.shown_column(table, 1) == want, what=f"{metric} neighbours of {row}")
        # the long note is said once, in the caption; the status line keeps a short form
        status, note = page.shown_text("explorer-status-item"), page.shown_text("explorer-note-item")
        assert "(exact, precomputed)" in status and "too large to travel" not in status, status
        assert note.count("exact lists precomputed for all") == 1 and "too large to travel" in note, note
        # level of detail: while the map is dragged a tenth of the drawn points, all again after
        from selenium.webdriver.common.action_chains import ActionChains

        plot = page.js(page._VIEW_JS + "return view.canvas_view.events_el || view.el;", "explorer-map-plot-item")
        drag = ActionChains(page.driver).move_to_element(plot).click_and_hold()
        for _ in range(4):
            drag = drag.move_by_offset(10, 5).pause(0.05)
        drag.perform()
        assert page.model_value("explorer-lod-item", "visible") and not page.model_value(
            "explorer-dots-item", "visible"
        )
        ActionChains(page.driver).release().perform()
        page.wait_for(
            lambda: (
                page.model_value("explorer-dots-item", "visible")
                and not page.model_value("explorer-lod-item", "visible")
            ),
            what="every drawn point after the drag",
        )


def test_explorer_table_columns_fit_their_titles_and_values(tmp_path):
    """Each column of the neighbour and selection tables is as wide as its title and its typical
    values (a long column name, long category values): nothing cut in the drawn header and cells;
    the whole titles stay in the label column."""
    from test_report import two_table_run

    base = two_table_run()
    items = base.table("item")
    genre = np.random.default_rng(1).choice(["Animation", "Musical", "Documentary", "Western"], len(items))
    meta = items.metadata.drop(columns=["genre"]).assign(favourite_genre=genre)
    wide = EmbeddingTable(
        "item",
        items.keys,
        items.labels,
        items.vectors,
        items.bias_values,
        meta,
        {"count_column": "count", "target_column": "mean_rating", "color_column": "favourite_genre"},
    )
    path = write_report(tmp_path / "wide.html", Run(dict(base.meta), {"item": wide}), [])
    table = "explorer-neighbours-table-item"
    with open_report(path) as page:
        check_report(page, min_plots=1)
        page.type_into("explorer-search-item", "film number 12")
        rows = page.wait_for(lambda: page.shown_rows(table), what="the neighbour list")
        assert len(rows) == 10 and any(v in r for r in rows for v in ("Animation", "Documentary"))
        assert page.clipped_text(table) == []
        assert page.truncated_cells(table, 1) == []  # whole titles in the label column
        page.set_model("explorer-metric-item", "value", "euclidean")  # the score column's title: distance
        page.wait_for(lambda: page.shown_rows(table) != rows, what="the euclidean list")
        assert page.clipped_text(table) == []
        page.select_rows("explorer-points-item", list(range(len(items))))
        page.wait_for(lambda: page.shown_rows("explorer-selection-table-item"), what="the selection table")
        assert page.clipped_text("explorer-selection-table-item") == []


def test_explorer_lists_agree_with_embedlab_neighbors_above_the_budget(synthetic_run, tmp_path, monkeypatch):
    """Issue 24's done-when check in seconds: a user table just above the vector budget (every
    list precomputed by knn_lists); random user keys typed into the search box each show 10
    neighbours whose first three are `embedlab neighbors RUN KEY --table user`'s."""
    from click.testing import CliRunner

    from embedlab.cli import make_cli
    from embedlab.report import explorer as E

    run = load_run(synthetic_run)
    users = run.table("user")
    monkeypatch.setattr(E, "VECTOR_BUDGET", len(users) * users.dim - 1)
    path = write_report(tmp_path / "above.html", run, [])
    grid = "explorer-neighbours-table-user"
    with open_report(path) as page:
        check_report(page, min_plots=2)
        assert "precomputed for all" in page.shown_text("explorer-note-user")
        for key in np.random.default_rng(0).choice(users.keys, 5, replace=False):
            res = CliRunner().invoke(
                make_cli(), ["neighbors", str(synthetic_run), str(key), "--table", "user", "--json"]
            )
            assert res.exit_code == 0, res.output
            want = [r["label"] for r in json.loads(res.stdout)["neighbors"]][:3]
            page.type_into("explorer-search-user", str(key))
            page.wait_for(
                lambda: (
                    f"user {key}" in page.shown_text("explorer-status-user")
                    and len(page.shown_rows(grid)) == 10
                    and page.shown_column(grid, 1)[:3] == want
                ),
                what=f"user {key}'s neighbours {want}",
            )


def test_explorer_with_hostile_column_names(tmp_path):
    """Metadata columns named like the properties of every JS object (``__proto__``,
    ``constructor``, ``toString``) are titles, never keys: the map draws, the neighbour list
    shows their values, colour by each works, the selection table lists them."""
    from test_report import two_table_run

    base = two_table_run()
    items = base.table("item")
    meta = items.metadata.rename(columns={"genre": "__proto__", "mean_rating": "constructor", "genres": "toString"})
    hostile = EmbeddingTable(
        "item",
        items.keys,
        items.labels,
        items.vectors,
        items.bias_values,
        meta,
        {"count_column": "count", "target_column": "constructor", "color_column": "__proto__"},
    )
    run = Run(dict(base.meta), {"item": hostile})
    path = write_report(tmp_path / "hostile-columns.html", run, [])
    with open_report(path) as page:
        check_report(page, min_plots=1)
        assert {"__proto__", "constructor", "toString"} <= set(page.model_value("explorer-color-item", "options"))
        page.type_into("explorer-search-item", "film number 12")
        table = "explorer-neighbours-table-item"
        rows = page.wait_for(lambda: page.shown_rows(table), what="the neighbour list")
        genres = set(meta["__proto__"])
        assert len(rows) == 10 and all(r[3] in genres for r in rows)  # the __proto__ column's values
        for col, shown in (("__proto__", "Comedy"), ("constructor", "constructor"), ("toString", "Action")):
            page.set_model("explorer-color-item", "value", col)
            page.wait_for(lambda: shown in page.shown_text("explorer-legend-item"), what=f"the legend of {col}")
        page.select_rows("explorer-points-item", list(range(len(items))))
        page.wait_for(
            lambda: any(c in genres for r in page.shown_rows("explorer-selection-table-item") for c in r),
            what="the selection table's __proto__ values",
        )
        # the selection exported from the page: a CSV of keys, labels, coordinates and metadata
        page.driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
        page.click_button("explorer-export-item")
        csv = page.wait_for(
            lambda: (
                (tmp_path / "item-selection.csv").exists()
                and (tmp_path / "item-selection.csv").read_text(encoding="utf-8")
            ),
            what="the exported CSV",
        )
        got = pd.read_csv(io.StringIO(csv))
        assert list(got.columns[:4]) == ["key", "label", "x", "y"] and {"__proto__", "constructor"} <= set(got.columns)
        assert len(got) == len(items) and list(got["label"]) == list(items.labels)
        assert list(got["__proto__"]) == list(meta["__proto__"])
        assert not [e for e in page.console() if e.get("level") == "SEVERE"]


def test_explorer_searches_any_column_and_isolates(tmp_path):
    """Search a metadata column (text, then /regex/ in the labels): every match selected and
    listed; isolate fits the view to the selection; clear all undoes both."""
    run, path = _explorer_report(tmp_path)
    items = run.table("item")
    comedies = int((items.metadata["genre"] == "Comedy").sum())
    summary = "explorer-summary-item"
    with open_report(path) as page:
        check_report(page, min_plots=3)
        page.set_model("explorer-searchin-item", "value", "genre")
        page.type_into("explorer-search-item", "comedy")
        page.wait_for(lambda: page.shown_text(summary).startswith(f"{comedies} selected"), what="the comedies")
        assert "most common genre: Comedy (100%)" in page.shown_text(summary)
        page.set_model("explorer-searchin-item", "value", "label or key")
        page.type_into("explorer-search-item", r"/^film number 1\d /")
        page.wait_for(lambda: page.shown_text(summary).startswith("10 selected"), what="films 10-19")
        shown = {r[0] for r in page.shown_rows("explorer-selection-table-item")}
        assert shown == {f"Film number {i} ({1950 + i % 40})" for i in range(10, 20)}
        page.click_button("explorer-isolate-item")
        xs = [x for i, x in enumerate(page.source("explorer-points-item")["x"]) if 10 <= i < 20]
        lo, hi = page.js(
            page._MODEL_JS.replace("arguments[0]", "'explorer-map-plot-item'")
            + "return [m.x_range.start, m.x_range.end];"
        )
        assert lo <= min(xs) and max(xs) <= hi and hi - lo < 1.3 * (max(xs) - min(xs)) + 1e-9
        page.type_into("explorer-search-item", "/([/")
        page.wait_for(
            lambda: "Not a valid regular expression" in page.shown_text("explorer-status-item"), what="the regex error"
        )
        page.click_button("explorer-clear-item")
        page.wait_for(lambda: page.shown_rows("explorer-selection-table-item") == [], what="cleared")
        assert page.model_value("explorer-isolate-item", "label") == "isolate selection"
        assert not [e for e in page.console() if e.get("level") == "SEVERE"]


def test_explorer_state_travels_in_the_url_fragment(tmp_path):
    """Actions write the view into the fragment; opening that link shows the same view."""
    from urllib.parse import parse_qs

    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, nearest
    from embedlab.toolkit.selection import select_entities

    run, path = _explorer_report(tmp_path)
    items = run.table("item")
    table = "explorer-neighbours-table-item"
    with open_report(path) as page:
        check_report(page, min_plots=3)
        page.set_model("explorer-color-item", "value", "mean_rating")
        page.set_model("explorer-metric-item", "value", "euclidean")
        page.set_model("explorer-k-item", "value", "5")
        page.type_into("explorer-search-item", "film number 12")
        page.wait_for(lambda: len(page.shown_rows(table)) == 5, what="five neighbours")
        state = parse_qs(page.js("return location.hash.slice(1);"))
        assert state["explorer"] == ["item"] and state["key"] == ["13"] and state["metric"] == ["euclidean"]
        assert state["color"] == ["mean_rating"] and "colour" not in state  # one spelling (US)
        assert page.shown_text("explorer-color-item").startswith("Color by")
        link = page.js("return location.href;")
        want = list(nearest(items, 12, 5, select_entities(items, 0, DEFAULT_MIN_COUNT).index, "euclidean")["label"])
        # the link, and the same link as pages before the US spelling wrote it (key "colour")
        for url in (link, link.replace("&color=", "&colour=")):
            page.driver.get("about:blank")
            page.driver.get(url)
            page.wait_idle()
            page.wait_for(lambda: page.shown_column(table, 1) == want, what="the reopened view's neighbours")
            assert "Film number 12 (1962)" in page.shown_text("explorer-status-item")
            assert page.model_value("explorer-color-item", "value") == "mean_rating"
            assert "mean_rating" in page.shown_text("explorer-legend-item")
