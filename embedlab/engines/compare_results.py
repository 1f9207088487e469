"""What ``embedlab compare`` reports: outcomes per setting over seeds (mean, sd, n), the final
table, the verdict in words (what was varied, what was held fixed, whether a difference is
larger than the seed spread, whether the winner overfits), the curves, and the report's
sections. ``compare_runs`` builds the same from run folders that exist (``compare --runs``).

Rules stated in the verdict:

- a setting **overfits** when the validation loss of its last epoch (mean over seeds) is more
  than :data:`OVERFIT_RISE` (1 %) above its lowest;
- a difference between two settings is **within the seed spread** when it is smaller than the
  larger of their seed sds (n - 1); with one seed per setting the spread is unknown, and the
  verdict says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import pandas as pd

OVERFIT_RISE = 0.01
HELD_IN_WORDS = ("opt", "lr", "wd", "wd_mode", "schedule", "bs", "epochs", "n_factors")


@dataclass
class Outcome:
    """One trained configuration and seed: what it was, how it ended, how long it took."""

    label: str
    config: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, float]]
    wall_seconds: float
    run_dir: str | None = None
    seed: int | None = None

    def value(self, metric: str) -> float:
        v = self.metrics.get(metric)
        if v is None and self.history:
            v = self.history[-1].get(metric)
        return float("nan") if v is None else float(v)


@dataclass
class Setting:
    """The outcomes of one configuration over its seeds."""

    label: str
    outcomes: list[Outcome] = field(default_factory=list)

    def stats(self, metric: str) -> tuple[float, float, int]:
        """Mean, sd (n - 1; NaN for one seed) and n of ``metric`` over the finite runs."""
        vals = [o.value(metric) for o in self.outcomes]
        vals = [v for v in vals if math.isfinite(v)]
        if not vals:
            return float("nan"), float("nan"), 0
        return float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"), len(vals)

    def curve(self, key: str = "valid_loss") -> tuple[list[int], list[float]]:
        """Mean ``key`` per epoch over the seeds."""
        by_epoch: dict[int, list[float]] = {}
        for o in self.outcomes:
            for h in o.history:
                if key in h and h[key] is not None:
                    by_epoch.setdefault(int(h["epoch"]), []).append(float(h[key]))
        xs = sorted(by_epoch)
        return xs, [float(np.mean(by_epoch[x])) if all(map(math.isfinite, by_epoch[x])) else float("nan") for x in xs]

    @property
    def wall(self) -> float:
        return float(np.mean([o.wall_seconds for o in self.outcomes]))

    def overfit(self) -> tuple[int, float] | None:
        """(epoch of the lowest validation loss, rise to the last epoch) when it rose clearly."""
        xs, ys = self.curve()
        finite = [(y, x) for x, y in zip(xs, ys) if math.isfinite(y)]
        if len(finite) < 2 or not math.isfinite(ys[-1]):
            return None
        best, epoch = min(finite)
        rise = (ys[-1] - best) / abs(best) if best else float("inf")
        return (epoch, rise) if epoch < xs[-1] and rise > OVERFIT_RISE else None


def settings(outcomes: Sequence[Outcome]) -> list[Setting]:
    """Outcomes grouped by configuration label, in the order first trained."""
    found: dict[str, Setting] = {}
    for o in outcomes:
        found.setdefault(o.label, Setting(o.label)).outcomes.append(o)
    return list(found.values())


def _valid_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The validation metrics (floats named valid_*; counts such as valid_rows left out)."""
    return {
        k: float(v)
        for k, v in metrics.items()
        if k.startswith("valid_") and isinstance(v, float) and not k.endswith("_rows")
    }


