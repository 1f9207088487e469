"""Collaborative-filtering benchmark on the real MovieLens 100K (EMBEDLAB_DATA_DIR).

Prints, for the default config:
  1. u1 split test RMSE (target <= 0.905) and its training time,
  2. random 10 % split (seed 42) validation MSE (target <= 0.800),
  3. training wall time and ratings/s per epoch, next to a plain PyTorch DataLoader loop of
     the same model measured in the same run (the ratio is what to compare across machines),
  4. side features (``--preset hybrid``) on u1 beside the default and myFM's Bayesian
     factorization machine (extended configuration, benchmarks/myfm_baseline.py) measured in the
     same run: RMSE at seed 42, over 3 seeds, and training CPU seconds, with the machine's load;
     ``--folds`` adds the 5-fold mean over u1-u5. The myFM row is skipped (with the reason)
     when myfm is not installed (``pip install myfm``).

Usage: EMBEDLAB_DATA_DIR=../shared/data python benchmarks/collab.py [--seeds 3] [--only hybrid] [--folds]
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

sys.path.insert(0, str(Path(__file__).parent))
import myfm_baseline  # noqa: E402
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
    data = TensorDataset(
        torch.tensor(users.get_indexer(ds.train.user)),
        torch.tensor(items.get_indexer(ds.train.item)),
        torch.tensor(ds.train.rating.to_numpy(), dtype=torch.float32),
    )
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
    parser.add_argument("--only", choices=["hybrid"], default=None, help="run section 4 alone")
    parser.add_argument("--folds", action="store_true", help="section 4: add the 5-fold mean over u1-u5")
    args = parser.parse_args()
    root = os.environ.get("EMBEDLAB_DATA_DIR")
    if not root:
        sys.exit("set EMBEDLAB_DATA_DIR to the folder holding ml-100k/")
    data_dir = Path(root) / "ml-100k"
    trainer = CollabTrainer()
    config = trainer.default_config()
    config.update(fit_config(config, trainer.options).to_config())  # resolve lr/wd defaults
    if args.only == "hybrid":
        return hybrid_section(trainer, data_dir, args.folds)
    print(f"default config: {config}")
    print(f"torch threads while training: {config.get('threads') or torch.get_num_threads()}")

    u1 = embedlab.load_dataset("movielens-100k", data_dir=data_dir, split="u1")
    rmses, secs, rps = [], [], []
    for seed in range(args.seeds):
        run = trainer.train(u1, {"seed": seed}, progress=False)
        rmses.append(run.metrics["valid_rmse"])
        secs.append(run.metrics["train_seconds"])
        rps.append(statistics.mean(h["rows_per_second"] for h in run.history))
    print(
        f"\n1. u1 test RMSE: {statistics.mean(rmses):.4f} (seeds: {', '.join(f'{r:.4f}' for r in rmses)}; "
        f"target <= 0.905)"
    )
    print(f"   training time: {statistics.mean(secs):.2f} s per run (target <= 2.5 s)")

    mses = []
    for seed in range(args.seeds):
        rnd = embedlab.load_dataset("movielens-100k", data_dir=data_dir, split="random", valid_pct=0.1, seed=42)
        run = trainer.train(rnd, {"seed": 42 + seed}, progress=False)
        mses.append(run.metrics["valid_mse"])
    print(
        f"2. random 10% split (seed 42) valid MSE: {statistics.mean(mses):.4f} "
        f"(model seeds: {', '.join(f'{m:.4f}' for m in mses)}; target <= 0.800)"
    )

    plain_secs, plain_rps = plain_loop(u1, config, config["epochs"])
    ours = statistics.mean(rps)
    print(
        f"3. ratings/s per epoch: embedlab {ours:,.0f}; plain DataLoader loop {plain_rps:,.0f} "
        f"({plain_secs:.2f} s for {config['epochs']} epochs); ratio {ours / plain_rps:.1f}x"
    )
    hybrid_section(trainer, data_dir, args.folds)


def _load() -> str:
    return "load average " + ", ".join(f"{x:.1f}" for x in os.getloadavg()) + f" on {os.cpu_count()} cores"


def _train(trainer, ds, config: dict) -> tuple[float, float]:
    """(validation RMSE, training CPU seconds: model setup and fit, this process)."""
    t0 = time.process_time()
    run = trainer.train(ds, config, progress=False)
    return run.metrics["valid_rmse"], time.process_time() - t0


def _myfm(ds) -> tuple[float, float] | None:
    import contextlib
    import io
    import warnings

    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):  # its progress bar
        warnings.simplefilter("ignore")
        return myfm_baseline.extended(ds)


def hybrid_section(trainer, data_dir: Path, folds: bool) -> None:
    """4. --preset hybrid vs the default vs myFM's extended configuration, one run, same rows."""
    missing = myfm_baseline.available()
    print(f"\n4. side features, implicit feedback and the rating day (u1; {_load()} at the start)")
    hp = trainer.resolve_config({"preset": "hybrid"})
    print(
        "   hybrid preset: "
        + ", ".join(
            f"{k}={hp[k]}"
            for k in ("features", "n_factors", "members", "epochs", "bs", "lr", "wd", "bias_wd", "reg", "init_std")
        )
    )
    u1 = embedlab.load_dataset("movielens-100k", data_dir=data_dir, split="u1")
    rows = []
    d_rmse, d_cpu = _train(trainer, u1, {"seed": 42})
    rows.append(("embedlab default (ids), seed 42", d_rmse, d_cpu))
    hyb = [_train(trainer, u1, {"preset": "hybrid", "seed": s}) for s in (42, 1, 2)]
    rows.append(("embedlab --preset hybrid, seed 42", *hyb[0]))
    rows.append(
        (
            "embedlab --preset hybrid, mean of seeds 42,1,2",
            statistics.mean(r for r, _ in hyb),
            statistics.mean(c for _, c in hyb),
        )
    )
    print(f"   hybrid per seed (42, 1, 2): {', '.join(f'{r:.4f}' for r, _ in hyb)}")
    fm = _myfm(u1) if missing is None else None
    if fm is not None:
        rows.append(("myFM Gibbs FM, extended (rank 10, 512 samples)", *fm))
    width = max(len(r[0]) for r in rows)
    print(f"   {'u1 test RMSE':>{width + 14}}  training CPU s")
    for name, rmse, cpu in rows:
        print(f"   {name:<{width}}  {rmse:12.4f}  {cpu:14.1f}")
    if fm is None:
        print(f"   myFM row skipped: {missing}")
    else:
        print(
            f"   hybrid/myFM: RMSE {hyb[0][0] - fm[0]:+.4f} at seed 42, "
            f"{statistics.mean(r for r, _ in hyb) - fm[0]:+.4f} over 3 seeds; "
            f"CPU ratio {statistics.mean(c for _, c in hyb) / fm[1]:.2f}x"
        )
    print(f"   target: hybrid <= 0.880 at seed 42 and over 3 seeds; {_load()} at the end")
    if not folds:
        return
    per = {"default": [], "hybrid": [], "myfm": []}
    for k in range(1, 6):
        ds = u1 if k == 1 else embedlab.load_dataset("movielens-100k", data_dir=data_dir, split=f"u{k}")
        per["default"].append(d_rmse if k == 1 else _train(trainer, ds, {"seed": 42})[0])
        per["hybrid"].append(hyb[0][0] if k == 1 else _train(trainer, ds, {"preset": "hybrid", "seed": 42})[0])
        if fm is not None:
            per["myfm"].append(fm[0] if k == 1 else _myfm(ds)[0])
    for name, values in per.items():
        if values:
            print(
                f"   5-fold mean u1-u5, {name}: {statistics.mean(values):.4f} ({', '.join(f'{v:.4f}' for v in values)})"
            )
    print(f"   {_load()} at the end")


if __name__ == "__main__":
    main()
