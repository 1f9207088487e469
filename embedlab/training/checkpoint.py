"""Per-epoch training checkpoints, so that ``embedlab train --resume`` continues a killed run.

Why here and not in each trainer: every trainer trains through :meth:`embedlab.training.learner.Learner.fit`
(the distributed learner too), so the learner saves and restores the training state in one
place. The plan travels explicitly: ``embedlab train`` makes a :class:`CheckpointPlan` and
passes it to a trainer that declares ``resumable = True`` (``train(..., checkpoint=plan)``),
which hands it to ``Learner.fit(..., checkpoint=plan)``.

Where: ``embedlab train ... --out PARENT/NAME`` keeps its checkpoint in the hidden sibling
folder ``PARENT/.NAME.checkpoint/``: next to the run a user asked for, under a name that the
atomic writers' own temporary names resemble (``.NAME.*``), never inside ``NAME`` (which holds
the previous complete run until the new one replaces it), and never looking like a run
(``embedlab analyze`` refuses it: no run.json). It is deleted once the new run is saved.

Layout: ``PARENT/.NAME.checkpoint/<seq>-fit<k>-epoch<e>/`` with

* ``checkpoint.json``: format and version, epoch, global step, the per-epoch history and
  per-step lr/momentum lists so far, the seconds trained, the resolved fit config, the
  fingerprint of the command's options and of the dataset (rows, split and a hash of the
  frames), the optimizer's and the scheduler's non-tensor state (hyperparameters, step
  counts), the Python and NumPy RNG states;
* ``state.safetensors``: the model's state_dict (``model.*``), the optimizer's state tensors
  (``optimizer.*``: Adam's moments and steps, momentum buffers) and the torch RNG states
  (``rng.*``: the learner's shuffling generator, the global CPU generator used by dropout,
  each CUDA device's generator).

Nothing is pickled and nothing is unpickled: JSON and safetensors only, so a planted file
never runs code. Each checkpoint folder is written with :func:`embedlab.io.atomic.atomic_dir`
(temporary folder, then rename) under a new, higher sequence number, and the older ones are
deleted only after it is in place: a kill at any moment leaves at least one complete
checkpoint, and a half-written one is a hidden ``.*.partial`` folder inside the checkpoint
folder that the loader never reads and the next write deletes.

Resuming restores the model, the optimizer, the scheduler and every RNG, and training goes on
from the epoch after the checkpoint's: with the same settings the result is the result of an
uninterrupted run (bit for bit on CPU, one thread; ``tests/test_resume.py``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

from embedlab.errors import EmbedlabError, RunFormatError, UsageError
from embedlab.training.saving import decode_state, encode_state, plain_json

FORMAT = "embedlab-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.json"
STATE_FILE = "state.safetensors"


class CheckpointError(RunFormatError):
    """A checkpoint folder that cannot be read safely (missing files, bad JSON, not safetensors)."""


def checkpoint_dir(out: str | os.PathLike) -> Path:
    """The checkpoint folder of the run folder ``out``: ``PARENT/.NAME.checkpoint``."""
    out = Path(os.path.abspath(out))
    return out.parent / f".{out.name}.checkpoint"


# ---------------------------------------------------------------------------- JSON <-> state
# the codec of embedlab.training.saving (learn.save uses it too): tensors by name, the rest JSON
_encode, _plain = encode_state, plain_json


def _decode(value: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    return decode_state(
        value, tensors, missing=lambda name: CheckpointError(f"checkpoint tensor {name!r} is missing from {STATE_FILE}")
    )


def _frame_digest(df, raw: bool = True) -> str | None:
    """``"N rows, sha256:raw HEX"`` of a frame's columns, dtypes and values (None for no frame).

    Columns of plain numeric numpy dtypes are hashed as their bytes (25M ratings: ~1 s, where
    pandas' per-row hashes took ~7 s, issue #27); a frame with any other column, or
    ``raw=False`` (to compare with a checkpoint written before, ``"sha256 HEX"``), hashes
    ``pandas.util.hash_pandas_object``'s row hashes as before."""
    if df is None:
        return None
    import pandas as pd

    h = hashlib.sha256(json.dumps([[str(c) for c in df.columns], [str(t) for t in df.dtypes]]).encode())
    if raw and all(isinstance(t, np.dtype) and t.kind in "biuf" for t in df.dtypes):
        for column in range(df.shape[1]):
            h.update(memoryview(np.ascontiguousarray(df.iloc[:, column].to_numpy())).cast("B"))
        return f"{len(df)} rows, sha256:raw {h.hexdigest()[:16]}"
    try:
        values = pd.util.hash_pandas_object(df, index=False)
    except TypeError:  # unhashable cells (lists...): hash their text
        values = pd.util.hash_pandas_object(df.astype(str), index=False)
    h.update(np.ascontiguousarray(values.to_numpy()).tobytes())
    return f"{len(df)} rows, sha256 {h.hexdigest()[:16]}"


def dataset_fingerprint(dataset, raw: bool = True) -> dict[str, Any]:
    """What identifies the training data: name, kind, split and a hash of the train/valid rows
    (``raw``: see :func:`_frame_digest`)."""
    return {
        "name": dataset.name,
        "kind": dataset.kind,
        "split": _plain(dataset.split),
        "train": _frame_digest(dataset.train, raw),
        "valid": _frame_digest(dataset.valid, raw),
    }


def _flag(name: str) -> str:
    return "--" + str(name).replace("_", "-")


def _show(value: Any) -> str:
    return "default" if value is None else json.dumps(value)


def _differences(saved: Mapping[str, Any], now: Mapping[str, Any], label=_flag) -> list[str]:
    keys = list(dict.fromkeys([*now, *saved]))
    return [
        f"{label(k)} {_show(now.get(k))} (checkpoint: {_show(saved.get(k))})"
        for k in keys
        if json.dumps(now.get(k), sort_keys=True) != json.dumps(saved.get(k), sort_keys=True)
    ]


# ---------------------------------------------------------------------------- reading
@dataclass
class Checkpoint:
    """One complete checkpoint as read from disk: its JSON and its tensors."""

    path: Path
    meta: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])

    @property
    def epochs(self) -> int:
        return int(self.meta["epochs"])

    @property
    def fit_index(self) -> int:
        return int(self.meta["fit_index"])

    def describe(self) -> str:
        return f"epoch {self.epoch}/{self.epochs}"


