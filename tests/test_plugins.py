"""The plugin spine: hook meta-tests, a temporary plugin end to end, conflicts, loading rules.

Every hook in embedlab.hookspecs must have a ``test_hook_<name>`` here (checked below, in the
style of datasette's test_plugins.py) and a docstring that teaches: what is passed, what to
register, and an example that compiles.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import inspect
import json
import sys
import textwrap
import uuid
import warnings
from pathlib import Path

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedlab
from embedlab import hookimpl, hookspecs
from embedlab.analysis import AnalysisOption, AnalysisResult
from embedlab.data import Dataset, DatasetSpec, random_split
from embedlab.errors import EmbedlabError
from embedlab.plugins import get_plugin_manager, plugin_infos, register_plugin, reset_plugin_manager
from embedlab.registry import PluginConflictError
from embedlab.run import EmbeddingTable, Run
from embedlab.trainers.base import run_meta

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(
    name
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
    if getattr(fn, "embedlab_spec", None) is not None
)


# ============================================================================ meta-tests


def test_hookspecs_are_found():
    assert HOOKS == sorted(h for h in dir(get_plugin_manager().hook) if h.startswith("embedlab_"))
    assert len(HOOKS) >= 4


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test(hook):
    assert callable(globals().get(f"test_hook_{hook}")), f"write test_hook_{hook} in {__file__}"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_an_example(hook):
    fn = getattr(hookspecs, hook)
    doc = inspect.getdoc(fn) or ""
    sig = inspect.signature(fn)
    assert len(doc.splitlines()[0]) > 20, "a one-line summary first"
    for param in sig.parameters.values():
        assert f":param {param.name}:" in doc, f"{hook}: document parameter {param.name!r}"
        assert param.annotation is not inspect.Parameter.empty, f"{hook}: annotate {param.name!r}"
    assert sig.return_annotation is not inspect.Signature.empty
    assert "Example::" in doc
    example = textwrap.dedent(doc.split("Example::", 1)[1]).strip("\n")
    assert "@hookimpl" in example and f"def {hook}(" in example
    compile(example, f"<{hook} docstring example>", "exec")  # the example is valid Python


def test_builtins_come_from_the_package_list_not_entry_points():
    """Built-ins load from BUILTIN_PLUGINS (module paths inside the package: a checkout sees a new
    one without reinstalling), through the same hooks as third parties; setup.cfg declares none."""
    from embedlab.plugins import BUILTIN_PLUGINS

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "embedlab" not in cfg["options.entry_points"], "built-ins belong in embedlab.plugins.BUILTIN_PLUGINS"
    infos = {i.name: i for i in plugin_infos(include_builtins=True)}
    assert set(BUILTIN_PLUGINS) <= set(infos), f"not loaded: {sorted(set(BUILTIN_PLUGINS) - set(infos))}"
    for name, module in BUILTIN_PLUGINS.items():
        assert infos[name].builtin and infos[name].distribution == "embedlab" and infos[name].module == module
        assert infos[name].version == embedlab.__version__
        assert infos[name].hooks, f"built-in plugin {name!r} implements no hook"
    assert {i.name for i in infos.values() if i.builtin} == set(BUILTIN_PLUGINS)


def test_disable_plugins_switches_off_builtins_and_third_parties_by_name(fake_site, monkeypatch):
    monkeypatch.delenv("EMBEDLAB_LOAD_PLUGINS", raising=False)
    monkeypatch.setenv("EMBEDLAB_DISABLE_PLUGINS", "tsne, embedlab_fake,EMBEDLAB-BROKEN")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the broken plugin is not even imported
        names = _loaded_names()
    assert "tsne" not in names and "embedlab-fake" not in names and {"pca", "movielens"} <= names
    assert "tsne" not in embedlab.registry.analyses() and "pca" in embedlab.registry.analyses()
    assert "fake-data" not in embedlab.registry.datasets()
    from embedlab.plugins import disabled_plugins

    assert disabled_plugins() == ["embedlab-broken", "embedlab-fake", "tsne"]
    listed = _invoke(["plugins", "--all"])
    assert (
        listed.exit_code == 0
        and "disabled by EMBEDLAB_DISABLE_PLUGINS: embedlab-broken, embedlab-fake, tsne" in listed.output
    )
    reset_plugin_manager()
    monkeypatch.delenv("EMBEDLAB_DISABLE_PLUGINS")
    monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", "embedlab-fake")
    assert {"tsne", "embedlab-fake"} <= _loaded_names()


def test_core_never_imports_a_builtin_plugin_by_name():
    for path in sorted((ROOT / "embedlab").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and node.level == 0
                else []
            )
            for name in names:
                top = name.split(".")[0]
                assert top not in ("embedlab_plugins", "embedlab_datasets", "plugins", "datasets"), (
                    f"{path.relative_to(ROOT)} imports {name}"
                )


# ============================================================================ a temporary plugin

TINY_ITEMS = 15


def _tiny_load(n: int = 400, seed: int = 42, **_) -> Dataset:
    rng = np.random.default_rng(seed)
    users = rng.integers(1, 21, n)
    items = rng.integers(1, TINY_ITEMS + 1, n)
    ratings = np.clip((users % 3) + (items % 3) + 1 + rng.normal(0, 0.3, n), 1, 5).astype(np.float32)
    frame = pd.DataFrame({"user": users, "item": items, "rating": ratings})
    train, valid = random_split(frame, 0.2, seed)
    meta = pd.DataFrame(
        {
            "label": [f"thing <i>{k}</i>" for k in range(1, TINY_ITEMS + 1)],
            "shade": ["dark" if k % 2 else "light" for k in range(1, TINY_ITEMS + 1)],
        },
        index=pd.Index(np.arange(1, TINY_ITEMS + 1), name="item"),
    )
    return Dataset(
        "tmp-ratings",
        "collab",
        train,
        valid,
        roles={"user": "user", "item": "item", "rating": "rating"},
        entities={"item": meta},
        split={"name": "random", "valid_pct": 0.2, "seed": seed},
        rating_range=(1.0, 5.0),
    )


class NormAnalysis:
    name = "tmp-norms"
    title = "Vector norms (test plugin)"
    description = "Largest embedding norms."
    options = [AnalysisOption("tmp_top", int, 3, "How many of the largest norms to list.")]

    def applies_to(self, run):
        return list(run.table_names)

    def run(self, run, table, options):
        t = run.table(table)
        norms = np.linalg.norm(t.vectors, axis=1)
        order = np.argsort(-norms)[: options["tmp_top"]]
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=f"{table}: mean norm {norms.mean():.4f}",
            metrics={"mean_norm": float(norms.mean())},
            tables={"largest": pd.DataFrame({"label": t.labels[order], "norm": norms[order]})},
            data={"norms": norms},
        )

    def render(self, result):
        from embedlab.toolkit.plotting import line_chart

        n = np.sort(result.data["norms"])
        return [line_chart({"norm": (np.arange(len(n)), n)}, f"norms: {result.table}", "rank", "norm")]


class ToyTrainer:
    """A trainer for a dataset kind no built-in trains: vector = (key, key^2) * --scale."""

    name = "tmp-toy-trainer"
    kind = "tmp-toy"
    options = [click.Option(["--scale"], type=float, default=1.0, show_default=True, help="Multiply the toy vectors.")]

    def train(self, ds, config, progress=True):
        config = {"scale": 1.0, **{k: v for k, v in config.items() if v is not None}}
        keys = np.sort(ds.train["thing"].unique())
        vectors = np.stack([keys, keys**2], axis=1).astype(np.float32) * config["scale"]
        table = EmbeddingTable("thing", keys, [f"t{k}" for k in keys], vectors, bias_values=-keys)
        meta = run_meta(ds, self, config, 0, {"valid_mse": 0.0}, [{"epoch": 1, "train_loss": 0.0}])
        return Run(meta, {"thing": table}, {})

    def lr_find(self, ds, config, progress=True):  # pragma: no cover - not used
        raise NotImplementedError


class TmpPlugin:
    """Adds a dataset, a trainer, an analysis and a command."""

    @hookimpl
    def embedlab_register_datasets(self, register):
        register(
            DatasetSpec(
                "tmp-ratings",
                "collab",
                "Tiny ratings from the test plugin",
                _tiny_load,
                [click.Option(["--n"], type=int, default=400, help="Number of ratings.")],
            )
        )
        register(
            DatasetSpec(
                "tmp-toy",
                "tmp-toy",
                "Toy rows for the toy trainer",
                lambda count=3, **_: Dataset(
                    "tmp-toy",
                    "tmp-toy",
                    pd.DataFrame({"thing": np.arange(1, count + 1)}),
                    None,
                    roles={},
                    split={"name": "all"},
                ),
                [click.Option(["--count"], type=int, default=3, help="Number of things.")],
            )
        )

    @hookimpl
    def embedlab_register_trainers(self, register):
        register(ToyTrainer())

    @hookimpl
    def embedlab_register_analyses(self, register):
        register(NormAnalysis())

    @hookimpl
    def embedlab_register_commands(self, cli):
        @cli.command("tmp-norms")
        @click.argument("run_dir", type=click.Path(path_type=Path))
        def tmp_norms(run_dir):
            """Print the mean vector norm of each table of a run."""
            run = embedlab.load_run(run_dir)
            for name in run.table_names:
                click.echo(f"{name} {np.linalg.norm(run.table(name).vectors, axis=1).mean():.6f}")


@pytest.fixture
def tmp_plugin():
    name = register_plugin(TmpPlugin(), name="tmp-plugin")
    try:
        yield name
    finally:
        get_plugin_manager().unregister(name=name)


def _invoke(args, **kwargs):
    from embedlab.cli import make_cli

    result = CliRunner().invoke(make_cli(), args, **kwargs)
    return result


def _clean_error(result, code: int | tuple[int, ...] = (1, 2)) -> str:
    """The result failed with a one-line ``Error:`` message and no traceback; returns it."""
    codes = (code,) if isinstance(code, int) else code
    assert result.exit_code in codes, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_hook_embedlab_register_datasets(tmp_plugin, tmp_path):
    from embedlab.registry import datasets

    assert "tmp-ratings" in datasets() and "movielens-100k" in datasets()
    listing = _invoke(["datasets", "list", "--json"])
    assert listing.exit_code == 0
    assert {"name": "tmp-ratings", "kind": "collab", "description": "Tiny ratings from the test plugin"} in json.loads(
        listing.stdout
    )
    help_text = _invoke(["train", "tmp-ratings", "--help"]).output
    assert "--n INTEGER" in help_text and "--epochs" in help_text  # dataset + trainer options
    out = tmp_path / "run"
    result = _invoke(["train", "tmp-ratings", "--n", "300", "--epochs", "2", "--bs", "64", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    run = embedlab.load_run(out)
    assert printed["metrics"]["valid_rmse"] == pytest.approx(run.metrics["valid_rmse"])
    assert run.dataset == "tmp-ratings" and run.config["epochs"] == 2
    item = run.table("item")
    assert len(item) == TINY_ITEMS and item.labels[0] == "thing <i>1</i>"
    assert item.metadata["shade"].tolist()[:2] == ["dark", "light"]


def test_hook_embedlab_register_trainers(tmp_plugin, tmp_path):
    from embedlab.registry import trainer_for, trainers

    assert isinstance(trainers()["tmp-toy-trainer"].impl, ToyTrainer)
    assert trainer_for("tmp-toy").name == "tmp-toy-trainer"
    assert trainer_for("collab").name == "collab"
    assert "--scale FLOAT" in _invoke(["train", "tmp-toy", "--help"]).output
    result = _invoke(["train", "tmp-toy", "--count", "4", "--scale", "2", "--out", str(tmp_path / "toy"), "-q"])
    assert result.exit_code == 0, result.output
    table = embedlab.load_run(tmp_path / "toy").table("thing")
    np.testing.assert_array_equal(table.vectors, [[2, 2], [4, 8], [6, 18], [8, 32]])
    assert table.bias["t3"] == -3
    assert embedlab.load_run(tmp_path / "toy").meta["trainer"] == "tmp-toy-trainer"


def test_hook_embedlab_register_analyses(tmp_plugin, synthetic_run, tmp_path):
    from embedlab.registry import analyses

    assert "tmp-norms" in analyses()
    report = tmp_path / "report.html"
    result = _invoke(
        ["analyze", str(synthetic_run), "--only", "tmp-norms", "--tmp-top", "2", "--json", "--report", str(report)]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    by_table = {r["table"]: r for r in payload["results"] if r["analysis"] == "tmp-norms"}
    run = embedlab.load_run(synthetic_run)
    assert set(by_table) == set(run.table_names)
    for name, r in by_table.items():
        norms = np.linalg.norm(run.table(name).vectors, axis=1)
        assert r["error"] is None
        assert r["metrics"]["mean_norm"] == pytest.approx(norms.mean(), rel=1e-6)
        assert [row["norm"] for row in r["tables"]["largest"]] == pytest.approx(np.sort(norms)[::-1][:2], rel=1e-6)
    html = report.read_text(encoding="utf-8")
    assert "Vector norms (test plugin)" in html and "mean norm" in html
    assert html.count('class="bk-root"') + html.count("data-root-id") >= 2  # one figure per table
    assert "https://cdn.bokeh.org" not in html  # BokehJS inlined: works offline
    assert "Vector norms (test plugin)" in _invoke(["analyze", "--help-analysis", "tmp-norms"]).output


def test_hook_embedlab_register_commands(tmp_plugin, synthetic_run):
    result = _invoke(["tmp-norms", str(synthetic_run)])
    assert result.exit_code == 0, result.output
    run = embedlab.load_run(synthetic_run)
    printed = dict(line.split() for line in result.output.splitlines())
    for name in run.table_names:
        assert float(printed[name]) == pytest.approx(np.linalg.norm(run.table(name).vectors, axis=1).mean(), abs=1e-5)
    assert "tmp-norms" in _invoke(["--help"]).output


def test_temporary_plugin_end_to_end_then_gone(synthetic_run, tmp_path):
    """Registered: its dataset, analysis and command work through the CLI and the report.
    Unregistered (finally): a fresh CLI no longer knows any of them."""
    name = register_plugin(TmpPlugin(), name="tmp-e2e")
    try:
        out, report = tmp_path / "run", tmp_path / "r.html"
        assert (
            _invoke(
                ["train", "tmp-ratings", "--n", "200", "--epochs", "1", "--bs", "32", "--out", str(out), "-q"]
            ).exit_code
            == 0
        )
        analyzed = _invoke(["analyze", str(out), "--only", "tmp-norms", "--report", str(report)])
        assert analyzed.exit_code == 0, analyzed.output
        html = report.read_text(encoding="utf-8")
        assert "thing &lt;i&gt;" in html and "thing <i>" not in html  # data labels are escaped
        assert _invoke(["tmp-norms", str(out)]).exit_code == 0
        listed = json.loads(_invoke(["plugins", "--json"]).stdout)
        mine = [p for p in listed if p["name"] == "tmp-e2e"]
        assert mine and mine[0]["hooks"] == HOOKS
    finally:
        get_plugin_manager().unregister(name=name)
    from embedlab.registry import analyses, datasets

    assert "tmp-ratings" not in datasets() and "tmp-norms" not in analyses()
    gone = _invoke(["tmp-norms", str(out)])
    assert gone.exit_code == 2 and "No such command 'tmp-norms'" in gone.output
    assert "unknown dataset 'tmp-ratings'" in _clean_error(_invoke(["train", "tmp-ratings", "--out", "x"]), 2)


def test_plugin_command_cannot_replace_an_existing_command():
    class Clash:
        @hookimpl
        def embedlab_register_commands(self, cli):
            cli.add_command(click.Command("train", callback=lambda: None))

    name = register_plugin(Clash(), name="tmp-clash")
    try:
        assert "command 'train', which already exists" in _clean_error(_invoke(["datasets", "list"]), 1)
    finally:
        get_plugin_manager().unregister(name=name)


# ============================================================================ conflicts


def _plugin_registering(hook: str, obj_factory):
    class P:
        pass

    def impl(self, register):
        register(obj_factory())

    impl.__name__ = hook
    setattr(P, hook, hookimpl(impl))
    return P()


def _spec(name="tmp-dup"):
    return DatasetSpec(name, "collab", "dup", _tiny_load)


@pytest.mark.parametrize(
    "hook,factory,getter,what",
    [
        ("embedlab_register_datasets", _spec, "datasets", "dataset"),
        ("embedlab_register_analyses", NormAnalysis, "analyses", "analysis"),
        ("embedlab_register_trainers", ToyTrainer, "trainers", "trainer"),
    ],
)
def test_duplicate_name_is_an_error_naming_both_plugins(hook, factory, getter, what):
    from embedlab import registry

    a = register_plugin(_plugin_registering(hook, factory), name="plugin-alpha")
    b = register_plugin(_plugin_registering(hook, factory), name="plugin-beta")
    try:
        with pytest.raises(PluginConflictError) as info:
            getattr(registry, getter)()
        msg = str(info.value.message)
        assert f"{what} name" in msg and "'plugin-alpha'" in msg and "'plugin-beta'" in msg
    finally:
        get_plugin_manager().unregister(name=a)
        get_plugin_manager().unregister(name=b)
    getattr(registry, getter)()  # fine again


def test_duplicate_of_a_builtin_names_its_distribution():
    name = register_plugin(
        _plugin_registering("embedlab_register_datasets", lambda: _spec("movielens-100k")), name="my-movielens"
    )
    try:
        line = _clean_error(_invoke(["datasets", "list"]), 1)
        assert "'movielens-100k'" in line and "'my-movielens'" in line
        assert "'movielens' (distribution 'embedlab')" in line
    finally:
        get_plugin_manager().unregister(name=name)


def test_registered_object_missing_attributes_is_named():
    name = register_plugin(_plugin_registering("embedlab_register_analyses", object), name="tmp-half")
    try:
        with pytest.raises(EmbedlabError, match=r"'tmp-half' registered a analysis without name, title"):
            embedlab.registry.analyses()
    finally:
        get_plugin_manager().unregister(name=name)


# ============================================================================ loading rules


def _fake_distribution(root: Path, dist: str, source: str, version: str = "1.2.3", ep_name: str | None = None) -> str:
    """A pip-installed-looking distribution under ``root`` with one ``embedlab`` entry point."""
    module = f"{dist.replace('-', '_')}_{uuid.uuid4().hex[:8]}"
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[embedlab]\n{ep_name or dist} = {module}\n")
    return module


FAKE_SOURCE = """
    import click
    from embedlab import hookimpl
    from embedlab.data import DatasetSpec

    @hookimpl
    def embedlab_register_datasets(register):
        register(DatasetSpec("fake-data", "collab", "from a fake distribution", lambda **_: None))
