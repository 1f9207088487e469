"""Rossmann's files read and checked (:mod:`embedlab_datasets.rossmann` prepares the features
and builds the dataset; it re-exports these names): the competition files exactly as Kaggle
ships them (``train.csv``, ``test.csv``, ``store.csv``), ``store_states.csv`` (required), the
per-state weather files in ``weather/`` and the Google Trends files in ``googletrend/`` when
present (recorded as missing otherwise), and the states' reference table. A bad file is a
one-line error naming the file, the column and the value."""

from __future__ import annotations

import importlib.resources
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data import require_dir, require_file
from embedlab.errors import DataError, UsageError

from embedlab_datasets.table_csv import parse_dates

NAME = "rossmann"
TRAIN_COLUMNS = ["Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "Promo", "StateHoliday", "SchoolHoliday"]
TEST_COLUMNS = ["Id", "Store", "DayOfWeek", "Date", "Open", "Promo", "StateHoliday", "SchoolHoliday"]
STORE_COLUMNS = [
    "Store",
    "StoreType",
    "Assortment",
    "CompetitionDistance",
    "CompetitionOpenSinceMonth",
    "CompetitionOpenSinceYear",
    "Promo2",
    "Promo2SinceWeek",
    "Promo2SinceYear",
    "PromoInterval",
]
WEATHER_COLUMNS = [
    "Max_TemperatureC",
    "Mean_TemperatureC",
    "Min_TemperatureC",
    "Max_Humidity",
    "Mean_Humidity",
    "Min_Humidity",
    "Max_Wind_SpeedKm_h",
    "Mean_Wind_SpeedKm_h",
    "CloudCover",
    "Precipitationmm",
]
MONTH_ABBR = {
    "Jan": 1,
    "Feb": 2,
    "Mar": 3,
    "Apr": 4,
    "May": 5,
    "Jun": 6,
    "Jul": 7,
    "Aug": 8,
    "Sep": 9,
    "Sept": 9,
    "Oct": 10,
    "Nov": 11,
    "Dec": 12,
}
STATE_HOLIDAYS = {"0": "none", "a": "public holiday", "b": "Easter", "c": "Christmas"}


# ---------------------------------------------------------------------------- reference data
def germany_states() -> pd.DataFrame:
    """The 16 states and ``HB,NI`` (codes, names, capital coordinates, weather/trend files)."""
    ref = importlib.resources.files("embedlab_datasets").joinpath("germany_states.csv")
    with ref.open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(
            fh,
            comment="#",
            dtype={"trend_code": str},
            keep_default_na=False,
            na_values={"latitude": [""], "longitude": [""]},
        )
    return frame.set_index("code")


# ---------------------------------------------------------------------------- reading
@dataclass
class RawRossmann:
    """The files as read and checked, before feature preparation."""

    train: pd.DataFrame
    test: pd.DataFrame | None
    store: pd.DataFrame
    states: pd.DataFrame
    weather: pd.DataFrame | None = None
    trends: pd.DataFrame | None = None
    info: dict[str, Any] = field(default_factory=dict)


def _read_csv(path: Path, columns: list[str], dtypes: dict[str, str], **kwargs: Any) -> pd.DataFrame:
    """Read with fast dtypes; on failure, re-read as text to name the bad column and value."""
    try:
        df = pd.read_csv(path, dtype=dtypes, **kwargs)
        fast = True
    except (ValueError, TypeError, OverflowError):
        df = pd.read_csv(path, dtype=str, keep_default_na=False, **kwargs)
        fast = False
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except pd.errors.ParserError as exc:
        raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(
            f"{path}: column {missing[0]!r} not found; the columns are: "
            f"{', '.join(map(str, df.columns))} (expected Kaggle's: {', '.join(columns)})"
        )
    if not fast:
        for col, dtype in dtypes.items():
            if col in df and dtype not in ("str", "string", "object"):
                text = df[col].astype(str).str.strip()
                values = pd.to_numeric(text.where(text != "", None), errors="coerce")
                bad = values.isna() & (text != "") | (values.isna() & dtype.startswith("int"))
                if bad.any():
                    i = int(np.flatnonzero(bad.to_numpy())[0])
                    raise DataError(
                        f"{path}: column {col!r} has a value that is not a number: "
                        f"{df[col].iloc[i]!r} (data row {i + 1})"
                    )
        raise DataError(
            f"{path}: cannot be read with the expected column types "
            f"({', '.join(f'{k}: {v}' for k, v in dtypes.items())})"
        )
    return df


def _check_binary(df: pd.DataFrame, col: str, path: Path, allow_na: bool = False) -> None:
    values = df[col]
    bad = ~values.isin([0, 1]) & ~(values.isna() if allow_na else False)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"{path}: column {col!r} must be 0 or 1, found {values.iloc[i]!r} (data row {i + 1})")


