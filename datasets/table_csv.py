"""``table-csv``: the user's own table for the tabular (entity-embedding) trainer.

Any tabular regression (optionally on a log target) or classification::

    embedlab train table-csv --file data.csv --target Sales --log-target \\
        --cat Store,DayOfWeek --cont Temperature --date Date --valid-last-days 48 \\
        --entity-meta Store=stores.csv --out runs/mine

Every named column is checked before anything is read further, and a typo gets the list of
columns the file has. Also home of the small helpers every tabular dataset here shares: date
parts, calendar annotations (cycle order and length for DayOfWeek, Month, Week, Day) and a
fast delimited-file reader.
"""

from __future__ import annotations

import csv
import difflib
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.data import Dataset, DatasetSpec, check_finite, random_split
from embedlab.errors import DataError, UsageError

WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
#: calendar column -> (cycle length, first key); keys run first .. first + length - 1
CALENDAR = {"DayOfWeek": (7, 1), "Month": (12, 1), "Week": (52, 1), "Day": (31, 1)}


# ---------------------------------------------------------------------------- shared helpers
def read_table(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """A CSV/TSV (delimiter sniffed from the first lines, read by pandas' C parser) or Parquet
    file, with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        with open(path, newline="", encoding=kwargs.get("encoding", "utf-8"), errors="replace") as fh:
            head = fh.read(65536)
        if not head.strip():
            raise DataError(f"{path}: the file is empty")
        try:
            sep = csv.Sniffer().sniff(head.splitlines()[0] if head.splitlines() else head, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
        return pd.read_csv(path, sep=sep, low_memory=False, **kwargs)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except Exception as exc:  # noqa: BLE001 - any parser failure is a user-data problem
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot be read ({first})") from None


def require_columns_like(df: pd.DataFrame, columns: list[str], source: str, option: str = "") -> None:
    """A DataError for the first missing column, with close matches and the full column list."""
    have = [str(c) for c in df.columns]
    for col in columns:
        if col not in df.columns:
            close = difflib.get_close_matches(col, have, n=3, cutoff=0.6)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
            raise DataError(
                f"{source}: column {col!r}{' given to ' + option if option else ''} not "
                f"found{hint}; the columns are: {', '.join(have)}"
            )


def parse_dates(values: pd.Series, source: str, column: str, fmt: str | None = None) -> pd.Series:
    """Dates as datetime64; the first unparseable value is a DataError naming file and row."""
    parsed = pd.to_datetime(values, format=fmt, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{source}: column {column!r} has a value that is not a date"
            f"{' (' + fmt + ')' if fmt else ''}: {values.iloc[i]!r} (data row {i + 1})"
        )
    return parsed


def add_date_parts(df: pd.DataFrame, column: str = "Date", prefix: str = "") -> pd.DataFrame:
    """fastai's ``add_datepart``, vectorised: Year, Month, Week (ISO), Day, DayOfWeek (1 = Monday,
    as Rossmann), Dayofyear, month/quarter/year start and end flags. Adds columns in place."""
    d = df[column].dt
    df[f"{prefix}Year"] = d.year.astype("int16")
    df[f"{prefix}Month"] = d.month.astype("int8")
    df[f"{prefix}Week"] = d.isocalendar().week.astype("int8").to_numpy()
    df[f"{prefix}Day"] = d.day.astype("int8")
    if f"{prefix}DayOfWeek" not in df:
        df[f"{prefix}DayOfWeek"] = (d.day_of_week + 1).astype("int8")
    df[f"{prefix}Dayofyear"] = d.day_of_year.astype("int16")
    for name in ("month_end", "month_start", "quarter_end", "quarter_start", "year_end", "year_start"):
        df[f"{prefix}Is_{name}"] = getattr(d, f"is_{name}").astype("int8")
    return df


def calendar_entity(column: str, keys: list[int] | None = None) -> pd.DataFrame:
    """Entity annotations of a calendar column: readable labels, ``cycle_order`` (0..L-1) and
    the table attribute ``cycle_length`` L, so the cyclic analysis finds the table."""
    length, first = CALENDAR[column]
    keys = list(range(first, first + length)) if keys is None else [int(k) for k in keys]
    if column == "DayOfWeek":
        labels = [WEEKDAYS[(k - 1) % 7] for k in keys]
    elif column == "Month":
        labels = [MONTHS[(k - 1) % 12] for k in keys]
    elif column == "Week":
        labels = [f"W{k:02d}" for k in keys]
    else:
        labels = [str(k) for k in keys]
    order = [float(k - first) if 0 <= k - first < length else np.nan for k in keys]
    frame = pd.DataFrame(
        {"label": labels, "cycle_order": order}, index=pd.Index(np.asarray(keys, dtype=np.int64), name=column)
    )
    frame.attrs["cycle_length"] = length
    return frame


def calendar_entities(df: pd.DataFrame, columns: list[str]) -> dict[str, pd.DataFrame]:
    """Calendar annotations for those of ``columns`` named DayOfWeek, Month, Week or Day whose
    values are whole numbers in the calendar's range."""
    out = {}
    for col in columns:
        if col not in CALENDAR or col not in df:
            continue
        values = pd.to_numeric(df[col], errors="coerce").dropna()
        length, first = CALENDAR[col]
        if (
            len(values)
            and (values == values.round()).all()
            and values.min() >= first
            and values.max() <= first + length
        ):  # ISO week 53 allowed
            keys = sorted(set(range(first, first + length)) | {int(v) for v in values.unique()})
            out[col] = calendar_entity(col, keys)
    return out


