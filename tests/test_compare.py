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
from embedlab.engines.compare import Outcome, compare, final_table, parse_list, plan, summarize
from embedlab.data import Dataset, DatasetSpec, random_split
from embedlab.errors import UsageError

TINY = ["--users", "60", "--items", "40", "--ratings", "2500", "--epochs", "2", "-q"]


def collab_trainer():
    from embedlab.registry import trainer_for

    return trainer_for("collab")


def outcome(label, losses, wall=1.0, opt="adam"):
    hist = [{"epoch": i + 1, "train_loss": v + 0.1, "valid_loss": v} for i, v in enumerate(losses)]
    return Outcome(
        label,
        {"opt": opt, "lr": 0.01, "wd": 0.1, "wd_mode": "l2"},
        {"valid_loss": losses[-1], "valid_rows": 10, "train_seconds": wall},
        hist,
        wall,
    )


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
    assert [label for label, _ in configs] == ["lr=0.001", "lr=0.01"]  # labels name what varies
    with pytest.raises(UsageError, match="applies to none"):
        plan({"momentum": 0.9}, tr, ["sgd", "adam"], [None], [None], ["auto"])
    with pytest.raises(UsageError, match="every combination was skipped"):
        plan({}, tr, ["adamw"], [None], [None], ["l2"])


# ---------------------------------------------------------------------------- verdict
def test_summary_names_the_winner_the_runner_up_the_last_and_the_diverged():
    outs = [
        outcome("sgd lr=10", [1.2, 1.0], wall=0.5, opt="sgd"),
        outcome("adamw", [0.9, 0.8], wall=2.0),
        outcome("adam", [0.95, 0.88], wall=1.0),
        outcome("momentum lr=50", [float("nan")] * 2, wall=1.5),
    ]
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
    (c,) = compare(ds, tr, [("c", dict(cfg, seed=6))], echo=lambda _: None)
    assert c.history[0]["valid_loss"] != a.history[0]["valid_loss"]


# ---------------------------------------------------------------------------- the command
def test_compare_cli_writes_a_report_that_renders(tmp_path):
    from embedlab.cli import make_cli

    report = tmp_path / "reports" / "optimizers.html"
    res = CliRunner().invoke(
        make_cli(),
        [
            "compare",
            "synthetic-collab",
            *TINY,
            "--opt",
            "sgd,momentum,adam,adamw",
            "--report",
            str(report),
            "--runs-dir",
            str(tmp_path / "runs"),
        ],
    )
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
    return Dataset(
        "third-party-ratings",
        "collab",
        train,
        valid,
        roles={"user": "u", "item": "i", "rating": "r"},
        split={"name": "random"},
        rating_range=(1.0, 5.0),
    )


class ThirdParty:
    @hookimpl
    def embedlab_register_datasets(self, register):
        register(
            DatasetSpec(
                "third-party-ratings",
                "collab",
                "A dataset from another distribution",
                _tiny_load,
                [click.Option(["--n"], type=int, default=600, help="Ratings.")],
            )
        )


def test_compare_works_for_a_third_party_dataset():
    from embedlab.cli import make_cli
    from embedlab.plugins import get_plugin_manager, register_plugin

    name = register_plugin(ThirdParty(), name="tmp-third-party")
    try:
        res = CliRunner().invoke(
            make_cli(),
            [
                "compare",
                "third-party-ratings",
                "--n",
                "500",
                "--epochs",
                "3",
                "-q",
                "--opt",
                "rmsprop,adamw",
                "--lr",
                "1e-2,3e-2",
            ],
        )
        assert res.exit_code == 0, res.output
        payload = json.loads(res.stdout)
        assert [r["label"] for r in payload["results"]] == [
            "rmsprop lr=0.01",
            "rmsprop lr=0.03",
            "adamw lr=0.01",
            "adamw lr=0.03",
        ]
        assert payload["split"] == "random"
    finally:
        get_plugin_manager().unregister(name=name)


# ---------------------------------------------------------------------------- fairness (#16)
def test_weight_decay_and_its_mode_are_held_fixed_across_optimizers_unless_varied():
    from embedlab.engines.compare import title_for, varied_and_held
    from embedlab.training.fitconfig import fit_config

    tr = collab_trainer()
    configs, notes = plan({"seed": 1}, tr, ["sgd", "adam", "adamw"], [None], [None], [None])
    resolved = [fit_config(c, tr.options) for _, c in configs]
    assert {(r.wd, r.wd_mode) for r in resolved} == {(0.05, "decoupled")}  # adamw's default, for all
    assert len({r.lr for r in resolved}) == 3  # lrs are each optimizer's own
    assert any(
        "weight decay held fixed: wd 0.05 (decoupled) for every configuration, adamw's default" in n for n in notes
    )
    assert any("adam and adamw are the same optimizer" in n for n in notes)
    varied, held = varied_and_held(configs, tr)
    assert varied == ["opt", "lr"] and held["wd"] == 0.05 and held["wd_mode"] == "decoupled"
    assert title_for(varied, lr_given=False) == "Optimizers compared"
    # without adamw, the first optimizer listed is the reference; its own mode
    configs, notes = plan({}, tr, ["sgd", "momentum"], [None], [None], [None])
    assert {(fit_config(c, tr.options).wd, fit_config(c, tr.options).wd_mode) for _, c in configs} == {(5e-5, "l2")}
    # --wd-mode auto: the mode (and so the default wd) follows each optimizer, and says so
    configs, _ = plan({}, tr, ["sgd", "adamw"], [None], [None], ["auto"])
    varied, _ = varied_and_held(configs, tr)
    assert "wd" in varied and "wd_mode" in varied
    # a wd sweep under one optimizer is titled as one
    configs, _ = plan({}, tr, ["adamw"], [None], [0.0, 0.1], [None])
    varied, _ = varied_and_held(configs, tr)
    assert varied == ["wd"] and [label for label, _ in configs] == ["wd=0", "wd=0.1"]
    assert title_for(varied) == "Weight decays compared"


