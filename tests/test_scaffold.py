"""The plugin author's path: scaffold, testing helpers, discovery, tracing, conflicts, options,
failures.

Third-party distributions are simulated by writing a ``*.dist-info`` folder (METADATA and
entry_points.txt) and a module into a temporary folder put on ``sys.path``: importlib.metadata
finds them exactly as it finds pip-installed ones, in milliseconds. The slow test does the real
thing: ``pip install`` a scaffolded package into this venv, run ``embedlab`` on it and its own
generated tests, and uninstall it.
"""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
import textwrap
import time
import uuid
import zipfile
from pathlib import Path

import pytest

import embedlab
from embedlab.errors import EmbedlabError, UsageError
from embedlab.plugins import get_plugin_manager, plugin_infos
from embedlab.registry import PluginConflictError, analyses
from embedlab.authoring.scaffold import plugin_names, scaffold, template_files
from embedlab.authoring.testing import SYNTHETIC_DEFAULTS, invoke, plugin_registered, synthetic_run, synthetic_run_dir

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
FAST_ANALYSES = ["bias-ranking", "pca", "neighbors"]  # umap's first call compiles (slow)


# ---------------------------------------------------------------------------- helpers
class Canary:
    """An analysis that records each call, to prove what ran and what did not."""

    def __init__(self, name: str = "canary", options=None):
        self.name, self.title, self.calls = name, f"Canary {name}", []
        self.options = options or []

    def applies_to(self, run):
        return ["item"] if "item" in run.table_names else []

    def run(self, run, table, options):
        from embedlab.analysis import AnalysisResult

        self.calls.append((table, dict(options)))
        return AnalysisResult(
            self.name, table, self.title, summary="canary ran", metrics={"n": float(len(run.table(table)))}
        )


class Plugin:
    """A plugin object registering the given analyses."""

    def __init__(self, *objects):
        self.objects = objects

    @embedlab.hookimpl
    def embedlab_register_analyses(self, register):
        for obj in self.objects:
            register(obj)


