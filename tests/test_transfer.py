"""The ``transfer`` analysis: learned embeddings as features of KNN, random forest and boosting.

On synthetic-rossmann (planted store, state, weekday and month effects) the store codes carry
no order, so a KNN on raw codes finds neighbours by code arithmetic; the learned embeddings put
similar stores together, and the test asserts KNN improves a lot with them.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

import embedlab
from embedlab.runner import run_analyses
from embedlab.errors import UsageError
from embedlab.registry import analyses, trainer_of_run

from conftest import data_dir

FAST = {"transfer_trees": 10, "transfer_rounds": 60, "transfer_eval_rows": 500}


@pytest.fixture(scope="module")
def tabular_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("transfer") / "guo"
    embedlab.train(
        "synthetic-rossmann",
        out=out,
        preset="guo2016",
        epochs=3,
        n_stores=24,
        days=240,
        split="time",
        train_sample=4000,
        seed=1,
    )
    return embedlab.load_run(out)


@pytest.fixture(scope="module")
def result(tabular_run):
    return run_analyses(tabular_run, ["transfer"], FAST, render=True)[0]


def test_applies_to_tabular_regression_runs_only(tabular_run):
    from embedlab.analysis import RUN_LEVEL
    from embedlab.run import Run

    transfer = analyses()["transfer"]
    assert transfer.applies_to(tabular_run) == [None]  # the registry's form of RUN_LEVEL
    assert transfer.impl.applies_to(tabular_run) == [RUN_LEVEL]
    collab = Run({"dataset": "x", "kind": "collab"}, tabular_run.tables)
    assert transfer.applies_to(collab) == []
    classify = Run({**tabular_run.meta, "task": "classify"}, tabular_run.tables)
    assert transfer.applies_to(classify) == []
    assert transfer.applies_to(Run(tabular_run.meta, {})) == []  # no tables: no embeddings to use
    # a run.json written before the top-level "task": read from the tabular record
    older = {k: v for k, v in tabular_run.meta.items() if k != "task"}
    assert transfer.applies_to(Run(older, tabular_run.tables)) == [None]
    older_classify = {**older, "tabular": {**older["tabular"], "task": "classify"}}
    assert transfer.applies_to(Run(older_classify, tabular_run.tables)) == []


class PlainTabularTrainer:
    """A third-party tabular trainer that offers no encode_rows (only the required members)."""

    name = "tmp-plain-tabular"
    kind = "tabular"
    options: list = []

    def train(self, ds, config, progress=True):  # pragma: no cover - runs are made by hand here
        raise NotImplementedError


class EncodingTabularTrainer(PlainTabularTrainer):
    """A third-party tabular trainer with encode_rows (it borrows the built-in network's view)."""

    name = "tmp-encoding-tabular"

    def __init__(self):
        self.calls = []

    def encode_rows(self, run, frame, source):
        from embedlab.trainers.tabular import TabularTrainer

        self.calls.append(source)
        return TabularTrainer().encode_rows(run, frame, source)


class TrainersPlugin:
    def __init__(self, *trainers):
        self.trainers = trainers

    @embedlab.hookimpl
    def embedlab_register_trainers(self, register):
        for trainer in self.trainers:
            register(trainer)


def _made_by(run, trainer_name):
    from embedlab.run import Run

    return Run({**run.meta, "trainer": trainer_name}, run.tables, run.tensors(), run.path)


def test_a_trainer_without_encode_rows_does_not_get_transfer(tabular_run):
    from embedlab.authoring.testing import plugin_registered

    run = _made_by(tabular_run, PlainTabularTrainer.name)
    assert analyses()["transfer"].applies_to(run) == []  # its trainer is not even installed
    with plugin_registered(TrainersPlugin(PlainTabularTrainer()), name="tmp-plain-tabular-plugin"):
        assert not trainer_of_run(run).can("encode_rows")
        assert analyses()["transfer"].applies_to(run) == []
        assert analyses()["transfer"].applies_to(tabular_run) == [None]  # the built-in trainer's run still does
        [asked] = run_analyses(run, ["transfer"], FAST, render=False)  # asked for by name: says it does not apply
        assert asked.error is None and asked.metrics == {} and "qualifies" in asked.summary
        with pytest.raises(UsageError, match="needs a trainer that offers encode_rows"):
            trainer_of_run(run).encode_rows(run, None, "rows")


def test_transfer_uses_only_the_trainers_encode_rows(tabular_run):
    from embedlab.authoring.testing import plugin_registered

    trainer = EncodingTabularTrainer()
    run = _made_by(tabular_run, trainer.name)
    options = {**FAST, "transfer_models": "knn"}
    with plugin_registered(TrainersPlugin(trainer), name="tmp-encoding-tabular-plugin"):
        assert analyses()["transfer"].applies_to(run) == [None]
        via_plugin = run_analyses(run, ["transfer"], options, render=False)[0]
    assert via_plugin.error is None, via_plugin.error
    assert trainer.calls == ["training rows", "validation rows"]
    builtin = run_analyses(tabular_run, ["transfer"], options, render=False)[0]
    assert via_plugin.metrics == builtin.metrics and via_plugin.summary == builtin.summary


def test_embeddings_beat_raw_codes_for_knn(result):
    assert result.error is None, result.error
    m = result.metrics
    assert m["mape_knn_embeddings"] < 0.7 * m["mape_knn_raw"]
    assert m["train_rows"] == 4000 and m["eval_rows"] == 500
    for model in ("rf", "gbt"):
        assert np.isfinite(m[f"mape_{model}_raw"]) and np.isfinite(m[f"mape_{model}_embeddings"])
    assert 0 < m["mape_nn_embeddings"] < 0.5


def test_table_puts_the_papers_figures_beside_the_measured_ones(result):
    frame = next(iter(result.tables.values()))
    assert list(frame.columns[:6]) == [
        "model",
        "MAPE raw codes",
        "MAPE embeddings",
        "change",
        "paper raw",
        "paper embeddings",
    ]
    paper = dict(zip(frame["model"].str.split(" ").str[0], zip(frame["paper raw"], frame["paper embeddings"])))
    assert paper["KNN"] == (0.290, 0.116) and paper["random"] == (0.158, 0.108)
    assert paper["gradient"] == (0.152, 0.115) and paper["the"][1] == 0.093
    assert "KNN" in result.summary and "0.290 -> 0.116" in result.summary
    assert len(result.figures) == 1


def test_network_row_matches_the_runs_own_validation_mape(tabular_run):
    # scored on every validation row, the network's MAPE is the run's (unscaled) valid_mape
    res = run_analyses(
        tabular_run, ["transfer"], {**FAST, "transfer_eval_rows": 0, "transfer_models": "knn"}, render=False
    )[0]
    want = tabular_run.metrics.get("valid_mape_unscaled", tabular_run.metrics["valid_mape"])
    assert res.metrics["mape_nn_embeddings"] == pytest.approx(want, rel=1e-4)


def test_the_training_rows_are_the_runs_own_sample(tabular_run):
    from embedlab.toolkit.retrain import reload_dataset
    from embedlab_plugins.transfer import run_rows

    ds = reload_dataset(tabular_run)
    rows = run_rows(tabular_run, ds.train)
    assert len(rows) == tabular_run.metrics["train_rows"] == 4000
    assert tabular_run.meta["dataset_info"]["options"]["n_stores"] == 24


def test_bad_options_and_missing_loader_options(tabular_run, tmp_path):
    bad = run_analyses(tabular_run, ["transfer"], {**FAST, "transfer_models": "svm"}, render=False)[0]
    assert "unknown model 'svm'" in bad.error
    meta = json.loads((tabular_run.path / "run.json").read_text())
    meta["dataset_info"].pop("options")
    from embedlab.run import Run

    bare = Run(meta, tabular_run.tables, tabular_run.tensors(), tabular_run.path)
    from embedlab.toolkit.retrain import reload_dataset

    with pytest.raises(UsageError, match="does not record the loader options"):
        reload_dataset(bare)


def test_cli_analyze_only_transfer_writes_the_report(tabular_run, tmp_path):
    from embedlab.cli import make_cli

    report = tmp_path / "transfer.html"
    res = CliRunner().invoke(
        make_cli(),
        [
            "analyze",
            str(tabular_run.path),
            "--only",
            "transfer",
            "--transfer-trees",
            "5",
            "--transfer-rounds",
            "20",
            "--transfer-eval-rows",
            "500",
            "--transfer-models",
            "knn,gbt",
            "--report",
            str(report),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert report.is_file() and "MAPE" in report.read_text()


@pytest.mark.realdata
@pytest.mark.slow
def test_rossmann_guo2016_transfer(tmp_path):
    """Lean: 200 stores, 30,000 training rows, 2 epochs (the README's table uses the full preset)."""
    folder = data_dir("rossmann")
    out = tmp_path / "guo"
    embedlab.train(
        "rossmann",
        out=out,
        data_dir=str(folder),
        stores="1-200",
        preset="guo2016",
        split="time",
        valid_pct=0.1,
        train_sample=30000,
        epochs=2,
        seed=42,
    )
    res = run_analyses(
        embedlab.load_run(out),
        ["transfer"],
        {"transfer_trees": 10, "transfer_rounds": 100, "transfer_eval_rows": 5000},
        render=False,
    )[0]
    assert res.error is None, res.error
    for model in ("knn", "rf", "gbt"):
        assert res.metrics[f"mape_{model}_embeddings"] < res.metrics[f"mape_{model}_raw"]
