"""Readers of foreign vector files for ``embedlab import`` (one function per format family).

Each reader returns :class:`Read` parts: the vectors (n x k float32, filled in place chunk by
chunk, so a large file needs about one copy of its matrix in memory), the keys where the file
holds them, row-aligned metadata where it has any. They never unpickle: NumPy files load with
``allow_pickle=False``; Parquet/Arrow go through pyarrow; text is parsed as text. Every problem
is a :class:`~embedlab.errors.DataError` naming the file, the line or column and what to do.

Formats: ``projector`` (vectors.tsv [+ metadata.tsv]), ``word2vec`` text (header ``N DIM``
optional: GloVe has none; fastText ``.vec`` has one), ``word2vec-binary``, ``npy``, ``npz``,
``parquet``, ``arrow`` (Arrow IPC / Feather), ``csv`` (one cell per entity holding ``[v1, v2,
...]``). Tensor files (safetensors, PyTorch, fastai) are :mod:`embedlab.io.tensorfile`'s.
"""

from __future__ import annotations

import mmap
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import numpy as np
import pandas as pd

from embedlab.errors import DataError, UsageError

#: rows parsed per chunk of a text file (the chunk is the only extra memory a text import takes)
CHUNK_ROWS = 20_000


@dataclass
class Read:
    """One table's parts as a file holds them (row order)."""

    vectors: np.ndarray
    keys: np.ndarray | None = None
    labels: np.ndarray | None = None
    metadata: pd.DataFrame | None = None
    bias: np.ndarray | None = None
    table: str | None = None  # the table the file names (npz array, state-dict tensor), if any
    source: str = ""  # what inside the file: a tensor / array / column name
    notes: list[str] = field(default_factory=list)


def _open_text(path: Path) -> Iterator[str]:
    try:
        with open(path, "r", encoding="utf-8", newline="") as fh:
            for line in fh:
                yield line.rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start}); a binary word2vec "
            f"file needs --format word2vec-binary"
        ) from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None


def count_lines(path: Path) -> int:
    """Non-empty-terminated line count of a text file (one pass over bytes, constant memory)."""
    n, last = 0, b"\n"
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 22)
            if not block:
                break
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")


def _check_claim(path: Path, rows: int, dim: int, min_row_bytes: int) -> None:
    """A header's row count must fit the file: each row needs at least ``min_row_bytes``."""
    size = path.stat().st_size
    if rows < 0 or dim <= 0:
        raise DataError(f"{path}: the header says {rows} vectors of {dim} values; both must be positive")
    if rows * min_row_bytes > size + 64:
        raise DataError(
            f"{path}: the header claims {rows:,} vectors of {dim} values, but the file has only "
            f"{size:,} bytes (room for at most {size // max(min_row_bytes, 1):,}); the header is "
            f"wrong or the file is cut short"
        )


def _slow_fill(
    out: np.ndarray, start: int, rows: list[str], path: Path, first_line: int, dim: int, sep: str | None
) -> None:
    """Line by line: fills ``out[start:]`` or raises the precise error (line, value, what to do)."""
    for i, rest in enumerate(rows):
        line = first_line + i
        cells = [c for c in (rest.split(sep) if sep else rest.split()) if c.strip() != ""]
        if not cells:
            raise DataError(f"{path}: line {line} holds no values; remove empty lines")
        if len(cells) != dim:
            raise DataError(
                f"{path}: line {line} has {len(cells)} values, the first vector {dim} (ragged rows); "
                f"every vector must have the same length"
            )
        for j, c in enumerate(cells, start=1):
            try:
                float(c)
            except ValueError:
                raise DataError(f"{path}: line {line}: {c.strip()[:40]!r} is not a number (value {j})") from None
        out[start + i] = np.asarray([float(c) for c in cells], dtype=np.float32)


def _fill(out: np.ndarray, start: int, rows: list[str], path: Path, first_line: int, dim: int, sep: str | None) -> None:
    """Parse ``rows`` (text of ``dim`` numbers each) into ``out[start:]``: one C parse of the
    chunk; on any doubt (a line with another field count, text that is not a number) the
    line-by-line path, which names the bad line."""
    sp = sep or " "
    if any(rest.strip(" \t").count(sp) + 1 != dim for rest in rows):  # ragged rows that would balance out
        return _slow_fill(out, start, rows, path, first_line, dim, sep)
    joined = " ".join(rows)
    if sep and sep != " ":
        joined = joined.replace(sep, " ")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            values = np.fromstring(joined, dtype=np.float32, sep=" ")
        except (DeprecationWarning, ValueError):
            values = None
    if values is None or values.size != len(rows) * dim:
        return _slow_fill(out, start, rows, path, first_line, dim, sep)
    out[start : start + len(rows)] = values.reshape(len(rows), dim)


