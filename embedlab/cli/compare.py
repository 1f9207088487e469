"""``embedlab compare DATASET``: the same model and split, trained with several optimizers.

Lesson 5 in one command: every configuration (optimizer x lr x wd x wd-mode) trains the
dataset's registered trainer on one loaded split with the same seed, and a report shows the
validation-loss curves on one plot, the final metrics, the wall time and a paragraph saying
which won. It only uses the dataset and trainer registries and the shared fit options
(:func:`embedlab.training.fitconfig.fit_options`), so it works for every dataset, built-in or third-party,
whose trainer takes those options.
"""
from __future__ import annotations

import itertools
import json
import math
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import click
import pandas as pd

from embedlab.cli.common import DatasetGroup, load_for_command, merge_params
from embedlab.errors import UsageError
from embedlab.registry import DatasetEntry, TrainerEntry
from embedlab.training.fitconfig import HYPERPARAMETERS, OPTIMIZERS, WD_MODES, fit_config

DEFAULT_OPTS = "sgd,momentum,rmsprop,adam,adamw"
LISTED = ("opt", "lr", "wd", "wd_mode")  # options that take comma-separated lists here


@dataclass
class Outcome:
    """One trained configuration: what it was, how it ended, how long it took."""

    label: str
    config: dict[str, Any]
    metrics: dict[str, float]
    history: list[dict[str, float]]
    wall_seconds: float
    run_dir: str | None = None

    def value(self, metric: str) -> float:
        v = self.metrics.get(metric)
        if v is None and self.history:
            v = self.history[-1].get(metric)
        return float("nan") if v is None else float(v)


# ---------------------------------------------------------------------------- parsing
def parse_list(text: str | None, what: str, convert=str, choices: Sequence[str] | None = None) -> list:
    """``"a,b"`` -> ``[a, b]`` (converted and checked); None or empty -> ``[None]``."""
    if text is None or not str(text).strip():
        return [None]
    out = []
    for part in str(text).split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = convert(part)
        except ValueError:
            raise UsageError(f"--{what} {text!r}: {part!r} is not a valid value") from None
        if choices is not None and value not in choices:
            raise UsageError(f"--{what} {part!r}: choose from {', '.join(choices)}")
        if isinstance(value, float) and not (math.isfinite(value) and value >= 0):
            raise UsageError(f"--{what} {part!r}: must be a finite number >= 0")
        if value not in out:
            out.append(value)
    return out or [None]


def plan(base: dict[str, Any], trainer, opts: list, lrs: list, wds: list, modes: list) -> tuple[list, list[str]]:
    """The configurations to train, each ``(label, config)``, and notes on what was skipped.

    ``--momentum/--betas/--eps`` reach the optimizers that take them only. Every config is
    resolved here, so a bad combination fails before any training.
    """
    notes: list[str] = []
    for name in ("momentum", "betas", "eps"):
        if base.get(name) is not None:
            takers = [o for o in opts if name in HYPERPARAMETERS[o]]
            if not takers:
                raise UsageError(f"--{name} applies to none of --opt {','.join(opts)}")
            skipped = [o for o in opts if o not in takers]
            if skipped:
                notes.append(f"--{name} applies to {', '.join(takers)} only (not {', '.join(skipped)})")
    vary = {"lr": len(lrs) > 1, "wd": len(wds) > 1, "wd_mode": len(modes) > 1}
    out = []
    for opt, lr, wd, mode in itertools.product(opts, lrs, wds, modes):
        cfg = dict(base, opt=opt, lr=lr, wd=wd, wd_mode=mode or "auto")
        for name in ("momentum", "betas", "eps"):
            if name not in HYPERPARAMETERS[opt]:
                cfg[name] = None
        if opt == "adamw" and mode == "l2":
            notes.append("skipped adamw with --wd-mode l2 (adamw is Adam with decoupled decay; "
                         "adam with l2 is the L2 version)")
            continue
        resolved = fit_config(cfg, trainer.options)
        parts = [opt]
        if vary["lr"] or lr is None:
            parts.append(f"lr={resolved.lr:g}")
        if vary["wd"]:
            parts.append(f"wd={resolved.wd:g}")
        if vary["wd_mode"]:
            parts.append(resolved.wd_mode)
        out.append((" ".join(parts), cfg))
    if not out:
        raise UsageError("nothing to compare: every combination was skipped")
    return out, notes


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label).strip("_") or "run"


