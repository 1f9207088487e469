"""``embedlab compare``: the group of ``compare DATASET`` (one subcommand per dataset:
:mod:`embedlab.cli.compare_settings`) and ``compare --runs A B C`` (runs that exist); the
comparison engine (:mod:`embedlab.engines.compare`) does the work."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.dataset_group import DatasetGroup
from embedlab.cli.compare_settings import compare_command, show
from embedlab.cli.grammar import FORCE_OPTION, JSON_OPTION
from embedlab.engines.compare import compare_existing
from embedlab.errors import UsageError


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


def _compare_runs_callback(runs, metric: str, report: Path | None, force: bool = False, as_json: bool = False) -> None:
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is not None:
        if runs:
            raise UsageError("--runs compares existing runs; give either --runs or a dataset to train")
        return
    if not runs:
        click.echo(ctx.get_help())
        ctx.exit(0)
    from embedlab.io.progress import status

    show(compare_existing(list(runs), metric, report=report, force=force, echo=status), metric, report, force, as_json)


def compare_group() -> click.Group:
    """``compare DATASET``: one subcommand per registered dataset, like ``train``; ``compare
    --runs A B C``: existing runs."""
    return CompareGroup(
        "compare",
        build=compare_command,
        invoke_without_command=True,
        callback=_compare_runs_callback,
        params=[
            click.Option(
                ["--runs"],
                multiple=True,
                type=click.Path(path_type=Path),
                help="Compare runs that exist: --runs A B C (run folders or run groups): "
                "metrics, curves, which settings differ, and their tables' alignment.",
            ),
            click.Option(
                ["--metric"],
                default="valid_loss",
                show_default=True,
                help="With --runs: the validation metric that ranks them.",
            ),
            click.Option(
                ["--report", "-r"],
                type=click.Path(dir_okay=False, path_type=Path),
                default=None,
                help="With --runs: write the comparison as a standalone HTML report (new, or "
                "one embedlab wrote; see --force).",
            ),
            FORCE_OPTION(),
            JSON_OPTION(),
        ],
        help="Compare settings on a dataset, varying exactly what you list and holding everything "
        "else (weight decay included) fixed; or compare runs that exist.\n\n"
        "\b\nExamples:\n"
        "  embedlab compare DATASET --opt sgd,adam,adamw --lr 1e-3,5e-3 --report R.html\n"
        "  embedlab compare DATASET --wd 0,0.05 --schedule one-cycle,constant --seeds 1,2,3\n"
        "  embedlab compare --runs A B C",
    )
