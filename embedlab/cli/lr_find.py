"""``embedlab lr-find DATASET``: one subcommand per registered dataset, an exponential lr
sweep with its suggestions and (``--plot``) its plot. Imported from :mod:`embedlab.cli.train` too."""

from __future__ import annotations

import click

from embedlab.cli.common import load_for_command, merge_params, stderr
from embedlab.cli.dataset_group import DatasetGroup
from embedlab.cli.grammar import JSON_OPTION, emit_json
from embedlab.cli.train_flags import LR_FIND_OPTIONS
from embedlab.errors import EmbedlabError
from embedlab.io.progress import quiet as global_quiet
from embedlab.registry import DatasetEntry, TrainerEntry


def lr_find_command(entry: DatasetEntry, trainer: TrainerEntry) -> click.Command:
    """``lr-find NAME``: an exponential lr sweep, its suggestions and (``--plot``) its plot."""

    def callback(**kwargs):
        quiet, plot, rule = kwargs.pop("quiet") or global_quiet(), kwargs.pop("plot"), kwargs.pop("suggest")
        force = kwargs.pop("force", False)
        as_json = kwargs.pop("as_json", False)
        trainer.require("lr_find", "lr-find")
        if plot is not None:
            from embedlab.io.ownership import check_file

            check_file(plot, force=force, option="--plot", html=True)  # before the sweep, not after
        dataset, cfg = load_for_command(entry, kwargs)
        result = trainer.lr_find(dataset, cfg, progress=not quiet)
        sugg = result.suggestions()
        if not sugg:
            raise EmbedlabError("lr-find stopped too early to suggest anything; lower the starting lr")
        for rule_name, lr in sugg.items():
            mark = "  <- recommended" if rule_name == rule else ""
            stderr(f"{rule_name:>7}: {lr:.2e}{mark}")
        emit_json({"suggested_lr": sugg[rule], "rule": rule, "suggestions": sugg}, as_json, "lr-find")
        if plot is not None:
            from embedlab.report.lrplot import write_lr_plot

            write_lr_plot(plot, result, sugg, rule, title=f"lr-find: {entry.name}", force=force)
            stderr(f"wrote {plot}")

    return click.Command(
        entry.name,
        params=merge_params(entry, trainer) + LR_FIND_OPTIONS + [JSON_OPTION()],
        callback=callback,
        help=f"Sweep learning rates on {entry.name} and suggest one.",
    )


def lr_find_group() -> click.Group:
    return DatasetGroup(
        "lr-find", build=lr_find_command, help="Find a learning rate: exponential sweep, loss-vs-lr plot, suggestion."
    )
