"""``tsne``: a 2-D t-SNE map of each embedding table, seeded, with its parameters stated.

The paper's state map (Guo & Berkhahn 2016, Fig. 3) and TensorBoard's Projector use t-SNE;
this analysis draws it beside the ``pca`` and ``umap`` maps. The coordinates come from
:func:`embedlab.toolkit.projection.tsne_project` (the one place: ``embedlab export --format csv
--tsne`` and ``geography --projection tsne`` use the same layout): scikit-learn's Barnes-Hut
TSNE, perplexity ``min(--tsne-perplexity, max(2, (n - 1) / 3))``, learning rate "auto", PCA
initialisation, 1,000 iterations, the ``--distance`` metric, ``random_state`` = ``--seed``;
above ``--tsne-max-points`` (5,000) entities a seeded random sample is mapped, and the summary
says so.

For a table whose entities carry ``latitude``/``longitude`` metadata (Rossmann's State) the
map comes with the statistics that make Fig. 3 a finding rather than a picture: a Mantel test
(Spearman correlation between embedding distances and great-circle distances, permutation
p-value) and a Procrustes fit of this very t-SNE map onto the geographic plane (R², permutation
p-value), computed with the same toolkit functions, seed and permutations as the ``geography``
analysis with ``--projection tsne`` (so the two agree).

Runs only when named (``--only tsne``): t-SNE takes seconds per thousand points.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit import stats as S
from embedlab.toolkit.projection import (
    DEFAULT_TSNE_MAX_POINTS,
    TSNE_PERPLEXITY,
    neighbourhood_kept,
    tsne_columns,
    tsne_project,
)
from embedlab.toolkit.options import DISTANCE, MIN_COUNT, PERMUTATIONS, SEED, TOP_N
from embedlab.toolkit.selection import (
    color_column,
    metadata_coordinates,
    hover_columns,
    labels_meaningful,
    neighbour_agreement,
    plural,
)

MIN_ROWS = 5  # t-SNE of fewer points says nothing; Rossmann's 12 states are mapped
MAX_LABELS = 60  # tables up to this size get every point labelled, as the paper's figure

TSNE_PERPLEXITY_OPT = AnalysisOption(
    "tsne_perplexity", float, TSNE_PERPLEXITY, "t-SNE perplexity (capped at (n - 1) / 3 for small tables)."
)
TSNE_MAX_POINTS = AnalysisOption(
    "tsne_max_points",
    int,
    DEFAULT_TSNE_MAX_POINTS,
    "Map at most this many points (a seeded random sample above it; 0: no limit).",
)


class TSNEAnalysis(Analysis):
    name = "tsne"
    by_default = False  # seconds per thousand points: run with --only tsne (or add it to --only)
    title = "t-SNE projection"
    description = (
        "A seeded 2-D t-SNE map (scikit-learn) of each table, parameters stated, sampled above "
        "--tsne-max-points; for tables with latitude/longitude (Rossmann's State) the paper's Fig. 3 "
        "with its Mantel and Procrustes statistics."
    )
    options = [TOP_N, MIN_COUNT, SEED, DISTANCE, PERMUTATIONS, TSNE_PERPLEXITY_OPT, TSNE_MAX_POINTS]

    def applies_to(self, run: Run) -> list[str]:
        return [name for name, t in run.tables.items() if len(t) >= MIN_ROWS and t.dim >= 2]

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t: EmbeddingTable = run.table(table)
        seed = int(options.get("seed") if options.get("seed") is not None else 0)
        max_points = int(
            options.get("tsne_max_points") if options.get("tsne_max_points") is not None else DEFAULT_TSNE_MAX_POINTS
        )
        perplexity = float(options.get("tsne_perplexity") or TSNE_PERPLEXITY)
        metric = options.get("distance") or "cosine"
        geo = metadata_coordinates(t)
        notes: list[str] = []
        if geo is not None and len(t) <= DEFAULT_TSNE_MAX_POINTS:  # the metric geography would use (its fallbacks)
            _, metric, notes = S.embedding_distances(t.vectors, metric)
        sel, rows, coords, params = tsne_project(
            t,
            options.get("top_n"),
            options.get("min_count"),
            seed=seed,
            max_points=max_points,
            perplexity=perplexity,
            metric=metric,
        )
        noun = plural(t.name, len(rows))
        parts = [f"t-SNE of {sel.description}."]
        if params["sampled"]:
            parts.append(
                f"The map shows a random sample of {len(rows):,} of these {len(sel):,} "
                f"{plural(t.name, len(sel))} (seed {seed}; --tsne-max-points {max_points:,}); raise "
                f"--tsne-max-points (0: no limit) to map them all."
            )
        parts.append(
            f"Parameters: scikit-learn {params['sklearn_version']} Barnes-Hut TSNE, perplexity "
            f"{params['perplexity']:g}, learning rate auto, PCA initialisation, {params['max_iter']:,} "
            f"iterations, {params['metric']} metric, random_state {params['random_state']} "
            f"(reproducible); final KL divergence {params['kl_divergence']:.3f}, {params['seconds']:.1f} s "
            f"(a shared machine). Distances between clusters on a t-SNE map carry little meaning; "
            f"neighbourhoods do."
        )
        parts.extend(notes)
        metrics: dict[str, float] = {
            "n_points": float(len(rows)),
            "n_selected": float(len(sel)),
            "n_table": float(sel.n_total),
            "sampled": float(params["sampled"]),
            "perplexity": float(params["perplexity"]),
            "kl_divergence": float(params["kl_divergence"]),
            "tsne_seconds": float(params["seconds"]),
        }
        k = 10 if len(rows) > 30 else max(1, min(3, len(rows) - 2))
        metrics[f"neighbours_kept_{k}"] = neighbourhood_kept(t.vectors[rows], coords, params["metric"], k=k, seed=seed)
        if np.isfinite(metrics[f"neighbours_kept_{k}"]):
            parts.append(
                f"On average {100 * metrics[f'neighbours_kept_{k}']:.0f}% of an entity's {k} nearest "
                f"neighbours in the embedding are among its {k} nearest on the map."
            )
        color = color_column(t)
        if color and len(rows) >= 10 and t.metadata[color].iloc[rows].nunique() < len(rows):  # groups, not names
            agree, chance = neighbour_agreement(coords, t.metadata[color].to_numpy()[rows], k=10, seed=seed)
            metrics[f"knn_same_{color}"], metrics[f"chance_same_{color}"] = agree, chance
            parts.append(
                f"On the map, {100 * agree:.0f}% of an entity's 10 nearest neighbours share its {color} "
                f"(chance: {100 * chance:.0f}%)."
            )
        geo_text = ""
        if geo is not None:
            geo_text = self._geography(t, rows, coords, geo, metric, options, seed, metrics)
            if geo_text:
                parts.append(geo_text)
        plot = t.frame.iloc[rows].reset_index(drop=True)
        if not labels_meaningful(t):
            plot["label"] = [f"{t.name} {key}" for key in t.keys[rows]]
        for col, values in tsne_columns(coords).items():
            plot[col] = values
        ptable = pd.DataFrame({"parameter": list(params), "value": [str(v) for v in params.values()]})
        tables = {"parameters": ptable}
        if geo is not None and "mantel_r" in metrics:
            tables["geography of the t-SNE map"] = pd.DataFrame(
                [
                    {
                        "statistic": "Mantel r (Spearman, embedding vs great-circle distance)",
                        "value": metrics["mantel_r"],
                        "p": metrics["mantel_p"],
                    },
                    {
                        "statistic": "Procrustes R² (t-SNE map onto the geographic plane)",
                        "value": metrics["procrustes_r2"],
                        "p": metrics["procrustes_p"],
                    },
                ]
            )
        finding = f"{table}: t-SNE map of {len(rows):,} {noun}"
        if "mantel_r" in metrics:
            finding += (
                f", beside the geography: Mantel r {metrics['mantel_r']:.2f} (p {metrics['mantel_p']:.3g}), "
                f"Procrustes R² {metrics['procrustes_r2']:.2f} (p {metrics['procrustes_p']:.3g})"
            )
        maps = {"t-SNE": pd.DataFrame({"key": t.keys[rows], "x": coords[:, 0], "y": coords[:, 1]})}
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=" ".join(parts),
            metrics=metrics,
            tables=tables,
            finding=finding,
            maps=maps,
            headline=[m for m in ("mantel_r", "procrustes_r2") if m in metrics],
            data={"plot": plot, "hover": hover_columns(t), "color": color, "noun": noun},
        )

    @staticmethod
    def _geography(
        t: EmbeddingTable,
        rows: np.ndarray,
        coords: np.ndarray,
        geo,
        metric: str,
        options: dict[str, Any],
        seed: int,
        metrics: dict[str, float],
    ) -> str:
        """Mantel and Procrustes statistics of the mapped entities that have coordinates (the
        geography analysis's functions and defaults), written into ``metrics``; their sentence."""
        lat, lon = geo[0][rows], geo[1][rows]
        keep = np.isfinite(lat) & np.isfinite(lon)
        n = int(keep.sum())
        if n < 4:
            return ""
        perms = int(options.get("permutations") or 9999)
        d_emb = S.pairwise_distances(t.vectors[rows][keep], metric)
        d_geo = S.great_circle_km(lat[keep], lon[keep])
        mantel = S.mantel(d_emb, d_geo, S.affordable_permutations(n, perms), method="spearman", seed=seed)
        proc = S.procrustes_test(
            np.asarray(coords[keep], dtype=np.float64), S.local_plane_km(lat[keep], lon[keep]), perms, seed=seed
        )
        metrics.update(
            mantel_r=mantel.r, mantel_p=mantel.p, procrustes_r2=proc.r2, procrustes_p=proc.p, geo_entities=float(n)
        )
        return (
            f"Does the map resemble the geography (the paper's Fig. 3)? Mantel r = {mantel.r:.2f} "
            f"({S.describe_p(mantel.p, mantel.permutations, mantel.exact, n)}) between embedding and "
            f"great-circle distances of {n} {plural(t.name, n)}; this t-SNE map, rotated and scaled onto the "
            f"geographic plane (Procrustes), reproduces R² = {proc.r2:.2f} of its spread "
            f"(p = {proc.p:.4g}, {perms:,} permutations)."
        )

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import scatter

        d = result.data
        plot = d["plot"]
        title = f"{result.table}: t-SNE ({len(plot):,} {d['noun']})"
        m = result.metrics
        if "mantel_r" in m:
            title += f" — Mantel r {m['mantel_r']:.2f} (p {m['mantel_p']:.3g}), Procrustes R² {m['procrustes_r2']:.2f}"
        annotate = list(range(len(plot))) if len(plot) <= MAX_LABELS else None
        return [scatter(plot, "t-SNE 1", "t-SNE 2", title, hover=d["hover"], color_by=d["color"], annotate=annotate)]


@hookimpl
def embedlab_register_analyses(register):
    register(TSNEAnalysis())
