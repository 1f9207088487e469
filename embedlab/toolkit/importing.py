"""Embeddings from anywhere: files (``embedlab import``) and in-memory objects
(``embedlab.from_vectors``) become an ordinary :class:`~embedlab.run.Run`.

The readers are :mod:`embedlab.io.readers` (text, NumPy, table files) and
:mod:`embedlab.io.tensorfile` (safetensors, PyTorch, fastai); this module picks the reader by
format, names the rows (keys, labels), joins metadata, sets the roles (bias, counts) and
checks what every run must satisfy (unique keys, finite values, one row per key), before
anything is written. An imported run records in run.json's ``imported`` where each part came
from: ``sources`` (file, SHA-256, format, part, table), the ``layout`` recognised and notes.
Its ``kind`` is ``"imported"``; it has no trainer and no training data, so analyses that need
them (``Analysis.requires``) do not apply to it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from embedlab.errors import DataError, UsageError
from embedlab.io import readers, tensorfile
from embedlab.io.readers import Read
from embedlab.run import EmbeddingTable, Run

#: ``--format`` names, and the file endings that choose each
FORMATS = {
    "projector": (".tsv",),
    "word2vec": (".txt", ".vec", ".w2v"),
    "glove": (),
    "word2vec-binary": (".bin",),
    "npy": (".npy",),
    "npz": (".npz",),
    "parquet": (".parquet", ".pq"),
    "arrow": (".arrow", ".feather", ".ipc"),
    "csv": (".csv",),
    "safetensors": (".safetensors",),
    "torch": (".pt", ".pth"),
}
_PICKLED = (".pkl", ".pickle", ".model", ".kv", ".joblib")
#: the files of an ``embedlab export`` folder, in the order they are looked for
EXPORT_LAYOUT = ("vectors.parquet", "vectors.tsv", "vectors.txt", "vectors.npy", "coordinates.csv")
DEFAULT_TABLE = "item"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def detect_format(path: Path) -> str:
    """The format of ``path`` by its ending (a pickle is refused here, with what to write instead)."""
    suffix = path.suffix.lower()
    with open(path, "rb") as fh:
        head = fh.read(4096)
    if suffix in _PICKLED or (suffix not in (".pt", ".pth") and tensorfile.pickle_refusal(path, head)):
        raise DataError(
            tensorfile.pickle_refusal(path, head) or f"{path}: a pickled file; {tensorfile._PICKLE_ADVICE['other']}"
        )
    for fmt, endings in FORMATS.items():
        if suffix in endings:
            return fmt
    raise UsageError(
        f"{path}: unknown vector format {suffix or '(no ending)'!r}; name it with --format ({', '.join(FORMATS)})"
    )


def _expand(paths: Sequence[Path]) -> list[Path]:
    """Folders (an ``embedlab export`` folder) become the files in them."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            found = [p / name for name in EXPORT_LAYOUT if (p / name).is_file()]
            if not found:
                raise UsageError(
                    f"{p}: a folder holding none of {', '.join(EXPORT_LAYOUT)}; give the vector file itself"
                )
            out.append(found[0])
            for extra in ("metadata.tsv", "keys.txt"):
                if found[0].suffix not in (".parquet", ".csv") and (p / extra).is_file():
                    out.append(p / extra)
        elif not p.is_file():
            raise DataError(f"{p}: file not found")
        else:
            out.append(p)
    return out


def _role(path: Path) -> str:
    name = path.name.lower()
    if name.startswith("metadata") and path.suffix.lower() in (".tsv", ".csv"):
        return "metadata"
    if name in ("keys.txt",):
        return "keys"
    return "vectors"


class Importer:
    """Collects the parts of one import and the provenance of each (see the module docstring)."""

    def __init__(self) -> None:
        self.sources: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.layout: str | None = None

    def source(self, path: Path, fmt: str, part: str, table: str | None = None) -> None:
        self.sources.append(
            {"file": str(Path(path).resolve()), "sha256": sha256(path), "format": fmt, "part": part, "table": table}
        )

    def read(self, path: Path, fmt: str, tensors: dict[str, str], classes: dict | None, bias: str | None) -> list[Read]:
        if fmt == "projector":
            return [readers.read_projector_vectors(path)]
        if fmt in ("word2vec", "glove"):
            return [readers.read_word2vec_text(path)]
        if fmt == "word2vec-binary":
            return [readers.read_word2vec_binary(path)]
        if fmt == "npy":
            return [readers.read_npy(path)]
        if fmt == "npz":
            return readers.read_npz(path, tensors)
        if fmt in ("parquet", "arrow"):
            return [readers.read_arrow_table(path, fmt, _one_column(path, tensors))]
        if fmt == "csv":
            return [readers.read_csv_table(path, _one_column(path, tensors))]
        state = tensorfile.load_safetensors(path) if fmt == "safetensors" else tensorfile.load_torch(path)
        layout, parts = tensorfile.state_dict_tables(path, state, tensors, classes, bias)
        self.layout = layout
        return parts


