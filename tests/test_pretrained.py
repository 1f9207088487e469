"""Pretrained vectors: reading the exchange formats back, aligning by key, initialising tables.

The round trips write a table with :func:`embedlab.io.exchange.export_table` and read it back with
:func:`embedlab.io.exchange.read_vectors`; alignment tests shuffle the rows of a file and check
that each model row receives the vector of its own key, never of its position.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

import embedlab
from embedlab.errors import DataError, UsageError
from embedlab.io.exchange import export_table, read_keys, read_vectors
from embedlab.training.pretrained import Slot, align, initialise, normalise_key, Source
from embedlab.run import EmbeddingTable

RNG = np.random.default_rng(0)


def table(keys, dim=4, name="item", bias=True, counts=None) -> EmbeddingTable:
    vectors = RNG.normal(size=(len(keys), dim)).astype(np.float32)
    meta = pd.DataFrame({"count": counts if counts is not None else np.arange(1, len(keys) + 1)})
    return EmbeddingTable(
        name=name,
        keys=np.asarray(keys),
        labels=[f"label {k}" for k in keys],
        vectors=vectors,
        bias_values=RNG.normal(size=len(keys)).astype(np.float32) if bias else None,
        metadata=meta,
        attrs={"count_column": "count"},
    )


# ---------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("fmt", ["projector", "word2vec", "npy"])
def test_export_then_import_round_trips_keys_and_vectors(fmt, tmp_path):
    t = table(["a", "b c", "d\te", "7"], dim=5)
    files = export_table(t, fmt, tmp_path)
    vec = read_vectors(files[0])
    assert vec.fmt == fmt
    # keys come back as exported (tabs become spaces in every text format)
    assert vec.keys == ["a", "b c", "d e", "7"]
    if fmt == "npy":
        assert np.array_equal(vec.vectors, t.vectors)
    else:
        np.testing.assert_allclose(vec.vectors, t.vectors, rtol=1e-5, atol=1e-6)


def test_word2vec_without_metadata_uses_tokens_and_matching_tokenises(tmp_path):
    t = table(["new york", "paris"], dim=3)
    export_table(t, "word2vec", tmp_path)
    (tmp_path / "metadata.tsv").unlink()
    vec = read_vectors(tmp_path / "vectors.txt")
    assert vec.keys == ["new_york", "paris"] and vec.tokens
    src = Source(vec.keys, vec.vectors, "x", "word2vec", tokens=True)
    t_rows, s_rows = align(["paris", "new york", "rome"], src)
    assert t_rows.tolist() == [0, 1] and s_rows.tolist() == [1, 0]


def test_word2vec_without_header_and_keys_file_variants(tmp_path):
    (tmp_path / "glove.txt").write_text("a 1 2\nb 3 4\n")
    vec = read_vectors(tmp_path / "glove.txt")
    assert vec.keys == ["a", "b"] and vec.vectors.tolist() == [[1, 2], [3, 4]]
    (tmp_path / "plain.txt").write_text("x\ny\n")
    (tmp_path / "meta.tsv").write_text("label\tkey\tcount\nX\tx\t1\nY\ty\t2\n")
    (tmp_path / "word.tsv").write_text("word\tcount\nx\t1\ny\t2\n")
    assert read_keys(tmp_path / "plain.txt") == ["x", "y"]
    assert read_keys(tmp_path / "meta.tsv") == ["x", "y"]
    assert read_keys(tmp_path / "word.tsv") == ["x", "y"]  # no 'key' column: the first


# ---------------------------------------------------------------------------- alignment
def test_alignment_is_by_key_never_by_position_and_unmatched_rows_keep_their_init(tmp_path):
    src = table([10, 11, 12, 13, 99], dim=3)
    order = [3, 0, 4, 2, 1]  # the file is in another order than the source table
    shuffled = EmbeddingTable(
        "item", src.keys[order], src.labels[order], src.vectors[order], metadata=src.metadata.iloc[order]
    )
    export_table(shuffled, "projector", tmp_path)
    model_keys = [13, 12, 11, 10, 50, 51]  # 50, 51 have no pretrained vector; 99 is not in the model
    weight = torch.nn.Parameter(torch.full((len(model_keys), 3), 7.0))
    record = initialise({"item": Slot(model_keys, weight)}, tmp_path / "vectors.tsv", ["item"])
    by_key = dict(zip(src.keys.tolist(), src.vectors))
    for row, key in enumerate(model_keys):
        want = by_key.get(key, np.full(3, 7.0, dtype=np.float32))
        np.testing.assert_allclose(weight[row].detach().numpy(), want, rtol=1e-5, atol=1e-6)
    entry = record["tables"]["item"]
    assert (entry["matched"], entry["total"]) == (4, 6) and entry["coverage"] == pytest.approx(4 / 6)
    assert record["format"] == "projector" and entry["keys_file"].endswith("metadata.tsv")


def test_offset_rows_for_the_reserved_unknown_row_and_float_like_keys(tmp_path):
    assert normalise_key("5.0") == "5" == normalise_key(5) and normalise_key(" x ") == "x"
    path = _npy(tmp_path, [[1, 1], [2, 2]], ["2.0", "1"])
    weight = torch.nn.Parameter(torch.zeros(4, 2))  # row 0: tabular's reserved "unknown" row
    record = initialise({"Store": Slot([1, 2, 3], weight, offset=1)}, path, ["Store"])
    assert weight.tolist() == [[0, 0], [2, 2], [1, 1], [0, 0]]
    assert record["tables"]["Store"]["matched"] == 2 and record["tables"]["Store"]["total"] == 3


def test_init_from_a_run_copies_vectors_and_biases_by_key_and_skips_untrained(synthetic_run):
    source = embedlab.load_run(synthetic_run)
    item = source.table("item")
    counts = item.count
    model_keys = list(item.keys[::-1][:50]) + [10_001]  # reversed order plus a key the source lacks
    w = torch.nn.Parameter(torch.zeros(len(model_keys), item.dim))
    b = torch.nn.Parameter(torch.zeros(len(model_keys), 1))
    record = initialise(
        {"item": Slot(model_keys, w, b), "user": Slot([], torch.nn.Parameter(torch.zeros(0, item.dim)))},
        synthetic_run,
        ["item"],
    )
    pos = {k: i for i, k in enumerate(item.keys.tolist())}
    for row, key in enumerate(model_keys):
        i = pos.get(key)
        if i is None or counts[i] == 0:
            assert not w[row].any() and b[row, 0] == 0
        else:
            assert torch.equal(w[row], torch.from_numpy(item.vectors[i])) and b[row, 0] == item.bias_values[i]
    entry = record["tables"]["item"]
    assert entry["bias"] and entry["source_table"] == "item" and record["format"] == "run"
    assert record["run"]["dataset"] == "synthetic-collab"
    untrained = sum(1 for k in model_keys[:-1] if counts[pos[k]] == 0)
    assert entry["matched"] == 50 - untrained and entry.get("untrained_in_source", 0) == untrained


def test_table_mapping_and_only_named_tables(synthetic_run):
    item = embedlab.load_run(synthetic_run).table("item")
    w = torch.nn.Parameter(torch.zeros(3, item.dim))
    u = torch.nn.Parameter(torch.zeros(3, item.dim))
    record = initialise({"film": Slot(item.keys[:3], w), "user": Slot([1, 2, 3], u)}, synthetic_run, ["film=item"])
    assert list(record["tables"]) == ["film"] and not u.any() and w.any()


# ---------------------------------------------------------------------------- bad inputs
def _npy(tmp_path, vectors, keys):
    np.save(tmp_path / "vectors.npy", np.asarray(vectors, dtype=np.float32), allow_pickle=False)
    (tmp_path / "keys.txt").write_text("".join(f"{k}\n" for k in keys))
    return tmp_path / "vectors.npy"


def test_dimension_mismatch_is_a_clear_error(tmp_path):
    path = _npy(tmp_path, np.ones((2, 3)), ["a", "b"])
    with pytest.raises(UsageError, match=r"3-dimensional .* has 5; train with the same size"):
        initialise({"item": Slot(["a"], torch.nn.Parameter(torch.zeros(1, 5)))}, path, ["item"])


def test_unknown_table_and_missing_table_name(tmp_path, synthetic_run):
    path = _npy(tmp_path, np.ones((2, 3)), ["a", "b"])
    slots = {"item": Slot(["a"], torch.nn.Parameter(torch.zeros(1, 3)))}
    with pytest.raises(UsageError, match="no table 'Store'; its tables are: item"):
        initialise(slots, path, ["Store"])
    with pytest.raises(UsageError, match="fills one table; name it with --init-table"):
        initialise(slots, path, [])
    with pytest.raises(UsageError, match="run .* has no table 'nope'"):
        initialise(slots, synthetic_run, ["item=nope"])
    with pytest.raises(UsageError, match="is a run"):
        initialise(slots, synthetic_run, ["item"], keys=tmp_path / "keys.txt")


def test_duplicate_keys_nan_and_length_mismatch_are_data_errors(tmp_path):
    slots = {"item": Slot(["a"], torch.nn.Parameter(torch.zeros(1, 2)))}
    with pytest.raises(DataError, match=r"key 'a' appears twice \(rows 1 and 3\)"):
        initialise(slots, _npy(tmp_path, np.ones((3, 2)), ["a", "b", "a"]), ["item"])
    with pytest.raises(DataError, match=r"key 'b' \(row 2\) holds nan"):
        initialise(slots, _npy(tmp_path, [[1, 1], [np.nan, 1]], ["a", "b"]), ["item"])
    with pytest.raises(DataError, match="2 keys for 3 vectors"):
        initialise(slots, _npy(tmp_path, np.ones((3, 2)), ["a", "b"]), ["item"])
    (tmp_path / "v.tsv").write_text("1\t2\n3\tx\n")
    with pytest.raises(DataError, match="line 2: 'x' is not a number"):
        read_vectors(tmp_path / "v.tsv", keys=tmp_path / "keys.txt")
    (tmp_path / "w.txt").write_text("3 2\na 1 2\nb 1 2\n")
    with pytest.raises(DataError, match="header says 3 vectors"):
        read_vectors(tmp_path / "w.txt")
    (tmp_path / "w.bin").write_bytes(b"\x00")
    with pytest.raises(UsageError, match="binary word2vec"):
        read_vectors(tmp_path / "w.bin")
    with pytest.raises(DataError, match="no key matches table 'item'"):
        initialise(slots, _npy(tmp_path, np.ones((2, 2)), ["x", "y"]), ["item"])


def test_npy_needs_keys_and_a_folder_with_one_vectors_file_works(tmp_path):
    np.save(tmp_path / "v.npy", np.ones((2, 2), dtype=np.float32))
    with pytest.raises(UsageError, match="holds no keys; give the keys file with --init-keys"):
        read_vectors(tmp_path / "v.npy")
    folder = tmp_path / "exp"
    export_table(table(["a", "b"], dim=2), "npy", folder)
    w = torch.nn.Parameter(torch.zeros(2, 2))
    record = initialise({"item": Slot(["b", "a"], w)}, folder, ["item"])
    assert record["tables"]["item"]["matched"] == 2 and record["format"] == "npy"


# ---------------------------------------------------------------------------- through the trainers
def test_cli_train_from_projector_files_prints_and_records_coverage(tmp_path, synthetic_run):
    from embedlab.cli import make_cli

    source = embedlab.load_run(synthetic_run)
    export_table(source.table("item"), "projector", tmp_path / "exp")
    out = tmp_path / "run"
    args = [
        "train",
        "synthetic-collab",
        "--users",
        "300",
        "--items",
        "200",
        "--ratings",
        "20000",
        "--epochs",
        "1",
        "--seed",
        "1",
        "--n-factors",
        str(source.table("item").dim),
        "--init-from",
        str(tmp_path / "exp" / "vectors.tsv"),
        "--init-table",
        "item",
        "--init-keys",
        str(tmp_path / "exp" / "metadata.tsv"),
        "--freeze",
        "embeddings",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(make_cli(), args)
    assert res.exit_code == 0, res.output
    assert "init item: 200 of 200 rows (100.0%)" in res.output
    meta = json.loads((out / "run.json").read_text())
    assert meta["init"]["tables"]["item"]["coverage"] == 1.0 and meta["init"]["format"] == "projector"
    assert meta["frozen_groups"] == ["embeddings"] and meta["layer_groups"]["embeddings"]["frozen"]
    assert meta["config"]["init_table"] == ["item"] and meta["dataset_info"]["options"]["users"] == 300
    run = embedlab.load_run(out)
    np.testing.assert_allclose(run.table("item").vectors, source.table("item").vectors, rtol=1e-5, atol=1e-6)
    # a model of another size cannot take them
    res = CliRunner().invoke(make_cli(), args[:-2] + ["--n-factors", "7", "--out", str(tmp_path / "r2")])
    assert res.exit_code != 0 and "train with the same size" in res.output
    res = CliRunner().invoke(make_cli(), args[:-2] + ["--init-table", "nope", "--out", str(tmp_path / "r3")])
    assert res.exit_code != 0 and "Traceback" not in res.output


def test_tabular_tables_start_from_pretrained_vectors_with_the_unknown_row_untouched(tmp_path):
    ds = embedlab.load_dataset("synthetic-rossmann", n_stores=12, days=90, seed=3)
    base = dict(preset="guo2016", epochs=1, train_sample=0, seed=3, bs=64)
    src = embedlab.train(ds, out=tmp_path / "src", **base)
    store = src.table("Store")
    keys = store.keys[::-1].copy()
    vec = EmbeddingTable("Store", keys, store.labels[::-1], store.vectors[::-1] * 2.0)
    export_table(vec, "word2vec", tmp_path / "w2v")
    run = embedlab.train(
        ds, init_from=str(tmp_path / "w2v" / "vectors.txt"), init_table=["Store"], freeze="embeddings", **base
    )
    np.testing.assert_allclose(run.table("Store").vectors, store.vectors * 2.0, rtol=1e-5, atol=1e-6)
    entry = run.meta["init"]["tables"]["Store"]
    assert entry["matched"] == entry["total"] == len(store) and entry["format"] == "word2vec"
    w = run.tensors()["model.embeds.0.weight"]
    first = embedlab.train(ds, **base).tensors()["model.embeds.0.weight"]
    assert torch.equal(w[0], first[0])  # the reserved unknown row keeps its own initialisation


def test_name_matched_tables_of_another_size_are_skipped_unless_named_or_all_differ(synthetic_run):
    run = embedlab.load_run(synthetic_run)
    dim = run.table("item").dim
    item = torch.nn.Parameter(torch.zeros(len(run.table("item")), dim))
    user = torch.nn.Parameter(torch.zeros(len(run.table("user")), dim + 1))
    slots = {"item": Slot(run.table("item").keys, item), "user": Slot(run.table("user").keys, user)}
    lines = []
    record = initialise(slots, synthetic_run, echo=lines.append)
    assert record["tables"]["user"]["skipped"] == f"{dim}-dimensional in the source" and not user.any()
    assert record["tables"]["item"]["matched"] > 0 and item.any()
    assert any("init user: skipped" in line for line in lines)
    with pytest.raises(UsageError, match="train with the same size"):
        initialise(slots, synthetic_run, ["user"])
    only_user = {"user": slots["user"]}
    with pytest.raises(UsageError, match="train with the same size"):
        initialise(only_user, synthetic_run)
