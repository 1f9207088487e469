"""The comparison engine behind ``embedlab compare DATASET`` and ``embedlab.compare``: the same
model and split, trained with the settings you vary.

Lesson 5 kept fair: every configuration (the product of the lists given for ``opt lr wd
wd_mode schedule bs n_factors``) trains the dataset's trainer on one loaded split, once per
seed, and everything not named is held fixed, weight decay and its mode included (one value
for every optimizer, said in the summary). :func:`plan_comparison` turns the lists into
configurations (a bad combination fails before any loading), :func:`run_comparison` trains
them and returns a :class:`ComparisonOutcome` (table, verdict, report sections, JSON payload).
It only uses the registries and the shared fit options
(:func:`embedlab.training.fitconfig.fit_options`), so it works for every dataset whose trainer
takes those options. What the report shows is built in :mod:`embedlab.engines.compare_results`.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from embedlab.engines.compare_results import (
    Outcome,
    build_results,
    final_table,
    summarize,  # noqa: F401
    _valid_metrics,
)
from embedlab.errors import TrainingDiverged, UsageError
from embedlab.registry import TrainerEntry
from embedlab.training.fitconfig import HYPERPARAMETERS, OPTIMIZERS, WD_MODES, fit_config

DEFAULT_OPTS = "sgd,momentum,rmsprop,adam,adamw"
FIT_LISTED = ("opt", "lr", "wd", "wd_mode")
EXTRA_LISTED = ("schedule", "bs", "n_factors")  # listed when the trainer declares them
LISTED = FIT_LISTED + EXTRA_LISTED  # options that take comma-separated lists here
#: "overfits": the validation loss of the last epoch is more than this share above its lowest
OVERFIT_RISE = 0.01


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


def trainer_defaults(trainer):
    """(default optimizer, its FitDefaults) of a trainer (scaled defaults when it declares none)."""
    from embedlab.training.fitconfig import DefaultsOption, FitDefaults

    opt = next((o.default for o in trainer.options if o.name == "opt" and o.default), "adamw")
    found = next((o.fit_defaults for o in trainer.options if isinstance(o, DefaultsOption)), None)
    return str(opt), found or FitDefaults.scaled()


def held_wd(trainer, opts: list, mode: str | None) -> tuple[float, str, str]:
    """The weight decay and mode held fixed for every configuration when ``--wd`` is not given:
    the defaults of the reference optimizer (the trainer's default optimizer when compared, else
    the first listed) in ``mode`` (default: its own mode). Returns (wd, mode, which optimizer)."""
    from embedlab.training.fitconfig import auto_wd_mode

    default_opt, defaults = trainer_defaults(trainer)
    candidates = ([default_opt] if default_opt in opts else []) + [o for o in opts if o != default_opt]
    if mode in (None, "auto"):
        mode = auto_wd_mode(candidates[0])
    for o in candidates + [default_opt]:
        if (o, mode) in defaults.wd:
            return float(defaults.wd[(o, mode)]), mode, o
    return 0.0, mode, candidates[0]


def plan(
    base: dict[str, Any],
    trainer,
    opts: list,
    lrs: list,
    wds: list,
    modes: list,
    schedules: list | None = None,
    bss: list | None = None,
    n_factors: list | None = None,
) -> tuple[list, list[str]]:
    """The configurations to train, each ``(label, config)``, and notes on what was skipped and
    what was held fixed.

    Everything not listed is held fixed, weight decay included: without ``--wd`` every
    configuration gets one wd (per wd mode), the reference optimizer's default
    (:func:`held_wd`); ``--wd-mode auto`` alone lets the mode follow the optimizer.
    ``--momentum/--betas/--eps`` reach the optimizers that take them only. Every config is
    resolved here, so a bad combination fails before any training. Labels name what varies.
    """
    lists = {
        "opt": opts,
        "lr": lrs,
        "wd": wds,
        "wd_mode": modes,
        "schedule": schedules or [None],
        "bs": bss or [None],
        "n_factors": n_factors or [None],
    }
    notes = _hyperparameter_notes(base, opts)
    vary = {name: len(values) > 1 for name, values in lists.items()}
    held: dict[str, tuple[float, str]] = {}  # wd mode -> (wd, from which optimizer)
    out = []
    for combo in itertools.product(*lists.values()):
        choice = dict(zip(lists, combo))
        cfg = _configuration(base, trainer, opts, choice, held)
        if choice["opt"] == "adamw" and cfg["wd_mode"] == "l2":
            notes.append(
                "skipped adamw with --wd-mode l2 (adamw is Adam with decoupled decay; adam with l2 is the L2 version)"
            )
            continue
        out.append((_label(choice, vary, fit_config(cfg, trainer.options)), cfg))
    if not out:
        raise UsageError("nothing to compare: every combination was skipped")
    notes += _held_notes(held, opts)
    return out, list(dict.fromkeys(notes))


def _hyperparameter_notes(base: dict[str, Any], opts: list) -> list[str]:
    """``--momentum/--betas/--eps`` given: a UsageError when no listed optimizer takes one,
    else a note naming those it skips."""
    notes = []
    for name in ("momentum", "betas", "eps"):
        if base.get(name) is not None:
            takers = [o for o in opts if name in HYPERPARAMETERS[o]]
            if not takers:
                raise UsageError(f"--{name} applies to none of --opt {','.join(opts)}")
            skipped = [o for o in opts if o not in takers]
            if skipped:
                notes.append(f"--{name} applies to {', '.join(takers)} only (not {', '.join(skipped)})")
    return notes


def _configuration(
    base: dict[str, Any], trainer, opts: list, choice: dict[str, Any], held: dict[str, tuple[float, str]]
) -> dict[str, Any]:
    """One combination's config: ``base`` with the chosen values, the hyperparameters its
    optimizer does not take cleared, and the held weight decay filled in (recorded in ``held``)."""
    opt, wd, mode = choice["opt"], choice["wd"], choice["wd_mode"]
    cfg = dict(base, opt=opt, lr=choice["lr"], wd=wd, wd_mode=mode or "auto")
    for key in ("schedule", "bs", "n_factors"):
        if choice[key] is not None:
            cfg[key] = choice[key]
    for name in ("momentum", "betas", "eps"):
        if name not in HYPERPARAMETERS[opt]:
            cfg[name] = None
    if wd is None and mode != "auto":  # hold wd (and its mode) fixed across the optimizers
        value, resolved_mode, source = held_wd(trainer, opts, mode)
        cfg["wd"], cfg["wd_mode"] = value, resolved_mode
        held[resolved_mode] = (value, source)
    return cfg


def _label(choice: dict[str, Any], vary: dict[str, bool], resolved) -> str:
    """A configuration's label: the settings that vary (the optimizer when nothing does)."""
    parts = [choice["opt"]] if vary["opt"] or not any(vary.values()) else []
    if vary["lr"] or (choice["lr"] is None and vary["opt"]):
        parts.append(f"lr={resolved.lr:g}")
    if vary["wd"]:
        parts.append(f"wd={resolved.wd:g}")
    if vary["wd_mode"]:
        parts.append(resolved.wd_mode)
    if vary["schedule"]:
        parts.append(resolved.schedule)
    if vary["bs"]:
        parts.append(f"bs={resolved.bs}")
    if vary["n_factors"]:
        parts.append(f"n_factors={choice['n_factors']}")
    return " ".join(parts)