def fake_distribution(
    site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str], version: str = "1.2.3"
) -> None:
    """Lay out an installed distribution (dist-info + modules) under ``site``."""
    info = site / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    lines = "".join(f"{name} = {target}\n" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[embedlab]\n{lines}")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(textwrap.dedent(source))


ANALYSIS_MODULE = """
from embedlab import hookimpl
from embedlab.analysis import AnalysisResult

class A:
    name = {name!r}
    title = "From " + {dist!r}
    options = []
    def applies_to(self, run):
        return ["item"]
    def run(self, run, table, options):
        return AnalysisResult(self.name, table, self.title, summary={dist!r})

@hookimpl
def embedlab_register_analyses(register):
    register(A())
"""


@pytest.fixture
def site(tmp_path, monkeypatch, fresh_plugins):
    """A folder on sys.path for fake distributions; the plugin manager is rebuilt around it."""
    monkeypatch.delenv("EMBEDLAB_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("EMBEDLAB_TRACE_PLUGINS", raising=False)
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    before = set(sys.modules)
    yield folder
    for name in set(sys.modules) - before:
        if name.startswith("fk_"):
            del sys.modules[name]


def unique(prefix: str) -> str:
    return f"fk_{prefix}_{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------------------- scaffold (fast)
def test_plugin_names_derive_every_identifier():
    names = plugin_names("genre-check")
    assert names["distribution"] == "embedlab-genre-check"
    assert names["module"] == "embedlab_genre_check"
    assert names["option_prefix"] == "genre_check"
    assert names["class_name"] == "GenreCheckAnalysis"
    assert names["embedlab_version"] == embedlab.__version__


@pytest.mark.parametrize("bad", ["", "Genre", "1abc", "a--b", "a_b", "-a", "a-", "a b", "ü", "a/b"])
def test_unusable_plugin_names_are_refused(bad, tmp_path):
    with pytest.raises(UsageError, match="not usable"):
        scaffold(bad, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_plugins_new_writes_a_complete_package(tmp_path):
    result = invoke(["plugins", "new", "genre-check", "--dir", tmp_path])
    assert result.exit_code == 0, result.output
    pkg = Path(result.stdout.strip())
    assert pkg == tmp_path / "embedlab-genre-check"
    files = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*") if p.is_file())
    assert files == [
        ".gitignore",
        "README.md",
        "embedlab_genre_check/__init__.py",
        "pyproject.toml",
        "setup.cfg",
        "tests/test_embedlab_genre_check.py",
    ]
    for f in files:
        text = (pkg / f).read_text(encoding="utf-8")
        assert "{{" not in text, f  # every placeholder filled
        if f.endswith(".py"):
            compile(text, f, "exec")
    cfg = configparser.ConfigParser()
    cfg.read(pkg / "setup.cfg")
    assert cfg["metadata"]["name"] == "embedlab-genre-check"
    assert cfg["options.entry_points"]["embedlab"].strip() == "genre-check = embedlab_genre_check"
    assert f"embedlab>={embedlab.__version__}" in cfg["options"]["install_requires"]
    assert "setuptools.build_meta" in (pkg / "pyproject.toml").read_text()
    readme = (pkg / "README.md").read_text()
    for step in (
        "pip install embedlab-genre-check",
        "pytest",
        "python -m build",
        "twine upload",
        "--help-analysis genre-check",
    ):
        assert step in readme
    assert "embedlab.testing" in (pkg / "tests/test_embedlab_genre_check.py").read_text()


def test_plugins_new_never_touches_an_existing_folder(tmp_path):
    existing = tmp_path / "embedlab-norms"
    existing.mkdir()
    (existing / "mine.txt").write_text("keep me")
    result = invoke(["plugins", "new", "norms", "--dir", tmp_path])
    assert result.exit_code == 2 and "already exists" in result.output
    assert [p.name for p in existing.iterdir()] == ["mine.txt"]
    afile = tmp_path / "file"
    afile.write_text("x")
    result = invoke(["plugins", "new", "norms", "--dir", afile])
    assert result.exit_code == 2 and "is a file" in result.output


def test_templates_are_all_used():
    rels = [rel for rel, _ in template_files()]
    assert set(rels) == {
        "MODULE/__init__.py.tmpl",
        "README.md.tmpl",
        "gitignore.tmpl",
        "pyproject.toml.tmpl",
        "setup.cfg.tmpl",
        "tests/test_MODULE.py.tmpl",
    }


def test_plugins_listing_still_works_beside_new():
    listed = invoke(["plugins", "--all", "--json"])
    assert listed.exit_code == 0
    infos = {i["name"]: i for i in json.loads(listed.stdout)}
    assert infos["synthetic-collab"]["builtin"] is True
    assert infos["synthetic-collab"]["hooks"] == ["embedlab_register_datasets"]
    third_party = json.loads(invoke(["plugins", "--json"]).stdout)
    assert all(not i["builtin"] for i in third_party)
    helped = invoke(["plugins", "--help"])
    assert "new" in helped.output and "--all" in helped.output


def test_generated_analysis_finds_planted_genres_in_process(tmp_path, monkeypatch):
    """The scaffold's example analysis, imported from the generated folder (no install)."""
    pkg = scaffold("sep-demo", tmp_path)
    monkeypatch.syspath_prepend(str(pkg))
    import embedlab_sep_demo as plugin

    try:
        with plugin_registered(plugin) as registered:
            assert registered in {n for n, _ in get_plugin_manager().list_name_plugin()}
            planted = embedlab.analyze(synthetic_run(), ["sep-demo"])
            control = embedlab.analyze(synthetic_run(shuffle_truth=True), ["sep-demo"])
            report = tmp_path / "r.html"
            done = invoke(["analyze", synthetic_run_dir(), "--only", "sep-demo", "--report", report])
        assert done.exit_code == 0, done.output
        assert 'id="sep-demo-item"' in report.read_text()
        [p] = [r for r in planted if r.table == "item"]
        [c] = [r for r in control if r.table == "item"]
        assert p.ok and c.ok
        assert p.metrics["separation"] > 0.05 > abs(c.metrics["separation"])
        assert [r.table for r in planted] == ["item"]  # users have no categorical annotation
        assert "sep-demo" not in analyses()  # unregistered again
    finally:
        sys.modules.pop("embedlab_sep_demo", None)


def test_plugins_new_kind_trainer_scaffolds_a_working_trainer_whose_tests_pass(tmp_path):
    """`plugins new NAME --kind trainer`: the guide's worked trainer, renamed, and tests of the
    trainer contract that pass as generated (run by pytest in a subprocess, no install)."""
    done = invoke(["plugins", "new", "mf-demo", "--kind", "trainer", "--dir", tmp_path])
    assert done.exit_code == 0, done.output
    pkg = tmp_path / "embedlab-mf-demo"
    source = (pkg / "embedlab_mf_demo" / "__init__.py").read_text()
    assert 'name = "mf-demo"' in source and "class MfDemoTrainer" in source and "plain-mf" not in source
    assert '__version__ = "0.1.0"' in source  # setup.cfg's version = attr: embedlab_mf_demo.__version__
    assert "an embedlab trainer plugin" in (pkg / "setup.cfg").read_text()
    assert "--trainer mf-demo" in (pkg / "README.md").read_text() and "--trainer mf-demo" in done.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("EMBEDLAB_LOAD_PLUGINS", "EMBEDLAB_DEBUG")}
    env["PYTHONPATH"] = os.pathsep.join([str(pkg), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(pkg / "tests")],
        cwd=pkg,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 passed" in proc.stdout


# ---------------------------------------------------------------------------- embedlab.testing
def test_synthetic_run_is_small_cached_fresh_and_has_planted_truth(tmp_path):
    first, second = synthetic_run(), synthetic_run()
    assert first is not second and first.table("item") is not second.table("item")
    assert synthetic_run_dir() == synthetic_run_dir()  # trained once
    item = first.table("item")
    assert len(item) == SYNTHETIC_DEFAULTS["items"] and item.dim == SYNTHETIC_DEFAULTS["n_factors"]
    assert item.attrs["color_column"] == "genre" and item.metadata["genre"].nunique() == 3
    from scipy.stats import spearmanr

    assert spearmanr(item.bias_values, item.metadata["true_bias"])[0] > 0.7
    control = synthetic_run(shuffle_truth=True).table("item")
    assert abs(spearmanr(control.bias_values, control.metadata["true_bias"])[0]) < 0.3
    copied = synthetic_run(tmp_path / "copy")
    assert copied.path == tmp_path / "copy" and (tmp_path / "copy" / "run.json").is_file()
    first.meta["dataset"] = "changed"
    assert synthetic_run().dataset == "synthetic-collab"


def test_plugin_registered_unregisters_even_when_the_test_fails():
    canary = Canary("leaky")
    plugin = Plugin(canary)
    with pytest.raises(RuntimeError, match="test failed"):
        with plugin_registered(plugin, name="leaky-plugin"):
            assert "leaky" in analyses()
            raise RuntimeError("test failed")
    assert "leaky" not in analyses()
    assert not get_plugin_manager().is_registered(plugin)


def test_plugin_registered_resets_the_cli_cache():
    """``embedlab.cli.cli`` (what ``main()`` runs) knows the flags of plugins registered now."""
    import embedlab.cli
    from click.testing import CliRunner

    def analyze_help() -> str:
        return CliRunner().invoke(embedlab.cli.cli, ["analyze", "--help"]).output

    assert "--cache-probe-level" not in analyze_help()  # the ready-made CLI computed its flags
    opt = embedlab.analysis.AnalysisOption("cache_probe_level", int, 3, "probe")
    with plugin_registered(Plugin(Canary("probe", [opt]))):
        assert "--cache-probe-level" in analyze_help()
    assert "--cache-probe-level" not in analyze_help()


def test_plugin_registered_leaves_an_installed_plugin_alone():
    pm = get_plugin_manager()
    name, module = next((n, p) for n, p in pm.list_name_plugin() if n == "synthetic-collab")
    with plugin_registered(module) as got:
        assert got == name
    assert pm.get_plugin(name) is module  # still registered


def test_plugin_registered_rejects_a_misspelled_hook():
    class Typo:
        @embedlab.hookimpl
        def embedlab_register_analysis(self, register):  # missing "es"
            pass

    with pytest.raises(EmbedlabError, match="embedlab_register_analysis.*embedlab_register_analyses"):
        with plugin_registered(Typo()):
            pass  # pragma: no cover
    assert not any(isinstance(p, Typo) for p in get_plugin_manager().get_plugins())


def test_pytest_fixtures_are_offered(pytester):
    pytester.makeconftest('pytest_plugins = ["embedlab.testing"]')
    pytester.makepyfile("""
        import embedlab

        class P:
            @embedlab.hookimpl
            def embedlab_register_analyses(self, register):
                pass

        def test_fixtures(embedlab_run, embedlab_plugin):
            assert (embedlab_run / "run.json").is_file()
            name = embedlab_plugin(P(), "fixture-plugin")
            assert name == "fixture-plugin"

        def test_after():
            from embedlab.plugins import get_plugin_manager
            assert get_plugin_manager().get_plugin("fixture-plugin") is None
    """)
    pytester.runpytest_inprocess("-q", "-p", "no:cacheprovider").assert_outcomes(passed=2)


# ---------------------------------------------------------------------------- discovery & tracing
def test_trace_logs_each_hook_call_with_the_plugins_that_answered(monkeypatch, capsys, fresh_plugins):
    monkeypatch.setenv("EMBEDLAB_TRACE_PLUGINS", "1")
    with (
        plugin_registered(Plugin(Canary("traced-a"), Canary("traced-b")), name="tracer"),
        plugin_registered(Plugin(), name="quiet-one"),
    ):
        capsys.readouterr()
        analyses()
        embedlab.registry.datasets()
        helped = invoke(["--help"])  # the CLI calls embedlab_register_commands (via pluggy)
    err = capsys.readouterr().err
    [line] = [l for l in err.splitlines() if "embedlab_register_analyses" in l]
    assert line.startswith("[embedlab trace] embedlab_register_analyses -> ")
    assert "tracer [traced-a, traced-b]" in line
    assert "geography [geography]" in line  # built-ins answer too
    assert "registered nothing: quiet-one" in line
    assert any(
        "embedlab_register_datasets -> " in l and "synthetic-collab [synthetic-collab]" in l for l in err.splitlines()
    )
    assert any(l.startswith("[embedlab trace] embedlab_register_commands -> ") for l in helped.stderr.splitlines()), (
        helped.stderr
    )
    assert "[embedlab trace]" not in helped.stdout


def test_no_trace_without_the_variable(monkeypatch, capsys, fresh_plugins):
    monkeypatch.setenv("EMBEDLAB_TRACE_PLUGINS", "0")
    analyses()
    invoke(["--help"])
    assert "[embedlab trace]" not in capsys.readouterr().err


def test_trace_in_a_real_process(tmp_path):
    env = dict(os.environ, EMBEDLAB_TRACE_PLUGINS="1")
    proc = subprocess.run(
        [sys.executable, "-m", "embedlab", "datasets", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "[embedlab trace] embedlab_register_datasets -> " in proc.stderr
    assert "movielens [movielens-100k" in proc.stderr
    assert json.loads(proc.stdout)  # the trace never pollutes stdout


def test_entry_point_plugins_are_listed_with_their_distribution(site):
    mod = unique("listed")
    fake_distribution(
        site,
        "embedlab-listed",
        {"listed": mod},
        {mod: ANALYSIS_MODULE.format(name="listed-analysis", dist="embedlab-listed")},
    )
    [info] = [i for i in plugin_infos(include_builtins=False) if i.name == "listed"]
    assert (info.distribution, info.version, info.builtin, info.module) == ("embedlab-listed", "1.2.3", False, mod)
    assert info.hooks == ["embedlab_register_analyses"]
    assert "listed-analysis" in analyses()


def test_two_distributions_registering_one_name_is_an_error_naming_both(site):
    for dist in ("embedlab-alpha", "embedlab-beta"):
        mod = unique(dist.split("-")[1])
        fake_distribution(
            site, dist, {dist.split("-")[1]: mod}, {mod: ANALYSIS_MODULE.format(name="same-name", dist=dist)}
        )
    with pytest.raises(PluginConflictError) as info:
        analyses()
    message = info.value.format_message()
    assert "'same-name'" in message
    assert "distribution 'embedlab-alpha'" in message and "distribution 'embedlab-beta'" in message
    assert "EMBEDLAB_LOAD_PLUGINS" in message
    result = invoke(["analyze", "/nowhere", "--only", "same-name"])
    assert result.exit_code == 1 and "embedlab-alpha" in result.output and "Traceback" not in result.output


def test_load_plugins_variable_resolves_a_conflict(site, monkeypatch):
    for dist in ("embedlab-alpha", "embedlab-beta"):
        mod = unique(dist.split("-")[1])
        fake_distribution(
            site, dist, {dist.split("-")[1]: mod}, {mod: ANALYSIS_MODULE.format(name="same-name", dist=dist)}
        )
    monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", "embedlab-beta")
    assert analyses()["same-name"].title == "From embedlab-beta"
    assert "geography" in analyses()  # built-ins always load


def test_one_entry_point_name_in_two_distributions_loads_both(site):
    mods = {}
    for dist in ("embedlab-one", "embedlab-two"):
        mods[dist] = unique(dist.split("-")[1])
        fake_distribution(
            site,
            dist,
            {"shared-name": mods[dist]},
            {mods[dist]: ANALYSIS_MODULE.format(name=f"from-{dist}", dist=dist)},
        )
    assert {"from-embedlab-one", "from-embedlab-two"} <= set(analyses())
    names = {i.name: i.distribution for i in plugin_infos(include_builtins=False)}
    assert sorted(d for n, d in names.items() if n.startswith("shared-name")) == ["embedlab-one", "embedlab-two"]


def test_a_registration_hook_that_raises_is_a_warning_and_the_rest_load(site):
    good, bad = unique("good"), unique("raises")
    fake_distribution(
        site,
        "embedlab-good",
        {"good": good},
        {good: ANALYSIS_MODULE.format(name="good-analysis", dist="embedlab-good")},
    )
    fake_distribution(
        site,
        "embedlab-raises",
        {"raises": bad},
        {
            bad: """
        from embedlab import hookimpl
        from embedlab.analysis import Analysis

        class Half(Analysis):
            name, title = "half-registered", "Half"

        @hookimpl
        def embedlab_register_analyses(register):
            register(Half())
            raise KeyError("oops in the plugin")
    """
        },
    )
    with pytest.warns(
        UserWarning,
        match=r"'raises' \(distribution 'embedlab-raises'\) failed in "
        r"embedlab_register_analyses.*KeyError",
    ):
        found = analyses()
    assert "good-analysis" in found and "half-registered" not in found


# ---------------------------------------------------------------------------- options
def test_options_appear_in_help_analysis_and_are_validated_before_anything_runs(tmp_path):
    import click

    from embedlab.analysis import AnalysisOption

    first = Canary("aaa-first")  # sorted first: it would run before the one with bad options
    opts = [
        AnalysisOption("demo_level", int, 3, "How deep to look."),
        AnalysisOption("demo_mode", click.Choice(["fast", "exact"]), "fast", "Which algorithm."),
        AnalysisOption("demo_ratio", click.FloatRange(0, 1), 0.5, "A share of the entities."),
    ]
    second = Canary("opt-demo", opts)
    run_dir = synthetic_run_dir()
    with plugin_registered(Plugin(first, second)):
        described = invoke(["analyze", run_dir, "--help-analysis", "opt-demo"])
        assert described.exit_code == 0
        text = described.output
        for piece in (
            "opt-demo: Canary opt-demo",
            "--demo-level INT ",
            "How deep to look.",
            "[default: 3]",
            "--demo-mode CHOICE",
            "Which algorithm.",
            "[default: fast]",
            "--demo-ratio",
            "[default: 0.5]",
        ):
            assert piece in text, (piece, text)
        assert "--demo-level" in invoke(["analyze", "--help"]).output

        for bad in (["--demo-level", "deep"], ["--demo-mode", "sloppy"], ["--demo-ratio", "2"]):
            result = invoke(["analyze", run_dir, "--only", "aaa-first,opt-demo", *bad])
            assert result.exit_code == 2, result.output
            assert bad[0] in result.output
        assert first.calls == [] and second.calls == []

        with pytest.raises(UsageError, match="opt-demo.*--demo-level"):
            embedlab.analyze(run_dir, ["aaa-first", "opt-demo"], {"demo_level": "deep"})
        with pytest.raises(UsageError, match="--demo-mode"):
            embedlab.analyze(run_dir, ["aaa-first", "opt-demo"], {"demo_mode": "sloppy"})
        assert first.calls == [] and second.calls == []

        ok = invoke(["analyze", run_dir, "--only", "aaa-first,opt-demo", "--demo-level", "7"])
        assert ok.exit_code == 0, ok.output
    assert second.calls == [("item", {"demo_level": 7, "demo_mode": "fast", "demo_ratio": 0.5})]
    assert first.calls == [("item", {})]  # each analysis receives its own options only


# ---------------------------------------------------------------------------- failures
class Broken(Canary):
    def __init__(self, name: str, where: str):
        super().__init__(name)
        self.where = where

    def applies_to(self, run):
        if self.where == "applies_to":
            raise RuntimeError("applies_to blew up")
        return super().applies_to(run)

    def run(self, run, table, options):
        if self.where == "run":
            raise ValueError("planted failure <b>bold</b> & more")
        return super().run(run, table, options)

    def render(self, result):
        if self.where == "render":
            raise TypeError("render blew up")
        return []


def test_a_failing_analysis_is_an_error_section_and_the_others_are_unaffected(tmp_path):
    fine = Canary("fine")
    broken = [Broken("boom-run", "run"), Broken("boom-applies", "applies_to"), Broken("boom-render", "render")]
    report = tmp_path / "r.html"
    only = "fine,boom-run,boom-applies,boom-render"
    with plugin_registered(Plugin(fine, *broken)):
        result = invoke(["analyze", synthetic_run_dir(), "--only", only, "--report", report, "--json"])
        strict = invoke(["analyze", synthetic_run_dir(), "--only", only, "--strict"])
    assert result.exit_code == 0, result.output
    assert strict.exit_code == 1
    payload = json.loads(result.stdout)
    by = {r["analysis"]: r for r in payload["results"]}
    assert by["fine"]["error"] is None and by["fine"]["metrics"] == {"n": 80.0}
    assert by["boom-run"]["error"] == "ValueError: planted failure <b>bold</b> & more"
    assert by["boom-run"]["table"] == "item"
    assert by["boom-applies"]["error"] == "RuntimeError: applies_to blew up"
    assert by["boom-render"]["error"] == "TypeError: render blew up"
    assert len(fine.calls) == 2  # --json run and --strict run
    assert "3 analysis section(s) failed" in result.stderr
    html_text = report.read_text()
    assert 'id="fine-item"' in html_text and "canary ran" in html_text
    section = html_text[html_text.index('id="boom-run-item"') :]
    section = section[: section.index("</section>")]
    assert 'class="error"' in section
    assert "planted failure &lt;b&gt;bold&lt;/b&gt; &amp; more" in section
    assert "<b>bold</b>" not in html_text


def test_a_data_error_shows_its_message_alone():
    from embedlab.errors import DataError

    class Picky(Canary):
        def run(self, run, table, options):
            raise DataError("table item: column 'genre' is empty; annotate it first")

    with plugin_registered(Plugin(Picky("picky"))):
        [result] = embedlab.analyze(synthetic_run(), ["picky"])
    assert result.error == "table item: column 'genre' is empty; annotate it first"


# ---------------------------------------------------------------------------- slow: the real thing
def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kwargs)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_scaffolded_package_installs_lists_analyzes_and_passes_its_own_tests(tmp_path, fresh_plugins):
    """Scaffold, pip install into this venv, `embedlab plugins`, `embedlab analyze`, its tests.

    `embedlab plugins` and the generated tests run in fresh processes, side by side; `embedlab
    analyze` runs in this process on a plugin manager rebuilt after the install (it discovers
    the installed distribution exactly as a fresh process does) to save one more torch start.
    """
    import importlib

    from embedlab.plugins import reset_plugin_manager

    t0 = time.perf_counter()
    name, dist = "scaffoldcheck", "embedlab-scaffoldcheck"
    module = "embedlab_scaffoldcheck"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(pip + ["uninstall", "-y", "-q", dist], capture_output=True)  # a leftover of a killed run
    pkg = scaffold(name, tmp_path)
    run_dir = synthetic_run_dir()
    env = {k: v for k, v in os.environ.items() if k not in ("EMBEDLAB_LOAD_PLUGINS", "PYTHONPATH")}
    commands = {
        "plugins": ([Path(sys.executable).parent / "embedlab", "plugins", "--json"], ROOT),
        "pytest": (
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"],
            pkg,
        ),
    }
    procs = {}
    try:
        _run(pip + ["install", "-q", "--no-deps", "--no-build-isolation", pkg], env=env, timeout=180)
        procs = {
            key: subprocess.Popen(
                [str(c) for c in cmd], cwd=cwd, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            for key, (cmd, cwd) in commands.items()
        }

        importlib.invalidate_caches()
        reset_plugin_manager()
        report = tmp_path / "r.html"
        analyzed = invoke(["analyze", run_dir, "--only", f"{name},pca", "--report", report, "--json"])
        assert analyzed.exit_code == 0, analyzed.output
        assert sys.modules[module].__file__.startswith(sys.prefix)  # the installed copy
        results = {(r["analysis"], r["table"]): r for r in json.loads(analyzed.stdout)["results"]}
        assert results[(name, "item")]["error"] is None
        assert results[(name, "item")]["metrics"]["separation"] > 0.05
        assert (name, "user") not in results  # applies_to: users have no categories
        assert results[("pca", "item")]["error"] is None  # the other analyses run as usual
        html_text = report.read_text()
        assert f'id="{name}-item"' in html_text and "Scaffoldcheck: category separation" in html_text

        out = {}
        for key, proc in procs.items():
            stdout, stderr = proc.communicate(timeout=300)
            assert proc.returncode == 0, f"{key}\n{stdout[-3000:]}\n{stderr[-3000:]}"
            out[key] = stdout
        [info] = [i for i in json.loads(out["plugins"]) if i["name"] == name]
        assert (info["distribution"], info["version"], info["hooks"]) == (dist, "0.1.0", ["embedlab_register_analyses"])
        assert "4 passed" in out["pytest"]
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        subprocess.run(pip + ["uninstall", "-y", "-q", dist], capture_output=True, timeout=180)
        sys.modules.pop(module, None)
        importlib.invalidate_caches()
    shown = subprocess.run(pip + ["show", dist], capture_output=True, text=True)
    assert shown.returncode != 0  # the venv is clean again
    print(f"scaffold round trip: {time.perf_counter() - t0:.0f} s")


@pytest.mark.slow
def test_built_wheel_contains_the_templates_and_the_guide(embedlab_wheel):
    """`embedlab plugins new` and `embedlab plugins guide` work from an installed wheel
    (tests/test_packaging.py checks the rest of the wheel; the wheel is the session's one)."""
    names = set(zipfile.ZipFile(embedlab_wheel).namelist())
    templates = {f"embedlab/authoring/templates/plugin/{rel}" for rel, _ in template_files()}
    assert templates <= names
    assert {
        "embedlab/authoring/testing.py",
        "embedlab/authoring/scaffold.py",
        "embedlab/authoring/guide.md",
        "embedlab/authoring/guide.py",
    } <= names
