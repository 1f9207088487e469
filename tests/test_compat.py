"""The compatibility rule (docs/architecture.md, "Compatibility"): old forms keep working with a
one-line warning naming the new form (embedlab.deprecations); global options work before or
after the subcommand; --debug tracebacks are plain lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import embedlab
from embedlab import hookimpl
from embedlab.analysis import AnalysisOption, AnalysisResult
from embedlab.authoring.testing import invoke, plugin_registered, synthetic_run_dir
from embedlab.deprecations import DEPRECATIONS, EmbedlabDeprecationWarning

ROOT = Path(__file__).resolve().parents[1]


class Clusters:
    """A plugin's analysis with a boolean option, as its docs showed it: ``--clusters-normalize false``."""

    name = "clusters"
    title = "Clusters"
    options = [AnalysisOption("clusters_normalize", bool, True, "Normalise the vectors first.")]

    def __init__(self):
        self.seen: list[object] = []

    def applies_to(self, run, options):
        return ["item"]

    def run(self, run, table, options):
        self.seen.append(options["clusters_normalize"])
        return AnalysisResult(self.name, table, self.title, summary=f"normalize={options['clusters_normalize']}")


class Broken:
    name = "broken-deep"
    title = "Broken"

    def applies_to(self, run, options):
        return ["item"]

    def run(self, run, table, options):
        return a_helper_whose_name_is_long_enough_that_its_traceback_line_passes_eighty_columns()


def a_helper_whose_name_is_long_enough_that_its_traceback_line_passes_eighty_columns():
    raise ValueError("deliberately broken")


class Plugin:
    def __init__(self, *analyses):
        self.analyses = analyses

    @hookimpl
    def embedlab_register_analyses(self, register):
        for a in self.analyses:
            register(a)


@pytest.fixture(scope="module")
def clusters():
    analysis = Clusters()
    with plugin_registered(Plugin(analysis, Broken()), name="tmp-clusters"):
        yield analysis


@pytest.mark.parametrize(
    "args, want, warned",
    [
        (
            ["--clusters-normalize", "false"],
            False,
            "`--clusters-normalize false` is deprecated since embedlab 0.1: write `--no-clusters-normalize`",
        ),
        (["--clusters-normalize=TRUE"], True, "write `--clusters-normalize`"),
        (["--clusters-normalize", "no"], False, "write `--no-clusters-normalize`"),
        (["--no-clusters-normalize"], False, None),
        (["--clusters-normalize"], True, None),
        ([], True, None),
    ],
)
def test_a_boolean_option_takes_its_old_true_false_form_with_a_warning(clusters, args, want, warned):
    clusters.seen.clear()
    done = invoke(["analyze", synthetic_run_dir(), "--only", "clusters", *args])
    assert done.exit_code == 0, done.output
    assert clusters.seen == [want]
    warnings = [line for line in done.stderr.splitlines() if line.startswith("Warning:")]
    if warned is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and warned in warnings[0] and "stops working in 0.3" in warnings[0]


def test_a_run_folder_after_a_switch_is_still_a_run_folder(clusters, tmp_path):
    run_dir = synthetic_run_dir()
    clusters.seen.clear()
    done = invoke(["analyze", "--clusters-normalize", run_dir, "--only", "clusters"])
    assert done.exit_code == 0, done.output
    assert clusters.seen == [True] and "Warning:" not in done.stderr


def test_global_options_work_before_or_after_the_subcommand(clusters, monkeypatch):
    monkeypatch.delenv("EMBEDLAB_DEBUG", raising=False)
    run_dir = synthetic_run_dir()
    for args in (
        ["analyze", run_dir, "--only", "broken-deep", "--debug"],
        ["--debug", "analyze", run_dir, "--only", "broken-deep"],
        ["analyze", "--debug", run_dir, "--only", "broken-deep", "-q"],
        ["-q", "analyze", run_dir, "--debug", "--only", "broken-deep"],
    ):
        done = invoke(args)
        assert done.exit_code == 0, (args, done.output)
        assert "Traceback (most recent call last):" in done.stderr, args
    plain = invoke(["analyze", run_dir, "--only", "broken-deep"])
    assert "Traceback" not in plain.stderr and "ValueError: deliberately broken" in plain.stderr
    assert not embedlab.errors.debug_enabled()  # the next command starts without --debug


def test_debug_tracebacks_are_plain_unwrapped_lines(clusters, monkeypatch):
    monkeypatch.delenv("EMBEDLAB_DEBUG", raising=False)
    done = invoke(["analyze", synthetic_run_dir(), "--only", "broken-deep", "--debug"])
    line = next(
        n
        for n, text in enumerate(Path(__file__).read_text().splitlines(), 1)
        if 'raise ValueError("deliberately broken")' in text
    )
    whole = (
        f'  File "{__file__}", line {line}, in '
        "a_helper_whose_name_is_long_enough_that_its_traceback_line_passes_eighty_columns"
    )
    assert len(whole) > 80 and whole in done.stderr.splitlines()  # one line, not boxed, not wrapped
    assert not any("│" in text and "File" in text for text in done.stderr.splitlines())
    assert "deliberately broken" in done.stderr.split("Traceback")[0]  # the message stays in its panel


def test_every_deprecation_names_the_new_form_and_when_the_old_goes():
    assert DEPRECATIONS
    for name, dep in DEPRECATIONS.items():
        fields = set(re.findall(r"\{(\w+)\}", dep.old + dep.new))
        message = dep.message(**{f: f"<{f}>" for f in fields})
        assert "write " in message and dep.removed_in in message and dep.since in message, name
        with pytest.warns(EmbedlabDeprecationWarning, match="is deprecated"):
            dep.warn(**{f: f"<{f}>" for f in fields})
    rule = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    assert "## Compatibility" in rule and "embedlab/deprecations.py" in rule


@pytest.mark.parametrize(
    "module, new", [("embedlab.trainers.collab", "CollabOptions"), ("embedlab.trainers.tabular", "TabularOptions")]
)
def test_a_trainer_modules_old_options_list_still_reads_with_a_warning(module, new):
    """Code written against the click-option lists (``OPTIONS``) keeps working: the same flags,
    from the typed declaration, and fit_config accepts them as before."""
    import importlib

    from embedlab.training.fitconfig import fit_config

    mod = importlib.import_module(module)
    with pytest.warns(EmbedlabDeprecationWarning, match=new):
        old = mod.OPTIONS
    declared = getattr(mod, new)
    assert [o.name for o in old] == [o.name for o in declared.click_options()] and "lr" in [o.name for o in old]
    assert fit_config({}, old).lr == fit_config({}, declared).lr
