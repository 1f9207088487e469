"""What the collab trainer knows about a user and an item besides their ids (``--features``).

``ids`` is the plain model (:class:`embedlab.training.models.DotBias`). Any other choice trains
:class:`embedlab.training.models.HybridDot`, a factorization machine in which an entity is the
sum of the embeddings of its features:

* ``side``: the columns the dataset declares for the role (``Dataset.side_features``: age
  bucket, occupation, genres...), each its own table;
* ``implicit``: the items a user rated and the users who rated an item, in the TRAINING rows
  only, weighted ``1/sqrt(n)`` (SVD++'s implicit feedback, both ways);
* ``day``: the day of the rating (the timestamp role), days of the training rows only.

Each feature becomes an ordinary embedding table of the run (named after its column; the
implicit ones ``rated`` and ``raters``, the day ``day``), so analyses apply to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from embedlab.data import Dataset
from embedlab.errors import UsageError

#: the parts ``--features`` combines with ``+`` (``ids`` alone: the plain dot-product model)
FEATURE_PARTS = ("ids", "side", "implicit", "day")
#: the names ``--features`` offers (any ``+`` combination of FEATURE_PARTS is accepted)
FEATURE_CHOICES = ("ids", "side", "implicit", "side+implicit", "implicit+day", "side+implicit+day")


def parse_features(text: Any) -> tuple[str, ...]:
    """``"side+implicit"`` -> ``("side", "implicit")``; ``ids`` (or nothing) -> ``()``."""
    parts = [p.strip() for p in str(text or "ids").split("+") if p.strip()]
    bad = [p for p in parts if p not in FEATURE_PARTS]
    if bad or not parts:
        raise UsageError(f"--features {text!r}: combine {', '.join(FEATURE_PARTS)} with '+', e.g. side+implicit+day")
    return tuple(p for p in FEATURE_PARTS[1:] if p in parts)


@dataclass
class FeatureTable:
    """One feature's rows in its side's feature table: ``keys`` at rows ``offset..offset+len``."""

    name: str
    role: str
    column: str | None  # the entity column (side features), None for ids / implicit
    kind: str  # id, category, ordinal, multi, implicit
    keys: pd.Index
    offset: int
    labels: pd.Series | None = None


@dataclass
class SideLayout:
    """A role's features: the tables and each entity's bag (``nn.EmbeddingBag`` form)."""

    role: str
    tables: list[FeatureTable] = field(default_factory=list)
    bags: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def n_feats(self) -> int:
        return sum(len(t.keys) for t in self.tables)


def _multi(values: pd.Series) -> pd.Series:
    return values.dropna().astype(str).str.split("|").apply(lambda v: [x for x in v if x])


def side_layout(
    ds: Dataset,
    role: str,
    keys: pd.Index,
    other: pd.Index,
    parts: tuple[str, ...],
    entity_table: str | None,
    other_labels: pd.Series | None = None,
) -> SideLayout:
    """The features of every entity of ``role`` (``keys``, in code order). Implicit feedback
    comes from ``ds.train`` only: a validation row never enters a bag."""
    col, other_col = ds.roles[role], ds.roles["item" if role == "user" else "user"]
    layout = SideLayout(role)
    ents, feats, weights = [np.arange(len(keys))], [np.arange(len(keys))], [np.ones(len(keys))]
    layout.tables.append(FeatureTable(role, role, None, "id", keys, 0))
    offset = len(keys)
    meta = ds.entities.get(entity_table) if entity_table else None
    declared = ds.side_features.get(role, {}) if "side" in parts else {}
    if declared and meta is None:
        raise UsageError(
            f"{ds.name}: side features {', '.join(declared)} are declared for the {role}s "
            f"but the dataset has no {role} table"
        )
    for column, kind in declared.items():
        if column not in meta:
            raise UsageError(f"{ds.name}: side feature {column!r} is not a column of the {role} table")
        values = meta[column].reindex(keys)
        if kind == "multi":
            lists = _multi(values)
            flat = lists.explode().dropna()
            vocab = pd.Index(sorted(pd.unique(flat.astype(str))))
            ent = keys.get_indexer(flat.index)
            w = 1.0 / np.sqrt(lists.apply(len).reindex(flat.index).to_numpy(dtype=float))
            codes = vocab.get_indexer(flat.astype(str))
        else:
            present = values.dropna()
            vocab = pd.Index(sorted(pd.unique(present)))
            ent, codes, w = keys.get_indexer(present.index), vocab.get_indexer(present), np.ones(len(present))
        name = column if column not in (ds.roles["user"], ds.roles["item"], "user", "item") else f"{role}_{column}"
        layout.tables.append(FeatureTable(name, role, column, kind, vocab, offset))
        ents.append(ent), feats.append(codes + offset), weights.append(w)
        offset += len(vocab)
    if "implicit" in parts:
        pairs = ds.train[[col, other_col]].drop_duplicates()
        ent, codes = keys.get_indexer(pairs[col]), other.get_indexer(pairs[other_col])
        n = np.bincount(ent, minlength=len(keys))
        layout.tables.append(
            FeatureTable("rated" if role == "user" else "raters", role, None, "implicit", other, offset, other_labels)
        )
        ents.append(ent), feats.append(codes + offset), weights.append(1.0 / np.sqrt(n[ent]))
        offset += len(other)
    ent, feat, w = np.concatenate(ents), np.concatenate(feats), np.concatenate(weights)
    order = np.argsort(ent, kind="stable")
    offsets = np.concatenate([[0], np.cumsum(np.bincount(ent, minlength=len(keys)))[:-1]])
    layout.bags = (feat[order].astype(np.int64), offsets.astype(np.int64), w[order].astype(np.float32))
    return layout


def rating_days(frame: pd.DataFrame, column: str) -> pd.Series:
    """The UTC day of each rating (timestamps in seconds, or datetimes)."""
    ts = frame[column]
    t = pd.to_datetime(ts, unit="s") if pd.api.types.is_numeric_dtype(ts) else pd.to_datetime(ts)
    return t.dt.strftime("%Y-%m-%d")


def day_vocab(ds: Dataset) -> pd.Index:
    """The days of the training rows (validation days unseen in training get code 0)."""
    ts = ds.roles.get("timestamp")
    if not ts or ts not in ds.train:
        raise UsageError(f"--features day: {ds.name} has no timestamp column")
    return pd.Index(sorted(pd.unique(rating_days(ds.train, ts))))


def day_codes(ds: Dataset, frame: pd.DataFrame, days: pd.Index) -> np.ndarray:
    """Codes 1..n of ``days`` (0: a day the training rows do not have)."""
    return days.get_indexer(rating_days(frame, ds.roles["timestamp"])).astype(np.int64) + 1


def feature_stats(ds: Dataset, layout: SideLayout, table: FeatureTable) -> pd.DataFrame:
    """Per key of a feature table: ``count`` (training ratings of the entities that have it) and
    their ``mean_rating``."""
    col, r = ds.roles[layout.role], ds.roles["rating"]
    idx, off, _ = layout.bags
    ents = np.repeat(np.arange(len(off)), np.diff(np.append(off, len(idx))))
    inside = (idx >= table.offset) & (idx < table.offset + len(table.keys))
    by_entity = pd.DataFrame({"entity": ents[inside], "code": idx[inside] - table.offset})
    entity_keys = layout.tables[0].keys
    per = ds.train.groupby(col)[r].agg(["count", "sum"]).reindex(entity_keys).fillna(0)
    by_entity["count"] = per["count"].to_numpy()[by_entity["entity"]]
    by_entity["sum"] = per["sum"].to_numpy()[by_entity["entity"]]
    agg = by_entity.groupby("code")[["count", "sum"]].sum().reindex(range(len(table.keys))).fillna(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(agg["count"] > 0, agg["sum"] / agg["count"], np.nan)
    return pd.DataFrame({"count": agg["count"].astype(int).to_numpy(), "mean_rating": mean})


@dataclass
class Hybrid:
    """What the collab trainer needs of a ``--features`` model: the layouts and the day vocabulary."""

    parts: tuple[str, ...]
    user: SideLayout
    item: SideLayout
    days: pd.Index | None

    def tensors(self, ds: Dataset, frame: pd.DataFrame) -> list:
        """The extra model inputs of ``frame``'s rows (the day codes), after user and item."""
        import torch

        return [torch.from_numpy(day_codes(ds, frame, self.days))] if self.days is not None else []

    def model(self, n_factors: int, y_range, init_std: float, members: int = 1):
        from embedlab.training import HybridDot

        return HybridDot(
            self.user.bags,
            self.user.n_feats,
            self.item.bags,
            self.item.n_feats,
            n_factors,
            len(self.days) if self.days is not None else 0,
            y_range,
            init_std,
            members=members,
        )

    def record(self) -> dict[str, Any]:
        """run.json's account of the features: each table's role, column, kind and size."""
        tables = [
            {"name": t.name, "role": t.role, "column": t.column, "kind": t.kind, "rows": len(t.keys)}
            for layout in (self.user, self.item)
            for t in layout.tables
        ]
        if self.days is not None:
            tables.append(
                {"name": "day", "role": "rating", "column": "timestamp", "kind": "day", "rows": len(self.days)}
            )
        return {"features": "+".join(self.parts), "tables": tables}