def _entries(folder: Path) -> list[Path]:
    """The complete checkpoints in ``folder`` (visible ``<seq>-...`` folders), newest first."""
    if not folder.is_dir():
        return []
    found = [p for p in folder.iterdir() if not p.name.startswith(".") and p.name[:6].isdigit() and p.is_dir()]
    return sorted(found, key=lambda p: p.name, reverse=True)


def load_checkpoint(folder: str | os.PathLike) -> Checkpoint | None:
    """The newest complete checkpoint in ``folder`` (a ``.NAME.checkpoint`` folder), or None.

    Reads JSON and safetensors only; anything else (a pickle planted as the state file, a
    truncated file) is a :class:`CheckpointError`, never a fallback to another loader.
    """
    folder = Path(folder)
    entries = _entries(folder)
    if not entries:
        return None
    path = entries[0]
    jfile, sfile = path / CHECKPOINT_FILE, path / STATE_FILE
    hint = f"delete {str(folder)!r} to start over"
    from embedlab.io.strictjson import read_json

    try:
        meta = read_json(jfile)
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{str(jfile)!r} is not a readable checkpoint ({exc}); {hint}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{str(jfile)!r} is not an embedlab checkpoint; {hint}")
    if not isinstance(meta.get("version"), int) or meta["version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{str(jfile)!r} has checkpoint version {meta.get('version')!r}; this "
            f"embedlab reads up to {FORMAT_VERSION}: upgrade embedlab or {hint}"
        )
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(sfile))
    except Exception as exc:  # never fall back to pickle or torch.load
        raise CheckpointError(
            f"{str(sfile)!r} is not a valid safetensors file ({exc}); embedlab never loads pickled checkpoints; {hint}"
        ) from None
    return Checkpoint(path, meta, tensors)


# ---------------------------------------------------------------------------- the plan
@dataclass
class CheckpointPlan:
    """What ``embedlab train`` asked for: where checkpoints go, whether to write them, which
    one to resume from, and the fingerprint that a resumed run must match."""

    folder: Path
    options: dict[str, Any]
    write: bool = True
    resume: Checkpoint | None = None
    dataset: dict[str, Any] | None = None
    fits: int = 0
    last_written: str | None = None

    def fingerprint(self) -> dict[str, Any]:
        return {"options": self.options, "dataset": self.dataset}

    def keeper_for(self, learner, config) -> "FitKeeper":
        """The keeper of a fit that is starting: a trainer may fit several times per run (each
        fit has its own checkpoints, numbered in order)."""
        index = self.fits
        self.fits += 1
        return FitKeeper(self, index, config)

    def discard(self) -> None:
        """The run is saved: its checkpoints are no longer needed (rank 0 only)."""
        from embedlab.training import distributed

        if distributed.is_writer():
            from embedlab.io.ownership import discard_owned_dir

            discard_owned_dir(self.folder)  # its own files only; the folder once empty


