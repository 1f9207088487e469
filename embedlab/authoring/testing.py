"""Testing helpers for plugin authors (embedlab's own tests use them too).

Two things every plugin test needs, without real data or a GPU:

* :func:`synthetic_run`: a small trained collaborative-filtering run with *planted truth*
  (item genres and biases the test knows), trained in about a second and cached per process;
* :func:`plugin_registered`: register a plugin object or module for the duration of a
  ``with`` block (or a test, through the :func:`embedlab_plugin` fixture) and unregister it
  in ``finally``, so one test's plugin never leaks into the next.

Example (see ``docs/plugins.md``, "Testing your plugin")::

    import embedlab
    from embedlab.authoring.testing import plugin_registered, synthetic_run

    import my_plugin

    def test_my_analysis_finds_the_planted_genres():
        run = synthetic_run()
        with plugin_registered(my_plugin):
            [result] = [r for r in embedlab.analyze(run, ["my-analysis"]) if r.table == "item"]
        assert result.error is None

The planted truth of :func:`synthetic_run` (see ``datasets/synthetic_collab.py``): every item
belongs to one latent genre (item metadata column ``genre``, also the table's
``color_column``) and has a true bias (column ``true_bias``); users have a ``true_bias`` and a
``favourite_genre``. ``shuffle_truth=True`` permutes those columns after generating the
ratings: the negative control, on which an analysis should find nothing.

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
from pathlib import Path
from typing import Any, Iterator, Sequence

from embedlab.run import Run, load_run

__all__ = ["SYNTHETIC_DEFAULTS", "synthetic_run", "synthetic_run_dir", "plugin_registered",
           "reset_caches", "invoke", "embedlab_run", "embedlab_plugin"]

# Small enough to train in about a second on one CPU core, large enough that the planted
# genres and biases are clearly recovered (item bias vs true_bias: Spearman ~0.9).
SYNTHETIC_DEFAULTS: dict[str, Any] = {
    "users": 120, "items": 80, "ratings": 6000, "genres": 3, "noise": 0.3,
    "epochs": 3, "n_factors": 8, "bs": 128, "seed": 0,
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


def synthetic_run_dir(shuffle_truth: bool = False, **overrides: Any) -> Path:
    """The folder of a saved synthetic run (trained once per process and set of arguments).

    The folder is shared: read it, never write into it (copy it first, or use
    :func:`synthetic_run` with ``out=``). ``overrides`` are ``synthetic-collab`` loader options
    (``users``, ``items``, ``ratings``, ``genres``, ``noise``) and collab trainer options
    (``epochs``, ``n_factors``, ``lr``, ``bs``, ``seed``...), on top of
    :data:`SYNTHETIC_DEFAULTS`.
    """
    import embedlab

    config = {**SYNTHETIC_DEFAULTS, **overrides}
    if shuffle_truth:
        config["shuffle_truth"] = True
    key = tuple(sorted((k, repr(v)) for k, v in config.items()))
    with _cache_lock:
        path = _cached.get(key)
        if path is not None and (path / "run.json").is_file():
            return path
        path = _cache_dir() / f"run-{len(_cached)}"
        embedlab.train("synthetic-collab", out=path, progress=False, **config)
        _cached[key] = path
        return path


def synthetic_run(out: str | Path | None = None, *, shuffle_truth: bool = False,
                  **overrides: Any) -> Run:
    """A small trained ``synthetic-collab`` run with planted truth, as a fresh :class:`Run`.

    Every call returns new objects (tests may modify them); the training itself happens once
    per process for each set of arguments. With ``out`` the run folder is also copied there
    (``embedlab analyze OUT`` then works on it).
    """
    src = synthetic_run_dir(shuffle_truth=shuffle_truth, **overrides)
    if out is not None:
        out = Path(out)
        if out.exists():
            from embedlab.run import check_out_dir

            check_out_dir(out)
            shutil.rmtree(out)
        shutil.copytree(src, out)
        return load_run(out)
    return load_run(src)


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