def final_table(outcomes: list[Outcome], metric: str) -> pd.DataFrame:
    """One row per configuration (means over its seeds), best ``metric`` first (non-finite last);
    with several seeds also ``<metric> sd`` and ``seeds``."""
    rows = []
    groups = settings(outcomes)
    several = any(len(g.outcomes) > 1 for g in groups)
    for g in groups:
        c = g.outcomes[0].config
        row = {
            "config": g.label,
            "lr": c.get("lr"),
            "wd": c.get("wd"),
            "wd_mode": c.get("wd_mode"),
            "momentum": c.get("momentum")
            if c.get("momentum") is not None
            else (c["betas"][0] if c.get("betas") else None),
        }
        names = list(dict.fromkeys(k for o in g.outcomes for k in _valid_metrics(o.metrics)))
        for k in names:
            row[k] = float(np.mean([o.metrics.get(k, float("nan")) for o in g.outcomes]))
        if several:
            mean, sd, n = g.stats(metric)
            row[metric], row[f"{metric} sd"], row["seeds"] = mean, sd, n
        xs, ys = g.curve()
        finite = [(v, x) for x, v in zip(xs, ys) if math.isfinite(v)]
        if finite:
            best, epoch = min(finite)
            row["best_valid_loss"], row["best_epoch"] = best, epoch
        row["train_seconds"] = float(np.mean([float(o.metrics.get("train_seconds", float("nan"))) for o in g.outcomes]))
        row["wall_seconds"] = g.wall
        rows.append(row)
    df = _drop_duplicate_metrics(pd.DataFrame(rows))
    if metric in df:
        key = df[metric].where(df[metric].map(lambda v: math.isfinite(v)), float("inf"))
        df = df.assign(_k=key).sort_values("_k", kind="stable").drop(columns="_k")
    if "momentum" in df:  # momentum, or Adam's beta1 (as the run started it; one-cycle moves it)
        df = df.rename(columns={"momentum": "momentum/beta1"})
    return df.reset_index(drop=True)


def _drop_duplicate_metrics(df: pd.DataFrame) -> pd.DataFrame:
    """Leave out a valid_* column equal to valid_loss in every row (collab's valid_mse)."""
    if "valid_loss" not in df:
        return df
    same = [c for c in df.columns if c.startswith("valid_") and c != "valid_loss" and df[c].equals(df["valid_loss"])]
    return df.drop(columns=same)


def describe_held(held: dict[str, Any]) -> str:
    """'wd 0.05 (decoupled), schedule one-cycle, bs 256, epochs 5, n_factors 100'."""
    parts = []
    for k in HELD_IN_WORDS:
        if k not in held:
            continue
        if k == "wd_mode":
            continue
        v = held[k]
        text = f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
        if k == "wd" and "wd_mode" in held:
            text += f" ({held['wd_mode']})"
        parts.append(text)
    if "wd_mode" in held and "wd" not in held:
        parts.append(f"wd mode {held['wd_mode']}")
    return ", ".join(parts)


def _spread_words(a: Setting, b: Setting, metric: str) -> str:
    (ma, sa, na), (mb, sb, nb) = a.stats(metric), b.stats(metric)
    if na < 2 or nb < 2:
        return ""
    spread = max(sa, sb)
    if abs(mb - ma) < spread:
        return (
            f"; the difference ({abs(mb - ma):.4f}) is smaller than the seed spread (sd up to "
            f"{spread:.4f}), so the two are not told apart here"
        )
    return f"; the difference ({abs(mb - ma):.4f}) is larger than the seed spread (sd up to {spread:.4f})"


