"""Property-based tests (hypothesis): loaders and the run format on generated input.

* The ml-100k ``u.data`` reader and the ``ratings-csv`` loader, on random well-formed files,
  return exactly the ratings that were written; on random malformed files they either return
  a Dataset that keeps the loader's contract or raise a clean :class:`EmbedlabError` (a click
  exception: one line, no traceback), never any other exception.
* Runs: saving and loading random tables (int or text keys, unicode labels with commas,
  quotes and line breaks, metadata columns of every kind, with or without bias, awkward table
  names) gives back the same tables; a damaged table file is a ``RunFormatError`` or loads.

Bugs these found (fixed): ratings-csv split a header such as ``time:utc`` on ``:`` (unrestricted
delimiter sniffing) and refused ids such as ``NA``/``None``/``null`` as empty; a run lost
``"007"`` -> 7 in text metadata, merged the CSVs of tables named ``a b`` and ``a_b``, turned an
empty-string key into NaN, and a label holding a bare ``\\r`` split its row on load.
"""

from __future__ import annotations

import itertools
import string
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from embedlab.errors import EmbedlabError, RunFormatError
from embedlab.run import EmbeddingTable, Run, load_run
from embedlab_datasets import movielens, ratings_csv

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
_counter = itertools.count()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("props")


def fresh(workdir: Path, name: str) -> Path:
    """A new folder per example (hypothesis runs many examples in one test call)."""
    folder = workdir / f"ex{next(_counter)}"
    folder.mkdir()
    return folder / name


# ---------------------------------------------------------------------------- strategies
SPECIAL_TEXT = [
    "NA",
    "N/A",
    "None",
    "null",
    "NULL",
    "nan",
    "NaN",
    "#N/A",
    "-",
    "True",
    "false",
    "a,b",
    'say "hi"',
    "it's",
    "x;y",
    "p|q",
    "tab\there",
    " spaced ",
    "é",
    "日本語",
    "🎬",
    "<script>alert(1)</script>",
    "1,000",
    "=1+1",
]
any_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
# text a CSV can hold unquoted-safely once quoted: no control characters (a bare \r in a user's
# file is not well-formed CSV)
csv_text = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=10)
# ids that never look like numbers (a CSV does not say whether "01" is a number)
word_id = st.one_of(
    st.sampled_from([s for s in SPECIAL_TEXT if not s[0].isdigit() and s != "-"]),
    st.builds(lambda a, b: a + b, st.sampled_from(string.ascii_letters + "éß日"), csv_text),
)


# ---------------------------------------------------------------------------- ml-100k u.data
ratings_rows = st.lists(
    st.tuples(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(1, 5), st.integers(0, 2**31)),
    min_size=1,
    max_size=30,
)


@SETTINGS
@given(rows=ratings_rows, newline=st.sampled_from(["\n", "\r\n"]), final=st.booleans())
def test_udata_well_formed_round_trip(workdir, rows, newline, final):
    path = fresh(workdir, "u.data")
    path.write_text(newline.join("\t".join(map(str, r)) for r in rows) + (newline if final else ""), newline="")
    df = movielens._read_ratings_tsv(path)
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert df["user"].dtype == np.int32 and df["timestamp"].dtype == np.int64
    assert df["rating"].dtype == np.float32
    assert [tuple(r) for r in df.itertuples(index=False)] == [(u, i, float(r), t) for u, i, r, t in rows]


