"""``embedlab compare DATASET`` and ``embedlab compare --runs A B C``: flags in, the comparison
engine (:mod:`embedlab.engines.compare`, :mod:`embedlab.engines.compare_results`) does the work,
a ranked table, the verdict and JSON out."""
from __future__ import annotations

import time
from pathlib import Path

import click
import pandas as pd

from embedlab.cli.common import DatasetGroup, load_for_command, merge_params, stderr
from embedlab.cli.grammar import FORCE_OPTION, JSON_OPTION, emit_json
from embedlab.engines.compare import (DEFAULT_OPTS, EXTRA_LISTED, FIT_LISTED, Outcome, check_metric,  # noqa: F401
                                      check_outputs, compare, final_table, parse_list, plan, plan_comparison,
                                      run_comparison, summarize, title_for, varied_and_held)
from embedlab.errors import UsageError
from embedlab.io.progress import quiet as global_quiet
from embedlab.registry import DatasetEntry, TrainerEntry
from embedlab.training.fitconfig import OPTIMIZERS


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


def _compare_options(trainer: TrainerEntry, extra: list[str]) -> list[click.Option]:
    lr_help, wd_help = _defaults_sentences(trainer)
    return [
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
        click.Option(["--report", "-r"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="Write the comparison as a standalone HTML report (new, or one embedlab wrote; "
                          "see --force)."),
        click.Option(["--runs-dir"], type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Also save every trained run in this folder (one sub-folder per configuration, "
                          "seed-N inside with several seeds)."),
        FORCE_OPTION(),
        JSON_OPTION(),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    ]


def compare_command(entry: DatasetEntry, trainer: TrainerEntry) -> click.Command:
    """``compare NAME``: the dataset's options, its trainer's options, lists for what may vary."""
    name = entry.name
    extra = [n for n in EXTRA_LISTED if any(o.name == n for o in trainer.options)]
    params = [p for p in merge_params(entry, trainer, skip=FIT_LISTED + tuple(extra)) if p.name != "seed"]
    params += _compare_options(trainer, extra)

    def callback(quiet, report, runs_dir, metric, seeds, opt, lr, wd, wd_mode, force=False, as_json=False,
                 **kwargs):
        quiet = quiet or global_quiet()
        lists = {n: kwargs.pop(n) for n in extra}
        ds_opts, base = entry.split_options(kwargs)
        the_plan = plan_comparison(trainer, base, opt, lr, wd, wd_mode, seeds, **lists)  # fails before loading
        check_outputs(report, runs_dir, [label for label, _ in the_plan.configs], the_plan.seeds, force=force)
        t_load = time.perf_counter()
        dataset, _ = load_for_command(entry, kwargs, announce=False)
        done = run_comparison(dataset, trainer, the_plan, metric, progress=not quiet, runs_dir=runs_dir,
                              load_seconds=time.perf_counter() - t_load, force=force)
        _print_table(done.table, metric)
        stderr(done.summary)
        if report is not None:
            held = the_plan.held
            setup = {"dataset": name, **{k: v for k, v in ds_opts.items() if v is not None},
                     "trainer": trainer.name, "varied": the_plan.words,
                     "seeds": ", ".join(map(str, the_plan.seeds)), **{f"held: {k}": v for k, v in held.items()},
                     "ranked by": metric}
            done.write_report(report, setup, force=force)
            stderr(f"wrote {report}")
        emit_json(done.payload(report), as_json, "compare")

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


def _compare_runs_callback(runs, metric: str, report: Path | None, force: bool = False,
                           as_json: bool = False) -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        if runs:
            raise UsageError("--runs compares existing runs; give either --runs or a dataset to train")
        return
    if not runs:
        click.echo(ctx.get_help())
        ctx.exit(0)
    from embedlab.engines.compare_results import compare_runs

    check_outputs(report, None, [], [], force=force)
    from embedlab.io.progress import status

    outcomes, results, payload = compare_runs(list(runs), metric, render=report is not None, echo=status)
    check_metric(outcomes, metric)
    _print_table(final_table(outcomes, metric), metric)
    stderr(payload["summary"])
    if report is not None:
        from embedlab.report.html import write_report

        write_report(report, None, results, title=f"embedlab compare: {len(outcomes)} runs", force=force)
        stderr(f"wrote {report}")
    payload["report"] = None if report is None else str(report)
    emit_json(payload, as_json, "compare")


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
                click.Option(["--report", "-r"], type=click.Path(dir_okay=False, path_type=Path), default=None,
                             help="With --runs: write the comparison as a standalone HTML report (new, or "
                                  "one embedlab wrote; see --force)."),
                FORCE_OPTION(), JSON_OPTION()],
        help="Compare settings on a dataset, varying exactly what you list and holding everything "
             "else (weight decay included) fixed; or compare runs that exist.\n\n"
             "\b\nExamples:\n"
             "  embedlab compare DATASET --opt sgd,adam,adamw --lr 1e-3,5e-3 --report R.html\n"
             "  embedlab compare DATASET --wd 0,0.05 --schedule one-cycle,constant --seeds 1,2,3\n"
             "  embedlab compare --runs A B C")
