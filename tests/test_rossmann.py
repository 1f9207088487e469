"""The Rossmann dataset plugin: reading Kaggle's files, features, splits, entity annotations and
one-line errors on bad input. Most tests use a small synthetic folder written in Kaggle's exact
layout; the ``realdata`` ones read the real files under EMBEDLAB_DATA_DIR (skipped without)."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import data_dir
from embedlab.errors import DataError, EmbedlabError, UsageError
from embedlab_datasets import rossmann as R
from embedlab_datasets import synthetic_rossmann as S


@pytest.fixture(scope="module")
def kaggle_folder(tmp_path_factory):
    """A synthetic folder laid out like Kaggle's archive plus the external files."""
    raw, _ = S.generate(stores=24, days=150, seed=5)
    return S.write_files(raw, tmp_path_factory.mktemp("kaggle") / "rossmann")


@pytest.fixture
def folder(kaggle_folder, tmp_path):
    """A private copy to break."""
    return shutil.copytree(kaggle_folder, tmp_path / "rossmann")


@pytest.fixture(scope="module")
def ds(kaggle_folder):
    return R.load(kaggle_folder)


# ---------------------------------------------------------------------------- reference table
def test_germany_states_reference_table():
    ref = R.germany_states()
    assert len(ref) == 17 and ref.index.is_unique
    assert set(ref.index) >= {
        "BW",
        "BY",
        "BE",
        "BB",
        "HB",
        "HH",
        "HE",
        "MV",
        "NI",
        "NW",
        "RP",
        "SL",
        "SN",
        "ST",
        "SH",
        "TH",
        "HB,NI",
    }
    assert ref["latitude"].between(47.2, 55.1).all() and ref["longitude"].between(5.8, 15.1).all()
    mean = ref.loc[["HB", "NI"], ["latitude", "longitude"]].mean()
    assert ref.loc["HB,NI", "latitude"] == pytest.approx(mean["latitude"], abs=1e-3)
    assert ref.loc["HB,NI", "longitude"] == pytest.approx(mean["longitude"], abs=1e-3)
    assert ref.loc["NW", "weather_file"] == "NordrheinWestfalen" and ref.loc["BY", "name_en"] == "Bavaria"
    assert ref.loc["HB,NI", "weather_file"] == "Niedersachsen" and ref.loc["HB,NI", "trend_code"] == "NI"


# ---------------------------------------------------------------------------- loading
def test_loads_kaggle_layout_with_external_files(ds):
    assert ds.kind == "tabular" and ds.roles["target_transform"] == "log"
    assert ds.info["missing_optional"] == []
    assert any(f.startswith("weather/") for f in ds.info["files"])
    for col in (
        "Mean_TemperatureC",
        "trend",
        "trend_DE",
        "Events",
        "AfterStateHoliday",
        "Promo_fw",
        "CompetitionMonthsOpen",
        "Promo2Weeks",
        "Week",
        "Is_month_end",
    ):
        assert col in ds.train.columns, col
    assert ds.train[["Mean_TemperatureC", "trend", "trend_DE"]].notna().all().all()
    rows = pd.concat([ds.train, ds.valid])
    assert (rows["Open"] == 1).all() and (rows["Sales"] > 0).all()
    assert len(ds.test) == 24 * 48 and ds.test["Id"].dtype.kind == "i"
    assert "Sales" not in ds.test.columns


def test_the_datasets_name_the_guo2016_column_set(ds):
    # --preset guo2016 finds the paper's 7 features and Table 1 sizes here, not in the trainer
    assert ds.column_sets == {"guo2016": R.GUO2016_COLUMNS}
    assert R.GUO2016_COLUMNS["categorical"] == ["Store", "DayOfWeek", "Day", "Month", "Year", "Promo", "State"]
    assert R.GUO2016_COLUMNS["emb_sizes"] == {
        "Store": 10,
        "DayOfWeek": 6,
        "Day": 10,
        "Month": 6,
        "Year": 2,
        "Promo": 1,
        "State": 6,
    }
    assert set(R.GUO2016_COLUMNS["categorical"]) <= set(ds.train.columns)
    ds.column_sets["guo2016"]["categorical"].append("x")  # each dataset holds its own copy
    try:
        assert "x" not in R.GUO2016_COLUMNS["categorical"]
        synthetic = S.load(n_stores=12, days=90)
        assert synthetic.column_sets == {"guo2016": R.GUO2016_COLUMNS}
    finally:
        ds.column_sets["guo2016"]["categorical"].remove("x")


