"""What a trainer is, and what the built-in trainers share."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import click
import numpy as np

from embedlab.data import Dataset
from embedlab.run import Run, versions


@runtime_checkable
class Trainer(Protocol):
    """A trainer turns a Dataset into a Run.

    Required:

    :attr name: unique trainer name (``--trainer NAME`` picks it when two trainers train one kind).
    :attr kind: the dataset kind it trains (``"collab"``, ``"tabular"``).
    :attr options: its options, one typed declaration (a :class:`embedlab.trainers.options.TrainerOptions`
        dataclass: flags, API checks and defaults, help sections, run.json's record) or a list
        of click options (the earlier form); their values arrive in ``config``.
    :meth train: ``train(dataset, config, progress=True) -> Run`` (unsaved: the caller saves it).

    Optional abilities, recorded by the registry when the trainer registers (``TrainerEntry.can``);
    a command that needs one a trainer lacks says so in one line:

    - ``lr_find(dataset, config, progress=True) -> LRFindResult``: ``embedlab lr-find``.
    - ``predict(run, data) -> DataFrame``: ``embedlab predict``; ``data`` is a Dataset (predict its
      ``test`` rows) or a DataFrame of rows with the model's columns.
    - ``recommend(run, users, k=10, rated=None, include_rated=False) -> DataFrame``: each user's
      ``k`` best items, without those ``rated`` (a frame of training ratings) holds for the user
      unless ``include_rated``: ``embedlab predict RUN --top K --user U``, ``Run.recommend``.
    - ``encode_rows(run, frame, source) -> EncodedRows``: the model's view of rows (category
      codes, the embedding matrices they index, continuous inputs, the target and the network's
      prediction), for analyses that feed embeddings to other models (``transfer``); ``frame``
      holds rows with the model's columns, ``source`` names them in error messages.
    - ``prepare(dataset, config, progress=True) -> Prepared``: the model and its live
      ``Learner`` before any training, and how to make the Run from a fit: the Python API's
      ``embedlab.learner(...)`` (fastai's step-by-step ``lr_find``/``freeze``/``fit_one_cycle``)
      and the built-in trainers' own ``train`` (which is ``prepare``, ``learner.fit``,
      ``finish``), so the live path is the trainer's code, not a second copy.
    - ``resumable = True``: ``train`` also takes ``checkpoint=`` (a
      :class:`embedlab.training.checkpoint.CheckpointPlan`) and passes it to ``Learner.fit``, so
      ``embedlab train`` keeps per-epoch checkpoints and ``--resume`` works.
    - ``categorical_encodings = ("embedding", "onehot", ...)``: the values of
      ``config["categorical_encoding"]`` that ``train`` honours (``"embedding"``: a lookup table
      per categorical input; ``"onehot"``: a real one-hot vector through a linear layer of the
      same width; ``"onehot-direct"``: the one-hot vectors straight into the first hidden layer),
      so the ``onehot`` analysis can retrain a run both ways. Recorded as
      ``TrainerEntry.categorical_encodings``; absent means embedding only.
    """

    name: str
    kind: str
    options: Any  # a TrainerOptions subclass or a list of click.Option

    def train(self, dataset: Dataset, config: dict[str, Any], progress: bool = True) -> Run:
        """Train and return an unsaved Run (the caller saves it)."""


@dataclass
class Prepared:
    """A trainer's model, ready to train (``Trainer.prepare``).

    :param learner: the :class:`embedlab.training.Learner` holding the model and the data.
    :param config: the resolved config (defaults applied); the run records it, updated with
        the fit's own settings.
    :param fit_config: the :class:`embedlab.training.FitConfig` the config asks for (what
        ``train`` passes to ``learner.fit``).
    :param finish: ``finish(fit_result) -> Run``: the unsaved run of the model as it is now,
        recording ``fit_result``'s history, schedules and layer groups.
    :param threads: torch threads to train with (None: leave torch's setting alone).
    """

    learner: Any
    config: dict[str, Any]
    fit_config: Any
    finish: Callable[[Any], Run]
    threads: int | None = None

    @property
    def model(self) -> Any:
        return self.learner.model


@dataclass
class EncodedRows:
    """A trained model's view of some rows, as ``Trainer.encode_rows`` returns it: enough for
    another model to use the learned embeddings as features, without knowing how the trainer
    stores its network.

    :param codes: (n, c) int64 category codes in the model's categorical-input order; column j
        indexes ``embeddings[j]``; 0 is an unknown or missing value.
    :param categorical: the c categorical input names, in that order (may include inputs the
        trainer derives, such as missing-value flags).
    :param embeddings: the c embedding weight matrices the codes index, numpy float32 of shape
        (cardinality, width); row 0 is the unknown row.
    :param continuous: (n, k) float32 continuous inputs as the model sees them (e.g. filled and
        standardised).
    :param target: (n,) float64 target on its original scale, NaN where missing (for
        ``classify``: the index of the class in ``classes``, NaN where missing or unseen).
    :param prediction: the network's prediction on the target's original scale: (n,) float64 for
        regression (for a log target ``exp`` of the network's output, without any calibration
        factor the trainer's ``predict`` may apply); (n, len(classes)) class probabilities for
        ``classify``.
    :param task: ``"regression"`` or ``"classify"``.
    :param target_transform: how the network learned the target: ``"log"`` (it fitted
        ``log(target)``) or None (the target itself); another model should learn it the same way.
    :param classes: the class labels for ``classify``, None for regression.
    """

    codes: np.ndarray
    categorical: list[str]
    embeddings: list[np.ndarray]
    continuous: np.ndarray
    target: np.ndarray
    prediction: np.ndarray
    task: str
    target_transform: str | None = None
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        n = len(self.codes)
        if self.codes.ndim != 2 or not self.codes.shape[1] == len(self.categorical) == len(self.embeddings):
            raise ValueError(
                f"EncodedRows: codes {self.codes.shape} need one column per categorical input "
                f"({len(self.categorical)}) and one embedding matrix each ({len(self.embeddings)})"
            )
        if len(self.continuous) != n or len(self.target) != n or len(self.prediction) != n:
            raise ValueError(f"EncodedRows: continuous, target and prediction must have the {n} rows of codes")
        if self.task not in ("regression", "classify"):
            raise ValueError(f"EncodedRows: task {self.task!r} is neither 'regression' nor 'classify'")

    def __len__(self) -> int:
        return len(self.codes)


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
    """The value of each click option, by parameter name, when none is given: what click itself
    passes a command run without arguments (None for an option without a default, False for a
    flag, () for a repeatable one), so no guess at click's internal "unset" marker."""
    command = click.Command("defaults", params=list(options), add_help_option=False)
    return command.make_context("defaults", [], resilient_parsing=True).params


def run_meta(
    dataset: Dataset,
    trainer: Trainer,
    config: dict[str, Any],
    seed: int,
    metrics: dict[str, float],
    history: list[dict],
    *,
    task: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The run.json content every trainer writes; ``task`` (``"regression"``/``"classify"``:
    what the model predicts, read back as ``Run.task``) is recorded when given."""
    return {
        "dataset": dataset.name,
        "kind": dataset.kind,
        **({"task": task} if task is not None else {}),
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