# ---------------------------------------------------------------------------- running
def compare(dataset, trainer, configs: list[tuple[str, dict[str, Any]]], progress: bool = False,
            runs_dir: Path | None = None, echo=None) -> list[Outcome]:
    """Train each ``(label, config)`` on ``dataset`` with ``trainer``; the same seed for each.

    The global RNGs are re-seeded before each run, so trainers that draw their initial
    weights from torch's global generator start every configuration from the same weights.
    """
    from embedlab.training.learner import seed_everything  # torch: only once something trains

    echo = echo or _stderr
    _warm_up()
    outcomes = []
    for n, (label, cfg) in enumerate(configs, 1):
        echo(f"[{n}/{len(configs)}] {label}")
        seed_everything(42 if cfg.get("seed") is None else int(cfg["seed"]))
        t0 = time.perf_counter()
        run = trainer.train(dataset, dict(cfg), progress=progress)
        wall = time.perf_counter() - t0
        where = None
        if runs_dir is not None:
            where = str(run.save(Path(runs_dir) / _slug(label)))
        out = Outcome(label, dict(run.config), dict(run.metrics), list(run.history), wall, where)
        outcomes.append(out)
        finals = ", ".join(f"{k} {v:.4f}" for k, v in _valid_metrics(out.metrics).items())
        echo(f"    {finals}  ({wall:.1f} s)")
    return outcomes


def _stderr(msg: str) -> None:
    click.echo(msg, err=True)


def _warm_up() -> None:
    """One step of every optimizer class on a throwaway tensor.

    The first optimizer step in a process imports torch._dynamo (seconds); without this the
    first configuration's wall time would carry that cost.
    """
    import torch

    for make in (lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9), lambda p: torch.optim.RMSprop(p),
                 lambda p: torch.optim.Adam(p), lambda p: torch.optim.AdamW(p)):
        param = torch.zeros(1, requires_grad=True)
        param.grad = torch.ones(1)
        make([param]).step()


def _valid_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The validation metrics (floats named valid_*; counts such as valid_rows left out)."""
    return {k: float(v) for k, v in metrics.items()
            if k.startswith("valid_") and isinstance(v, float) and not k.endswith("_rows")}


# ---------------------------------------------------------------------------- results
def final_table(outcomes: list[Outcome], metric: str) -> pd.DataFrame:
    """One row per configuration, best ``metric`` first (non-finite last)."""
    rows = []
    for o in outcomes:
        c = o.config
        row = {"config": o.label, "lr": c.get("lr"), "wd": c.get("wd"),
               "wd_mode": c.get("wd_mode"),
               "momentum": c.get("momentum") if c.get("momentum") is not None else
               (c["betas"][0] if c.get("betas") else None)}
        row.update(_valid_metrics(o.metrics))
        losses = [h.get("valid_loss", float("nan")) for h in o.history]
        finite = [(v, i) for i, v in enumerate(losses, 1) if math.isfinite(v)]
        if finite:
            best, epoch = min(finite)
            row["best_valid_loss"], row["best_epoch"] = best, epoch
        row["train_seconds"] = float(o.metrics.get("train_seconds", float("nan")))
        row["wall_seconds"] = o.wall_seconds
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
    same = [c for c in df.columns if c.startswith("valid_") and c != "valid_loss"
            and df[c].equals(df["valid_loss"])]
    return df.drop(columns=same)


def summarize(outcomes: list[Outcome], metric: str, where: str) -> str:
    """One paragraph: who won, by how much, who came last, how long each took."""
    scored = [(o.value(metric), o) for o in outcomes]
    good = sorted([(v, o) for v, o in scored if math.isfinite(v)], key=lambda t: t[0])
    bad = [o for v, o in scored if not math.isfinite(v)]
    if not good:
        return (f"On {where}, every configuration ended with a non-finite {metric}: lower the "
                f"learning rates (try `embedlab lr-find`).")
    (v0, win), rest = good[0], good[1:]
    epochs = len(win.history)
    text = (f"On {where}, {win.label} won with {metric} {v0:.4f} after {epochs} epoch"
            f"{'s' if epochs != 1 else ''} ({win.wall_seconds:.1f} s).")
    if rest:
        v1, second = rest[0]
        text += (f" The runner-up, {second.label}, reached {v1:.4f} "
                 f"({_pct(v1, v0)} worse, {second.wall_seconds:.1f} s)")
        if len(rest) > 1:
            vl, last = rest[-1]
            text += f"; {last.label} came last among the finished runs at {vl:.4f} ({_pct(vl, v0)} worse)."
        else:
            text += "."
    best_epoch = min(range(len(win.history)), key=lambda i: _finite(win.history[i].get("valid_loss")),
                     default=None)
    if best_epoch is not None and best_epoch + 1 < epochs:
        text += (f" The winner's validation loss was lowest at epoch {best_epoch + 1} and then rose: "
                 f"it overfits by the end, so more weight decay or fewer epochs may help.")
    fastest = min(outcomes, key=lambda o: o.wall_seconds)
    if fastest is not win:
        text += f" The fastest run was {fastest.label} ({fastest.wall_seconds:.1f} s)."
    if bad:
        text += (f" {len(bad)} run{'s' if len(bad) > 1 else ''} diverged (non-finite {metric}): "
                 f"{', '.join(o.label for o in bad)}; their learning rates are too high.")
    text += (" Every configuration used the same model, split and seed, so the differences come "
             "from the optimizer settings alone.")
    return text


def _finite(v) -> float:
    return float(v) if v is not None and math.isfinite(float(v)) else float("inf")


def _pct(v: float, ref: float) -> str:
    if ref == 0:
        return f"{v - ref:+.4f}"
    return f"{100 * (v - ref) / abs(ref):.1f}%"


def curve_figures(outcomes: list[Outcome]) -> list:
    """Validation loss per epoch of every configuration on one plot (and training loss)."""
    from embedlab.toolkit.plotting import line_chart

    def series(key):
        out = {}
        for o in outcomes:
            xs = [h["epoch"] for h in o.history if key in h]
            ys = [h[key] if math.isfinite(h[key]) else float("nan") for h in o.history if key in h]
            if xs:
                out[o.label] = (xs, ys)
        return out

    figs = []
    valid = series("valid_loss")
    if valid:
        figs.append(line_chart(valid, "Validation loss per epoch", "epoch", "validation loss",
                               width=760, height=420))
    train = series("train_loss")
    if train:
        figs.append(line_chart(train, "Training loss per epoch", "epoch", "training loss",
                               width=760, height=420))
    return figs


def build_results(outcomes: list[Outcome], metric: str, where: str, setup: dict[str, Any],
                  notes: list[str], load_seconds: float = 0.0) -> list:
    """The report's sections as AnalysisResults (plain data plus their figures)."""
    from embedlab.analysis import AnalysisResult

    table = final_table(outcomes, metric)
    hist = pd.DataFrame([{"config": o.label, **h} for o in outcomes for h in o.history])
    keep = [c for c in ("config", "epoch", "train_loss", "valid_loss") if c in hist]
    keep += [c for c in hist.columns if c.startswith("valid_") and c not in keep]
    hist = _drop_duplicate_metrics(hist[keep] if keep else hist)
    main = AnalysisResult(
        analysis="compare", table=None, title="Optimizers compared",
        summary=summarize(outcomes, metric, where),
        metrics={"configurations": float(len(outcomes)),
                 f"best {metric}": float(table[metric].iloc[0]) if metric in table and len(table) else float("nan"),
                 "total wall seconds": float(sum(o.wall_seconds for o in outcomes))},
        tables={"final metrics (best first)": table, "per-epoch history": hist},
        figures=curve_figures(outcomes), seconds=float(sum(o.wall_seconds for o in outcomes)))
    setup_rows = pd.DataFrame({"setting": list(setup), "value": [str(v) for v in setup.values()]})
    setup_result = AnalysisResult(analysis="setup", table=None, title="Setup",
                                  summary="\n".join(notes), tables={"shared settings": setup_rows},
                                  seconds=load_seconds)
    return [main, setup_result]