def _allocate(path: Path, rows: int, dim: int) -> np.ndarray:
    try:
        return np.empty((rows, dim), dtype=np.float32)
    except (MemoryError, ValueError):
        raise DataError(f"{path}: {rows:,} x {dim} vectors do not fit in memory") from None


def read_projector_vectors(path: Path) -> Read:
    """The Projector's ``vectors.tsv``: one row of tab-separated numbers per entity, no header."""
    n = count_lines(path)
    lines = _open_text(path)
    first = next(lines, None)
    if first is None or not first.strip():
        raise DataError(f"{path}: no vectors in the file (the first line is empty)")
    dim = len(first.split("\t"))
    out = _allocate(path, n, dim)
    _, filled = _stream(path, _chain([first], lines), out, dim, "\t", token=False, start_line=1, exact=False)
    return Read(out[:filled])


def _chain(first: list[str], rest: Iterable[str]) -> Iterator[str]:
    yield from first
    yield from rest


def _stream(
    path: Path,
    lines: Iterable[str],
    out: np.ndarray,
    dim: int,
    sep: str | None,
    token: bool,
    start_line: int,
    exact: bool = True,
) -> tuple[list[str], int]:
    """Fill ``out`` from ``lines`` chunk by chunk; returns (the tokens when ``token``, rows filled).
    Blank lines are allowed only at the end; ``exact``: the rows must fill ``out`` (a header's count)."""
    tokens: list[str] = []
    chunk: list[str] = []
    filled, line_no, chunk_start, blank = 0, start_line - 1, start_line, None
    for line in lines:
        line_no += 1
        if not line.strip():
            blank = blank or line_no
            continue
        if blank is not None:
            raise DataError(f"{path}: line {blank} is empty; remove empty lines")
        if token:
            tok, _, rest = line.partition(" ")
            tokens.append(tok)
            chunk.append(rest)
        else:
            chunk.append(line)
        if len(chunk) >= CHUNK_ROWS:
            _check_room(path, out, filled + len(chunk))
            _fill(out, filled, chunk, path, chunk_start, dim, sep)
            filled += len(chunk)
            chunk_start, chunk = line_no + 1, []
    if chunk:
        _check_room(path, out, filled + len(chunk))
        _fill(out, filled, chunk, path, chunk_start, dim, sep)
        filled += len(chunk)
    if exact and filled != out.shape[0]:
        raise DataError(f"{path}: the header says {out.shape[0]:,} vectors, the file has {filled:,}")
    if filled == 0:
        raise DataError(f"{path}: no vectors in the file")
    return tokens, filled


def _check_room(path: Path, out: np.ndarray, needed: int) -> None:
    if needed > out.shape[0]:
        raise DataError(f"{path}: more vectors than the header says ({out.shape[0]:,}); fix the header line")


def read_word2vec_text(path: Path) -> Read:
    """word2vec / fastText ``.vec`` text (``N DIM`` header) or GloVe (no header): ``TOKEN v1 v2 ...``."""
    lines = _open_text(path)
    first = next(lines, None)
    if first is None:
        raise DataError(f"{path}: the file is empty")
    head = first.split()
    if len(head) == 2 and all(h.isdigit() for h in head):
        rows, dim = int(head[0]), int(head[1])
        _check_claim(path, rows, dim, 2 * dim + 1)
        out = _allocate(path, rows, dim)
        tokens, _ = _stream(path, lines, out, dim, None, token=True, start_line=2)
        note = "word2vec text (header line)"
    else:
        parts = first.rstrip().split(" ")
        dim = len(parts) - 1
        if dim < 1:
            raise DataError(f"{path}: line 1 should be TOKEN v1 v2 ... or a 'N DIM' header (found {first[:40]!r})")
        out = _allocate(path, count_lines(path), dim)
        tokens, filled = _stream(path, _chain([first], lines), out, dim, None, token=True, start_line=1, exact=False)
        out = out[:filled]
        note = "GloVe text (no header line)"
    return Read(out, keys=np.asarray(tokens, dtype=object), notes=[note])