def summarize(
    outcomes: list[Outcome], metric: str, where: str, varied: str | None = None, held: dict[str, Any] | None = None
) -> str:
    """One paragraph: what was varied and held fixed, who won (mean over seeds), by how much
    against the seed spread, who came last, whether the winner overfits, how long each took."""
    groups = settings(outcomes)
    scored = [(g.stats(metric), g) for g in groups]
    good = sorted([(st, g) for st, g in scored if st[2] > 0], key=lambda t: t[0][0])
    bad = [g for st, g in scored if st[2] == 0]
    n_seeds = max(len(g.outcomes) for g in groups)
    if not good:
        return (
            f"On {where}, every configuration ended with a non-finite {metric}: lower the "
            f"learning rates (try `embedlab lr-find`)."
        )
    text = ""
    if varied is not None:
        text = f"Varied: {varied}. "
    ((v0, sd0, n0), win), rest = good[0], good[1:]
    epochs = len(win.outcomes[0].history)
    over = f" ± {sd0:.4f} over {n0} seeds" if n0 > 1 else ""
    text += (
        f"On {where}, {win.label} won with {metric} {v0:.4f}{over} after {epochs} epoch"
        f"{'s' if epochs != 1 else ''} ({win.wall:.1f} s)."
    )
    if rest:
        (v1, _, _), second = rest[0]
        text += (
            f" The runner-up, {second.label}, reached {v1:.4f} "
            f"({_pct(v1, v0)} worse, {second.wall:.1f} s){_spread_words(win, second, metric)}"
        )
        if len(rest) > 1:
            (vl, _, _), last = rest[-1]
            text += f"; {last.label} came last among the finished runs at {vl:.4f} ({_pct(vl, v0)} worse)."
        else:
            text += "."
    if n_seeds < 2 and rest:
        text += " One seed per setting, so the seed spread is unknown: --seeds 1,2,3 measures it."
    rose = win.overfit()
    if rose is not None:
        text += (
            f" The winner's validation loss was lowest at epoch {rose[0]} and then rose by "
            f"{100 * rose[1]:.1f}% (overfitting: a rise of more than {100 * OVERFIT_RISE:g}% from the "
            f"lowest to the last epoch), so more weight decay or fewer epochs may help."
        )
    others = [g.label for g in groups if g is not win and g.overfit() is not None]
    if others:
        text += f" Also overfitting by that rule: {', '.join(others)}."
    fastest = min(groups, key=lambda g: g.wall)
    if fastest is not win:
        text += f" The fastest run was {fastest.label} ({fastest.wall:.1f} s)."
    if bad:
        text += (
            f" {len(bad)} run{'s' if len(bad) > 1 else ''} diverged (non-finite {metric}): "
            f"{', '.join(g.label for g in bad)}; their learning rates are too high."
        )
    if held is not None:
        text += f" Held fixed: {describe_held(held) or 'everything else'}; the same split and rows for every run" + (
            ", and per seed the same initial weights." if n_seeds else "."
        )
    else:
        text += " Every configuration used the same model, split and seed."
    return text


def _finite(v) -> float:
    return float(v) if v is not None and math.isfinite(float(v)) else float("inf")


def _pct(v: float, ref: float) -> str:
    if ref == 0:
        return f"{v - ref:+.4f}"
    return f"{100 * (v - ref) / abs(ref):.1f}%"


def curve_figures(outcomes: list[Outcome]) -> list:
    """Validation loss per epoch of every configuration (mean over seeds) on one plot, and
    training loss."""
    from embedlab.toolkit.plotting import line_chart

    groups = settings(outcomes)
    figs = []
    for key, title, axis in (
        ("valid_loss", "Validation loss per epoch", "validation loss"),
        ("train_loss", "Training loss per epoch", "training loss"),
    ):
        series = {}
        for g in groups:
            xs, ys = g.curve(key)
            if xs:
                series[g.label] = (xs, ys)
        if series:
            suffix = " (mean over seeds)" if any(len(g.outcomes) > 1 for g in groups) else ""
            figs.append(line_chart(series, title + suffix, "epoch", axis, width=760, height=420))
    return figs


def build_results(
    outcomes: list[Outcome],
    metric: str,
    where: str,
    setup: dict[str, Any],
    notes: list[str],
    load_seconds: float = 0.0,
    title: str = "Settings compared",
    varied: str | None = None,
    held: dict[str, Any] | None = None,
) -> list:
    """The report's sections as AnalysisResults (plain data plus their figures)."""
    from embedlab.analysis import AnalysisResult

    table = final_table(outcomes, metric)
    hist = pd.DataFrame([{"config": o.label, "seed": o.seed, **h} for o in outcomes for h in o.history])
    keep = [c for c in ("config", "seed", "epoch", "train_loss", "valid_loss") if c in hist]
    keep += [c for c in hist.columns if c.startswith("valid_") and c not in keep]
    hist = _drop_duplicate_metrics(hist[keep] if keep else hist)
    main = AnalysisResult(
        analysis="compare",
        table=None,
        title=title,
        summary=summarize(outcomes, metric, where, varied, held),
        metrics={
            "configurations": float(len(settings(outcomes))),
            "runs": float(len(outcomes)),
            f"best {metric}": float(table[metric].iloc[0]) if metric in table and len(table) else float("nan"),
            "total wall seconds": float(sum(o.wall_seconds for o in outcomes)),
        },
        tables={"final metrics (best first)": table, "per-epoch history": hist},
        figures=curve_figures(outcomes),
        seconds=float(sum(o.wall_seconds for o in outcomes)),
    )
    setup_rows = pd.DataFrame({"setting": list(setup), "value": [str(v) for v in setup.values()]})
    setup_result = AnalysisResult(
        analysis="setup",
        table=None,
        title="Setup",
        summary="\n".join(notes),
        tables={"shared settings": setup_rows},
        seconds=load_seconds,
    )
    return [main, setup_result]