def _one_column(path: Path, tensors: dict[str, str]) -> str | None:
    if len(tensors) > 1:
        raise UsageError(f"{path}: a table file holds one vector column; give one --tensor COLUMN")
    return next(iter(tensors), None)


def parse_metadata_specs(specs: str | Path | Sequence[str | Path] | None) -> dict[str | None, Path]:
    """``--metadata FILE`` or ``--metadata TABLE=FILE`` (repeatable) -> {table or None: file}."""
    if specs is None:
        return {}
    if isinstance(specs, (str, Path)):
        specs = [specs]
    out: dict[str | None, Path] = {}
    for spec in specs:
        text = str(spec)
        table, sep, rest = text.partition("=")
        name, path = (
            (table.strip(), Path(rest)) if sep and not Path(text).exists() and table.strip() else (None, Path(text))
        )
        if name in out:
            raise UsageError(
                f"--metadata {text!r}: {'table ' + repr(name) if name else 'the table'} already has a metadata file"
            )
        out[name] = path
    return out


def parse_tensor_specs(specs: Sequence[str]) -> dict[str, str]:
    """``--tensor NAME=TABLE`` (or ``NAME``: the table is named after it) -> {name: table}."""
    out: dict[str, str] = {}
    for spec in specs:
        name, _, table = str(spec).partition("=")
        name, table = name.strip(), table.strip()
        if not name:
            raise UsageError(f"--tensor {spec!r}: expected NAME=TABLE")
        out[name] = table or name.removesuffix(".weight")
    return out


def import_files(
    paths: Sequence[str | Path],
    *,
    fmt: str | None = None,
    keys: str | Path | None = None,
    tensor: Sequence[str] = (),
    classes: str | Path | None = None,
    metadata: str | Path | Sequence[str | Path] | None = None,
    key: str | None = None,
    label: str | None = None,
    bias: str | None = None,
    count: str | None = None,
    table: str | None = None,
) -> Run:
    """The run ``embedlab import`` saves (not saved here): every file read and checked."""
    if not paths:
        raise UsageError("give at least one file to import")
    files = _expand([Path(p) for p in paths])
    by_role: dict[str, list[Path]] = {"vectors": [], "metadata": [], "keys": []}
    for f in files:
        by_role[_role(f) if fmt is None or _role(f) != "vectors" else "vectors"].append(f)
    if fmt == "projector" or (
        fmt is None and len(by_role["vectors"]) == 2 and all(f.suffix.lower() == ".tsv" for f in by_role["vectors"])
    ):
        _split_projector_pair(by_role)
    vec_files = by_role["vectors"]
    if not vec_files:
        raise UsageError("no vector file among the paths given (only metadata or keys)")
    if len(by_role["metadata"]) > 1 or len(by_role["keys"]) > 1:
        raise UsageError("give at most one row-aligned metadata file and one keys file")
    if len(vec_files) > 1 and (table or by_role["metadata"] or by_role["keys"] or keys):
        raise UsageError(
            "several vector files each become a table named after the file; --table, --keys "
            "and row-aligned metadata need a single vector file"
        )
    imp = Importer()
    joins = parse_metadata_specs(metadata)
    wanted = parse_tensor_specs(tensor)
    class_map = tensorfile.read_classes(Path(classes)) if classes is not None else None
    tables: dict[str, EmbeddingTable] = {}
    for vf in vec_files:
        f_fmt = fmt or detect_format(vf)
        if f_fmt not in FORMATS:
            raise UsageError(f"unknown --format {f_fmt!r}; choose one of: {', '.join(FORMATS)}")
        parts = imp.read(vf, f_fmt, wanted, class_map, bias)
        for part in parts:
            name = (
                (table if len(parts) == 1 else None) or part.table or (vf.stem if len(vec_files) > 1 else DEFAULT_TABLE)
            )
            if name in tables:
                raise UsageError(f"two sources make table {name!r}; name them apart with --tensor NAME=TABLE")
            imp.source(vf, f_fmt, "vectors", name)
            imp.notes += [f"{name}: {n}" for n in part.notes]
            row_meta = None
            if by_role["metadata"]:
                mfile = by_role["metadata"][0]
                row_meta = readers.read_metadata_file(mfile, projector=True)
                imp.source(mfile, "tsv" if mfile.suffix.lower() == ".tsv" else "csv", "metadata", name)
            keys_arr = None
            kfile = Path(keys) if keys is not None else (by_role["keys"][0] if by_role["keys"] else None)
            if kfile is not None:
                keys_arr = readers.read_keys_file(kfile)
                imp.source(kfile, "keys", "keys", name)
            joined, mpath = None, joins.get(name, joins.get(None))
            if mpath is not None:
                joined = readers.read_metadata_file(mpath)
                imp.source(mpath, mpath.suffix.lower().lstrip(".") or "table", "metadata", name)
            tables[name] = build_table(
                name,
                part,
                vf,
                row_meta=row_meta,
                row_meta_file=by_role["metadata"][0] if by_role["metadata"] else None,
                keys=keys_arr,
                keys_file=kfile,
                joined=joined,
                joined_file=mpath,
                key=key,
                label=label,
                bias=bias,
                count=count,
                strict=len(parts) == 1 and len(vec_files) == 1,
            )
    if count is not None and not any(t.attrs.get("count_column") == count for t in tables.values()):
        raise UsageError(f"--count {count!r} is a column of no table's metadata")
    unknown = [t for t in joins if t is not None and t not in tables]
    if unknown:
        raise UsageError(
            f"--metadata {unknown[0]}=...: the import has no table {unknown[0]!r}; its tables: {', '.join(tables)}"
        )
    if None in joins and len(tables) > 1:
        raise UsageError(
            f"the import makes several tables ({', '.join(tables)}): say which one --metadata joins "
            f"with --metadata TABLE=FILE"
        )
    if class_map is not None:
        imp.source(Path(classes), "classes", "classes")
    stem = vec_files[0].stem if len(vec_files) == 1 else vec_files[0].parent.name
    record = {"sources": imp.sources, "layout": imp.layout, "notes": imp.notes}
    return new_run(tables, dataset=stem, imported=record)


