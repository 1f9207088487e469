"""embedlab's collab defaults against fastai's ``collab_learner`` (lesson 4/5), on identical rows.

Published figures are on different validation rows: embedlab's ``--split random`` holds out
the first 10 % of ``numpy.random.default_rng(seed).permutation``, fast.ai v1's lesson its own
permutation, and on other random splits the same model scores 0.80-0.82 MSE. This script
trains both on the *same* training and validation rows (MovieLens 100K ``u1``, or one random
90/10 split), one after the other on this machine, and prints the validation MSE/RMSE, the
wall time of each and their ratios, with the machine's load average before and after (a
shared machine slows both, not necessarily equally).

fastai is optional and not a dependency of embedlab (it pulls its own torch build): without
it the script says so and exits 0.

``--model nn`` compares the neural models instead: embedlab's ``--model nn`` against fastai's
``collab_learner(use_nn=True, layers=[100, 50], y_range=(0, 5.5))`` (fastbook chapter 8), both
with ``fit_one_cycle(5, 5e-3, wd=0.1)`` and no other regularisation.

Usage:
  python benchmarks/fastai_collab.py --data-dir ../shared/data/ml-100k --split u1
  python benchmarks/fastai_collab.py --data-dir ../shared/data/ml-100k --split u1 --model nn
  python benchmarks/fastai_collab.py --data-dir ../shared/data/ml-100k --split random --valid-pct 0.1 --seed 42
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time


def fastai_available() -> bool:
    try:
        import fastai  # noqa: F401
    except ImportError:
        return False
    return True


#: the neural model on both sides: fastbook chapter 8's settings
NN_SETTINGS = {"model": "nn", "layers": [100, 50], "y_range": (0.0, 5.5), "reg": 0.0, "wd": 0.1, "lr": 5e-3}


def train_embedlab(dataset, epochs: int, seed: int, model: str = "dot") -> dict:
    from embedlab.registry import trainer_for_dataset

    trainer = trainer_for_dataset(dataset)
    t0 = time.perf_counter()
    extra = NN_SETTINGS if model == "nn" else {}
    run = trainer.train(dataset, {"epochs": epochs, "seed": seed, **extra}, progress=False)
    wall = time.perf_counter() - t0
    return {
        "valid_mse": float(run.metrics["valid_mse"]),
        "valid_rmse": float(run.metrics["valid_rmse"]),
        "seconds": wall,
        "config": {
            k: run.config.get(k)
            for k in ("model", "n_factors", "layers", "reg", "opt", "lr", "wd", "wd_mode", "bs", "epochs", "schedule")
        },
    }


def train_fastai(
    dataset, epochs: int, seed: int, n_factors: int, lr: float, wd: float, bs: int, model: str = "dot"
) -> dict:
    """The lesson's learner: collab_learner(n_factors=50, y_range=(0, 5.5)), fit_one_cycle(5, 5e-3, wd=0.1),
    on exactly embedlab's training and validation rows (fastai's own TabularCollab with fixed splits)."""
    import pandas as pd
    import torch
    from fastai.collab import TabularCollab, collab_learner
    from fastai.tabular.all import Categorify, TransformBlock, set_seed

    roles = dataset.roles
    cols = [roles["user"], roles["item"], roles["rating"]]
    train, valid = dataset.train[cols], dataset.valid[cols]
    frame = pd.concat([train, valid], ignore_index=True)
    frame[cols[2]] = frame[cols[2]].astype("float32")
    splits = (list(range(len(train))), list(range(len(train), len(frame))))
    set_seed(seed, reproducible=True)
    to = TabularCollab(
        frame, [Categorify], cat_names=cols[:2], y_names=[cols[2]], y_block=TransformBlock(), splits=splits
    )
    dls = to.dataloaders(bs=bs)
    if model == "nn":
        learn = collab_learner(dls, use_nn=True, layers=NN_SETTINGS["layers"], y_range=(0, 5.5))
    else:
        learn = collab_learner(dls, n_factors=n_factors, y_range=(0, 5.5))
    t0 = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(epochs, lr, wd=wd)
    wall = time.perf_counter() - t0
    with learn.no_bar():  # keeps --json output clean
        preds, targs = learn.get_preds()
    mse = float(torch.mean((preds.view(-1) - targs.view(-1)) ** 2))
    return {
        "valid_mse": mse,
        "valid_rmse": math.sqrt(mse),
        "seconds": wall,
        "config": {
            "model": "use_nn" if model == "nn" else "dot",
            "n_factors": n_factors,
            "layers": NN_SETTINGS["layers"] if model == "nn" else None,
            "lr": lr,
            "wd": wd,
            "bs": bs,
            "epochs": epochs,
            "schedule": "one-cycle",
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", required=True, help="ml-100k folder (official layout)")
    parser.add_argument("--split", default="u1", help="u1..u5, ua, ub, or random")
    parser.add_argument("--valid-pct", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--fastai-n-factors", type=int, default=50)
    parser.add_argument("--fastai-lr", type=float, default=5e-3)
    parser.add_argument("--fastai-wd", type=float, default=0.1)
    parser.add_argument("--fastai-bs", type=int, default=64)
    parser.add_argument(
        "--model",
        choices=["dot", "nn"],
        default="dot",
        help="dot: embedlab's defaults against collab_learner; nn: --model nn against use_nn=True",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not fastai_available():
        print(
            "fastai is not installed: skipping the side-by-side comparison (it is optional; "
            "`pip install fastai` pulls its own torch build, so use a separate environment)"
        )
        return 0
    import embedlab

    dataset = embedlab.load_dataset(
        "movielens-100k", data_dir=args.data_dir, split=args.split, valid_pct=args.valid_pct, seed=args.seed
    )
    load_before = os.getloadavg()
    ours = train_embedlab(dataset, args.epochs, args.seed, args.model)
    theirs = train_fastai(
        dataset,
        args.epochs,
        args.seed,
        args.fastai_n_factors,
        args.fastai_lr,
        args.fastai_wd,
        args.fastai_bs,
        args.model,
    )
    load_after = os.getloadavg()
    out = {
        "rows": {"split": args.split, "train": len(dataset.train), "valid": len(dataset.valid), "identical": True},
        "embedlab": ours,
        "fastai": theirs,
        "rmse_difference": theirs["valid_rmse"] - ours["valid_rmse"],
        "speed_ratio": theirs["seconds"] / ours["seconds"] if ours["seconds"] else float("nan"),
        "load_average_before_after": [load_before[0], load_after[0]],
        "cores": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(
        f"rows: split {args.split}, {len(dataset.train):,} training and {len(dataset.valid):,} validation "
        f"rows, the same for both"
    )
    for name, r in (("embedlab", ours), ("fastai", theirs)):
        print(
            f"{name:>9}: valid MSE {r['valid_mse']:.4f}, RMSE {r['valid_rmse']:.4f}, {r['seconds']:.1f} s  {r['config']}"
        )
    print(f"fastai - embedlab RMSE: {out['rmse_difference']:+.4f}; fastai takes {out['speed_ratio']:.1f}x as long")
    print(
        f"load average {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} cores "
        f"(a shared machine slows both runs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
