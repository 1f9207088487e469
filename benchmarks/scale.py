"""Scale benchmark: a MovieLens-25M-sized synthetic set on one machine.

    python benchmarks/scale.py                       # 160k users, 60k items, 25M ratings
    python benchmarks/scale.py --ratings 3000000     # quicker: the rates per rating barely move

Prints load time, peak RSS, and training throughput (ratings/s) of

* ``plain DataLoader bs=256``: a textbook ``TensorDataset`` + ``DataLoader(shuffle=True)`` loop
  with the same model, dense AdamW (wd 0.05), bs 256: the yardstick;
* ``embedlab default bs=256``: the collab trainer's own Learner step with its defaults, which
  now includes ``--sparse auto``: at this size (22M table parameters > 5M) sparse embedding
  gradients + torch.optim.SparseAdam, lazy decoupled decay, row-L2 on the looked-up rows;
* ``embedlab --sparse off bs=256``: the dense path (what the default was before: a dense AdamW
  update of the whole 160k x k + 60k x k tables at every step);
* ``embedlab --bs N`` (sparse auto) and ``embedlab --sparse off --bs N``: larger batches;
* ``fused lazy Adam bs=N`` (benchmark only, not in embedlab): a hand-written step with the
  gradients worked out by hand (no autograd) and Adam applied to the looked-up rows, the same
  math as the sparse path, to see what bypassing autograd and sparse tensors would buy;

all measured in the same process, one after another, for ``--seconds`` each (the rate of a
partial epoch; an epoch's time is ratings / rate), and ratios against the plain loop measured in
the same run, so the machine's load at the time affects all of them alike. ``--full-epoch`` then
trains one whole epoch of the best embedlab option through ``Learner.fit`` (validation
included), the number a user gets.
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
from embedlab.training import Learner, fit_config  # noqa: E402
from embedlab.training.models import DotBias  # noqa: E402
from embedlab.trainers.collab import OPTIONS, CollabTrainer, _row_l2  # noqa: E402


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
    print(f"  {label:<42} {rate:>12,.0f} ratings/s  ({rows:,} ratings in {dt:.1f} s)", flush=True)
    return rate


def learner_steps(learner, opt):
    """The Learner's own batches and step (what ``fit`` runs, minus the schedule)."""
    while True:
        for inputs, target in learner._batches():
            learner._step(opt, inputs, target)
            yield len(target)


