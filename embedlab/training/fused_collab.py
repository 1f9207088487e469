"""A fused training step for the collaborative-filtering model (``--kernel fused``).

What the autograd path does in a forward, a backward through four sparse embedding tables,
four ``coalesce()``s, the lazy weight decay and :class:`~embedlab.training.optim.LazyAdam`'s
row gathers and scatters, this step does in two compiled passes over the batch (numba, one
thread), with the gradient derived by hand:

1. *batch order*: for each rating, look up its user and item rows, ``z = u.i + b_u + b_i``,
   ``pred = sigmoid(z) * (hi - lo) + lo``, the squared error, and add
   ``dz * i + 2 reg / n * u`` (and the item's twin, and ``dz`` for the biases) into a gradient
   buffer with one slot per touched row;
2. *ascending row order*: for each touched row, the optimizer update of the autograd path's
   sparse mode: decoupled decay (shrink by ``1 - lr wd``) or L2 (``wd w`` added to the
   gradient), then lazy Adam (torch.optim.SparseAdam's update: moments of the touched rows
   only, ``step_size = lr sqrt(1 - b2^t) / (1 - b1^t)``, ``w -= step_size m / (sqrt(v) + eps)``)
   or plain SGD. Visiting the rows in ascending order streams the tables instead of hopping
   (measured 1.8x faster than batch order).

``dz = 2 / n (pred - y) sigmoid'(z) (hi - lo)`` is the gradient of the batch's mean squared
error; ``reg`` is the row L2 (``--reg``, ``reg * mean(|u|^2 + |i|^2)`` over the batch's
ratings). The optimizer is the one :func:`~embedlab.training.optim.make_optimizer` made for
the sparse model (LazyAdam or SGD): the step reads each param group's ``lr``, ``betas``,
``eps``, ``wd`` and ``wd_mode`` as the schedule set them, and keeps Adam's moments and step
count in that optimizer's own ``state``, so checkpoints, ``--resume`` and the schedule work
unchanged, and the weights match the autograd path to float rounding
(``tests/test_fused_collab.py``).

The epoch's batches come from one shuffled, packed buffer: once per epoch the rows are
gathered by the learner's permutation (the same draw as the autograd path, so the same
batches in the same order) into one contiguous ``n x 3`` int32 array (user code, item code,
the rating's float32 bits); each step reads a contiguous slice of it.

:func:`choose_kernel` says where the step applies (``--kernel auto``), and why not elsewhere.
numba is imported (and the kernels compiled, or loaded from numba's cache) on first use only.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

KERNELS = ("auto", "fused", "autograd")
#: optimizers the fused step implements (those with a sparse-gradient form in the autograd path)
FUSED_OPTIMIZERS = ("adam", "adamw", "sgd")

KERNEL_HELP = (
    "Training step of the collab model. 'fused': forward, hand-derived gradient and the "
    "optimizer update over the touched rows in two compiled passes (numba, one thread), the "
    "same math as the sparse autograd path (lazy Adam or SGD, lazy --wd, --reg); 'autograd': "
    "torch's autograd and torch.optim (the reference); 'auto': fused where it applies (sparse "
    "tables, --opt adam/adamw/sgd, CPU, one process), else autograd with the reason stated. "
    "Recorded in run.json (config.kernel, model.kernel)."
)

_KERNELS: dict[str, Any] = {}


def choose_kernel(
    mode: str | None, *, sparse: bool, opt: str, device: str = "cpu", distributed: bool = False, model: str = "dot"
) -> tuple[str, str | None]:
    """``("fused" | "autograd", reason)``: the step a fit uses for ``--kernel mode``, and why
    the fused step does not apply (None when it does). ``fused`` where it cannot apply is a
    :class:`~embedlab.errors.UsageError` naming the reason."""
    from embedlab.errors import UsageError

    mode = str(mode or "auto").lower()
    if mode not in KERNELS:
        raise UsageError(f"--kernel {mode!r}: choose one of: {', '.join(KERNELS)}")
    if mode == "autograd":
        return "autograd", "--kernel autograd"
    reason = None
    if model != "dot":
        reason = f"the fused step is the dot-product model's (--model dot), not --model {model}'s"
    elif distributed:
        reason = (
            "under torchrun the gradients are reduced across processes between backward and "
            "the optimizer step; the fused step has no such seam"
        )
    elif device != "cpu":
        reason = f"the fused step runs on the CPU (numba), the model is on {device}"
    elif opt not in FUSED_OPTIMIZERS:
        reason = f"--opt {opt} has no sparse form to match (the fused step does {', '.join(FUSED_OPTIMIZERS)})"
    elif not sparse:
        reason = (
            "the tables are dense (--sparse auto keeps tables under 5M parameters dense, whose "
            "defaults were tuned so); the fused step is the sparse path's lazy update"
        )
    if reason is None:
        return "fused", None
    if mode == "fused":
        raise UsageError(f"--kernel fused: {reason}; use --kernel auto or autograd")
    return "autograd", reason


# ---------------------------------------------------------------------------- the kernels
def _compile() -> dict[str, Any]:
    """The numba kernels, compiled once per process (or loaded from numba's on-disk cache)."""
    if _KERNELS:
        return _KERNELS
    from embedlab.io.jit import configure_numba

    configure_numba()
    import numba

    njit = numba.njit(cache=True, nogil=True, error_model="numpy")
    # reassociating the dot product's sum lets it vectorise (the autograd path's float32 sum
    # is in yet another order: both are float rounding away from the exact value)
    njit_fast = numba.njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})

    @njit
    def pack(perm, users, items, ratings, out):
        """out[j] = (users[perm[j]], items[perm[j]], bits of ratings[perm[j]])."""
        rbits = ratings.view(np.int32)
        for j in range(perm.shape[0]):
            r = perm[j]
            out[j, 0] = users[r]
            out[j, 1] = items[r]
            out[j, 2] = rbits[r]

    @njit
    def collect(codes, n_rows, slot, rows, scan):
        """The distinct rows of ``codes`` in ascending order into ``rows``; ``slot[row]`` = its
        position. ``slot`` is -1 everywhere on entry (``reset`` restores that)."""
        m = 0
        if scan:  # many rows: mark, then walk the table's rows in order
            for j in range(codes.shape[0]):
                slot[codes[j]] = 0
            for r in range(n_rows):
                if slot[r] == 0:
                    slot[r] = m
                    rows[m] = r
                    m += 1
        else:  # few rows: collect, sort
            for j in range(codes.shape[0]):
                r = codes[j]
                if slot[r] == -1:
                    slot[r] = 0
                    rows[m] = r
                    m += 1
            rows[:m].sort()
            for j in range(m):
                slot[rows[j]] = j
        return m

    @njit_fast
    def forward_backward(
        batch,
        fbatch,
        U,
        I,
        BU,
        BI,
        slot_u,
        slot_i,
        m_u,
        order,
        start,
        gU,
        gI,
        gBU,
        gBI,
        lo,
        hi,
        reg,
        want_u,
        want_i,
        want_bu,
        want_bi,
    ):
        """Pass 1: the batch's loss (sum of squared errors) and the gradient of every touched
        row, summed per row into its slot. The ratings are visited in ascending user order (a
        counting sort by the user's slot into ``order``), so the user rows and their gradient
        slots stream; only the item side hops."""
        n = batch.shape[0]
        k = U.shape[1]
        span = np.float32(hi - lo)
        lo32 = np.float32(lo)
        two_reg = np.float32(2.0 * reg / n)
        two_n = np.float32(2.0 / n)
        start[: m_u + 1] = 0
        for j in range(n):
            start[slot_u[batch[j, 0]] + 1] += 1
        for q in range(m_u):
            start[q + 1] += start[q]
        for j in range(n):
            q = slot_u[batch[j, 0]]
            order[start[q]] = j
            start[q] += 1
        sse = 0.0
        for jj in range(n):
            j = order[jj]
            u = batch[j, 0]
            i = batch[j, 1]
            y = fbatch[j, 2]
            z = np.float32(0.0)
            for f in range(k):
                z += U[u, f] * I[i, f]
            z += BU[u, 0] + BI[i, 0]
            sg = np.float32(1.0) / (np.float32(1.0) + np.exp(-z))
            err = sg * span + lo32 - y
            sse += err * err
            dz = two_n * err * sg * (np.float32(1.0) - sg) * span
            su = slot_u[u]
            si = slot_i[i]
            if want_u:
                for f in range(k):
                    gU[su, f] += dz * I[i, f] + two_reg * U[u, f]
            if want_i:
                for f in range(k):
                    gI[si, f] += dz * U[u, f] + two_reg * I[i, f]
            if want_bu:
                gBU[su, 0] += dz
            if want_bi:
                gBI[si, 0] += dz
        return sse

    @njit
    def update(W, rows, m, g, M, V, hp, adam, decoupled):
        """Pass 2: the optimizer update of the ``m`` touched rows of table ``W`` (ascending),
        gradients ``g[0:m]`` (zeroed for the next step), moments ``M``/``V``. ``hp``: lr, wd,
        beta1, beta2, eps, step_size."""
        k = W.shape[1]
        lr, wd, b1, b2, eps, step_size = hp[0], hp[1], hp[2], hp[3], hp[4], hp[5]
        shrink = np.float32(1.0 - lr * wd)
        wd32 = np.float32(wd)
        one_b1 = np.float32(1.0 - b1)
        b2_32 = np.float32(b2)
        one_b2 = np.float32(1.0 - b2)
        for j in range(m):
            r = rows[j]
            for f in range(k):
                gr = g[j, f]
                g[j, f] = 0.0
                w = W[r, f]
                if wd != 0.0:
                    if decoupled:
                        w = w * shrink
                    else:
                        gr = gr + wd32 * w
                if adam:
                    mm = M[r, f]
                    mm = mm + one_b1 * (gr - mm)
                    vv = V[r, f] * b2_32 + one_b2 * gr * gr
                    M[r, f] = mm
                    V[r, f] = vv
                    w = w - np.float32(step_size) * (mm / (np.float32(math.sqrt(vv)) + np.float32(eps)))
                else:
                    w = w - np.float32(lr) * gr
                W[r, f] = w

    @njit
    def reset(slot, rows, m):
        for j in range(m):
            slot[rows[j]] = -1

    _KERNELS.update(pack=pack, collect=collect, forward_backward=forward_backward, update=update, reset=reset)
    return _KERNELS


