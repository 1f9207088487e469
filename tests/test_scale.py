"""Memory-lean synthetic-collab generator and the scale benchmark's smoke path."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from datasets import synthetic_collab as S

ROOT = Path(__file__).resolve().parents[1]


def test_generator_columns_have_lean_dtypes():
    frame, users, items = S.generate(users=50, items=30, ratings=2000, seed=1)
    assert frame.dtypes.astype(str).to_dict() == {
        "user": "int32",
        "item": "int32",
        "rating": "float32",
        "timestamp": "int32",
    }
    assert frame["user"].between(1, 50).all() and frame["item"].between(1, 30).all()
    assert set(np.unique(frame["rating"])) <= set(np.arange(1.0, 5.01, 0.5, dtype=np.float32))
    assert frame["timestamp"].is_monotonic_increasing
    assert len(users) == 50 and len(items) == 30


def test_chunked_generation_equals_one_chunk(monkeypatch):
    """Chunks consume the random stream in the same order as one draw: same data either way."""
    whole = S.generate(users=40, items=25, ratings=5003, seed=7)[0]
    monkeypatch.setattr(S, "CHUNK", 1000)
    chunked = S.generate(users=40, items=25, ratings=5003, seed=7)[0]
    pd.testing.assert_frame_equal(whole, chunked)


def test_load_keeps_dtypes_through_the_split():
    ds = S.load(users=30, items=20, ratings=1000)
    for part in (ds.train, ds.valid):
        assert part["user"].dtype == np.int32 and part["rating"].dtype == np.float32
    assert len(ds.train) + len(ds.valid) == 1000


def test_scale_benchmark_runs_on_a_tiny_set():
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "scale.py"),
            "--users",
            "300",
            "--items",
            "200",
            "--ratings",
            "20000",
            "--n-factors",
            "8",
            "--seconds",
            "0.3",
            "--big-bs",
            "2048",
            "--throughput",
            "--full-epoch",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    for label in (
        "load average",
        "--kernel fused ",
        "--kernel autograd ",
        "fused vs autograd:",
        "memory bandwidth",
        "lower bound of the epoch",
        "fused epoch / lower bound",
        "peak RSS",
        "plain DataLoader bs=256",
        "embedlab default bs=256",
        "embedlab --sparse off bs=256",
        "embedlab --bs 2048",
        "embedlab --sparse off --bs 2048",
        "best embedlab option:",
        "full epoch with embedlab",
    ):
        assert label in out
    # the two kernels train the same model to the same valid RMSE (4 decimals)
    rmse = dict(re.findall(r"--kernel (\w+) .* valid RMSE (\d\.\d+)", out))
    assert rmse["fused"] == rmse["autograd"], out
    # 500 entities x 9 is far below the --sparse auto threshold: the default is dense here
    assert "--sparse auto -> dense" in out