def _split_projector_pair(by_role: dict[str, list[Path]]) -> None:
    """Two .tsv files: the one whose first line is all numbers holds the vectors."""

    def numeric(p: Path) -> bool:
        with open(p, encoding="utf-8", errors="replace") as fh:
            cells = fh.readline().rstrip("\r\n").split("\t")
        return all(readers.is_number(c) for c in cells)

    tsvs = by_role["vectors"]
    if len(tsvs) == 2 and numeric(tsvs[0]) != numeric(tsvs[1]):
        vec = tsvs[0] if numeric(tsvs[0]) else tsvs[1]
        by_role["vectors"] = [vec]
        by_role["metadata"].append(tsvs[1] if vec is tsvs[0] else tsvs[0])


def _canonical_keys(keys: np.ndarray) -> np.ndarray:
    """Keys as int64 when every one is an integer written plainly ("12", not "012"), else text."""
    if np.issubdtype(keys.dtype, np.integer):
        return keys.astype(np.int64)
    text = [str(k) for k in keys]
    try:
        ints = np.asarray([int(t) for t in text], dtype=np.int64)
    except (ValueError, OverflowError):
        return np.asarray(text, dtype=object)
    if all(str(i) == t for i, t in zip(ints.tolist(), text)):
        return ints
    return np.asarray(text, dtype=object)


def _column(frame: pd.DataFrame, col: str | None, where: Path | str, option: str, strict: bool = True) -> str | None:
    if col is None or (not strict and col not in frame.columns):
        return None
    if col not in frame.columns:
        raise UsageError(
            f"{where}: {option} {col!r} is not a column; its columns: {', '.join(map(str, frame.columns))}"
        )
    return col