def test_last_days_split_is_the_last_48_days(ds):
    last = ds.valid["Date"].max()
    assert ds.valid["Date"].min() == last - pd.Timedelta(days=47)
    assert ds.train["Date"].max() < ds.valid["Date"].min()
    assert ds.split["name"] == "last-days" and ds.split["days"] == 48


def test_fastai_split_cuts_by_row_count(kaggle_folder):
    d = R.load(kaggle_folder, split="fastai")
    rows = pd.concat([d.train, d.valid])
    start = pd.Timestamp(d.split["valid_start"])
    newest_first = rows.sort_values("Date", ascending=False)["Date"].to_numpy()
    assert start == newest_first[len(d.test)]  # the date of row len(test), every row of it kept
    assert len(d.valid) >= len(d.test) and (d.valid["Date"] >= start).all()


def test_other_splits(kaggle_folder):
    t = R.load(kaggle_folder, split="time", valid_pct=0.1)
    assert t.split["valid_days"] == 15 and t.train["Date"].max() < t.valid["Date"].min()
    r = R.load(kaggle_folder, split="random", valid_pct=0.2, seed=3)
    assert abs(len(r.valid) / (len(r.train) + len(r.valid)) - 0.2) < 0.01
    n = R.load(kaggle_folder, split="none")
    assert n.valid is None


def test_missing_optional_files_are_recorded(folder):
    shutil.rmtree(folder / "weather")
    (folder / "test.csv").unlink()
    d = R.load(folder)
    assert "weather/" in d.info["missing_optional"] and "test.csv" in d.info["missing_optional"]
    assert "Mean_TemperatureC" not in d.roles["continuous"] and "trend" in d.roles["continuous"]
    assert d.test is None


def test_no_external(kaggle_folder):
    d = R.load(kaggle_folder, external=False)
    assert "trend" not in d.train.columns and "Events" not in d.roles["categorical"]


def test_store_subset(kaggle_folder):
    d = R.load(kaggle_folder, stores="1-5,9")
    assert set(d.train["Store"]) == {1, 2, 3, 4, 5, 9}
    with pytest.raises(UsageError, match="--stores"):
        R.load(kaggle_folder, stores="5-1")


# ---------------------------------------------------------------------------- features
def _naive_elapsed(frame: pd.DataFrame, fld: str) -> pd.DataFrame:
    """fast.ai's row loop (days since the last event per store), capped like ours: the reference."""
    out = []
    for _, g in frame.sort_values(["Store", "Date"]).groupby("Store"):
        last = None
        after = []
        for d, v in zip(g["Date"], g[fld]):
            if v:
                last = d
            after.append(R.ELAPSED_CAP if last is None else min((d - last).days, R.ELAPSED_CAP))
        nxt = None
        before = []
        for d, v in zip(g["Date"][::-1], g[fld][::-1]):
            if v:
                nxt = d
            before.append(R.ELAPSED_CAP if nxt is None else min((nxt - d).days, R.ELAPSED_CAP))
        out.append(pd.DataFrame({"Store": g["Store"], "Date": g["Date"], "after": after, "before": before[::-1]}))
    return pd.concat(out)


