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
  seeded shuffle), so no process holds the whole set; it then draws its own permutation of its
  shard each epoch with ``bs / world`` rows a step, the same global batch size and number of
  rows seen, but a different order than one process (equal in distribution, not bitwise);
* validates its slice of the validation rows, and the predictions are gathered so the metrics
  are the metrics of the whole validation set, identical on every rank;
* only rank 0 writes the run (:func:`is_writer`).

Outside torchrun (no ``WORLD_SIZE`` or ``WORLD_SIZE=1``) every function here is a no-op and the
plain :class:`embedlab.learner.Learner` is used.
"""
from __future__ import annotations

import datetime
import os
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import nn

from .errors import UsageError
from .learner import Learner


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
    (shuffled first so a file sorted by user or time does not give each rank a biased slice)."""
    n = len(tensors[0])
    if not active():
        return tuple(tensors)
    g = torch.Generator().manual_seed(int(seed) + 7919)
    perm = torch.randperm(n, generator=g)[rank()::world_size()]
    perm, _ = perm.sort()  # keep the file's order inside a shard: friendlier to caches
    return tuple(t[perm] for t in tensors)


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
    padded[:len(local)] = local
    parts = [torch.zeros_like(padded) for _ in range(world_size())]
    dist.all_gather(parts, padded)
    return torch.cat([p[:int(s)] for p, s in zip(parts, sizes)]).to(t.device)


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
                idx = perm[k * local_bs:(k + 1) * local_bs]
                yield tuple(t[idx] for t in self.train_inputs), self.train_target[idx]
            return
        if self.bs % world:
            raise UsageError(f"--bs {self.bs} must be a multiple of the {world} processes "
                             f"(each rank takes an equal slice of every global batch)")
        for start in range(0, n, self.bs):
            batch = perm[start:start + self.bs]
            # a short last batch is split as evenly as possible, every rank gets >= 1 row
            cuts = [len(batch) * k // world for k in range(world + 1)]
            idx = batch[cuts[r]:cuts[r + 1]]
            if len(idx) == 0:  # fewer rows than ranks: skip rather than desynchronise
                continue
            yield tuple(t[idx] for t in self.train_inputs), self.train_target[idx]

    def fit(self, config=None, progress: bool = True, on_epoch=None, **changes: Any):
        """As :meth:`Learner.fit`; with sharded data each rank steps through its own shard with
        ``bs / world`` rows, so the schedule's steps per epoch are counted on the shard."""
        if not (self.sharded and active()):
            return super().fit(config, progress, on_epoch, **changes)
        from .learner import FitConfig

        cfg = (config or FitConfig()).replace(**changes)
        global_bs = int(cfg.bs or self.bs)
        if global_bs % world_size():
            raise UsageError(f"--bs {global_bs} must be a multiple of the {world_size()} processes")
        result = super().fit(cfg.replace(bs=global_bs // world_size()), progress, on_epoch)
        result.config["bs"] = global_bs
        self.bs = global_bs
        return result

    def _forward_module(self):
        return self._wrapped()

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
        raise UsageError(f"--device {name}: torch sees no CUDA GPU here "
                         f"(torch {torch.__version__}); use --device cpu or auto")
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise UsageError(f"--device {name}: not a device; use auto, cpu, cuda or cuda:N") from exc
    return local_device(device)
