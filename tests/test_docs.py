"""The shipped plugin guide (embedlab/authoring/guide.md; docs/plugins.md points to it) stays the whole plugin contract (datasette's documentation meta-tests).

Every hook in embedlab/hookspecs.py and every public type has its own section, every field and
public member of a type is named in that section, no section documents a hook that does not
exist, the worked example runs as printed and finds the planted truth, the other Python
snippets compile, and every ``embedlab ...`` command the guide shows exists.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import sys
import types
from pathlib import Path

import pytest

import embedlab
from embedlab import hookspecs, testing
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.data import Dataset, DatasetSpec
from embedlab.run import EmbeddingTable, Run
from embedlab.authoring.testing import invoke, plugin_registered, synthetic_run, synthetic_run_dir
from embedlab.trainers.base import Trainer

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "embedlab" / "authoring" / "guide.md"  # the guide ships with the package
TEXT = DOC.read_text(encoding="utf-8")

HOOKS = sorted(
    name
    for name, obj in vars(hookspecs).items()
    if name.startswith("embedlab_") and callable(obj) and hasattr(obj, "embedlab_spec")
)

PUBLIC_TYPES = {
    "Dataset": Dataset,
    "DatasetSpec": DatasetSpec,
    "Run": Run,
    "EmbeddingTable": EmbeddingTable,
    "Analysis": Analysis,
    "AnalysisOption": AnalysisOption,
    "AnalysisResult": AnalysisResult,
    "Trainer": Trainer,
    "hookimpl": embedlab.hookimpl,
}

# Members a type has that are not part of what a plugin author uses.
UNDOCUMENTED_OK = {"AnalysisOption": {"click_option"}, "AnalysisResult": set(), "Run": set()}


def sections() -> list[tuple[int, str, str]]:
    """(level, heading, body) for every markdown heading outside code blocks."""
    from embedlab.authoring.guide import guide_sections

    return guide_sections(TEXT)


def section(title_part: str) -> str:
    found = [body for _, heading, body in sections() if title_part in heading]
    assert len(found) == 1, f"expected one section whose heading contains {title_part!r}, got {len(found)}"
    return found[0]


def code_blocks(lang: str, text: str = TEXT) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def public_members(cls: type) -> set[str]:
    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    names |= set(getattr(cls, "__annotations__", {}))
    names |= {n for n, _ in inspect.getmembers(cls) if not n.startswith("_")}
    if cls is Run:
        names |= {"meta", "path"}  # instance attributes set in __init__
    return names - UNDOCUMENTED_OK.get(cls.__name__, set())


# ---------------------------------------------------------------------------- the hooks
def test_there_are_hooks_to_document():
    assert {
        "embedlab_register_datasets",
        "embedlab_register_trainers",
        "embedlab_register_analyses",
        "embedlab_register_commands",
    } <= set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_saying_what_you_receive_and_register(hook):
    params = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    body = section(f"`{hook}(")
    heading = next(h for _, h, _ in sections() if f"`{hook}(" in h)
    assert heading == f"`{hook}({', '.join(params)})`"
    for part in ("**You receive**", "**You register**", "**When**", "**Errors**"):
        assert part in body, (hook, part)
    for param in params:
        assert f"`{param}`" in body


def test_no_section_documents_a_hook_that_does_not_exist():
    documented = {m.group(1) for _, heading, _ in sections() for m in [re.match(r"`(embedlab_\w+)\(", heading)] if m}
    assert documented == set(HOOKS), documented ^ set(HOOKS)


# ---------------------------------------------------------------------------- the types
@pytest.mark.parametrize("name", sorted(PUBLIC_TYPES))
def test_every_public_type_has_a_section_naming_each_member(name):
    body = section(f"`{name}`")
    obj = PUBLIC_TYPES[name]
    if not inspect.isclass(obj):
        return
    missing = [m for m in sorted(public_members(obj)) if not re.search(rf"`{re.escape(m)}[`(]", body)]
    assert not missing, f"{name}: members not documented in its section: {missing}"


def test_documented_import_paths_work():
    from embedlab import Dataset, DatasetSpec, EmbeddingTable, Run, hookimpl, load_run  # noqa: F401
    from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult  # noqa: F401
    from embedlab.errors import DataError, EmbedlabError, RunFormatError, UsageError  # noqa: F401
    from embedlab.trainers.base import Trainer, run_meta  # noqa: F401

    from embedlab import Analysis as A, DataError as D, Trainer as T  # noqa: F401 - the one namespace

    assert (A, D, T) == (Analysis, DataError, Trainer)
    assert "from embedlab import Analysis, AnalysisOption, AnalysisResult, EmbeddingTable, Run, hookimpl" in TEXT


def test_every_testing_helper_is_documented():
    body = section("Testing your plugin")
    for name in testing.__all__:
        assert f"`{name}" in body, name


def test_environment_variables_and_guarantees_are_documented():
    for needle in (
        "EMBEDLAB_LOAD_PLUGINS",
        "EMBEDLAB_TRACE_PLUGINS=1",
        "check_pending",
        "--help-analysis",
        "--strict",
        "weights_only=True",
        "SHA-256",
    ):
        assert needle in TEXT, needle


# ---------------------------------------------------------------------------- the examples
def worked_example_source() -> str:
    return "\n".join(code_blocks("python", section("A worked example")))


@pytest.fixture(scope="module")
def worked_example():
    module = types.ModuleType("embedlab_docs_worked_example")
    module.__file__ = str(DOC)
    sys.modules[module.__name__] = module  # dataclasses and pickling-free inspect need it
    try:
        exec(compile(worked_example_source(), f"{DOC}:worked-example", "exec"), module.__dict__)
        yield module
    finally:
        sys.modules.pop(module.__name__, None)


def test_worked_example_finds_the_planted_bias_and_not_the_shuffled_one(worked_example, tmp_path):
    with plugin_registered(worked_example):
        planted = embedlab.analyze(synthetic_run(), ["bias-agreement"], {"agreement_column": "true_bias"})
        control = embedlab.analyze(
            synthetic_run(shuffle_truth=True), ["bias-agreement"], {"agreement_column": "true_bias"}
        )
        default = embedlab.analyze(synthetic_run(), ["bias-agreement"])
    by = {r.table: r for r in planted}
    assert set(by) == {"user", "item"} and all(r.ok for r in planted), [r.error for r in planted]
    assert by["item"].metrics["spearman_rho"] > 0.7  # "about 0.9", as the guide says
    assert abs({r.table: r for r in control}["item"].metrics["spearman_rho"]) < 0.3  # "about 0"
    assert {r.table for r in default} == {"user", "item"}  # target_column: mean_rating
    assert len(by["item"].tables["bias above the annotation"]) == 10
    assert len(by["item"].figures) == 1  # render ran


def test_worked_example_on_the_command_line_matches_the_guide(worked_example, tmp_path):
    run_dir = synthetic_run_dir()
    report = tmp_path / "r.html"
    with plugin_registered(worked_example):
        described = invoke(["analyze", run_dir, "--help-analysis", "bias-agreement"])
        done = invoke(
            ["analyze", run_dir, "--only", "bias-agreement", "--agreement-min-count", "20", "--report", report]
        )
        too_strict = invoke(
            ["analyze", run_dir, "--only", "bias-agreement", "--agreement-min-count", "100000", "--json"]
        )
    assert done.exit_code == 0 and 'id="bias-agreement-item"' in report.read_text()
    [shown] = [b for b in code_blocks("text") if b.startswith("bias-agreement:")]
    doc_options = [l.split("  ")[1] for l in shown.splitlines() if l.startswith("  --")]
    real_options = [l.split("  ")[1] for l in described.output.splitlines() if l.startswith("  --")]
    assert doc_options == real_options  # flag and type, as printed in the guide
    assert '"error": "ValueError: only 0 entities left; lower --agreement-min-count"' in too_strict.stdout


def test_other_python_snippets_compile():
    worked = set(code_blocks("python", section("A worked example")))
    others = [b for b in code_blocks("python") if b not in worked]
    assert len(others) >= 3
    for block in others:
        compile(block, str(DOC), "exec")


def test_every_command_the_guide_shows_exists():
    from embedlab.cli import make_cli

    cli = make_cli()
    shown = [
        l.split("#")[0].strip()
        for block in code_blocks("bash")
        for l in block.splitlines()
        if l.strip().startswith("embedlab ")
    ]
    assert len(shown) >= 6
    own = set(re.findall(r'@cli\.command\("([\w-]+)"\)', TEXT))  # commands the guide's examples add
    for line in shown:
        words = line.split()
        if words[1] in own:
            continue
        cmd = cli.get_command(None, words[1]) if not words[1].startswith("-") else None
        assert cmd is not None or words[1] == "--help", line
        if words[1] == "plugins" and len(words) > 2 and not words[2].startswith("-"):
            assert words[2] in cmd.commands, line


# ---------------------------------------------------------------------------- the toolkit and dataset helpers
PUBLIC_MODULES = {  # module -> the guide section that documents its public names (__all__)
    "embedlab.toolkit.selection": "`embedlab.toolkit.selection`",
    "embedlab.toolkit.stats": "`embedlab.toolkit.stats`",
    "embedlab.toolkit.projection": "`embedlab.toolkit.projection`",
    "embedlab.toolkit.plotting": "`embedlab.toolkit.plotting`",
    "embedlab.toolkit.options": "`embedlab.toolkit.options`",
    "embedlab.toolkit.retrain": "`embedlab.toolkit.retrain`",
    "embedlab.data": "`embedlab.data`",
}
for _path in sorted((ROOT / "embedlab" / "toolkit").glob("[!_]*.py")):  # a toolkit module that declares
    if "__all__" in _path.read_text(encoding="utf-8"):  # __all__ is public: documented here
        PUBLIC_MODULES.setdefault(f"embedlab.toolkit.{_path.stem}", f"`embedlab.toolkit.{_path.stem}`")


def _guide_section(topic: str) -> str:
    from embedlab.authoring.guide import guide_section

    return guide_section(topic, TEXT)


@pytest.mark.parametrize("module", sorted(PUBLIC_MODULES))
def test_every_public_name_is_documented_with_an_example(module):
    """A name in the module's __all__ that the guide's section does not name, in its text and
    in one of its code examples, fails here: document it, or take it out of __all__."""
    import importlib

    mod = importlib.import_module(module)
    public = list(getattr(mod, "__all__", []))
    assert public, f"{module} declares no __all__ (its public surface)"
    body = _guide_section(PUBLIC_MODULES[module])
    examples = "\n".join(code_blocks("python", body))
    undocumented = [n for n in public if f"`{n}" not in body and f" {n}`" not in body and f"`{n}(" not in body]
    without_example = [n for n in public if not re.search(rf"\b{re.escape(n)}\b", examples)]
    assert not undocumented, f"{module}: public names the guide does not document: {undocumented}"
    assert not without_example, f"{module}: public names without an example in the guide: {without_example}"
    for name in public:
        assert hasattr(mod, name), f"{module}.__all__ names {name!r}, which does not exist"


def test_toolkit_examples_run_as_printed():
    """The toolkit section's code blocks run, in order, in one namespace (the first makes
    `run` from embedlab.testing); blocks that say `# slow:` (UMAP) are compiled only."""
    blocks = code_blocks("python", _guide_section("The toolkit"))
    assert len(blocks) >= 6
    namespace: dict = {"__name__": "embedlab_docs_toolkit"}
    for n, block in enumerate(blocks):
        code = compile(block, f"{DOC}:toolkit-example-{n}", "exec")
        if not block.startswith("# slow:"):
            exec(code, namespace)
    assert len(namespace["figures"]) == 4 and namespace["again"].table("item").dim == 8


def test_the_dataset_and_command_example_runs_as_printed(tmp_path):
    blocks = code_blocks("python", _guide_section("A dataset and a command"))
    module = types.ModuleType("embedlab_docs_shop")
    sys.modules[module.__name__] = module
    try:
        for n, block in enumerate(blocks):  # each block on its own (the loader's has `from __future__`)
            exec(compile(block, f"{DOC}:shop-example-{n}", "exec"), module.__dict__)
        rng = __import__("numpy").random.default_rng(0)
        rows = ["customer,sku,stars,timestamp"] + [
            f"{rng.integers(1, 30)},{rng.integers(100, 120)},{rng.integers(1, 6)},{1_600_000_000 + n}"
            for n in range(1500)
        ]
        (tmp_path / "orders.csv").write_text("\n".join(rows) + "\n")
        (tmp_path / "products.csv").write_text(
            "sku,name,category\n" + "".join(f"{s},Product {s},{'ab'[s % 2]}\n" for s in range(100, 120))
        )
        with plugin_registered(module):
            helped = invoke(["train", "shop-ratings", "--help"])
            trained = invoke(
                [
                    "train",
                    "shop-ratings",
                    "--file",
                    tmp_path / "orders.csv",
                    "--products",
                    tmp_path / "products.csv",
                    "--split",
                    "time",
                    "--epochs",
                    "2",
                    "--bs",
                    "64",
                    "--out",
                    tmp_path / "run",
                    "-q",
                ]
            )
            top = invoke(["shop-top", tmp_path / "run", "--n", "3"])
            broken = invoke(["train", "shop-ratings", "--file", tmp_path / "products.csv", "--out", tmp_path / "bad"])
    finally:
        sys.modules.pop(module.__name__, None)
    assert "--split [random|time]" in helped.output and "--valid-pct" in helped.output
    assert trained.exit_code == 0, trained.output
    run = embedlab.load_run(tmp_path / "run")
    assert run.split["name"] == "time"
    item = run.table("item")
    assert item.labels[list(item.keys).index(101)] == "Product 101" and item.attrs["color_column"] == "category"
    assert run.table("user").labels[0].startswith("customer ") and "orders" in run.table("user").metadata
    assert top.exit_code == 0 and len(top.stdout.splitlines()) == 3 and "Product" in top.stdout
    assert broken.exit_code != 0 and "column 'customer' not found" in broken.output


def test_every_name_of_the_public_namespace_is_documented():
    body = section("The `embedlab` namespace")
    missing = [n for n in embedlab.__all__ if f"`{n}`" not in body]
    assert not missing, f"names in embedlab.__all__ the guide's namespace section does not name: {missing}"
    for name in embedlab.__all__:
        assert hasattr(embedlab, name), name
    namespace: dict = {}
    for block in code_blocks("python", body):
        exec(compile(block, f"{DOC}:namespace", "exec"), namespace)


# ---------------------------------------------------------------------------- the worked trainer
@pytest.fixture(scope="module")
def worked_trainer():
    blocks = code_blocks("python", _guide_section("A worked trainer"))
    module = types.ModuleType("embedlab_docs_plain_mf")
    module.__file__ = str(DOC)
    sys.modules[module.__name__] = module
    try:
        exec(compile(blocks[0], f"{DOC}:trainer-example", "exec"), module.__dict__)
        yield module, blocks[1]
    finally:
        sys.modules.pop(module.__name__, None)


def test_the_worked_trainer_runs_as_printed_and_keeps_the_contract(worked_trainer, tmp_path):
    module, test_block = worked_trainer
    namespace: dict = {}
    exec(compile(test_block, f"{DOC}:trainer-test", "exec"), namespace)
    namespace["test_plain_mf_keeps_the_trainer_contract"](module)  # the guide's own test, as printed
    small = ["--users", "40", "--items", "30", "--ratings", "800", "-q"]
    with plugin_registered(module):
        assert "(installed: collab, plain-mf)" in " ".join(
            invoke(["train", "synthetic-collab", "--help"]).output.split()
        )
        helped = invoke(["train", "synthetic-collab", "--trainer", "plain-mf", "--help"]).output
        assert "--n-factors" in helped and "--init-from" in helped and "--y-range" not in helped
        found = invoke(["lr-find", "synthetic-collab", "--trainer", "plain-mf", *small])
        assert found.exit_code == 0, found.output
        base = tmp_path / "base"
        assert (
            invoke(
                ["train", "synthetic-collab", "--n-factors", "16", "--epochs", "2", "--bs", "64", "--out", base, *small]
            ).exit_code
            == 0
        )
        assert embedlab.load_run(base).meta["trainer"] == "collab"  # installing plain-mf changed no default
        started = invoke(
            [
                "train",
                "synthetic-collab",
                "--trainer",
                "plain-mf",
                "--init-from",
                base,
                "--epochs",
                "1",
                "--bs",
                "64",
                "--out",
                tmp_path / "init",
                *small,
            ]
        )
        assert started.exit_code == 0, started.output
        assert embedlab.load_run(tmp_path / "init").meta["init"]["tables"]["item"]["coverage"] == 1.0
