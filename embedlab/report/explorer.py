"""The report's explorer: one interactive map per embedding table (Bokeh widgets + CustomJS).

A 2-D map (its own PCA; other maps from the results' ``AnalysisResult.maps``), a forgiving
search, the k nearest neighbours by cosine over the full vectors computed in the browser
(the candidates, ties and exclusions of ``embedlab neighbors``), colour by any metadata column
or the bias, size by count, and box/lasso selection linked to a sortable table with a one-line
summary. The browser code is :mod:`embedlab.report.explorer_js`.

Here what an explorer shows is computed (``compute``: points, projections, neighbour lists and
their packing, clusters; numbers, no Bokeh models) and worded (``describe``: the page's words
and settings); :mod:`embedlab.report.explorer_models` assembles the Bokeh models (its names are
re-exported here: ``explorer.assemble``, the layout constants).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

import numpy as np
import pandas as pd

from embedlab.report.explorer_models import HEIGHT, K, MISSING, WIDTH, assemble

# the Bokeh half's names, read here before the split (embedlab.report.explorer.<name>)
from embedlab.report.explorer_models import K_CHOICES as K_CHOICES, LEGEND_WIDTH as LEGEND_WIDTH
from embedlab.report.explorer_models import LOD_EVERY as LOD_EVERY, SIDE_WIDTH as SIDE_WIDTH
from embedlab.report.explorer_models import column_width as column_width
from embedlab.run import EmbeddingTable, Run
from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, METRICS, annotation_columns, knn_lists, unit_rows
from embedlab.toolkit.plotting import PALETTE
from embedlab.toolkit.projection import orient, orientation_reference, pca_fit
from embedlab.toolkit.selection import (
    color_column,
    count_column,
    labels_meaningful,
    numeric_columns,
    plural,
    select_entities,
    target_column,
)

if TYPE_CHECKING:
    from embedlab.analysis import AnalysisResult

MIN_ROWS = 5  # smaller tables are read whole in their analyses' tables
VECTOR_BUDGET = 1_500_000  # vector values (float32) a table may carry for neighbours computed in the page
K_PRECOMPUTED = 10  # neighbours stored per entity and metric when they do not
DENSITY_ABOVE = 50_000  # larger tables: a density layer of every entity, points for the most observed
DRAWN_MAX = 10_000  # points drawn (hover, click, box select) on a density layer: SwiftShader's WebGL
# draws about 20 us a point (headless Chromium, no GPU), every frame
DENSITY_BINS = 320
MAX_CATEGORIES = 60  # a text column with more distinct values is shown, not coloured by
MAX_COLUMNS = 14  # metadata columns embedded per table
MAX_TEXT_CHARS = 80  # longer free text stays out of the report
LABELLED_POINTS_MAX = 60  # small tables get every label written on the map


def table_order(run: Run) -> list[str]:
    """The run's tables, labelled ones (films, states) before anonymous ones (users)."""
    names = run.table_names
    return sorted(names, key=lambda n: (not labels_meaningful(run.table(n)), names.index(n)))


def explorer_tables(run: Run) -> list[str]:
    return [n for n in table_order(run) if len(select_entities(run.table(n), 0, None)) >= MIN_ROWS]


def labels_points(t: EmbeddingTable) -> bool:
    """Whether the map writes every point's label (small tables of named entities)."""
    return len(t) <= LABELLED_POINTS_MAX and labels_meaningful(t)


def is_multi_valued(values: pd.Series) -> bool:
    """Text holding several values separated by ``|`` (a film's genres)."""
    text = values.dropna().astype(str)
    return len(text) > 0 and text.str.contains("|", regex=False).mean() >= 0.1


