"""Exporting embedding tables to formats other tools read, and reading them back.

- ``projector``: TensorFlow Embedding Projector (https://projector.tensorflow.org) files:
  ``vectors.tsv`` (one row of tab-separated floats per entity, no header) and ``metadata.tsv``
  (a header row, then label, key and the annotations; load both with "Load" in the Projector).
- ``word2vec``: the word2vec text format (``vectors.txt``: a ``N DIM`` header line, then
  ``TOKEN v1 v2 ...``), read by gensim's ``KeyedVectors.load_word2vec_format``. Tokens are
  the entity keys with whitespace replaced by ``_``; ``metadata.tsv`` maps them back.
- ``npy``: ``vectors.npy`` (float32, NumPy's format, no pickle) and ``keys.txt`` (one key per
  line, in row order), plus ``metadata.tsv``.
- ``csv``: ``coordinates.csv``: key, label, bias, annotations, projected coordinates (PCA
  components 1-3 over the observed entities, empty for the others; UMAP/t-SNE when asked) and
  the ``vector`` (``[v1, v2, ...]``), one row per entity;
- ``parquet``: ``vectors.parquet``, embedding-atlas' layout: the same columns with the vector as
  a list column and ``projection_x``/``projection_y`` (the 2-D map: UMAP or t-SNE when asked,
  else PCA 1-2); ``embedding-atlas vectors.parquet --text label --x projection_x --y
  projection_y --vector vector`` opens it.

Every file is written atomically; text from data has tabs and newlines replaced by spaces so
a label can never break a row. Floats are written with 9 significant digits, which read back
as the same float32: every format round-trips through ``embedlab import``
(:mod:`embedlab.toolkit.importing`). :func:`read_vectors` reads the first three back (or the same
formats from other tools); embedlab.training.pretrained aligns them with a model's tables.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from embedlab.io.ownership import check_export, owned_file
from embedlab.io import readers
from embedlab.errors import DataError, UsageError

if TYPE_CHECKING:
    from embedlab.run import EmbeddingTable

FORMATS = ("projector", "word2vec", "npy", "csv", "parquet")
_WS = re.compile(r"[\t\r\n]+")


def _clean(value: Any) -> str:
    """One TSV cell: no tab or newline can survive; missing values are empty."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return _WS.sub(" ", str(value))


#: what a spreadsheet reads as the start of a formula (OWASP "CSV injection")
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell (and column name) that a spreadsheet would run as a
    formula (``=cmd|' /C calc'!A0``, ``+1+1``, ``@SUM(...)``) prefixed with ``'``, as OWASP
    recommends for CSV files; numbers (``-1.5``) are left as they are. Every CSV embedlab
    writes for people (``export --format csv``, ``predict --out``) goes through here."""

    def safe(value: Any) -> Any:
        return "'" + value if isinstance(value, str) and value.startswith(FORMULA_PREFIXES) else value

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col]):
            out[col] = out[col].map(safe)
    out.columns = [safe(str(c)) if isinstance(c, str) else c for c in out.columns]
    return out


def _token(key: Any) -> str:
    token = re.sub(r"\s+", "_", str(key).strip())
    return token or "_"


def metadata_frame(table: EmbeddingTable) -> pd.DataFrame:
    """label, key, bias (if any) and the annotations, one row per entity (row order)."""
    frame = table.frame
    cols = ["label", "key"] + [c for c in frame.columns if c not in ("label", "key")]
    return frame[cols]


def _write_tsv_rows(path: Path, rows: list[list[Any]], header: list[str] | None = None, force: bool = False) -> None:
    with owned_file(path, "w", force=force, option="--out", by="embedlab export", encoding="utf-8", newline="\n") as fh:
        if header is not None:
            fh.write("\t".join(_clean(h) for h in header) + "\n")
        for row in rows:
            fh.write("\t".join(_clean(v) for v in row) + "\n")


def _write_metadata(table: EmbeddingTable, path: Path, force: bool = False) -> Path:
    meta = metadata_frame(table)
    values = meta.astype(object).where(meta.notna(), None).to_numpy().tolist()
    _write_tsv_rows(path, values, header=list(meta.columns), force=force)
    return path


def _float_text(vectors: np.ndarray) -> list[str]:
    """Rows of floats as text with 9 significant digits: each reads back as the same float32."""
    return [" ".join(f"{v:.9g}" for v in row) for row in np.asarray(vectors, dtype=np.float32).tolist()]


#: the files each export format writes
EXPORT_FILES = {
    "projector": ("vectors.tsv", "metadata.tsv"),
    "word2vec": ("vectors.txt", "metadata.tsv"),
    "npy": ("vectors.npy", "keys.txt", "metadata.tsv"),
    "csv": ("coordinates.csv",),
    "parquet": ("vectors.parquet",),
}


def check_export_target(out_dir: str | Path, fmt: str, force: bool = False) -> None:
    """Refuse, before any work, an export that would replace files embedlab did not write
    (the write rule, :mod:`embedlab.io.ownership`)."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    check_export(out_dir, EXPORT_FILES[fmt], force=force)


