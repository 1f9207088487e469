"""torch.distributed path: 2 gloo processes on loopback reproduce a 1-process run.

Tolerance: with the full data on each rank (the default), each rank trains on its half of
every global batch and DDP averages the two half-batch mean gradients, which is the full-batch
mean gradient up to float summation order. Measured difference after 2 epochs: ~1e-7; the test
allows atol 1e-4 on every weight and 1e-4 on the validation RMSE.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from datasets import synthetic_collab as S
from embedlab import distributed

CONFIG = {"n_factors": 8, "epochs": 2, "bs": 64, "seed": 3, "threads": 1, "device": "cpu"}
DATA = {"users": 60, "items": 40, "ratings": 1500}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(config: dict):
    from embedlab.trainers.collab import CollabTrainer

    return CollabTrainer().train(S.load(**DATA), dict(config), progress=False)


def _worker(rank: int, world: int, port: int, out: str, config: dict) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank)})
    torch.set_num_threads(1)
    try:
        run = _train(config)
        assert distributed.world_size() == world
        metrics = {k: float(v) for k, v in run.metrics.items()}
        torch.save({"tensors": run.tensors(), "metrics": metrics}, Path(out) / f"rank{rank}.pt")
    finally:
        distributed.teardown()


def _spawn(tmp_path: Path, config: dict, world: int = 2) -> list[dict]:
    # fork: the children inherit the imported modules (spawn re-imports torch: ~20 s here)
    mp.start_processes(_worker, args=(world, _free_port(), str(tmp_path), config), nprocs=world,
                       join=True, start_method="fork")
    return [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(world)]


@pytest.fixture(scope="module")
def single():
    return _train(CONFIG)


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path, single):
    ranks = _spawn(tmp_path, CONFIG)
    for name, ref in single.tensors().items():
        for r in ranks:
            torch.testing.assert_close(r["tensors"][name], ref, atol=1e-4, rtol=1e-4)
        assert not torch.equal(ref, torch.zeros_like(ref))
    # validation metrics are reduced across ranks: the same numbers on both, equal to 1 process
    for key in ("valid_rmse", "valid_mae", "valid_loss"):
        if key in single.metrics:
            assert ranks[0]["metrics"][key] == pytest.approx(ranks[1]["metrics"][key], abs=1e-12)
            assert ranks[0]["metrics"][key] == pytest.approx(single.metrics[key], abs=1e-4)


def test_sharded_data_trains_to_a_comparable_model(tmp_path, single):
    """--shard-data: each rank holds half the rows; the order differs, so only the quality
    matches (RMSE within 0.1 of one process), and ranks still agree exactly on the weights."""
    ranks = _spawn(tmp_path, {**CONFIG, "shard_data": True, "epochs": 4})
    one = _train({**CONFIG, "epochs": 4})
    for name in one.tensors():
        torch.testing.assert_close(ranks[0]["tensors"][name], ranks[1]["tensors"][name])
    assert abs(ranks[0]["metrics"]["valid_rmse"] - one.metrics["valid_rmse"]) < 0.1


def test_shard_rows_partitions_every_row_exactly_once(monkeypatch):
    rows = torch.arange(11)
    parts = []
    for r in range(3):
        monkeypatch.setattr(distributed, "active", lambda: True)
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        monkeypatch.setattr(distributed, "world_size", lambda: 3)
        parts.append(distributed.shard_rows([rows], seed=1)[0])
    assert sorted(torch.cat(parts).tolist()) == list(range(11))
    assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1


def test_outside_torchrun_everything_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.setup("cpu") is False
    assert distributed.is_writer() and distributed.world_size() == 1
    assert distributed.all_reduce_mean(2.5) == 2.5


def test_device_option_resolves_and_rejects_missing_cuda():
    from embedlab.errors import UsageError

    assert distributed.resolve_device("cpu").type == "cpu"
    assert distributed.resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA"):
            distributed.resolve_device("cuda")


def test_torchrun_cli_writes_the_run_from_rank_zero_only(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
           "--master-port", str(_free_port()), "-m", "embedlab", "train", "synthetic-collab",
           "--users", "50", "--items", "30", "--ratings", "800", "--epochs", "1", "--bs", "64",
           "--n-factors", "4", "--device", "cpu", "--out", str(out), "-q"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # one rank reported and saved
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["bs"] == 64 and np.isfinite(meta["metrics"]["valid_rmse"])