def _columns(t: EmbeddingTable) -> tuple[list[str], dict[str, str]]:
    """Metadata columns to embed, and the kind of each colourable one (numeric, category)."""
    meta = t.metadata
    numeric = set(numeric_columns(t))
    embedded, kinds = [], {}
    for c in meta.columns:
        if c in ("key", "label", "bias") or len(embedded) >= MAX_COLUMNS:
            continue
        s = meta[c]
        if c in numeric:
            kinds[c] = "numeric"
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            pass  # constant: shown, not coloured by
        else:
            text = s.dropna().astype(str)
            if len(text) and text.str.len().mean() > MAX_TEXT_CHARS and not is_multi_valued(s):
                continue
            distinct = text.map(lambda v: v.split("|")[0]).nunique()
            if 2 <= distinct <= MAX_CATEGORIES:
                kinds[c] = "category"
        embedded.append(c)
    return embedded, kinds


def _pca(t: EmbeddingTable, fitted_on: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores of every row, n x 3, explained variance ratio): the PCA of the candidates,
    oriented as the pca analysis orients it, applied to all rows (unobserved ones too)."""
    c = max(1, min(3, t.dim, len(fitted_on) - 1))
    scores, comps, evr, mean = pca_fit(t.vectors[fitted_on], c)
    _, comps = orient(scores, comps, orientation_reference(t, fitted_on))
    every = (t.vectors.astype(np.float64) - mean) @ comps.T
    out = np.zeros((len(t), 3))
    out[:, : every.shape[1]] = every
    return out, np.pad(evr, (0, 3 - len(evr)))


def vectors_travel(t: EmbeddingTable) -> bool:
    """Whether the table's vectors fit the report's budget (neighbours computed in the page,
    any k and minimum count), else every entity's lists are precomputed and stored."""
    return len(t) * max(t.dim, 1) <= VECTOR_BUDGET


def _neighbour_store(t: EmbeddingTable) -> tuple[dict[str, np.ndarray], dict | None]:
    """The vectors source's columns and, for precomputed lists, what the page says about them."""
    if vectors_travel(t):
        return {"v": unit_rows(t.vectors).reshape(-1)}, None
    cand = select_entities(t, 0, DEFAULT_MIN_COUNT if count_column(t) else None).index
    data: dict[str, np.ndarray] = {}
    scales = {}
    from embedlab.io.progress import progress_bar

    with progress_bar(None) as bar:  # minutes at 200k entities: never a silent wait
        for metric in METRICS:
            task = bar.add_task(f"{t.name}: exact {metric} neighbor lists", total=len(t))
            rows, scores = knn_lists(
                t.vectors,
                K_PRECOMPUTED,
                cand,
                metric,
                progress=lambda done, _total, task=task: bar.update(task, completed=done),
            )
            data[f"{metric[0]}_idx"], data[f"{metric[0]}_score"], scales[metric] = pack_lists(rows, scores)
    minimum = f" among those counted at least {DEFAULT_MIN_COUNT} times" if count_column(t) else ""
    note = (
        f"(exact lists precomputed for all {len(t):,} {plural(t.name, len(t))}{minimum}: the vectors "
        f"are too large to travel; k up to {K_PRECOMPUTED} here, any k with embedlab neighbors)"
    )
    # the note is said once, in the caption above the map; the status line says "short"
    return data, {"k": K_PRECOMPUTED, "note": note, "short": "exact, precomputed", "scales": scales}


