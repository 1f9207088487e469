"""``embedlab train DATASET``: one subcommand per registered dataset, with that dataset's
options and its trainer's options, so ``--help`` documents both (``lr-find``: cli/lr_find.py)."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.common import load_for_command, merge_params, stderr
from embedlab.cli.dataset_group import DatasetGroup
from embedlab.cli.grammar import JSON_OPTION, emit_json
from embedlab.cli.grouped_help import GroupedCommand, option_sections
from embedlab.cli.lr_find import lr_find_command, lr_find_group  # noqa: F401 - their old import path
from embedlab.cli.train_flags import COMMON_TRAIN_OPTIONS, train_examples
from embedlab.errors import UsageError
from embedlab.io.progress import quiet as global_quiet
from embedlab.registry import DatasetEntry, TrainerEntry


def train_command(entry: DatasetEntry, trainer: TrainerEntry) -> click.Command:
    """``train NAME``: load, train, save the run (with per-epoch checkpoints when the trainer
    is resumable)."""

    def callback(**kwargs):
        from embedlab.run import check_out_dir
        from embedlab.training import checkpoint, distributed

        quiet, out = kwargs.pop("quiet") or global_quiet(), kwargs.pop("out")
        as_json = kwargs.pop("as_json", False)
        resume, keep = kwargs.pop("resume"), not kwargs.pop("no_checkpoint")
        seeds = kwargs.pop("seeds", None)
        if seeds is not None:
            return _train_seeds(entry, trainer, kwargs, seeds, out, resume=resume, quiet=quiet, as_json=as_json)
        force = kwargs.pop("force", False)
        if resume and not trainer.resumable:
            raise UsageError(
                f"--resume: trainer {trainer.name!r} keeps no checkpoints (it does not declare "
                f"resumable = True); train again without --resume"
            )
        check_out_dir(out, force=force)  # fail before hours of training, not after
        plan = None
        if trainer.resumable:
            plan = checkpoint.plan(out, {"dataset": entry.name, **kwargs}, resume=resume, write=keep, echo=stderr)
        dataset, cfg = load_for_command(entry, kwargs)
        with checkpoint.checkpointing(plan, dataset, echo=stderr):  # says where it is on failure
            run = trainer.train(dataset, cfg, progress=not quiet, checkpoint=plan)
            if not distributed.is_writer():  # torchrun: rank 0 alone writes the run
                return
            run.save(out, force=force)
        if plan is not None:
            plan.discard()  # the run is complete: its checkpoint has served
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in run.metrics.items() if isinstance(v, float))
        stderr(f"saved run to {out}")
        emit_json({"run": str(out), "metrics": run.metrics}, as_json, "train")
        stderr(metrics)

    own = [*COMMON_TRAIN_OPTIONS, JSON_OPTION()]
    return GroupedCommand(
        entry.name,
        params=merge_params(entry, trainer) + own,
        callback=callback,
        help=f"Train on {entry.name}: {entry.description}.",
        sections=option_sections(entry, trainer, own),
        examples=train_examples(entry),
    )


def _train_seeds(
    entry: DatasetEntry,
    trainer: TrainerEntry,
    kwargs: dict,
    seeds: str,
    out: Path,
    resume: bool,
    quiet: bool,
    as_json: bool = False,
) -> None:
    """``train --seeds``: one run per seed into a run group (embedlab.engines.runs)."""
    from embedlab.engines.runs import parse_seeds, train_replicates

    if resume:
        raise UsageError("--resume does not apply to --seeds (replicates keep no checkpoints); train again")
    force = bool(kwargs.pop("force", False))
    chosen = parse_seeds(seeds)
    values = {k: v for k, v in kwargs.items() if k not in ("seed", "trainer")}
    from embedlab.io.progress import progress_bar

    with progress_bar(False if quiet else None) as bar:  # one live bar per member: its epochs
        tasks: dict[int, int] = {}

        def on_epoch(seed: int, epoch: int, total) -> None:
            if seed not in tasks:
                tasks[seed] = bar.add_task(f"seed {seed}", total=total)
            bar.update(tasks[seed], completed=epoch)

        done = train_replicates(
            entry.name, values, chosen, out, trainer=trainer.name, force=force, echo=stderr, on_epoch=on_epoch
        )
    stderr(f"saved run group {out} ({len(done)} runs)")
    emit_json(
        {
            "group": str(out),
            "runs": [{"seed": r.seed, "run": r.path, "metrics": r.metrics, "seconds": r.seconds} for r in done],
        },
        as_json,
        "train",
    )


def train_group() -> click.Group:
    return DatasetGroup(
        "train",
        build=train_command,
        help="Train embeddings on a dataset: embedlab train DATASET --out RUN_DIR "
        "[options]. `embedlab train DATASET --help` lists its options.",
    )
