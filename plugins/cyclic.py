"""``cyclic``: are embeddings of calendar entities arranged like the calendar?

fast.ai showed that weekday and month embeddings end up ordered like the calendar, judged by
eye. This analysis measures it for every table whose entities carry a calendar position
(metadata ``cycle_order``, 0..L-1, and table attribute ``cycle_length`` L), or whose order is
given on the command line (``--order TABLE=Mon,Tue,...`` or ``--order TABLE=COLUMN[:L]``):

- ``cycle_r``/``cycle_p``: Spearman correlation between embedding distance and distance
  around the calendar (Sunday-Monday is 1 step), with a permutation p-value;
- ``adjacency_rate``: share of entities whose nearest neighbour is a calendar neighbour,
  beside its chance level;
- the order recovered from the embeddings alone (the shortest closed path through them) and
  its circular rank agreement with the calendar (``order_agreement``);
- the tour test: the closed tour through the embeddings in calendar order against the
  shortest tour (``tour_ratio``) and against random orders (``tour_p``).
"""

from __future__ import annotations

from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.toolkit import cycles as C
from embedlab.toolkit import projection as P
from embedlab.toolkit import stats as S
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.errors import UsageError
from embedlab.run import EmbeddingTable, Run
from embedlab.toolkit.options import DISTANCE, PERMUTATIONS, PROJECTION, SEED

ORDER_COLUMN = "cycle_order"
LENGTH_ATTR = "cycle_length"
MIN_ENTITIES = 4
LOW_POWER = 7
MAX_LABELS_PLOTTED = 60
MAX_SEQUENCE_SHOWN = 60


class OrderSpec(click.ParamType):
    """``TABLE=label1,label2,...`` (labels or keys in calendar order) or ``TABLE=COLUMN[:L]`` (a
    metadata column holding each entity's position; L the cycle length)."""

    name = "table=order"

    def convert(self, value: Any, param: Any, ctx: Any) -> str:
        text = str(value)
        table, sep, spec = text.partition("=")
        if not sep or not table.strip() or not spec.strip():
            self.fail(
                f"{text!r} is not TABLE=label1,label2,... or TABLE=COLUMN[:LENGTH] "
                f"(e.g. --order DayOfWeek=Mon,Tue,Wed,Thu,Fri,Sat,Sun)",
                param,
                ctx,
            )
        if "," not in spec and ":" in spec:
            length = spec.rpartition(":")[2].strip()
            if not length.isdigit() or int(length) < 2:
                self.fail(f"{text!r}: the cycle length after ':' must be a whole number >= 2", param, ctx)
        return text


def parse_orders(options: dict[str, Any]) -> dict[str, str]:
    """``--order`` values as {table: spec}; a table named twice is an error."""
    out: dict[str, str] = {}
    for item in options.get("order") or ():
        table, _, spec = str(item).partition("=")
        table = table.strip()
        if table in out:
            raise UsageError(f"--order names table {table!r} twice; give its order once")
        out[table] = spec.strip()
    return out


def _has_cycle(table: EmbeddingTable) -> bool:
    if ORDER_COLUMN not in table.metadata:
        return False
    return bool(np.isfinite(pd.to_numeric(table.metadata[ORDER_COLUMN], errors="coerce")).any())


