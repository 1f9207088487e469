"""Optimizers, weight decay and learning-rate schedules for :class:`~embedlab.training.learner.Learner`.

torch.optim's own SGD, RMSprop, Adam and AdamW, param group by param group (each a layer group
with its own ``lr`` and ``wd``); weight decay either as an L2 term in the loss or decoupled
(applied before the step, lesson 5's distinction); :class:`LazyAdam` for sparse embedding
gradients; one-cycle, constant and cosine schedules (torch.optim.lr_scheduler).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import torch
from torch import nn

from embedlab.errors import UsageError
from embedlab.training.fitconfig import SPARSE_OPTIMIZERS, FitConfig

RMSPROP_ALPHA = 0.99  # RMSprop's moving average of squared gradients (fastai's sqr_mom)
MOMENTUM_CYCLE = 0.05  # one-cycle moves momentum/beta1 from m+0.05 down to m-0.05 and back


# ---------------------------------------------------------------------------- sparse gradients
def sparse_parameters(model: nn.Module) -> set[int]:
    """``id`` of every parameter whose gradient is sparse: the weights of ``nn.Embedding`` /
    ``nn.EmbeddingBag`` modules built with ``sparse=True``."""
    return {id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse}


# ---------------------------------------------------------------------------- optimizers
def _weight_decay_hook(optimizer: torch.optim.Optimizer, args, kwargs, native: bool) -> None:
    """Before each step: apply each group's decoupled decay (or hand it to torch's AdamW).

    The group's ``wd`` is the one source of truth; torch's own ``weight_decay`` key is derived
    from it here, so changing ``group['wd']`` between steps (per-group wd) just works.
    """
    for group in optimizer.param_groups:
        wd = float(group.get("wd", 0.0))
        decoupled = group.get("wd_mode") == "decoupled"
        if group.get("sparse"):
            group["weight_decay"] = 0.0
            _lazy_weight_decay(group, wd, decoupled)
            continue
        if decoupled and native:
            group["weight_decay"] = wd
            continue
        group["weight_decay"] = 0.0
        if decoupled and wd:
            factor = 1.0 - float(group["lr"]) * wd
            with torch.no_grad():
                for p in group["params"]:
                    if p.grad is not None:
                        p.mul_(factor)


@torch.no_grad()
def _lazy_weight_decay(group: dict, wd: float, decoupled: bool) -> None:
    """Weight decay of a sparse group, on the rows this step's gradient touches only.

    The gradient is coalesced here (one entry per row; SparseAdam would do it anyway, and a
    coalesced tensor is not coalesced again). Decoupled: those rows shrink by ``1 - lr*wd``;
    l2: ``wd * w`` is added to their gradient (the gradient of ``wd/2 * w**2``), so it flows
    through the optimizer like any L2 term. Rows no batch looks up are left alone, like the
    lazy moments of torch.optim.SparseAdam: a dense decay of whole tables at every step is
    exactly the cost sparse mode avoids.
    """
    if not wd:
        return
    factor = 1.0 - float(group["lr"]) * wd
    for p in group["params"]:
        if p.grad is None or not p.grad.is_sparse:
            continue
        grad = p.grad.coalesce()
        p.grad = grad
        rows = grad._indices()[0]
        if decoupled:
            p.index_copy_(0, rows, p.index_select(0, rows).mul_(factor))
        else:
            grad._values().add_(p.index_select(0, rows), alpha=wd)


def adam_state(state: dict, p: torch.Tensor) -> dict:
    """A parameter's Adam state (step, first and second moments), made at its first step: the
    one layout LazyAdam and the fused collab step share, so either can resume the other's."""
    if not state:
        state["step"] = torch.tensor(0.0)
        state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
    return state


