"""``embedlab import`` and ``embedlab.from_vectors``: every format built as users build it,
neighbours equal to NumPy's, fastai state dicts (with fastcore L in the optimizer state) read
without executing anything, one-line errors that write nothing, export -> import round trips."""

from __future__ import annotations

import json
import os
import pickle
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import embedlab
from embedlab.authoring.testing import invoke

N, DIM = 40, 6
WORDS = [f"w{i}" for i in range(N)]


@pytest.fixture(scope="module")
def planted() -> np.ndarray:
    """Four clusters of ten: each word's neighbours are its own cluster."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(4, DIM)) * 3
    return (centres[np.arange(N) // 10] + rng.normal(size=(N, DIM)) * 0.3).astype(np.float32)


def numpy_neighbours(vectors: np.ndarray, row: int, k: int) -> list[int]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit[row]
    sims[row] = -np.inf
    return list(np.argsort(-sims, kind="stable")[:k])


def check_analyze(run_dir: Path, vectors: np.ndarray, keys: list, table: str = "item") -> None:
    """``analyze --only neighbors,pca --json`` gives NumPy's neighbours, and PCA ran."""
    res = invoke(["analyze", run_dir, "--only", "neighbors,pca", "--json"])
    assert res.exit_code == 0, res.output
    results = json.loads(res.stdout)["results"]
    assert {r["analysis"] for r in results if r["table"] == table and r["error"] is None} == {"neighbors", "pca"}
    nb = next(r for r in results if r["analysis"] == "neighbors" and r["table"] == table)
    shown = {name: rows for name, rows in nb["tables"].items() if name.startswith("neighbours of ")}
    assert shown
    text_keys = [str(k) for k in keys]
    labels = embedlab.load_run(run_dir).table(table).labels.tolist()
    for name, rows in shown.items():
        row = labels.index(name[len("neighbours of ") :])
        expected = [text_keys[i] for i in numpy_neighbours(vectors, row, len(rows))]
        assert [str(r["key"]) for r in rows] == expected


def run_import(args, tmp_path: Path, out: str = "run") -> Path:
    res = invoke(["import", *args, "--out", tmp_path / out])
    assert res.exit_code == 0, res.output
    return tmp_path / out


