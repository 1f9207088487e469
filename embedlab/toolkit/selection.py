"""Which entities and which metadata columns an analysis looks at (public: the built-in
analyses use exactly these; a third-party analysis may too).

They read the generic annotations of an :class:`embedlab.EmbeddingTable` (``count_column``,
``target_column``, ``color_column`` and the metadata columns) so that every analysis works on
any dataset without knowing its name: MovieLens items, Rossmann stores, synthetic items.

Public names: ``__all__``; the plugin guide documents each with an example:
``embedlab plugins guide "embedlab.toolkit.selection"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd

from embedlab.run import EmbeddingTable
from embedlab.toolkit.options import DEFAULT_TOP_N

__all__ = [
    "Selection",
    "select_entities",
    "count_column",
    "target_column",
    "color_column",
    "categorical_columns",
    "numeric_columns",
    "labels_meaningful",
    "display_names",
    "entity_frame",
    "hover_columns",
    "spearman",
    "eta_squared",
    "neighbour_agreement",
    "plural",
    "fmt_num",
    "join_labels",
    "LAT_NAMES",
    "LON_NAMES",
    "find_column",
    "metadata_coordinates",
]

#: metadata column names read as latitude / longitude (case-insensitive)
LAT_NAMES = ("latitude", "lat")
LON_NAMES = ("longitude", "lon", "lng", "long")


def find_column(columns: Any, names: Sequence[str]) -> Any:
    """The first of ``columns`` whose name, stripped and lower-cased, is one of ``names`` (None)."""
    lowered = {str(c).strip().lower(): c for c in columns}
    return next((lowered[n] for n in names if n in lowered), None)


def metadata_coordinates(table: EmbeddingTable) -> tuple[np.ndarray, np.ndarray] | None:
    """``(latitude, longitude)`` float arrays from the table's metadata (NaN where missing), or
    None when it has no such columns or no entity with both: how an analysis finds a map."""
    md = table.metadata
    lat_col, lon_col = find_column(md.columns, LAT_NAMES), find_column(md.columns, LON_NAMES)
    if lat_col is None or lon_col is None:
        return None
    lat = pd.to_numeric(md[lat_col], errors="coerce").to_numpy(dtype=np.float64)
    lon = pd.to_numeric(md[lon_col], errors="coerce").to_numpy(dtype=np.float64)
    return (lat, lon) if np.any(np.isfinite(lat) & np.isfinite(lon)) else None


# Columns that describe an entity but are not annotations worth correlating with.
_NOT_METADATA = {"key", "label", "bias"}


@dataclass
class Selection:
    """Which rows of a table an analysis uses, and a sentence saying so."""

    index: np.ndarray  # row positions into the table, ascending
    description: str  # e.g. "the 1,000 most-observed of 1,682 items (each observed >= 33 times)"
    n_total: int
    rule: str  # "top_n", "min_count" or "all"
    threshold: float | None = None  # smallest count kept, where counts are known

    def __len__(self) -> int:
        return len(self.index)


def plural(name: str, n: int) -> str:
    """``item`` -> ``items``; table names such as ``Store`` stay readable (``Stores``)."""
    if n == 1 or name.endswith("s"):
        return name
    return name + "s"


def select_entities(
    table: EmbeddingTable, top_n: int | None = DEFAULT_TOP_N, min_count: int | None = None
) -> Selection:
    """Rows to analyse: the ``top_n`` most-observed, or those seen ``min_count`` times or more.

    Why: embeddings of rarely observed entities stay near their random initialisation (weight
    decay pulls them to zero), so rankings and projections of a whole catalogue are dominated by
    noise; the lesson this tool follows restricts itself to the 1,000 most-rated films.
    Entities never observed in training are always left out when counts are known. Ties at
    the ``top_n`` cut are broken by table order, so the choice is deterministic.
    """
    n = len(table)
    counts = table.count
    noun = table.name
    if counts is None:
        return Selection(
            np.arange(n), f"all {n:,} {plural(noun, n)} (the table records no observation counts)", n, "all"
        )
    counts = np.nan_to_num(np.asarray(counts, dtype=float), nan=0.0)
    seen = np.flatnonzero(counts > 0)
    unseen = n - len(seen)
    note = f"; {unseen:,} never observed in training are left out" if unseen else ""
    if min_count is not None and min_count > 0:
        idx = np.flatnonzero(counts >= min_count)
        desc = (
            f"the {len(idx):,} of {n:,} {plural(noun, n)} observed at least {min_count:,} "
            f"times (--min-count {min_count})"
        )
        return Selection(idx, desc, n, "min_count", float(min_count))
    if top_n is not None and 0 < top_n < len(seen):
        order = np.argsort(-counts[seen], kind="stable")[:top_n]
        idx = np.sort(seen[order])
        lo = counts[idx].min()
        desc = (
            f"the {len(idx):,} most-observed of {n:,} {plural(noun, n)} (--top-n {top_n}; each "
            f"observed at least {lo:,.0f} times)"
        )
        return Selection(idx, desc, n, "top_n", float(lo))
    lo = counts[seen].min() if len(seen) else 0
    desc = f"all {len(seen):,} observed {plural(noun, len(seen))}{note}"
    if len(seen) and lo > 1:
        desc += f" (each observed at least {lo:,.0f} times)"
    return Selection(seen, desc, n, "all", float(lo))


def count_column(table: EmbeddingTable) -> str | None:
    """The column of observation counts per entity (the table's ``count_column`` attr, else
    ``count``), or None when the table records none."""
    col = table.attrs.get("count_column", "count")
    return col if col in table.metadata else None


def target_column(table: EmbeddingTable) -> str | None:
    """The mean target per entity (mean rating, mean sales) where the dataset records it."""
    col = table.attrs.get("target_column")
    if col and col in table.metadata and pd.api.types.is_numeric_dtype(table.metadata[col]):
        return col
    for guess in ("mean_rating", "mean_sales", "mean_target"):
        if guess in table.metadata and pd.api.types.is_numeric_dtype(table.metadata[guess]):
            return guess
    return None


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def color_column(table: EmbeddingTable, max_categories: int = 30) -> str | None:
    """The categorical column to colour scatters by: the dataset's ``color_column`` attr, else
    the first categorical metadata column with 2..``max_categories`` values."""
    col = table.attrs.get("color_column")
    if col and col in table.metadata:
        return col
    for name in table.metadata.columns:
        s = table.metadata[name]
        if name in _NOT_METADATA or not _is_categorical(s):
            continue
        if 2 <= s.nunique(dropna=True) <= max_categories:
            return name
    return None


def categorical_columns(table: EmbeddingTable, max_categories: int = 30) -> list[str]:
    """Metadata columns worth grouping by: not numeric (or boolean), with 2..``max_categories``
    distinct values (``genre``, ``StoreType``)."""
    return [
        c
        for c in table.metadata.columns
        if c not in _NOT_METADATA
        and _is_categorical(table.metadata[c])
        and 2 <= table.metadata[c].nunique(dropna=True) <= max_categories
    ]


def numeric_columns(table: EmbeddingTable) -> list[str]:
    """Numeric metadata columns worth correlating with (not constant, not all missing)."""
    out = []
    for c in table.metadata.columns:
        s = table.metadata[c]
        if c in _NOT_METADATA or not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        if s.nunique(dropna=True) > 1:
            out.append(c)
    return out


def labels_meaningful(table: EmbeddingTable) -> bool:
    """False when labels only restate keys (``user 17``): such tables get shorter report sections."""
    keys = table.keys.astype(str)
    labels = table.labels
    if len(keys) == 0:
        return False
    ends = np.char.endswith(labels.astype(str), keys)
    if not ends.all():
        return True
    prefixes = {lab[: len(lab) - len(k)] for lab, k in zip(labels[:2000], keys[:2000])}
    return len(prefixes) > 1


def display_names(table: EmbeddingTable, index: np.ndarray, max_parts: int = 3) -> np.ndarray:
    """What a person reads for each selected entity: its label, or for tables whose labels only
    restate keys (``user 17``) the label plus a few short annotations (``user 17 (age 24, M,
    technician)``), so rankings of users still say something."""
    labels = table.labels[index]
    if labels_meaningful(table):
        return labels
    skip = {"key", "label", "bias", count_column(table), target_column(table)}
    cols = []
    for c in table.metadata.columns:
        s = table.metadata[c]
        if c in skip or pd.api.types.is_float_dtype(s):
            continue
        if _is_categorical(s) and (s.astype(str).str.len().mean() > 20 or s.nunique() > 50):
            continue
        cols.append(c)
        if len(cols) >= max_parts:
            break
    if not cols:
        return labels
    meta = table.metadata.iloc[index]
    parts = []
    for c in cols:
        v = meta[c]
        text = (c + " " + v.astype(str)) if pd.api.types.is_numeric_dtype(table.metadata[c]) else v.astype(str)
        parts.append(text.where(v.notna(), "").to_numpy(dtype=object))
    out = []
    for lab, *bits in zip(labels, *parts):
        bits = [b for b in bits if b]
        out.append(f"{lab} ({', '.join(bits)})" if bits else lab)
    return np.array(out, dtype=object)


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho over pairs where both are finite; NaN when fewer than 3 or one is constant."""
    from scipy.stats import spearmanr

    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan")
    return float(spearmanr(a[ok], b[ok]).statistic)