# ---------------------------------------------------------------------------- existing runs
def run_differences(configs: Sequence[dict[str, Any]]) -> tuple[list[str], dict[str, Any]]:
    """Config keys whose values differ between runs, and the values they share."""
    keys = list(dict.fromkeys(k for c in configs for k in c))
    varied = [k for k in keys if len({json.dumps(c.get(k), default=str, sort_keys=True) for c in configs}) > 1]
    held = {k: configs[0].get(k) for k in keys if k not in varied and configs[0].get(k) is not None}
    return varied, held


def check_comparable(labels: Sequence[str], runs: Sequence[Any], metric: str) -> None:
    """A one-line UsageError when ranking the runs by ``metric`` would compare numbers that mean
    different things: runs made by different trainers (each trainer defines its own loss), or
    predicting different tasks. Names each run's trainer."""
    from embedlab.errors import UsageError

    kinds = [(r.meta.get("trainer"), r.task) for r in runs]
    if len(set(kinds)) > 1:
        named = ", ".join(f"{lab} (trainer {t or '?'}, task {task or '?'})" for lab, (t, task) in zip(labels, kinds))
        raise UsageError(
            f"--runs: {named} were not made by one trainer for one task, so their {metric} "
            f"means different things and embedlab does not rank them; compare runs of one trainer"
        )


#: what a run was trained on and with, beside its config: runs that differ in any of these are
#: different settings (never pooled as seeds)
RUN_IDENTITY = ("dataset", "split", "trainer", "rows")


def run_setting(run, config: dict[str, Any]) -> dict[str, Any]:
    """A run's setting for ``compare --runs``: its dataset, split (without its seed), trainer,
    row counts (training/validation) and config (without the seed). Runs whose settings are
    equal differ by seed alone."""
    split = {k: v for k, v in (run.split or {}).items() if k != "seed"}
    name = split.get("name", "?")
    same_name_only = {k: v for k, v in split.items() if k != "name"}
    rows = f"{run.metrics.get('train_rows', '?')}/{run.metrics.get('valid_rows', '?')}"
    return {
        "dataset": run.dataset,
        "split": f"{name} {json.dumps(same_name_only, sort_keys=True, default=str)}" if same_name_only else name,
        "trainer": run.meta.get("trainer") or run.kind,
        "rows": rows,
        **{k: v for k, v in config.items() if k != "seed"},
    }


