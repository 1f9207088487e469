"""Issue #17: what a plugin author gets from `pip install embedlab` alone.

The shipped guide (`embedlab plugins guide`), bool switches, datasets by role, broken plugins
listed, "skipped table T: reason", file and line under EMBEDLAB_DEBUG, the reusable split
options, "planted found, shuffled not" helpers on a synthetic run strong enough for KMeans, and
(slow) the worked third-party plugins of tests/third_party/ built as wheels and installed with
embedlab's wheel into a temporary venv.
"""

from __future__ import annotations

import json
import pydoc
import subprocess
import sys
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult, SkipTable
from embedlab.data import Dataset, check_entity_tables, entity_table_of, split_collab, split_options
from embedlab.errors import DataError, UsageError
from embedlab.testing import (
    PLANTED,
    assert_planted_found,
    invoke,
    plugin_registered,
    planted_vs_shuffled,
    synthetic_run,
    synthetic_run_dir,
)

ROOT = Path(__file__).resolve().parents[1]
THIRD_PARTY = ROOT / "tests" / "third_party"


class Plugin:
    def __init__(self, *analyses):
        self.analyses = analyses

    @embedlab.hookimpl
    def embedlab_register_analyses(self, register):
        for a in self.analyses:
            register(a)


class Probe(Analysis):
    """Records the options it receives; raises or skips on request."""

    title = "Probe"

    def __init__(self, name, options=(), skip=None, fail=None):
        self.name, self.options, self.skip, self.fail, self.calls = name, list(options), skip, fail, []

    def applies_to(self, run, options):
        return ["user", "item"]

    def run(self, run, table, options):
        self.calls.append((table, dict(options)))
        if self.fail:
            return {}["missing_key"]  # a plugin bug: KeyError
        if self.skip and table in self.skip:
            raise SkipTable(self.skip[table])
        return AnalysisResult(self.name, table, self.title, summary=f"ran on {table}", metrics={"m": 1.0})


# ---------------------------------------------------------------------------- the shipped guide
def test_the_guide_ships_and_plugins_guide_prints_it():
    from embedlab.authoring.guide import guide_path, guide_text

    assert guide_path() == ROOT / "embedlab" / "authoring" / "guide.md"
    whole = invoke(["plugins", "guide"])
    assert whole.exit_code == 0 and whole.stdout.strip() == guide_text().strip()
    assert whole.stdout.startswith("# Writing embedlab plugins")
    one = invoke(["plugins", "guide", "testing your plugin"])
    assert one.exit_code == 0 and one.stdout.startswith("## Testing your plugin")
    assert "assert_planted_found" in one.stdout and "## Publishing" not in one.stdout
    toolkit = invoke(["plugins", "guide", "toolkit"]).stdout
    assert "### `embedlab.toolkit.plotting`" in toolkit  # a section comes with its subsections
    assert invoke(["plugins", "guide", "--path"]).stdout.strip() == str(guide_path())
    missing = invoke(["plugins", "guide", "no-such-topic"])
    assert missing.exit_code == 2 and "Testing your plugin" in missing.output  # lists the sections
    assert "guide" in invoke(["plugins", "--help"]).output


def test_docs_plugins_md_points_to_the_shipped_guide():
    pointer = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    assert "embedlab/authoring/guide.md" in pointer and "embedlab plugins guide" in pointer
    assert len(pointer.splitlines()) < 30  # a pointer, not a second copy that drifts


def test_scaffold_points_to_the_shipped_guide(tmp_path):
    done = invoke(["plugins", "new", "guided", "--dir", tmp_path])
    assert "embedlab plugins guide" in done.stderr and "docs/plugins.md" not in done.stderr
    for path in (tmp_path / "embedlab-guided").rglob("*"):
        if path.is_file():
            assert "docs/plugins.md" not in path.read_text(encoding="utf-8"), path
    readme = (tmp_path / "embedlab-guided" / "README.md").read_text(encoding="utf-8")
    assert "embedlab plugins guide" in readme


