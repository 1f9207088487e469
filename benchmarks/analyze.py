"""Benchmark of ``embedlab analyze``: wall time and report size.

1. ``embedlab analyze RUN --report`` (every analysis that applies) on an ml-100k u1 run and on an
   ml-latest-small run (9.7k items), as a fresh process each time: the first invocation after an
   install also compiles umap-learn's numba code into its on-disk cache ("cold"), later ones load it
   ("warm"). Targets on 2 cores: ml-100k full report <= 20 s.
2. PCA and UMAP on a 60,000 x 40 table (the size of MovieLens 25M's movies), with every entity
   kept (``--top-n 0``): UMAP with the defaults (a 50,000-point seeded sample, parallel) and with
   all 60,000 points; and the size of a report holding the 60,000-point PCA scatter.
   Targets: 60k-point UMAP <= 60 s, report with a 60k-point scatter <= 8 MB.

The load average is printed before and after: on a shared machine, compare CPU seconds too.

Usage: EMBEDLAB_DATA_DIR=../shared/data python benchmarks/analyze.py [--work DIR] [--skip-real]
       [--ml100k-run DIR] [--latest-run DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def child_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def self_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def embedlab_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "embedlab", *args]


def train(dataset: str, out: Path, data_dir: Path, *extra: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        embedlab_cmd("train", dataset, "--data-dir", str(data_dir), "--out", str(out), "-q", *extra),
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def analyze(run: Path, report: Path) -> dict:
    c0, t0 = child_cpu(), time.perf_counter()
    subprocess.run(
        embedlab_cmd("analyze", str(run), "--report", str(report)),
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(child_cpu() - c0, 2),
        "report_mb": round(report.stat().st_size / 1e6, 2),
    }


def big_run(n: int = 60_000, dim: int = 40, seed: int = 0):
    """A MovieLens-25M-sized item table: 20 planted clusters, Zipf counts, genres, titles."""
    from embedlab.run import EmbeddingTable, Run

    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (20, dim))
    cluster = rng.integers(0, 20, n)
    vectors = (centres[cluster] + rng.normal(0, 0.6, (n, dim))).astype(np.float32)
    count = np.maximum(1, (5000 / np.arange(1, n + 1) ** 0.9)).astype(int)[rng.permutation(n)]
    meta = pd.DataFrame(
        {
            "count": count,
            "mean_rating": rng.uniform(1, 5, n).round(3),
            "genre": [f"genre {c}" for c in cluster],
            "year": rng.integers(1920, 2020, n),
        }
    )
    table = EmbeddingTable(
        "item",
        np.arange(1, n + 1),
        [f"Movie number {i} ({y})" for i, y in zip(range(1, n + 1), meta["year"])],
        vectors,
        rng.normal(0, 0.3, n),
        meta,
        {"count_column": "count", "target_column": "mean_rating", "color_column": "genre"},
    )
    return Run({"dataset": "synthetic-60k", "kind": "collab"}, {"item": table})


def timed_analysis(run, name: str, options: dict) -> tuple[dict, object]:
    from embedlab.runner import run_analyses

    c0, t0 = self_cpu(), time.perf_counter()
    (result,) = run_analyses(run, [name], options, render=True)
    if result.error:
        raise SystemExit(f"{name} failed: {result.error}")
    return {
        "wall_s": round(time.perf_counter() - t0, 2),
        "cpu_s": round(self_cpu() - c0, 2),
        "points": int(result.metrics.get("n_points", result.metrics.get("n_entities", 0))),
    }, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path, default=Path(os.environ.get("EMBEDLAB_DATA_DIR", "../shared/data")))
    ap.add_argument("--work", type=Path, default=None, help="Folder for runs and reports (default: a temp dir).")
    ap.add_argument("--ml100k-run", type=Path, default=None, help="Reuse a trained ml-100k u1 run.")
    ap.add_argument("--latest-run", type=Path, default=None, help="Reuse a trained ml-latest-small run.")
    ap.add_argument("--skip-real", action="store_true", help="Only the 60,000-point part.")
    ap.add_argument("--skip-big", action="store_true", help="Only the real-data part.")
    ap.add_argument("--json", type=Path, default=None, help="Also write the figures as JSON here.")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="embedlab-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    out: dict = {"cores": os.cpu_count(), "load_before": [round(x, 2) for x in os.getloadavg()]}
    print(f"work dir {work}; {os.cpu_count()} cores; load average {out['load_before']}", flush=True)

    if not args.skip_real:
        for key, dataset, folder, given, extra in (
            ("ml-100k", "movielens-100k", "ml-100k", args.ml100k_run, ("--split", "u1")),
            ("latest-small", "movielens-latest-small", "ml-latest-small", args.latest_run, ()),
        ):
            run = given
            if run is None:
                run = work / f"run-{key}"
                secs = train(dataset, run, args.data_dir / folder, *extra)
                print(f"{key}: trained in {secs:.1f} s (not part of the figures)", flush=True)
            res = {}
            for phase in ("first", "second"):
                res[phase] = analyze(run, work / f"{key}-{phase}.html")
                print(
                    f"{key}: embedlab analyze --report ({phase} process): {res[phase]['wall_s']} s wall, "
                    f"{res[phase]['cpu_s']} s CPU, report {res[phase]['report_mb']} MB",
                    flush=True,
                )
            out[key] = res

    if not args.skip_big:
        from embedlab.report.html import write_report

        run = big_run()
        figures = {}
        for label, name, options in (
            ("pca_60k", "pca", {"top_n": 0}),
            ("umap_default_60k", "umap", {"top_n": 0}),
            ("umap_all_60k", "umap", {"top_n": 0, "umap_max_points": 0}),
        ):
            stats, result = timed_analysis(run, name, options)
            figures[label] = result
            out[label] = stats
            print(
                f"60,000 x 40: {label}: {stats['wall_s']} s wall, {stats['cpu_s']} s CPU, "
                f"{stats['points']:,} points mapped",
                flush=True,
            )
        for label, keys in (("report_pca_60k", ["pca_60k"]), ("report_pca_umap_60k", ["pca_60k", "umap_all_60k"])):
            path = write_report(work / f"{label}.html", run, [figures[k] for k in keys])
            out[label] = {"report_mb": round(path.stat().st_size / 1e6, 2)}
            print(f"60,000 x 40: {label}: {out[label]['report_mb']} MB", flush=True)

    out["load_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average after: {out['load_after']}")
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
