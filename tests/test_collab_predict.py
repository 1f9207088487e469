"""Collab runs predict and recommend; the live learner's fastai verbs; the neural model.

One learner is trained once for the module (ml-100k u1 with EMBEDLAB_DATA_DIR, else the
synthetic stand-in) and exported as an ordinary run; every check reads that one training.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import embedlab
from embedlab.errors import UsageError
from embedlab.trainers.collab import rating_metrics


def _dataset():
    root = os.environ.get("EMBEDLAB_DATA_DIR")
    if root and (Path(root) / "ml-100k" / "u1.test").is_file():
        return embedlab.load_dataset("movielens-100k", data_dir=str(Path(root) / "ml-100k"), split="u1"), True
    return embedlab.load_dataset(
        "synthetic-collab", users=200, items=120, ratings=12000, readable_names=True
    ), False  # seed 42: the run reloads its data with its own seed


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """(dataset, live learner after one fit, its exported run folder, whether it is ml-100k u1)."""
    ds, real = _dataset()
    learn = embedlab.learner(ds, progress=False, n_factors=16 if not real else 40, y_range=(0, 5.5), reg=0, wd=0.1)
    learn.fit_one_cycle(1, 5e-3)
    out = tmp_path_factory.mktemp("collab-predict") / "run"
    learn.export(out)
    return ds, learn, out, real


def _pairs(ds, real: bool) -> pd.DataFrame:
    """u1.test's pairs in the file's order (the validation rows), or the stand-in's validation rows."""
    if real:
        root = Path(os.environ["EMBEDLAB_DATA_DIR"]) / "ml-100k"
        return pd.read_csv(root / "u1.test", sep="\t", names=["user", "item", "rating", "timestamp"])
    return ds.valid[["user", "item", "rating"]].reset_index(drop=True)


def _rmse(pred, target) -> float:
    return rating_metrics(
        torch.as_tensor(np.asarray(pred, dtype=np.float32)), torch.as_tensor(np.asarray(target, dtype=np.float32))
    )["valid_rmse"]


def test_predicting_the_validation_pairs_reproduces_the_runs_valid_rmse_exactly(trained, tmp_path):
    ds, learn, out, real = trained
    run = embedlab.load_run(out)
    pairs = _pairs(ds, real)
    preds = run.predict(pairs[["user", "item"]])
    assert list(preds["user"]) == list(pairs["user"]) and list(preds["item"]) == list(pairs["item"])
    assert (preds["unseen"] == "").all() and preds["prediction"].notna().all()
    assert _rmse(preds["prediction"], pairs["rating"]) == run.metrics["valid_rmse"]
    # the CLI: the same pairs from a CSV file, the same RMSE from the written file
    from click.testing import CliRunner

    from embedlab.cli import make_cli

    pairs.to_csv(tmp_path / "pairs.csv", index=False)
    res = CliRunner().invoke(
        make_cli(), ["predict", str(out), "--file", str(tmp_path / "pairs.csv"), "--out", str(tmp_path / "preds.csv")]
    )
    assert res.exit_code == 0, res.output
    written = pd.read_csv(tmp_path / "preds.csv")
    assert {"user_label", "item_label", "prediction", "rating"} <= set(written.columns)
    assert _rmse(written["prediction"], written["rating"]) == run.metrics["valid_rmse"]


def test_unseen_users_and_items_are_reported_not_dropped(trained, tmp_path):
    _, _, out, _ = trained
    run = embedlab.load_run(out)
    user, item = run.table("user").keys[0], run.table("item").keys[0]
    preds = run.predict(pd.DataFrame({"user": [user, 999999, user], "item": [item, item, 888888]}))
    assert len(preds) == 3
    assert list(preds["unseen"]) == ["", "user", "item"]
    assert np.isfinite(preds["prediction"][0]) and preds["prediction"][1:].isna().all()
    warnings = " ".join(preds.attrs["coverage"]["warnings"])
    assert "999999" in warnings and "888888" in warnings
    pd.DataFrame({"user": [user, 999999], "item": [item, item]}).to_csv(tmp_path / "p.csv", index=False)
    from click.testing import CliRunner

    from embedlab.cli import make_cli

    res = CliRunner().invoke(
        make_cli(), ["predict", str(out), "--file", str(tmp_path / "p.csv"), "-o", str(tmp_path / "o.csv")]
    )
    assert res.exit_code == 0, res.output
    assert "a user the run has no row for (e.g. 999999)" in res.output
    assert len(pd.read_csv(tmp_path / "o.csv")) == 2


