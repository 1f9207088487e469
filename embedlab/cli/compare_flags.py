"""``embedlab compare DATASET``'s own flags: a comma-separated list for each setting that may
vary (--opt, --lr, --wd, --wd-mode, the trainer's listed options), seeds, metric, outputs."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.grammar import FORCE_OPTION, JSON_OPTION
from embedlab.engines.compare import DEFAULT_OPTS
from embedlab.registry import TrainerEntry
from embedlab.training.fitconfig import OPTIMIZERS


def list_option(trainer: TrainerEntry, name: str) -> click.Option | None:
    """A comma-separated list version of the trainer's option ``name`` (None: it has none)."""
    opt = next((o for o in trainer.options if o.name == name), None)
    if opt is None:
        return None
    choices = getattr(opt.type, "choices", None)
    extra = f" from: {', '.join(choices)}" if choices else ""
    return click.Option(
        list(opt.opts),
        default=None,
        help=f"Comma-separated values to compare{extra} (default: {opt.default}, held fixed). {opt.help or ''}",
    )


def compare_options(trainer: TrainerEntry, extra: list[str]) -> list[click.Option]:
    lr_help, wd_help = defaults_sentences(trainer)
    return [
        click.Option(
            ["--opt"],
            default=None,
            help=f"Comma-separated optimizers to compare, from: {', '.join(OPTIMIZERS)}. Without "
            f"it: the trainer's default optimizer, or all of {DEFAULT_OPTS} when nothing "
            f"else is varied.",
        ),
        click.Option(
            ["--lr"],
            default=None,
            help="Comma-separated maximum learning rates, each tried with every optimizer "
            f"(e.g. 1e-3,5e-3,1e-2); without it each optimizer gets its default. {lr_help}",
        ),
        click.Option(
            ["--wd"],
            default=None,
            help="Comma-separated weight decays. Without it one weight decay is held fixed for "
            "every configuration: the default of the trainer's default optimizer (or the "
            f"first listed) in the weight-decay mode used. {wd_help}",
        ),
        click.Option(
            ["--wd-mode"],
            default=None,
            help="Comma-separated weight-decay modes (decoupled, l2, auto), e.g. l2,decoupled "
            "to see lesson 5's difference under one optimizer. Without it the mode is held "
            "fixed (the reference optimizer's); 'auto' lets it follow each optimizer "
            "(decoupled for adamw, l2 for the others) and then wd follows too.",
        ),
        *[o for o in (list_option(trainer, n) for n in extra) if o is not None],
        click.Option(
            ["--seeds"],
            default=None,
            metavar="S1,S2,...",
            help="Train every configuration once per seed (e.g. 1,2,3) and report mean and sd; a "
            "difference smaller than the seed spread is called that. Default: --seed.",
        ),
        click.Option(
            ["--seed"],
            type=int,
            default=42,
            show_default=True,
            help="Seed of every run (model initialisation, data order, random splits).",
        ),
        click.Option(
            ["--metric"],
            default="valid_loss",
            show_default=True,
            help="Validation metric that ranks the configurations (lower is better).",
        ),
        click.Option(
            ["--report", "-r"],
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Write the comparison as a standalone HTML report (new, or one embedlab wrote; see --force).",
        ),
        click.Option(
            ["--runs-dir"],
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Also save every trained run in this folder (one sub-folder per configuration, "
            "seed-N inside with several seeds).",
        ),
        FORCE_OPTION(),
        JSON_OPTION(),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    ]


def defaults_sentences(trainer: TrainerEntry) -> tuple[str, str]:
    """The per-optimizer defaults of the trainer's --lr and --wd, as sentences for --help."""
    from embedlab.training.fitconfig import DefaultsOption

    found = {o.name: o.fit_defaults for o in trainer.options if isinstance(o, DefaultsOption)}
    lr = f"Default per --opt: {found['lr'].describe_lr()}." if "lr" in found else ""
    wd = f"Default per --opt and --wd-mode: {found['wd'].describe_wd()}." if "wd" in found else ""
    return lr, wd
