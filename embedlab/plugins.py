"""The plugin manager: the built-ins from :data:`BUILTIN_PLUGINS` (module paths inside the
package, so a checkout sees a new built-in without reinstalling), third parties from the
``embedlab`` entry-point group.

``EMBEDLAB_LOAD_PLUGINS`` chooses which third-party distributions load: unset means all of
them; an empty string means the built-ins only; ``a,b`` means the built-ins plus distributions
``a`` and ``b``. ``EMBEDLAB_DISABLE_PLUGINS=name,...`` switches plugins off by name (a built-in
such as ``tsne`` or a third party's entry-point name), like pytest's ``-p no:NAME``; ``embedlab
plugins`` lists them as disabled. A plugin that fails to import
is skipped with a warning naming it, and remembered: :func:`plugin_failures` (and
``embedlab plugins``) list it with its error. ``EMBEDLAB_TRACE_PLUGINS=1`` logs every hook call
and the plugins that answered it.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import os
import sys
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from embedlab import hookspecs

BUILTIN_DISTRIBUTION = "embedlab"
ENTRY_POINT_GROUP = "embedlab"

#: the built-in plugins: name -> module (imported from the package, never from entry points);
#: a new built-in is one line here
BUILTIN_PLUGINS = {
    "collab-trainer": "embedlab.trainers.collab",
    "tabular-trainer": "embedlab.trainers.tabular",
    "movielens": "embedlab_datasets.movielens",
    "ratings-csv": "embedlab_datasets.ratings_csv",
    "synthetic-collab": "embedlab_datasets.synthetic_collab",
    "rossmann": "embedlab_datasets.rossmann",
    "synthetic-rossmann": "embedlab_datasets.synthetic_rossmann",
    "table-csv": "embedlab_datasets.table_csv",
    "bias-ranking": "embedlab_plugins.bias_ranking",
    "cyclic": "embedlab_plugins.cyclic",
    "geography": "embedlab_plugins.geography",
    "neighbors": "embedlab_plugins.neighbors",
    "pca": "embedlab_plugins.pca",
    "umap": "embedlab_plugins.umap_projection",
    "finetune": "embedlab_plugins.finetune",
    "transfer": "embedlab_plugins.transfer",
    "onehot": "embedlab_plugins.onehot",
    "tsne": "embedlab_plugins.tsne",
}


@dataclass
class PluginInfo:
    """What ``embedlab plugins`` lists about one loaded plugin."""

    name: str
    distribution: str | None
    version: str | None
    builtin: bool
    module: str
    hooks: list[str] = field(default_factory=list)


@dataclass
class PluginFailure:
    """A plugin that was found (an entry point) but failed to load: what ``embedlab plugins``
    lists as broken. ``error`` is ``Type: message``; ``location`` the ``file:line`` where the
    exception was raised (the innermost frame), or None."""

    name: str
    distribution: str | None
    version: str | None
    module: str
    error: str
    location: str | None = None
    builtin: bool = False


_pm: pluggy.PluginManager | None = None
_info: dict[str, PluginInfo] = {}
_failures: dict[str, PluginFailure] = {}
_disabled: list[str] = []


def _wanted_distributions() -> set[str] | None:
    """None means every distribution; otherwise the names allowed besides the built-ins."""
    value = os.environ.get("EMBEDLAB_LOAD_PLUGINS")
    if value is None:
        return None
    return {part.strip().lower() for part in value.split(",") if part.strip()}


def _normalise(name: str) -> str:
    return name.lower().replace("_", "-")


def disabled_names() -> set[str]:
    """The plugin names ``EMBEDLAB_DISABLE_PLUGINS`` switches off (normalised; read at each call)."""
    return {
        _normalise(part.strip()) for part in os.environ.get("EMBEDLAB_DISABLE_PLUGINS", "").split(",") if part.strip()
    }


def _load_one(
    pm: pluggy.PluginManager, name: str, module: str, load, dist: str | None, version: str | None, builtin: bool
) -> None:
    """Import one plugin (``load()``) and register it under ``name``; a failure to import is
    remembered and warned about, never raised."""
    try:
        plugin = _contained(load, name, dist)
    except (Exception, SystemExit) as exc:  # one broken plugin must not stop the others, nor exit
        error = (
            f"SystemExit: called sys.exit({exc.code!r}) while importing"
            if isinstance(exc, SystemExit)
            else f"{type(exc).__name__}: {exc}"
        )
        _failures[name] = PluginFailure(
            name=name,
            distribution=dist,
            version=version,
            module=module,
            error=error,
            location=raised_at(exc),
            builtin=builtin,
        )
        warnings.warn(
            f"embedlab: plugin {name!r} from distribution {dist!r} failed to import "
            f"and was skipped: {error} (at {_failures[name].location}; "
            f"`embedlab plugins` lists it)",
            stacklevel=3,
        )
        return
    if pm.is_registered(plugin):  # two entry points naming one module: it loads once
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:  # e.g. a hook with the wrong arguments
        from embedlab.errors import EmbedlabError

        raise EmbedlabError(
            f"plugin {name!r} from distribution {dist!r} is invalid: "
            f"{' '.join(str(exc).split())} (exclude it with EMBEDLAB_DISABLE_PLUGINS={name} or EMBEDLAB_LOAD_PLUGINS)"
        ) from exc
    _info[name] = PluginInfo(name=name, distribution=dist, version=version, builtin=builtin, module=module)


#: seconds after which a plugin still importing is reported by name (it may hang)
SLOW_IMPORT_SECONDS = 3.0


def _contained(load, name: str, dist: str | None):
    """``load()`` with what a plugin does at import kept from harming the command: anything it
    prints goes to stderr (stdout stays clean for ``--json``), and an import that takes longer
    than :data:`SLOW_IMPORT_SECONDS` is reported by name while it runs and when it ends."""
    import contextlib
    import io
    import threading
    import time

    err = sys.stderr
    where = f"plugin {name!r}" + (f" (distribution {dist!r})" if dist else "")

    def still_importing() -> None:
        print(
            f"embedlab: {where} is still importing after {SLOW_IMPORT_SECONDS:.0f} s; if it hangs, switch it "
            f"off with EMBEDLAB_DISABLE_PLUGINS={name}",
            file=err,
            flush=True,
        )

    timer = threading.Timer(SLOW_IMPORT_SECONDS, still_importing)
    timer.daemon = True
    printed = io.StringIO()
    start = time.perf_counter()
    timer.start()
    try:
        with contextlib.redirect_stdout(printed):
            return load()
    finally:
        timer.cancel()
        took = time.perf_counter() - start
        text = printed.getvalue()
        if text.strip():
            first = repr(text.strip().splitlines()[0][:200])[1:-1]  # control characters escaped
            print(f"embedlab: {where} printed at import (kept off stdout): {first}", file=err)
        if took > SLOW_IMPORT_SECONDS:
            print(f"embedlab: {where} took {took:.1f} s to import", file=err)


def _load_builtins(pm: pluggy.PluginManager, disabled: set[str]) -> None:
    from embedlab._version import __version__

    for name, module in sorted(BUILTIN_PLUGINS.items()):
        if _normalise(name) in disabled:
            _disabled.append(name)
            continue
        _load_one(
            pm,
            name,
            module,
            lambda module=module: importlib.import_module(module),
            BUILTIN_DISTRIBUTION,
            __version__,
            builtin=True,
        )


def _load_entry_points(pm: pluggy.PluginManager, disabled: set[str]) -> None:
    wanted = _wanted_distributions()
    seen: set[tuple[str, str]] = set()
    for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = ep.dist.name if ep.dist is not None else None
        if (ep.name, ep.value) in seen:  # the same dist found twice on sys.path
            continue
        seen.add((ep.name, ep.value))
        if dist is not None and _normalise(dist) == BUILTIN_DISTRIBUTION:
            continue  # the built-ins come from BUILTIN_PLUGINS (an older install may still list them)
        if wanted is not None and (dist is None or _normalise(dist) not in {_normalise(w) for w in wanted}):
            continue
        if _normalise(ep.name) in disabled:
            _disabled.append(ep.name)
            continue
        name = ep.name
        if pm.has_plugin(name):  # another distribution uses this entry-point name: keep both,
            name = f"{ep.name}@{dist}"  # so that what they register meets (and conflicts) openly
        _load_one(pm, name, ep.value, ep.load, dist, ep.dist.version if ep.dist is not None else None, builtin=False)


def tracing() -> bool:
    """Whether ``EMBEDLAB_TRACE_PLUGINS`` asks for hook-call tracing (read at each call)."""
    return os.environ.get("EMBEDLAB_TRACE_PLUGINS", "") not in ("", "0")


def trace_registrations(hook_name: str, called: list[str], answers: dict[str, list[str]]) -> None:
    """Trace one registration hook: each plugin that answered and the names it registered.

    The registries call registration hooks implementation by implementation (to know which
    plugin sent what), bypassing pluggy's call monitoring, so they report here instead."""
    if not tracing():
        return
    parts = [f"{p} [{', '.join(answers[p])}]" for p in sorted(answers)]
    silent = sorted(set(called) - set(answers))
    line = f"[embedlab trace] {hook_name} -> {'; '.join(parts) or '(no plugin answered)'}"
    if silent:
        line += f" (called, registered nothing: {', '.join(silent)})"
    print(line, file=sys.stderr)


