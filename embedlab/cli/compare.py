"""``embedlab compare DATASET``: the same model and split, trained with the settings you vary.

Lesson 5 in one command, kept fair: every configuration (the product of the lists given to
``--opt --lr --wd --wd-mode --schedule --bs --n-factors``) trains the dataset's registered
trainer on one loaded split, once per ``--seeds`` seed, and everything not named is held
fixed, weight decay and its mode included (one value for every optimizer, said in the
summary). A report shows the validation-loss curves on one plot, the final metrics as mean
and sd over the seeds, the wall time and a paragraph saying what won, and whether the
difference is larger than the seed spread. ``embedlab compare --runs A B C`` compares runs
that exist (metrics, curves, how their settings differ, and the Procrustes alignment of their
tables). It only uses the dataset and trainer registries and the shared fit options
(:func:`embedlab.training.fitconfig.fit_options`), so it works for every dataset, built-in or
third-party, whose trainer takes those options.

The plain-function API (``plan``, ``compare``, ``final_table``, ``summarize``,
``compare_runs``) is what ``embedlab.compare`` calls.
"""
from __future__ import annotations

import itertools
import json
import math
import re
import time
from pathlib import Path
from typing import Any, Sequence

import click
import pandas as pd

from embedlab.cli.common import DatasetGroup, load_for_command, merge_params
from embedlab.cli.compare_results import (Outcome, build_results, final_table, summarize,  # noqa: F401
                                          _valid_metrics)
from embedlab.errors import TrainingDiverged, UsageError
from embedlab.io.progress import quiet as global_quiet
from embedlab.io.strictjson import dumps as strict_json
from embedlab.registry import DatasetEntry, TrainerEntry
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


def plan(base: dict[str, Any], trainer, opts: list, lrs: list, wds: list, modes: list,
         schedules: list | None = None, bss: list | None = None, n_factors: list | None = None
         ) -> tuple[list, list[str]]:
    """The configurations to train, each ``(label, config)``, and notes on what was skipped and
    what was held fixed.

    Everything not listed is held fixed, weight decay included: without ``--wd`` every
    configuration gets one wd (per wd mode), the reference optimizer's default
    (:func:`held_wd`); ``--wd-mode auto`` alone lets the mode follow the optimizer.
    ``--momentum/--betas/--eps`` reach the optimizers that take them only. Every config is
    resolved here, so a bad combination fails before any training. Labels name what varies.
    """
    notes: list[str] = []
    schedules, bss, n_factors = schedules or [None], bss or [None], n_factors or [None]
    for name in ("momentum", "betas", "eps"):
        if base.get(name) is not None:
            takers = [o for o in opts if name in HYPERPARAMETERS[o]]
            if not takers:
                raise UsageError(f"--{name} applies to none of --opt {','.join(opts)}")
            skipped = [o for o in opts if o not in takers]
            if skipped:
                notes.append(f"--{name} applies to {', '.join(takers)} only (not {', '.join(skipped)})")
    vary = {"opt": len(opts) > 1, "lr": len(lrs) > 1, "wd": len(wds) > 1, "wd_mode": len(modes) > 1,
            "schedule": len(schedules) > 1, "bs": len(bss) > 1, "n_factors": len(n_factors) > 1}
    held: dict[str, tuple[float, str]] = {}  # wd mode -> (wd, from which optimizer)
    out = []
    for opt, lr, wd, mode, sched, bs, nf in itertools.product(opts, lrs, wds, modes, schedules, bss, n_factors):
        cfg = dict(base, opt=opt, lr=lr, wd=wd, wd_mode=mode or "auto")
        for key, value in (("schedule", sched), ("bs", bs), ("n_factors", nf)):
            if value is not None:
                cfg[key] = value
        for name in ("momentum", "betas", "eps"):
            if name not in HYPERPARAMETERS[opt]:
                cfg[name] = None
        if wd is None and mode != "auto":  # hold wd (and its mode) fixed across the optimizers
            value, resolved_mode, source = held_wd(trainer, opts, mode)
            cfg["wd"], cfg["wd_mode"] = value, resolved_mode
            held[resolved_mode] = (value, source)
        if opt == "adamw" and cfg["wd_mode"] == "l2":
            notes.append("skipped adamw with --wd-mode l2 (adamw is Adam with decoupled decay; "
                         "adam with l2 is the L2 version)")
            continue
        resolved = fit_config(cfg, trainer.options)
        parts = [opt] if vary["opt"] or not any(vary.values()) else []
        if vary["lr"] or (lr is None and vary["opt"]):
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
            parts.append(f"n_factors={nf}")
        out.append((" ".join(parts), cfg))
    if not out:
        raise UsageError("nothing to compare: every combination was skipped")
    for mode, (value, source) in held.items():
        notes.append(f"weight decay held fixed: wd {value:g} ({mode}) for every configuration, "
                     f"{source}'s default; give --wd to choose another")
    if "decoupled" in held and {"adam", "adamw"} <= set(opts):
        notes.append("with decoupled weight decay for both, adam and adamw are the same optimizer "
                     "(AdamW is Adam with decoupled decay)")
    notes = list(dict.fromkeys(notes))
    return out, notes


