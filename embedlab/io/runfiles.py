"""Reading a run folder's files (embedlab.run.load_run assembles the Run): run.json's field
types checked before anything reads them, the weights (safetensors only, never pickle), a
table's CSV as Run.save wrote it, and a table's arrays (format 2's rows of a model tensor, or
its own tensor). JSON, CSV and safetensors only: nothing here executes code from the folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from embedlab.errors import RunFormatError

RUN_FILE = "run.json"
WEIGHTS_FILE = "weights.safetensors"


def read_weights(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    wfile = path / WEIGHTS_FILE
    if not wfile.is_file():
        raise RunFormatError(f"{str(wfile)!r} is missing: the run folder is incomplete")
    try:
        return load_file(str(wfile))
    except (SafetensorError, OSError, ValueError, Exception) as exc:  # never fall back to pickle
        raise RunFormatError(
            f"{str(wfile)!r} is not a valid safetensors file ({exc}); embedlab never loads pickled weights"
        ) from None


def read_table_csv(csv: Path, info: dict[str, Any]) -> pd.DataFrame:
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
    frame = pd.read_csv(csv, dtype=dtype, keep_default_na=False, na_values={h: [""] for h in header[2:]})
    if saved is not None:
        frame.columns = ["key", "label"] + saved
    return frame


#: run.json's fields and the JSON types they must have (absent is fine: older runs)
META_TYPES: dict[str, tuple[type, ...]] = {
    "dataset": (str,),
    "kind": (str,),
    "trainer": (str,),
    "task": (str,),
    "config": (dict,),
    "metrics": (dict,),
    "split": (dict,),
    "history": (list,),
    "versions": (dict,),
    "seed": (int,),
    "dataset_info": (dict,),
    "tables": (dict,),
    "imported": (dict,),
}
_JSON_TYPE = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "a whole number",
    float: "a number",
    bool: "true/false",
    type(None): "null",
}


def check_meta(meta: dict[str, Any], rfile: Path) -> None:
    """A RunFormatError naming run.json, the field and both types when a field of ``meta``
    has the wrong JSON type (an edited or damaged run.json), before anything reads it."""

    def bad(field: str, value: Any, want: str) -> RunFormatError:
        return RunFormatError(
            f"{str(rfile)!r}: {field!r} is {_JSON_TYPE.get(type(value), type(value).__name__)}, "
            f"not {want}: the file was edited or damaged; fix that field, or train the run again"
        )

    for key, types in META_TYPES.items():
        value = meta.get(key)
        if value is None and key != "tables":
            continue
        if not isinstance(value, types) or (int in types and isinstance(value, bool)):
            raise bad(key, value, " or ".join(_JSON_TYPE[t] for t in types))
    for i, row in enumerate(meta.get("history") or []):
        if not isinstance(row, dict):
            raise bad(f"history[{i}]", row, "an object (one epoch's numbers)")
    for name, info in meta["tables"].items():
        if not isinstance(info, dict):
            raise bad(f"tables.{name}", info, "an object")
        for key, want in (("attrs", dict), ("columns", list), ("text_columns", list), ("csv", str)):
            if info.get(key) is not None and not isinstance(info[key], want):
                raise bad(f"tables.{name}.{key}", info[key], _JSON_TYPE[want])


def table_array(tensors: dict[str, Any], info: dict[str, Any], name: str, part: str, path: Path):
    """A table's ``vectors`` or ``bias`` (numpy): format 2's named rows of a model tensor, else
    its own ``tables.NAME.PART`` tensor (format 1, and tables without a model tensor), else None."""
    source = info.get(f"{part}_from")
    if source is None:
        own = tensors.get(f"tables.{name}.{part}")
        return None if own is None else own.numpy()
    where = f"{str(path / RUN_FILE)!r}: table {name!r}'s {part}_from"
    if not (
        isinstance(source, dict)
        and isinstance(source.get("tensor"), str)
        and isinstance(source.get("rows"), list)
        and len(source["rows"]) == 2
        and all(isinstance(r, int) and not isinstance(r, bool) for r in source["rows"])
    ):
        raise RunFormatError(
            f"{where} is not {{'tensor': NAME, 'rows': [START, STOP]}}: the file was edited or damaged"
        )
    tensor = tensors.get(source["tensor"])
    start, stop = source["rows"]
    if tensor is None or not 0 <= start <= stop <= tensor.shape[0] or stop - start != info.get("n", stop - start):
        raise RunFormatError(
            f"{where} names rows {start}..{stop} of tensor {source['tensor']!r}, which "
            f"{'is missing' if tensor is None else f'has {tensor.shape[0]} rows'} "
            f"(the table has {info.get('n')}): the run folder is damaged"
        )
    out = tensor[start:stop].numpy().copy()  # the table's own array, as in format 1 (no aliasing)
    return out.reshape(-1) if part == "bias" else out
