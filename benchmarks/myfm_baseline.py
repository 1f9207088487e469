"""myFM's Bayesian factorization machine (Gibbs sampling) on an embedlab collab Dataset.

Its MovieLens "extended" configuration, built from the same rows and side columns embedlab
trains on: the rating day, the user id, the user's side columns and the items the user rated
in the training rows (weights 1/sqrt(n)), the item id, its side columns and its raters in the
training rows. Nothing from the validation rows enters the features. Rank 10, 512 samples.

Used by benchmarks/collab.py; myfm (PyPI) is optional: :func:`available` says why not.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd


def available() -> str | None:
    """None when myfm imports, else the reason it does not."""
    try:
        import myfm  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - any import failure means: skip the row
        return f"{type(exc).__name__}: {exc}"
    return None


def _onehot_block(values: pd.Series, categories: pd.Index, weights: np.ndarray | None = None):
    """rows x len(categories) sparse matrix; values may be lists (multi-valued), unknown ones dropped."""
    from scipy import sparse as sps

    rows, cols, data = [], [], []
    for r, v in enumerate(values):
        vs = v if isinstance(v, (list, tuple, np.ndarray)) else [v]
        codes = categories.get_indexer(pd.Index(vs)) if len(vs) else np.empty(0, int)
        codes = codes[codes >= 0]
        w = 1.0 if weights is None else weights[r]
        rows += [r] * len(codes)
        cols += codes.tolist()
        data += [w] * len(codes)
    return sps.csr_matrix((data, (rows, cols)), shape=(len(values), len(categories)))


def extended(
    ds, rank: int = 10, n_iter: int = 512, seed: int = 42, day: bool = True, side: bool = True, implicit: bool = True
) -> tuple[float, float]:
    """(validation RMSE, training CPU seconds) of myFM's extended configuration on ``ds``."""
    import myfm
    from scipy import sparse as sps

    roles = ds.roles
    u, i, r, ts = roles["user"], roles["item"], roles["rating"], roles.get("timestamp")
    train, valid = ds.train, ds.valid
    t0 = time.process_time()
    users = pd.Index(sorted(pd.unique(train[u])))
    items = pd.Index(sorted(pd.unique(train[i])))
    rated = train.groupby(u)[i].apply(list)  # training rows only
    raters = train.groupby(i)[u].apply(list)
    groups: list[int] = []

    def side_blocks(role: str, keys: pd.Index):
        meta = ds.entities.get(role)
        blocks = []
        for col, kind in ds.side_features.get(role, {}).items() if side and meta is not None else []:
            values = meta[col].reindex(keys)
            if kind == "multi":
                values = values.fillna("").astype(str).str.split("|").apply(lambda v: [x for x in v if x])
            cats = (
                pd.Index(sorted(pd.unique(meta[col].dropna().astype(str).str.split("|").explode())))
                if kind == "multi"
                else pd.Index(pd.unique(meta[col].dropna()))
            )
            blocks.append(_onehot_block(values, cats))
        return blocks

    def entity_matrix(role: str, keys: pd.Index, own: pd.Index, implicit_of: pd.Series, other: pd.Index):
        blocks = [_onehot_block(pd.Series(keys), own)] + side_blocks(role, keys)
        if implicit:
            lists = implicit_of.reindex(keys)
            lists = lists.apply(lambda v: v if isinstance(v, list) else [])
            w = 1.0 / np.sqrt(np.maximum(lists.apply(len).to_numpy(), 1))
            blocks.append(_onehot_block(lists, other, w))
        return sps.hstack(blocks, format="csr"), [b.shape[1] for b in blocks]

    def relation_blocks(df):
        out, sizes = [], []
        for role, col, own, imp, other in (("user", u, users, rated, items), ("item", i, items, raters, users)):
            keys, index = np.unique(df[col].to_numpy(), return_inverse=True)
            mat, widths = entity_matrix(role, pd.Index(keys), own, imp, other)
            out.append(myfm.RelationBlock(index, mat))
            sizes += widths
        return out, sizes

    def days(df):
        return pd.to_datetime(df[ts], unit="s").dt.floor("D")

    day_cats = pd.Index(sorted(pd.unique(days(train)))) if day and ts else None
    x_train = _onehot_block(days(train), day_cats) if day_cats is not None else sps.csr_matrix((len(train), 0))
    rel_train, sizes = relation_blocks(train)
    sizes = ([x_train.shape[1]] if day_cats is not None else []) + sizes
    groups = [g for g, n in enumerate(sizes) for _ in range(n)]
    fm = myfm.MyFMRegressor(rank=rank, random_seed=seed)
    fm.fit(
        x_train, train[r].to_numpy(dtype=float), X_rel=rel_train, grouping=groups, n_iter=n_iter, n_kept_samples=n_iter
    )
    cpu = time.process_time() - t0
    x_valid = _onehot_block(days(valid), day_cats) if day_cats is not None else sps.csr_matrix((len(valid), 0))
    rel_valid, _ = relation_blocks(valid)
    pred = fm.predict(x_valid, rel_valid)
    rmse = float(np.sqrt(np.mean((pred - valid[r].to_numpy(dtype=float)) ** 2)))
    return rmse, cpu
