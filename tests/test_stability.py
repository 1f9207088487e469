"""Findings across runs (#16): run groups (`train --seeds`), alignment of tables across runs,
metrics as mean/sd/n with `significant_in`, `analyze RUN RUN ...`, and the planted check:
findings planted in synthetic-rossmann hold in every replicate, a shuffled control in ~5 %."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedlab.analysis import AnalysisResult
from embedlab.errors import EmbedlabError, UsageError
from embedlab.run import EmbeddingTable, Run
from embedlab.engines import stability as S
from embedlab.engines.runs import check_group_out, expand_runs, parse_seeds, read_group

TINY = ["--users", "60", "--items", "40", "--ratings", "2500", "--epochs", "2", "-q"]


def table(vectors, keys=None, count=None, name="item") -> EmbeddingTable:
    keys = np.arange(len(vectors)) if keys is None else np.asarray(keys)
    md = pd.DataFrame({"count": count if count is not None else np.ones(len(vectors), dtype=int)})
    return EmbeddingTable(name, keys, np.array([f"e{k}" for k in keys]), vectors, metadata=md)


# ---------------------------------------------------------------------------- alignment
def test_a_rotated_scaled_copy_aligns_perfectly_and_independent_tables_do_not():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 5))
    rot = np.linalg.qr(rng.normal(size=(5, 5)))[0]
    b = 3.0 * a @ rot + 1.0  # rotated, scaled, shifted: cosine neighbours change with the shift,
    c = 2.0 * a @ rot  # so the neighbour check uses the unshifted copy
    same = S.table_stability([table(a), table(b), table(c)], ["a", "b", "c"])
    assert same.procrustes_r2 == pytest.approx(1.0, abs=1e-9)
    assert same.n_entities == 60 and len(same.pairs) == 3
    assert same.pairs.set_index(["run a", "run b"]).loc[("a", "c"), "neighbour_overlap_10"] == pytest.approx(1.0)
    other = S.table_stability([table(a), table(rng.normal(size=(60, 5)))])
    assert other.procrustes_r2 < 0.5
    assert abs(other.neighbour_overlap_10 - other.chance) < 0.1  # chance = 10 / 59


def test_the_entity_that_moves_is_the_least_stable_and_keys_are_matched_not_rows():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(40, 4))
    b = a.copy()
    b[7] = rng.normal(size=4) * 3  # entity 7 lands elsewhere in run b
    perm = rng.permutation(40)  # run b lists its entities in another order
    s = S.table_stability([table(a), table(b[perm], keys=np.arange(40)[perm])])
    assert s.entities["key"].iloc[0] == "7"
    assert s.entities["neighbour_overlap_10"].iloc[-1] == pytest.approx(1.0)
    assert 0.8 < s.procrustes_r2 < 1.0


def test_only_entities_observed_in_every_run_are_aligned():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(30, 3)), rng.normal(size=(30, 3))
    count_b = np.ones(30, dtype=int)
    count_b[:5] = 0  # never seen in training of run b
    s = S.table_stability([table(a), table(b, count=count_b)])
    assert s.n_entities == 25 and set(s.entities["key"]) == {str(k) for k in range(5, 30)}
    small = S.table_stability([table(a[:8]), table(b[:8])])
    assert small.k == 7 and small.chance == 1.0 and any("k = 7" in n for n in small.notes)


# ---------------------------------------------------------------------------- metrics
def result(analysis, tab, **metrics) -> AnalysisResult:
    return AnalysisResult(analysis, tab, analysis.title(), metrics=metrics)


def test_metrics_become_mean_sd_n_and_p_values_count_the_runs_below_005():
    per_run = [
        [result("geo", "State", mantel_p=0.01, mantel_r=0.6, rho=0.2), result("cyc", "Day", tour_p=0.5)],
        [result("geo", "State", mantel_p=0.03, mantel_r=0.5, rho=-0.1), result("cyc", "Day", tour_p=0.01)],
        [
            result("geo", "State", mantel_p=0.20, mantel_r=0.4, rho=0.1),
            AnalysisResult("cyc", "Day", "Cyc", error="boom"),
        ],
    ]  # a failed analysis is left out
    found = {(m.analysis, m.metric): m for m in S.metric_stability(per_run)}
    p = found[("geo", "mantel_p")]
    assert (p.n, p.significant_in, p.verdict) == (3, 2, "most runs")
    assert p.mean == pytest.approx(np.mean([0.01, 0.03, 0.2])) and p.sd == pytest.approx(
        np.std([0.01, 0.03, 0.2], ddof=1)
    )
    r = found[("geo", "mantel_r")]
    assert r.significant_in is None and r.sd == pytest.approx(0.1)
    tour = found[("cyc", "tour_p")]
    assert (tour.n, tour.significant_in, tour.verdict) == (2, 1, "few runs")
    words = " ".join(S.findings_sentences(list(found.values())))
    assert "Hold in most runs: geo/State mantel_p (2 of 3)" in words
    assert "Hold in few runs" in words and "cyc/Day tour_p (1 of 2)" in words
    assert "negative in others (its direction is not a finding): geo/State rho." in words
    assert found[("geo", "rho")].sign_differs and not found[("geo", "mantel_r")].sign_differs
    records = S.stability_records([], list(found.values()))
    rec = next(x for x in records if x["metric"] == "mantel_p")
    assert {"table", "analysis", "metric", "mean", "sd", "n", "significant_in"} <= set(rec)
    assert "significant_in" not in next(x for x in records if x["metric"] == "mantel_r")
    assert [S.verdict(3, 3), S.verdict(0, 3), S.verdict(2, 4)] == ["every run", "no run", "few runs"]


# ---------------------------------------------------------------------------- run groups
def test_parse_seeds():
    assert parse_seeds("1,2,3") == [1, 2, 3] and parse_seeds("1-3,5,3") == [1, 2, 3, 5]
    for bad in ("", "a", "3-1", "-2"):
        with pytest.raises(UsageError):
            parse_seeds(bad)


@pytest.fixture(scope="module")
def seed_group(tmp_path_factory):
    """`train synthetic-collab --seeds 1,2 --out G` through the CLI (a process pool of two)."""
    from embedlab.cli import make_cli

    out = tmp_path_factory.mktemp("groups") / "g"
    res = CliRunner().invoke(make_cli(), ["train", "synthetic-collab", *TINY, "--seeds", "1,2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res


def test_train_seeds_writes_a_run_group_of_one_run_per_seed(seed_group):
    from embedlab.run import load_run

    out, res = seed_group
    meta = read_group(out)
    assert meta["seeds"] == [1, 2] and meta["runs"] == ["seed-1", "seed-2"] and meta["dataset"] == "synthetic-collab"
    a, b = load_run(out / "seed-1"), load_run(out / "seed-2")
    assert (a.seed, b.seed) == (1, 2) and a.config["epochs"] == 2 == b.config["epochs"]
    assert not np.allclose(a.table("item").vectors, b.table("item").vectors)
    payload = json.loads(res.stdout)
    assert [r["seed"] for r in payload["runs"]] == [1, 2]
    assert "training 2 replicates (seeds 1, 2)" in res.stderr
    assert expand_runs([out]) == [("seed-1", out / "seed-1"), ("seed-2", out / "seed-2")]
    assert [lab for lab, _ in expand_runs([out / "seed-2", out / "seed-1"])] == ["seed-2", "seed-1"]


def test_group_out_follows_the_write_rule(tmp_path, seed_group):
    out, _ = seed_group
    check_group_out(out, [1, 2])  # an existing group may be replaced
    with pytest.raises(UsageError, match="single run"):
        check_group_out(out / "seed-1", [1])
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not an embedlab run group"):
        check_group_out(foreign, [1])
    with pytest.raises(EmbedlabError, match="neither an embedlab run"):
        expand_runs([foreign])


def test_analyze_a_group_prints_the_stability_block_and_json(seed_group, tmp_path):
    from embedlab.cli import make_cli

    out, _ = seed_group
    report = tmp_path / "r.html"
    res = CliRunner().invoke(
        make_cli(), ["analyze", str(out), "--only", "bias-ranking,neighbors", "--json", "--report", str(report)]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    align = {r["table"]: r for r in payload["stability"] if "procrustes_r2" in r}
    assert set(align) == {"user", "item"}
    assert all(0 <= r["procrustes_r2"] <= 1 and 0 <= r["neighbour_overlap_10"] <= 1 for r in align.values())
    metric = next(r for r in payload["stability"] if r.get("metric") == "spearman_bias_mean_rating")
    assert {"table", "analysis", "mean", "sd", "n"} <= set(metric) and metric["n"] == 2
    values = [
        x["metrics"]["spearman_bias_mean_rating"]
        for x in payload["results"]
        if x["analysis"] == "bias-ranking" and x["table"] == metric["table"]
    ]
    assert metric["mean"] == pytest.approx(np.mean(values))
    assert {x["run"] for x in payload["results"]} == {"seed-1", "seed-2"}
    assert "Stability across runs" in res.stderr and "mean ± sd" in res.stderr
    html = report.read_text()
    assert html.index("Stability across runs") < html.index("[seed-1") < html.index("[seed-2")
    assert "[seed-1, trainer collab]" in html  # each run's trainer named
    assert "least stable entities" in html

    from browser import check_report, open_report

    with open_report(report) as page:  # skipped without a browser
        state = check_report(page, min_plots=2, screenshot=tmp_path / "stability.png")
        text = page.text()
        assert state["plots"] >= 2 and text.index("Stability across runs") < text.index("[seed-1")
    # two run folders, given one by one, are analysed the same way
    res2 = CliRunner().invoke(
        make_cli(), ["analyze", str(out / "seed-1"), str(out / "seed-2"), "--only", "bias-ranking", "--json"]
    )
    assert res2.exit_code == 0, res2.output
    again = json.loads(res2.stdout)
    assert [r for r in again["stability"] if "procrustes_r2" in r] == list(align.values())


# ---------------------------------------------------------------------------- planted check
PLANTED = dict(exclude="Store", n_stores=60, days=400, layers="64,32", bs=256, epochs=8, threads=1)


@pytest.fixture(scope="module")
def planted_group(tmp_path_factory):
    """Three replicates of synthetic-rossmann (about 3 s each): the planted state effects are
    smooth functions of the real coordinates (Store left out, so State must carry them)."""
    from embedlab.engines.runs import train_replicates

    out = tmp_path_factory.mktemp("planted") / "group"
    train_replicates("synthetic-rossmann", PLANTED, [0, 1, 2], out, workers=1)
    return out


def _shuffled(run: Run, seed: int) -> Run:
    tables = run.tables
    t = tables["State"]
    md = t.metadata.copy()
    perm = np.random.default_rng(seed).permutation(len(md))
    md[["latitude", "longitude"]] = md[["latitude", "longitude"]].to_numpy()[perm]
    tables["State"] = EmbeddingTable(t.name, t.keys, t.labels, t.vectors, t.bias_values, md, t.attrs)
    return Run(run.meta, tables, {})


def test_planted_findings_hold_in_every_run_and_a_shuffled_control_in_about_5_percent(planted_group):
    from embedlab.runner import run_analyses

    found = S.analyze_runs([planted_group], ["geography"], {"permutations": 999}, render=False)
    mantel = next(m for m in found.metrics if m.table == "State" and m.metric == "mantel_p")
    assert (mantel.n, mantel.significant_in, mantel.verdict) == (3, 3, "every run")
    assert "Hold in every run (p < 0.05): geography/State mantel_p (3 of 3)" in found.stability[0].summary
    assert found.tables[0].table in found.runs[0].table_names
    # the control: the same runs with the states' coordinates shuffled, 60 times each; a test at
    # p < 0.05 should then be significant in about 5 % (measured: 12 of 180, 6.7 %; the binomial
    # sd of the share is 1.6 points)
    per_run = [
        run_analyses(_shuffled(run, s), ["geography"], {"permutations": 999}, render=False)
        for run in found.runs
        for s in range(60)
    ]
    control = next(m for m in S.metric_stability(per_run) if m.table == "State" and m.metric == "mantel_p")
    assert control.n == 180
    assert 0.02 <= control.significant_in / control.n <= 0.10, control.significant_in
    assert control.verdict == "few runs"
