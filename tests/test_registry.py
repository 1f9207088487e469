"""The explicit plugin contract: registration normalises and validates once, shared options are
declared once, trainers declare their abilities, a trainer is chosen explicitly."""

from __future__ import annotations

import re

import click
import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab import hookimpl
from embedlab.analysis import RUN_LEVEL, AnalysisOption, AnalysisResult
from embedlab.authoring.testing import invoke, plugin_registered
from embedlab.data import Dataset, DatasetSpec
from embedlab.registry import (
    PluginContractError,
    analyses,
    datasets,
    get_dataset,
    trainer_for,
    trainer_for_dataset,
    trainer_of_run,
    trainers,
)
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
@pytest.mark.parametrize(
    "obj, message",
    [
        (type("NoRun", (), {"name": "bad-a", "title": "t", "applies_to": lambda s, r: []})(), "without run"),
        (
            type(
                "Spaced",
                (),
                {"name": "two words", "title": "t", "applies_to": lambda s, r: [], "run": lambda s, *a: None},
            )(),
            "is not a single word",
        ),
        (
            type(
                "BadOpt",
                (),
                {
                    "name": "bad-opt",
                    "title": "t",
                    "applies_to": lambda s, r: [],
                    "run": lambda s, *a: None,
                    "options": [object()],
                },
            )(),
            "has no name",
        ),
    ],
)
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
    same = _Analysis(
        "tmp-same",
        [
            SEED,
            PERMUTATIONS,
            AnalysisOption("permutations", click.IntRange(19, 10_000_000), 9999, "declared again, identically"),
        ],
    )
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
        results = run_analyses(
            embedlab.load_run(synthetic_run), ["tmp-ghost", "tmp-whole", "tmp-wrong", "pca"], render=False
        )
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
        table = EmbeddingTable(
            "item", items, [str(i) for i in items], np.full((len(items), 2), value, dtype=np.float32)
        )
        return Run(run_meta(ds, self, dict(config), 0, {"valid_loss": 0.0}, []), {"item": table}, {})


def test_an_installed_trainer_changes_no_default_and_is_used_when_asked(tmp_path):
    """A second collab trainer (registered after the built-ins, as an installed package is) is
    used only with --trainer / trainer=; the built-in datasets, their --help and
    embedlab.testing's synthetic run keep the built-in trainer."""
    from embedlab.authoring.testing import synthetic_run

    small = ["--users", "30", "--items", "20", "--ratings", "500"]
    with plugin_registered(_Registers(trainers=[_ConstTrainer("als")]), name="tmp-als"):
        assert {t.name for t in trainers().values() if t.kind == "collab"} == {"als", "collab"}
        assert get_dataset("synthetic-collab").trainer == "collab"
        assert trainer_for("collab").name == "collab"  # the built-in: the one a package added is not guessed
        result = invoke(
            ["train", "synthetic-collab", "--out", str(tmp_path / "x"), "-q", *small, "--epochs", "1", "--bs", "64"]
        )
        assert result.exit_code == 0, result.output
        assert embedlab.load_run(tmp_path / "x").meta["trainer"] == "collab"
        help_text = " ".join(invoke(["train", "synthetic-collab", "--help"]).output.split())
        assert "--n-factors" in help_text and not re.search(r"--value\b", help_text)
        assert "(installed: als, collab)" in help_text and "[default: collab]" in help_text
        assert synthetic_run(users=30, items=20, ratings=500, epochs=1).meta["trainer"] == "collab"
        out = tmp_path / "als"
        result = invoke(
            ["train", "synthetic-collab", "--trainer", "als", "--value", "3", *small, "--out", str(out), "-q"]
        )
        assert result.exit_code == 0, result.output
        run = embedlab.load_run(out)
        assert run.meta["trainer"] == "als" and float(run.table("item").vectors[0, 0]) == 3.0
        assert trainer_of_run(run).name == "als"  # predict and retraining analyses use the run's trainer
        help_text = invoke(["train", "synthetic-collab", "--trainer", "als", "--help"]).output
        assert re.search(r"--value\b", help_text) and "--n-factors" not in help_text
        py = embedlab.train("synthetic-collab", trainer="als", users=30, items=20, ratings=500, value=2.0)
        assert py.meta["trainer"] == "als"
        testing_run = synthetic_run(trainer="als", users=30, items=20, ratings=500, value=4.0)
        assert testing_run.meta["trainer"] == "als" and float(testing_run.table("item").vectors[0, 0]) == 4.0


