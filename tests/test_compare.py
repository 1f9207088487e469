"""``embedlab compare``: planning, fairness (same start, same split), the verdict and the report."""
from __future__ import annotations

import json
import math

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from embedlab import hookimpl
from embedlab.cli.compare import Outcome, compare, final_table, parse_list, plan, summarize
from embedlab.data import Dataset, DatasetSpec, random_split
from embedlab.errors import UsageError

TINY = ["--users", "60", "--items", "40", "--ratings", "2500", "--epochs", "2", "-q"]


def collab_trainer():
    from embedlab.registry import trainer_for

    return trainer_for("collab")


def outcome(label, losses, wall=1.0, opt="adam"):
    hist = [{"epoch": i + 1, "train_loss": v + 0.1, "valid_loss": v} for i, v in enumerate(losses)]
    return Outcome(label, {"opt": opt, "lr": 0.01, "wd": 0.1, "wd_mode": "l2"},
                   {"valid_loss": losses[-1], "valid_rows": 10, "train_seconds": wall}, hist, wall)


# ---------------------------------------------------------------------------- planning
def test_parse_list():
    assert parse_list("sgd, adam,sgd", "opt", str.lower, ("sgd", "adam")) == ["sgd", "adam"]
    assert parse_list(None, "lr", float) == [None] and parse_list(" ", "lr", float) == [None]
    assert parse_list("1e-3,5e-3", "lr", float) == [1e-3, 5e-3]
    with pytest.raises(UsageError, match="'x' is not a valid value"):
        parse_list("1e-3,x", "lr", float)
    with pytest.raises(UsageError, match="choose from"):
        parse_list("sgd,lion", "opt", str.lower, ("sgd", "adam"))
    with pytest.raises(UsageError, match="finite"):
        parse_list("nan", "wd", float)


def test_plan_resolves_every_config_before_training_and_skips_what_cannot_be():
    tr = collab_trainer()
    base = {"epochs": 1, "seed": 3, "momentum": 0.8, "betas": None, "eps": None}
    configs, notes = plan(base, tr, ["sgd", "momentum", "adamw"], [None], [None], ["l2", "decoupled"])
    labels = [label for label, _ in configs]
    assert labels[0].startswith("sgd lr=") and labels[0].endswith(" l2")
    assert len(configs) == 5  # adamw x l2 skipped
    assert any("skipped adamw with --wd-mode l2" in n for n in notes)
    assert any("--momentum applies to momentum only" in n for n in notes)
    by_label = dict(configs)
    assert all(c["seed"] == 3 and c["epochs"] == 1 for c in by_label.values())
    assert [c["momentum"] for c in by_label.values()] == [None, None, 0.8, 0.8, None]
    configs, _ = plan({"seed": 1}, tr, ["adam"], [1e-3, 1e-2], [None], ["auto"])
    assert [label for label, _ in configs] == ["adam lr=0.001", "adam lr=0.01"]
    with pytest.raises(UsageError, match="applies to none"):
        plan({"momentum": 0.9}, tr, ["sgd", "adam"], [None], [None], ["auto"])
    with pytest.raises(UsageError, match="every combination was skipped"):
        plan({}, tr, ["adamw"], [None], [None], ["l2"])


# ---------------------------------------------------------------------------- verdict
def test_summary_names_the_winner_the_runner_up_the_last_and_the_diverged():
    outs = [outcome("sgd lr=10", [1.2, 1.0], wall=0.5, opt="sgd"), outcome("adamw", [0.9, 0.8], wall=2.0),
            outcome("adam", [0.95, 0.88], wall=1.0), outcome("momentum lr=50", [float("nan")] * 2, wall=1.5)]
    text = summarize(outs, "valid_loss", "toy (split u1)")
    assert text.startswith("On toy (split u1), adamw won with valid_loss 0.8000 after 2 epochs (2.0 s).")
    assert "runner-up, adam, reached 0.8800 (10.0% worse" in text
    assert "sgd lr=10 came last among the finished runs at 1.0000 (25.0% worse)" in text
    assert "fastest run was sgd lr=10 (0.5 s)" in text
    assert "1 run diverged (non-finite valid_loss): momentum lr=50" in text
    overfit = summarize([outcome("a", [0.7, 0.9]), outcome("b", [1.0, 1.0])], "valid_loss", "toy")
    assert "lowest at epoch 1 and then rose" in overfit
    assert "every configuration ended with a non-finite" in summarize([outcome("x", [math.inf])], "valid_loss", "t")
    table = final_table(outs, "valid_loss")
    assert list(table["config"]) == ["adamw", "adam", "sgd lr=10", "momentum lr=50"]
    assert "valid_rows" not in table and table["best_epoch"].iloc[0] == 2
    assert table["wall_seconds"].tolist() == [2.0, 1.0, 0.5, 1.5]