@pytest.mark.parametrize(
    "module",
    [
        "embedlab.toolkit.plotting",
        "embedlab.toolkit.stats",
        "embedlab.toolkit.selection",
        "embedlab.toolkit.projection",
        "embedlab.toolkit.options",
        "embedlab.toolkit.retrain",
        "embedlab.data",
        "embedlab.testing",
        "embedlab.analysis",
        "embedlab.toolkit",
        "embedlab.authoring.guide",
    ],
)
def test_help_on_a_public_module_names_the_guide_and_documents_each_public_name(module):
    import importlib

    mod = importlib.import_module(module)
    text = pydoc.render_doc(mod, renderer=pydoc.plaintext)
    assert "embedlab plugins guide" in text, module
    for name in getattr(mod, "__all__", []):
        obj = getattr(mod, name)
        if callable(obj) and not isinstance(obj, type(pytest)):
            assert (getattr(obj, "__doc__", None) or "").strip(), f"{module}.{name} has no docstring"


# ---------------------------------------------------------------------------- bool switches
def test_a_bool_option_is_a_switch_with_a_no_form():
    switch = AnalysisOption("probe_exact", bool, False, "Exact.")
    assert switch.usage == "--probe-exact/--no-probe-exact"
    assert AnalysisOption("probe_level", int, 3).usage == "--probe-level INT"
    probe = Probe("switch-probe", [switch, AnalysisOption("probe_on", bool, True, "On.")])
    run_dir = synthetic_run_dir()
    with plugin_registered(Plugin(probe)):
        helped = invoke(["analyze", "--help"]).output
        assert "--probe-exact / --no-probe-exact" in helped and "--no-probe-on" in helped
        described = invoke(["analyze", run_dir, "--help-analysis", "switch-probe"]).output
        assert "--probe-exact/--no-probe-exact" in described
        for args, want in (
            ([], (False, True)),
            (["--probe-exact"], (True, True)),
            (["--no-probe-on"], (False, False)),
            (["--probe-exact", "--no-probe-exact"], (False, True)),
        ):
            probe.calls.clear()
            done = invoke(["analyze", run_dir, "--only", "switch-probe", *args])
            assert done.exit_code == 0, done.output
            assert (probe.calls[0][1]["probe_exact"], probe.calls[0][1]["probe_on"]) == want, args
        probe.calls.clear()
        old = invoke(["analyze", run_dir, "--only", "switch-probe", "--probe-exact=true"])  # the old form
        assert old.exit_code == 0 and "write `--probe-exact`" in old.stderr and probe.calls[0][1]["probe_exact"]
        refused = invoke(["analyze", run_dir, "--only", "switch-probe", "--probe-exact=maybe"])
        assert refused.exit_code == 2 and "does not take a value" in refused.output  # a switch takes no other
        probe.calls.clear()
        embedlab.analyze(run_dir, ["switch-probe"], {"probe_exact": "yes"})  # Python: converted
        assert probe.calls[0][1]["probe_exact"] is True


def test_a_shared_option_declared_differently_is_a_one_line_error_on_the_command_line():
    wrong = Probe("seed-as-text", [AnalysisOption("seed", str, "0", "a seed")])
    with plugin_registered(Plugin(wrong), name="tmp-seed-text"):
        done = invoke(["analyze", synthetic_run_dir(), "--only", "seed-as-text"])
    assert done.exit_code == 1 and "Traceback" not in done.output
    [line] = [l for l in done.output.splitlines() if "--seed" in l]
    for part in (
        "'tmp-seed-text'",
        "'seed-as-text'",
        "--seed (type text, default '0')",
        "embedlab.toolkit.options declares as type integer, default 0",
        "use embedlab.toolkit.options",
    ):
        assert part in line, (part, line)


