"""embedlab: train entity embeddings and find out what they learned."""
from __future__ import annotations

__version__ = "0.1.0"

from .hookspecs import hookimpl  # noqa: E402
from .run import EmbeddingTable, Run, load_run  # noqa: E402
from .data import Dataset, DatasetSpec  # noqa: E402
from .analysis import Analysis, AnalysisOption, AnalysisResult  # noqa: E402

__all__ = ["__version__", "hookimpl", "Run", "EmbeddingTable", "load_run", "Dataset", "DatasetSpec",
           "Analysis", "AnalysisOption", "AnalysisResult", "train", "analyze", "load_dataset"]


def load_dataset(name: str, **options):
    """Load a registered dataset by name with its loader options (``data_dir``, ``split``...)."""
    from .registry import get_dataset

    from .data import remember_options

    spec = get_dataset(name)
    options.setdefault("seed", 42)
    return remember_options(spec.load(**options), options)


def train(dataset, out=None, progress: bool = False, **config) -> Run:
    """Train the registered trainer for a dataset (a Dataset or a registered name).

    Loader options (``data_dir``, ``split``...) may be mixed into ``config`` when ``dataset``
    is a name. Saves the run to ``out`` when given.
    """
    from .registry import get_dataset, trainer_for

    if isinstance(dataset, str):
        spec = get_dataset(dataset)
        names = {o.name for o in spec.options}
        loader_opts = {k: config.pop(k) for k in list(config) if k in names}
        loader_opts["seed"] = config.get("seed", 42)
        from .data import remember_options

        from .distributed import loader_shard  # torchrun --shard-data: read only this rank's rows

        dataset = remember_options(spec.load(**loader_opts, **loader_shard(spec.load, config)), loader_opts)
    trainer = trainer_for(dataset.kind)
    run = trainer.train(dataset, config, progress=progress)
    if out is not None:
        run.save(out)
    return run


def analyze(run, names=None, options=None):
    """Run analyses (all that apply when ``names`` is None); returns AnalysisResults (a list
    that Jupyter displays inline as a report; each result displays on its own too)."""
    from .analysis import run_analyses
    from .report import ResultList

    if not isinstance(run, Run):
        run = load_run(run)
    return ResultList(run_analyses(run, names, options or {}))
