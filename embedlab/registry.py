"""What plugins registered, as normalised, validated specs indexed by name.

Every object a plugin passes to a ``register`` callback is checked and turned into a spec once,
when it arrives: a :class:`DatasetEntry`, :class:`TrainerEntry` or :class:`AnalysisEntry`.
Everything downstream (the CLI, the runner, export, predict) uses the spec and never guesses at
the object's attributes. A malformed object is a one-line :class:`PluginContractError` naming the
plugin and what is missing; two plugins registering one name is a :class:`PluginConflictError`
naming both.

Each ``datasets()``/``trainers()``/``analyses()`` call asks the plugins afresh (cheap), so a
plugin registered at run time (a test, a notebook) is seen at once. Results are sorted by name,
not by pluggy's call order.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import click

from embedlab.analysis import REQUIREMENTS, RUN_LEVEL, AnalysisOption, AnalysisResult, unmet
from embedlab.data import Dataset, remember_options
from embedlab.errors import EmbedlabError, UsageError
from embedlab.plugins import get_plugin_manager, is_builtin, plugin_label, trace_registrations

if TYPE_CHECKING:  # pragma: no cover
    from embedlab.data import RowShard
    from embedlab.run import Run

#: Optional trainer methods, each an ability the registry records (see embedlab.trainers.base.Trainer).
TRAINER_ABILITIES = ("lr_find", "predict", "encode_rows", "prepare", "recommend")


class PluginConflictError(EmbedlabError):
    """Two plugins registered the same name."""


class PluginContractError(EmbedlabError):
    """A plugin registered an object that does not follow the contract (embedlab.hookspecs)."""


def _contract(plugin: str, what: str, name: Any, problem: str, hook: str) -> PluginContractError:
    named = f" {name!r}" if isinstance(name, str) and name else ""
    return PluginContractError(
        f"plugin {plugin_label(plugin)} registered a {what}{named} {problem}: see embedlab.hookspecs.{hook}"
    )


def _text(obj: Any, attr: str, default: str | None = None) -> str | None:
    value = getattr(obj, attr, default)
    return value if isinstance(value, str) else None


def _params(value: Any) -> tuple[click.Parameter, ...] | None:
    """A list of click options, or None when it is not one. A trainer's options declared as a
    dataclass (``embedlab.trainers.options.TrainerOptions``) give theirs: ``click_options()``."""
    if isinstance(value, type) and callable(getattr(value, "click_options", None)):
        value = value.click_options()
    items = list(value or [])
    return tuple(items) if all(isinstance(p, click.Parameter) for p in items) else None


def _takes_parameter(fn: Callable, name: str) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def _checked_name(obj: Any, plugin: str, what: str, hook: str, required: tuple[str, ...]) -> str:
    """The registered object's name, once it has every ``required`` attribute and its name is
    one word (a CLI name)."""
    name = getattr(obj, "name", None)
    missing = [a for a in required if not hasattr(obj, a)]
    if missing:
        raise _contract(plugin, what, name, f"without {', '.join(missing)}", hook)
    if not isinstance(name, str) or not name.strip() or any(c.isspace() for c in name):
        raise _contract(plugin, what, None, f"whose name {name!r} is not a single word", hook)
    return name


# ---------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset (from a :class:`embedlab.DatasetSpec`), validated.

    :attr trainer: the trainer the dataset asks for by name (None: the one trainer of its kind).
    :attr takes_shard: its ``load`` accepts ``shard=`` (reads only one torchrun rank's rows).
    """

    name: str
    kind: str
    description: str
    load: Callable[..., Dataset]
    options: tuple[click.Parameter, ...]
    splits: tuple[str, ...]
    fetch: Callable[[], Any] | None
    homepage: str
    trainer: str | None
    takes_shard: bool
    plugin: str
    spec: Any = field(repr=False, compare=False)

    @property
    def option_names(self) -> set[str]:
        return {o.name for o in self.options}

    def data_dir(self, given: Any = None) -> Any:
        """This dataset's data folder by the one rule (:func:`embedlab.data.locate_data_dir`):
        ``given`` (``--data-dir``) or ``EMBEDLAB_DATA_DIR``, at either level; None: neither."""
        from embedlab.data import locate_data_dir

        return locate_data_dir(
            given, getattr(self.spec, "data_subdir", None), tuple(getattr(self.spec, "data_files", ()) or ())
        )

    def info(self) -> dict[str, Any]:
        """What ``embedlab datasets info`` shows (its ``--json``): name, kind, description, source,
        canonical splits, whether it downloads, and each loader option's flags and help."""
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "source": self.homepage or None,
            "splits": list(self.splits),
            "downloadable": self.fetch is not None,
            "options": [
                {"name": o.name, "flags": list(o.opts), "help": getattr(o, "help", None) or ""} for o in self.options
            ],
        }

    def split_options(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """``values`` parted into this dataset's loader options and the rest (trainer config)."""
        names = self.option_names
        return ({k: v for k, v in values.items() if k in names}, {k: v for k, v in values.items() if k not in names})

    def load_dataset(
        self,
        options: Mapping[str, Any] | None = None,
        seed: int = 42,
        shard: RowShard | None = None,
        strict: bool = True,
    ) -> Dataset:
        """The one way embedlab loads a dataset (train, lr-find, compare, predict, reloading
        analyses, the Python API): ``load(**options, seed=seed[, shard=shard])``, the result
        checked, and the options recorded in ``dataset.info["options"]`` so that a later step
        (finetune, transfer, predict) can load the same data again.

        ``strict``: an option this dataset does not take is an error (False: ignored, for
        options recorded by an older version of the dataset)."""
        options = dict(options or {})
        options.pop("seed", None)
        unknown = sorted(set(options) - self.option_names)
        if unknown and strict:
            raise UsageError(
                f"dataset {self.name!r} takes no option {unknown[0]!r}; its options are: "
                f"{', '.join(sorted(self.option_names)) or '(none)'}"
            )
        given = {k: v for k, v in options.items() if k in self.option_names}
        if "data_dir" in self.option_names:
            folder = self.data_dir(given.get("data_dir"))
            if folder is not None:
                given["data_dir"] = folder
        kwargs: dict[str, Any] = {**given, "seed": seed}
        if shard is not None and self.takes_shard:
            kwargs["shard"] = shard
        dataset = self.load(**kwargs)
        if not isinstance(dataset, Dataset):
            raise _contract(
                self.plugin,
                "dataset",
                self.name,
                f"whose load() returned {type(dataset).__name__}, not an embedlab.Dataset",
                "embedlab_register_datasets",
            )
        return remember_options(dataset, {**given, "seed": seed})


def _dataset_entry(obj: Any, plugin: str) -> DatasetEntry:
    hook = "embedlab_register_datasets"
    name = _checked_name(obj, plugin, "dataset", hook, ("name", "kind", "load"))
    if not _text(obj, "kind"):
        raise _contract(plugin, "dataset", name, "whose kind is not a string", hook)
    if not callable(obj.load):
        raise _contract(plugin, "dataset", name, "whose load is not callable", hook)
    options = _params(getattr(obj, "options", ()))
    if options is None:
        raise _contract(plugin, "dataset", name, "whose options are not a list of click options", hook)
    trainer = getattr(obj, "trainer", None)
    if trainer is not None and not isinstance(trainer, str):
        raise _contract(plugin, "dataset", name, "whose trainer is not a trainer name", hook)
    return DatasetEntry(
        name=name,
        kind=obj.kind,
        description=_text(obj, "description", "") or "",
        load=obj.load,
        options=options,
        splits=tuple(getattr(obj, "splits", ()) or ()),
        fetch=getattr(obj, "fetch", None),
        homepage=_text(obj, "homepage", "") or "",
        trainer=trainer,
        takes_shard=_takes_parameter(obj.load, "shard"),
        plugin=plugin,
        spec=obj,
    )


# ---------------------------------------------------------------------------- trainers
@dataclass(frozen=True)
class TrainerEntry:
    """A registered trainer, validated; ``abilities`` says which optional methods it has
    (:data:`TRAINER_ABILITIES`) and ``resumable`` whether ``train`` takes ``checkpoint=``."""

    name: str
    kind: str
    description: str
    options: tuple[click.Parameter, ...]
    abilities: frozenset[str]
    resumable: bool
    plugin: str
    impl: Any = field(repr=False, compare=False)
    #: the ``config["categorical_encoding"]`` values ``train`` honours (the trainer's
    #: ``categorical_encodings`` attribute; a trainer without one only embeds)
    categorical_encodings: tuple[str, ...] = ("embedding",)
    #: the trainer's options as one typed declaration (a ``TrainerOptions`` dataclass), from which
    #: ``options`` (its flags) derive; None for a trainer that declares click options
    declaration: Any = field(default=None, repr=False, compare=False)

    def can(self, ability: str) -> bool:
        return ability in self.abilities

    def require(self, ability: str, doing: str) -> None:
        """A one-line UsageError when this trainer lacks ``ability`` (needed for ``doing``)."""
        if not self.can(ability):
            raise UsageError(
                f"{doing} needs a trainer that offers {ability}(); trainer {self.name!r} "
                f"(plugin {plugin_label(self.plugin)}) does not"
            )

    def train(self, dataset: Dataset, config: Mapping[str, Any], progress: bool = True, checkpoint: Any = None) -> Run:
        """Train and return the unsaved run; ``checkpoint`` (a training.checkpoint plan) only
        reaches a resumable trainer."""
        if checkpoint is not None and self.resumable:
            return self.impl.train(dataset, dict(config), progress=progress, checkpoint=checkpoint)
        return self.impl.train(dataset, dict(config), progress=progress)

    def lr_find(self, dataset: Dataset, config: Mapping[str, Any], progress: bool = True):
        self.require("lr_find", "lr-find")
        return self.impl.lr_find(dataset, dict(config), progress=progress)

    def prepare(self, dataset: Dataset, config: Mapping[str, Any], progress: bool = True):
        """The model and its live Learner, untrained (``embedlab.trainers.base.Prepared``)."""
        self.require("prepare", "a live learner (embedlab.learner)")
        return self.impl.prepare(dataset, dict(config), progress=progress)

    def predict(self, run: Run, data: Any):
        self.require("predict", "predict")
        return self.impl.predict(run, data)

    def encode_rows(self, run: Run, frame: Any, source: str = "rows"):
        self.require("encode_rows", "encoding rows for other models")
        return self.impl.encode_rows(run, frame, source)


def _trainer_entry(obj: Any, plugin: str) -> TrainerEntry:
    hook = "embedlab_register_trainers"
    name = _checked_name(obj, plugin, "trainer", hook, ("name", "kind", "train"))
    if not _text(obj, "kind"):
        raise _contract(plugin, "trainer", name, "whose kind is not a string", hook)
    if not callable(obj.train):
        raise _contract(plugin, "trainer", name, "whose train is not callable", hook)
    declared = getattr(obj, "options", ())
    options = _params(declared)
    if options is None:
        raise _contract(
            plugin,
            "trainer",
            name,
            "whose options are neither a TrainerOptions class nor a list of click options",
            hook,
        )
    abilities = frozenset(a for a in TRAINER_ABILITIES if callable(getattr(obj, a, None)))
    return TrainerEntry(
        name=name,
        kind=obj.kind,
        description=_text(obj, "description", "") or "",
        options=options,
        abilities=abilities,
        resumable=bool(getattr(obj, "resumable", False)),
        plugin=plugin,
        impl=obj,
        declaration=declared if isinstance(declared, type) else None,
        categorical_encodings=tuple(str(e) for e in getattr(obj, "categorical_encodings", None) or ("embedding",)),
    )


# ---------------------------------------------------------------------------- analyses
@dataclass(frozen=True)
class AnalysisEntry:
    """A registered analysis, validated: options are :class:`AnalysisOption` objects, and
    ``applies_to`` always takes ``(run, options)`` and returns table names (``None`` for the
    run as a whole: :data:`embedlab.analysis.RUN_LEVEL` or a legacy ``None`` in the list)."""

    name: str
    title: str
    description: str
    options: tuple[AnalysisOption, ...]
    by_default: bool
    takes_options: bool
    plugin: str
    impl: Any = field(repr=False, compare=False)
    #: it takes several runs (``runs = "several"``) and implements ``run_several(runs, options)``
    several: bool = False

    def help_text(self) -> str:
        """What ``analyze --help-analysis NAME`` prints: title, description, each option's usage,
        help and default."""
        lines = [f"{self.name}: {self.title}", ""] + ([self.description, ""] if self.description else [])
        lines.append("Options:" if self.options else "Options: none")
        lines += [f"  {opt.usage}  {opt.help} [default: {opt.default}]" for opt in self.options]
        return "\n".join(lines)

    def run_several(self, runs: Mapping[str, Run], options: Mapping[str, Any]) -> AnalysisResult:
        """Its result over several runs (label -> Run, at least two), table None."""
        result = self.impl.run_several(dict(runs), dict(options))
        if not isinstance(result, AnalysisResult):
            raise _contract(
                self.plugin,
                "analysis",
                self.name,
                f"whose run_several returned {type(result).__name__}, not an AnalysisResult",
                "embedlab_register_analyses",
            )
        return result

    requires: tuple[str, ...] = ()

    def applies_to(self, run: Run, options: Mapping[str, Any] | None = None) -> list[str | None]:
        """The tables (None: the run) the analysis applies to, less those lacking what it
        ``requires`` (:data:`embedlab.analysis.REQUIREMENTS`)."""
        if "training_data" in self.requires and not run.has_training_data:
            return []
        if self.takes_options:
            found = self.impl.applies_to(run, dict(options or {}))
        else:  # the one-argument form of the earlier guide
            found = self.impl.applies_to(run)
        if not isinstance(found, (list, tuple)):
            raise _contract(
                self.plugin,
                "analysis",
                self.name,
                f"whose applies_to returned {type(found).__name__}, not a list of table names",
                "embedlab_register_analyses",
            )
        tables: list[str | None] = []
        for t in found:
            if t is RUN_LEVEL or t is None:
                tables.append(None)
            elif isinstance(t, str) and t in run.tables:
                tables.append(t)
            else:
                raise _contract(
                    self.plugin,
                    "analysis",
                    self.name,
                    f"whose applies_to named {t!r}, which is not "
                    f"a table of this run ({', '.join(run.table_names) or 'none'})",
                    "embedlab_register_analyses",
                )
        return [t for t in tables if not unmet(self.requires, run, t)]

    def unmet_message(self, run: Run) -> str:
        """Why the analysis applies to nothing in ``run``, by its ``requires`` ("" when they are met)."""
        if unmet(self.requires, run):
            return f"the run lacks {REQUIREMENTS['training_data']}"
        tables = [t for t in run.table_names if unmet(self.requires, run, t)]
        if tables and len(tables) == len(run.table_names):
            needs = sorted({n for t in tables for n in unmet(self.requires, run, t)})
            return f"no table has {' or '.join(REQUIREMENTS[n] for n in needs)}"
        return ""

    def run(
        self, run: Run, table: str | None, options: Mapping[str, Any], progress: Callable[..., None] | None = None
    ) -> AnalysisResult:
        """The analysis's result; ``progress`` reaches its ``run`` when that takes a ``progress``
        parameter (``progress(done, total=None, info="")``, from the runner's bar)."""
        if progress is not None and _takes_parameter(self.impl.run, "progress"):
            result = self.impl.run(run, table, dict(options), progress=progress)
        else:
            result = self.impl.run(run, table, dict(options))
        if not isinstance(result, AnalysisResult):
            raise _contract(
                self.plugin,
                "analysis",
                self.name,
                f"whose run returned {type(result).__name__}, not an AnalysisResult",
                "embedlab_register_analyses",
            )
        return result

    def render(self, result: AnalysisResult) -> list:
        render = getattr(self.impl, "render", None)
        return list(render(result) or []) if callable(render) else []


def _analysis_entry(obj: Any, plugin: str, declared: dict[str, tuple[AnalysisOption, str]]) -> AnalysisEntry:
    from embedlab.toolkit.options import SHARED_OPTIONS, describe_signature, option_signature

    hook = "embedlab_register_analyses"
    runs = getattr(obj, "runs", "one")
    if runs not in ("one", "several"):
        raise _contract(
            plugin, "analysis", getattr(obj, "name", None), f"whose runs is {runs!r}, not 'one' or 'several'", hook
        )
    several = runs == "several"
    needed = ("name", "title", "run_several") if several else ("name", "title", "applies_to", "run")
    name = _checked_name(obj, plugin, "analysis", hook, needed)
    if not all(callable(getattr(obj, a)) for a in needed[2:]):
        raise _contract(plugin, "analysis", name, f"whose {' or '.join(needed[2:])} is not callable", hook)
    options = []
    for opt in list(getattr(obj, "options", ()) or ()):
        if not isinstance(opt, AnalysisOption):
            if not isinstance(getattr(opt, "name", None), str):
                raise _contract(plugin, "analysis", name, f"with an option {opt!r} that has no name", hook)
            opt = AnalysisOption(
                opt.name,
                getattr(opt, "type", str),
                getattr(opt, "default", None),
                getattr(opt, "help", "") or "",
                bool(getattr(opt, "multiple", False)),
            )
        shared = SHARED_OPTIONS.get(opt.name)
        earlier = declared.get(opt.name)
        for ref, owner in ((shared, "embedlab.toolkit.options"), earlier or (None, "")):
            if ref is not None and option_signature(ref) != option_signature(opt):
                raise _contract(
                    plugin,
                    "analysis",
                    name,
                    f"with option {opt.flag} ({describe_signature(opt)}), which {owner} declares as "
                    f"{describe_signature(ref)}; one flag reaches every analysis, so declare it the same "
                    f"way (use embedlab.toolkit.options) or choose another name",
                    hook,
                )
        declared.setdefault(opt.name, (opt, f"analysis {name!r}"))
        options.append(opt)
    try:
        params = [
            p
            for p in inspect.signature(obj.applies_to).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)
        ]
    except (TypeError, ValueError, AttributeError):  # a several-runs analysis may have no applies_to
        params = []
    takes_options = len(params) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)
    return AnalysisEntry(
        name=name,
        title=_text(obj, "title", "") or name,
        description=_text(obj, "description", "") or "",
        options=tuple(options),
        by_default=bool(getattr(obj, "by_default", True)),
        takes_options=takes_options,
        plugin=plugin,
        impl=obj,
        requires=_requires(obj, plugin, name),
        several=several,
    )


