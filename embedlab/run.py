"""Runs on disk: what a trainer writes and what an analysis reads.

A run is a folder anyone can open without embedlab::

    run.json              dataset, kind, trainer, config, seed, split, versions, metrics,
                          per-epoch history, and one entry per embedding table
    weights.safetensors   every tensor of the model (no pickle), each stored once
    <table>.csv           one row per entity: key, label, metadata columns

Format version 2 stores each tensor once: a table whose vectors (or biases) are rows of a model
tensor names it in run.json (``"vectors_from": {"tensor": "user_emb.weight", "rows": [0, 943]}``,
as TensorBoard's Projector names a ``tensor_name``) instead of a second copy; a table with no
such tensor (an imported run, a projection) keeps its own ``tables.NAME.vectors``. Version 1
runs (every table stored twice) are read unchanged.

Loading never executes code from the folder: JSON, CSV and safetensors only (the readers of
each file: :mod:`embedlab.io.runfiles`).
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

from embedlab.errors import RunFormatError, UsageError
from embedlab.io.ownership import RUN_MARK  # run.json's format marker: what makes a folder a run
from embedlab.io.runfiles import (  # noqa: F401 - META_TYPES: its old import path
    META_TYPES,
    RUN_FILE,
    WEIGHTS_FILE,
    check_meta,
    read_table_csv,
    read_weights,
    table_array,
)

FORMAT_VERSION = 2


class _CallableFrame(pd.DataFrame):
    """``EmbeddingTable.frame``'s value: a DataFrame that can still be called like the method it
    was (``table.frame()``), with a deprecation warning. Anything derived from it is a plain
    DataFrame."""

    @property
    def _constructor(self):
        return pd.DataFrame

    def __call__(self) -> pd.DataFrame:
        from embedlab.deprecations import FRAME_CALL

        FRAME_CALL.warn()
        return pd.DataFrame(self)


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
            raise ValueError(f"table {self.name}: metadata has {len(self.metadata)} rows for {len(self.keys)} keys")

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

    @property
    def frame(self) -> pd.DataFrame:
        """key, label, bias (if any) and metadata as one DataFrame (a property, as ``bias`` and
        ``count`` are; the earlier method call ``table.frame()`` still works, with a warning)."""
        df = pd.DataFrame({"key": self.keys, "label": self.labels})
        if self.bias_values is not None:
            df["bias"] = self.bias_values
        extra = self.metadata.drop(columns=[c for c in ("key", "label", "bias") if c in self.metadata])
        return _CallableFrame(pd.concat([df, extra], axis=1))

    # ------------------------------------------------------------ finding an entity
    def find(self, query: Any) -> "Match":
        """The entity a person means by ``query`` (a label or key), with how it matched.

        The lookup rules, used everywhere an entity is named (``embedlab neighbors``,
        ``Run.neighbors``, ``--entity``, the report's search should follow them too); the first
        rule that matches anything decides:

        1. the label exactly (``Star Wars (1977)``);
        2. the key exactly, as text (``50``);
        3. the label ignoring case, accents, punctuation and spacing (``star wars (1977)``,
           ``cafe au lait``);
        4. the key ignoring case and surrounding spaces;
        5. the title without its year and leading/trailing article (``star wars``,
           ``the godfather`` and ``godfather`` find ``Godfather, The (1972)``);
        6. the query (normalised as in 3) inside a label, when it is at least 3 characters.

        When the matching rows all carry one label (two items titled ``Chasing Amy (1997)``),
        the most observed one is used and :attr:`Match.note` says which and how to pick
        another (by key). When they carry different labels the query is ambiguous: a
        UsageError lists them (most observed first) with their keys. When nothing matches, a
        UsageError suggests close labels first and keys only after them (a title never gets
        "did you mean: user 197").
        """
        found = self._matches(query)
        if found is None:
            ideas = self.suggestions(query)
            hint = f"; did you mean: {'; '.join(ideas)}" if ideas else ""
            raise UsageError(f"no entity with label or key {str(query)!r} in table {self.name!r}{hint}")
        stage, rows, how = found
        return self._choose(query, stage, rows, how)

    def lookup(self, query: Any) -> int:
        """Row of the entity ``query`` names, by the rules of :meth:`find` (UsageError with
        suggestions or the ambiguous candidates when it names none or several)."""
        return self.find(query).row

    def _normalised(self) -> dict[str, np.ndarray]:
        cache = self.__dict__.get("_lookup_cache")
        if cache is None or len(cache["label"]) != len(self.labels):
            labels = [normalise_text(v) for v in self.labels]
            cache = {
                "label": np.asarray(labels, dtype=object),
                "key": np.asarray([str(k).strip().casefold() for k in self.keys], dtype=object),
                "title": np.asarray([title_core(v) for v in self.labels], dtype=object),
                "key_text": self.keys.astype(str),
            }
            self.__dict__["_lookup_cache"] = cache
        return cache

    def _matches(self, query: Any) -> tuple[int, np.ndarray, str] | None:
        """(rule number, matching rows, how) of the first rule of :meth:`find` that matches."""
        text = str(query)
        norm = self._normalised()
        q_norm, q_key, q_title = normalise_text(text), text.strip().casefold(), title_core(text)
        rules = [
            (1, lambda: self.labels == text, "label"),
            (2, lambda: norm["key_text"] == text, "key"),
            (3, lambda: norm["label"] == q_norm if q_norm else None, "label, ignoring case and punctuation"),
            (4, lambda: norm["key"] == q_key if q_key else None, "key, ignoring case"),
            (5, lambda: norm["title"] == q_title if q_title else None, "title, without year or article"),
            (
                6,
                lambda: np.array([q_norm in v for v in norm["label"]], dtype=bool) if len(q_norm) >= 3 else None,
                "part of a label",
            ),
        ]
        for stage, test, how in rules:
            hits = test()
            if hits is None:
                continue
            rows = np.flatnonzero(np.asarray(hits, dtype=bool))
            if len(rows):
                return stage, rows, how
        return None

    def _observed(self, rows: np.ndarray) -> np.ndarray:
        counts = self.count
        if counts is None:
            return np.zeros(len(rows))
        return np.nan_to_num(np.asarray(counts, dtype=float)[rows], nan=0.0)

    def _choose(self, query: Any, stage: int, rows: np.ndarray, how: str) -> "Match":
        order = rows[np.argsort(-self._observed(rows), kind="stable")]
        if len(order) == 1:
            return Match(int(order[0]), how, stage)
        labels = list(dict.fromkeys(str(v) for v in self.labels[order]))
        if len(labels) == 1:
            keys = ", ".join(str(k) for k in self.keys[order][:8])
            note = (
                f"{len(order)} entities of table {self.name!r} are labelled {labels[0]!r} (keys {keys}): "
                f"using key {self.keys[order[0]]}"
                + (", the most observed" if self.count is not None else "")
                + "; give the key to choose another"
            )
            return Match(int(order[0]), how, stage, note)
        shown = "; ".join(f"{self.labels[r]} (key {self.keys[r]})" for r in order[:8])
        more = f"; and {len(order) - 8} more" if len(order) > 8 else ""
        raise UsageError(
            f"{str(query)!r} is ambiguous in table {self.name!r}: it matches {len(order)} entities "
            f"by {how}: {shown}{more}; give more of the label, or the key"
        )

    def suggestions(self, query: Any, n: int = 5) -> list[str]:
        """Close labels for a query that matched nothing, then (after them, and only when the
        query looks like a key) close keys as ``key K (label)``."""
        import difflib

        norm = self._normalised()
        q = normalise_text(str(query))
        by_norm: dict[str, str] = {}
        for label, v in zip(self.labels, norm["label"]):
            by_norm.setdefault(v, label)
        for label, v in zip(self.labels, norm["title"]):
            by_norm.setdefault(v, label)
        close = [by_norm[v] for v in difflib.get_close_matches(q, list(by_norm), n=n, cutoff=0.6)]
        words = [w for w in q.split() if len(w) >= 3]
        if words and len(close) < n:  # titles sharing the query's longer words, most observed first
            has = np.flatnonzero([all(w in v for w in words) for v in norm["label"]])
            has = has[np.argsort(-self._observed(has), kind="stable")]
            close += [self.labels[r] for r in has[:n]]
        ideas = list(dict.fromkeys(close))[:n]
        text = str(query).strip()
        if len(ideas) < n and text and (text.isdigit() or not np.issubdtype(self.keys.dtype, np.integer)):
            keys = difflib.get_close_matches(text, list(dict.fromkeys(norm["key_text"])), n=n - len(ideas), cutoff=0.8)
            row_of = {k: i for i, k in enumerate(norm["key_text"])}
            ideas += [f"key {k} ({self.labels[row_of[k]]})" for k in keys]
        return ideas


@dataclass(frozen=True)
class Match:
    """How a query found an entity (:meth:`EmbeddingTable.find`): its ``row``, ``how`` it
    matched, the rule number (``stage``, 1-6) and a ``note`` explaining a choice among
    entities sharing a label (empty otherwise)."""

    row: int
    how: str
    stage: int
    note: str = ""


def normalise_text(text: str) -> str:
    """Lower case, accents and punctuation dropped, spaces collapsed: ``"Café au Lait!"`` ->
    ``"cafe au lait"`` (the lookup's rule 3)."""
    import unicodedata

    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return " ".join("".join(c if c.isalnum() else " " for c in plain).split())


_ARTICLES = ("the", "a", "an", "la", "le", "les", "il", "el", "der", "die", "das")


def title_core(text: str) -> str:
    """A title without its trailing ``(year)`` and its article, normalised:
    ``"Godfather, The (1972)"`` -> ``"godfather"``; ``"The Godfather"`` -> ``"godfather"``."""
    import re

    core = re.sub(r"\s*\((?:\d{4}|\d{4}[-–]\d{0,4})\)\s*$", "", str(text))
    words = normalise_text(core).split()
    if len(words) > 1 and words[-1] in _ARTICLES and re.search(r",\s*\w+\s*$", core):
        words = words[:-1]
    elif len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


def versions() -> dict[str, str]:
    """Versions of what produced a run (recorded for reproducibility)."""
    import torch

    from embedlab._version import __version__

    return {
        "embedlab": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "platform": platform.platform(),
    }


class Run:
    """A trained run: metadata, weights and embedding tables (see module docstring)."""

    def __init__(
        self,
        meta: dict[str, Any],
        tables: dict[str, EmbeddingTable],
        tensors: dict[str, Any] | None = None,
        path: Path | None = None,
    ) -> None:
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
    def imported(self) -> dict[str, Any] | None:
        """Where an imported run's parts came from (run.json's ``imported``: ``sources`` with file,
        SHA-256, format), None for a run embedlab trained."""
        value = self.meta.get("imported")
        return value if isinstance(value, dict) else None

    @property
    def has_training_data(self) -> bool:
        """True when embedlab trained the run (its dataset can be loaded again); False when it
        was imported (``embedlab import``, ``embedlab.from_vectors``)."""
        return self.imported is None and self.kind != "imported"

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
            self._tensors = read_weights(self.path)
        return self._tensors

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"<Run {self.dataset} ({self.kind}){where}: tables {', '.join(self._tables)}>"

    # -- saving
    def save(self, out: str | Path, force: bool = False) -> Path:
        """Write the run folder (the write rule: :mod:`embedlab.io.ownership`).

        A new folder appears whole (written beside it, then renamed). Into a run folder
        embedlab can prove it wrote (a retrain) the new run's files replace the old run's own
        files (those its manifest lists unchanged), run.json last; every other file and
        folder in it (your notes, runs nested there, files you edited) is left alone, and a
        table CSV is never given the name of one of those. A folder holding other files, or
        a run without that proof, is refused unless ``force`` (then same-named files are
        replaced and nothing is deleted); a link, a file, or a path inside another run,
        always. Every file written is listed with its SHA-256 in the folder's manifest
        (``.embedlab-files.json``). A run whose weights hold NaN or inf (a diverged training)
        is never saved."""
        from embedlab.io.atomic import move_files_into, staging_dir
        from embedlab.io.ownership import (
            MANIFEST,
            RUN_BY,
            _manifest,
            _manifest_text,
            run_files_plan,
            run_may_replace,
            sha256_file,
        )

        out = Path(out)
        check_out_dir(out, force=force)
        check_finite(self)
        from safetensors.torch import save_file

        replace, own = run_files_plan(out, force) if out.is_dir() else (set(), set())
        # CSV names taken, case-folded ("a b" and "a_b" must not share one), and the names of
        # whatever else lies in the folder (never replaced)
        used: set[str] = {p.name.lower() for p in out.iterdir() if p.name not in replace} if out.is_dir() else set()
        tables_meta = {}
        with staging_dir(out) as tmp:
            tensors = {k: v.detach().cpu().contiguous() for k, v in (self._tensors or {}).items()}
            for name, table in self._tables.items():
                import torch

                stored = {}  # format 2: a table's arrays that are rows of a model tensor name it instead
                for part, values in (("vectors", table.vectors), ("bias", table.bias_values)):
                    if values is None:
                        continue
                    source = _model_rows(values, self._tensors or {})
                    if source is not None:
                        stored[f"{part}_from"] = source
                    else:
                        tensors[f"tables.{name}.{part}"] = torch.from_numpy(np.ascontiguousarray(values))
                key_dtype = "int" if np.issubdtype(table.keys.dtype, np.integer) else "str"
                csv_name, n = f"{_safe_name(name)}.csv", 1
                while csv_name.lower() in used or csv_name in (RUN_FILE, WEIGHTS_FILE):
                    n += 1
                    csv_name = f"{_safe_name(name)}-{n}.csv"
                used.add(csv_name.lower())
                frame = table.frame.drop(columns=["bias"], errors="ignore")
                # RFC 4180 line ends: the writer then quotes a field holding "\r" as well as "\n"
                # (with "\n" alone, a label with a bare "\r" split its row when read back)
                frame.to_csv(tmp / csv_name, index=False, lineterminator="\r\n")
                columns = list(frame.columns[2:])  # metadata: names as given, text ones read as text
                text = [
                    c
                    for c in columns
                    if frame[c].dtype == object
                    or pd.api.types.is_string_dtype(frame[c])
                    or isinstance(frame[c].dtype, pd.CategoricalDtype)
                ]
                tables_meta[name] = {
                    **stored,
                    "csv": csv_name,
                    "n": len(table),
                    "dim": table.dim,
                    "has_bias": table.bias_values is not None,
                    "key_dtype": key_dtype,
                    "attrs": table.attrs,
                    "columns": columns,
                    "text_columns": text,
                }
            save_file(tensors, str(tmp / WEIGHTS_FILE))
            meta = dict(self.meta, format=RUN_MARK, format_version=FORMAT_VERSION, tables=tables_meta)
            (tmp / RUN_FILE).write_text(json.dumps(meta, indent=2, default=_json_default) + "\n")
            # the proof of ownership: every file of the new run with its SHA-256, beside what the
            # folder's manifest listed before (exports...), the old run's files dropped
            files = _manifest(out) if out.is_dir() else {}
            if files is not None:  # a manifest not embedlab's is left alone (the run is then unproven)
                files = {k: v for k, v in files.items() if k not in own}
                files.update({p.name: {"sha256": sha256_file(p), "by": RUN_BY} for p in tmp.iterdir()})
                (tmp / MANIFEST).write_text(_manifest_text(files))
            if out.is_dir():
                check_out_dir(out, force=force)  # again, now: the folder may have changed meanwhile
                move_files_into(
                    tmp, out, last=(MANIFEST, RUN_FILE), stale=own, may_replace=run_may_replace(out, replace, force)
                )
            else:
                os.rename(tmp, out)
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
    """True when ``path`` is a run folder embedlab made (:func:`embedlab.io.ownership.is_run_folder`)."""
    from embedlab.io.ownership import is_run_folder

    return is_run_folder(Path(path))


def check_out_dir(out: Path, force: bool = False) -> None:
    """``--out`` of a run: new, empty, or a run embedlab made; a folder holding other files
    only with ``force``; never a file or a path inside another run
    (:func:`embedlab.io.ownership.check_run_dir`, the one place of the write rule)."""
    from embedlab.io.ownership import check_run_dir

    check_run_dir(Path(out), force=force)


def check_finite(run: "Run") -> None:
    """A :class:`TrainingDiverged` naming the first table or tensor holding NaN or inf."""
    from embedlab.errors import TrainingDiverged

    arrays = [(f"table {n!r} vectors", t.vectors) for n, t in run._tables.items()]
    arrays += [(f"table {n!r} bias", t.bias_values) for n, t in run._tables.items() if t.bias_values is not None]
    for what, values in arrays:
        values = np.asarray(values)
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            raise TrainingDiverged(
                f"the trained {what} hold NaN or inf: training diverged (lower --lr; "
                f"`embedlab lr-find` suggests one); nothing was saved"
            )
    for name, tensor in (run._tensors or {}).items():
        if getattr(tensor, "is_floating_point", lambda: False)():
            import torch

            if not bool(torch.isfinite(tensor).all()):
                raise TrainingDiverged(
                    f"the trained tensor {name!r} holds NaN or inf: training diverged "
                    f"(lower --lr; `embedlab lr-find` suggests one); nothing was saved"
                )


def _model_rows(values: np.ndarray, model: dict[str, Any]) -> dict[str, Any] | None:
    """``{"tensor": name, "rows": [a, b]}`` when ``values`` equals rows a..b of a model tensor
    exactly (same dtype; a (n, 1) tensor stands for a bias vector), else None."""
    values = np.asarray(values)
    for tname, tensor in model.items():
        t = tensor.detach().cpu()
        if values.ndim == 1 and t.ndim == 2 and t.shape[1] == 1:
            t = t.reshape(-1)
        if t.ndim != values.ndim or tuple(t.shape[1:]) != values.shape[1:] or t.shape[0] < len(values):
            continue
        arr = t.numpy()
        if arr.dtype != values.dtype:
            continue
        n, extra = len(values), t.shape[0] - len(values)
        for start in dict.fromkeys((0, 1, extra)):
            if 0 <= start <= extra and np.array_equal(arr[start : start + n], values):
                return {"tensor": tname, "rows": [int(start), int(start + n)]}
    return None


def load_run(path: str | Path) -> Run:
    """Open a run folder. Reads JSON, CSV and safetensors only; never unpickles."""
    path = Path(path)
    if not path.is_dir():
        raise RunFormatError(f"{str(path)!r} is not a folder; give the --out folder of `embedlab train`")
    rfile = path / RUN_FILE
    if not rfile.is_file():
        raise RunFormatError(f"{str(path)!r} is not an embedlab run: {RUN_FILE} is missing")
    from embedlab.io.strictjson import read_json

    try:
        meta = read_json(rfile)
    except OSError as exc:
        raise RunFormatError(f"{str(rfile)!r} cannot be read: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise RunFormatError(f"{str(rfile)!r} {exc}; it is not a run.json embedlab wrote") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("tables"), dict):
        raise RunFormatError(f"{str(rfile)!r} does not describe a run (no 'tables')")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise RunFormatError(
            f"{str(rfile)!r} has format version {version!r}; this embedlab reads "
            f"up to {FORMAT_VERSION}: upgrade embedlab (pip install -U embedlab)"
        )
    check_meta(meta, rfile)
    tensors = read_weights(path)
    tables = {}
    for name, info in meta["tables"].items():
        try:
            csv = path / _safe_name(str(info.get("csv", f"{name}.csv")))
        except (ValueError, AttributeError):
            raise RunFormatError(
                f"{str(rfile)!r}: table {name!r} names an unusable file; CSV files must lie inside the run folder"
            ) from None
        if not csv.is_file():
            what = "is a folder, not a table" if csv.is_dir() else "is missing"
            raise RunFormatError(f"{str(csv)!r} {what}: the run folder is incomplete")
        vectors = table_array(tensors, info, name, "vectors", path)
        if vectors is None:
            raise RunFormatError(f"{str(path / WEIGHTS_FILE)!r} has no tensor {f'tables.{name}.vectors'!r}")
        bias = table_array(tensors, info, name, "bias", path)
        try:
            frame = read_table_csv(csv, info)
            keys = frame["key"].to_numpy()
            twice = frame["key"][frame["key"].duplicated()]
            if len(twice):
                raise RunFormatError(
                    f"{str(csv)!r}: key {twice.iloc[0]!r} appears twice (a table's keys are "
                    f"distinct): the file was edited or damaged; train the run again"
                )
            if info.get("key_dtype") == "int":
                keys = keys.astype(np.int64)
            tables[name] = EmbeddingTable(
                name=name,
                keys=keys,
                labels=frame["label"].fillna("").to_numpy(),
                vectors=vectors,
                bias_values=bias,
                metadata=frame.drop(columns=["key", "label"]),
                attrs=info.get("attrs", {}),
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, pd.errors.ParserError) as exc:
            raise RunFormatError(
                f"{str(csv)!r} does not match the run (table {name!r}): "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            ) from None
    model_tensors = {k: v for k, v in tensors.items() if not k.startswith("tables.")}
    return Run(meta, tables, model_tensors, path)
