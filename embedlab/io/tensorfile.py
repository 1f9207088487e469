"""Tensor files for ``embedlab import``: safetensors, PyTorch state dicts and fastai models.

Nothing here executes code from a file. ``.pt``/``.pth`` load through
``torch.load(weights_only=True)`` only. fastai's ``learn.save`` keeps the optimizer state by
default, and that state holds ``fastcore.foundation.L`` objects, which weights_only refuses:
such a file is read with *inert stand-ins* for those classes put on weights_only's allow-list
(objects that only keep the state pickle hands them; no fastcore code is imported or run). Any
other class a file names is refused with one line saying what to save instead. Pickled formats
(fastai ``learn.export()``, gensim's native ``save``) are refused the same way.

A state dict becomes tables by rule:

* fastai ``EmbeddingDotBias`` (``u_weight/i_weight/u_bias/i_bias``): tables ``user`` and
  ``item`` with their biases;
* fastai ``EmbeddingNN`` / ``TabularModel`` (``embeds.N.weight``): one table per embedding, named
  after the N-th entry of ``--classes`` (``dls.classes``; ``embeds_N`` without it);
* otherwise ``--tensor NAME=TABLE`` picks 2-D tensors (without it: the only 2-D tensor); a 1-D
  tensor (or n x 1) of the same length whose name shares the table tensor's prefix is its bias.

``--classes FILE`` (JSON ``{name: [classes...]}`` or CSV ``name,class`` rows in order) names the
rows: fastai's row 0 is ``#na#`` (the unknown category), which is left out.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from embedlab.errors import DataError, UsageError
from embedlab.io.readers import Read

#: the modules whose classes may stand in, inert, while a state dict is read (fastai's optimizer state)
STAND_IN_MODULES = ("fastcore.",)
#: at most this many different classes are stood in for one file
MAX_STAND_INS = 16

_PICKLE_ADVICE = {
    "fastai": "fastai's learn.export() pickles the whole Learner, which embedlab never unpickles; save the "
    "weights with learn.save('model') (models/model.pth) and the classes with "
    "json.dump({k: list(map(str, v)) for k, v in dls.classes.items()}, open('classes.json', 'w'))",
    "gensim": "gensim's native save() pickles the model, which embedlab never unpickles; write "
    "model.wv.save_word2vec_format('vectors.bin', binary=True) and import that",
    "other": "pickled Python objects are never unpickled by embedlab; save the tensors with "
    "safetensors (safetensors.torch.save_file(state_dict, 'model.safetensors')) or "
    "torch.save(model.state_dict(), 'model.pt')",
}


class _Inert:
    """Stands in for a class a checkpoint names (fastcore's ``L``): keeps whatever pickle gives it
    and never runs any code of that class."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Inert":
        obj = object.__new__(cls)
        obj.__dict__["_args"] = args
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:  # pickle's SETITEMS on a dict subclass
        self.__dict__.setdefault("_items", {})[key] = value

    def append(self, value: Any) -> None:  # APPENDS on a list subclass
        self.__dict__.setdefault("_list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("_list", []).extend(values)


def _stand_in(qualified: str) -> type:
    module, _, name = qualified.rpartition(".")
    return type(name, (_Inert,), {"__module__": module, "__qualname__": name})


def pickle_refusal(path: Path, head: bytes) -> str | None:
    """The one-line reason to refuse a pickled file (None when ``head`` is not a pickle): a plain
    pickle, or torch.save's zip of one (fastai's ``learn.export()`` writes that)."""
    if head[:2] == b"PK":
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                member = next((n for n in zf.namelist() if n.endswith("data.pkl")), None)
                head = zf.open(member).read(1 << 16) if member else b""
        except (zipfile.BadZipFile, OSError):
            return None
    if not head or head[0] != 0x80 or len(head) < 2 or head[1] > 5:
        return None
    text = head.lower()
    kind = "fastai" if b"fastai" in text or b"learner" in text else "gensim" if b"gensim" in text else "other"
    return f"{path}: a pickled file; {_PICKLE_ADVICE[kind]}"


def load_torch(path: Path) -> dict[str, Any]:
    """A ``.pt``/``.pth`` file's tensors through ``torch.load(weights_only=True)``, standing in
    inert classes for fastcore's (see the module docstring); the state dict (``learn.save``'s
    ``{'model': ..., 'opt': ...}`` unwrapped)."""
    import pickle

    import torch

    with open(path, "rb") as fh:
        head = fh.read(4096)
    if head[:2] != b"PK" and pickle_refusal(path, head) and b"torch" not in head[:4096]:
        raise DataError(pickle_refusal(path, head))
    stand_ins: list[tuple[type, str]] = []
    for _ in range(MAX_STAND_INS + 1):
        try:
            with torch.serialization.safe_globals(stand_ins):
                obj = torch.load(path, map_location="cpu", weights_only=True, mmap=head[:2] == b"PK")
            break
        except pickle.UnpicklingError as exc:
            name = _refused_global(str(exc))
            if name is None or not name.startswith(STAND_IN_MODULES) or len(stand_ins) >= MAX_STAND_INS:
                raise DataError(_refusal(path, name)) from None
            stand_ins.append((_stand_in(name), name))
        except (RuntimeError, OSError, EOFError, ValueError) as exc:
            raise DataError(f"{path}: not a readable PyTorch file ({str(exc).splitlines()[0][:200]})") from None
    return _state_dict(path, obj)


def _refused_global(message: str) -> str | None:
    found = re.search(r"GLOBAL ([\w.]+) was not an allowed global", message)
    if found is None:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", message)
    return found.group(1) if found else None


def _refusal(path: Path, name: str | None) -> str:
    if name and name.startswith("fastai."):
        return f"{path}: holds a pickled fastai object ({name}), not a state dict; {_PICKLE_ADVICE['fastai']}"
    what = f"a pickled {name} object" if name else "pickled objects that weights_only refuses"
    return f"{path}: holds {what}; {_PICKLE_ADVICE['other']}"


def _state_dict(path: Path, obj: Any) -> dict[str, Any]:
    import torch

    if (
        isinstance(obj, dict) and "model" in obj and isinstance(obj["model"], dict) and ("opt" in obj or len(obj) == 1)
    ):  # fastai's learn.save(with_opt=True)
        obj = obj["model"]
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]  # a common checkpoint layout
    if not isinstance(obj, dict):
        raise DataError(
            f"{path}: holds a {type(obj).__name__}, not a state dict (name -> tensor); save model.state_dict()"
        )
    tensors = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise DataError(f"{path}: holds no tensors")
    return tensors


def load_safetensors(path: Path) -> dict[str, Any]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DataError(f"{path}: not a readable safetensors file ({str(exc).splitlines()[0][:200]})") from None


def read_classes(path: Path) -> dict[str, list[str]]:
    """``--classes``: JSON ``{name: [classes...]}`` or CSV with ``name,class`` rows (in order)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: classes file not found")
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise DataError(f"{path}: expected a JSON object {{name: [class, ...]}} (fastai's dls.classes)")
        return {str(k): [str(c) for c in v] for k, v in data.items()}
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
        raise DataError(f"{path}: not a readable CSV ({str(exc).splitlines()[0]})") from None
    if list(frame.columns[:2]) != ["name", "class"]:
        raise DataError(
            f"{path}: a classes CSV has columns name,class (one row per class, in order); "
            f"found {', '.join(frame.columns)}"
        )
    out: dict[str, list[str]] = {}
    for name, cls in zip(frame["name"], frame["class"]):
        out.setdefault(name, []).append(cls)
    return out


def _array(t: Any) -> np.ndarray:
    import torch

    return np.array(t.detach().to(torch.float32).cpu().numpy())  # owned and writable, off the file's map


def _fastai_layout(tensors: dict[str, Any]) -> str | None:
    names = set(tensors)
    if {"u_weight.weight", "i_weight.weight"} <= names:
        return "fastai-EmbeddingDotBias"
    if any(re.fullmatch(r"embeds\.\d+\.weight", n) for n in names):
        return "fastai-embeds"
    return None


def _named(path: Path, part: Read, classes: list[str] | None, what: str, cname: str) -> Read:
    if classes is None:
        return part
    rows = len(part.vectors)
    if len(classes) != rows:
        raise DataError(
            f"{path}: {what} has {rows:,} rows, --classes {cname!r} names {len(classes):,}; "
            f"write the classes of the same DataLoaders the model was trained with"
        )
    keys = np.asarray(classes, dtype=object)
    if rows and classes[0] == "#na#":  # fastai's unknown category: never a real entity
        part.vectors, keys = part.vectors[1:], keys[1:]
        part.bias = part.bias[1:] if part.bias is not None else None
        part.notes.append(f"{what}: fastai's '#na#' row left out")
    part.keys = keys
    return part


def state_dict_tables(
    path: Path,
    tensors: dict[str, Any],
    wanted: dict[str, str],
    classes: dict[str, list[str]] | None,
    bias_name: str | None = None,
) -> tuple[str, list[Read]]:
    """(layout, tables) of a state dict: fastai's layouts recognised, else ``wanted`` tensors
    (``--tensor NAME=TABLE``) or the only 2-D tensor; see the module docstring."""
    for name in wanted:
        if name not in tensors:
            raise UsageError(f"{path}: no tensor {name!r}; it holds: {', '.join(sorted(tensors))}")
        if tensors[name].ndim != 2:
            raise DataError(
                f"{path}: tensor {name!r} has shape {tuple(tensors[name].shape)}, not 2-D "
                f"(entities x dimensions); name a 2-D tensor with --tensor"
            )
    layout = None if wanted else _fastai_layout(tensors)
    class_items = list((classes or {}).items())
    if layout == "fastai-EmbeddingDotBias":
        out = []
        for i, (prefix, table) in enumerate((("u", "user"), ("i", "item"))):
            part = Read(_array(tensors[f"{prefix}_weight.weight"]), table=table, source=f"{prefix}_weight.weight")
            bias = tensors.get(f"{prefix}_bias.weight")
            if bias is not None:
                part.bias = _array(bias).reshape(-1)
            cname, cls = class_items[i] if i < len(class_items) else (table, None)
            out.append(_named(path, part, cls, f"{prefix}_weight", cname))
        return layout, out
    if layout == "fastai-embeds":
        idx = sorted(int(m.group(1)) for n in tensors if (m := re.fullmatch(r"embeds\.(\d+)\.weight", n)))
        if classes is not None and len(class_items) < len(idx):
            raise DataError(
                f"{path}: {len(idx)} embeddings (embeds.0-{idx[-1]}), --classes names {len(class_items)}; "
                f"write dls.classes of the model's DataLoaders"
            )
        out = []
        for i in idx:
            cname, cls = class_items[i] if classes is not None else (f"embeds_{i}", None)
            part = Read(_array(tensors[f"embeds.{i}.weight"]), table=cname, source=f"embeds.{i}.weight")
            out.append(_named(path, part, cls, f"embeds.{i}", cname))
        return layout, out
    chosen = dict(wanted)
    if not chosen:
        two_d = [n for n, t in tensors.items() if t.ndim == 2]
        if len(two_d) != 1:
            listed = ", ".join(f"{n} {tuple(t.shape)}" for n, t in sorted(tensors.items())[:12])
            raise UsageError(
                f"{path}: {'several' if two_d else 'no'} 2-D tensors ({listed}); choose with "
                f"--tensor NAME=TABLE (repeatable)"
            )
        chosen = {two_d[0]: re.sub(r"\.weight$", "", two_d[0]) or "item"}
    out = []
    for name, table in chosen.items():
        part = Read(_array(tensors[name]), table=table, source=name)
        b = _bias_tensor(path, tensors, name, len(part.vectors), bias_name)
        if b is not None:
            part.bias = _array(tensors[b]).reshape(-1)
            part.notes.append(f"bias from tensor {b!r}")
        if classes is not None and table in classes:
            part = _named(path, part, classes[table], name, table)
        out.append(part)
    return "state-dict", out


def _bias_tensor(path: Path, tensors: dict[str, Any], name: str, n: int, bias_name: str | None) -> str | None:
    if bias_name is not None:
        if bias_name not in tensors:
            return None  # --bias then names a metadata column
        shape = tuple(tensors[bias_name].shape)
        if shape not in ((n,), (n, 1)):
            raise DataError(
                f"{path}: bias tensor {bias_name!r} has shape {shape}; it needs one value per row of {name!r} ({n:,})"
            )
        return bias_name
    stem = re.split(r"[._]", name)[0]
    found = [
        k
        for k, t in tensors.items()
        if k != name and tuple(t.shape) in ((n,), (n, 1)) and "bias" in k and re.split(r"[._]", k)[0] == stem
    ]
    return found[0] if len(found) == 1 else None