def _requires(obj: Any, plugin: str, name: str) -> tuple[str, ...]:
    """An analysis's declared ``requires``, checked against :data:`embedlab.analysis.REQUIREMENTS`."""
    value = getattr(obj, "requires", ()) or ()
    if isinstance(value, str):
        value = (value,)
    try:
        needs = tuple(str(v) for v in value)
    except TypeError:
        raise _contract(
            plugin,
            "analysis",
            name,
            f"whose requires is a {type(value).__name__}, not a tuple of names",
            "embedlab_register_analyses",
        ) from None
    bad = [n for n in needs if n not in REQUIREMENTS]
    if bad:
        raise _contract(
            plugin,
            "analysis",
            name,
            f"that requires {bad[0]!r}, which embedlab does not know (it knows: {', '.join(REQUIREMENTS)})",
            "embedlab_register_analyses",
        )
    return needs


# ---------------------------------------------------------------------------- collection
def _collect(hook_name: str, what: str, make: Callable[[Any, str], Any]) -> dict[str, Any]:
    pm = get_plugin_manager()
    hook = getattr(pm.hook, hook_name)
    found: dict[str, Any] = {}
    answers: dict[str, list[str]] = {}
    impls = hook.get_hookimpls()
    for impl in impls:
        plugin_name = impl.plugin_name

        def register(obj: Any, _plugin: str = plugin_name) -> None:
            entry = make(obj, _plugin)
            if entry.name in found:
                other = found[entry.name].plugin
                raise PluginConflictError(
                    f"{what} name {entry.name!r} is registered by two plugins: "
                    f"{plugin_label(other)} and {plugin_label(_plugin)}; uninstall one or "
                    f"select plugins with EMBEDLAB_LOAD_PLUGINS"
                )
            found[entry.name] = entry
            answers.setdefault(_plugin, []).append(entry.name)

        try:
            impl.function(register=register)
        except EmbedlabError:
            raise
        except Exception as exc:  # a broken plugin is skipped with a warning, like a failed import
            import warnings

            for name in answers.pop(plugin_name, []):
                del found[name]
            warnings.warn(
                f"embedlab: plugin {plugin_label(plugin_name)} failed in {hook_name} and "
                f"was skipped: {type(exc).__name__}: {exc}",
                stacklevel=2,
            )
    trace_registrations(hook_name, [impl.plugin_name for impl in impls], answers)
    return {name: found[name] for name in sorted(found)}


