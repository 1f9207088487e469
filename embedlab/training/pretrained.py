"""Starting a model's embedding tables from pretrained vectors (``--init-from``).

Lesson 5's second theme is reuse: keep what a network already learned. A table can start from

* another run (``--init-from runs/x``): every table of the model whose name the source run
  also has, or those named with ``--init-table NAME`` / ``--init-table NAME=SOURCE_TABLE``;
  rows are matched by entity key, and the source's per-entity bias comes along where both
  tables have one (collab). Entities the source never observed in training (count 0) have
  vectors that are still their random start, so they count as unmatched;
* a file in one of the formats :mod:`embedlab.io.exchange` writes (TensorFlow Projector
  ``vectors.tsv`` + ``metadata.tsv``, word2vec text, ``.npy`` + a keys file, or a folder
  holding one of them); ``--init-table`` names the one table it fills, ``--init-keys`` the
  keys file where it is not the ``metadata.tsv``/``keys.txt`` beside the vectors.

Keys are aligned, never assumed in order: the model's row of key ``k`` gets the source's
vector of ``k``; rows without a pretrained vector keep the model's own initialisation. The
coverage (matched / total) is printed and stored in run.json (``init``). A dimension
mismatch, an unknown table, duplicate keys and non-finite values are one-line errors.

A trainer calls :func:`init_from_config` once it has built its model, describing each table
as a :class:`Slot` (its keys in row order and its weight tensor); see trainers/collab.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import click
import numpy as np

from embedlab.errors import DataError, UsageError
from embedlab.io.exchange import ImportedVectors, read_vectors, token, vectors_file_in
from embedlab.run import EmbeddingTable, is_run_dir, load_run

if TYPE_CHECKING:  # torch is imported where vectors are copied: the CLI's options need none
    import torch


def init_options() -> list[click.Option]:
    """The shared ``--init-from``, ``--init-table`` and ``--init-keys`` options as click options:
    fields of :class:`embedlab.training.fitconfig.FitOptions` (every trainer has them)."""
    from embedlab.training.fitconfig import FitOptions

    return [o for o in FitOptions.click_options() if o.name in ("init_from", "init_table", "init_keys")]


@dataclass
class Slot:
    """One embedding table of a model, as a trainer lays it out.

    :param keys: the entity keys, in row order (row ``offset + i`` is ``keys[i]``).
    :param weight: the embedding weight (rows x dim), changed in place.
    :param bias: the per-entity bias weight (rows x 1 or rows), or None.
    :param offset: reserved rows before the first key (tabular's "unknown" row 0).
    """

    keys: Sequence[Any]
    weight: torch.Tensor
    bias: torch.Tensor | None = None
    offset: int = 0

    @property
    def dim(self) -> int:
        return int(self.weight.shape[1])


@dataclass
class Source:
    """Pretrained vectors of one table, rows in the source's order."""

    keys: list[str]
    vectors: np.ndarray
    where: str
    fmt: str
    table: str | None = None
    bias: np.ndarray | None = None
    counts: np.ndarray | None = None  # observations per entity in the source's training data
    tokens: bool = False
    keys_file: str | None = None


_INT_FLOAT = re.compile(r"^(-?\d+)\.0*$")


def normalise_key(key: Any) -> str:
    """The text two keys are compared by: stripped, ``5.0`` the same as ``5``."""
    text = str(key).strip()
    m = _INT_FLOAT.match(text)
    return m.group(1) if m else text


def align(target_keys: Sequence[Any], source: Source) -> tuple[np.ndarray, np.ndarray]:
    """(target rows, source rows) of the keys both sides have, by key, never by position.

    Source rows whose entity the source never observed (count 0) are left out.
    """
    norm = (lambda k: normalise_key(token(k))) if source.tokens else normalise_key
    index = {normalise_key(k): i for i, k in enumerate(source.keys)}
    usable = None if source.counts is None else np.asarray(source.counts, dtype=float) > 0
    t_rows, s_rows = [], []
    for i, key in enumerate(target_keys):
        j = index.get(norm(key))
        if j is not None and (usable is None or usable[j]):
            t_rows.append(i)
            s_rows.append(j)
    return np.asarray(t_rows, dtype=np.int64), np.asarray(s_rows, dtype=np.int64)


# ---------------------------------------------------------------------------- reading sources
def _check_finite(table: EmbeddingTable, where: str) -> None:
    bad = ~np.isfinite(table.vectors).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: table {table.name!r} has a non-finite vector (key {table.keys[row]!r}); "
            f"the source run diverged, retrain it"
        )