def _seeded(label, finals, curve_rise=0.0, wall=1.0):
    outs = []
    for seed, v in enumerate(finals, 1):
        hist = [
            {"epoch": 1, "valid_loss": v * (1 + curve_rise) + 0.2},
            {"epoch": 2, "valid_loss": v / (1 + curve_rise)},
            {"epoch": 3, "valid_loss": v},
        ]
        outs.append(Outcome(label, {"opt": "adam"}, {"valid_loss": v}, hist, wall, seed=seed))
    return outs


def test_seed_spread_decides_whether_a_difference_is_told_apart():
    close = _seeded("a", [0.80, 0.82, 0.78]) + _seeded("b", [0.81, 0.83, 0.79])
    text = summarize(close, "valid_loss", "toy", "optimizer", {"wd": 0.05, "wd_mode": "decoupled"})
    assert text.startswith("Varied: optimizer. On toy, a won with valid_loss 0.8000 ± 0.0200 over 3 seeds")
    assert "smaller than the seed spread" in text
    assert "Held fixed: wd 0.05 (decoupled)" in text
    apart = _seeded("a", [0.80, 0.801, 0.799]) + _seeded("b", [0.90, 0.901, 0.899])
    text = summarize(apart, "valid_loss", "toy")
    assert "larger than the seed spread" in text
    table = final_table(apart, "valid_loss")
    assert list(table["config"]) == ["a", "b"] and list(table["seeds"]) == [3, 3]
    assert table["valid_loss sd"].iloc[0] == pytest.approx(0.001)
    assert "seed spread is unknown" in summarize(
        [outcome("x", [0.9, 0.8]), outcome("y", [0.9, 0.85])], "valid_loss", "toy"
    )


def test_overfits_only_when_the_validation_loss_rises_clearly():
    slight = summarize([outcome("a", [0.9, 0.80, 0.804]), outcome("b", [1.0, 1.0, 1.0])], "valid_loss", "toy")
    assert "overfit" not in slight  # 0.5 % above its lowest: noise, not overfitting
    clear = summarize([outcome("a", [0.9, 0.80, 0.84]), outcome("b", [1.0, 1.0, 1.0])], "valid_loss", "toy")
    assert "lowest at epoch 2 and then rose by 5.0% (overfitting: a rise of more than 1%" in clear