def parse_stores(spec: str | None) -> set[int] | None:
    """``"1-50,77"`` -> {1..50, 77}; None -> every store."""
    if spec is None or str(spec).strip() in ("", "all"):
        return None
    out: set[int] = set()
    for part in str(spec).split(","):
        part = part.strip()
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m:
            raise UsageError(f"--stores {spec!r}: write store ids and ranges, e.g. 1-50,77")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        if hi < lo:
            raise UsageError(f"--stores {spec!r}: range {part!r} runs backwards")
        out.update(range(lo, hi + 1))
    return out


def _read_sales(path: Path, columns: list[str], stores: set[int] | None, has_sales: bool) -> pd.DataFrame:
    dtypes = {
        "Store": "int32",
        "DayOfWeek": "int8",
        "Promo": "int8",
        "StateHoliday": "str",
        "SchoolHoliday": "int8",
        "Date": "str",
    }
    if has_sales:
        dtypes.update({"Sales": "int64", "Customers": "int64", "Open": "int8"})
    else:
        dtypes.update({"Id": "int64", "Open": "float32"})  # test.csv: Open is blank in 11 rows
    df = _read_csv(path, columns, dtypes)
    df = df[columns]
    rows_in_file = len(df)
    if stores is not None:
        df = df[df["Store"].isin(stores)].reset_index(drop=True)
    df.attrs["rows_in_file"] = rows_in_file  # predict says how many of the file's rows it covers
    df["Date"] = parse_dates(df["Date"], str(path), "Date", "%Y-%m-%d")
    bad_dow = df["DayOfWeek"] != df["Date"].dt.day_of_week + 1
    if bad_dow.any():
        i = int(np.flatnonzero(bad_dow.to_numpy())[0])
        raise DataError(
            f"{path}: column 'DayOfWeek' is {int(df['DayOfWeek'].iloc[i])} on "
            f"{df['Date'].iloc[i]:%Y-%m-%d}, a {df['Date'].iloc[i]:%A} (data row {i + 1}; 1 = Monday)"
        )
    df["StateHoliday"] = df["StateHoliday"].astype(str).str.strip()
    bad = ~df["StateHoliday"].isin(list(STATE_HOLIDAYS))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: column 'StateHoliday' has {df['StateHoliday'].iloc[i]!r} (data row {i + 1}); "
            f"expected one of 0, a, b, c"
        )
    for col in ("Promo", "SchoolHoliday"):
        _check_binary(df, col, path)
    _check_binary(df, "Open", path, allow_na=not has_sales)
    if has_sales and (df["Sales"] < 0).any():
        i = int(np.flatnonzero((df["Sales"] < 0).to_numpy())[0])
        raise DataError(f"{path}: column 'Sales' has a negative value {int(df['Sales'].iloc[i])} (data row {i + 1})")
    dup = df.duplicated(["Store", "Date"])
    if dup.any():
        i = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(
            f"{path}: store {int(df['Store'].iloc[i])} appears twice on "
            f"{df['Date'].iloc[i]:%Y-%m-%d} (data row {i + 1})"
        )
    return df