def hybrid(ds: Dataset, parts: tuple[str, ...], users: pd.Index, items: pd.Index, entity: dict[str, str]) -> Hybrid:
    """The feature layouts of a ``--features`` run (implicit feedback and days: training rows only)."""
    labels = {}
    for role in ("user", "item"):
        meta = ds.entities.get(entity.get(role)) if entity.get(role) else None
        labels[role] = meta["label"].astype(str) if meta is not None and "label" in meta else None
    return Hybrid(
        parts,
        side_layout(ds, "user", users, items, parts, entity.get("user"), labels["item"]),
        side_layout(ds, "item", items, users, parts, entity.get("item"), labels["user"]),
        day_vocab(ds) if "day" in parts else None,
    )


#: run.json's kernel_reason of a --features model
NOT_FUSED = "--features trains the factorization machine with autograd (the fused step is the id model's)"


def check_options(config: dict[str, Any], neural: Any) -> None:
    """A --features model is the dot-product family: not --model nn, not the fused or sparse step."""
    if neural:
        raise UsageError(
            f"--features {config.get('features')}: the features extend the dot-product model; "
            f"use --model dot (or --features ids with --model nn)"
        )
    if str(config.get("sparse") or "auto").lower() == "on":
        raise UsageError(
            "--sparse on: a --features model composes every entity each step (dense); use --sparse auto or off"
        )
    if str(config.get("kernel") or "auto").lower() == "fused":
        raise UsageError(f"--kernel fused: {NOT_FUSED}; use --kernel auto or autograd")


