"""The one dataset-loading path of a training, for the command line and the Python API alike:
option values (the dataset's loader options mixed with the trainer's config) -> the loaded
Dataset and the trainer's config."""
from __future__ import annotations

from typing import Any

from embedlab.registry import DatasetEntry


def load_for_training(entry: DatasetEntry, values: dict[str, Any]):
    """``(dataset, config)``: the dataset takes its own options plus the seed (default 42); the
    rest, seed included, is the trainer's config (``trainer`` dropped: it chose the trainer).
    Under ``torchrun --shard-data`` each rank reads only its own rows."""
    from embedlab.training.distributed import row_shard

    ds_opts, config = entry.split_options(values)
    config.pop("trainer", None)
    dataset = entry.load_dataset(ds_opts, seed=config.get("seed", 42), shard=row_shard(config))
    return dataset, config
