"""embedlab-kmeans-genres: do an embedding's KMeans clusters match a categorical annotation?

For each table with a categorical annotation (its ``color_column``, e.g. a genre), cluster the
entity vectors with KMeans, choosing k by silhouette, and compare the clusters with the
categories (adjusted mutual information: 1 = the same partition, about 0 = unrelated). Tables
without a category are skipped, with the reason.
"""

from __future__ import annotations

from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult, SkipTable
from embedlab.toolkit.options import MIN_COUNT, SEED, TOP_N
from embedlab.toolkit.selection import color_column, select_entities


class KMeansGenres(Analysis):
    name = "kmeans-genres"
    title = "KMeans clusters vs categories"
    description = (
        "Clusters each table's vectors with KMeans (k chosen by silhouette) and compares "
        "the clusters with the table's categorical annotation (adjusted mutual information)."
    )
    options = [
        TOP_N,
        MIN_COUNT,
        SEED,  # shared options: declared once, in embedlab.toolkit.options
        AnalysisOption("kmeans_max_k", click.IntRange(2, 50), 8, "Largest k tried (from 2)."),
        AnalysisOption(
            "kmeans_normalize", bool, True, "Cluster unit-length vectors (the cosine geometry of the embedding)."
        ),
    ]

    def applies_to(self, run, options: dict[str, Any]) -> list[str]:
        return list(run.table_names)  # a table without categories is skipped in run(), with the reason

    def run(self, run, table: str, options: dict[str, Any], progress=None) -> AnalysisResult:
        """``progress`` (optional fourth parameter): the runner's callback, to move its bar."""
        from sklearn.cluster import KMeans
        from sklearn.metrics import adjusted_mutual_info_score, silhouette_score

        t = run.table(table)
        column = color_column(t)
        if column is None:
            raise SkipTable("no categorical annotation to compare the clusters with")
        selection = select_entities(t, options["top_n"], options["min_count"])
        vectors = t.vectors[selection.index].astype(np.float64)
        if options["kmeans_normalize"]:
            vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        truth = t.metadata[column].astype(str).to_numpy()[selection.index]
        ks = list(range(2, min(options["kmeans_max_k"], len(vectors) - 1) + 1))
        if not ks:
            raise SkipTable(f"only {len(vectors)} entities selected; KMeans needs at least 3")
        labels = {}
        for n, k in enumerate(ks):
            if progress is not None:
                progress(n, len(ks), f"k = {k}")
            labels[k] = KMeans(k, n_init=10, random_state=options["seed"]).fit_predict(vectors)
        silhouette = {k: float(silhouette_score(vectors, labels[k])) for k in ks}
        k = max(silhouette, key=silhouette.get)
        ami = float(adjusted_mutual_info_score(truth, labels[k]))
        categories = int(pd.Series(truth).nunique())
        crosstab = pd.crosstab(pd.Series(truth, name=column), pd.Series(labels[k], name="cluster"))
        return AnalysisResult(
            analysis=self.name,
            table=table,
            title=self.title,
            summary=(
                f"{selection.description} KMeans chooses k = {k} clusters (silhouette "
                f"{silhouette[k]:.2f}); the table has {categories} {column!r} categories, and the "
                f"clusters agree with them with AMI = {ami:.2f} (1: the same partition, 0: unrelated)."
            ),
            finding=f"{k} clusters, {categories} categories, AMI {ami:.2f}",
            metrics={
                "ami": ami,
                "k": float(k),
                "categories": float(categories),
                "silhouette": silhouette[k],
                "n_entities": float(len(vectors)),
            },
            headline=["ami", "k"],
            tables={"categories by cluster": crosstab.reset_index()},
            data={"silhouette": silhouette},
        )

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import line_chart

        ks = sorted(result.data["silhouette"])
        return [
            line_chart(
                {"silhouette": (ks, [result.data["silhouette"][k] for k in ks])},
                f"{result.table}: silhouette by k",
                "k",
                "silhouette",
            )
        ]


@hookimpl
def embedlab_register_analyses(register):
    register(KMeansGenres())
