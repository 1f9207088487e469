"""What the dataset commands (``train``, ``lr-find``, ``compare``) share: one subcommand per
registered dataset, the choice of its trainer (``--trainer``), and the one path from a
command's options to a loaded dataset and a trainer config."""
from __future__ import annotations

from typing import Any, Callable

import click

from embedlab.errors import EmbedlabError, UsageError
from embedlab.registry import DatasetEntry, TrainerEntry


#: the words of every command's ``--force`` (the grammar: docs/architecture.md, "CLI grammar")
FORCE_HELP = ("Let the outputs replace files or folders embedlab did not write (without it they are "
              "refused: embedlab writes only new paths or what it recognisably wrote itself).")


def FORCE_OPTION() -> click.Option:  # noqa: N802 - reads as the option it makes
    """``--force`` as every command that writes declares it."""
    return click.Option(["--force"], is_flag=True, help=FORCE_HELP)


def with_old_name(option: click.Option, old: str) -> list[click.Option]:
    """``option`` and a hidden alias ``old`` (its spelling before the one grammar): the alias
    sets the same value with a one-line deprecation warning (deprecations.RENAMED_OPTION)."""
    key = f"embedlab.renamed.{option.name}"
    new = max(option.opts, key=len)

    def old_given(ctx: click.Context, _param, value):
        if value is not None and value not in ((), False):
            from embedlab.deprecations import RENAMED_OPTION

            RENAMED_OPTION.warn(command=ctx.command_path, old=old, new=new)
            ctx.meta[key] = value

    def resolve(ctx: click.Context, param, value, _own=option.callback):
        if key in ctx.meta and ctx.get_parameter_source(param.name) in (None, click.core.ParameterSource.DEFAULT):
            value = ctx.meta[key]
        return _own(ctx, param, value) if _own else value

    option.callback = resolve
    alias = click.Option([old], type=option.type, is_flag=option.is_flag, multiple=option.multiple,
                         hidden=True, expose_value=False, callback=old_given)
    return [option, alias]


def JSON_OPTION() -> click.Option:  # noqa: N802 - reads as the option it makes
    """``--json`` as every command whose output is data declares it."""
    return click.Option(["--json", "as_json"], is_flag=True,
                        help="Print the result as JSON on stdout (the human lines go to stderr).")


def emit_json(payload: Any, as_json: bool, command: str) -> None:
    """A command's data on stdout as JSON with ``--json``. Without it nothing goes to a terminal
    (the human lines are on stderr); a script reading stdout (not a terminal) still gets the JSON
    line that train, lr-find and compare always printed, with a one-line deprecation warning."""
    from embedlab.io.strictjson import dumps

    if not as_json:
        import sys

        if sys.stdout.isatty():
            return
        from embedlab.deprecations import JSON_WITHOUT_FLAG

        JSON_WITHOUT_FLAG.warn(command=f"embedlab {command}")
    click.echo(dumps(payload))


def stderr(msg: str) -> None:
    click.echo(msg, err=True)


def trainer_option(entry: DatasetEntry, trainer: TrainerEntry) -> click.Option:
    """``--trainer``: which registered trainer of the dataset's kind trains it."""
    from embedlab.registry import trainers_for

    names = [t.name for t in trainers_for(entry.kind)] or [trainer.name]
    return click.Option(["--trainer"], type=click.Choice(names), default=trainer.name, show_default=True,
                        help=f"Trainer of {entry.kind} datasets (installed: {', '.join(names)}); its options "
                             f"are listed here, so give it before --help.")


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
        stderr(f"{entry.name}: {len(dataset.train):,} training rows, "
               f"{0 if dataset.valid is None else len(dataset.valid):,} validation rows "
               f"(split: {dataset.split.get('name', '?')})")
    return dataset, cfg


def _trainer_in(args: list[str]) -> str | None:
    """The value of ``--trainer`` among a subcommand's raw arguments (its options depend on it)."""
    for i, arg in enumerate(args):
        if arg == "--trainer" and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith("--trainer="):
            return arg.split("=", 1)[1]
    return None


