"""embedlab-drift: how far each entity moves between runs (a multi-run analysis).

``embedlab analyze RUN_A RUN_B [...] --only drift``: every table the runs share is aligned to
the first run's (orthogonal Procrustes on the entities they share) and each entity's shift is
measured; the entities that move most are listed. Declared with ``runs = "several"`` and the
one hook ``run_several(runs, options)``, so no ``--drift-against RUN`` flag is needed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from embedlab import Analysis, AnalysisOption, AnalysisResult, SkipTable, hookimpl

__version__ = "0.1.0"


class Drift(Analysis):
    name = "drift"
    title = "Drift between runs"
    description = "How far each entity moves between runs, after aligning each table to the first run's."
    runs = "several"
    options = [AnalysisOption("drift_top", int, 5, "Entities listed per table (those that moved most).")]

    def run_several(self, runs, options):
        labels = list(runs)
        first = runs[labels[0]]
        shared = [t for t in first.table_names if all(t in r.tables for r in runs.values())]
        if not shared:
            raise SkipTable("the runs share no table")
        metrics, tables = {}, {}
        for name in shared:
            base = first.table(name)
            for label in labels[1:]:
                other = runs[label].table(name)
                keys = np.intersect1d(base.keys, other.keys)
                a = base.vectors[pd.Index(base.keys).get_indexer(keys)].astype(float)
                b = other.vectors[pd.Index(other.keys).get_indexer(keys)].astype(float)
                a, b = a - a.mean(0), b - b.mean(0)
                if a.shape[1] != b.shape[1]:
                    continue
                u, _, vt = np.linalg.svd(b.T @ a)
                shift = np.linalg.norm(b @ (u @ vt) - a, axis=1) / (np.linalg.norm(a, axis=1).mean() or 1.0)
                metrics[f"{name}_median_shift_{label}"] = float(np.median(shift))
                order = np.argsort(-shift)[: int(options["drift_top"])]
                labels_of = pd.Series(base.labels, index=base.keys)
                tables[f"{name}: moved most ({label})"] = pd.DataFrame(
                    {"key": keys[order], "label": labels_of.reindex(keys[order]).to_numpy(), "shift": shift[order]}
                )
        summary = f"{len(labels)} runs, each aligned to {labels[0]}: " + "; ".join(
            f"{k.replace('_median_shift_', ' vs ')} median shift {v:.2f}" for k, v in metrics.items()
        )
        return AnalysisResult(self.name, None, self.title, summary=summary, metrics=metrics, tables=tables)


@hookimpl
def embedlab_register_analyses(register):
    register(Drift())
