"""Issue 18, the everyday interface: the Python API (lr_find, learner, compare, Run.neighbors,
addressable results, BokehJS once per notebook), progress, per-step records and the schedule
plot, forgiving entity lookup, full terminal summaries with --brief, predict's coverage."""

from __future__ import annotations

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedlab
from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisResult
from embedlab.authoring.testing import plugin_registered, synthetic_run
from embedlab.errors import UsageError
from embedlab.run import EmbeddingTable, Run

TINY = dict(users=120, items=90, ratings=4000, seed=3)  # synthetic-collab: trains in well under a second


@pytest.fixture(scope="module")
def tiny():
    return embedlab.load_dataset("synthetic-collab", **TINY)


# ---------------------------------------------------------------------------- progress
def test_progress_shows_where_a_person_watches_and_never_with_false(tiny, monkeypatch, capsys):
    from embedlab.io import progress

    assert progress.resolve(False) is False and progress.resolve(True) is True
    assert not progress.in_notebook()  # pytest is no Jupyter kernel
    monkeypatch.setattr(progress, "watching", lambda: True)
    embedlab.train(tiny, epochs=2, bs=512)  # progress=None: a person watches -> a bar and epoch rows
    err = capsys.readouterr().err
    assert "training" in err and "epoch 1" in err and "epoch 2" in err
    embedlab.train(tiny, epochs=2, bs=512, progress=False)
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(progress, "watching", lambda: False)
    embedlab.train(tiny, epochs=1, bs=512)  # nobody watching (a pipe, CI): silent by default
    assert capsys.readouterr().err == ""


def test_lines_printed_under_a_terminal_bar_are_never_cut(capsys):
    """Piped to a log (rich's 80 columns), a step or note line stays one line."""
    from embedlab.io import progress

    line = "compare: " + "a long note " * 15 + "END"
    with progress._Rich() as bar:
        bar.print(line)
    assert line in capsys.readouterr().err.splitlines()


def test_the_notebook_bar_is_one_display_updated_in_place(monkeypatch):
    """In a notebook the bars and the epoch rows are one display output redrawn in place, so an
    executed notebook keeps one block per fit, not a stream of refreshes."""
    from embedlab.io import progress

    shown = []

    class Handle:
        def update(self, obj):
            shown.append(("update", obj._text()))

    def display(obj, display_id=False):
        assert display_id is True
        shown.append(("display", obj._text()))
        return Handle()

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr(progress, "_Notebook", lambda: progress.__dict__["_NotebookBar"](display))
    with progress.progress_bar(True) as bar:
        task = bar.add_task("training", total=4, info="start")
        bar.update(task, advance=2, info="epoch 1/2 loss 0.5")
        bar.print("epoch 1  train_loss 0.5000")
        bar.update(task, completed=4)
    assert [kind for kind, _ in shown].count("display") == 1  # one output, then updates of it
    final = shown[-1][1]
    assert final.startswith("training") and "4/4" in final and final.endswith("epoch 1  train_loss 0.5000")
    bar.add_task("<b>lr-find</b>", total=1)
    assert "&lt;b&gt;lr-find" in bar._repr_html_() and "<b>" not in bar._repr_html_()  # text, never markup


class _Reporting(Analysis):
    name = "reporting-test"
    title = "Reports progress"
    by_default = False

    def applies_to(self, run, options=None):
        return ["item"]

    def run(self, run, table, options, progress=None):
        for i in range(3):
            progress(i, 3, f"step {i}")
        return AnalysisResult(self.name, table, self.title, summary="done")


class _ReportingPlugin:
    @hookimpl
    def embedlab_register_analyses(self, register):
        register(_Reporting())