def test_two_added_trainers_of_a_kind_without_a_builtin_need_an_explicit_choice():
    a, b = _ConstTrainer("tmp-a"), _ConstTrainer("tmp-b")
    a.kind = b.kind = "tmp-kind"
    unnamed = DatasetSpec("tmp-unnamed", "tmp-kind", "names no trainer", lambda seed=42, **_: None)
    with plugin_registered(_Registers(datasets=[unnamed], trainers=[a, b]), name="tmp-two"):
        with pytest.raises(
            embedlab.errors.UsageError,
            match="dataset 'tmp-unnamed' .kind 'tmp-kind'. names no trainer and can be trained by "
            "2 trainers: 'tmp-a', 'tmp-b'; choose one with --trainer",
        ):
            trainer_for_dataset(get_dataset("tmp-unnamed"))
        assert trainer_for_dataset(get_dataset("tmp-unnamed"), "tmp-b").name == "tmp-b"


def test_a_dataset_may_name_its_trainer():
    ds = DatasetSpec(
        "tmp-const-data",
        "collab",
        "rows for the const trainer",
        lambda seed=42, **_: get_dataset("synthetic-collab").load_dataset(
            {"users": 20, "items": 10, "ratings": 300}, seed=seed
        ),
        trainer="const",
    )
    unnamed = DatasetSpec("tmp-unnamed-collab", "collab", "names none", ds.load)
    with plugin_registered(_Registers(datasets=[ds, unnamed], trainers=[_ConstTrainer("const")]), name="tmp-named"):
        assert trainer_for_dataset(get_dataset("tmp-const-data")).name == "const"  # two collab trainers, one named
        assert trainer_for_dataset(get_dataset("synthetic-collab")).name == "collab"
        assert trainer_for_dataset(get_dataset("tmp-unnamed-collab")).name == "collab"  # the built-in of its kind


def test_same_data_other_seed_keeps_the_data_and_changes_the_training_seed():
    from embedlab.authoring.testing import same_data_other_seed, synthetic_run
    from embedlab.toolkit.retrain import reload_dataset

    a = synthetic_run(users=30, items=20, ratings=500, epochs=1)
    b = same_data_other_seed(a, seed=7)
    assert b.seed == 7 and a.seed == 0 and b.meta["dataset_info"] == a.meta["dataset_info"]
    assert b.meta["trainer"] == a.meta["trainer"] and {**b.config, "seed": 0} == a.config
    assert not np.allclose(a.table("item").vectors, b.table("item").vectors)
    pd.testing.assert_frame_equal(reload_dataset(b).train, reload_dataset(a).train)  # the data seed travels


def test_abilities_are_declared_and_a_missing_one_says_so(tmp_path):
    spec = trainers()
    assert spec["collab"].resumable and spec["tabular"].resumable
    assert spec["tabular"].can("predict") and spec["collab"].can("predict") and spec["collab"].can("recommend")
    assert not spec["tabular"].can("recommend")
    with plugin_registered(_Registers(trainers=[_ConstTrainer("plain")]), name="tmp-plain"):
        plain = trainers()["plain"]
        assert plain.abilities == frozenset() and not plain.resumable
        result = invoke(
            ["lr-find", "synthetic-collab", "--trainer", "plain", "--users", "30", "--items", "20", "--ratings", "500"],
            catch_exceptions=True,
        )
        assert (
            result.exit_code == 2 and "lr-find needs a trainer that offers lr_find(); trainer 'plain'" in result.output
        )
        result = invoke(
            [
                "train",
                "synthetic-collab",
                "--trainer",
                "plain",
                "--resume",
                "--out",
                str(tmp_path / "r"),
                "--users",
                "30",
                "--items",
                "20",
                "--ratings",
                "500",
            ],
            catch_exceptions=True,
        )
        assert result.exit_code == 2 and "keeps no checkpoints" in result.output


def test_load_dataset_is_the_one_path_and_names_an_unknown_option():
    ds = embedlab.load_dataset("synthetic-collab", seed=3, users=30, items=20, ratings=400)
    assert isinstance(ds, Dataset) and ds.info["options"]["seed"] == 3 and ds.info["options"]["users"] == 30
    with pytest.raises(embedlab.errors.UsageError, match="dataset 'synthetic-collab' takes no option 'colour'"):
        embedlab.load_dataset("synthetic-collab", colour="red")
