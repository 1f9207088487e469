"""Scale benchmark: a MovieLens-25M-sized synthetic set on one machine.

    python benchmarks/scale.py                       # 160k users, 60k items, 25M ratings
    python benchmarks/scale.py --ratings 2000000     # quicker

Prints load time, peak RSS, and training throughput (ratings/s) for

* ``embedlab default``: the collab trainer's own Learner step (bs 256, dense AdamW over the
  whole 160k x k tables every step),
* ``embedlab bs=N``: the same Learner with a large batch (``--bs N``, a CLI option today),
* ``sparse bs=N``: ``nn.Embedding(sparse=True)`` + ``torch.optim.SparseAdam`` (only the rows a
  batch touches are read and written; not plumbed into the Learner, see the note),
* ``plain DataLoader``: a textbook ``TensorDataset`` + ``DataLoader(shuffle=True)`` loop with
  the same model and AdamW, bs 256,

all measured in the same process, one after another, for ``--seconds`` each (the rate of a
partial epoch; an epoch's time is ratings / rate), and ratios against the plain loop measured in
the same run, so the machine's load at the time affects all of them alike.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from datasets import synthetic_collab as S  # noqa: E402
from embedlab.learner import fit_config  # noqa: E402
from embedlab.models import DotBias  # noqa: E402
from embedlab.trainers.collab import OPTIONS, CollabTrainer  # noqa: E402


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def timed(label: str, steps, seconds: float, warmup: int = 2) -> float:
    """Run ``steps`` (an iterator yielding rows done per step) for ``seconds``; ratings/s.

    The first ``warmup`` steps (optimizer state allocation, first shuffle) are not timed."""
    for _ in range(warmup):
        next(steps)
    rows, t0 = 0, time.perf_counter()
    for n in steps:
        rows += n
        if time.perf_counter() - t0 > seconds:
            break
    dt = time.perf_counter() - t0
    rate = rows / dt
    print(f"  {label:<28} {rate:>12,.0f} ratings/s  ({rows:,} ratings in {dt:.1f} s)", flush=True)
    return rate


def learner_steps(learner, opt):
    while True:
        for inputs, target in learner._batches():
            learner._step(opt, inputs, target)
            yield len(target)


def sparse_steps(train, n_users, n_items, k, y_range, bs, lr=5e-3):
    """DotBias with sparse embedding gradients and SparseAdam (lazy Adam on touched rows)."""
    model = DotBias(n_users, n_items, k, y_range)
    for name in ("user_emb", "item_emb", "user_bias", "item_bias"):
        old = getattr(model, name)
        new = nn.Embedding(old.num_embeddings, old.embedding_dim, sparse=True)
        new.weight.data.copy_(old.weight.data)
        setattr(model, name, new)
    opt = torch.optim.SparseAdam(list(model.parameters()), lr=lr)
    u, i, r = train
    g = torch.Generator().manual_seed(0)
    while True:
        perm = torch.randperm(len(r), generator=g)
        for s in range(0, len(r), bs):
            idx = perm[s:s + bs]
            uu, ii = u[idx], i[idx]
            pred = model(uu, ii)
            loss = nn.functional.mse_loss(pred, r[idx])
            loss = loss + 0.05 * (model.user_emb(uu).pow(2).sum(1) + model.item_emb(ii).pow(2).sum(1)).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            yield len(idx)


def dataloader_steps(train, n_users, n_items, k, y_range, bs=256):
    from torch.utils.data import DataLoader, TensorDataset

    model = DotBias(n_users, n_items, k, y_range)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.05)
    loader = DataLoader(TensorDataset(*train), batch_size=bs, shuffle=True)
    while True:
        for uu, ii, rr in loader:
            loss = nn.functional.mse_loss(model(uu, ii), rr)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            yield len(rr)


def ddp_epoch_seconds(nproc: int, args, out: Path) -> float:
    """One epoch through ``torchrun --nproc-per-node nproc -m embedlab train`` (gloo on CPU);
    the epoch time rank 0 recorded in run.json."""
    import json
    import subprocess

    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
           "--master-port", str(29500 + nproc), "-m", "embedlab", "train", "synthetic-collab",
           "--users", str(args.users), "--items", str(args.items), "--ratings", str(args.ddp_ratings),
           "--epochs", "1", "--bs", str(args.big_bs), "--n-factors", str(args.n_factors),
           "--device", "cpu", "--threads", "1", "--out", str(out), "-q"]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads((out / "run.json").read_text())["history"][0]["epoch_seconds"]


def analyze_figures(run: str) -> None:
    """Wall time of ``embedlab analyze RUN --report`` and the report's size."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "embedlab", "analyze", run, "--report", str(report)],
                       check=True, capture_output=True)
        print(f"analyze {run}: {time.perf_counter() - t0:.1f} s, report {report.stat().st_size / 1e6:.1f} MB")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=160_000)
    ap.add_argument("--items", type=int, default=60_000)
    ap.add_argument("--ratings", type=int, default=25_000_000)
    ap.add_argument("--n-factors", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0, help="time box per measured loop")
    ap.add_argument("--big-bs", type=int, default=65536)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--full-epoch", action="store_true", help="also time one full epoch of the best option")
    ap.add_argument("--ddp-ratings", type=int, default=0,
                    help="also time one epoch of 1- vs 2-process torchrun/DDP (gloo) on this many ratings")
    ap.add_argument("--ddp-only", action="store_true", help="only the DDP comparison (and --analyze)")
    ap.add_argument("--analyze", metavar="RUN", help="also time `embedlab analyze RUN --report` and its size")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"machine: {os.cpu_count()} cpus, load average {os.getloadavg()[0]:.1f}, torch threads "
          f"{torch.get_num_threads()}, torch {torch.__version__}")

    if args.ddp_ratings:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            secs = {n: ddp_epoch_seconds(n, args, Path(tmp) / f"ddp{n}") for n in (1, 2)}
        print(f"DDP (gloo, {args.ddp_ratings:,} ratings, bs {args.big_bs}): 1 process {secs[1]:.1f} s/epoch, "
              f"2 processes {secs[2]:.1f} s/epoch", flush=True)
    if args.analyze:
        analyze_figures(args.analyze)
    if args.ddp_only:
        return
    t0 = time.perf_counter()
    ds = S.load(users=args.users, items=args.items, ratings=args.ratings)
    t_gen = time.perf_counter() - t0
    print(f"generate + split: {t_gen:.1f} s, {len(ds.train):,} train rows, dtypes "
          f"{dict(ds.train.dtypes.astype(str))}, peak RSS {peak_rss_gb():.2f} GB", flush=True)

    trainer = CollabTrainer()
    config = {**trainer.default_config(), "n_factors": args.n_factors, "device": "cpu"}
    t0 = time.perf_counter()
    users, items, model, learner, y_range = trainer._prepare(ds, config, progress=False)
    t_prep = time.perf_counter() - t0
    print(f"trainer prepare (codes, tensors, model): {t_prep:.1f} s; load total {t_gen + t_prep:.1f} s; "
          f"peak RSS {peak_rss_gb():.2f} GB", flush=True)
    train = (*learner.train_inputs, learner.train_target)
    nu, ni = len(users), len(items)
    del ds

    print(f"throughput ({args.seconds:.0f} s each, ratings/s):")
    rates = {}
    rates["plain DataLoader bs=256"] = timed("plain DataLoader bs=256",
                                             dataloader_steps(train, nu, ni, args.n_factors, y_range),
                                             args.seconds)
    opt = learner.make_optimizer(fit_config(config, OPTIONS))
    rates["embedlab default bs=256"] = timed("embedlab default bs=256", learner_steps(learner, opt),
                                             args.seconds)
    for bs in (4096, args.big_bs):
        learner.bs = bs
        opt = learner.make_optimizer(fit_config({**config, "bs": bs}, OPTIONS))
        rates[f"embedlab --bs {bs}"] = timed(f"embedlab --bs {bs}", learner_steps(learner, opt), args.seconds)
    for bs in (4096, args.big_bs):
        rates[f"sparse+SparseAdam bs={bs}"] = timed(
            f"sparse+SparseAdam bs={bs}", sparse_steps(train, nu, ni, args.n_factors, y_range, bs),
            args.seconds)
    base = rates["plain DataLoader bs=256"]
    best = max(rates, key=rates.get)
    print("ratio to the plain DataLoader loop (same run):")
    for k, v in rates.items():
        print(f"  {k:<28} {v / base:7.1f}x   epoch of {len(train[0]):,} ratings ~ {len(train[0]) / v:,.0f} s")
    print(f"best: {best}")
    print(f"peak RSS after training loops: {peak_rss_gb():.2f} GB")
    if args.full_epoch:
        n = len(train[0])
        t0 = time.perf_counter()
        if best.startswith("sparse"):
            bs = int(best.split("=")[1])
            steps = sparse_steps(train, nu, ni, args.n_factors, y_range, bs)
        else:
            learner.bs = int(best.split()[-1])
            steps = learner_steps(learner, learner.make_optimizer(fit_config({**config, "bs": learner.bs},
                                                                             OPTIONS)))
        done = 0
        for m in steps:
            done += m
            if done >= n:
                break
        print(f"full epoch with {best}: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
