"""Predictions of a saved collab run: ratings of given (user, item) pairs, a user's top items.

A collab run keeps everything it needs to score: the model's tensors (``model.*`` in
weights.safetensors: factors, biases, the neural model's layers), run.json's ``model`` record
(the class, ``y_range``, the neural model's hyper-parameters, the data's column names) and the
tables' keys in model-row order. The model is rebuilt from them and run exactly as in training
(float32, the same forward), so the predictions of the validation pairs reproduce the run's
``valid_rmse`` exactly.

A pair whose user or item the run has no row for gets no prediction (NaN) and is named in the
``unseen`` column and in ``attrs["coverage"]["warnings"]``; nothing is dropped.
"""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import pandas as pd

from embedlab.errors import DataError, UsageError
from embedlab.run import Run


def model_of_run(run: Run):
    """The run's collab model, rebuilt from run.json's ``model`` and its tensors (eval mode, CPU)."""
    from embedlab.training.models import DotBias, EmbeddingNN

    record = run.meta.get("model") or {}
    state = {k[len("model.") :]: v for k, v in run.tensors().items() if k.startswith("model.")}
    if not state:
        raise UsageError(f"run {run.path or ''} holds no model tensors (model.*): it cannot predict")
    y_range = record.get("y_range")
    if record.get("class") == "HybridDot":  # --features: the composed tables are the model (without its day term)
        from embedlab.trainers.collab_features import dot_of_run

        model = dot_of_run(run, state, y_range)
    elif record.get("class") == "EmbeddingNN":
        model = EmbeddingNN.from_hparams(record["hparams"])
    else:
        n_users, n_factors = state["user_emb.weight"].shape
        model = DotBias(
            int(n_users), int(state["item_emb.weight"].shape[0]), int(n_factors), tuple(y_range) if y_range else None
        )
    if record.get("class") != "HybridDot":
        model.load_state_dict(state)
    model.classes = {"user": run.table("user"), "item": run.table("item")}
    model.columns = columns_of_run(run)
    return model.eval()


def columns_of_run(run: Run) -> dict[str, str]:
    """The data's user, item and rating column names (run.json's ``model.columns``; runs written
    before it was recorded: ``user``, ``item``, ``rating``)."""
    saved = (run.meta.get("model") or {}).get("columns") or {}
    return {role: str(saved.get(role, role)) for role in ("user", "item", "rating")}


def _codes(keys: np.ndarray, values: pd.Series) -> np.ndarray:
    """Model rows of ``values`` among a table's ``keys`` (-1 where unknown), comparing as the
    keys' type (a CSV's "42" finds the key 42; a value that is no whole number finds nothing)."""
    index = pd.Index(keys)
    if np.issubdtype(np.asarray(keys).dtype, np.integer):
        numbers = pd.to_numeric(values, errors="coerce")
        whole = numbers.notna() & (numbers == numbers.round())
        looked = pd.Series(-1, index=values.index, dtype=np.int64)
        if whole.any():
            looked[whole] = index.get_indexer(numbers[whole].astype(np.int64))
        return looked.to_numpy()
    return index.get_indexer(values.astype(str))


def _column(frame: pd.DataFrame, role: str, name: str, source: str) -> str:
    for col in (name, role):
        if col in frame.columns:
            return col
    raise DataError(
        f"{source}: no {role} column (looked for {name!r}"
        f"{'' if name == role else f' and {role!r}'}); its columns are: "
        f"{', '.join(map(str, frame.columns[:12]))}"
    )


def score(model, users: np.ndarray, items: np.ndarray, bs: int = 65536):
    """The model's float32 predictions for row codes (a torch tensor), in batches as in training."""
    import torch

    u, i = torch.as_tensor(users, dtype=torch.long), torch.as_tensor(items, dtype=torch.long)
    with torch.no_grad():
        outs = [model(u[s : s + bs], i[s : s + bs]) for s in range(0, len(u), bs)]
    return torch.cat(outs) if outs else torch.empty(0)


