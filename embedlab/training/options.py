"""A trainer's options declared once, as a typed dataclass (llm's ``Options`` is the model).

From one declaration come the command line's flags (:meth:`TrainerOptions.click_options`; a
trainer declares ``options = MyOptions`` and the registry derives them), the defaults and the
validation of the Python API's keyword arguments (:meth:`TrainerOptions.from_config`: the same
click types check ``embedlab.train(..., x=...)`` as ``--x``), the section of ``train DATASET
--help`` each flag is listed in, and run.json's record of them (:meth:`TrainerOptions.record`)::

    from dataclasses import dataclass
    from embedlab.trainers.options import TrainerOptions, option

    @dataclass
    class MyOptions(TrainerOptions):
        n_factors: int = option(50, help="Embedding size.", min=1)
        y_range: str = option("0:5.5", help="Prediction range LO:HI.")
        sparse: bool = option(False, help="Sparse embedding gradients.")
        loss: str = option("mse", choices=("mse", "mae"), help="Training loss.")
        n_epochs: int = option(5, flags=("--epochs", "-e"), min=1, help="Epochs.")

    class MyTrainer:
        name, kind = "my-trainer", "collab"
        options = MyOptions                     # --n-factors, --y-range, --sparse/--no-sparse, ...

        def train(self, dataset, config, progress=True):
            opts = MyOptions.from_config(config)  # defaults filled, every value checked
            ...
            return Run(run_meta(..., config=opts.record(), ...), ...)

Flag names are the field names with ``-`` for ``_`` unless ``flags`` says otherwise (an old
flag name stays by listing it there too). The shared fit options (``--epochs --lr --wd --opt``
...) are the dataclass :class:`embedlab.training.fitconfig.FitOptions`: subclass it to have them,
and redeclare a field (``fit_field``) to change its default. ``options = MyOptions.click_options()``
(a list of click options, the earlier form) works too.

Why here (the training wing) and not beside the trainers: the shared fit options are declared
this way too, and the training wing sits below the trainers (docs/architecture.md);
``embedlab.trainers.options`` is the documented path and re-exports these names.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, ClassVar, Mapping, Sequence

import click

from embedlab.errors import UsageError

__all__ = ["TrainerOptions", "option", "SECTIONS"]

#: the sections of ``train DATASET --help`` a trainer option may be listed in (``section=``)
SECTIONS = ("model", "optimisation", "distributed")

_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def option(
    default: Any,
    *,
    help: str | Callable[[type], str] = "",  # noqa: A002 - click's words
    flags: Sequence[str] = (),
    choices: Sequence[str] | None = None,
    min: float | None = None,
    max: float | None = None,  # noqa: A002
    min_open: bool = False,
    max_open: bool = False,
    type: Any = None,  # noqa: A002
    multiple: bool = False,
    metavar: str | None = None,
    show_default: bool | None = None,
    section: str = "model",
    case_sensitive: bool = False,
    negatable: bool = True,
) -> Any:
    """A field of a :class:`TrainerOptions` dataclass.

    ``default``: its default (None: not set, the trainer decides); ``help``: its help text (or a
    function of the options class, for help that names class-level defaults); ``flags``: its
    flags (default ``--field-name``); ``choices``; numeric bounds ``min``/``max`` (open with
    ``min_open``/``max_open``); ``type``: a click type or a tuple of types for a field the
    annotation does not say (``(float, float)``, ``click.Path(...)``); ``multiple``: repeatable;
    ``metavar``; ``show_default`` (default: when the default is not None); ``section``: where
    ``train DATASET --help`` lists it (:data:`SECTIONS`); ``negatable``: a bool option is
    ``--x/--no-x`` (False: the plain flag ``--x``).
    """
    if section not in SECTIONS:
        raise ValueError(f"option section {section!r}: choose one of {', '.join(SECTIONS)}")
    meta = {
        "help": help,
        "flags": tuple(flags),
        "choices": None if choices is None else tuple(choices),
        "min": min,
        "max": max,
        "min_open": min_open,
        "max_open": max_open,
        "type": type,
        "multiple": multiple,
        "metavar": metavar,
        "show_default": show_default,
        "section": section,
        "case_sensitive": case_sensitive,
        "negatable": negatable,
    }
    if isinstance(default, (list, dict, set)):
        raise TypeError("option defaults are immutable values (a tuple, not a list)")
    return dataclasses.field(default=default, metadata={"embedlab": meta})


def restated(
    base: type,
    name: str,
    default: Any = dataclasses.MISSING,
    help: str | None = None,  # noqa: A002
    note: str = "",
    **changes: Any,
) -> Any:
    """Field ``name`` of options class ``base`` declared again in a subclass with another default
    (and, optionally, its help replaced or a ``note`` added to it, or other :func:`option`
    arguments changed): one declaration, adjusted."""
    found = next((f for f in dataclasses.fields(base) if f.name == name), None)
    if found is None:
        raise AttributeError(f"{base.__name__} declares no option {name!r}")
    meta = {**found.metadata["embedlab"], **changes}
    if help is not None:
        meta["help"] = help
    if note:
        meta["help"] = lambda cls, _h=meta["help"]: (_h(cls) if callable(_h) else _h) + note
    return dataclasses.field(
        default=found.default if default is dataclasses.MISSING else default, metadata={"embedlab": meta}
    )


class TrainerOptions:
    """Base of a trainer's options dataclass (see the module docstring)."""

    #: the name of each option's section of ``train DATASET --help``, as listed there
    SECTION_TITLES: ClassVar[dict[str, str]] = {
        "model": "Model",
        "optimisation": "Optimisation",
        "distributed": "Distributed",
    }

    @classmethod
    def _fields(cls) -> list[tuple[dataclasses.Field, type, dict[str, Any]]]:
        """(field, python type, metadata) of each option, in flag order: the class's own fields,
        then those of the shared bases that declare ``late_fields`` (the fit options last, as
        ``train DATASET --help`` has always listed them)."""
        out, late = [], set()
        for base in cls.__mro__:
            late |= set(base.__dict__.get("late_fields", ()))
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            meta = dict(f.metadata.get("embedlab", {}))
            annotation = str(f.type).replace("Optional[", "").split("|")[0].strip()
            kind = f.type if isinstance(f.type, type) else _TYPES.get(annotation)
            if kind not in (int, float, bool, str) and meta.get("type") is None:
                raise TypeError(
                    f"{cls.__name__}.{f.name}: option types are int, float, bool or str (or give "
                    f"option(type=...)), not {f.type}"
                )
            out.append((f, kind, meta))
        return [x for x in out if x[0].name not in late] + [x for x in out if x[0].name in late]

    @classmethod
    def _click_type(cls, kind: type | None, meta: dict[str, Any]) -> Any:
        if meta.get("type") is not None:
            return meta["type"]
        if meta.get("choices"):
            return click.Choice(meta["choices"], case_sensitive=meta.get("case_sensitive", False))
        bounds = {k: meta.get(k) for k in ("min", "max")}
        if bounds["min"] is not None or bounds["max"] is not None:
            bounds.update(min_open=bool(meta.get("min_open")), max_open=bool(meta.get("max_open")))
            return click.IntRange(**bounds) if kind is int else click.FloatRange(**bounds)
        return {int: click.INT, float: click.FLOAT}.get(kind, click.STRING)

    @classmethod
    def click_options(cls) -> list[click.Option]:
        """The command line's options: one per field (``--x/--no-x`` for a bool); each carries
        its ``section`` of ``train DATASET --help``."""
        out = []
        for f, kind, meta in cls._fields():
            flags = list(meta.get("flags") or ("--" + f.name.replace("_", "-"),))
            helptext = meta.get("help")
            helptext = helptext(cls) if callable(helptext) else helptext
            show = meta.get("show_default")
            show = f.default is not None and f.default != () if show is None else show
            kw: dict[str, Any] = {"default": f.default, "show_default": show, "help": helptext or None}
            if meta.get("metavar"):
                kw["metavar"] = meta["metavar"]
            if kind is bool and meta.get("type") is None and not meta.get("negatable", True):
                decls, kw["is_flag"] = flags, True
            elif kind is bool and meta.get("type") is None:
                decls = [f"{flags[0]}/--no-{flags[0][2:]}", *flags[1:]]
            else:
                decls = flags
                kw.update(type=cls._click_type(kind, meta), multiple=bool(meta.get("multiple")))
            made = cls._make_option(f.name, [*decls, f.name], kw)
            made.section = cls.SECTION_TITLES[meta.get("section") or "model"]  # type: ignore[attr-defined]
            out.append(made)
        return out

    @classmethod
    def old_options_list(cls, module: str) -> list[click.Option]:
        """For a trainer module that exported its options as a list of click options
        (``OPTIONS``): the same list, from this declaration, with a deprecation warning. Call it
        from the module's ``__getattr__``."""
        from embedlab.deprecations import OPTIONS_LIST

        OPTIONS_LIST.warn(stacklevel=4, module=module, new=cls.__name__)
        return cls.click_options()

    @classmethod
    def _make_option(cls, name: str, decls: list[str], kwargs: dict[str, Any]) -> click.Option:
        """The click option of one field (a subclass may make a richer one: the fit options'
        ``--lr``/``--wd`` carry the trainer's default table)."""
        return click.Option(decls, **kwargs)

    @classmethod
    def names(cls) -> list[str]:
        """The option names (config keys), in flag order."""
        return [f.name for f, _, _ in cls._fields()]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        """The options a config gives (other keys ignored: loader options...): each missing or
        None value takes its default, each given one is checked and converted by the same click
        type as its flag; a bad value is a one-line UsageError naming the option and the value.
        Free-text options take any value the trainer reads (``layers="100,50"`` or ``[100, 50]``)."""
        values = {}
        for f, kind, meta in cls._fields():
            value = config.get(f.name)
            if value is None:
                continue
            values[f.name] = cls._check(f.name, kind, meta, value)
        return cls(**values)  # type: ignore[call-arg]

    @classmethod
    def _check(cls, name: str, kind: type | None, meta: dict[str, Any], value: Any) -> Any:
        if kind is bool and meta.get("type") is None:
            if not isinstance(value, bool):
                raise UsageError(f"{name}={value!r}: give True or False")
            return value
        ptype = click.types.convert_type(cls._click_type(kind, meta))
        if ptype is click.STRING or (meta.get("multiple") and not isinstance(value, (list, tuple))):
            return value  # free text (or a multiple option given as one value): the trainer parses it
        try:
            if meta.get("multiple"):
                return tuple(ptype.convert(v, None, None) for v in value)
            if isinstance(ptype, click.Tuple) and isinstance(value, str):  # "0 5.5" or "0,5.5"
                return ptype.convert(value.replace(",", " ").split(), None, None)
            return ptype.convert(value, None, None)
        except click.BadParameter as exc:
            raise UsageError(f"{name}={value!r}: {exc.message}") from None

    def record(self) -> dict[str, Any]:
        """What run.json's ``config`` keeps of these options (every field, defaults included)."""
        return {f.name: getattr(self, f.name) for f, _, _ in self._fields()}


def declared(options: Any) -> type[TrainerOptions] | None:
    """The TrainerOptions class a trainer's ``options`` is (None: a list of click options)."""
    return options if isinstance(options, type) and issubclass(options, TrainerOptions) else None
