"""The training loop shared by every trainer: optimizers, weight decay, schedules, lr finder.

Lesson 5 builds SGD, momentum, RMSProp and Adam by hand, explains why L2 regularisation and
weight decay differ once momentum is involved, and ends with one-cycle. This module offers
each of those choices to every trainer through torch.optim's own implementations:

* :func:`fit_options` makes the shared click options (``--epochs --lr --wd --bs --seed --opt
  --momentum --betas --eps --wd-mode --schedule``), defined once in :mod:`embedlab.training.fitconfig`
  (torch-free, so the CLI builds without importing torch; every name is re-exported here); a
  trainer lists them next to its model options with its own defaults.
* :class:`FitConfig` is what those options mean; :func:`fit_config` turns a trainer's config
  dict into one (resolving the per-optimizer defaults) and :meth:`Learner.fit` consumes it.
* Every optimizer param group is one of the model's layer groups (``model.layer_groups()``,
  an ordered ``name -> params`` mapping) and carries its ``name``, its own ``lr`` and ``wd``,
  so freezing and discriminative learning rates act per group; schedules scale each group's
  own maximum lr.
* Freezing (``--freeze GROUPS``, ``--freeze-to N``; :meth:`Learner.freeze`,
  :meth:`Learner.unfreeze`, :meth:`Learner.freeze_to`): a frozen group's parameters get
  ``requires_grad=False`` and no optimizer param group, so they receive no gradient, no
  optimizer state and no weight decay (of either mode), and the batch-norm layers whose
  parameters are all frozen keep their running statistics: the group's tensors come out of
  training bit-identical.
* Discriminative learning rates (``--lr LO:HI``, :class:`LRSlice`), fastai's ``slice``
  semantics over the model's layer groups in order (frozen ones count):

  - ``--lr LO:HI``: geometric from LO (the earliest group) to HI (the last), i.e. group i of
    n gets ``LO * (HI/LO) ** (i/(n-1))``; ``--lr HI:HI`` is one lr for every group.
  - ``--lr :HI``: fastai's ``slice(HI)``: the last group HI, every earlier group HI/10.
  - ``--lr HI`` (a plain number): every group HI when training from scratch; when the run
    starts from pretrained tables (``--init-from``) and freezes nothing, it is read as
    ``:HI`` (fastai's ``slice(HI)``: the pretrained, earlier groups at HI/10). With
    ``--freeze`` it stays one lr for every trainable group, as fastai's ``fit(lr)`` after
    ``freeze()``.
  - a model with one group takes HI in every form.

* Sparse embedding gradients (``--sparse``, :func:`sparse_option`, :func:`resolve_sparse`):
  a model whose ``nn.Embedding`` tables are built with ``sparse=True`` gets param groups
  flagged ``sparse`` and the optimizer's sparse form (:class:`LazyAdam`, torch.optim.SparseAdam's
  update, for adam/adamw; SGD for sgd), with lazy weight decay on the looked-up rows; schedules, freezing and per-group
  lrs work as for dense groups.

Batches are made by indexing whole tensors with a shuffled permutation, not by a per-sample
Python DataLoader: for embedding models the loop itself is the hot path.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from embedlab.errors import UsageError
from embedlab.training.callbacks import (MAX_STEP_POINTS, Callback, CancelFit, Checkpoint,  # noqa: F401
                                         Divergence, EpochHook, FitResult, LRFinder, Progress, Recorder, Schedule,
                                         diverged, format_row)
from embedlab.training.lr_find import LRFindResult
from embedlab.training.optim import l2_penalty, make_optimizer, sparse_parameters
from embedlab.training.fitconfig import DEFAULT_LR_RATIO, FitConfig, LRSlice

Metrics = Callable[[torch.Tensor, torch.Tensor], dict[str, float]]


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch and numpy; return a generator for shuffling."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def autograd_step(learn: "Learner", opt: torch.optim.Optimizer, inputs: Sequence[torch.Tensor],
                  target: torch.Tensor) -> float:
    """The default step: forward, loss (+ the regularizer, + the L2 term of ``wd_mode l2``),
    backward, optimizer step. Returns the batch's data loss (without the penalties)."""
    pred = learn._forward_module()(*inputs)
    loss = learn.loss_fn(pred, target)
    total = loss if learn.regularizer is None else loss + learn.regularizer(learn.model, inputs)
    penalty = l2_penalty(opt)
    if penalty is not None:
        total = total + penalty
    opt.zero_grad(set_to_none=True)
    total.backward()
    learn._reduce_grads()
    opt.step()
    return learn._reduce_loss(float(loss.detach()))


