"""--features / --preset hybrid: side columns, implicit feedback and the rating day as embeddings.

The validation rows never enter training (implicit feedback and days come from the training
rows only); every side feature is an ordinary table of the run; the default stays the id model.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import embedlab
from embedlab.data import check_entity_tables
from embedlab.errors import UsageError
from embedlab.trainers.collab import CollabTrainer
from embedlab.trainers.collab_features import hybrid, parse_features

FAST = {"epochs": 2, "n_factors": 4, "bs": 4, "seed": 3}


@pytest.fixture
def u1(ml100k_dir):
    return embedlab.load_dataset("movielens-100k", data_dir=ml100k_dir, split="u1")


def test_movielens_declares_side_columns_by_role(u1):
    assert u1.side_features["user"] == {
        "age_bucket": "ordinal",
        "gender": "category",
        "occupation": "category",
        "zip_region": "category",
    }
    assert u1.side_features["item"] == {"year_bucket": "ordinal", "genres": "multi"}
    users = u1.entities["user"]
    assert users.loc[1, "age_bucket"] == 20 and users.loc[2, "age_bucket"] == 50  # ages 24, 53
    assert users.loc[1, "zip_region"] == "8" and users.loc[6, "zip_region"] == "9"  # 85711, 98101


def test_parse_features():
    assert parse_features("ids") == () and parse_features(None) == ()
    assert parse_features("day+side") == ("side", "day")
    with pytest.raises(UsageError, match=r"--features 'side\+age'"):
        parse_features("side+age")


def _bags(ds, parts=("side", "implicit")):
    users = pd.Index(sorted(set(ds.train.user) | set(ds.valid.user)))
    items = pd.Index(sorted(set(ds.train.item) | set(ds.valid.item)))
    h = hybrid(ds, parts, users, items, check_entity_tables(ds, ("user", "item")))
    return users, items, h


def test_implicit_feedback_comes_from_training_rows_only(u1):
    users, items, h = _bags(u1)
    rated = next(t for t in h.user.tables if t.name == "rated")
    idx, off, w = h.user.bags
    ends = np.append(off[1:], len(idx))
    for code, user in enumerate(users):
        bag = idx[off[code] : ends[code]]
        got = {items[j - rated.offset] for j in bag if j >= rated.offset}
        assert got == set(u1.train.item[u1.train.user == user])  # u1.test's pairs are absent
        assert not got & set(u1.valid.item[u1.valid.user == user])
        n = len(got)
        assert np.allclose(w[off[code] : ends[code]][bag >= rated.offset], 1 / np.sqrt(n))


def test_validation_rows_do_not_change_training(u1):
    """Same training rows, different validation ratings, pairs and days: identical training."""
    other = u1.valid.copy()
    other["rating"] = 6 - other["rating"]
    other["item"] = other["item"].to_numpy()[::-1]  # other pairs of the same users and items
    other["timestamp"] = other["timestamp"] + 86400 * 400  # days the training rows never had
    changed = embedlab.data.Dataset(**{**u1.__dict__, "valid": other})
    cfg = {**FAST, "features": "side+implicit+day"}
    a = CollabTrainer().train(u1, cfg, progress=False)
    b = CollabTrainer().train(changed, cfg, progress=False)
    assert [h["train_loss"] for h in a.history] == [h["train_loss"] for h in b.history]
    for name in a.tables:
        assert np.array_equal(a.tables[name].vectors, b.tables[name].vectors), name
    assert a.metrics["valid_rmse"] != b.metrics["valid_rmse"]  # the validation rows did differ


def test_every_feature_is_a_table_of_the_run(u1, tmp_path):
    run = CollabTrainer().train(u1, {**FAST, "features": "side+implicit+day"}, progress=False)
    assert set(run.tables) == {
        "user",
        "item",
        "age_bucket",
        "gender",
        "occupation",
        "zip_region",
        "rated",
        "year_bucket",
        "genres",
        "raters",
        "day",
    }
    genres = run.tables["genres"]
    assert "Comedy" in list(genres.labels) and genres.vectors.shape[1] == 4
    comedy = list(genres.labels).index("Comedy")
    # Comedy films: items 1, 3, 4, 5, 6; their ratings in u1.base (not u1.test's)
    base = u1.train[u1.train.item.isin([1, 3, 4, 5, 6])]
    assert genres.metadata["count"][comedy] == len(base)
    assert run.tables["age_bucket"].attrs.get("ordinal") is True
    assert list(run.tables["rated"].labels[:2]) == ["Toy Story (1995)", "GoldenEye (1995)"]
    assert run.meta["config"]["features"] == "side+implicit+day"
    assert run.meta["model"]["class"] == "HybridDot"
    assert {t["name"] for t in run.meta["model"]["tables"]} >= {"occupation", "day"}
    # days: only the training rows' days
    days = set(pd.to_datetime(u1.train.timestamp, unit="s").dt.strftime("%Y-%m-%d"))
    assert set(run.tables["day"].keys) == days
    run.save(tmp_path / "run")
    back = embedlab.load_run(tmp_path / "run")
    assert np.allclose(back.tables["occupation"].vectors, run.tables["occupation"].vectors)
    # the user table is the composed vector the model multiplies: predictions come back from it
    user, item = run.tables["user"], run.tables["item"]
    assert user.vectors.shape == (6, 4) and np.isfinite(user.vectors).all()


def test_preset_hybrid_and_explicit_options(u1):
    trainer = CollabTrainer()
    default = trainer.default_config()
    assert (default["features"], default["n_factors"], default["epochs"], default["bs"], default["reg"]) == (
        "ids",
        100,
        5,
        256,
        0.05,
    )
    hyb = trainer.resolve_config({"preset": "hybrid"})
    assert hyb["features"] == "side+implicit+day" and hyb["wd"] == 2.0 and hyb["bs"] == 1024
    mine = trainer.resolve_config({"preset": "hybrid", "epochs": 2, "wd": 0.5, "features": "side"})
    assert (mine["epochs"], mine["wd"], mine["features"], mine["n_factors"], mine["members"]) == (2, 0.5, "side", 64, 3)
    assert default["init_std"] == 0.01 and default["members"] == 1
    assert trainer.resolve_config({"preset": "hybrid", "opt": "sgd"})["wd"] is None  # sgd: its own default
    run = trainer.train(u1, {**FAST}, progress=False)
    assert run.meta["model"]["class"] == "DotBias" and set(run.tables) == {"user", "item"}
    with pytest.raises(UsageError, match="preset='best'"):
        trainer.resolve_config({"preset": "best"})


def test_side_features_without_an_entity_table_is_a_clear_error(u1):
    ds = embedlab.data.Dataset(**{**u1.__dict__, "entities": {"item": u1.entities["item"]}})
    with pytest.raises(UsageError, match="no user table"):
        CollabTrainer().train(ds, {**FAST, "features": "side"}, progress=False)
    ok = CollabTrainer().train(ds, {**FAST, "features": "implicit"}, progress=False)
    assert "rated" in ok.tables and "age_bucket" not in ok.tables


def test_a_features_run_predicts_from_its_composed_tables(u1, tmp_path):
    run = CollabTrainer().train(u1, {**FAST, "features": "side+implicit"}, progress=False)
    run.save(tmp_path / "run")
    back = embedlab.load_run(tmp_path / "run")
    pred = CollabTrainer().predict(back, u1)
    err = pred["prediction"].to_numpy() - u1.valid["rating"].to_numpy()
    assert np.sqrt(np.mean(err**2)) == pytest.approx(run.metrics["valid_rmse"], abs=1e-5)


def test_features_refuse_the_neural_and_fused_paths(u1):
    with pytest.raises(UsageError, match="--model dot"):
        CollabTrainer().train(u1, {**FAST, "features": "side", "model": "nn"}, progress=False)
    with pytest.raises(UsageError, match="--kernel fused"):
        CollabTrainer().train(u1, {**FAST, "features": "side", "kernel": "fused"}, progress=False)


def test_members_train_side_by_side_and_predict_their_mean(u1):
    from embedlab.training.models import member_mse

    run = CollabTrainer().train(u1, {**FAST, "features": "side", "members": 3}, progress=False)
    assert run.meta["model"]["members"] == 3
    assert run.tables["user"].vectors.shape == (6, 12) and run.tables["occupation"].vectors.shape[1] == 12
    pred = torch.tensor([[1.0, 3.0], [2.0, 2.0]])
    assert float(member_mse(pred, torch.tensor([2.0, 2.0]))) == pytest.approx(0.5)  # each member's own error
    with pytest.raises(UsageError, match="add --features"):
        CollabTrainer().train(u1, {**FAST, "members": 2}, progress=False)


def test_bias_wd_reaches_the_optimizer(u1):
    run = CollabTrainer().train(u1, {**FAST, "features": "side", "wd": 0.3, "bias_wd": 0.0}, progress=False)
    groups = run.meta["layer_groups"]
    assert groups["biases"]["wd"] == 0.0 and groups["embeddings"]["wd"] == 0.3


def test_ratings_csv_side_feature_files(tmp_path):
    (tmp_path / "r.csv").write_text(
        "who,what,stars\n"
        + "\n".join(f"{u},{i},{(u * i) % 5 + 1}" for u in range(1, 9) for i in range(1, 7) if (u + i) % 3)
        + "\n"
    )
    (tmp_path / "users.csv").write_text(
        "who,job,region\n"
        + "\n".join(f"{u},{'dev' if u % 2 else 'ops'},{'north' if u < 5 else 'south'}" for u in range(1, 9))
        + "\n"
    )
    (tmp_path / "items.csv").write_text(
        "id,tags\n" + "\n".join(f"{i},{'a|b' if i % 2 else 'c'}" for i in range(1, 7)) + "\n"
    )
    ds = embedlab.load_dataset(
        "ratings-csv",
        file=tmp_path / "r.csv",
        user="who",
        item="what",
        rating="stars",
        user_features=tmp_path / "users.csv",
        item_features=tmp_path / "items.csv",
        valid_pct=0.2,
    )
    assert ds.side_features == {"user": {"job": "category", "region": "category"}, "item": {"tags": "multi"}}
    run = CollabTrainer().train(ds, {**FAST, "features": "side"}, progress=False)
    assert sorted(run.tables["tags"].labels) == ["a", "b", "c"] and list(run.tables["job"].labels) == ["dev", "ops"]
    (tmp_path / "bad.csv").write_text("who\n1\n")
    with pytest.raises(embedlab.errors.DataError, match="no feature columns"):
        embedlab.load_dataset(
            "ratings-csv",
            file=tmp_path / "r.csv",
            user="who",
            item="what",
            rating="stars",
            user_features=tmp_path / "bad.csv",
        )
