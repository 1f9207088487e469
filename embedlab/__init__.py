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
import types

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

#: internal paths that moved (#22: engines below the CLI) -> their new home; importing the old
#: path still works and says where the module went (deprecations.MOVED_MODULE)
MOVED_MODULES = {
    "embedlab.toolkit.runs": "embedlab.engines.runs",
    "embedlab.toolkit.stability": "embedlab.engines.stability",
    "embedlab.cli.compare_results": "embedlab.engines.compare_results",
    "embedlab.toolkit.neighbours": "embedlab.toolkit.neighbors",  # one (US) spelling in public names
}


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an import of a :data:`PUBLIC_ALIASES` or :data:`MOVED_MODULES` name to the
    module it names."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname in PUBLIC_ALIASES or fullname in MOVED_MODULES:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        if spec.name in MOVED_MODULES:
            from embedlab.deprecations import MOVED_MODULE

            MOVED_MODULE.warn(old=spec.name, new=MOVED_MODULES[spec.name])
            return importlib.import_module(MOVED_MODULES[spec.name])
        return importlib.import_module(PUBLIC_ALIASES[spec.name])

    def exec_module(self, module):  # the real module ran when it was imported
        pass


if not any(isinstance(f, _AliasFinder) for f in sys.meta_path):
    sys.meta_path.append(_AliasFinder())


class _Package(types.ModuleType):
    """The package ``embedlab`` itself. Importing a submodule makes Python set it as an attribute
    of its parent: ``from embedlab.learner import Learner`` would replace the public function
    ``embedlab.learner`` with the module it aliases. An alias never replaces a function here
    (the module stays reachable as ``sys.modules["embedlab.learner"]`` and by its own path)."""

    def __setattr__(self, name: str, value) -> None:
        current = self.__dict__.get(name)
        if (
            isinstance(value, types.ModuleType)
            and f"{self.__name__}.{name}" in PUBLIC_ALIASES
            and isinstance(current, types.FunctionType)
        ):
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package

from embedlab.hookspecs import hookimpl  # noqa: E402
from embedlab.run import EmbeddingTable, Run, load_run  # noqa: E402
from embedlab.data import Dataset, DatasetSpec  # noqa: E402
from embedlab.analysis import RUN_LEVEL, Analysis, AnalysisOption, AnalysisResult, SkipTable  # noqa: E402
from embedlab.errors import (
    DataError,
    EmbedlabError,
    RunFormatError,
    TrainingDiverged,  # noqa: E402
    UsageError,
)
from embedlab.deprecations import EmbedlabDeprecationWarning  # noqa: E402
from embedlab.trainers.base import EncodedRows, Prepared, Trainer, run_meta, torch_threads  # noqa: E402

from embedlab.toolkit.neighbors import run_neighbors as _run_neighbors  # noqa: E402
from embedlab import report  # noqa: E402  (callable: embedlab.report(results, path) writes the HTML report)

#: ``run.neighbors("star wars", k=10)``: defined with the computation in embedlab.toolkit.neighbors
#: (run.py sits below the toolkit and cannot import it) and attached here, where the package loads
Run.neighbors = _run_neighbors


def _result_html(result: AnalysisResult) -> str:
    """Jupyter's display of one result: summary, metrics, figures and tables inline."""
    from embedlab.report.notebook import result_html

    return result_html(result)


def _run_predict(self: Run, pairs):
    """``run.predict(pairs)``: the run's predictions for ``pairs`` (a DataFrame of the model's
    columns; for a collab run (user, item) pairs, also a list of tuples), by the run's trainer's
    ``predict``: a DataFrame in the pairs' order (collab: labels, ``prediction``, ``unseen``)."""
    from embedlab.registry import trainer_of_run

    return trainer_of_run(self).predict(self, pairs)


def _run_recommend(self: Run, user, k: int = 10, include_rated: bool = False, dataset=None):
    """``run.recommend(user, k=10)``: a collab run's ``k`` best items for ``user`` (or a list of
    users; key or label), without the items the user rated in training unless
    ``include_rated``. The training ratings come from ``dataset`` (a Dataset) or else the run's
    data loaded again with its recorded options."""
    from embedlab.engines.predict import recommend_run

    return recommend_run(self, user, k, include_rated, dataset=dataset)


Run.predict = _run_predict
Run.recommend = _run_recommend

#: attached here for the same reason (analysis.py sits below the report): BokehJS once per notebook
AnalysisResult._repr_html_ = _result_html

