"""The ``onehot`` analysis and the one-hot network: an embedding lookup is one-hot @ W, and the
retrained one-hot network against the embedding network (same rows, split, epochs, seed)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab.errors import UsageError
from embedlab.registry import analyses, trainer_of_run
from embedlab.run import EmbeddingTable, Run
from embedlab.runner import run_analyses

from embedlab_plugins.onehot import PAPER, lookup_equivalence


@pytest.fixture(scope="module")
def result(guo_tiny_run):
    return run_analyses(guo_tiny_run, ["onehot"], {}, render=True)[0]


# ---------------------------------------------------------------------------- the network
def _pair(encoding: str):
    import torch

    from embedlab.training.models import EntityEmbeddingNet

    torch.manual_seed(0)
    kw = dict(n_cont=2, layers=[16, 8], ps=[0.0, 0.0], y_range=(0.0, 10.0), batchnorm=False)
    emb = EntityEmbeddingNet([5, 9], [3, 4], **kw)
    other = EntityEmbeddingNet([5, 9], [3, 4], categorical_encoding=encoding, **kw)
    return emb, other


def test_onehot_network_takes_a_real_onehot_vector_through_a_linear_layer():
    import torch
    from torch import nn

    emb, hot = _pair("onehot")
    assert not any(isinstance(m, nn.Embedding) for m in hot.modules())
    assert [(lin.in_features, lin.out_features, lin.bias is not None) for lin in hot.onehots] == [
        (5, 3, True),
        (9, 4, True),
    ]
    # the same network once the linear layers carry the embedding (weights W.T, biases b):
    # one-hot @ W.T + b equals the lookup of W + b, through the same layers above
    with torch.no_grad():
        for e, lin in zip(emb.embeds, hot.onehots):
            lin.weight.copy_(torch.randn_like(lin.weight))
            lin.bias.copy_(torch.randn_like(lin.bias))
            e.weight.copy_(lin.weight.t() + lin.bias)
        hot.body.load_state_dict(emb.body.state_dict())
        hot.head.load_state_dict(emb.head.state_dict())
    cats = torch.stack([torch.randint(0, 5, (64,)), torch.randint(0, 9, (64,))], 1)
    conts = torch.randn(64, 2)
    assert torch.allclose(hot(cats, conts), emb(cats, conts), atol=1e-5)
    assert torch.allclose(hot.table_weight(1), emb.embeds[1].weight)
    assert hot.categorical_parameter_count() == 5 * 3 + 3 + 9 * 4 + 4
    assert emb.categorical_parameter_count() == 5 * 3 + 9 * 4


def test_onehot_direct_feeds_the_first_hidden_layer():
    import torch

    emb, direct = _pair("onehot-direct")
    first = direct.body[0]
    assert first.in_features == 5 + 9 + 2 and len(direct.embeds) == 0 == len(direct.onehots)
    assert direct.table_weight(1).shape == (9, 16)
    assert torch.equal(direct.table_weight(1), first.weight[:, 5:14].t())
    assert direct.categorical_parameter_count() == 16 * 14
    with pytest.raises(ValueError, match="categorical_encoding"):
        type(emb)([3], [2], 0, categorical_encoding="hashing")


def test_trainer_declares_and_honours_the_encodings(guo_tiny_run, tmp_path):
    from embedlab.trainers.tabular import CATEGORICAL_ENCODINGS
    from embedlab.training.models import CATEGORICAL_ENCODINGS as MODEL_ENCODINGS

    assert CATEGORICAL_ENCODINGS == MODEL_ENCODINGS
    trainer = trainer_of_run(guo_tiny_run)
    assert set(trainer.categorical_encodings) == {"embedding", "onehot", "onehot-direct"}
    run = embedlab.train(
        "synthetic-rossmann",
        out=tmp_path / "hot",
        preset="guo2016",
        epochs=1,
        n_stores=24,
        days=240,
        split="time",
        train_sample=2000,
        seed=1,
        categorical_encoding="onehot",
        progress=False,
    )
    again = embedlab.load_run(tmp_path / "hot")  # a saved one-hot run rebuilds its network
    assert again.meta["model"]["categorical_encoding"] == "onehot"
    enc = trainer.encode_rows(
        again,
        embedlab.load_dataset("synthetic-rossmann", n_stores=24, days=240, split="time", seed=1).valid.head(50),
        "rows",
    )
    assert np.isfinite(enc.prediction).all()
    store = run.tables["Store"]
    assert np.allclose(enc.embeddings[0][1:], store.vectors, atol=1e-6)  # W.T + b, row 0 unknown
    with pytest.raises(UsageError, match="--init-from"):
        embedlab.train(
            "synthetic-rossmann",
            preset="guo2016",
            epochs=1,
            n_stores=24,
            days=240,
            train_sample=500,
            categorical_encoding="onehot",
            init_from=str(tmp_path / "hot"),
            progress=False,
        )


# ---------------------------------------------------------------------------- the equivalence
def test_lookup_equals_onehot_matmul_for_every_entity_and_the_savings_are_measured():
    w = np.random.default_rng(0).normal(size=(2000, 16)).astype(np.float32)
    res = lookup_equivalence(w, batch=4096)
    assert res["equal"] and res["rows"] == 2000 and res["max_abs_diff"] <= res["tolerance"]
    assert res["onehot_input_bytes"] == 4096 * 2000 * 4 and res["lookup_input_bytes"] == 4096 * 8
    assert res["onehot_multiply_adds"] == 4096 * 2000 * 16
    assert res["onehot_seconds"] > res["lookup_seconds"] > 0  # 32 MB of one-hot floats vs 32 KB of codes
    big = lookup_equivalence(np.ones((5_000, 2), np.float32), batch=4096, repeats=1)
    assert big["batch"] == 2**24 // 5_000 < 4096 and big["equal"]  # one-hot blocks stay within 64 MB


def test_the_check_fails_where_onehot_matmul_differs_from_the_lookup():
    w = np.random.default_rng(1).normal(size=(50, 4)).astype(np.float32)
    w[7, 2] = np.inf  # 0 * inf is NaN: every other row's one-hot product is NaN there
    assert not lookup_equivalence(w)["equal"]
    table = EmbeddingTable("item", np.arange(50), np.array([f"item {k}" for k in range(50)]), w)
    r = run_analyses(Run({"dataset": "x", "kind": "collab"}, {"item": table}), ["onehot"], {})[0]
    assert r.error is None and r.metrics["lookup_equals_onehot"] == 0.0 and "FAILS" in r.summary


def test_collab_run_gets_the_equivalence_only(synthetic_run):
    run = embedlab.load_run(synthetic_run)
    r = run_analyses(run, ["onehot"], {}, render=True)[0]
    assert r.error is None, r.error
    assert r.metrics["lookup_equals_onehot"] == 1.0
    assert r.metrics["entities_checked"] == sum(len(run.table(n)) for n in run.table_names)
    eq = r.tables["lookup against one-hot @ W (every entity)"]
    assert set(eq["table"]) == set(run.table_names) and eq["equal"].all()
    assert "No retraining" in r.summary and not any(k.startswith("onehot_valid") for k in r.metrics)
    assert r.figures


# ---------------------------------------------------------------------------- the retraining
def test_onehot_runs_only_when_named(guo_tiny_run):
    entry = analyses()["onehot"]
    assert not entry.by_default
    assert entry.applies_to(guo_tiny_run) == [None]  # RUN_LEVEL
    assert entry.applies_to(Run({"dataset": "x", "kind": "collab"}, {})) == []


def test_embedding_arm_is_the_run_again_and_onehot_is_measured_beside_it(guo_tiny_run, result):
    assert result.error is None, result.error
    m = result.metrics
    # same rows, split, epochs and seed: the embedding arm reproduces the run's own network
    assert m["embedding_valid_mape"] == pytest.approx(guo_tiny_run.metrics["valid_mape"], rel=1e-6)
    assert m["onehot_valid_mape"] != m["embedding_valid_mape"]
    assert m["onehot_over_embedding_valid_mape"] == pytest.approx(m["onehot_valid_mape"] / m["embedding_valid_mape"])
    sizes = guo_tiny_run.meta["model"]["emb_sizes"]
    cards = guo_tiny_run.meta["model"]["cardinalities"]
    assert m["onehot_parameters"] - m["embedding_parameters"] == sum(sizes)  # the linear layers' biases
    assert m["embedding_categorical_parameters"] == sum(c * s for c, s in zip(cards, sizes))
    for arm in ("onehot", "embedding"):
        assert m[f"{arm}_train_seconds"] > 0 and m[f"{arm}_cpu_seconds"] > 0
        assert np.isfinite(m[f"{arm}_peak_memory_mb"])
    assert m["lookup_equals_onehot"] == 1.0
    frame = result.tables["one-hot against embedding (retrained, this process)"]
    assert list(frame["arm"]) == ["embedding", "onehot"]
    assert list(frame["paper"]) == [PAPER["time"][1], PAPER["time"][0]]  # Table 4 beside a time split
    assert {"load before", "load after", "wall seconds", "cpu seconds"} <= set(frame.columns)
    assert "Table 4" in result.summary and result.finding.startswith("one-hot valid_mape")
    assert len(result.figures) == 3


def test_arms_option_is_checked(guo_tiny_run):
    r = run_analyses(guo_tiny_run, ["onehot"], {"onehot_arms": "embedding,hashing"})[0]
    assert r.error and "hashing" in r.error
    r = run_analyses(guo_tiny_run, ["onehot"], {"onehot_retrain": False})[0]
    assert r.error is None and "--onehot-retrain false" in r.summary and "onehot_valid_mape" not in r.metrics


def test_cli_json(synthetic_run):
    from embedlab.authoring.testing import invoke

    res = invoke(["analyze", str(synthetic_run), "--only", "onehot", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    results = out["results"] if isinstance(out, dict) else out
    found = [r for r in results if r["analysis"] == "onehot"]
    assert found and found[0]["metrics"]["lookup_equals_onehot"] == 1.0
    assert isinstance(pd.DataFrame(found[0]["tables"][next(iter(found[0]["tables"]))]), pd.DataFrame)
