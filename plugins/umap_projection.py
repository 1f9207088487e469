"""``umap``: a 2-D UMAP map of each embedding table, with recorded parameters.

The map comes from :mod:`embedlab.toolkit.projection` (which ``embedlab export --format csv
--umap`` uses too, so an exported CSV and this plot agree); its docstring explains the
choices: seeded up to ``--umap-seeded-max`` points (default 5,000), unseeded and parallel
above (the layout varies slightly between invocations, and the report says so), a seeded
sample above ``--umap-max-points`` (default 50,000), and exact neighbours wherever they are
cheap.

Every choice is stated in the result's summary and recorded in its ``parameters`` table.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit.projection import (
    DEFAULT_MAX_POINTS,
    DEFAULT_SEEDED_MAX,
    neighbourhood_kept,
    umap_columns,
    umap_project,
)
from embedlab.toolkit.options import MIN_COUNT, SEED, TOP_N
from embedlab.toolkit.selection import (
    color_column,
    count_column,
    hover_columns,
    labels_meaningful,
    neighbour_agreement,
    plural,
)

MIN_ROWS = 50  # below this a UMAP map says nothing a PCA plot does not


class UMAPAnalysis(Analysis):
    name = "umap"
    title = "UMAP projection"
    description = (
        "A 2-D UMAP map (umap-learn) of each table, coloured by a category, with hover labels. "
        "Seeded up to --umap-seeded-max points, parallel above; larger tables than "
        "--umap-max-points are sampled (said in the report)."
    )
    options = [
        TOP_N,
        MIN_COUNT,
        SEED,
        AnalysisOption("umap_neighbors", int, 15, "UMAP n_neighbors (local vs global structure)."),
        AnalysisOption("umap_min_dist", float, 0.1, "UMAP min_dist (how tightly points pack)."),
        AnalysisOption("umap_metric", str, "cosine", "Distance between embedding vectors."),
        AnalysisOption(
            "umap_seeded_max",
            int,
            DEFAULT_SEEDED_MAX,
            "Largest map computed seeded (reproducible but single-threaded).",
        ),
        AnalysisOption(
            "umap_max_points",
            int,
            DEFAULT_MAX_POINTS,
            "Map at most this many points (a seeded random sample above it; 0: no limit).",
        ),
    ]

    def applies_to(self, run: Run) -> list[str]:
        return [name for name, t in run.tables.items() if len(t) >= MIN_ROWS and t.dim >= 2]

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t: EmbeddingTable = run.table(table)
        seed = int(options.get("seed") if options.get("seed") is not None else 0)
        max_points = int(
            options.get("umap_max_points") if options.get("umap_max_points") is not None else DEFAULT_MAX_POINTS
        )
        sel, rows, coords, params = umap_project(
            t,
            options.get("top_n"),
            options.get("min_count"),
            seed=seed,
            max_points=max_points,
            n_neighbors=options.get("umap_neighbors") or 15,
            min_dist=options.get("umap_min_dist") if options.get("umap_min_dist") is not None else 0.1,
            metric=options.get("umap_metric") or "cosine",
            seeded_max=options.get("umap_seeded_max")
            if options.get("umap_seeded_max") is not None
            else DEFAULT_SEEDED_MAX,
        )
        sampled = params["sampled"]
        noun = plural(t.name, len(rows))
        parts = [f"UMAP of {sel.description}."]
        if sampled:
            parts.append(
                f"The map shows a random sample of {len(rows):,} of these {len(sel):,} "
                f"{plural(t.name, len(sel))} (seed {seed}; --umap-max-points {max_points:,}), so that a "
                f"large table does not "
                f"take minutes; raise --umap-max-points (0: no limit) to map them all."
            )
        how = (
            f"{params['metric']} metric, n_neighbors {params['n_neighbors']}, min_dist {params['min_dist']}, "
            f"{params['neighbours']} neighbours, umap-learn {params['umap_version']}"
        )
        if params["random_state"] is not None:
            parts.append(
                f"Parameters: {how}, random_state {params['random_state']} — reproducible on this machine "
                f"(umap-learn runs single-threaded when seeded; maps of up to "
                f"{options.get('umap_seeded_max') or DEFAULT_SEEDED_MAX:,} points are seeded)."
            )
        else:
            parts.append(
                f"Parameters: {how}, unseeded on {params['n_jobs']} threads with PCA initialisation and "
                f"200 epochs, because {len(rows):,} points exceed the seeded limit "
                f"(--umap-seeded-max): seeded umap-learn is single-threaded and several times slower. "
                f"The layout varies slightly between invocations; distances within it do not carry "
                f"meaning, only neighbourhoods do."
            )
        metrics: dict[str, float] = {
            "n_points": float(len(rows)),
            "n_selected": float(len(sel)),
            "n_table": float(sel.n_total),
            "seeded": float(params["random_state"] is not None),
            "sampled": float(sampled),
            "umap_seconds": float(params["seconds"]),
        }
        # How faithful is the map? Share of each point's 10 nearest neighbours (in the
        # embedding) that stay among its 10 nearest on the map.
        metrics["neighbours_kept_10"] = neighbourhood_kept(t.vectors[rows], coords, params["metric"], seed=seed)
        parts.append(
            f"On average {100 * metrics['neighbours_kept_10']:.0f}% of an entity's 10 nearest neighbours "
            f"in the embedding are among its 10 nearest on the map."
        )
        color = color_column(t)
        if color and len(rows) >= 10:
            groups = t.metadata[color].to_numpy()[rows]
            agree, chance = neighbour_agreement(coords, groups, k=10, seed=seed)
            metrics[f"knn_same_{color}"] = agree
            metrics[f"chance_same_{color}"] = chance
            parts.append(
                f"On the map, {100 * agree:.0f}% of an entity's 10 nearest neighbours share its {color} "
                f"(chance: {100 * chance:.0f}%)."
            )
        meaningful = labels_meaningful(t)
        plot = t.frame.iloc[rows].reset_index(drop=True)
        if not meaningful:
            plot["label"] = [f"{t.name} {k}" for k in t.keys[rows]]
        for col, values in umap_columns(coords).items():
            plot[col] = values
        ptable = pd.DataFrame({"parameter": list(params), "value": [str(v) for v in params.values()]})
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=" ".join(parts),
            metrics=metrics,
            tables={"parameters": ptable},
            finding=f"the map keeps {100 * metrics['neighbours_kept_10']:.0f}% of each entity's 10 "
            f"nearest neighbours"
            + (
                f"; {100 * metrics[f'knn_same_{color}']:.0f}% of map "
                f"neighbours share its {color} (chance "
                f"{100 * metrics[f'chance_same_{color}']:.0f}%)"
                if f"knn_same_{color}" in metrics
                else ""
            ),
            headline=["neighbours_kept_10"] + [k for k in (f"knn_same_{color}",) if k in metrics],
            maps={"UMAP": pd.DataFrame({"key": t.keys[rows], "x": coords[:, 0], "y": coords[:, 1]})},
            data={"plot": plot, "hover": hover_columns(t), "color": color, "noun": noun, "count": count_column(t)},
        )

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import scatter

        d = result.data
        plot = d["plot"]
        title = f"{result.table}: UMAP ({len(plot):,} {d['noun']})"
        return [scatter(plot, "UMAP 1", "UMAP 2", title, hover=d["hover"], color_by=d["color"])]


@hookimpl
def embedlab_register_analyses(register):
    register(UMAPAnalysis())
