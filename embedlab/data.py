"""Datasets: frames plus column roles, entity metadata and the split.

A dataset plugin registers a :class:`DatasetSpec`; its ``load(**options)`` returns a
:class:`Dataset`. Datasets *annotate* entities (titles, genres, coordinates, calendar order)
in ``entities``; trainers copy those annotations into the run, where analyses find them.

The plugin guide documents the dataset helpers (``__all__``) with an example:
``embedlab plugins guide "embedlab.data"``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import click
import numpy as np
import pandas as pd

from embedlab.errors import DataError, UsageError

__all__ = [
    "Dataset",
    "DatasetSpec",
    "SPLITS",
    "split_options",
    "split_collab",
    "random_split",
    "time_split",
    "require_columns",
    "check_ratings",
    "require_dir",
    "require_file",
    "collab_entity_stats",
    "entity_table_of",
    "check_entity_tables",
    "sample_rows",
    "TIME_CUT_SPLITS",
    "time_cut_option",
    "cut_by_time",
    "check_finite",
    "RowShard",
    "read_sharded",
]

COLLAB_ROLES = ("user", "item", "rating")


@dataclass
class Dataset:
    """Training data ready for a trainer.

    :param name: the registered dataset name.
    :param kind: ``"collab"`` (roles user, item, rating, optional timestamp) or
        ``"tabular"`` (roles categorical, continuous, target, optional date).
    :param train: training rows.
    :param valid: validation rows (same columns) or None.
    :param roles: role -> column name (or list of names for categorical/continuous).
    :param entities: entity table name -> metadata DataFrame indexed by the entity key, with a
        ``label`` column (what a person reads) and any annotation columns.
    :param split: how train/valid were made, recorded in the run (``{"name": "u1", ...}``).
    :param info: anything else worth recording (source folder, file names, counts).
    :param rating_range: (min, max) of the target where it is bounded (ratings).
    :param test: rows to predict (no target), e.g. Kaggle's test.csv, for ``embedlab predict``.
    :param column_sets: named column selections a trainer preset may use, so a recipe that
        names particular columns lives with the dataset, not in the trainer:
        ``{"guo2016": {"categorical": [...], "continuous": [...], "emb_sizes": {"Store": 10}}}``
        (the tabular trainer's ``--preset guo2016`` trains on the ``guo2016`` set).
    :param entity_tables: role -> the name of the ``entities`` table that annotates it, e.g.
        ``{"user": "customer", "item": "product"}``. Without it a trainer takes the table named
        after the role (``user``), else the one named after the role's column
        (``roles["user"]``): see :func:`entity_table_of`. A table no role takes is an error
        (:func:`check_entity_tables`), never silently dropped.
    :param side_features: role -> the columns of that role's entity table that describe it, each
        with its kind: ``"category"`` (one value), ``"ordinal"`` (one value of an ordered scale,
        e.g. an age bucket) or ``"multi"`` (several values joined by ``|``, e.g. genres). The
        collab trainer's ``--features side`` gives each one an embedding table of its own, e.g.
        ``{"user": {"age_bucket": "ordinal", "occupation": "category"}, "item": {"genres": "multi"}}``.
    """

    name: str
    kind: str
    train: pd.DataFrame
    valid: pd.DataFrame | None
    roles: dict[str, Any]
    entities: dict[str, pd.DataFrame] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    rating_range: tuple[float, float] | None = None
    test: pd.DataFrame | None = None
    column_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    entity_tables: dict[str, str] = field(default_factory=dict)
    side_features: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class DatasetSpec:
    """A dataset as a plugin registers it.

    :param name: CLI name (``embedlab train NAME``), unique across plugins.
    :param kind: ``"collab"`` or ``"tabular"``.
    :param description: one line for ``embedlab datasets list``.
    :param load: ``load(**options) -> Dataset``; receives the values of ``options`` by their
        parameter names, plus ``seed``.
    :param options: click options the loader accepts (shown in ``embedlab train NAME --help``).
    :param splits: names of canonical splits, for ``datasets info`` and validation.
    :param fetch: optional ``fetch() -> Path`` that downloads the data into the cache.
    :param homepage: where the data comes from, and its licence terms.
    :param trainer: the name of the trainer that trains it unless ``--trainer`` says otherwise
        (None: the built-in trainer of its ``kind``, else the only one installed; a trainer a
        package adds later is used only when asked for by name).
    :param data_subdir: for a loader with ``--data-dir``: the folder its files usually sit in
        (``ml-100k``), so that ``--data-dir`` and ``EMBEDLAB_DATA_DIR`` may name that folder or
        the one holding it (:func:`locate_data_dir`).
    :param data_files: files a folder of this data holds (how ``EMBEDLAB_DATA_DIR`` is
        recognised as the data folder itself).
    """

    name: str
    kind: str
    description: str
    load: Callable[..., Dataset]
    options: list[click.Option] = field(default_factory=list)
    splits: tuple[str, ...] = ()
    fetch: Callable[[], Path] | None = None
    homepage: str = ""
    trainer: str | None = None
    data_subdir: str | None = None
    data_files: tuple[str, ...] = ()


# ---------------------------------------------------------------- splits


def random_split(df: pd.DataFrame, valid_pct: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out ``valid_pct`` of the rows at random (seeded)."""
    if not 0.0 < valid_pct < 1.0:
        raise UsageError(f"--valid-pct must be between 0 and 1 (exclusive), got {valid_pct}")
    rng = np.random.default_rng(seed)
    n_valid = int(round(len(df) * valid_pct))
    idx = rng.permutation(len(df))
    return (
        df.iloc[np.sort(idx[n_valid:])].reset_index(drop=True),
        df.iloc[np.sort(idx[:n_valid])].reset_index(drop=True),
    )


def sample_rows(df: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """A seeded random ``n`` of ``df``'s rows in their original order (all of them when ``n`` is 0
    or at least ``len(df)``): how a trainer's ``--train-sample`` draws, so an analysis that needs
    the rows a run saw draws the same ones."""
    if n and n < len(df):
        keep = np.sort(np.random.default_rng(seed).choice(len(df), size=n, replace=False))
        return df.iloc[keep].reset_index(drop=True)
    return df


def time_split(df: pd.DataFrame, column: str, valid_pct: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Hold out the last ``valid_pct`` of rows by ``column`` (ties broken by row order)."""
    if not 0.0 < valid_pct < 1.0:
        raise UsageError(f"--valid-pct must be between 0 and 1 (exclusive), got {valid_pct}")
    order = np.argsort(df[column].to_numpy(), kind="stable")
    n_valid = int(round(len(df) * valid_pct))
    cut = len(df) - n_valid
    return (df.iloc[np.sort(order[:cut])].reset_index(drop=True), df.iloc[np.sort(order[cut:])].reset_index(drop=True))


TIME_CUT_SPLITS = ("time-before", "time-after")


def time_cut_option() -> click.Option:
    """``--time-cut``: where the ``time-before``/``time-after`` splits cut the data."""
    return click.Option(
        ["--time-cut"],
        default="0.5",
        show_default=True,
        help="Where --split time-before / time-after cut the ratings: a share of them in time order "
        "(0.5: the earliest half is 'before') or a date (1998-01-01). time-before keeps the ratings "
        "before the cut (pretraining), time-after those from it on (the later task to adapt to); "
        "each then holds out its own latest --valid-pct.",
    )


SPLITS = ("random", "time", *TIME_CUT_SPLITS)


def split_options(
    splits: tuple[str, ...] = SPLITS, default: str = "random", valid_pct: float = 0.1
) -> list[click.Option]:
    """The reusable ``--split`` / ``--valid-pct`` option set of a ratings dataset (plus
    ``--time-cut`` when a time-cut split is offered), for ``DatasetSpec.options``. The loader
    receives ``split``, ``valid_pct`` (and ``time_cut``) and hands them to :func:`split_collab`.

    Example::

        OPTIONS = [click.Option(["--file"], required=True), *split_options(("random", "time"))]

        def load(file, split="random", valid_pct=0.1, seed=42, time_cut=0.5, **_):
            ratings = pd.read_csv(file)
            train, valid, info = split_collab(ratings, split, valid_pct, seed, "timestamp", time_cut)
            ...
    """
    unknown = [s for s in splits if s not in SPLITS]
    if unknown or default not in splits:
        raise UsageError(f"split_options: unknown split {(unknown or [default])[0]!r}; choose from {', '.join(SPLITS)}")
    described = {
        "random": "random (seeded)",
        "time": "time (the latest ratings held out)",
        "time-before": "time-before / time-after (--time-cut)",
    }
    words = [described[s] for s in splits if s in described]
    options = [
        click.Option(
            ["--split"],
            type=click.Choice(list(splits)),
            default=default,
            show_default=True,
            help=f"Validation split: {', '.join(words)}.",
        ),
        click.Option(
            ["--valid-pct"],
            type=click.FloatRange(0, 1, min_open=True, max_open=True),
            default=valid_pct,
            show_default=True,
            help="Share of the ratings held out for validation.",
        ),
    ]
    if any(s in TIME_CUT_SPLITS for s in splits):
        options.append(time_cut_option())
    return options


def cut_by_time(df: pd.DataFrame, column: str, cut: Any) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Rows before and from ``cut``: a share of the rows in ``column`` order (ties by row
    order), or a date (``column`` holds unix seconds or datetimes)."""
    order = np.argsort(df[column].to_numpy(), kind="stable")
    text = str(cut).strip()
    try:
        share = float(text)
    except ValueError:
        share = None
    if share is not None:
        if not 0.0 < share < 1.0:
            raise UsageError(f"--time-cut {text}: a share must be between 0 and 1 (exclusive), or give a date")
        k = int(round(len(df) * share))
        if pd.api.types.is_datetime64_any_dtype(df[column]):  # dates: cut at a day, not inside one
            first = df[column].iloc[order[min(k, len(df) - 1)]]
            is_before = (df[column] < first).to_numpy()
            before_idx, after_idx = np.flatnonzero(is_before), np.flatnonzero(~is_before)
        else:
            before_idx, after_idx = np.sort(order[:k]), np.sort(order[k:])
    else:
        try:
            when = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise UsageError(f"--time-cut {text!r}: give a share (0.5) or a date (1998-01-01)") from None
        values = df[column]
        if pd.api.types.is_numeric_dtype(values):
            when_value: Any = when.tz_localize("UTC").timestamp() if when.tzinfo is None else when.timestamp()
        else:
            when_value = when
        is_before = (values < when_value).to_numpy()
        before_idx, after_idx = np.flatnonzero(is_before), np.flatnonzero(~is_before)
    if len(before_idx) == 0 or len(after_idx) == 0:
        raise UsageError(f"--time-cut {text}: leaves no rows {'before' if len(before_idx) == 0 else 'after'} the cut")
    first_after = df[column].iloc[after_idx].min()
    if pd.api.types.is_numeric_dtype(df[column]):
        cut_at = pd.Timestamp(int(first_after), unit="s").isoformat()
    else:
        cut_at = pd.Timestamp(first_after).isoformat()
    info = {"time_cut": text, "cut_at": cut_at, "rows_before": int(len(before_idx)), "rows_after": int(len(after_idx))}
    return (df.iloc[before_idx].reset_index(drop=True), df.iloc[after_idx].reset_index(drop=True), info)


def split_collab(
    df: pd.DataFrame, split: str, valid_pct: float, seed: int, timestamp: str | None, time_cut: Any = 0.5
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The generic splits every ratings dataset offers: ``random``, ``time``, and the pair
    ``time-before`` / ``time-after`` (pretrain on the ratings before ``time_cut``, adapt to
    those after it; each holds out its own latest ``valid_pct``)."""
    if split in TIME_CUT_SPLITS:
        if timestamp is None:
            raise UsageError(f"--split {split} needs a timestamp column (--timestamp)")
        before, after, info = cut_by_time(df, timestamp, time_cut)
        tr, va = time_split(before if split == "time-before" else after, timestamp, valid_pct)
        return tr, va, {"name": split, "valid_pct": valid_pct, "column": timestamp, **info}
    if split == "random":
        tr, va = random_split(df, valid_pct, seed)
        return tr, va, {"name": "random", "valid_pct": valid_pct, "seed": seed}
    if split == "time":
        if timestamp is None:
            raise UsageError("--split time needs a timestamp column (--timestamp)")
        tr, va = time_split(df, timestamp, valid_pct)
        return tr, va, {"name": "time", "valid_pct": valid_pct, "column": timestamp}
    raise UsageError(f"unknown split {split!r}; choose random, time, time-before or time-after")


# ---------------------------------------------------------------- checks


def require_columns(df: pd.DataFrame, columns: list[str], source: str) -> None:
    """Raise a DataError naming the first missing column and listing those that exist."""
    for col in columns:
        if col not in df.columns:
            raise DataError(f"{source}: column {col!r} not found; the columns are: {', '.join(map(str, df.columns))}")


#: the largest magnitude a number fed to training may have: beyond it a value is a typo or a
#: sentinel (1e30, 9.9e99), and its square overflows float32 arithmetic (the loss becomes inf)
MAX_ABS_VALUE = 1e15


def check_finite(
    values: pd.Series, source: str, column: str, what: str = "value", limit: float = MAX_ABS_VALUE
) -> None:
    """A DataError naming file, column, data row and value for the first NaN-free cell of
    numeric ``values`` that is infinite (``inf``, ``-inf``, or beyond float32's range) or
    absurdly large (beyond +-``limit``). Missing cells (NaN) are the caller's business."""
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    with np.errstate(invalid="ignore", over="ignore"):
        infinite = np.isinf(arr)
        overflow = np.isfinite(arr) & ~np.isfinite(arr.astype("float32"))  # becomes inf in training
        absurd = np.isfinite(arr) & ~overflow & (np.abs(arr) > limit)
    for mask, kind, why in (
        (infinite, "a non-finite", f"{what}s must be finite numbers"),
        (overflow, "a non-finite", f"beyond float32's range (3.4e38) it becomes inf; {what}s must be finite numbers"),
        (
            absurd,
            "an absurd",
            f"a {what} beyond +-{limit:g} is taken for a typo or a placeholder: fix the cell, or rescale the column",
        ),
    ):
        if mask.any():
            i = int(np.flatnonzero(mask)[0])
            cell = values.iloc[i]
            shown = repr(float(cell)) if isinstance(cell, (float, np.floating)) else repr(cell)
            raise DataError(f"{source}: column {column!r} has {kind} {what} {shown} (row {i + 1}); {why}")


def check_ratings(df: pd.DataFrame, column: str, source: str, bounds: tuple[float, float] | None = None) -> pd.Series:
    """Ratings as float32; non-numeric or out-of-range values are a DataError naming one."""
    if len(df) == 0:
        raise DataError(f"{source}: no ratings (the file is empty)")
    values = pd.to_numeric(df[column], errors="coerce")
    bad = values.isna() & df[column].notna() | df[column].isna()
    if bad.any():
        first = df[column][bad].tolist()[0]
        what = "an empty rating" if pd.isna(first) else f"a non-numeric rating {first!r}"
        raise DataError(
            f"{source}: column {column!r} has {what} "
            f"(row {int(np.flatnonzero(bad.to_numpy())[0]) + 1}); ratings must be numbers"
        )
    check_finite(values, source, column, "rating")
    if bounds is not None:
        lo, hi = bounds
        out = (values < lo) | (values > hi)
        if out.any():
            first = values[out].tolist()[0]
            raise DataError(
                f"{source}: column {column!r} has rating {first!r} outside [{lo}, {hi}] "
                f"(row {int(np.flatnonzero(out.to_numpy())[0]) + 1})"
            )
    return values.astype("float32")


#: the environment variable naming the folder that holds the data sets (``ml-100k/``, ``rossmann/``...)
DATA_DIR_ENV = "EMBEDLAB_DATA_DIR"


def locate_data_dir(
    given: str | Path | None,
    subdir: str | None = None,
    files: tuple[str, ...] = (),
    env: Mapping[str, str] | None = None,
) -> Path | None:
    """The one rule for a dataset's data folder (every command with ``--data-dir``, the
    Python API, the demo): ``given`` (``--data-dir``) when set, else ``EMBEDLAB_DATA_DIR``;
    either may be the data folder itself or the folder holding ``subdir`` (``ml-100k/``).

    A given folder is used as it is unless it holds ``subdir`` and is not itself the data
    (``files`` absent). ``EMBEDLAB_DATA_DIR`` is used only where it holds this data (``subdir``
    with ``files``, or ``files`` itself); None otherwise (the loader's default: its download,
    or its "give --data-dir" error)."""

    def holds(folder: Path) -> bool:
        return folder.is_dir() and all((folder / f).is_file() for f in files)

    if given is not None and str(given) != "":
        folder = Path(given)
        if subdir and (folder / subdir).is_dir() and not (files and holds(folder)):
            return folder / subdir
        return folder
    root = (os.environ if env is None else env).get(DATA_DIR_ENV)
    if not root:
        return None
    candidates = ([Path(root) / subdir] if subdir else []) + ([Path(root)] if files else [])
    return next((c.resolve() for c in candidates if holds(c)), None)


def require_dir(path: str | Path | None, what: str, option: str = "--data-dir") -> Path:
    """``path`` as a Path when it is a folder; else a one-line UsageError (not given) or
    DataError (missing) naming ``what`` and the ``option`` that sets it."""
    if path is None:
        raise UsageError(f"{what}: give the data folder with {option}")
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"{what}: folder {str(p)!r} does not exist (check {option})")
    return p


def require_file(folder: Path, name: str, what: str) -> Path:
    """``folder / name`` when it is a file; else a one-line DataError naming it and ``what``."""
    p = folder / name
    if not p.is_file():
        raise DataError(
            f"{what}: required file {str(p)!r} is missing; the folder must be laid out like the official archive"
        )
    return p


def entity_table_of(ds: Dataset, role: str) -> str | None:
    """The name of the ``ds.entities`` table that annotates ``role`` (``"user"``, ``"item"``),
    or None when it has none. In order: ``ds.entity_tables[role]`` (an error when that table
    does not exist), the table named ``role``, the table named after the role's column
    (``ds.roles[role]``, e.g. ``customer_id``).

    Example::

        ds = Dataset("shop", "collab", train, None,
                     roles={"user": "customer_id", "item": "sku", "rating": "stars"},
                     entities={"customer": customers, "product": products},
                     entity_tables={"user": "customer", "item": "product"})
        entity_table_of(ds, "item")  # 'product'
    """
    declared = (ds.entity_tables or {}).get(role)
    if declared is not None:
        if declared not in ds.entities:
            raise DataError(
                f"dataset {ds.name!r}: entity_tables says the {role} table is {declared!r}, but "
                f"entities holds only: {', '.join(map(repr, ds.entities)) or '(none)'}"
            )
        return declared
    if role in ds.entities:
        return role
    column = ds.roles.get(role)
    if isinstance(column, str) and column in ds.entities:
        return column
    return None


def check_entity_tables(ds: Dataset, roles: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{role: entity table name}`` for the roles a trainer uses, checked so that no label or
    metadata is silently dropped: a table of ``ds.entities`` that no role takes is a
    :class:`DataError` saying how to declare it, and so is a table whose keys match none of
    its column's values (keys of another type: ``"17"`` against ``17``).

    Example (what the collab trainer does before training)::

        tables = check_entity_tables(ds, ("user", "item"))  # {'user': 'customer', 'item': 'product'}
    """
    found = {role: name for role in roles if (name := entity_table_of(ds, role)) is not None}
    unused = [name for name in ds.entities if name not in found.values()]
    if unused:
        free = [r for r in roles if r not in found]
        hint = (
            f"declare Dataset(entity_tables={{{free[0]!r}: {unused[0]!r}}})"
            if free
            else "remove it, or declare which role it annotates in Dataset.entity_tables"
        )
        raise DataError(
            f"dataset {ds.name!r}: entity table {unused[0]!r} annotates none of the roles "
            f"{', '.join(roles)}, so its labels and metadata would be dropped; name it after "
            f"its role or its column, or {hint}"
        )
    for role, name in found.items():
        column, table = ds.roles.get(role), ds.entities[name]
        twice = [str(c) for c in pd.Index(table.columns)[pd.Index(table.columns).duplicated()]]
        if twice:  # checked before training: a run with two same-named columns cannot be saved
            raise DataError(
                f"dataset {ds.name!r}: entity table {name!r} ({role}) has two columns named "
                f"{twice[0]!r}; rename one of them"
            )
        if not isinstance(column, str) or column not in ds.train or not len(table) or not len(ds.train):
            continue
        if not table.index.isin(ds.train[column].unique()).any():
            raise DataError(
                f"dataset {ds.name!r}: no key of entity table {name!r} ({role}) is a value of "
                f"column {column!r} (index e.g. {table.index[0]!r} of type {table.index.dtype}, "
                f"column e.g. {ds.train[column].iloc[0]!r} of type {ds.train[column].dtype}); "
                f"index the table by the same keys, of the same type"
            )
    return found


def collab_entity_stats(ratings: pd.DataFrame, key: str, rating: str) -> pd.DataFrame:
    """Per-entity ``count`` and ``mean_rating`` from the given ratings."""
    grouped = ratings.groupby(key, sort=True)[rating]
    return pd.DataFrame({"count": grouped.size(), "mean_rating": grouped.mean()})


def remember_options(dataset: Dataset, options: dict[str, Any]) -> Dataset:
    """Record the loader options in ``dataset.info["options"]`` (run.json's ``dataset_info``)
    unless the loader recorded its own, so an analysis can reload the same data through the
    registry (finetune, transfer; ``predict`` reads them too). Paths are made absolute."""
    if not isinstance(dataset.info.get("options"), dict) or not dataset.info["options"]:
        clean = {}
        for k, v in options.items():
            if isinstance(v, Path):
                v = str(v.resolve())
            elif isinstance(v, tuple):
                v = list(v)
            clean[k] = v
        dataset.info["options"] = clean
    return dataset


# ---------------------------------------------------------------- loader-level shards (torchrun)


def shard_positions(n: int, seed: int, rank: int, world: int) -> np.ndarray:
    """Positions (ascending) of rank ``rank``'s shard of ``n`` training rows: ``[rank::world]``
    of a seeded permutation (shuffled first, so a file sorted by user or time does not give
    each rank a biased slice). The one rule behind both ``--shard-data`` paths: the trainer's
    (:func:`embedlab.training.distributed.shard_rows`) and the loaders' (:func:`read_sharded`)."""
    import torch

    g = torch.Generator().manual_seed(int(seed) + 7919)
    return np.sort(torch.randperm(int(n), generator=g)[int(rank) :: int(world)].numpy())


@dataclass(frozen=True)
class RowShard:
    """This process's share of the training rows under ``torchrun ... --shard-data``.

    Passed as ``shard=`` to a loader whose ``load`` takes that parameter (the command line
    does, see :func:`embedlab.training.distributed.loader_shard`); the loader keeps every validation
    row and only this rank's training rows (:func:`read_sharded`) and says so in
    ``Dataset.info["shard"]``, so the trainer does not shard again.
    """

    rank: int
    world: int
    seed: int

    def describe(self) -> dict[str, int]:
        return {"rank": self.rank, "world": self.world, "seed": self.seed}


def read_sharded(
    chunks: Callable[[list[str] | None], Any],
    shard: RowShard,
    split: str,
    valid_pct: float,
    seed: int,
    timestamp: str | None = None,
    time_cut: Any = 0.5,
) -> tuple[pd.DataFrame, pd.DataFrame, dict, dict]:
    """Read ratings chunk by chunk, keeping the validation rows and this rank's training shard.

    ``chunks(columns)`` yields the file's rows in order as DataFrames with the final column
    names and dtypes (``columns``: only those are needed; None: all). Two passes:

    1. the row count, plus the timestamp column for the time splits: the split is decided by
       :func:`split_collab` itself on this skeleton (row number, timestamp), so it is exactly
       the single-process split;
    2. every chunk again, keeping the validation rows (every rank holds all of them; the
       DistributedLearner validates its slice and gathers the predictions) and the training
       rows of this rank's shard (:func:`shard_positions` over the training rows, the same
       rows and order the trainer-level shard would keep).

    Peak memory: the kept rows, one chunk, and the skeleton (4 bytes a row, +8 for a time
    split's timestamps). Returns ``(train, valid, split_info, shard_info)``.
    """
    timed = split != "random"
    n, stamps = 0, []
    for chunk in chunks([timestamp] if timed and timestamp else None):
        n += len(chunk)
        if timed and timestamp:
            stamps.append(chunk[timestamp].to_numpy())
    skeleton = pd.DataFrame({"_row": np.arange(n, dtype=np.int64 if n >= 2**31 else np.int32)})
    if stamps:
        skeleton[timestamp] = np.concatenate(stamps)
    del stamps
    tr, va, split_info = split_collab(skeleton, split, valid_pct, seed, timestamp if timed else None, time_cut)
    train_rows, valid_rows = tr["_row"].to_numpy(), va["_row"].to_numpy()
    del skeleton, tr, va
    mine = train_rows[shard_positions(len(train_rows), shard.seed, shard.rank, shard.world)]
    is_valid = np.zeros(n, dtype=bool)
    is_valid[valid_rows] = True
    keep = is_valid.copy()
    keep[mine] = True
    trains, valids, start, stop = [], [], 0, 0
    for chunk in chunks(None):
        stop = start + len(chunk)
        if stop > n:
            break
        sel = keep[start:stop]
        part = chunk[sel]
        v = is_valid[start:stop][sel]
        trains.append(part[~v])
        valids.append(part[v])
        start = stop
    if start != n or stop != n:
        raise DataError(f"the ratings changed while being read ({n:,} rows, then {stop:,}); read them again")
    train = pd.concat(trains, ignore_index=True) if trains else pd.DataFrame()
    valid = pd.concat(valids, ignore_index=True) if valids else pd.DataFrame()
    info = {
        **shard.describe(),
        "rows": int(n),
        "train_rows": int(len(train_rows)),
        "valid_rows": int(len(valid_rows)),
        "shard_train_rows": int(len(mine)),
    }
    return train, valid, split_info, info
