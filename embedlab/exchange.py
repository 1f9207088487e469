"""Exporting embedding tables to formats other tools read.

- ``projector``: TensorFlow Embedding Projector (https://projector.tensorflow.org) files:
  ``vectors.tsv`` (one row of tab-separated floats per entity, no header) and ``metadata.tsv``
  (a header row, then label, key and the annotations; load both with "Load" in the Projector).
- ``word2vec``: the word2vec text format (``vectors.txt``: a ``N DIM`` header line, then
  ``TOKEN v1 v2 ...``), read by gensim's ``KeyedVectors.load_word2vec_format``. Tokens are
  the entity keys with whitespace replaced by ``_``; ``metadata.tsv`` maps them back.
- ``npy``: ``vectors.npy`` (float32, NumPy's format, no pickle) and ``keys.txt`` (one key per
  line, in row order), plus ``metadata.tsv``.
- ``csv``: ``coordinates.csv``: key, label, bias, annotations and projected coordinates
  (PCA components 1-3 over all observed entities; UMAP too when asked).

Every file is written atomically; text from data has tabs and newlines replaced by spaces so
a label can never break a row.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .atomic import atomic_file
from .errors import UsageError
from .run import EmbeddingTable

FORMATS = ("projector", "word2vec", "npy", "csv")
_WS = re.compile(r"[\t\r\n]+")


def _clean(value: Any) -> str:
    """One TSV cell: no tab or newline can survive; missing values are empty."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return ""
    return _WS.sub(" ", str(value))


def _token(key: Any) -> str:
    token = re.sub(r"\s+", "_", str(key).strip())
    return token or "_"


def metadata_frame(table: EmbeddingTable) -> pd.DataFrame:
    """label, key, bias (if any) and the annotations, one row per entity (row order)."""
    frame = table.frame()
    cols = ["label", "key"] + [c for c in frame.columns if c not in ("label", "key")]
    return frame[cols]


def _write_tsv_rows(path: Path, rows: list[list[Any]], header: list[str] | None = None) -> None:
    with atomic_file(path, "w", encoding="utf-8", newline="\n") as fh:
        if header is not None:
            fh.write("\t".join(_clean(h) for h in header) + "\n")
        for row in rows:
            fh.write("\t".join(_clean(v) for v in row) + "\n")


def _write_metadata(table: EmbeddingTable, path: Path) -> Path:
    meta = metadata_frame(table)
    values = meta.astype(object).where(meta.notna(), None).to_numpy().tolist()
    _write_tsv_rows(path, values, header=list(meta.columns))
    return path


def _float_text(vectors: np.ndarray) -> list[str]:
    """Rows of floats as text with 6 significant digits (exact enough, half the size of repr)."""
    return [" ".join(f"{v:.6g}" for v in row) for row in np.asarray(vectors, dtype=np.float32)]


def projected_coordinates(table: EmbeddingTable, umap: bool = False, seed: int = 42) -> pd.DataFrame:
    """key, label, bias, annotations, PCA 1-3 (and UMAP 1-2) of every observed entity.

    The coordinates are those of the registered ``pca`` and ``umap`` analyses run with
    ``--top-n 0`` (all observed entities), found through the plugin registry like any
    analysis, so the CSV matches what a report shows.
    """
    from .registry import analyses
    from .run import Run

    found = analyses()
    wanted = ["pca"] + (["umap"] if umap else [])
    missing = [n for n in wanted if n not in found]
    if missing:
        raise UsageError(f"the csv export needs the {', '.join(missing)} analysis plugin(s), which are not "
                         f"installed; installed analyses: {', '.join(found) or '(none)'}")
    run = Run({"dataset": "export"}, {table.name: table})
    out = table.frame()
    for name, cols, prefix in (("pca", ("PC1", "PC2", "PC3"), "pca_"), ("umap", ("UMAP 1", "UMAP 2"), "umap_")):
        if name not in wanted:
            continue
        analysis = found[name]
        from .analysis import resolve_options

        options = resolve_options(analysis, {"top_n": 0, "seed": seed})
        plot = analysis.run(run, table.name, options).data["plot"]
        coords = pd.DataFrame({"key": plot["key"].to_numpy()})
        for i, col in enumerate(c for c in cols if c in plot):
            coords[f"{prefix}{i + 1}"] = np.round(plot[col].to_numpy(dtype=float), 6)
        out = out.merge(coords, on="key", how="inner" if name == "pca" else "left")
    return out


def export_table(table: EmbeddingTable, fmt: str, out_dir: str | Path, *, umap: bool = False,
                 seed: int = 42) -> list[Path]:
    """Write ``table`` in format ``fmt`` (one of :data:`FORMATS`) into ``out_dir``; returns the
    files written. Existing files of the same names are replaced atomically; nothing else in
    ``out_dir`` is touched."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {str(out)!r} is a file; give a folder for the exported files")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if fmt == "projector":
        with atomic_file(out / "vectors.tsv", "w", encoding="utf-8", newline="\n") as fh:
            for line in _float_text(table.vectors):
                fh.write(line.replace(" ", "\t") + "\n")
        written += [out / "vectors.tsv", _write_metadata(table, out / "metadata.tsv")]
    elif fmt == "word2vec":
        with atomic_file(out / "vectors.txt", "w", encoding="utf-8", newline="\n") as fh:
            fh.write(f"{len(table)} {table.dim}\n")
            for key, line in zip(table.keys, _float_text(table.vectors)):
                fh.write(f"{_token(key)} {line}\n")
        written += [out / "vectors.txt", _write_metadata(table, out / "metadata.tsv")]
    elif fmt == "npy":
        with atomic_file(out / "vectors.npy", "wb") as fh:
            np.save(fh, np.ascontiguousarray(table.vectors, dtype=np.float32), allow_pickle=False)
        with atomic_file(out / "keys.txt", "w", encoding="utf-8", newline="\n") as fh:
            for key in table.keys:
                fh.write(_clean(key) + "\n")
        written += [out / "vectors.npy", out / "keys.txt", _write_metadata(table, out / "metadata.tsv")]
    else:  # csv
        coords = projected_coordinates(table, umap=umap, seed=seed)
        with atomic_file(out / "coordinates.csv", "w", encoding="utf-8", newline="") as fh:
            coords.to_csv(fh, index=False)
        written.append(out / "coordinates.csv")
    return written