def predict_pairs(run: Run, frame: pd.DataFrame, source: str = "pairs") -> pd.DataFrame:
    """Predicted ratings of the (user, item) pairs in ``frame`` (columns named as in the run's
    data, or ``user``/``item``), in the frame's order: its user and item columns, the labels,
    the rating column when the frame has one, ``prediction`` (NaN where the run has no row for
    the user or the item) and ``unseen`` (``""``, ``"user"``, ``"item"`` or ``"user,item"``).

    ``attrs["coverage"]`` says how many pairs were asked and predicted, and ``warnings`` names
    unseen users and items and those the run has a row for but no training rating of (cold:
    their factors are still the initial ones)."""
    if isinstance(frame, (list, tuple)):
        frame = pd.DataFrame(list(frame), columns=["user", "item"])
    cols = columns_of_run(run)
    ucol, icol = _column(frame, "user", cols["user"], source), _column(frame, "item", cols["item"], source)
    user, item = run.table("user"), run.table("item")
    u, i = _codes(user.keys, frame[ucol]), _codes(item.keys, frame[icol])
    known = (u >= 0) & (i >= 0)
    pred = np.full(len(frame), np.nan)
    if known.any():
        model = model_of_run(run)
        pred[known] = score(model, u[known], i[known]).double().numpy()
    out = pd.DataFrame(
        {
            ucol: frame[ucol].to_numpy(),
            icol: frame[icol].to_numpy(),
            "user_label": np.where(u >= 0, user.labels[np.maximum(u, 0)], ""),
            "item_label": np.where(i >= 0, item.labels[np.maximum(i, 0)], ""),
        }
    )
    rcol = next((c for c in (cols["rating"], "rating") if c in frame.columns and c not in (ucol, icol)), None)
    if rcol is not None:
        out[rcol] = frame[rcol].to_numpy()
    out["prediction"] = pred
    out["unseen"] = [",".join(r for r, bad in (("user", a < 0), ("item", b < 0)) if bad) for a, b in zip(u, i)]
    warnings = []
    for role, codes, col, table in (("user", u, ucol, user), ("item", i, icol, item)):
        missing = codes < 0
        if missing.any():
            examples = ", ".join(map(str, list(dict.fromkeys(frame[col][missing].astype(str)))[:5]))
            warnings.append(
                f"{int(missing.sum()):,} of {len(frame):,} pairs have {_a(role)} the run has no row for "
                f"(e.g. {examples}): no prediction (NaN; column unseen says which)"
            )
        counts = table.count
        if counts is not None:
            cold = (codes >= 0) & (np.asarray(counts)[np.maximum(codes, 0)] == 0)
            if cold.any():
                warnings.append(
                    f"{int(cold.sum()):,} pairs have {_a(role)} with no training rating: its factors "
                    f"are untrained, so those predictions rest on the other side alone"
                )
    out.attrs["coverage"] = {
        "asked": int(len(frame)),
        "written": int(known.sum()),
        "unseen": {r: int((c < 0).sum()) for r, c in (("user", u), ("item", i)) if (c < 0).any()},
        "warnings": warnings,
    }
    return out


def _a(word: str) -> str:
    return f"{'an' if word == 'item' else 'a'} {word}"


def rated_items(run: Run, rated: pd.DataFrame | None) -> dict[int, np.ndarray]:
    """user row -> the item rows ``rated`` (a frame of training ratings) holds for that user."""
    if rated is None or not len(rated):
        return {}
    cols = columns_of_run(run)
    ucol, icol = _column(rated, "user", cols["user"], "rated"), _column(rated, "item", cols["item"], "rated")
    u, i = _codes(run.table("user").keys, rated[ucol]), _codes(run.table("item").keys, rated[icol])
    ok = (u >= 0) & (i >= 0)
    pairs = pd.DataFrame({"u": u[ok], "i": i[ok]})
    return {int(k): g.to_numpy() for k, g in pairs.groupby("u")["i"]}


def recommend(
    run: Run, users: Any, k: int = 10, rated: pd.DataFrame | None = None, include_rated: bool = False
) -> pd.DataFrame:
    """Each user's ``k`` highest-predicted items: ``user``, ``user_label``, ``rank`` (1..k),
    ``item``, ``item_label``, ``prediction``, ``count`` (the item's training ratings) and
    ``rated`` (whether ``rated`` holds the pair; with ``include_rated=False``, the default,
    those items are left out, as a recommender must).

    ``users``: one user or several, by key or label (the lookup rules of
    :meth:`embedlab.run.EmbeddingTable.find`). ``rated``: the ratings to exclude (the run's
    training rows); None excludes nothing and says so in ``attrs["notes"]``."""
    if int(k) < 1:
        raise UsageError(f"--top {k}: give a number of items of at least 1")
    queries = [users] if isinstance(users, (str, int, np.integer)) or not isinstance(users, Iterable) else list(users)
    if not queries:
        raise UsageError("name at least one user (--user U)")
    user, item = run.table("user"), run.table("item")
    model = model_of_run(run)
    seen = rated_items(run, rated)
    all_items = np.arange(len(item))
    counts = item.count
    frames, notes = [], []
    if rated is None and not include_rated:
        notes.append("no training ratings given: rated items were not excluded")
    for query in queries:
        match = user.find(query)
        if match.note:
            notes.append(match.note)
        row = match.row
        scores = score(model, np.full(len(item), row), all_items).double().numpy()
        done = np.zeros(len(item), dtype=bool)
        if row in seen:
            done[seen[row]] = True
        keep = all_items if include_rated else all_items[~done]
        top = keep[np.argsort(-scores[keep], kind="stable")[: int(k)]]
        frames.append(
            pd.DataFrame(
                {
                    "user": user.keys[row],
                    "user_label": user.labels[row],
                    "rank": np.arange(1, len(top) + 1),
                    "item": item.keys[top],
                    "item_label": item.labels[top],
                    "prediction": scores[top],
                    "count": np.asarray(counts)[top] if counts is not None else np.nan,
                    "rated": done[top],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out.attrs["notes"] = notes
    return out
