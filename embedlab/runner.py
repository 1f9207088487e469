"""The analysis runner: chooses analyses, resolves their options, runs them on the tables
they apply to and renders their figures. One failing analysis never sinks the others: its
exception becomes a result whose ``error`` holds the message.
"""

from __future__ import annotations

import time
import traceback
from typing import Any, Callable, Sequence

import click

from embedlab.analysis import AnalysisResult, SkipTable
from embedlab.errors import EmbedlabError, UsageError
from embedlab.registry import AnalysisEntry, analyses
from embedlab.run import Run


def resolve_options(analysis: AnalysisEntry, given: dict[str, Any]) -> dict[str, Any]:
    """The analysis's declared options with defaults filled in and values type-checked."""
    out = {}
    for opt in analysis.options:
        value = given.get(opt.name)
        if value is None or (opt.multiple and value == ()):
            value = opt.default
        elif isinstance(opt.type, click.ParamType) or opt.type in (int, float, str, bool):
            ptype = click.types.convert_type(opt.type)
            try:
                value = (
                    [ptype.convert(v, None, None) for v in value] if opt.multiple else ptype.convert(value, None, None)
                )
            except click.BadParameter as exc:
                raise UsageError(f"analysis {analysis.name!r}: option {opt.flag}: {exc.message}") from None
        out[opt.name] = value
    return out


def analysis_names(names: str | Sequence[str] | None) -> list[str] | None:
    """``--only``'s value (and ``embedlab.analyze``'s ``names``): "a,b" or a list -> the names;
    None -> None (every analysis that runs by default); nothing named is an error."""
    if names is None:
        return None
    found = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n and n.strip()]
    if not found:
        raise UsageError("--only needs at least one analysis name")
    return found


def select_analyses(names: list[str] | None) -> list[AnalysisEntry]:
    """The analyses named (in that order), or every one that runs by default."""
    available = analyses()
    if not names:
        return [a for a in available.values() if a.by_default]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown analysis {unknown[0]!r}; choose from: {', '.join(available)}")
    return [available[n] for n in names]


def run_analyses(
    run: Run,
    names: list[str] | None = None,
    options: dict[str, Any] | None = None,
    render: bool = True,
    on_result: Callable[[AnalysisResult], None] | None = None,
    progress: bool | None = False,
) -> list[AnalysisResult]:
    """Run analyses on every table they apply to.

    One failing analysis never sinks the others: its exception becomes a result whose
    ``error`` holds the message. With ``render`` the figures are built too.

    ``progress``: a bar on stderr over the (analysis, table) pairs (True; None: when a person
    watches, :func:`embedlab.io.progress.watching`). An analysis whose ``run`` takes a
    ``progress`` parameter gets a callback ``progress(done, total=None, info="")`` and the bar
    follows it within its step (retraining analyses report each model they train).
    """
    from embedlab.io.progress import progress_bar

    options = options or {}
    chosen = select_analyses(names)
    resolved = {a.name: resolve_options(a, options) for a in chosen}  # validate before running
    results: list[AnalysisResult] = []
    plan: list[tuple[AnalysisEntry, list, list[AnalysisResult]]] = []
    for analysis in chosen:
        before: list[AnalysisResult] = []
        if analysis.several:  # it compares runs: `analyze A B` or a run group runs it
            if names:
                plan.append(
                    (
                        analysis,
                        [],
                        [
                            AnalysisResult(
                                analysis.name,
                                None,
                                analysis.title,
                                skipped=SEVERAL_RUNS,
                                summary=f"{analysis.title}: skipped: {SEVERAL_RUNS}",
                            )
                        ],
                    )
                )
            continue
        try:
            tables = list(analysis.applies_to(run, resolved[analysis.name]) or [])
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin bug must not sink the report
            tables = []
            before.append(_error_result(analysis, None, exc))
        if names and not tables and not before:
            why = analysis.unmet_message(run) or (
                "no table of it qualifies, and it is not an analysis of the whole run"
            )
            before.append(
                AnalysisResult(
                    analysis.name,
                    None,
                    analysis.title,
                    summary=f"{analysis.title}: does not apply to this run ({why}).",
                )
            )
        plan.append((analysis, tables, before))
    with progress_bar(progress) as bar:
        task = bar.add_task("analyses", total=sum(len(t) for _, t, _ in plan), info="")
        step = 0
        for analysis, tables, before in plan:
            results.extend(before)
            for table in tables:
                where = f"{analysis.name}/{table or 'run'}"
                bar.update(task, completed=step, info=where)
                result = _run_one(
                    run, analysis, table, resolved[analysis.name], render, _reporter(bar, task, step, where)
                )
                step += 1
                bar.update(task, completed=step, info=f"{where} {result.seconds:.1f}s")
                results.append(result)
                if on_result is not None:
                    on_result(result)
    return results


SEVERAL_RUNS = "it compares several runs: give two or more runs or a run group (`embedlab analyze RUN_A RUN_B ...`)"