def _mutate(lines: list[str], kind: str, data) -> bytes:
    i = data.draw(st.integers(0, len(lines) - 1))
    fields = lines[i].split("\t")
    if kind == "drop-field":
        fields.pop(data.draw(st.integers(0, len(fields) - 1)))
    elif kind == "extra-field":
        fields.append(data.draw(any_text))
    elif kind == "text-field":
        fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(any_text)
    elif kind == "number-field":
        fields[data.draw(st.integers(0, len(fields) - 1))] = str(
            data.draw(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**20), 10**20)))
        )
    elif kind == "separator":
        lines[i] = data.draw(st.sampled_from([" ", ",", ";", "  ", "\t\t"])).join(fields)
    elif kind == "text-line":
        lines.insert(i, data.draw(any_text))
    elif kind == "blank-lines":
        lines.insert(i, "")
    if kind in ("drop-field", "extra-field", "text-field", "number-field"):
        lines[i] = "\t".join(fields)
    raw = "\n".join(lines).encode("utf-8", "surrogatepass")
    if kind == "bytes":
        raw = data.draw(st.binary(max_size=200))
    elif kind == "latin-1":
        raw = raw.replace(b"1", b"\xe9", 1)
    elif kind == "nul":
        raw = raw.replace(b"\t", b"\x00", 1)
    elif kind == "empty":
        raw = b""
    return raw


MUTATIONS = [
    "drop-field",
    "extra-field",
    "text-field",
    "number-field",
    "separator",
    "text-line",
    "blank-lines",
    "bytes",
    "latin-1",
    "nul",
    "empty",
]


@SETTINGS
@given(rows=ratings_rows, kinds=st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3), data=st.data())
def test_udata_malformed_is_a_clean_error_or_a_valid_frame(workdir, rows, kinds, data):
    lines = ["\t".join(map(str, r)) for r in rows]
    raw = b""
    for kind in kinds:
        raw = _mutate(lines, kind, data)
        lines = raw.decode("utf-8", "replace").split("\n") or [""]
        if not any(lines):
            lines = [""]
    path = fresh(workdir, "u.data")
    path.write_bytes(raw)
    try:
        df = movielens._read_ratings_tsv(path)
    except EmbedlabError as exc:
        message = exc.format_message()
        assert str(path) in message and "\n" not in message.strip()
        return
    assert list(df.columns) == ["user", "item", "rating", "timestamp"]
    assert len(df) > 0 and df.notna().all().all()
    assert df["rating"].between(1, 5).all()
    assert df["user"].dtype == np.int32 and df["item"].dtype == np.int32


# ---------------------------------------------------------------------------- ratings-csv
@st.composite
def ratings_frames(draw):
    n = draw(st.integers(2, 25))
    ids = {
        role: draw(
            st.one_of(
                st.lists(st.integers(1, 10**9), min_size=n, max_size=n), st.lists(word_id, min_size=n, max_size=n)
            )
        )
        for role in ("user", "item")
    }
    ratings = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0, 3.5, 4.0, 5.0, -1.25, 10.0]), min_size=n, max_size=n))
    names = draw(
        st.lists(
            csv_text.filter(lambda s: s.strip() == s and not s.startswith("Unnamed")),
            min_size=3,
            max_size=3,
            unique=True,
        )
    )
    return pd.DataFrame({names[0]: ids["user"], names[1]: ids["item"], names[2]: ratings}), names


@SETTINGS
@given(
    frame=ratings_frames(),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    suffix=st.sampled_from([".csv", ".tsv", ".txt"]),
    split=st.sampled_from(["random", "time"]),
)
def test_ratings_csv_well_formed_round_trip(workdir, frame, sep, suffix, split):
    df, (user, item, rating) = frame
    path = fresh(workdir, f"ratings{suffix}")
    if split == "time":
        df = df.assign(when=np.arange(len(df)) * 1000)
    df.to_csv(path, sep=sep, index=False)
    ds = ratings_csv.load(
        path,
        user=user,
        item=item,
        rating=rating,
        timestamp="when" if split == "time" else None,
        split=split,
        valid_pct=0.2,
    )
    got = pd.concat([ds.train, ds.valid])
    expect = sorted(zip(map(str, df[user]), map(str, df[item]), df[rating].astype(np.float32)))
    assert sorted(zip(map(str, got["user"]), map(str, got["item"]), got["rating"])) == expect
    assert ds.rating_range == (float(df[rating].min()), float(df[rating].max()))
    if split == "time" and len(ds.valid):  # 2 rows at 20%: nothing is held out
        assert ds.valid["timestamp"].min() >= ds.train["timestamp"].max()