class LazyAdam(torch.optim.Optimizer):
    """torch.optim.SparseAdam's update ("lazy" Adam: the moments and weights of the rows a
    sparse gradient touches, nothing else), written with row gathers and scatters
    (``index_select`` / ``index_copy_`` / ``index_add_``) instead of sparse-tensor arithmetic.

    Same math, same state (``step``, ``exp_avg``, ``exp_avg_sq``; tested equal to SparseAdam
    within float rounding); measured 1.2-1.3x faster per training step than SparseAdam at
    MovieLens-25M size (README, Scale), where SparseAdam's ``sparse_mask`` / sparse ``add_``
    were two thirds of a step. Sparse gradients only, as SparseAdam.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        if not lr > 0 or not eps > 0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"LazyAdam: invalid lr {lr}, betas {betas} or eps {eps}")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            lr, eps = float(group["lr"]), float(group["eps"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                if not p.grad.is_sparse:
                    raise RuntimeError("LazyAdam takes sparse gradients only (nn.Embedding(sparse=True))")
                grad = p.grad.coalesce()  # one entry per row (a no-op when already coalesced)
                rows, values = grad._indices()[0], grad._values()
                if rows.numel() == 0:
                    continue
                state = adam_state(self.state[p], p)
                state["step"] += 1
                t = float(state["step"])
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                avg = exp_avg.index_select(0, rows).lerp_(values, 1 - beta1)
                sq = exp_avg_sq.index_select(0, rows).mul_(beta2).addcmul_(values, values, value=1 - beta2)
                exp_avg.index_copy_(0, rows, avg)
                exp_avg_sq.index_copy_(0, rows, sq)
                step_size = lr * math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.index_add_(0, rows, avg.div_(sq.sqrt_().add_(eps)), alpha=-step_size)
        return loss


def _fused(groups: list[dict[str, Any]]) -> dict[str, bool]:
    """``{"fused": True}`` where torch's fused (one kernel per step) Adam/AdamW takes every
    parameter (floating point, on the CPU or CUDA), else nothing. Same update: on ml-100k u1 the
    default fit gives the same valid RMSE to the last digit (0.9088347832799758), ~2.8x faster
    optimizer step measured (issue #27). Its rounding is not the for-each kernel's, so a model
    whose figures were measured without it opts out (``fused_adam = False`` on the model: the
    tabular network, see models.EntityEmbeddingNet)."""
    params = [p for g in groups for p in g["params"]]
    ok = bool(params) and all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return {"fused": True} if ok else {}


def make_optimizer(groups: list[dict[str, Any]], config: FitConfig, fused: bool = True) -> torch.optim.Optimizer:
    """A torch.optim optimizer for param ``groups`` (each with ``params``, ``name``, ``lr``, ``wd``).

    Weight decay never goes through torch's coupled ``weight_decay`` (for SGD, RMSprop and
    Adam that is an L2 gradient term): L2 is a loss term (:func:`l2_penalty`), decoupled decay
    is AdamW's (torch.optim.AdamW, or Adam with ``decoupled_weight_decay``) or, for the SGD
    family and RMSprop, ``p *= 1 - lr*wd`` right before the step, exactly as AdamW does it.

    Groups flagged ``sparse`` (embeddings with sparse gradients, see
    :meth:`Learner.param_groups`) get the optimizer's sparse form: :class:`LazyAdam`
    (torch.optim.SparseAdam's update, faster) for adam/adamw, torch.optim.SGD for sgd, with
    lazy weight decay (:func:`_lazy_weight_decay`).
    A model whose trainable groups mix sparse and dense ones is refused (one torch optimizer
    cannot take both; the collab model makes its biases sparse too). Dense adam/adamw use
    torch's fused implementation where it applies (:func:`_fused`).
    """
    cfg = config.resolved()  # idempotent; fills any default still missing
    groups = [{**g, "wd_mode": cfg.wd_mode, "weight_decay": 0.0} for g in groups]
    lr0 = float(groups[0]["lr"]) if groups else 1e-3
    sparse = [g["name"] for g in groups if g.get("sparse")]
    if sparse:
        dense = [g["name"] for g in groups if not g.get("sparse")]
        if dense:
            raise UsageError(
                f"layer groups {', '.join(sparse)} have sparse gradients and {', '.join(dense)} "
                f"dense ones: one optimizer cannot train both; use --sparse off"
            )
        if cfg.opt in ("adam", "adamw"):
            opt = LazyAdam(groups, lr=lr0, betas=cfg.betas, eps=cfg.eps)
        elif cfg.opt == "sgd":
            opt = torch.optim.SGD(groups, lr=lr0, momentum=0.0)
        else:
            raise UsageError(
                f"--opt {cfg.opt} has no sparse-gradient form in torch.optim; use "
                f"--opt {', '.join(SPARSE_OPTIMIZERS)} or --sparse off"
            )
        native = False
    elif cfg.opt in ("sgd", "momentum"):
        opt = torch.optim.SGD(groups, lr=lr0, momentum=cfg.momentum or 0.0)
        native = False
    elif cfg.opt == "rmsprop":
        opt = torch.optim.RMSprop(groups, lr=lr0, alpha=RMSPROP_ALPHA, eps=cfg.eps, momentum=cfg.momentum)
        native = False
    elif cfg.opt == "adam":
        native = cfg.wd_mode == "decoupled"
        opt = torch.optim.Adam(
            groups,
            lr=lr0,
            betas=cfg.betas,
            eps=cfg.eps,
            decoupled_weight_decay=native,
            **(_fused(groups) if fused else {}),
        )
    elif cfg.opt == "adamw":
        opt = torch.optim.AdamW(
            groups, lr=lr0, betas=cfg.betas, eps=cfg.eps, weight_decay=0.0, **(_fused(groups) if fused else {})
        )
        native = True
    else:  # pragma: no cover - resolved() checked it
        raise UsageError(f"unknown optimizer {cfg.opt!r}")
    opt.register_step_pre_hook(functools.partial(_weight_decay_hook, native=native))
    _weight_decay_hook(opt, (), {}, native)  # torch's weight_decay keys correct from the start
    return opt


def l2_penalty(optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """``sum over l2-mode groups of wd/2 * sum(w**2)`` (None when no group asks for it).

    Whole parameters are penalised, embedding rows the batch did not look up included, as
    the lesson's ``wd * (parameters**2).sum()``; the 1/2 makes its gradient ``wd * w``, so
    under plain SGD it is the same update as decoupled decay. Sparse groups are left out:
    their L2 is added lazily to the looked-up rows' gradient before the step.
    """
    terms = []
    for group in optimizer.param_groups:
        wd = float(group.get("wd", 0.0))
        if group.get("wd_mode") == "l2" and wd and not group.get("sparse"):
            terms.extend(0.5 * wd * p.pow(2).sum() for p in group["params"] if p.requires_grad)
    return torch.stack(terms).sum() if terms else None


def momentum_of(optimizer: torch.optim.Optimizer, group: dict) -> float | None:
    if "betas" in group:
        return float(group["betas"][0])
    m = group.get("momentum")
    return None if m is None else float(m)


def make_scheduler(
    optimizer: torch.optim.Optimizer, config: FitConfig, total_steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """The lr schedule over ``total_steps`` optimizer steps, scaling each group's own max lr.

    One-cycle (fastai's): cosine warm-up from lr/25 to lr over ``pct_start`` of the steps, then
    cosine annealing to lr/25e4; where the optimizer has momentum (SGD momentum > 0, RMSprop
    momentum > 0, Adam's beta1) it moves from m+0.05 to m-0.05 while the lr rises, and back.
    """
    max_lrs = [float(g["lr"]) for g in optimizer.param_groups]
    if config.schedule == "one-cycle":
        if total_steps < 3:
            raise UsageError(
                f"one-cycle needs at least 3 optimizer steps, this fit has {total_steps}; "
                "lower --bs, raise --epochs or use --schedule constant"
            )
        moms = [momentum_of(optimizer, g) for g in optimizer.param_groups]
        cycle = all(m is not None and m > 0 for m in moms)
        pct = min(max(config.pct_start, 1.5 / total_steps), 1.0 - 1.5 / total_steps)
        kwargs: dict[str, Any] = {}
        if cycle:
            kwargs = {
                "max_momentum": [min(m + MOMENTUM_CYCLE, 0.999) for m in moms],
                "base_momentum": [max(m - MOMENTUM_CYCLE, 0.0) for m in moms],
            }
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=max_lrs,
            total_steps=total_steps,
            pct_start=pct,
            div_factor=25.0,
            final_div_factor=1e4,
            cycle_momentum=cycle,
            **kwargs,
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total_steps, eta_min=0.0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
