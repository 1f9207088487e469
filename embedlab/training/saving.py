"""``learn.save(name)`` / ``learn.load(name)``: a Learner's model and optimizer state in one
safetensors file (fastai's ``Learner.save``/``load``, without pickle).

The file holds the model's ``state_dict`` (``model.*``) and, when a fit has made one, the
optimizer's state (``opt.*`` tensors, its structure as JSON in the header's metadata, encoded as
the training checkpoints encode it) and the learner's shuffling generator (``rng.generator``);
the header also carries ``format: embedlab-learner``, which is how embedlab recognises the file
as its own. Loading reads safetensors and JSON only, and a round trip is bit-identical: every
tensor, and the optimizer's hyper-parameters and step counts. The first fit after a load
continues the optimizer state (:func:`carry_optimizer_state`) and the shuffling order, as
``embedlab train --resume`` continues a checkpoint's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import torch

from embedlab.errors import EmbedlabError, RunFormatError, UsageError

FORMAT = "embedlab-learner"
SUFFIX = ".safetensors"


# ---------------------------------------------------------------------------- JSON <-> state
def encode_state(value: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """A state_dict value as JSON; tensors go to ``tensors`` under a name derived from ``prefix``.

    Tuples and dicts with non-string keys are tagged so they come back as they were (an
    optimizer's ``betas`` stay a tuple, its ``state`` keeps its integer keys).
    """
    if torch.is_tensor(value):
        tensors[prefix] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": prefix}
    if isinstance(value, bool) or value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [encode_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [encode_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: encode_state(v, tensors, f"{prefix}.{k}") for k, v in value.items()}
        return {
            "__items__": [
                [encode_state(k, tensors, f"{prefix}.key{i}"), encode_state(v, tensors, f"{prefix}.{k}")]
                for i, (k, v) in enumerate(value.items())
            ]
        }
    raise EmbedlabError(
        f"cannot keep a {type(value).__name__} ({prefix}) in a training checkpoint; use --no-checkpoint"
    )


def decode_state(value: Any, tensors: Mapping[str, Any], missing: Callable[[str], Exception] | None = None) -> Any:
    """What :func:`encode_state` wrote, its tensors taken from ``tensors``; a tensor name not
    there raises ``missing(name)`` (a RunFormatError by default)."""
    if isinstance(value, list):
        return [decode_state(v, tensors, missing) for v in value]
    if isinstance(value, dict):
        if "__tensor__" in value:
            name = value["__tensor__"]
            if name not in tensors:
                raise (missing or (lambda n: RunFormatError(f"tensor {n!r} is missing from the saved tensors")))(name)
            return tensors[name]
        if "__tuple__" in value:
            return tuple(decode_state(v, tensors, missing) for v in value["__tuple__"])
        if "__items__" in value:
            return {decode_state(k, tensors, missing): decode_state(v, tensors, missing) for k, v in value["__items__"]}
        return {k: decode_state(v, tensors, missing) for k, v in value.items()}
    return value


def plain_json(value: Any) -> Any:
    """A command-line value as plain JSON, for fingerprints (paths absolute, --lr LO:HI as text)."""
    if isinstance(value, Path):
        return str(value.resolve())
    if isinstance(value, (tuple, list)):
        return [plain_json(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)  # LRSlice and friends: their text is what the user wrote


# ---------------------------------------------------------------------------- the learner file
def learner_file(name: str | Path, folder: str | Path = ".") -> Path:
    """Where ``save(name)`` writes: ``folder/models/NAME.safetensors`` for a bare name (fastai's
    ``models/`` folder), the path itself when it has a folder or the ``.safetensors`` suffix."""
    path = Path(name)
    if path.suffix != SUFFIX and len(path.parts) == 1:
        return Path(folder) / "models" / f"{path.name}{SUFFIX}"
    return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)


def save_learner(
    learner: Any, path: str | Path, extra: dict[str, Any] | None = None, force: bool = False, with_opt: bool = True
) -> Path:
    """Write ``learner``'s model (and optimizer state, when it has one and ``with_opt``) to
    ``path`` under the write rule (a new file, or one embedlab wrote; ``force`` otherwise)."""
    from safetensors.torch import save

    from embedlab.io.ownership import owned_file

    path = Path(path)
    tensors = {
        f"model.{k}": v.detach().to("cpu", copy=True).contiguous() for k, v in learner.model.state_dict().items()
    }
    opt = getattr(learner, "opt", None) if with_opt else None
    meta: dict[str, str] = {"format": FORMAT, "extra": json.dumps(extra or {}, default=plain_json, sort_keys=True)}
    if opt is not None:
        meta["optimizer"] = json.dumps(encode_state(opt.state_dict(), tensors, "opt"), sort_keys=True)
        meta["optimizer_class"] = type(opt).__name__
        if getattr(learner, "generator", None) is not None:
            tensors["rng.generator"] = learner.generator.get_state()
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = save(tensors, metadata=meta)
    with owned_file(path, "wb", force=force, option="save", by="embedlab learner.save") as fh:
        fh.write(blob)
    return path


def read_learner_file(path: str | Path) -> tuple[dict[str, Any], dict[str, str]]:
    """(tensors, header metadata) of a file :func:`save_learner` wrote (safetensors only)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{str(path)!r}: no saved learner there (learn.save(name) writes models/NAME{SUFFIX})")
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # noqa: BLE001 - never fall back to pickle
        raise RunFormatError(f"{str(path)!r} is not a safetensors file ({exc}); embedlab never unpickles") from None
    if meta.get("format") != FORMAT:
        raise RunFormatError(f"{str(path)!r} is not a learner embedlab saved (its header has no 'format: {FORMAT}')")
    return tensors, meta


def load_learner_state(
    learner: Any, path: str | Path, make_optimizer=None, with_opt: bool = True
) -> tuple[dict[str, Any], tuple[str, dict] | None]:
    """Load a saved model (and optimizer state) into ``learner``; returns the saved ``extra``
    and, when optimizer state was loaded, ``(optimizer class name, its state_dict)``.

    The optimizer state goes into ``learner.opt``, made first by ``make_optimizer()`` when the
    learner has none yet (a fresh learner); the shuffling generator's state, when saved, into
    ``learner.generator``."""
    tensors, meta = read_learner_file(path)
    state = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        learner.model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"{str(path)!r} holds another model than this learner's ({first})") from None
    loaded = None
    if with_opt and "optimizer" in meta:
        opt = getattr(learner, "opt", None)
        if opt is None and make_optimizer is not None:
            opt = learner.opt = make_optimizer()
        saved = decode_state(json.loads(meta["optimizer"]), tensors)
        if opt is not None:
            try:
                opt.load_state_dict(saved)
            except (ValueError, KeyError, RuntimeError) as exc:
                raise UsageError(
                    f"{str(path)!r}: its optimizer state does not fit this learner's optimizer "
                    f"({str(exc).splitlines()[0]}); load(name, with_opt=False) loads the model "
                    f"alone"
                ) from None
        loaded = (meta.get("optimizer_class", type(opt).__name__), saved)
        if "rng.generator" in tensors and getattr(learner, "generator", None) is not None:
            learner.generator.set_state(tensors["rng.generator"])
    return json.loads(meta.get("extra") or "{}"), loaded


def carry_optimizer_state(opt: Any, saved: dict[str, Any]) -> None:
    """Give ``opt`` (a new fit's optimizer, its hyper-parameters this fit's) the per-parameter
    state of ``saved`` (an optimizer state_dict: Adam's moments and step counts, momentum
    buffers), matching param groups by name and parameters by position within a group; a
    group the saved state lacks, or whose size differs, starts afresh."""
    now = opt.state_dict()
    before = {g.get("name"): g for g in saved["param_groups"]}
    state = {}
    for group in now["param_groups"]:
        old = before.get(group.get("name"))
        if old is None or len(old["params"]) != len(group["params"]):
            continue
        for new_id, old_id in zip(group["params"], old["params"]):
            if old_id in saved["state"]:
                state[new_id] = saved["state"][old_id]
    opt.load_state_dict({"state": state, "param_groups": now["param_groups"]})
