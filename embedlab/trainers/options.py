"""A trainer's options declared once, as a typed dataclass (llm's ``Options`` is the model).

From one declaration come the command line's flags (:meth:`TrainerOptions.click_options`, the
trainer's ``options``), the defaults and the validation of the Python API's keyword arguments
(:meth:`TrainerOptions.from_config`: the same click types check ``embedlab.train(..., x=...)``
as ``--x``), and run.json's record of them (:meth:`TrainerOptions.record`)::

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
        options = MyOptions.click_options()     # --n-factors, --y-range, --sparse/--no-sparse, ...

        def train(self, dataset, config, progress=True):
            opts = MyOptions.from_config(config)  # defaults filled, every value checked
            ...
            return Run(run_meta(..., config=opts.record(), ...), ...)

Flag names are the field names with ``-`` for ``_`` unless ``flags`` says otherwise (an old
flag name stays by listing it there too).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import click

from embedlab.errors import UsageError

__all__ = ["TrainerOptions", "option"]


def option(default: Any, *, help: str = "", flags: Sequence[str] = (), choices: Sequence[str] | None = None,
           min: float | None = None, max: float | None = None) -> Any:  # noqa: A002 - click's words
    """A field of a :class:`TrainerOptions` dataclass: its default, help, flags (default
    ``--field-name``), allowed ``choices`` and numeric bounds."""
    meta = {"help": help, "flags": tuple(flags), "choices": None if choices is None else tuple(choices),
            "min": min, "max": max}
    return dataclasses.field(default=default, metadata={"embedlab": meta})


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


class TrainerOptions:
    """Base of a trainer's options dataclass (see the module docstring)."""

    @classmethod
    def _fields(cls) -> list[tuple[dataclasses.Field, type, dict[str, Any]]]:
        out = []
        for f in dataclasses.fields(cls):  # type: ignore[arg-type]
            kind = f.type if isinstance(f.type, type) else _TYPES.get(str(f.type).split("|")[0].strip())
            if kind not in (int, float, bool, str):
                raise TypeError(f"{cls.__name__}.{f.name}: option types are int, float, bool or str, not {f.type}")
            out.append((f, kind, f.metadata.get("embedlab", {})))
        return out

    @classmethod
    def _click_type(cls, kind: type, meta: dict[str, Any]) -> click.ParamType:
        if meta.get("choices"):
            return click.Choice(meta["choices"], case_sensitive=False)
        if kind is int:
            return click.IntRange(meta.get("min"), meta.get("max")) if meta.get("min") is not None or \
                meta.get("max") is not None else click.INT
        if kind is float:
            return click.FloatRange(meta.get("min"), meta.get("max")) if meta.get("min") is not None or \
                meta.get("max") is not None else click.FLOAT
        return click.STRING

    @classmethod
    def click_options(cls) -> list[click.Option]:
        """The command line's options: one per field (``--x/--no-x`` for a bool)."""
        out = []
        for f, kind, meta in cls._fields():
            flag = "--" + f.name.replace("_", "-")
            flags = list(meta.get("flags") or (flag,))
            if kind is bool:
                decls = [f"{flags[0]}/--no-{flags[0][2:]}", *flags[1:]]
                out.append(click.Option([*decls, f.name], default=f.default, show_default=True,
                                        help=meta.get("help")))
            else:
                out.append(click.Option([*flags, f.name], type=cls._click_type(kind, meta), default=f.default,
                                        show_default=True, help=meta.get("help")))
        return out

    @classmethod
    def from_config(cls, config: Mapping[str, Any]):
        """The options a config gives (other keys ignored: loader options, the seed...): each
        missing or None value takes its default, each given one is checked and converted by
        the same click type as its flag; a bad value is a one-line UsageError naming it."""
        values = {}
        for f, kind, meta in cls._fields():
            value = config.get(f.name)
            if value is None:
                continue
            if kind is bool:
                if not isinstance(value, bool):
                    raise UsageError(f"{f.name}={value!r}: give True or False")
            else:
                try:
                    value = cls._click_type(kind, meta).convert(value, None, None)
                except click.BadParameter as exc:
                    raise UsageError(f"{f.name}={value!r}: {exc.format_message()}") from None
                if meta.get("choices"):
                    value = str(value).lower()
            values[f.name] = value
        return cls(**values)  # type: ignore[call-arg]

    def record(self) -> dict[str, Any]:
        """What run.json's ``config`` keeps of these options (every field, defaults included)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]
