"""What a trainer is, and what the built-in trainers share."""
from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Iterator, Protocol, runtime_checkable

import click

from embedlab.data import Dataset
from embedlab.run import Run, versions

if TYPE_CHECKING:  # torch loads when a trainer trains, not when the CLI reads its options
    from embedlab.training.lr_find import LRFindResult


@runtime_checkable
class Trainer(Protocol):
    """A trainer turns a Dataset into a Run.

    :attr name: unique trainer name.
    :attr kind: the dataset kind it trains (``"collab"``, ``"tabular"``).
    :attr options: click options it accepts; their values arrive in ``config``.
    """

    name: str
    kind: str
    options: list[click.Option]

    def train(self, dataset: Dataset, config: dict[str, Any], progress: bool = True) -> Run:
        """Train and return an unsaved Run (the caller saves it)."""

    def lr_find(self, dataset: Dataset, config: dict[str, Any], progress: bool = True) -> LRFindResult:
        """Sweep learning rates for this dataset and config."""


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` intra-op torch threads (None: leave torch's setting alone).

    Embedding-model batches are small, so extra threads buy little, and on a busy machine
    OpenMP threads spin waiting for each other: measured on ml-100k u1 on a loaded 2-core
    machine, 21.6 s of training with one thread against 353 s with two.
    """
    if not n:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def option_defaults(options: list[click.Option]) -> dict[str, Any]:
    """The default value of each click option, by parameter name."""
    out = {}
    for opt in options:
        default = opt.default() if callable(opt.default) else opt.default
        if type(default).__name__ == "Sentinel":  # click >= 8.3: no default given (not None)
            default = False if opt.is_flag else None
        if opt.multiple and default is None:
            default = ()
        out[opt.name] = default
    return out


def run_meta(dataset: Dataset, trainer: Trainer, config: dict[str, Any], seed: int,
             metrics: dict[str, float], history: list[dict], **extra: Any) -> dict[str, Any]:
    """The run.json content every trainer writes."""
    return {
        "dataset": dataset.name,
        "kind": dataset.kind,
        "trainer": trainer.name,
        "config": config,
        "seed": seed,
        "split": dataset.split,
        "dataset_info": dataset.info,
        "versions": versions(),
        "metrics": metrics,
        "history": history,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **extra,
    }