def fused_steps(train, n_users, n_items, k, y_range, bs, reg=0.05, lr=5e-3, wd=0.05,
                betas=(0.9, 0.99), eps=1e-5):
    """DotBias + row-L2 + lazy AdamW by hand: gradients of the batch's rows computed directly
    (no autograd, no sparse tensors), then Adam on the unique looked-up rows only."""
    model = DotBias(n_users, n_items, k, y_range)
    tables = [model.user_emb.weight.data, model.item_emb.weight.data, model.user_bias.weight.data,
              model.item_bias.weight.data]
    m1 = [torch.zeros_like(t) for t in tables]
    m2 = [torch.zeros_like(t) for t in tables]
    lo, hi = y_range
    b1, b2 = betas
    u, i, r = train
    g = torch.Generator().manual_seed(0)
    t = 0

    def adam_rows(j, idx, grad):
        rows, inv = torch.unique(idx, return_inverse=True)
        summed = torch.zeros(len(rows), grad.shape[1]).index_add_(0, inv, grad)
        p = tables[j]
        p.index_copy_(0, rows, p.index_select(0, rows).mul_(1 - lr * wd))
        avg = m1[j].index_select(0, rows).lerp_(summed, 1 - b1)
        sq = m2[j].index_select(0, rows).mul_(b2).addcmul_(summed, summed, value=1 - b2)
        m1[j].index_copy_(0, rows, avg)
        m2[j].index_copy_(0, rows, sq)
        step = avg.div_(sq.sqrt_().div_((1 - b2 ** t) ** 0.5).add_(eps)).mul_(-lr / (1 - b1 ** t))
        p.index_add_(0, rows, step)

    while True:
        perm = torch.randperm(len(r), generator=g)
        for s in range(0, len(r), bs):
            idx = perm[s:s + bs]
            uu, ii, y = u[idx], i[idx], r[idx]
            n = len(idx)
            U, I = tables[0].index_select(0, uu), tables[1].index_select(0, ii)
            z = (U * I).sum(1) + tables[2].index_select(0, uu).squeeze(1) + tables[3].index_select(0, ii).squeeze(1)
            sig = torch.sigmoid(z)
            dz = (2.0 / n) * (sig * (hi - lo) + lo - y) * sig * (1 - sig) * (hi - lo)
            gU = torch.addcmul(U * (2 * reg / n), I, dz[:, None])
            gI = torch.addcmul(I * (2 * reg / n), U, dz[:, None])
            t += 1
            adam_rows(0, uu, gU)
            adam_rows(1, ii, gI)
            adam_rows(2, uu, dz[:, None])
            adam_rows(3, ii, dz[:, None])
            yield n


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
    params = (nu + ni) * (args.n_factors + 1)
    print(f"tables: {nu:,} users + {ni:,} items, k = {args.n_factors}: {params / 1e6:.1f}M parameters; "
          f"--sparse auto -> {'sparse' if model.sparse else 'dense'}", flush=True)
    del ds
    # the dense path on the same tensors (--sparse off), as the trainer builds it
    torch.manual_seed(config["seed"])
    dense = Learner(DotBias(nu, ni, args.n_factors, y_range, init_std=config["init_std"]), train, None,
                    loss_fn=nn.functional.mse_loss, bs=config["bs"], seed=config["seed"],
                    regularizer=_row_l2(config["reg"]))

    def run_learner(lrn, bs):
        lrn.bs = bs
        return learner_steps(lrn, lrn.make_optimizer(fit_config({**config, "bs": bs}, OPTIONS)))

    print(f"throughput ({args.seconds:.0f} s each, ratings/s, {torch.get_num_threads()} torch thread(s)):")
    rates = {}
    rates["plain DataLoader bs=256"] = timed("plain DataLoader bs=256",
                                             dataloader_steps(train, nu, ni, args.n_factors, y_range),
                                             args.seconds)
    rows = [("embedlab default bs=256", learner, 256), ("embedlab --sparse off bs=256", dense, 256)]
    rows += [(f"embedlab --bs {bs}", learner, bs) for bs in (4096, 16384, args.big_bs)]
    rows += [(f"embedlab --sparse off --bs {args.big_bs}", dense, args.big_bs)]
    for label, lrn, bs in rows:
        rates[label] = timed(label, run_learner(lrn, bs), args.seconds)
    for bs in (16384, args.big_bs):
        label = f"fused lazy Adam bs={bs} (not in embedlab)"
        rates[label] = timed(label, fused_steps(train, nu, ni, args.n_factors, y_range, bs), args.seconds)
    base = rates["plain DataLoader bs=256"]
    ours = {k: v for k, v in rates.items() if k.startswith("embedlab")}
    best = max(ours, key=ours.get)
    print("ratio to the plain DataLoader loop (same run):")
    for k, v in rates.items():
        print(f"  {k:<42} {v / base:8.1f}x   epoch of {len(train[0]):,} ratings ~ {len(train[0]) / v:,.0f} s")
    print(f"best embedlab option: {best}")
    print(f"peak RSS after training loops: {peak_rss_gb():.2f} GB", flush=True)
    print(f"load average now {os.getloadavg()[0]:.1f}", flush=True)
    if args.full_epoch:
        lrn = dense if "--sparse off" in best else learner
        bs = 256 if "default" in best else int(best.split()[-1].split("=")[-1])
        schedule = "one-cycle" if len(train[0]) >= 3 * bs else "constant"  # one-cycle needs 3 steps
        fit = lrn.fit(fit_config({**config, "bs": bs, "epochs": 1, "schedule": schedule}, OPTIONS), progress=False)
        row = fit.history[0]
        print(f"full epoch with {best} (Learner.fit, {len(train[0]):,} ratings): {row['epoch_seconds']:.1f} s, "
              f"{row['rows_per_second']:,.0f} ratings/s ({row['rows_per_second'] / base:.1f}x the plain loop)")

if __name__ == "__main__":
    main()
