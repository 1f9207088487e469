"""Training past one process with PyTorch's own engine: torch.distributed + DDP under ``torchrun``.

``torchrun --nproc-per-node N -m embedlab train ...`` starts N copies of the CLI with
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` set. Each copy:

* joins the process group (:func:`setup`; gloo on CPU, nccl on CUDA);
* trains the same model wrapped in :class:`torch.nn.parallel.DistributedDataParallel`, which
  averages gradients across ranks after every backward (:class:`DistributedLearner`);
* takes its share of every global batch: all ranks draw the same seeded permutation, and a
  global batch of ``bs`` rows is cut into ``world`` equal slices, rank ``r`` training on slice
  ``r``. Because DDP averages the per-rank mean gradients of equal slices, a step is the
  1-process step over the whole global batch up to float summation order; that is what
  ``tests/test_distributed.py`` checks;
* with ``--shard-data`` keeps only its shard of the training rows (``rows[r::world]`` of a
  seeded shuffle). Loaders that take a ``shard`` parameter (synthetic-collab, the MovieLens
  CSV editions, ratings-csv; :func:`loader_shard`, :func:`embedlab.data.read_sharded`) keep
  only those rows and the validation rows while reading, so no process holds the whole
  set; the embedding vocabularies are then the union over ranks (:func:`union_index`) and the
  entity counts are summed over ranks. Other loaders load everything and the trainer drops
  the other ranks' rows right after (:func:`shard_rows`, the same rows). Each rank then draws
  its own permutation of its shard each epoch with ``bs / world`` rows a step, the same global
  batch size and number of rows seen, but a different order than one process (equal in
  distribution, not bitwise);
* with sparse embedding gradients (``--sparse``, gloo only) the model is not wrapped in DDP:
  measured with torch 2.13, DDP's sparse-gradient averaging came out wrong for DotBias (three
  of its four tables got a fraction of the averaged gradient; one sparse table alone, or the
  model without its sigmoid, came out right). :meth:`DistributedLearner._reduce_grads`
  instead sums each sparse gradient with gloo's sparse all-reduce and divides by the world
  size, the average DDP computes for dense gradients (rank 0's weights are broadcast first;
  tested equal to one process);
* validates its slice of the validation rows, and the predictions are gathered so the metrics
  are the metrics of the whole validation set, identical on every rank;
* only rank 0 writes the run (:func:`is_writer`).

Outside torchrun (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) every function here is a no-op and the
plain :class:`embedlab.training.Learner` is used.
"""

from __future__ import annotations

import datetime
import os
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from embedlab.errors import UsageError
from embedlab.training.learner import Learner
from embedlab.training.optim import sparse_parameters


def env_world_size() -> int:
    """WORLD_SIZE as torchrun sets it (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def active() -> bool:
    """True inside an initialised process group of more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_writer() -> bool:
    """Only rank 0 writes runs, reports and logs (every rank computes the same weights)."""
    return rank() == 0


def setup(device: torch.device | str = "cpu") -> bool:
    """Join the process group torchrun describes in the environment; False outside torchrun.

    gloo for CPU tensors, nccl for CUDA (each rank on ``cuda:LOCAL_RANK``). Idempotent.
    """
    if env_world_size() <= 1:
        return False
    if not dist.is_available():
        raise UsageError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if dist.is_initialized():
        return True
    device = torch.device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend, timeout=datetime.timedelta(minutes=30))
    return True


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: torch.device) -> torch.device:
    """``cuda`` means this rank's GPU (``cuda:LOCAL_RANK``) under torchrun."""
    if device.type == "cuda" and device.index is None and env_world_size() > 1:
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return device


def shard_rows(tensors: Sequence[torch.Tensor], seed: int) -> tuple[torch.Tensor, ...]:
    """This rank's shard of equal-length row tensors: ``rows[r::world]`` of a seeded shuffle
    (:func:`embedlab.data.shard_positions`, ascending: the file's order inside a shard)."""
    from embedlab.data import shard_positions

    n = len(tensors[0])
    if not active():
        return tuple(tensors)
    perm = torch.from_numpy(shard_positions(n, seed, rank(), world_size()))
    return tuple(t[perm] for t in tensors)