def plan(
    out: str | os.PathLike, options: Mapping[str, Any], resume: bool = False, write: bool = True, echo=None
) -> CheckpointPlan:
    """Check ``--resume`` against the checkpoint of ``out`` before any data is loaded.

    ``--resume`` without a checkpoint, or with one made with other options, is a one-line
    :class:`UsageError` naming what is missing or which options differ. Without ``--resume``
    an existing checkpoint is reported (``echo``) and replaced after the first epoch.
    """
    from embedlab.io.ownership import check_own_dir

    folder = checkpoint_dir(out)
    if write or resume:  # a link, a file, or a folder embedlab cannot prove it made: never used
        check_own_dir(folder, "the checkpoint folder", way="move it away, or train with --no-checkpoint")
    the_plan = CheckpointPlan(folder=folder, options=_plain(dict(options)), write=write)
    if not resume:
        if _entries(folder) and echo is not None and os.environ.get("RANK", "0") == "0":
            echo(
                f"note: {str(folder)!r} holds the checkpoint of an interrupted run of this --out; "
                f"training starts over and replaces it (add --resume to continue it instead)"
            )
        return the_plan
    found = load_checkpoint(folder)
    if found is None:
        raise UsageError(
            f"--resume: no checkpoint for --out {str(out)!r} (looked in {str(folder)!r}): "
            f"the run finished or never completed an epoch; drop --resume to train from scratch"
        )
    diff = _differences(found.meta.get("fingerprint", {}).get("options", {}), the_plan.options)
    if diff:
        raise UsageError(
            f"--resume: the checkpoint in {str(folder)!r} was made with other settings: "
            f"{'; '.join(diff)}; rerun with the checkpoint's settings or drop --resume"
        )
    the_plan.resume = found
    return the_plan


@contextlib.contextmanager
def checkpointing(the_plan: CheckpointPlan | None, dataset=None, echo=None) -> Iterator[CheckpointPlan | None]:
    """Bind ``the_plan`` to the data being trained on, around the training that uses it.

    ``dataset`` adds the data's fingerprint (a resumed run on other data is refused). When
    the block fails (Ctrl-C, an error) after a checkpoint was written, ``echo`` says where
    it is and how to continue.
    """
    if the_plan is None:
        yield None
        return
    if dataset is not None:
        the_plan.dataset = dataset_fingerprint(dataset)
        if the_plan.resume is not None:
            saved = the_plan.resume.meta.get("fingerprint", {}).get("dataset") or {}
            if any(isinstance(saved.get(k), str) and "sha256 " in saved[k] for k in ("train", "valid")):
                the_plan.dataset = dataset_fingerprint(dataset, raw=False)  # a checkpoint of before: its hash
            diff = _differences(saved, the_plan.dataset, label=lambda k: f"dataset {k}")
            if diff:
                raise UsageError(
                    f"--resume: the checkpoint in {str(the_plan.folder)!r} was made on other "
                    f"data: {'; '.join(diff)}; rerun on the same data or drop --resume"
                )
    try:
        yield the_plan
    except BaseException:
        if the_plan.last_written and echo is not None:
            echo(
                f"checkpoint of {the_plan.last_written} kept in {str(the_plan.folder)!r}; "
                f"rerun the same command with --resume to continue from it"
            )
        raise