def _trace(pm: pluggy.PluginManager) -> None:
    def before(hook_name, hook_impls, kwargs):
        names = ", ".join(impl.plugin_name for impl in hook_impls) or "(none)"
        print(f"[embedlab trace] {hook_name} -> {names}", file=sys.stderr)

    def after(outcome, hook_name, hook_impls, kwargs):
        if outcome.exception is not None:
            print(f"[embedlab trace] {hook_name} raised {outcome.exception!r}", file=sys.stderr)

    pm.add_hookcall_monitoring(before, after)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, loaded on first use."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("embedlab")
        pm.add_hookspecs(hookspecs)
        disabled = disabled_names()
        _load_builtins(pm, disabled)
        _load_entry_points(pm, disabled)
        _check_pending(pm)
        if tracing():
            _trace(pm)
        _pm = pm
    return _pm


def reset_plugin_manager() -> None:
    """Forget the loaded plugins (tests use this after changing EMBEDLAB_LOAD_PLUGINS)."""
    global _pm
    _pm = None
    _info.clear()
    _failures.clear()
    _disabled.clear()


def plugin_infos(include_builtins: bool = True) -> list[PluginInfo]:
    """Describe each registered plugin: name, distribution, version and implemented hooks."""
    pm = get_plugin_manager()
    out = []
    for name, plugin in pm.list_name_plugin():
        info = _info.get(name) or PluginInfo(
            name=name,
            distribution=None,
            version=None,
            builtin=False,
            module=getattr(plugin, "__name__", type(plugin).__name__),
        )
        info.hooks = sorted(h.name for h in pm.get_hookcallers(plugin) or [])
        if include_builtins or not info.builtin:
            out.append(info)
    return sorted(out, key=lambda i: i.name)