def read_word2vec_binary(path: Path) -> Read:
    """word2vec's binary format: ``N DIM\\n`` then, per vector, ``TOKEN `` and DIM little-endian
    float32 (gensim's ``save_word2vec_format(binary=True)``, the original C tool's ``-binary 1``)."""
    with open(path, "rb") as fh:
        head = fh.readline(256).split()
        if len(head) != 2 or not all(h.isdigit() for h in head):
            raise DataError(f"{path}: a binary word2vec file starts with a 'N DIM' line; this one does not")
        rows, dim = int(head[0]), int(head[1])
        _check_claim(path, rows, dim, 4 * dim + 2)
        pos = fh.tell()
        out = _allocate(path, rows, dim)
        tokens: list[str] = []
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            size = len(mm)
            for i in range(rows):
                while pos < size and mm[pos : pos + 1] == b"\n":
                    pos += 1
                sp = mm.find(b" ", pos, pos + 4096)
                if sp < 0 or sp + 1 + 4 * dim > size:
                    raise DataError(f"{path}: vector {i + 1} of {rows:,} is cut short; the file ends early")
                try:
                    tokens.append(mm[pos:sp].decode("utf-8"))
                except UnicodeDecodeError:
                    raise DataError(f"{path}: the token of vector {i + 1} is not UTF-8") from None
                out[i] = np.frombuffer(mm, dtype="<f4", count=dim, offset=sp + 1)
                pos = sp + 1 + 4 * dim
    return Read(out, keys=np.asarray(tokens, dtype=object), notes=["word2vec binary"])


def _numeric_2d(array: np.ndarray, path: Path, what: str) -> np.ndarray:
    if array.ndim != 2:
        raise DataError(
            f"{path}: {what} has shape {array.shape}, not 2-D (rows x dimensions); reshape it to (entities, dimensions)"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_):
        raise DataError(f"{path}: {what} holds {array.dtype}, not numbers")
    return np.array(array, dtype=np.float32)  # one copy, out of the memory map