def pack_lists(rows: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Neighbour lists stored compactly: rows as 3 little-endian bytes each (0xFFFFFF: none; up
    to 16.7M entities), scores as uint16 steps between their minimum and maximum (about 3e-5 of
    the range: the page shows three decimals). (bytes, steps, [lo, hi]); ``unpack_lists`` undoes it."""
    flat = rows.reshape(-1).astype(np.int64)
    flat = np.where(flat < 0, 0xFFFFFF, flat)
    packed = np.stack([flat & 0xFF, (flat >> 8) & 0xFF, (flat >> 16) & 0xFF], axis=1).astype(np.uint8).reshape(-1)
    vals = scores.reshape(-1).astype(np.float64)
    finite = vals[np.isfinite(vals)]
    lo, hi = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    steps = np.round((np.nan_to_num(vals, nan=lo) - lo) / ((hi - lo) or 1.0) * 65535).astype(np.uint16)
    return packed, steps, [lo, hi]


def unpack_lists(packed: np.ndarray, steps: np.ndarray, scale: list[float], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows n x k int64, -1: none; scores n x k) from :func:`pack_lists`' output (as the page reads it)."""
    b = np.asarray(packed, dtype=np.int64).reshape(-1, 3)
    rows = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
    rows = np.where(rows == 0xFFFFFF, -1, rows).reshape(-1, k)
    lo, hi = scale
    return rows, (lo + np.asarray(steps, dtype=np.float64) * ((hi - lo) or 1.0) / 65535).reshape(-1, k)


def map_clusters(
    t: EmbeddingTable, xy: np.ndarray, rows: np.ndarray, columns: list[str], kinds: dict[str, str], seed: int = 0
) -> list[dict]:
    """Automatic clusters of the map: k-means (scikit-learn, seeded) on the 2-D coordinates of
    ``rows``, each named by the metadata values that most distinguish it (the categories most
    over-represented in it, the range of the numeric column it differs most on). A list of
    {x, y, size, label}, largest first."""
    from sklearn.cluster import MiniBatchKMeans

    pts = xy[rows]
    ok = np.isfinite(pts).all(1)
    rows, pts = rows[ok], pts[ok]
    k = int(min(8, max(2, len(rows) // 60)))
    if len(rows) < 3 * k:
        return []
    fit = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096).fit(pts)
    meta = t.metadata.iloc[rows].reset_index(drop=True)
    out = []
    for c in range(k):
        inside = fit.labels_ == c
        if not inside.any():
            continue
        parts = []
        for col in [c2 for c2 in columns if kinds.get(c2) == "category"][:3]:
            vals = meta[col].astype(str).str.split("|")
            every = vals.explode()
            share_all = every.value_counts(normalize=True)
            share_in = vals[inside].explode().value_counts() / inside.sum()
            lift = (share_in / share_all.reindex(share_in.index)).where(share_in >= 0.25).dropna()
            parts += [v for v in lift.sort_values(ascending=False).index[:2] if lift[v] >= 1.3 and v not in ("", "nan")]
        best, gap = None, 0.0
        for col in [c2 for c2 in columns if kinds.get(c2) == "numeric"]:
            v = pd.to_numeric(meta[col], errors="coerce")
            sd = v.std()
            if not sd or not np.isfinite(sd):
                continue
            d = abs(v[inside].median() - v.median()) / sd
            if d > max(gap, 0.5):
                best, gap = col, d
        if best is not None:
            v = pd.to_numeric(meta[best], errors="coerce")[inside]
            parts.append(range_words(t, best, np.nanpercentile(v, 25), np.nanpercentile(v, 75)))
        cx, cy = np.median(pts[inside], axis=0)
        out.append(
            {
                "x": float(cx),
                "y": float(cy),
                "size": int(inside.sum()),
                "label": ", ".join(dict.fromkeys(parts)) or f"cluster {c + 1}",
            }
        )
    return sorted(out, key=lambda d: -d["size"])


def human_range(lo: float, hi: float, integral: bool = False) -> str:
    """A range as people write it: two significant figures, finer only where the range would
    blur (30–190, 3.5–4.0, 1977–1994, 12,000–56,000), whole numbers for a whole-numbered
    column, an en dash, "to" where a bound is negative (−0.21 to 0.33)."""
    top = max(abs(lo), abs(hi)) or 1.0
    step = 10.0 ** (math.floor(math.log10(top)) - 1)
    while abs(hi - lo) and abs(hi - lo) / step < 4 and step > 1e-12:
        step /= 10
    step = max(step, 1.0) if integral else step
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))

    def one(v: float) -> str:
        r = round(v / step) * step
        text = f"{r:,.{decimals}f}" if abs(r) >= 10_000 else f"{r:.{decimals}f}"
        return text.replace("-", "−") if r < 0 else text

    x, y = one(lo), one(hi)
    return x if x == y else f"{x} to {y}" if lo < 0 else f"{x}–{y}"


def range_words(t: EmbeddingTable, col: str, lo: float, hi: float) -> str:
    """A cluster's range of a numeric column in words: "rated 30–190 times", "mean rating 3.5–4.0"."""
    v = pd.to_numeric(t.metadata[col], errors="coerce").dropna().to_numpy()
    r = human_range(lo, hi, integral=bool(len(v)) and bool(np.all(v == np.round(v))))
    if col == count_column(t):
        return f"rated {r} times" if target_column(t) == "mean_rating" else f"counted {r} times"
    return f"{col.replace('_', ' ')} {r}"


def _text(values: pd.Series) -> np.ndarray:
    return values.astype(object).where(values.notna(), "").astype(str).to_numpy(dtype=object)


def _points(t: EmbeddingTable, name: str, cand, results: Iterable[AnalysisResult]):
    """The points source's columns (safe field names), which metadata column is in which field,
    the kind of each colourable column, the maps (name -> x field, y field, axis labels) and the
    embedded metadata columns."""
    n = len(t)
    scores, evr = _pca(t, cand.index)
    embedded, kinds = _columns(t)
    int_keys = np.issubdtype(t.keys.dtype, np.integer) and len(t) and np.abs(t.keys).max() < 2**31
    data: dict[str, object] = {
        "i": np.arange(n, dtype=np.int32),
        "label": t.labels.astype(object),
        "key": t.keys.astype(np.int32) if int_keys else t.keys.astype(str).astype(object),
    }
    fields: dict[str, str] = {}  # column name -> field in the points source (safe names)
    for j, c in enumerate(embedded):
        s = t.metadata[c]
        data[f"m{j}"] = (
            s.to_numpy(dtype=np.float64).astype(np.float32)
            if kinds.get(c) == "numeric" or (pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s))
            else _text(s)
        )
        fields[c] = f"m{j}"
    if t.bias_values is not None:
        data["bias"] = t.bias_values.astype(np.float32)
        fields["bias"], kinds["bias"] = "bias", "numeric"
    maps: dict[str, list[str]] = {}
    for a, b in ((0, 1), (0, 2), (1, 2)) if n <= DENSITY_ABOVE else ((0, 1),):  # large: one PCA map
        if scores[:, b].any() or (a, b) == (0, 1):
            maps[f"PCA {a + 1} × {b + 1}"] = [
                f"pc{a + 1}",
                f"pc{b + 1}",
                f"PC{a + 1} ({100 * evr[a]:.1f}% of variance)",
                f"PC{b + 1} ({100 * evr[b]:.1f}% of variance)",
            ]
    for i in range(3 if n <= DENSITY_ABOVE else 2):
        data[f"pc{i + 1}"] = scores[:, i].astype(np.float32)
    keys = pd.Index(t.keys.astype(str))
    for r in results:
        if r.table != name or not r.ok:
            continue
        for title, frame in (r.maps or {}).items():
            at = keys.get_indexer(frame["key"].astype(str))
            ok = at >= 0
            x, y = np.full(n, np.nan, np.float32), np.full(n, np.nan, np.float32)
            x[at[ok]], y[at[ok]] = frame["x"].to_numpy(np.float32)[ok], frame["y"].to_numpy(np.float32)[ok]
            f = f"map{len(maps)}"
            data[f + "x"], data[f + "y"] = x, y
            placed = int(np.isfinite(x).sum())
            missing = (
                (
                    f" — {title} places {placed:,} of the {n:,} {plural(name, n)}; {n - placed:,} not drawn "
                    f"(PCA draws every one)"
                )
                if placed < n
                else ""
            )
            maps[str(title)] = [f + "x", f + "y", f"{title} 1", f"{title} 2", missing]
    data["x"], data["y"] = data["pc1"], data["pc2"]
    if len(maps) == 1:  # one map: x and y are its coordinates, no copy travels
        del data["pc1"], data["pc2"]
        maps[next(iter(maps))][:2] = ["x", "y"]
    if vectors_travel(t):
        data["_norm"] = np.linalg.norm(np.asarray(t.vectors, dtype=np.float32), axis=1).astype(np.float32)
    is_cand = np.zeros(n, dtype=np.int8)
    is_cand[cand.index] = 1
    data["_cand"] = is_cand
    return data, fields, kinds, maps, embedded