# ---------------------------------------------------------------------------- the learner's side
def _rng_state(learner, tensors: dict[str, torch.Tensor]) -> dict[str, Any]:
    tensors["rng.generator"] = learner.generator.get_state()
    tensors["rng.torch"] = torch.get_rng_state()
    n_cuda = 0
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state.cpu()
            n_cuda += 1
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, py_gauss = random.getstate()
    return {
        "cuda_devices": n_cuda,
        "numpy": [name, np.asarray(keys).tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": [version, list(internal), py_gauss],
    }


def _set_rng_state(learner, meta: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> None:
    learner.generator.set_state(tensors["rng.generator"])
    torch.set_rng_state(tensors["rng.torch"])
    n_cuda = int(meta.get("cuda_devices", 0))
    if n_cuda and torch.cuda.is_available() and torch.cuda.device_count() >= n_cuda:
        torch.cuda.set_rng_state_all([tensors[f"rng.cuda.{i}"] for i in range(n_cuda)])
    name, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    version, internal, py_gauss = meta["python"]
    random.setstate((version, tuple(internal), py_gauss))


class FitKeeper:
    """Saves one :meth:`Learner.fit`'s state after each epoch and restores it on ``--resume``.

    A trainer may call ``fit`` more than once (say, frozen then unfrozen); each call has an
    index, and a checkpoint resumes only the fit with its index (the earlier ones are rerun,
    which with the same seed reproduces them).
    """

    def __init__(self, the_plan: CheckpointPlan, index: int, config) -> None:
        self.plan = the_plan
        self.index = index
        self.config = config.to_config()
        self.epochs = int(config.epochs)

    def restore(self, learner, optimizer, scheduler, result) -> tuple[int, int, float]:
        """Load the checkpoint into this fit; returns (epochs done, global step, seconds spent)
        (``(0, 0, 0.0)`` when there is nothing to resume for this fit)."""
        ck = self.plan.resume
        if ck is None or ck.fit_index != self.index:
            return 0, 0, 0.0
        self.plan.resume = None  # used once
        meta, tensors = ck.meta, ck.tensors
        diff = _differences(meta.get("fit_config", {}), self.config)
        if diff:
            raise UsageError(
                f"--resume: the checkpoint in {str(self.plan.folder)!r} was made with another "
                f"fit: {'; '.join(diff)}; rerun with its settings or drop --resume"
            )
        try:
            learner.model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
            optimizer.load_state_dict(_decode(meta["optimizer"], tensors))
            scheduler.load_state_dict(_decode(meta["scheduler"], tensors))
            _set_rng_state(learner, meta["rng"], tensors)
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(
                f"the checkpoint in {str(ck.path)!r} does not fit this model ({first}); "
                f"delete {str(self.plan.folder)!r} or drop --resume"
            ) from None
        result.history[:] = [dict(r) for r in meta["history"]]
        result.lrs.update({k: list(v) for k, v in meta.get("lrs", {}).items()})
        if result.moms:
            result.moms.update({k: list(v) for k, v in meta.get("moms", {}).items()})
        result.losses[:] = [float(v) for v in meta.get("losses", [])]
        return int(meta["epoch"]), int(meta["step"]), float(meta.get("train_seconds", 0.0))

    def save(self, learner, optimizer, scheduler, result, epoch: int, step: int, seconds: float) -> None:
        """Write the state after ``epoch`` completed epochs (rank 0 only; atomically)."""
        from embedlab.training import distributed
        from embedlab.io.atomic import atomic_dir

        if not (self.plan.write and distributed.is_writer()):
            return
        tensors: dict[str, torch.Tensor] = {}
        for k, v in learner.model.state_dict().items():
            tensors[f"model.{k}"] = v.detach().to("cpu", copy=True).contiguous()
        meta = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "fit_index": self.index,
            "epoch": int(epoch),
            "epochs": self.epochs,
            "step": int(step),
            "train_seconds": float(seconds),
            "fingerprint": self.plan.fingerprint(),
            "fit_config": self.config,
            "history": result.history,
            "lrs": result.lrs,
            "moms": result.moms,
            "losses": result.losses,
            "optimizer": _encode(optimizer.state_dict(), tensors, "optimizer"),
            "scheduler": _encode(scheduler.state_dict(), tensors, "scheduler"),
            "rng": _rng_state(learner, tensors),
        }
        from embedlab.io.atomic import make_temp_dir, remove_made, sweep_stale
        from embedlab.io.ownership import check_own_dir, discard_owned_dir, make_own_dir, record, remove_owned

        folder = self.plan.folder
        check_own_dir(folder, "the checkpoint folder", way="move it away, or train with --no-checkpoint")
        make_own_dir(folder)
        sweep_stale(folder)
        entries = _entries(folder)
        seq = int(entries[0].name[:6]) + 1 if entries else 1
        name = f"{seq:06d}-fit{self.index:02d}-epoch{epoch:04d}"
        from safetensors.torch import save

        blobs = {STATE_FILE: save(tensors), CHECKPOINT_FILE: (json.dumps(meta, default=_plain) + "\n").encode()}
        tmp = make_temp_dir(folder / name)
        try:
            for fname, blob in blobs.items():
                with open(tmp / fname, "xb") as fh:
                    fh.write(blob)
                    fh.flush()
                    os.fsync(fh.fileno())  # on disk before the rename makes it current
            # listed before it is in place: a file of ours is never unlisted
            record(
                folder,
                {f"{name}/{f}": hashlib.sha256(b).hexdigest() for f, b in blobs.items()},
                by="embedlab checkpoint",
            )
            os.rename(tmp, folder / name)
        except BaseException:
            remove_made(tmp)
            if not _entries(folder):  # interrupted during the first write: leave no empty folder
                discard_owned_dir(folder)
            raise
        # the new one is in place: the older ones go (their listed, unchanged files only)
        remove_owned(folder, [f"{old.name}/{f}" for old in entries for f in blobs])
        self.plan.last_written = f"epoch {epoch}/{self.epochs}"