def varied_and_held(configs: list[tuple[str, dict[str, Any]]], trainer) -> tuple[list[str], dict[str, Any]]:
    """Which settings differ between the configurations, and the values of those held fixed
    (resolved: defaults filled in)."""
    resolved = []
    for _, cfg in configs:
        fit = fit_config(cfg, trainer.options).to_config()
        extra = {k: v for k, v in cfg.items() if k not in fit and k not in ("trainer", "seed") and v is not None}
        resolved.append({**extra, **{k: v for k, v in fit.items() if v is not None and k != "seed"}})
    keys = list(dict.fromkeys([k for k in LISTED if any(k in r for r in resolved)] +
                              [k for r in resolved for k in r]))
    varied = [k for k in keys if len({json.dumps(r.get(k), default=str) for r in resolved}) > 1]
    if "opt" in varied:  # an optimizer's own hyperparameters come with it
        varied = [k for k in varied if k not in ("momentum", "betas", "eps")]
    held = {k: resolved[0].get(k) for k in keys if k not in varied and resolved[0].get(k) not in (None, [], "")}
    return varied, held


NAMES = {"opt": "optimizer", "lr": "learning rate", "wd": "weight decay", "wd_mode": "weight-decay mode",
         "schedule": "lr schedule", "bs": "batch size", "n_factors": "embedding size", "momentum": "momentum",
         "betas": "betas", "eps": "eps"}


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
    plural = {"opt": "Optimizers", "lr": "Learning rates", "wd": "Weight decays", "wd_mode": "Weight-decay modes",
              "schedule": "Schedules", "bs": "Batch sizes", "n_factors": "Embedding sizes"}
    main = [v for v in varied if v in plural]
    if not main:
        return "Settings compared"
    if len(main) == 1:
        return f"{plural[main[0]]} compared"
    return " x ".join(NAMES[v] for v in main).capitalize() + " compared"


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", label).strip("_") or "run"


# ---------------------------------------------------------------------------- running
def compare(dataset, trainer, configs: list[tuple[str, dict[str, Any]]], progress: bool = False,
            runs_dir: Path | None = None, echo=None, seeds: list[int] | None = None) -> list[Outcome]:
    """Train each ``(label, config)`` on ``dataset`` with ``trainer``, once per seed of
    ``seeds`` (default: the config's own seed, else 42), one run at a time in this process.

    The global RNGs are re-seeded before each run, so trainers that draw their initial
    weights from torch's global generator start every configuration of one seed from the same
    weights. The dataset (its rows and split) is the same for every run.
    """
    from embedlab.training.learner import seed_everything  # torch: only once something trains

    echo = echo or _stderr
    _warm_up()
    outcomes = []
    jobs = [(label, cfg, seed) for label, cfg in configs
            for seed in (seeds or [42 if cfg.get("seed") is None else int(cfg["seed"])])]
    for n, (label, cfg, seed) in enumerate(jobs, 1):
        echo(f"[{n}/{len(jobs)}] {label or 'run'}" + (f" seed {seed}" if seeds and len(seeds) > 1 else ""))
        seed_everything(seed)
        t0 = time.perf_counter()
        try:
            run = trainer.train(dataset, dict(cfg, seed=seed), progress=progress)
        except TrainingDiverged as exc:  # one configuration blew up: it ranks last, the others go on
            wall = time.perf_counter() - t0
            echo(f"    diverged: {exc.format_message()}")
            outcomes.append(Outcome(label, dict(cfg, seed=seed), {"valid_loss": float("nan")}, [], wall, None, seed))
            continue
        wall = time.perf_counter() - t0
        where = None
        if runs_dir is not None:
            sub = Path(runs_dir) / _slug(label)
            where = str(run.save(sub / f"seed-{seed}" if seeds and len(seeds) > 1 else sub))
        out = Outcome(label, dict(run.config), dict(run.metrics), list(run.history), wall, where, seed)
        outcomes.append(out)
        finals = ", ".join(f"{k} {v:.4f}" for k, v in _valid_metrics(out.metrics).items())
        echo(f"    {finals}  ({wall:.1f} s)")
    return outcomes


