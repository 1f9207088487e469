"""Runs on disk: what a trainer writes and what an analysis reads.

A run is a folder anyone can open without embedlab::

    run.json              dataset, kind, trainer, config, seed, split, versions, metrics,
                          per-epoch history, and one entry per embedding table
    weights.safetensors   every tensor of the model (no pickle)
    <table>.csv           one row per entity: key, label, metadata columns

Loading never executes code from the folder: JSON, CSV and safetensors only.
"""
from __future__ import annotations

import json
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from embedlab.io.atomic import atomic_dir
from embedlab.errors import RunFormatError, UsageError

FORMAT_VERSION = 1
RUN_FILE = "run.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class EmbeddingTable:
    """One entity's embedding.

    :param name: table name (``user``, ``item``, ``Store``...).
    :param keys: entity keys, as in the source data (n,).
    :param labels: what a person reads (titles, state names) (n,).
    :param vectors: the embedding matrix (n x k), float32.
    :param bias_values: the per-entity bias (n,) or None.
    :param metadata: per-entity annotations (n rows, aligned with ``keys``): counts, mean
        target, genres, ``latitude``/``longitude``, ``cycle_order``...
    :param attrs: table-level annotations (``cycle_length``, ``count_column``...).
    """

    name: str
    keys: np.ndarray
    labels: np.ndarray
    vectors: np.ndarray
    bias_values: np.ndarray | None = None
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = np.asarray(self.keys)
        self.labels = np.asarray(self.labels, dtype=object).astype(str)
        self.vectors = np.asarray(self.vectors, dtype=np.float32)
        if self.vectors.ndim != 2 or len(self.vectors) != len(self.keys):
            raise ValueError(f"table {self.name}: vectors must be (n, k) with n == len(keys)")
        if len(self.labels) != len(self.keys):
            raise ValueError(f"table {self.name}: labels and keys differ in length")
        if self.bias_values is not None:
            self.bias_values = np.asarray(self.bias_values, dtype=np.float32).reshape(-1)
        self.metadata = self.metadata.reset_index(drop=True)
        if self.metadata.shape == (0, 0):  # no annotations: still one (empty) row per entity
            self.metadata = pd.DataFrame(index=pd.RangeIndex(len(self.keys)))
        if len(self.metadata) != len(self.keys):
            raise ValueError(f"table {self.name}: metadata has {len(self.metadata)} rows for "
                             f"{len(self.keys)} keys")

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def bias(self) -> pd.Series | None:
        """The bias as a Series indexed by label (labels may repeat; keys never do)."""
        if self.bias_values is None:
            return None
        return pd.Series(self.bias_values, index=pd.Index(self.labels, name="label"), name="bias")

    @property
    def count(self) -> np.ndarray | None:
        """How often each entity was observed in training, where the dataset says."""
        col = self.attrs.get("count_column", "count")
        return self.metadata[col].to_numpy() if col in self.metadata else None

    def frame(self) -> pd.DataFrame:
        """key, label, bias (if any) and metadata as one DataFrame."""
        df = pd.DataFrame({"key": self.keys, "label": self.labels})
        if self.bias_values is not None:
            df["bias"] = self.bias_values
        extra = self.metadata.drop(columns=[c for c in ("key", "label", "bias") if c in self.metadata])
        return pd.concat([df, extra], axis=1)

    def lookup(self, query: str) -> int:
        """Row of the entity whose label or key equals ``query``; UsageError with suggestions."""
        hits = np.flatnonzero(self.labels == query)
        if len(hits) == 0:
            hits = np.flatnonzero(self.keys.astype(str) == str(query))
        if len(hits) == 0:
            import difflib

            close = difflib.get_close_matches(query, list(dict.fromkeys(self.labels)), n=5, cutoff=0.4)
            lowered = [l for l in self.labels if query.lower() in l.lower()][:5]
            ideas = list(dict.fromkeys(lowered + close))[:5]
            hint = f"; did you mean: {'; '.join(ideas)}" if ideas else ""
            raise UsageError(f"no entity with label or key {query!r} in table {self.name!r}{hint}")
        return int(hits[0])


def versions() -> dict[str, str]:
    """Versions of what produced a run (recorded for reproducibility)."""
    import torch

    from embedlab._version import __version__

    return {"embedlab": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, "pandas": pd.__version__, "platform": platform.platform()}


