"""Collaborative-filtering benchmark on the real MovieLens 100K (EMBEDLAB_DATA_DIR).

Prints, for the default config:
  1. u1 split test RMSE (target <= 0.905) and its training time,
  2. random 10 % split (seed 42) validation MSE (target <= 0.800),
  3. training wall time and ratings/s per epoch, next to a plain PyTorch DataLoader loop of
     the same model measured in the same run (the ratio is what to compare across machines).

Usage: EMBEDLAB_DATA_DIR=../shared/data python benchmarks/collab.py [--seeds 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import embedlab
from embedlab.training import fit_config
from embedlab.training.models import DotBias
from embedlab.trainers.collab import CollabTrainer


def plain_loop(ds, config, epochs: int) -> tuple[float, float]:
    """The textbook loop: DataLoader over (user, item, rating) tuples, same model and optimizer."""
    import pandas as pd

    users = pd.Index(sorted(set(ds.train.user) | set(ds.valid.user)))
    items = pd.Index(sorted(set(ds.train.item) | set(ds.valid.item)))
    data = TensorDataset(torch.tensor(users.get_indexer(ds.train.user)), torch.tensor(items.get_indexer(ds.train.item)),
                         torch.tensor(ds.train.rating.to_numpy(), dtype=torch.float32))
    torch.manual_seed(0)
    torch.set_num_threads(config.get("threads") or torch.get_num_threads())  # same threads as ours
    model = DotBias(len(users), len(items), config["n_factors"], (0.0, 5.5))
    opt = torch.optim.AdamW(model.parameters(), lr=config["lr"], weight_decay=config["wd"])
    loader = DataLoader(data, batch_size=config["bs"], shuffle=True)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, config["lr"], epochs=epochs, steps_per_epoch=len(loader))
    t0 = time.perf_counter()
    for _ in range(epochs):
        for u, i, r in loader:
            loss = nn.functional.mse_loss(model(u, i), r)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    secs = time.perf_counter() - t0
    return secs, len(data) * epochs / secs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds to average the figures over")
    args = parser.parse_args()
    root = os.environ.get("EMBEDLAB_DATA_DIR")
    if not root:
        sys.exit("set EMBEDLAB_DATA_DIR to the folder holding ml-100k/")
    data_dir = Path(root) / "ml-100k"
    trainer = CollabTrainer()
    config = trainer.default_config()
    config.update(fit_config(config, trainer.options).to_config())  # resolve lr/wd defaults
    print(f"default config: {config}")
    print(f"torch threads while training: {config.get('threads') or torch.get_num_threads()}")

    u1 = embedlab.load_dataset("movielens-100k", data_dir=data_dir, split="u1")
    rmses, secs, rps = [], [], []
    for seed in range(args.seeds):
        run = trainer.train(u1, {"seed": seed}, progress=False)
        rmses.append(run.metrics["valid_rmse"])
        secs.append(run.metrics["train_seconds"])
        rps.append(statistics.mean(h["rows_per_second"] for h in run.history))
    print(f"\n1. u1 test RMSE: {statistics.mean(rmses):.4f} (seeds: {', '.join(f'{r:.4f}' for r in rmses)}; "
          f"target <= 0.905)")
    print(f"   training time: {statistics.mean(secs):.2f} s per run (target <= 2.5 s)")

    mses = []
    for seed in range(args.seeds):
        rnd = embedlab.load_dataset("movielens-100k", data_dir=data_dir, split="random", valid_pct=0.1, seed=42)
        run = trainer.train(rnd, {"seed": 42 + seed}, progress=False)
        mses.append(run.metrics["valid_mse"])
    print(f"2. random 10% split (seed 42) valid MSE: {statistics.mean(mses):.4f} "
          f"(model seeds: {', '.join(f'{m:.4f}' for m in mses)}; target <= 0.800)")

    plain_secs, plain_rps = plain_loop(u1, config, config["epochs"])
    ours = statistics.mean(rps)
    print(f"3. ratings/s per epoch: embedlab {ours:,.0f}; plain DataLoader loop {plain_rps:,.0f} "
          f"({plain_secs:.2f} s for {config['epochs']} epochs); ratio {ours / plain_rps:.1f}x")


if __name__ == "__main__":
    main()