def slots(model, users: pd.Index, items: pd.Index) -> dict[str, Any]:
    """--init-from's slots: the id rows of each side's feature table (the first rows)."""
    from embedlab.training.pretrained import Slot

    return {
        "user": Slot(users, model.user_feat.weight[: len(users)], model.user_feat_bias.weight[: len(users)]),
        "item": Slot(items, model.item_feat.weight[: len(items)], model.item_feat_bias.weight[: len(items)]),
    }


def composed(model) -> dict[str, tuple]:
    """role -> (every entity's composed vectors, its composed bias): the run's user/item tables."""
    import torch

    with torch.no_grad():
        return {
            role: (vectors, bias.mean(1)) for role in ("user", "item") for vectors, bias in [model.entity_vectors(role)]
        }


def member_mse(pred, target):
    """The loss of a --features model: each member's MSE, averaged (training.member_mse)."""
    from embedlab.training import member_mse as loss

    return loss(pred, target)


def composed_l2(reg: float):
    """``--reg`` for a features model: L2 on the composed user and item vectors a batch uses."""

    def penalty(model, inputs):
        uv, _ = model.entity_vectors("user")
        iv, _ = model.entity_vectors("item")
        return reg * (uv[inputs[0]].square().sum(1) + iv[inputs[1]].square().sum(1)).mean()

    return penalty