def eta_squared(values: Sequence[float], groups: Sequence[Any]) -> float:
    """Share of the variance of ``values`` explained by the group means (0..1)."""
    v = pd.Series(np.asarray(values, dtype=float))
    g = pd.Series(np.asarray(groups, dtype=object)).astype(str)
    total = float(((v - v.mean()) ** 2).sum())
    if total == 0 or g.nunique() < 2:
        return float("nan")
    means = v.groupby(g).transform("mean")
    return float(((means - v.mean()) ** 2).sum() / total)


def neighbour_agreement(
    points: np.ndarray,
    groups: Sequence[Any],
    k: int = 10,
    metric: str = "euclidean",
    max_queries: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """(mean share of each point's ``k`` nearest neighbours in the same group, chance share).

    How well a space keeps a category together, comparable across PCA, UMAP and raw
    embeddings. Queries are a seeded sample of at most ``max_queries`` points (all points are
    candidate neighbours), which keeps it fast on 60,000-row tables. Chance is the share
    expected if neighbours were drawn at random: sum of squared group frequencies.
    """
    from sklearn.neighbors import NearestNeighbors

    pts = np.asarray(points, dtype=np.float32)
    g = pd.Series(np.asarray(groups, dtype=object)).astype(str).to_numpy()
    n = len(pts)
    if n < 3:
        return float("nan"), float("nan")
    k = min(k, n - 1)
    rng = np.random.default_rng(seed)
    q = np.sort(rng.choice(n, size=min(max_queries, n), replace=False))
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric, algorithm="brute" if metric == "cosine" else "auto").fit(
        pts
    )
    _, ind = nn.kneighbors(pts[q])
    share = []
    for row, qi in zip(ind, q):
        others = row[row != qi][:k]
        share.append(np.mean(g[others] == g[qi]))
    freq = pd.Series(g).value_counts(normalize=True).to_numpy()
    return float(np.mean(share)), float((freq**2).sum())