def _run_source(run, name: str, where: str) -> Source:
    table = run.table(name)
    _check_finite(table, where)
    keys = [normalise_key(k) for k in table.keys]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise DataError(f"{where}: table {name!r} has key {dup!r} twice")
    return Source(
        keys=keys, vectors=table.vectors, where=where, fmt="run", table=name, bias=table.bias_values, counts=table.count
    )


def _parse_tables(specs: Sequence[str]) -> list[tuple[str, str]]:
    """``("item", "Store=store")`` -> ``[("item", "item"), ("Store", "store")]``."""
    out = []
    for spec in specs:
        for part in str(spec).split(","):
            if not part.strip():
                continue
            target, _, source = part.partition("=")
            out.append((target.strip(), (source or target).strip()))
    return out


def read_sources(
    path: str | Path, tables: Sequence[str] = (), keys: str | Path | None = None, model_tables: Sequence[str] = ()
) -> tuple[dict[str, Source], dict[str, Any]]:
    """The pretrained vectors at ``path`` for each model table they fill, and a description
    of the source (format, and for a run: its dataset, split, trainer, creation time)."""
    path = Path(path)
    pairs = _parse_tables(tables)
    where = str(path)
    if not path.exists():
        raise UsageError(f"--init-from {where}: no such file or folder")
    if path.is_dir() and is_run_dir(path):
        if keys is not None:
            raise UsageError(f"--init-keys: {where} is a run, whose tables carry their own keys")
        run = load_run(path)
        if not pairs:
            pairs = [(n, n) for n in model_tables if n in run.table_names]
            if not pairs:
                raise UsageError(
                    f"--init-from {where}: the run's tables ({', '.join(run.table_names)}) and the "
                    f"model's ({', '.join(model_tables)}) share no name; map them with "
                    f"--init-table TABLE=SOURCE_TABLE"
                )
        missing = [s for _, s in pairs if s not in run.table_names]
        if missing:
            raise UsageError(
                f"--init-table: run {where} has no table {missing[0]!r}; its tables are: {', '.join(run.table_names)}"
            )
        info = {"format": "run", "run": {k: run.meta.get(k) for k in ("dataset", "trainer", "split", "created")}}
        info["run"]["metrics"] = {k: v for k, v in (run.metrics or {}).items() if str(k).startswith("valid_")}
        return {t: _run_source(run, s, where) for t, s in pairs}, info
    if path.is_dir():
        found = vectors_file_in(path)
        if found is None:
            raise UsageError(
                f"--init-from {where}: a folder must be an embedlab run or hold one of "
                f"vectors.tsv, vectors.txt, vectors.npy"
            )
        path = found
    if len(pairs) != 1:
        raise UsageError(
            f"--init-from {path}: a vectors file fills one table; name it with --init-table"
            + (f" (the model's tables: {', '.join(model_tables)})" if model_tables else "")
        )
    vec: ImportedVectors = read_vectors(path, keys)
    src = Source(
        keys=list(vec.keys),
        vectors=vec.vectors,
        where=str(path),
        fmt=vec.fmt,
        table=None,
        tokens=vec.tokens,
        keys_file=str(vec.keys_path) if vec.keys_path else None,
    )
    return {pairs[0][0]: src}, {"format": vec.fmt}