class Run:
    """A trained run: metadata, weights and embedding tables (see module docstring)."""

    def __init__(self, meta: dict[str, Any], tables: dict[str, EmbeddingTable],
                 tensors: dict[str, Any] | None = None, path: Path | None = None) -> None:
        self.meta = meta
        self._tables = tables
        self._tensors = tensors
        self.path = path

    # -- convenient views of run.json
    dataset = property(lambda self: self.meta.get("dataset"))
    kind = property(lambda self: self.meta.get("kind"))
    config = property(lambda self: self.meta.get("config", {}))
    metrics = property(lambda self: self.meta.get("metrics", {}))
    history = property(lambda self: self.meta.get("history", []))
    split = property(lambda self: self.meta.get("split", {}))
    seed = property(lambda self: self.meta.get("seed"))

    @property
    def task(self) -> str | None:
        """What the run's model predicts, ``"regression"`` or ``"classify"`` (run.json's ``task``).
        Runs written before trainers recorded it: the tabular record's task, and ``"regression"``
        for collab runs (ratings); None when nothing says."""
        task = self.meta.get("task")
        if isinstance(task, str) and task:
            return task
        older = (self.meta.get("tabular") or {}).get("task")
        if isinstance(older, str) and older:
            return older
        return "regression" if self.kind == "collab" else None

    @property
    def table_names(self) -> list[str]:
        return list(self._tables)

    def table(self, name: str) -> EmbeddingTable:
        if name not in self._tables:
            raise UsageError(f"run has no table {name!r}; its tables are: {', '.join(self._tables)}")
        return self._tables[name]

    @property
    def tables(self) -> dict[str, EmbeddingTable]:
        return dict(self._tables)

    def tensors(self) -> dict[str, Any]:
        """All model tensors (torch), read lazily from weights.safetensors."""
        if self._tensors is None:
            if self.path is None:
                raise RunFormatError("this run has no weights in memory and no folder")
            self._tensors = _read_weights(self.path)
        return self._tensors

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"<Run {self.dataset} ({self.kind}){where}: tables {', '.join(self._tables)}>"

    # -- saving
    def save(self, out: str | Path) -> Path:
        """Write the run folder atomically; an existing *run* folder is replaced only when the
        new one is complete; any other existing folder is refused."""
        out = Path(out)
        check_out_dir(out)
        from safetensors.torch import save_file

        tables_meta = {}
        used: set[str] = set()  # CSV names taken, case-folded ("a b" and "a_b" must not share one)
        with atomic_dir(out) as tmp:
            tensors = {k: v.detach().cpu().contiguous() for k, v in (self._tensors or {}).items()}
            for name, table in self._tables.items():
                import torch

                tensors[f"tables.{name}.vectors"] = torch.from_numpy(np.ascontiguousarray(table.vectors))
                if table.bias_values is not None:
                    tensors[f"tables.{name}.bias"] = torch.from_numpy(np.ascontiguousarray(table.bias_values))
                key_dtype = "int" if np.issubdtype(table.keys.dtype, np.integer) else "str"
                csv_name, n = f"{_safe_name(name)}.csv", 1
                while csv_name.lower() in used:
                    n += 1
                    csv_name = f"{_safe_name(name)}-{n}.csv"
                used.add(csv_name.lower())
                frame = table.frame().drop(columns=["bias"], errors="ignore")
                # RFC 4180 line ends: the writer then quotes a field holding "\r" as well as "\n"
                # (with "\n" alone, a label with a bare "\r" split its row when read back)
                frame.to_csv(tmp / csv_name, index=False, lineterminator="\r\n")
                columns = list(frame.columns[2:])  # metadata: names as given, text ones read as text
                text = [c for c in columns if frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c])
                        or isinstance(frame[c].dtype, pd.CategoricalDtype)]
                tables_meta[name] = {"csv": csv_name, "n": len(table),
                                     "dim": table.dim, "has_bias": table.bias_values is not None,
                                     "key_dtype": key_dtype, "attrs": table.attrs,
                                     "columns": columns, "text_columns": text}
            save_file(tensors, str(tmp / WEIGHTS_FILE))
            meta = dict(self.meta, format_version=FORMAT_VERSION, tables=tables_meta)
            (tmp / RUN_FILE).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
        self.meta, self.path = meta, out
        return out