"""


@pytest.fixture
def fake_site(tmp_path, monkeypatch, fresh_plugins):
    """A folder on sys.path holding distributions embedlab-fake (good) and embedlab-broken."""
    site = tmp_path / "site"
    site.mkdir()
    modules = [
        _fake_distribution(site, "embedlab-fake", FAKE_SOURCE),
        _fake_distribution(site, "embedlab-broken", "import no_such_module_xyz\n", version="0.1"),
    ]
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    for m in modules:
        sys.modules.pop(m, None)


def _loaded_names() -> set[str]:
    return {name for name, _ in get_plugin_manager().list_name_plugin()}


def test_load_plugins_unset_loads_all_and_skips_a_broken_one_with_a_warning(fake_site, monkeypatch):
    monkeypatch.delenv("EMBEDLAB_LOAD_PLUGINS", raising=False)
    with pytest.warns(
        UserWarning,
        match=r"plugin 'embedlab-broken' from distribution 'embedlab-broken' "
        r"failed to import.*no_such_module_xyz",
    ):
        names = _loaded_names()
    assert {"embedlab-fake", "movielens", "collab-trainer"} <= names
    assert "embedlab-broken" not in names
    assert "fake-data" in embedlab.registry.datasets()


def test_load_plugins_empty_means_builtins_only(fake_site, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", "")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the broken plugin is not even imported
        names = _loaded_names()
    assert "embedlab-fake" not in names and {"movielens", "collab-trainer"} <= names
    assert all(i.builtin for i in plugin_infos())
    assert "fake-data" not in embedlab.registry.datasets()


@pytest.mark.parametrize("value", ["embedlab-fake", "embedlab_fake, other-thing", " EMBEDLAB-FAKE ,"])
def test_load_plugins_list_means_builtins_plus_those(fake_site, monkeypatch, value):
    monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        names = _loaded_names()
    assert {"embedlab-fake", "movielens", "synthetic-collab"} <= names
    assert "embedlab-broken" not in names


def test_plugins_command_lists_name_version_and_hooks(fake_site, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", "embedlab-fake")
    result = _invoke(["plugins", "--all", "--json"])
    assert result.exit_code == 0, result.output
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    assert listed["embedlab-fake"]["version"] == "1.2.3"
    assert listed["embedlab-fake"]["distribution"] == "embedlab-fake"
    assert listed["embedlab-fake"]["hooks"] == ["embedlab_register_datasets"]
    assert listed["embedlab-fake"]["builtin"] is False
    assert listed["movielens"] == {
        **listed["movielens"],
        "version": embedlab.__version__,
        "builtin": True,
        "hooks": ["embedlab_register_datasets"],
        "distribution": "embedlab",
    }
    assert listed["collab-trainer"]["hooks"] == ["embedlab_register_trainers"]
    assert list(listed) == sorted(listed)
    third_party = json.loads(_invoke(["plugins", "--json"]).stdout)
    assert [p["name"] for p in third_party] == ["embedlab-fake"]
    table = _invoke(["plugins"])
    assert table.exit_code == 0 and "embedlab-fake" in table.output and "1.2.3" in table.output


def test_plugins_command_without_third_party_plugins(fresh_plugins, monkeypatch):
    monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", "")
    result = _invoke(["plugins"])
    assert result.exit_code == 0 and "no third-party plugins installed" in result.output
    assert json.loads(_invoke(["plugins", "--json"]).stdout) == []


def test_check_pending_catches_a_misspelled_hook_registered_by_hand():
    class Typo:
        @hookimpl
        def embedlab_register_dataset(self, register):  # missing the final "s"
            pass

    with pytest.raises(EmbedlabError, match=r"plugin 'tmp-typo'.*unknown hook 'embedlab_register_dataset'"):
        register_plugin(Typo(), name="tmp-typo")
    assert get_plugin_manager().get_plugin("tmp-typo") is None  # not left half-registered
    assert "movielens-100k" in embedlab.registry.datasets()


def test_check_pending_catches_a_misspelled_hook_in_an_installed_plugin(tmp_path, monkeypatch, fresh_plugins):
    site = tmp_path / "site"
    site.mkdir()
    module = _fake_distribution(
        site,
        "embedlab-typo",
        """
        from embedlab import hookimpl

        @hookimpl
        def embedlab_register_analysis(register):
            pass
    """,
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    try:
        monkeypatch.delenv("EMBEDLAB_LOAD_PLUGINS", raising=False)
        line = _clean_error(_invoke(["datasets", "list"]), 1)
        assert "'embedlab-typo'" in line and "unknown hook 'embedlab_register_analysis'" in line
        assert "EMBEDLAB_LOAD_PLUGINS" in line
        reset_plugin_manager()
        monkeypatch.setenv("EMBEDLAB_LOAD_PLUGINS", "")  # the way out the message names
        assert _invoke(["datasets", "list", "--json"]).exit_code == 0
    finally:
        sys.modules.pop(module, None)


def test_hook_with_wrong_arguments_in_an_installed_plugin_is_a_clean_error(tmp_path, monkeypatch, fresh_plugins):
    site = tmp_path / "site"
    site.mkdir()
    module = _fake_distribution(
        site,
        "embedlab-wrongargs",
        """
        from embedlab import hookimpl

        @hookimpl
        def embedlab_register_datasets(reg):
            pass
    """,
    )
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    monkeypatch.delenv("EMBEDLAB_LOAD_PLUGINS", raising=False)
    try:
        line = _clean_error(_invoke(["plugins"]), 1)
        assert "'embedlab-wrongargs'" in line and "reg" in line
    finally:
        sys.modules.pop(module, None)


def test_trace_logs_hook_calls(fresh_plugins, monkeypatch, capsys):
    monkeypatch.setenv("EMBEDLAB_TRACE_PLUGINS", "1")
    embedlab.registry.datasets()
    get_plugin_manager().hook.embedlab_register_commands(cli=click.Group())
    err = capsys.readouterr().err
    assert "[embedlab trace] embedlab_register_commands ->" in err
    assert "[embedlab trace] embedlab_register_datasets -> " in err and "movielens [movielens-100k" in err