def test_recommendations_exclude_rated_items_unless_asked(trained, tmp_path):
    ds, _, out, _ = trained
    run = embedlab.load_run(out)
    busiest = ds.train["user"].value_counts().index[0]
    rated = set(ds.train.loc[ds.train["user"] == busiest, "item"])
    recs = run.recommend(busiest, k=10, dataset=ds)
    assert len(recs) == 10 and list(recs["rank"]) == list(range(1, 11))
    assert not set(recs["item"]) & rated and not recs["rated"].any()
    assert recs["prediction"].is_monotonic_decreasing
    assert recs["item_label"].str.len().gt(0).all()
    # the best unrated items really are the highest-scored of all the unrated ones
    unrated = [k for k in run.table("item").keys if k not in rated]
    scores = run.predict(pd.DataFrame({"user": busiest, "item": unrated}))
    assert recs["prediction"].iloc[0] == pytest.approx(scores["prediction"].max())
    everything = run.recommend(busiest, k=len(run.table("item")), include_rated=True, dataset=ds)
    assert set(everything.loc[everything["rated"], "item"]) == rated
    # the CLI loads the training rows again from the run's recorded options
    from click.testing import CliRunner

    from embedlab.cli import make_cli

    res = CliRunner().invoke(
        make_cli(), ["predict", str(out), "--top", "5", "--user", str(busiest), "-o", str(tmp_path / "recs.csv")]
    )
    assert res.exit_code == 0, res.output
    written = pd.read_csv(tmp_path / "recs.csv")
    assert list(written["item"]) == list(recs["item"][:5]) and not set(written["item"]) & rated
    assert str(recs["item_label"].iloc[0]) in res.output
    with pytest.raises(UsageError, match="no entity"):
        run.recommend("no such user at all", k=3, dataset=ds)
    res = CliRunner().invoke(make_cli(), ["predict", str(out), "--user", str(busiest)])
    assert res.exit_code == 2 and "--user and --include-rated go with --top K" in res.output


def test_get_preds_returns_the_validation_targets_in_order(trained):
    ds, learn, out, _ = trained
    preds, targets = learn.get_preds()
    assert torch.equal(targets, torch.as_tensor(ds.valid["rating"].to_numpy(np.float32)))
    assert len(preds) == len(ds.valid)
    assert _rmse(preds, targets) == embedlab.load_run(out).metrics["valid_rmse"]
    row = ds.valid.iloc[7]
    assert learn.predict(row) == pytest.approx(float(preds[7]), abs=0)
    assert learn.predict((row["user"], row["item"])) == float(preds[7])
    results = learn.show_results(5)
    assert len(results.table) == 5 and {"user_label", "item_label", "target", "prediction"} <= set(results.table)
    assert results.rmse == pytest.approx(_rmse(preds, targets), rel=1e-6)
    assert results.by_item["rows"].sum() == len(ds.valid) and results.by_user["rows"].sum() == len(ds.valid)
    assert "RMSE by the item's ratings in training" in str(results) and "<table" in results._repr_html_()


def test_bias_and_weight_by_label_as_fastai(trained):
    _, learn, out, _ = trained
    run = embedlab.load_run(out)
    item = run.table("item")
    top = list(item.labels[np.argsort(-item.count)[:4]])
    got = learn.model.bias(top, is_item=True).detach().numpy()
    rows = [item.lookup(t) for t in top]
    np.testing.assert_array_equal(got, item.bias_values[rows])
    np.testing.assert_array_equal(learn.model.weight(top, is_item=True).detach().numpy(), item.vectors[rows])
    key = run.table("user").keys[3]
    np.testing.assert_array_equal(
        learn.model.bias([key], is_item=False).detach().numpy(), run.table("user").bias_values[[3]]
    )