def run_several_analyses(
    runs: dict[str, Run], names: list[str] | None = None, options: dict[str, Any] | None = None, render: bool = True
) -> list[AnalysisResult]:
    """The analyses that take several runs (``Analysis.runs = "several"``), each called once with
    every run (``run_several(runs, options)``, runs by label); one result each (``table`` None),
    a failure becoming its error section. The others are left to :func:`run_analyses`."""
    chosen = [
        a for a in (select_analyses(names) if names else analyses().values()) if a.several and (names or a.by_default)
    ]
    results = []
    for analysis in chosen:
        options_of = resolve_options(analysis, dict(options or {}))
        t0 = time.perf_counter()
        try:
            result = check_result(analysis.run_several(runs, options_of), None)
            result.seconds = time.perf_counter() - t0
            if render:
                result.figures = check_figures(analysis.render(result))
        except SkipTable as skip:
            result = AnalysisResult(
                analysis.name, None, analysis.title, skipped=skip.reason, summary=f"skipped: {skip.reason}"
            )
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin bug must not sink the report
            result = _error_result(analysis, None, exc)
        results.append(result)
    return results


def _reporter(bar: Any, task: int, step: int, where: str) -> Callable[..., None]:
    """The callback an analysis reports its own progress through: ``(done, total, info)``."""

    def report(done: float, total: float | None = None, info: str = "") -> None:
        frac = min(max(float(done) / float(total), 0.0), 1.0) if total else 0.0
        count = f" {done:g}/{total:g}" if total else ""
        bar.update(task, completed=step + frac, info=f"{where}{count} {info}".rstrip())

    return report


def _run_one(
    run: Run, analysis: AnalysisEntry, table: Any, options: dict[str, Any], render: bool, report: Callable[..., None]
) -> AnalysisResult:
    """One analysis on one table: its result, or a result holding why it was skipped or failed."""
    t0 = time.perf_counter()
    try:
        result = check_result(analysis.run(run, table, dict(options), progress=report), table)
        result.seconds = time.perf_counter() - t0
        if render:
            result.figures = check_figures(analysis.render(result))
    except SkipTable as skip:  # the analysis says why it leaves this table out
        result = AnalysisResult(
            analysis.name,
            table,
            analysis.title,
            skipped=skip.reason,
            summary=f"skipped table {table or 'run'}: {skip.reason}",
        )
        result.seconds = time.perf_counter() - t0
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - sys.exit() in a plugin included
        result = _error_result(analysis, table, exc)
        result.seconds = time.perf_counter() - t0
    return result


class PluginResultError(Exception):
    """An analysis returned something the report cannot use (its error section says what)."""


def check_result(result: Any, table: Any) -> AnalysisResult:
    """``result`` if it is an :class:`AnalysisResult` the report and ``--json`` can use: its
    tables DataFrames, its metrics and tables serialisable as strict JSON. Otherwise a
    :class:`PluginResultError` naming what is wrong (it becomes the analysis's error section)."""
    import pandas as pd

    if not isinstance(result, AnalysisResult):
        raise PluginResultError(f"run() returned {type(result).__name__}, not an AnalysisResult")
    if not isinstance(result.tables, dict):
        raise PluginResultError(
            f"its result's tables are a {type(result.tables).__name__}, not a dict of name -> pandas DataFrame"
        )
    for name, df in result.tables.items():
        if not isinstance(df, pd.DataFrame):
            raise PluginResultError(f"its result's table {name!r} is a {type(df).__name__}, not a pandas DataFrame")
    if not isinstance(result.metrics, dict):
        raise PluginResultError(f"its result's metrics are a {type(result.metrics).__name__}, not a dict")
    try:
        from embedlab.io.strictjson import dumps

        dumps(result.to_json())
    except Exception as exc:  # noqa: BLE001
        raise PluginResultError(
            f"its result cannot be written as JSON ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''})"
        ) from exc
    return result


def check_figures(figures: Any) -> list:
    """``render()``'s figures if they are a list of Bokeh models; else a :class:`PluginResultError`."""
    if figures is None:
        return []
    if not isinstance(figures, (list, tuple)):
        raise PluginResultError(f"render() returned {type(figures).__name__}, not a list of Bokeh models")
    from bokeh.model import Model

    for i, fig in enumerate(figures):
        if not isinstance(fig, Model):
            raise PluginResultError(
                f"render() returned a {type(fig).__name__} as figure {i + 1}, not a Bokeh model (a figure, a layout)"
            )
    return list(figures)


def _error_result(analysis: AnalysisEntry, table: str | None, exc: BaseException) -> AnalysisResult:
    from embedlab.errors import debug_enabled

    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, SystemExit):
        detail = f"the analysis called sys.exit({exc.code!r}); an analysis should raise an exception instead"
    elif isinstance(exc, PluginResultError):
        detail = f"the analysis broke the plugin contract: {exc}"
    elif isinstance(exc, (click.ClickException, EmbedlabError)):
        detail = exc.format_message()
    if debug_enabled():  # --debug or EMBEDLAB_DEBUG=1: where it was raised, for plugin authors
        detail += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
    return AnalysisResult(analysis.name, table, analysis.title, summary="", error=detail)
