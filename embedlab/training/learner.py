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
import numbers
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from embedlab.errors import UsageError

# MAX_STEP_POINTS, Threads, diverged, format_row: re-exported, code imports them from here
from embedlab.training.callbacks import (  # noqa: F401
    MAX_STEP_POINTS,
    Callback,
    CancelFit,
    Checkpoint,
    Divergence,
    EpochHook,
    FitResult,
    LRFinder,
    Progress,
    Recorder,
    Schedule,
    Threads,
    diverged,
    format_row,
)
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


def autograd_step(
    learn: "Learner", opt: torch.optim.Optimizer, inputs: Sequence[torch.Tensor], target: torch.Tensor
) -> float:
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
        idx = perm[start : start + learn.bs]
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


class LayerGroups(list):
    """The names of a learner's layer groups, in order (``learn.layer_groups == ["embeddings",
    "biases"]``); called, the ``name -> parameters`` mapping (``learn.layer_groups()``)."""

    def __init__(self, groups: Mapping[str, list[nn.Parameter]]) -> None:
        super().__init__(groups)
        self.groups = dict(groups)

    def __call__(self) -> dict[str, list[nn.Parameter]]:
        return dict(self.groups)


def as_lr(lr: Any) -> Any:
    """fastai's ``slice(lo, hi)``/``slice(hi)`` and ``"LO:HI"`` -> :class:`LRSlice`; a number or a
    mapping stays as it is."""
    if isinstance(lr, bool):
        raise UsageError(f"lr={lr}: not a learning rate (a fit's progress is the keyword progress=)")
    if isinstance(lr, slice):
        if lr.stop is None:
            raise ValueError("slice(lo, hi): give at least the highest learning rate")
        return LRSlice(hi=float(lr.stop), lo=None if lr.start is None else float(lr.start))
    if isinstance(lr, str):
        return LRSlice.parse(lr)
    return lr


