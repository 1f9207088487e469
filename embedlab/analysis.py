"""Analyses: the protocol plugins implement and the results they return.

An analysis returns plain data (:class:`AnalysisResult`: metrics, tables, a summary and the
arrays its plots need); Bokeh figures are made afterwards by its optional ``render`` step, so
analyses are tested without Bokeh and the HTML is written in one place only (embedlab.report).
The runner that calls analyses is :mod:`embedlab.runner`. The contract is explained, with a
worked example, in the plugin guide: ``embedlab plugins guide "The types"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import click
import pandas as pd

from embedlab.run import Run


class _RunLevel:
    """The marker an ``applies_to`` returns for an analysis of the run as a whole."""

    _instance = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "embedlab.analysis.RUN_LEVEL"

    def __reduce__(self):
        return (_RunLevel, ())


#: Returned in ``applies_to``'s list by an analysis of the whole run rather than of one table
#: (``[RUN_LEVEL]``); its result then has ``table=None``. (A bare ``None`` still means the same.)
RUN_LEVEL = _RunLevel()


@dataclass
class AnalysisOption:
    """An option an analysis accepts; it appears as ``--name`` on ``embedlab analyze``.

    Options with the same name in several analyses share one CLI flag (so ``--min-count``
    reaches every analysis that declares it); declare them with the same type (the shared
    ones are declared once, in :mod:`embedlab.toolkit.options`, and checked at registration).

    A ``bool`` option is an on/off switch: ``AnalysisOption("demo_exact", bool, False, ...)``
    becomes ``--demo-exact/--no-demo-exact`` (no value after the flag); either flag overrides
    the default, and without both the analysis receives ``default``.
    """

    name: str
    type: Any = str
    default: Any = None
    help: str = ""
    multiple: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def is_switch(self) -> bool:
        """A ``bool`` option (not ``multiple``): ``--x/--no-x`` rather than ``--x VALUE``."""
        return (self.type is bool or self.type is click.BOOL) and not self.multiple

    @property
    def usage(self) -> str:
        """How the flag is written: ``--demo-level INT``, or ``--demo-exact/--no-demo-exact``."""
        if self.is_switch:
            return f"{self.flag}/--no-{self.flag[2:]}"
        tname = getattr(self.type, "name", getattr(self.type, "__name__", str(self.type)))
        return f"{self.flag} {tname.upper()}"

    def click_option(self) -> click.Option:
        """The click option of ``embedlab analyze`` (its value is None when the flag is not
        given, so the runner fills in ``default``)."""
        if self.default is None:
            help_text = self.help
        elif self.is_switch:
            help_text = f"{self.help} [default: {self.flag if self.default else '--no-' + self.flag[2:]}]"
        else:
            help_text = f"{self.help} [default: {self.default}]"
        if self.is_switch:
            return click.Option([self.usage, self.name], default=None, help=help_text)
        return click.Option(
            [self.flag, self.name], type=self.type, default=None, multiple=self.multiple, help=help_text
        )


@dataclass
class AnalysisResult:
    """What one analysis found for one table.

    :param analysis: the analysis name. :param table: the table analysed (None: the run).
    :param summary: a few sentences a person reads first.
    :param metrics: named numbers (floats) for JSON and comparisons.
    :param tables: named DataFrames shown in the report and returned by ``--json``.
    :param data: arrays and values the render step plots (not shown as such).
    :param error: set when the analysis failed; the other fields may be empty.
    :param finding: one line, the headline finding and what it means ("bias follows mean
        rating, rho 0.94"); the report's findings list opens with it (empty: the summary's
        first sentence).
    :param headline: names of the metrics that carry the finding: shown first, never folded.
    :param maps: 2-D maps of the analysed table that the report's explorer offers beside its
        own PCA map: map name (``"UMAP"``, ``"t-SNE"``) -> DataFrame with columns ``key``,
        ``x``, ``y`` (entities of the table, by key; others are left off that map).
    :param skipped: set by the runner when ``run`` raised :class:`SkipTable`: the reason; the
        summary then reads ``skipped table T: reason`` (shown in the terminal and the report).
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
    finding: str = ""
    headline: list[str] = field(default_factory=list)
    maps: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def anchor(self) -> str:
        raw = f"{self.analysis}-{self.table or 'run'}"
        return "".join(c if c.isalnum() or c in "-_" else "-" for c in raw)

    def to_json(self) -> dict[str, Any]:
        return {
            "analysis": self.analysis,
            "table": self.table,
            "title": self.title,
            "summary": self.summary,
            "finding": self.finding,
            "headline": list(self.headline),
            "error": self.error,
            "skipped": self.skipped or None,
            "seconds": round(self.seconds, 3),
            "metrics": {k: _jsonable(v) for k, v in self.metrics.items()},
            "tables": {
                k: [{c: _jsonable(v) for c, v in row.items()} for row in df.to_dict("records")]
                for k, df in self.tables.items()
            },
        }

    # Jupyter's inline display (``_repr_html_``) is attached by the package root
    # (embedlab/__init__.py): this module sits below the report and may not import it.