def _held_notes(held: dict[str, tuple[float, str]], opts: list) -> list[str]:
    """What the held weight decay was (per mode), and when adam and adamw become one optimizer."""
    notes = [
        f"weight decay held fixed: wd {value:g} ({mode}) for every configuration, "
        f"{source}'s default; give --wd to choose another"
        for mode, (value, source) in held.items()
    ]
    if "decoupled" in held and {"adam", "adamw"} <= set(opts):
        notes.append(
            "with decoupled weight decay for both, adam and adamw are the same optimizer "
            "(AdamW is Adam with decoupled decay)"
        )
    return notes


def varied_and_held(configs: list[tuple[str, dict[str, Any]]], trainer) -> tuple[list[str], dict[str, Any]]:
    """Which settings differ between the configurations, and the values of those held fixed
    (resolved: defaults filled in)."""
    resolved = []
    for _, cfg in configs:
        fit = fit_config(cfg, trainer.options).to_config()
        extra = {k: v for k, v in cfg.items() if k not in fit and k not in ("trainer", "seed") and v is not None}
        resolved.append({**extra, **{k: v for k, v in fit.items() if v is not None and k != "seed"}})
    keys = list(dict.fromkeys([k for k in LISTED if any(k in r for r in resolved)] + [k for r in resolved for k in r]))
    varied = [k for k in keys if len({json.dumps(r.get(k), default=str) for r in resolved}) > 1]
    if "opt" in varied:  # an optimizer's own hyperparameters come with it
        varied = [k for k in varied if k not in ("momentum", "betas", "eps")]
    held = {k: resolved[0].get(k) for k in keys if k not in varied and resolved[0].get(k) not in (None, [], "")}
    return varied, held


