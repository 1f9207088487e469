"""``finetune``: does starting from pretrained embeddings help, and how should they be trained?

Lesson 5's reuse: keep what a network already learned, train the new parts first, then adapt
everything with small learning rates for the pretrained layers (fastai's
``fit(1, slice(1e-5, 1e-3))``). Given a run that was initialised from a pretrained source
(``embedlab train ... --init-from SOURCE``), this analysis retrains the run's target task (its
dataset, loader options and split, reloaded through the registry; its own config, epochs and
seed) four ways:

* ``scratch``: no pretrained vectors, every layer group at the run's max lr HI;
* ``frozen``: pretrained tables, the ``embeddings`` group frozen, the rest at HI;
* ``full``: pretrained tables, everything trained at one lr HI (``--lr HI:HI``);
* ``discriminative``: pretrained tables, lrs spread from LO (embeddings) to HI (the last
  group): the run's own spread (``LO:HI``, or ``:HI``, fastai's ``slice(HI)``) when it had
  one, else ``HI/100:HI`` (fastai's ``fine_tune``).

It reports the validation curves of all four, final metrics and training time, the winner
and its margin, and the drift of each entity: the cosine distance between its pretrained and
its fine-tuned vector (cosine, so the uniform shrinking of weight decay does not count),
which entities moved most and least, and drift against how often the entity appears in the
target's training data.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import RUN_LEVEL, Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import UsageError
from embedlab.training import LRSlice
from embedlab.run import EmbeddingTable, Run

from embedlab.toolkit.options import N_SHOW
from embedlab.toolkit.selection import fmt_num, spearman
from embedlab.toolkit.retrain import reload_dataset, trainer_of

ARMS = ("scratch", "frozen", "full", "discriminative")
ARM_LABELS = {
    "scratch": "from scratch",
    "frozen": "pretrained, embeddings frozen",
    "full": "pretrained, full fine-tuning (one lr)",
    "discriminative": "pretrained, discriminative lrs",
}
METRIC_PREFERENCE = ("valid_rmse", "valid_rmspe", "valid_mape", "valid_logloss", "valid_loss")
INIT_KEYS = ("init_from", "init_table", "init_keys", "freeze", "freeze_to", "lr")

FT_ARMS = AnalysisOption(
    "ft_arms", str, ",".join(ARMS), "Comma-separated strategies to train: scratch, frozen, full, discriminative."
)
FT_EPOCHS = AnalysisOption("ft_epochs", int, None, "Epochs of every strategy (default: the run's own).")
FT_METRIC = AnalysisOption(
    "ft_metric",
    str,
    None,
    "Validation metric that decides (lower is better; default: valid_rmse, else valid_rmspe, else valid_loss).",
)


def arm_configs(run: Run, arms: tuple[str, ...] = ARMS, epochs: int | None = None) -> dict[str, dict[str, Any]]:
    """The trainer config of each strategy: the run's config with its init, freezing and lr
    replaced (see module docstring)."""
    init = run.meta.get("init") or {}
    if not init.get("from"):
        raise UsageError(
            f"run {run.path or ''} was not initialised from pretrained vectors (no 'init' in "
            f"run.json); train it with --init-from SOURCE"
        )
    config = dict(run.config)
    spec = config.get("lr")
    parsed = LRSlice.parse(spec) if spec is not None else None
    group_lrs = [g.get("lr") for g in (run.meta.get("layer_groups") or {}).values() if g.get("lr")]
    hi = max(group_lrs) if group_lrs else (parsed.hi if isinstance(parsed, LRSlice) else float(parsed or 5e-3))
    spread = parsed if isinstance(parsed, LRSlice) and parsed.lo != parsed.hi else LRSlice(hi=hi, lo=hi / 100)
    base = {k: v for k, v in config.items() if k not in INIT_KEYS}
    if epochs:
        base["epochs"] = int(epochs)
    pretrained = {
        **base,
        "init_from": init["from"],
        "init_table": list(config.get("init_table") or []),
        "init_keys": config.get("init_keys"),
    }
    every = {
        "scratch": {**base, "lr": hi},
        "frozen": {**pretrained, "lr": hi, "freeze": "embeddings"},
        "full": {**pretrained, "lr": LRSlice(hi=hi, lo=hi)},
        "discriminative": {**pretrained, "lr": spread},
    }
    unknown = [a for a in arms if a not in every]
    if unknown:
        raise UsageError(f"--ft-arms: unknown strategy {unknown[0]!r}; choose from {', '.join(ARMS)}")
    return {a: every[a] for a in arms}


def cosine_drift(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """1 - cos(before, after) per row, exactly 0 where the vectors are identical (NaN where
    either is zero)."""
    before = np.asarray(before, dtype=np.float64)
    after = np.asarray(after, dtype=np.float64)
    nb = np.linalg.norm(before, axis=1)
    na = np.linalg.norm(after, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = (before * after).sum(1) / (nb * na)
    cos = np.where((nb > 0) & (na > 0), cos, np.nan)
    out = 1.0 - np.clip(cos, -1.0, 1.0)
    out[(before == after).all(axis=1) & (nb > 0)] = 0.0
    return out


def count_bins(counts: pd.Series) -> pd.Series:
    """ "0 (unseen)" and the quartiles of the positive counts, as ordered labels ("12-40")."""
    counts = counts.astype(float)
    labels = pd.Series("0 (unseen)", index=counts.index, dtype=object)
    positive = counts[counts > 0]
    if len(positive):
        q = pd.qcut(positive, min(4, len(positive)), labels=False, duplicates="drop")  # ties stay together
        for b in sorted(set(q)):
            members = positive[q == b]
            lo, hi = int(members.min()), int(members.max())
            labels[members.index] = f"{lo:,}" if lo == hi else f"{lo:,}-{hi:,}"
    order = ["0 (unseen)"] + list(dict.fromkeys(labels.loc[positive.sort_values(kind="stable").index]))
    return pd.Series(pd.Categorical(labels, categories=order, ordered=True), index=counts.index)


def _parse_arms(text: str | None) -> tuple[str, ...]:
    arms = tuple(a.strip() for a in str(text or ",".join(ARMS)).split(",") if a.strip())
    if not arms:
        raise UsageError("--ft-arms: name at least one strategy")
    return arms


class Finetune(Analysis):
    name = "finetune"
    by_default = False  # retrains models for minutes: run only with --only finetune
    requires = ("training_data",)  # reloads the data the run was trained on
    title = "Fine-tuning from pretrained embeddings"
    description = (
        "Retrains the run's target task from scratch, with frozen pretrained embeddings, with full "
        "fine-tuning at one lr and with discriminative lrs (same data, split, epochs and seed); "
        "validation curves, final metrics, time, the winner, and how far each entity's vector "
        "moved from its pretrained start. Applies to runs trained with --init-from; it trains "
        "the task up to four times."
    )
    options = [FT_ARMS, FT_EPOCHS, FT_METRIC, N_SHOW]

    def applies_to(self, run: Run) -> list:
        return [RUN_LEVEL] if (run.meta.get("init") or {}).get("from") else []

    def run(self, run: Run, table: str | None, options: dict[str, Any], progress=None) -> AnalysisResult:
        arms = _parse_arms(options.get("ft_arms"))
        configs = arm_configs(run, arms, options.get("ft_epochs"))
        dataset = reload_dataset(run)
        trainer = trainer_of(run)
        trained: dict[str, Run] = {}
        for n, (arm, cfg) in enumerate(configs.items()):  # the runner's bar follows each retraining
            if progress is not None:
                progress(n, len(configs), f"training {arm}")
            trained[arm] = trainer.train(dataset, dict(cfg), progress=False)
        metric = options.get("ft_metric") or next(
            (m for m in METRIC_PREFERENCE if all(m in r.metrics for r in trained.values())), None
        )
        if metric is None or not all(metric in r.metrics for r in trained.values()):
            have = sorted(k for k in next(iter(trained.values())).metrics if k.startswith("valid_"))
            raise UsageError(f"--ft-metric {metric!r}: the runs report {', '.join(have) or 'no validation metric'}")

        rows, curves = [], []
        for arm, r in trained.items():
            hist = [h for h in r.history if metric in h]
            best = min(hist, key=lambda h: h[metric]) if hist else {}
            groups = r.meta.get("layer_groups") or {}
            rows.append(
                {
                    "strategy": arm,
                    "description": ARM_LABELS[arm],
                    metric: float(r.metrics[metric]),
                    f"best {metric}": float(best.get(metric, np.nan)),
                    "best epoch": int(best.get("epoch", 0)),
                    "train seconds": float(r.metrics.get("train_seconds", np.nan)),
                    "lr per group": ", ".join(
                        f"{g}: {'frozen' if v.get('frozen') else format(v['lr'], '.2g')}" for g, v in groups.items()
                    ),
                }
            )
            for h in r.history:
                curves.append(
                    {
                        "strategy": arm,
                        "epoch": int(h["epoch"]),
                        **{k: float(v) for k, v in h.items() if k.startswith("valid_") or k == "train_loss"},
                    }
                )
        arms_table = pd.DataFrame(rows).sort_values(metric, kind="stable").reset_index(drop=True)
        metrics: dict[str, float] = {}
        for row in rows:
            metrics[f"{row['strategy']}_{metric}"] = row[metric]
            metrics[f"{row['strategy']}_train_seconds"] = row["train seconds"]

        # drift of every entity from its pretrained vector
        drift_frames, drift_rows, by_count_rows = self._drift(run, trained)
        tables: dict[str, pd.DataFrame] = {
            "strategies (best first)": arms_table,
            "validation curves": pd.DataFrame(curves),
        }
        if drift_rows:
            tables["drift from the pretrained vectors"] = pd.DataFrame(drift_rows)
            tables["drift by how often the entity appears in the target"] = pd.DataFrame(by_count_rows)
            for row in drift_rows:
                metrics[f"drift_median_{row['strategy']}_{row['table']}"] = row["median drift"]
                metrics[f"drift_count_spearman_{row['strategy']}_{row['table']}"] = row["Spearman(drift, count)"]
        n_show = max(1, int(options.get("n_show") or 10))
        mover = next((a for a in ("discriminative", "full") if a in trained), None)
        for name, frame in list(drift_frames.items())[:3]:
            col = f"drift ({mover})" if mover else None
            if col is None or col not in frame or frame[col].notna().sum() < 2:
                continue
            seen = frame[(frame["count"] > 0) & frame[col].notna()]
            show = ["label", "key", "count", col]
            tables[f"{name}: moved most ({mover})"] = seen.nlargest(n_show, col)[show].reset_index(drop=True)
            tables[f"{name}: moved least ({mover})"] = seen.nsmallest(n_show, col)[show].reset_index(drop=True)

        summary = self._summary(run, trained, arms_table, metric, drift_rows, dataset)
        best = arms_table.iloc[0]
        metrics["winner_" + metric] = float(best[metric])
        if "scratch" in trained and best["strategy"] != "scratch":
            metrics["gain_vs_scratch"] = float(metrics[f"scratch_{metric}"] - best[metric])
        data = {"metric": metric, "curves": pd.DataFrame(curves), "drift": drift_frames, "mover": mover}
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=summary,
            metrics=metrics,
            tables=tables,
            data=data,
            finding=f"best: {best['strategy']} ({metric} {float(best[metric]):.4g})"
            + (f", {metrics['gain_vs_scratch']:.3g} better than from scratch" if "gain_vs_scratch" in metrics else ""),
            headline=["winner_" + metric] + [k for k in ("gain_vs_scratch",) if k in metrics],
        )

    # ------------------------------------------------------------------ drift
    @staticmethod
    def _drift(run: Run, trained: dict[str, Run]):
        from embedlab.training.pretrained import align, read_sources

        init = run.meta["init"]
        inited = [t for t, e in (init.get("tables") or {}).items() if e.get("matched")]
        movers = [a for a in ("frozen", "full", "discriminative") if a in trained]
        if not inited or not movers:
            return {}, [], []
        sources, _ = read_sources(
            init["from"],
            [
                f"{t}={e.get('source_table') or t}" if e.get("source_table") else t
                for t, e in init["tables"].items()
                if t in inited
            ],
            run.config.get("init_keys"),
            inited,
        )
        frames: dict[str, pd.DataFrame] = {}
        rows, by_count = [], []
        for name in inited:
            ref: EmbeddingTable = trained[movers[0]].table(name)
            t_rows, s_rows = align(ref.keys, sources[name])
            if len(t_rows) < 2:
                continue
            counts = ref.count
            counts = np.zeros(len(ref)) if counts is None else np.nan_to_num(np.asarray(counts, dtype=float))
            frame = pd.DataFrame({"key": ref.keys[t_rows], "label": ref.labels[t_rows], "count": counts[t_rows]})
            pre = sources[name].vectors[s_rows]
            for arm in movers:
                frame[f"drift ({arm})"] = cosine_drift(pre, trained[arm].table(name).vectors[t_rows])
            frames[name] = frame
            seen = frame["count"] > 0
            bins = count_bins(frame["count"])
            for arm in movers:
                d = frame[f"drift ({arm})"]
                ds = d[seen].dropna()  # entities the target's training data has: the ones that can move
                rows.append(
                    {
                        "strategy": arm,
                        "table": name,
                        "entities seen in target": int(len(ds)),
                        "median drift": float(ds.median()) if len(ds) else np.nan,
                        "mean drift": float(ds.mean()) if len(ds) else np.nan,
                        "90th percentile": float(np.percentile(ds, 90)) if len(ds) else np.nan,
                        "Spearman(drift, count)": spearman(d[seen], frame.loc[seen, "count"]),
                        "entities unseen in target": int((~seen).sum()),
                        "mean drift, unseen in target": float(d[~seen].mean()) if (~seen).any() else np.nan,
                    }
                )
                for label, group in d.groupby(bins, sort=True, observed=True):
                    by_count.append(
                        {
                            "strategy": arm,
                            "table": name,
                            "target count": str(label),
                            "entities": int(group.notna().sum()),
                            "mean drift": float(group.mean()),
                            "median drift": float(group.median()),
                        }
                    )
        return frames, rows, by_count

    # ------------------------------------------------------------------ words
    @staticmethod
    def _summary(run: Run, trained, table: pd.DataFrame, metric: str, drift_rows, dataset) -> str:
        init = run.meta["init"]
        source = init.get("from")
        src_run = init.get("run") or {}
        rows = next(iter(trained.values())).metrics.get("train_rows", len(dataset.train))
        where = f"{run.dataset} (split {dataset.split.get('name', '?')}, {int(rows):,} training rows)"
        src = f"{source}" + (
            f" ({src_run.get('dataset')}, split {(src_run.get('split') or {}).get('name', '?')})" if src_run else ""
        )
        first = table.iloc[0]
        parts = [
            f"Target: {where}; pretrained source: {src}; every strategy trained "
            f"{next(iter(trained.values())).config.get('epochs')} epochs with seed {run.seed}."
        ]
        if len(table) > 1:
            second = table.iloc[1]
            gap = float(second[metric] - first[metric])
            parts.append(
                f"Winner: {ARM_LABELS[first['strategy']]} with {metric} {first[metric]:.4f}, "
                f"{gap:.4f} ({gap / second[metric]:.1%}) better than the runner-up, "
                f"{ARM_LABELS[second['strategy']]} ({second[metric]:.4f})."
            )
            if "scratch" in set(table["strategy"]) and first["strategy"] != "scratch":
                s = float(table.loc[table["strategy"] == "scratch", metric].iloc[0])
                parts.append(
                    f"Against training from scratch ({s:.4f}) pretraining gained {s - first[metric]:.4f} "
                    f"({(s - first[metric]) / s:.1%})."
                )
            elif first["strategy"] == "scratch":
                parts.append("Pretraining did not help on this target: training from scratch was best.")
        else:
            parts.append(f"Only {ARM_LABELS[first['strategy']]} was trained: {metric} {first[metric]:.4f}.")
        times = ", ".join(f"{r['strategy']} {r['train seconds']:.1f}s" for _, r in table.iterrows())
        parts.append(f"Training time: {times}.")
        largest = [
            t
            for t, _ in sorted(
                {r["table"]: r["entities seen in target"] for r in drift_rows}.items(), key=lambda kv: -kv[1]
            )[:2]
        ]
        for row in drift_rows:
            if (
                row["strategy"] in ("discriminative", "full")
                and row["table"] in largest
                and np.isfinite(row["median drift"])
            ):
                rho = row["Spearman(drift, count)"]
                trend = (
                    "entities seen more often in the target moved further"
                    if rho > 0.2
                    else "entities seen more often in the target moved less"
                    if rho < -0.2
                    else "drift barely depends on how often an entity appears in the target"
                )
                parts.append(
                    f"Drift ({row['strategy']}, {row['table']}): median cosine distance "
                    f"{row['median drift']:.3g} from the pretrained vectors over the "
                    f"{row['entities seen in target']:,} entities the target's training rows contain; "
                    f"{trend} (Spearman {fmt_num(rho)})."
                )
        if any(r["strategy"] == "frozen" for r in drift_rows):
            frozen = [r["median drift"] for r in drift_rows if r["strategy"] == "frozen"]
            if all(np.isfinite(v) and v < 1e-6 for v in frozen):
                parts.append("The frozen strategy left every pretrained vector exactly as it was.")
        return " ".join(parts)

    # ------------------------------------------------------------------ figures
    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import line_chart, scatter

        d = result.data
        metric = d["metric"]
        curves: pd.DataFrame = d["curves"]
        figs = []
        if len(curves) and metric in curves:
            series = {
                ARM_LABELS.get(a, a): (g["epoch"].to_numpy(), g[metric].to_numpy())
                for a, g in curves.groupby("strategy", sort=False)
            }
            figs.append(line_chart(series, f"validation {metric} per epoch", "epoch", metric))
        mover = d.get("mover")
        for name, frame in list(d["drift"].items())[:3]:
            col = f"drift ({mover})" if mover else None
            if col is None or col not in frame or frame[col].notna().sum() < 2:
                continue
            f = frame[frame[col].notna()].assign(log_count=np.log10(frame["count"] + 1.0), key=frame["key"].astype(str))
            figs.append(
                scatter(
                    f,
                    "log_count",
                    col,
                    f"{name}: drift from the pretrained vector ({mover})",
                    hover=["label", "key", "count", col],
                    x_label="log10(1 + count in the target)",
                    y_label="cosine distance to the pretrained vector",
                )
            )
        return figs


@hookimpl
def embedlab_register_analyses(register):
    register(Finetune())