def feature_tables(ds: Dataset, h: Hybrid, model) -> dict[str, Any]:
    """The run's tables of a features model beyond ``user`` and ``item``: one per side feature
    (``age_bucket``, ``genres``...), the implicit ones (``rated``, ``raters``) and ``day``."""
    from embedlab.run import EmbeddingTable

    out = {}
    for layout in (h.user, h.item):
        weight = getattr(model, f"{layout.role}_feat").weight.detach().cpu().numpy()
        bias = getattr(model, f"{layout.role}_feat_bias").weight.detach().cpu().numpy().mean(1)  # over members
        for t in layout.tables[1:]:
            rows = slice(t.offset, t.offset + len(t.keys))
            meta = feature_stats(ds, layout, t)
            if t.kind == "implicit":  # the vectors of the other role's entities: their counts as such
                other = ds.roles["item" if layout.role == "user" else "user"]
                stats = ds.train.groupby(other)[ds.roles["rating"]].agg(["count", "mean"]).reindex(t.keys)
                meta = pd.DataFrame(
                    {"count": stats["count"].fillna(0).astype(int).to_numpy(), "mean_rating": stats["mean"].to_numpy()}
                )
            labels = (
                t.labels.reindex(t.keys).fillna(pd.Series(t.keys.astype(str), index=t.keys))
                if t.labels is not None
                else pd.Series(t.keys.astype(str), index=t.keys)
            )
            attrs = {
                "count_column": "count",
                "target_column": "mean_rating",
                "feature_of": layout.role,
                "feature_kind": t.kind,
            }
            if t.kind == "ordinal":
                attrs["ordinal"] = True
            out[t.name] = EmbeddingTable(
                name=t.name,
                keys=t.keys.to_numpy(),
                labels=labels.astype(str).to_numpy(),
                vectors=weight[rows].copy(),
                bias_values=bias[rows].copy(),
                metadata=meta,
                attrs=attrs,
            )
    if h.days is not None:
        codes = pd.Series(day_codes(ds, ds.train, h.days) - 1)
        stats = (
            ds.train[ds.roles["rating"]].groupby(codes.to_numpy()).agg(["count", "mean"]).reindex(range(len(h.days)))
        )
        out["day"] = EmbeddingTable(
            name="day",
            keys=h.days.to_numpy(),
            labels=h.days.to_numpy(),
            vectors=model.day_emb.weight.detach().cpu().numpy()[1:].copy(),
            bias_values=model.day_bias.weight.detach().cpu().numpy().mean(1)[1:].copy(),
            metadata=pd.DataFrame(
                {"count": stats["count"].fillna(0).astype(int).to_numpy(), "mean_rating": stats["mean"].to_numpy()}
            ),
            attrs={
                "count_column": "count",
                "target_column": "mean_rating",
                "feature_of": "rating",
                "feature_kind": "day",
            },
        )
    return out


def dot_of_run(run, state: dict, y_range):
    """A saved --features run as the plain dot-product model that predicts what it predicts for a
    day it has not seen: the composed user and item tables, the global bias folded into the user
    biases (a run with ``day`` leaves out each rating day's term)."""
    import torch

    from embedlab.training import DotBias

    members = int((run.meta.get("model") or {}).get("members", 1))
    if members > 1:
        raise UsageError(
            f"run {run.path or ''}: a --members {members} run averages {members} models' squashed "
            f"outputs; predicting from its saved tables is not supported yet"
        )
    user, item = run.table("user"), run.table("item")
    model = DotBias(len(user.keys), len(item.keys), user.vectors.shape[1], tuple(y_range) if y_range else None)
    with torch.no_grad():
        model.user_emb.weight.copy_(torch.from_numpy(user.vectors))
        model.item_emb.weight.copy_(torch.from_numpy(item.vectors))
        model.user_bias.weight.copy_(torch.from_numpy(user.bias_values).reshape(-1, 1) + state["global_bias"])
        model.item_bias.weight.copy_(torch.from_numpy(item.bias_values).reshape(-1, 1))
    return model