NAMES = {
    "opt": "optimizer",
    "lr": "learning rate",
    "wd": "weight decay",
    "wd_mode": "weight-decay mode",
    "schedule": "lr schedule",
    "bs": "batch size",
    "n_factors": "embedding size",
    "momentum": "momentum",
    "betas": "betas",
    "eps": "eps",
}


def describe_varied(varied: list[str], lr_given: bool = True) -> str:
    """'optimizer and learning rate' (the settings that differ, in words)."""
    words = [NAMES.get(v, v) for v in varied] or ["nothing (one setting)"]
    if "opt" in varied and "lr" in varied and not lr_given:
        words[varied.index("lr")] = "learning rate (each optimizer's default: lrs do not carry over)"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def title_for(varied: list[str], lr_given: bool = True) -> str:
    """'Optimizers compared', 'Weight decays compared', 'Optimizer x learning rate compared'
    (an lr that only follows each optimizer's default is not named)."""
    if "opt" in varied and not lr_given:
        varied = [v for v in varied if v != "lr"]
    plural = {
        "opt": "Optimizers",
        "lr": "Learning rates",
        "wd": "Weight decays",
        "wd_mode": "Weight-decay modes",
        "schedule": "Schedules",
        "bs": "Batch sizes",
        "n_factors": "Embedding sizes",
    }
    main = [v for v in varied if v in plural]
    if not main:
        return "Settings compared"
    if len(main) == 1:
        return f"{plural[main[0]]} compared"
    return " x ".join(NAMES[v] for v in main).capitalize() + " compared"


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label).strip("_") or "run"


