"""``embedlab compare DATASET``: the settings to compare as flags (a comma-separated list for
each setting that may vary), :func:`embedlab.engines.compare.compare_dataset` (the Python API's
path too) does the work, the ranked table, the verdict, the report and JSON out."""
from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.common import merge_params, stderr
from embedlab.cli.grammar import FORCE_OPTION, JSON_OPTION, emit_json
from embedlab.engines.compare import DEFAULT_OPTS, EXTRA_LISTED, FIT_LISTED, compare_dataset
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
    extra = [n for n in EXTRA_LISTED if any(o.name == n for o in trainer.options)]
    params = [p for p in merge_params(entry, trainer, skip=FIT_LISTED + tuple(extra)) if p.name != "seed"]

    def callback(quiet, report, runs_dir, metric, seeds, opt, lr, wd, wd_mode, force=False, as_json=False,
                 **values):
        from embedlab.io.progress import progress_bar
        from embedlab.training.callbacks import format_row

        lists, shown = {n: values.pop(n) for n in extra}, not (quiet or global_quiet())
        with progress_bar(shown) as bar:  # one bar per run: its epochs (train --seeds')
            tasks: dict[str, int] = {}

            def on_epoch(name: str, epoch: int, epochs, row) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=epochs)
                bar.update(tasks[name], completed=epoch, info=f"valid_loss {row['valid_loss']:.4f}"
                           if row and isinstance(row.get("valid_loss"), float) else "")
                if row:
                    bar.print(format_row(row))

            done = compare_dataset(entry, trainer, values, opt, lr, wd, wd_mode, seeds, metric, report=report,
                                   runs_dir=runs_dir, force=force, echo=bar.print if shown else None,
                                   on_epoch=on_epoch, **lists)
        show(done, metric, report, force, as_json)

    return click.Command(entry.name, params=params + _compare_options(trainer, extra), callback=callback,
                         help=f"Compare settings on {entry.name}: what you list varies (--opt, --lr, --wd, "
                              f"--wd-mode, {', '.join('--' + n.replace('_', '-') for n in extra)}), everything "
                              "else, weight decay included, is held fixed; the same split per configuration, "
                              "--seeds for the seed spread; curves, final metrics, wall time and a verdict.")


def _defaults_sentences(trainer: TrainerEntry) -> tuple[str, str]:
    """The per-optimizer defaults of the trainer's --lr and --wd, as sentences for --help."""
    from embedlab.training.fitconfig import DefaultsOption

    found = {o.name: o.fit_defaults for o in trainer.options if isinstance(o, DefaultsOption)}
    lr = f"Default per --opt: {found['lr'].describe_lr()}." if "lr" in found else ""
    wd = f"Default per --opt and --wd-mode: {found['wd'].describe_wd()}." if "wd" in found else ""
    return lr, wd


def show(done, metric: str, report: Path | None, force: bool, as_json: bool) -> None:
    """The ranked table and the verdict on stderr, the report written last, JSON on stdout."""
    from embedlab.report.terminal import print_ranked

    print_ranked(done.table, metric)
    stderr(done.summary)
    if report is not None:
        done.write_report(report, force=force)
        stderr(f"wrote {report}")
    emit_json(done.payload(report), as_json, "compare")