def datasets() -> dict[str, DatasetEntry]:
    """Every registered dataset by name."""
    return _collect("embedlab_register_datasets", "dataset", _dataset_entry)


def trainers() -> dict[str, TrainerEntry]:
    """Every registered trainer by name."""
    return _collect("embedlab_register_trainers", "trainer", _trainer_entry)


def analyses() -> dict[str, AnalysisEntry]:
    """Every registered analysis by name (option declarations checked across analyses)."""
    declared: dict[str, tuple[AnalysisOption, str]] = {}
    return _collect("embedlab_register_analyses", "analysis", lambda obj, p: _analysis_entry(obj, p, declared))


def _lookup(kind: str, name: str, items: Mapping[str, Any]) -> Any:
    if name not in items:
        raise UsageError(f"unknown {kind} {name!r}; choose one of: {', '.join(items) or '(none installed)'}")
    return items[name]


def get_dataset(name: str) -> DatasetEntry:
    return _lookup("dataset", name, datasets())


def get_analysis(name: str) -> AnalysisEntry:
    return _lookup("analysis", name, analyses())


def get_trainer(name: str) -> TrainerEntry:
    return _lookup("trainer", name, trainers())


def trainers_for(kind: str) -> list[TrainerEntry]:
    """Every trainer of a dataset kind, by name."""
    return [t for t in trainers().values() if t.kind == kind]