@dataclass
class Computed:
    """What an explorer shows, computed from its table (numbers, no words, no Bokeh models)."""

    n: int
    cand: pd.DataFrame  # the neighbors command's candidates: every observed entity
    data: dict  # the points source's columns
    fields: dict[str, str]  # metadata column -> field of the points source (safe names)
    kinds: dict[str, str]  # colourable column -> "numeric" or "category"
    maps: dict[str, list[str]]  # map name -> x field, y field, axis labels[, what it leaves out]
    embedded: list[str]
    clusters: list[dict]
    store: dict[str, np.ndarray]  # the vectors, or the precomputed lists
    precomputed: dict | None
    cycle: list[int] | None  # calendar tables: the rows in calendar order, closed
    density: dict | None  # large tables: the density image and the rows drawn as points


def compute(t: EmbeddingTable, name: str, results: Iterable[AnalysisResult] = ()) -> Computed:
    """The numbers of the explorer of ``t``: points, maps, clusters, neighbour store, density."""
    cand = select_entities(t, 0, None)
    data, fields, kinds, maps, embedded = _points(t, name, cand, results)
    xy = np.stack([data["x"], data["y"]], axis=1)
    store, precomputed = _neighbour_store(t)
    cycle = None
    if "cycle_order" in t.metadata:  # calendar tables: join the days in calendar order
        pos = t.metadata["cycle_order"].to_numpy(dtype=float)
        order = [int(i) for i in np.argsort(pos, kind="stable") if np.isfinite(pos[i])]
        cycle = order + order[:1]
    return Computed(
        len(t),
        cand,
        data,
        fields,
        kinds,
        maps,
        embedded,
        map_clusters(t, xy, cand.index, embedded, kinds),
        store,
        precomputed,
        cycle,
        _density(t, xy) if len(t) > DENSITY_ABOVE else None,
    )