def test_elapsed_features_match_a_row_loop():
    rng = np.random.default_rng(0)
    dates = pd.date_range("2015-01-01", periods=40)
    frame = pd.DataFrame(
        {"Store": np.repeat([1, 2, 3], 40), "Date": np.tile(dates, 3), "Promo": rng.random(120) < 0.15}
    )
    frame = frame.drop(index=[5, 6, 50]).reset_index(drop=True)  # gaps: absent days count as no event
    states = pd.Series(["BY", "BY", "NW"], index=[1, 2, 3])
    got = R._elapsed(frame, states, {"Promo": "zero"})
    ref = _naive_elapsed(frame, "Promo").set_index(["Store", "Date"]).loc[list(zip(frame["Store"], frame["Date"]))]
    np.testing.assert_array_equal(got["AfterPromo"], ref["after"].to_numpy())
    np.testing.assert_array_equal(got["BeforePromo"], ref["before"].to_numpy())
    # 7-day counts, backward (today and the 6 days before) and forward (today and 6 after)
    full = frame.set_index(["Store", "Date"])["Promo"].astype(int)
    for i in (0, 17, 60, 110):
        s, d = frame.loc[i, "Store"], frame.loc[i, "Date"]
        window_bw = [full.get((s, d - pd.Timedelta(days=k)), 0) for k in range(7)]
        window_fw = [full.get((s, d + pd.Timedelta(days=k)), 0) for k in range(7)]
        assert got["Promo_bw"][i] == sum(window_bw) and got["Promo_fw"][i] == sum(window_fw)


def test_state_holidays_fill_days_a_store_is_missing():
    dates = pd.date_range("2015-01-01", periods=10)
    frame = pd.DataFrame(
        {"Store": np.repeat([1, 2], 10), "Date": np.tile(dates, 2), "StateHoliday": np.zeros(20, dtype=int)}
    )
    frame.loc[3, "StateHoliday"] = 1  # store 1 has a holiday on day 3
    frame = frame.drop(index=[13]).reset_index(drop=True)  # store 2 lacks day 3 in the files
    got = R._elapsed(frame, pd.Series(["BY", "BY"], index=[1, 2]), {"StateHoliday": "state"})
    store2 = frame["Store"].to_numpy() == 2
    day4 = store2 & (frame["Date"] == dates[4]).to_numpy()
    assert got["AfterStateHoliday"][day4][0] == 1  # store 2 sees its state's holiday


def test_competition_and_promo2_features():
    raw, _ = S.generate(stores=12, days=80, seed=2)  # 2013-05-01 .. 2013-07-19 (+ test days)
    raw.store.loc[1, ["CompetitionOpenSinceYear", "CompetitionOpenSinceMonth"]] = [2013, 3]
    raw.store.loc[2, ["CompetitionOpenSinceYear", "CompetitionOpenSinceMonth"]] = [np.nan, np.nan]
    raw.store.loc[3, ["Promo2", "Promo2SinceYear", "Promo2SinceWeek", "PromoInterval"]] = [
        1,
        2013,
        20,
        "Jan,Apr,Jul,Oct",
    ]
    df = R.prepare_features(raw)
    row = df[(df["Store"] == 1) & (df["Date"] == pd.Timestamp("2013-06-14"))].iloc[0]
    assert row["CompetitionMonthsOpen"] == (pd.Timestamp("2013-06-14") - pd.Timestamp("2013-03-15")).days // 30
    assert (df.loc[df["Store"] == 2, "CompetitionMonthsOpen"] == 0).all()
    assert (df.loc[df["Store"] == 2, "CompetitionOpenSinceYear"] == 1900).all()
    s3 = df[df["Store"] == 3].set_index("Date")
    # ISO week 20 of 2013 starts Monday 2013-05-13
    assert s3.loc[pd.Timestamp("2013-07-15"), "Promo2Weeks"] == 9
    assert s3.loc[pd.Timestamp("2013-07-15"), "Promo2Active"] == 1  # July is a promo month
    assert s3.loc[pd.Timestamp("2013-06-14"), "Promo2Active"] == 0
    assert s3.loc[pd.Timestamp("2013-05-10"), "Promo2Weeks"] == 0  # not started yet
    assert s3["Promo2Weeks"].max() <= 25


