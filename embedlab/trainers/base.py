"""What a trainer is, and what the built-in trainers share."""
from __future__ import annotations

import time
from typing import Any, Protocol, runtime_checkable

import click

from ..data import Dataset
from ..learner import LRFindResult
from ..run import Run, versions


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


def option_defaults(options: list[click.Option]) -> dict[str, Any]:
    """The default value of each click option, by parameter name."""
    out = {}
    for opt in options:
        default = opt.default() if callable(opt.default) else opt.default
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