def check_outputs(report: Path | None, runs_dir: Path | None, labels: list[str], seeds: list[int]) -> None:
    """``--report`` and ``--runs-dir``'s run folders under the write rule (embedlab.io.ownership),
    checked before any training."""
    from embedlab.io.ownership import check_file, check_run_dir

    if report is not None:
        check_file(report, option="--report", html=True)
    if runs_dir is not None:
        for label in labels:
            sub = Path(runs_dir) / _slug(label)
            for folder in ([sub / f"seed-{s}" for s in seeds] if len(seeds) > 1 else [sub]):
                check_run_dir(folder, option="--runs-dir")


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


def write_compare_report(path: str | Path, outcomes: list[Outcome], metric: str, where: str,
                         setup: dict[str, Any], notes: list[str], title: str, load_seconds: float = 0.0,
                         section_title: str = "Settings compared", varied: str | None = None,
                         held: dict[str, Any] | None = None) -> Path:
    """The standalone HTML report (written atomically by embedlab.report.html)."""
    from embedlab.report.html import write_report

    results = build_results(outcomes, metric, where, setup, notes, load_seconds, section_title, varied, held)
    return write_report(path, None, results, title=title)


def _list_option(trainer: TrainerEntry, name: str) -> click.Option | None:
    """A comma-separated list version of the trainer's option ``name`` (None: it has none)."""
    opt = next((o for o in trainer.options if o.name == name), None)
    if opt is None:
        return None
    choices = getattr(opt.type, "choices", None)
    extra = f" from: {', '.join(choices)}" if choices else ""
    return click.Option(list(opt.opts), default=None,
                        help=f"Comma-separated values to compare{extra} (default: {opt.default}, held fixed). "
                             f"{opt.help or ''}")


def _convert_for(trainer: TrainerEntry, name: str):
    opt = next(o for o in trainer.options if o.name == name)
    choices = getattr(opt.type, "choices", None)
    if choices:
        return str.lower, tuple(choices)
    return (int if isinstance(opt.type, click.types.IntParamType) or opt.type is int else float), None