def _short(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def compare_runs(paths: Sequence[Any], metric: str = "valid_loss", render: bool = True, echo=None):
    """``compare --runs``: run folders or run groups -> (outcomes, report sections, JSON payload).

    Each run is one outcome, labelled with its folder; runs of one run group with the same
    settings (seeds of one configuration) are one setting. The verdict says which settings
    differ between the runs and whether they were validated on the same rows; the alignment
    of their tables (Procrustes, neighbour overlap) follows. ``echo`` receives one line per
    step (loading, aligning; the CLI's stderr). compute (:func:`_existing_runs`), describe
    (:func:`_runs_notes`, :func:`_runs_verdict`), assemble (here).
    """
    from embedlab.engines.stability import run_table_stability, stability_results

    echo = echo or (lambda _line: None)
    labels, runs, configs, settings, varied, held, outcomes = _existing_runs(paths, metric, echo)
    notes, where = (
        _runs_notes(runs),
        f"{len(runs)} existing runs of {', '.join(sorted({str(r.dataset) for r in runs}))}",
    )
    words = (
        ", ".join(
            f"{k} ({' / '.join(dict.fromkeys(_short(st.get(k)) for st in settings))})" if k in RUN_IDENTITY else k
            for k in varied
        )
        if varied
        else "nothing but the seed"
    )
    held_words = {k: v for k, v in held.items() if k in HELD_IN_WORDS}
    trainers = ", ".join(f"{lab} ({r.meta.get('trainer') or 'trainer not recorded'})" for lab, r in zip(labels, runs))
    results = build_results(
        outcomes, metric, where, {"runs": trainers, **held}, notes, title="Runs compared", varied=words, held=held_words
    )
    results[0].summary = _runs_verdict(results[0].summary, outcomes, metric, where, varied, held_words, notes)
    echo(f"aligning their tables (Procrustes, neighbor overlap over {len(runs) * (len(runs) - 1) // 2} pairs) ...")
    tables = run_table_stability(runs, labels)
    results[1:1] = stability_results(labels, runs, tables, [], render=render)[1:]  # the per-table sections
    payload = {
        "runs": [
            {"label": lab, "path": str(r.path), "trainer": r.meta.get("trainer"), "config": c, "metrics": r.metrics}
            for lab, r, c in zip(labels, runs, configs)
        ],
        "varied": varied,
        "differences": {k: [st.get(k) for st in settings] for k in varied},
        "metric": metric,
        "summary": results[0].summary,
        "notes": notes,
        "stability": [t.record() for t in tables],
    }
    return outcomes, results, payload


def _existing_runs(paths: Sequence[Any], metric: str, echo):
    """The runs loaded and checked comparable; their labels, configs, settings, what varies
    between them (every difference but the seed) and what they share, and one outcome each
    (labelled by what varies: runs that differ only in seed form one setting)."""
    from embedlab.errors import UsageError
    from embedlab.run import load_run
    from embedlab.engines.runs import expand_runs

    found = expand_runs(paths)
    if len(found) < 2:
        raise UsageError("--runs: give at least two runs (or a run group) to compare")
    echo(f"loading {len(found)} runs ...")
    runs = [load_run(p) for _, p in found]
    labels = [lab for lab, _ in found]
    check_comparable(labels, runs, metric)
    configs = [dict(r.config) for r in runs]
    settings = [run_setting(r, c) for r, c in zip(runs, configs)]
    varied, held = run_differences(settings)  # every difference but the seed: data, split, trainer, rows, config
    outcomes = []
    for label, run, cfg, setting in zip(labels, runs, configs, settings):
        name = " ".join(f"{k}={_short(setting.get(k))}" for k in varied) if varied else label
        outcomes.append(
            Outcome(
                name,
                cfg,
                dict(run.metrics),
                list(run.history),
                float(run.metrics.get("train_seconds", float("nan"))),
                str(run.path),
                run.seed,
            )
        )
    return labels, runs, configs, settings, varied, held, outcomes


def _runs_notes(runs) -> list[str]:
    """What the verdict says about the runs' data: different datasets, splits or rows, and
    where their times come from."""
    datasets = {str(r.dataset) for r in runs}
    splits = {json.dumps(r.split, sort_keys=True, default=str) for r in runs}
    rows = {(r.metrics.get("train_rows"), r.metrics.get("valid_rows")) for r in runs}
    notes = []
    if len(datasets) > 1:
        notes.append(
            f"The runs are of different datasets ({', '.join(sorted(datasets))}): their metrics are not comparable."
        )
    if len(splits) > 1 or len(rows) > 1:
        notes.append(
            "The runs were validated on different splits or rows: a difference in their metrics "
            "mixes the settings with the rows."
        )
    else:
        notes.append("Every run was validated on the same split (same split settings and row counts).")
    notes.append("Times are each run's own train_seconds, measured when and where it was trained (not side by side).")
    return notes


def _runs_verdict(
    summary: str,
    outcomes: list[Outcome],
    metric: str,
    where: str,
    varied: list[str],
    held_words: dict[str, Any],
    notes: list[str],
) -> str:
    """The verdict: the comparison's summary, or for replicates (nothing varies but the seed)
    the seed spread itself; then the notes."""
    if not varied:  # replicates: what matters is the spread itself
        mean, sd, _ = Setting("all", outcomes).stats(metric)
        vals = [o.value(metric) for o in outcomes]
        summary = (
            f"Varied: nothing but the seed. Over the {where}, {metric} is {mean:.4f} ± {sd:.4f} "
            f"(sd over seeds; range {min(vals):.4f}-{max(vals):.4f}): a difference between settings smaller "
            f"than this spread is not the settings' doing. Held fixed: {describe_held(held_words) or 'everything'}."
        )
    return summary + " " + " ".join(notes)