def calendar_positions(table: EmbeddingTable, spec: str | None) -> tuple[np.ndarray, int, str, list[str]]:
    """(position per entity, NaN where unknown; cycle length; where they came from; notes)."""
    notes: list[str] = []
    if spec is None:
        pos = pd.to_numeric(table.metadata[ORDER_COLUMN], errors="coerce").to_numpy(dtype=np.float64)
        length = table.attrs.get(LENGTH_ATTR)
        source = f"metadata {ORDER_COLUMN!r}"
        if length is None:
            length = int(np.nanmax(pos)) + 1
            notes.append(f"The table has no {LENGTH_ATTR!r}; the cycle length was taken as {length}.")
    elif "," in spec:
        wanted = [s.strip() for s in spec.split(",") if s.strip()]
        dupes = sorted({w for w in wanted if wanted.count(w) > 1})
        if dupes:
            raise UsageError(f"--order {table.name}=...: {dupes[0]!r} is listed twice")
        pos = np.full(len(table), np.nan)
        keys = table.keys.astype(str)
        not_found = []
        for i, name in enumerate(wanted):
            hits = table.labels == name
            if not hits.any():
                hits = keys == name
            if not hits.any():
                not_found.append(name)
            pos[hits] = i
        if len(not_found) == len(wanted):
            examples = ", ".join(table.labels[:6])
            raise UsageError(
                f"--order {table.name}=...: none of the names is a label or key of table "
                f"{table.name!r} (its labels look like: {examples})"
            )
        if not_found:
            notes.append(f"Not found in the table: {', '.join(not_found)}.")
        length = len(wanted)
        source = "--order list"
    else:
        column, _, given = spec.partition(":")
        column = column.strip()
        if column not in table.metadata:
            raise UsageError(
                f"--order {table.name}={spec}: table {table.name!r} has no column {column!r} "
                f"(its columns: {', '.join(map(str, table.metadata.columns)) or 'none'}); "
                f"or list the labels in calendar order, separated by commas"
            )
        raw = table.metadata[column]
        pos = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(pos) & raw.notna().to_numpy()
        if bad.any():
            raise UsageError(f"--order {table.name}={spec}: column {column!r} holds {raw[bad].iloc[0]!r}, not a number")
        if given:
            length = int(given)
        elif column == ORDER_COLUMN and LENGTH_ATTR in table.attrs:
            length = int(table.attrs[LENGTH_ATTR])
        else:
            low = np.nanmin(pos)
            pos = pos - low
            length = int(np.nanmax(pos)) + 1
            notes.append(f"Positions taken as {column} - {low:g}, cycle length {length} (give COLUMN:L to set it).")
        source = f"column {column!r}"
    length = int(length)
    finite = pos[np.isfinite(pos)]
    if len(finite) and (finite.max() >= length or finite.min() < 0):
        notes.append(f"Positions run outside 0..{length - 1}; they were taken modulo {length}.")
        pos = np.mod(pos, length)
    return pos, length, source, notes