cell = st.one_of(
    st.integers(-5, 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    any_text,
    st.none(),
    st.booleans(),
    st.sampled_from(SPECIAL_TEXT + ["", " "]),
)


@SETTINGS
@given(
    rows=st.lists(st.tuples(cell, cell, cell, cell), max_size=12),
    sep=st.sampled_from([",", ";", "\t", "|"]),
    use_time=st.booleans(),
    split=st.sampled_from(["random", "time"]),
    garbage=st.none() | st.binary(max_size=120),
    header=st.sampled_from([["u", "i", "r", "t"], ["u", "i", "x", "t"], ["u", "u", "r", "t"]]),
)
def test_ratings_csv_malformed_is_a_clean_error_or_a_valid_dataset(
    workdir, rows, sep, use_time, split, garbage, header
):
    path = fresh(workdir, "ratings.csv")
    if garbage is not None:
        path.write_bytes(garbage)
    else:
        pd.DataFrame(rows, columns=header).to_csv(path, sep=sep, index=False)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas may warn while guessing time formats
            ds = ratings_csv.load(
                path, user="u", item="i", rating="r", timestamp="t" if use_time else None, split=split
            )
    except EmbedlabError as exc:
        assert exc.format_message().strip() and "Traceback" not in exc.format_message()
        return
    frame = pd.concat([ds.train, ds.valid])
    assert len(frame) == len(rows) > 0
    assert frame["user"].notna().all() and frame["item"].notna().all()
    assert np.isfinite(frame["rating"].to_numpy(dtype=float)).all()


# ---------------------------------------------------------------------------- run round trips
table_name = st.one_of(
    st.sampled_from(["item", "user", "Item", "ITEM", "a b", "a_b", "a-b", "Store", "État"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=6),
)
label = st.one_of(any_text, st.sampled_from(SPECIAL_TEXT + ["", "line1\nline2", "cr\ronly", "crlf\r\n", '"', ","]))


@st.composite
def embedding_tables(draw, name: str):
    n, k = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    if draw(st.booleans()):
        keys = np.array(
            draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n, unique=True)), dtype=np.int64
        )
    else:
        keys = np.array(draw(st.lists(label, min_size=n, max_size=n, unique=True)), dtype=object)
    labels = draw(st.lists(label, min_size=n, max_size=n))
    floats = st.floats(width=32, allow_nan=False, allow_infinity=False)
    vectors = np.array(draw(st.lists(floats, min_size=n * k, max_size=n * k)), dtype=np.float32).reshape(n, k)
    bias = np.array(draw(st.lists(floats, min_size=n, max_size=n)), dtype=np.float32) if draw(st.booleans()) else None
    metadata = {}
    for col in draw(st.lists(label.filter(lambda c: c not in ("key", "label", "bias")), max_size=4, unique=True)):
        kind = draw(st.sampled_from(["int", "float", "text", "bool"]))
        values = {
            "int": st.integers(-(2**53), 2**53),
            "float": st.floats(allow_infinity=False),
            "bool": st.booleans(),
            "text": label,
        }[kind]
        metadata[col] = draw(st.lists(values, min_size=n, max_size=n))
    attrs = draw(
        st.dictionaries(csv_text, st.one_of(st.integers(-(10**6), 10**6), csv_text, st.booleans()), max_size=3)
    )
    return EmbeddingTable(
        name, keys, labels, vectors, bias, pd.DataFrame(metadata) if metadata else pd.DataFrame(index=range(n)), attrs
    )


def _same_metadata(before: pd.Series, after: pd.Series) -> None:
    if before.dtype == object or pd.api.types.is_string_dtype(before):
        # text stays text ("007" is not 7); an empty string and a missing value read back alike
        norm = lambda s: ["" if pd.isna(v) else str(v) for v in s]  # noqa: E731
        assert norm(after) == norm(before)
        assert after.dtype == object or pd.api.types.is_string_dtype(after)
    elif before.dtype == bool:
        assert after.tolist() == before.tolist()
    else:
        assert np.array_equal(before.to_numpy(float), after.to_numpy(float), equal_nan=True)


