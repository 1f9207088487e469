"""The one dataset-loading path of a training, for the command line and the Python API alike:
option values (the dataset's loader options mixed with the trainer's config) -> the loaded
Dataset and the trainer's config."""

from __future__ import annotations

from typing import Any

from embedlab.errors import UsageError
from embedlab.registry import DatasetEntry, TrainerEntry


def load_for_training(entry: DatasetEntry, values: dict[str, Any]):
    """``(dataset, config)``: the dataset takes its own options plus the seed (default 42); the
    rest, seed included, is the trainer's config (``trainer`` dropped: it chose the trainer).
    Under ``torchrun --shard-data`` each rank reads only its own rows."""
    from embedlab.training.distributed import row_shard

    ds_opts, config = entry.split_options(values)
    config.pop("trainer", None)
    dataset = entry.load_dataset(ds_opts, seed=config.get("seed", 42), shard=row_shard(config))
    return dataset, config


def check_keywords(trainer: TrainerEntry, values: dict[str, Any], entry: DatasetEntry | None = None) -> None:
    """The Python API's keyword arguments are the trainer's options (its declaration's names,
    what its flags are called with ``_`` for ``-``), the dataset's loader options and ``seed``
    (the dataset's too: random splits): any other
    is a one-line UsageError naming it (a misspelt ``n_factor=8`` would otherwise be ignored)."""
    import difflib

    from embedlab.training.fitconfig import FitConfig

    known = {o.name for o in trainer.options} | (entry.option_names if entry is not None else set()) | {"seed"}
    if "lr" in known:
        known |= set(FitConfig.FIELDS)  # pct_start: the one-cycle warm-up share, no flag
    for name in values:
        if name not in known and name != "trainer":
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f"did you mean {close[0]}=?" if close else "`embedlab train DATASET --help` lists them as flags"
            who = (
                f"trainer {trainer.name!r} and dataset {entry.name!r} take"
                if entry is not None
                else f"trainer {trainer.name!r} takes"
            )
            raise UsageError(f"{name}={values[name]!r}: {who} no option {name!r}; {hint}")
