"""``geography``: do embeddings of places follow the map? Measured, not eyeballed.

Guo & Berkhahn (2016) showed a t-SNE picture of store-state embeddings that "resembles the
map". This analysis asks the same question with statistics, for every embedding table whose
entities carry ``latitude``/``longitude`` metadata (or coordinates joined from a CSV file with
``--coords``):

- a Mantel test: Spearman correlation between embedding distances and great-circle distances,
  with a permutation p-value (exact enumeration for up to 8 entities);
- a Procrustes fit of a 2-D projection of the embeddings onto the map (``procrustes_r2``, the
  share of the map's spread it reproduces) with its own permutation p-value;
- neighbour agreement: how many of each entity's nearest neighbours in the embedding are also
  its nearest on the map, beside the value expected by chance.

It never needs to know what dataset a run came from: datasets annotate, analyses consume.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.toolkit import projection as P
from embedlab.toolkit import stats as S
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import DataError, UsageError
from embedlab.run import Run
from embedlab.toolkit.selection import LAT_NAMES, LON_NAMES, find_column, metadata_coordinates
from embedlab.toolkit.options import DISTANCE, PERMUTATIONS, PROJECTION, SEED

MIN_ENTITIES = 4  # below this no permutation test can reach p < 0.05
LOW_POWER = 10  # below this a non-significant result says little
MAX_ENTITIES = 500  # beyond this a seeded sample keeps 9,999 permutations to seconds
MAX_PAIRS_PLOTTED = 5000
MAX_LABELS_PLOTTED = 60


class CoordsFile(click.ParamType):
    """A readable CSV (or TSV) file with latitude and longitude columns (aliases lat, lon, lng).

    Checked when the options are validated, before any analysis runs."""

    name = "file"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        path = Path(value)
        if not path.is_file():
            self.fail(f"{str(path)!r} does not exist or is not a file", param, ctx)
        try:
            header = _read_table(path, nrows=0)
        except (ValueError, OSError, UnicodeDecodeError) as exc:
            self.fail(f"{str(path)!r} is not a readable CSV file ({exc})", param, ctx)
        if find_column(header.columns, LAT_NAMES) is None or find_column(header.columns, LON_NAMES) is None:
            self.fail(
                f"{str(path)!r} needs a latitude and a longitude column (or lat, lon/lng); "
                f"its columns are: {', '.join(map(str, header.columns))}",
                param,
                ctx,
            )
        return str(path)


def _read_table(path: Path, nrows: int | None = None) -> pd.DataFrame:
    return pd.read_csv(path, sep=None, engine="python", dtype=str, nrows=nrows, keep_default_na=False, na_values=[""])


@functools.lru_cache(maxsize=8)
def _load_coords(path: str, key: str | None, _mtime: int, _size: int) -> tuple[pd.DataFrame, str]:
    """(frame with key, latitude, longitude; the key column used). Cached per file version."""
    frame = _read_table(Path(path))
    lat_col, lon_col = find_column(frame.columns, LAT_NAMES), find_column(frame.columns, LON_NAMES)
    if lat_col is None or lon_col is None:
        raise UsageError(f"--coords {path!r} needs latitude and longitude columns")
    if key is None:
        others = [c for c in frame.columns if c not in (lat_col, lon_col)]
        key = "key" if "key" in frame.columns else (others[0] if others else None)
        if key is None:
            raise UsageError(f"--coords {path!r} has no key column; add one and name it with --coords-key")
    elif key not in frame.columns:
        raise UsageError(
            f"--coords-key {key!r} is not a column of {path!r}; its columns are: {', '.join(map(str, frame.columns))}"
        )
    keys = frame[key].astype(str).str.strip()
    dupes = keys[keys.duplicated() & keys.ne("nan")]
    if len(dupes):
        raise DataError(
            f"--coords {path!r}: key {dupes.iloc[0]!r} appears more than once in column "
            f"{key!r}; give each entity one position"
        )
    out = pd.DataFrame({"key": keys})
    for name, col, bound in (("latitude", lat_col, 90), ("longitude", lon_col, 180)):
        raw = frame[col]
        values = pd.to_numeric(raw, errors="coerce")
        bad = values.isna() & raw.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"--coords {path!r}: column {col!r} row {row + 2} is {raw.iloc[row]!r}, "
                f"not a number (leave the cell empty for an unknown position)"
            )
        outside = values.abs() > bound
        if outside.any():
            row = int(np.flatnonzero(outside.to_numpy())[0])
            raise DataError(
                f"--coords {path!r}: column {col!r} row {row + 2} is {values.iloc[row]}, "
                f"outside [-{bound}, {bound}] degrees"
            )
        out[name] = values.to_numpy(dtype=np.float64)
    return out, key


def load_coords(path: str, key: str | None = None) -> tuple[pd.DataFrame, str]:
    st = Path(path).stat()
    return _load_coords(str(path), key, st.st_mtime_ns, st.st_size)


def coords_targets(run: Run, options: dict[str, Any]) -> dict[str, int]:
    """Tables the ``--coords`` file joins to, with the number of keys matched.

    With ``--coords-table`` exactly those tables; otherwise every table whose keys match at
    least half as many file rows as the best-matching table (so a run whose user ids happen to
    overlap a file of movie ids still joins the file to the movies only)."""
    path = options.get("coords")
    wanted = [t.strip() for t in (options.get("coords_table") or "").split(",") if t.strip()]
    if not path:
        if wanted:
            raise UsageError("--coords-table needs --coords FILE")
        return {}
    coords, key = load_coords(path, options.get("coords_key"))
    file_keys = set(coords["key"])
    counts = {
        name: int(np.isin(run.table(name).keys.astype(str), list(file_keys)).sum())
        for name in (wanted or run.table_names)
    }
    if wanted:
        return counts
    best = max(counts.values(), default=0)
    if best == 0:
        examples = "; ".join(f"{n}: {', '.join(map(str, run.table(n).keys[:3]))}" for n in run.table_names)
        raise DataError(
            f"no table's keys match column {key!r} of --coords {path!r} (e.g. "
            f"{', '.join(coords['key'].head(3))}); the run's keys look like {examples}. "
            f"Choose the key column with --coords-key and the table with --coords-table"
        )
    return {n: c for n, c in counts.items() if c > 0 and c >= best / 2}


def _knn_k(n: int) -> int:
    return int(min(n - 1, max(1, min(10, round(np.sqrt(n))))))


def _strength(r: float) -> str:
    a = abs(r)
    return "strong" if a >= 0.5 else "moderate" if a >= 0.3 else "weak" if a >= 0.1 else "negligible"


class Geography(Analysis):
    name = "geography"
    title = "Geography: do the embeddings follow the map?"
    description = (
        "For tables whose entities have latitude/longitude (metadata, or --coords FILE): a "
        "Mantel test of embedding vs great-circle distance, a Procrustes fit of a 2-D "
        "projection onto the map, and nearest-neighbour agreement, each beside chance."
    )
    options = [
        AnalysisOption(
            "coords",
            CoordsFile(),
            None,
            "CSV file with a key column and latitude/longitude (or lat, lon/lng) to join to a table's keys.",
        ),
        AnalysisOption(
            "coords_key", str, None, "Key column of --coords (default: 'key', else the file's first other column)."
        ),
        AnalysisOption(
            "coords_table",
            str,
            None,
            "Table(s) to join --coords to, comma-separated (default: every table whose keys match).",
        ),
        PERMUTATIONS,
        DISTANCE,
        PROJECTION,
        SEED,
    ]

    def applies_to(self, run: Run, options: dict[str, Any] | None = None) -> list[str]:
        names = [n for n, t in run.tables.items() if metadata_coordinates(t) is not None]
        for name in coords_targets(run, options or {}):
            if name not in names:
                names.append(name)
        return names

    # -- analysis
    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t = run.table(table)
        notes: list[str] = []
        targets = coords_targets(run, options)
        if table in targets:
            coords, key = load_coords(options["coords"], options.get("coords_key"))
            joined = pd.DataFrame({"key": t.keys.astype(str)}).merge(coords, on="key", how="left")
            lat, lon = joined["latitude"].to_numpy(), joined["longitude"].to_numpy()
            source = f"joined from {Path(options['coords']).name} (column {key!r})"
            if metadata_coordinates(t) is not None:
                notes.append("The --coords file replaced the table's own coordinates.")
        else:
            lat, lon = metadata_coordinates(t)
            source = "from the table's latitude/longitude metadata"
        keep = np.isfinite(lat) & np.isfinite(lon)
        missing = int((~keep).sum())
        if missing:
            shown = ", ".join(t.labels[~keep][:8]) + (" ..." if missing > 8 else "")
            notes.append(f"{missing} of {len(t):,} entities have no coordinates and were left out ({shown}).")
        idx = np.flatnonzero(keep)
        if len(idx) > MAX_ENTITIES:
            counts = t.count
            if counts is not None:
                idx = idx[np.argsort(-np.asarray(counts, dtype=float)[idx], kind="stable")[:MAX_ENTITIES]]
                how = "the most observed"
            else:
                idx = np.sort(np.random.default_rng(options["seed"]).choice(idx, MAX_ENTITIES, replace=False))
                how = "a seeded random sample of"
            notes.append(
                f"Tested on {how} {MAX_ENTITIES} of the {int(keep.sum()):,} entities with coordinates "
                f"(permutation tests grow with the square of the count)."
            )
            idx = np.sort(idx)
        n = len(idx)
        base = {"n_entities": float(n), "n_missing": float(missing)}
        if n < MIN_ENTITIES:
            return AnalysisResult(
                self.name,
                table,
                self.title,
                metrics=dict(base, too_few=1.0),
                finding=f"not tested: {n} of the {MIN_ENTITIES} entities with coordinates it needs",
                summary=(
                    f"Too few entities to test: {table} has {n} entit{'y' if n == 1 else 'ies'} with "
                    f"coordinates ({source}); at least {MIN_ENTITIES} are needed before any ordering "
                    f"test can mean anything. " + " ".join(notes)
                ).strip(),
                tables={
                    "entities": pd.DataFrame({"key": t.keys, "label": t.labels, "latitude": lat, "longitude": lon})
                },
            )
        lat, lon = lat[idx], lon[idx]
        vectors, labels, keys = t.vectors[idx], t.labels[idx], t.keys[idx]
        d_emb, metric, note = S.embedding_distances(vectors, options["distance"])
        notes.extend(note)
        d_geo = S.great_circle_km(lat, lon)
        dup_pairs = int((S.condensed(d_geo) < 1e-6).sum())
        if dup_pairs:
            notes.append(f"{dup_pairs} pair(s) of entities share the same coordinates (distance 0; ties in the ranks).")
        perms, seed = options["permutations"], options["seed"]
        mantel_perms = S.affordable_permutations(n, perms)
        if mantel_perms < perms:
            notes.append(
                f"The Mantel test used {mantel_perms:,} permutations instead of {perms:,} to keep "
                f"{n} entities to seconds."
            )
        mantel = S.mantel(d_emb, d_geo, mantel_perms, method="spearman", seed=seed)
        plane = S.local_plane_km(lat, lon)
        proj = P.project_2d(vectors, options["projection"], seed=seed, metric=metric)
        proc = S.procrustes_test(proj, plane, perms, seed=seed)
        k = _knn_k(n)
        knn = S.knn_overlap(d_emb, d_geo, k)
        aligned_lat, aligned_lon = S.plane_to_latlon(proc.aligned[:, :2], lat, lon)

        metrics = dict(
            mantel_r=mantel.r,
            mantel_p=mantel.p,
            procrustes_r2=proc.r2,
            procrustes_p=proc.p,
            knn_overlap=knn.mean,
            knn_chance=knn.chance,
            **base,
            knn_k=float(k),
            permutations=float(mantel.permutations),
            exact=float(mantel.exact),
        )
        nn_emb = S.nearest_neighbours(d_emb, 1)[:, 0]
        nn_geo = S.nearest_neighbours(d_geo, 1)[:, 0]
        entities = pd.DataFrame(
            {
                "key": keys,
                "label": labels,
                "latitude": lat,
                "longitude": lon,
                "aligned_latitude": aligned_lat,
                "aligned_longitude": aligned_lon,
                "error_km": np.hypot(*(proc.aligned[:, :2] - plane).T),
                "nearest_in_embedding": labels[nn_emb],
                "nearest_on_map": labels[nn_geo],
                "nearest_km": d_geo[np.arange(n), nn_emb].round(1),
                "knn_overlap": knn.per_entity,
            }
        )
        iu, ju = np.triu_indices(n, k=1)
        pair_idx = np.arange(len(iu))
        if len(pair_idx) > MAX_PAIRS_PLOTTED:
            pair_idx = np.sort(np.random.default_rng(seed).choice(pair_idx, MAX_PAIRS_PLOTTED, replace=False))
        tables = {"entities": entities.sort_values("error_km").reset_index(drop=True)}
        if missing:
            tables["without coordinates"] = pd.DataFrame({"key": t.keys[~keep], "label": t.labels[~keep]})
        data = {
            "labels": labels,
            "latitude": lat,
            "longitude": lon,
            "aligned_latitude": aligned_lat,
            "aligned_longitude": aligned_lon,
            "metric": metric,
            "projection": options["projection"],
            "pair_km": S.condensed(d_geo)[pair_idx],
            "pair_distance": S.condensed(d_emb)[pair_idx],
            "pair_labels": np.char.add(
                np.char.add(labels[iu[pair_idx]].astype(str), " – "), labels[ju[pair_idx]].astype(str)
            ),
        }
        summary = self._summary(table, n, source, metric, options["projection"], mantel, proc, knn, notes)
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=summary,
            metrics=metrics,
            tables=tables,
            data=data,
            finding=(
                f"the {table} map: {_strength(mantel.r) if mantel.p < 0.05 and mantel.r > 0 else 'not significant'}"
                f", Mantel r {mantel.r:.2f}, p {mantel.p:.2g}"
                f"; Procrustes R² {proc.r2:.2f}, p {proc.p:.2g}"
            )
            if np.isfinite(mantel.r)
            else "no test possible: all distances equal",
            headline=["mantel_r", "mantel_p", "procrustes_r2", "procrustes_p", "knn_overlap"],
        )

    @staticmethod
    def _summary(
        table: str,
        n: int,
        source: str,
        metric: str,
        projection: str,
        mantel: S.MantelResult,
        proc: S.ProcrustesResult,
        knn: S.KnnOverlap,
        notes: list[str],
    ) -> str:
        r, p = mantel.r, mantel.p
        if not np.isfinite(r):
            verdict = (
                "No test possible: all distances in one of the two spaces are equal "
                "(every entity at the same place, or identical vectors)."
            )
        elif p < 0.01 and r > 0:
            verdict = f"The embeddings of {table} follow the map: {_strength(r)} evidence, unlikely to be chance."
        elif p < 0.05 and r > 0:
            verdict = f"Some evidence that the embeddings of {table} follow the map (significant at 5%, not at 1%)."
        else:
            verdict = (
                f"No significant sign that the embeddings of {table} follow the map: "
                f"a correlation at least this strong arises by chance {p:.0%} of the time."
            )
        parts = [verdict]
        if np.isfinite(r):
            parts.append(
                f"Over the {n} entities with coordinates ({source}), {metric} distance between embeddings "
                f"and great-circle distance correlate with Spearman r = {r:.2f} (Mantel test, "
                f"{S.describe_p(p, mantel.permutations, mantel.exact, n)})."
            )
            parts.append(
                f"A 2-D {projection.upper() if projection == 'pca' else projection} picture of the embeddings, "
                f"best rotated, mirrored and scaled onto the map (Procrustes), reproduces "
                f"{proc.r2:.0%} of the map's spread ({S.describe_p(proc.p, proc.permutations, proc.exact, n)})."
            )
            parts.append(
                f"On average {knn.mean:.0%} of each entity's {knn.k} nearest neighbours in the embedding are "
                f"also among its {knn.k} nearest on the map; chance alone gives {knn.chance:.0%}."
            )
        if n < LOW_POWER:
            floor = 1 / math.factorial(n) if mantel.exact else 1 / (mantel.permutations + 1)
            parts.append(
                f"Caution: with only {n} entities the tests have little power (the smallest "
                f"possible p is {floor:.2g}); a non-significant result says little either way."
            )
        return " ".join(parts + notes)

    # -- figures
    def render(self, result: AnalysisResult) -> list:
        d = result.data
        if "latitude" not in d:
            return []
        from bokeh.models import ColumnDataSource, HoverTool

        from embedlab.toolkit.plotting import PALETTE, scatter

        frame = pd.DataFrame({"label": d["labels"], "longitude": d["longitude"], "latitude": d["latitude"]})
        labelled = range(len(frame)) if len(frame) <= MAX_LABELS_PLOTTED else None
        fig = scatter(
            frame,
            "longitude",
            "latitude",
            hover=("label",),
            x_label="longitude",
            y_label="latitude",
            annotate=labelled,
            title=f"{result.table}: map positions (blue) and embedding positions aligned onto "
            f"the map (orange, {d['projection'].upper() if d['projection'] == 'pca' else d['projection']} + Procrustes)",
            width=700,
            height=560,
        )
        base_renderers = fig.renderers[:1]  # the points (not their text labels)
        fig.renderers[0].glyph.size = 9
        segs = ColumnDataSource(
            {"x0": d["longitude"], "y0": d["latitude"], "x1": d["aligned_longitude"], "y1": d["aligned_latitude"]}
        )
        fig.segment("x0", "y0", "x1", "y1", source=segs, color="#999999", alpha=0.7, line_width=1)
        aligned = ColumnDataSource({"x": d["aligned_longitude"], "y": d["aligned_latitude"], "label": d["labels"]})
        r_aligned = fig.scatter("x", "y", source=aligned, size=8, color=PALETTE[1], marker="triangle", alpha=0.8)
        for tool in fig.select(type=HoverTool):
            tool.renderers = base_renderers + [r_aligned]
        fig.match_aspect = True
        pairs = pd.DataFrame(
            {"great-circle km": d["pair_km"], "embedding distance": d["pair_distance"], "pair": d["pair_labels"]}
        )
        fig2 = scatter(
            pairs,
            "great-circle km",
            "embedding distance",
            hover=("pair",),
            title=f"{result.table}: embedding distance ({d['metric']}) vs distance on the map "
            f"(Mantel r = {result.metrics.get('mantel_r', float('nan')):.2f})",
            width=560,
            height=420,
        )
        return [fig, fig2]


@hookimpl
def embedlab_register_analyses(register):
    register(Geography())