def test_compare_varies_the_schedule_and_seeds_from_the_cli(tmp_path):
    from embedlab.cli import make_cli

    res = CliRunner().invoke(
        make_cli(), ["compare", "synthetic-collab", *TINY, "--schedule", "one-cycle,constant", "--seeds", "1,2"]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["title"] == "Schedules compared" and payload["varied"] == ["schedule"]
    assert [(r["label"], r["seed"]) for r in payload["results"]] == [
        ("one-cycle", 1),
        ("one-cycle", 2),
        ("constant", 1),
        ("constant", 2),
    ]
    assert {r["config"]["schedule"] for r in payload["results"]} == {"one-cycle", "constant"}
    assert {(r["config"]["opt"], r["config"]["wd"]) for r in payload["results"]} == {("adamw", 0.05)}
    assert payload["held"]["opt"] == "adamw" and payload["seeds"] == [1, 2]
    assert "over 2 seeds" in payload["summary"] and "Held fixed: opt adamw" in payload["summary"]
    res = CliRunner().invoke(
        make_cli(), ["compare", "synthetic-collab", *TINY, "--opt", "adamw", "--n-factors", "4,8", "--bs", "64"]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [r["config"]["n_factors"] for r in payload["results"]] == [4, 8]
    assert {r["config"]["bs"] for r in payload["results"]} == {64}
    assert payload["title"] == "Embedding sizes compared"


def test_compare_runs_compares_existing_runs_and_says_what_differs(tmp_path):
    import embedlab
    from embedlab.cli import make_cli

    small = dict(users=60, items=40, ratings=2500, epochs=2)
    for name, wd in (("a", 0.0), ("b", 0.1)):
        embedlab.train("synthetic-collab", out=tmp_path / name, wd=wd, seed=3, **small)
    report = tmp_path / "runs.html"
    res = CliRunner().invoke(
        make_cli(), ["compare", "--runs", str(tmp_path / "a"), str(tmp_path / "b"), "--report", str(report)]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["varied"] == ["wd"]
    assert payload["summary"].startswith("Varied: wd.") and "same split" in payload["summary"]
    assert {r["table"] for r in payload["stability"]} == {"user", "item"}
    html = report.read_text()
    assert "Runs compared" in html and "least stable entities" in html and "Validation loss per epoch" in html
    res = CliRunner().invoke(make_cli(), ["compare", "--runs", str(tmp_path / "a")])
    assert res.exit_code != 0 and "at least two runs" in res.output
    # the Python API calls the same engine: the same verdict and ranking, the same report rule
    mine = tmp_path / "mine.html"
    mine.write_text("<html>a user's file</html>")
    with pytest.raises(UsageError, match="--force"):
        embedlab.compare(runs=[tmp_path / "a", tmp_path / "b"], report=mine, progress=False)
    api = embedlab.compare(runs=[tmp_path / "a", tmp_path / "b"], report=tmp_path / "api.html", progress=False)
    assert api.summary == payload["summary"] and sorted(api.table["config"]) == ["wd=0.0", "wd=0.1"]
    assert "Runs compared" in (tmp_path / "api.html").read_text()
    # and embedlab.analyze takes several runs as `embedlab analyze A B` does
    several = embedlab.analyze([tmp_path / "a", tmp_path / "b"], names="bias-ranking", progress=False)
    assert several.labels == ["a", "b"] and [len(rs) for rs in several.per_run] == [2, 2]
    assert {s.table for s in several.tables} == {"user", "item"}


def test_compare_shows_each_runs_epochs_as_they_happen(monkeypatch):
    """``compare DATASET``: a bar per run that moves with its epochs (train --seeds' way), each
    epoch's row under it, and a status line before every wait (loading, the optimizers' warm-up)."""
    from embedlab.cli import make_cli
    from embedlab.io import progress

    events = []

    class Recorder(progress._Null):
        def add_task(self, description, total=None, info="", completed=0):
            events.append(("task", description, total))
            return description

        def update(self, task=0, advance=0, info=None, completed=None, total=None):
            events.append(("update", task, completed))

        def print(self, line):
            events.append(("line", line if line.startswith(" ") else line.split("  ")[0]))

    monkeypatch.setattr(progress, "progress_bar", lambda enabled=True: Recorder() if enabled else progress._Null())
    args = ["compare", "synthetic-collab", *[a for a in TINY if a != "-q"], "--opt", "sgd,adam", "--seeds", "1,2"]
    res = CliRunner().invoke(make_cli(), args)
    assert res.exit_code == 0, res.output
    runs = ["sgd lr=10 seed 1", "sgd lr=10 seed 2", "adam lr=0.01 seed 1", "adam lr=0.01 seed 2"]
    assert [e[1] for e in events if e[0] == "task"] == runs and {e[2] for e in events if e[0] == "task"} == {2}
    for run in runs:
        assert [e[2] for e in events if e[0] == "update" and e[1] == run] == [0, 1, 2]
    lines = [e[1] for e in events if e[0] == "line"]
    assert lines[0] == "loading synthetic-collab ..." and lines[-1].startswith("    valid_loss")
    assert lines.index("[1/4] sgd lr=10 seed 1") > next(
        i for i, x in enumerate(lines) if x.startswith("preparing torch")
    )
    assert lines.count("epoch 1") == 4 and lines.count("epoch 2") == 4  # each run's rows under its bar
    first = events.index(("task", runs[0], 2))
    assert events[first + 1 : first + 4] == [("update", runs[0], 0), ("update", runs[0], 1), ("line", "epoch 1")]
    events.clear()
    res = CliRunner().invoke(make_cli(), [*args, "-q"])  # -q: no bar, the step lines stay on stderr
    assert res.exit_code == 0 and not events and "[4/4] adam lr=0.01 seed 2" in res.stderr


def test_the_fastai_benchmark_skips_cleanly_without_fastai(tmp_path):
    import importlib.util
    import subprocess
    import sys
    from pathlib import Path

    if importlib.util.find_spec("fastai") is not None:
        pytest.skip("fastai is installed: the benchmark would train")
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "fastai_collab.py"
    res = subprocess.run(
        [sys.executable, str(script), "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert "fastai is not installed: skipping" in res.stdout and "Traceback" not in res.stderr


def test_compare_runs_of_a_run_group_reports_the_seed_spread(tmp_path):
    from embedlab.engines.compare_results import compare_runs
    from embedlab.engines.runs import train_replicates

    train_replicates(
        "synthetic-collab", dict(users=60, items=40, ratings=2500, epochs=2), [1, 2, 3], tmp_path / "g", workers=1
    )
    outcomes, results, payload = compare_runs([tmp_path / "g"], render=False)
    vals = [o.value("valid_loss") for o in outcomes]
    assert payload["varied"] == [] and [o.seed for o in outcomes] == [1, 2, 3]
    assert payload["summary"].startswith("Varied: nothing but the seed.")
    assert f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}" in payload["summary"]
