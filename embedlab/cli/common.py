"""What the dataset commands (``train``, ``lr-find``, ``compare``) share: one subcommand per
registered dataset (:class:`DatasetGroup`, cli/dataset_group.py), the choice of its trainer
(``--trainer``), and the one path from a command's options to a loaded dataset and a trainer config."""

from __future__ import annotations

from typing import Any

import click

from embedlab.cli.dataset_group import TRAINER_KEY, DatasetGroup  # noqa: F401 - their old import path
from embedlab.errors import EmbedlabError
from embedlab.registry import DatasetEntry, TrainerEntry


def stderr(msg: str) -> None:
    click.echo(msg, err=True)


def trainer_option(entry: DatasetEntry, trainer: TrainerEntry) -> click.Option:
    """``--trainer``: which registered trainer of the dataset's kind trains it."""
    from embedlab.registry import trainers_for

    names = [t.name for t in trainers_for(entry.kind)] or [trainer.name]
    return click.Option(
        ["--trainer"],
        type=click.Choice(names),
        default=trainer.name,
        show_default=True,
        help=f"Trainer of {entry.kind} datasets (installed: {', '.join(names)}); its options "
        f"are listed here, so give it before --help.",
    )


def merge_params(entry: DatasetEntry, trainer: TrainerEntry, skip: tuple[str, ...] = ()) -> list[click.Parameter]:
    """The dataset's options, then the trainer's (except ``skip``); a name both declare is an error."""
    params = list(entry.options)
    taken = {p.name for p in params}
    for opt in trainer.options:
        if opt.name in skip:
            continue
        if opt.name in taken:
            raise EmbedlabError(f"dataset {entry.name!r} and trainer {trainer.name!r} both define --{opt.name}")
        params.append(opt)
    return params + [trainer_option(entry, trainer)]


def load_for_command(entry: DatasetEntry, values: dict[str, Any], announce: bool = True):
    """A command's option values -> (loaded dataset, trainer config): the dataset takes its own
    options plus the seed; the rest, seed included, is the trainer's config."""
    from embedlab.engines.loading import load_for_training  # the API's path too

    if announce:
        stderr(f"loading {entry.name} ...")
    dataset, cfg = load_for_training(entry, values)
    if announce:
        stderr(
            f"{entry.name}: {len(dataset.train):,} training rows, "
            f"{0 if dataset.valid is None else len(dataset.valid):,} validation rows "
            f"(split: {dataset.split.get('name', '?')})"
        )
    return dataset, cfg
