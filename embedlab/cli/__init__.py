"""The ``embedlab`` command line: train, lr-find, analyze, datasets, plugins (+ plugins' own).

``embedlab train NAME`` has one subcommand per registered dataset, with that dataset's
options and its trainer's options, so ``embedlab train NAME --help`` documents both.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from embedlab._version import __version__
from embedlab.errors import EmbedlabError, UsageError

COMMON_TRAIN_OPTIONS = [
    click.Option(["--out", "-o"], type=click.Path(path_type=Path), required=True,
                 help="Run folder to write (created; an existing run there is replaced only "
                      "once the new one is complete)."),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    click.Option(["--resume"], is_flag=True,
                 help="Continue an interrupted training of this --out from its last completed epoch. "
                      "After every epoch `train` keeps a checkpoint (model, optimizer, schedule, "
                      "random states; safetensors + JSON) in the hidden folder .NAME.checkpoint "
                      "beside --out NAME, deleted once the run is saved. Give the same options as "
                      "before: other settings or other data are refused; without a checkpoint it is "
                      "an error. The result equals an uninterrupted run's."),
    click.Option(["--no-checkpoint"], is_flag=True,
                 help="Keep no per-epoch checkpoint (a killed run then starts over)."),
]


def _stderr(msg: str) -> None:
    click.echo(msg, err=True)


def _split_kwargs(spec, trainer, kwargs: dict[str, Any]) -> tuple[dict, dict]:
    ds_names = {o.name for o in spec.options}
    ds_opts = {k: v for k, v in kwargs.items() if k in ds_names}
    cfg = {k: v for k, v in kwargs.items() if k not in ds_names}
    ds_opts["seed"] = cfg.get("seed", 42)
    return ds_opts, cfg


def _dataset_command(name: str, mode: str) -> click.Command:
    """Build ``train NAME`` or ``lr-find NAME`` for a registered dataset."""
    from embedlab.data import remember_options
    from embedlab.registry import get_dataset, trainer_for

    spec = get_dataset(name)
    trainer = trainer_for(spec.kind)
    params = list(spec.options)
    taken = {p.name for p in params}
    for opt in getattr(trainer, "options", []):
        if opt.name in taken:
            raise EmbedlabError(f"dataset {name!r} and trainer {trainer.name!r} both define --{opt.name}")
        params.append(opt)
    if mode == "train":
        params += COMMON_TRAIN_OPTIONS
    else:
        params += [
            click.Option(["--plot"], type=click.Path(path_type=Path), default=None,
                         help="Write the loss-vs-lr plot as a standalone HTML file."),
            click.Option(["--suggest"], type=click.Choice(["valley", "steep", "min10"]), default="valley",
                         show_default=True,
                         help="Suggestion rule: 'valley' (middle of the longest descent), 'steep' "
                              "(steepest descent), 'min10' (the minimum's lr divided by 10)."),
            click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
        ]

    def callback(**kwargs):
        quiet = kwargs.pop("quiet", False)
        out = kwargs.pop("out", None)
        plot = kwargs.pop("plot", None)
        rule = kwargs.pop("suggest", "valley")
        resume, keep = kwargs.pop("resume", False), not kwargs.pop("no_checkpoint", False)
        ds_opts, cfg = _split_kwargs(spec, trainer, kwargs)
        ckpt_plan = None
        if out is not None:
            from embedlab.training import checkpoint
            from embedlab.run import check_out_dir

            check_out_dir(out)  # fail before hours of training, not after
            ckpt_plan = checkpoint.plan(out, {"dataset": name, **kwargs}, resume=resume, write=keep,
                                        echo=_stderr)
        if plot is not None:
            from embedlab.io.atomic import check_file_target

            check_file_target(plot)
        _stderr(f"loading {name} ...")
        from embedlab.training.distributed import loader_shard  # torchrun --shard-data: read only this rank's rows

        dataset = remember_options(spec.load(**ds_opts, **loader_shard(spec.load, cfg)), ds_opts)
        _stderr(f"{name}: {len(dataset.train):,} training rows, "
                f"{0 if dataset.valid is None else len(dataset.valid):,} validation rows "
                f"(split: {dataset.split.get('name', '?')})")
        if mode == "train":
            from embedlab.training import distributed

            with checkpoint.checkpointing(ckpt_plan, dataset, echo=_stderr):  # says where it is on failure
                run = trainer.train(dataset, cfg, progress=not quiet)
                if not distributed.is_writer():  # torchrun: rank 0 alone writes the run
                    return
                run.save(out)
            ckpt_plan.discard()  # the run is complete: its checkpoint has served
            metrics = ", ".join(f"{k} {v:.4f}" for k, v in run.metrics.items() if isinstance(v, float))
            _stderr(f"saved run to {out}")
            click.echo(json.dumps({"run": str(out), "metrics": run.metrics}, default=float))
            _stderr(metrics)
        else:
            result = trainer.lr_find(dataset, cfg, progress=not quiet)
            sugg = result.suggestions()
            if not sugg:
                raise EmbedlabError("lr-find stopped too early to suggest anything; lower the starting lr")
            for rule_name, lr in sugg.items():
                mark = "  <- recommended" if rule_name == rule else ""
                _stderr(f"{rule_name:>7}: {lr:.2e}{mark}")
            click.echo(json.dumps({"suggested_lr": sugg[rule], "rule": rule, "suggestions": sugg}))
            if plot is not None:
                from embedlab.report.lrplot import write_lr_plot

                write_lr_plot(plot, result, sugg, rule, title=f"lr-find: {name}")
                _stderr(f"wrote {plot}")

    help_text = (f"Train on {name}: {spec.description}." if mode == "train" else
                 f"Sweep learning rates on {name} and suggest one.")
    return click.Command(name, params=params, callback=callback, help=help_text)


class DatasetGroup(click.Group):
    """A group whose subcommands are the registered datasets."""

    def __init__(self, *args, mode: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.mode = mode

    def list_commands(self, ctx):
        from embedlab.registry import datasets

        return list(datasets())

    def get_command(self, ctx, name):
        from embedlab.registry import datasets

        if name not in datasets():
            return None
        return _dataset_command(name, self.mode)

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        from embedlab.registry import datasets

        if name is not None and not name.startswith("-") and name not in datasets():
            raise UsageError(f"unknown dataset {name!r}; choose one of: {', '.join(datasets())}")
        return super().resolve_command(ctx, args)


class EmbedlabCLI(click.Group):
    """The top-level group; plugins' commands are added on first use."""

    _plugins_loaded = False

    def _load_plugin_commands(self):
        if not self._plugins_loaded:
            self._plugins_loaded = True
            from embedlab.plugins import get_plugin_manager

            before = set(self.commands)
            get_plugin_manager().hook.embedlab_register_commands(cli=self)
            del before

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        self._load_plugin_commands()
        return super().get_command(ctx, name)

    def add_command(self, cmd, name=None):
        name = name or cmd.name
        if name in self.commands and self.commands[name] is not cmd:
            raise EmbedlabError(f"a plugin tried to add command {name!r}, which already exists")
        super().add_command(cmd, name)