def read_npy(path: Path) -> Read:
    """A 2-D ``.npy`` array (memory-mapped, then copied once as float32; never unpickled)."""
    try:
        array = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:
        raise DataError(f"{path}: {_npy_reason(exc)}") from None
    except (OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    return Read(_numeric_2d(array, path, "the array"))


def _npy_reason(exc: Exception) -> str:
    if "allow_pickle" in str(exc) or "Object arrays" in str(exc) or "Python objects" in str(exc):
        return (
            "holds Python objects, which embedlab never unpickles; save numbers "
            "(np.save(f, vectors.astype('float32'))) and keys as text (np.array(keys, dtype=str))"
        )
    return f"not a readable NumPy file ({exc})"


def read_npz(path: Path, wanted: dict[str, str]) -> list[Read]:
    """An ``.npz``: each 2-D array becomes a table (``wanted``: array -> table names it; every 2-D
    array when empty); a 1-D string array ``keys``/``labels`` and a 1-D numeric ``bias`` of the
    same length belong to the one table (``TABLE_keys``, ``TABLE_bias`` for several)."""
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: {_npy_reason(exc)}") from None
    with npz:
        names = list(npz.files)
        try:
            arrays = {n: npz[n] for n in names}
        except ValueError as exc:
            raise DataError(f"{path}: {_npy_reason(exc)}") from None
    matrices = [n for n, a in arrays.items() if a.ndim == 2]
    for name in wanted:
        if name not in arrays:
            raise UsageError(f"{path}: no array {name!r}; it holds: {', '.join(names)}")
        if arrays[name].ndim != 2:
            raise DataError(f"{path}: array {name!r} has shape {arrays[name].shape}, not 2-D (rows x dimensions)")
    chosen = list(wanted) or matrices
    if not chosen:
        raise DataError(
            f"{path}: no 2-D array among {', '.join(names) or 'none'}; save the vectors as np.savez(f, vectors=matrix)"
        )
    out = []
    for name in chosen:
        table = wanted.get(name) or (None if len(chosen) == 1 else name)
        prefix = "" if len(chosen) == 1 else f"{name}_"
        vec = _numeric_2d(arrays[name], path, f"array {name!r}")
        part = Read(vec, table=table, source=name)
        for role in ("keys", "labels", "bias"):
            extra = arrays.get(prefix + role) if prefix + role in arrays else None
            if extra is None:
                continue
            if extra.shape != (len(vec),):
                raise DataError(
                    f"{path}: array {prefix + role!r} has shape {extra.shape}; it must have one "
                    f"value per row of {name!r} ({len(vec):,})"
                )
            if role == "bias":
                part.bias = extra.astype(np.float32)
            else:
                setattr(part, role, extra.astype(str).astype(object) if extra.dtype.kind in "US" else extra)
        out.append(part)
    return out


# ------------------------------------------------------------------ table files (embedding-atlas layout)
def _vector_columns(schema: Any) -> list[str]:
    import pyarrow as pa

    found = []
    for f in schema:
        t = f.type
        if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
            if pa.types.is_floating(t.value_type) or pa.types.is_integer(t.value_type):
                found.append(f.name)
    return found


def _pick_column(path: Path, found: list[str], wanted: str | None, columns: list[str]) -> str:
    if wanted is not None:
        if wanted not in found:
            raise UsageError(
                f"{path}: column {wanted!r} is not a list column of numbers; those are: {', '.join(found) or 'none'}"
            )
        return wanted
    if not found:
        raise DataError(
            f"{path}: no column holds lists of numbers (the vector column of embedding-atlas' "
            f"layout); its columns: {', '.join(map(str, columns))}"
        )
    if len(found) > 1:
        raise UsageError(f"{path}: several list columns ({', '.join(found)}); name the vectors with --tensor COLUMN")
    return found[0]


def _arrow_vectors(path: Path, column: Any, out: np.ndarray, start: int, colname: str) -> int:
    """Copy one Arrow list array's rows into ``out[start:]``; returns the rows copied."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n, dim = len(arr), out.shape[1]
    if arr.null_count:
        row = start + int(np.flatnonzero(np.asarray(arr.is_null()))[0])
        raise DataError(f"{path}: column {colname!r}, row {row + 1} has no vector")
    if pa.types.is_fixed_size_list(arr.type):
        lengths = np.full(n, arr.type.list_size)
    else:
        lengths = np.asarray(arr.value_lengths())
    bad = np.flatnonzero(lengths != dim)
    if len(bad):
        raise DataError(
            f"{path}: column {colname!r}, row {start + int(bad[0]) + 1} has {int(lengths[bad[0]])} "
            f"values, the first vector {dim} (ragged rows); every vector must have the same length"
        )
    values = arr.flatten()
    if values.null_count:
        raise DataError(f"{path}: column {colname!r} holds a missing value inside a vector")
    out[start : start + n] = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(n, dim)
    return n


def read_arrow_table(path: Path, fmt: str, column: str | None) -> Read:
    """Parquet or Arrow IPC/Feather with one list column of numbers: streamed in record batches
    into one float32 matrix; the other columns become metadata."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(f"{path}: reading {fmt} needs pyarrow (pip install pyarrow)") from None
    try:
        if fmt == "parquet":
            pf = pq.ParquetFile(path)
            schema, n_rows = pf.schema_arrow, pf.metadata.num_rows
            batches: Iterable[Any] = pf.iter_batches(batch_size=65_536)
        else:
            try:
                reader = pa.ipc.open_file(pa.memory_map(str(path), "r"))
                schema, n_rows = (
                    reader.schema,
                    sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches)),
                )
                batches = (reader.get_batch(i) for i in range(reader.num_record_batches))
            except pa.ArrowInvalid:
                table = pa.ipc.open_stream(pa.memory_map(str(path), "r")).read_all()
                schema, n_rows, batches = table.schema, table.num_rows, table.to_batches()
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"{path}: not a readable {fmt} file ({str(exc).splitlines()[0]})") from None
    col = _pick_column(path, _vector_columns(schema), column, schema.names)
    out, filled, meta_parts = None, 0, []
    for batch in batches:
        vec = batch.column(schema.get_field_index(col))
        if out is None:
            first = vec.slice(0, 1)
            dim = (
                vec.type.list_size
                if pa.types.is_fixed_size_list(vec.type)
                else int(np.asarray(first.value_lengths())[0])
                if len(first) and first.is_valid().to_pylist()[0]
                else 0
            )
            if dim <= 0:
                raise DataError(f"{path}: column {col!r}, row 1 has no vector")
            out = _allocate(path, n_rows, dim)
        filled += _arrow_vectors(path, vec, out, filled, col)
        meta_parts.append(
            batch.drop_columns([col]).to_pandas()
            if batch.num_columns > 1
            else pd.DataFrame(index=pd.RangeIndex(batch.num_rows))
        )
    if out is None or filled == 0:
        raise DataError(f"{path}: no vectors in the file")
    meta = pd.concat(meta_parts, ignore_index=True) if meta_parts else None
    return Read(out, metadata=meta, source=col)