# ---------------------------------------------------------------------------- running
def compare(
    dataset,
    trainer,
    configs: list[tuple[str, dict[str, Any]]],
    progress: bool = False,
    runs_dir: Path | None = None,
    echo=None,
    seeds: list[int] | None = None,
    force: bool = False,
    on_epoch=None,
) -> list[Outcome]:
    """Train each ``(label, config)`` on ``dataset`` with ``trainer``, once per seed of
    ``seeds`` (default: the config's own seed, else 42), one run at a time in this process.

    The global RNGs are re-seeded before each run, so trainers that draw their initial
    weights from torch's global generator start every configuration of one seed from the same
    weights. The dataset (its rows and split) is the same for every run. ``on_epoch(name,
    epoch, epochs, row)`` follows every run live: epoch 0 (row None) as it starts, then each
    epoch's history row (``embedlab compare`` draws a bar per run from it).
    """
    echo = echo or _stderr
    echo("preparing torch's optimizers (their first step imports its compiler, once) ...")
    from embedlab.training.learner import listen_to_epochs, seed_everything  # torch: once something trains

    _warm_up()
    outcomes = []
    jobs = [
        (label, cfg, seed)
        for label, cfg in configs
        for seed in (seeds or [42 if cfg.get("seed") is None else int(cfg["seed"])])
    ]
    for n, (label, cfg, seed) in enumerate(jobs, 1):
        name = (label or "run") + (f" seed {seed}" if seeds and len(seeds) > 1 else "")
        echo(f"[{n}/{len(jobs)}] {name}")
        seed_everything(seed)
        epochs = cfg.get("epochs") or next((o.default for o in trainer.options if o.name == "epochs"), None)
        if on_epoch is not None:
            on_epoch(name, 0, epochs, None)
            before = listen_to_epochs(lambda row, _n=name, _e=epochs: on_epoch(_n, int(row["epoch"]), _e, row))
        t0 = time.perf_counter()
        try:
            run = trainer.train(dataset, dict(cfg, seed=seed), progress=progress)
        except TrainingDiverged as exc:  # one configuration blew up: it ranks last, the others go on
            wall = time.perf_counter() - t0
            echo(f"    diverged: {exc.format_message()}")
            outcomes.append(Outcome(label, dict(cfg, seed=seed), {"valid_loss": float("nan")}, [], wall, None, seed))
            continue
        finally:
            if on_epoch is not None:
                listen_to_epochs(before)
        wall = time.perf_counter() - t0
        where = None
        if runs_dir is not None:
            sub = Path(runs_dir) / _slug(label)
            where = str(run.save(sub / f"seed-{seed}" if seeds and len(seeds) > 1 else sub, force=force))
        out = Outcome(label, dict(run.config), dict(run.metrics), list(run.history), wall, where, seed)
        outcomes.append(out)
        finals = ", ".join(f"{k} {v:.4f}" for k, v in _valid_metrics(out.metrics).items())
        echo(f"    {finals}  ({wall:.1f} s)")
    return outcomes


def check_outputs(
    report: Path | None, runs_dir: Path | None, labels: list[str], seeds: list[int], force: bool = False
) -> None:
    """``--report`` and ``--runs-dir``'s run folders under the write rule (embedlab.io.ownership),
    checked before any training; ``force``: ``--force`` (files embedlab did not write may be replaced)."""
    from embedlab.io.ownership import check_file, check_run_dir

    if report is not None:
        check_file(report, option="--report", html=True, force=force)
    if runs_dir is not None:
        for label in labels:
            sub = Path(runs_dir) / _slug(label)
            for folder in [sub / f"seed-{s}" for s in seeds] if len(seeds) > 1 else [sub]:
                check_run_dir(folder, option="--runs-dir", force=force)


def _stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _warm_up() -> None:
    """One step of every optimizer class on a throwaway tensor.

    The first optimizer step in a process imports torch._dynamo (seconds); without this the
    first configuration's wall time would carry that cost.
    """
    import torch

    for make in (
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lambda p: torch.optim.RMSprop(p),
        lambda p: torch.optim.Adam(p),
        lambda p: torch.optim.AdamW(p),
    ):
        param = torch.zeros(1, requires_grad=True)
        param.grad = torch.ones(1)
        make([param]).step()


def _convert_for(trainer: TrainerEntry, name: str):
    """(convert, choices) for a list of the trainer's option ``name``."""
    import click

    opt = next(o for o in trainer.options if o.name == name)
    choices = getattr(opt.type, "choices", None)
    if choices:
        return str.lower, tuple(choices)
    return (int if isinstance(opt.type, click.types.IntParamType) or opt.type is int else float), None


# ---------------------------------------------------------------------------- the engine
@dataclass
class ComparisonPlan:
    """What a comparison trains: ``configs`` (label, config), the ``notes`` (what was skipped,
    what was held fixed), the settings that vary (``varied``, ``words``) and those ``held``."""

    configs: list[tuple[str, dict[str, Any]]]
    notes: list[str]
    varied: list[str]
    held: dict[str, Any]
    seeds: list[int]
    lr_given: bool

    @property
    def words(self) -> str:
        return describe_varied(self.varied, lr_given=self.lr_given)

    @property
    def section(self) -> str:
        return title_for(self.varied, lr_given=self.lr_given)


