"""The own flags of ``embedlab train DATASET`` (``--out --force -q --resume --no-checkpoint
--seeds``) and ``embedlab lr-find DATASET`` (``--plot --force --suggest -q``), and the examples
ending ``train DATASET --help``; the dataset's and the trainer's options come from their
declarations (``DatasetSpec.options``, the trainer's ``TrainerOptions``: cli.common.merge_params)."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.registry import DatasetEntry

COMMON_TRAIN_OPTIONS = [
    click.Option(
        ["--out", "-o"],
        type=click.Path(path_type=Path),
        required=True,
        help="Run folder to write: new, empty, or a run embedlab made (retraining replaces "
        "that run's own files once the new run is complete, and leaves your other files "
        "there alone). A folder holding other files is refused (see --force); a path "
        "inside another run always.",
    ),
    click.Option(
        ["--force"],
        is_flag=True,
        help="Write into an --out folder that holds files embedlab did not write (files named "
        "like the run's own are replaced; the rest are left alone).",
    ),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
    click.Option(
        ["--resume"],
        is_flag=True,
        help="Continue an interrupted training of this --out from its last completed epoch. "
        "After every epoch `train` keeps a checkpoint (model, optimizer, schedule, "
        "random states; safetensors + JSON) in the hidden folder .NAME.checkpoint "
        "beside --out NAME, deleted once the run is saved. Give the same options as "
        "before: other settings or other data are refused; without a checkpoint it is "
        "an error. The result equals an uninterrupted run's.",
    ),
    click.Option(
        ["--no-checkpoint"], is_flag=True, help="Keep no per-epoch checkpoint (a killed run then starts over)."
    ),
    click.Option(
        ["--seeds"],
        default=None,
        metavar="S1,S2,...",
        help="Replicates: train one run per seed (e.g. 1,2,3 or 1-5) into the run group --out "
        "(--out/seed-1/, --out/seed-2/, ... and group.json), in parallel processes where "
        "cores allow (one torch thread each). `analyze` and `compare --runs` accept the "
        "group folder. Replaces --seed; no checkpoints.",
    ),
]

LR_FIND_OPTIONS = [
    click.Option(
        ["--plot"],
        type=click.Path(path_type=Path),
        default=None,
        help="Write the loss-vs-lr plot as a standalone HTML file (new, or one embedlab wrote).",
    ),
    click.Option(["--force"], is_flag=True, help="Let --plot replace a file embedlab did not write."),
    click.Option(
        ["--suggest"],
        type=click.Choice(["valley", "steep", "min10"]),
        default="valley",
        show_default=True,
        help="Suggestion rule: 'valley' (middle of the longest descent), 'steep' "
        "(steepest descent), 'min10' (the minimum's lr divided by 10).",
    ),
    click.Option(["--quiet", "-q"], is_flag=True, help="No progress bars."),
]


def train_examples(entry: DatasetEntry) -> list[str]:
    """The examples ending ``train DATASET --help``."""
    name = entry.name
    data = " --data-dir data" if "data_dir" in entry.option_names else ""
    lines = [f"embedlab train {name} --out runs/{name}{data}"]
    if data:
        lines.append(
            f"EMBEDLAB_DATA_DIR=data embedlab train {name} --out runs/{name}   (data/ or data/"
            f"{getattr(entry.spec, 'data_subdir', None) or name}/)"
        )
    lines += [
        f"embedlab train {name} --out runs/{name}-e10 --epochs 10 --lr 1e-2{data}",
        f"embedlab train {name} --out runs/{name}-seeds --seeds 1,2,3{data}   (a run group)",
        f"embedlab train {name} --out runs/{name} --json{data}   (the run and its metrics as JSON)",
    ]
    return lines
