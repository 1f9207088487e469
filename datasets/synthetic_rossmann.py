"""``synthetic-rossmann``: a seeded Rossmann look-alike with planted truth, offline in seconds.

Stores in the 12 real Rossmann state codes sell ``exp(log_sales)`` a day, where::

    log_sales = 8.4 + store + state(north) + weekday + month + 0.25 * Promo
                + 0.05 * SchoolHoliday + weekly_shape(east, weekday) + noise

* ``north`` and ``east`` are the state capital's real coordinates in units of 300 km around
  Germany's centre; northern states sell more (``0.14 * north``) and the week runs
  differently from west to east (``0.12 * east * sin(weekday angle)``: eastern states sell
  more Tuesday to Thursday, less Friday to Sunday). A model must therefore keep both coordinates in the State
  embedding, so a good embedding is a 2-D image of the map, which the ``geography`` analysis
  can find (a single number per state would only be a projection of it);
* ``weekday`` is a weekly cycle peaking on Monday (``0.18 * cos``); with the east-west
  ``sin`` term the seven days need two numbers each, a circle in calendar order, so the
  order is recoverable (a cosine alone is the same for Tue and Sun, Wed and Sat, ...);
  ``month`` is a yearly cycle peaking in December;
* ``store`` is the store type's effect (b sells most) plus a per-store normal draw;
* stores close on state holidays and, a few of them, for a refurbishment fortnight;
  promotions run Monday to Friday every other week, as Rossmann's did.

The files are made exactly as Kaggle's are read (train, test, store, store_states), then go
through the same feature preparation as the real data (``rossmann.build_dataset``), so the
demo and the tests exercise the real pipeline (and ``--preset guo2016`` finds the paper's
columns, ``rossmann.GUO2016_COLUMNS``, in the dataset's column sets). The planted effects are kept as entity
metadata for the tests and the analyses to check against: ``true_effect`` (each entity's main
effect), State's ``true_north`` / ``true_east``, and DayOfWeek's and Month's ``true_shape`` (their
interaction per unit east and north); ``planted_mean`` puts them together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.data import Dataset, DatasetSpec
from embedlab.errors import UsageError

from embedlab_datasets.rossmann import SPLITS, RawRossmann, build_dataset, germany_states

NAME = "synthetic-rossmann"
STATES = ["BE", "BW", "BY", "HB,NI", "HE", "HH", "NW", "RP", "SH", "SN", "ST", "TH"]
TYPE_EFFECT = {"a": 0.0, "b": 0.45, "c": 0.05, "d": -0.1}
#: (month, day) holidays everywhere, and extra ones in some states (as Epiphany, Corpus Christi)
HOLIDAYS = [(1, 1), (5, 1), (10, 3), (12, 25), (12, 26)]
STATE_HOLIDAYS = {
    "BW": [(1, 6), (11, 1)],
    "BY": [(1, 6), (8, 15), (11, 1)],
    "ST": [(1, 6)],
    "SN": [(10, 31)],
    "TH": [(10, 31)],
    "NW": [(11, 1)],
    "RP": [(11, 1)],
}


#: km per unit of the planted coordinates, and the centre they are measured from (about Kassel)
COORD_UNIT_KM, CENTRE_LAT, CENTRE_LON = 300.0, 51.2, 10.4


def planted_coordinates(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(north, east) in units of ``COORD_UNIT_KM`` (equirectangular around Germany's centre)."""
    km_per_degree = 111.2
    north = (np.asarray(lat, dtype=float) - CENTRE_LAT) * km_per_degree / COORD_UNIT_KM
    east = (np.asarray(lon, dtype=float) - CENTRE_LON) * km_per_degree * np.cos(np.radians(CENTRE_LAT)) / COORD_UNIT_KM
    return north, east