def test_iso_week_monday_matches_the_standard_library():
    import datetime as dt

    years = pd.Series([2009, 2009, 2013, 2014, 2015, 2015, np.nan])
    weeks = pd.Series([1, 53, 1, 52, 1, 31, 5])
    got = R._iso_week_monday(years, weeks)
    for y, w, g in zip(years[:-1], weeks[:-1], got[:-1]):
        assert g == pd.Timestamp(dt.date.fromisocalendar(int(y), int(w), 1))
    assert pd.isna(got.iloc[-1])


def test_entities_carry_names_coordinates_and_calendar(ds):
    ent = ds.entities
    assert ent["State"].loc["BY", "label"] == "Bavaria"
    assert ent["State"][["latitude", "longitude"]].notna().all().all()
    assert list(ent["DayOfWeek"]["label"]) == ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
    for col, length in (("DayOfWeek", 7), ("Month", 12), ("Week", 52), ("Day", 31)):
        assert ent[col].attrs["cycle_length"] == length
        assert ent[col]["cycle_order"].iloc[0] == 0
    assert ent["Store"].attrs["color_column"] == "StoreType"
    assert {"StoreType", "Assortment", "State", "CompetitionDistance"} <= set(ent["Store"].columns)
    assert ent["StateHoliday"].loc["b", "label"] == "Easter"


# ---------------------------------------------------------------------------- bad input
def _edit(path, old: str, new: str, count: int = 1) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, count))


def test_missing_required_file(folder):
    (folder / "store.csv").unlink()
    with pytest.raises(DataError, match=r"required file .*store\.csv.* is missing"):
        R.load(folder)


def test_missing_data_dir():
    with pytest.raises(UsageError, match="--data-dir"):
        R.load(None)


def test_wrong_column(folder):
    _edit(folder / "train.csv", '"Sales"', '"Revenue"')
    with pytest.raises(DataError, match=r"train\.csv: column 'Sales' not found; the columns are: .*Revenue"):
        R.load(folder)


def test_unparseable_date(folder):
    lines = (folder / "train.csv").read_text().splitlines()
    parts = lines[5].split(",")
    parts[2] = "2015-13-45"
    lines[5] = ",".join(parts)
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"train\.csv: column 'Date' has a value that is not a date.*'2015-13-45' \(data row 5\)"
    ):
        R.load(folder)


def test_non_numeric_sales(folder):
    lines = (folder / "train.csv").read_text().splitlines()
    parts = lines[2].split(",")
    parts[3] = "lots"
    lines[2] = ",".join(parts)
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(
        DataError, match=r"train\.csv: column 'Sales' has a value that is not a number: 'lots' \(data row 2\)"
    ):
        R.load(folder)


def test_store_missing_from_store_csv(folder):
    lines = (folder / "store.csv").read_text().splitlines()
    (folder / "store.csv").write_text("\n".join(l for l in lines if not l.startswith("7,")) + "\n")
    with pytest.raises(DataError, match=r"train\.csv: store 7 .* is missing from .*store\.csv"):
        R.load(folder)


def test_store_without_state(folder):
    lines = (folder / "store_states.csv").read_text().splitlines()
    (folder / "store_states.csv").write_text("\n".join(l for l in lines if not l.startswith("9,")) + "\n")
    with pytest.raises(DataError, match=r"store_states\.csv: store 9 has no state"):
        R.load(folder)


def test_unknown_state_code(folder):
    _edit(folder / "store_states.csv", "\n3,", "\n3,XX\n999,")
    with pytest.raises(DataError, match=r"store_states\.csv: column 'State' has unknown state code"):
        R.load(folder)


def test_weather_file_with_unknown_state_name(folder):
    shutil.copy(folder / "weather" / "Bayern.csv", folder / "weather" / "Atlantis.csv")
    with pytest.raises(DataError, match=r"Atlantis\.csv: unknown state name 'Atlantis'; weather files are named"):
        R.load(folder)


