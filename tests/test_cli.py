"""The command line through click's CliRunner: happy paths, every bad-input case, interruptions.

A bad input must end with exit code 2 (usage) or 1 (data), one ``Error:`` line naming the
file, column or value, no traceback, and nothing half-written on disk.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import embedlab
from embedlab.analysis import AnalysisResult
from embedlab.cli import make_cli
from embedlab.plugins import get_plugin_manager, register_plugin

TINY = ["--users", "60", "--items", "40", "--ratings", "1500", "--epochs", "2", "--bs", "128", "--n-factors", "8", "-q"]


def invoke(*args: str):
    return CliRunner().invoke(make_cli(), [str(a) for a in args])


def clean_error(result, code: int | tuple[int, ...] = (1, 2)) -> str:
    """Assert a clean failure (exit code, one Error: line, no traceback); return that line."""
    codes = (code,) if isinstance(code, int) else code
    assert result.exit_code in codes, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), f"uncaught {result.exception!r}"
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden temporary names the atomic writers use (.NAME.embedlab-PID-*.partial / .tmp); the
    manifest of the files embedlab wrote (.embedlab-files.json) is not one."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name != ".embedlab-files.json")


# ============================================================================ happy paths


def test_top_level_help_lists_the_commands():
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("train", "lr-find", "analyze", "datasets", "plugins"):
        assert command in result.output


def test_datasets_list_and_info():
    listing = invoke("datasets", "list", "--json")
    assert listing.exit_code == 0
    names = {d["name"]: d for d in json.loads(listing.stdout)}
    for name in (
        "movielens-100k",
        "movielens-latest-small",
        "movielens-1m",
        "movielens-25m",
        "movielens-32m",
        "ratings-csv",
        "synthetic-collab",
    ):
        assert names[name]["kind"] == "collab"
    table = invoke("datasets", "list")
    assert table.exit_code == 0 and "movielens-100k" in table.output
    info = invoke("datasets", "info", "movielens-100k")
    assert info.exit_code == 0
    assert "canonical splits: u1, u2, u3, u4, u5, ua, ub" in info.output and "--data-dir" in info.output
    assert "downloadable: no" in invoke("datasets", "info", "synthetic-collab").output


def test_train_dataset_help_shows_dataset_and_trainer_options():
    result = invoke("train", "movielens-100k", "--help")
    assert result.exit_code == 0
    for text in (
        "--data-dir",
        "[u1|u2|u3|u4|u5|ua|ub|random|time",
        "--valid-pct",
        "--epochs",
        "--n-factors",
        "--lr",
        "--seed",
        "--out",
    ):
        assert text in result.output, text
    csv_help = invoke("train", "ratings-csv", "--help").output
    for text in ("--file", "--user", "--item", "--rating", "--timestamp", "--items", "--item-key", "--item-label"):
        assert text in csv_help, text


def test_train_synthetic_collab_writes_a_complete_run(tmp_path):
    out = tmp_path / "runs" / "demo"
    result = invoke("train", "synthetic-collab", *TINY, "--seed", "3", "--out", out)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["run"] == str(out)
    assert {"valid_mse", "valid_rmse", "valid_mae", "train_seconds"} <= set(printed["metrics"])
    assert {"run.json", "weights.safetensors", "user.csv", "item.csv"} <= {p.name for p in out.iterdir()}
    run = embedlab.load_run(out)
    assert run.metrics["valid_rmse"] == pytest.approx(printed["metrics"]["valid_rmse"])
    assert run.split == {"name": "random", "valid_pct": 0.1, "seed": 3} and run.seed == 3
    assert len(run.history) == 2 and run.config["n_factors"] == 8
    assert leftovers(out.parent) == []


def test_train_replaces_an_existing_run(tmp_path, synthetic_run):
    out = tmp_path / "run"
    shutil.copytree(synthetic_run, out)
    result = invoke("train", "synthetic-collab", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert len(embedlab.load_run(out).table("item")) == 40
    assert leftovers(tmp_path) == []


def test_train_into_an_existing_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert invoke("train", "synthetic-collab", *TINY, "--out", tmp_path / "empty").exit_code == 0
    assert (tmp_path / "empty" / "run.json").is_file()


def test_train_ratings_csv_from_the_command_line(tmp_path):
    ratings, items = tmp_path / "r.tsv", tmp_path / "items.csv"
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "uid": rng.integers(1, 30, 400),
            "iid": rng.integers(1, 20, 400),
            "score": rng.integers(1, 6, 400),
            "ts": np.arange(400) * 1000,
        }
    ).to_csv(ratings, sep="\t", index=False)
    pd.DataFrame({"iid": range(1, 21), "title": [f"Film {i}" for i in range(1, 21)], "studio": ["A", "B"] * 10}).to_csv(
        items, index=False
    )
    out = tmp_path / "mine"
    result = invoke(
        "train",
        "ratings-csv",
        "--file",
        ratings,
        "--user",
        "uid",
        "--item",
        "iid",
        "--rating",
        "score",
        "--timestamp",
        "ts",
        "--split",
        "time",
        "--items",
        items,
        "--item-label",
        "title",
        "--epochs",
        "2",
        "--bs",
        "64",
        "-q",
        "--out",
        out,
    )
    assert result.exit_code == 0, result.output
    run = embedlab.load_run(out)
    assert run.split == {"name": "time", "valid_pct": 0.1, "column": "timestamp"}
    frame = run.table("item").frame.set_index("key")
    assert frame.loc[7, "label"] == "Film 7" and frame.loc[8, "studio"] == "B"


def test_lr_find_with_plot(tmp_path):
    plot = tmp_path / "plots" / "lr.html"
    result = invoke(
        "lr-find",
        "synthetic-collab",
        "--users",
        "60",
        "--items",
        "40",
        "--ratings",
        "3000",
        "--bs",
        "32",
        "-q",
        "--plot",
        plot,
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed["rule"] == "valley" and set(printed["suggestions"]) >= {"valley", "steep", "min10"}
    assert printed["suggested_lr"] == printed["suggestions"]["valley"]
    sugg = printed["suggestions"]
    assert 1e-7 <= sugg["valley"] <= 10 and 1e-7 <= sugg["steep"] <= 10  # inside the swept range
    assert 1e-8 <= sugg["min10"] <= 1  # the minimum's lr / 10
    html = plot.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "lr-find: synthetic-collab" in html
    assert "cdn.bokeh.org" not in html
    assert leftovers(plot.parent) == []


class _MeanBias:
    name = "cli-mean-bias"
    title = "Mean bias (CLI test)"
    options = []

    def applies_to(self, run):
        return [n for n in run.table_names if run.table(n).bias_values is not None]

    def run(self, run, table, options):
        bias = run.table(table).bias_values
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=f"{table} mean bias",
            metrics={"mean_bias": float(bias.mean()), "n": float(len(bias))},
        )


class _MeanBiasPlugin:
    @embedlab.hookimpl
    def embedlab_register_analyses(self, register):
        register(_MeanBias())


@pytest.fixture
def mean_bias_plugin():
    name = register_plugin(_MeanBiasPlugin(), name="cli-test-analysis")
    try:
        yield
    finally:
        get_plugin_manager().unregister(name=name)


def test_analyze_report_and_json(synthetic_run, tmp_path, mean_bias_plugin):
    report = tmp_path / "reports" / "r.html"
    result = invoke("analyze", synthetic_run, "--only", "cli-mean-bias", "--report", report, "--json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    run = embedlab.load_run(synthetic_run)
    assert payload["run"]["dataset"] == "synthetic-collab"
    assert payload["run"]["metrics"]["valid_rmse"] == pytest.approx(run.metrics["valid_rmse"])
    got = {r["table"]: r["metrics"] for r in payload["results"]}
    assert set(got) == {"user", "item"}
    for table, metrics in got.items():
        assert metrics["mean_bias"] == pytest.approx(float(run.table(table).bias_values.mean()), rel=1e-5)
        assert metrics["n"] == len(run.table(table))
    html = report.read_text(encoding="utf-8")
    assert "Mean bias (CLI test)" in html and "synthetic-collab" in html and "valid_rmse" in html
    assert "cdn.bokeh.org" not in html
    assert "wrote report" in result.stderr


def test_analyze_without_options_prints_a_terminal_summary(synthetic_run, mean_bias_plugin):
    result = invoke("analyze", synthetic_run, "--only", "cli-mean-bias")
    assert result.exit_code == 0, result.output
    assert "Mean bias (CLI test)" in result.stderr and result.stdout == ""


def test_plugins_command():
    result = invoke("plugins", "--all", "--json")
    assert result.exit_code == 0
    names = {p["name"] for p in json.loads(result.stdout)}
    assert {"movielens", "synthetic-collab", "collab-trainer"} <= names


# ============================================================================ bad input


def _ml100k_without(folder: Path, name: str) -> Path:
    (folder / name).unlink()
    return folder


def _rewrite(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_missing_data_folder(tmp_path):
    line = clean_error(
        invoke("train", "movielens-100k", "--data-dir", tmp_path / "nowhere", "--out", tmp_path / "o"), 1
    )
    assert "nowhere" in line and "does not exist" in line and "--data-dir" in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("missing", ["u.data", "u.item", "u1.base", "u1.test"])
def test_missing_file_in_data_folder(ml100k_dir, tmp_path, missing):
    _ml100k_without(ml100k_dir, missing)
    line = clean_error(invoke("train", "movielens-100k", "--data-dir", ml100k_dir, "--out", tmp_path / "o"), 1)
    assert f"{missing}' is missing" in line
    assert not (tmp_path / "o").exists()


def test_missing_ratings_file(tmp_path):
    line = clean_error(
        invoke(
            "train",
            "ratings-csv",
            "--file",
            tmp_path / "ratings.csv",
            "--user",
            "u",
            "--item",
            "i",
            "--rating",
            "r",
            "--out",
            tmp_path / "o",
        ),
        1,
    )
    assert "ratings.csv" in line and "not found" in line


def test_ratings_file_that_is_a_folder(tmp_path):
    line = clean_error(
        invoke(
            "train",
            "ratings-csv",
            "--file",
            tmp_path,
            "--user",
            "u",
            "--item",
            "i",
            "--rating",
            "r",
            "--out",
            tmp_path / "o",
        ),
        1,
    )
    assert "is a folder" in line


def test_wrong_columns_in_ratings_csv(tmp_path):
    f = _rewrite(tmp_path / "r.csv", "userId,movieId,stars\n1,2,3\n")
    line = clean_error(
        invoke(
            "train",
            "ratings-csv",
            "--file",
            f,
            "--user",
            "userId",
            "--item",
            "movieId",
            "--rating",
            "rating",
            "--out",
            tmp_path / "o",
        ),
        1,
    )
    assert "r.csv" in line and "column 'rating' not found" in line and "userId, movieId, stars" in line


def test_wrong_columns_in_official_layout(latest_small_dir, tmp_path):
    _rewrite(latest_small_dir / "ratings.csv", "user,movie,rating,timestamp\n1,1,4.0,5\n")
    line = clean_error(
        invoke("train", "movielens-latest-small", "--data-dir", latest_small_dir, "--out", tmp_path / "o"), 1
    )
    assert "ratings.csv" in line and "'userId' not found" in line and "user, movie, rating, timestamp" in line


def test_wrong_field_count_in_headerless_file(ml100k_dir, tmp_path):
    _rewrite(ml100k_dir / "u.data", "1\t2\t3\n4\t5\t1\n")
    line = clean_error(invoke("train", "movielens-100k", "--data-dir", ml100k_dir, "--out", tmp_path / "o"), 1)
    assert "u.data" in line and "4" in line and "user, item, rating, timestamp" in line


def test_short_line_in_headerless_file(ml100k_dir, tmp_path):
    with open(ml100k_dir / "u.data", "a") as fh:
        fh.write("1\t7\t3\n")
    line = clean_error(invoke("train", "movielens-100k", "--data-dir", ml100k_dir, "--out", tmp_path / "o"), 1)
    assert "u.data" in line and "line 21" in line


@pytest.mark.parametrize("layout,value", [("ml100k", "x"), ("latest", "good"), ("csv", "abc")])
def test_non_numeric_rating(ml100k_dir, latest_small_dir, tmp_path, layout, value):
    if layout == "ml100k":
        with open(ml100k_dir / "u.data", "a") as fh:
            fh.write(f"1\t7\t{value}\t881250949\n")
        args, fname = ["movielens-100k", "--data-dir", ml100k_dir], "u.data"
    elif layout == "latest":
        with open(latest_small_dir / "ratings.csv", "a") as fh:
            fh.write(f"1,2,{value},964982703\n")
        args, fname = ["movielens-latest-small", "--data-dir", latest_small_dir], "ratings.csv"
    else:
        f = _rewrite(tmp_path / "mine.csv", f"u,i,r\n1,2,3\n2,3,{value}\n")
        args, fname = ["ratings-csv", "--file", f, "--user", "u", "--item", "i", "--rating", "r"], "mine.csv"
    line = clean_error(invoke("train", *args, "--out", tmp_path / "o"), 1)
    assert fname in line and f"non-numeric rating '{value}'" in line
    assert ("'r'" if layout == "csv" else "'rating'") in line
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(
    "layout,value,shown",
    [
        ("ml100k", "7", "7 outside [1, 5]"),
        ("ml100k", "0", "0 outside [1, 5]"),
        ("latest", "5.5", "5.5 outside [0.5, 5.0]"),
        ("ml1m", "6", "6 outside [1, 5]"),
        ("csv", "inf", "non-finite rating inf"),
    ],
)
def test_out_of_range_rating(ml100k_dir, latest_small_dir, ml1m_dir, tmp_path, layout, value, shown):
    if layout == "ml100k":
        with open(ml100k_dir / "u.data", "a") as fh:
            fh.write(f"1\t7\t{value}\t881250949\n")
        args, fname = ["movielens-100k", "--data-dir", ml100k_dir, "--split", "random"], "u.data"
    elif layout == "latest":
        with open(latest_small_dir / "ratings.csv", "a") as fh:
            fh.write(f"1,2,{value},964982703\n")
        args, fname = ["movielens-latest-small", "--data-dir", latest_small_dir], "ratings.csv"
    elif layout == "ml1m":
        with open(ml1m_dir / "ratings.dat", "a") as fh:
            fh.write(f"1::2355::{value}::978300760\n")
        args, fname = ["movielens-1m", "--data-dir", ml1m_dir], "ratings.dat"
    else:
        f = _rewrite(tmp_path / "mine.csv", f"u,i,r\n1,2,3\n2,3,{value}\n")
        args, fname = ["ratings-csv", "--file", f, "--user", "u", "--item", "i", "--rating", "r"], "mine.csv"
    line = clean_error(invoke("train", *args, "--out", tmp_path / "o"), 1)
    assert fname in line and shown in line and "np." not in line
    assert not (tmp_path / "o").exists()


def test_out_of_range_rating_in_canonical_split_file(ml100k_dir, tmp_path):
    with open(ml100k_dir / "u1.test", "a") as fh:
        fh.write("1\t7\t9\t881250949\n")
    line = clean_error(invoke("train", "movielens-100k", "--data-dir", ml100k_dir, "--out", tmp_path / "o"), 1)
    assert "u1.test" in line and "9 outside [1, 5]" in line


def test_non_integer_ids(ml100k_dir, latest_small_dir, tmp_path):
    with open(ml100k_dir / "u.data", "a") as fh:
        fh.write("bob\t7\t3\t881250949\n")
    line = clean_error(invoke("train", "movielens-100k", "--data-dir", ml100k_dir, "--out", tmp_path / "o"), 1)
    assert "u.data" in line and "'user'" in line and "'bob'" in line
    _rewrite(latest_small_dir / "movies.csv", "movieId,title,genres\n1,A (1990),Drama\nx2,B (1991),Drama\n")
    line = clean_error(
        invoke("train", "movielens-latest-small", "--data-dir", latest_small_dir, "--out", tmp_path / "o"), 1
    )
    assert "movies.csv" in line and "'movieId'" in line and "'x2'" in line


@pytest.mark.parametrize("layout", ["ml100k", "latest-ratings", "latest-movies", "csv", "csv-header-only", "ml1m"])
def test_empty_file(ml100k_dir, latest_small_dir, ml1m_dir, tmp_path, layout):
    if layout == "ml100k":
        _rewrite(ml100k_dir / "u.data", "")
        args, fname = ["movielens-100k", "--data-dir", ml100k_dir], "u.data"
    elif layout == "latest-ratings":
        _rewrite(latest_small_dir / "ratings.csv", "")
        args, fname = ["movielens-latest-small", "--data-dir", latest_small_dir], "ratings.csv"
    elif layout == "latest-movies":
        _rewrite(latest_small_dir / "movies.csv", "")
        args, fname = ["movielens-latest-small", "--data-dir", latest_small_dir], "movies.csv"
    elif layout == "ml1m":
        _rewrite(ml1m_dir / "ratings.dat", "")
        args, fname = ["movielens-1m", "--data-dir", ml1m_dir], "ratings.dat"
    else:
        f = _rewrite(tmp_path / "mine.csv", "u,i,r\n" if layout == "csv-header-only" else "")
        args, fname = ["ratings-csv", "--file", f, "--user", "u", "--item", "i", "--rating", "r"], "mine.csv"
    line = clean_error(invoke("train", *args, "--out", tmp_path / "o"), 1)
    assert fname in line and ("empty" in line or "no rows" in line), line
    assert not (tmp_path / "o").exists()


def test_unknown_dataset_name(tmp_path):
    for command in ("train", "lr-find"):
        line = clean_error(invoke(command, "movielens-10k", "--out", tmp_path / "o"), 2)
        assert "'movielens-10k'" in line and "movielens-100k" in line
    line = clean_error(invoke("datasets", "info", "movielens-10k"), 2)
    assert "'movielens-10k'" in line and "synthetic-collab" in line


def test_unknown_split_name(ml100k_dir, tmp_path):
    result = invoke("train", "movielens-100k", "--data-dir", ml100k_dir, "--split", "u9", "--out", tmp_path / "o")
    line = clean_error(result, 2)
    assert "'u9'" in line and "u1" in line and "random" in line
    line = clean_error(invoke("train", "synthetic-collab", "--split", "u1", "--out", tmp_path / "o"), 2)
    assert "'u1'" in line
    assert not (tmp_path / "o").exists()


def test_time_split_without_timestamp_column(tmp_path):
    f = _rewrite(tmp_path / "mine.csv", "u,i,r\n1,2,3\n2,3,4\n")
    line = clean_error(
        invoke(
            "train",
            "ratings-csv",
            "--file",
            f,
            "--user",
            "u",
            "--item",
            "i",
            "--rating",
            "r",
            "--split",
            "time",
            "--out",
            tmp_path / "o",
        ),
        2,
    )
    assert "--timestamp" in line


def test_bad_option_value(tmp_path):
    line = clean_error(invoke("train", "synthetic-collab", "--valid-pct", "1.5", "--out", tmp_path / "o"), 2)
    assert "--valid-pct" in line and "1.5" in line


def test_out_pointing_at_an_existing_non_run_folder(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    line = clean_error(invoke("train", "synthetic-collab", *TINY, "--out", precious), 2)
    assert "precious" in line and "not an embedlab run" in line
    assert [p.name for p in precious.iterdir()] == ["thesis.txt"]
    assert (precious / "thesis.txt").read_text() == "years of work"
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    assert "is a file" in clean_error(invoke("train", "synthetic-collab", *TINY, "--out", a_file), 2)
    assert leftovers(tmp_path) == []


def test_output_paths_that_can_never_be_written_fail_before_any_work(tmp_path, synthetic_run, monkeypatch):
    from embedlab.trainers.collab import CollabTrainer

    def no_training(*a, **k):
        raise AssertionError("the path check must come before training")

    monkeypatch.setattr(CollabTrainer, "train", no_training)
    monkeypatch.setattr(CollabTrainer, "lr_find", no_training)
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    line = clean_error(invoke("train", "synthetic-collab", *TINY, "--out", blocker / "run"), 2)
    assert "notes.txt' is a file" in line
    line = clean_error(invoke("lr-find", "synthetic-collab", *TINY[:6], "--plot", tmp_path), 2)
    assert str(tmp_path) in line and "is a folder" in line
    line = clean_error(invoke("analyze", synthetic_run, "--report", blocker / "r.html"), 2)
    assert "notes.txt' is a file" in line
    line = clean_error(invoke("analyze", synthetic_run, "--report", tmp_path), 2)
    assert "is a folder" in line
    assert leftovers(tmp_path) == [] and blocker.read_text() == "x"


def test_analyze_bad_run_folders(tmp_path, synthetic_run):
    line = clean_error(invoke("analyze", tmp_path / "nowhere"), 1)
    assert "nowhere" in line and "not a folder" in line
    (tmp_path / "notrun").mkdir()
    line = clean_error(invoke("analyze", tmp_path / "notrun"), 1)
    assert "notrun" in line and "run.json is missing" in line
    line = clean_error(invoke("analyze", synthetic_run, "--only", "no-such-analysis"), 2)
    assert "'no-such-analysis'" in line


def test_real_process_prints_one_line_and_exit_code(tmp_path):
    """Outside CliRunner too: a real ``python -m embedlab`` shows no traceback for a user error."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "embedlab",
            "train",
            "movielens-100k",
            "--data-dir",
            str(tmp_path / "nowhere"),
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert [l for l in proc.stderr.splitlines() if l.startswith("Error:")] == [
        f"Error: movielens-100k: folder {str(tmp_path / 'nowhere')!r} does not exist (check --data-dir)"
    ]


