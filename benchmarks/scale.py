"""Scale benchmark: a MovieLens-25M-sized epoch on one machine, fused step vs autograd.

    python benchmarks/scale.py                  # the 25M epoch, both kernels, bandwidth, lower bound
    python benchmarks/scale.py --ratings 3000000 --throughput   # the older per-option rates too

The default run prints, in one process on the same data (``embedlab train synthetic-collab
--users 160000 --items 60000 --ratings 25000000 --epochs 1 --bs 65536``, built once):

* one epoch through the collab trainer's own ``prepare`` + ``Learner.fit`` (validation
  included) with ``--kernel fused`` and with ``--kernel autograd`` (the reference: sparse
  gradients, LazyAdam), each its seconds and valid RMSE, and their ratio;
* the machine's memory bandwidth, measured here (one thread, a large array copy, best of 5);
* the lower bound of the epoch at that bandwidth: the bytes the fused update cannot avoid
  (every distinct row a batch touches: its weights and two Adam moments read and written,
  ``6 (k + 1) 4`` bytes, counted over the epoch's real batches, plus 12 bytes of packed codes
  per rating) and, as a second figure, one fused pass (plus the forward's two row reads per
  rating and the gradient buffer written and read per touched row); the fused epoch's ratio
  to each;
* the load average before and after (the machine is shared: state it next to the figures).

``--throughput`` adds the older comparison (a textbook DataLoader loop and embedlab's options,
``--seconds`` of steps each, rates and ratios against the plain loop measured in the same run);
``--ddp-ratings`` / ``--analyze`` time torchrun and ``embedlab analyze``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
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
from embedlab.trainers.base import torch_threads  # noqa: E402
from embedlab.training import checkpoint  # noqa: E402
from embedlab.trainers.collab import CollabOptions, CollabTrainer, _row_l2  # noqa: E402


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

    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        str(nproc),
        "--master-port",
        str(29500 + nproc),
        "-m",
        "embedlab",
        "train",
        "synthetic-collab",
        "--users",
        str(args.users),
        "--items",
        str(args.items),
        "--ratings",
        str(args.ddp_ratings),
        "--epochs",
        "1",
        "--bs",
        str(args.big_bs),
        "--n-factors",
        str(args.n_factors),
        "--device",
        "cpu",
        "--threads",
        "1",
        "--out",
        str(out),
        "-q",
    ]
    subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads((out / "run.json").read_text())["history"][0]["epoch_seconds"]


def analyze_figures(run: str) -> None:
    """Wall time of ``embedlab analyze RUN --report`` and the report's size."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.html"
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "embedlab", "analyze", run, "--report", str(report)], check=True, capture_output=True
        )
        print(f"analyze {run}: {time.perf_counter() - t0:.1f} s, report {report.stat().st_size / 1e6:.1f} MB")