# ---------------------------------------------------------------------------- initialising
def initialise(
    slots: Mapping[str, Slot],
    path: str | Path,
    tables: Sequence[str] = (),
    keys: str | Path | None = None,
    echo: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Copy pretrained vectors (and biases) into ``slots`` by key; return the record run.json keeps.

    Only the matched rows change; the others keep the model's initialisation.
    """
    import torch

    explicit = bool(_parse_tables(tables))
    unknown = [t for t, _ in _parse_tables(tables) if t not in slots]
    if unknown:
        raise UsageError(
            f"--init-table {unknown[0]}: the model has no table {unknown[0]!r}; its tables are: {', '.join(slots)}"
        )
    sources, info = read_sources(path, tables, keys, list(slots))
    record: dict[str, Any] = {"from": str(Path(path).resolve()), **info, "tables": {}}
    mismatched = {n: s.vectors.shape[1] for n, s in sources.items() if s.vectors.shape[1] != slots[n].dim}
    if mismatched and (explicit or len(mismatched) == len(sources)):
        name, dim = next(iter(mismatched.items()))
        raise UsageError(
            f"--init-from {sources[name].where}: table {name!r} has {dim}-dimensional vectors there, the model's "
            f"{name!r} table has {slots[name].dim}; train with the same size "
            f"(collab: --n-factors {dim}; tabular: --emb-size {name}={dim})"
        )
    for name, dim in mismatched.items():  # tables matched by name only: the others still start pretrained
        record["tables"][name] = {
            "source": str(Path(sources[name].where).resolve()),
            "format": sources[name].fmt,
            "matched": 0,
            "total": len(slots[name].keys),
            "coverage": 0.0,
            "dim": slots[name].dim,
            "skipped": f"{dim}-dimensional in the source",
        }
        if echo is not None:
            echo(
                f"init {name}: skipped, {dim}-dimensional in {sources[name].where} but {slots[name].dim} here "
                f"(--emb-size {name}={dim} to take it)"
            )
    for name, src in sources.items():
        if name in mismatched:
            continue
        slot = slots[name]
        t_rows, s_rows = align(slot.keys, src)
        total = len(slot.keys)
        untrained = 0
        if src.counts is not None:
            untrained = len(
                align(slot.keys, Source(src.keys, src.vectors, src.where, src.fmt, tokens=src.tokens))[0]
            ) - len(t_rows)
        if len(t_rows) == 0 and explicit:
            example_model = ", ".join(repr(str(k)) for k in list(slot.keys)[:3])
            example_src = ", ".join(repr(k) for k in src.keys[:3])
            raise DataError(
                f"--init-from {src.where}: no key matches table {name!r} (model keys like "
                f"{example_model}; source keys like {example_src})"
            )
        with torch.no_grad():  # the model may already sit on a GPU
            rows = torch.from_numpy(t_rows + slot.offset).to(slot.weight.device)
            slot.weight[rows] = torch.from_numpy(src.vectors[s_rows]).to(slot.weight.device, slot.weight.dtype)
            bias = src.bias is not None and slot.bias is not None
            if bias:
                values = torch.from_numpy(np.asarray(src.bias, dtype=np.float32)[s_rows])
                slot.bias.view(slot.bias.shape[0], -1)[rows.to(slot.bias.device), 0] = values.to(
                    slot.bias.device, slot.bias.dtype
                )
        entry = {
            "source": str(Path(src.where).resolve()),
            "format": src.fmt,
            "source_table": src.table,
            "matched": int(len(t_rows)),
            "total": int(total),
            "coverage": float(len(t_rows) / total) if total else 0.0,
            "dim": slot.dim,
            "bias": bool(bias),
        }
        if untrained:
            entry["untrained_in_source"] = int(untrained)
        if src.keys_file:
            entry["keys_file"] = src.keys_file
        record["tables"][name] = entry
        if echo is not None:
            note = f"; {untrained:,} more never observed in the source" if untrained else ""
            echo(
                f"init {name}: {len(t_rows):,} of {total:,} rows ({entry['coverage']:.1%}) from {src.where}"
                + (f" (table {src.table})" if src.table else "")
                + (" with biases" if bias else "")
                + note
            )
    return record


def init_from_config(
    config: Mapping[str, Any], slots: Mapping[str, Slot], learner: Any = None, progress: bool = True
) -> dict[str, Any] | None:
    """What a trainer calls after building its model: apply ``--init-from`` (if given) to
    ``slots`` and return the record for run.json (also stored as ``learner.init``)."""
    path = config.get("init_from")
    if not path:
        if config.get("init_table") or config.get("init_keys"):
            raise UsageError("--init-table/--init-keys need --init-from")
        return None
    echo = (lambda msg: click.echo(msg, err=True)) if progress else None
    record = initialise(slots, path, config.get("init_table") or (), config.get("init_keys"), echo=echo)
    if learner is not None:
        learner.init = record
    return record
