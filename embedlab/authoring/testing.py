"""Testing helpers for plugin authors (embedlab's own tests use them too).

Two things every plugin test needs, without real data or a GPU:

* :func:`synthetic_run`: a small trained collaborative-filtering run with *planted truth*
  (item genres and biases the test knows), trained in about a second and cached per process;
* :func:`plugin_registered`: register a plugin object or module for the duration of a
  ``with`` block (or a test, through the :func:`embedlab_plugin` fixture) and unregister it
  in ``finally``, so one test's plugin never leaks into the next.

Example (see the plugin guide, ``embedlab plugins guide testing``)::

    import embedlab
    from embedlab.authoring.testing import plugin_registered, synthetic_run

    import my_plugin

    def test_my_analysis_finds_the_planted_genres():
        run = synthetic_run()
        with plugin_registered(my_plugin):
            [result] = [r for r in embedlab.analyze(run, ["my-analysis"]) if r.table == "item"]
        assert result.error is None

The planted truth of :func:`synthetic_run` (the ``synthetic-collab`` dataset; :data:`PLANTED`
says how strong it is): every item belongs to one latent genre (item metadata column
``genre``, also the table's ``color_column``) and has a true bias (column ``true_bias``);
users have a ``true_bias`` and a ``favourite_genre``. ``shuffle_truth=True`` permutes those
columns after generating the ratings: the negative control, on which an analysis should find
nothing. :func:`planted_vs_shuffled` and :func:`assert_planted_found` run an analysis on both
and check "planted found, shuffled not".

To use the pytest fixtures, add ``pytest_plugins = ["embedlab.authoring.testing"]`` to your
``conftest.py``; :func:`embedlab_run` (a saved run folder, shared by the session) and
:func:`embedlab_plugin` (``embedlab_plugin(my_plugin)`` registers until the test ends)
become available.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from embedlab.run import Run, load_run

__all__ = [
    "SYNTHETIC_DEFAULTS",
    "PLANTED",
    "synthetic_run",
    "synthetic_run_dir",
    "plugin_registered",
    "same_data_other_seed",
    "assert_trainer_contract",
    "CONTRACT_DATA",
    "reset_caches",
    "invoke",
    "PlantedCheck",
    "planted_vs_shuffled",
    "assert_planted_found",
    "embedlab_run",
    "embedlab_plugin",
]

# Small enough to train in a second or two on one CPU core, strong enough that the planted
# genres and biases are clearly recovered by common analyses (see PLANTED).
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "users": 120,
    "items": 80,
    "ratings": 6000,
    "genres": 3,
    "noise": 0.3,
    "taste": 1.5,
    "popularity": 0.3,
    "epochs": 6,
    "n_factors": 8,
    "bs": 128,
    "seed": 0,
}

#: What :func:`synthetic_run` plants, how strongly, and what common analyses recover from it
#: (embedlab's tests check each "recovered" line; "control" is ``shuffle_truth=True``).
PLANTED: dict[str, str] = {
    "genres": "each of the 80 items belongs to one of 3 genres (item column `genre`, the table's "
    "color_column); each user's liking of each genre is drawn from N(0, 1.5) stars (`taste`)",
    "item bias": "item column `true_bias`, drawn from N(0, 0.5) stars",
    "user bias": "user column `true_bias`, N(0, 0.3); user column `favourite_genre`: the genre the user likes most",
    "ratings": "6,000 ratings of 120 users, 3.5 + biases + taste + N(0, 0.3) noise, rounded to half stars and "
    "clipped to 1-5; item popularity Zipf(0.3), so every item has ratings",
    "recovered": "KMeans on the (normalised) item vectors, k chosen by silhouette over 2-8: k = 3 and "
    "AMI with `genre` above 0.8 (control: AMI about 0); Spearman of item bias with "
    "`true_bias` above 0.8 (control: about 0)",
}

_cache_lock = threading.Lock()
_cache_root: Path | None = None
_cached: dict[tuple, Path] = {}


def _cache_dir() -> Path:
    global _cache_root
    if _cache_root is None or not _cache_root.is_dir():
        _cache_root = Path(tempfile.mkdtemp(prefix="embedlab-testing-"))
        import atexit

        atexit.register(shutil.rmtree, _cache_root, True)
    return _cache_root


def synthetic_run_dir(shuffle_truth: bool = False, *, trainer: str | None = None, **overrides: Any) -> Path:
    """The folder of a saved synthetic run (trained once per process and set of arguments).

    The folder is shared: read it, never write into it (copy it first, or use
    :func:`synthetic_run` with ``out=``). ``overrides`` are ``synthetic-collab`` loader options
    (``users``, ``items``, ``ratings``, ``genres``, ``noise``, ``taste``: the planted genre
    strength, ``popularity``: the Zipf exponent) and collab trainer options
    (``epochs``, ``n_factors``, ``lr``, ``bs``, ``seed``...), on top of
    :data:`SYNTHETIC_DEFAULTS`. ``trainer``: the registered trainer that trains it (None: the one
    ``synthetic-collab`` names, the built-in ``collab``; a trainer you install never changes this
    default; options it does not declare are dropped).
    """
    import embedlab

    config = {**SYNTHETIC_DEFAULTS, **overrides}
    if trainer is not None:
        config = _for_trainer(trainer, config, set(overrides))
    if shuffle_truth:
        config["shuffle_truth"] = True
    key = (trainer, *sorted((k, repr(v)) for k, v in config.items()))
    with _cache_lock:
        path = _cached.get(key)
        if path is not None and (path / "run.json").is_file():
            return path
        path = _cache_dir() / f"run-{len(_cached)}"
        embedlab.train("synthetic-collab", out=path, progress=False, trainer=trainer, **config)
        _cached[key] = path
        return path


#: the entries of SYNTHETIC_DEFAULTS that are the built-in trainer's options (another trainer
#: gets only those it declares)
_TRAINER_DEFAULTS = ("epochs", "n_factors", "bs")


def _for_trainer(trainer: str, config: dict[str, Any], given: set[str]) -> dict[str, Any]:
    """The defaults without the built-in trainer's options that ``trainer`` does not declare,
    plus everything given explicitly."""
    from embedlab.registry import get_trainer

    takes = {p.name for p in get_trainer(trainer).options}
    return {k: v for k, v in config.items() if k not in _TRAINER_DEFAULTS or k in takes or k in given}


def synthetic_run(
    out: str | Path | None = None, *, shuffle_truth: bool = False, trainer: str | None = None, **overrides: Any
) -> Run:
    """A small trained ``synthetic-collab`` run with planted truth, as a fresh :class:`Run`.

    Every call returns new objects (tests may modify them); the training itself happens once
    per process for each set of arguments. With ``out`` the run folder is also copied there
    (``embedlab analyze OUT`` then works on it). ``trainer`` as in :func:`synthetic_run_dir`.
    """
    src = synthetic_run_dir(shuffle_truth=shuffle_truth, trainer=trainer, **overrides)
    if out is not None:  # saved under the write rule (Run.save): a run there is replaced, nothing else
        load_run(src).save(out)
        return load_run(out)
    return load_run(src)


def same_data_other_seed(
    run: Run | str | Path, seed: int, out: str | Path | None = None, progress: bool = False
) -> Run:
    """The run trained again on exactly the same data (its dataset reloaded with the options
    and the data seed it recorded) by the same trainer with the same config, but training
    seed ``seed``: what a stability check, a replicate or a multi-run analysis compares
    against. Saved to ``out`` when given::

        a = synthetic_run()
        b = same_data_other_seed(a, seed=1)
        assert a.meta["dataset_info"] == b.meta["dataset_info"] and b.seed == 1
    """
    from embedlab.registry import dataset_of_run, trainer_of_run
    from embedlab.toolkit.retrain import loader_options

    if not isinstance(run, Run):
        run = load_run(run)
    options = loader_options(run)
    data_seed = options.pop("seed", run.seed if run.seed is not None else 42)
    dataset = dataset_of_run(run).load_dataset(options, seed=data_seed, strict=False)
    trained = trainer_of_run(run).train(dataset, {**run.config, "seed": int(seed)}, progress=progress)
    if out is not None:
        trained.save(out)
        return load_run(out)
    return trained


# ---------------------------------------------------------------- the trainer contract
#: the small synthetic-collab data :func:`assert_trainer_contract` trains on by default
CONTRACT_DATA: dict[str, Any] = {"users": 60, "items": 40, "ratings": 1500}


def _flags(options: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value is not None and value is not False:
            out += [flag, *(map(str, value) if isinstance(value, (list, tuple)) else [str(value)])]
    return out


@contextlib.contextmanager
def _interrupted_after_epoch(epoch: int) -> Iterator[None]:
    """The next fit stops (as Ctrl-C would) right after its checkpoint of ``epoch`` is written."""
    from embedlab.training.checkpoint import FitKeeper

    real = FitKeeper.save

    def save(self, learner, *args, **kwargs):
        real(self, learner, *args, **kwargs)
        if (args[3] if len(args) > 3 else kwargs.get("epoch")) == epoch:
            FitKeeper.save = real
            raise KeyboardInterrupt

    FitKeeper.save = save
    try:
        yield
    finally:
        FitKeeper.save = real


def _same_tables(a: Run, b: Run, what: str) -> None:
    import numpy as np

    if a.table_names != b.table_names:
        raise AssertionError(f"{what}: tables {a.table_names} != {b.table_names}")
    for name in a.table_names:
        ta, tb = a.table(name), b.table(name)
        if not (np.array_equal(ta.keys, tb.keys) and np.array_equal(ta.labels, tb.labels)):
            raise AssertionError(f"{what}: table {name!r} has other keys or labels")
        if not np.array_equal(ta.vectors, tb.vectors):
            diff = float(np.nanmax(np.abs(ta.vectors.astype(float) - tb.vectors.astype(float))))
            raise AssertionError(
                f"{what}: table {name!r} has other vectors (largest difference {diff:.3g}); "
                f"they must be identical bit for bit"
            )


def assert_trainer_contract(
    trainer: str,
    dataset: str = "synthetic-collab",
    options: dict[str, Any] | None = None,
    *,
    epochs: int = 3,
    workdir: str | Path | None = None,
) -> Run:
    """Check that a registered trainer keeps the trainer contract, through the command line a
    user runs; an AssertionError names the first broken promise. Returns the trained run.

    1. ``embedlab train DATASET --trainer NAME`` trains (``options``: dataset and trainer
       options by parameter name; on ``synthetic-collab`` :data:`CONTRACT_DATA` by default) and
       the run records the trainer, non-empty tables of finite vectors, and run.json;
    2. the saved run reloads (``load_run``) with the same tables, bit for bit, and saves again;
    3. the same seed trains the same vectors, bit for bit;
    4. a resumable trainer (``resumable = True``), interrupted after epoch 1 of ``epochs``,
       resumes with ``--resume`` to exactly the vectors and history of the uninterrupted run;
    5. neighbours work on every table: ``run.neighbors(label)`` finds the entity and lists others.
    """
    import numpy as np

    from embedlab.registry import get_trainer

    entry = get_trainer(trainer)
    given = dict(CONTRACT_DATA if dataset == "synthetic-collab" and options is None else {})
    given.update(options or {})
    takes = {p.name for p in entry.options}
    if "epochs" in takes:
        given.setdefault("epochs", epochs)
    if "bs" in takes:
        given.setdefault("bs", 64)
    root = (
        Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="embedlab-contract-", dir=_cache_dir()))
    )
    args = ["train", dataset, "--trainer", trainer, *_flags(given), "-q"]

    def train(out: Path, *extra: str, expect_ok: bool = True):
        result = invoke([*args, "--out", str(out), *extra], catch_exceptions=True)
        if expect_ok and result.exit_code != 0:
            raise AssertionError(
                f"`embedlab {' '.join(args + ['--out', str(out), *extra])}` failed "
                f"({result.exit_code}): {result.output.strip()[-800:]}"
                + (
                    f"\n{result.exc_info[1]!r}"
                    if result.exc_info and not isinstance(result.exc_info[1], SystemExit)
                    else ""
                )
            )
        return result

    train(root / "a")
    run = load_run(root / "a")
    if run.meta.get("trainer") != trainer:
        raise AssertionError(
            f"run.json records trainer {run.meta.get('trainer')!r}, not {trainer!r} (build it with embedlab.run_meta)"
        )
    if not run.table_names:
        raise AssertionError("the run has no embedding tables")
    for name in run.table_names:
        t = run.table(name)
        if not len(t) or not np.isfinite(t.vectors).all():
            raise AssertionError(f"table {name!r} is empty or has non-finite vectors")
    run.save(root / "copy")
    _same_tables(run, load_run(root / "copy"), "saved and reloaded")
    train(root / "b")
    _same_tables(run, load_run(root / "b"), "the same seed trained twice")
    if entry.resumable:
        with _interrupted_after_epoch(1):
            stopped = train(root / "c", expect_ok=False)
        if stopped.exit_code == 0:
            raise AssertionError(
                "a resumable trainer must pass `checkpoint` on to Learner.fit (no checkpoint was written after epoch 1)"
            )
        train(root / "c", "--resume")
        resumed = load_run(root / "c")
        _same_tables(run, resumed, "interrupted after epoch 1 and resumed")
        timing = {"epoch_seconds", "rows_per_second"}
        strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
        if strip(resumed.meta.get("history", [])) != strip(run.meta.get("history", [])):
            raise AssertionError(
                "interrupted after epoch 1 and resumed: the history differs from an uninterrupted run's"
            )
    for name in run.table_names:
        t = run.table(name)
        if len(t) < 2:
            continue
        found = run.neighbors(str(t.labels[0]), k=min(3, len(t) - 1), table=name)
        if len(found) < 1:
            raise AssertionError(f"run.neighbors found no neighbours in table {name!r}")
    return run


def reset_caches() -> None:
    """Forget what embedlab derived from the registered plugins.

    The registries ask the plugins afresh on every call, but the ready-made command line
    ``embedlab.cli.cli`` computed the flags of ``embedlab analyze`` (one per analysis option)
    when it was built; it is rebuilt here so that ``embedlab.cli.main()`` sees the plugins that
    are registered now.
    """
    mod = sys.modules.get("embedlab.cli")
    if mod is not None:
        mod.cli = mod.make_cli()


@contextlib.contextmanager
def plugin_registered(plugin: Any, name: str | None = None) -> Iterator[str]:
    """Register ``plugin`` (a module, class instance or any object with hook functions)
    for the duration of the block; yields the name it is registered under.

    The plugin is unregistered in ``finally`` and the caches are reset on the way in and out,
    so a failing test leaves nothing behind. A plugin that is already registered (because its
    distribution is installed and its entry point loaded it) is left as it is: the block then
    tests the installed registration, and nothing is unregistered afterwards.

    Registering checks the plugin the way loading does: a misspelled hook name is an
    :class:`embedlab.errors.EmbedlabError` naming it.
    """
    from embedlab.plugins import get_plugin_manager, register_plugin

    pm = get_plugin_manager()
    if pm.is_registered(plugin):
        yield pm.get_name(plugin)
        return
    registered = register_plugin(plugin, name=name)
    try:
        reset_caches()
        yield registered
    finally:
        current = get_plugin_manager()  # the manager may have been rebuilt during the block
        if current.get_plugin(registered) is plugin:
            current.unregister(name=registered)
        reset_caches()


def invoke(args: Sequence[str], input: str | None = None, catch_exceptions: bool = False):
    """Run the ``embedlab`` command line in-process on a freshly built CLI.

    A fresh CLI has one flag per option of the analyses registered *now* (including
    plugins registered with :func:`plugin_registered`). Returns click's ``Result``
    (``exit_code``, ``stdout``, ``stderr``, ``output``). Unexpected exceptions propagate
    (``catch_exceptions=False``) so that a plugin bug shows its traceback in the test.
    """
    from click.testing import CliRunner

    from embedlab.cli import make_cli

    runner = CliRunner()
    return runner.invoke(
        make_cli(), [str(a) for a in args], input=input, catch_exceptions=catch_exceptions, prog_name="embedlab"
    )


# ---------------------------------------------------------------- planted found, shuffled not
@dataclass(frozen=True)
class PlantedCheck:
    """One metric of one analysis on the planted run and on its shuffled control."""

    analysis: str
    table: str | None
    metric: str
    planted: float
    shuffled: float

    def __str__(self) -> str:
        return (
            f"{self.analysis} ({self.table or 'run'}) {self.metric}: planted {self.planted:.3g}, "
            f"shuffled control {self.shuffled:.3g}"
        )


def planted_vs_shuffled(
    analysis: str, metric: str, table: str | None = "item", options: dict[str, Any] | None = None, **overrides: Any
) -> PlantedCheck:
    """Run the (registered) analysis on :func:`synthetic_run` and on its ``shuffle_truth``
    control with the same ``options`` and return ``metric`` of ``table`` from both. A result
    that failed, was skipped or lacks the metric is an AssertionError saying so."""
    import embedlab

    values = []
    for shuffle in (False, True):
        results = embedlab.analyze(synthetic_run(shuffle_truth=shuffle, **overrides), [analysis], dict(options or {}))
        found = [r for r in results if r.table == table]
        if not found:
            raise AssertionError(f"{analysis} gave no result for table {table!r} (got {[r.table for r in results]})")
        result = found[0]
        if result.error or result.skipped:
            raise AssertionError(
                f"{analysis} on table {table!r}"
                f"{' (shuffled control)' if shuffle else ''}: {result.error or result.summary}"
            )
        if metric not in result.metrics:
            raise AssertionError(
                f"{analysis} on table {table!r} has no metric {metric!r}; its metrics: "
                f"{', '.join(result.metrics) or '(none)'}"
            )
        values.append(float(result.metrics[metric]))
    return PlantedCheck(analysis, table, metric, values[0], values[1])


def assert_planted_found(
    analysis: str,
    metric: str,
    *,
    above: float,
    control_below: float,
    table: str | None = "item",
    options: dict[str, Any] | None = None,
    **overrides: Any,
) -> PlantedCheck:
    """Assert that ``metric`` is above ``above`` on the planted run and that its absolute value
    is below ``control_below`` on the shuffled control (a test that passes on both proves
    nothing). Returns the :class:`PlantedCheck`; the assertion message names both values::

        assert_planted_found("kmeans-genres", "ami", above=0.5, control_below=0.2)
    """
    check = planted_vs_shuffled(analysis, metric, table, options, **overrides)
    if not check.planted > above:
        raise AssertionError(f"{check}: the planted truth was not found ({check.planted:.3g} is not above {above})")
    if not abs(check.shuffled) < control_below:
        raise AssertionError(
            f"{check}: the shuffled control scores too ({abs(check.shuffled):.3g} is not below "
            f"{control_below}): the metric does not measure the planted truth"
        )
    return check


# ---------------------------------------------------------------- pytest fixtures
try:  # pytest is a test dependency, not a runtime one
    import pytest
except ImportError:  # pragma: no cover - exercised only without pytest installed
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="session")
    def embedlab_run() -> Path:
        """The folder of a small trained synthetic run with planted truth (shared: read only)."""
        return synthetic_run_dir()

    @pytest.fixture
    def embedlab_plugin():
        """``embedlab_plugin(plugin)`` registers a plugin until the end of the test."""
        with contextlib.ExitStack() as stack:

            def register(plugin: Any, name: str | None = None) -> str:
                return stack.enter_context(plugin_registered(plugin, name))

            yield register