def memory_bandwidth(mb: int = 512, repeats: int = 5) -> float:
    """GB/s of one thread copying a ``mb`` MB float32 array (bytes read + written), best of
    ``repeats``: the streaming bandwidth one core gets from this machine's memory now."""
    import numpy as np

    src = np.ones(mb * 2**20 // 4, dtype=np.float32)
    dst = np.empty_like(src)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(dst, src)
        best = min(best, time.perf_counter() - t0)
    return 2 * src.nbytes / best / 1e9


def epoch_traffic(learner, n_factors: int) -> tuple[float, float]:
    """(strict bytes, one-fused-pass bytes) of one epoch with the learner's batch size, from the
    distinct rows of each batch of a permutation drawn like the learner's (not its generator:
    the count is the same in distribution and the fit's own draw stays untouched)."""
    import numpy as np

    users, items = (t.numpy() for t in learner.train_inputs)
    n, bs = len(users), learner.bs
    perm = np.random.default_rng(0).permutation(n)
    row = (n_factors + 1) * 4  # a factor row and its bias, float32
    touched = 0
    for s in range(0, n, bs):
        idx = perm[s : s + bs]
        touched += len(np.unique(users[idx])) + len(np.unique(items[idx]))
    strict = touched * 6 * row + n * 12  # weights + 2 moments, read and written; the packed codes
    fused = strict + n * 2 * row + touched * 2 * row  # + the forward's row reads, the gradient buffer
    return float(strict), float(fused)


def kernel_epochs(ds, args) -> None:
    """One epoch of each kernel through the collab trainer (prepare + Learner.fit), the same data."""
    import gc

    from embedlab.training.fused_collab import warm_up

    print(f"  fused kernels compiled or loaded from numba's cache: {warm_up():.1f} s (not in the epoch)", flush=True)
    trainer = CollabTrainer()
    base = {
        **trainer.default_config(),
        "n_factors": args.n_factors,
        "device": "cpu",
        "bs": args.big_bs,
        "sparse": "on",
        "epochs": 1,
        "threads": args.threads,
    }
    if len(ds.train) < 3 * args.big_bs:
        base["schedule"] = "constant"  # one-cycle needs 3 steps
    result, saves = {}, []
    real_save = checkpoint.FitKeeper.save

    def timed_save(self, *a, **kw):
        t0 = time.perf_counter()
        real_save(self, *a, **kw)
        saves.append(time.perf_counter() - t0)

    checkpoint.FitKeeper.save = timed_save  # this process only: the save, timed
    for kernel in ("fused", "autograd"):
        prepared = trainer.prepare(ds, {**base, "kernel": kernel}, progress=False)
        plan = None
        if kernel == "fused":
            strict, one_pass = epoch_traffic(prepared.learner, args.n_factors)
            tmp = tempfile.TemporaryDirectory()
            plan = checkpoint.plan(Path(tmp.name) / "run", base)
            t0 = time.perf_counter()
            plan.dataset = checkpoint.dataset_fingerprint(ds)
            t_fp = time.perf_counter() - t0
        load = os.getloadavg()[0]
        cpu = time.process_time()
        with torch_threads(args.threads):
            fit = prepared.learner.fit(prepared.fit_config, progress=False, checkpoint=plan)
        cpu = time.process_time() - cpu
        row = fit.history[0]
        result[kernel] = (row["epoch_seconds"], row["valid_rmse"], load, os.getloadavg()[0])
        print(
            f"  --kernel {kernel:<8} epoch {row['epoch_seconds']:7.1f} s  ({row['rows_per_second']:,.0f} ratings/s)"
            f"  valid RMSE {row['valid_rmse']:.4f}  (load {load:.1f} -> {os.getloadavg()[0]:.1f}); "
            f"CPU {cpu:.1f} s for the fit (epoch, validation{', checkpoint' if plan else ''}), peak RSS {peak_rss_gb():.2f} GB",
            flush=True,
        )
        del prepared, fit
        gc.collect()
    checkpoint.FitKeeper.save = real_save
    tmp.cleanup()
    (fs, frmse, *_), (ags, armse, *_) = result["fused"], result["autograd"]
    print(
        f"checkpoint (fused run, through train's CheckpointPlan): dataset fingerprint {t_fp:.1f} s once, "
        f"per-epoch save with fsync {saves[0]:.1f} s: {100 * (t_fp + saves[0]) / fs:.0f}% of the epoch "
        f"({100 * saves[0] / fs:.0f}% for each later epoch)",
        flush=True,
    )
    print(
        f"fused vs autograd: {ags / fs:.2f}x faster, valid RMSE {frmse:.4f} vs {armse:.4f} "
        f"(difference {abs(frmse - armse):.1e})",
        flush=True,
    )
    gbps = memory_bandwidth()
    print(
        f"memory bandwidth (one thread, {512} MB copy, best of 5): {gbps:.1f} GB/s (load {os.getloadavg()[0]:.1f})",
        flush=True,
    )
    lb_strict, lb_pass = strict / gbps / 1e9, one_pass / gbps / 1e9
    n = len(ds.train)
    print(
        f"lower bound of the epoch at {gbps:.1f} GB/s: {lb_strict:.1f} s strict traffic "
        f"({strict / n / 1e3:.2f} KB a rating) .. {lb_pass:.1f} s one fused pass ({one_pass / n / 1e3:.2f} KB a rating)"
    )
    print(f"fused epoch / lower bound: {fs / lb_strict:.1f}x strict, {fs / lb_pass:.1f}x one pass", flush=True)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=160_000)
    ap.add_argument("--items", type=int, default=60_000)
    ap.add_argument("--ratings", type=int, default=25_000_000)
    ap.add_argument("--n-factors", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=20.0, help="--throughput: time box per measured loop")
    ap.add_argument("--big-bs", type=int, default=65536, help="batch size of the kernel comparison")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--throughput", action="store_true", help="also the older per-option rates")
    ap.add_argument("--full-epoch", action="store_true", help="--throughput: also one full epoch of the best option")
    ap.add_argument(
        "--ddp-ratings",
        type=int,
        default=0,
        help="also time one epoch of 1- vs 2-process torchrun/DDP (gloo) on this many ratings",
    )
    ap.add_argument("--ddp-only", action="store_true", help="only the DDP comparison (and --analyze)")
    ap.add_argument("--analyze", metavar="RUN", help="also time `embedlab analyze RUN --report` and its size")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(
        f"machine: {os.cpu_count()} cpus, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
        f"(1/5/15 min), torch threads {torch.get_num_threads()}, torch {torch.__version__}"
    )

    if args.ddp_ratings:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            secs = {n: ddp_epoch_seconds(n, args, Path(tmp) / f"ddp{n}") for n in (1, 2)}
        print(
            f"DDP (gloo, {args.ddp_ratings:,} ratings, bs {args.big_bs}): 1 process {secs[1]:.1f} s/epoch, "
            f"2 processes {secs[2]:.1f} s/epoch",
            flush=True,
        )
    if args.analyze:
        analyze_figures(args.analyze)
    if args.ddp_only:
        return
    t0 = time.perf_counter()
    ds = S.load(users=args.users, items=args.items, ratings=args.ratings)
    t_gen = time.perf_counter() - t0
    print(
        f"generate + split: {t_gen:.1f} s, {len(ds.train):,} train rows, dtypes "
        f"{dict(ds.train.dtypes.astype(str))}, peak RSS {peak_rss_gb():.2f} GB",
        flush=True,
    )
    print(f"one epoch, --bs {args.big_bs}, {len(ds.train):,} training ratings, {args.threads} thread(s):", flush=True)
    kernel_epochs(ds, args)
    if args.throughput:
        throughput(ds, args, t_gen)
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)


