"""The training loop shared by every trainer: one-cycle AdamW, lr finder, progress, seeds.

Batches are made by indexing whole tensors with a shuffled permutation, not by a per-sample
Python DataLoader: for embedding models the loop itself is the hot path.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

Metrics = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and numpy; return a generator for shuffling."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


@dataclass
class FitResult:
    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    final: dict[str, float] = field(default_factory=dict)


def _console():
    from rich.console import Console

    return Console(stderr=True)


class Learner:
    """Trains ``model(*inputs) -> predictions`` against ``target`` with ``loss_fn``.

    :param train: tuple of tensors ``(*inputs, target)`` with equal first dimension.
    :param valid: the same for validation, or None.
    :param metrics: ``metrics(pred, target) -> dict`` on the whole validation set.
    :param regularizer: optional ``regularizer(model, inputs) -> tensor`` added to the loss
        (e.g. an L2 penalty on the embedding rows a batch looked up).
    """

    def __init__(self, model: nn.Module, train: Sequence[torch.Tensor],
                 valid: Sequence[torch.Tensor] | None, loss_fn: Callable, metrics: Metrics | None = None,
                 bs: int = 256, regularizer: Callable | None = None, seed: int = 42) -> None:
        self.model = model
        self.train_inputs, self.train_target = tuple(train[:-1]), train[-1]
        self.valid = None if valid is None else (tuple(valid[:-1]), valid[-1])
        self.loss_fn = loss_fn
        self.metrics = metrics
        self.bs = int(bs)
        self.regularizer = regularizer
        self.seed = seed
        self.generator = seed_everything(seed)

    # ------------------------------------------------------------ pieces
    def _param_groups(self, lr: float, wd: float) -> list[dict[str, Any]]:
        groups = getattr(self.model, "layer_groups", None)
        if groups is None:
            return [{"params": [p for p in self.model.parameters() if p.requires_grad],
                     "lr": lr, "weight_decay": wd, "name": "all"}]
        out = []
        for name, params in groups().items():
            params = [p for p in params if p.requires_grad]
            if params:
                out.append({"params": params, "lr": lr, "weight_decay": wd, "name": name})
        return out

    def make_optimizer(self, lr: float, wd: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(self._param_groups(lr, wd), lr=lr, weight_decay=wd,
                                 betas=(0.9, 0.99), eps=1e-5)

    def _batches(self):
        n = len(self.train_target)
        perm = torch.randperm(n, generator=self.generator)
        for start in range(0, n, self.bs):
            idx = perm[start:start + self.bs]
            yield tuple(t[idx] for t in self.train_inputs), self.train_target[idx]

    def _step(self, opt, inputs, target) -> float:
        pred = self.model(*inputs)
        loss = self.loss_fn(pred, target)
        total = loss if self.regularizer is None else loss + self.regularizer(self.model, inputs)
        opt.zero_grad(set_to_none=True)
        total.backward()
        opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def predict(self, inputs: Sequence[torch.Tensor], bs: int = 65536) -> torch.Tensor:
        self.model.eval()
        n = len(inputs[0])
        outs = [self.model(*(t[i:i + bs] for t in inputs)) for i in range(0, n, bs)]
        return torch.cat(outs) if outs else torch.empty(0)

    def validate(self) -> dict[str, float]:
        if self.valid is None:
            return {}
        inputs, target = self.valid
        pred = self.predict(inputs)
        out = {"valid_loss": float(self.loss_fn(pred, target))}
        if self.metrics is not None:
            out.update(self.metrics(pred, target))
        return out

    # ------------------------------------------------------------ training
    def fit_one_cycle(self, epochs: int, lr: float, wd: float = 0.1, pct_start: float = 0.25,
                      progress: bool = True, on_epoch: Callable[[dict], None] | None = None) -> FitResult:
        """Train with AdamW and a one-cycle schedule (lr warms up to ``lr``, then anneals)."""
        opt = self.make_optimizer(lr, wd)
        steps_per_epoch = math.ceil(len(self.train_target) / self.bs)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=[g["lr"] for g in opt.param_groups], epochs=epochs,
            steps_per_epoch=steps_per_epoch, pct_start=pct_start, div_factor=25.0,
            final_div_factor=1e4, cycle_momentum=True, base_momentum=0.85, max_momentum=0.95)
        result = FitResult()
        bar = _progress(progress)
        t0 = time.perf_counter()
        with bar:
            task = bar.add_task("training", total=epochs * steps_per_epoch, info="")
            for epoch in range(epochs):
                self.model.train()
                te = time.perf_counter()
                total, count = 0.0, 0
                for inputs, target in self._batches():
                    loss = self._step(opt, inputs, target)
                    sched.step()
                    total += loss * len(target)
                    count += len(target)
                    bar.update(task, advance=1, info=f"epoch {epoch + 1}/{epochs} loss {loss:.4f}")
                epoch_seconds = time.perf_counter() - te
                row = {"epoch": epoch + 1, "train_loss": total / max(count, 1),
                       "epoch_seconds": epoch_seconds,
                       "rows_per_second": count / epoch_seconds if epoch_seconds > 0 else float("nan")}
                row.update(self.validate())
                result.history.append(row)
                if progress:
                    bar.console.print(_format_row(row))
                if on_epoch is not None:
                    on_epoch(row)
        result.train_seconds = time.perf_counter() - t0
        result.final = dict(result.history[-1]) if result.history else {}
        return result

    def lr_find(self, start_lr: float = 1e-7, end_lr: float = 10.0, num: int = 100,
                wd: float = 0.1, progress: bool = True) -> "LRFindResult":
        """Exponential lr sweep on training batches; the model is restored afterwards."""
        state = copy.deepcopy(self.model.state_dict())
        opt = self.make_optimizer(start_lr, wd)
        mult = (end_lr / start_lr) ** (1.0 / max(num - 1, 1))
        lrs, losses = [], []
        best, avg, beta = float("inf"), 0.0, 0.98
        self.model.train()
        it = 0
        bar = _progress(progress)
        with bar:
            task = bar.add_task("lr-find", total=num, info="")
            while it < num:
                for inputs, target in self._batches():
                    lr = start_lr * mult ** it
                    for g in opt.param_groups:
                        g["lr"] = lr
                    loss = self._step(opt, inputs, target)
                    avg = beta * avg + (1 - beta) * loss
                    smooth = avg / (1 - beta ** (it + 1))
                    lrs.append(lr)
                    losses.append(smooth)
                    best = min(best, smooth)
                    it += 1
                    bar.update(task, advance=1, info=f"lr {lr:.1e} loss {smooth:.4f}")
                    if it >= num or not math.isfinite(smooth) or smooth > 4 * best:
                        it = num
                        break
        self.model.load_state_dict(state)
        return LRFindResult(lrs=lrs, losses=losses)


@dataclass
class LRFindResult:
    """Loss against learning rate, with the suggestion rules users know."""

    lrs: list[float]
    losses: list[float]

    def suggestions(self) -> dict[str, float]:
        lrs = np.asarray(self.lrs)
        losses = np.asarray(self.losses)
        finite = np.isfinite(losses)
        lrs, losses = lrs[finite], losses[finite]
        if len(lrs) < 5:
            return {}
        i_min = int(np.argmin(losses))
        grads = np.gradient(losses, np.log(lrs))
        # steepest descent before the minimum (skip the noisy first few points)
        lo = min(3, max(i_min - 1, 0))
        i_steep = lo + int(np.argmin(grads[lo:i_min + 1])) if i_min > lo else i_min
        # valley: the middle of the longest stretch of falling loss before the minimum
        falling = grads[: i_min + 1] < 0
        best_len, best_start, run_start = 0, 0, None
        for i, f in enumerate(list(falling) + [False]):
            if f and run_start is None:
                run_start = i
            elif not f and run_start is not None:
                if i - run_start > best_len:
                    best_len, best_start = i - run_start, run_start
                run_start = None
        i_valley = best_start + (2 * best_len) // 3 if best_len else i_steep
        return {"min10": float(lrs[i_min] / 10), "steep": float(lrs[i_steep]),
                "valley": float(lrs[i_valley])}

    def suggested(self, rule: str = "valley") -> float | None:
        return self.suggestions().get(rule)


def _format_row(row: dict[str, float]) -> str:
    parts = [f"epoch {int(row['epoch'])}"]
    for k, v in row.items():
        if k in ("epoch", "epoch_seconds", "rows_per_second"):
            continue
        parts.append(f"{k} {v:.4f}")
    parts.append(f"{row['epoch_seconds']:.1f}s")
    return "  ".join(parts)


class _NullProgress:
    console = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def add_task(self, *a, **k):
        return 0

    def update(self, *a, **k):
        pass


def _progress(enabled: bool):
    if not enabled:
        return _NullProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("{task.fields[info]}"), console=_console(),
                    transient=False)
