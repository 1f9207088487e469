"""``pca``: the main directions of an embedding table and what they follow.

For each component: its share of the variance, the entities at either end (fast.ai's
"fac0: classics vs mainstream" table) and its Spearman correlation with every numeric
annotation (count, mean rating or mean sales, year...), so the summary can say "component 1
follows mean_sales (rho 0.98)" — the entity-embedding paper's store finding — without knowing
what a store is. Categorical annotations (genre, store type) are scored by eta squared: the
share of a component's variance their group means explain.

The components themselves come from :mod:`embedlab.toolkit.projection`, which ``embedlab
export --format csv`` uses too, so an exported CSV and this plot agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.run import Run

from embedlab.toolkit.projection import PCA_COMPONENTS, pca_columns, pca_project
from embedlab.toolkit.options import MIN_COUNT, N_SHOW, TOP_N
from embedlab.toolkit.selection import (
    categorical_columns,
    color_column,
    count_column,
    display_names,
    eta_squared,
    fmt_num,
    hover_columns,
    join_labels,
    labels_meaningful,
    neighbour_agreement,
    numeric_columns,
    plural,
    spearman,
    target_column,
)

STRONG_RHO = 0.3
MIN_ROWS = 10  # fewer entities than this are better read in a table than projected


class PCAAnalysis(Analysis):
    name = "pca"
    title = "PCA projection"
    description = (
        "Principal components of each embedding table: explained variance, the entities at "
        "either end of each component, correlations with every annotation, and a scatter of "
        "components 1-2 coloured by a category."
    )
    options = [
        AnalysisOption("n_components", int, PCA_COMPONENTS, "Principal components to describe."),
        TOP_N,
        MIN_COUNT,
        N_SHOW,
    ]

    def applies_to(self, run: Run) -> list[str]:
        return [name for name, t in run.tables.items() if len(t) >= MIN_ROWS and t.dim >= 2]

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        """compute (the components and what each follows), describe (the summary's sentences),
        assemble (the result)."""
        fit = compute(run.table(table), options)
        return assemble(self, table, fit, describe(fit))

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import scatter

        d = result.data
        plot: pd.DataFrame = d["plot"]
        if "PC2" not in plot:
            return []
        evr = d["evr"]
        annotate = None
        if d["meaningful"] and len(plot) > 0:
            orders = [plot[col].to_numpy().argsort() for col in ("PC1", "PC2")]
            annotate = []  # both ends of both axes, most extreme first; the plot drops overlapping labels
            for j in range(min(6, len(plot) // 2)):
                for o in orders:
                    annotate += [int(o[j]), int(o[-1 - j])]
        title = f"{result.table}: PCA components 1 and 2 ({len(plot):,} {plural(result.table or 'entity', len(plot))})"
        return [
            scatter(
                plot,
                "PC1",
                "PC2",
                title,
                hover=d["hover"],
                color_by=d["color"],
                x_label=f"PC1 ({100 * evr[0]:.1f}% of variance)",
                y_label=f"PC2 ({100 * evr[1]:.1f}% of variance)",
                annotate=annotate,
            )
        ]


# ---------------------------------------------------------------------------- compute
@dataclass
class Fitted:
    """What :func:`compute` found on one table: the entities analysed (``sel``, their display
    ``names``), the component ``scores`` and explained variance ratios ``evr``, the annotations'
    Spearman ``corr`` and categories' ``eta`` squared per component, every metric and table."""

    t: Any
    sel: Any
    scores: np.ndarray
    evr: np.ndarray
    names: np.ndarray
    meaningful: bool
    color: str | None
    n_show: int
    corr: pd.DataFrame
    eta: pd.DataFrame
    metrics: dict[str, float]
    tables: dict[str, pd.DataFrame]


def compute(t, options: dict[str, Any]) -> Fitted:
    """The components of table ``t`` and their relation to every annotation."""
    sel, scores, _comps, evr = pca_project(
        t, options.get("top_n"), options.get("min_count"), options.get("n_components") or PCA_COMPONENTS
    )
    n_show = max(1, min(int(options.get("n_show") or 10), len(sel) // 2))
    c = scores.shape[1]
    metrics: dict[str, float] = {"n_entities": float(len(sel)), "n_table": float(sel.n_total)}
    for i in range(c):
        metrics[f"explained_variance_{i + 1}"] = float(evr[i])
    metrics["explained_variance_total"] = float(evr.sum())
    tables: dict[str, pd.DataFrame] = {
        "explained variance": pd.DataFrame(
            {"component": np.arange(1, c + 1), "explained_variance_ratio": evr, "cumulative": np.cumsum(evr)}
        )
    }
    meta = t.metadata.iloc[sel.index].reset_index(drop=True)
    corr = _correlations(t, sel, scores, meta, metrics)
    if len(corr):
        tables["Spearman correlation of each component with the annotations"] = corr
    color = color_column(t)
    eta = _category_shares(t, scores, meta, color, metrics)
    if len(eta):
        tables["share of each component's variance explained by a category (eta squared)"] = eta
    if color and len(sel) >= 10:
        agree, chance = neighbour_agreement(scores[:, :2], meta[color], k=10)
        metrics[f"pc12_knn_same_{color}"] = agree
        metrics[f"chance_same_{color}"] = chance
    names = display_names(t, sel.index)
    for i in range(c):  # the ends of each component
        order = np.argsort(scores[:, i], kind="stable")
        lo, hi = order[:n_show], order[::-1][:n_show]
        m = min(len(lo), len(hi))
        tables[f"component {i + 1}: its two ends"] = pd.DataFrame(
            {
                "rank": np.arange(1, m + 1),
                "low end": names[lo[:m]],
                f"PC{i + 1} (low)": scores[lo[:m], i],
                "high end": names[hi[:m]],
                f"PC{i + 1} (high)": scores[hi[:m], i],
            }
        )
    return Fitted(t, sel, scores, evr, names, labels_meaningful(t), color, n_show, corr, eta, metrics, tables)


def _correlations(t, sel, scores: np.ndarray, meta: pd.DataFrame, metrics: dict[str, float]) -> pd.DataFrame:
    """Spearman's rho of each component with every numeric annotation and the bias."""
    series = {col: meta[col].to_numpy(dtype=float) for col in numeric_columns(t)}
    if t.bias_values is not None:
        series["bias"] = t.bias_values[sel.index].astype(float)
    corr = pd.DataFrame({"column": list(series)})
    for i in range(scores.shape[1]):
        corr[f"PC{i + 1}"] = [spearman(scores[:, i], v) for v in series.values()]
        for col, rho in zip(series, corr[f"PC{i + 1}"]):
            metrics[f"pc{i + 1}_rho_{col}"] = float(rho)
    return corr


def _category_shares(
    t, scores: np.ndarray, meta: pd.DataFrame, color: str | None, metrics: dict[str, float]
) -> pd.DataFrame:
    """Eta squared of each component for every categorical annotation (the colour column first)."""
    cat_cols = categorical_columns(t)
    if color and color not in cat_cols:
        cat_cols.insert(0, color)
    eta = pd.DataFrame({"column": cat_cols})
    for i in range(scores.shape[1]):
        eta[f"PC{i + 1}"] = [eta_squared(scores[:, i], meta[col]) for col in cat_cols]
        for col, e in zip(cat_cols, eta[f"PC{i + 1}"]):
            metrics[f"pc{i + 1}_eta2_{col}"] = float(e)
    return eta


# ---------------------------------------------------------------------------- describe
def describe(fit: Fitted) -> list[str]:
    """The summary a person reads first, sentence by sentence."""
    c, evr, metrics, color = fit.scores.shape[1], fit.evr, fit.metrics, fit.color
    pct = ", ".join(f"{100 * v:.1f}%" for v in evr)
    parts = [
        f"PCA fitted on {fit.sel.description}. The first {c} components explain {pct} of the "
        f"variance ({100 * evr.sum():.1f}% together)."
    ]
    tgt = target_column(fit.t)
    if tgt:
        parts.append(f"Signs are chosen so that each component's high end has the higher {tgt}.")
    quiet: list[int] = []
    for i in range(c):
        followed = _followed(fit, i)
        follows = (
            ("follows " + (", ".join(followed[:-1]) + " and " if len(followed) > 1 else "") + followed[-1])
            if followed
            else f"follows no annotation strongly (all |rho| < {STRONG_RHO})"
        )
        ends_tab = fit.tables[f"component {i + 1}: its two ends"]
        ends = (
            (f"; low end: {join_labels(ends_tab['low end'], 4)}; high end: {join_labels(ends_tab['high end'], 4)}")
            if fit.meaningful and i < 3
            else ""
        )
        if followed or ends:
            parts.append(f"Component {i + 1} {follows}{ends}.")
        else:
            quiet.append(i + 1)
    if quiet:
        which = (
            f"Component {quiet[0]} follows"
            if len(quiet) == 1
            else f"Components {', '.join(map(str, quiet[:-1]))} and {quiet[-1]} follow"
        )
        parts.append(f"{which} no annotation strongly (all |rho| < {STRONG_RHO}).")
    if color and f"pc12_knn_same_{color}" in metrics:
        parts.append(
            f"In the plane of components 1-2, {100 * metrics[f'pc12_knn_same_{color}']:.0f}% of an "
            f"entity's 10 nearest neighbours share its {color} (chance: "
            f"{100 * metrics[f'chance_same_{color}']:.0f}%)."
        )
    return parts


def _followed(fit: Fitted, i: int) -> list[str]:
    """What component ``i`` follows: up to two annotations with |rho| >= STRONG_RHO, then the
    category that explains the most of its variance (at least 10 %)."""
    corr, eta, followed = fit.corr, fit.eta, []
    col_rho = [(col, corr.loc[j, f"PC{i + 1}"]) for j, col in enumerate(corr["column"])] if len(corr) else []
    col_rho = [(col, r) for col, r in col_rho if np.isfinite(r) and abs(r) >= STRONG_RHO]
    for col, r in sorted(col_rho, key=lambda x: -abs(x[1]))[:2]:
        followed.append(f"{col} (rho {fmt_num(r)})")
    cat = [(col, e) for col, e in zip(eta["column"], eta[f"PC{i + 1}"])] if len(eta) else []
    cat = [(col, e) for col, e in cat if np.isfinite(e) and e >= 0.1]
    for col, e in sorted(cat, key=lambda x: -x[1])[:1]:
        followed.append(f"{col} (explains {100 * e:.0f}% of its variance)")
    return followed


# ---------------------------------------------------------------------------- assemble
def assemble(analysis: PCAAnalysis, table: str, fit: Fitted, parts: list[str]) -> AnalysisResult:
    """The result: summary, metrics, tables, the plot's data, the finding and the map."""
    t, sel, scores, c = fit.t, fit.sel, fit.scores, fit.scores.shape[1]
    plot = t.frame.iloc[sel.index].reset_index(drop=True)
    if not fit.meaningful:
        plot["label"] = fit.names
    for col, values in pca_columns(scores).items():
        plot[col] = values
    data = {
        "plot": plot,
        "hover": hover_columns(t),
        "color": fit.color,
        "evr": fit.evr,
        "meaningful": fit.meaningful,
        "n_show": fit.n_show,
        "count": count_column(t),
    }
    first = next(
        (
            p.split(";")[0].rstrip(".").replace("Component 1", "component 1", 1)
            for p in parts
            if p.startswith("Component 1 ")
        ),
        "component 1 follows no annotation strongly",
    )
    tgt = target_column(t)
    return AnalysisResult(
        analysis.name,
        table,
        analysis.title,
        summary=" ".join(parts),
        metrics=fit.metrics,
        tables=fit.tables,
        data=data,
        finding=f"{c} components explain {100 * fit.evr.sum():.0f}% of the variance; {first}",
        headline=["explained_variance_total"]
        + [f"pc1_rho_{x}" for x in (tgt, "bias") if f"pc1_rho_{x}" in fit.metrics],
        maps={
            f"PCA of the {len(sel):,} analysed": pd.DataFrame(
                {"key": t.keys[sel.index], "x": scores[:, 0], "y": scores[:, 1] if c > 1 else np.zeros(len(sel))}
            )
        },
    )


@hookimpl
def embedlab_register_analyses(register):
    register(PCAAnalysis())
