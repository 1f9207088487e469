"""The tabular trainer's recipes and options (:mod:`embedlab.trainers.tabular`, which re-exports
them): the presets (``default``, Guo & Berkhahn's ``guo2016``), :class:`TabularOptions` (the
flags of ``embedlab train rossmann --help``, the API's keyword arguments, run.json's
``config``) and the parsers of its list-valued options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import click

from embedlab.errors import UsageError
from embedlab.trainers.options import option, restated
from embedlab.training.fitconfig import FitDefaults, FitOptions

#: ``categorical_encoding`` values (EntityEmbeddingNet's), declared here without importing torch.
CATEGORICAL_ENCODINGS = ("embedding", "onehot", "onehot-direct")

#: Model and training recipes. CLI values override a preset's (``None`` = take the preset's).
PRESETS: dict[str, dict[str, Any]] = {
    # measured on Rossmann's last 48 days (README): 500-250 for 8 epochs reached RMSPE 0.1000 in
    # 8.4 min on 2 busy cores; fast.ai's 1000-500 needed 6 epochs and 25 min for 0.1003
    "default": {
        "layers": [500, 250],
        "ps": [0.001, 0.01],
        "emb_drop": 0.04,
        "batchnorm": True,
        "epochs": 8,
        "lr": 3e-3,
        "wd": 0.1,
        "bs": 512,
        "loss": "mse",
        "train_sample": 0,
        "schedule": "one-cycle",
        "rmspe_scale": True,
        "column_set": None,  # every column the dataset's roles name, sizes by fastai's rule
    },
    # Guo & Berkhahn 2016, section 4: dense 1000-500 ReLU layers, sigmoid output, MAE on log
    # sales, 200,000 training rows; its 7 features and Table 1 embedding sizes come from the
    # dataset's column set of the same name
    "guo2016": {
        "layers": [1000, 500],
        "ps": [0.0, 0.0],
        "emb_drop": 0.0,
        "batchnorm": False,
        "epochs": 10,
        "lr": 1e-3,
        "wd": 0.0,
        "bs": 128,
        "loss": "mae",
        "train_sample": 200_000,
        "schedule": "constant",
        "rmspe_scale": False,
        "column_set": "guo2016",
    },
}


def _int_list(text: str | None, what: str, cast=int) -> list | None:
    if text is None:
        return None
    text = str(text).strip()
    if text in ("", "none"):
        return []
    try:
        return [cast(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise UsageError(f"{what} {text!r}: give comma-separated numbers, e.g. 1000,500") from None


def parse_emb_sizes(values: Any) -> dict[str, int]:
    """``("Store=10", "State=6,Day=4")`` -> ``{"Store": 10, "State": 6, "Day": 4}``."""
    if isinstance(values, dict):
        return {str(k): int(v) for k, v in values.items()}
    out: dict[str, int] = {}
    for value in values or ():
        for part in str(value).split(","):
            if not part.strip():
                continue
            name, sep, size = part.partition("=")
            if not sep or not size.strip().isdigit() or int(size) < 1:
                raise UsageError(
                    f"--emb-size {part!r}: write COLUMN=SIZE with a positive whole size, e.g. --emb-size Store=10"
                )
            out[name.strip()] = int(size)
    return out


def _preset_note(name: str) -> str:
    """The help of a shared fit option whose default comes from the preset."""
    return f" Default: the --preset's (default preset: {PRESETS['default'][name]})."


@dataclass
class TabularOptions(FitOptions):
    """The tabular trainer's options (``embedlab train rossmann --help``), one declaration: its
    flags, the API's keyword arguments and checks, their defaults and run.json's ``config``.
    None means the preset's value."""

    fit_defaults: ClassVar[FitDefaults] = FitDefaults.scaled(lr=PRESETS["default"]["lr"], wd=PRESETS["default"]["wd"])

    preset: str = option(
        "default",
        choices=sorted(PRESETS),
        case_sensitive=True,
        help="Model and training recipe: 'default' (every column; MLP 500-250 with batch norm "
        "and dropout) or 'guo2016' (the paper's network: MAE loss, 200,000 training rows, "
        "and the columns and embedding sizes the dataset names for it, e.g. Rossmann's 7 "
        "features and Table 1 sizes). Options given explicitly override it.",
    )
    layers: str | None = option(
        None, help="Hidden layer widths, comma-separated (default preset: 500,250; guo2016: 1000,500)."
    )
    ps: str | None = option(
        None,
        help="Dropout before each hidden layer's successor, comma-separated, one per "
        "hidden layer (fastai's ps; default preset: 0.001,0.01).",
    )
    emb_drop: float | None = option(
        None, min=0, max=1, max_open=True, help="Dropout on the concatenated embeddings (default preset: 0.04)."
    )
    emb_size: Any = option(
        (),
        type=click.STRING,
        multiple=True,
        show_default=False,
        help="Embedding width of a column, COLUMN=SIZE (repeatable or comma-separated); "
        "the others follow fastai's rule min(600, round(1.6 * n ** 0.56)).",
    )
    batchnorm: bool | None = option(None, help="Batch norm between hidden layers (default preset: on).")
    loss: str | None = option(
        None,
        choices=("mse", "mae"),
        case_sensitive=True,
        help="Regression loss on the (log) target (default preset: mse; guo2016: mae).",
    )
    y_range: Any = option(
        None,
        type=(float, float),
        help="Output range LO HI of the sigmoid (regression); default: 0 .. 1.2 x the largest "
        "log target (fastai's), or the target range widened by 20%.",
    )
    init_std: float = option(
        0.01, min=0, min_open=True, help="Standard deviation of the initial embeddings (truncated normal, as fastai)."
    )
    rmspe_scale: bool | None = option(
        None,
        help="Log targets: multiply predictions by the factor that minimises RMSPE on the training rows "
        "(a log-space model predicts a median; RMSPE prefers a little lower). Default preset: on; "
        "guo2016 (MAE, judged by MAPE, which a median already suits): off.",
    )
    train_sample: int | None = option(
        None, min=0, help="Train on this many random training rows (0: all; guo2016: 200000)."
    )
    exclude: str | None = option(None, help="Columns to leave out of the model, comma-separated (ablations).")
    categorical_encoding: str = option(
        "embedding",
        choices=CATEGORICAL_ENCODINGS,
        case_sensitive=True,
        help="How categorical columns enter the network: 'embedding' (a learned lookup table), 'onehot' (a "
        "one-hot vector through a linear layer with bias, of the embedding's width) or 'onehot-direct' "
        "(the one-hot vectors straight into the first hidden layer, as Guo & Berkhahn's one-hot network); "
        "the onehot analysis compares them.",
    )
    threads: int = option(
        1,
        min=0,
        help="Torch CPU threads while training (0: torch's default, one per core). "
        "On a shared machine one thread avoids OpenMP threads spinning for each "
        "other (measured here: a 2-thread step ran 6x slower than a 1-thread one "
        "under load).",
    )
    epochs: int | None = restated(FitOptions, "epochs", None, show_default=False, note=_preset_note("epochs"))
    wd: float | None = restated(FitOptions, "wd", None, show_default=False, note=_preset_note("wd"))
    bs: int | None = restated(FitOptions, "bs", None, show_default=False, note=_preset_note("bs"))
    schedule: str | None = restated(FitOptions, "schedule", None, show_default=False, note=_preset_note("schedule"))
