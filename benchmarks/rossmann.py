"""Rossmann benchmark on the real Kaggle files (EMBEDLAB_DATA_DIR/rossmann).

1. ``default``: the default config, validated on the last 48 days of train (2015-06-14 ..
   2015-07-31). Target: exp-RMSPE <= 0.100; training must finish in <= 15 minutes on the
   project's 2-core machine. Anchors: fast.ai lesson 6 0.1054 (lecture 0.1037), Kaggle 10th
   place 0.108, winner about 0.100 (private leaderboard).
2. ``fastai``: the same config on fast.ai's row-count split (41,396 rows from 2015-06-19), so the
   figure compares with fast.ai's.
3. ``guo2016``: the paper's preset (7 features, Table 1 sizes) on the paper's time-based split
   (the latest 10 % of days held out, 200,000 random training rows). Target: MAPE <= 0.093.

Per-epoch wall time, total wall and CPU seconds and the load average are printed: on a shared
machine, CPU seconds are the figure to compare (wall ~= CPU / threads on an idle machine).

Usage: EMBEDLAB_DATA_DIR=../shared/data python benchmarks/rossmann.py [--only default,fastai,guo2016]
       [--threads N] [--epochs N] [--json results.json] [--save-run DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load(folder: Path, split: str, **kw):
    import embedlab

    t0 = time.perf_counter()
    ds = embedlab.load_dataset("rossmann", data_dir=folder, split=split, **kw)
    return ds, time.perf_counter() - t0


def bench(name: str, ds, config: dict, load_s: float) -> dict:
    from embedlab.trainers.tabular import TabularTrainer

    load_avg = os.getloadavg()[0]
    c0, t0 = cpu_seconds(), time.perf_counter()
    run = TabularTrainer().train(ds, dict(config), progress=sys.stderr.isatty())
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    m = run.metrics
    out = {
        "name": name,
        "split": ds.split,
        "config": {
            k: run.config.get(k)
            for k in (
                "preset",
                "layers",
                "ps",
                "emb_drop",
                "epochs",
                "lr",
                "wd",
                "bs",
                "loss",
                "train_sample",
                "threads",
            )
        },
        "valid_rmspe": m.get("valid_rmspe"),
        "valid_rmspe_unscaled": m.get("valid_rmspe_unscaled"),
        "valid_mape": m.get("valid_mape"),
        "valid_rmse_log": m.get("valid_rmse_log"),
        "rmspe_scale": m.get("rmspe_scale"),
        "train_rows": m.get("train_rows"),
        "valid_rows": m.get("valid_rows"),
        "epoch_seconds": [round(h["epoch_seconds"], 1) for h in run.history],
        "epoch_rmspe": [round(h.get("valid_rmspe", float("nan")), 4) for h in run.history],
        "train_wall_s": round(wall, 1),
        "train_cpu_s": round(cpu, 1),
        "load_s": round(load_s, 1),
        "load_average_before": round(load_avg, 2),
        "load_average_after": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(out), flush=True)
    return out, run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="default,fastai,guo2016")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--epochs", type=int, default=None, help="override the default config's epochs")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--save-run", type=Path, default=None, help="save the default run here")
    args = ap.parse_args(argv)
    root = os.environ.get("EMBEDLAB_DATA_DIR")
    if not root or not (Path(root) / "rossmann").is_dir():
        print("set EMBEDLAB_DATA_DIR to the folder holding rossmann/", file=sys.stderr)
        return 2
    folder = Path(root) / "rossmann"
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    base = {"threads": args.threads}
    if args.epochs:
        base["epochs"] = args.epochs
    results = []
    if "default" in wanted:
        ds, load_s = load(folder, "last-days")
        res, run = bench("default (last 48 days)", ds, base, load_s)
        results.append(res)
        if args.save_run:
            run.save(args.save_run)
        del ds, run
    if "fastai" in wanted:
        ds, load_s = load(folder, "fastai")
        results.append(bench("default (fast.ai row-count split)", ds, base, load_s)[0])
        del ds
    if "guo2016" in wanted:
        ds, load_s = load(folder, "time", valid_pct=0.1)
        results.append(
            bench(
                "guo2016 (latest 10% of days, 200k rows)", ds, {"preset": "guo2016", "threads": args.threads}, load_s
            )[0]
        )
        del ds
    print("\n| benchmark | valid rows | RMSPE | MAPE | epochs | s/epoch | train wall | train CPU |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        per = sum(r["epoch_seconds"]) / max(len(r["epoch_seconds"]), 1)
        print(
            f"| {r['name']} | {r['valid_rows']:,} | {r['valid_rmspe']:.4f} | {r['valid_mape']:.4f} | "
            f"{len(r['epoch_seconds'])} | {per:.0f} | {r['train_wall_s'] / 60:.1f} min | "
            f"{r['train_cpu_s'] / 60:.1f} min |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
