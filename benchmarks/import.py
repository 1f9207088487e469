"""Benchmark of ``embedlab import`` at scale: 1,000,000 x 64 float32 vectors (256 MB).

For each format (``npy``, ``parquet``, ``word2vec`` text) the file is written once, then
``embedlab import FILE --out RUN`` runs as a fresh process; its wall time and peak RSS are
measured. The same import of a 1,000-row file of the same format, in the same run, is the
baseline: its peak RSS is what the interpreter, torch and pandas take whatever the size, so
``(peak - baseline) / matrix`` is the memory the import itself needs, in matrices (target:
about 2). Then ``embedlab analyze RUN --only pca,neighbors --json`` on the npy import (seconds,
peak RSS). The load average is printed beside every figure: on a shared machine, compare ratios.

Usage: python benchmarks/import.py [--rows 1000000] [--dim 64] [--formats npy,parquet,word2vec]
       [--work DIR] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

#: runs ``embedlab ARGS`` in this process and prints its peak RSS (MB) as the last stderr line:
#: VmHWM, this program's own high-water mark (ru_maxrss would include the parent's RSS at fork,
#: which Linux carries across exec)
_WRAPPER = (
    "import re, sys\n"
    "from embedlab.cli import cli\n"
    "try:\n"
    "    cli.main(args=sys.argv[1:], prog_name='embedlab', standalone_mode=False)\n"
    "finally:\n"
    "    hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1)\n"
    "    print('PEAK_RSS_MB', int(hwm) / 1024, file=sys.stderr)\n"
)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def embedlab(*args: str) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, *args], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"embedlab {' '.join(args)} failed:\n{proc.stderr[-2000:]}")
    peak = next(float(line.split()[1]) for line in reversed(proc.stderr.splitlines()) if line.startswith("PEAK_RSS_MB"))
    return {"wall_s": round(wall, 2), "peak_rss_mb": round(peak, 1), "load": load()}


def write(fmt: str, vectors: np.ndarray, folder: Path) -> Path:
    """The file of ``fmt`` in ``folder`` (kept from an earlier run with the same --work)."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / ("vectors." + {"npy": "npy", "parquet": "parquet"}.get(fmt, "txt"))
    if done.is_file() and done.stat().st_size:
        return done
    if fmt == "npy":
        path = folder / "vectors.npy"
        np.save(path, vectors)
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = folder / "vectors.parquet"
        n, dim = vectors.shape
        offsets = pa.array(np.arange(0, n * dim + 1, dim, dtype=np.int64))
        column = pa.LargeListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)))
        pq.write_table(pa.table({"key": pa.array(np.arange(n)), "vector": column}), path)
    else:  # word2vec text, the header line and 6 significant digits (what most tools write)
        path = folder / "vectors.txt"
        with open(path, "w") as fh:
            fh.write(f"{len(vectors)} {vectors.shape[1]}\n")
            for start in range(0, len(vectors), 50_000):
                block = vectors[start : start + 50_000]
                fh.write(
                    "".join(
                        f"e{start + i} " + " ".join(f"{v:.6g}" for v in row) + "\n"
                        for i, row in enumerate(block.tolist())
                    )
                )
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--formats", default="npy,parquet,word2vec")
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="embedlab-import-bench-"))
    rng = np.random.default_rng(0)
    big = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    small = big[:1000].copy()
    matrix_mb = big.nbytes / 2**20
    print(f"matrix {args.rows:,} x {args.dim} float32 = {matrix_mb:.0f} MB; load {load()}")
    out: dict = {"rows": args.rows, "dim": args.dim, "matrix_mb": round(matrix_mb, 1), "imports": {}}
    for fmt in args.formats.split(","):
        src_big, src_small = write(fmt, big, work / fmt / "big"), write(fmt, small, work / fmt / "small")
        base = min(
            (embedlab("import", str(src_small), "--out", str(work / fmt / f"run-small-{i}")) for i in range(2)),
            key=lambda r: r["peak_rss_mb"],
        )  # the smaller of two: what any import takes
        res = embedlab("import", str(src_big), "--out", str(work / fmt / "run"))
        res["baseline_rss_mb"] = base["peak_rss_mb"]
        res["matrices_above_baseline"] = round((res["peak_rss_mb"] - base["peak_rss_mb"]) / matrix_mb, 2)
        res["file_mb"] = round(src_big.stat().st_size / 2**20, 1)
        out["imports"][fmt] = res
        print(
            f"import {fmt:8s} {res['file_mb']:7.0f} MB file: {res['wall_s']:6.1f} s, peak RSS "
            f"{res['peak_rss_mb']:.0f} MB (baseline {base['peak_rss_mb']:.0f} MB: "
            f"{res['matrices_above_baseline']:.2f} x the matrix above it); load {res['load']}"
        )
    first = args.formats.split(",")[0]
    res = embedlab("analyze", str(work / first / "run"), "--only", "pca,neighbors", "--json")
    out["analyze_pca_neighbors"] = res
    print(
        f"analyze --only pca,neighbors on the {first} import: {res['wall_s']:.1f} s, peak RSS "
        f"{res['peak_rss_mb']:.0f} MB; load {res['load']}"
    )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