def _density(t: EmbeddingTable, xy: np.ndarray) -> dict:
    """Level of detail: every entity in a density image (log counts), the most observed as points."""
    xy = xy.astype(np.float64)
    ok = np.isfinite(xy).all(1)
    (x0, y0), (x1, y1) = xy[ok].min(0), xy[ok].max(0)
    hist, _, _ = np.histogram2d(xy[ok, 1], xy[ok, 0], bins=DENSITY_BINS, range=[[y0, y1], [x0, x1]])
    counts = np.nan_to_num(np.asarray(t.count, dtype=float)) if t.count is not None else np.zeros(len(t))
    return {
        "shade": np.where(hist > 0, np.log1p(hist), np.nan).astype(np.float32),
        "x": float(x0),
        "y": float(y0),
        "dw": float(x1 - x0),
        "dh": float(y1 - y0),
        "drawn": np.sort(np.argsort(-counts, kind="stable")[:DRAWN_MAX]).astype(np.int32),
    }


def describe(t: EmbeddingTable, name: str, c: Computed) -> dict:
    """The explorer's words and settings: the page's configuration (``cfg``, read by the browser
    code), the default colour, the columns each table lists, the note above the map."""
    from bokeh.palettes import Viridis256

    n, fields, kinds, embedded = c.n, c.fields, c.kinds, c.embedded
    noun = plural(name, n)
    count, target = count_column(t), target_column(t)
    category = color_column(t)
    if category and t.metadata[category].nunique() >= len(c.cand):  # one value per entity (a name): no colour
        category = None
    default_colour = category or target or ("bias" if "bias" in fields else None)
    colour_names = list(dict.fromkeys(["none"] + [x for x in [default_colour] + list(fields) if x and x in kinds]))
    cat_fields = [x for x in embedded if kinds.get(x) == "category"]
    num_fields = list(
        dict.fromkeys(
            x for x in [target, count, "bias"] + [x for x in embedded if kinds.get(x) == "numeric"] if x and x in fields
        )
    )
    neighbour_extra = [(x, fields[x]) for x in annotation_columns(t) if x in fields]  # as embedlab neighbors
    selection_cols = ["label", "key"] + (["bias"] if "bias" in fields else []) + embedded
    selection_pairs = [(x, "label" if x == "label" else "key" if x == "key" else fields[x]) for x in selection_cols]
    status_hint = f"Search, or click a point, to list its nearest {html.escape(noun)}; click a neighbor to move to it."
    cfg = {
        "table": name,
        "dim": t.dim,
        "k": K,
        "precomputed": c.precomputed,
        "status_hint": status_hint,
        "fields": fields,
        "kinds": kinds,
        "maps": c.maps,
        "multi": [x for x in cat_fields if is_multi_valued(t.metadata[x])],
        "palette": PALETTE[:12],
        "viridis": list(Viridis256),
        "missing_colour": MISSING,
        "default_colour": PALETTE[0],
        "point_size": 7.0 if n < 5000 else 4.0,
        "plot_width": WIDTH,
        "plot_height": HEIGHT,
        "count_field": fields.get(count) if count else None,
        "max_matches": 25,
        "debounce_ms": 250,
        "labels_points": labels_points(t),  # every point named: the clusters stay in the list above
        "search_default": "label or key",
        # the neighbour and selection tables' sources use the points' safe field names (m0, m1):
        # a column named __proto__ or constructor is a title, never a key of a JS object
        "neighbour_fields": ["rank", "label", "key", "score", "row"] + [f for _, f in neighbour_extra],
        "neighbour_extra": [(f, f) for _, f in neighbour_extra],
        "selection_fields": [(f, f) for _, f in selection_pairs],
        "titles": {f: x for x, f in selection_pairs},
        "summary_numeric": [(x, fields[x]) for x in num_fields[:4]],
        "summary_categorical": [
            (x, fields[x])
            for x in cat_fields  # not names: one value per entity
            if t.metadata[x].nunique() < len(c.cand)
        ][:2],
        "cycle": c.cycle or [],
    }
    if c.density is not None:
        cfg["lod_note"] = (
            f"all {n:,} {noun} drawn as a density (gray, darker: more); the {len(c.density['drawn']):,} "
            f"most observed as points to hover, click and select; search reaches every one"
        )
    return {
        "cfg": cfg,
        "noun": noun,
        "count": count,
        "default_colour": default_colour,
        "colour_names": colour_names,
        "neighbour_extra": neighbour_extra,
        "selection_pairs": selection_pairs,
        "status_hint": status_hint,
        "header": _header(t, c, cfg, noun, count),
    }