def test_the_runner_turns_an_analysis_callback_into_its_progress_bar(monkeypatch):
    from embedlab.io import progress
    from embedlab.runner import run_analyses

    events = []

    class Recorder(progress._Null):
        def add_task(self, description, total=None, info="", completed=0):
            events.append(("task", description, total))
            return 0

        def update(self, task=0, advance=0, info=None, completed=None, total=None):
            events.append(("update", completed, info))

    run = synthetic_run()
    monkeypatch.setattr(progress, "progress_bar", lambda enabled=True: Recorder() if enabled else progress._Null())
    with plugin_registered(_ReportingPlugin(), name="reporting-test-plugin"):
        results = run_analyses(run, ["reporting-test", "bias-ranking"], render=False, progress=True)
    assert [r.summary for r in results][0] == "done"
    assert events[0] == ("task", "analyses", 3)  # reporting-test/item + bias-ranking/user,item
    inside = [e for e in events if e[0] == "update" and e[2] and "step" in e[2]]
    assert [e[1] for e in inside] == pytest.approx([0, 1 / 3, 2 / 3])
    assert inside[1][2] == "reporting-test/item 1/3 step 1"
    assert ("update", 3, events[-1][2]) == events[-1] and "bias-ranking/item" in events[-1][2]


# ---------------------------------------------------------------------------- per-step records
def test_steps_are_recorded_per_step_and_decimated():
    from embedlab.training.learner import MAX_STEP_POINTS, FitResult

    n = 10_007
    fit = FitResult(
        history=[{"epoch": 1}],
        lrs={"a": list(np.linspace(0, 1, n))},
        moms={"a": [0.9] * n},
        losses=[float(i) for i in range(n)],
    )
    steps = fit.steps()
    assert len(steps["step"]) == len(steps["loss"]) == len(steps["lr"]["a"]) == MAX_STEP_POINTS
    assert steps["step"][0] == 1 and steps["step"][-1] <= n and steps["total_steps"] == n
    assert steps["lr"]["a"][0] == 0.0 and 0.99 < steps["lr"]["a"][-1] <= 1.0
    ends = steps["step"][1:] + [n + 1]  # each point: the mean loss of its bin of steps, not one noisy step
    assert steps["loss"] == pytest.approx([(a - 1 + b - 2) / 2 for a, b in zip(steps["step"], ends)], rel=1e-5)
    small = FitResult(history=[{"epoch": 1}], lrs={"a": [1.0, 2.0]}, losses=[3.0, 5.0]).steps()
    assert small["step"] == [1, 2] and small["loss"] == [3.0, 5.0] and small["mom"] == {}


def test_run_json_records_the_one_cycle_schedule_and_the_loss_of_every_step(tiny, tmp_path):
    run = embedlab.train(tiny, out=tmp_path / "r", epochs=3, bs=256, lr=1e-2, progress=False)
    steps = json.loads((tmp_path / "r" / "run.json").read_text())["steps"]
    per_epoch = math.ceil(len(tiny.train) / 256)
    assert steps["total_steps"] == len(steps["step"]) == 3 * per_epoch and steps["steps_per_epoch"] == per_epoch
    lr = np.asarray(steps["lr"]["embeddings"])
    peak = int(np.argmax(lr))
    assert lr.max() == pytest.approx(1e-2, rel=1e-2) and 0.15 < peak / len(lr) < 0.35  # warm up 25%, anneal
    assert lr[0] < lr.max() / 10 and lr[-1] < lr.max() / 100
    mom = np.asarray(steps["mom"]["embeddings"])  # Adam's beta1 moves against the lr
    assert mom[peak] == pytest.approx(mom.min()) and mom[0] > mom[peak]
    assert len(steps["loss"]) == len(lr) and np.mean(steps["loss"][-per_epoch:]) < np.mean(steps["loss"][:per_epoch])
    titles = [f.title.text for f in embedlab_report_figures(run)]
    assert (
        titles[:3]
        == ["Learning rate per step (the schedule)", "Momentum per step (beta1 for Adam)", "Training loss per step"]
        and "Loss per epoch" in titles
    )


