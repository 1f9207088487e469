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
import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp

from datasets import synthetic_collab as S
from embedlab.training import distributed

CONFIG = {"n_factors": 8, "epochs": 2, "bs": 64, "seed": 3, "threads": 1, "device": "cpu"}
DATA = {"users": 60, "items": 40, "ratings": 1500}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train(config: dict):
    """Train on synthetic DATA; ``loader_shard: True`` loads it as the command line does under
    torchrun --shard-data (the loader keeps this rank's rows only)."""
    from embedlab.trainers.collab import CollabTrainer

    config = dict(config)
    shard = distributed.row_shard(config) if config.pop("loader_shard", False) else None
    return CollabTrainer().train(S.load(**DATA, **({"shard": shard} if shard else {})), config, progress=False)


def _worker(rank: int, world: int, port: int, out: str, config: dict) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "RANK": str(rank),
            "WORLD_SIZE": str(world),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    try:
        run = _train(config)
        assert distributed.world_size() == world
        metrics = {k: float(v) for k, v in run.metrics.items()}
        torch.save(
            {
                "tensors": run.tensors(),
                "metrics": metrics,
                "shard": run.meta["dataset_info"].get("shard"),
                "tables": {t: run.tables[t].metadata[["count", "mean_rating"]].to_numpy() for t in run.tables},
            },
            Path(out) / f"rank{rank}.pt",
        )
    finally:
        distributed.teardown()


def _spawn(tmp_path: Path, config: dict, world: int = 2) -> list[dict]:
    # fork: the children inherit the imported modules (spawn re-imports torch: ~20 s here)
    mp.start_processes(
        _worker, args=(world, _free_port(), str(tmp_path), config), nprocs=world, join=True, start_method="fork"
    )
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


def test_sparse_gradients_under_two_gloo_processes_equal_one_process(tmp_path):
    """--sparse on under DDP (gloo): the sparse gradients are averaged over ranks by gloo's
    sparse all-reduce (not DDP, whose sparse path halved gradients shared between the bias
    tables), so 2 processes equal 1 with the same global batch, as in dense mode."""
    config = {**CONFIG, "sparse": "on"}
    one = _train(config)
    assert one.meta["model"]["sparse"] is True
    ranks = _spawn(tmp_path, config)
    for name, ref in one.tensors().items():
        for r in ranks:
            torch.testing.assert_close(r["tensors"][name], ref, atol=1e-4, rtol=1e-4)
    assert ranks[0]["metrics"]["valid_rmse"] == pytest.approx(one.metrics["valid_rmse"], abs=1e-4)


def test_loader_level_shards_hold_half_the_rows_and_train_like_trainer_level_shards(tmp_path):
    """--shard-data through a loader that takes ``shard``: each of 2 ranks holds only ~1/2 of
    the training rows (plus every validation row), and since it keeps exactly the rows the
    trainer-level shard keeps, in the same order, with the vocabulary unioned over ranks,
    the weights, metrics and entity counts equal the trainer-level sharded run's."""
    config = {**CONFIG, "shard_data": True, "epochs": 2}
    (tmp_path / "t").mkdir()
    (tmp_path / "l").mkdir()
    trainer_level = _spawn(tmp_path / "t", config)
    loader_level = _spawn(tmp_path / "l", {**config, "loader_shard": True})
    n_train = len(S.load(**DATA).train)
    held = [r["shard"]["shard_train_rows"] for r in loader_level]
    assert sum(held) == n_train and max(held) - min(held) <= 1  # ~1/N each, every row once
    for r, rank in enumerate(loader_level):
        assert rank["shard"]["rank"] == r and rank["shard"]["world"] == 2
        assert rank["metrics"]["train_rows"] == n_train  # the run reports the whole set
    assert trainer_level[0]["shard"] is None
    for name, ref in trainer_level[0]["tensors"].items():
        for rank in loader_level:
            torch.testing.assert_close(rank["tensors"][name], ref, atol=1e-6, rtol=1e-6)
    assert loader_level[0]["metrics"]["valid_rmse"] == pytest.approx(
        trainer_level[0]["metrics"]["valid_rmse"], abs=1e-6
    )
    for table, ref in trainer_level[0]["tables"].items():  # counts / mean ratings summed over ranks
        np.testing.assert_allclose(loader_level[0]["tables"][table], ref, rtol=1e-5)


def _ratings(n: int = 3000):
    frame = S.generate(users=70, items=45, ratings=n, seed=5)[0]
    frame["rating"] = frame["rating"].clip(0.5, 5.0)
    return frame