# ---------------------------------------------------------------------------- the command
def compare_command(entry: DatasetEntry, trainer: TrainerEntry) -> click.Command:
    """``compare NAME``: the dataset's options, its trainer's options, lists for what may vary."""
    name = entry.name
    takes_fit = {"opt", "lr", "wd", "wd_mode"} <= {o.name for o in trainer.options}
    extra = [n for n in EXTRA_LISTED if any(o.name == n for o in trainer.options)]
    params = merge_params(entry, trainer, skip=FIT_LISTED + tuple(extra))
    params = [p for p in params if p.name != "seed"]
    lr_help, wd_help = _defaults_sentences(trainer)
    params += [
        click.Option(["--opt"], default=None,
                     help=f"Comma-separated optimizers to compare, from: {', '.join(OPTIMIZERS)}. Without "
                          f"it: the trainer's default optimizer, or all of {DEFAULT_OPTS} when nothing "
                          f"else is varied."),
        click.Option(["--lr"], default=None,
                     help="Comma-separated maximum learning rates, each tried with every optimizer "
                          f"(e.g. 1e-3,5e-3,1e-2); without it each optimizer gets its default. {lr_help}"),
        click.Option(["--wd"], default=None,
                     help="Comma-separated weight decays. Without it one weight decay is held fixed for "
                          "every configuration: the default of the trainer's default optimizer (or the "
                          f"first listed) in the weight-decay mode used. {wd_help}"),
        click.Option(["--wd-mode"], default=None,
                     help="Comma-separated weight-decay modes (decoupled, l2, auto), e.g. l2,decoupled "
                          "to see lesson 5's difference under one optimizer. Without it the mode is held "
                          "fixed (the reference optimizer's); 'auto' lets it follow each optimizer "
                          "(decoupled for adamw, l2 for the others) and then wd follows too."),
        *[o for o in (_list_option(trainer, n) for n in extra) if o is not None],
        click.Option(["--seeds"], default=None, metavar="S1,S2,...",
                     help="Train every configuration once per seed (e.g. 1,2,3) and report mean and sd; a "
                          "difference smaller than the seed spread is called that. Default: --seed."),
        click.Option(["--seed"], type=int, default=42, show_default=True,
                     help="Seed of every run (model initialisation, data order, random splits)."),
        click.Option(["--metric"], default="valid_loss", show_default=True,
                     help="Validation metric that ranks the configurations (lower is better)."),
        click.Option(["--report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write the comparison as a standalone HTML report."),
        click.Option(["--runs-dir"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Also save every trained run in this folder (one sub-folder per configuration, "
                          "seed-N inside with several seeds)."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    ]

    def callback(**kwargs):
        if not takes_fit:
            raise UsageError(f"trainer {trainer.name!r} of dataset {name!r} does not take the shared fit "
                             "options (--opt/--lr/--wd/--wd-mode), so it cannot be compared")
        from embedlab.toolkit.runs import parse_seeds

        quiet = kwargs.pop("quiet") or global_quiet()
        report = kwargs.pop("report")
        runs_dir = kwargs.pop("runs_dir")
        metric = kwargs.pop("metric")
        seeds_text = kwargs.pop("seeds")
        seeds = parse_seeds(seeds_text) if seeds_text is not None else [int(kwargs["seed"])]
        lists = {}
        for n in extra:
            convert, choices = _convert_for(trainer, n)
            lists[n] = parse_list(kwargs.pop(n), n.replace("_", "-"), convert, choices)
            if lists[n] == [None]:  # not listed: held at the trainer's default
                lists[n] = [next(o.default for o in trainer.options if o.name == n)]
        lrs = parse_list(kwargs.pop("lr"), "lr", float)
        if any(v is not None and v <= 0 for v in lrs):
            raise UsageError(f"--lr {lrs}: learning rates must be positive")
        wds = parse_list(kwargs.pop("wd"), "wd", float)
        modes = parse_list(kwargs.pop("wd_mode"), "wd-mode", str.lower, WD_MODES)
        opts = parse_list(kwargs.pop("opt"), "opt", str.lower, OPTIMIZERS)
        if opts == [None]:
            named = len(lrs) > 1 or len(wds) > 1 or len(modes) > 1 or any(len(v) > 1 for v in lists.values())
            opts = [trainer_defaults(trainer)[0]] if named or len(seeds) > 1 else \
                parse_list(DEFAULT_OPTS, "opt", str.lower, OPTIMIZERS)
        ds_opts, base = entry.split_options(kwargs)
        base.pop("trainer", None)
        configs, notes = plan(base, trainer, opts, lrs, wds, modes,  # bad combinations fail before loading
                              lists.get("schedule"), lists.get("bs"), lists.get("n_factors"))
        check_outputs(report, runs_dir, [label for label, _ in configs], seeds)  # the write rule, before training
        varied, held = varied_and_held(configs, trainer)
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
        words = describe_varied(varied, lr_given=lrs != [None])
        _stderr(f"{where}: {len(configs)} configurations x {len(seeds)} seed{'s' if len(seeds) > 1 else ''}; "
                f"varied: {words}")
        outcomes = compare(dataset, trainer, configs, progress=not quiet, runs_dir=runs_dir, seeds=seeds)
        if not any(metric in o.metrics or (o.history and metric in o.history[-1]) for o in outcomes):
            raise UsageError(f"--metric {metric!r}: the runs report "
                             f"{', '.join(k for k in outcomes[0].metrics if k.startswith('valid_'))}")
        table = final_table(outcomes, metric)
        _print_table(table, metric)
        summary = summarize(outcomes, metric, where, words, held)
        _stderr(summary)
        section = title_for(varied, lr_given=lrs != [None])
        if report is not None:
            setup = {"dataset": name, **{k: v for k, v in ds_opts.items() if v is not None},
                     "trainer": trainer.name, "varied": words, "seeds": ", ".join(map(str, seeds)),
                     **{f"held: {k}": v for k, v in held.items()}, "ranked by": metric}
            write_compare_report(report, outcomes, metric, where, setup, notes,
                                 title=f"embedlab compare: {name}: {section.lower()}", load_seconds=load_seconds,
                                 section_title=section, varied=words, held=held)
            _stderr(f"wrote {report}")
        click.echo(strict_json({
            "dataset": name, "split": split, "metric": metric, "title": section, "varied": varied,
            "held": held, "seeds": seeds, "summary": summary, "notes": notes,
            "report": None if report is None else str(report),
            "results": [{"label": o.label, "seed": o.seed, "config": o.config, "metrics": o.metrics,
                         "wall_seconds": o.wall_seconds, "run": o.run_dir} for o in outcomes],
        }))

    return click.Command(name, params=params, callback=callback,
                         help=f"Compare settings on {name}: what you list varies (--opt, --lr, --wd, --wd-mode, "
                              f"{', '.join('--' + n.replace('_', '-') for n in extra)}), everything else, weight "
                              "decay included, is held fixed; the same split per configuration, --seeds for "
                              "the seed spread; curves, final metrics, wall time and a verdict.")


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


class CompareGroup(DatasetGroup):
    """``compare DATASET ...`` trains; ``compare --runs A B C`` compares runs that exist (the
    paths after ``--runs`` up to the next option, run folders or run groups)."""

    def parse_args(self, ctx, args):
        out, i = [], 0
        while i < len(args):
            if args[i] == "--runs":
                i += 1
                taken = 0
                while i < len(args) and not args[i].startswith("-"):
                    out += ["--runs", args[i]]
                    i += 1
                    taken += 1
                if not taken:
                    raise UsageError("--runs: give the run folders (or run groups) to compare")
                continue
            out.append(args[i])
            i += 1
        return super().parse_args(ctx, out)


def _compare_runs_callback(runs, metric: str, report: Path | None) -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        if runs:
            raise UsageError("--runs compares existing runs; give either --runs or a dataset to train")
        return
    if not runs:
        click.echo(ctx.get_help())
        ctx.exit(0)
    from embedlab.cli.compare_results import compare_runs

    check_outputs(report, None, [], [])
    outcomes, results, payload = compare_runs(list(runs), metric, render=report is not None)
    if not any(metric in o.metrics or (o.history and metric in o.history[-1]) for o in outcomes):
        raise UsageError(f"--metric {metric!r}: the runs report "
                         f"{', '.join(k for k in outcomes[0].metrics if k.startswith('valid_'))}")
    _print_table(final_table(outcomes, metric), metric)
    _stderr(payload["summary"])
    if report is not None:
        from embedlab.report.html import write_report

        write_report(report, None, results, title=f"embedlab compare: {len(outcomes)} runs")
        _stderr(f"wrote {report}")
    payload["report"] = None if report is None else str(report)
    click.echo(strict_json(payload))


def compare_group() -> click.Group:
    """``compare DATASET``: one subcommand per registered dataset, like ``train``; ``compare
    --runs A B C``: existing runs."""
    return CompareGroup(
        "compare", build=compare_command, invoke_without_command=True,
        callback=_compare_runs_callback,
        params=[click.Option(["--runs"], multiple=True, type=click.Path(path_type=Path),
                             help="Compare runs that exist: --runs A B C (run folders or run groups): "
                                  "metrics, curves, which settings differ, and their tables' alignment."),
                click.Option(["--metric"], default="valid_loss", show_default=True,
                             help="With --runs: the validation metric that ranks them."),
                click.Option(["--report"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                             help="With --runs: write the comparison as a standalone HTML report.")],
        help="Compare settings on a dataset, varying exactly what you list and holding everything "
             "else (weight decay included) fixed: embedlab compare DATASET --opt sgd,adam,adamw "
             "[--lr 1e-3,5e-3] [--wd 0,0.05] [--schedule one-cycle,constant] [--seeds 1,2,3] "
             "--report R.html. Or compare runs that exist: embedlab compare --runs A B C.")
