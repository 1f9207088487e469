"""The callbacks of :meth:`embedlab.training.Learner.fit`: everything a fit does besides the step.

fastai's ``Learner`` is the model. :meth:`Learner.fit` is a short loop that calls an event at
each point of training::

    before_fit
      before_epoch                      (for each epoch; the model is in train mode)
        before_batch                    (for each batch: learn.inputs, learn.target)
        after_step                      (learn.loss: the batch's data loss; learn.n_step)
      after_epoch                       (learn.row: the epoch's history row, validation included)
    after_fit                           (or after_cancel_fit when a callback raised CancelFit)
    cleanup_fit                         (always, even when an error stops the fit)

A callback is an object with methods named after the events it handles; it reads and sets the
learner's state (``self.learn``: ``config``, ``opt``, ``sched``, ``result``, ``epoch``,
``n_step``, ``total_steps``, ``loss``, ``row``...). Callbacks run in ``order`` (lower first).
A fit's own callbacks (:meth:`Learner.fit`): :class:`Schedule` (the lr/momentum schedule),
:class:`Recorder` (the history, the per-step lr, momentum and loss: the :class:`FitResult`),
:class:`Divergence` (a non-finite loss stops the fit), :class:`Checkpoint` (``--resume``),
:class:`Progress` (the bar and the epoch lines), :class:`EpochHook` (``on_epoch``). The lr
finder is one more (:class:`LRFinder`). Pass your own with ``fit(..., cbs=[...])``, or attach
them to every fit with ``learn.add_cb(cb)`` (:class:`Threads`; the notebook's live session,
:class:`embedlab.report.live.Session`, is one).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

#: the events of a fit, in the order the loop calls them
EVENTS = (
    "before_fit",
    "before_epoch",
    "before_batch",
    "after_step",
    "after_epoch",
    "after_fit",
    "after_cancel_fit",
    "cleanup_fit",
)


class CancelFit(Exception):
    """Raised by a callback to end the fit early and cleanly (``after_cancel_fit`` follows)."""


class Callback:
    """Base class: handles no event; ``order`` sorts the callbacks of a fit (lower first).

    Attached to a learner (``learn.add_cb(cb)``) a callback joins every fit, the lr finder's
    too when ``in_lr_find``; the names in ``exports`` read as the learner's own attributes
    (``learn.NAME`` is ``cb.NAME``), and a ``present(value)`` method may wrap what a verb
    returns for display (the live session: an lr sweep as a plot)."""

    order = 0
    learn: Any = None
    #: attached: also a callback of ``learn.lr_find`` (default: fits only)
    in_lr_find = False
    #: attached: attribute names the learner shows as its own
    exports: tuple[str, ...] = ()

    def __call__(self, event: str) -> None:
        handler = getattr(self, event, None)
        if handler is not None:
            handler()


class Schedule(Callback):
    """The fit's lr/momentum schedule (:func:`embedlab.training.optim.make_scheduler`): made
    before the fit, stepped after every step but the last."""

    order = -10

    def before_fit(self) -> None:
        from embedlab.training.optim import make_scheduler

        learn = self.learn
        learn.sched = make_scheduler(learn.opt, learn.config, learn.total_steps)

    def after_step(self) -> None:
        if self.learn.n_step < self.learn.total_steps:  # one-cycle may not step past its last step
            self.learn.sched.step()


class Recorder(Callback):
    """Builds the fit's :class:`~embedlab.training.learner.FitResult` (``learn.result``): each
    layer group's settings, the lr and momentum of every step, every step's loss, one history
    row per epoch (training loss, validation metrics, seconds, rows per second)."""

    def before_fit(self) -> None:
        from embedlab.training.optim import momentum_of

        learn, opt, config = self.learn, self.learn.opt, self.learn.config
        names = [g["name"] for g in opt.param_groups]
        result = FitResult(config=config.to_config(), lrs={n: [] for n in names}, init=learn.init)
        max_lrs = learn.group_lrs(config.lr)
        group_wds = {g["name"]: g["wd"] for g in opt.param_groups}
        for name, params in learn.layer_groups().items():
            frozen = name not in names
            result.groups[name] = {
                "lr": None if frozen else max_lrs[name],
                "wd": None if frozen else float(group_wds[name]),
                "frozen": frozen,
                "n_params": int(sum(p.numel() for p in params)),
            }
        if any(momentum_of(opt, g) is not None for g in opt.param_groups):
            result.moms = {n: [] for n in names}
        learn.result, learn.t0 = result, time.perf_counter()

    def before_epoch(self) -> None:
        self.started, self.total, self.count = time.perf_counter(), 0.0, 0

    def before_batch(self) -> None:
        from embedlab.training.optim import momentum_of

        result, opt = self.learn.result, self.learn.opt
        for g in opt.param_groups:
            result.lrs[g["name"]].append(float(g["lr"]))
            if result.moms:
                result.moms[g["name"]].append(momentum_of(opt, g))

    def after_step(self) -> None:
        learn = self.learn
        learn.result.losses.append(learn.loss)
        self.total += learn.loss * len(learn.target)
        self.count += len(learn.target)

    def after_epoch(self) -> None:
        seconds = time.perf_counter() - self.started
        row = {
            "epoch": self.learn.epoch + 1,
            "train_loss": self.total / max(self.count, 1),
            "epoch_seconds": seconds,
            "rows_per_second": self.count / seconds if seconds > 0 else float("nan"),
        }
        row.update(self.learn.validate())
        self.learn.row = row
        self.learn.result.history.append(row)

    def after_fit(self) -> None:
        result = self.learn.result
        result.train_seconds = time.perf_counter() - self.learn.t0
        result.final = dict(result.history[-1]) if result.history else {}


class Divergence(Callback):
    """A non-finite training loss (after a step) or epoch loss stops the fit at once with
    :class:`embedlab.errors.TrainingDiverged`, naming the likely cause."""

    order = 1

    def after_step(self) -> None:
        learn = self.learn
        if not math.isfinite(learn.loss):  # stop at once: nothing after this step is worth keeping
            raise diverged(
                f"the training loss became {learn.loss} at epoch {learn.epoch + 1}, step {learn.n_step}",
                learn.opt,
                learn.inputs,
                learn.target,
            )

    def after_epoch(self) -> None:
        learn, row = self.learn, self.learn.row
        bad = [k for k in ("train_loss", "valid_loss") if k in row and not math.isfinite(row[k])]
        if bad:  # the weights went non-finite in the epoch's last step
            raise diverged(
                f"the {bad[0].replace('_', ' ')} became {row[bad[0]]} after epoch {learn.epoch + 1}",
                learn.opt,
                *(learn.valid or ((), None)),
            )


class Checkpoint(Callback):
    """``plan`` (an :class:`embedlab.training.checkpoint.CheckpointPlan`): under ``--resume`` the
    fit starts from the saved epoch (model, optimizer, schedule, history, steps, seconds), and a
    checkpoint is saved after every epoch."""

    order = 10

    def __init__(self, plan: Any) -> None:
        self.plan, self.keeper = plan, None

    def before_fit(self) -> None:
        learn = self.learn
        self.keeper = self.plan.keeper_for(learn, learn.config)
        first, step, spent = self.keeper.restore(learn, learn.opt, learn.sched, learn.result)
        learn.first_epoch, learn.n_step = first, step
        learn.t0 -= spent

    def after_epoch(self) -> None:
        learn = self.learn
        self.keeper.save(
            learn, learn.opt, learn.sched, learn.result, learn.epoch + 1, learn.n_step, time.perf_counter() - learn.t0
        )


class Progress(Callback):
    """The progress bar (:func:`embedlab.io.progress.progress_bar`: rich in a terminal, an in-place display in
    a notebook, none when ``enabled`` resolves to False) and one line per epoch."""

    order = 20

    def __init__(
        self,
        enabled: bool | None,
        label: str = "training",
        total: int | None = None,
        describe: Callable[[Any], str] | None = None,
        rows: bool = True,
    ) -> None:
        self.enabled, self.label, self.total, self.rows, self.bar = enabled, label, total, rows, None
        self.describe = describe or (
            lambda learn: f"epoch {learn.epoch + 1}/{learn.config.epochs} loss {learn.loss:.4f}"
        )

    def before_fit(self) -> None:
        from embedlab.io.progress import progress_bar

        learn = self.learn
        self.bar = progress_bar(self.enabled)
        self.bar.__enter__()
        self.task = self.bar.add_task(
            self.label, total=self.total or learn.total_steps, info="", completed=learn.n_step
        )

    def after_step(self) -> None:
        self.bar.update(self.task, advance=1, info=self.describe(self.learn))

    def after_epoch(self) -> None:
        if self.rows:
            self.bar.print(format_row(self.learn.row))

    def cleanup_fit(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class Threads(Callback):
    """Train with ``n`` intra-op torch threads (None: leave torch's setting alone), restored after
    the fit (a trainer's ``threads``; :func:`embedlab.trainers.base.torch_threads` for a block)."""

    order = -30
    in_lr_find = True

    def __init__(self, n: int | None) -> None:
        self.n, self.kept = n, None

    def before_fit(self) -> None:
        if self.n:
            self.kept = torch.get_num_threads()
            torch.set_num_threads(int(self.n))

    def cleanup_fit(self) -> None:
        if self.kept is not None:
            torch.set_num_threads(self.kept)
            self.kept = None


class EpochHook(Callback):
    """Calls ``fn(row)`` after every epoch (``fit(on_epoch=fn)``)."""

    order = 30

    def __init__(self, fn: Callable[[dict], None]) -> None:
        self.fn = fn

    def after_epoch(self) -> None:
        self.fn(self.learn.row)


class LRFinder(Callback):
    """The lr finder as a callback: every step raises every group's lr by ``mult`` from
    ``start_lr``, keeps the smoothed loss, and cancels the fit after ``num`` steps or once the
    loss is non-finite or 4x its best; the model's weights are restored afterwards. ``lrs`` and
    ``losses`` are the sweep (:class:`embedlab.training.lr_find.LRFindResult`)."""

    order = -20
    beta = 0.98

    def __init__(self, start_lr: float, end_lr: float, num: int) -> None:
        self.start_lr, self.num = start_lr, num
        self.mult = (end_lr / start_lr) ** (1.0 / max(num - 1, 1))
        self.lrs: list[float] = []
        self.losses: list[float] = []

    def before_fit(self) -> None:
        self.state = copy.deepcopy(self.learn.model.state_dict())
        self.best, self.avg, self.it = float("inf"), 0.0, 0

    def before_batch(self) -> None:
        self.lr = self.start_lr * self.mult**self.it
        for g in self.learn.opt.param_groups:
            g["lr"] = self.lr

    def after_step(self) -> None:
        self.avg = self.beta * self.avg + (1 - self.beta) * self.learn.loss
        self.smooth = self.avg / (1 - self.beta ** (self.it + 1))
        self.lrs.append(self.lr)
        self.losses.append(self.smooth)
        self.best = min(self.best, self.smooth)
        self.it += 1
        if self.it >= self.num or not math.isfinite(self.smooth) or self.smooth > 4 * self.best:
            raise CancelFit()

    def cleanup_fit(self) -> None:
        self.learn.model.load_state_dict(self.state)

    def describe(self, learn: Any) -> str:
        return f"lr {self.lr:.1e} loss {self.smooth:.4f}"


# ---------------------------------------------------------------------------- what a fit returns
#: at most this many per-step points are kept in run.json (``FitResult.steps``)
MAX_STEP_POINTS = 2000


@dataclass(repr=False)
class FitResult:
    """Per-epoch history, wall time, the last row, the resolved config and per-step schedules."""

    history: list[dict[str, float]] = field(default_factory=list)
    train_seconds: float = 0.0
    final: dict[str, float] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    lrs: dict[str, list[float]] = field(default_factory=dict)
    moms: dict[str, list[float]] = field(default_factory=dict)
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    init: dict[str, Any] | None = None
    #: the training loss of every step (the data loss, as in ``history``)
    losses: list[float] = field(default_factory=list)

    @property
    def frozen(self) -> list[str]:
        return [n for n, g in self.groups.items() if g.get("frozen")]

    # the history as a table: a fit shows as one, and reads as one (``fit["valid_loss"]``,
    # ``fit.iloc[-1]``), as the live learner's fits returned a DataFrame
    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.history)

    def __getitem__(self, key: Any) -> Any:
        return self.to_frame()[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in type(self).__dataclass_fields__:
            raise AttributeError(name)
        return getattr(self.to_frame(), name)

    def __len__(self) -> int:
        return len(self.history)

    def __bool__(self) -> bool:
        return True

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()

    def __repr__(self) -> str:
        return repr(self.to_frame())

    def steps(self, max_points: int = MAX_STEP_POINTS) -> dict[str, Any]:
        """The per-step schedule and loss, decimated to at most ``max_points`` points:
        ``{"step": [...], "lr": {group: [...]}, "mom": {group: [...]}, "loss": [...],
        "total_steps": n, "steps_per_epoch": m}``. Steps are 1-based. With more steps than
        points, the steps are cut into ``max_points`` consecutive bins; each point is a bin's
        first step, its lr and momentum at that step, and the mean loss over the bin (so the
        curve stays honest about noise without keeping every step)."""
        n = len(self.losses)
        if n == 0:
            return {"step": [], "lr": {}, "mom": {}, "loss": [], "total_steps": 0, "steps_per_epoch": 0}
        bins = np.array_split(np.arange(n), min(n, max(1, int(max_points))))
        first = [int(b[0]) for b in bins]
        losses = np.asarray(self.losses, dtype=float)

        def short(v: float) -> float:  # 6 significant digits: run.json stays small
            return float(f"{v:.6g}")

        def pick(values: list) -> list:
            return [None if i >= len(values) or values[i] is None else short(values[i]) for i in first]

        loss = [
            short(np.nanmean(losses[b][np.isfinite(losses[b])])) if np.isfinite(losses[b]).any() else None for b in bins
        ]
        epochs = max(len(self.history), 1)
        return {
            "step": [i + 1 for i in first],
            "lr": {g: pick(v) for g, v in self.lrs.items()},
            "mom": {g: pick(v) for g, v in self.moms.items()},
            "loss": loss,
            "total_steps": n,
            "steps_per_epoch": int(math.ceil(n / epochs)),
        }

    def record(self) -> dict[str, Any]:
        """What run.json keeps about the fit beyond the config: each layer group's max lr,
        weight decay, size and whether it was frozen; the frozen groups; where tables were
        initialised from (``init``, None when from scratch); the per-step learning rate,
        momentum and loss (``steps``, decimated to :data:`MAX_STEP_POINTS` points)."""
        return {"layer_groups": self.groups, "frozen_groups": self.frozen, "init": self.init, "steps": self.steps()}


def diverged(what: str, opt: Any, inputs: Sequence[torch.Tensor], target: torch.Tensor | None):
    """The :class:`TrainingDiverged` error for a non-finite loss, naming the likely cause: a
    non-finite value in the batch (the input), else the learning rate."""
    from embedlab.errors import TrainingDiverged

    cause = None
    for name, t in [("target", target)] + [(f"input {i + 1}", x) for i, x in enumerate(inputs)]:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            value = t[~torch.isfinite(t)].flatten()[0].item()
            cause = f"the batch's {name} holds {value} (clean the input data)"
            break
    if (
        cause is None
        and isinstance(target, torch.Tensor)
        and target.is_floating_point()
        and target.numel()
        and float(target.abs().max()) > 1e15
    ):
        cause = f"the batch's target holds {float(target.abs().max()):g}, an absurd value (clean or rescale it)"
    if cause is None:
        lrs = sorted({float(g.get("max_lr", g.get("initial_lr", g["lr"]))) for g in getattr(opt, "param_groups", [])})
        lr = f"{lrs[-1]:g}" if lrs else "?"
        cause = f"the learning rate is likely too high (max lr {lr}): lower --lr, or let `embedlab lr-find` suggest one"
    return TrainingDiverged(
        f"training diverged: {what}; {cause}. Nothing was saved; an existing run at --out is untouched"
    )


def format_row(row: dict[str, float]) -> str:
    """An epoch's history row as the line printed under the progress bar."""
    parts = [f"epoch {int(row['epoch'])}"]
    for k, v in row.items():
        if k in ("epoch", "epoch_seconds", "rows_per_second"):
            continue
        parts.append(f"{k} {v:.4f}")
    parts.append(f"{row['epoch_seconds']:.1f}s")
    return "  ".join(parts)