#: the one public namespace for plugin authors (the guide's "The `embedlab` namespace" section
#: documents each name): the Python API, the types a dataset, trainer or analysis plugin builds
#: or receives, and the errors it raises. Helpers live in the documented modules beside it
#: (embedlab.data, embedlab.training, embedlab.toolkit.*, embedlab.testing); every other
#: module is private, and the built-ins import nothing else (tests/test_architecture.py).
__all__ = [
    "__version__",
    "hookimpl",
    "Run",
    "EmbeddingTable",
    "load_run",
    "Dataset",
    "DatasetSpec",
    "Analysis",
    "AnalysisOption",
    "AnalysisResult",
    "RUN_LEVEL",
    "SkipTable",
    "Trainer",
    "Prepared",
    "EncodedRows",
    "run_meta",
    "torch_threads",
    "EmbedlabError",
    "UsageError",
    "DataError",
    "RunFormatError",
    "TrainingDiverged",
    "EmbedlabDeprecationWarning",
    "train",
    "analyze",
    "load_dataset",
    "lr_find",
    "learner",
    "compare",
    "from_vectors",
    "report",
]


def from_vectors(vectors, keys=None, labels=None, metadata=None, bias=None, table: str = "item") -> Run:
    """A Run (unsaved until ``run.save(folder)``) from vectors made anywhere: a NumPy array, a
    torch tensor, a DataFrame (its index names the rows) or lists; ``keys`` (default: row
    numbers), ``labels``, row-aligned ``metadata`` (``count``, ``latitude``/``longitude``,
    ``cycle_order``... as in trained runs) and a per-entity ``bias``. ``embedlab.analyze``,
    ``run.neighbors``, the notebook display and the explorer work on it directly."""
    from embedlab.toolkit.importing import from_vectors as build

    return build(vectors, keys=keys, labels=labels, metadata=metadata, bias=bias, table=table)


def load_dataset(name: str, seed: int = 42, **options):
    """Load a registered dataset by name with its loader options (``data_dir``, ``split``...)."""
    from embedlab.registry import get_dataset

    return get_dataset(name).load_dataset(options, seed=seed)


def _dataset_and_trainer(dataset, trainer: str | None, config: dict):
    """(loaded Dataset, TrainerEntry, trainer config) for a Dataset or a registered name (whose
    loader options may be mixed into ``config``)."""
    from embedlab.registry import get_dataset, trainer_for_dataset

    from embedlab.engines.loading import check_keywords, load_for_training  # the command line's path too

    if isinstance(dataset, str):
        entry = get_dataset(dataset)
        chosen = trainer_for_dataset(entry, trainer)
        check_keywords(chosen, config, entry)  # before loading: a misspelt keyword is no option
        loaded, config = load_for_training(entry, dict(config))
        return loaded, chosen, config
    chosen = trainer_for_dataset(dataset, trainer)
    check_keywords(chosen, config)
    return dataset, chosen, dict(config)


def train(dataset, out=None, progress: bool | None = None, trainer: str | None = None, seeds=None, **config) -> Run:
    """Train a dataset (a Dataset or a registered name) with its trainer (``trainer`` names one
    when several train its kind) and return the run; saves it to ``out`` when given.

    Loader options (``data_dir``, ``split``...) may be mixed into ``config`` when ``dataset``
    is a name. ``progress``: None (default) shows a progress bar when a person watches (a
    terminal or a notebook); False never, True always. ``seeds`` (a list or "1,2,3", with a
    registered name and ``out``): one run per seed into the run group ``out``, as ``embedlab
    train DATASET --seeds`` (the same engine: replicates in parallel processes, an interrupted
    group resumed); returns the list of runs, in the order of the seeds.
    """
    from embedlab.io.progress import resolve

    if seeds is not None:
        return _train_group(dataset, out, progress, trainer, seeds, config)
    dataset, chosen, config = _dataset_and_trainer(dataset, trainer, config)
    run = chosen.train(dataset, config, progress=resolve(progress))
    if out is not None:
        run.save(out)
    return run


def _train_group(dataset, out, progress, trainer, seeds, config) -> list[Run]:
    """``embedlab.train(name, seeds=..., out=G)``: engines.runs.train_replicates, the runs loaded."""
    from embedlab.engines.runs import parse_seeds, train_replicates
    from embedlab.errors import UsageError
    from embedlab.io.progress import status

    if not isinstance(dataset, str) or out is None:
        raise UsageError("seeds= trains a run group: give the dataset's registered name and out= (the group's folder)")
    order = parse_seeds(seeds)
    from embedlab.engines.loading import check_keywords
    from embedlab.registry import get_dataset, trainer_for_dataset

    entry = get_dataset(dataset)
    check_keywords(trainer_for_dataset(entry, trainer), config, entry)  # before any replicate starts
    done = {
        r.seed: r
        for r in train_replicates(
            dataset, config, order, out, trainer=trainer, echo=lambda line: status(line, progress)
        )
    }
    return [load_run(done[s].path) for s in order]