@settings(SETTINGS, max_examples=60)
@given(data=st.data(), names=st.lists(table_name, min_size=1, max_size=3, unique=True), with_tensor=st.booleans())
def test_run_save_load_round_trip(workdir, data, names, with_tensor):
    tables = {name: data.draw(embedding_tables(name)) for name in names}
    import torch

    tensors = {"model.w": torch.arange(6, dtype=torch.float32).reshape(2, 3)} if with_tensor else {}
    meta = {"dataset": data.draw(label), "kind": "collab", "config": {"lr": 0.01, "note": data.draw(label)}}
    folder = fresh(workdir, "run")
    try:
        Run(meta, tables, tensors).save(folder)
    except ValueError as exc:  # a table name with nothing usable for a file name, e.g. "."
        assert "unusable table name" in str(exc)
        assume(False)
    back = load_run(folder)
    assert back.table_names == names and back.dataset == meta["dataset"] and back.config == meta["config"]
    assert set(back.tensors()) == set(tensors)
    for name, before in tables.items():
        after = back.table(name)
        assert after.keys.tolist() == before.keys.tolist()
        assert after.keys.dtype.kind == before.keys.dtype.kind or before.keys.dtype == object
        assert after.labels.tolist() == before.labels.tolist()
        assert np.array_equal(after.vectors, before.vectors)
        assert (after.bias_values is None) == (before.bias_values is None)
        if before.bias_values is not None:
            assert np.array_equal(after.bias_values, before.bias_values)
        assert list(after.metadata.columns) == list(before.metadata.columns)
        for col in before.metadata.columns:
            _same_metadata(before.metadata[col], after.metadata[col])
        assert after.attrs == before.attrs


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    table = EmbeddingTable(
        "item",
        np.arange(1, 21),
        [f'film {i}, "quoted"' for i in range(20)],
        rng.normal(size=(20, 3)),
        rng.normal(size=20),
        pd.DataFrame({"count": np.arange(20), "genre": ["a", "b"] * 10}),
    )
    folder = tmp_path_factory.mktemp("saved") / "run"
    Run({"dataset": "d", "kind": "collab"}, {"item": table}, {}).save(folder)
    return folder


@SETTINGS
@given(damage=st.sampled_from(["replace", "truncate", "drop-lines", "insert"]), data=st.data())
def test_damaged_table_file_is_a_run_format_error_or_loads(workdir, saved_run, damage, data):
    import shutil

    folder = fresh(workdir, "run")
    shutil.copytree(saved_run, folder)
    csv = folder / "item.csv"
    raw = csv.read_bytes()
    if damage == "replace":
        raw = data.draw(st.binary(max_size=300))
    elif damage == "truncate":
        raw = raw[: data.draw(st.integers(0, len(raw)))]
    elif damage == "drop-lines":
        lines = raw.split(b"\r\n")
        raw = b"\r\n".join(l for l in lines if not data.draw(st.booleans()))
    else:
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.binary(min_size=1, max_size=20)) + raw[at:]
    csv.write_bytes(raw)
    try:
        run = load_run(folder)
    except RunFormatError as exc:
        assert str(csv) in exc.format_message()
        return
    assert len(run.table("item")) == 20


def test_rating_beyond_float32_is_refused_not_turned_into_inf(workdir):
    """Found by the malformed-CSV property: 3.4028235677973366e+38 is finite as float64 but
    became inf when ratings were cast to float32."""
    path = fresh(workdir, "ratings.csv")
    path.write_text("u,i,r\n1,1,3.4028235677973366e+38\n2,2,4\n")
    with pytest.raises(EmbedlabError, match="non-finite rating"):
        ratings_csv.load(path, user="u", item="i", rating="r")
