"""The first hour's seams (#29): one data-folder rule for every command with ``--data-dir``,
and one CLI grammar over every command (walked from the click tree)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from embedlab.cli import make_cli
from embedlab.data import locate_data_dir

FAST = ["--epochs", "1", "--n-factors", "4", "--bs", "8", "--schedule", "constant", "-q"]


def invoke(*args, env=None):
    return CliRunner().invoke(make_cli(), [str(a) for a in args], env=env)


# ---------------------------------------------------------------- the data folder rule


def test_locate_data_dir_accepts_either_level_and_the_environment(tmp_path):
    data = tmp_path / "ml-100k"
    data.mkdir()
    for name in ("u.data", "u.item"):
        (data / name).write_text("x")
    files = ("u.data", "u.item")
    assert locate_data_dir(data, "ml-100k", files, env={}) == data  # the folder itself
    assert locate_data_dir(tmp_path, "ml-100k", files, env={}) == data  # the folder holding it
    assert locate_data_dir(None, "ml-100k", files, env={}) is None  # neither: the loader's default
    env = {"EMBEDLAB_DATA_DIR": str(tmp_path)}
    assert locate_data_dir(None, "ml-100k", files, env=env) == data.resolve()
    assert locate_data_dir(None, "ml-100k", files, env={"EMBEDLAB_DATA_DIR": str(data)}) == data.resolve()
    # an EMBEDLAB_DATA_DIR without this data set is not used (the loader downloads, or asks)
    assert locate_data_dir(None, "rossmann", ("train.csv",), env=env) is None
    # a given folder wins over the environment, even a missing one (its error names it)
    assert locate_data_dir(tmp_path / "nowhere", "ml-100k", files, env=env) == tmp_path / "nowhere"


def test_train_reads_embedlab_data_dir_and_the_parent_folder(ml100k_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_DATA_DIR", str(ml100k_dir.parent))
    result = invoke("train", "movielens-100k", "--out", tmp_path / "env", *FAST)
    assert result.exit_code == 0, result.output + result.stderr
    recorded = json.loads((tmp_path / "env" / "run.json").read_text())["dataset_info"]["options"]["data_dir"]
    assert Path(recorded) == ml100k_dir.resolve()  # the run records the folder it read
    monkeypatch.delenv("EMBEDLAB_DATA_DIR")
    result = invoke("train", "movielens-100k", "--data-dir", ml100k_dir.parent, "--out", tmp_path / "up", *FAST)
    assert result.exit_code == 0, result.output + result.stderr
    # predict, lr-find, compare take the same rule (one place: DatasetEntry.load_dataset)
    monkeypatch.setenv("EMBEDLAB_DATA_DIR", str(ml100k_dir.parent))
    result = invoke("lr-find", "movielens-100k", "--n-factors", "4", "--bs", "4", "-q")
    assert result.exit_code == 0, result.output + result.stderr
    result = invoke("predict", tmp_path / "up", "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output + result.stderr


# ---------------------------------------------------------------- one grammar, every command

#: options that write a file or folder: a command with one of them has --force
WRITES = {"--out", "--report", "--plot", "--runs-dir"}
#: commands whose stdout is data (a table, a run, a ranking): they have --json
DATA = {"train", "lr-find", "compare", "analyze", "neighbors", "datasets list", "datasets info", "plugins", "predict"}
#: the datasets each dataset command is walked for (a built-in collab and tabular one)
WALKED_DATASETS = ("synthetic-collab", "synthetic-rossmann")


def _commands():
    """Every command of the CLI as (path, click.Command), dataset groups for WALKED_DATASETS."""
    import click

    cli = make_cli()
    out = []

    def walk(cmd, path, ctx):
        if isinstance(cmd, click.Group):
            names = cmd.list_commands(ctx)
            if path and path[-1] in ("train", "lr-find", "compare"):
                out.append((" ".join(path), cmd))  # the group's own options (compare --runs)
                names = [n for n in names if n in WALKED_DATASETS]
            for name in names:
                sub = cmd.get_command(ctx, name)
                walk(sub, path + [name], click.Context(sub, parent=ctx, info_name=name))
        else:
            out.append((" ".join(path), cmd))

    walk(cli, [], click.Context(cli, info_name="embedlab"))
    return out


def _opts(cmd) -> dict[str, object]:
    import click

    return {o: p for p in cmd.params if isinstance(p, click.Option) and not p.hidden for o in p.opts}


def test_every_command_speaks_one_grammar():
    commands = _commands()
    assert len(commands) > 12
    problems = []
    for path, cmd in commands:
        opts = _opts(cmd)
        family = path.split(" ")[0] if path.split(" ")[0] in ("train", "lr-find", "compare") else path
        if WRITES & set(opts) and "--force" not in opts:
            problems.append(f"{path}: writes ({', '.join(sorted(WRITES & set(opts)))}) without --force")
        if "--force" in opts and "embedlab did not write" not in (opts["--force"].help or ""):
            problems.append(f"{path}: --force does not say it replaces what embedlab did not write")
        if family in DATA and path not in ("train", "lr-find") and "--json" not in opts:
            problems.append(f"{path}: prints data without --json")
        if "--report" in opts and "-r" not in opts:
            problems.append(f"{path}: --report without -r")
        if ("-k" in opts) != ("--k" in opts):
            problems.append(f"{path}: only one of -k / --k")
        if "--seed" in opts and not isinstance(opts["--seed"].type, type(click_int())):
            problems.append(f"{path}: --seed is not an integer")
        if "--metric" in opts and "valid" not in str(opts["--metric"].default or ""):
            problems.append(f"{path}: --metric is not a validation metric ({opts['--metric'].default!r})")
        if "--quiet" in opts and "-q" not in opts:
            problems.append(f"{path}: --quiet without -q")
        for name in opts:
            if "colour" in name or "neighbour" in name:
                problems.append(f"{path}: {name} is not the US spelling")
    assert not problems, "\n".join(problems)


def test_global_options_after_every_command():
    """``-q``/``--quiet`` and ``--debug`` are accepted after every subcommand, however deep (#29:
    ``-q`` after a command that does not declare it said "No such option")."""
    problems = []
    for path, _cmd in _commands():
        for flags in (("-q", "--debug"), ("--quiet",)):
            result = invoke(*path.split(" "), *flags, "--help")
            if result.exit_code != 0:
                problems.append(f"{path} {' '.join(flags)}: {(result.stderr or result.output).strip()[-200:]}")
    assert not problems, "\n".join(problems)


def test_global_options_after_a_subcommand_take_effect():
    from embedlab.errors import debug_enabled, set_debug
    from embedlab.io.progress import quiet, set_quiet

    try:
        result = invoke("datasets", "info", "synthetic-collab", "-q", "--debug", "--json")
        assert result.exit_code == 0, result.output
        assert quiet() and debug_enabled()
        assert json.loads(result.stdout)["name"] == "synthetic-collab"
        invoke("datasets", "list", "--json")
        assert not quiet() and not debug_enabled()  # not given: off again
        args = ["analyze", "--only", "x", "-q", "--", "-q"]  # analyze's own -q stays; nothing after -- moves
        from embedlab.cli.toplevel import global_options_first

        cli = make_cli()
        import click

        ctx = click.Context(cli, info_name="embedlab")
        assert global_options_first(cli, ctx, args) == args
        assert global_options_first(cli, ctx, ["datasets", "list", "--debug", "-q"]) == [
            "--debug",
            "-q",
            "datasets",
            "list",
        ]
    finally:
        set_quiet(False)
        set_debug(False)


def test_datasets_info_json_has_the_fields_of_the_text():
    text = invoke("datasets", "info", "synthetic-collab").stdout
    info = json.loads(invoke("datasets", "info", "synthetic-collab", "--json").stdout)
    assert set(info) == {"name", "kind", "description", "source", "splits", "downloadable", "options"}
    assert text.splitlines()[0] == f"{info['name']} ({info['kind']})"
    assert info["description"] in text and f"downloadable: {'yes' if info['downloadable'] else 'no'}" in text
    assert info["options"] and all(", ".join(o["flags"]) in text for o in info["options"])
    ml = json.loads(invoke("datasets", "info", "movielens-100k", "--json").stdout)
    assert ml["downloadable"] is True and "u1" in ml["splits"] and ml["source"].startswith("http")
    assert f"canonical splits: {', '.join(ml['splits'])}" in invoke("datasets", "info", "movielens-100k").stdout


def click_int():
    import click

    return click.INT


def test_dataset_commands_list_datasets_not_commands():
    for group in ("train", "lr-find", "compare"):
        result = invoke(group, "--help")
        assert result.exit_code == 0
        assert "Datasets:" in result.output and "Commands:" not in result.output, group
        assert "synthetic-collab" in result.output


def test_train_dataset_help_is_grouped_with_examples():
    result = invoke("train", "synthetic-collab", "--help")
    assert result.exit_code == 0, result.output
    text = result.output
    for heading in ("Data:", "Model:", "Optimisation:", "Output:", "Examples:"):
        assert heading in text, heading
    assert text.index("--split") < text.index("Model:") < text.index("--n-factors") < text.index("Optimisation:")
    assert "embedlab train synthetic-collab --out" in text


def test_compare_runs_report_refuses_a_users_file_and_force_replaces_it(tmp_path):
    runs = []
    for seed in (1, 2):
        result = invoke(
            "train",
            "synthetic-collab",
            "--users",
            "40",
            "--items",
            "30",
            "--ratings",
            "800",
            "--seed",
            seed,
            "--out",
            tmp_path / f"r{seed}",
            *FAST,
        )
        assert result.exit_code == 0, result.output + result.stderr
        runs.append(tmp_path / f"r{seed}")
    mine = tmp_path / "mine.html"
    mine.write_text("<p>my notes</p>")
    result = invoke("compare", "--runs", *runs, "--report", mine)
    assert result.exit_code != 0 and "--force" in result.stderr
    assert mine.read_text() == "<p>my notes</p>"
    result = invoke("compare", "--runs", *runs, "-r", mine, "--force", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    assert "embedlab" in mine.read_text()
    payload = json.loads(result.stdout)
    assert payload["varied"] == [] and "nothing but the seed" in payload["summary"]  # replicates: pooled
    # another split (and so other rows): listed as differences, never pooled as a seed spread
    result = invoke(
        "train",
        "synthetic-collab",
        "--users",
        "40",
        "--items",
        "30",
        "--ratings",
        "800",
        "--seed",
        3,
        "--valid-pct",
        "0.2",
        "--out",
        tmp_path / "r3",
        *FAST,
    )
    assert result.exit_code == 0, result.output + result.stderr
    result = invoke("compare", "--runs", runs[0], tmp_path / "r3", "--json")
    assert result.exit_code == 0, result.output + result.stderr
    payload = json.loads(result.stdout)
    assert {"split", "rows"} <= set(payload["varied"]) and "nothing but the seed" not in payload["summary"]
    assert "720/80" in payload["summary"] and "640/160" in payload["summary"]


def test_old_spellings_still_work_with_one_warning(tmp_path):
    import importlib
    import warnings

    from embedlab.deprecations import EmbedlabDeprecationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        old = importlib.import_module("embedlab.toolkit.neighbours")
    from embedlab.toolkit import neighbors

    assert old is neighbors
    assert any(
        issubclass(w.category, EmbedlabDeprecationWarning) and "toolkit.neighbors" in str(w.message) for w in caught
    )


# ---------------------------------------------------------------- Python: the report, predict's keys


def test_embedlab_report_writes_the_html_report_under_the_write_rule(tmp_path):
    import embedlab
    from embedlab.errors import UsageError

    run = embedlab.train(
        "synthetic-collab",
        users=40,
        items=30,
        ratings=800,
        epochs=1,
        n_factors=4,
        bs=8,
        schedule="constant",
        progress=False,
    )
    results = embedlab.analyze(run, ["bias-ranking"], progress=False)
    path = embedlab.report(results, tmp_path / "r.html")
    text = path.read_text()
    assert path == tmp_path / "r.html" and "<html" in text.lower() and "bias" in text.lower()
    assert "Explore" in text  # the run's explorer: embedlab.analyze recorded the run on its results
    embedlab.report(results, path)  # a report embedlab wrote may be replaced
    mine = tmp_path / "mine.html"
    mine.write_text("<p>mine</p>")
    with pytest.raises(UsageError, match="force"):
        embedlab.report(results, mine)
    assert mine.read_text() == "<p>mine</p>"
    embedlab.report(list(results), mine, run=run, force=True)
    assert "bias" in mine.read_text().lower()


def test_predict_on_a_table_run_without_an_id_writes_its_key_columns(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    frame = pd.DataFrame(
        {
            "store": rng.integers(1, 9, n),
            "date": pd.date_range("2020-01-01", periods=n).strftime("%Y-%m-%d"),
            "promo": rng.integers(0, 2, n),
        }
    )
    frame["sales"] = 10 + frame["store"] + 3 * frame["promo"] + rng.normal(0, 1, n)
    frame.to_csv(tmp_path / "train.csv", index=False)
    frame.drop(columns="sales").head(20).to_csv(tmp_path / "new.csv", index=False)
    result = invoke(
        "train",
        "table-csv",
        "--file",
        tmp_path / "train.csv",
        "--target",
        "sales",
        "--cat",
        "store,promo",
        "--date",
        "date",
        "--epochs",
        "1",
        "--bs",
        "32",
        "-q",
        "--out",
        tmp_path / "run",
    )
    assert result.exit_code == 0, result.output
    result = invoke("predict", tmp_path / "run", "--file", tmp_path / "new.csv", "--out", tmp_path / "p.csv", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["columns"] == ["date", "store", "promo", "sales"]
    preds = pd.read_csv(tmp_path / "p.csv")
    assert list(preds.columns) == ["date", "store", "promo", "sales"] and len(preds) == 20
    assert preds["store"].tolist() == frame["store"].head(20).tolist()


# ---------------------------------------------------------------- no silent waits


def test_slow_commands_say_something_at_once_when_a_person_watches():
    from embedlab.cli import startup_status

    line = startup_status(["train", "movielens-100k", "--out", "r"], watched=True)
    assert line and line.startswith("embedlab train: starting")
    assert startup_status(["--debug", "neighbors", "r", "star wars"], watched=True).startswith("embedlab neighbors")
    assert startup_status(["train", "movielens-100k"], watched=False) is None  # a script: nothing extra
    assert startup_status(["train", "movielens-100k", "-q"], watched=True) is None
    assert startup_status(["train", "--help"], watched=True) is None
    assert startup_status(["datasets", "list"], watched=True) is None  # fast commands answer at once


def test_status_lines_follow_the_progress_rule(capsys):
    from embedlab.io import progress

    progress.status("writing x ...", enabled=True)
    progress.status("never shown", enabled=False)
    progress.set_quiet(True)
    try:
        progress.status("quiet", enabled=True)
    finally:
        progress.set_quiet(False)
    assert capsys.readouterr().err == "writing x ...\n"


@pytest.mark.parametrize("workers", [1, 2])
def test_a_run_group_reports_each_members_epochs_as_they_happen(tmp_path, workers):
    from embedlab.engines.runs import train_replicates

    seen = []
    values = {"users": 30, "items": 20, "ratings": 400, "epochs": 2, "n_factors": 4, "bs": 8, "schedule": "constant"}
    done = train_replicates(
        "synthetic-collab",
        values,
        [1, 2],
        tmp_path / "g",
        workers=workers,
        on_epoch=lambda seed, epoch, total: seen.append((seed, epoch, total)),
    )
    assert len(done) == 2
    assert sorted(seen) == [(1, 1, 2), (1, 2, 2), (2, 1, 2), (2, 2, 2)]  # every member's every epoch


def test_neighbors_old_metric_option_still_works_with_one_warning(tmp_path):
    import embedlab

    run = embedlab.train(
        "synthetic-collab",
        out=tmp_path / "run",
        users=40,
        items=30,
        ratings=800,
        epochs=1,
        n_factors=4,
        bs=8,
        schedule="constant",
        progress=False,
    )
    key = str(run.tables["item"].keys[0])
    new = invoke("neighbors", tmp_path / "run", key, "--distance", "euclidean", "--k", "3", "--json")
    old = invoke("neighbors", tmp_path / "run", key, "--metric", "euclidean", "-k", "3", "--json")
    assert new.exit_code == 0 and old.exit_code == 0, old.output + old.stderr
    assert json.loads(old.stdout) == json.loads(new.stdout)
    assert "Warning:" in old.stderr and "--distance" in old.stderr and "Warning:" not in new.stderr


def test_analyzing_several_runs_shows_each_runs_bar_and_the_alignment_step(tmp_path, capsys):
    import embedlab
    from embedlab.engines.stability import analyze_runs

    for seed in (1, 2):
        embedlab.train(
            "synthetic-collab",
            out=tmp_path / f"r{seed}",
            users=40,
            items=30,
            ratings=800,
            epochs=1,
            n_factors=4,
            bs=8,
            schedule="constant",
            seed=seed,
            progress=False,
        )
    capsys.readouterr()
    analyze_runs([tmp_path / "r1", tmp_path / "r2"], ["bias-ranking"], render=False, progress=True)
    err = capsys.readouterr().err
    assert "aligning the runs' tables" in err and "bias-ranking" in err  # the step and each run's bar
    analyze_runs([tmp_path / "r1", tmp_path / "r2"], ["bias-ranking"], render=False, progress=False)
    assert capsys.readouterr().err == ""
