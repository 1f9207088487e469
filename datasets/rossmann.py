"""Rossmann Store Sales (Kaggle, 2015) with the external data the strong public solutions used.

Reads the competition files exactly as Kaggle ships them (read in
:mod:`embedlab_datasets.rossmann_files`: ``train.csv``, ``test.csv``, ``store.csv``) plus
``store_states.csv`` (required), and, when present, the per-state weather files in
``weather/`` and the Google Trends files in ``googletrend/`` (recorded as missing otherwise).
Feature preparation follows Guo & Berkhahn (2016) and fast.ai's lesson 6, all of it vectorised:

* date parts (year, month, ISO week, day, day of week, day of year, month/quarter/year start
  and end);
* competition-open months and Promo2 weeks from ``store.csv`` (fast.ai's clipping), whether
  the store's Promo2 runs this month;
* "elapsed" features per store: days since the last and until the next state holiday, school
  holiday, promo and (non-holiday, non-Sunday) closure, and how many of each fall in the 7
  days before and after. They are computed on a store x day grid over train and test
  together, so the last training days see the holidays and promos announced for the test
  period; days a store is missing from the files take their state's holidays and the day's
  promo;
* weather (by state and date) and Google Trends (by state and week, plus Germany's).

Training rows are the open days with sales (``Open == 1 and Sales > 0``: the others score
zero under RMSPE); the target is log sales. Validation: the last 48 days of train
(2015-06-14 .. 2015-07-31, the length of Kaggle's test period) by default; ``fastai`` cuts by
row count as fast.ai's notebook did; ``time`` holds out the latest share of days, ``random``
random rows, ``none`` nothing (final training before a submission).

Entity annotations: State (names, capital coordinates from ``germany_states.csv``), Store
(type, assortment, state, competition distance), the calendar tables (cycle order and length)
and readable labels for the small tables.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.data import Dataset, DatasetSpec
from embedlab.errors import UsageError

from embedlab_datasets.rossmann_files import (  # noqa: F401 - their old import path (rossmann's names)
    MONTH_ABBR,
    NAME,
    STATE_HOLIDAYS,
    STORE_COLUMNS,
    TEST_COLUMNS,
    TRAIN_COLUMNS,
    WEATHER_COLUMNS,
    RawRossmann,
    germany_states,
    parse_stores,
    read_raw,
)
from embedlab_datasets.table_csv import add_date_parts, calendar_entity, split_last_days, split_random, split_time_pct

ELAPSED_FIELDS = ["StateHoliday", "SchoolHoliday", "Promo", "Closed"]
ELAPSED_CAP = 60  # days; "none within 60 days" is all a model needs to know
ASSORTMENTS = {"a": "basic", "b": "extra", "c": "extended"}
SPLITS = ("last-days", "fastai", "time", "random", "none", "time-before", "time-after")

CATEGORICAL = [
    "Store",
    "DayOfWeek",
    "Year",
    "Month",
    "Day",
    "Week",
    "StateHoliday",
    "CompetitionMonthsOpen",
    "Promo2Weeks",
    "Promo2Active",
    "StoreType",
    "Assortment",
    "PromoInterval",
    "CompetitionOpenSinceYear",
    "Promo2SinceYear",
    "State",
    "Events",
    "Promo_fw",
    "Promo_bw",
    "StateHoliday_fw",
    "StateHoliday_bw",
    "SchoolHoliday_fw",
    "SchoolHoliday_bw",
    "Closed_fw",
    "Closed_bw",
]
CONTINUOUS = [
    "CompetitionDistance",
    *WEATHER_COLUMNS,
    "trend",
    "trend_DE",
    "AfterStateHoliday",
    "BeforeStateHoliday",
    "AfterSchoolHoliday",
    "BeforeSchoolHoliday",
    "AfterPromo",
    "BeforePromo",
    "AfterClosed",
    "BeforeClosed",
    "Promo",
    "SchoolHoliday",
]
#: Guo & Berkhahn (2016), section 4 / Table 1: the paper's 7 features and their embedding sizes,
#: the column set (``Dataset.column_sets["guo2016"]``) the tabular trainer's ``--preset guo2016``
#: trains on. Order matters: it is the model's input order.
GUO2016_COLUMNS: dict[str, Any] = {
    "categorical": ["Store", "DayOfWeek", "Day", "Month", "Year", "Promo", "State"],
    "continuous": [],
    "emb_sizes": {"Store": 10, "DayOfWeek": 6, "Day": 10, "Month": 6, "Year": 2, "Promo": 1, "State": 6},
}


# ---------------------------------------------------------------------------- features
def _iso_week_monday(year: pd.Series, week: pd.Series) -> pd.Series:
    """Monday of ISO week ``week`` of ``year`` (vectorised; NaN where either is NaN)."""
    ok = year.notna() & week.notna()
    y = year.where(ok, 2000).astype("int64")
    jan4 = pd.to_datetime(pd.DataFrame({"year": y, "month": 1, "day": 4}))
    monday1 = jan4 - pd.to_timedelta(jan4.dt.day_of_week, unit="D")
    out = monday1 + pd.to_timedelta((week.where(ok, 1).astype("int64") - 1) * 7, unit="D")
    return out.where(ok)


def _elapsed(frame: pd.DataFrame, state_codes: pd.Series, fill: dict[str, str]) -> dict[str, np.ndarray]:
    """Days since/until the last/next event and 7-day counts, per store, on a store x day grid.

    ``fill`` says how a (store, day) absent from the files is filled for each field: ``"state"``
    (the state's value that day: holidays), ``"day"`` (the day's majority: promo) or ``"zero"``.
    """
    store_codes, store_index = pd.factorize(frame["Store"], sort=True)
    day0 = frame["Date"].min()
    day = ((frame["Date"] - day0).dt.days).to_numpy()
    n_stores, n_days = len(store_index), int(day.max()) + 1
    known = np.zeros((n_stores, n_days), dtype=bool)
    known[store_codes, day] = True
    state_of_store, _ = pd.factorize(state_codes.reindex(store_index).to_numpy())
    out: dict[str, np.ndarray] = {}
    idx = np.arange(n_days)
    for fld, how in fill.items():
        grid = np.zeros((n_stores, n_days), dtype=bool)
        grid[store_codes, day] = frame[fld].to_numpy() > 0
        if how == "state":
            member = np.zeros((state_of_store.max() + 1, n_stores), dtype=np.float32)
            member[state_of_store, np.arange(n_stores)] = 1.0
            hits = member @ (grid & known).astype(np.float32)
            seen = member @ known.astype(np.float32)
            by_state = hits > seen / 2
            grid = np.where(known, grid, by_state[state_of_store])
        elif how == "day":
            share = (grid & known).sum(0) / np.maximum(known.sum(0), 1)
            grid = np.where(known, grid, (share > 0.5)[None, :])
        big = n_days * 4
        last = np.maximum.accumulate(np.where(grid, idx, -big), axis=1)
        nxt = np.minimum.accumulate(np.where(grid, idx, big)[:, ::-1], axis=1)[:, ::-1]
        after = np.minimum(idx - last, ELAPSED_CAP)
        before = np.minimum(nxt - idx, ELAPSED_CAP)
        csum = np.concatenate([np.zeros((n_stores, 1), dtype=np.int32), np.cumsum(grid, axis=1, dtype=np.int32)], 1)
        lo = np.maximum(idx - 6, 0)
        hi = np.minimum(idx + 7, n_days)
        bw = csum[:, idx + 1] - csum[:, lo]
        fw = csum[:, hi] - csum[:, idx]
        out[f"After{fld}"] = after[store_codes, day].astype(np.float32)
        out[f"Before{fld}"] = before[store_codes, day].astype(np.float32)
        out[f"{fld}_bw"] = bw[store_codes, day].astype(np.int8)
        out[f"{fld}_fw"] = fw[store_codes, day].astype(np.int8)
    return out


def prepare_features(raw: RawRossmann) -> pd.DataFrame:
    """One frame of train and test rows (column ``part``) with every feature."""
    ref = germany_states()
    parts = [raw.train.assign(part="train")]
    if raw.test is not None:
        parts.append(raw.test.assign(part="test"))
    df = pd.concat(parts, ignore_index=True)
    df = df.sort_values(["Store", "Date"], kind="stable").reset_index(drop=True)
    # text columns as categoricals: a million-row take of arrow strings is slow
    df["StateHoliday"] = df["StateHoliday"].astype("category")
    # store facts
    store = raw.store.copy()
    store["PromoInterval"] = store["PromoInterval"].replace("", "none")
    for col in ("StoreType", "Assortment", "PromoInterval"):
        store[col] = store[col].astype("category")
    store["State"] = raw.states.reindex(store.index).astype("category")
    store = store.reindex(df["Store"].to_numpy())
    for col in ("StoreType", "Assortment", "CompetitionDistance", "Promo2", "PromoInterval", "State"):
        df[col] = store[col].to_numpy() if col in ("CompetitionDistance", "Promo2") else store[col].array
    add_date_parts(df, "Date")
    # competition open months (fast.ai: unknown = 1900, clipped to 0..24)
    comp_year = store["CompetitionOpenSinceYear"].fillna(1900).astype("int64").to_numpy()
    comp_month = store["CompetitionOpenSinceMonth"].fillna(1).astype("int64").clip(1, 12).to_numpy()
    since = pd.to_datetime(pd.DataFrame({"year": comp_year, "month": comp_month, "day": 15}))
    comp_days = (df["Date"] - since.to_numpy()).dt.days.to_numpy()
    comp_days = np.where((comp_days < 0) | (comp_year < 1990), 0, comp_days)
    df["CompetitionMonthsOpen"] = np.minimum(comp_days // 30, 24).astype(np.int16)
    df["CompetitionOpenSinceYear"] = comp_year.astype(np.int16)
    # Promo2 weeks (fast.ai: clipped to 0..25) and whether it runs this month
    p2_year = store["Promo2SinceYear"]
    p2_since = _iso_week_monday(p2_year.reset_index(drop=True), store["Promo2SinceWeek"].reset_index(drop=True))
    p2_days = (df["Date"] - p2_since.to_numpy()).dt.days
    p2_days = p2_days.where(p2_since.notna().to_numpy() & (df["Promo2"].to_numpy() == 1), 0).clip(lower=0)
    df["Promo2Weeks"] = np.minimum(p2_days.to_numpy() // 7, 25).astype(np.int16)
    df["Promo2SinceYear"] = p2_year.fillna(1900).astype("int64").to_numpy().astype(np.int16)
    intervals = df["PromoInterval"].cat.categories
    table = np.zeros((len(intervals) + 1, 13), dtype=bool)
    for i, interval in enumerate(intervals):
        for m in str(interval).split(","):
            if m in MONTH_ABBR:
                table[i, MONTH_ABBR[m]] = True
    runs = table[df["PromoInterval"].cat.codes.to_numpy(), df["Month"].to_numpy()]
    started = (df["Date"] >= p2_since.to_numpy()).to_numpy() & (df["Promo2"].to_numpy() == 1)
    df["Promo2Active"] = (runs & started).astype(np.int8)
    # elapsed features (store x day grid, train and test together)
    df["Closed"] = ((df["Open"].fillna(1) == 0) & (df["DayOfWeek"] != 7) & (df["StateHoliday"] == "0")).astype(np.int8)
    events = df[["Store", "Date"]].copy()
    events["StateHoliday"] = (df["StateHoliday"] != "0").astype(np.int8)
    events["SchoolHoliday"] = df["SchoolHoliday"]
    events["Promo"] = df["Promo"]
    events["Closed"] = df["Closed"]
    elapsed = _elapsed(
        events, raw.states, {"StateHoliday": "state", "SchoolHoliday": "state", "Promo": "day", "Closed": "zero"}
    )
    for col, values in elapsed.items():
        df[col] = values
    # weather by state and date
    state_codes = df["State"].cat.codes.to_numpy()
    day = (df["Date"] - df["Date"].min()).dt.days.to_numpy()
    if raw.weather is not None:
        # a (state, day) lookup table instead of a million-row merge
        w = raw.weather.drop_duplicates(["weather_file", "Date"])
        files = ref["weather_file"].reindex(df["State"].cat.categories).to_numpy()
        w_state = pd.Index(files).get_indexer(w["weather_file"])  # -1: a file no store's state uses
        w_day = (w["Date"] - df["Date"].min()).dt.days.to_numpy()
        keep = (w_state >= 0) & (w_day >= 0) & (w_day <= day.max())
        n_s, n_d = len(files), int(day.max()) + 1
        # several states may share a file ("HB,NI" and NI): fill every state using the file
        rows = np.full((n_s, n_d), -1, dtype=np.int64)
        for s_idx, fname in enumerate(files):
            sel = keep & (w["weather_file"].to_numpy() == fname)
            rows[s_idx, w_day[sel]] = np.flatnonzero(sel)
        pick = rows[state_codes, day]
        found = pick >= 0
        for col in WEATHER_COLUMNS:
            values = np.full(len(df), np.nan, dtype=np.float32)
            values[found] = w[col].to_numpy(dtype=np.float32)[pick[found]]
            df[col] = values
        events = pd.Categorical(w["Events"])
        codes = np.full(len(df), -1, dtype=np.int64)
        codes[found] = events.codes[pick[found]]
        df["Events"] = pd.Categorical.from_codes(codes, events.categories)
        df["Events"] = df["Events"].fillna("none") if "none" in events.categories else df["Events"]
    # Google trends by state and week (weeks run Sunday .. Saturday), and Germany's
    if raw.trends is not None:
        # weeks run Sunday .. Saturday: a (state, week) lookup table
        week_start = df["Date"] - pd.to_timedelta((df["Date"].dt.day_of_week + 1) % 7, unit="D")
        first = week_start.min()
        week = ((week_start - first).dt.days // 7).to_numpy()
        t = raw.trends.drop_duplicates(["trend_code", "week_start"])
        t_week = ((t["week_start"] - first).dt.days // 7).to_numpy()
        ok = (t_week >= 0) & (t_week <= week.max()) & ((t["week_start"] - first).dt.days % 7 == 0).to_numpy()
        codes = list(ref["trend_code"].reindex(df["State"].cat.categories).fillna("")) + ["DE"]
        table = np.full((len(codes), int(week.max()) + 1), np.nan, dtype=np.float32)
        for k, code in enumerate(codes):
            sel = ok & (t["trend_code"].to_numpy() == code)
            table[k, t_week[sel]] = t["trend"].to_numpy(dtype=np.float32)[sel]
        df["trend"] = table[state_codes, week]
        df["trend_DE"] = table[len(codes) - 1, week]
    return df


# ---------------------------------------------------------------------------- entities
def entities(df: pd.DataFrame, raw: RawRossmann) -> dict[str, pd.DataFrame]:
    """Annotations of the entities: stores, states, calendar tables, small code tables."""
    ref = germany_states()
    out: dict[str, pd.DataFrame] = {}
    store = raw.store.copy()
    state = raw.states.reindex(store.index)
    store_meta = pd.DataFrame(
        {
            "label": [f"Store {k}" for k in store.index],
            "StoreType": store["StoreType"].to_numpy(),
            "Assortment": store["Assortment"].to_numpy(),
            "State": state.to_numpy(),
            "state_name": ref["name_en"].reindex(state).to_numpy(),
            "CompetitionDistance": store["CompetitionDistance"].to_numpy(),
            "Promo2": store["Promo2"].to_numpy(),
            "PromoInterval": store["PromoInterval"].replace("", "none").to_numpy(),
        },
        index=pd.Index(store.index.astype(np.int64), name="Store"),
    )
    store_meta.attrs["color_column"] = "StoreType"
    out["Store"] = store_meta
    out["State"] = pd.DataFrame(
        {
            "label": ref["name_en"],
            "name_de": ref["name_de"],
            "capital": ref["capital"],
            "latitude": ref["latitude"],
            "longitude": ref["longitude"],
        },
        index=ref.index.rename("State"),
    )
    for col in ("DayOfWeek", "Month", "Week", "Day"):
        out[col] = calendar_entity(
            col,
            sorted(
                set(range(1, {"DayOfWeek": 7, "Month": 12, "Week": 52, "Day": 31}[col] + 1))
                | set(int(v) for v in df[col].unique())
            ),
        )
    out["StoreType"] = pd.DataFrame({"label": [f"type {t}" for t in "abcd"]}, index=pd.Index(list("abcd")))
    out["Assortment"] = pd.DataFrame({"label": list(ASSORTMENTS.values())}, index=pd.Index(list(ASSORTMENTS)))
    out["StateHoliday"] = pd.DataFrame({"label": list(STATE_HOLIDAYS.values())}, index=pd.Index(list(STATE_HOLIDAYS)))
    return out


# ---------------------------------------------------------------------------- splits
def fastai_cut(train: pd.DataFrame, n_test: int = 41088) -> pd.Timestamp:
    """fast.ai's validation start: the date of row ``n_test`` of the training rows sorted by date,
    newest first (their notebook cut by row count; every row of that date is validation)."""
    dates = np.sort(train["Date"].to_numpy())[::-1]
    return pd.Timestamp(dates[min(n_test, len(dates) - 1)])


def split(
    train: pd.DataFrame,
    how: str,
    valid_days: int,
    valid_pct: float,
    seed: int,
    n_test: int,
    time_cut: Any = "2015-01-01",
) -> tuple[pd.DataFrame, pd.DataFrame | None, dict]:
    if how in ("time-before", "time-after"):  # pretrain on one period, adapt to the next
        from embedlab.data import cut_by_time

        before, after, cut = cut_by_time(train, "Date", time_cut)
        tr, va, info = split_last_days(before if how == "time-before" else after, "Date", valid_days)
        return tr, va, {**info, "name": how, **cut}
    if how == "last-days":
        return split_last_days(train, "Date", valid_days)
    if how == "fastai":
        start = fastai_cut(train, n_test)
        is_valid = (train["Date"] >= start).to_numpy()
        return (
            train[~is_valid].reset_index(drop=True),
            train[is_valid].reset_index(drop=True),
            {
                "name": "fastai",
                "valid_start": f"{start:%Y-%m-%d}",
                "valid_end": f"{train['Date'].max():%Y-%m-%d}",
                "rows_cut": int(n_test),
            },
        )
    if how == "time":
        return split_time_pct(train, "Date", valid_pct)
    if how == "random":
        return split_random(train, valid_pct, seed)
    if how == "none":
        return train.reset_index(drop=True), None, {"name": "none"}
    raise UsageError(f"--split {how!r}: choose one of: {', '.join(SPLITS)}")


# ---------------------------------------------------------------------------- the dataset
def build_dataset(
    raw: RawRossmann,
    name: str = NAME,
    split_name: str = "last-days",
    valid_days: int = 48,
    valid_pct: float = 0.1,
    seed: int = 42,
    options: dict | None = None,
) -> Dataset:
    """Features, training rows, split, entities: a tabular Dataset from read files."""
    df = prepare_features(raw)
    is_train = (df["part"] == "train").to_numpy()
    train_all = df[is_train]
    keep = (train_all["Open"] == 1) & (train_all["Sales"] > 0)
    train = train_all[keep].drop(columns=["Id", "part"], errors="ignore").reset_index(drop=True)
    train["Sales"] = train["Sales"].astype("int64")
    test = None
    if raw.test is not None:
        test = df[~is_train].drop(columns=["Sales", "Customers", "part"]).reset_index(drop=True)
        test["Id"] = test["Id"].astype("int64")
    n_test = len(raw.test) if raw.test is not None else 41088
    tr, va, split_info = split(
        train, split_name, valid_days, valid_pct, seed, n_test, (options or {}).get("time_cut") or "2015-01-01"
    )
    cats = [c for c in CATEGORICAL if c in df.columns]
    conts = [c for c in CONTINUOUS if c in df.columns]
    info = dict(raw.info)
    info.update(
        {
            "train_rows_file": int(len(raw.train)),
            "train_rows_open_with_sales": int(len(train)),
            "test_rows": int(len(test)) if test is not None else 0,
            "stores": int(raw.train["Store"].nunique()),
            "date_range": [f"{raw.train['Date'].min():%Y-%m-%d}", f"{raw.train['Date'].max():%Y-%m-%d}"],
            "options": options or {},
        }
    )
    return Dataset(
        name=name,
        kind="tabular",
        train=tr,
        valid=va,
        roles={
            "categorical": cats,
            "continuous": conts,
            "target": "Sales",
            "target_transform": "log",
            "task": "regression",
            "date": "Date",
            "id": "Id",
            "mask": "Open",
        },
        entities=entities(df, raw),
        split=split_info,
        info=info,
        test=test,
        # every dataset built from these features (synthetic-rossmann too) has the
        # paper's columns; a deep copy, so changing a dataset's set never changes the constant
        column_sets={"guo2016": copy.deepcopy(GUO2016_COLUMNS)},
    )


OPTIONS = [
    click.Option(
        ["--data-dir"],
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder with Kaggle's train.csv, test.csv, store.csv, plus store_states.csv and "
        "optionally weather/ and googletrend/, or the folder holding rossmann/ (default: "
        "EMBEDLAB_DATA_DIR when it holds rossmann/) (Kaggle's rules forbid redistribution, so "
        "embedlab cannot download them).",
    ),
    click.Option(
        ["--split"],
        type=click.Choice(SPLITS),
        default="last-days",
        show_default=True,
        help="Validation: 'last-days' (the last --valid-days days of train; 48 = Kaggle's test "
        "period), 'fastai' (fast.ai's cut by row count, from 2015-06-19), 'time' (the latest "
        "--valid-pct of days), 'random' (--valid-pct of rows), 'none', or 'time-before' / "
        "'time-after': the days before / from --time-cut, each with its own last --valid-days "
        "held out (pretrain on 2013-2014, adapt to 2015).",
    ),
    click.Option(
        ["--valid-days"],
        type=click.IntRange(1),
        default=48,
        show_default=True,
        help="Days held out by --split last-days.",
    ),
    click.Option(
        ["--time-cut"],
        default="2015-01-01",
        show_default=True,
        help="Where --split time-before / time-after cut: a date, or a share of the rows in time order.",
    ),
    click.Option(
        ["--valid-pct"],
        type=float,
        default=0.1,
        show_default=True,
        help="Share held out by --split time (of days) and random (of rows).",
    ),
    click.Option(["--stores"], default=None, help="Use only these stores, e.g. 1-100,250 (quick experiments)."),
    click.Option(
        ["--external/--no-external"],
        default=True,
        show_default=True,
        help="Join the weather and Google Trends files when present.",
    ),
]


def load(
    data_dir: Path | None = None,
    split: str = "last-days",
    valid_days: int = 48,
    valid_pct: float = 0.1,
    stores: str | None = None,
    external: bool = True,
    seed: int = 42,
    time_cut: Any = "2015-01-01",
    **_: Any,
) -> Dataset:
    if data_dir is None:
        raise UsageError(
            "rossmann: give the data folder with --data-dir (Kaggle's files cannot be downloaded automatically)"
        )
    raw = read_raw(data_dir, parse_stores(stores), external)
    options = {
        "data_dir": str(Path(data_dir).resolve()),
        "split": split,
        "valid_days": valid_days,
        "valid_pct": valid_pct,
        "stores": stores,
        "external": external,
        "time_cut": time_cut,
    }
    return build_dataset(raw, NAME, split, valid_days, valid_pct, seed, options)


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec(
            NAME,
            "tabular",
            "Rossmann Store Sales (Kaggle 2015): 1,017,209 store-days of 1,115 stores, with "
            "weather, Google Trends and state data; log-sales regression",
            load,
            OPTIONS,
            SPLITS,
            homepage="https://www.kaggle.com/c/rossmann-store-sales (competition rules: no redistribution)",
            trainer="tabular",
            data_subdir="rossmann",
            data_files=("train.csv", "store.csv"),
        )
    )