def shuffled_batches(learn: "Learner"):
    """The default batches: the training rows in a new random order each epoch (the learner's
    seeded generator), ``bs`` at a time, by indexing whole tensors (no per-sample DataLoader:
    for embedding models the loop itself is the hot path)."""
    n = len(learn.train_target)
    perm = torch.randperm(n, generator=learn.generator)
    for start in range(0, n, learn.bs):
        idx = perm[start:start + learn.bs]
        yield tuple(t[idx] for t in learn.train_inputs), learn.train_target[idx]



#: called with every fit's epoch row in this process (a run group's worker reports its
#: member's epochs to the parent: embedlab.engines.runs); set by :func:`listen_to_epochs`
_epoch_listener: Callable[[dict], None] | None = None


def listen_to_epochs(fn: Callable[[dict], None] | None) -> Callable[[dict], None] | None:
    """Call ``fn(row)`` after every epoch of every fit in this process (None: stop); returns
    the listener it replaces."""
    global _epoch_listener
    before, _epoch_listener = _epoch_listener, fn
    return before

class Learner:
    """Trains ``model(*inputs) -> predictions`` against ``target`` with ``loss_fn``.

    :param train: tuple of tensors ``(*inputs, target)`` with equal first dimension.
    :param valid: the same for validation, or None.
    :param metrics: ``metrics(pred, target) -> dict`` on the whole validation set.
    :param regularizer: optional ``regularizer(model, inputs) -> tensor`` added to the loss
        (e.g. an L2 penalty on the embedding rows a batch looked up).

    :meth:`fit` is a loop of events (:mod:`embedlab.training.callbacks`); what happens at each
    comes from callbacks. Two attributes are the places to replace how it trains:

    - ``learn.step = my_step``: ``my_step(learn, opt, inputs, target) -> float`` does one
      optimisation step on a batch and returns its data loss (default :func:`autograd_step`;
      the collab trainer's fused sparse step, :class:`embedlab.training.fused_collab.FusedCollabStep`,
      plugs in here);
    - ``learn.batches = my_batches``: ``my_batches(learn)`` yields ``(inputs, target)`` for one
      epoch (default :func:`shuffled_batches`).
    """

    #: one optimisation step on a batch: ``step(learn, opt, inputs, target) -> data loss``
    step: Callable[..., float] = staticmethod(autograd_step)
    #: one epoch's batches: ``batches(learn) -> iterator of (inputs, target)``
    batches: Callable[..., Any] = staticmethod(shuffled_batches)

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
        #: where the model's tables were initialised from (set by :func:`embedlab.training.pretrained.init_from_config`)
        self.init: dict[str, Any] | None = None
        #: the optimizer of the latest fit (what ``learn.save`` keeps with the model)
        self.opt: torch.optim.Optimizer | None = None

    # ------------------------------------------------------------ pieces
    def layer_groups(self) -> dict[str, list[nn.Parameter]]:
        """The model's named layer groups (one group ``all`` when it defines none)."""
        groups = getattr(self.model, "layer_groups", None)
        if groups is None:
            return {"all": list(self.model.parameters())}
        return dict(groups())

    # ------------------------------------------------------------ freezing
    @property
    def frozen_groups(self) -> list[str]:
        """Layer groups none of whose parameters train."""
        return [name for name, params in self.layer_groups().items()
                if params and not any(p.requires_grad for p in params)]

    def freeze_groups(self, names: Sequence[str]) -> None:
        """Freeze exactly the layer groups ``names``; every other group trains."""
        groups = self.layer_groups()
        unknown = [n for n in names if n not in groups]
        if unknown:
            raise UsageError(f"--freeze {','.join(names)}: the model has no layer group "
                             f"{unknown[0]!r}; its groups are: {', '.join(groups)}")
        for name, params in groups.items():
            for p in params:
                p.requires_grad_(name not in names)

    def freeze_to(self, n: int) -> None:
        """fastai's ``freeze_to(n)``: freeze the first ``n`` layer groups, train the rest
        (negative ``n`` counts from the end: ``freeze_to(-1)`` trains the last group only)."""
        names = list(self.layer_groups())
        if not -len(names) <= int(n) <= len(names):
            raise UsageError(f"--freeze-to {n}: the model has {len(names)} layer groups "
                             f"({', '.join(names)})")
        self.freeze_groups(names[:int(n)])

    def freeze(self) -> None:
        """Freeze every layer group but the last (fastai's ``freeze()``)."""
        self.freeze_to(-1)

    def unfreeze(self) -> None:
        """Train every layer group."""
        self.freeze_to(0)

    def _hold_frozen_norms(self) -> None:
        """Batch-norm layers whose parameters are all frozen stop updating their running
        statistics (eval mode), so a frozen group's tensors stay bit-identical."""
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                params = list(module.parameters(recurse=False))
                if params and not any(p.requires_grad for p in params):
                    module.eval()

    def group_lrs(self, lr: float | Mapping[str, float] | LRSlice) -> dict[str, float]:
        """The max lr of every layer group (frozen ones included) for an lr spec."""
        layer_groups = self.layer_groups()
        if isinstance(lr, LRSlice):
            return dict(zip(layer_groups, lr.spread(len(layer_groups))))
        if isinstance(lr, Mapping):
            unknown = sorted(set(lr) - set(layer_groups))
            missing = sorted(set(layer_groups) - set(lr))
            if unknown or missing:
                raise UsageError(f"per-group lr: unknown groups {unknown}, missing groups {missing}; "
                                 f"the model's groups are {list(layer_groups)}")
            return {name: float(lr[name]) for name in layer_groups}
        return {name: float(lr) for name in layer_groups}

    def param_groups(self, lr: float | Mapping[str, float] | LRSlice, wd: float) -> list[dict[str, Any]]:
        """One optimizer param group per layer group with trainable parameters.

        Each carries ``name``, its max ``lr`` (``lr`` may map group names to lrs, or be an
        :class:`LRSlice` spread over every group, frozen ones counted) and ``wd`` (the model's
        ``group_wd`` mapping, where it has one, overrides ``wd`` for the groups it names). A group whose
        parameters all get sparse gradients (:func:`sparse_parameters`) also carries
        ``sparse=True``, which :func:`make_optimizer` turns into the optimizer's sparse form.
        """
        layer_groups = self.layer_groups()
        lrs = self.group_lrs(lr)
        sparse_ids = sparse_parameters(self.model)
        group_wd = getattr(self.model, "group_wd", None) or {}  # a model's per-group wd, e.g. {"biases": 0}
        out = []
        for name, params in layer_groups.items():
            params = [p for p in params if p.requires_grad]
            if params:
                group_lr = lrs[name]
                group = {"params": params, "name": name, "lr": group_lr, "wd": float(group_wd.get(name, wd))}
                n_sparse = sum(id(p) in sparse_ids for p in params)
                if n_sparse:
                    if n_sparse != len(params):
                        raise UsageError(f"layer group {name!r} mixes sparse-gradient embeddings with dense "
                                         f"parameters; one optimizer group cannot train both")
                    group["sparse"] = True
                out.append(group)
        if not out:
            raise UsageError("nothing to train: every parameter is frozen")
        return out

    def make_optimizer(self, config: FitConfig | float, wd: float | None = None) -> torch.optim.Optimizer:
        """The configured optimizer over this model's layer groups.

        ``make_optimizer(lr, wd)`` (the old call) means AdamW with decoupled decay.
        """
        if not isinstance(config, FitConfig):
            config = FitConfig(lr=float(config), wd=0.1 if wd is None else wd, opt="adamw")
        config = config.resolved()
        return make_optimizer(self.param_groups(config.lr, config.wd), config,
                              fused=getattr(self.model, "fused_adam", True))

    def _batches(self):
        """This epoch's batches (``self.batches``; DistributedLearner splits them across ranks)."""
        return self.batches(self)

    def _forward_module(self) -> nn.Module:
        """The module that runs the forward pass (DistributedLearner returns its DDP wrapper)."""
        return self.model

    def _reduce_loss(self, loss: float) -> float:
        """The batch loss to report (DistributedLearner averages it across processes)."""
        return loss

    def _reduce_grads(self) -> None:
        """After backward, before the step: nothing here (DistributedLearner averages the
        sparse gradients that it does not leave to DDP)."""

    def _step(self, opt, inputs, target) -> float:
        """One step on a batch (``self.step``); returns the batch's data loss."""
        return self.step(self, opt, inputs, target)

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
    def __call__(self, event: str) -> None:
        """Run ``event`` on every callback of the current fit, in order."""
        for cb in self.cbs:
            cb(event)

    def _fit(self, config: FitConfig, cbs: Sequence[Callback]) -> None:
        """The loop of events (module docstring of :mod:`embedlab.training.callbacks`)."""
        self.cbs = sorted(cbs, key=lambda cb: cb.order)
        for cb in self.cbs:
            cb.learn = self
        self.config, self.first_epoch, self.n_step = config, 0, 0
        self.total_steps = config.epochs * math.ceil(len(self.train_target) / self.bs)
        try:
            self("before_fit")
            for self.epoch in range(self.first_epoch, config.epochs):
                self.model.train()
                self._hold_frozen_norms()
                self("before_epoch")
                for self.inputs, self.target in self._batches():
                    self("before_batch")
                    self.loss = self._step(self.opt, self.inputs, self.target)
                    self.n_step += 1
                    self("after_step")
                self("after_epoch")
            self("after_fit")
        except CancelFit:
            self("after_cancel_fit")
        finally:
            self("cleanup_fit")
            self.cbs = []

    def fit(self, config: FitConfig | None = None, progress: bool = True,
            on_epoch: Callable[[dict], None] | None = None, checkpoint: Any = None,
            cbs: Sequence[Callback] = (), **changes: Any) -> FitResult:
        """Train as ``config`` says (keyword ``changes`` override its fields); returns the
        :class:`FitResult` its :class:`~embedlab.training.callbacks.Recorder` kept.

        ``checkpoint``: a :class:`embedlab.training.checkpoint.CheckpointPlan` (``embedlab train``
        makes one per run): this fit then saves a checkpoint after every epoch and, under
        ``--resume``, starts from the saved one. ``on_epoch(row)`` is called after every epoch;
        ``cbs`` are more callbacks (:mod:`embedlab.training.callbacks`).

        The training loss in the history is the data loss only; an L2 term is added for the
        gradient but not reported, so runs with different weight-decay modes compare directly.
        """
        config = (config or FitConfig()).replace(**changes).resolved()
        self._prepare(config)
        self.opt = self.make_optimizer(config)
        own = [Schedule(), Recorder(), Divergence(), Progress(progress)]
        own += [Checkpoint(checkpoint)] if checkpoint is not None else []
        own += [EpochHook(on_epoch)] if on_epoch is not None else []
        own += [EpochHook(_epoch_listener)] if _epoch_listener is not None else []
        self._fit(config, own + list(cbs))
        return self.result

    def _prepare(self, config: FitConfig) -> None:
        """The batch size, freezing and ``--init-from`` check of a fit that starts."""
        if config.bs:
            self.bs = int(config.bs)
        if config.init_from and self.init is None:
            raise UsageError(f"--init-from {config.init_from}: this trainer does not initialise its tables "
                             f"from pretrained vectors (it never called embedlab.training.pretrained.init_from_config)")
        if config.freeze is not None:
            self.freeze_groups(config.freeze)
        elif config.freeze_to is not None:
            self.freeze_to(config.freeze_to)

    def fit_one_cycle(self, epochs: int, lr: float, wd: float = 0.1, pct_start: float = 0.25,
                      progress: bool = True, on_epoch: Callable[[dict], None] | None = None,
                      **changes: Any) -> FitResult:
        """One-cycle with AdamW unless ``changes`` say otherwise (``opt=``, ``wd_mode=``...)."""
        config = FitConfig(epochs=epochs, lr=lr, wd=wd, pct_start=pct_start, schedule="one-cycle",
                           opt=changes.pop("opt", "adamw"))
        return self.fit(config, progress=progress, on_epoch=on_epoch, **changes)

    def lr_find(self, start_lr: float | None = None, end_lr: float | None = None, num: int = 100,
                wd: float | None = None, progress: bool = True,
                config: FitConfig | None = None) -> "LRFindResult":
        """Exponential lr sweep on training batches with the configured optimizer.

        The default sweep is 1e-7 .. 10 for adamw, moved by the optimizer's
        :data:`DEFAULT_LR_RATIO` (SGD's useful lrs are ~2000x larger and would not be reached).
        Every layer group gets the same lr at each step; the model is restored afterwards.
        """
        config = config or FitConfig(opt="adamw")
        ratio = DEFAULT_LR_RATIO.get(str(config.opt).lower(), 1.0)
        start_lr = 1e-7 * ratio if start_lr is None else float(start_lr)
        end_lr = 10.0 * ratio if end_lr is None else float(end_lr)
        config = config.replace(lr=start_lr, epochs=max(int(num), 1))
        if wd is not None:
            config = config.replace(wd=wd)
        finder = LRFinder(start_lr, end_lr, num)
        kept = self.opt  # the latest fit's optimizer stays what `save` keeps
        try:
            self.opt = self.make_optimizer(config)
            self._fit(config, [finder, Progress(progress, "lr-find", total=num, describe=finder.describe,
                                                rows=False)])
        finally:
            self.opt = kept
        return LRFindResult(lrs=finder.lrs, losses=finder.losses)
