"""Hook results collected into name-indexed registries.

Each ``get_*`` call asks the plugins afresh (cheap), so a plugin registered at run time (a
test, a notebook) is seen at once. Two plugins registering the same name is an error that
names both plugins; results are sorted by name, not by pluggy's call order.
"""
from __future__ import annotations

from typing import Any, Callable

from embedlab.errors import EmbedlabError, UsageError
from embedlab.plugins import get_plugin_manager, plugin_label, trace_registrations

REQUIRED_ATTRIBUTES = {
    "dataset": ("name", "kind", "load"),
    "trainer": ("name", "kind", "train"),
    "analysis": ("name", "title", "applies_to", "run"),
}


class PluginConflictError(EmbedlabError):
    """Two plugins registered the same name."""


def _collect(hook_name: str, what: str) -> dict[str, Any]:
    pm = get_plugin_manager()
    hook = getattr(pm.hook, hook_name)
    found: dict[str, tuple[Any, str]] = {}
    answers: dict[str, list[str]] = {}
    impls = hook.get_hookimpls()
    for impl in impls:
        plugin_name = impl.plugin_name

        def register(obj: Any, _plugin: str = plugin_name) -> None:
            missing = [a for a in REQUIRED_ATTRIBUTES[what] if not hasattr(obj, a)]
            if missing:
                raise EmbedlabError(
                    f"plugin {plugin_label(_plugin)} registered a {what} without "
                    f"{', '.join(missing)}: see docs in embedlab.hookspecs.{hook_name}"
                )
            if obj.name in found:
                other = found[obj.name][1]
                raise PluginConflictError(
                    f"{what} name {obj.name!r} is registered by two plugins: "
                    f"{plugin_label(other)} and {plugin_label(_plugin)}; uninstall one or "
                    f"select plugins with EMBEDLAB_LOAD_PLUGINS"
                )
            found[obj.name] = (obj, _plugin)
            answers.setdefault(_plugin, []).append(obj.name)

        try:
            impl.function(register=register)
        except EmbedlabError:
            raise
        except Exception as exc:  # a broken plugin is skipped with a warning, like a failed import
            import warnings

            for name in answers.pop(plugin_name, []):
                del found[name]
            warnings.warn(f"embedlab: plugin {plugin_label(plugin_name)} failed in {hook_name} and "
                          f"was skipped: {type(exc).__name__}: {exc}", stacklevel=2)
    trace_registrations(hook_name, [impl.plugin_name for impl in impls], answers)
    return {name: found[name][0] for name in sorted(found)}


def datasets() -> dict:
    """All registered :class:`DatasetSpec` objects by name."""
    return _collect("embedlab_register_datasets", "dataset")


def trainers() -> dict:
    """All registered trainers by name."""
    return _collect("embedlab_register_trainers", "trainer")


def analyses() -> dict:
    """All registered analyses by name."""
    return _collect("embedlab_register_analyses", "analysis")


def _lookup(kind: str, name: str, getter: Callable[[], dict]) -> Any:
    items = getter()
    if name not in items:
        raise UsageError(
            f"unknown {kind} {name!r}; choose one of: {', '.join(items) or '(none installed)'}"
        )
    return items[name]


def get_dataset(name: str):
    return _lookup("dataset", name, datasets)


def get_analysis(name: str):
    return _lookup("analysis", name, analyses)


def trainer_for(kind: str):
    """The trainer for a dataset kind (the built-in one unless a plugin adds another)."""
    matches = [t for t in trainers().values() if t.kind == kind]
    if not matches:
        raise EmbedlabError(f"no trainer is installed for datasets of kind {kind!r}")
    return matches[0]