def _header(t: EmbeddingTable, c: Computed, cfg: dict, noun: str, count: str | None) -> str:
    """The note above the explorer (HTML): what the map and the neighbours are, the clusters."""
    maps = c.maps
    note = (
        f"Map: PCA of the {len(c.cand):,} observed {noun}"
        + (", others placed by the same components" if len(c.cand) < c.n else "")
        + (
            f"; {', '.join(m for m in maps if not m.startswith('PCA'))} from the analyses"
            if len(maps) > sum(m.startswith("PCA") for m in maps)
            else ""
        )
        + f". Neighbors: cosine or euclidean over the full {t.dim}-dimensional vectors, "
        + ("computed in your browser" if c.precomputed is None else c.precomputed["note"][1:-1])
        + (f"; minimum {count} {DEFAULT_MIN_COUNT} by default, as embedlab neighbors" if count else "")
        + "."
        + (f" Map: {cfg['lod_note']}." if "lod_note" in cfg else "")
    )
    out = f'<p style="margin:0;color:#555;font-size:13px">{html.escape(note)}</p>'
    if c.clusters:
        listed = " · ".join(
            f'{html.escape(x["label"])} <span style="color:#888">{x["size"]:,}</span>' for x in c.clusters
        )
        out += (
            f'<p style="margin:2px 0 0;color:#555;font-size:12px"><b>Clusters</b> (k-means on the '
            f"first map, seed 0; the values over-represented in each): {listed}</p>"
        )
    return out


def explorer(run: Run, name: str, results: Iterable[AnalysisResult] = ()):
    """The explorer of table ``name``: a Bokeh layout (one root model)."""
    t = run.table(name)
    c = compute(t, name, results)
    return assemble(t, name, c, describe(t, name, c))