def _read_store(path: Path) -> pd.DataFrame:
    dtypes = {
        "Store": "int32",
        "StoreType": "str",
        "Assortment": "str",
        "CompetitionDistance": "float64",
        "CompetitionOpenSinceMonth": "float64",
        "CompetitionOpenSinceYear": "float64",
        "Promo2": "int8",
        "Promo2SinceWeek": "float64",
        "Promo2SinceYear": "float64",
        "PromoInterval": "str",
    }
    df = _read_csv(path, STORE_COLUMNS, dtypes)[STORE_COLUMNS]
    dup = df["Store"].duplicated()
    if dup.any():
        raise DataError(f"{path}: store {int(df['Store'][dup].iloc[0])} appears twice (column 'Store')")
    df["PromoInterval"] = df["PromoInterval"].fillna("").astype(str)
    for interval in df["PromoInterval"].unique():
        unknown = [m for m in interval.split(",") if m and m not in MONTH_ABBR]
        if unknown:
            raise DataError(f"{path}: column 'PromoInterval' has unknown month {unknown[0]!r} in {interval!r}")
    return df.set_index("Store")


def _read_states(path: Path, ref: pd.DataFrame) -> pd.DataFrame:
    df = _read_csv(path, ["Store", "State"], {"Store": "int32", "State": "str"})
    df["State"] = df["State"].astype(str).str.strip()
    unknown = ~df["State"].isin(ref.index)
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise DataError(
            f"{path}: column 'State' has unknown state code {df['State'].iloc[i]!r} (store "
            f"{int(df['Store'].iloc[i])}); known codes: {', '.join(ref.index)}"
        )
    dup = df["Store"].duplicated()
    if dup.any():
        raise DataError(f"{path}: store {int(df['Store'][dup].iloc[0])} has two states (column 'Store')")
    return df.set_index("Store")["State"]


def _read_weather(folder: Path, ref: pd.DataFrame, info: dict) -> pd.DataFrame | None:
    wdir = folder / "weather"
    if not wdir.is_dir():
        info["missing_optional"].append("weather/")
        return None
    known = dict(zip(ref["weather_file"], ref["weather_file"]))
    frames = []
    for path in sorted(wdir.glob("*.csv")):
        if path.stem not in known:
            raise DataError(
                f"{path}: unknown state name {path.stem!r}; weather files are named by German "
                f"state: {', '.join(sorted(set(known)))}"
            )
        try:
            w = pd.read_csv(path, sep=";", na_values=["NA"])
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: cannot be parsed ({str(exc).splitlines()[0]})") from None
        w.columns = [str(c).strip() for c in w.columns]
        need = ["Date", *WEATHER_COLUMNS, "Events"]
        missing = [c for c in need if c not in w.columns]
        if missing:
            raise DataError(f"{path}: column {missing[0]!r} not found; the columns are: {', '.join(w.columns)}")
        w = w[need].copy()
        w["Date"] = parse_dates(w["Date"].astype(str).str.strip(), str(path), "Date", "%Y-%m-%d")
        for col in WEATHER_COLUMNS:
            values = pd.to_numeric(w[col], errors="coerce")
            bad = values.isna() & w[col].notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise DataError(
                    f"{path}: column {col!r} has a value that is not a number: {w[col].iloc[i]!r} (data row {i + 1})"
                )
            w[col] = values.astype("float32")
        w["Events"] = w["Events"].fillna("").astype(str).str.strip().replace("", "none")
        w["weather_file"] = path.stem
        frames.append(w)
        info["files"].append(f"weather/{path.name}")
    if not frames:
        info["missing_optional"].append("weather/*.csv")
        return None
    return pd.concat(frames, ignore_index=True)