def build_table(
    name: str,
    part: Read,
    where: Path | str,
    *,
    row_meta: pd.DataFrame | None = None,
    row_meta_file: Path | None = None,
    keys: np.ndarray | None = None,
    keys_file: Path | None = None,
    joined: pd.DataFrame | None = None,
    joined_file: Path | None = None,
    key: str | None = None,
    label: str | None = None,
    bias: str | None = None,
    count: str | None = None,
    strict: bool = True,
) -> EmbeddingTable:
    """One checked :class:`EmbeddingTable` from a reader's parts and the metadata given.
    ``strict``: a role column (``label``, ``bias``, ``count``) it lacks is an error (else, for
    one of several tables, the role is left to the tables that have it)."""
    vectors = part.vectors
    if len(vectors) == 0:
        raise DataError(f"{where}: no vectors")
    meta = _row_metadata(part, where, row_meta, row_meta_file)
    row_keys, meta = _row_keys(part, meta, where, row_meta, row_meta_file, keys, keys_file, joined, key)
    if joined is not None:
        meta = _join(meta, row_keys, joined, joined_file, key)
    source = joined_file or row_meta_file or where  # the file whose columns name the roles
    labels, meta = _labels(part, meta, row_keys, source, row_meta, label, strict)
    bias_values, meta = _bias(part, meta, row_keys, source, bias, strict)
    attrs: dict[str, Any] = {}
    ccol = _column(meta, count, source, "--count", strict)
    if ccol is not None:
        meta[ccol] = _counts(meta[ccol], source, ccol)
        attrs["count_column"] = ccol
    meta = (
        meta.apply(lambda c: readers._typed(c) if c.dtype == object or pd.api.types.is_string_dtype(c) else c)
        if len(meta.columns)
        else meta
    )
    check_values(vectors, row_keys, where, "vector")
    if bias_values is not None:
        check_values(
            np.asarray(bias_values).reshape(-1, 1), row_keys, where if part.bias is not None else source, "bias"
        )
    return EmbeddingTable(
        name=name,
        keys=row_keys,
        labels=labels,
        vectors=vectors,
        bias_values=bias_values,
        metadata=meta.reset_index(drop=True),
        attrs=attrs,
    )


def _row_metadata(part: Read, where: Path | str, row_meta: pd.DataFrame | None, row_meta_file: Path | None):
    """The reader's metadata beside the Projector-style metadata file's rows (one per vector)."""
    n = len(part.vectors)
    meta = part.metadata.reset_index(drop=True) if part.metadata is not None else pd.DataFrame(index=pd.RangeIndex(n))
    if row_meta is None:
        return meta
    if len(row_meta) != n:
        raise DataError(
            f"{row_meta_file}: {len(row_meta):,} metadata rows for {n:,} vectors in {where}; the "
            f"Projector's metadata has one row per vector (plus a header when it has 2+ columns)"
        )
    return pd.concat([meta, row_meta.reset_index(drop=True)], axis=1)


def _row_keys(
    part: Read,
    meta: pd.DataFrame,
    where: Path | str,
    row_meta: pd.DataFrame | None,
    row_meta_file: Path | None,
    keys: np.ndarray | None,
    keys_file: Path | None,
    joined: pd.DataFrame | None,
    key: str | None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's key (the keys file, a key column, the reader's own, the one-column labels, else
    the row number), canonical and unique, and the metadata without the column it came from."""
    n = len(part.vectors)
    row_keys = part.keys
    kcol = _column(meta, key, row_meta_file or where, "--key") if joined is None else None
    if keys is not None:
        if len(keys) != n:
            raise DataError(
                f"{keys_file}: {len(keys):,} keys for {n:,} vectors in {where}; one key per "
                f"vector row, in the same order"
            )
        row_keys = keys
        meta = meta.drop(columns=[c for c in ("key",) if c in meta.columns and kcol is None])
    elif kcol is not None or "key" in meta.columns or (part.metadata is not None and "id" in meta.columns):
        kcol = kcol or ("key" if "key" in meta.columns else "id")
        keys_from = meta[kcol]
        if row_keys is not None and part.source == "" and len(row_keys) == n:  # word2vec tokens + metadata
            from embedlab.io.exchange import token

            if [token(k) for k in keys_from.astype(str)] != [str(t) for t in row_keys]:
                raise DataError(
                    f"{row_meta_file}: its {kcol!r} column does not match the tokens of {where} "
                    f"row by row; give the metadata written with these vectors"
                )
        row_keys = keys_from.astype(str).to_numpy(dtype=object)
        meta = meta.drop(columns=[kcol])
    elif (
        row_keys is None and list(meta.columns) == ["label"] and row_meta is not None and meta["label"].is_unique
    ):  # a one-column Projector metadata: the labels name the rows
        row_keys = meta["label"].astype(str).to_numpy(dtype=object)
    if row_keys is None:
        row_keys = np.arange(n, dtype=np.int64)
    row_keys = _canonical_keys(np.asarray(row_keys))
    _check_unique(row_keys, keys_file or row_meta_file or where)
    return row_keys, meta


def _labels(
    part: Read,
    meta: pd.DataFrame,
    row_keys: np.ndarray,
    source: Path | str,
    row_meta: pd.DataFrame | None,
    label: str | None,
    strict: bool,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Each row's label (``--label``, a ``label`` column, the Projector's first column, the
    reader's own, else the key) and the metadata without the column it came from."""
    labels = part.labels
    lcol = _column(meta, label, source, "--label", strict)
    if lcol is None and "label" in meta.columns:
        lcol = "label"
    elif (
        lcol is None
        and label is None
        and row_meta is not None
        and len(row_meta.columns)
        and row_meta.columns[0] in meta.columns
    ):  # the Projector labels points by the first column
        lcol = row_meta.columns[0]
    if lcol is not None:
        labels = meta[lcol].astype(object).where(meta[lcol].notna(), "").astype(str).to_numpy(dtype=object)
        meta = meta.drop(columns=[lcol])
    if labels is None:
        labels = np.asarray([str(k) for k in row_keys], dtype=object)
    return labels, meta