# ---------------------------------------------------------------------------- fairness
def test_every_configuration_starts_from_the_same_weights_and_split():
    import embedlab

    ds = embedlab.load_dataset("synthetic-collab", users=60, items=40, ratings=2500)
    tr = collab_trainer()
    cfg = {"epochs": 1, "seed": 5, "opt": "adam"}
    import torch

    torch.manual_seed(123)  # disturb the global generator: compare must re-seed
    a, b = compare(ds, tr, [("a", dict(cfg)), ("b", dict(cfg))], echo=lambda _: None)
    assert a.history[0]["valid_loss"] == b.history[0]["valid_loss"]
    c, = compare(ds, tr, [("c", dict(cfg, seed=6))], echo=lambda _: None)
    assert c.history[0]["valid_loss"] != a.history[0]["valid_loss"]


# ---------------------------------------------------------------------------- the command
def test_compare_cli_writes_a_report_that_renders(tmp_path):
    from embedlab.cli import make_cli

    report = tmp_path / "reports" / "optimizers.html"
    res = CliRunner().invoke(make_cli(), ["compare", "synthetic-collab", *TINY, "--opt", "sgd,momentum,adam,adamw",
                                          "--report", str(report), "--runs-dir", str(tmp_path / "runs")])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    labels = [r["label"] for r in payload["results"]]
    assert [lab.split()[0] for lab in labels] == ["sgd", "momentum", "adam", "adamw"]
    assert all(r["config"]["seed"] == 42 and r["config"]["epochs"] == 2 for r in payload["results"])
    assert {r["config"]["opt"] for r in payload["results"]} == {"sgd", "momentum", "adam", "adamw"}
    assert all((tmp_path / "runs" / lab.replace(" ", "_") / "run.json").is_file() for lab in labels)
    assert payload["summary"].split(" won with ")[0].split(", ")[-1] in labels
    html = report.read_text()
    assert "Validation loss per epoch" in html and "final metrics (best first)" in html
    assert "Bokeh" in html and html.count('class="bk-root"') + html.count("data-root-id") >= 2
    for label in labels:
        assert label in html
    assert payload["summary"].split(".")[0].replace("&#x27;", "'") in html.replace("&#x27;", "'")
    assert not list(report.parent.glob(".*.tmp"))  # written atomically, nothing left behind

    from browser import check_report, open_report

    with open_report(report) as page:
        state = check_report(page, min_plots=2)
        assert state["plots"] >= 2
        text = page.text()
        assert "Optimizers compared" in text and "Setup" in text


def test_compare_cli_errors_are_one_line(tmp_path):
    from embedlab.cli import make_cli

    runner = CliRunner()
    res = runner.invoke(make_cli(), ["compare", "synthetic-collab", *TINY, "--opt", "sgd,lion"])
    assert res.exit_code == 2 and "lion" in res.output and "Traceback" not in res.output
    res = runner.invoke(make_cli(), ["compare", "synthetic-collab", *TINY, "--opt", "sgd", "--momentum", "0.9"])
    assert res.exit_code == 2 and "applies to none" in res.output
    res = runner.invoke(make_cli(), ["compare", "synthetic-collab", *TINY, "--opt", "adam", "--metric", "valid_auc"])
    assert res.exit_code == 2 and "valid_rmse" in res.output


def _tiny_load(n: int = 600, seed: int = 42, **_) -> Dataset:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"u": rng.integers(1, 21, n), "i": rng.integers(1, 16, n)})
    frame["r"] = np.clip((frame.u % 3) + (frame.i % 3) + 1 + rng.normal(0, 0.3, n), 1, 5).astype(np.float32)
    train, valid = random_split(frame, 0.2, seed)
    return Dataset("third-party-ratings", "collab", train, valid, roles={"user": "u", "item": "i", "rating": "r"},
                   split={"name": "random"}, rating_range=(1.0, 5.0))


class ThirdParty:
    @hookimpl
    def embedlab_register_datasets(self, register):
        register(DatasetSpec("third-party-ratings", "collab", "A dataset from another distribution", _tiny_load,
                             [click.Option(["--n"], type=int, default=600, help="Ratings.")]))


def test_compare_works_for_a_third_party_dataset():
    from embedlab.cli import make_cli
    from embedlab.plugins import get_plugin_manager, register_plugin

    name = register_plugin(ThirdParty(), name="tmp-third-party")
    try:
        res = CliRunner().invoke(make_cli(), ["compare", "third-party-ratings", "--n", "500", "--epochs", "3",
                                              "-q", "--opt", "rmsprop,adamw", "--lr", "1e-2,3e-2"])
        assert res.exit_code == 0, res.output
        payload = json.loads(res.stdout)
        assert [r["label"] for r in payload["results"]] == ["rmsprop lr=0.01", "rmsprop lr=0.03",
                                                           "adamw lr=0.01", "adamw lr=0.03"]
        assert payload["split"] == "random"
    finally:
        get_plugin_manager().unregister(name=name)