# ---------------------------------------------------------------------------- the step
class FusedCollabStep:
    """The fused step of a :class:`~embedlab.training.models.DotBias` model trained by a
    Learner with ``loss_fn`` MSE and the row-L2 ``reg``; ``batches(learner)`` yields the
    epoch's packed batches and ``__call__(learner, opt, inputs, target)`` takes one step,
    returning the batch's data loss (as the autograd step does)."""

    name = "fused"

    def __init__(self, model, reg: float) -> None:
        self.model = model
        self.reg = float(reg)
        self.y_range = model.y_range or (0.0, 1.0)
        if model.y_range is None:
            raise ValueError("the fused collab step needs a y_range (sigmoid output)")
        self._codes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._scratch: dict[str, np.ndarray] = {}

    # -------------------------------------------------------------- batches
    def batches(self, learner):
        """The epoch's batches: the learner's permutation (the same generator draw as
        ``Learner._batches``), packed once into one contiguous int32 buffer; each batch is
        ``((packed[s:e],), ratings[s:e])``, views of it."""
        import torch

        k = _compile()
        if self._codes is None or self._codes[0].shape[0] != len(learner.train_target):
            users, items = (t.detach().cpu().numpy() for t in learner.train_inputs)
            self._codes = (
                users.astype(np.int32, copy=False),
                items.astype(np.int32, copy=False),
                learner.train_target.detach().cpu().numpy().astype(np.float32, copy=False),
            )
        users, items, ratings = self._codes
        n = len(ratings)
        perm = torch.randperm(n, generator=learner.generator).numpy()
        packed = np.empty((n, 3), dtype=np.int32)
        k["pack"](perm, users, items, ratings, packed)
        fpacked = packed.view(np.float32)
        bs = learner.bs
        for start in range(0, n, bs):
            batch = packed[start : start + bs]
            yield (torch.from_numpy(batch),), torch.from_numpy(fpacked[start : start + bs, 2])

    def _buffers(self, n_users: int, n_items: int, k: int, bs: int) -> dict[str, np.ndarray]:
        s = self._scratch
        if (
            not s
            or s["gU"].shape[0] < bs
            or s["gU"].shape[1] != k
            or len(s["slot_u"]) != n_users
            or len(s["slot_i"]) != n_items
        ):
            s.clear()
            s.update(
                slot_u=np.full(n_users, -1, np.int32),
                slot_i=np.full(n_items, -1, np.int32),
                rows_u=np.empty(bs, np.int32),
                rows_i=np.empty(bs, np.int32),
                order=np.empty(bs, np.int32),
                start=np.empty(bs + 1, np.int32),
                gU=np.zeros((bs, k), np.float32),
                gI=np.zeros((bs, k), np.float32),
                gBU=np.zeros((bs, 1), np.float32),
                gBI=np.zeros((bs, 1), np.float32),
            )
        return s

    # -------------------------------------------------------------- the step
    def __call__(self, learner, opt, inputs: Sequence[Any], target) -> float:
        import torch

        kern = _compile()
        batch = inputs[0]
        if batch.dim() != 2 or batch.dtype != torch.int32:  # a batch not from batches(): pack it
            users, items = inputs
            batch = torch.stack(
                [users.to(torch.int32), items.to(torch.int32), target.to(torch.float32).view(torch.int32)], 1
            )
        batch = batch.numpy()
        fbatch = batch.view(np.float32)
        n = batch.shape[0]
        m = self.model
        tables = {"U": m.user_emb.weight, "I": m.item_emb.weight, "BU": m.user_bias.weight, "BI": m.item_bias.weight}
        arrays = {k: t.data.numpy() for k, t in tables.items()}
        nu, ni, k = arrays["U"].shape[0], arrays["I"].shape[0], arrays["U"].shape[1]
        s = self._buffers(nu, ni, k, n)
        hps, trained = self._hyperparameters(opt, tables)
        mu = kern["collect"](batch[:, 0], nu, s["slot_u"], s["rows_u"], n * 8 > nu)
        mi = kern["collect"](batch[:, 1], ni, s["slot_i"], s["rows_i"], n * 8 > ni)
        lo, hi = self.y_range
        sse = kern["forward_backward"](
            batch,
            fbatch,
            arrays["U"],
            arrays["I"],
            arrays["BU"],
            arrays["BI"],
            s["slot_u"],
            s["slot_i"],
            mu,
            s["order"],
            s["start"],
            s["gU"],
            s["gI"],
            s["gBU"],
            s["gBI"],
            float(lo),
            float(hi),
            self.reg,
            "U" in trained,
            "I" in trained,
            "BU" in trained,
            "BI" in trained,
        )
        adam = isinstance(opt, _lazy_adam())
        for key, rows, cnt, g in (
            ("U", "rows_u", mu, "gU"),
            ("I", "rows_i", mi, "gI"),
            ("BU", "rows_u", mu, "gBU"),
            ("BI", "rows_i", mi, "gBI"),
        ):
            if key in trained:
                hp, decoupled, state = hps[key]
                M = state["exp_avg"].numpy() if adam else arrays[key]
                V = state["exp_avg_sq"].numpy() if adam else arrays[key]
                kern["update"](arrays[key], s[rows], cnt, s[g], M, V, hp, adam, decoupled)
        kern["reset"](s["slot_u"], s["rows_u"], mu)
        kern["reset"](s["slot_i"], s["rows_i"], mi)
        if not getattr(opt, "_opt_called", False):
            opt._opt_called = True  # the schedule's "step before optimizer.step" check: this was one
        return sse / n

    def _hyperparameters(self, opt, tables) -> tuple[dict[str, tuple], set[str]]:
        """Per trained table: (hp array, decoupled?, optimizer state); the trained tables."""
        from embedlab.training.optim import adam_state

        by_id = {id(t): key for key, t in tables.items()}
        out, trained = {}, set()
        adam = isinstance(opt, _lazy_adam())
        for group in opt.param_groups:
            lr, wd = float(group["lr"]), float(group.get("wd", 0.0))
            decoupled = group.get("wd_mode") == "decoupled"
            b1, b2 = group.get("betas", (0.0, 0.0))
            eps = float(group.get("eps", 0.0))
            for p in group["params"]:
                key = by_id.get(id(p))
                if key is None:
                    raise ValueError("the fused collab step got an optimizer over other parameters")
                state = opt.state[p]
                step_size = 0.0
                if adam:
                    adam_state(state, p)
                    state["step"] += 1
                    t = float(state["step"])
                    step_size = lr * math.sqrt(1 - b2**t) / (1 - b1**t)
                out[key] = (np.array([lr, wd, b1, b2, eps, step_size], np.float64), decoupled, state)
                trained.add(key)
        return out, trained