# ---------------------------------------------------------------------------- datasets by role
def _shop(entities, entity_tables=None, customer_keys=None):
    rng = np.random.default_rng(0)
    customers = customer_keys if customer_keys is not None else np.arange(1, 21)
    frame = pd.DataFrame(
        {
            "customer_id": rng.choice(customers, 400),
            "sku": rng.choice(np.arange(100, 130), 400),
            "stars": rng.integers(1, 6, 400).astype(float),
        }
    )
    train, valid, info = split_collab(frame, "random", 0.1, 0, None)
    return Dataset(
        "shop",
        "collab",
        train,
        valid,
        {"user": "customer_id", "item": "sku", "rating": "stars"},
        entities=entities,
        entity_tables=entity_tables or {},
        split=info,
        rating_range=(1, 5),
    )


def _products():
    meta = pd.DataFrame(
        {"label": [f"product {k}" for k in range(100, 130)], "category": ["a", "b", "c"] * 10},
        index=pd.Index(np.arange(100, 130), name="sku"),
    )
    meta.attrs["color_column"] = "category"
    return meta


def _customers():
    return pd.DataFrame(
        {"label": [f"customer {k}" for k in range(1, 21)], "since": np.arange(2000, 2020)},
        index=pd.Index(np.arange(1, 21), name="customer_id"),
    )


def test_entity_tables_are_found_by_role_declared_by_column_or_by_name():
    ds = _shop({"customer": _customers(), "product": _products()}, {"user": "customer", "item": "product"})
    assert check_entity_tables(ds, ("user", "item")) == {"user": "customer", "item": "product"}
    by_column = _shop({"customer_id": _customers(), "item": _products()})
    assert entity_table_of(by_column, "user") == "customer_id" and entity_table_of(by_column, "item") == "item"
    with pytest.raises(DataError, match="entity_tables says the item table is 'goods'"):
        entity_table_of(_shop({"product": _products()}, {"item": "goods"}), "item")


def test_the_collab_trainer_takes_labels_and_metadata_by_role():
    ds = _shop({"customer": _customers(), "product": _products()}, {"user": "customer", "item": "product"})
    from embedlab.registry import trainer_for_dataset

    run = trainer_for_dataset(ds).train(ds, {"epochs": 1, "n_factors": 4, "bs": 32}, progress=False)
    item, user = run.table("item"), run.table("user")
    assert item.labels[item.keys.tolist().index(101)] == "product 101"
    assert item.attrs["color_column"] == "category" and item.attrs["entity_table"] == "product"
    assert set(item.metadata["category"].dropna()) == {"a", "b", "c"}
    assert user.labels[user.keys.tolist().index(3)] == "customer 3" and "since" in user.metadata


def test_an_entity_table_no_role_takes_is_an_error_not_silence():
    from embedlab.registry import trainer_for_dataset

    ds = _shop({"customer": _customers(), "product": _products()})  # named neither by role nor by column
    with pytest.raises(
        DataError,
        match=r"entity table 'customer' annotates none of the roles user, item, so its "
        r"labels and metadata would be dropped.*entity_tables=\{'user': 'customer'\}",
    ):
        trainer_for_dataset(ds).train(ds, {"epochs": 1, "n_factors": 4, "bs": 32}, progress=False)


def test_an_entity_table_keyed_by_another_type_is_an_error():
    customers = _customers()
    customers.index = customers.index.astype(str)  # "3" is not 3
    ds = _shop({"user": customers})
    with pytest.raises(DataError, match=r"no key of entity table 'user' \(user\) is a value of column 'customer_id'"):
        check_entity_tables(ds, ("user", "item"))