def row_shard(config: dict) -> "Any":
    """This process's :class:`~embedlab.data.RowShard` when it should read only its share of the
    training rows: under torchrun (WORLD_SIZE > 1) with ``--shard-data``; None otherwise. A
    loader that takes ``shard=`` receives it (``DatasetEntry.load_dataset``); other loaders
    read everything and the trainer shards after loading.

    Decided before the process group exists (loading comes first), from torchrun's
    ``RANK``/``WORLD_SIZE``; the seed is the run's, so both shard paths keep the same rows.
    """
    from embedlab.data import RowShard

    world = env_world_size()
    if world <= 1 or not config.get("shard_data"):
        return None
    return RowShard(int(os.environ.get("RANK", "0")), world, int(config.get("seed", 42)))


def union_index(index: "Any") -> "Any":
    """The sorted union of a pandas Index over all ranks (the index itself outside a group):
    with loader-level shards each rank sees only some users, but every rank must build the
    same embedding tables."""
    import pandas as pd

    if not active():
        return index
    parts: list = [None] * world_size()
    dist.all_gather_object(parts, index.to_numpy())
    return pd.Index(pd.unique(np.concatenate(parts))).sort_values()


def all_reduce_sum(values: "np.ndarray") -> "np.ndarray":
    """Element-wise sum of a numeric array over ranks, as float64 (itself outside a group)."""
    if not active():
        return np.asarray(values, dtype=np.float64)
    t = torch.as_tensor(np.asarray(values, dtype=np.float64), device=_comm_device())
    dist.all_reduce(t)
    return t.cpu().numpy()


def _comm_device() -> torch.device:
    """Where collective tensors must live: nccl only moves CUDA tensors, gloo CPU ones."""
    if active() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(value: float) -> float:
    """The mean of a scalar over ranks (the value itself outside a process group)."""
    if not active():
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(t)
    return float(t.item()) / world_size()


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate a 1-D tensor's per-rank pieces in rank order (pieces may differ in length)."""
    if not active():
        return t
    dev = _comm_device()
    local = t.detach().to(dev)
    n = torch.tensor([len(local)], device=dev)
    sizes = [torch.zeros_like(n) for _ in range(world_size())]
    dist.all_gather(sizes, n)
    size = max(int(s) for s in sizes)
    padded = torch.zeros(size, dtype=local.dtype, device=dev)
    padded[: len(local)] = local
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes)]).to(t.device)


