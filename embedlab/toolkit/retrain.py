"""Helpers for analyses that go back to a run's data: reload its dataset through the registry
(with the loader options the run recorded) and retrain variants of it (no hooks here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from embedlab.data import Dataset
from embedlab.errors import UsageError
from embedlab.run import Run


def loader_options(run: Run) -> dict[str, Any]:
    """The loader options run.json records (``dataset_info.options``), or {}."""
    return dict((run.meta.get("dataset_info") or {}).get("options") or {})


def reload_dataset(run: Run, **overrides: Any) -> Dataset:
    """The run's dataset, loaded again through the registry with the options it was trained
    with (and the run's seed, so random splits come out the same)."""
    from embedlab.registry import get_dataset

    spec = get_dataset(run.dataset)
    recorded = loader_options(run)
    accepted = {o.name for o in spec.options}
    if not recorded and accepted and not overrides:
        raise UsageError(f"run {run.path or ''} does not record the loader options of dataset {run.dataset!r} "
                         f"(dataset_info.options in run.json); retrain it with this embedlab version")
    options = {k: v for k, v in {**recorded, **overrides}.items() if k in accepted}
    data_dir = options.get("data_dir")
    if data_dir and not Path(data_dir).is_dir():
        raise UsageError(f"run {run.path or ''} was trained on data in {data_dir!r}, which no longer exists")
    seed = run.seed if run.seed is not None else 42
    return spec.load(seed=seed, **options)


def trainer_of(run: Run):
    """The registered trainer for the run's kind."""
    from embedlab.registry import trainer_for

    return trainer_for(run.kind)