class Cyclic(Analysis):
    name = "cyclic"
    title = "Calendar cycles: are the embeddings ordered like the calendar?"
    description = (
        "For tables with a calendar position (metadata cycle_order + attribute cycle_length, or "
        "--order): correlation of embedding distance with circular calendar distance, nearest-"
        "neighbour adjacency, the order recovered as the shortest closed path, and the tour test."
    )
    options = [
        AnalysisOption(
            "order",
            OrderSpec(),
            None,
            "Calendar order of a table: TABLE=label1,label2,... or TABLE=COLUMN[:LENGTH] (repeatable).",
            multiple=True,
        ),
        PERMUTATIONS,
        DISTANCE,
        PROJECTION,
        SEED,
    ]

    def applies_to(self, run: Run, options: dict[str, Any] | None = None) -> list[str]:
        orders = parse_orders(options or {})
        for name in orders:
            run.table(name)  # a UsageError naming the run's tables when it has no such table
        names = [n for n, t in run.tables.items() if _has_cycle(t) or n in orders]
        return names

    def run(self, run: Run, table: str, options: dict[str, Any]) -> AnalysisResult:
        t = run.table(table)
        pos, length, source, notes = calendar_positions(t, parse_orders(options).get(table))
        keep = np.isfinite(pos)
        missing = int((~keep).sum())
        if missing:
            shown = ", ".join(t.labels[~keep][:8]) + (" ..." if missing > 8 else "")
            notes.append(f"{missing} of {len(t):,} entities have no calendar position and were left out ({shown}).")
        idx = np.flatnonzero(keep)
        n = len(idx)
        base = {"n_entities": float(n), "n_missing": float(missing), "cycle_length": float(length)}
        if n < MIN_ENTITIES:
            return AnalysisResult(
                self.name,
                table,
                self.title,
                metrics=dict(base, too_few=1.0),
                finding=f"not tested: {n} entities with a calendar position, {MIN_ENTITIES} needed",
                summary=(
                    f"Too few entities to test: {table} has {n} entit{'y' if n == 1 else 'ies'} with a "
                    f"calendar position ({source}); at least {MIN_ENTITIES} are needed. " + " ".join(notes)
                ).strip(),
                tables={"entities": pd.DataFrame({"key": t.keys, "label": t.labels, "position": pos})},
            )
        pos, vectors, labels, keys = pos[idx], t.vectors[idx], t.labels[idx], t.keys[idx]
        d_emb, metric, note = S.embedding_distances(vectors, options["distance"])
        notes.extend(note)
        if len(np.unique(pos)) < n:
            notes.append("Some entities share a calendar position.")
        perms, seed = options["permutations"], options["seed"]
        d_cal = S.circular_distance(pos, length)
        mantel = S.mantel(d_emb, d_cal, perms, method="spearman", seed=seed)
        linear_r = S.mantel(d_emb, np.abs(pos[:, None] - pos[None, :]), 19, seed=seed).r
        adj_rate, adj_chance, nn = S.adjacency_rate(d_emb, d_cal)
        calendar = np.lexsort((np.arange(n), pos))
        tour = C.tour_test(d_emb, calendar, perms, seed=seed)
        recovered = C.orient_tour(tour.shortest.order, pos)
        agreement = C.circular_rank_agreement(recovered, pos)
        chance = C.agreement_chance(n, pos, seed=seed)
        match = C.same_cycle(recovered, calendar) and len(np.unique(pos)) == n
        proj = P.project_2d(vectors, options["projection"], seed=seed, metric=metric)

        metrics = dict(
            cycle_r=mantel.r,
            cycle_p=mantel.p,
            tour_p=tour.p,
            tour_ratio=tour.ratio,
            adjacency_rate=adj_rate,
            adjacency_chance=adj_chance,
            order_agreement=agreement,
            order_match=float(match),
            order_agreement_chance=chance,
            linear_r=linear_r,
            tour_exact=float(tour.shortest.exact),
            permutations=float(mantel.permutations),
            **base,
        )
        rank_in_tour = np.empty(n, dtype=int)
        rank_in_tour[recovered] = np.arange(n)
        entities = (
            pd.DataFrame(
                {
                    "key": keys,
                    "label": labels,
                    "calendar_position": pos,
                    "recovered_position": rank_in_tour,
                    "nearest_in_embedding": labels[nn],
                    "calendar_steps_to_nearest": d_cal[np.arange(n), nn],
                }
            )
            .iloc[calendar]
            .reset_index(drop=True)
        )
        sequence = labels[recovered]
        tables = {
            "entities": entities,
            "recovered order": pd.DataFrame(
                {"step": np.arange(1, n + 1), "label": sequence, "calendar_position": pos[recovered]}
            ),
        }
        if missing:
            tables["without calendar position"] = pd.DataFrame({"key": t.keys[~keep], "label": t.labels[~keep]})
        iu, ju = np.triu_indices(n, k=1)
        data = {
            "labels": labels,
            "x": proj[:, 0],
            "y": proj[:, 1],
            "calendar": calendar,
            "recovered": recovered,
            "position": pos,
            "metric": metric,
            "projection": options["projection"],
            "pair_steps": S.condensed(d_cal),
            "pair_distance": S.condensed(d_emb),
            "pair_labels": np.char.add(np.char.add(labels[iu].astype(str), " – "), labels[ju].astype(str)),
        }
        summary = self._summary(
            table,
            n,
            length,
            source,
            metric,
            mantel,
            linear_r,
            tour,
            adj_rate,
            adj_chance,
            sequence,
            match,
            agreement,
            chance,
            notes,
        )
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=summary,
            metrics=metrics,
            tables=tables,
            data=data,
            finding=(
                f"the calendar order is recovered as {sequence[0]}..{sequence[-1]}"
                if match
                else f"recovered order {' '.join(map(str, sequence[:8]))}{' ...' if n > 8 else ''} "
                f"(agreement {agreement:.2f}, random {chance:.2f})"
            )
            + f", tour p = {tour.p:.2g}, cycle r {mantel.r:.2f} (p = {mantel.p:.2g})",
            headline=["cycle_r", "cycle_p", "tour_p", "order_agreement"],
        )

    @staticmethod
    def _summary(
        table: str,
        n: int,
        length: int,
        source: str,
        metric: str,
        mantel: S.MantelResult,
        linear_r: float,
        tour: C.TourTest,
        adj_rate: float,
        adj_chance: float,
        sequence: np.ndarray,
        match: bool,
        agreement: float,
        chance: float,
        notes: list[str],
    ) -> str:
        p_cycle, p_tour = mantel.p, tour.p
        ps = [p for p in (p_cycle, p_tour) if np.isfinite(p)]
        best = min(ps) if ps else float("nan")
        if not ps:
            verdict = "No test possible: all embedding distances are equal."
        elif max(ps) < 0.01 and (not np.isfinite(mantel.r) or mantel.r > 0):
            verdict = (
                f"The embeddings of {table} are arranged like the calendar: both tests agree, unlikely to be chance."
            )
        elif best < 0.025:
            which = "tour" if p_tour <= p_cycle else "distance"
            verdict = (
                f"Evidence of a calendar order in {table}: the {which} test is significant "
                f"(still below 5% after allowing for two tests)."
            )
        elif best < 0.05:
            verdict = (
                f"Weak evidence of a calendar order in {table}: one test is just below 5%, "
                f"which two tests reach by chance about one time in ten."
            )
        else:
            verdict = f"No significant sign that the embeddings of {table} are ordered like the calendar."
        parts = [verdict]
        if np.isfinite(mantel.r):
            parts.append(
                f"Over {n} entities (a cycle of {length}; positions from {source}), {metric} distance "
                f"between embeddings and distance around the calendar correlate with Spearman "
                f"r = {mantel.r:.2f} ({S.describe_p(p_cycle, mantel.permutations, mantel.exact, n)})."
            )
        parts.append(
            f"The closed tour through the embeddings in calendar order is {tour.ratio:.2f} times the "
            f"shortest tour through them; random orders are as short with "
            f"{S.describe_p(p_tour, tour.permutations, tour.exact, n)}."
        )
        parts.append(
            f"{adj_rate:.0%} of entities have a calendar neighbour as their nearest neighbour "
            f"(chance: {adj_chance:.0%})."
        )
        shown = " ".join(sequence[:MAX_SEQUENCE_SHOWN]) + (" ..." if n > MAX_SEQUENCE_SHOWN else "")
        how = "exact" if tour.shortest.exact else "heuristic (2-opt + or-opt)"
        if match:
            parts.append(
                f"The order recovered from the embeddings alone (shortest closed path, {how}) is the "
                f"calendar's: {shown}."
            )
        else:
            parts.append(
                f"The order recovered from the embeddings alone (shortest closed path, {how}): {shown}; "
                f"circular rank agreement with the calendar {agreement:.2f} (random orders: {chance:.2f})."
            )
        if np.isfinite(linear_r) and np.isfinite(mantel.r) and linear_r > mantel.r + 0.1:
            parts.append(
                f"Distances follow the calendar as a line (first to last, r = {linear_r:.2f}) more "
                f"than as a closed cycle: the ends of the cycle are not close in the embedding."
            )
        if n < LOW_POWER:
            parts.append(f"Caution: with only {n} entities the tests have little power.")
        return " ".join(parts + notes)

    # -- figures
    def render(self, result: AnalysisResult) -> list:
        d = result.data
        if "x" not in d:
            return []
        from embedlab.toolkit.plotting import PALETTE, scatter

        frame = pd.DataFrame({"x": d["x"], "y": d["y"], "label": d["labels"], "calendar position": d["position"]})
        proj = d["projection"].upper() if d["projection"] == "pca" else d["projection"]
        labelled = range(len(frame)) if len(frame) <= MAX_LABELS_PLOTTED else None
        fig = scatter(
            frame,
            "x",
            "y",
            hover=("label", "calendar position"),
            color_by=None,
            x_label=f"{proj} 1",
            y_label=f"{proj} 2",
            width=620,
            height=520,
            annotate=labelled,
            title=f"{result.table}: embeddings ({proj}) joined in calendar order",
        )
        fig.renderers[0].glyph.size = 10
        loop = np.append(d["calendar"], d["calendar"][:1])
        fig.line(d["x"][loop], d["y"][loop], color=PALETTE[0], line_width=2, alpha=0.6, legend_label="calendar order")
        tour = np.append(d["recovered"], d["recovered"][:1])
        fig.line(
            d["x"][tour],
            d["y"][tour],
            color=PALETTE[1],
            line_width=1.5,
            line_dash="dashed",
            alpha=0.8,
            legend_label="shortest closed path",
        )
        fig.legend.click_policy = "hide"
        pairs = pd.DataFrame(
            {
                "calendar steps apart": d["pair_steps"],
                "embedding distance": d["pair_distance"],
                "pair": d["pair_labels"],
            }
        )
        fig2 = scatter(
            pairs,
            "calendar steps apart",
            "embedding distance",
            hover=("pair",),
            width=520,
            height=420,
            title=f"{result.table}: embedding distance ({d['metric']}) by calendar distance "
            f"(r = {result.metrics.get('cycle_r', float('nan')):.2f})",
        )
        return [fig, fig2]


@hookimpl
def embedlab_register_analyses(register):
    register(Cyclic())