@pytest.mark.parametrize("loader", ["synthetic-collab", "movielens-25m", "ratings-csv"])
@pytest.mark.parametrize("split", ["random", "time", "time-after"])
def test_each_loader_shard_keeps_the_split_and_its_training_rows(tmp_path, monkeypatch, loader, split):
    """Without processes: every rank's loader-level shard has exactly the single-process
    validation rows, and exactly the training rows (in order) the trainer-level shard keeps;
    the shards partition the training rows. Small chunks make the CSV readers take several."""
    from datasets import movielens, ratings_csv
    from embedlab.data import RowShard, shard_positions

    monkeypatch.setattr(movielens, "CSV_CHUNK", 700)
    monkeypatch.setattr(ratings_csv, "CHUNK", 700)
    frame = _ratings()
    if loader == "synthetic-collab":

        def load(**kw):
            return S.load(users=70, items=45, ratings=3000, split=split, seed=5, **kw)
    elif loader == "movielens-25m":
        frame.rename(columns={"user": "userId", "item": "movieId"}).to_csv(tmp_path / "ratings.csv", index=False)
        pd.DataFrame(
            {"movieId": range(1, 46), "title": [f"m{i} (2000)" for i in range(1, 46)], "genres": "Drama"}
        ).to_csv(tmp_path / "movies.csv", index=False)

        def load(**kw):
            return movielens._csv_loader("movielens-25m")(data_dir=tmp_path, split=split, seed=5, **kw)
    else:
        frame.to_csv(tmp_path / "r.tsv", sep="\t", index=False)

        def load(**kw):
            return ratings_csv.load(
                tmp_path / "r.tsv", "user", "item", "rating", "timestamp", split=split, seed=5, **kw
            )

    whole = load()
    world, seed = 3, 11
    seen = []
    for r in range(world):
        part = load(shard=RowShard(r, world, seed))
        pd.testing.assert_frame_equal(part.valid, whole.valid)
        expected = whole.train.iloc[shard_positions(len(whole.train), seed, r, world)].reset_index(drop=True)
        pd.testing.assert_frame_equal(part.train, expected)
        assert part.split == whole.split and part.rating_range == whole.rating_range
        assert part.info["shard"] == {
            "rank": r,
            "world": world,
            "seed": seed,
            "rows": len(frame),
            "train_rows": len(whole.train),
            "valid_rows": len(whole.valid),
            "shard_train_rows": len(part.train),
        }
        assert abs(len(part.train) - len(whole.train) / world) <= 1
        seen.append(part.train)
    together = pd.concat(seen).sort_values(list(whole.train.columns)).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, whole.train.sort_values(list(whole.train.columns)).reset_index(drop=True))


def test_a_shard_for_another_process_is_refused():
    from embedlab.data import RowShard
    from embedlab.errors import UsageError
    from embedlab.trainers.collab import CollabTrainer

    ds = S.load(**DATA, shard=RowShard(1, 2, 3))
    with pytest.raises(UsageError, match="holds only the shard"):
        CollabTrainer().train(ds, dict(CONFIG), progress=False)


def test_row_shard_is_made_only_under_torchrun_with_shard_data(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    got = distributed.row_shard({"shard_data": True, "seed": 9})
    assert got.rank == 1 and got.world == 2 and got.seed == 9
    assert distributed.row_shard({"shard_data": False, "seed": 9}) is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert distributed.row_shard({"shard_data": True}) is None


def test_only_a_loader_that_takes_shard_receives_one(monkeypatch):
    from embedlab.data import RowShard
    from embedlab.registry import get_dataset

    entry = get_dataset("synthetic-collab")
    assert entry.takes_shard
    seen = []
    fake = type(entry)(
        **{**entry.__dict__, "load": lambda seed=42, **kw: seen.append(kw) or S.load(seed=seed), "takes_shard": False}
    )
    fake.load_dataset({}, seed=1, shard=RowShard(0, 2, 1))
    assert seen == [{}]


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
    """Also the command line's --shard-data path: the loader gets the rank's shard."""
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        str(_free_port()),
        "-m",
        "embedlab",
        "train",
        "synthetic-collab",
        "--users",
        "50",
        "--items",
        "30",
        "--ratings",
        "800",
        "--epochs",
        "1",
        "--bs",
        "64",
        "--n-factors",
        "4",
        "--device",
        "cpu",
        "--shard-data",
        "--out",
        str(out),
        "-q",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(printed) == 1  # one rank reported and saved
    meta = json.loads((out / "run.json").read_text())
    assert meta["config"]["bs"] == 64 and np.isfinite(meta["metrics"]["valid_rmse"])
    # --shard-data reached the loader: rank 0 read only its half of the training rows
    shard = meta["dataset_info"]["shard"]
    assert shard["rank"] == 0 and shard["world"] == 2 and shard["rows"] == 800
    assert abs(shard["shard_train_rows"] - shard["train_rows"] / 2) <= 1
    assert meta["metrics"]["train_rows"] == shard["train_rows"] == 720