def _jsonable(v: Any) -> Any:
    """A value as strict JSON takes it (NaN and inf -> None, NumPy -> Python, nested too)."""
    from embedlab.io.strictjson import jsonable

    return jsonable(v)


class SkipTable(Exception):
    """Raise from ``run`` to say why a table is not analysed: ``raise SkipTable("fewer than 10
    entities with a genre")``. The runner turns it into a result (not an error) whose summary
    is ``skipped table T: reason`` and whose ``skipped`` field holds the reason; the terminal
    and the report show it, ``--strict`` does not count it as a failure."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = str(reason)


#: what an analysis may declare it needs (``Analysis.requires``) -> how a message names it
REQUIREMENTS = {
    "bias": "a per-entity bias",
    "counts": "observation counts",
    "training_data": "the data it was trained on (it was imported, not trained by embedlab)",
}


def unmet(requires: tuple[str, ...] | list[str], run: Run, table: str | None = None) -> list[str]:
    """Which of ``requires`` (names of :data:`REQUIREMENTS`) ``run`` (its ``table``, when named)
    lacks; empty when it has them all."""
    missing = []
    for need in requires:
        if need == "training_data":
            ok = run.has_training_data
        elif table is None:
            continue
        elif need == "bias":
            ok = run.table(table).bias_values is not None
        else:  # counts
            ok = run.table(table).count is not None
        if not ok:
            missing.append(need)
    return missing


class Analysis:
    """Base class for analyses (subclassing is optional: the protocol is the attributes).

    :attr name: CLI name. :attr title: heading in the report.
    :attr options: :class:`AnalysisOption` list.
    :attr by_default: False for analyses that retrain models (minutes, not seconds): they run
        only when named (``--only NAME``), never as part of "every analysis that applies".
    :attr requires: what a table or run must have for the analysis to apply, from
        :data:`REQUIREMENTS`: ``"bias"``, ``"counts"`` (per table), ``"training_data"`` (the
        run: embedlab trained it, so its data can be loaded again; imported runs have none).
        The registry leaves out the tables (or the run) that lack one, whatever ``applies_to``
        says, and ``--only NAME`` then says which is missing.
    :attr runs: ``"one"`` (default), or ``"several"`` for an analysis that compares runs (as
        the stability block does): it implements ``run_several(runs, options) -> AnalysisResult``
        (``runs``: label -> Run, two or more; the result's ``table`` is None) instead of
        ``applies_to``/``run``, and runs once on ``embedlab analyze A B ...`` or a run group,
        its section beside the stability sections; on one run it is skipped, saying why.
    """

    name: str = ""
    title: str = ""
    description: str = ""
    options: list[AnalysisOption] = []
    by_default: bool = True
    requires: tuple[str, ...] = ()
    runs: str = "one"

    def applies_to(self, run: Run, options: dict[str, Any] | None = None) -> list:
        """Names of the run's tables this analysis can analyse (empty: none), or
        ``[RUN_LEVEL]`` for an analysis of the whole run.

        ``options`` are the resolved options, so that an option such as ``--coords`` can make a
        table qualify (the one-argument form ``applies_to(run)`` is accepted too)."""
        raise NotImplementedError

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        """The result for one table (None: the run). A long analysis may take a fourth
        parameter, ``progress``: the runner then passes a callback ``progress(done, total=None,
        info="")`` and its progress bar follows it (``finetune`` reports each model it trains)."""
        raise NotImplementedError

    def render(self, result: AnalysisResult) -> list:
        """Bokeh models for the report (optional)."""
        return []
