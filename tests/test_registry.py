"""The explicit plugin contract: registration normalises and validates once, shared options are
declared once, trainers declare their abilities, a trainer is chosen explicitly."""
from __future__ import annotations

import click
import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab import hookimpl
from embedlab.analysis import RUN_LEVEL, AnalysisOption, AnalysisResult
from embedlab.authoring.testing import invoke, plugin_registered
from embedlab.data import Dataset, DatasetSpec
from embedlab.registry import (PluginContractError, analyses, datasets, get_dataset, trainer_for,
                               trainer_for_dataset, trainer_of_run, trainers)
from embedlab.run import EmbeddingTable, Run
from embedlab.runner import run_analyses
from embedlab.toolkit.options import PERMUTATIONS, SEED
from embedlab.trainers.base import run_meta


class _Registers:
    """A plugin that registers the given objects through each hook."""

    def __init__(self, datasets=(), trainers=(), analyses=()):
        self._d, self._t, self._a = datasets, trainers, analyses

    @hookimpl
    def embedlab_register_datasets(self, register):
        for d in self._d:
            register(d)

    @hookimpl
    def embedlab_register_trainers(self, register):
        for t in self._t:
            register(t)

    @hookimpl
    def embedlab_register_analyses(self, register):
        for a in self._a:
            register(a)


class _Analysis:
    title = "test analysis"

    def __init__(self, name, options=(), tables=("item",), result=None):
        self.name, self.options, self._tables, self._result = name, list(options), list(tables), result

    def applies_to(self, run, options):
        return self._tables

    def run(self, run, table, options):
        if self._result is not None:
            return self._result
        return AnalysisResult(self.name, table, self.title, summary=f"ran on {table}", metrics={"x": 1.0})


# ---------------------------------------------------------------------------- registration
@pytest.mark.parametrize("obj, message", [
    (type("NoRun", (), {"name": "bad-a", "title": "t", "applies_to": lambda s, r: []})(), "without run"),
    (type("Spaced", (), {"name": "two words", "title": "t", "applies_to": lambda s, r: [],
                         "run": lambda s, *a: None})(), "is not a single word"),
    (type("BadOpt", (), {"name": "bad-opt", "title": "t", "applies_to": lambda s, r: [],
                         "run": lambda s, *a: None, "options": [object()]})(), "has no name"),
])
def test_a_malformed_analysis_is_a_one_line_error_naming_the_plugin(obj, message):
    with plugin_registered(_Registers(analyses=[obj]), name="tmp-malformed"):
        with pytest.raises(PluginContractError, match=message) as info:
            analyses()
    text = info.value.format_message()
    assert "tmp-malformed" in text and "\n" not in text and "embedlab_register_analyses" in text


def test_a_malformed_dataset_or_trainer_is_refused():
    bad_ds = DatasetSpec("bad-ds", "collab", "options are not click options", lambda **_: None, options=["--x"])
    with plugin_registered(_Registers(datasets=[bad_ds]), name="tmp-bad-ds"):
        with pytest.raises(PluginContractError, match="options are not a list of click options"):
            datasets()
    bad_tr = type("T", (), {"name": "bad-tr", "kind": "collab", "train": "not callable"})()
    with plugin_registered(_Registers(trainers=[bad_tr]), name="tmp-bad-tr"):
        with pytest.raises(PluginContractError, match="train is not callable"):
            trainers()


def test_shared_option_declared_with_another_type_or_default_is_refused():
    wrong_type = _Analysis("tmp-seed-str", [AnalysisOption("seed", str, "0", "a seed as text")])
    with plugin_registered(_Registers(analyses=[wrong_type]), name="tmp-seed-plugin"):
        with pytest.raises(PluginContractError, match=r"--seed \(type text.*embedlab.toolkit.options declares") as e:
            analyses()
    assert "tmp-seed-plugin" in e.value.format_message()
    wrong_default = _Analysis("tmp-topn", [AnalysisOption("top_n", int, 50, "other default")])
    with plugin_registered(_Registers(analyses=[wrong_default]), name="tmp-topn-plugin"):
        with pytest.raises(PluginContractError, match="--top-n"):
            analyses()
    same = _Analysis("tmp-same", [SEED, PERMUTATIONS, AnalysisOption("permutations", click.IntRange(19, 10_000_000),
                                                                       9999, "declared again, identically")])
    with plugin_registered(_Registers(analyses=[same]), name="tmp-same-plugin"):
        assert "tmp-same" in analyses()


def test_two_analyses_declaring_one_new_name_differently_are_refused():
    a = _Analysis("tmp-a", [AnalysisOption("tmp_width", int, 3)])
    b = _Analysis("tmp-b", [AnalysisOption("tmp_width", float, 3.0)])
    with plugin_registered(_Registers(analyses=[a, b]), name="tmp-width-plugin"):
        with pytest.raises(PluginContractError, match="analysis 'tmp-a' declares"):
            analyses()


def test_registered_analyses_are_normalised_specs(synthetic_run):
    spec = analyses()["bias-ranking"]
    assert spec.plugin == "bias-ranking" and spec.by_default
    assert all(isinstance(o, AnalysisOption) for o in spec.options)
    run = embedlab.load_run(synthetic_run)
    assert spec.applies_to(run) == spec.applies_to(run, {})  # one calling convention for every analysis