def _read_trends(folder: Path, ref: pd.DataFrame, info: dict) -> pd.DataFrame | None:
    tdir = folder / "googletrend"
    if not tdir.is_dir():
        info["missing_optional"].append("googletrend/")
        return None
    codes = set(ref.index) - {"HB,NI"}
    frames = []
    for path in sorted(tdir.glob("Rossmann_DE*.csv")):
        m = re.fullmatch(r"Rossmann_DE(?:_([A-Z]{2}))?", path.stem)
        if not m or (m.group(1) and m.group(1) not in codes):
            raise DataError(
                f"{path}: unknown state in the file name; trend files are named "
                f"Rossmann_DE.csv or Rossmann_DE_XX.csv with XX one of: {', '.join(sorted(codes))}"
            )
        try:
            t = pd.read_csv(path, dtype=str)
        except pd.errors.EmptyDataError:
            raise DataError(f"{path}: the file is empty") from None
        if t.shape[1] != 2:
            raise DataError(f"{path}: expected 2 columns (week range, trend), found {t.shape[1]}")
        t.columns = ["week", "trend"]
        start = t["week"].astype(str).str.strip().str.slice(0, 10)
        start = parse_dates(start, str(path), "Woche", "%Y-%m-%d")
        trend = pd.to_numeric(t["trend"], errors="coerce")
        if trend.isna().any():
            i = int(np.flatnonzero(trend.isna().to_numpy())[0])
            raise DataError(f"{path}: trend value {t['trend'].iloc[i]!r} is not a number (data row {i + 1})")
        frames.append(
            pd.DataFrame({"trend_code": m.group(1) or "DE", "week_start": start, "trend": trend.astype("float32")})
        )
        info["files"].append(f"googletrend/{path.name}")
    if not frames:
        info["missing_optional"].append("googletrend/*.csv")
        return None
    return pd.concat(frames, ignore_index=True)


def read_raw(
    data_dir: str | Path, stores: set[int] | None = None, external: bool = True, require_test: bool = False
) -> RawRossmann:
    """Read and check the files (no features yet). Missing required files are a DataError;
    missing optional ones (test.csv, weather/, googletrend/) are recorded in ``info``."""
    folder = require_dir(data_dir, NAME)
    info: dict[str, Any] = {"folder": str(folder), "files": [], "missing_optional": []}
    ref = germany_states()
    train_path = require_file(folder, "train.csv", NAME)
    store_path = require_file(folder, "store.csv", NAME)
    states_path = require_file(folder, "store_states.csv", NAME)
    train = _read_sales(train_path, TRAIN_COLUMNS, stores, has_sales=True)
    info["files"] += ["train.csv", "store.csv", "store_states.csv"]
    test = None
    test_path = folder / "test.csv"
    if test_path.is_file():
        test = _read_sales(test_path, TEST_COLUMNS, stores, has_sales=False)
        info["files"].append("test.csv")
        info["test_rows_in_file"] = int(test.attrs.get("rows_in_file", len(test)))
    elif require_test:
        require_file(folder, "test.csv", NAME)
    else:
        info["missing_optional"].append("test.csv")
    store = _read_store(store_path)
    states = _read_states(states_path, ref)
    for frame, path in ((train, train_path), (test, test_path)):
        if frame is None:
            continue
        absent = ~frame["Store"].isin(store.index)
        if absent.any():
            i = int(np.flatnonzero(absent.to_numpy())[0])
            raise DataError(
                f"{path}: store {int(frame['Store'].iloc[i])} (column 'Store', data row {i + 1}) "
                f"is missing from {store_path}"
            )
    used = pd.Index(train["Store"].unique()).union(test["Store"].unique() if test is not None else [])
    stateless = used.difference(states.index)
    if len(stateless):
        raise DataError(
            f"{states_path}: store {int(stateless[0])} has no state (column 'State'); every "
            f"store in train.csv/test.csv needs one"
        )
    if stores is not None:
        store = store[store.index.isin(stores)]
        missing = sorted(stores - set(store.index))
        if len(store) == 0:
            raise UsageError(f"--stores: none of the requested stores is in {store_path}")
        info["stores_requested_missing"] = missing[:20]
    weather = _read_weather(folder, ref, info) if external else None
    trends = _read_trends(folder, ref, info) if external else None
    if not external:
        info["external"] = False
    return RawRossmann(train, test, store, states, weather, trends, info)
