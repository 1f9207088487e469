"""Benchmark of the report's explorer: size, render time and time to interactive.

1. The ml-100k u1 report (every default analysis) with its explorers, against the same results
   rendered without explorers (the baseline, same run): bytes, seconds to render, and in
   headless Chromium the seconds until Bokeh is idle and for a "star wars" search to list its
   neighbours. Budget: < 6 MB, interactive within a few seconds.
2. A 60,000-entity table (60,000 x 40, the size of MovieLens 25M's movies): a report holding
   only its explorer, whose vectors are a stated 20,000-entity sample; the same figures.

The load average is printed before and after: on a shared machine, compare ratios.

Usage: EMBEDLAB_DATA_DIR=../shared/data python benchmarks/explorer.py [--ml100k-run DIR] [--work DIR]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]


def browser_times(path: Path, table: str, query: str, then: str) -> dict[str, float] | None:
    """Seconds to Bokeh idle after load, and for a search to show the entity's neighbours."""
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from browser import open_report
    except ImportError:
        return None
    try:
        with open_report(path) as page:
            page.wait_idle(120)
            # BokehJS logs "document idle at N ms", counted from the page's navigation start
            logged = [e["message"] for e in page.console() if "document idle at" in e.get("message", "")]
            idle = float(logged[-1].split("document idle at")[1].split("ms")[0]) / 1000 if logged else \
                page.js("return performance.now()") / 1000
            searches = []
            for q in (query, then):  # the first search also builds the normalised labels
                page.set_model(f"explorer-status-{table}", "text", "")
                t1 = time.perf_counter()
                page.set_model(f"explorer-search-{table}", "value", q)
                while not page.model_value(f"explorer-status-{table}", "text"):  # the neighbours, or why not
                    if time.perf_counter() - t1 > 60:
                        raise TimeoutError(f"nothing shown for {q!r} within 60 s")
                    time.sleep(0.02)
                searches.append(time.perf_counter() - t1)
            return {"idle_s": idle, "search_s": searches[0], "next_search_s": searches[1]}
    except BaseException as exc:  # noqa: BLE001 - pytest.skip outside pytest: no browser
        print(f"  (no browser figures: {str(exc).splitlines()[0][:120]})")
        return None


def big_run(n: int = 60_000, dim: int = 40, seed: int = 0):
    from embedlab.run import EmbeddingTable, Run

    rng = np.random.default_rng(seed)
    meta = pd.DataFrame({"count": rng.zipf(1.6, n).clip(1, 50_000), "mean_rating": rng.uniform(0.5, 5, n),
                         "year": rng.integers(1900, 2024, n).astype(float),
                         "genre": rng.choice(["Drama", "Comedy", "Action", "Horror", "Documentary"], n)})
    table = EmbeddingTable("item", np.arange(n), [f"Movie {i} ({y:.0f})" for i, y in enumerate(meta["year"])],
                           rng.normal(size=(n, dim)), rng.normal(0, 0.3, n), meta,
                           {"count_column": "count", "target_column": "mean_rating", "color_column": "genre"})
    return Run({"dataset": "synthetic-60k", "kind": "collab", "seed": 0, "config": {}, "metrics": {}}, {"item": table})


def measure(name: str, run, results, work: Path, table: str, query: str, then: str) -> None:
    from embedlab.report.html import render_html

    t0 = time.perf_counter()
    base = render_html(None, results)
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    text = render_html(run, results)
    t_full = time.perf_counter() - t0
    path = work / f"{name}.html"
    path.write_text(text, encoding="utf-8")
    mb, mb_base = len(text.encode()) / 1e6, len(base.encode()) / 1e6
    print(f"{name}: report {mb:.2f} MB (without explorers {mb_base:.2f} MB, x{mb / mb_base:.2f}); "
          f"render {t_full:.2f} s (without explorers {t_base:.2f} s)")
    times = browser_times(path, table, query, then)
    if times:
        print(f"  headless Chromium: Bokeh idle after {times['idle_s']:.2f} s; search {query!r} -> "
              f"neighbours listed in {times['search_s']:.2f} s (first search), {times['next_search_s']:.2f} s (next)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ml100k-run", type=Path, default=None)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="embedlab-explorer-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    import embedlab
    from embedlab.run import load_run
    from embedlab.runner import run_analyses

    run_dir = args.ml100k_run
    if run_dir is None and os.environ.get("EMBEDLAB_DATA_DIR"):
        run_dir = work / "ml100k-u1"
        embedlab.train("movielens-100k", out=run_dir, data_dir=Path(os.environ["EMBEDLAB_DATA_DIR"]) / "ml-100k",
                       split="u1", seed=42)
    if run_dir is not None:
        run = load_run(run_dir)
        measure("ml100k-u1", run, run_analyses(run, None, {}), work, "item", "star wars", "toy story")
    else:
        print("ml-100k: skipped (no --ml100k-run and no EMBEDLAB_DATA_DIR)")
    measure("table-60k", big_run(), [], work, "item", "movie 123", "movie 4567")
    print(f"load average after: {os.getloadavg()}")
    print(f"reports in {work}")


if __name__ == "__main__":
    main()