def embedlab_report_figures(run):
    from embedlab.report.html import training_figures

    return training_figures(run)


# ---------------------------------------------------------------------------- entity lookup
def _movies() -> EmbeddingTable:
    labels = [
        "Star Wars (1977)",
        "Stargate (1994)",
        "Godfather, The (1972)",
        "Godfather: Part II, The (1974)",
        "Chasing Amy (1997)",
        "Chasing Amy (1997)",
        "Star Trek: Generations (1994)",
        "Café au lait (1993)",
    ]
    rng = np.random.default_rng(0)
    return EmbeddingTable(
        "item",
        np.arange(1, 9),
        labels,
        rng.normal(size=(8, 4)),
        metadata=pd.DataFrame({"count": [583, 80, 413, 209, 40, 124, 60, 12]}),
    )


def _users() -> EmbeddingTable:
    keys = np.arange(1, 400)
    return EmbeddingTable(
        "user",
        keys,
        [f"user {k}" for k in keys],
        np.random.default_rng(1).normal(size=(399, 4)),
        metadata=pd.DataFrame({"count": np.arange(399)}),
    )


@pytest.mark.parametrize(
    "query, label, how",
    [
        ("Star Wars (1977)", "Star Wars (1977)", "label"),
        ("star wars (1977)", "Star Wars (1977)", "label, ignoring case and punctuation"),
        ("  STAR  WARS (1977)", "Star Wars (1977)", "label, ignoring case and punctuation"),
        ("star wars", "Star Wars (1977)", "title, without year or article"),
        ("the godfather", "Godfather, The (1972)", "title, without year or article"),
        ("godfather part ii", "Godfather: Part II, The (1974)", "title, without year or article"),
        ("cafe au lait", "Café au lait (1993)", "title, without year or article"),
        ("generations", "Star Trek: Generations (1994)", "part of a label"),
        ("2", "Stargate (1994)", "key"),
    ],
)
def test_lookup_is_case_insensitive_and_forgiving(query, label, how):
    t = _movies()
    found = t.find(query)
    assert (t.labels[found.row], found.how) == (label, how) and t.lookup(query) == found.row


def test_lookup_explains_ambiguous_matches_and_shared_labels():
    t = _movies()
    with pytest.raises(
        UsageError,
        match=r"'father' is ambiguous in table 'item': it matches 2 entities by "
        r"part of a label: Godfather, The \(1972\) \(key 3\); Godfather: Part II",
    ):
        t.find("father")  # ("godfather" alone is the 1972 film's title: rule 5)
    with pytest.raises(UsageError, match=r"'star' is ambiguous .* Star Wars \(1977\) \(key 1\); Stargate"):
        t.find("star")  # most observed first
    found = t.find("chasing amy")
    assert (
        t.keys[found.row] == 6
        and "2 entities of table 'item' are labelled 'Chasing Amy (1997)' (keys 6, 5)" in found.note
        and "most observed" in found.note
    )


def test_suggestions_offer_labels_before_keys():
    t = _movies()
    with pytest.raises(UsageError, match=r"did you mean: Godfather, The \(1972\); Godfather: Part II"):
        t.find("godfater")
    assert _users().suggestions("3999") == ["key 399 (user 399)"]  # a key-like query gets keys, after labels
    assert not any(s.startswith("key") for s in t.suggestions("stra wars"))


def test_a_title_is_found_across_tables_and_never_suggests_user_197():
    from embedlab.toolkit.neighbors import find_entity

    run = Run({"dataset": "x", "kind": "collab"}, {"user": _users(), "item": _movies()})
    found = find_entity(run, "star wars (1977)")
    assert (found.table, run.table("item").labels[found.row]) == ("item", "Star Wars (1977)")
    clash = find_entity(run, "3")  # a user key and an item key: the first table, and the note says so
    assert clash.table == "user" and "also names an entity of table item" in clash.note
    with pytest.raises(UsageError) as err:
        find_entity(run, "star warz (1977)")
    assert "item: Star Wars (1977)" in str(err.value) and "user 197" not in str(err.value)