def plugin_failures() -> list[PluginFailure]:
    """The plugins that were found but failed to import, sorted by name (loads plugins first)."""
    get_plugin_manager()
    return sorted(_failures.values(), key=lambda f: f.name)


def disabled_plugins() -> list[str]:
    """The plugins that ``EMBEDLAB_DISABLE_PLUGINS`` switched off, sorted (loads plugins first)."""
    get_plugin_manager()
    return sorted(_disabled)


def raised_at(exc: BaseException) -> str | None:
    """``file:line`` of the innermost frame of ``exc``'s traceback (where it was raised), or
    None without a traceback. A SyntaxError says where the bad line is."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return f"{exc.filename}:{exc.lineno}"
    tb = exc.__traceback__
    if tb is None:
        return None
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


def plugin_label(plugin_name: str) -> str:
    """A human label for a plugin: its name and, when known, its distribution."""
    info = _info.get(plugin_name)
    if info and info.distribution:
        return f"{plugin_name!r} (distribution {info.distribution!r})"
    return repr(plugin_name)


def is_builtin(plugin_name: str) -> bool:
    """Whether a loaded plugin is one of embedlab's own (its ``embedlab`` distribution); a
    plugin registered by hand (a test, a notebook) is not."""
    info = _info.get(plugin_name)
    return bool(info and info.builtin)


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object by hand (tests, notebooks); returns its name."""
    pm = get_plugin_manager()
    registered = pm.register(plugin, name=name)
    try:
        _check_pending(pm)
    except BaseException:
        pm.unregister(name=registered)  # a rejected plugin must not poison later calls
        raise
    return registered


def _check_pending(pm: pluggy.PluginManager) -> None:
    """``pm.check_pending()`` as a one-line error naming the plugin and the unknown hook."""
    from embedlab.errors import EmbedlabError

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        name = pm.get_name(exc.plugin) or repr(exc.plugin)
        raise EmbedlabError(
            f"plugin {plugin_label(name)}: {exc}; embedlab's hooks are "
            f"{', '.join(sorted(n for n in dir(hookspecs) if n.startswith('embedlab_')))} "
            f"(exclude the plugin with EMBEDLAB_DISABLE_PLUGINS=NAME or EMBEDLAB_LOAD_PLUGINS)"
        ) from exc