def lr_find(dataset, trainer: str | None = None, progress: bool | None = None, rule: str = "valley", **config):
    """The learning-rate finder (``embedlab lr-find``): an exponential sweep on the model the
    trainer would train with ``config``. Returns an LRFind: ``.suggestion`` (the ``rule``'s lr:
    valley, steep or min10), ``.suggestions``, ``.plot()``; it displays as its plot."""
    from embedlab.io.progress import resolve
    from embedlab.report.live import LRFind

    dataset, chosen, config = _dataset_and_trainer(dataset, trainer, config)
    result = chosen.lr_find(dataset, config, progress=resolve(progress))
    return LRFind(result, rule, title=f"lr find: {dataset.name}")


def learner(dataset, trainer: str | None = None, progress: bool | None = None, **config):
    """A live learner, fastai's step-by-step style: ``learn.lr_find()``,
    ``learn.fit_one_cycle(5, 5e-3)``, ``learn.freeze()``, ``learn.unfreeze()``,
    ``learn.fit_one_cycle(2, slice(1e-5, 1e-3))``, ``learn.plot_sched()``, ``learn.run``.

    The trainer's own Learner, built by its ``prepare`` (the code its ``train`` runs), so the
    model, data, loss and regularisation are exactly those of ``embedlab.train(dataset, **config)``;
    the notebook's verbs come from the live session attached to it (``embedlab.report.live.Session``).
    """
    from embedlab.io.progress import resolve
    from embedlab.report.live import live_learner

    dataset, chosen, config = _dataset_and_trainer(dataset, trainer, config)
    prepared = chosen.prepare(dataset, config, progress=resolve(progress))
    return live_learner(prepared, progress=resolve(progress), name=dataset.name)


def compare(
    dataset=None,
    opt=None,
    lr=None,
    wd=None,
    wd_mode=None,
    metric: str = "valid_loss",
    trainer: str | None = None,
    progress: bool | None = None,
    runs_dir=None,
    seeds=None,
    report=None,
    force: bool = False,
    runs=None,
    **config,
):
    """``embedlab compare``: the same model, split and seed trained once per configuration
    (every ``opt`` x ``lr`` x ``wd`` x ``wd_mode``, and ``schedule``/``bs``/``n_factors`` when
    the trainer takes them; each a list or a comma-separated string; ``seeds`` trains each once
    per seed). Without ``opt``: every optimizer when nothing else varies, else the trainer's.
    ``runs=[A, B, ...]`` (run folders or run groups) compares runs that exist instead
    (``compare --runs``); ``report``: also write the standalone HTML report there.

    Returns a Comparison: ``.table`` (ranked by ``metric``), ``.summary`` (the verdict),
    ``.outcomes``, ``.best``; it displays the validation curves of every configuration.
    """
    from embedlab.engines.compare import compare_dataset, compare_existing
    from embedlab.io.progress import resolve
    from embedlab.registry import get_dataset, trainer_for_dataset
    from embedlab.report.live import Comparison

    shown = resolve(progress)
    echo = None if shown else (lambda msg: None)
    if runs is not None:
        done = compare_existing(runs, metric, report=report, force=force, echo=echo)
        notes, where = done.record["notes"], f"{len(done.outcomes)} existing runs"
    else:
        entry = get_dataset(dataset) if isinstance(dataset, str) else dataset
        done = compare_dataset(
            entry,
            trainer_for_dataset(entry, trainer),
            config,
            opt,
            lr,
            wd,
            wd_mode,
            seeds,
            metric,
            report=report,
            runs_dir=runs_dir,
            force=force,
            progress=shown,
            echo=echo,
        )
        notes, where = done.plan.notes, done.where
    if report is not None:
        done.write_report(report, force=force)
    return Comparison(done.outcomes, metric, where, done.results(), done.table, done.summary, notes)


def analyze(run, names=None, options=None, progress: bool | None = None):
    """Run analyses (all that apply when ``names`` is None; a list or "a,b"); returns
    AnalysisResults, which Jupyter displays inline as a report and which are addressable by
    analysis and table: ``res["pca", "item"]``, ``res.pca.item``, ``res["pca"]``. ``progress``: a
    bar over the analyses (None: when a person watches). Several runs (a list of runs or
    folders) or a run group (`train --seeds`' folder) are analysed as ``embedlab analyze A B C``
    does: every analysis on every run, then what holds across them (a MultiRunAnalysis:
    ``.stability``, ``.per_run``, ``.report_results()``)."""
    from embedlab.engines.runs import is_run_group
    from embedlab.runner import analysis_names, run_analyses
    from embedlab.report.notebook import ResultList

    names = analysis_names(names) if isinstance(names, str) else names
    if isinstance(run, (list, tuple)) or (not isinstance(run, Run) and is_run_group(run)):
        from embedlab.engines.stability import analyze_runs

        return analyze_runs(
            list(run) if isinstance(run, (list, tuple)) else [run], names, options or {}, progress=progress
        )
    if not isinstance(run, Run):
        run = load_run(run)
    results = ResultList(run_analyses(run, names, options or {}, progress=progress))
    results._embedlab_run = run  # embedlab.report(results, path) puts the run's explorer in the report
    return results