def _csv_vector(cell: Any) -> np.ndarray | None:
    if not isinstance(cell, str):
        return None
    text = cell.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return None
    return np.array([v for v in text[1:-1].replace(",", " ").split()], dtype=object)


def read_csv_table(path: Path, column: str | None) -> Read:
    """A CSV with one column whose cells are lists of numbers (``[0.1, 0.2, ...]``); the other
    columns become metadata."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: not a readable CSV file ({str(exc).splitlines()[0]})") from None
    if frame.empty:
        raise DataError(f"{path}: no rows in the file")
    found = [c for c in frame.columns if _csv_vector(frame[c].iloc[0]) is not None]
    col = _pick_column(path, found, column, list(frame.columns))
    cells = frame[col].tolist()
    first = _csv_vector(cells[0])
    dim = len(first)
    out = _allocate(path, len(cells), dim)
    for i, cell in enumerate(cells):
        parts = _csv_vector(cell)
        if parts is None:
            raise DataError(f"{path}: column {col!r}, row {i + 1}: {str(cell)[:40]!r} is not a list of numbers")
        if len(parts) != dim:
            raise DataError(
                f"{path}: column {col!r}, row {i + 1} has {len(parts)} values, the first vector {dim} "
                f"(ragged rows); every vector must have the same length"
            )
        try:
            out[i] = parts.astype(np.float32)
        except ValueError:
            bad = next(p for p in parts if not is_number(p))
            raise DataError(f"{path}: column {col!r}, row {i + 1}: {bad!r} is not a number") from None
    meta = frame.drop(columns=[col])
    return Read(out, metadata=meta.reset_index(drop=True), source=col)


def is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _typed(series: pd.Series) -> pd.Series:
    """A text column as numbers when every non-empty cell is one (else text, empty -> missing)."""
    text = series.replace("", np.nan)
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().sum() == text.notna().sum():
        return numbers
    return text


def read_metadata_file(path: Path, projector: bool = False) -> pd.DataFrame:
    """A metadata table: CSV, TSV (the Projector's rule with ``projector``: one column means no
    header, the column is the labels), Parquet/Arrow. Text columns stay text ("007" stays)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: metadata file not found")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".arrow", ".feather", ".ipc"):
            return pd.read_feather(path)
        sep = "\t" if suffix in (".tsv", ".tab") else ","
        with open(path, encoding="utf-8") as fh:
            first = fh.readline().rstrip("\r\n")
        if sep == "\t" and "\t" not in first:  # the Projector: a one-column file has no header
            lines = path.read_text(encoding="utf-8").split("\n")
            if lines and lines[-1] == "":
                lines.pop()
            return pd.DataFrame({"label": [x.rstrip("\r") for x in lines]})
        frame = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quoting=3 if sep == "\t" else 0)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable metadata table ({str(exc).splitlines()[0]})") from None
    return frame  # text: the importer types the columns left after keys and labels


def read_keys_file(path: Path) -> np.ndarray:
    """Keys one per line (``keys.txt``), or the ``key`` column (else the first) of a CSV/TSV."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: keys file not found")
    if path.suffix.lower() in (".csv", ".tsv", ".parquet", ".arrow", ".feather"):
        frame = read_metadata_file(path)
        col = "key" if "key" in frame.columns else frame.columns[0]
        return frame[col].astype(str).to_numpy(dtype=object)
    keys = [line for line in _open_text(path)]
    while keys and keys[-1] == "":
        keys.pop()
    return np.asarray(keys, dtype=object)
