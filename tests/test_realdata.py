"""Integration on the real MovieLens files under $EMBEDLAB_DATA_DIR (skipped cleanly without it).

Counts come from the official READMEs (ml-100k: 100,000 ratings by 943 users of 1,682 movies;
u1 80,000/20,000; ua 90,570/9,430; latest-small: 100,836 ratings by 610 users, 9,742 movies).
The data may not be redistributed, so it never lives in the repository.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import embedlab

from conftest import data_dir

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def ml100k():
    return data_dir("ml-100k")


@pytest.fixture(scope="module")
def latest_small():
    return data_dir("ml-latest-small")


def test_ml100k_counts_and_u1_split(ml100k):
    ds = embedlab.load_dataset("movielens-100k", data_dir=ml100k, split="u1")
    assert (len(ds.train), len(ds.valid)) == (80000, 20000)
    assert (ds.info["n_ratings"], ds.info["n_users"], ds.info["n_items"]) == (100000, 943, 1682)
    assert len(ds.entities["item"]) == 1682 and len(ds.entities["user"]) == 943
    assert ds.train["rating"].between(1, 5).all() and set(ds.train["rating"].unique()) == {1, 2, 3, 4, 5}
    assert ds.split == {"name": "u1", "canonical": True}


def test_ml100k_ua_split(ml100k):
    ds = embedlab.load_dataset("movielens-100k", data_dir=ml100k, split="ua")
    assert (len(ds.train), len(ds.valid)) == (90570, 9430)
    assert ds.valid.groupby("user").size().eq(10).all()  # ua.test: exactly 10 ratings per user


def test_ml100k_u1_to_u5_tests_partition_the_ratings(ml100k):
    seen = []
    for k in range(1, 6):
        ds = embedlab.load_dataset("movielens-100k", data_dir=ml100k, split=f"u{k}")
        assert len(ds.train) + len(ds.valid) == 100000
        seen.append(ds.valid[["user", "item"]])
    everything = pd.concat(seen)
    assert len(everything) == 100000 and not everything.duplicated().any()


def test_ml100k_random_split(ml100k):
    a = embedlab.load_dataset("movielens-100k", data_dir=ml100k, split="random", valid_pct=0.1, seed=42)
    b = embedlab.load_dataset("movielens-100k", data_dir=ml100k, split="random", valid_pct=0.1, seed=42)
    assert (len(a.train), len(a.valid)) == (90000, 10000)
    pd.testing.assert_frame_equal(a.valid, b.valid)
    assert a.split == {"name": "random", "valid_pct": 0.1, "seed": 42}


def test_ml100k_item_metadata(ml100k):
    items = embedlab.load_dataset("movielens-100k", data_dir=ml100k).entities["item"]
    assert items.loc[1, "label"] == "Toy Story (1995)"
    assert items.loc[1, "genres"] == "Animation|Children's|Comedy" and items.loc[1, "year"] == 1995
    assert items.loc[543, "label"] == "Misérables, Les (1995)"  # latin-1
    assert items.loc[267, "label"] == "unknown" and items.loc[267, "genres"] == "unknown"
    assert items["year"].between(1920, 1998).mean() > 0.99
    assert items["genre"].nunique() >= 15
    dup = items["label"].value_counts()
    assert (dup > 1).sum() >= 10  # e.g. "Chasing Amy (1997)": two item ids, two entities
    users = embedlab.load_dataset("movielens-100k", data_dir=ml100k).entities["user"]
    assert users.loc[1, "age"] == 24 and users.loc[1, "occupation"] == "technician"


def test_latest_small_counts_and_metadata(latest_small):
    ds = embedlab.load_dataset("movielens-latest-small", data_dir=latest_small, split="random", seed=42)
    assert len(ds.train) + len(ds.valid) == 100836 == ds.info["n_ratings"]
    assert ds.info["n_users"] == 610
    items = ds.entities["item"]
    assert len(items) == 9742 and items.index.is_unique
    assert items.loc[1, "label"] == "Toy Story (1995)"
    assert items.loc[1, "genres"] == "Adventure|Animation|Children|Comedy|Fantasy" and items.loc[1, "year"] == 1995
    assert items["year"].notna().mean() > 0.99
    assert ds.rating_range == (0.5, 5.0)
    assert set(pd.concat([ds.train, ds.valid])["rating"].unique()) == set(np.arange(1, 11) / 2)


@pytest.mark.slow
def test_ml100k_u1_default_training_reaches_rmse_below_095(ml100k, tmp_path_factory):
    """The headline command of the issue, through the CLI, with default settings."""
    from embedlab.cli import make_cli

    out = tmp_path_factory.mktemp("runs") / "ml100k-u1"
    result = CliRunner().invoke(
        make_cli(), ["train", "movielens-100k", "--data-dir", str(ml100k), "--split", "u1", "--out", str(out), "-q"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["metrics"]["valid_rmse"] < 0.95
    run = embedlab.load_run(out)
    assert run.metrics["valid_rmse"] < 0.95
    assert run.metrics["valid_rmse"] == pytest.approx(run.metrics["valid_mse"] ** 0.5, rel=1e-6)
    assert run.split == {"name": "u1", "canonical": True}
    item = run.table("item")
    assert len(item) == 1682 and len(run.table("user")) == 943
    top = item.bias.sort_values().tail()
    assert len(top) == 5 and all(isinstance(label, str) for label in top.index)
    frame = item.frame
    well_rated = frame[frame["count"] >= 50]
    # a large item bias goes with a high mean rating among the often-rated films
    assert np.corrcoef(well_rated["bias"], well_rated["mean_rating"])[0, 1] > 0.7
