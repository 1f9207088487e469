"""Discovery statistics for trained runs: does State follow the map, do DayOfWeek and Month
follow the calendar?

Give it run folders (e.g. the Rossmann default and ``guo2016`` runs over three seeds); it runs
the ``geography`` and ``cyclic`` analyses (default options: cosine distance, PCA, 9,999
seeded permutations) and prints one row per run:

  run, dataset, preset, seed, valid RMSPE,
  State: mantel_r, mantel_p, procrustes_r2
  DayOfWeek: cycle_r, cycle_p, tour_p
  Month: cycle_r, cycle_p, tour_p

as a plain table, or as Markdown (``--markdown``) to paste into the README, or as JSON.

The product now does this itself: ``embedlab analyze RUN_OR_GROUP ... --only geography,cyclic``
reports every statistic over the runs (mean, sd, n, p < 0.05 in how many) and each run's
value (README, "Discovery"). This script stays for the README table's one-row-per-run
Markdown layout.

Usage:
  python benchmarks/discovery.py runs/rossmann-s1 runs/rossmann-s2 runs/guo2016-s1 ... [--markdown]
  python benchmarks/discovery.py runs/* --geo-table State --cycle-tables DayOfWeek,Month --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import embedlab
from embedlab.run import load_run

GEO_COLUMNS = ("mantel_r", "mantel_p", "procrustes_r2")
CYCLE_COLUMNS = ("cycle_r", "cycle_p", "tour_p")


def measure(path: str, geo_table: str, cycle_tables: list[str], options: dict[str, Any]) -> dict[str, Any]:
    """One row of statistics for one run folder (missing tables give empty cells)."""
    run = load_run(path)
    row: dict[str, Any] = {
        "run": path,
        "dataset": run.dataset,
        "preset": run.config.get("preset", ""),
        "seed": run.seed,
        "valid_rmspe": run.metrics.get("valid_rmspe", float("nan")),
    }
    t0 = time.perf_counter()
    results = embedlab.analyze(run, ["geography", "cyclic"], dict(options))
    row["seconds"] = time.perf_counter() - t0
    found = {(r.analysis, r.table): r for r in results}
    for table, analysis, columns in [(geo_table, "geography", GEO_COLUMNS)] + [
        (t, "cyclic", CYCLE_COLUMNS) for t in cycle_tables
    ]:
        result = found.get((analysis, table))
        for col in columns:
            value = float("nan")
            if result is not None and result.error is None:
                value = result.metrics.get(col, float("nan"))
            row[f"{table}.{col}"] = value
        if result is not None and result.error:
            print(f"{path}: {analysis}/{table} failed: {result.error}", file=sys.stderr)
        if result is not None and analysis == "cyclic" and result.error is None:
            order = result.tables.get("recovered order")
            row[f"{table}.recovered"] = " ".join(order["label"]) if order is not None else ""
    return row


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:.4f}" if abs(value) < 0.01 and value != 0 else f"{value:.3f}"
    return str(value)


def format_table(rows: list[dict[str, Any]], columns: list[str], markdown: bool) -> str:
    cells = [[_cell(r.get(c, "")) for c in columns] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(lines)
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths))]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths)) for row in cells]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", help="run folders written by `embedlab train --out`")
    parser.add_argument("--geo-table", default="State")
    parser.add_argument("--cycle-tables", default="DayOfWeek,Month")
    parser.add_argument("--permutations", type=int, default=9999)
    parser.add_argument("--distance", choices=["cosine", "euclidean"], default="cosine")
    parser.add_argument("--seed", type=int, default=0, help="seed of the permutation tests")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table for the README")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--orders", action="store_true", help="also print the recovered calendar orders")
    args = parser.parse_args(argv)
    cycle_tables = [t.strip() for t in args.cycle_tables.split(",") if t.strip()]
    options = {"permutations": args.permutations, "distance": args.distance, "seed": args.seed}
    rows = [measure(p, args.geo_table, cycle_tables, options) for p in args.runs]
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    columns = (
        ["run", "preset", "seed", "valid_rmspe"]
        + [f"{args.geo_table}.{c}" for c in GEO_COLUMNS]
        + [f"{t}.{c}" for t in cycle_tables for c in CYCLE_COLUMNS]
    )
    print(format_table(rows, columns, args.markdown))
    if args.orders:
        print()
        for r in rows:
            for t in cycle_tables:
                print(f"{r['run']} {t}: {r.get(f'{t}.recovered', '')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
