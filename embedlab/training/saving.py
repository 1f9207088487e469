"""``learn.save(name)`` / ``learn.load(name)``: a Learner's model and optimizer state in one
safetensors file (fastai's ``Learner.save``/``load``, without pickle).

The file holds the model's ``state_dict`` (``model.*``) and, when a fit has made one, the
optimizer's state (``opt.*`` tensors, its structure as JSON in the header's metadata, encoded as
the training checkpoints encode it); the header also carries ``format: embedlab-learner``, which
is how embedlab recognises the file as its own. Loading reads safetensors and JSON only, and a
round trip is bit-identical: every tensor, and the optimizer's hyper-parameters and step counts.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedlab.errors import RunFormatError, UsageError

FORMAT = "embedlab-learner"
SUFFIX = ".safetensors"


def learner_file(name: str | Path, folder: str | Path = ".") -> Path:
    """Where ``save(name)`` writes: ``folder/models/NAME.safetensors`` for a bare name (fastai's
    ``models/`` folder), the path itself when it has a folder or the ``.safetensors`` suffix."""
    path = Path(name)
    if path.suffix != SUFFIX and len(path.parts) == 1:
        return Path(folder) / "models" / f"{path.name}{SUFFIX}"
    return path if path.suffix == SUFFIX else path.with_name(path.name + SUFFIX)


def save_learner(learner: Any, path: str | Path, extra: dict[str, Any] | None = None, force: bool = False,
                 with_opt: bool = True) -> Path:
    """Write ``learner``'s model (and optimizer state, when it has one and ``with_opt``) to
    ``path`` under the write rule (a new file, or one embedlab wrote; ``force`` otherwise)."""
    from safetensors.torch import save

    from embedlab.io.ownership import owned_file
    from embedlab.training.checkpoint import _encode, _plain

    path = Path(path)
    tensors = {f"model.{k}": v.detach().to("cpu", copy=True).contiguous()
               for k, v in learner.model.state_dict().items()}
    opt = getattr(learner, "opt", None) if with_opt else None
    meta: dict[str, str] = {"format": FORMAT, "extra": json.dumps(extra or {}, default=_plain, sort_keys=True)}
    if opt is not None:
        meta["optimizer"] = json.dumps(_encode(opt.state_dict(), tensors, "opt"), sort_keys=True)
        meta["optimizer_class"] = type(opt).__name__
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
        raise RunFormatError(f"{str(path)!r} is not a learner embedlab saved (its header has no "
                             f"'format: {FORMAT}')")
    return tensors, meta


def load_learner_state(learner: Any, path: str | Path, make_optimizer=None, with_opt: bool = True) -> dict[str, Any]:
    """Load a saved model (and optimizer state) into ``learner``; returns the saved ``extra``.

    The optimizer state goes into ``learner.opt``, made first by ``make_optimizer()`` when the
    learner has none yet (a fresh learner)."""
    from embedlab.training.checkpoint import _decode

    tensors, meta = read_learner_file(path)
    state = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    try:
        learner.model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise UsageError(f"{str(path)!r} holds another model than this learner's ({first})") from None
    if with_opt and "optimizer" in meta:
        opt = getattr(learner, "opt", None)
        if opt is None and make_optimizer is not None:
            opt = learner.opt = make_optimizer()
        if opt is not None:
            saved = _decode(json.loads(meta["optimizer"]), tensors)
            try:
                opt.load_state_dict(saved)
            except (ValueError, KeyError, RuntimeError) as exc:
                raise UsageError(f"{str(path)!r}: its optimizer state does not fit this learner's optimizer "
                                 f"({str(exc).splitlines()[0]}); load(name, with_opt=False) loads the model "
                                 f"alone") from None
    return json.loads(meta.get("extra") or "{}")