def _listed(value, what: str, convert, choices=None) -> list:
    """A list option given as a list/tuple, a comma-separated string or None -> parsed list."""
    if isinstance(value, (list, tuple)):
        value = ",".join(str(v) for v in value)
    return parse_list(None if value is None else str(value), what, convert, choices)


def plan_comparison(
    trainer: TrainerEntry, base: dict[str, Any], opt=None, lr=None, wd=None, wd_mode=None, seeds=None, **lists
) -> ComparisonPlan:
    """The configurations to compare. ``opt``/``lr``/``wd``/``wd_mode`` and ``lists`` (any of
    ``schedule``, ``bs``, ``n_factors`` the trainer declares) are lists or comma-separated
    strings; None holds the setting fixed at the trainer's default. Without ``opt``: the
    trainer's default optimizer when something else is listed (or several seeds), else all of
    :data:`DEFAULT_OPTS`. ``seeds``: a list, "1,2,3", or None (``base["seed"]``, else 42)."""
    from embedlab.engines.runs import parse_seeds

    if not {"opt", "lr", "wd", "wd_mode"} <= {o.name for o in trainer.options}:
        raise UsageError(
            f"trainer {trainer.name!r} does not take the shared fit options "
            "(--opt/--lr/--wd/--wd-mode), so it cannot be compared"
        )
    if isinstance(seeds, (list, tuple)):
        seeds = ",".join(str(s) for s in seeds)
    seeds = parse_seeds(str(seeds)) if seeds is not None else [int(base.get("seed") or 42)]
    extra = {}
    base = {k: v for k, v in base.items() if k != "trainer"}
    for name in EXTRA_LISTED:
        if any(o.name == name for o in trainer.options):
            convert, choices = _convert_for(trainer, name)
            given = lists.pop(name, None)
            given = base.pop(name, None) if given is None else given  # one value: held at it
            extra[name] = _listed(given, name.replace("_", "-"), convert, choices)
            if extra[name] == [None]:  # not listed: held at the trainer's default
                extra[name] = [next(o.default for o in trainer.options if o.name == name)]
    if lists:
        raise UsageError(f"{', '.join(sorted(lists))}: trainer {trainer.name!r} has no such option to compare")
    lrs = _listed(lr, "lr", float)
    if any(v is not None and v <= 0 for v in lrs):
        raise UsageError(f"--lr {lrs}: learning rates must be positive")
    wds = _listed(wd, "wd", float)
    modes = _listed(wd_mode, "wd-mode", str.lower, WD_MODES)
    opts = _listed(opt, "opt", str.lower, OPTIMIZERS)
    if opts == [None]:
        named = len(lrs) > 1 or len(wds) > 1 or len(modes) > 1 or any(len(v) > 1 for v in extra.values())
        opts = (
            [trainer_defaults(trainer)[0]]
            if named or len(seeds) > 1
            else parse_list(DEFAULT_OPTS, "opt", str.lower, OPTIMIZERS)
        )
    configs, notes = plan(
        base, trainer, opts, lrs, wds, modes, extra.get("schedule"), extra.get("bs"), extra.get("n_factors")
    )
    varied, held = varied_and_held(configs, trainer)
    return ComparisonPlan(configs, notes, varied, held, seeds, lr_given=lrs != [None])


