"""``ratings-csv``: the user's own ratings, from CSV (any delimiter pandas sniffs) or Parquet."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.data import (
    TIME_CUT_SPLITS,
    Dataset,
    DatasetSpec,
    check_ratings,
    require_columns,
    split_collab,
    time_cut_option,
)
from embedlab.errors import DataError, UsageError

OPTIONS = [
    click.Option(
        ["--file"],
        type=click.Path(path_type=Path),
        required=True,
        help="Ratings file: .csv/.tsv/.txt (delimiter sniffed) or .parquet.",
    ),
    click.Option(["--user"], required=True, help="Column holding the user id."),
    click.Option(["--item"], required=True, help="Column holding the item id."),
    click.Option(["--rating"], required=True, help="Column holding the rating (a number)."),
    click.Option(["--timestamp"], default=None, help="Column holding the time (enables --split time)."),
    click.Option(
        ["--items", "items_file"],
        type=click.Path(path_type=Path),
        default=None,
        help="Optional item file; its other columns become item metadata.",
    ),
    click.Option(["--item-key"], default=None, help="Item id column in --items (default: --item)."),
    click.Option(["--item-label"], default=None, help="Column of --items a person reads (e.g. title)."),
    click.Option(
        ["--user-features"],
        type=click.Path(path_type=Path),
        default=None,
        help="Optional user file: the user id column (named as --user, else the first), every "
        "other column a side feature of the users (values joined by '|' are several: "
        "multi); the collab trainer's --features side embeds them.",
    ),
    click.Option(
        ["--item-features"],
        type=click.Path(path_type=Path),
        default=None,
        help="Optional item file, as --user-features for the items (merged with --items).",
    ),
    click.Option(
        ["--split"],
        type=click.Choice(["random", "time", *TIME_CUT_SPLITS]),
        default="random",
        show_default=True,
        help="Validation split: random, time, or time-before / time-after (--time-cut; need --timestamp).",
    ),
    click.Option(["--valid-pct"], type=float, default=0.1, show_default=True, help="Share held out."),
    time_cut_option(),
]


def read_table(path: Path) -> pd.DataFrame:
    """Read CSV (delimiter sniffed) or Parquet, with one-line errors."""
    if path.is_dir():
        raise DataError(f"{path}: is a folder; give the ratings file itself")
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        # Only empty cells are missing: "NA", "None" and "null" are ids like any other.
        return pd.read_csv(path, sep=_sniff_sep(path), keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a user-data problem
        raise DataError(
            f"{path}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None


def _sniff_sep(path: Path) -> str:
    """The delimiter of a text table, sniffed among the usual ones only (unrestricted sniffing
    splits a header such as "time:utc" on ':'); by the extension when sniffing fails."""
    import csv

    with open(path, newline="", encoding="utf-8", errors="replace") as fh:
        sample = fh.read(65536)
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return "\t" if path.suffix.lower() == ".tsv" else ","


#: rows per chunk when a torchrun rank reads only its shard (``shard=``)
CHUNK = 2_000_000


def _ratings_frame(
    df: pd.DataFrame, file: Path, user: str, item: str, rating: str, timestamp: str | None
) -> pd.DataFrame:
    """The checked user/item/rating(/timestamp) frame of the file's rows ``df``."""
    frame = pd.DataFrame({"user": df[user], "item": df[item], "rating": check_ratings(df, rating, str(file))})
    if timestamp:
        ts = df[timestamp]
        if not pd.api.types.is_numeric_dtype(ts):
            parsed = pd.to_datetime(ts, errors="coerce")
            if parsed.isna().any():
                bad = ts[parsed.isna()].iloc[0]
                raise DataError(f"{file}: column {timestamp!r} has a value that is not a time: {bad!r}")
            ts = parsed.astype("int64") // 10**9
        frame["timestamp"] = ts.to_numpy()
    for col in ("user", "item"):
        if frame[col].isna().any():
            raise DataError(f"{file}: column {user if col == 'user' else item!r} has empty ids")
    return frame