def state_effect(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """The planted state main effect: northern states sell more."""
    north, _ = planted_coordinates(lat, lon)
    return 0.2 * north


def weekday_effect(dow: np.ndarray) -> np.ndarray:
    """Planted weekly cycle (1 = Monday), the same in every state."""
    return 0.18 * np.cos(2 * np.pi * (np.asarray(dow) - 1) / 7)


def weekday_shape(dow: np.ndarray) -> np.ndarray:
    """How much one unit east changes a weekday's sales (1 = Monday)."""
    return 0.3 * np.sin(2 * np.pi * (np.asarray(dow) - 1) / 7)


def weekly_shape(lat: np.ndarray, lon: np.ndarray, dow: np.ndarray) -> np.ndarray:
    """Planted east-west x weekday interaction: eastern states sell more Tue-Thu, less Fri-Sun."""
    _, east = planted_coordinates(lat, lon)
    return east * weekday_shape(dow)


def month_effect(month: np.ndarray) -> np.ndarray:
    """Planted yearly cycle, highest in December."""
    return 0.12 * np.cos(2 * np.pi * (np.asarray(month) - 12) / 12)


def month_shape(month: np.ndarray) -> np.ndarray:
    """How much one unit north changes a month's sales: most in July (the coasts' season)."""
    return 0.15 * np.cos(2 * np.pi * (np.asarray(month) - 7) / 12)


def seasonal_shape(lat: np.ndarray, lon: np.ndarray, month: np.ndarray) -> np.ndarray:
    """Planted north-south x month interaction: northern states sell more in summer."""
    north, _ = planted_coordinates(lat, lon)
    return north * month_shape(month)


PROMO_LIFT = 0.25
SCHOOL_LIFT = 0.05


def planted_mean(rows: pd.DataFrame, entities: dict[str, pd.DataFrame]) -> np.ndarray:
    """The noise-free planted ``log_sales`` of ``rows`` (columns Store, State, DayOfWeek, Month,
    Promo, SchoolHoliday), from the truth columns a loaded dataset keeps on its entity tables."""
    store, state = entities["Store"], entities["State"]
    dow, month = entities["DayOfWeek"], entities["Month"]
    st = rows["State"].astype(str)
    return (
        8.4
        + rows["Store"].map(store["true_effect"])
        + st.map(state["true_effect"])
        + rows["DayOfWeek"].map(dow["true_effect"])
        + rows["Month"].map(month["true_effect"])
        + st.map(state["true_east"]) * rows["DayOfWeek"].map(dow["true_shape"])
        + st.map(state["true_north"]) * rows["Month"].map(month["true_shape"])
        + PROMO_LIFT * rows["Promo"]
        + SCHOOL_LIFT * rows["SchoolHoliday"]
    ).to_numpy(dtype=float)


def generate(
    stores: int = 60,
    days: int = 400,
    test_days: int = 48,
    noise: float = 0.08,
    seed: int = 42,
    start: str = "2013-05-01",
) -> tuple[RawRossmann, dict[str, pd.DataFrame]]:
    """(raw files, planted truth per entity table)."""
    rng = np.random.default_rng(seed)
    ref = germany_states()
    store_ids = np.arange(1, stores + 1)
    state = np.array(STATES)[rng.integers(0, len(STATES), size=stores)]
    state[: min(stores, len(STATES))] = STATES[: min(stores, len(STATES))]  # every state has a store
    stype = np.array(list(TYPE_EFFECT))[rng.choice(4, size=stores, p=[0.55, 0.05, 0.15, 0.25])]
    assortment = np.where(stype == "b", "b", np.array(["a", "c"])[rng.integers(0, 2, size=stores)])
    store_eff = np.array([TYPE_EFFECT[t] for t in stype]) + rng.normal(0.0, 0.25, size=stores)
    lat = ref.loc[state, "latitude"].to_numpy()
    lon = ref.loc[state, "longitude"].to_numpy()
    st_eff = state_effect(lat, lon)

    dates = pd.date_range(start, periods=days + test_days, freq="D")
    n_d = len(dates)
    grid_store = np.repeat(np.arange(stores), n_d)
    grid_day = np.tile(np.arange(n_d), stores)
    date = dates[grid_day]
    dow = date.day_of_week.to_numpy() + 1
    month = date.month.to_numpy()
    # promotions: Monday-Friday of every other ISO week
    week = date.isocalendar().week.to_numpy().astype(int)
    promo = ((week % 2 == 0) & (dow <= 5)).astype(np.int8)
    # holidays: national + per state; school holidays: a summer block shifted by state
    md = list(zip(date.month, date.day))
    st = state[grid_store]
    holiday = np.array([m in HOLIDAYS for m in md])
    for code, extra in STATE_HOLIDAYS.items():
        holiday |= (st == code) & np.array([m in extra for m in md])
    state_rank = pd.Series(np.arange(len(STATES)), index=STATES).reindex(st).to_numpy()
    doy = date.day_of_year.to_numpy()
    school = ((doy >= 175 + 4 * state_rank) & (doy < 215 + 4 * state_rank)) | (doy <= 5) | (doy >= 355)
    # refurbishment: a few stores closed for 14 days
    closed = np.zeros(len(date), dtype=bool)
    for s in rng.choice(stores, size=max(1, stores // 20), replace=False):
        first = rng.integers(30, max(31, days - 30))
        closed |= (grid_store == s) & (grid_day >= first) & (grid_day < first + 14)
    open_ = (~holiday & ~closed).astype(np.int8)
    log_sales = (
        8.4
        + store_eff[grid_store]
        + st_eff[grid_store]
        + weekday_effect(dow)
        + month_effect(month)
        + weekly_shape(lat[grid_store], lon[grid_store], dow)
        + seasonal_shape(lat[grid_store], lon[grid_store], month)
        + PROMO_LIFT * promo
        + SCHOOL_LIFT * school
        + rng.normal(0.0, noise, size=len(date))
    )
    sales = np.where(open_ == 1, np.round(np.exp(log_sales)), 0).astype(np.int64)
    state_holiday = np.where(holiday, np.where(date.month == 12, "c", "a"), "0")
    frame = pd.DataFrame(
        {
            "Store": store_ids[grid_store].astype(np.int32),
            "DayOfWeek": dow.astype(np.int8),
            "Date": date,
            "Sales": sales,
            "Customers": np.round(sales / 9).astype(np.int64),
            "Open": open_,
            "Promo": promo,
            "StateHoliday": state_holiday.astype(object),
            "SchoolHoliday": school.astype(np.int8),
        }
    )
    is_test = grid_day >= days
    train = frame[~is_test].reset_index(drop=True)
    test = frame[is_test].drop(columns=["Sales", "Customers"]).reset_index(drop=True)
    test.insert(0, "Id", np.arange(1, len(test) + 1, dtype=np.int64))
    test["Open"] = test["Open"].astype("float32")
    test = test[["Id", "Store", "DayOfWeek", "Date", "Open", "Promo", "StateHoliday", "SchoolHoliday"]]

    comp_known = rng.random(stores) < 0.7
    promo2 = rng.random(stores) < 0.5
    intervals = np.array(["Jan,Apr,Jul,Oct", "Feb,May,Aug,Nov", "Mar,Jun,Sept,Dec"])
    store = pd.DataFrame(
        {
            "StoreType": stype,
            "Assortment": assortment,
            "CompetitionDistance": np.round(rng.lognormal(7.5, 1.2, size=stores), -1),
            "CompetitionOpenSinceMonth": np.where(comp_known, rng.integers(1, 13, size=stores), np.nan),
            "CompetitionOpenSinceYear": np.where(comp_known, rng.integers(2000, 2015, size=stores), np.nan),
            "Promo2": promo2.astype(np.int8),
            "Promo2SinceWeek": np.where(promo2, rng.integers(1, 50, size=stores), np.nan),
            "Promo2SinceYear": np.where(promo2, rng.integers(2009, 2015, size=stores), np.nan),
            "PromoInterval": np.where(promo2, intervals[rng.integers(0, 3, size=stores)], ""),
        },
        index=pd.Index(store_ids.astype(np.int32), name="Store"),
    )
    states = pd.Series(state, index=pd.Index(store_ids.astype(np.int32), name="Store"), name="State")
    raw = RawRossmann(
        train,
        test,
        store,
        states,
        None,
        None,
        {
            "generator": {
                "stores": stores,
                "days": days,
                "test_days": test_days,
                "noise": noise,
                "seed": seed,
                "start": start,
            },
            "files": [],
            "missing_optional": [],
        },
    )
    ref_lat, ref_lon = ref.loc[STATES, "latitude"].to_numpy(), ref.loc[STATES, "longitude"].to_numpy()
    north, east = planted_coordinates(ref_lat, ref_lon)
    truth = {
        "Store": pd.DataFrame({"true_effect": store_eff}, index=pd.Index(store_ids, name="Store")),
        "State": pd.DataFrame(
            {"true_effect": state_effect(ref_lat, ref_lon), "true_north": north, "true_east": east},
            index=pd.Index(STATES, name="State"),
        ),
        "DayOfWeek": pd.DataFrame(
            {"true_effect": weekday_effect(np.arange(1, 8)), "true_shape": weekday_shape(np.arange(1, 8))},
            index=pd.Index(np.arange(1, 8), name="DayOfWeek"),
        ),
        "Month": pd.DataFrame(
            {"true_effect": month_effect(np.arange(1, 13)), "true_shape": month_shape(np.arange(1, 13))},
            index=pd.Index(np.arange(1, 13), name="Month"),
        ),
    }
    return raw, truth


def write_files(raw: RawRossmann, folder: str | Path, external: bool = True, seed: int = 0) -> Path:
    """Write ``raw`` in Kaggle's exact layout (quoted header and StateHoliday, blanks for NaN), plus
    ``store_states.csv`` and, with ``external``, made-up weather files (``;``, CRLF, ``NA``, named
    by German state) and Google Trends files (German ``Woche`` header): a folder the real
    ``rossmann`` loader reads, for tests and offline demos."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    def kaggle_csv(frame: pd.DataFrame, path: Path, quoted: tuple[str, ...]) -> None:
        lines = [",".join(f'"{c}"' for c in frame.columns)]
        cols = []
        for c in frame.columns:
            v = frame[c]
            if pd.api.types.is_datetime64_any_dtype(v):
                text = v.dt.strftime("%Y-%m-%d")
            elif pd.api.types.is_float_dtype(v) and (v.dropna() == v.dropna().round()).all():
                text = v.map(lambda x: "" if pd.isna(x) else str(int(x)))
            else:
                text = v.map(lambda x: "" if (x is None or (isinstance(x, float) and np.isnan(x))) else str(x))
            if c in quoted:
                text = '"' + text + '"'
            cols.append(text.to_numpy(dtype=object))
        lines += [",".join(row) for row in zip(*cols)]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    order = raw.train.sort_values(["Date", "Store"], ascending=[False, True])
    kaggle_csv(order, folder / "train.csv", ("StateHoliday", "SchoolHoliday"))
    if raw.test is not None:
        kaggle_csv(raw.test, folder / "test.csv", ("StateHoliday", "SchoolHoliday"))
    store = raw.store.reset_index()
    kaggle_csv(store, folder / "store.csv", ("StoreType", "Assortment", "PromoInterval"))
    pd.DataFrame({"Store": raw.states.index, "State": raw.states.to_numpy()}).to_csv(
        folder / "store_states.csv", index=False
    )
    if external:
        ref = germany_states()
        dates = pd.date_range(
            raw.train["Date"].min(), (raw.test if raw.test is not None else raw.train)["Date"].max(), freq="D"
        )
        wdir = folder / "weather"
        wdir.mkdir(exist_ok=True)
        from embedlab_datasets.rossmann import WEATHER_COLUMNS

        header = ["Date", *WEATHER_COLUMNS[:-2], "Precipitationmm", "CloudCover", "Events", "WindDirDegrees"]
        for fname in sorted(set(ref.loc[sorted(set(raw.states)), "weather_file"])):
            rows = ['"' + '";"'.join(header) + '"']
            for d in dates:
                vals = [f"{d:%Y-%m-%d}"] + [str(int(rng.integers(0, 30))) for _ in WEATHER_COLUMNS[:-2]]
                vals += [
                    f"{rng.random() * 3:.2f}",
                    "NA" if rng.random() < 0.1 else str(int(rng.integers(0, 9))),
                    '"' + ("Rain" if rng.random() < 0.3 else "") + '"',
                    str(int(rng.integers(0, 360))),
                ]
                rows.append(";".join(vals))
            (wdir / f"{fname}.csv").write_bytes(("\r\n".join(rows) + "\r\n").encode("utf-8"))
        tdir = folder / "googletrend"
        tdir.mkdir(exist_ok=True)
        first = dates[0] - pd.Timedelta(days=(dates[0].day_of_week + 1) % 7)
        weeks = pd.date_range(first, dates[-1], freq="7D")
        codes = sorted({c for c in ref.loc[sorted(set(raw.states)), "trend_code"] if c}) + [""]
        for code in codes:
            rows = ["Woche,Dez. 2012 - Sep. 2015"]
            rows += [f"{w:%Y-%m-%d} - {w + pd.Timedelta(days=6):%Y-%m-%d},{int(rng.integers(40, 100))}" for w in weeks]
            name = f"Rossmann_DE_{code}.csv" if code else "Rossmann_DE.csv"
            (tdir / name).write_text("\n".join(rows), encoding="utf-8")  # no final newline, as the originals
    return folder


OPTIONS = [
    click.Option(
        ["--stores", "n_stores"],
        type=click.IntRange(12),
        default=60,
        show_default=True,
        help="Number of stores (at least one per state).",
    ),
    click.Option(
        ["--days"],
        type=click.IntRange(60),
        default=400,
        show_default=True,
        help="Days of training data (a year or more shows the month cycle).",
    ),
    click.Option(
        ["--noise"],
        type=click.FloatRange(0),
        default=0.08,
        show_default=True,
        help="Standard deviation of the daily log-sales noise.",
    ),
    click.Option(
        ["--split"],
        type=click.Choice(SPLITS),
        default="last-days",
        show_default=True,
        help="Validation split, as for rossmann.",
    ),
    click.Option(
        ["--valid-days"],
        type=click.IntRange(1),
        default=48,
        show_default=True,
        help="Days held out by --split last-days.",
    ),
    click.Option(
        ["--valid-pct"], type=float, default=0.1, show_default=True, help="Share held out by --split time and random."
    ),
    click.Option(
        ["--time-cut"],
        default="0.5",
        show_default=True,
        help="Where --split time-before / time-after cut: a share of the rows in time order, or a date.",
    ),
]


def load(
    n_stores: int = 60,
    days: int = 400,
    noise: float = 0.08,
    split: str = "last-days",
    valid_days: int = 48,
    valid_pct: float = 0.1,
    seed: int = 42,
    time_cut: Any = "0.5",
    **_: Any,
) -> Dataset:
    if valid_days >= days:
        raise UsageError(f"--valid-days {valid_days} must be fewer than --days {days}")
    raw, truth = generate(n_stores, days, noise=noise, seed=seed)
    options = {
        "n_stores": n_stores,
        "days": days,
        "noise": noise,
        "split": split,
        "valid_days": valid_days,
        "valid_pct": valid_pct,
        "time_cut": time_cut,
    }
    ds = build_dataset(raw, NAME, split, valid_days, valid_pct, seed, options)
    for name, frame in truth.items():
        ent = ds.entities[name]
        attrs = dict(ent.attrs)
        ent = ent.join(frame, how="left")
        ent.attrs.update(attrs)
        ds.entities[name] = ent
    return ds


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec(
            NAME,
            "tabular",
            "Generated Rossmann look-alike with planted state, weekday, month, promo and store "
            "effects (offline, seconds)",
            load,
            OPTIONS,
            SPLITS,
            trainer="tabular",
        )
    )