def export_table(
    table: EmbeddingTable, fmt: str, out_dir: str | Path, *, coords: pd.DataFrame | None = None, force: bool = False
) -> list[Path]:
    """Write ``table`` in format ``fmt`` (one of :data:`FORMATS`) into ``out_dir``; returns the
    files written. Under the write rule: each file is new, or one embedlab wrote there and that
    is unchanged since (the folder's ``.embedlab-files.json`` lists them), or ``force``; each is
    replaced atomically, and nothing else in ``out_dir`` is touched. ``coords``: what ``csv``
    and ``parquet`` write beside the vectors, :func:`embedlab.toolkit.projection.projected_coordinates`
    of the table."""
    check_export_target(out_dir, fmt, force)
    if fmt in ("csv", "parquet") and coords is None:
        raise UsageError(
            f"export as {fmt} needs the projected coordinates "
            "(coords=embedlab.toolkit.projection.projected_coordinates(table))"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    opts = {"force": force, "option": "--out", "by": "embedlab export"}
    if fmt == "projector":
        with owned_file(out / "vectors.tsv", "w", encoding="utf-8", newline="\n", **opts) as fh:
            for line in _float_text(table.vectors):
                fh.write(line.replace(" ", "\t") + "\n")
        written += [out / "vectors.tsv", _write_metadata(table, out / "metadata.tsv", force)]
    elif fmt == "word2vec":
        with owned_file(out / "vectors.txt", "w", encoding="utf-8", newline="\n", **opts) as fh:
            fh.write(f"{len(table)} {table.dim}\n")
            for key, line in zip(table.keys, _float_text(table.vectors)):
                fh.write(f"{_token(key)} {line}\n")
        written += [out / "vectors.txt", _write_metadata(table, out / "metadata.tsv", force)]
    elif fmt == "npy":
        with owned_file(out / "vectors.npy", "wb", **opts) as fh:
            np.save(fh, np.ascontiguousarray(table.vectors, dtype=np.float32), allow_pickle=False)
        with owned_file(out / "keys.txt", "w", encoding="utf-8", newline="\n", **opts) as fh:
            for key in table.keys:
                fh.write(_clean(key) + "\n")
        written += [out / "vectors.npy", out / "keys.txt", _write_metadata(table, out / "metadata.tsv", force)]
    elif fmt == "csv":
        coords = coords.assign(vector=["[" + line.replace(" ", ", ") + "]" for line in _float_text(table.vectors)])
        with owned_file(out / "coordinates.csv", "w", encoding="utf-8", newline="", **opts) as fh:
            spreadsheet_safe(coords).to_csv(fh, index=False)
        written.append(out / "coordinates.csv")
    else:  # parquet, embedding-atlas' layout
        written.append(_write_parquet(table, coords, out / "vectors.parquet", opts))
    return written


def _write_parquet(table: EmbeddingTable, coords: pd.DataFrame, path: Path, opts: dict[str, Any]) -> Path:
    """``vectors.parquet``: ``coords``' columns, ``projection_x``/``projection_y`` (UMAP, else
    t-SNE, else PCA 1-2: the first map ``coords`` has) and ``vector`` (a list column)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError("export --format parquet needs pyarrow (pip install pyarrow)") from None
    xy = next(m for m in ("umap", "tsne", "pca") if f"{m}_2" in coords.columns or m == "pca")
    frame = coords.assign(projection_x=coords.get(f"{xy}_1"), projection_y=coords.get(f"{xy}_2"))
    try:
        arrow = pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # a column mixing numbers and text: write it as text
        mixed = {
            c: frame[c].map(lambda v: None if v is None or v != v else str(v))
            for c in frame.columns
            if frame[c].dtype == object
        }
        arrow = pa.Table.from_pandas(frame.assign(**mixed), preserve_index=False)
    vectors = np.ascontiguousarray(table.vectors, dtype=np.float32)
    offsets = pa.array(np.arange(0, vectors.size + 1, vectors.shape[1], dtype=np.int64))
    arrow = arrow.append_column("vector", pa.LargeListArray.from_arrays(offsets, pa.array(vectors.reshape(-1))))
    with owned_file(path, "wb", **opts) as fh:
        pq.write_table(arrow, fh)
    return path


# ---------------------------------------------------------------------------- importing
# --init-from's reading of the formats above: the vectors through embedlab.io.readers (the
# parsers `embedlab import` uses), the keys by the rules below. The rows are returned as they
# are in the file; aligning them with a model's keys is embedlab.training.pretrained's job.
# Every problem is a DataError naming the file (and line).
IMPORT_FORMATS = ("projector", "word2vec", "npy")
_VECTOR_FILES = {"projector": "vectors.tsv", "word2vec": "vectors.txt", "npy": "vectors.npy"}


class ImportedVectors:
    """Vectors read from a file: ``keys`` (str, row order), ``vectors`` (n x k float32).

    ``tokens`` is True when the keys are word2vec tokens (whitespace in the original keys
    became ``_``), so matching must tokenise the other side too.
    """

    def __init__(
        self,
        keys: list[str],
        vectors: np.ndarray,
        fmt: str,
        path: Path,
        keys_path: Path | None = None,
        tokens: bool = False,
    ) -> None:
        self.keys, self.vectors, self.fmt, self.path = keys, vectors, fmt, path
        self.keys_path, self.tokens = keys_path, tokens

    def __len__(self) -> int:
        return len(self.keys)


def token(key: Any) -> str:
    """The word2vec token of a key (what :func:`export_table` writes)."""
    return _token(key)


def detect_format(path: str | Path) -> str:
    """``projector`` (.tsv), ``word2vec`` (.txt/.vec/.w2v) or ``npy`` (.npy), by extension."""
    suffix = Path(path).suffix.lower()
    if suffix == ".tsv":
        return "projector"
    if suffix in (".txt", ".vec", ".w2v"):
        return "word2vec"
    if suffix == ".npy":
        return "npy"
    if suffix == ".bin":
        raise UsageError(
            f"{path}: binary word2vec files are not read; convert it to the text format "
            f"(gensim: KeyedVectors.save_word2vec_format(..., binary=False))"
        )
    raise UsageError(
        f"{path}: unknown vector format {suffix or '(no extension)'!r}; give a Projector "
        f"vectors.tsv, a word2vec text file (.txt/.vec) or a .npy file"
    )


def vectors_file_in(folder: str | Path) -> Path | None:
    """The one vectors file :func:`export_table` writes into ``folder`` (None if none or several)."""
    found = [Path(folder) / f for f in _VECTOR_FILES.values() if (Path(folder) / f).is_file()]
    return found[0] if len(found) == 1 else None


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_keys(path: str | Path) -> list[str]:
    """Keys, one per row of a vectors file: a plain list (one key per line, as ``keys.txt``)
    or a TSV with a header row (as ``metadata.tsv``), whose ``key`` column is used (its first
    column when it has none; a one-column TSV has no header, as the Projector expects)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: keys file not found")
    lines = _lines(path)
    if not lines:
        raise DataError(f"{path}: the keys file is empty")
    if "\t" not in lines[0]:
        return [line.strip() for line in lines]
    header = lines[0].split("\t")
    col = header.index("key") if "key" in header else 0
    out = []
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split("\t")
        if len(cells) <= col:
            raise DataError(f"{path}: line {n} has {len(cells)} fields, the header {len(header)}")
        out.append(cells[col].strip())
    return out


def _sibling_keys(path: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (path.parent / name).is_file():
            return path.parent / name
    return None


def read_vectors(path: str | Path, keys: str | Path | None = None, fmt: str | None = None) -> ImportedVectors:
    """Read a vectors file written by :func:`export_table` or by another tool.

    * projector: ``vectors.tsv``; keys from ``keys`` or the ``metadata.tsv`` beside it;
    * word2vec: text format (``N DIM`` header optional, as GloVe has none); keys are its
      tokens, or the ``key`` column of ``keys``/the ``metadata.tsv`` beside it when that
      has one row per vector (embedlab's own exports: the original, untokenised keys);
    * npy: a 2-D float array (never unpickled); keys from ``keys`` or ``keys.txt`` /
      ``metadata.tsv`` beside it.

    Checked here: a keys file with as many rows as vectors, no duplicate key, every value
    finite, every row the same length.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: vectors file not found")
    fmt = fmt or detect_format(path)
    if fmt not in IMPORT_FORMATS:
        raise UsageError(f"unknown vector format {fmt!r}; choose one of: {', '.join(IMPORT_FORMATS)}")
    keys_path = Path(keys) if keys is not None else None
    tokens = False
    if fmt == "npy":
        vectors = readers.read_npy(path).vectors
        keys_path = keys_path or _sibling_keys(path, ("keys.txt", "metadata.tsv"))
        if keys_path is None:
            raise UsageError(f"{path}: a .npy file holds no keys; give the keys file with --init-keys")
        row_keys = read_keys(keys_path)
    elif fmt == "projector":
        vectors = readers.read_projector_vectors(path).vectors
        keys_path = keys_path or _sibling_keys(path, ("metadata.tsv",))
        if keys_path is None:
            raise UsageError(
                f"{path}: a Projector vectors.tsv holds no keys; give its metadata.tsv "
                f"(or a keys file) with --init-keys"
            )
        row_keys = read_keys(keys_path)
    else:  # word2vec text (GloVe: no header)
        read = readers.read_word2vec_text(path)
        vectors, row_keys = read.vectors, [str(k) for k in read.keys]
        tokens = True
        meta = keys_path or _sibling_keys(path, ("metadata.tsv",))
        if meta is not None:
            meta_keys = read_keys(meta)
            if keys_path is not None or (
                len(meta_keys) == len(row_keys) and [_token(k) for k in meta_keys] == row_keys
            ):
                row_keys, keys_path, tokens = meta_keys, meta, False
    if len(vectors) == 0:
        raise DataError(f"{path}: no vectors in the file")
    if len(row_keys) != len(vectors):
        raise DataError(
            f"{keys_path or path}: {len(row_keys)} keys for {len(vectors)} vectors in {path}; "
            f"the keys file must have one key per vector row, in the same order"
        )
    seen: dict[str, int] = {}
    for i, k in enumerate(row_keys):
        if k in seen:
            raise DataError(
                f"{keys_path or path}: key {k!r} appears twice (rows {seen[k] + 1} and {i + 1}); keys must be unique"
            )
        seen[k] = i
    finite = np.isfinite(vectors)
    if not finite.all():
        row = int(np.flatnonzero(~finite.all(axis=1))[0])
        raise DataError(
            f"{path}: the vector of key {row_keys[row]!r} (row {row + 1}) holds "
            f"{float(vectors[row][~finite[row]][0])}; every value must be a finite number"
        )
    return ImportedVectors(list(row_keys), vectors.astype(np.float32), fmt, path, keys_path, tokens)
