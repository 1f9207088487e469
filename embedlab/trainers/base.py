"""What a trainer is, and what the built-in trainers share."""
from __future__ import annotations

import contextlib
import time
from typing import Any, Iterator, Protocol, runtime_checkable

import click

from embedlab.data import Dataset
from embedlab.run import Run, versions


@runtime_checkable
class Trainer(Protocol):
    """A trainer turns a Dataset into a Run.

    Required:

    :attr name: unique trainer name (``--trainer NAME`` picks it when two trainers train one kind).
    :attr kind: the dataset kind it trains (``"collab"``, ``"tabular"``).
    :attr options: click options it accepts; their values arrive in ``config``.
    :meth train: ``train(dataset, config, progress=True) -> Run`` (unsaved: the caller saves it).

    Optional abilities, recorded by the registry when the trainer registers (``TrainerEntry.can``);
    a command that needs one a trainer lacks says so in one line:

    - ``lr_find(dataset, config, progress=True) -> LRFindResult``: ``embedlab lr-find``.
    - ``predict(run, data) -> DataFrame``: ``embedlab predict``; ``data`` is a Dataset (predict its
      ``test`` rows) or a DataFrame of rows with the model's columns.
    - ``encode_rows(run, frame, source) -> EncodedRows``: the model's view of rows (category
      codes, the embedding matrices they index, continuous inputs, the target and the network's
      prediction), for analyses that feed embeddings to other models (``transfer``).
    - ``resumable = True``: ``train`` also takes ``checkpoint=`` (a
      :class:`embedlab.training.checkpoint.CheckpointPlan`) and passes it to ``Learner.fit``, so
      ``embedlab train`` keeps per-epoch checkpoints and ``--resume`` works.
    """

    name: str
    kind: str
    options: list[click.Option]

    def train(self, dataset: Dataset, config: dict[str, Any], progress: bool = True) -> Run:
        """Train and return an unsaved Run (the caller saves it)."""


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