def _safe_name(name: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    if not safe or safe.startswith("."):
        raise ValueError(f"unusable table name {name!r}")
    return safe


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def is_run_dir(path: Path) -> bool:
    return (path / RUN_FILE).is_file()


def check_out_dir(out: Path) -> None:
    """``--out`` may be new, empty, or an existing run (replaced); anything else is refused."""
    if out.exists():
        if not out.is_dir():
            raise UsageError(f"--out {str(out)!r} is a file, not a folder")
        if any(out.iterdir()) and not is_run_dir(out):
            raise UsageError(f"--out {str(out)!r} exists and is not an embedlab run; "
                             f"choose a new folder (embedlab never overwrites other data)")
    ancestor = out.absolute().parent  # fail now, not after training: can the folder be made?
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"--out {str(out)!r} cannot be created: {str(ancestor)!r} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"--out {str(out)!r} cannot be created: no permission to write in {str(ancestor)!r}")


def _read_weights(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wfile = path / WEIGHTS_FILE
    if not wfile.is_file():
        raise RunFormatError(f"{str(wfile)!r} is missing: the run folder is incomplete")
    try:
        return load_file(str(wfile))
    except (SafetensorError, OSError, ValueError, Exception) as exc:  # never fall back to pickle
        raise RunFormatError(f"{str(wfile)!r} is not a valid safetensors file ({exc}); "
                             f"embedlab never loads pickled weights") from None


def _read_table_csv(csv: Path, info: dict[str, Any]) -> pd.DataFrame:
    """A table's CSV as written by :meth:`Run.save`: keys and labels exactly as text (an empty
    string or "NA" is a value, not a missing one), text metadata as text ("007" stays "007"),
    other metadata typed by pandas, empty metadata cells missing, column names as saved."""
    header = list(pd.read_csv(csv, nrows=0, dtype=str).columns)
    saved = info.get("columns")
    if not isinstance(saved, list) or len(saved) != len(header) - 2:
        saved = None  # a run written before column names were recorded
    text = set(info.get("text_columns") or []) if saved is not None else set()
    dtype = {"key": str, "label": str}
    dtype.update({h: str for h, c in zip(header[2:], saved or []) if c in text})
    frame = pd.read_csv(csv, dtype=dtype, keep_default_na=False,
                        na_values={h: [""] for h in header[2:]})
    if saved is not None:
        frame.columns = ["key", "label"] + saved
    return frame


def load_run(path: str | Path) -> Run:
    """Open a run folder. Reads JSON, CSV and safetensors only; never unpickles."""
    path = Path(path)
    if not path.is_dir():
        raise RunFormatError(f"{str(path)!r} is not a folder; give the --out folder of `embedlab train`")
    rfile = path / RUN_FILE
    if not rfile.is_file():
        raise RunFormatError(f"{str(path)!r} is not an embedlab run: {RUN_FILE} is missing")
    try:
        meta = json.loads(rfile.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunFormatError(f"{str(rfile)!r} is not valid JSON: {exc}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("tables"), dict):
        raise RunFormatError(f"{str(rfile)!r} does not describe a run (no 'tables')")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunFormatError(f"{str(rfile)!r} has format version {version!r}; this embedlab reads "
                             f"up to {FORMAT_VERSION}: upgrade embedlab (pip install -U embedlab)")
    tensors = _read_weights(path)
    tables = {}
    for name, info in meta["tables"].items():
        try:
            csv = path / _safe_name(str(info.get("csv", f"{name}.csv")))
        except (ValueError, AttributeError):
            raise RunFormatError(f"{str(rfile)!r}: table {name!r} names an unusable file; "
                                 f"CSV files must lie inside the run folder") from None
        if not csv.is_file():
            raise RunFormatError(f"{str(csv)!r} is missing: the run folder is incomplete")
        vkey = f"tables.{name}.vectors"
        if vkey not in tensors:
            raise RunFormatError(f"{str(path / WEIGHTS_FILE)!r} has no tensor {vkey!r}")
        bkey = f"tables.{name}.bias"
        try:
            frame = _read_table_csv(csv, info)
            keys = frame["key"].to_numpy()
            if info.get("key_dtype") == "int":
                keys = keys.astype(np.int64)
            tables[name] = EmbeddingTable(
                name=name, keys=keys, labels=frame["label"].fillna("").to_numpy(),
                vectors=tensors[vkey].numpy(),
                bias_values=tensors[bkey].numpy() if bkey in tensors else None,
                metadata=frame.drop(columns=["key", "label"]),
                attrs=info.get("attrs", {}),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise RunFormatError(f"{str(csv)!r} does not match the run (table {name!r}): "
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    model_tensors = {k: v for k, v in tensors.items() if not k.startswith("tables.")}
    return Run(meta, tables, model_tensors, path)
