"""Analyses that take several runs (``Analysis.runs = "several"`` and its one hook,
``run_several``), and comparisons that name each run's trainer and refuse to rank runs whose
metrics mean different things."""

from __future__ import annotations

import json

import numpy as np

import embedlab
from embedlab import AnalysisOption, AnalysisResult, EmbeddingTable, Run, hookimpl, run_meta
from embedlab.testing import invoke, plugin_registered, same_data_other_seed, synthetic_run

SMALL = {"users": 40, "items": 30, "ratings": 900, "epochs": 2}


class Drift:
    """How far each item moved between the first run and each later one (after centring)."""

    name = "tmp-drift"
    title = "Drift between runs"
    runs = "several"
    options = [AnalysisOption("drift_table", str, "item", "Table to compare.")]

    def run_several(self, runs, options):
        labels = list(runs)
        base = runs[labels[0]].table(options["drift_table"])
        rows = []
        for label in labels[1:]:
            other = runs[label].table(options["drift_table"])
            a = base.vectors - base.vectors.mean(0)
            b = other.vectors - other.vectors.mean(0)
            rows.append(
                {
                    "run": label,
                    "trainer": runs[label].meta["trainer"],
                    "mean_shift": float(np.linalg.norm(a - b, axis=1).mean()),
                }
            )
        import pandas as pd

        return AnalysisResult(
            self.name,
            None,
            self.title,
            summary=f"{len(labels)} runs compared with {labels[0]}.",
            metrics={"n_runs": float(len(labels)), "mean_shift": rows[0]["mean_shift"]},
            tables={"drift": pd.DataFrame(rows)},
        )


class _Const:
    name = "tmp-const"
    kind = "collab"
    options: list = []

    def train(self, dataset, config, progress=True):
        items = np.sort(dataset.train[dataset.roles["item"]].unique())
        table = EmbeddingTable("item", items, [f"item {i}" for i in items], np.ones((len(items), 2), np.float32))
        return Run(run_meta(dataset, self, dict(config), 0, {"valid_loss": 0.5}, []), {"item": table}, {})


class _Plugin:
    @hookimpl
    def embedlab_register_analyses(self, register):
        register(Drift())

    @hookimpl
    def embedlab_register_trainers(self, register):
        register(_Const())


def test_a_several_runs_analysis_runs_once_on_several_runs_and_says_why_not_on_one(tmp_path):
    a = synthetic_run(tmp_path / "a", **SMALL)
    same_data_other_seed(a, seed=1, out=tmp_path / "b")
    with plugin_registered(_Plugin(), name="tmp-multirun"):
        done = invoke(
            [
                "analyze",
                tmp_path / "a",
                tmp_path / "b",
                "--only",
                "tmp-drift,pca",
                "--json",
                "--report",
                tmp_path / "r.html",
            ]
        )
        assert done.exit_code == 0, done.output
        payload = json.loads(done.stdout)
        [drift] = payload["several_runs"]
        assert drift["analysis"] == "tmp-drift" and drift["error"] is None and drift["metrics"]["n_runs"] == 2
        assert drift["metrics"]["mean_shift"] > 0
        assert all(r["analysis"] != "tmp-drift" for r in payload["results"])  # not run per run
        page = (tmp_path / "r.html").read_text(encoding="utf-8")
        assert "Drift between runs" in page and "[a, trainer collab]" in page  # each run's trainer named
        one = invoke(["analyze", tmp_path / "a", "--only", "tmp-drift", "--json"])
        assert one.exit_code == 0, one.output
        [skipped] = json.loads(one.stdout)["results"]
        assert "it compares several runs" in skipped["skipped"]


def test_compare_runs_names_trainers_and_refuses_to_rank_runs_of_different_trainers(tmp_path):
    a = synthetic_run(tmp_path / "a", **SMALL)
    same_data_other_seed(a, seed=1, out=tmp_path / "b")
    with plugin_registered(_Plugin(), name="tmp-multirun"):
        embedlab.train(
            "synthetic-collab",
            out=tmp_path / "c",
            trainer="tmp-const",
            progress=False,
            users=40,
            items=30,
            ratings=900,
            seed=0,
        )
        from embedlab.engines.compare_results import compare_runs

        _, results, payload = compare_runs([tmp_path / "a", tmp_path / "b"], render=False)
        assert [r["trainer"] for r in payload["runs"]] == ["collab", "collab"]
        same = invoke(["compare", "--runs", tmp_path / "a", tmp_path / "b"])
        assert same.exit_code == 0, same.output
        mixed = invoke(["compare", "--runs", tmp_path / "a", tmp_path / "c"])
    assert mixed.exit_code == 2
    assert "a (trainer collab, task regression), c (trainer tmp-const, task" in mixed.output
    assert "valid_loss means different things and embedlab does not rank them" in mixed.output


def test_the_python_api_trains_and_analyses_a_run_group_as_the_cli_does(tmp_path):
    """embedlab.train(seeds=...) and embedlab.analyze(GROUP) call the engines of `train --seeds`
    and `analyze GROUP` (no logic only the CLI has)."""
    import pytest

    from embedlab.errors import UsageError

    with pytest.raises(UsageError, match="out="):
        embedlab.train("synthetic-collab", seeds=[1, 2], **SMALL)
    runs = embedlab.train("synthetic-collab", seeds="2,1", out=tmp_path / "g", progress=False, n_factors=4, **SMALL)
    assert [r.seed for r in runs] == [2, 1] and all(r.config["n_factors"] == 4 for r in runs)
    group = json.loads((tmp_path / "g" / "group.json").read_text())
    assert group["seeds"] == [2, 1] and group["runs"] == ["seed-2", "seed-1"]
    found = embedlab.analyze(tmp_path / "g", names="bias-ranking", progress=False)
    assert found.labels == ["seed-2", "seed-1"] and {s.table for s in found.tables} == {"user", "item"}
    cli = invoke(["analyze", str(tmp_path / "g"), "--only", "bias-ranking", "--json", "-q"])
    assert cli.exit_code == 0, cli.output
    from embedlab.io.strictjson import dumps

    assert json.loads(cli.stdout)["stability"] == json.loads(dumps(found.to_json()))["stability"]
