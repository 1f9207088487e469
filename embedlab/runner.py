"""The analysis runner: chooses analyses, resolves their options, runs them on the tables
they apply to and renders their figures. One failing analysis never sinks the others: its
exception becomes a result whose ``error`` holds the message.
"""
from __future__ import annotations

import time
import traceback
from typing import Any, Callable

import click

from embedlab.analysis import AnalysisResult
from embedlab.errors import UsageError
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
                value = [ptype.convert(v, None, None) for v in value] if opt.multiple else \
                    ptype.convert(value, None, None)
            except click.BadParameter as exc:
                raise UsageError(f"analysis {analysis.name!r}: option {opt.flag}: {exc.message}") from None
        out[opt.name] = value
    return out


def select_analyses(names: list[str] | None) -> list[AnalysisEntry]:
    """The analyses named (in that order), or every one that runs by default."""
    available = analyses()
    if not names:
        return [a for a in available.values() if a.by_default]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise UsageError(f"unknown analysis {unknown[0]!r}; choose from: {', '.join(available)}")
    return [available[n] for n in names]


def run_analyses(run: Run, names: list[str] | None = None, options: dict[str, Any] | None = None,
                 render: bool = True, on_result: Callable[[AnalysisResult], None] | None = None
                 ) -> list[AnalysisResult]:
    """Run analyses on every table they apply to.

    One failing analysis never sinks the others: its exception becomes a result whose
    ``error`` holds the message. With ``render`` the figures are built too.
    """
    options = options or {}
    chosen = select_analyses(names)
    resolved = {a.name: resolve_options(a, options) for a in chosen}  # validate before running
    results: list[AnalysisResult] = []
    for analysis in chosen:
        try:
            tables = analysis.applies_to(run, resolved[analysis.name])
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not sink the report
            tables = []
            results.append(_error_result(analysis, None, exc))
        if names and not tables and not any(r.analysis == analysis.name for r in results):
            results.append(AnalysisResult(analysis.name, None, analysis.title,
                                          summary=f"{analysis.title}: does not apply to this run (no table "
                                                  f"of it qualifies, and it is not an analysis of the whole run)."))
        for table in tables:
            t0 = time.perf_counter()
            try:
                result = analysis.run(run, table, dict(resolved[analysis.name]))
                result.seconds = time.perf_counter() - t0
                if render:
                    result.figures = analysis.render(result)
            except Exception as exc:  # noqa: BLE001
                result = _error_result(analysis, table, exc)
                result.seconds = time.perf_counter() - t0
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _error_result(analysis: AnalysisEntry, table: str | None, exc: BaseException) -> AnalysisResult:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, click.ClickException):
        detail = exc.format_message()
    return AnalysisResult(analysis.name, table, analysis.title, summary="", error=detail)
