"""``embedlab compare DATASET``: the settings to compare as flags (a comma-separated list for
each setting that may vary), :func:`embedlab.engines.compare.compare_dataset` (the Python API's
path too) does the work, the ranked table, the verdict, the report and JSON out. The flags
themselves are cli/compare_flags.py."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.common import merge_params, stderr
from embedlab.cli.compare_flags import compare_options
from embedlab.cli.grammar import emit_json
from embedlab.engines.compare import EXTRA_LISTED, FIT_LISTED, compare_dataset
from embedlab.io.progress import quiet as global_quiet
from embedlab.registry import DatasetEntry, TrainerEntry


def compare_command(entry: DatasetEntry, trainer: TrainerEntry) -> click.Command:
    """``compare NAME``: the dataset's options, its trainer's options, lists for what may vary."""
    extra = [n for n in EXTRA_LISTED if any(o.name == n for o in trainer.options)]
    params = [p for p in merge_params(entry, trainer, skip=FIT_LISTED + tuple(extra)) if p.name != "seed"]

    def callback(quiet, report, runs_dir, metric, seeds, opt, lr, wd, wd_mode, force=False, as_json=False, **values):
        from embedlab.io.progress import progress_bar
        from embedlab.training.callbacks import format_row

        lists, shown = {n: values.pop(n) for n in extra}, not (quiet or global_quiet())
        with progress_bar(shown) as bar:  # one bar per run: its epochs (train --seeds')
            tasks: dict[str, int] = {}

            def on_epoch(name: str, epoch: int, epochs, row) -> None:
                if name not in tasks:
                    tasks[name] = bar.add_task(name, total=epochs)
                bar.update(
                    tasks[name],
                    completed=epoch,
                    info=f"valid_loss {row['valid_loss']:.4f}"
                    if row and isinstance(row.get("valid_loss"), float)
                    else "",
                )
                if row:
                    bar.print(format_row(row))

            done = compare_dataset(
                entry,
                trainer,
                values,
                opt,
                lr,
                wd,
                wd_mode,
                seeds,
                metric,
                report=report,
                runs_dir=runs_dir,
                force=force,
                echo=bar.print if shown else None,
                on_epoch=on_epoch,
                **lists,
            )
        show(done, metric, report, force, as_json)

    return click.Command(
        entry.name,
        params=params + compare_options(trainer, extra),
        callback=callback,
        help=f"Compare settings on {entry.name}: what you list varies (--opt, --lr, --wd, "
        f"--wd-mode, {', '.join('--' + n.replace('_', '-') for n in extra)}), everything "
        "else, weight decay included, is held fixed; the same split per configuration, "
        "--seeds for the seed spread; curves, final metrics, wall time and a verdict.",
    )


def show(done, metric: str, report: Path | None, force: bool, as_json: bool) -> None:
    """The ranked table and the verdict on stderr, the report written last, JSON on stdout."""
    from embedlab.report.terminal import print_ranked

    print_ranked(done.table, metric)
    stderr(done.summary)
    if report is not None:
        done.write_report(report, force=force)
        stderr(f"wrote {report}")
    emit_json(done.payload(report), as_json, "compare")