def write_compare_report(path: str | Path, outcomes: list[Outcome], metric: str, where: str,
                         setup: dict[str, Any], notes: list[str], title: str, load_seconds: float = 0.0) -> Path:
    """The standalone HTML report (written atomically by embedlab.report.html)."""
    from embedlab.report.html import write_report

    results = build_results(outcomes, metric, where, setup, notes, load_seconds)
    return write_report(path, None, results, title=title)


# ---------------------------------------------------------------------------- the command
def compare_command(entry: DatasetEntry, trainer: TrainerEntry) -> click.Command:
    """``compare NAME``: the dataset's options, its trainer's options, lists for the fit choices."""
    name = entry.name
    takes_fit = {"opt", "lr", "wd", "wd_mode"} <= {o.name for o in trainer.options}
    params = merge_params(entry, trainer, skip=LISTED)
    lr_help, wd_help = _defaults_sentences(trainer)
    params += [
        click.Option(["--opt"], default=DEFAULT_OPTS, show_default=True,
                     help=f"Comma-separated optimizers to compare, from: {', '.join(OPTIMIZERS)}."),
        click.Option(["--lr"], default=None,
                     help="Comma-separated maximum learning rates, each tried with every optimizer "
                          f"(e.g. 1e-3,5e-3,1e-2); without it each optimizer gets its default. {lr_help}"),
        click.Option(["--wd"], default=None,
                     help=f"Comma-separated weight decays; without it each optimizer gets its default. {wd_help}"),
        click.Option(["--wd-mode"], default="auto", show_default=True,
                     help="Comma-separated weight-decay modes (auto, decoupled, l2), e.g. l2,decoupled "
                          "to see lesson 5's difference under one optimizer."),
        click.Option(["--metric"], default="valid_loss", show_default=True,
                     help="Validation metric that ranks the configurations (lower is better)."),
        click.Option(["--report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write the comparison as a standalone HTML report."),
        click.Option(["--runs-dir"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Also save every trained run in this folder (one sub-folder per configuration)."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    ]

    def callback(**kwargs):
        if not takes_fit:
            raise UsageError(f"trainer {trainer.name!r} of dataset {name!r} does not take the shared fit "
                             "options (--opt/--lr/--wd/--wd-mode), so it cannot be compared")
        quiet = kwargs.pop("quiet")
        report = kwargs.pop("report")
        runs_dir = kwargs.pop("runs_dir")
        metric = kwargs.pop("metric")
        opts = parse_list(kwargs.pop("opt"), "opt", str.lower, OPTIMIZERS)
        if opts == [None]:
            raise UsageError("--opt: name at least one optimizer")
        lrs = parse_list(kwargs.pop("lr"), "lr", float)
        if any(v is not None and v <= 0 for v in lrs):
            raise UsageError(f"--lr {lrs}: learning rates must be positive")
        wds = parse_list(kwargs.pop("wd"), "wd", float)
        modes = parse_list(kwargs.pop("wd_mode"), "wd-mode", str.lower, WD_MODES)
        ds_opts, base = entry.split_options(kwargs)
        base.pop("trainer", None)
        configs, notes = plan(base, trainer, opts, lrs, wds, modes)  # bad combinations fail before loading
        for note in notes:
            _stderr(f"note: {note}")
        t_load = time.perf_counter()
        dataset, _ = load_for_command(entry, kwargs, announce=False)
        load_seconds = time.perf_counter() - t_load
        split = dataset.split.get("name", "?")
        n_valid = 0 if dataset.valid is None else len(dataset.valid)
        if not n_valid:
            raise UsageError(f"{name}: this split has no validation rows, so there is nothing to compare on")
        where = f"{name} (split {split}, {len(dataset.train):,} training and {n_valid:,} validation rows)"
        _stderr(f"{where}: {len(configs)} configurations")
        outcomes = compare(dataset, trainer, configs, progress=not quiet, runs_dir=runs_dir)
        if not any(metric in o.metrics or (o.history and metric in o.history[-1]) for o in outcomes):
            raise UsageError(f"--metric {metric!r}: the runs report "
                             f"{', '.join(k for k in outcomes[0].metrics if k.startswith('valid_'))}")
        table = final_table(outcomes, metric)
        _print_table(table, metric)
        summary = summarize(outcomes, metric, where)
        _stderr(summary)
        if report is not None:
            shared = {k: v for k, v in base.items() if k not in LISTED and v is not None}
            setup = {"dataset": name, **{k: v for k, v in ds_opts.items() if v is not None},
                     "trainer": trainer.name, **shared, "ranked by": metric}
            write_compare_report(report, outcomes, metric, where, setup, notes,
                                 title=f"embedlab compare: {name}", load_seconds=load_seconds)
            _stderr(f"wrote {report}")
        click.echo(json.dumps({
            "dataset": name, "split": split, "metric": metric, "summary": summary,
            "report": None if report is None else str(report),
            "results": [{"label": o.label, "config": o.config, "metrics": o.metrics,
                         "wall_seconds": o.wall_seconds, "run": o.run_dir} for o in outcomes],
        }, default=float))

    return click.Command(name, params=params, callback=callback,
                         help=f"Compare optimizers on {name}: the same model, split and seed per "
                              "configuration; curves, final metrics, wall time and a verdict.")


def _defaults_sentences(trainer: TrainerEntry) -> tuple[str, str]:
    """The per-optimizer defaults of the trainer's --lr and --wd, as sentences for --help."""
    from embedlab.training.fitconfig import DefaultsOption

    found = {o.name: o.fit_defaults for o in trainer.options if isinstance(o, DefaultsOption)}
    lr = f"Default per --opt: {found['lr'].describe_lr()}." if "lr" in found else ""
    wd = f"Default per --opt and --wd-mode: {found['wd'].describe_wd()}." if "wd" in found else ""
    return lr, wd


def _print_table(table: pd.DataFrame, metric: str) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"ranked by {metric}")
    cols = [c for c in ("config", metric, "best_valid_loss", "best_epoch", "wall_seconds") if c in table]
    for c in cols:
        t.add_column(c, justify="left" if c == "config" else "right")
    for _, row in table.iterrows():
        t.add_row(*[(f"{v:.4g}" if isinstance(v, float) else str(v)) for v in row[cols]])
    Console(stderr=True).print(t)


def compare_group() -> click.Group:
    """``compare DATASET``: one subcommand per registered dataset, like ``train``."""
    return DatasetGroup(
        "compare", build=compare_command,
        help="Compare optimizers (and lrs, weight decays) on a dataset: embedlab compare DATASET "
             "--opt sgd,momentum,rmsprop,adam,adamw [--lr 1e-3,5e-3] --report R.html")