#: option names of the distributed section of ``train DATASET --help`` (torchrun)
DISTRIBUTED_WORDS = ("shard", "ddp", "distributed", "world", "backend", "nproc")


class GroupedCommand(click.Command):
    """A dataset command whose ``--help`` lists its options in sections (data / model /
    optimisation / distributed / output) and ends with examples: ``sections`` maps a title to
    the parameter names it holds, in order; options in no section go under "Other"."""

    def __init__(self, *args, sections: dict[str, set[str]], examples: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.sections = sections
        self.examples = list(examples)

    def format_options(self, ctx, formatter):
        records: dict[str, list] = {title: [] for title in [*self.sections, "Other"]}
        for param in self.get_params(ctx):
            rec = param.get_help_record(ctx)
            if rec is None:
                continue
            title = next((t for t, names in self.sections.items() if param.name in names), "Other")
            records[title].append(rec)
        for title, recs in records.items():
            if recs:
                with formatter.section(title):
                    formatter.write_dl(recs)

    def format_epilog(self, ctx, formatter):
        if self.examples:
            with formatter.section("Examples"):
                for line in self.examples:
                    formatter.write_text(line)
        super().format_epilog(ctx, formatter)


def option_sections(entry: DatasetEntry, trainer: TrainerEntry, output: list[click.Parameter]) -> dict[str, set[str]]:
    """``train DATASET --help``'s sections: the dataset's options (data), the trainer's fit options
    (optimisation: embedlab.training.fitconfig.fit_options), torchrun's (distributed), the rest of
    the trainer's (model), the command's own (output)."""
    from embedlab.training.fitconfig import fit_options

    fit = {o.name for o in fit_options()} | {"sparse", "lr", "wd", "init_from"}
    trainer_names = [o.name for o in trainer.options] + ["trainer"]
    dist = {n for n in trainer_names if any(w in n for w in DISTRIBUTED_WORDS)}
    return {"Data": {o.name for o in entry.options},
            "Model": {n for n in trainer_names if n not in fit and n not in dist},
            "Optimisation": {n for n in trainer_names if n in fit and n not in dist},
            "Distributed": dist,
            "Output": {p.name for p in output} | {"help"}}


class DatasetGroup(click.Group):
    """A group whose subcommands are the registered datasets; ``build(entry, trainer)`` makes
    the subcommand for one dataset and the trainer chosen for it."""

    def __init__(self, *args, build: Callable[[DatasetEntry, TrainerEntry], click.Command], **kwargs):
        super().__init__(*args, **kwargs)
        self.build = build
        self._trainer_name: str | None = None

    def list_commands(self, ctx):
        from embedlab.registry import datasets

        return list(datasets())

    def get_command(self, ctx, name):
        from embedlab.registry import datasets, trainer_for_dataset

        entry = datasets().get(name)
        if entry is None:
            return None
        try:
            trainer = trainer_for_dataset(entry, self._trainer_name)
        except UsageError as exc:
            if self._trainer_name is not None:
                raise
            return _unavailable(name, entry.description, exc)  # listed; running it says why not
        return self.build(entry, trainer)

    def format_commands(self, ctx, formatter):
        """The subcommands are datasets: listed under "Datasets:" (click says "Commands:")."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.get_short_help_str(formatter.width - 6 - max(len(n) for n in
                                                                                     self.list_commands(ctx)))))
        if rows:
            with formatter.section("Datasets"):
                formatter.write_dl(rows)

    def resolve_command(self, ctx, args):
        from embedlab.registry import datasets

        name = args[0] if args else None
        if name is not None and not name.startswith("-") and name not in datasets():
            raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(datasets())}")
        self._trainer_name = _trainer_in(args[1:])
        return super().resolve_command(ctx, args)


def _unavailable(name: str, description: str, error: UsageError) -> click.Command:
    def callback(**_):
        raise error

    return click.Command(name, callback=callback, help=f"{description} ({error.format_message()})",
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