def hover_columns(table: EmbeddingTable, extra: Sequence[str] = ()) -> list[str]:
    """Columns shown in scatter tooltips: label, colour column, count, mean target, then a few
    short annotations (year, type...) so that a point says what it is."""
    cols = ["label"]
    for c in (color_column(table), count_column(table), target_column(table), *extra):
        if c and c not in cols:
            cols.append(c)
    for c in table.metadata.columns:
        if len(cols) >= 7:
            break
        if c in cols or c in _NOT_METADATA:
            continue
        s = table.metadata[c]
        if _is_categorical(s) and s.astype(str).str.len().mean() > 40:
            continue  # long free text clutters a tooltip
        cols.append(c)
    return cols


def entity_frame(table: EmbeddingTable, index: np.ndarray, columns: Sequence[str]) -> pd.DataFrame:
    """key, label and the given metadata columns (plus bias) for the selected rows."""
    frame = table.frame.iloc[index].reset_index(drop=True)
    keep = ["key", "label"] + [c for c in columns if c in frame and c not in ("key", "label")]
    return frame[keep]


def fmt_num(v: float, digits: int = 2) -> str:
    """``0.94`` for a summary sentence; ``n/a`` for None or a non-finite number."""
    if v is None or not np.isfinite(v):
        return "n/a"
    return f"{v:.{digits}f}"


def join_labels(labels: Sequence[str], n: int = 5, quote: bool = False) -> str:
    """The first ``n`` labels joined with ``; `` (quoted with ``quote``), for a summary sentence."""
    items = [str(x) for x in list(labels)[:n]]
    if quote:
        items = [f"“{x}”" for x in items]
    return "; ".join(items)