# ============================================================================ interruptions


@pytest.fixture
def interrupt_training():
    """Raise KeyboardInterrupt on the 40th forward call of any module in training mode."""
    calls = {"n": 0}

    def hook(module, args, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] == 40:  # a few batches into the first epoch
                raise KeyboardInterrupt

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def test_interrupted_train_leaves_no_partial_folder(tmp_path, interrupt_training):
    out = tmp_path / "runs" / "new"
    result = invoke("train", "synthetic-collab", *TINY, "--out", out)
    assert interrupt_training["n"] >= 40
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert not out.exists()
    assert not (tmp_path / "runs").exists() or leftovers(tmp_path / "runs") == []


def test_interrupted_train_keeps_an_existing_run_intact(tmp_path, synthetic_run, interrupt_training):
    out = tmp_path / "run"
    shutil.copytree(synthetic_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = invoke("train", "synthetic-collab", *TINY, "--out", out)
    assert result.exit_code != 0 and interrupt_training["n"] >= 40
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert leftovers(tmp_path) == []


def test_interrupt_while_saving_keeps_the_old_run(tmp_path, synthetic_run, monkeypatch):
    import safetensors.torch

    out = tmp_path / "run"
    shutil.copytree(synthetic_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def interrupted_save(tensors, filename, *a, **k):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", interrupted_save)
    result = invoke("train", "synthetic-collab", *TINY, "--out", out)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # training was complete: its last checkpoint stays for --resume (tests/test_resume.py)
    assert leftovers(tmp_path) == [".run.checkpoint"] and "with --resume" in result.stderr


def test_existing_run_is_replaced_only_after_the_new_one_is_complete(tmp_path, synthetic_run, monkeypatch):
    import safetensors.torch

    out = tmp_path / "run"
    shutil.copytree(synthetic_run, out)
    old_meta = json.loads((out / "run.json").read_text())
    real_save = safetensors.torch.save_file
    seen = {}

    def checking_save(tensors, filename, *a, **k):
        # mid-save: the old run is still whole under its name; the new one is elsewhere
        assert Path(filename).parent != out
        seen["old_still_loads"] = embedlab.load_run(out).meta["config"] == old_meta["config"]
        return real_save(tensors, filename, *a, **k)

    monkeypatch.setattr(safetensors.torch, "save_file", checking_save)
    result = invoke("train", "synthetic-collab", *TINY, "--out", out)
    assert result.exit_code == 0, result.output
    assert seen == {"old_still_loads": True}
    new = embedlab.load_run(out)
    assert new.config["n_factors"] == 8 and len(new.table("item")) == 40
    assert leftovers(tmp_path) == []