def test_bad_state_holiday_and_day_of_week(folder):
    _edit(folder / "train.csv", ',"0","', ',"x","')
    with pytest.raises(DataError, match=r"column 'StateHoliday' has 'x'"):
        R.load(folder)


def test_cli_bad_input_leaves_nothing_behind(folder, tmp_path):
    from embedlab.cli import make_cli

    (folder / "store_states.csv").write_text("Store,State\n1,BY\n")
    out = tmp_path / "runs" / "r"
    res = CliRunner().invoke(
        make_cli(), ["train", "rossmann", "--data-dir", str(folder), "--epochs", "1", "-q", "--out", str(out)]
    )
    assert res.exit_code == 1
    assert "store_states.csv: store 2 has no state" in res.output and "Traceback" not in res.output
    assert not out.exists()


def test_cli_train_on_kaggle_layout_and_predict_submission(kaggle_folder, tmp_path):
    from embedlab.cli import make_cli

    out = tmp_path / "run"
    res = CliRunner().invoke(
        make_cli(),
        [
            "train",
            "rossmann",
            "--data-dir",
            str(kaggle_folder),
            "--layers",
            "32",
            "--epochs",
            "1",
            "-q",
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    sub = tmp_path / "submission.csv"
    res = CliRunner().invoke(make_cli(), ["predict", str(out), "--data-dir", str(kaggle_folder), "--out", str(sub)])
    assert res.exit_code == 0, res.output
    frame = pd.read_csv(sub)
    test = pd.read_csv(kaggle_folder / "test.csv")
    assert list(frame.columns) == ["Id", "Sales"] and frame["Id"].tolist() == sorted(test["Id"])
    closed = set(test.loc[test["Open"] == 0, "Id"])
    assert (frame.loc[frame["Id"].isin(closed), "Sales"] == 0).all()


# ---------------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_loader_reproduces_the_known_counts():
    folder = data_dir("rossmann")
    raw = R.read_raw(folder)
    assert len(raw.train) == 1_017_209
    assert raw.train["Store"].nunique() == 1_115 and len(raw.store) == 1_115
    assert int(((raw.train["Open"] == 1) & (raw.train["Sales"] > 0)).sum()) == 844_338
    assert len(raw.test) == 41_088 and int(raw.test["Open"].isna().sum()) == 11
    assert raw.train["Date"].min() == pd.Timestamp("2013-01-01")
    assert raw.train["Date"].max() == pd.Timestamp("2015-07-31")
    assert sorted(raw.states.unique()) == ["BE", "BW", "BY", "HB,NI", "HE", "HH", "NW", "RP", "SH", "SN", "ST", "TH"]
    assert raw.info["missing_optional"] == []
    assert raw.weather["weather_file"].nunique() == 16 and len(raw.weather) == 16 * 990
    assert raw.trends["trend_code"].nunique() == 14


@pytest.mark.realdata
@pytest.mark.slow
def test_real_subset_training_beats_store_weekday_mean():
    from embedlab.trainers.tabular import TabularTrainer
    from embedlab.trainers.tabular_processor import rmspe

    folder = data_dir("rossmann")
    d = R.load(folder, stores="1-60")
    assert d.split == {"name": "last-days", "days": 48, "valid_start": "2015-06-14", "valid_end": "2015-07-31"}
    assert d.valid[["Mean_TemperatureC", "trend", "trend_DE"]].notna().all().all()
    means = d.train.groupby(["Store", "DayOfWeek"])["Sales"].mean()
    base = rmspe(d.valid["Sales"], means.reindex(list(zip(d.valid["Store"], d.valid["DayOfWeek"]))).to_numpy())
    run = TabularTrainer().train(d, {"layers": "200,100", "epochs": 4, "bs": 256, "lr": 3e-3}, progress=False)
    assert run.metrics["valid_rmspe"] < base, (run.metrics["valid_rmspe"], base)
    state = run.table("State")
    assert state.metadata[["latitude", "longitude"]].notna().all().all()
    assert "North Rhine-Westphalia" in set(state.labels) or "Hesse" in set(state.labels)
