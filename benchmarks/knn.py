"""Exact k-nearest-neighbour lists (the explorer's precomputed lists, ``embedlab neighbors``):
which engine, measured on the same rows in one run.

    python benchmarks/knn.py [--run200k DIR] [--queries 3000] [--threads 1,2] [--full]

On a synthetic-collab user table (200,000 users, the report benchmark's run: ``--run200k``, else
trained here) and its first 60,000 rows, with the explorer's candidates (users counted at least
``DEFAULT_MIN_COUNT`` times), k = 10, cosine and euclidean, the same random query rows for every
engine:

* ``baseline``: ``toolkit.neighbors.knn_lists`` as it was before this benchmark (commit
  d97e10d, copied below): blocked torch products, a top-(k+3), then a Python loop per row;
* ``knn_lists[torch]`` and ``knn_lists[faiss]``: today's, with each shortlist engine (a top-(k+6)
  from blocked torch float32 products, or from faiss-cpu's ``IndexFlatIP`` on unit rows /
  ``IndexFlatL2``), then float64 re-ranking of those few and every candidate where the edge is
  in doubt: exact, ties to the lower row, the same lists either way (checked here);
* ``faiss search alone``: the faiss search of k + 7, before any re-ranking (faiss-cpu is the
  optional ``embedlab[faiss]`` extra; its rows are skipped without it).

Each is timed in CPU seconds and wall seconds with torch's (and faiss's OpenMP) threads set to
each of ``--threads``; ratios are against the baseline at the same thread count. ``--full``
then times ``knn_lists`` over every row of the 200,000 (both metrics: what a report computes).
The load average is printed before and after: the machine is shared, compare ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def baseline_knn_lists(vectors, k, candidates, metric="cosine", queries=None):
    """``toolkit.neighbors.knn_lists`` at d97e10d (restricted to ``queries`` rows by slicing the
    query blocks, as it had no such argument): the same code, the baseline of the ratios."""
    import torch

    from embedlab.toolkit.neighbors import unit_rows

    v = np.asarray(vectors, dtype=np.float32)
    cand = np.asarray(candidates, dtype=np.int64)
    qrows = np.arange(len(v)) if queries is None else np.asarray(queries)
    unit = metric == "cosine"
    base = torch.from_numpy(np.ascontiguousarray(unit_rows(v[cand]) if unit else v[cand]))
    sq = (base * base).sum(1)
    pos = np.full(len(v), -1, np.int64)
    pos[cand] = np.arange(len(cand))
    kk = min(int(k) + 3, len(cand))
    rows = np.full((len(qrows), k), -1, np.int32)
    scores = np.full((len(qrows), k), np.nan, np.float32)
    block = max(64, int(5e7 // max(len(cand), 1)))
    with torch.no_grad():
        for s in range(0, len(qrows), block):
            qi = qrows[s : s + block]
            q = torch.from_numpy(np.ascontiguousarray(unit_rows(v[qi]) if unit else v[qi]))
            prod = q @ base.T
            key = -prod if unit else ((q * q).sum(1)[:, None] + sq[None, :] - 2 * prod).clamp_min(0)
            own = pos[qi]
            has = np.flatnonzero(own >= 0)
            key[torch.from_numpy(has), torch.from_numpy(own[has])] = float("inf")
            val, at = torch.topk(key, kk, dim=1, largest=False)
            val, at = val.numpy(), at.numpy()
            for j in range(len(q)):
                o = np.lexsort((cand[at[j]], val[j]))
                o = o[np.isfinite(val[j][o])][:k]
                rows[s + j, : len(o)] = cand[at[j][o]]
                scores[s + j, : len(o)] = -val[j][o] if unit else np.sqrt(val[j][o])
    return rows, scores


def faiss_search(vectors, k, candidates, metric, queries):
    import faiss

    from embedlab.toolkit.neighbors import unit_rows

    v = np.asarray(vectors, dtype=np.float32)
    base = unit_rows(v[candidates]) if metric == "cosine" else np.ascontiguousarray(v[candidates])
    index = faiss.IndexFlatIP(base.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(base.shape[1])
    index.add(np.ascontiguousarray(base))
    q = unit_rows(v[queries]) if metric == "cosine" else np.ascontiguousarray(v[queries])
    _, at = index.search(np.ascontiguousarray(q), k + 7)
    return np.asarray(candidates)[at]


def timed(fn):
    c0, w0 = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - c0, time.perf_counter() - w0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run200k", type=Path, default=None)
    ap.add_argument("--queries", type=int, default=3000, help="query rows per comparison (the same for every engine)")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument(
        "--full",
        action="store_true",
        help="then knn_lists over all 200,000 rows, both metrics, with the first --threads",
    )
    args = ap.parse_args()
    print(f"load average before: {os.getloadavg()}")
    import torch

    import embedlab
    from embedlab.run import load_run
    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, knn_engine, knn_lists
    from embedlab.toolkit.selection import select_entities

    big = args.run200k
    if big is None:
        big = Path(tempfile.mkdtemp(prefix="embedlab-knn-bench-")) / "synthetic-200k"
        embedlab.train("synthetic-collab", out=big, users=200_000, items=2_000, ratings=3_000_000, epochs=1, bs=4096)
    users = load_run(big).table("user")
    try:
        import faiss
    except ImportError:
        faiss = None
        print("faiss-cpu not installed: its rows are skipped")
    rng = np.random.default_rng(0)
    k = 10
    for n in (60_000, len(users)):
        vectors = users.vectors[:n]
        counts = np.asarray(users.count[:n], dtype=float)
        cand = select_entities(users, 0, DEFAULT_MIN_COUNT).index
        cand = np.asarray(cand[cand < n])
        assert (counts[cand] >= DEFAULT_MIN_COUNT).all()
        queries = np.sort(rng.choice(n, min(args.queries, n), replace=False))
        print(
            f"\n{n:,} users x {users.dim} dims, {len(cand):,} candidates (counted >= {DEFAULT_MIN_COUNT}), "
            f"{len(queries):,} random query rows, k = {k}"
        )
        for threads in [int(t) for t in args.threads.split(",")]:
            torch.set_num_threads(threads)
            if faiss is not None:
                faiss.omp_set_num_threads(threads)
            for metric in ("cosine", "euclidean"):
                (old_rows, _), c_old, w_old = timed(lambda: baseline_knn_lists(vectors, k, cand, metric, queries))
                line = (
                    f"  {threads} thread{'s' if threads > 1 else ''}, {metric:9s}: baseline {c_old:6.1f} CPU-s "
                    f"({w_old:5.1f} s wall)"
                )
                lists = {}
                for engine in ["torch"] + (["faiss"] if faiss is not None else []):
                    (rows, _), c_new, w_new = timed(
                        lambda: knn_lists(vectors, k, cand, metric, queries=queries, threads=threads, engine=engine)
                    )
                    lists[engine] = rows
                    same = (rows == old_rows).all(1).mean()
                    line += (
                        f"; knn_lists[{engine}] {c_new:6.1f} CPU-s ({w_new:5.1f} s wall), {c_old / c_new:4.1f}x "
                        f"less CPU, same lists as the baseline for {100 * same:.1f}% of rows"
                    )
                if faiss is not None:
                    at, c_f, w_f = timed(lambda: faiss_search(vectors, k, cand, metric, queries))
                    line += (
                        f"; faiss search alone {c_f:6.1f} CPU-s ({w_f:5.1f} s wall); the two engines' lists "
                        f"equal for {100 * (lists['torch'] == lists['faiss']).all(1).mean():.1f}% of rows"
                    )
                print(line, f"[load {os.getloadavg()[0]:.1f}]", flush=True)
    if args.full:
        threads = int(args.threads.split(",")[0])
        torch.set_num_threads(threads)
        cand = np.asarray(select_entities(users, 0, DEFAULT_MIN_COUNT).index)
        for metric in ("cosine", "euclidean"):
            _, c, w = timed(lambda: knn_lists(users.vectors, k, cand, metric, threads=threads))
            print(
                f"full: every one of {len(users):,} users' {k} nearest by {metric}, engine "
                f"{knn_engine()}, {threads} thread(s): "
                f"{c:.0f} CPU-s, {w:.0f} s wall [load {os.getloadavg()[0]:.1f}]",
                flush=True,
            )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