def make_cli() -> click.Group:
    """A fresh CLI (tests build one after registering temporary plugins)."""

    @click.group(cls=EmbedlabCLI, context_settings={"help_option_names": ["-h", "--help"],
                                                    "max_content_width": 100})
    @click.version_option(__version__, prog_name="embedlab")
    def cli():
        """Train entity embeddings and find out what they learned.

        \b
        Quick start:
          embedlab datasets list
          embedlab train synthetic-collab --out runs/demo
          embedlab analyze runs/demo --report reports/demo.html
        """

    cli.add_command(DatasetGroup("train", mode="train",
                                 help="Train embeddings on a dataset: embedlab train DATASET --out RUN_DIR "
                                      "[options]. `embedlab train DATASET --help` lists its options."))
    cli.add_command(DatasetGroup("lr-find", mode="lr-find",
                                 help="Find a learning rate: exponential sweep, loss-vs-lr plot, suggestion."))
    from embedlab.cli.analyze import analyze_command
    from embedlab.cli.misc import datasets_group, plugins_command

    cli.add_command(analyze_command())
    from embedlab.cli.compare import compare_group

    cli.add_command(compare_group())
    cli.add_command(datasets_group)
    cli.add_command(plugins_command)
    from embedlab.cli.misc import export_command

    cli.add_command(export_command)
    from embedlab.cli.predict import predict_command

    cli.add_command(predict_command)
    return cli


cli = make_cli()


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="embedlab", standalone_mode=True)
    except KeyboardInterrupt:  # pragma: no cover - click handles most; belt and braces
        _stderr("interrupted: nothing half-written was left behind")
        sys.exit(130)