def _bias(
    part: Read, meta: pd.DataFrame, row_keys: np.ndarray, source: Path | str, bias: str | None, strict: bool
) -> tuple[np.ndarray | None, pd.DataFrame]:
    """Each row's bias (the reader's own, ``--bias`` or a ``bias`` column; every row a number) and
    the metadata without the column it came from."""
    bias_values = part.bias
    bcol = _column(meta, bias, source, "--bias", strict) if part.bias is None else None
    if bcol is None and part.bias is None and "bias" in meta.columns:
        bcol = "bias"
    if bcol is None:
        return bias_values, meta
    values = pd.to_numeric(meta[bcol], errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna().to_numpy())[0])
        raise DataError(
            f"{source}: --bias column {bcol!r}, row {row + 1} "
            f"(key {_shown(row_keys[row])!r}) is not a number; every entity needs a bias"
        )
    bias_values = np.array(values, dtype=np.float32)  # owned: pandas may hand out a read-only view
    return bias_values, meta.drop(columns=[bcol])


def _counts(column: pd.Series, where: Path | str, ccol: str) -> pd.Series:
    """The ``--count`` column as numbers, each a count (>= 0)."""
    counts = pd.to_numeric(column, errors="coerce")
    if counts.isna().any() or (counts < 0).any():
        row = int(np.flatnonzero((counts.isna() | (counts < 0)).to_numpy())[0])
        raise DataError(f"{where}: --count column {ccol!r}, row {row + 1} is not a count (a number >= 0)")
    return counts


def _shown(key: Any) -> Any:
    """A key as the person wrote it in an error message: 2, not np.int64(2)."""
    return key.item() if isinstance(key, np.generic) else key


def _check_unique(keys: np.ndarray, where: Path | str) -> None:
    series = pd.Series(keys)
    dup = series.duplicated(keep=False)
    if dup.any():
        rows = np.flatnonzero(dup.to_numpy())
        first = series.iloc[rows[0]]
        both = np.flatnonzero((series == first).to_numpy())[:2] + 1
        raise DataError(
            f"{where}: key {_shown(first)!r} appears {int((series == first).sum())} times (rows "
            f"{both[0]} and {both[1]}); keys must be unique"
        )


def check_values(values: np.ndarray, keys: np.ndarray, where: Path | str, what: str) -> None:
    """A DataError naming the first row holding NaN or inf (by row number and key)."""
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        bad = values[row][~np.isfinite(values[row])][0]
        raise DataError(
            f"{where}: the {what} of row {row + 1} (key {_shown(keys[row])!r}) holds {float(bad)}; every "
            f"value must be a finite number"
        )


