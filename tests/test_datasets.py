"""Dataset loaders on small files written in each official layout (see conftest writers).

The expected values below are read off the rows the writers put down, so a loader that
mis-parses a separator, an encoding, a genre flag or a split fails here.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab.errors import DataError, UsageError

from conftest import LATEST_RATINGS, ML100K_RATINGS, ML100K_U1_TEST


def _pairs(df: pd.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df["user"].tolist(), df["item"].tolist()))


# ---------------------------------------------------------------------------- MovieLens 100K


def test_ml100k_canonical_split_reads_base_and_test_files(ml100k_dir):
    ds = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="u1")
    assert ds.kind == "collab" and ds.name == "movielens-100k"
    assert _pairs(ds.valid) == ML100K_U1_TEST
    assert _pairs(ds.train) == {(u, i) for u, i, *_ in ML100K_RATINGS} - ML100K_U1_TEST
    assert ds.split == {"name": "u1", "canonical": True}
    assert ds.info["n_ratings"] == len(ML100K_RATINGS)
    assert (ds.info["n_users"], ds.info["n_items"]) == (6, 8)
    assert ds.rating_range == (1.0, 5.0)
    row = ds.train[(ds.train.user == 1) & (ds.train.item == 1)].iloc[0]
    assert (row.rating, row.timestamp) == (5.0, 874965758)
    assert ds.train["rating"].dtype == np.float32


def test_ml100k_item_metadata_latin1_genre_flags_and_release_date(ml100k_dir):
    items = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir).entities["item"]
    assert list(items.index) == list(range(1, 9))
    assert items.loc[3, "label"] == "Café au lait (Métisse) (1993)"  # decoded as latin-1
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy"
    assert items.loc[1, "genre"] == "Animation"
    assert items.loc[2, "genres"] == "Action|Adventure|Thriller"
    assert items.loc[7, "genres"] == "unknown"  # no flag set
    assert items.loc[8, "genres"] == "unknown"  # the 'unknown' flag
    assert items.loc[1, "year"] == 1995 and items.loc[3, "year"] == 1993
    assert items.loc[7, "year"] == 1994  # from the release date
    assert math.isnan(items.loc[8, "year"])
    assert items.loc[1, "release_date"] == "1995-01-01"
    assert pd.isna(items.loc[8, "release_date"])
    assert items.attrs["color_column"] == "genre"


def test_ml100k_user_metadata(ml100k_dir):
    users = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir).entities["user"]
    assert users.loc[2, "age"] == 53 and users.loc[2, "gender"] == "F"
    assert users.loc[3, "occupation"] == "writer"
    assert list(users.index) == [1, 2, 3, 4, 5, 6]


def test_ml100k_random_split_is_seeded_and_partitions(ml100k_dir):
    a = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="random", valid_pct=0.25, seed=3)
    b = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="random", valid_pct=0.25, seed=3)
    c = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="random", valid_pct=0.25, seed=4)
    assert len(a.valid) == 5 and len(a.train) == 15
    assert _pairs(a.valid) == _pairs(b.valid)
    assert _pairs(a.valid) != _pairs(c.valid)
    assert _pairs(a.train) | _pairs(a.valid) == {(u, i) for u, i, *_ in ML100K_RATINGS}
    assert not _pairs(a.train) & _pairs(a.valid)
    assert a.split == {"name": "random", "valid_pct": 0.25, "seed": 3}


def test_ml100k_time_split_holds_out_the_latest(ml100k_dir):
    ds = embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="time", valid_pct=0.2)
    assert len(ds.valid) == 4
    assert ds.valid["timestamp"].min() >= ds.train["timestamp"].max()
    assert ds.split["name"] == "time"


def test_ml100k_other_canonical_split_needs_its_files(ml100k_dir):
    with pytest.raises(DataError, match="u2.base"):
        embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="u2")


def test_unknown_split_name_is_a_usage_error(ml100k_dir):
    with pytest.raises(UsageError, match="'u9'"):
        embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="u9")


def test_duplicate_titles_stay_distinct_entities_in_the_run(ml100k_dir, tmp_path):
    run = embedlab.train("movielens-100k", data_dir=ml100k_dir, out=tmp_path / "run", epochs=1, n_factors=3, bs=4)
    loaded = embedlab.load_run(tmp_path / "run")
    for r in (run, loaded):
        item = r.table("item")
        assert len(item) == 8
        rows = np.flatnonzero(item.labels == "Chasing Amy (1997)")
        assert sorted(item.keys[rows].tolist()) == [5, 6]
        assert not np.array_equal(item.vectors[rows[0]], item.vectors[rows[1]])
        assert (item.bias.index == "Chasing Amy (1997)").sum() == 2
        frame = item.frame.set_index("key")
        assert frame.loc[3, "label"] == "Café au lait (Métisse) (1993)"
        assert frame.loc[1, "genres"] == "Animation|Children's|Comedy"
        assert frame.loc[1, "count"] == 4 and frame.loc[1, "mean_rating"] == pytest.approx(4.0)
        assert frame.loc[5, "count"] == 1  # (1, 5) is in u1.test, (4, 5) in u1.base
        assert item.attrs["color_column"] == "genre"
        users = r.table("user").frame.set_index("key")
        assert users.loc[6, "occupation"] == "executive"
    assert loaded.split == {"name": "u1", "canonical": True}


# ---------------------------------------------------------------------------- CSV editions


@pytest.mark.parametrize("name", ["movielens-latest-small", "movielens-25m", "movielens-32m"])
def test_csv_editions_ratings_and_movies(latest_small_dir, name):
    ds = embedlab.load_dataset(name, data_dir=latest_small_dir, split="random", valid_pct=0.25, seed=0)
    assert len(ds.train) + len(ds.valid) == len(LATEST_RATINGS) and len(ds.valid) == 3
    assert ds.rating_range == (0.5, 5.0)
    everything = pd.concat([ds.train, ds.valid])
    assert sorted(everything["rating"].tolist()) == sorted(r for _, _, r, _ in LATEST_RATINGS)
    items = ds.entities["item"]
    assert list(items.index) == [1, 2, 3, 4, 5, 6]
    assert items.loc[2, "label"] == "American President, The (1995)"  # quoted comma
    assert items.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert items.loc[1, "genre"] == "Adventure"
    assert items.loc[6, "genres"] == "unknown" and items.loc[6, "genre"] == "unknown"
    assert items.loc[5, "year"] == 2001 and items.loc[6, "year"] == 1957
    assert items.loc[3, "label"] == items.loc[4, "label"] == "Emma (1996)"
    assert ds.split["name"] == "random"


def test_csv_edition_time_split(latest_small_dir):
    ds = embedlab.load_dataset("movielens-latest-small", data_dir=latest_small_dir, split="time", valid_pct=0.25)
    assert len(ds.valid) == 3
    assert ds.valid["timestamp"].min() >= ds.train["timestamp"].max()


def test_csv_edition_unrated_movie_is_kept_with_zero_count(latest_small_dir, tmp_path):
    run = embedlab.train("movielens-latest-small", data_dir=latest_small_dir, epochs=1, n_factors=2, bs=2)
    frame = run.table("item").frame.set_index("key")
    assert frame.loc[5, "count"] == 0 and frame.loc[5, "label"] == "Never Rated (2001) "
    assert sorted(frame.index) == [1, 2, 3, 4, 5, 6]


# ---------------------------------------------------------------------------- 1M


def test_ml1m_double_colon_files(ml1m_dir):
    ds = embedlab.load_dataset("movielens-1m", data_dir=ml1m_dir, split="random", valid_pct=0.2, seed=1)
    everything = pd.concat([ds.train, ds.valid])
    assert len(everything) == 10 and len(ds.valid) == 2
    assert set(everything["item"]) == {1193, 661, 3408, 2355}
    row = everything[(everything.user == 4) & (everything.item == 2355)].iloc[0]
    assert (row.rating, row.timestamp) == (5.0, 978824291)
    items = ds.entities["item"]
    assert items.loc[3012, "label"] == "Bäckereiwagen (1990)"
    assert items.loc[661, "genres"] == "Animation|Children's|Musical"
    assert items.loc[661, "genre"] == "Animation"
    assert items.loc[1193, "year"] == 1975
    users = ds.entities["user"]
    assert users.loc[1, "gender"] == "F" and users.loc[2, "age"] == 56 and users.loc[4, "occupation"] == 7


def test_ml1m_ratings_only_folder_loads_without_metadata(ml1m_dir):
    (ml1m_dir / "movies.dat").unlink()
    (ml1m_dir / "users.dat").unlink()
    ds = embedlab.load_dataset("movielens-1m", data_dir=ml1m_dir)
    assert ds.entities == {} and len(ds.train) + len(ds.valid) == 10


# ---------------------------------------------------------------------------- ratings-csv

RATINGS = pd.DataFrame(
    {
        "who": ["ann", "ann", "bob", "bob", "cy", "cy", "dee", "dee", "eve", "eve"],
        "what": [10, 20, 10, 30, 20, 30, 10, 20, 30, 40],
        "stars": [4.0, 2.0, 5.0, 1.0, 3.0, 4.5, 2.5, 3.5, 1.5, 5.0],
        "when": pd.date_range("2024-01-01", periods=10, freq="D").strftime("%Y-%m-%d"),
    }
)


def _ratings_csv(path, **options):
    return embedlab.load_dataset("ratings-csv", file=path, user="who", item="what", rating="stars", **options)


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t"), (".txt", ";"), (".csv", "|")])
def test_ratings_csv_delimiters_are_sniffed(tmp_path, suffix, sep):
    path = tmp_path / f"mine{suffix}"
    RATINGS.to_csv(path, sep=sep, index=False)
    ds = _ratings_csv(path, valid_pct=0.2)
    everything = pd.concat([ds.train, ds.valid]).sort_values(["user", "item"])
    expected = RATINGS.sort_values(["who", "what"])
    assert everything["user"].tolist() == expected["who"].tolist()
    assert everything["item"].tolist() == expected["what"].tolist()
    assert everything["rating"].tolist() == expected["stars"].tolist()
    assert ds.rating_range == (1.0, 5.0)
    assert ds.info["columns"] == {"user": "who", "item": "what", "rating": "stars", "timestamp": None}


def test_ratings_csv_parquet(tmp_path):
    pytest.importorskip("pyarrow")
    path = tmp_path / "mine.parquet"
    RATINGS.to_parquet(path)
    ds = _ratings_csv(path)
    assert len(ds.train) + len(ds.valid) == 10
    assert set(ds.train["user"]) | set(ds.valid["user"]) == set(RATINGS["who"])


def test_ratings_csv_time_split_by_timestamp_column(tmp_path):
    path = tmp_path / "mine.csv"
    RATINGS.sample(frac=1, random_state=0).to_csv(path, index=False)  # rows out of time order
    ds = _ratings_csv(path, timestamp="when", split="time", valid_pct=0.2)
    assert sorted(ds.valid["item"].tolist()) == [30, 40]  # the last two days: eve's ratings
    assert set(ds.valid["user"]) == {"eve"}
    assert ds.valid["timestamp"].min() > ds.train["timestamp"].max()
    assert ds.split == {"name": "time", "valid_pct": 0.2, "column": "timestamp"}


def test_ratings_csv_time_split_needs_a_timestamp(tmp_path):
    path = tmp_path / "mine.csv"
    RATINGS.to_csv(path, index=False)
    with pytest.raises(UsageError, match="--timestamp"):
        _ratings_csv(path, split="time")


def test_ratings_csv_item_file_columns_become_metadata(tmp_path):
    path, items_path = tmp_path / "mine.csv", tmp_path / "things.csv"
    RATINGS.to_csv(path, index=False)
    pd.DataFrame(
        {
            "thing": [10, 20, 30, 40, 50],
            "name": ["Ten", "Twenty", "Thirty", "Forty", "Fifty"],
            "colour": ["red", "red", "blue", "blue", "green"],
            "price": [1.5, 2.5, 3.5, 4.5, 5.5],
        }
    ).to_csv(items_path, index=False)
    run = embedlab.train(
        "ratings-csv",
        file=path,
        user="who",
        item="what",
        rating="stars",
        items_file=items_path,
        item_key="thing",
        item_label="name",
        epochs=1,
        n_factors=2,
        bs=2,
    )
    frame = run.table("item").frame.set_index("key")
    assert frame.loc[30, "label"] == "Thirty" and frame.loc[30, "colour"] == "blue"
    assert frame.loc[40, "price"] == 4.5
    assert frame.loc[50, "count"] == 0  # in the item file only
    assert frame["count"].sum() == run.metrics["train_rows"]
    assert run.table("user").keys.tolist() == ["ann", "bob", "cy", "dee", "eve"]


def test_ratings_csv_item_file_option_name():
    """``--items`` reaches the loader as ``items_file`` (a click declaration slip once dropped it)."""
    from embedlab.registry import get_dataset

    spec = get_dataset("ratings-csv")
    names = {o.name: o.opts for o in spec.options}
    assert names["items_file"] == ["--items"]


def test_ratings_csv_item_file_errors(tmp_path):
    path, items_path = tmp_path / "mine.csv", tmp_path / "things.csv"
    RATINGS.to_csv(path, index=False)
    items_path.write_text("what,title\n10,A\n10,B\n")
    with pytest.raises(DataError, match=r"item key 10 appears twice in column 'what'"):
        _ratings_csv(path, items_file=items_path)
    items_path.write_text("what,title\nx,A\n")
    with pytest.raises(DataError, match="does not match the type"):
        _ratings_csv(path, items_file=items_path)
    items_path.write_text("what,title\n10,A\n")
    with pytest.raises(DataError, match=r"column 'name' not found; the columns are: what, title"):
        _ratings_csv(path, items_file=items_path, item_label="name")


# ---------------------------------------------------------------------------- synthetic-collab


def test_synthetic_collab_is_deterministic_per_seed():
    kw = dict(users=50, items=30, ratings=600, genres=3)
    a = embedlab.load_dataset("synthetic-collab", seed=5, **kw)
    b = embedlab.load_dataset("synthetic-collab", seed=5, **kw)
    c = embedlab.load_dataset("synthetic-collab", seed=6, **kw)
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.valid, b.valid)
    pd.testing.assert_frame_equal(a.entities["item"], b.entities["item"])
    assert not a.train.equals(c.train)
    assert len(a.train) + len(a.valid) == 600 and len(a.valid) == 60
    assert a.entities["item"]["genre"].nunique() == 3
    assert a.train["rating"].between(1, 5).all()


def test_synthetic_collab_shuffled_truth_keeps_ratings_and_permutes_labels():
    kw = dict(users=60, items=40, ratings=800, seed=2)
    plain = embedlab.load_dataset("synthetic-collab", **kw)
    shuffled = embedlab.load_dataset("synthetic-collab", shuffle_truth=True, **kw)
    pd.testing.assert_frame_equal(plain.train, shuffled.train)
    a, b = plain.entities["item"], shuffled.entities["item"]
    assert a["label"].tolist() == b["label"].tolist()
    assert sorted(a["true_bias"]) == sorted(b["true_bias"])
    assert (a["true_bias"].to_numpy() != b["true_bias"].to_numpy()).mean() > 0.8
    assert shuffled.info["generator"]["shuffle_truth"] is True


def test_synthetic_collab_rejects_more_genres_than_items():
    with pytest.raises(UsageError, match="--genres"):
        embedlab.load_dataset("synthetic-collab", items=3, genres=5)


def test_sample_rows_is_seeded_ordered_and_whole_when_small():
    from embedlab.data import sample_rows

    df = pd.DataFrame({"x": np.arange(100)})
    a, b = sample_rows(df, 30, seed=3), sample_rows(df, 30, seed=3)
    assert len(a) == 30 and a["x"].is_unique and a["x"].is_monotonic_increasing
    assert a.equals(b) and not a.equals(sample_rows(df, 30, seed=4))
    assert list(a.index) == list(range(30))
    assert sample_rows(df, 0, seed=3) is df and sample_rows(df, 100, seed=3) is df


def test_column_sets_default_to_none_named_and_are_per_dataset(ml100k_dir):
    from embedlab.data import Dataset

    a = Dataset("a", "tabular", pd.DataFrame({"x": [1]}), None, roles={"categorical": ["x"]})
    b = Dataset("b", "tabular", pd.DataFrame({"x": [1]}), None, roles={"categorical": ["x"]})
    a.column_sets["mine"] = {"categorical": ["x"]}
    assert b.column_sets == {}
    assert embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir).column_sets == {}
    guo = embedlab.load_dataset("synthetic-rossmann", n_stores=12, days=90).column_sets["guo2016"]
    assert guo["categorical"] == ["Store", "DayOfWeek", "Day", "Month", "Year", "Promo", "State"]


@pytest.mark.parametrize("name", ["movielens-100k", "movielens-latest-small", "movielens-1m"])
def test_movielens_without_a_data_dir_fetches_its_own_pinned_archive(monkeypatch, tmp_path, name):
    # the archive table lives with the dataset plugin; the core's download module only fetches
    from embedlab.io import download
    from embedlab_datasets import movielens

    asked = []
    monkeypatch.setattr(
        download, "ensure_dataset", lambda archive, subdir, **_: asked.append((archive, subdir)) or tmp_path
    )
    assert movielens._folder(name, None) == tmp_path
    assert asked == [(movielens.MOVIELENS_ARCHIVES[name], movielens.MOVIELENS_SUBDIRS[name])]
    assert asked[0][0].pinned  # a checksum to verify against