def _lazy_adam():
    from embedlab.training.optim import LazyAdam

    return LazyAdam


def warm_up() -> float:
    """Compile the kernels for the types a fit uses (or load them from numba's cache) by
    training a 4-rating model for one step; the seconds it took."""
    import time

    import torch
    from torch import nn

    from embedlab.training.fitconfig import FitConfig
    from embedlab.training.learner import Learner
    from embedlab.training.models import DotBias

    t0 = time.perf_counter()
    codes = torch.tensor([0, 1, 2, 1])
    data = (codes, codes.flip(0), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    for opt in ("adamw", "sgd"):
        learner = make_fused(
            Learner(DotBias(3, 3, 2, (0.0, 5.5), sparse=True), data, None, loss_fn=nn.functional.mse_loss, bs=4), 0.1
        )
        learner.fit(FitConfig(epochs=1, opt=opt, schedule="constant", bs=4), progress=False)
    return time.perf_counter() - t0


def make_fused(learner, reg: float):
    """``learner`` (a Learner of a sparse DotBias, MSE, row-L2 ``reg``) set to train with the
    fused step: its replaceable ``step`` and ``batches`` (:class:`embedlab.training.Learner`)
    become a :class:`FusedCollabStep`'s (also kept as ``learner.fused_step``); the same object."""
    learner.fused_step = FusedCollabStep(learner.model, reg)
    learner.step = learner.fused_step
    learner.batches = learner.fused_step.batches
    return learner
