"""The collab trainer's setup steps (:meth:`embedlab.trainers.collab.CollabTrainer._prepare`
assembles them): the users and items, the rating range, sparse or dense, the model, and the rows
a pretrained initialisation writes into."""

from __future__ import annotations

from typing import Any

import click
import pandas as pd

from embedlab.data import Dataset
from embedlab.errors import UsageError
from embedlab.training.fused_collab import FUSED_OPTIMIZERS
from embedlab.training.fitconfig import resolve_sparse
from embedlab.training.pretrained import Slot


def entity_index(ds: Dataset, entity: dict[str, str], shard) -> tuple[pd.Index, pd.Index]:
    """The users and items (sorted) of the train and valid rows and entity tables, on every rank."""
    from embedlab.training import distributed

    roles = ds.roles
    frames = [ds.train] + ([ds.valid] if ds.valid is not None else [])
    user_keys = [f[roles["user"]] for f in frames]
    item_keys = [f[roles["item"]] for f in frames]
    if "user" in entity:
        user_keys.append(ds.entities[entity["user"]].index.to_series())
    if "item" in entity:
        item_keys.append(ds.entities[entity["item"]].index.to_series())
    users = pd.Index(pd.unique(pd.concat(user_keys, ignore_index=True))).sort_values()
    items = pd.Index(pd.unique(pd.concat(item_keys, ignore_index=True))).sort_values()
    if shard:  # this rank saw only its rows: every rank needs the same tables
        users, items = distributed.union_index(users), distributed.union_index(items)
    return users, items


def rating_range(ds: Dataset, config: dict[str, Any]):
    """``--y-range``, else the rating range widened by 10 % above (from 0 unless a rating is < 0)."""
    y_range = config.get("y_range")
    if not y_range:
        r = ds.roles["rating"]
        lo, hi = ds.rating_range or (float(ds.train[r].min()), float(ds.train[r].max()))
        y_range = (0.0 if lo >= 0 else lo, hi + 0.1 * (hi - min(lo, 0.0)))
    if y_range[0] >= y_range[1]:
        raise UsageError(f"--y-range {y_range[0]} {y_range[1]}: LO must be below HI")
    return y_range


def build_model(config: dict[str, Any], feats, neural, n_users: int, n_items: int, y_range, sparse: bool):
    """The model trained: the features' factorization machine, the neural net or DotBias."""
    from embedlab.training.models import DotBias, EmbeddingNN

    if feats is not None:
        return feats.model(config["n_factors"], tuple(y_range), config["init_std"], config.get("members") or 1)
    if neural:
        return EmbeddingNN(
            n_users,
            n_items,
            layers=neural["layers"],
            ps=neural["ps"],
            emb_drop=neural["emb_drop"],
            y_range=tuple(y_range),
            init_std=config["init_std"],
        )
    return DotBias(n_users, n_items, config["n_factors"], tuple(y_range), init_std=config["init_std"], sparse=sparse)


def choose_sparse(config: dict[str, Any], opt: str, neural, feats, n_weights: int, backend, progress: bool) -> bool:
    """Whether the embeddings train sparse (never the neural model's or the features'); says why."""
    from embedlab.training import distributed

    sparse_mode = config.get("sparse")
    if config.get("kernel") == "fused" and sparse_mode in (None, "auto") and opt in FUSED_OPTIMIZERS and not neural:
        sparse_mode = "on"  # the fused step is the sparse path's update, at any table size
    sparse, notice = (
        (False, None) if neural or feats is not None else resolve_sparse(sparse_mode, n_weights, opt, backend)
    )
    if notice and progress and distributed.is_writer():
        click.echo(notice, err=True)
    return sparse


def pretrained_slots(model, users: pd.Index, items: pd.Index, feats) -> dict[str, Slot]:
    """The user and item rows a pretrained initialisation writes into (the features' own slots)."""
    from embedlab.trainers.collab_features import slots as feature_slots

    if feats is not None and (slots := feature_slots(model, users, items)) is not None:
        return slots
    biases = {
        role: (model.bias_table(role == "item").weight if model.bias_table(role == "item") is not None else None)
        for role in ("user", "item")
    }
    return {
        "user": Slot(users, model.user_emb.weight, biases["user"]),
        "item": Slot(items, model.item_emb.weight, biases["item"]),
    }