def test_run_neighbors_returns_a_frame_from_the_toolkit():
    from embedlab.toolkit.neighbors import nearest

    run = synthetic_run()
    t = run.table("item")
    label = str(t.labels[3])
    frame = run.neighbors(label.upper(), k=5)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 5 and frame.attrs["table"] == "item"
    assert frame.attrs["entity"] == {"key": int(t.keys[3]), "label": label}
    pd.testing.assert_frame_equal(
        frame.reset_index(drop=True), nearest(t, 3, 5), check_like=False, check_dtype=False, check_exact=False
    )
    assert list(frame["cosine"]) == sorted(frame["cosine"], reverse=True)


def test_cli_neighbors_works_with_a_lower_case_title(tmp_path):
    run = Run({"dataset": "x", "kind": "collab", "config": {}}, {"user": _users(), "item": _movies()}, tensors={})
    run.save(tmp_path / "r")
    res = CliRunner().invoke(
        embedlab_cli(), ["neighbors", str(tmp_path / "r"), "star wars (1977)", "-k", "3", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["table"] == "item" and out["entity"]["label"] == "Star Wars (1977)" and len(out["neighbors"]) == 3
    assert out["matched"] == "label, ignoring case and punctuation"


def embedlab_cli():
    from embedlab.cli import make_cli

    return make_cli()


# ---------------------------------------------------------------------------- results, display
@pytest.fixture(scope="module")
def results():
    return embedlab.analyze(synthetic_run(), ["bias-ranking", "pca"], progress=False)


def test_results_are_addressable_by_analysis_and_table(results):
    one = results["pca", "item"]
    assert isinstance(one, AnalysisResult) and (one.analysis, one.table) == ("pca", "item")
    assert results.pca.item is one and results["pca"]["item"] is one and results["item"]["pca"] is one
    assert [r.table for r in results["pca"]] == ["user", "item"] and results.tables == ["user", "item"]
    assert [r.analysis for r in results["item"]] == ["bias-ranking", "pca"]
    assert results.bias_ranking.user is results["bias-ranking", "user"]
    assert results[0] is list.__getitem__(results, 0) and len(results[1:]) == len(results) - 1
    with pytest.raises(KeyError, match="analyses: bias-ranking, pca; tables: user, item"):
        results["umap"]
    with pytest.raises(AttributeError):
        results.nothing_here
    assert "pca" in dir(results) and "bias_ranking" in dir(results)


def test_bokehjs_is_sent_once_per_notebook(results):
    from embedlab.report import notebook

    notebook.reset_bokehjs()
    first = results["pca"]._repr_html_()
    second = results["bias-ranking"]._repr_html_()
    third = results["pca", "item"]._repr_html_()
    core = "/* BEGIN bokeh.min.js */"
    assert first.count(core) == 1 and len(first) > 1_000_000
    assert core not in second + third and len(second) < 300_000 and len(third) < 300_000
    assert "PCA projection" in third and "embed_items" in third
    assert "<iframe" not in first + second + third
    notebook.reset_bokehjs()  # a restarted kernel: the next output carries BokehJS again
    assert len(results["pca", "item"]._repr_html_()) > 1_000_000


# ---------------------------------------------------------------------------- lr_find, learner, compare
def test_lr_find_suggests_and_plots(tiny):
    found = embedlab.lr_find(tiny, progress=False, bs=128)
    assert found.suggestion == found.suggestions["valley"] and 1e-5 < found.suggestion < 1
    assert set(found.suggestions) == {"valley", "steep", "min10"} and "suggestion=" in repr(found)
    figs = found.plot()
    assert len(figs) == 1 and "(suggested)" in figs.caption and "embedlab-nb" in figs._repr_html_()
    assert embedlab.lr_find(tiny, progress=False, bs=128, rule="min10").suggestion == found.suggestions["min10"]


def test_the_live_learner_is_the_trainers_own_training(tiny):
    """fit_one_cycle on embedlab.learner trains exactly what embedlab.train trains (one code path)."""
    trained = embedlab.train(tiny, epochs=2, lr=5e-3, progress=False)
    learn = embedlab.learner(tiny, progress=False)
    hist = learn.fit_one_cycle(2, 5e-3)
    assert list(hist["epoch"]) == [1, 2]
    live = learn.run
    np.testing.assert_array_equal(live.table("item").vectors, trained.table("item").vectors)
    assert live.history[-1]["valid_loss"] == pytest.approx(trained.history[-1]["valid_loss"])
    assert live.meta["steps"]["step"] == trained.meta["steps"]["step"]


def test_the_live_learner_is_the_learner_with_notebook_verbs(tiny):
    """Its step, callbacks and state are the trainer's Learner's: one loop, one replaceable step."""
    from embedlab.training import Callback, autograd_step

    learn = embedlab.learner(tiny, progress=False)
    assert learn.step is autograd_step and learn.opt is learn.learner.opt
    steps = []

    def my_step(lrn, opt, inputs, target):
        steps.append(len(target))
        return autograd_step(lrn, opt, inputs, target)

    class Epochs(Callback):
        seen = []

        def after_epoch(self):
            self.seen.append(self.learn.row["epoch"])

    learn.step = my_step
    assert learn.learner.step is my_step
    learn.fit_one_cycle(2, 5e-3, cbs=[Epochs()])
    assert Epochs.seen == [1, 2] and len(steps) == len(learn.fits[0].losses) > 0


def test_the_live_learner_is_one_learner_with_a_session_attached(tiny):
    """embedlab.learner returns the trainer's own Learner; the notebook verbs are its attached
    session's; the old LiveLearner(prepared) returns the same kind of object, with a warning."""
    from embedlab.deprecations import EmbedlabDeprecationWarning
    from embedlab.report.live import LiveLearner, LRFind, Session
    from embedlab.training import Learner

    learn = embedlab.learner(tiny, progress=False)
    assert type(learn) is Learner and learn is learn.prepared.learner and isinstance(learn, LiveLearner)
    assert [type(cb).__name__ for cb in learn.attached] == ["Threads", "Session"]
    hist = learn.fit(1, 5e-3)  # fastai's fit(epochs, lr): the trainer's settings otherwise
    assert hist is learn.fits[-1] and list(hist["epoch"]) == [1] and hist.config["opt"] == learn.config["opt"]
    assert isinstance(learn.lr_find(num=10), LRFind) and learn.run.history[-1]["epoch"] == 1
    assert "1 fits, 1 epochs trained" in repr(learn)
    session = next(cb for cb in learn.attached if isinstance(cb, Session))
    learn.remove_cb(session)  # without the session: a plain Learner again
    assert not isinstance(learn, LiveLearner) and not hasattr(learn, "run")
    assert not isinstance(learn.lr_find(num=10, progress=False), LRFind)
    dataset, chosen, config = embedlab._dataset_and_trainer(tiny, None, {})
    with pytest.warns(EmbedlabDeprecationWarning, match="LiveLearner"):
        old = LiveLearner(chosen.prepare(dataset, config, progress=False), progress=False, name="old")
    assert type(old) is Learner and old.fit_one_cycle(1, 5e-3)["epoch"].tolist() == [1] and len(old.fits) == 1


def test_freeze_unfreeze_and_discriminative_learning_rates(tiny):
    learn = embedlab.learner(tiny, progress=False, epochs=1)
    assert learn.layer_groups == ["embeddings", "biases"]
    learn.fit_one_cycle(1, 5e-3)
    learn.freeze()
    assert learn.frozen_groups == ["embeddings"]
    before = learn.model.user_emb.weight.detach().clone()
    learn.fit_one_cycle(1, 1e-3)
    assert torch_equal(before, learn.model.user_emb.weight)  # frozen: bit-identical
    learn.unfreeze()
    learn.fit_one_cycle(2, slice(1e-5, 1e-3))
    last = learn.fits[-1]
    assert last.groups["embeddings"]["lr"] == pytest.approx(1e-5) and last.groups["biases"]["lr"] == pytest.approx(1e-3)
    run = learn.run
    assert [h["epoch"] for h in run.history] == [1, 2, 3, 4] and len(run.meta["fits"]) == 3
    steps = run.meta["steps"]
    assert len(steps["fit_bounds"]) == 2 and steps["total_steps"] == len(steps["step"])
    frozen_fit = slice(steps["fit_bounds"][0], steps["fit_bounds"][1])
    assert all(v is None for v in steps["lr"]["embeddings"][frozen_fit])  # no lr while frozen
    titles = [f.title.text for f in learn.plot_sched()]
    assert titles == ["Learning rate per step (the schedule)", "Momentum per step (beta1 for Adam)"]
    assert [f.title.text for f in learn.plot_loss()] == ["Training loss per step"]
    weights = learn.model.item_emb.weight.detach().clone()
    found = learn.lr_find(num=30)
    assert len(found.lrs) <= 30 and torch_equal(weights, learn.model.item_emb.weight)  # the sweep is undone


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b.detach()))


