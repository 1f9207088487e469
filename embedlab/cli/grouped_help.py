"""The grouped ``train DATASET --help`` (docs/architecture.md, "CLI grammar"): the options in
sections (data / model / optimisation / distributed / output), then examples. Imported from
:mod:`embedlab.cli.grammar` too."""

from __future__ import annotations

import click

from embedlab.registry import DatasetEntry, TrainerEntry


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
    """``train DATASET --help``'s sections: the dataset's options (data), the trainer's by the
    section each declares (``option(section=...)`` of its TrainerOptions: model, optimisation,
    distributed), the command's own (output). A trainer that declares click options: its fit
    options (embedlab.training.fitconfig.FitOptions' names) under optimisation, torchrun's
    (names with a DISTRIBUTED_WORDS word) under distributed, the rest under model."""
    from embedlab.training.fitconfig import FitOptions

    fit = set(FitOptions.names()) | {"sparse"}
    sections: dict[str, set[str]] = {
        "Data": {o.name for o in entry.options},
        "Model": {"trainer"},
        "Optimisation": set(),
        "Distributed": set(),
    }
    for o in trainer.options:
        title = getattr(o, "section", None)
        if title is None:
            title = (
                "Distributed"
                if any(w in o.name for w in DISTRIBUTED_WORDS)
                else "Optimisation"
                if o.name in fit
                else "Model"
            )
        sections.setdefault(title, set()).add(o.name)
    return {**sections, "Output": {p.name for p in output} | {"help"}}
