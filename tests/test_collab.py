"""Collaborative filtering on planted truth, determinism, and the run format (save/load, safety).

synthetic-collab plants item biases and genres; a trainer that learns anything recovers them,
and the same check against shuffled truth (the negative control) must fail.
"""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import spearmanr

import embedlab
from embedlab.errors import RunFormatError
from embedlab.run import FORMAT_VERSION, EmbeddingTable, Run, load_run

PLANTED = dict(users=300, items=150, ratings=20000, genres=4, epochs=4, seed=1)


@pytest.fixture(scope="module")
def planted_run():
    return embedlab.train("synthetic-collab", **PLANTED)


def _knn_genre_accuracy(vectors: np.ndarray, genres: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-NN (cosine) accuracy of predicting each item's genre from the others."""
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    hits = 0
    for i, row in enumerate(sim):
        near = genres[np.argsort(-row)[:k]]
        values, counts = np.unique(near, return_counts=True)
        hits += values[np.argmax(counts)] == genres[i]
    return hits / len(genres)


# ---------------------------------------------------------------------------- planted truth


def test_learned_item_bias_recovers_planted_bias(planted_run):
    item = planted_run.table("item")
    rho = spearmanr(item.bias_values, item.metadata["true_bias"]).statistic
    assert rho >= 0.9, f"Spearman(learned, planted item bias) = {rho:.3f}"


def test_shuffled_truth_control_is_not_recovered(planted_run):
    """Same ratings (so the same trained model), planted labels shuffled: no recovery."""
    plain = embedlab.load_dataset("synthetic-collab", **{k: v for k, v in PLANTED.items() if k != "epochs"})
    control = embedlab.load_dataset(
        "synthetic-collab", shuffle_truth=True, **{k: v for k, v in PLANTED.items() if k != "epochs"}
    )
    pd.testing.assert_frame_equal(plain.train, control.train)
    pd.testing.assert_frame_equal(plain.valid, control.valid)
    shuffled = control.entities["item"].reindex(planted_run.table("item").keys)
    rho = spearmanr(planted_run.table("item").bias_values, shuffled["true_bias"]).statistic
    assert abs(rho) < 0.3, f"control Spearman {rho:.3f} should be near 0"
    acc = _knn_genre_accuracy(planted_run.table("item").vectors, shuffled["genre"].to_numpy())
    assert acc < 0.45, f"k-NN accuracy on shuffled genres {acc:.2f} should be near chance (0.25)"


def test_item_vectors_separate_planted_genres(planted_run):
    item = planted_run.table("item")
    genres = item.metadata["genre"].to_numpy()
    acc = _knn_genre_accuracy(item.vectors, genres)
    assert acc >= 0.8, f"5-NN genre accuracy {acc:.2f} (chance 0.25)"
    unit = item.vectors / np.linalg.norm(item.vectors, axis=1, keepdims=True)
    sim = unit @ unit.T
    same = genres[:, None] == genres[None, :]
    off_diag = ~np.eye(len(genres), dtype=bool)
    assert sim[same & off_diag].mean() > sim[~same].mean() + 0.3


def test_metrics_and_history_are_recorded(planted_run):
    m = planted_run.metrics
    for key in ("valid_mse", "valid_rmse", "valid_mae", "train_seconds"):
        assert key in m and np.isfinite(m[key])
    assert m["valid_rmse"] == pytest.approx(m["valid_mse"] ** 0.5, rel=1e-6)
    assert m["valid_rmse"] < 0.8  # noise sd 0.5 + rounding to half stars; a mean predictor is ~1.2
    assert [h["epoch"] for h in planted_run.history] == [1, 2, 3, 4]
    assert planted_run.history[-1]["valid_mse"] == pytest.approx(m["valid_mse"])
    assert planted_run.split == {"name": "random", "valid_pct": 0.1, "seed": 1}
    assert planted_run.seed == 1 and planted_run.config["epochs"] == 4


# ---------------------------------------------------------------------------- determinism

SMALL = dict(users=80, items=50, ratings=3000, epochs=2, n_factors=8)


def _without_timing(d: dict) -> dict:
    return {k: v for k, v in d.items() if "second" not in k}


def test_same_seed_gives_identical_metrics_and_weights(tmp_path):
    a = embedlab.train("synthetic-collab", out=tmp_path / "a", seed=7, **SMALL)
    b = embedlab.train("synthetic-collab", out=tmp_path / "b", seed=7, **SMALL)
    c = embedlab.train("synthetic-collab", seed=8, **SMALL)
    assert _without_timing(a.metrics) == _without_timing(b.metrics)
    assert [_without_timing(h) for h in a.history] == [_without_timing(h) for h in b.history]
    la, lb = embedlab.load_run(tmp_path / "a"), embedlab.load_run(tmp_path / "b")
    ta, tb = la.tensors(), lb.tensors()
    assert ta.keys() == tb.keys() and ta
    for key in ta:
        assert torch.equal(ta[key], tb[key]), key
    for name in ("user", "item"):
        np.testing.assert_array_equal(la.table(name).vectors, lb.table(name).vectors)
        np.testing.assert_array_equal(la.table(name).bias_values, lb.table(name).bias_values)
    assert not np.array_equal(a.table("item").vectors, c.table("item").vectors)


# ---------------------------------------------------------------------------- run format


def _handmade_run() -> Run:
    rng = np.random.default_rng(0)
    user = EmbeddingTable(
        "user",
        keys=np.array([30, 10, 20], dtype=np.int64),
        labels=["u30", "u10", "NA"],
        vectors=rng.normal(size=(3, 4)),
        bias_values=[0.5, -0.25, 0.125],
        metadata=pd.DataFrame({"count": [3, 1, 2], "age": [20.5, np.nan, 31.0], "job": ["NA", "x", "y"]}),
        attrs={"count_column": "count", "target_column": "mean_rating"},
    )
    item = EmbeddingTable(
        "item",
        keys=np.array(["007", "B", "nan", "1e5"]),
        labels=["Chasing Amy (1997)", 'Say "Hi", Bob', "Chasing Amy (1997)", "Ünïcødé"],
        vectors=rng.normal(size=(4, 4)),
        bias_values=[1.0, 2.0, 3.0, 4.0],
        metadata=pd.DataFrame({"genre": ["a", "b", "a", "c"], "cycle_order": [0, 1, 2, 3]}),
        attrs={"color_column": "genre", "cycle_length": 4},
    )
    store = EmbeddingTable("Store", keys=np.array([1, 2]), labels=["one", "two"], vectors=rng.normal(size=(2, 3)))
    meta = {
        "dataset": "handmade",
        "kind": "collab",
        "config": {"epochs": 2, "lr": 0.01},
        "seed": 3,
        "split": {"name": "random", "valid_pct": 0.1, "seed": 3},
        "metrics": {"valid_mse": 0.5, "valid_rmse": 0.5**0.5, "valid_mae": 0.4, "train_seconds": 1.5},
        "history": [
            {"epoch": 1, "train_loss": 1.0, "valid_mse": 0.7},
            {"epoch": 2, "train_loss": 0.8, "valid_mse": 0.5},
        ],
    }
    tensors = {"model.extra": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    return Run(meta, {"user": user, "item": item, "Store": store}, tensors)


def test_run_save_load_round_trip(tmp_path):
    run = _handmade_run()
    run.save(tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        ".embedlab-files.json",
        "Store.csv",
        "item.csv",
        "run.json",
        "user.csv",
        "weights.safetensors",
    ]
    loaded = embedlab.load_run(tmp_path / "run")
    assert loaded.table_names == ["user", "item", "Store"]
    for name in loaded.table_names:
        a, b = run.table(name), loaded.table(name)
        np.testing.assert_array_equal(a.keys, b.keys)
        # int keys stay int, str keys stay str
        assert np.issubdtype(a.keys.dtype, np.integer) == np.issubdtype(b.keys.dtype, np.integer), name
        assert [type(k) for k in a.keys.tolist()] == [type(k) for k in b.keys.tolist()], name
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_array_equal(a.vectors, b.vectors)
        assert a.attrs == b.attrs
        pd.testing.assert_frame_equal(a.metadata, b.metadata, check_dtype=False, check_column_type=False)
    item = loaded.table("item")
    assert item.keys.tolist() == ["007", "B", "nan", "1e5"]  # no leading-zero or NaN mangling
    assert item.bias["Ünïcødé"] == 4.0
    assert item.bias['Say "Hi", Bob'] == 2.0
    assert item.bias.loc["Chasing Amy (1997)"].tolist() == [1.0, 3.0]
    assert item.bias.index.name == "label"
    assert loaded.table("user").keys.tolist() == [30, 10, 20]
    assert loaded.table("user").labels.tolist() == ["u30", "u10", "NA"]
    assert loaded.table("user").metadata["job"].tolist() == ["NA", "x", "y"]
    assert np.isnan(loaded.table("user").metadata["age"][1])
    assert loaded.table("Store").bias is None
    assert loaded.history == run.history and loaded.metrics == run.metrics
    assert (loaded.dataset, loaded.kind, loaded.seed, loaded.split, loaded.config) == (
        "handmade",
        "collab",
        3,
        run.split,
        run.config,
    )
    assert torch.equal(loaded.tensors()["model.extra"], run.tensors()["model.extra"])
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["tables"]["user"]["key_dtype"] == "int" and meta["tables"]["item"]["key_dtype"] == "str"


def test_trained_run_round_trip(synthetic_run):
    run = embedlab.load_run(synthetic_run)
    assert run.dataset == "synthetic-collab" and run.kind == "collab"
    item = run.table("item")
    assert item.keys.dtype.kind == "i" and len(item) == 200
    assert set(item.metadata.columns) >= {"count", "mean_rating", "genre", "true_bias"}
    assert item.bias.index[0] == item.labels[0]
    assert item.bias.sort_values().tail().shape == (5,)
    for key in ("valid_mse", "valid_rmse", "valid_mae", "train_seconds"):
        assert key in run.metrics
    assert {"embedlab", "python", "torch"} <= set(json.loads((synthetic_run / "run.json").read_text())["versions"])
    assert any(k.startswith("model.") for k in run.tensors())


class _Trap:
    """Unpickling this creates ``marker``: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_loading_never_unpickles(synthetic_run, tmp_path, writer):
    proof = tmp_path / "proof-the-trap-works"
    pickle.loads(pickle.dumps(_Trap(proof))).close()
    assert proof.exists()  # the payload really executes when unpickled

    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run, run_dir)
    marker = tmp_path / "pwned"
    weights = run_dir / "weights.safetensors"
    if writer == "pickle":
        weights.write_bytes(pickle.dumps({"tables.item.vectors": _Trap(marker)}))
    else:
        torch.save({"tables.item.vectors": _Trap(marker)}, weights)
    with pytest.raises(RunFormatError, match="never loads pickled weights"):
        embedlab.load_run(run_dir)
    assert not marker.exists()


def test_newer_format_version_is_refused(synthetic_run, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run, run_dir)
    meta = json.loads((run_dir / "run.json").read_text())
    meta["format_version"] = FORMAT_VERSION + 1
    (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match=f"format version {FORMAT_VERSION + 1}.*upgrade"):
        embedlab.load_run(run_dir)


@pytest.mark.parametrize(
    "damage,message",
    [
        ("no-csv", "item.csv' is missing"),
        ("no-weights", "weights.safetensors' is missing"),
        ("truncated-weights", "not a valid safetensors file"),
        ("bad-json", "not valid JSON"),
        ("csv-outside", "table 'item' names an unusable file"),
    ],
)
def test_damaged_run_folders_are_refused_cleanly(synthetic_run, tmp_path, damage, message):
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run, run_dir)
    if damage == "no-csv":
        (run_dir / "item.csv").unlink()
    elif damage == "no-weights":
        (run_dir / "weights.safetensors").unlink()
    elif damage == "truncated-weights":
        data = (run_dir / "weights.safetensors").read_bytes()
        (run_dir / "weights.safetensors").write_bytes(data[: len(data) // 2])
    elif damage == "bad-json":
        (run_dir / "run.json").write_text("{not json")
    else:  # a run.json pointing a table at a file outside the folder
        meta = json.loads((run_dir / "run.json").read_text())
        meta["tables"]["item"]["csv"] = "../../outside.csv"
        (run_dir / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match=message):
        embedlab.load_run(run_dir)


# ---------------------------------------------------------------------------- run format 2
def test_run_format_2_stores_each_tensor_once_and_reads_format_1_unchanged(tmp_path, monkeypatch):
    import json

    import embedlab.run as run_module
    from embedlab.testing import synthetic_run

    run = synthetic_run()
    v2 = run.save(tmp_path / "v2")
    meta = json.loads((v2 / "run.json").read_text())
    assert meta["format_version"] == 2
    for name, info in meta["tables"].items():  # every table names the model tensor it comes from
        assert info["vectors_from"]["tensor"] in run.tensors() and "bias_from" in info, (name, info)
    # format 1: every table stored a second time beside the model (what embedlab wrote before)
    monkeypatch.setattr(run_module, "_model_rows", lambda values, model: None)
    v1 = run.save(tmp_path / "v1")
    monkeypatch.undo()
    meta1 = json.loads((v1 / "run.json").read_text())
    meta1["format_version"] = 1
    (v1 / "run.json").write_text(json.dumps(meta1))
    assert "vectors_from" not in meta1["tables"]["item"]
    size1, size2 = ((p / "weights.safetensors").stat().st_size for p in (v1, v2))
    assert size2 < 0.6 * size1, (size1, size2)
    a, b = load_run(v1), load_run(v2)
    for name in run.table_names:
        assert np.array_equal(a.table(name).vectors, b.table(name).vectors)
        assert np.array_equal(a.table(name).bias_values, b.table(name).bias_values)
        assert np.array_equal(b.table(name).vectors, run.table(name).vectors)
    assert set(a.tensors()) == set(b.tensors()) and all(
        torch.equal(a.tensors()[k], b.tensors()[k]) for k in a.tensors()
    )
    b.table("item").vectors[0, 0] += 1  # a table's arrays are its own, not views of the model's
    assert not np.array_equal(b.table("item").vectors, load_run(v2).table("item").vectors)
    assert torch.equal(
        b.tensors()[meta["tables"]["item"]["vectors_from"]["tensor"]],
        load_run(v2).tensors()[meta["tables"]["item"]["vectors_from"]["tensor"]],
    )


def test_a_damaged_vectors_from_is_a_run_format_error(tmp_path):
    import json

    from embedlab.errors import RunFormatError
    from embedlab.testing import synthetic_run

    out = synthetic_run(out=tmp_path / "r").path
    meta = json.loads((out / "run.json").read_text())
    meta["tables"]["item"]["vectors_from"]["rows"] = [0, 10**9]
    (out / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RunFormatError, match="vectors_from"):
        load_run(out)