def test_applies_to_naming_a_missing_table_becomes_that_analysis_error_section(synthetic_run):
    bad = _Analysis("tmp-ghost", tables=["no-such-table"])
    run_level = _Analysis("tmp-whole", tables=[RUN_LEVEL])
    wrong = _Analysis("tmp-wrong", tables=["item"], result={"not": "a result"})
    with plugin_registered(_Registers(analyses=[bad, run_level, wrong]), name="tmp-shapes"):
        results = run_analyses(embedlab.load_run(synthetic_run), ["tmp-ghost", "tmp-whole", "tmp-wrong", "pca"],
                               render=False)
    by = {(r.analysis, r.table): r for r in results}
    assert "'no-such-table', which is not a table of this run" in by[("tmp-ghost", None)].error
    assert by[("tmp-whole", None)].error is None and by[("tmp-whole", None)].summary == "ran on None"
    assert "not an AnalysisResult" in by[("tmp-wrong", "item")].error
    assert by[("pca", "item")].error is None  # the others still ran


# ---------------------------------------------------------------------------- trainers
class _ConstTrainer:
    """A collab trainer that gives every item the vector (value, value)."""

    kind = "collab"
    options = [click.Option(["--value"], type=float, default=1.0)]

    def __init__(self, name):
        self.name = name

    def train(self, ds, config, progress=True):
        items = np.sort(pd.unique(ds.train[ds.roles["item"]]))
        value = float(config.get("value") or 1.0)
        table = EmbeddingTable("item", items, [str(i) for i in items],
                               np.full((len(items), 2), value, dtype=np.float32))
        return Run(run_meta(ds, self, dict(config), 0, {"valid_loss": 0.0}, []), {"item": table}, {})


def test_two_trainers_of_one_kind_need_an_explicit_choice(tmp_path):
    with plugin_registered(_Registers(trainers=[_ConstTrainer("als")]), name="tmp-als"):
        assert {t.name for t in trainers().values() if t.kind == "collab"} == {"als", "collab"}
        with pytest.raises(embedlab.errors.UsageError, match="2 trainers: 'als', 'collab'; choose one with --trainer"):
            trainer_for("collab")
        assert trainer_for("collab", "als").name == "als"
        result = invoke(["train", "synthetic-collab", "--out", str(tmp_path / "x"), "-q", "--users", "30",
                         "--items", "20", "--ratings", "500"], catch_exceptions=True)
        assert result.exit_code == 2 and "choose one with --trainer" in result.output
        out = tmp_path / "als"
        result = invoke(["train", "synthetic-collab", "--trainer", "als", "--value", "3", "--users", "30",
                         "--items", "20", "--ratings", "500", "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        run = embedlab.load_run(out)
        assert run.meta["trainer"] == "als" and float(run.table("item").vectors[0, 0]) == 3.0
        assert trainer_of_run(run).name == "als"  # predict and retraining analyses use the run's trainer
        help_text = invoke(["train", "synthetic-collab", "--trainer", "collab", "--help"]).output
        assert "--n-factors" in help_text and "--value" not in help_text
        py = embedlab.train("synthetic-collab", trainer="als", users=30, items=20, ratings=500, value=2.0)
        assert py.meta["trainer"] == "als"


def test_a_dataset_may_name_its_trainer():
    ds = DatasetSpec("tmp-const-data", "collab", "rows for the const trainer",
                     lambda seed=42, **_: get_dataset("synthetic-collab").load_dataset(
                         {"users": 20, "items": 10, "ratings": 300}, seed=seed), trainer="const")
    with plugin_registered(_Registers(datasets=[ds], trainers=[_ConstTrainer("const")]), name="tmp-named"):
        assert trainer_for_dataset(get_dataset("tmp-const-data")).name == "const"  # two collab trainers, one named
        with pytest.raises(embedlab.errors.UsageError, match="choose one with --trainer"):
            trainer_for_dataset(get_dataset("synthetic-collab"))
        assert trainer_for_dataset(get_dataset("synthetic-collab"), "collab").name == "collab"


def test_abilities_are_declared_and_a_missing_one_says_so(tmp_path):
    spec = trainers()
    assert spec["collab"].resumable and spec["tabular"].resumable
    assert spec["tabular"].can("predict") and not spec["collab"].can("predict")
    with plugin_registered(_Registers(trainers=[_ConstTrainer("plain")]), name="tmp-plain"):
        plain = trainers()["plain"]
        assert plain.abilities == frozenset() and not plain.resumable
        result = invoke(["lr-find", "synthetic-collab", "--trainer", "plain", "--users", "30", "--items", "20",
                         "--ratings", "500"], catch_exceptions=True)
        assert result.exit_code == 2 and "lr-find needs a trainer that offers lr_find(); trainer 'plain'" in result.output
        result = invoke(["train", "synthetic-collab", "--trainer", "plain", "--resume", "--out", str(tmp_path / "r"),
                         "--users", "30", "--items", "20", "--ratings", "500"], catch_exceptions=True)
        assert result.exit_code == 2 and "keeps no checkpoints" in result.output


def test_load_dataset_is_the_one_path_and_names_an_unknown_option():
    ds = embedlab.load_dataset("synthetic-collab", seed=3, users=30, items=20, ratings=400)
    assert isinstance(ds, Dataset) and ds.info["options"]["seed"] == 3 and ds.info["options"]["users"] == 30
    with pytest.raises(embedlab.errors.UsageError, match="dataset 'synthetic-collab' takes no option 'colour'"):
        embedlab.load_dataset("synthetic-collab", colour="red")