def test_compare_api_uses_the_compare_command_code(tiny):
    res = embedlab.compare(tiny, opt=["adam", "adamw"], wd=[0.0, 0.3], epochs=1, bs=512, progress=False)
    assert len(res.outcomes) == 4 and list(res.table.columns[:1]) == ["config"]
    assert "On synthetic-collab" in res.summary and res.best.label == res.table["config"].iloc[0]
    assert "bs 512" in res.summary  # a single value given to the API is held at that value
    assert [r.analysis for r in res.results] == ["compare", "setup"] and "embedlab-nb" in res._repr_html_()


# ---------------------------------------------------------------------------- terminal
def test_terminal_prints_the_whole_summary_and_brief_the_short_form():
    from rich.console import Console

    from embedlab.report.terminal import print_terminal

    text = (
        " ".join(f"Sentence number {i} says something about the embedding." for i in range(30))
        + " The low end: Bio-Dome."
    )
    r = AnalysisResult("pca", "item", "PCA projection", summary=text)
    full, brief = Console(file=io.StringIO(), width=80), Console(file=io.StringIO(), width=80)
    print_terminal([r], console=full)
    print_terminal([r], console=brief, brief=True)
    full_out, brief_out = full.file.getvalue(), brief.file.getvalue()
    assert "Bio-Dome" in full_out and "[…]" not in full_out and max(map(len, full_out.splitlines())) <= 80
    assert "Bio-Dome" not in brief_out and "[…]" in brief_out