def _join(
    meta: pd.DataFrame, row_keys: np.ndarray, joined: pd.DataFrame, path: Path | None, key: str | None
) -> pd.DataFrame:
    """``--metadata FILE --key COL``: its rows joined to the vectors by key (text comparison)."""
    kcol = _column(joined, key, path, "--key") or ("key" if "key" in joined.columns else joined.columns[0])
    their = joined[kcol].astype(str)
    if their.duplicated().any():
        first = their[their.duplicated()].iloc[0]
        raise DataError(f"{path}: key {first!r} appears twice in column {kcol!r}; one metadata row per entity")
    ours = pd.Index([str(k) for k in row_keys])
    unmatched = ~their.isin(ours)
    if unmatched.any():
        matched = int((~unmatched).sum())
        raise DataError(
            f"{path}: {int(unmatched.sum()):,} of {len(their):,} keys in column {kcol!r} match no "
            f"vector ({matched:,} matched; first unmatched: {their[unmatched].iloc[0]!r}); check "
            f"--key, or keep only the rows of imported entities"
        )
    extra = joined.drop(columns=[kcol]).set_index(their)
    extra = extra.reindex(ours).reset_index(drop=True)
    clash = [c for c in extra.columns if c in meta.columns]
    return pd.concat([meta.drop(columns=clash), extra], axis=1)


def new_run(tables: dict[str, EmbeddingTable], dataset: str, imported: dict[str, Any]) -> Run:
    """An unsaved imported run (``kind`` ``"imported"``, no trainer, no training data)."""
    from embedlab.run import versions

    meta = {
        "dataset": dataset,
        "kind": "imported",
        "config": {},
        "metrics": {},
        "history": [],
        "versions": versions(),
        "imported": imported,
    }
    return Run(meta, tables, tensors={}, path=None)


def _matrix(vectors: Any) -> tuple[np.ndarray, Any]:
    """(n x k float32, the index of a DataFrame when it names the rows) from NumPy/torch/pandas/lists."""
    index = None
    if hasattr(vectors, "detach") and hasattr(vectors, "numpy"):  # a torch tensor, without importing torch
        vectors = vectors.detach().cpu().float().numpy()
    elif isinstance(vectors, pd.DataFrame):
        if not isinstance(vectors.index, pd.RangeIndex):
            index = vectors.index.to_numpy()
        vectors = vectors.to_numpy()
    elif isinstance(vectors, pd.Series):  # a column of lists
        if not isinstance(vectors.index, pd.RangeIndex):
            index = vectors.index.to_numpy()
        vectors = np.stack([np.asarray(v, dtype=np.float32) for v in vectors])
    try:
        array = np.asarray(vectors, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise DataError(f"vectors: not a matrix of numbers ({exc})") from None
    if array.ndim != 2:
        raise DataError(f"vectors: shape {array.shape}, not 2-D (entities x dimensions)")
    return array, index


def from_vectors(
    vectors: Any,
    keys: Any = None,
    labels: Any = None,
    metadata: pd.DataFrame | None = None,
    bias: Any = None,
    table: str = DEFAULT_TABLE,
) -> Run:
    """A :class:`Run` (unsaved until ``.save(folder)``) from vectors in memory: a NumPy array,
    a torch tensor, a DataFrame (its index names the rows) or a list of lists, with optional
    ``keys`` (row numbers without), ``labels``, row-aligned ``metadata`` (a ``count`` column
    counts observations; ``latitude``/``longitude``, ``cycle_order`` are found by geography
    and cyclic) and a per-entity ``bias``."""
    array, index = _matrix(vectors)
    n = len(array)

    def one_per_row(value: Any, what: str) -> np.ndarray:
        if hasattr(value, "detach"):
            value = value.detach().cpu().numpy()
        out = np.asarray(value.to_numpy() if isinstance(value, (pd.Series, pd.Index)) else value)
        if out.ndim == 2 and out.shape[1] == 1:
            out = out.reshape(-1)
        if out.shape != (n,):
            raise DataError(f"{what}: {out.shape[0] if out.ndim else 1:,} values for {n:,} vectors; give one per row")
        return out

    row_keys = one_per_row(keys, "keys") if keys is not None else index
    meta = None
    if metadata is not None:
        if not isinstance(metadata, pd.DataFrame):
            metadata = pd.DataFrame(metadata)
        if len(metadata) != n:
            raise DataError(f"metadata: {len(metadata):,} rows for {n:,} vectors; give one row per vector")
        meta = metadata.reset_index(drop=True)
    part = Read(
        array,
        keys=row_keys,
        labels=one_per_row(labels, "labels").astype(str).astype(object) if labels is not None else None,
        metadata=meta,
        bias=one_per_row(bias, "bias").astype(np.float32) if bias is not None else None,
    )
    t = build_table(table, part, "vectors")
    return new_run(
        {table: t},
        dataset="from_vectors",
        imported={"sources": [{"format": "python", "part": "vectors", "table": table}], "layout": None, "notes": []},
    )
