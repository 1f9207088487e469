"""embedlab: train entity embeddings and find out what they learned.

The house is described in docs/architecture.md. This module is the public Python API; the
public import paths that moved in the redesign (``embedlab.plotting``, ``embedlab.testing``, and
the trainer author's ``embedlab.learner``, ``embedlab.fitconfig``, ``embedlab.models``,
``embedlab.pretrained``, ``embedlab.atomic``, ``embedlab.download``) keep working as aliases
of their new homes, so plugins written against the earlier guide need no change.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys

from ._version import __version__

#: documented import path -> the module that now holds it (the same module object, not a copy)
PUBLIC_ALIASES = {
    "embedlab.plotting": "embedlab.toolkit.plotting",
    "embedlab.testing": "embedlab.authoring.testing",
    "embedlab.learner": "embedlab.training",
    "embedlab.fitconfig": "embedlab.training.fitconfig",
    "embedlab.models": "embedlab.training.models",
    "embedlab.pretrained": "embedlab.training.pretrained",
    "embedlab.atomic": "embedlab.io.atomic",
    "embedlab.download": "embedlab.io.download",
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an import of a :data:`PUBLIC_ALIASES` name to the module it names."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in PUBLIC_ALIASES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module(PUBLIC_ALIASES[spec.name])

    def exec_module(self, module):  # the real module ran when it was imported
        pass


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.append(_AliasFinder())

from embedlab.hookspecs import hookimpl  # noqa: E402
from embedlab.run import EmbeddingTable, Run, load_run  # noqa: E402
from embedlab.data import Dataset, DatasetSpec  # noqa: E402
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult  # noqa: E402

__all__ = ["__version__", "hookimpl", "Run", "EmbeddingTable", "load_run", "Dataset", "DatasetSpec",
           "Analysis", "AnalysisOption", "AnalysisResult", "train", "analyze", "load_dataset"]


def load_dataset(name: str, seed: int = 42, **options):
    """Load a registered dataset by name with its loader options (``data_dir``, ``split``...)."""
    from embedlab.registry import get_dataset

    return get_dataset(name).load_dataset(options, seed=seed)


def train(dataset, out=None, progress: bool = False, trainer: str | None = None, **config) -> Run:
    """Train a dataset (a Dataset or a registered name) with its trainer (``trainer`` names one
    when several train its kind) and return the run; saves it to ``out`` when given.

    Loader options (``data_dir``, ``split``...) may be mixed into ``config`` when ``dataset``
    is a name.
    """
    from embedlab.registry import get_dataset, trainer_for_dataset

    if isinstance(dataset, str):
        from embedlab.training.distributed import row_shard  # torchrun --shard-data: read only this rank's rows

        entry = get_dataset(dataset)
        loader_opts, config = entry.split_options(config)
        dataset = entry.load_dataset(loader_opts, seed=config.get("seed", 42), shard=row_shard(config))
        chosen = trainer_for_dataset(entry, trainer)
    else:
        chosen = trainer_for_dataset(dataset, trainer)
    run = chosen.train(dataset, config, progress=progress)
    if out is not None:
        run.save(out)
    return run


def analyze(run, names=None, options=None):
    """Run analyses (all that apply when ``names`` is None); returns AnalysisResults (a list
    that Jupyter displays inline as a report; each result displays on its own too)."""
    from embedlab.runner import run_analyses
    from embedlab.report.notebook import ResultList

    if not isinstance(run, Run):
        run = load_run(run)
    return ResultList(run_analyses(run, names, options or {}))