def test_cli_analyze_brief_and_quiet(tmp_path):
    run_dir = tmp_path / "r"
    synthetic_run(out=run_dir)
    res = CliRunner().invoke(embedlab_cli(), ["analyze", str(run_dir), "--only", "pca", "--brief", "-q"])
    assert res.exit_code == 0, res.output and "PCA projection" in res.output


# ---------------------------------------------------------------------------- predict
def test_predict_says_how_many_rows_it_wrote_and_warns_about_unseen_stores(tmp_path):
    import embedlab_datasets.synthetic_rossmann as S

    raw, _ = S.generate(stores=12, days=120, seed=5)
    folder = S.write_files(raw, tmp_path / "kaggle")
    cli, runner = embedlab_cli(), CliRunner()
    res = runner.invoke(
        cli,
        [
            "train",
            "rossmann",
            "--data-dir",
            str(folder),
            "--layers",
            "16",
            "--epochs",
            "1",
            "--bs",
            "64",
            "-q",
            "--stores",
            "1-3",
            "--out",
            str(tmp_path / "run"),
        ],
    )
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["predict", str(tmp_path / "run"), "--out", str(tmp_path / "sub.csv")])
    assert res.exit_code == 0, res.output
    n_test = len(pd.read_csv(folder / "test.csv"))
    wrote = len(pd.read_csv(tmp_path / "sub.csv"))
    assert wrote < n_test
    assert (
        f"predicted {wrote:,} of the {n_test:,} rows of rossmann's test rows (the run was trained with "
        f"--stores 1-3" in res.output
    )
    assert f"wrote {wrote:,} predictions of the {n_test:,} rows asked" in res.output


