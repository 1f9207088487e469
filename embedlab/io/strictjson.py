"""Strict JSON, the one way embedlab prints JSON (``--json`` of train, analyze, compare,
lr-find, neighbors...): NaN and infinities become ``null`` (bare ``NaN`` is not JSON, and
``jq`` or a browser refuse it), NumPy scalars and arrays become numbers and lists, paths and
timestamps become text. The output always parses with ``json.loads(..., parse_constant=...)``
refusing ``NaN``."""

from __future__ import annotations

import json
import math
from typing import Any


def jsonable(obj: Any) -> Any:
    """``obj`` with every value made strict-JSON-able (see module docstring)."""
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {
            str(k) if not isinstance(k, (str, int, float, bool)) or k is None else k: jsonable(v)
            for k, v in obj.items()
        }
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    import numpy as np

    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return jsonable(float(obj))
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    try:
        import pandas as pd

        if pd.isna(obj) is True:  # pd.NA, pd.NaT, None-likes
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(obj, "isoformat"):  # datetime, pandas.Timestamp
        try:
            return obj.isoformat()
        except (TypeError, ValueError):
            pass
    return str(obj)


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`jsonable(obj) <jsonable>`, refusing any NaN that got through."""
    return json.dumps(jsonable(obj), allow_nan=False, **kwargs)


#: the most bytes and the deepest nesting embedlab reads from its own JSON files (run.json,
#: group.json, the ownership manifest, checkpoints): far beyond what it writes, small enough
#: that a hostile file cannot exhaust memory or the stack
MAX_JSON_BYTES = 64 * 2**20
MAX_JSON_DEPTH = 64


def read_json(path, *, max_bytes: int = MAX_JSON_BYTES, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse the JSON file ``path`` within bounds: a regular file (a FIFO, a device such as
    ``/dev/zero`` or a folder is refused without reading, and never blocks), at most
    ``max_bytes`` bytes, nested at most ``max_depth`` levels, UTF-8. Any violation is a
    :class:`ValueError` whose message says what (the caller names the file); a missing file is
    the usual :class:`OSError`."""
    import os
    import stat

    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("is not a regular file")
        if st.st_size > max_bytes:
            raise ValueError(f"is {st.st_size:,} bytes, more than the {max_bytes:,} embedlab reads")
        chunks, size = [], 0
        while size <= max_bytes:
            block = os.read(fd, min(1 << 20, max_bytes + 1 - size))
            if not block:
                break
            chunks.append(block)
            size += len(block)
    finally:
        os.close(fd)
    if size > max_bytes:
        raise ValueError(f"grew past the {max_bytes:,} bytes embedlab reads")
    try:
        text = b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if _bracket_depth(text) > max_depth:
        raise ValueError(f"nests deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"nests deeper than {max_depth} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None


def _bracket_depth(text: str) -> int:
    """The deepest nesting of ``[``/``{`` outside strings (a fast over-estimate is fine:
    only well-formed files reach the parser)."""
    import re

    if "[" not in text and "{" not in text:
        return 0
    depth = deepest = 0
    # strings (with escapes) are skipped whole; only brackets are counted
    for match in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest
