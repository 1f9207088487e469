"""Findings across runs: which claims hold in every seed, which in few.

One training run is one sample. Given several runs of the same data (replicates from
``embedlab train --seeds``, or any runs that share tables), this module measures

- **alignment** per table shared by the runs (:func:`table_stability`): the tables are
  matched on shared keys (the entities observed in training in every run), and for every pair
  of runs it computes the orthogonal Procrustes fit (:func:`embedlab.toolkit.stats.procrustes_r2`:
  1 when one run's table is a rotated, reflected, scaled copy of the other's) and the share of
  each entity's 10 nearest neighbours (cosine) the two runs have in common
  (:func:`embedlab.toolkit.stats.knn_overlap`). ``procrustes_r2`` is the mean over pairs;
  ``neighbour_overlap_10`` the mean over pairs and entities; per entity, the mean over pairs
  (its stability: the least stable entities are listed);
- **metrics** of every analysis on every run (:func:`metric_stability`): mean, sd (n - 1)
  and n; for a p-value (a metric named ``p`` or ``*_p``) also ``significant_in``, the number of
  runs with p < 0.05, and a verdict in plain words: *every run*, *most runs* (more than half),
  *few runs* (some, at most half), *no run*.

:func:`stability_records` is the JSON form (``stability`` in ``embedlab analyze --json``),
:func:`stability_results` the report's first sections (ordinary AnalysisResults).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

from embedlab.analysis import AnalysisResult
from embedlab.run import EmbeddingTable, Run
from embedlab.toolkit.stats import knn_overlap, pairwise_distances, procrustes_r2

ALPHA = 0.05
NEIGHBOURS = 10
MAX_NEIGHBOUR_ENTITIES = 3000  # the most observed, for the neighbour overlap of big tables (n x n distances)
LEAST_STABLE_SHOWN = 20


def is_p_value(metric: str) -> bool:
    """``mantel_p``, ``tour_p``, ``p``: the metrics whose value is a p-value."""
    return metric == "p" or metric.endswith("_p") or metric.endswith("_pvalue")


def verdict(significant: int, n: int) -> str:
    """'every run', 'most runs' (more than half), 'few runs' (some, at most half), 'no run'."""
    if n == 0:
        return "no run"
    if significant == n:
        return "every run"
    if significant * 2 > n:
        return "most runs"
    return "few runs" if significant else "no run"


def mean_sd(values: Sequence[float]) -> tuple[float, float, int]:
    """Mean, sample sd (n - 1; NaN for one value) and n of the finite values."""
    v = np.asarray([x for x in values if x is not None and math.isfinite(float(x))], dtype=np.float64)
    if len(v) == 0:
        return float("nan"), float("nan"), 0
    sd = float(v.std(ddof=1)) if len(v) > 1 else float("nan")
    return float(v.mean()), sd, int(len(v))


# ---------------------------------------------------------------------------- alignment
@dataclass
class TableStability:
    """How alike one table is across runs (see the module docstring)."""

    table: str
    n_runs: int
    n_entities: int
    procrustes_r2: float
    procrustes_r2_sd: float
    neighbour_overlap_10: float
    neighbour_overlap_sd: float
    k: int
    chance: float
    pairs: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    entities: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)

    def record(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "procrustes_r2": _num(self.procrustes_r2),
            "procrustes_r2_sd": _num(self.procrustes_r2_sd),
            "neighbor_overlap_10": _num(self.neighbour_overlap_10),  # the US spelling (#29) ...
            "neighbor_overlap_sd": _num(self.neighbour_overlap_sd),
            "neighbor_k": self.k,
            "neighbour_overlap_10": _num(self.neighbour_overlap_10),  # ... and the old keys (a public contract)
            "neighbour_overlap_sd": _num(self.neighbour_overlap_sd),
            "neighbour_k": self.k,
            "chance": _num(self.chance),
            "n_entities": self.n_entities,
            "n": self.n_runs,
            "n_pairs": len(self.pairs),
        }


def _observed(table: EmbeddingTable) -> np.ndarray:
    """Rows of entities seen in training (count > 0 where the table has counts; else all)."""
    count = table.count
    if count is None:
        return np.ones(len(table), dtype=bool)
    c = pd.to_numeric(pd.Series(count), errors="coerce").fillna(0).to_numpy()
    return c > 0


def shared_rows(tables: Sequence[EmbeddingTable]) -> tuple[list[np.ndarray], np.ndarray]:
    """For each table, the rows of the keys observed in every table, in one common order
    (the first table's); and those keys."""
    keysets = []
    for t in tables:
        keys = t.keys.astype(str)
        seen = _observed(t)
        keysets.append({k: i for i, k in enumerate(keys) if seen[i]})
    first = tables[0].keys.astype(str)
    common = [k for k in first if all(k in ks for ks in keysets)]
    common = list(dict.fromkeys(common))
    rows = [np.array([ks[k] for k in common], dtype=np.intp) for ks in keysets]
    return rows, np.array(common, dtype=object)


def align_pair(a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray]:
    """Procrustes r2 of b onto a (centred, unit norm, best rotation/reflection and scale) and
    each entity's residual after the fit, relative to the mean distance of a point from the
    centre (0: in place; about 1.4: unrelated)."""
    from scipy.linalg import orthogonal_procrustes

    r2 = procrustes_r2(b, a)
    cols = max(a.shape[1], b.shape[1])
    pa = np.hstack([a, np.zeros((len(a), cols - a.shape[1]))]) if a.shape[1] < cols else a
    pb = np.hstack([b, np.zeros((len(b), cols - b.shape[1]))]) if b.shape[1] < cols else b
    xa = pa - pa.mean(axis=0)
    xb = pb - pb.mean(axis=0)
    na, nb = np.linalg.norm(xa), np.linalg.norm(xb)
    if na == 0 or nb == 0:
        return r2, np.full(len(a), np.nan)
    xa, xb = xa / na, xb / nb
    rot, scale = orthogonal_procrustes(xb, xa)
    resid = np.linalg.norm(xb @ rot * scale - xa, axis=1)
    typical = np.linalg.norm(xa, axis=1).mean()
    return r2, resid / typical if typical > 0 else resid


def table_stability(
    tables: Sequence[EmbeddingTable], labels: Sequence[str] | None = None, k: int = NEIGHBOURS
) -> TableStability:
    """Align one table across runs (at least two) on the keys all of them observed."""
    name = tables[0].name
    labels = list(labels or [f"run {i + 1}" for i in range(len(tables))])
    rows, keys = shared_rows(tables)
    n = len(keys)
    notes: list[str] = []
    nan = float("nan")
    if len(tables) < 2 or n < 3:
        notes.append(f"{name}: {n} entities shared by {len(tables)} runs; alignment needs 2 runs and 3 entities.")
        return TableStability(name, len(tables), n, nan, nan, nan, nan, 0, nan, notes=notes)
    vecs = [np.asarray(t.vectors[r], dtype=np.float64) for t, r in zip(tables, rows)]
    first = tables[0]
    count = first.count
    counts = None if count is None else pd.to_numeric(pd.Series(count), errors="coerce").to_numpy()[rows[0]]
    # neighbours of huge tables: the most observed entities (distances are n x n)
    nb_rows = np.arange(n)
    if n > MAX_NEIGHBOUR_ENTITIES:
        order = np.argsort(-counts, kind="stable") if counts is not None else np.arange(n)
        nb_rows = np.sort(order[:MAX_NEIGHBOUR_ENTITIES])
        notes.append(f"Neighbour overlap over the {MAX_NEIGHBOUR_ENTITIES:,} most observed of {n:,} entities.")
    dists = []
    for v in vecs:
        x = v[nb_rows]
        try:
            dists.append(pairwise_distances(x, "cosine"))
        except ValueError:  # a zero vector: cosine is undefined
            dists.append(pairwise_distances(x, "euclidean"))
    kk = int(min(k, len(nb_rows) - 1))
    chance = kk / (len(nb_rows) - 1)
    if kk < k:
        notes.append(
            f"{name} has {len(nb_rows)} shared entities, so the neighbour overlap uses k = {kk} "
            f"(chance level {chance:.2f})."
        )
    pair_rows, overlaps, resids = [], [], []
    for i, j in itertools.combinations(range(len(tables)), 2):
        r2, resid = align_pair(vecs[i], vecs[j])
        ov = knn_overlap(dists[i], dists[j], kk)
        overlaps.append(ov.per_entity)
        resids.append(resid)
        pair_rows.append(
            {"run a": labels[i], "run b": labels[j], "procrustes_r2": r2, f"neighbour_overlap_{k}": ov.mean}
        )
    pairs = pd.DataFrame(pair_rows)
    per_entity = np.mean(overlaps, axis=0)
    ent = pd.DataFrame({"key": keys[nb_rows], "label": first.labels[rows[0]][nb_rows]})
    if counts is not None:
        ent["count"] = counts[nb_rows]
    ent[f"neighbour_overlap_{k}"] = per_entity
    ent["aligned_residual"] = np.nanmean(resids, axis=0)[nb_rows]
    ent = ent.sort_values(
        [f"neighbour_overlap_{k}", "aligned_residual"], ascending=[True, False], kind="stable"
    ).reset_index(drop=True)
    r2m, r2sd, _ = mean_sd(pairs["procrustes_r2"])
    ovm, ovsd, _ = mean_sd(pairs[f"neighbour_overlap_{k}"])
    return TableStability(name, len(tables), n, r2m, r2sd, ovm, ovsd, kk, chance, pairs, ent, notes)


def run_table_stability(
    runs: Sequence[Run], labels: Sequence[str] | None = None, k: int = NEIGHBOURS
) -> list[TableStability]:
    """:func:`table_stability` of every table all runs have (in the first run's order)."""
    names = [n for n in runs[0].table_names if all(n in r.table_names for r in runs[1:])]
    return [table_stability([r.table(n) for r in runs], labels, k) for n in names]


# ---------------------------------------------------------------------------- metrics
@dataclass
class MetricStability:
    """One metric of one analysis and table over the runs that report it."""

    analysis: str
    table: str | None
    metric: str
    values: list[float]
    mean: float
    sd: float
    n: int
    significant_in: int | None = None
    title: str = ""

    @property
    def sign_differs(self) -> bool:
        """Positive in some runs, negative in others (a PCA axis's sign is arbitrary, say)."""
        finite = [v for v in self.values if math.isfinite(v)]
        return bool(finite) and min(finite) < 0 < max(finite)

    @property
    def verdict(self) -> str | None:
        return None if self.significant_in is None else verdict(self.significant_in, self.n)

    def record(self) -> dict[str, Any]:
        out = {
            "table": self.table,
            "analysis": self.analysis,
            "metric": self.metric,
            "mean": _num(self.mean),
            "sd": _num(self.sd),
            "n": self.n,
            "values": [_num(v) for v in self.values],
            "sign_differs": self.sign_differs,
        }
        if self.significant_in is not None:
            out["significant_in"] = self.significant_in
            out["holds_in"] = self.verdict
        return out


def metric_stability(per_run: Sequence[Sequence[AnalysisResult]]) -> list[MetricStability]:
    """Every numeric metric of every (analysis, table), over the runs whose result has it
    (failed results are left out), in the order the first run reported them."""
    values: dict[tuple[str, str | None, str], list[float]] = {}
    titles: dict[tuple[str, str | None], str] = {}
    for results in per_run:
        for r in results:
            if r.error:
                continue
            titles.setdefault((r.analysis, r.table), r.title)
            for name, v in r.metrics.items():
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                    continue
                values.setdefault((r.analysis, r.table, name), []).append(float(v))
    out = []
    for (analysis, table, name), vals in values.items():
        mean, sd, n = mean_sd(vals)
        sig = None
        if is_p_value(name):
            sig = int(sum(1 for v in vals if math.isfinite(v) and v < ALPHA))
        out.append(
            MetricStability(analysis, table, name, vals, mean, sd, n, sig, titles.get((analysis, table), analysis))
        )
    return out


def findings_sentences(metrics: Sequence[MetricStability]) -> list[str]:
    """Plain words: which p-value findings hold in every run, most, few, none."""
    groups: dict[str, list[str]] = {"every run": [], "most runs": [], "few runs": [], "no run": []}
    for m in metrics:
        if m.significant_in is None or m.n == 0:
            continue
        where = f"{m.analysis}/{m.table}" if m.table else m.analysis
        groups[m.verdict].append(f"{where} {m.metric} ({m.significant_in} of {m.n})")
    words = {
        "every run": "Hold in every run (p < 0.05)",
        "most runs": "Hold in most runs",
        "few runs": "Hold in few runs (at most half: not a finding to rely on)",
        "no run": "Hold in no run",
    }
    out = [f"{words[key]}: {', '.join(items)}." for key, items in groups.items() if items]
    flips = [
        f"{m.analysis}/{m.table} {m.metric}" if m.table else f"{m.analysis} {m.metric}"
        for m in metrics
        if m.significant_in is None and m.sign_differs
    ]
    if flips:
        more = f" and {len(flips) - 8} more" if len(flips) > 8 else ""
        out.append(
            f"Positive in some runs and negative in others (its direction is not a finding): "
            f"{', '.join(flips[:8])}{more}."
        )
    return out


def _fmt(v: float) -> str:
    if not math.isfinite(v):
        return "–"
    return f"{v:.2g}" if abs(v) < 0.01 and v != 0 else f"{v:.3f}"


def describe_metric(m: MetricStability) -> str:
    """'0.941 ± 0.004 (n = 3)', with 'p < 0.05 in 3 of 3' for p-values."""
    text = f"{_fmt(m.mean)} ± {_fmt(m.sd)} (n = {m.n})"
    if m.significant_in is not None:
        text += f", p < 0.05 in {m.significant_in} of {m.n}"
    elif m.sign_differs:
        text += ", sign differs between runs"
    return text


# ---------------------------------------------------------------------------- output
def stability_records(tables: Sequence[TableStability], metrics: Sequence[MetricStability]) -> list[dict]:
    """The JSON ``stability`` list: alignment records, then metric records."""
    return [t.record() for t in tables] + [m.record() for m in metrics]


def stability_results(
    labels: Sequence[str],
    runs: Sequence[Run],
    tables: Sequence[TableStability],
    metrics: Sequence[MetricStability],
    render: bool = True,
) -> list[AnalysisResult]:
    """The report's stability sections, placed before the per-run sections: the runs and what
    holds across them, one alignment section per table, and every metric's mean, sd and n."""
    overview = _overview_result(labels, runs, tables, metrics)
    if render:
        overview.figures = _curves(labels, runs)
    out = [overview] + [_table_result(t) for t in tables]
    if metrics:
        out.append(_metrics_result(labels, len(runs), metrics))
    return out


def _overview_sentences(
    runs: Sequence[Run], tables: Sequence[TableStability], metrics: Sequence[MetricStability]
) -> list[str]:
    """The overview's summary: the runs, shared seeds, each table's alignment, the findings."""
    sentences = [f"{len(runs)} runs of {', '.join(sorted({str(r.dataset) for r in runs}))}."]
    seeds = [r.seed for r in runs]
    if len(set(map(str, seeds))) < len(seeds):
        sentences.append("Some runs share a seed: their differences are not seed-to-seed variation.")
    for t in tables:
        if math.isfinite(t.procrustes_r2):
            sentences.append(
                f"{t.table}: Procrustes r2 {t.procrustes_r2:.2f} and {100 * t.neighbour_overlap_10:.0f}% "
                f"of the {t.k} nearest neighbours in common (chance {100 * t.chance:.0f}%), "
                f"mean over {len(t.pairs)} pairs of runs and {t.n_entities:,} entities."
            )
    return sentences + findings_sentences(metrics)


def _overview_tables(
    labels: Sequence[str], runs: Sequence[Run], metrics: Sequence[MetricStability]
) -> dict[str, pd.DataFrame]:
    """The overview's tables: one row per run (its numeric metrics), and the p < 0.05 findings."""
    run_rows = []
    for label, run in zip(labels, runs):
        row = {"run": label, "path": str(run.path) if run.path else "", "dataset": run.dataset, "seed": run.seed}
        row.update({k: v for k, v in run.metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        run_rows.append(row)
    findings = pd.DataFrame(
        [
            {
                "analysis": m.analysis,
                "table": m.table,
                "metric": m.metric,
                "significant_in": m.significant_in,
                "n": m.n,
                "holds in": m.verdict,
                "mean": m.mean,
                "sd": m.sd,
            }
            for m in metrics
            if m.significant_in is not None
        ]
    )
    out = {"runs": pd.DataFrame(run_rows)}
    if len(findings):
        out["findings (p < 0.05)"] = findings
    return out


def _overview_result(
    labels: Sequence[str], runs: Sequence[Run], tables: Sequence[TableStability], metrics: Sequence[MetricStability]
) -> AnalysisResult:
    return AnalysisResult(
        analysis="stability",
        table=None,
        title="Stability across runs",
        summary=" ".join(_overview_sentences(runs, tables, metrics)),
        metrics={
            "runs": float(len(runs)),
            **{f"{t.table} procrustes_r2": t.procrustes_r2 for t in tables},
            **{f"{t.table} neighbor_overlap_10": t.neighbour_overlap_10 for t in tables},
            **{f"{t.table} neighbour_overlap_10": t.neighbour_overlap_10 for t in tables},
        },  # old key kept
        tables=_overview_tables(labels, runs, metrics),
        headline=[f"{t.table} neighbor_overlap_10" for t in tables],
    )


def _table_summary(t: TableStability) -> str:
    """One table's alignment in words (its notes when it could not be aligned)."""
    text = " ".join(t.notes)
    if math.isfinite(t.procrustes_r2):
        text = (
            f"Aligned on the {t.n_entities:,} entities every run observed. After the best rotation, "
            f"reflection and scale, one run's table reproduces {100 * t.procrustes_r2:.0f}% of another's "
            f"spread (sd {_fmt(t.procrustes_r2_sd)} over pairs); an entity keeps "
            f"{100 * t.neighbour_overlap_10:.0f}% of its {t.k} nearest neighbours from run to run "
            f"(chance {100 * t.chance:.0f}%). " + text
        )
        text += _count_sentence(t)
    return text.strip()


def _table_result(t: TableStability) -> AnalysisResult:
    """One table's section: the summary, the least and most stable entities, the pairs of runs."""
    tabs = {}
    if len(t.entities):
        tabs[f"least stable entities ({min(LEAST_STABLE_SHOWN, len(t.entities))} of {len(t.entities):,})"] = (
            t.entities.head(LEAST_STABLE_SHOWN)
        )
        tabs["most stable entities"] = t.entities.tail(min(10, len(t.entities))).iloc[::-1].reset_index(drop=True)
    if len(t.pairs):
        tabs["pairs of runs"] = t.pairs
    return AnalysisResult(
        analysis="stability",
        table=t.table,
        title="Stability across runs",
        summary=_table_summary(t),
        metrics={
            "procrustes_r2": t.procrustes_r2,
            "neighbor_overlap_10": t.neighbour_overlap_10,
            "neighbour_overlap_10": t.neighbour_overlap_10,  # the old key, kept (a public contract)
            "chance": t.chance,
            "n_entities": float(t.n_entities),
            "runs": float(t.n_runs),
        },
        tables=tabs,
        headline=["procrustes_r2", "neighbor_overlap_10"],
    )


def _metrics_result(labels: Sequence[str], n: int, metrics: Sequence[MetricStability]) -> AnalysisResult:
    """The section of every metric across the ``n`` runs: mean, sd, n and each run's value."""
    frame = pd.DataFrame(
        [
            {
                "analysis": m.analysis,
                "table": m.table,
                "metric": m.metric,
                "mean": m.mean,
                "sd": m.sd,
                "n": m.n,
                "significant_in": m.significant_in,
                **{lab: (m.values[i] if i < len(m.values) else None) for i, lab in enumerate(labels)},
            }
            for m in metrics
        ]
    )
    return AnalysisResult(
        analysis="stability-metrics",
        table=None,
        title="Every metric across runs",
        summary=f"Each analysis ran on each of the {n} runs: every metric as mean, sd (n - 1) and n, and the "
        f"value of each run (in run order; a run whose analysis failed is left out of its n).",
        tables={"metrics (mean, sd, n)": frame},
    )


def _count_sentence(t: TableStability) -> str:
    if "count" not in t.entities or len(t.entities) < 5:
        return ""
    from scipy.stats import spearmanr

    if t.entities["count"].nunique() < 2 or t.entities[f"neighbour_overlap_{NEIGHBOURS}"].nunique() < 2:
        return ""
    rho = spearmanr(t.entities["count"], t.entities[f"neighbour_overlap_{NEIGHBOURS}"]).statistic
    if not math.isfinite(rho):
        return ""
    how = (
        "the rarely observed entities are the least stable"
        if rho > 0.2
        else "stability hardly depends on how often an entity was observed"
    )
    return f" Spearman {rho:.2f} between an entity's neighbour overlap and its count: {how}."


def _curves(labels: Sequence[str], runs: Sequence[Run]) -> list:
    from embedlab.toolkit.plotting import line_chart

    series = {}
    for label, run in zip(labels, runs):
        hist = [h for h in run.history if "valid_loss" in h]
        if hist:
            series[label] = ([h["epoch"] for h in hist], [h["valid_loss"] for h in hist])
    if not series:
        return []
    return [
        line_chart(series, "Validation loss per epoch, every run", "epoch", "validation loss", width=680, height=340)
    ]


def _num(v: Any) -> Any:
    """NaN and infinities -> None (strict JSON)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# ---------------------------------------------------------------------------- several runs
@dataclass
class MultiRunAnalysis:
    """What :func:`analyze_runs` found: the runs, each run's results, and their stability."""

    labels: list[str]
    runs: list[Run]
    per_run: list[list[AnalysisResult]]
    tables: list[TableStability]
    metrics: list[MetricStability]
    stability: list[AnalysisResult]
    #: the results of the analyses that take several runs (``Analysis.runs = "several"``)
    several: list[AnalysisResult] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        return stability_records(self.tables, self.metrics)

    def to_json(self) -> dict[str, Any]:
        """``analyze --json`` of several runs: the runs, ``stability`` records, per-run results."""
        return {
            "runs": [
                {
                    "label": lab,
                    "path": str(r.path) if r.path else None,
                    "dataset": r.dataset,
                    "seed": r.seed,
                    "metrics": {k: (_num(v) if isinstance(v, float) else v) for k, v in r.metrics.items()},
                }
                for lab, r in zip(self.labels, self.runs)
            ],
            "stability": self.records(),
            "stability_sections": [r.to_json() for r in self.stability],
            "several_runs": [r.to_json() for r in self.several],
            "results": [dict(r.to_json(), run=lab) for lab, rs in zip(self.labels, self.per_run) for r in rs],
        }

    def report_results(self) -> list[AnalysisResult]:
        """Stability sections first, then every run's sections, titled with the run."""
        import dataclasses

        out = list(self.stability) + list(self.several)
        for label, run, results in zip(self.labels, self.runs, self.per_run):
            trainer = run.meta.get("trainer")
            tag = f"{label}, trainer {trainer}" if trainer else label
            for r in results:
                out.append(dataclasses.replace(r, title=f"{r.title} [{tag}]", analysis=f"{label}/{r.analysis}"))
        return out


def analyze_runs(
    paths: Sequence[Any],
    names: Sequence[str] | None = None,
    options: dict[str, Any] | None = None,
    render: bool = True,
    k: int = NEIGHBOURS,
    echo=None,
    progress: bool | None = False,
) -> MultiRunAnalysis:
    """Run the analyses on every run (run folders, run-group folders or Run objects) and
    measure what holds across them (the module docstring); ``progress``: each run's bar over
    its analyses (io.progress's rule), then a status line per step across the runs."""
    from embedlab.errors import UsageError
    from embedlab.run import load_run
    from embedlab.runner import run_analyses
    from embedlab.engines.runs import expand_runs

    if all(isinstance(p, Run) for p in paths):
        runs = list(paths)
        labels = [p.path.name if p.path else f"run {i + 1}" for i, p in enumerate(runs)]
        if len(set(labels)) < len(labels):
            labels = [f"run {i + 1}" for i in range(len(runs))]
    else:
        found = expand_runs(
            [p.path if isinstance(p, Run) else p for p in paths],
            warn=(lambda m: echo(f"warning: {m}")) if echo is not None else None,
        )
        labels = [label for label, _ in found]
        runs = [load_run(folder) for _, folder in found]
    if len(runs) < 2:
        raise UsageError(
            "several runs are needed to measure what holds across them (give two or more runs, "
            "or a run group from `embedlab train --seeds`)"
        )
    from embedlab.registry import analyses

    several_names = {n for n, a in analyses().items() if a.several}  # run once below, not per run
    each = [n for n in names if n not in several_names] if names else None
    per_run = []
    for i, (label, run) in enumerate(zip(labels, runs), 1):
        if echo is not None:
            echo(f"[{i}/{len(runs)}] analysing {label}")
        per_run.append(
            run_analyses(run, each, dict(options or {}), render=render, progress=progress) if each != [] else []
        )
    from embedlab.io.progress import status

    status("aligning the runs' tables (Procrustes, neighbor overlap) ...", enabled=progress)
    tables = run_table_stability(runs, labels, k)
    metrics = metric_stability(per_run)
    from embedlab.runner import run_several_analyses

    several = run_several_analyses(
        dict(zip(labels, runs)), list(names) if names else None, dict(options or {}), render=render
    )
    return MultiRunAnalysis(
        labels, runs, per_run, tables, metrics, stability_results(labels, runs, tables, metrics, render=render), several
    )


def stability_rows(found, per_section: int = 4) -> list[tuple[str, str, str]]:
    """The terminal's stability table, row by row (section, metric, across runs): the alignment
    of each table, then per analysis and table up to ``per_section`` metrics: headline metrics,
    then p-values, then correlations; counts and constants left out."""
    rows = []
    for s in found.tables:
        rows.append(
            (
                f"alignment / {s.table}",
                "procrustes_r2",
                f"{s.procrustes_r2:.3f} ± {s.procrustes_r2_sd:.3f} ({len(s.pairs)} pairs)",
            )
        )
        rows.append(
            (
                "",
                f"neighbour_overlap_{s.k}",
                f"{s.neighbour_overlap_10:.3f} ± {s.neighbour_overlap_sd:.3f} (chance {s.chance:.3f})",
            )
        )
    headline = {(r.analysis, r.table): list(r.headline) for rs in found.per_run for r in rs}

    def rank(m) -> int:
        if m.metric in headline.get((m.analysis, m.table), []):
            return 0
        if m.significant_in is not None:
            return 1
        if (
            m.metric.startswith(("n_", "chance_"))
            or m.metric in ("k", "seconds")
            or m.metric.endswith(("_used", "_seconds"))
            or not (m.sd > 0)
        ):
            return 9
        return 2 if any(w in m.metric for w in ("spearman", "rho", "_r", "overlap", "knn")) else 3

    order_of: dict[tuple, int] = {}
    for m in found.metrics:
        order_of.setdefault((m.analysis, m.table), len(order_of))
    ordered = sorted(
        (m for m in found.metrics if rank(m) < 9), key=lambda m: (order_of[(m.analysis, m.table)], rank(m))
    )
    shown: dict[tuple, int] = {}
    for m in ordered:
        key = (m.analysis, m.table)
        if shown.get(key, 0) >= per_section:
            continue
        rows.append((f"{m.analysis} / {m.table or 'run'}" if not shown.get(key) else "", m.metric, describe_metric(m)))
        shown[key] = shown.get(key, 0) + 1
    return rows