def test_coverage_counts_rows_of_entities_the_run_never_saw():
    from embedlab.cli.predict import coverage

    run = Run(
        {"dataset": "x", "kind": "tabular"},
        {"Store": EmbeddingTable("Store", np.array([1, 2]), ["1", "2"], np.zeros((2, 2)))},
    )
    frame = pd.DataFrame({"Store": [1, 2, 3, 3, 7]})
    got = coverage(run, frame, 5, 5, "file.csv")
    assert got["unseen"] == {"Store": 3} and got["warnings"] == [
        "3 of 5 rows have a Store the run never saw in training (e.g. 3, 7): their predictions use the "
        "unknown-Store embedding"
    ]
    assert coverage(run, frame.head(2), 2, 2, "file.csv")["warnings"] == []


def test_the_readme_python_api_names_exist():
    import ast
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python API", 1)[1].split("\n## ", 1)[0]
    block = section.split("```python", 1)[1].split("```", 1)[0]
    tree = ast.parse(block)  # it parses
    used = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "embedlab"
    }
    assert used >= {"load_dataset", "lr_find", "train", "load_run", "analyze", "compare", "learner"}
    assert all(hasattr(embedlab, name) for name in used)
    learn_methods = {
        n.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name) and n.value.id == "learn"
    }
    learn = embedlab.learner("synthetic-collab", users=20, items=15, ratings=200, n_factors=2, progress=False)
    assert learn_methods and all(hasattr(learn, m) for m in learn_methods)
    assert hasattr(Run, "neighbors")


def test_the_tabular_trainer_prepares_a_live_learner_too():
    ds = embedlab.load_dataset("synthetic-rossmann", n_stores=12, days=90)
    learn = embedlab.learner(ds, progress=False, layers="16", bs=64)
    assert learn.layer_groups == ["embeddings", "body", "head"]
    learn.fit_one_cycle(1, 1e-3)
    learn.freeze()
    before = learn.model.embeds[0].weight.detach().clone()
    learn.fit_one_cycle(1, 1e-3)
    assert learn.frozen_groups == ["embeddings", "body"] and torch_equal(before, learn.model.embeds[0].weight)
    run = learn.run
    assert "Store" in run.table_names and len(run.history) == 2 and "valid_rmspe" in run.metrics
    assert run.meta["trainer"] == "tabular" and run.meta["tabular"]["categorical"]


def test_prepare_is_a_recorded_trainer_ability():
    from embedlab.registry import TRAINER_ABILITIES, _trainer_entry, trainers

    assert "prepare" in TRAINER_ABILITIES
    assert all(t.can("prepare") for t in trainers().values() if t.name in ("collab", "tabular"))

    class Bare:  # a trainer of the earlier guide: train() only
        name, kind, options = "bare-test", "collab", []

        def train(self, dataset, config, progress=True):
            raise AssertionError("not called")

    entry = _trainer_entry(Bare(), "bare-plugin")
    assert not entry.can("prepare")
    with pytest.raises(
        UsageError,
        match=r"a live learner \(embedlab.learner\) needs a trainer that offers "
        r"prepare\(\); trainer 'bare-test'",
    ):
        entry.prepare(None, {})
