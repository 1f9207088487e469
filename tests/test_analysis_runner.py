"""The analysis runner's selection rules: expensive analyses run only when named."""

from __future__ import annotations

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisResult
from embedlab.runner import run_analyses
from embedlab.authoring.testing import plugin_registered, synthetic_run


class _Costly(Analysis):
    name = "costly-test"
    title = "Costly"
    by_default = False

    def applies_to(self, run):
        return ["item"]

    def run(self, run, table, options):
        return AnalysisResult(self.name, table, self.title, summary="ran", metrics={"x": 1.0})


class _Plugin:
    @hookimpl
    def embedlab_register_analyses(self, register):
        register(_Costly())


def test_expensive_analysis_runs_only_when_named():
    run = synthetic_run()
    with plugin_registered(_Plugin(), name="costly-test-plugin"):
        everything = run_analyses(run, None, render=False)
        assert "costly-test" not in {r.analysis for r in everything}
        named = run_analyses(run, ["costly-test"], render=False)
        assert [r.summary for r in named] == ["ran"]


def test_builtin_retraining_analyses_are_opt_in():
    from embedlab.registry import analyses

    found = analyses()
    assert found["finetune"].by_default is False
    assert found["transfer"].by_default is False
    assert getattr(found["pca"], "by_default", True) is True
