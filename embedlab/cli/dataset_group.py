"""The group of the dataset commands (``train``, ``lr-find``, ``compare``): one subcommand per
registered dataset, made for the trainer that ``--trainer`` names (read before the command is
made). Imported from :mod:`embedlab.cli.common` too."""

from __future__ import annotations

from typing import Callable

import click

from embedlab.errors import EmbedlabError, UsageError
from embedlab.registry import DatasetEntry, TrainerEntry


#: where a dataset command's context keeps the trainer its arguments name (``--trainer``)
TRAINER_KEY = "embedlab.trainer"


class DatasetGroup(click.Group):
    """A group whose subcommands are the registered datasets; ``build(entry, trainer)`` makes
    the subcommand for one dataset and the trainer chosen for it."""

    def __init__(self, *args, build: Callable[[DatasetEntry, TrainerEntry], click.Command], **kwargs):
        super().__init__(*args, **kwargs)
        self.build = build

    def list_commands(self, ctx):
        from embedlab.registry import datasets

        return list(datasets())

    def get_command(self, ctx, name):
        from embedlab.registry import datasets, trainer_for_dataset

        entry = datasets().get(name)
        if entry is None:
            return None
        chosen = ctx.meta.get(TRAINER_KEY)
        try:
            trainer = trainer_for_dataset(entry, chosen)
        except UsageError as exc:
            if chosen is not None:
                raise
            return _unavailable(name, entry.description, exc)  # listed; running it says why not
        return self.build(entry, trainer)

    def format_commands(self, ctx, formatter):
        """The subcommands are datasets: listed under "Datasets:" (click says "Commands:")."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append(
                    (name, cmd.get_short_help_str(formatter.width - 6 - max(len(n) for n in self.list_commands(ctx))))
                )
        if rows:
            with formatter.section("Datasets"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        from embedlab.registry import datasets

        name = args[0] if args else None
        if name is not None and not name.startswith("-") and name not in datasets():
            raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(datasets())}")
        if name in datasets():
            ctx.meta[TRAINER_KEY] = self.trainer_named(datasets()[name], args[1:])
        return super().resolve_command(ctx, args)

    def trainer_named(self, entry: DatasetEntry, args: list[str]) -> str | None:
        """The value of ``--trainer`` in a dataset command's arguments, read by click's own parser
        over the options every trainer of the dataset's kind declares (so another option's value
        is never taken for it, and ``--trainer=NAME`` is click's), before the command is made.

        Why this cannot go: a dataset command's options are those of the trainer that
        ``--trainer`` chooses (each trainer declares its own, with its own types, defaults and
        help), and click fixes a command's options before it parses its arguments. So the
        arguments are parsed twice: here, to know the trainer, then by the command made for it
        (which converts, checks and reports errors; nothing here does)."""
        from embedlab.registry import trainers_for

        params: dict[str, click.Parameter] = {}
        for trainer in trainers_for(entry.kind):
            try:
                command = self.build(entry, trainer)
            except EmbedlabError:  # a trainer whose options clash with the dataset's: not chosen here
                continue
            for param in command.params:
                params.setdefault(param.name, param)
        probe = click.Command(entry.name, params=list(params.values()), add_help_option=False)
        parser = probe.make_parser(
            click.Context(probe, resilient_parsing=True, ignore_unknown_options=True, allow_extra_args=True)
        )
        try:
            values = parser.parse_args(list(args))[0]
        except click.ClickException:  # the command made for the default trainer reports it
            return None
        value = values.get("trainer")
        return value if isinstance(value, str) else None


def _unavailable(name: str, description: str, error: UsageError) -> click.Command:
    def callback(**_):
        raise error

    return click.Command(
        name,
        callback=callback,
        help=f"{description} ({error.format_message()})",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