class DistributedLearner(Learner):
    """A :class:`Learner` whose steps run through DDP and whose batches are this rank's slice.

    ``sharded``: the training tensors passed in are already this rank's shard (see
    :func:`shard_rows`); otherwise every rank holds all rows and slices each global batch.
    The model stays the plain module (``self.model``) so layer groups, regularisers and saved
    weights see the same parameters; DDP wraps it on the first step, after any freezing, so
    only trainable parameters are registered for gradient averaging.
    """

    def __init__(self, *args: Any, sharded: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sharded = sharded
        self._ddp: nn.Module | None = None
        self._ddp_params: tuple[int, ...] | None = None
        self._synced = False  # sparse mode: rank 0's weights broadcast once before the first step
        if self.valid is not None and active():
            inputs, target = self.valid
            sl = slice(rank(), None, world_size())
            self.valid = (tuple(t[sl] for t in inputs), target[sl])

    def _wrapped(self) -> nn.Module:
        trainable = tuple(id(p) for p in self.model.parameters() if p.requires_grad)
        if self._ddp is None or trainable != self._ddp_params:
            from torch.nn.parallel import DistributedDataParallel as DDP

            dev = next(self.model.parameters()).device
            self._ddp = DDP(self.model, device_ids=[dev] if dev.type == "cuda" else None)
            self._ddp_params = trainable
        return self._ddp

    def _batches(self):
        world, r = world_size(), rank()
        if world == 1:
            yield from super()._batches()
            return
        n = len(self.train_target)
        perm = torch.randperm(n, generator=self.generator)
        if self.sharded:
            local_bs = self.bs  # fit() below set it to the per-rank share of the global batch
            # every rank must take the same number of steps, or DDP's all-reduce hangs
            steps = torch.tensor([-(-n // local_bs)], device=_comm_device())
            dist.all_reduce(steps, op=dist.ReduceOp.MIN)
            for k in range(int(steps)):
                idx = perm[k * local_bs : (k + 1) * local_bs]
                yield tuple(t[idx] for t in self.train_inputs), self.train_target[idx]
            return
        if self.bs % world:
            raise UsageError(
                f"--bs {self.bs} must be a multiple of the {world} processes "
                f"(each rank takes an equal slice of every global batch)"
            )
        for start in range(0, n, self.bs):
            batch = perm[start : start + self.bs]
            # a short last batch is split as evenly as possible, every rank gets >= 1 row
            cuts = [len(batch) * k // world for k in range(world + 1)]
            idx = batch[cuts[r] : cuts[r + 1]]
            if len(idx) == 0:  # fewer rows than ranks: skip rather than desynchronise
                continue
            yield tuple(t[idx] for t in self.train_inputs), self.train_target[idx]

    def fit(
        self, config=None, lr=None, wd=None, cbs=(), *, progress=None, on_epoch=None, checkpoint=None, **changes: Any
    ):
        """As :meth:`Learner.fit`; with sharded data each rank steps through its own shard with
        ``bs / world`` rows, so the schedule's steps per epoch are counted on the shard."""
        if not (self.sharded and active()):
            return super().fit(
                config, lr, wd, cbs, progress=progress, on_epoch=on_epoch, checkpoint=checkpoint, **changes
            )
        cfg = self.fit_settings(config, lr, wd, resolve=False, **changes)
        global_bs = int(cfg.bs or self.bs)
        if global_bs % world_size():
            raise UsageError(f"--bs {global_bs} must be a multiple of the {world_size()} processes")
        result = super().fit(
            cfg.replace(bs=global_bs // world_size()),
            cbs=cbs,
            progress=progress,
            on_epoch=on_epoch,
            checkpoint=checkpoint,
        )
        result.config["bs"] = global_bs
        self.bs = global_bs
        return result

    def _forward_module(self):
        if sparse_parameters(self.model) and active():
            if not self._synced:
                with torch.no_grad():
                    for p in self.model.parameters():
                        dist.broadcast(p.data, src=0)
                self._synced = True
            return self.model  # gradients averaged by _reduce_grads, not DDP (see module docstring)
        return self._wrapped()

    def _reduce_grads(self) -> None:
        """Sparse mode: every trainable parameter's gradient averaged over ranks, in parameter
        order (sparse ones with gloo's sparse all-reduce, any dense one with a plain one); a
        rank without a gradient for a parameter contributes zeros, so no rank waits alone."""
        sparse = sparse_parameters(self.model)
        if not (sparse and active()):
            return
        world = world_size()
        for p in self.model.parameters():
            if not p.requires_grad:
                continue
            if id(p) in sparse:
                g = (
                    p.grad.coalesce()
                    if p.grad is not None
                    else torch.sparse_coo_tensor(
                        torch.zeros(1, 0, dtype=torch.long, device=p.device),
                        torch.zeros(0, *p.shape[1:], dtype=p.dtype, device=p.device),
                        p.shape,
                    )
                )
                dist.all_reduce(g)  # gloo: the sum, as a sparse tensor, in place
                p.grad = g * (1.0 / world)
            else:
                g = p.grad if p.grad is not None else torch.zeros_like(p)
                dist.all_reduce(g)
                p.grad = g.div_(world)

    def _reduce_loss(self, loss: float) -> float:
        return all_reduce_mean(loss)

    def validate(self) -> dict[str, float]:
        if self.valid is None or not active():
            return super().validate()
        inputs, target = self.valid
        pred = gather_rows(self.predict(inputs))
        target = gather_rows(target)
        out = {"valid_loss": float(self.loss_fn(pred, target))}
        if self.metrics is not None:
            out.update(self.metrics(pred, target))
        return out


def resolve_device(name: str | None) -> torch.device:
    """``--device auto|cpu|cuda`` (or ``cuda:N``): auto picks CUDA when torch sees a GPU.

    Under torchrun, ``cuda`` means this rank's ``cuda:LOCAL_RANK``.
    """
    name = (name or "auto").lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(
            f"--device {name}: torch sees no CUDA GPU here (torch {torch.__version__}); use --device cpu or auto"
        )
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from exc
    return local_device(device)