_UNSET = object()


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

    The same object is the live learner of notebooks (``embedlab.learner(...)`` returns the
    trainer's own Learner): ``fit(epochs, lr)``/``fit_one_cycle`` continue from the model as it
    is, ``freeze``/``unfreeze``, ``lr_find``, ``save``/``load``; what a notebook adds comes from
    callbacks attached for every fit (:meth:`add_cb`), whose ``exports`` the learner shows as
    its own attributes (the live session of :mod:`embedlab.report.live`: ``learn.run``,
    ``plot_sched``, ``get_preds``, ``show_results``, ``export``...).
    """

    #: one optimisation step on a batch: ``step(learn, opt, inputs, target) -> data loss``
    step: Callable[..., float] = staticmethod(autograd_step)
    #: one epoch's batches: ``batches(learn) -> iterator of (inputs, target)``
    batches: Callable[..., Any] = staticmethod(shuffled_batches)

    def __init__(
        self,
        model: nn.Module,
        train: Sequence[torch.Tensor],
        valid: Sequence[torch.Tensor] | None,
        loss_fn: Callable,
        metrics: Metrics | None = None,
        bs: int = 256,
        regularizer: Callable | None = None,
        seed: int = 42,
    ) -> None:
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
        #: callbacks that join every fit (:meth:`add_cb`), e.g. a notebook's live session
        self.attached: list[Callback] = []
        #: the fit settings ``fit(epochs, lr)`` starts from (a trainer's; None: FitConfig's defaults)
        self.defaults: FitConfig | None = None
        #: show a progress bar (True, False; None: when a person watches), unless a fit says otherwise
        self.progress: bool | None = True
        #: what ``save`` records beside the tensors (a live learner: the dataset's name, the config)
        self.info: dict[str, Any] = {}
        #: the file :meth:`load` read last (None: the model is as trained here)
        self.loaded: str | None = None
        self._loaded_opt: tuple[str, dict] | None = None  # optimizer state the next fit continues

    # ------------------------------------------------------------ callbacks that stay
    def add_cb(self, cb: Callback) -> "Learner":
        """Attach ``cb`` to every later fit (fastai's ``add_cb``); its ``exports`` become the
        learner's attributes (``learn.NAME`` is ``cb.NAME``)."""
        cb.learn = self
        self.attached.append(cb)
        return self

    def remove_cb(self, cb: Callback) -> None:
        self.attached.remove(cb)

    def __getattr__(self, name: str) -> Any:
        """An attribute an attached callback exports (only called when the learner has none)."""
        if not name.startswith("_"):
            for cb in self.__dict__.get("attached", ()):
                if name in getattr(cb, "exports", ()):
                    return getattr(cb, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _present(self, value: Any) -> Any:
        """What a verb returns, as an attached callback shows it (``present(value)``: a
        notebook wraps an lr sweep in a plot)."""
        for cb in self.attached:
            present = getattr(cb, "present", None)
            if present is not None:
                value = present(value)
        return value

    # ------------------------------------------------------------ pieces
    @property
    def layer_groups(self) -> LayerGroups:
        """The model's layer groups (one group ``all`` when it defines none): their names, a
        list; ``learn.layer_groups()`` is the ``name -> parameters`` mapping."""
        groups = getattr(self.model, "layer_groups", None)
        return LayerGroups({"all": list(self.model.parameters())} if groups is None else groups())

    # ------------------------------------------------------------ freezing
    @property
    def frozen_groups(self) -> list[str]:
        """Layer groups none of whose parameters train."""
        return [
            name for name, params in self.layer_groups().items() if params and not any(p.requires_grad for p in params)
        ]

    def freeze_groups(self, names: Sequence[str]) -> None:
        """Freeze exactly the layer groups ``names``; every other group trains."""
        groups = self.layer_groups()
        unknown = [n for n in names if n not in groups]
        if unknown:
            raise UsageError(
                f"--freeze {','.join(names)}: the model has no layer group "
                f"{unknown[0]!r}; its groups are: {', '.join(groups)}"
            )
        for name, params in groups.items():
            for p in params:
                p.requires_grad_(name not in names)

    def freeze_to(self, n: int) -> None:
        """fastai's ``freeze_to(n)``: freeze the first ``n`` layer groups, train the rest
        (negative ``n`` counts from the end: ``freeze_to(-1)`` trains the last group only)."""
        names = list(self.layer_groups())
        if not -len(names) <= int(n) <= len(names):
            raise UsageError(f"--freeze-to {n}: the model has {len(names)} layer groups ({', '.join(names)})")
        self.freeze_groups(names[: int(n)])

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
                raise UsageError(
                    f"per-group lr: unknown groups {unknown}, missing groups {missing}; "
                    f"the model's groups are {list(layer_groups)}"
                )
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
                        raise UsageError(
                            f"layer group {name!r} mixes sparse-gradient embeddings with dense "
                            f"parameters; one optimizer group cannot train both"
                        )
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
        return make_optimizer(
            self.param_groups(config.lr, config.wd), config, fused=getattr(self.model, "fused_adam", True)
        )

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
    def predict(self, inputs: Sequence[torch.Tensor] | Any, bs: int = 65536) -> torch.Tensor | Any:
        """The model's predictions for ``inputs`` (a sequence of tensors), ``bs`` rows at a time,
        in eval mode. Anything else is fastai's ``predict(row)``, which a live learner's session
        answers (``predict_row``: one (user, item) pair, or a DataFrame of them)."""
        if not (isinstance(inputs, (tuple, list)) and inputs and all(torch.is_tensor(t) for t in inputs)):
            if "predict_row" not in {n for cb in self.attached for n in getattr(cb, "exports", ())}:
                raise UsageError(
                    "Learner.predict takes a sequence of input tensors; predict(row) is the "
                    "live learner's (embedlab.learner(...))"
                )
            return self.predict_row(inputs)
        self.model.eval()
        n = len(inputs[0])
        outs = [self.model(*(t[i : i + bs] for t in inputs)) for i in range(0, n, bs)]
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
        kept, self.config, self.first_epoch, self.n_step = self.__dict__.get("config", _UNSET), config, 0, 0
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
            self._unset_config(kept)

    def _unset_config(self, kept: Any) -> None:
        """``learn.config`` is the fit's FitConfig while it runs; afterwards what it was (a live
        learner: the trainer's config, from its session)."""
        if kept is _UNSET:
            self.__dict__.pop("config", None)
        else:
            self.config = kept

    def fit(
        self,
        config: FitConfig | int | None = None,
        lr: Any = None,
        wd: float | None = None,
        cbs: Sequence[Callback] = (),
        *,
        progress: bool | None = None,
        on_epoch: Callable[[dict], None] | None = None,
        checkpoint: Any = None,
        **changes: Any,
    ) -> FitResult:
        """Train; returns the fit's :class:`FitResult` (which shows as its history table).

        ``config``: a :class:`FitConfig` (what trainers pass), or a number of epochs (fastai's ``fit(epochs, lr, wd)``:
        the learner's ``defaults`` with the current freezing; ``lr`` may be ``slice(lo, hi)``); keyword ``changes``
        override its fields. ``cbs``: more callbacks (:mod:`embedlab.training.callbacks`), after the fit's own and the
        attached ones. ``checkpoint``: a :class:`embedlab.training.checkpoint.CheckpointPlan` (``embedlab train`` makes
        one per run): a checkpoint after every epoch and, under ``--resume``, the start from the saved one.
        ``on_epoch(row)`` is called after every epoch. The training loss in the history is the data loss only (an L2
        term is added for the gradient, not reported)."""
        config = self.fit_settings(config, lr, wd, **changes)
        self._prepare(config)
        self.opt = self.make_optimizer(config)
        self._continue_loaded_opt()
        own = [Schedule(), Recorder(), Divergence(), Progress(self.progress if progress is None else progress)]
        own += [Checkpoint(checkpoint)] if checkpoint is not None else []
        own += [EpochHook(fn) for fn in (on_epoch, _epoch_listener) if fn is not None]
        self._fit(config, own + self.attached + list(cbs))
        return self.result

    def fit_settings(
        self,
        config: FitConfig | int | None = None,
        lr: Any = None,
        wd: float | None = None,
        resolve: bool = True,
        **changes: Any,
    ) -> FitConfig:
        """The :class:`FitConfig` of ``fit(config, lr, wd, **changes)`` (``resolve``: defaults filled in)."""
        if isinstance(config, bool) or not (config is None or isinstance(config, (FitConfig, numbers.Integral))):
            raise UsageError(f"fit({config!r}): give a FitConfig or a number of epochs")
        if isinstance(config, numbers.Integral):  # fastai's fit(epochs, ...): from the defaults, freezing as it is
            config = (self.defaults or FitConfig()).replace(epochs=int(config), freeze=None, freeze_to=None)
        config = config or self.defaults or FitConfig()
        if lr is not None:
            config = config.replace(lr=as_lr(lr))
        if wd is not None:
            config = config.replace(wd=float(wd))
        config = config.replace(**changes)
        return config.resolved() if resolve else config

    def _prepare(self, config: FitConfig) -> None:
        """The batch size, freezing and ``--init-from`` check of a fit that starts."""
        if config.bs:
            self.bs = int(config.bs)
        if config.init_from and self.init is None:
            raise UsageError(
                f"--init-from {config.init_from}: this trainer does not initialise its tables "
                f"from pretrained vectors (it never called embedlab.training.pretrained.init_from_config)"
            )
        if config.freeze is not None:
            self.freeze_groups(config.freeze)
        elif config.freeze_to is not None:
            self.freeze_to(config.freeze_to)

    def fit_one_cycle(
        self,
        epochs: int,
        lr: Any = None,
        wd: float | None = None,
        pct_start: float | None = None,
        cbs: Sequence[Callback] = (),
        *,
        progress: bool | None = None,
        on_epoch: Callable[[dict], None] | None = None,
        **changes: Any,
    ) -> FitResult:
        """fastai's ``fit_one_cycle``: :meth:`fit` for ``epochs`` with the one-cycle schedule, from
        the learner's ``defaults`` (a trainer's settings) or else AdamW with wd 0.1."""
        if self.defaults is None:
            changes = {"opt": "adamw", **changes}
            wd = 0.1 if wd is None else wd
        if pct_start is not None:
            changes["pct_start"] = pct_start
        return self.fit(int(epochs), lr, wd, cbs, progress=progress, on_epoch=on_epoch, schedule="one-cycle", **changes)

    def lr_find(
        self,
        start_lr: float | None = None,
        end_lr: float | None = None,
        num: int = 100,
        wd: float | None = None,
        progress: bool | None = None,
        config: FitConfig | None = None,
        rule: str = "valley",
    ) -> "LRFindResult":
        """Exponential lr sweep on training batches with the configured optimizer (``config``,
        else the learner's ``defaults``), the :class:`LRFinder` callback; ``rule`` picks the
        suggestion a live learner shows.

        The default sweep is 1e-7 .. 10 for adamw, moved by the optimizer's
        :data:`DEFAULT_LR_RATIO` (SGD's useful lrs are ~2000x larger and would not be reached).
        Every layer group gets the same lr at each step; the model is restored afterwards, and
        the frozen groups stay frozen.
        """
        if isinstance(wd, str):  # the live learner's old lr_find(start, end, num, rule)
            wd, rule = None, wd
        config = config or self.defaults or FitConfig(opt="adamw")
        ratio = DEFAULT_LR_RATIO.get(str(config.opt).lower(), 1.0)
        start_lr = 1e-7 * ratio if start_lr is None else float(start_lr)
        end_lr = 10.0 * ratio if end_lr is None else float(end_lr)
        config = config.replace(lr=start_lr, epochs=max(int(num), 1), freeze=None, freeze_to=None)
        if wd is not None:
            config = config.replace(wd=wd)
        finder = LRFinder(start_lr, end_lr, num)
        kept = self.opt  # the latest fit's optimizer stays what `save` keeps
        progress = self.progress if progress is None else progress
        try:
            self.opt = self.make_optimizer(config)
            self._fit(
                config,
                [
                    finder,
                    Progress(progress, "lr-find", total=num, describe=finder.describe, rows=False),
                    *(cb for cb in self.attached if cb.in_lr_find),
                ],
            )
        finally:
            self.opt = kept
        return self._present(LRFindResult(lrs=finder.lrs, losses=finder.losses, rule=rule))

    # ------------------------------------------------------------ saving
    def save(self, name: str | Path, with_opt: bool = True, force: bool = False) -> Path:
        """fastai's ``learn.save(name)``: the model, the latest fit's optimizer state and the
        shuffling generator in ``models/NAME.safetensors`` (a bare name; or the path given),
        safetensors only, no pickle. Returns the path. Replaces only a file embedlab wrote
        (else ``force``)."""
        from embedlab.training.saving import learner_file, save_learner

        return save_learner(self, learner_file(name), extra=self.info, force=force, with_opt=with_opt)

    def load(self, name: str | Path, with_opt: bool = True) -> "Learner":
        """fastai's ``learn.load(name)``: what :meth:`save` wrote, bit-identical; returns the
        learner. The optimizer state becomes ``learn.opt`` and the next fit continues it (Adam's
        moments and step counts, with that fit's own lr and schedule) and the saved shuffling
        order, as ``embedlab train --resume`` does; ``with_opt=False`` loads the model alone."""
        from embedlab.training.saving import learner_file, load_learner_state

        path = learner_file(name)
        _, self._loaded_opt = load_learner_state(
            self, path, with_opt=with_opt, make_optimizer=lambda: self.make_optimizer(self.defaults or FitConfig())
        )
        self.loaded = str(path)
        return self

    def _continue_loaded_opt(self) -> None:
        """The first fit after :meth:`load` continues the loaded optimizer state."""
        from embedlab.training.saving import carry_optimizer_state

        loaded, self._loaded_opt = self._loaded_opt, None
        if loaded is None:
            return
        kind, state = loaded
        if kind != type(self.opt).__name__:
            warnings.warn(
                f"the loaded optimizer state is {kind}'s, this fit's optimizer is "
                f"{type(self.opt).__name__}: it starts afresh",
                stacklevel=3,
            )
            return
        carry_optimizer_state(self.opt, state)

    def __repr__(self) -> str:
        fits = getattr(self, "fits", None)
        trained = "" if fits is None else f"; {len(fits)} fits, {sum(len(f.history) for f in fits)} epochs trained"
        frozen = f", frozen: {', '.join(self.frozen_groups)}" if self.frozen_groups else ""
        name = self.info.get("name", "")
        return f"<Learner{' ' + name if name else ''}: layer groups {', '.join(self.layer_groups)}{frozen}{trained}>"
