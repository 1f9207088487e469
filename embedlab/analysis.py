"""Analyses: the protocol plugins implement, their results, and the runner.

An analysis returns plain data (:class:`AnalysisResult`: metrics, tables, a summary and the
arrays its plots need); Bokeh figures are made afterwards by its optional ``render`` step, so
analyses are tested without Bokeh and the HTML is written in one place only (report.py).
"""
from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import click
import numpy as np
import pandas as pd

from embedlab.errors import UsageError
from embedlab.run import Run


@dataclass
class AnalysisOption:
    """An option an analysis accepts; it appears as ``--name`` on ``embedlab analyze``.

    Options with the same name in several analyses share one CLI flag (so ``--min-count``
    reaches every analysis that declares it); declare them with the same type.
    """

    name: str
    type: Any = str
    default: Any = None
    help: str = ""
    multiple: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def click_option(self) -> click.Option:
        return click.Option([self.flag, self.name], type=self.type, default=None,
                            multiple=self.multiple,
                            help=f"{self.help} [default: {self.default}]" if self.default is not None else self.help)


@dataclass
class AnalysisResult:
    """What one analysis found for one table.

    :param analysis: the analysis name. :param table: the table analysed (None: the run).
    :param summary: a few sentences a person reads first.
    :param metrics: named numbers (floats) for JSON and comparisons.
    :param tables: named DataFrames shown in the report and returned by ``--json``.
    :param data: arrays and values the render step plots (not shown as such).
    :param error: set when the analysis failed; the other fields may be empty.
    """

    analysis: str
    table: str | None
    title: str
    summary: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    figures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def anchor(self) -> str:
        raw = f"{self.analysis}-{self.table or 'run'}"
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis, "table": self.table, "title": self.title,
            "summary": self.summary, "error": self.error, "seconds": round(self.seconds, 3),
            "metrics": {k: _jsonable(v) for k, v in self.metrics.items()},
            "tables": {k: [{c: _jsonable(v) for c, v in row.items()} for row in df.to_dict("records")]
                       for k, df in self.tables.items()},
        }

    def _repr_html_(self) -> str:  # Jupyter: summary, metrics, figures and tables inline
        from embedlab.report.html import result_html_standalone

        return result_html_standalone(self)


def _jsonable(v: Any) -> Any:
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if np.isfinite(f) else None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, (pd.Timestamp,)):
        return v.isoformat()
    return v


class Analysis:
    """Base class for analyses (subclassing is optional: the protocol is the attributes).

    :attr name: CLI name. :attr title: heading in the report.
    :attr options: :class:`AnalysisOption` list.
    :attr by_default: False for analyses that retrain models (minutes, not seconds): they run
        only when named (``--only NAME``), never as part of "every analysis that applies".
    """

    name: str = ""
    title: str = ""
    description: str = ""
    options: list[AnalysisOption] = []
    by_default: bool = True

    def applies_to(self, run: Run, options: dict[str, Any] | None = None) -> list[str]:
        """Names of the run's tables this analysis can analyse (empty: none).

        ``options`` (the resolved options) is passed when the method accepts a second
        argument, so that an option such as ``--coords`` can make a table qualify."""
        raise NotImplementedError

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        raise NotImplementedError

    def render(self, result: AnalysisResult) -> list:
        """Bokeh models for the report (optional)."""
        return []


def resolve_options(analysis: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The analysis's declared options with defaults filled in and values type-checked."""
    out = {}
    for opt in getattr(analysis, "options", []) or []:
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


def select_analyses(names: list[str] | None) -> list[Any]:
    from embedlab.registry import analyses

    available = analyses()
    if not names:
        return [a for a in available.values() if getattr(a, "by_default", True)]
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
            tables = list(_applies_to(analysis, run, resolved[analysis.name]))
        except Exception as exc:  # noqa: BLE001 - a plugin bug must not sink the report
            tables = []
            results.append(_error_result(analysis, None, exc))
        if names and not tables and not any(r.analysis == analysis.name for r in results):
            results.append(AnalysisResult(analysis.name, None, analysis.title,
                                          summary=f"{analysis.title}: no table of this run qualifies."))
        for table in tables:
            t0 = time.perf_counter()
            try:
                result = analysis.run(run, table, dict(resolved[analysis.name]))
                result.seconds = time.perf_counter() - t0
                if render and hasattr(analysis, "render"):
                    result.figures = list(analysis.render(result) or [])
            except Exception as exc:  # noqa: BLE001
                result = _error_result(analysis, table, exc)
                result.seconds = time.perf_counter() - t0
            results.append(result)
            if on_result is not None:
                on_result(result)
    return results


def _applies_to(analysis: Any, run: Run, options: dict[str, Any]) -> list[str]:
    """``applies_to(run, options)`` when the analysis accepts options, else ``applies_to(run)``."""
    import inspect

    try:
        params = [p for p in inspect.signature(analysis.applies_to).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params):
        return analysis.applies_to(run, dict(options))
    return analysis.applies_to(run)


def _error_result(analysis: Any, table: str | None, exc: BaseException) -> AnalysisResult:
    detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    if isinstance(exc, click.ClickException):
        detail = exc.format_message()
    return AnalysisResult(getattr(analysis, "name", "?"), table, getattr(analysis, "title", "?"),
                          summary="", error=detail)