def split_last_days(df: pd.DataFrame, date_col: str, days: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Hold out the rows of the last ``days`` calendar days (the Kaggle test-period style)."""
    if days < 1:
        raise UsageError(f"--valid-last-days {days}: must be at least 1")
    last = df[date_col].max()
    start = last - pd.Timedelta(days=days - 1)
    is_valid = (df[date_col] >= start).to_numpy()
    if is_valid.all():
        raise UsageError(
            f"--valid-last-days {days} holds out every row; the data spans "
            f"{df[date_col].min():%Y-%m-%d} .. {last:%Y-%m-%d}"
        )
    info = {"name": "last-days", "days": int(days), "valid_start": f"{start:%Y-%m-%d}", "valid_end": f"{last:%Y-%m-%d}"}
    return df[~is_valid].reset_index(drop=True), df[is_valid].reset_index(drop=True), info


def split_time_pct(df: pd.DataFrame, date_col: str, valid_pct: float) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Hold out the latest ``valid_pct`` of the distinct days (Guo & Berkhahn's time-based split)."""
    if not 0.0 < valid_pct < 1.0:
        raise UsageError(f"--valid-pct must be between 0 and 1 (exclusive), got {valid_pct}")
    days = np.sort(df[date_col].dropna().unique())
    n_valid = max(1, int(round(len(days) * valid_pct)))
    start = pd.Timestamp(days[len(days) - n_valid])
    is_valid = (df[date_col] >= start).to_numpy()
    info = {
        "name": "time",
        "valid_pct": valid_pct,
        "valid_days": int(n_valid),
        "valid_start": f"{start:%Y-%m-%d}",
        "valid_end": f"{pd.Timestamp(days[-1]):%Y-%m-%d}",
    }
    return df[~is_valid].reset_index(drop=True), df[is_valid].reset_index(drop=True), info


def split_random(df: pd.DataFrame, valid_pct: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    tr, va = random_split(df, valid_pct, seed)
    return tr, va, {"name": "random", "valid_pct": valid_pct, "seed": seed}


def _csv_list(text: str | None) -> list[str]:
    return [c.strip() for c in str(text).split(",") if c.strip()] if text else []


# ---------------------------------------------------------------------------- table-csv
OPTIONS = [
    click.Option(
        ["--file"],
        type=click.Path(path_type=Path),
        required=True,
        help="The table: .csv/.tsv (delimiter sniffed) or .parquet, one row per observation.",
    ),
    click.Option(["--target"], required=True, help="Column to predict."),
    click.Option(
        ["--task"],
        type=click.Choice(["regress", "classify"]),
        default="regress",
        show_default=True,
        help="'regress' (MSE loss) or 'classify' (cross-entropy; accuracy and log-loss).",
    ),
    click.Option(
        ["--log-target"],
        is_flag=True,
        help="Regress log(target) and report RMSPE/MAPE on the target (positive targets).",
    ),
    click.Option(["--cat"], default=None, help="Categorical columns (each gets an embedding), comma-separated."),
    click.Option(["--cont"], default=None, help="Continuous columns, comma-separated."),
    click.Option(["--date", "date_col"], default=None, help="Date column (for --valid-last-days and --split time)."),
    click.Option(
        ["--valid-last-days"],
        type=click.IntRange(1),
        default=None,
        help="Validate on the rows of the last N days of --date.",
    ),
    click.Option(
        ["--split"],
        type=click.Choice(["random", "time"]),
        default="random",
        show_default=True,
        help="Without --valid-last-days: 'random' (--valid-pct of rows) or 'time' (the latest "
        "--valid-pct of days; needs --date).",
    ),
    click.Option(["--valid-pct"], type=float, default=0.1, show_default=True, help="Share held out."),
    click.Option(["--id", "id_col"], default=None, help="Id column copied into `embedlab predict` output."),
    click.Option(
        ["--entity-meta"],
        multiple=True,
        help="COLUMN=FILE: annotations of a categorical column's entities (a CSV keyed by a "
        "column named COLUMN, else its first column; a 'label' column is what a person "
        "reads; latitude/longitude, cycle_order... pass through). Repeatable.",
    ),
]


def _entity_meta(spec: str, cats: list[str], frame: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    col, sep, file = spec.partition("=")
    col = col.strip()
    if not sep or not file.strip():
        raise UsageError(f"--entity-meta {spec!r}: write COLUMN=FILE, e.g. --entity-meta Store=stores.csv")
    if col not in cats:
        raise UsageError(f"--entity-meta {spec!r}: {col!r} is not one of the --cat columns ({', '.join(cats)})")
    path = Path(file.strip())
    meta = read_table(path)
    key = col if col in meta.columns else meta.columns[0]
    if meta[key].duplicated().any():
        raise DataError(f"{path}: key {meta[key][meta[key].duplicated()].iloc[0]!r} appears twice in column {key!r}")
    meta = meta.set_index(key)
    if pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_numeric_dtype(meta.index):
        raise DataError(f"{path}: key column {key!r} does not hold numbers like column {col!r} of the table")
    return col, meta


def load(
    file: Path,
    target: str,
    task: str = "regress",
    log_target: bool = False,
    cat: str | None = None,
    cont: str | None = None,
    date_col: str | None = None,
    valid_last_days: int | None = None,
    split: str = "random",
    valid_pct: float = 0.1,
    id_col: str | None = None,
    entity_meta: tuple[str, ...] = (),
    seed: int = 42,
    **_: Any,
) -> Dataset:
    cats, conts = _csv_list(cat), _csv_list(cont)
    if not cats and not conts:
        raise UsageError("give the model's columns with --cat and/or --cont")
    both = sorted(set(cats) & set(conts))
    if both:
        raise UsageError(f"column {both[0]!r} is given to both --cat and --cont")
    if target in cats or target in conts:
        raise UsageError(f"the target {target!r} cannot also be an input column")
    if log_target and task == "classify":
        raise UsageError("--log-target is for regression, not --task classify")
    if (valid_last_days or split == "time") and not date_col:
        raise UsageError("--valid-last-days and --split time need --date COLUMN")
    df = read_table(Path(file))
    source = str(file)
    require_columns_like(df, [target], source, "--target")
    require_columns_like(df, cats, source, "--cat")
    require_columns_like(df, conts, source, "--cont")
    if date_col:
        require_columns_like(df, [date_col], source, "--date")
    if id_col:
        require_columns_like(df, [id_col], source, "--id")
    if len(df) == 0:
        raise DataError(f"{source}: the file has a header but no rows")
    for col in conts:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"{source}: continuous column {col!r} has a non-numeric value "
                f"{df[col].iloc[i]!r} (data row {i + 1}); use --cat for it or clean it"
            )
        check_finite(df[col], source, col, "value")  # inf, -inf, 1e30: the loss would blow up
    if df[target].isna().any():
        i = int(np.flatnonzero(df[target].isna().to_numpy())[0])
        raise DataError(f"{source}: target column {target!r} is empty in data row {i + 1}")
    if task == "regress":
        y = pd.to_numeric(df[target], errors="coerce")
        if y.isna().any():
            i = int(np.flatnonzero(y.isna().to_numpy())[0])
            raise DataError(
                f"{source}: target column {target!r} has a non-numeric value "
                f"{df[target].iloc[i]!r} (data row {i + 1}); use --task classify for classes"
            )
        check_finite(df[target], source, target, "target")
        if log_target and (y <= 0).any():
            i = int(np.flatnonzero((y <= 0).to_numpy())[0])
            raise DataError(
                f"{source}: --log-target needs positive targets; column {target!r} has "
                f"{df[target].iloc[i]!r} in data row {i + 1} (drop such rows first)"
            )
    elif df[target].nunique() < 2:
        raise DataError(f"{source}: --task classify needs at least two classes in column {target!r}")
    entities = calendar_entities(df, cats)
    for spec in entity_meta:
        col, meta = _entity_meta(spec, cats, df)
        if col in entities:
            meta = entities[col].join(meta.drop(columns=["cycle_order"], errors="ignore"), how="outer", rsuffix="_file")
        entities[col] = meta
    if date_col:
        df[date_col] = parse_dates(df[date_col], source, date_col)
    if valid_last_days:
        train, valid, split_info = split_last_days(df, date_col, valid_last_days)
    elif split == "time":
        train, valid, split_info = split_time_pct(df, date_col, valid_pct)
    else:
        train, valid, split_info = split_random(df, valid_pct, seed)
    roles = {
        "categorical": cats,
        "continuous": conts,
        "target": target,
        "target_transform": "log" if log_target else None,
        "task": "classify" if task == "classify" else "regression",
        "date": date_col,
        "id": id_col,
    }
    return Dataset(
        name="table-csv",
        kind="tabular",
        train=train,
        valid=valid,
        roles=roles,
        entities=entities,
        split=split_info,
        info={
            "file": str(file),
            "rows": int(len(df)),
            "options": {
                "file": str(file),
                "target": target,
                "task": task,
                "log_target": log_target,
                "cat": cat,
                "cont": cont,
                "date_col": date_col,
                "valid_last_days": valid_last_days,
                "split": split,
                "valid_pct": valid_pct,
                "id_col": id_col,
                "entity_meta": list(entity_meta),
            },
        },
    )


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec(
            "table-csv",
            "tabular",
            "Your own table (CSV/Parquet): regression or classification with entity embeddings",
            load,
            OPTIONS,
            trainer="tabular",
        )
    )