def throughput(ds, args, t_gen: float) -> None:
    """The older comparison: per-option rates against a textbook DataLoader loop (autograd)."""
    trainer = CollabTrainer()
    config = {**trainer.default_config(), "n_factors": args.n_factors, "device": "cpu", "kernel": "autograd"}
    t0 = time.perf_counter()
    users, items, model, learner, y_range = trainer._prepare(ds, config, progress=False)
    t_prep = time.perf_counter() - t0
    print(
        f"trainer prepare (codes, tensors, model): {t_prep:.1f} s; load total {t_gen + t_prep:.1f} s; "
        f"peak RSS {peak_rss_gb():.2f} GB",
        flush=True,
    )
    train = (*learner.train_inputs, learner.train_target)
    nu, ni = len(users), len(items)
    params = (nu + ni) * (args.n_factors + 1)
    print(
        f"tables: {nu:,} users + {ni:,} items, k = {args.n_factors}: {params / 1e6:.1f}M parameters; "
        f"--sparse auto -> {'sparse' if model.sparse else 'dense'}",
        flush=True,
    )
    # the dense path on the same tensors (--sparse off), as the trainer builds it
    torch.manual_seed(config["seed"])
    dense = Learner(
        DotBias(nu, ni, args.n_factors, y_range, init_std=config["init_std"]),
        train,
        None,
        loss_fn=nn.functional.mse_loss,
        bs=config["bs"],
        seed=config["seed"],
        regularizer=_row_l2(config["reg"]),
    )

    def run_learner(lrn, bs):
        lrn.bs = bs
        return learner_steps(lrn, lrn.make_optimizer(fit_config({**config, "bs": bs}, CollabOptions)))

    print(f"throughput ({args.seconds:.0f} s each, ratings/s, {torch.get_num_threads()} torch thread(s)):")
    rates = {}
    rates["plain DataLoader bs=256"] = timed(
        "plain DataLoader bs=256", dataloader_steps(train, nu, ni, args.n_factors, y_range), args.seconds
    )
    rows = [("embedlab default bs=256", learner, 256), ("embedlab --sparse off bs=256", dense, 256)]
    rows += [(f"embedlab --bs {bs}", learner, bs) for bs in (4096, 16384, args.big_bs)]
    rows += [(f"embedlab --sparse off --bs {args.big_bs}", dense, args.big_bs)]
    for label, lrn, bs in rows:
        rates[label] = timed(label, run_learner(lrn, bs), args.seconds)
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
        fit = lrn.fit(
            fit_config({**config, "bs": bs, "epochs": 1, "schedule": schedule}, CollabOptions), progress=False
        )
        row = fit.history[0]
        print(
            f"full epoch with {best} (Learner.fit, {len(train[0]):,} ratings): {row['epoch_seconds']:.1f} s, "
            f"{row['rows_per_second']:,.0f} ratings/s ({row['rows_per_second'] / base:.1f}x the plain loop)"
        )


if __name__ == "__main__":
    main()
