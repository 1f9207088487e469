"""For analyses (and ``embedlab predict``) that go back to a run's data: its dataset loaded again
through the registry with the loader options the run recorded, and the trainer that made it.

Public names: ``__all__``; the plugin guide documents each with an example:
``embedlab plugins guide "embedlab.toolkit.retrain"``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedlab.data import Dataset
from embedlab.errors import UsageError
from embedlab.registry import TrainerEntry, dataset_of_run, trainer_of_run
from embedlab.run import Run

__all__ = ["loader_options", "reload_dataset", "trainer_of"]


def loader_options(run: Run) -> dict[str, Any]:
    """The loader options run.json records (``dataset_info.options``), or {}."""
    recorded = (run.meta.get("dataset_info") or {}).get("options")
    return dict(recorded) if isinstance(recorded, dict) else {}


def reload_dataset(run: Run, **overrides: Any) -> Dataset:
    """The run's dataset, loaded again through the registry with the options it was trained
    with (``overrides`` replace some) and the data seed it recorded (else the run's seed), so
    random splits come out the same.
    Options the dataset no longer takes are dropped."""
    entry = dataset_of_run(run)
    recorded = loader_options(run)
    if not recorded and entry.option_names and not overrides:
        raise UsageError(
            f"run {run.path or ''} does not record the loader options of dataset {run.dataset!r} "
            f"(dataset_info.options in run.json); retrain it with this embedlab version"
        )
    options = {**recorded, **overrides}
    data_dir = options.get("data_dir")
    if data_dir and "data_dir" in entry.option_names and not Path(data_dir).is_dir():
        raise UsageError(
            f"run {run.path or ''} was trained on data in {data_dir!r}, which no longer exists; "
            f"give the folder with --data-dir"
        )
    seed = options.pop("seed", None)  # the data seed it recorded (a replicate may train with another)
    if not isinstance(seed, int):
        seed = run.seed if run.seed is not None else 42
    return entry.load_dataset(options, seed=seed, strict=False)


def trainer_of(run: Run) -> TrainerEntry:
    """The registered trainer that made the run."""
    return trainer_of_run(run)