@dataclass
class ComparisonOutcome:
    """A comparison trained: ``outcomes`` (one per configuration and seed), ``table`` (ranked
    by ``metric``), ``summary`` (the verdict), and where it ran."""

    plan: ComparisonPlan
    dataset: str
    split: str
    where: str
    metric: str
    outcomes: list[Outcome]
    table: pd.DataFrame
    summary: str
    load_seconds: float = 0.0
    setup: dict[str, Any] | None = None  #: the report's first table (:func:`describe_setup`)

    def results(self, setup: dict[str, Any] | None = None) -> list:
        """The report's sections (AnalysisResults), ``setup`` (default: ``self.setup``) its first table."""
        return build_results(
            self.outcomes,
            self.metric,
            self.where,
            self.setup if setup is None else setup,
            self.plan.notes,
            self.load_seconds,
            self.plan.section,
            self.plan.words,
            self.plan.held,
        )

    def write_report(self, path: str | Path, setup: dict[str, Any] | None = None, force: bool = False) -> Path:
        """The standalone HTML report (under the write rule, atomically)."""
        from embedlab.report.html import write_report

        title = f"embedlab compare: {self.dataset}: {self.plan.section.lower()}"
        return write_report(path, None, self.results(setup), title=title, force=force)

    def payload(self, report: str | Path | None = None) -> dict[str, Any]:
        """What ``embedlab compare`` prints as JSON."""
        return {
            "dataset": self.dataset,
            "split": self.split,
            "metric": self.metric,
            "title": self.plan.section,
            "varied": self.plan.varied,
            "held": self.plan.held,
            "seeds": self.plan.seeds,
            "summary": self.summary,
            "notes": self.plan.notes,
            "report": None if report is None else str(report),
            "results": [
                {
                    "label": o.label,
                    "seed": o.seed,
                    "config": o.config,
                    "metrics": o.metrics,
                    "wall_seconds": o.wall_seconds,
                    "run": o.run_dir,
                }
                for o in self.outcomes
            ],
        }


def check_metric(outcomes: list[Outcome], metric: str) -> None:
    """A metric none of the runs reports is a one-line error listing those they do."""
    if not any(metric in o.metrics or (o.history and metric in o.history[-1]) for o in outcomes):
        raise UsageError(
            f"--metric {metric!r}: the runs report "
            f"{', '.join(k for k in outcomes[0].metrics if k.startswith('valid_'))}"
        )


def run_comparison(
    dataset,
    trainer: TrainerEntry,
    plan_: ComparisonPlan,
    metric: str = "valid_loss",
    progress: bool = False,
    runs_dir: Path | None = None,
    echo=None,
    load_seconds: float = 0.0,
    force: bool = False,
    on_epoch=None,
) -> ComparisonOutcome:
    """Train every configuration of ``plan_`` on the loaded ``dataset`` (its validation rows
    rank them by ``metric``); ``echo`` receives one line per step (default: stderr),
    ``on_epoch`` each run's epochs (:func:`compare`)."""
    echo = echo or _stderr
    n_valid = 0 if dataset.valid is None else len(dataset.valid)
    if not n_valid:
        raise UsageError(f"{dataset.name}: this split has no validation rows, so there is nothing to compare on")
    split = dataset.split.get("name", "?")
    where = f"{dataset.name} (split {split}, {len(dataset.train):,} training and {n_valid:,} validation rows)"
    for note in plan_.notes:
        echo(f"note: {note}")
    seeds = plan_.seeds
    echo(
        f"{where}: {len(plan_.configs)} configurations x {len(seeds)} seed{'s' if len(seeds) > 1 else ''}; "
        f"varied: {plan_.words}"
    )
    outcomes = compare(
        dataset,
        trainer,
        plan_.configs,
        progress=progress,
        runs_dir=runs_dir,
        echo=echo,
        seeds=seeds,
        force=force,
        on_epoch=on_epoch,
    )
    check_metric(outcomes, metric)
    summary = summarize(outcomes, metric, where, plan_.words, plan_.held)
    return ComparisonOutcome(
        plan_, dataset.name, split, where, metric, outcomes, final_table(outcomes, metric), summary, load_seconds
    )


