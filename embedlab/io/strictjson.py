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
        return {str(k) if not isinstance(k, (str, int, float, bool)) or k is None else k: jsonable(v)
                for k, v in obj.items()}
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