def trainer_for(kind: str, name: str | None = None, dataset: str | None = None) -> TrainerEntry:
    """The trainer for a dataset kind: the one named (``--trainer``, or the dataset's
    ``DatasetSpec.trainer``), else the only built-in trainer of the kind, else the only trainer of
    the kind. A trainer an installed package adds is used only when asked for by name, so
    installing one never changes what a dataset trains with; two candidates and no name is an
    error that lists them."""
    if name:
        trainer = get_trainer(name)
        if trainer.kind != kind:
            raise UsageError(f"trainer {name!r} trains datasets of kind {trainer.kind!r}, not {kind!r}")
        return trainer
    matches = trainers_for(kind)
    if not matches:
        raise EmbedlabError(f"no trainer is installed for datasets of kind {kind!r}")
    builtin = [t for t in matches if is_builtin(t.plugin)]
    if len(builtin) == 1:
        return builtin[0]
    if len(matches) > 1:
        what = f"dataset {dataset!r} (kind {kind!r})" if dataset else f"datasets of kind {kind!r}"
        raise UsageError(
            f"{what} names no trainer and can be trained by {len(matches)} trainers: "
            f"{', '.join(repr(t.name) for t in matches)}; choose one with --trainer NAME"
        )
    return matches[0]


def trainer_for_dataset(dataset: DatasetEntry | Dataset, name: str | None = None) -> TrainerEntry:
    """The trainer for a dataset: ``name`` when given, else the one the dataset names, else the
    only trainer of its kind."""
    wanted = name or getattr(dataset, "trainer", None)
    if wanted is None and isinstance(dataset, Dataset):  # a loaded dataset: its registered spec's choice
        entry = datasets().get(dataset.name)
        wanted = entry.trainer if entry is not None and entry.kind == dataset.kind else None
    return trainer_for(dataset.kind, wanted, dataset.name)


def trainer_of_run(run: Run) -> TrainerEntry:
    """The trainer that made a run (run.json's ``trainer``), which must be installed."""
    name = run.meta.get("trainer")
    if isinstance(name, str) and name:
        found = trainers()
        if name not in found:
            raise UsageError(
                f"run {str(run.path or '')!r} was made by trainer {name!r}, which is not installed; "
                f"installed trainers: {', '.join(found) or '(none)'}"
            )
        return found[name]
    return trainer_for_dataset(datasets().get(run.dataset) or _KindOnly(run.kind, run.dataset))


class _KindOnly:
    """A run's dataset that is no longer registered: only its kind and name are known."""

    trainer = None

    def __init__(self, kind: str, name: str):
        self.kind, self.name = kind, name


def dataset_of_run(run: Run) -> DatasetEntry:
    """The registered dataset a run was trained on."""
    return get_dataset(run.dataset)