def describe_setup(
    dataset: str, trainer: str, plan_: ComparisonPlan, metric: str, loader_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The report's first table: the dataset and its loader options, the trainer, what varies,
    the seeds, every setting held fixed, and the ranking metric."""
    return {
        "dataset": dataset,
        **{k: v for k, v in (loader_options or {}).items() if v is not None},
        "trainer": trainer,
        "varied": plan_.words,
        "seeds": ", ".join(map(str, plan_.seeds)),
        **{f"held: {k}": v for k, v in plan_.held.items()},
        "ranked by": metric,
    }


def compare_dataset(
    dataset,
    trainer: TrainerEntry,
    values: dict[str, Any],
    opt=None,
    lr=None,
    wd=None,
    wd_mode=None,
    seeds=None,
    metric: str = "valid_loss",
    report: Path | None = None,
    runs_dir: Path | None = None,
    force: bool = False,
    progress: bool = False,
    echo=None,
    on_epoch=None,
    **lists,
) -> ComparisonOutcome:
    """``embedlab compare DATASET`` and ``embedlab.compare``, one path: plan the configurations
    (a bad combination fails here), check ``report`` and ``runs_dir`` under the write rule, load
    the data (``dataset``: a :class:`~embedlab.registry.DatasetEntry`, loaded here with its
    loader options from ``values``, or a loaded Dataset), train and rank. The outcome's
    ``setup`` is filled in; writing the report (``outcome.write_report(report)``) is the
    caller's last step, after it has shown the table. ``progress``: each trainer's own bar;
    ``on_epoch``: each run's epochs, live (:func:`compare`)."""
    from embedlab.registry import DatasetEntry

    entry = dataset if isinstance(dataset, DatasetEntry) else None
    loader_options, base = entry.split_options(values) if entry is not None else ({}, dict(values))
    the_plan = plan_comparison(trainer, base, opt, lr, wd, wd_mode, seeds, **lists)
    check_outputs(report, runs_dir, [label for label, _ in the_plan.configs], the_plan.seeds, force=force)
    t_load = time.perf_counter()
    if entry is not None:
        from embedlab.engines.loading import load_for_training

        (echo or _stderr)(f"loading {entry.name} ...")
        dataset, _ = load_for_training(entry, values)
    done = run_comparison(
        dataset,
        trainer,
        the_plan,
        metric,
        progress=progress,
        runs_dir=runs_dir,
        echo=echo,
        load_seconds=time.perf_counter() - t_load if entry is not None else 0.0,
        force=force,
        on_epoch=on_epoch,
    )
    done.setup = describe_setup(done.dataset, trainer.name, the_plan, metric, loader_options)
    return done


@dataclass
class RunsCompared:
    """``compare --runs``: the runs as outcomes, the report's sections, the ranked ``table`` and
    what ``--json`` prints (``record``; its ``summary`` is the verdict)."""

    outcomes: list[Outcome]
    sections: list
    record: dict[str, Any]
    table: pd.DataFrame
    metric: str

    @property
    def summary(self) -> str:
        return self.record["summary"]

    def results(self) -> list:
        """The report's sections (AnalysisResults)."""
        return self.sections

    def write_report(self, path: str | Path, force: bool = False) -> Path:
        """The standalone HTML report (under the write rule, atomically)."""
        from embedlab.report.html import write_report

        return write_report(
            path, None, self.sections, title=f"embedlab compare: {len(self.outcomes)} runs", force=force
        )

    def payload(self, report: str | Path | None = None) -> dict[str, Any]:
        """What ``embedlab compare --runs`` prints as JSON."""
        return {**self.record, "report": None if report is None else str(report)}


def compare_existing(
    paths: Sequence[Any], metric: str = "valid_loss", report: Path | None = None, force: bool = False, echo=None
) -> RunsCompared:
    """``embedlab compare --runs`` and ``embedlab.compare(runs=...)``: ``report`` checked under
    the write rule first (written by the caller: ``.write_report``), then the runs (folders or
    run groups) loaded, compared and ranked by ``metric``."""
    from embedlab.engines.compare_results import compare_runs

    check_outputs(report, None, [], [], force=force)
    outcomes, results, record = compare_runs(list(paths), metric, render=report is not None, echo=echo)
    check_metric(outcomes, metric)
    return RunsCompared(outcomes, results, record, final_table(outcomes, metric), metric)
