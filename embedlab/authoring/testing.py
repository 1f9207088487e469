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

__all__ = ["SYNTHETIC_DEFAULTS", "PLANTED", "synthetic_run", "synthetic_run_dir", "plugin_registered",
           "same_data_other_seed", "reset_caches", "invoke", "PlantedCheck", "planted_vs_shuffled", "assert_planted_found",
           "embedlab_run", "embedlab_plugin"]

# Small enough to train in a second or two on one CPU core, strong enough that the planted
# genres and biases are clearly recovered by common analyses (see PLANTED).
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "users": 120, "items": 80, "ratings": 6000, "genres": 3, "noise": 0.3, "taste": 1.5,
    "popularity": 0.3, "epochs": 6, "n_factors": 8, "bs": 128, "seed": 0,
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


def synthetic_run(out: str | Path | None = None, *, shuffle_truth: bool = False, trainer: str | None = None,
                  **overrides: Any) -> Run:
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


def same_data_other_seed(run: Run | str | Path, seed: int, out: str | Path | None = None,
                         progress: bool = False) -> Run:
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
    return runner.invoke(make_cli(), [str(a) for a in args], input=input,
                         catch_exceptions=catch_exceptions, prog_name="embedlab")


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
        return (f"{self.analysis} ({self.table or 'run'}) {self.metric}: planted {self.planted:.3g}, "
                f"shuffled control {self.shuffled:.3g}")


def planted_vs_shuffled(analysis: str, metric: str, table: str | None = "item",
                        options: dict[str, Any] | None = None, **overrides: Any) -> PlantedCheck:
    """Run the (registered) analysis on :func:`synthetic_run` and on its ``shuffle_truth``
    control with the same ``options`` and return ``metric`` of ``table`` from both. A result
    that failed, was skipped or lacks the metric is an AssertionError saying so."""
    import embedlab

    values = []
    for shuffle in (False, True):
        results = embedlab.analyze(synthetic_run(shuffle_truth=shuffle, **overrides), [analysis],
                                   dict(options or {}))
        found = [r for r in results if r.table == table]
        if not found:
            raise AssertionError(f"{analysis} gave no result for table {table!r} (got "
                                 f"{[r.table for r in results]})")
        result = found[0]
        if result.error or result.skipped:
            raise AssertionError(f"{analysis} on table {table!r}"
                                 f"{' (shuffled control)' if shuffle else ''}: {result.error or result.summary}")
        if metric not in result.metrics:
            raise AssertionError(f"{analysis} on table {table!r} has no metric {metric!r}; its metrics: "
                                 f"{', '.join(result.metrics) or '(none)'}")
        values.append(float(result.metrics[metric]))
    return PlantedCheck(analysis, table, metric, values[0], values[1])


def assert_planted_found(analysis: str, metric: str, *, above: float, control_below: float,
                         table: str | None = "item", options: dict[str, Any] | None = None,
                         **overrides: Any) -> PlantedCheck:
    """Assert that ``metric`` is above ``above`` on the planted run and that its absolute value
    is below ``control_below`` on the shuffled control (a test that passes on both proves
    nothing). Returns the :class:`PlantedCheck`; the assertion message names both values::

        assert_planted_found("kmeans-genres", "ami", above=0.5, control_below=0.2)
    """
    check = planted_vs_shuffled(analysis, metric, table, options, **overrides)
    if not check.planted > above:
        raise AssertionError(f"{check}: the planted truth was not found ({check.planted:.3g} is not above {above})")
    if not abs(check.shuffled) < control_below:
        raise AssertionError(f"{check}: the shuffled control scores too ({abs(check.shuffled):.3g} is not below "
                             f"{control_below}): the metric does not measure the planted truth")
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