def _raw_chunks(path: Path, cols: list[str]):
    """The file's ``cols`` in chunks of :data:`CHUNK` rows, parsed as :func:`read_table` does."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK, columns=cols):
            yield batch.to_pandas()
        return
    yield from pd.read_csv(
        path, sep=_sniff_sep(path), keep_default_na=False, na_values=[""], usecols=cols, chunksize=CHUNK
    )


def _load_shard(
    shard: Any,
    file: Path,
    user: str,
    item: str,
    rating: str,
    timestamp: str | None,
    split: str,
    valid_pct: float,
    seed: int,
    time_cut: Any,
):
    """(train, valid, split info, shard info, rating range) keeping only the validation rows and
    this rank's training shard (embedlab.data.read_sharded). Ids are parsed chunk by chunk, so
    an id column must hold one kind of value (numbers, or text) throughout the file."""
    from embedlab.data import read_sharded

    cols = [user, item, rating] + ([timestamp] if timestamp else [])
    path = Path(file)
    if path.is_dir() or not path.is_file() or path.stat().st_size == 0:
        read_table(path)  # raises its one-line error
    bounds = [np.inf, -np.inf]

    def chunks(columns):
        n = 0
        try:
            for df in _raw_chunks(path, cols):
                require_columns(df, cols, str(file))
                frame = _ratings_frame(df, path, user, item, rating, timestamp)
                if columns is None:
                    bounds[0] = min(bounds[0], float(frame["rating"].min()))
                    bounds[1] = max(bounds[1], float(frame["rating"].max()))
                n += len(frame)
                yield frame
        except (DataError, ValueError, KeyError, OSError) as exc:
            # the whole-file read gives the one-line error that names the row
            load(file, user, item, rating, timestamp, split=split, valid_pct=valid_pct, seed=seed, time_cut=time_cut)
            raise DataError(
                f"{file}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
            ) from None
        if n == 0:
            raise DataError(f"{file}: no ratings (the file has a header but no rows)")

    train, valid, split_info, shard_info = read_sharded(
        chunks, shard, split, valid_pct, seed, "timestamp" if timestamp else None, time_cut
    )
    return train, valid, split_info, shard_info, (bounds[0], bounds[1])


def load(
    file: Path,
    user: str,
    item: str,
    rating: str,
    timestamp: str | None = None,
    items_file: Path | None = None,
    item_key: str | None = None,
    item_label: str | None = None,
    split: str = "random",
    valid_pct: float = 0.1,
    seed: int = 42,
    time_cut: Any = 0.5,
    shard: Any = None,
    user_features: Path | None = None,
    item_features: Path | None = None,
    **_: Any,
) -> Dataset:
    """The ratings file as a Dataset; with ``shard`` (torchrun ``--shard-data``) read in chunks,
    keeping only the validation rows and this rank's training shard."""
    if not timestamp and (split == "time" or split in TIME_CUT_SPLITS):
        raise UsageError(f"--split {split} needs --timestamp COLUMN")
    info: dict[str, Any] = {}
    if shard is not None:
        train, valid, split_info, info["shard"], (lo, hi) = _load_shard(
            shard, file, user, item, rating, timestamp, split, valid_pct, seed, time_cut
        )
        item_dtype = train["item"].dtype
    else:
        df = read_table(Path(file))
        cols = [user, item, rating] + ([timestamp] if timestamp else [])
        require_columns(df, cols, str(file))
        if len(df) == 0:
            raise DataError(f"{file}: no ratings (the file has a header but no rows)")
        frame = _ratings_frame(df, Path(file), user, item, rating, timestamp)
        del df
        item_dtype = frame["item"].dtype
        train, valid, split_info = split_collab(
            frame, split, valid_pct, seed, "timestamp" if timestamp else None, time_cut
        )
        lo, hi = float(frame["rating"].min()), float(frame["rating"].max())
    entities = {}
    if items_file is not None:
        meta = read_table(Path(items_file))
        key = item_key or item
        require_columns(meta, [key] + ([item_label] if item_label else []), str(items_file))
        if meta[key].duplicated().any():
            dup = meta[key][meta[key].duplicated()].tolist()[0]
            raise DataError(f"{items_file}: item key {dup!r} appears twice in column {key!r}")
        meta = meta.set_index(key)
        try:
            meta.index = meta.index.astype(item_dtype)
        except (TypeError, ValueError):
            raise DataError(
                f"{items_file}: column {key!r} does not match the type of {file}'s column {item!r}"
            ) from None
        if "label" in meta and item_label != "label":  # the file's own 'label' stays, under another name
            meta = meta.rename(columns={"label": "label_"})
        if item_label:
            meta = meta.rename(columns={item_label: "label"})
        entities["item"] = meta
    side: dict[str, dict[str, str]] = {}
    for role, path, col, dtype in (
        ("user", user_features, user, train["user"].dtype),
        ("item", item_features, item, item_dtype),
    ):
        if path is None:
            continue
        feats, side[role] = _side_file(Path(path), col, dtype, file)
        if role in entities:
            clash = [c for c in feats if c in entities[role]]
            if clash:
                raise DataError(f"{path}: column {clash[0]!r} is also a column of --items {items_file}")
            feats = entities[role].join(feats, how="outer")
        entities[role] = feats
    return Dataset(
        name="ratings-csv",
        kind="collab",
        train=train,
        valid=valid,
        side_features=side,
        roles={"user": "user", "item": "item", "rating": "rating", "timestamp": "timestamp" if timestamp else None},
        entities=entities,
        split=split_info,
        rating_range=(lo, hi),
        info={
            **info,
            "file": str(file),
            "columns": {"user": user, "item": item, "rating": rating, "timestamp": timestamp},
        },
    )


def _side_file(path: Path, key_col: str, dtype, ratings: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """(--user-features / --item-features table indexed by the key, {column: kind}): the key is
    the column named like the ratings' id column, else the first; every other column is a side
    feature, ``multi`` where a value holds ``|``."""
    table = read_table(path)
    key = key_col if key_col in table.columns else table.columns[0]
    if len(table.columns) < 2:
        raise DataError(f"{path}: no feature columns besides the key {key!r}")
    if table[key].duplicated().any():
        raise DataError(
            f"{path}: key {table[key][table[key].duplicated()].tolist()[0]!r} appears twice in column {key!r}"
        )
    table = table.set_index(key)
    try:
        table.index = table.index.astype(dtype)
    except (TypeError, ValueError):
        raise DataError(f"{path}: column {key!r} does not match the type of {ratings}'s ids") from None
    kinds = {
        str(c): "multi" if table[c].astype(str).str.contains("|", regex=False).any() else "category"
        for c in table.columns
    }
    return table.rename(columns=str), kinds


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec("ratings-csv", "collab", "Your own ratings: a CSV or Parquet file", load, OPTIONS, trainer="collab")
    )