def test_save_and_load_round_trip_bit_identically(trained, tmp_path, monkeypatch):
    from safetensors import safe_open

    ds, learn, _, _ = trained
    monkeypatch.chdir(tmp_path)
    first = learn.save("lesson")
    assert first == Path("models/lesson.safetensors") and first.is_file()
    assert b"pickle" not in first.read_bytes()[:64]
    fresh = embedlab.learner(ds, progress=False, **{k: learn.config[k] for k in ("n_factors", "y_range", "reg", "wd")})
    fresh.load("lesson")
    second = fresh.save(tmp_path / "again.safetensors")
    with safe_open(str(first), "pt") as a, safe_open(str(second), "pt") as b:
        assert set(a.keys()) == set(b.keys()) and any(k.startswith("opt.") for k in a.keys())
        for key in a.keys():
            x, y = a.get_tensor(key), b.get_tensor(key)
            assert x.dtype == y.dtype and torch.equal(x, y), key
        assert a.metadata()["optimizer"] == b.metadata()["optimizer"]  # lrs, betas, step counts
    for key, value in learn.model.state_dict().items():
        assert torch.equal(value, fresh.model.state_dict()[key]), key
    assert torch.equal(fresh.get_preds()[0], learn.get_preds()[0])
    exported = fresh.export(tmp_path / "from-loaded")  # a loaded learner exports without fitting again
    assert exported.metrics["valid_rmse"] == learn.run.metrics["valid_rmse"] and exported.history == []
    assert (
        embedlab.load_run(tmp_path / "from-loaded").table("item").vectors.tobytes()
        == learn.run.table("item").vectors.tobytes()
    )
    (tmp_path / "models" / "mine.safetensors").write_bytes(b"not embedlab's")
    with pytest.raises(UsageError, match="not a file embedlab wrote"):
        learn.save("mine")


def test_the_neural_model_trains_and_its_tables_analyse(tmp_path):
    from embedlab.training.models import EmbeddingNN, emb_sz_rule

    run = embedlab.train(
        "synthetic-collab",
        out=tmp_path / "nn",
        users=120,
        items=80,
        ratings=5000,
        epochs=2,
        model="nn",
        layers="32,16",
        ps="0.1",
        progress=False,
    )
    assert run.meta["model"]["class"] == "EmbeddingNN" and run.config["layers"] == [32, 16]
    assert run.config["ps"] == [0.1, 0.1]
    run = embedlab.load_run(tmp_path / "nn")
    user, item = run.table("user"), run.table("item")
    assert user.dim == emb_sz_rule(len(user) + 1) and item.dim == emb_sz_rule(len(item) + 1)
    assert user.bias_values is None and np.isfinite(run.metrics["valid_rmse"])
    ds = embedlab.load_dataset("synthetic-collab", users=120, items=80, ratings=5000)
    preds = run.predict(ds.valid[["user", "item"]])
    assert _rmse(preds["prediction"], ds.valid["rating"]) == run.metrics["valid_rmse"]
    res = embedlab.analyze(run, ["pca", "bias-ranking"], progress=False)
    assert res["pca", "item"].metrics["explained_variance_total"] > 0 and all(r.ok for r in res)
    assert not [r for r in res if r.analysis == "bias-ranking" and r.table and not r.skipped]  # no biases
    assert len(run.neighbors(item.labels[0], k=5)) == 5
    with pytest.raises(UsageError, match="add --model nn"):
        embedlab.train("synthetic-collab", users=30, items=20, ratings=500, layers="8", progress=False)
    # fastbook chapter 8 (items by title: 943 users, 1,664 titles, plus #na#): embs (944, 74), (1665, 102)
    assert EmbeddingNN(943, 1664).hparams["emb_sizes"] == [74, 102]