# ---------------------------------------------------------------------------- one test per format
def test_projector_pair_one_column_metadata_has_no_header(planted, tmp_path):
    with open(tmp_path / "vectors.tsv", "w") as fh:
        for row in planted:
            fh.write("\t".join(repr(float(v)) for v in row) + "\n")
    (tmp_path / "metadata.tsv").write_text("".join(w + "\n" for w in WORDS))
    run_dir = run_import([tmp_path / "metadata.tsv", tmp_path / "vectors.tsv"], tmp_path)
    t = embedlab.load_run(run_dir).table("item")
    assert t.labels.tolist() == WORDS and len(t) == N  # the first word is a label, not a header
    check_analyze(run_dir, planted, WORDS)
    res = invoke(["analyze", run_dir, "--only", "pca", "--report", tmp_path / "report.html"])  # with the explorer
    assert res.exit_code == 0, res.output
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "w39" in html and "explorer" in html.lower()
    meta = json.loads((run_dir / "run.json").read_text())
    sources = meta["imported"]["sources"]
    assert meta["kind"] == "imported" and {s["part"] for s in sources} == {"vectors", "metadata"}
    import hashlib

    pd.DataFrame({"Word": WORDS, "cluster": np.arange(N) // 10}).to_csv(tmp_path / "meta2.tsv", sep="\t", index=False)
    named = embedlab.load_run(run_import([tmp_path / "vectors.tsv", tmp_path / "meta2.tsv"], tmp_path, "two"))
    t2 = named.table("item")  # two columns: a header row; the first column labels the points
    assert t2.labels.tolist() == WORDS and t2.keys.tolist() == list(range(N)) and "cluster" in t2.metadata
    vec = next(s for s in sources if s["part"] == "vectors")
    assert (
        vec["format"] == "projector"
        and vec["sha256"] == hashlib.sha256((tmp_path / "vectors.tsv").read_bytes()).hexdigest()
    )


def _write_w2v_text(path: Path, vectors: np.ndarray, header: bool, trailing: str = "") -> None:
    with open(path, "w", encoding="utf-8") as fh:
        if header:
            fh.write(f"{len(vectors)} {vectors.shape[1]}\n")
        for w, row in zip(WORDS, vectors):
            fh.write(w + " " + " ".join(f"{v:.9g}" for v in row) + trailing + "\n")


@pytest.mark.parametrize("kind", ["word2vec", "glove", "fasttext", "word2vec-binary"])
def test_word_vector_formats(kind, planted, tmp_path):
    try:
        from gensim.models import KeyedVectors
    except ImportError:
        KeyedVectors = None
    name = {
        "word2vec": "vectors.txt",
        "glove": "glove.6B.6d.txt",
        "fasttext": "wiki.vec",
        "word2vec-binary": "vectors.bin",
    }[kind]
    path = tmp_path / name
    if KeyedVectors is not None and kind in ("word2vec", "word2vec-binary"):
        kv = KeyedVectors(DIM)
        kv.add_vectors(WORDS, planted)
        kv.save_word2vec_format(str(path), binary=kind == "word2vec-binary")
    elif kind == "word2vec-binary":  # the C tool's layout: header, then TOKEN<space><float32 x DIM>\n
        with open(path, "wb") as fh:
            fh.write(f"{N} {DIM}\n".encode())
            for w, row in zip(WORDS, planted):
                fh.write(w.encode() + b" " + row.astype("<f4").tobytes() + b"\n")
    else:  # GloVe has no header; word2vec and fastText .vec do (fastText ends lines with a space)
        _write_w2v_text(path, planted, header=kind != "glove", trailing=" " if kind == "fasttext" else "")
    run_dir = run_import([path], tmp_path)
    t = embedlab.load_run(run_dir).table("item")
    assert t.keys.tolist() == WORDS and np.allclose(t.vectors, planted, atol=1e-6)
    check_analyze(run_dir, planted, WORDS)


def test_npy_with_keys_file_and_with_row_numbers(planted, tmp_path):
    np.save(tmp_path / "emb.npy", planted)
    (tmp_path / "ids.txt").write_text("\n".join(WORDS) + "\n")
    run_dir = run_import([tmp_path / "emb.npy", "--keys", tmp_path / "ids.txt"], tmp_path)
    assert embedlab.load_run(run_dir).table("item").keys.tolist() == WORDS
    check_analyze(run_dir, planted, WORDS)
    plain = run_import([tmp_path / "emb.npy"], tmp_path, "plain")
    t = embedlab.load_run(plain).table("item")
    assert t.keys.tolist() == list(range(N)) and np.array_equal(t.vectors, planted)


def test_npz_with_keys_and_bias_arrays(planted, tmp_path):
    bias = np.linspace(-1, 1, N).astype(np.float32)
    np.savez(tmp_path / "emb.npz", vectors=planted, keys=np.array(WORDS), bias=bias)
    run_dir = run_import([tmp_path / "emb.npz"], tmp_path)
    t = embedlab.load_run(run_dir).table("item")
    assert t.keys.tolist() == WORDS and np.array_equal(t.bias_values, bias)
    check_analyze(run_dir, planted, WORDS)


@pytest.mark.parametrize("ext", ["parquet", "feather", "csv"])
def test_table_files_with_a_vector_column(ext, planted, tmp_path):
    frame = pd.DataFrame(
        {
            "key": WORDS,
            "label": [w.upper() for w in WORDS],
            "vector": [row.tolist() for row in planted],
            "group": np.arange(N) // 10,
        }
    )
    path = tmp_path / f"atlas.{ext}"
    if ext == "parquet":
        frame.to_parquet(path)
    elif ext == "feather":
        frame.to_feather(path)
    else:  # the vector cell as JSON text, as pandas writes a list column through json.dumps
        frame.assign(vector=[json.dumps(v) for v in frame["vector"]]).to_csv(path, index=False)
    run_dir = run_import([path], tmp_path)
    t = embedlab.load_run(run_dir).table("item")
    assert t.keys.tolist() == WORDS and t.labels.tolist() == [w.upper() for w in WORDS]
    assert t.metadata["group"].tolist() == (np.arange(N) // 10).tolist()  # other columns: metadata
    check_analyze(run_dir, planted, WORDS)


def test_safetensors_and_torch_state_dicts(planted, tmp_path):
    import torch
    from safetensors.torch import save_file

    class Recommender(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.item_emb = torch.nn.Embedding(N, DIM)
            self.item_bias = torch.nn.Embedding(N, 1)
            self.head = torch.nn.Linear(DIM, 3)

    model = Recommender()
    with torch.no_grad():
        model.item_emb.weight.copy_(torch.from_numpy(planted))
        model.item_bias.weight.copy_(torch.arange(N, dtype=torch.float32).reshape(N, 1))
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    torch.save(model.state_dict(), tmp_path / "model.pt")
    for src, out in (("model.safetensors", "st"), ("model.pt", "pt")):
        run_dir = run_import(
            [tmp_path / src, "--tensor", "item_emb.weight=item", "--keys", _keys(tmp_path)], tmp_path, out
        )
        t = embedlab.load_run(run_dir).table("item")
        assert np.array_equal(t.vectors, planted) and t.bias_values.tolist() == list(range(N))
        check_analyze(run_dir, planted, WORDS)
    res = invoke(["import", tmp_path / "model.pt", "--out", tmp_path / "x"])  # two 2-D tensors: name one
    assert res.exit_code != 0 and "--tensor NAME=TABLE" in res.output and "item_emb.weight" in res.output
    assert not (tmp_path / "x").exists()


def _keys(tmp_path: Path) -> Path:
    (tmp_path / "keys.txt").write_text("\n".join(WORDS) + "\n")
    return tmp_path / "keys.txt"


def _fastcore_L(tmp_path: Path, monkeypatch):
    """fastcore's L (the real one when installed; else a module of that name whose every method
    leaves a marker file, to prove that importing never runs it)."""
    try:
        from fastcore.foundation import L

        return L, None
    except ImportError:
        pkg = tmp_path / "fake" / "fastcore"
        pkg.mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        marker = tmp_path / "executed"
        (pkg / "foundation.py").write_text(
            "class L:\n"
            "    def __init__(self, items=()): self.items = list(items)\n"
            f"    def __setstate__(self, d):\n        open({str(marker)!r}, 'w').write('ran')\n"
            "        self.__dict__.update(d)\n"
        )
        monkeypatch.syspath_prepend(str(tmp_path / "fake"))
        from fastcore.foundation import L

        return L, marker


def test_fastai_learn_save_with_optimizer_state(planted, tmp_path, monkeypatch):
    """EmbeddingDotBias's names, learn.save's {'model', 'opt'} with fastcore L objects, --classes
    as fastai writes dls.classes: imports as user and item tables with biases, '#na#' left out."""
    import torch

    L, marker = _fastcore_L(tmp_path, monkeypatch)
    users = 7
    sd = {
        "u_weight.weight": torch.randn(users + 1, DIM),
        "i_weight.weight": torch.from_numpy(np.vstack([np.zeros((1, DIM), np.float32), planted])),
        "u_bias.weight": torch.randn(users + 1, 1),
        "i_bias.weight": torch.arange(N + 1, dtype=torch.float32).reshape(N + 1, 1),
    }
    opt = {"state": [{"grad_avg": torch.zeros(3), "step": 4}], "hypers": L([{"lr": 1e-3, "mom": 0.9}])}
    torch.save({"model": sd, "opt": opt}, tmp_path / "model.pth", pickle_protocol=2)
    with pytest.raises(pickle.UnpicklingError):  # plain weights_only refuses it: the stand-ins are needed
        torch.load(tmp_path / "model.pth", weights_only=True)
    classes = {"user": ["#na#"] + [str(u) for u in range(1, users + 1)], "title": ["#na#"] + WORDS}
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    for name in [m for m in sys.modules if m.startswith("fastcore")]:
        monkeypatch.delitem(sys.modules, name)
    run_dir = run_import([tmp_path / "model.pth", "--classes", tmp_path / "classes.json"], tmp_path)
    assert not [m for m in sys.modules if m.startswith("fastcore")]  # nothing of fastcore was imported
    assert marker is None or not marker.exists()
    run = embedlab.load_run(run_dir)
    item = run.table("item")
    assert item.keys.tolist() == WORDS and np.array_equal(item.vectors, planted)
    assert item.bias_values.tolist() == list(range(1, N + 1)) and run.table("user").keys.tolist() == list(range(1, 8))
    assert run.meta["imported"]["layout"] == "fastai-EmbeddingDotBias"
    check_analyze(run_dir, planted, WORDS)
    res = invoke(["analyze", run_dir, "--only", "bias-ranking", "--json"])
    top = next(r for r in json.loads(res.stdout)["results"] if r["table"] == "item")["tables"]["highest bias"]
    assert [r.get("label", r.get("key")) for r in top[:3]] == [WORDS[-1], WORDS[-2], WORDS[-3]]


def test_fastai_tabular_embeds_with_classes_csv(tmp_path):
    import torch

    sd = {
        "embeds.0.weight": torch.randn(5, 3),
        "embeds.1.weight": torch.randn(8, 4),
        "layers.0.0.weight": torch.randn(10, 7),
    }
    torch.save(sd, tmp_path / "tab.pth")
    rows = [("Store", c) for c in ["#na#", "1", "2", "3", "4"]] + [("DayOfWeek", c) for c in ["#na#"] + list("1234567")]
    pd.DataFrame(rows, columns=["name", "class"]).to_csv(tmp_path / "classes.csv", index=False)
    run = embedlab.load_run(run_import([tmp_path / "tab.pth", "--classes", tmp_path / "classes.csv"], tmp_path))
    assert run.table_names == ["Store", "DayOfWeek"]
    assert run.table("DayOfWeek").keys.tolist() == list(range(1, 8)) and run.table("DayOfWeek").dim == 4
    assert np.allclose(run.table("Store").vectors, sd["embeds.0.weight"][1:].numpy())


def test_metadata_join_roles_and_analyses_that_need_training_data(planted, tmp_path):
    np.save(tmp_path / "v.npy", planted)
    meta = pd.DataFrame(
        {
            "id": WORDS[::-1],
            "name": [f"Word {w}" for w in WORDS[::-1]],
            "n": np.arange(N)[::-1] + 1,
            "b": np.linspace(0, 1, N)[::-1],
            "lat": np.linspace(40, 50, N)[::-1],
            "lon": np.linspace(0, 10, N)[::-1],
            "cycle_order": (np.arange(N) % 7)[::-1],
        }
    )
    meta.to_csv(tmp_path / "meta.csv", index=False)
    run_dir = run_import(
        [
            tmp_path / "v.npy",
            "--keys",
            _keys(tmp_path),
            "--metadata",
            tmp_path / "meta.csv",
            "--key",
            "id",
            "--label",
            "name",
            "--bias",
            "b",
            "--count",
            "n",
        ],
        tmp_path,
    )
    t = embedlab.load_run(run_dir).table("item")
    assert t.labels[3] == "Word w3" and t.count.tolist() == list(range(1, N + 1))
    assert np.allclose(t.bias_values, np.linspace(0, 1, N)[::-1][::-1])
    res = invoke(["analyze", run_dir, "--only", "bias-ranking,geography,cyclic,finetune,transfer,onehot", "--json"])
    assert res.exit_code == 0, res.output
    by = {r["analysis"]: r for r in json.loads(res.stdout)["results"]}
    for name in ("bias-ranking", "geography", "cyclic"):
        assert by[name]["error"] is None and by[name]["table"] == "item", (name, by[name])
    for name in ("finetune", "transfer", "onehot"):
        assert (
            by[name]["table"] is None and "does not apply" in by[name]["summary"] and "imported" in by[name]["summary"]
        )


# ---------------------------------------------------------------------------- bad input
def _bad(tmp_path: Path, args, *expected: str) -> str:
    out = tmp_path / "never"
    res = invoke(["import", *args, "--out", out])
    assert res.exit_code != 0
    message = res.output.strip()
    assert len(message.splitlines()) == 1 and message.startswith("Error:"), message
    for text in expected:
        assert text in message, message
    assert not out.exists()  # nothing written
    return message


def test_bad_input_is_one_line_and_writes_nothing(planted, tmp_path):
    (tmp_path / "ragged.tsv").write_text("1\t2\t3\n4\t5\n6\t7\t8\n")
    _bad(tmp_path, [tmp_path / "ragged.tsv"], "ragged.tsv", "line 2", "2 values")
    (tmp_path / "glove.txt").write_text("a 1 2 3\nb 4 x 6\n")
    _bad(tmp_path, [tmp_path / "glove.txt"], "line 2", "'x' is not a number")
    bad = planted.copy()
    bad[5, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    _bad(tmp_path, [tmp_path / "nan.npy"], "nan.npy", "row 6", "finite")
    np.save(tmp_path / "v.npy", planted)
    (tmp_path / "dup.txt").write_text("\n".join(WORDS[:-1] + [WORDS[0]]) + "\n")
    _bad(tmp_path, [tmp_path / "v.npy", "--keys", tmp_path / "dup.txt"], "'w0' appears 2 times")
    (tmp_path / "short.txt").write_text("\n".join(WORDS[:-3]) + "\n")
    _bad(tmp_path, [tmp_path / "v.npy", "--keys", tmp_path / "short.txt"], "37 keys for 40 vectors")
    pd.DataFrame({"key": list(range(N + 5))}).to_csv(tmp_path / "m.csv", index=False)
    _bad(tmp_path, [tmp_path / "v.npy", "--metadata", tmp_path / "m.csv"], "5 of 45 keys", "40 matched")
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4)))
    _bad(tmp_path, [tmp_path / "cube.npy"], "not 2-D")
    import torch

    torch.save({"w": torch.zeros(4, 3), "b": torch.zeros(4)}, tmp_path / "m.pt")
    _bad(tmp_path, [tmp_path / "m.pt", "--tensor", "b=item"], "'b'", "not 2-D")
    (tmp_path / "huge.vec").write_text("1000000000000 3\na 1 2 3\n")
    _bad(tmp_path, [tmp_path / "huge.vec"], "claims 1,000,000,000,000 vectors")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    _bad(tmp_path, [tmp_path / "objects.npy"], "never unpickles")
    pd.DataFrame({"key": ["w1", "w1"], "x": [1, 2]}).to_csv(tmp_path / "twice.csv", index=False)
    (tmp_path / "ids.txt").write_text("\n".join(WORDS) + "\n")
    _bad(
        tmp_path,
        [tmp_path / "v.npy", "--keys", tmp_path / "ids.txt", "--metadata", tmp_path / "twice.csv"],
        "'w1' appears twice",
    )
    # a bad role column names the metadata file that holds it, and a key as written (2, not np.int64(2))
    meta = pd.DataFrame({"label": WORDS, "n": [1] * (N - 1) + ["many"]})
    meta.to_csv(tmp_path / "metadata.tsv", sep="\t", index=False)
    _bad(
        tmp_path,
        [tmp_path / "v.npy", tmp_path / "metadata.tsv", "--count", "n"],
        "metadata.tsv:",
        "--count column 'n', row 40",
    )
    pd.DataFrame({"key": list(range(N)), "b": [0.1] * 2 + ["x"] + [0.2] * (N - 3)}).to_csv(
        tmp_path / "jb.csv", index=False
    )
    (tmp_path / "int_keys.txt").write_text("\n".join(str(i) for i in range(N)) + "\n")
    message = _bad(
        tmp_path,
        [tmp_path / "v.npy", "--keys", tmp_path / "int_keys.txt", "--metadata", tmp_path / "jb.csv", "--bias", "b"],
        "jb.csv:",
        "row 3",
    )
    assert "np.int64" not in message and "key 2" in message.replace("'", ""), message
    (tmp_path / "latin1.txt").write_bytes("caf\xe9 1 2\n".encode("latin-1"))
    _bad(tmp_path, [tmp_path / "latin1.txt"], "not UTF-8")
    mine = tmp_path / "mine"  # a folder of the user's: refused before any reading, left as it was
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    res = invoke(["import", tmp_path / "v.npy", "--out", mine])
    assert res.exit_code != 0 and "--force" in res.output and sorted(p.name for p in mine.iterdir()) == ["notes.txt"]


def test_pickled_formats_are_refused_with_what_to_write(tmp_path, monkeypatch):
    """learn.export() is torch.save of the Learner (export.pkl); gensim's save() pickles the model."""
    import types

    import torch

    for module, cls in (("fastai.learner", "Learner"), ("gensim.models.word2vec", "Word2Vec")):
        parts = module.split(".")
        for i in range(1, len(parts) + 1):  # stand-in packages: pickle imports the class's module
            name = ".".join(parts[:i])
            monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
            if i > 1:
                setattr(sys.modules[".".join(parts[: i - 1])], parts[i - 1], sys.modules[name])
        setattr(sys.modules[module], cls, type(cls, (), {"__module__": module}))
    torch.save(sys.modules["fastai.learner"].Learner(), tmp_path / "export.pkl")
    _bad(tmp_path, [tmp_path / "export.pkl"], "learn.export()", "learn.save")
    (tmp_path / "w2v.model").write_bytes(pickle.dumps(sys.modules["gensim.models.word2vec"].Word2Vec(), protocol=4))
    _bad(tmp_path, [tmp_path / "w2v.model"], "save_word2vec_format")

    torch.save(torch.nn.Linear(2, 2), tmp_path / "whole.pt")  # a pickled module, not a state dict
    _bad(tmp_path, [tmp_path / "whole.pt"], "state_dict")


# ---------------------------------------------------------------------------- from_vectors
def test_from_vectors_in_a_notebook(planted, tmp_path):
    import torch

    from embedlab.report.explorer import explorer

    frame = pd.DataFrame(planted, index=pd.Index(WORDS, name="word"))
    for vectors, keys in ((planted, WORDS), (torch.from_numpy(planted), WORDS), (frame, None)):
        run = embedlab.from_vectors(vectors, keys=keys, bias=np.arange(N), metadata=pd.DataFrame({"count": np.ones(N)}))
        assert run.path is None and run.table("item").keys.tolist() == WORDS
        nb = run.neighbors("w3", k=4)
        assert nb["key"].tolist() == [WORDS[i] for i in numpy_neighbours(planted, 3, 4)]
    results = embedlab.analyze(run, ["neighbors", "pca", "bias-ranking"], progress=False)
    assert all(r.ok for r in results) and "<" in results._repr_html_()
    explorer(run, "item", results)
    run.save(tmp_path / "saved")
    assert embedlab.load_run(tmp_path / "saved").table("item").keys.tolist() == WORDS
    with pytest.raises(embedlab.errors.DataError if hasattr(embedlab, "errors") else Exception, match="finite"):
        embedlab.from_vectors(np.full((3, 2), np.inf))


# ---------------------------------------------------------------------------- ml-100k (EMBEDLAB_DATA_DIR)
@pytest.fixture(scope="module")
def ml100k_run(tmp_path_factory):
    from test_analyses import ml100k_run_dir

    return ml100k_run_dir(tmp_path_factory)


def _neighbours(run_dir: Path, entity: str = "Star Wars (1977)") -> dict:
    res = invoke(["neighbors", run_dir, entity, "--table", "item", "--json", "-k", "10"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    out["neighbors"] = [{k: r[k] for k in ("rank", "key", "label", "cosine")} for r in out["neighbors"]]
    return out


def test_ml100k_every_export_format_reads_back_through_import(ml100k_run, tmp_path):
    from embedlab.io.exchange import FORMATS

    ref = embedlab.load_run(ml100k_run).table("item")
    expected = _neighbours(ml100k_run)
    for fmt in FORMATS:
        res = invoke(["export", ml100k_run, "--table", "item", "--format", fmt, "--out", tmp_path / fmt])
        assert res.exit_code == 0, res.output
        back = run_import([tmp_path / fmt], tmp_path, f"run-{fmt}")
        t = embedlab.load_run(back).table("item")
        assert np.array_equal(t.vectors, ref.vectors), fmt
        assert t.keys.tolist() == ref.keys.tolist() and t.labels.tolist() == ref.labels.tolist(), fmt
        assert np.array_equal(t.bias_values, ref.bias_values) and np.array_equal(t.count, ref.count), fmt
        assert _neighbours(back) == expected, fmt


def test_ml100k_fastai_state_dict_ranks_the_same_films_by_bias(ml100k_run, tmp_path):
    """EmbeddingDotBias's state dict made from the run's weights (row 0: fastai's '#na#'), the
    classes as fastai's dls.classes, the films' titles and counts joined as metadata."""
    import torch

    run = embedlab.load_run(ml100k_run)
    user, item = run.table("user"), run.table("item")

    def with_na(values: np.ndarray) -> torch.Tensor:
        values = values.reshape(len(values), -1)
        return torch.from_numpy(np.vstack([np.zeros((1, values.shape[1]), np.float32), values]))

    torch.save(
        {
            "u_weight.weight": with_na(user.vectors),
            "i_weight.weight": with_na(item.vectors),
            "u_bias.weight": with_na(user.bias_values),
            "i_bias.weight": with_na(item.bias_values),
        },
        tmp_path / "model.pth",
    )
    classes = {"user_id": ["#na#"] + [str(k) for k in user.keys], "item_id": ["#na#"] + [str(k) for k in item.keys]}
    (tmp_path / "classes.json").write_text(json.dumps(classes))
    item.frame[["key", "label", "count", "mean_rating"]].to_csv(tmp_path / "films.csv", index=False)
    back = run_import(
        [
            tmp_path / "model.pth",
            "--classes",
            tmp_path / "classes.json",
            "--metadata",
            f"item={tmp_path / 'films.csv'}",
            "--count",
            "count",
        ],
        tmp_path,
    )
    assert embedlab.load_run(back).meta["imported"]["layout"] == "fastai-EmbeddingDotBias"

    def ranking(run_dir: Path) -> dict:
        res = invoke(["analyze", run_dir, "--only", "bias-ranking", "--json"])
        found = next(r for r in json.loads(res.stdout)["results"] if r["table"] == "item")
        return {name: [r["label"] for r in found["tables"][name]] for name in ("highest bias", "lowest bias")}

    assert ranking(back) == ranking(ml100k_run)


# ---------------------------------------------------------------------------- the README's examples
def test_the_readme_examples_run(planted, tmp_path, monkeypatch):
    """The commands of README's "Analyse embeddings you already have", on a Projector pair and
    a fastai collab model saved as learn.save does (optimizer state with fastcore L objects)."""
    import shlex

    import torch

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Analyse embeddings you already have", 1)[1].split("\n## ", 1)[0]
    commands = [
        shlex.split(line)
        for line in section.split("```bash", 1)[1].split("```", 1)[0].splitlines()
        if line.startswith("embedlab ")
    ]
    assert [c[1] for c in commands] == ["import", "analyze", "import", "analyze"]
    monkeypatch.chdir(tmp_path)
    with open("vectors.tsv", "w") as fh:
        for row in planted:
            fh.write("\t".join(f"{v:.9g}" for v in row) + "\n")
    pd.DataFrame({"label": [w.title() for w in WORDS], "key": WORDS}).to_csv("metadata.tsv", sep="\t", index=False)
    L, _ = _fastcore_L(tmp_path, monkeypatch)
    Path("models").mkdir()
    sd = {
        "u_weight.weight": torch.randn(6, DIM),
        "i_weight.weight": torch.from_numpy(np.vstack([np.zeros((1, DIM), np.float32), planted])),
        "u_bias.weight": torch.randn(6, 1),
        "i_bias.weight": torch.randn(N + 1, 1),
    }
    torch.save({"model": sd, "opt": {"state": [], "hypers": L([{"lr": 1e-2}])}}, "models/model.pth", pickle_protocol=2)
    Path("classes.json").write_text(
        json.dumps({"userId": ["#na#", "u1", "u2", "u3", "u4", "u5"], "title": ["#na#"] + WORDS})
    )
    pd.DataFrame({"key": WORDS, "count": np.arange(N) + 20}).to_csv("films.csv", index=False)
    for command in commands:
        res = invoke(command[1:])
        assert res.exit_code == 0, (command, res.output)
    words = embedlab.load_run("runs/words").table("item")
    assert words.keys.tolist() == WORDS and words.labels[0] == "W0"
    fastai = embedlab.load_run("runs/fastai")
    assert fastai.table("item").count.tolist() == list(range(20, 20 + N)) and fastai.table("user").keys.tolist() == [
        "u1",
        "u2",
        "u3",
        "u4",
        "u5",
    ]


# ---------------------------------------------------------------------------- every command works on an import
def test_an_imported_run_starts_training_and_joins_a_stability_analysis(synthetic_run, tmp_path):
    res = invoke(["export", synthetic_run, "--table", "item", "--format", "npy", "--out", tmp_path / "ex"])
    assert res.exit_code == 0, res.output
    imported = run_import([tmp_path / "ex"], tmp_path, "imported")
    res = invoke(
        [
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
            "--init-from",
            imported,
            "--out",
            tmp_path / "ft",
        ]
    )
    assert res.exit_code == 0, res.output
    assert embedlab.load_run(tmp_path / "ft").meta["init"]["tables"]["item"]["matched"] == 200
    t = embedlab.load_run(imported).table("item")
    noisy = t.vectors + np.random.default_rng(1).normal(scale=0.05, size=t.vectors.shape)
    embedlab.from_vectors(noisy, keys=t.keys, labels=t.labels, metadata=t.metadata).save(tmp_path / "other")
    res = invoke(["analyze", imported, tmp_path / "other", "--only", "neighbors,pca", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["stability"] and not any(r["error"] for r in out["results"])


# ---------------------------------------------------------------------------- Analysis.requires
class _NeedsCounts(embedlab.Analysis):
    name, title = "needs-counts-demo", "Needs counts"
    requires = ("counts",)

    def applies_to(self, run):
        return run.table_names  # claims every table: the registry holds it to its requires

    def run(self, run, table, options):
        return embedlab.AnalysisResult(self.name, table, self.title, summary=f"{len(run.table(table))} counted")


class _Plugin:
    def __init__(self, analysis):
        self.analysis = analysis

    @embedlab.hookimpl
    def embedlab_register_analyses(self, register):
        register(self.analysis)


def test_requires_holds_an_analysis_to_what_it_declares(planted):
    from embedlab.authoring.testing import plugin_registered
    from embedlab.registry import PluginContractError, analyses

    counted = embedlab.from_vectors(planted, metadata=pd.DataFrame({"count": np.arange(N) + 1}))
    plain = embedlab.from_vectors(planted)
    with plugin_registered(_Plugin(_NeedsCounts()), name="tmp-needs-counts"):
        entry = analyses()["needs-counts-demo"]
        assert entry.requires == ("counts",)
        assert entry.applies_to(counted) == ["item"] and entry.applies_to(plain) == []
        [res] = embedlab.analyze(plain, ["needs-counts-demo"], progress=False)
        assert "does not apply" in res.summary and "no table has observation counts" in res.summary
    bad = _NeedsCounts()
    bad.requires = ("gpu",)
    with pytest.raises(PluginContractError, match="requires 'gpu'"):
        with plugin_registered(_Plugin(bad), name="tmp-needs-gpu"):
            analyses()


def test_parquet_export_of_a_column_mixing_numbers_and_text_reads_back(planted, tmp_path):
    from embedlab.io.exchange import export_table
    from embedlab.toolkit.projection import projected_coordinates

    t = embedlab.from_vectors(planted, keys=WORDS, metadata=pd.DataFrame({"mixed": [1, "a"] * (N // 2)})).table("item")
    export_table(t, "parquet", tmp_path / "ex", coords=projected_coordinates(t))
    back = embedlab.load_run(run_import([tmp_path / "ex"], tmp_path)).table("item")
    assert np.array_equal(back.vectors, planted) and back.metadata["mixed"].astype(str).tolist()[:2] == ["1", "a"]