def test_split_options_are_a_reusable_option_set():
    @click.command(params=split_options(("random", "time")))
    def cmd(**kw):
        click.echo(json.dumps(kw))

    from click.testing import CliRunner

    assert json.loads(CliRunner().invoke(cmd, []).output) == {"split": "random", "valid_pct": 0.1}
    assert json.loads(CliRunner().invoke(cmd, ["--split", "time", "--valid-pct", "0.2"]).output) == {
        "split": "time",
        "valid_pct": 0.2,
    }
    assert CliRunner().invoke(cmd, ["--split", "time-after"]).exit_code == 2
    assert CliRunner().invoke(cmd, ["--valid-pct", "1.5"]).exit_code == 2
    assert [o.name for o in split_options()] == ["split", "valid_pct", "time_cut"]
    with pytest.raises(UsageError, match="unknown split 'weekly'"):
        split_options(("random", "weekly"))


# ---------------------------------------------------------------------------- broken plugins
def test_a_plugin_that_fails_to_import_is_listed_as_broken_with_its_error(tmp_path, monkeypatch, fresh_plugins):
    site = tmp_path / "site"
    info = site / "embedlab_cracked-0.4.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: embedlab-cracked\nVersion: 0.4.0\n")
    (info / "entry_points.txt").write_text("[embedlab]\ncracked = fk_cracked_plugin\n")
    (site / "fk_cracked_plugin.py").write_text("import os\n\nCONFIG = {}\nVALUE = CONFIG['missing_key']\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delenv("EMBEDLAB_LOAD_PLUGINS", raising=False)
    try:
        with pytest.warns(
            UserWarning,
            match=r"'cracked'.*failed to import.*KeyError: 'missing_key' \(at .*"
            r"fk_cracked_plugin.py:4; `embedlab plugins` lists it\)",
        ):
            listed = invoke(["plugins", "--json"])
        assert listed.exit_code == 0, listed.output
        [row] = [r for r in json.loads(listed.stdout) if r["name"] == "cracked"]
        assert row["error"] == "KeyError: 'missing_key'" and row["distribution"] == "embedlab-cracked"
        assert row["version"] == "0.4.0" and row["hooks"] == []
        assert row["location"] == f"{site / 'fk_cracked_plugin.py'}:4"
        table = invoke(["plugins"])
        assert table.exit_code == 0
        assert "cracked" in table.stdout and "BROKEN" in table.stdout and "missing_key" in table.stdout
        assert "1 plugin(s) failed to load" in table.stderr and 'guide "goes wrong"' in table.stderr
        ok = [r for r in json.loads(invoke(["plugins", "--all", "--json"]).stdout) if r["name"] == "synthetic-collab"]
        assert ok[0]["error"] is None
    finally:
        sys.modules.pop("fk_cracked_plugin", None)


# ---------------------------------------------------------------------------- skipped tables, debug
def test_an_analysis_can_say_skipped_table_t_reason(tmp_path):
    probe = Probe("skipper", skip={"user": "users carry no genre"})
    report = tmp_path / "r.html"
    with plugin_registered(Plugin(probe)):
        done = invoke(["analyze", synthetic_run_dir(), "--only", "skipper", "--json", "--report", report, "--strict"])
        shown = invoke(["analyze", synthetic_run_dir(), "--only", "skipper"])
    assert done.exit_code == 0, done.output  # a skip is not a failure, even with --strict
    by = {r["table"]: r for r in json.loads(done.stdout)["results"]}
    assert by["user"]["skipped"] == "users carry no genre" and by["user"]["error"] is None
    assert by["user"]["summary"] == "skipped table user: users carry no genre"
    assert by["item"]["skipped"] is None and by["item"]["metrics"] == {"m": 1.0}
    assert "skipped table user: users carry no genre" in " ".join(shown.stderr.split())
    assert "skipped table user: users carry no genre" in report.read_text(encoding="utf-8")


def test_a_plugin_bug_shows_file_and_line_under_embedlab_debug(monkeypatch):
    probe = Probe("buggy", fail=True)
    monkeypatch.delenv("EMBEDLAB_DEBUG", raising=False)
    with plugin_registered(Plugin(probe)):
        [quiet, *_] = embedlab.analyze(synthetic_run(), ["buggy"])
        monkeypatch.setenv("EMBEDLAB_DEBUG", "1")
        [loud, *_] = embedlab.analyze(synthetic_run(), ["buggy"])
    assert quiet.error == "KeyError: 'missing_key'"
    assert loud.error.startswith("KeyError: 'missing_key'\nTraceback")
    assert f'File "{__file__}", line' in loud.error and 'return {}["missing_key"]' in loud.error


def test_embedlab_debug_flag_puts_file_and_line_in_the_error_section(monkeypatch, tmp_path):
    monkeypatch.delenv("EMBEDLAB_DEBUG", raising=False)
    report = tmp_path / "r.html"
    with plugin_registered(Plugin(Probe("buggy-cli", fail=True))):
        plain = invoke(["analyze", synthetic_run_dir(), "--only", "buggy-cli", "--json"])
        debug = invoke(["--debug", "analyze", synthetic_run_dir(), "--only", "buggy-cli", "--json", "--report", report])
    [p] = [r for r in json.loads(plain.stdout)["results"] if r["table"] == "item"]
    [d] = [r for r in json.loads(debug.stdout)["results"] if r["table"] == "item"]
    assert p["error"] == "KeyError: 'missing_key'"
    line = next(
        n for n, text in enumerate(Path(__file__).read_text().splitlines(), 1) if 'return {}["missing_key"]' in text
    )
    assert f'File "{__file__}", line {line}, in run' in d["error"]
    assert f"line {line}, in run" in report.read_text(encoding="utf-8")  # the report's error section too


# ---------------------------------------------------------------------------- planted truth
@pytest.fixture(scope="module")
def kmeans_plugin():
    sys.path.insert(0, str(THIRD_PARTY / "embedlab-kmeans-genres"))
    try:
        import embedlab_kmeans_genres

        yield embedlab_kmeans_genres
    finally:
        sys.path.remove(str(THIRD_PARTY / "embedlab-kmeans-genres"))
        sys.modules.pop("embedlab_kmeans_genres", None)


def test_kmeans_finds_the_planted_genre_count_and_a_high_ami_and_nothing_when_shuffled(kmeans_plugin):
    """What embedlab.testing.PLANTED promises: k = 3 by silhouette, AMI > 0.8, control about 0."""
    assert "AMI with `genre` above 0.8" in PLANTED["recovered"]
    with plugin_registered(kmeans_plugin):
        check = assert_planted_found("kmeans-genres", "ami", above=0.8, control_below=0.2)
        [item] = [r for r in embedlab.analyze(synthetic_run(), ["kmeans-genres"]) if r.table == "item"]
    assert check.planted > 0.8 and abs(check.shuffled) < 0.2
    assert item.metrics["k"] == item.metrics["categories"] == 3
    from scipy.stats import spearmanr

    table = synthetic_run().table("item")
    assert spearmanr(table.bias_values, table.metadata["true_bias"])[0] > 0.8


def test_planted_helpers_fail_with_both_numbers_when_the_control_scores_too():
    class Constant(Probe):
        def run(self, run, table, options):
            return AnalysisResult(self.name, table, self.title, metrics={"score": 0.9})

    with plugin_registered(Plugin(Constant("constant"))):
        check = planted_vs_shuffled("constant", "score")
        assert (check.planted, check.shuffled) == (0.9, 0.9)
        with pytest.raises(AssertionError, match=r"planted 0.9, shuffled control 0.9: the shuffled control scores"):
            assert_planted_found("constant", "score", above=0.5, control_below=0.2)
        with pytest.raises(AssertionError, match="was not found"):
            assert_planted_found("constant", "score", above=0.95, control_below=0.2)
        with pytest.raises(AssertionError, match="has no metric 'nope'; its metrics: score"):
            planted_vs_shuffled("constant", "nope")


# ---------------------------------------------------------------------------- slow: wheels in a venv
@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory, embedlab_wheel) -> Path:
    """A fresh venv holding the wheels of embedlab and of the two worked plugins (built once).

    Its dependencies (torch, pandas, ...) come from this test venv's site-packages through a
    .pth line rather than being installed again; embedlab itself is the wheel, installed in the
    new venv (which comes first on sys.path): not this checkout."""
    from conftest import build_wheel, wheel_venv
    import shutil

    dist = tmp_path_factory.mktemp("plugin-dist")
    wheels = []
    for name in ("embedlab-kmeans-genres", "embedlab-shop", "embedlab-dotmf", "embedlab-drift"):
        src = tmp_path_factory.mktemp("src") / name
        shutil.copytree(THIRD_PARTY / name, src, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
        wheels.append(build_wheel(src, dist))
    return wheel_venv(tmp_path_factory.mktemp("venv") / "v", [embedlab_wheel, *wheels])


from conftest import venv_env as _venv_env  # noqa: E402  (shared with tests/test_site.py)


DRIVER = r"""
import json, sys
from pathlib import Path
import numpy as np
import embedlab
from embedlab.testing import invoke

work = Path(sys.argv[1])
out = {"embedlab": embedlab.__file__}
rng = np.random.default_rng(0)
category = rng.integers(0, 3, 40)
taste = rng.normal(0, 1.5, (60, 3))
rows = ["customer,sku,stars,timestamp"]
for n in range(4000):
    c, s = rng.integers(0, 60), rng.integers(0, 40)
    stars = float(np.clip(np.round(3.2 + taste[c, category[s]] + rng.normal(0, 0.3)), 1, 5))
    rows.append(f"{c + 1},{s + 100},{stars},{1_600_000_000 + n}")
(work / "orders.csv").write_text("\n".join(rows) + "\n")
(work / "products.csv").write_text("sku,name,category\n" + "".join(
    f"{s + 100},Product {s + 100},{'abc'[category[s]]}\n" for s in range(40)))
steps = {
    "train": ["train", "shop-ratings", "--file", work / "orders.csv", "--products", work / "products.csv",
              "--split", "time", "--epochs", "6", "--n-factors", "8", "--out", work / "run", "-q"],
    "analyze": ["analyze", work / "run", "--only", "kmeans-genres", "--json", "--report", work / "r.html"],
    "top": ["shop-top", work / "run", "--n", "3"],
    "help": ["analyze", "--help"],
    "bad_split": ["train", "shop-ratings", "--file", work / "orders.csv", "--split", "weekly", "--out", work / "x"],
}
import os
ml = os.environ.get("EMBEDLAB_DATA_DIR")
steps["ml_help"] = ["train", "movielens-100k", "--help"]
if ml and (Path(ml) / "ml-100k" / "u.data").is_file():  # the real data: train it with no --trainer
    steps["ml_train"] = ["train", "movielens-100k", "--data-dir", Path(ml) / "ml-100k", "--epochs", "1",
                         "--out", work / "ml", "-q"]
steps["drift"] = ["analyze", work / "run", work / "run2", "--only", "drift", "--json"]
from embedlab.testing import same_data_other_seed, synthetic_run
out["synthetic_trainer"] = synthetic_run(users=30, items=20, ratings=500, epochs=1).meta["trainer"]
for key, args in steps.items():
    if key == "drift":
        same_data_other_seed(work / "run", seed=7, out=work / "run2")
    r = invoke(args, catch_exceptions=True)
    out[key] = {"code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr}
if "ml_train" in out:
    out["ml_trainer"] = embedlab.load_run(work / "ml").meta["trainer"]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_worked_third_party_plugins_install_from_wheels_and_work(plugin_venv, tmp_path):
    """The analysis plugin and the dataset + command plugin, pip-installed from wheels beside
    embedlab's wheel: listed, trained, analysed, their command run, their own tests pass."""
    python, env = str(plugin_venv / "bin" / "python"), _venv_env()
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    (tmp_path / "work").mkdir()
    tests = tmp_path / "plugin-tests"
    import shutil

    shutil.copytree(THIRD_PARTY / "embedlab-kmeans-genres" / "tests", tests)
    own_tests = {}  # every installed plugin's own tests, each in its own folder and process
    for name in ("embedlab-dotmf", "embedlab-drift"):
        own_tests[name] = tmp_path / f"tests-{name}"
        shutil.copytree(THIRD_PARTY / name / "tests", own_tests[name])
    procs = {
        "plugins": subprocess.Popen(
            [str(plugin_venv / "bin" / "embedlab"), "plugins", "--json"],
            env=env,
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
        "driver": subprocess.Popen(
            [python, str(driver), str(tmp_path / "work")],
            env=env,
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
        "pytest": subprocess.Popen(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning", str(tests)],
            env=env,
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        ),
        **{
            name: subprocess.Popen(
                [
                    python,
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    "-W",
                    "ignore::DeprecationWarning",
                    str(folder),
                ],
                env=env,
                cwd=folder,
                text=True,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            for name, folder in own_tests.items()
        },
    }
    out = {}
    try:
        for key, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=400)
            assert proc.returncode == 0, f"{key}\n{stdout[-3000:]}\n{stderr[-3000:]}"
            out[key] = stdout
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    listed = {p["name"]: p for p in json.loads(out["plugins"])}
    assert (listed["kmeans-genres"]["distribution"], listed["kmeans-genres"]["version"]) == (
        "embedlab-kmeans-genres",
        "0.2.0",
    )
    assert listed["shop"]["hooks"] == ["embedlab_register_commands", "embedlab_register_datasets"]
    assert "3 passed" in out["pytest"], out["pytest"]
    assert "3 passed" in out["embedlab-dotmf"] and "1 passed" in out["embedlab-drift"]
    assert listed["dotmf"]["hooks"] == ["embedlab_register_trainers"]

    got = json.loads(out["driver"].strip().splitlines()[-1])
    assert got["embedlab"].startswith(str(plugin_venv))  # the wheel, not this checkout
    for key in ("train", "analyze", "top", "help", "ml_help", "drift"):
        assert got[key]["code"] == 0, (key, got[key])
    # with a second collab trainer installed, the built-ins keep theirs (no --trainer needed)
    assert got["synthetic_trainer"] == "collab"
    ml_help = " ".join(got["ml_help"]["stdout"].split())
    assert "--n-factors" in ml_help and "(installed: collab, dotmf)" in ml_help and "[default: collab]" in ml_help
    if "ml_train" in got:
        assert got["ml_train"]["code"] == 0, got["ml_train"]
        assert got["ml_trainer"] == "collab"
    [drift] = json.loads(got["drift"]["stdout"])["several_runs"]
    assert drift["analysis"] == "drift" and drift["error"] is None
    assert got["bad_split"]["code"] == 2 and "weekly" in got["bad_split"]["stderr"]
    results = {r["table"]: r for r in json.loads(got["analyze"]["stdout"])["results"]}
    assert results["item"]["error"] is None and results["item"]["metrics"]["k"] == 3
    assert results["item"]["metrics"]["ami"] > 0.6 and results["item"]["headline"] == ["ami", "k"]
    assert results["user"]["skipped"] == "no categorical annotation to compare the clusters with"
    assert "skipped table user" in (tmp_path / "work" / "r.html").read_text(encoding="utf-8")
    top = got["top"]["stdout"].splitlines()
    assert len(top) == 3 and all("Product 1" in line for line in top)  # labels came from the product table
    assert "--kmeans-normalize / --no-kmeans-normalize" in got["help"]["stdout"]
