"""``bias-ranking``: which entities the model likes or dislikes regardless of who rates them.

The learned bias of an item is the part of every prediction that does not depend on the user:
what the model adds after accounting for the user's own bias and for how well the user's taste
matches the item. The mean rating mixes that with *who* chose to rate the item: a film watched
mostly by its fans gets a high mean rating but a modest bias, while a film that even people who
dislike its kind rate well earns a high bias. Ranking by bias among the well-observed entities is
fast.ai's lesson-4 table; this analysis does it for every table that has a bias.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import Analysis, AnalysisResult
from embedlab.run import Run

from embedlab.toolkit.options import MIN_COUNT, N_SHOW, TOP_N
from embedlab.toolkit.selection import (
    color_column,
    count_column,
    entity_frame,
    fmt_num,
    join_labels,
    labels_meaningful,
    numeric_columns,
    plural,
    select_entities,
    spearman,
    target_column,
)


class BiasRanking(Analysis):
    name = "bias-ranking"
    title = "Bias ranking"
    description = (
        "Entities with the lowest and highest learned bias among the well-observed ones, "
        "beside their mean target and count; Spearman correlation between bias and mean "
        "target; a scatter of bias vs mean target sized by count."
    )
    options = [TOP_N, MIN_COUNT, N_SHOW]
    requires = ("bias",)

    def applies_to(self, run: Run) -> list[str]:
        return [name for name, t in run.tables.items() if t.bias_values is not None and len(t) >= 2]

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t = run.table(table)
        sel = select_entities(t, options.get("top_n"), options.get("min_count"))
        if len(sel) < 2:
            raise ValueError(
                f"only {len(sel)} {plural(t.name, len(sel))} left after filtering "
                f"({sel.description}); lower --min-count or raise --top-n"
            )
        n_show = max(1, int(options.get("n_show") or 10))
        cnt, tgt, color = count_column(t), target_column(t), color_column(t)
        meaningful = labels_meaningful(t)
        extra = [c for c in (color,) if c] if meaningful else [c for c in t.metadata.columns if c not in (cnt, tgt)][:3]
        frame = entity_frame(t, sel.index, [c for c in (tgt, cnt) if c] + extra)
        frame.insert(2, "bias", t.bias_values[sel.index].astype(float))
        frame["bias_rank"] = frame["bias"].rank(ascending=False, method="min").astype(int)
        if tgt:
            frame[f"{tgt}_rank"] = frame[tgt].rank(ascending=False, method="min").astype(int)

        shown_cols = ["label", "bias"] + [c for c in (tgt, cnt) if c] + extra
        if not meaningful:
            shown_cols.insert(1, "key")
            shown_cols.remove("label")
        by_bias = frame.sort_values(["bias", "label"], ascending=[False, True], kind="stable")
        highest = by_bias.head(n_show)[shown_cols].reset_index(drop=True)
        lowest = by_bias.iloc[::-1].head(n_show)[shown_cols].reset_index(drop=True)
        highest.insert(0, "rank", np.arange(1, len(highest) + 1))
        lowest.insert(0, "rank", np.arange(1, len(lowest) + 1))

        metrics: dict[str, float] = {"n_entities": float(len(sel)), "n_table": float(sel.n_total)}
        if sel.threshold is not None:
            metrics["min_count_used"] = float(sel.threshold)
        metrics["bias_mean"] = float(frame["bias"].mean())
        metrics["bias_std"] = float(frame["bias"].std(ddof=0))
        tables = {"highest bias": highest, "lowest bias": lowest}

        # Spearman of the bias with every numeric annotation (mean rating first).
        cols = [c for c in ([tgt] if tgt else []) + numeric_columns(t) if c]
        cols = list(dict.fromkeys(cols))
        corr_rows = []
        for c in cols:
            rho = spearman(frame["bias"], t.metadata[c].to_numpy()[sel.index])
            corr_rows.append({"column": c, "spearman_rho": rho})
            metrics[f"spearman_bias_{c}"] = rho
        if corr_rows:
            tables["bias vs annotations (Spearman)"] = pd.DataFrame(corr_rows)

        parts = [f"Ranking by learned bias over {sel.description}."]
        if meaningful:
            parts.append(
                f"Highest bias: {join_labels(highest['label'], 5)}. Lowest: {join_labels(lowest['label'], 5)}."
            )
        else:
            parts.append(
                f"Labels of this table only restate keys; highest bias: keys "
                f"{join_labels(highest['key'].astype(str), 5)}; lowest: keys "
                f"{join_labels(lowest['key'].astype(str), 5)}."
            )
        if tgt:
            rho = metrics[f"spearman_bias_{tgt}"]
            strength = "strongly" if abs(rho) >= 0.7 else "moderately" if abs(rho) >= 0.4 else "weakly"
            parts.append(
                f"Bias and {tgt} agree {strength} (Spearman rho {fmt_num(rho)}) but are not the same thing: "
                f"{tgt} averages each entity's observations as they happened, so it depends on what the "
                f"entity was paired with (a film watched mostly by its fans rates high; a user who only "
                f"watches acclaimed films rates high), whereas the bias is what the model adds for the "
                f"entity after accounting for the other side of each pair — its own bias and how well the "
                f"two match. A high bias means liked even by those who would not usually like its kind."
            )
            diff = frame["bias_rank"] - frame[f"{tgt}_rank"]
            disagree = frame.assign(rank_gap=diff).reindex(diff.abs().sort_values(ascending=False).index)
            gap_cols = (
                (["label"] if meaningful else ["key"])
                + ["bias", "bias_rank", tgt, f"{tgt}_rank"]
                + ([cnt] if cnt else [])
            )
            tables[f"largest disagreements between bias and {tgt}"] = disagree.head(n_show)[gap_cols].reset_index(
                drop=True
            )
        others = [
            r
            for r in corr_rows
            if r["column"] not in (tgt, cnt) and np.isfinite(r["spearman_rho"]) and abs(r["spearman_rho"]) >= 0.3
        ]
        for r in sorted(others, key=lambda r: -abs(r["spearman_rho"]))[:2]:
            parts.append(f"The bias also follows {r['column']} (rho {fmt_num(r['spearman_rho'])}).")
        data = {
            "frame": frame,
            "target": tgt,
            "count": cnt,
            "color": color,
            "meaningful": meaningful,
            "hover": ["label" if meaningful else "key", "bias"] + [c for c in (tgt, cnt) if c] + extra,
            "n_show": n_show,
        }
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=" ".join(parts),
            metrics=metrics,
            tables=tables,
            data=data,
            finding=(
                (
                    f"bias follows {tgt}"
                    if abs(metrics[f"spearman_bias_{tgt}"]) >= 0.7
                    else f"bias follows {tgt} moderately"
                    if abs(metrics[f"spearman_bias_{tgt}"]) >= 0.4
                    else f"bias and {tgt} barely agree"
                )
                + f", rho {fmt_num(metrics[f'spearman_bias_{tgt}'])}"
                if tgt
                else f"bias spread (std) {fmt_num(metrics['bias_std'])}"
            )
            + (f"; highest: {join_labels(highest['label'], 3)}" if meaningful else ""),
            headline=[f"spearman_bias_{tgt}"] if tgt else ["bias_std"],
        )

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import histogram, scatter

        d = result.data
        frame: pd.DataFrame = d["frame"]
        label_col = "label" if d["meaningful"] else "key"
        if d["target"]:
            order = frame["bias"].to_numpy().argsort()
            k = min(8, len(frame) // 2)  # extremes first, alternating; the plot drops overlapping labels
            ends = [int(i) for pair in zip(order[::-1][:k], order[:k]) for i in pair] if d["meaningful"] else None
            fig = scatter(
                frame.assign(key=frame["key"].astype(str)),
                d["target"],
                "bias",
                f"{result.table}: bias vs {d['target']}" + (f" (size: {d['count']})" if d["count"] else ""),
                hover=d["hover"],
                color_by=d["color"],
                size_by=d["count"],
                x_label=d["target"],
                y_label="learned bias",
                annotate=ends,
                label_column=label_col,
            )
            return [fig]
        return [histogram(frame["bias"].to_numpy(), f"{result.table}: distribution of the learned bias", "bias")]


@hookimpl
def embedlab_register_analyses(register):
    register(BiasRanking())
