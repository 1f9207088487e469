"""dotmf: matrix factorisation without biases (rating = user . item), on embedlab's engine."""

from __future__ import annotations

from typing import Any

import click
import numpy as np
import pandas as pd

from embedlab import EmbeddingTable, Prepared, Run, hookimpl, run_meta
from embedlab.data import check_entity_tables, collab_entity_stats
from embedlab.training import Slot, fit_config, fit_options, init_from_config

OPTIONS = [
    click.Option(
        ["--n-factors"],
        type=click.IntRange(1, 1024),
        default=16,
        show_default=True,
        help="Embedding size of users and items.",
    ),
    *fit_options(epochs=5, lr=5e-2, wd=0.01, bs=128, seed=42),  # also --init-from/--init-table/--init-keys
]


def _model(n_users: int, n_items: int, n_factors: int):
    import torch
    from torch import nn

    class DotProduct(nn.Module):
        def __init__(self):
            super().__init__()
            self.user, self.item = nn.Embedding(n_users, n_factors), nn.Embedding(n_items, n_factors)
            for table in (self.user, self.item):
                nn.init.normal_(table.weight, std=0.1)

        def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
            return (self.user(users) * self.item(items)).sum(1)

    return DotProduct()


class DotmfTrainer:
    name = "dotmf"
    kind = "collab"
    description = "user . item, no biases (an example trainer)"
    options = OPTIONS
    resumable = True  # train() passes checkpoint= on to Learner.fit: --resume works

    def prepare(self, dataset, config: dict[str, Any], progress: bool = True) -> Prepared:
        import torch

        from embedlab.training import Learner, seed_everything

        defaults = {o.name: o.default for o in OPTIONS}
        config = {**defaults, **{k: v for k, v in config.items() if v is not None}}
        fit = fit_config(config, OPTIONS)
        config.update(fit.to_config())  # the run records the resolved fit settings
        roles = dataset.roles
        frames = [f for f in (dataset.train, dataset.valid) if f is not None]
        keys = {
            role: pd.Index(pd.unique(pd.concat([f[roles[role]] for f in frames]))).sort_values()
            for role in ("user", "item")
        }

        def tensors(frame):
            return (
                torch.from_numpy(keys["user"].get_indexer(frame[roles["user"]]).astype(np.int64)),
                torch.from_numpy(keys["item"].get_indexer(frame[roles["item"]]).astype(np.int64)),
                torch.tensor(frame[roles["rating"]].to_numpy(np.float32)),
            )

        seed_everything(config["seed"])  # the same seed, the same initial vectors
        model = _model(len(keys["user"]), len(keys["item"]), config["n_factors"])
        valid = tensors(dataset.valid) if dataset.valid is not None and len(dataset.valid) else None
        learner = Learner(
            model,
            tensors(dataset.train),
            valid,
            loss_fn=torch.nn.functional.mse_loss,
            bs=config["bs"],
            seed=config["seed"],
        )
        init_from_config(
            config,
            {"user": Slot(keys["user"], model.user.weight, None), "item": Slot(keys["item"], model.item.weight, None)},
            learner,
            progress=progress,
        )

        def finish(result) -> Run:
            tables = {
                role: self._table(dataset, role, keys[role], getattr(model, role).weight) for role in ("user", "item")
            }
            metrics = {k: v for k, v in result.final.items() if k.startswith("valid_")}
            meta = run_meta(
                dataset, self, config, config["seed"], metrics, result.history, task="regression", **result.record()
            )
            weights = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
            return Run(meta, tables, weights)

        return Prepared(learner, config, fit, finish)

    def train(self, dataset, config: dict[str, Any], progress: bool = True, checkpoint: Any = None) -> Run:
        prepared = self.prepare(dataset, config, progress)
        result = prepared.learner.fit(prepared.fit_config, progress=progress, checkpoint=checkpoint)
        return prepared.finish(result)

    def lr_find(self, dataset, config: dict[str, Any], progress: bool = True):
        prepared = self.prepare(dataset, config, progress)
        return prepared.learner.lr_find(config=prepared.fit_config, progress=progress)

    @staticmethod
    def _table(dataset, role: str, keys: pd.Index, weight) -> EmbeddingTable:
        """Labels from the dataset's entity table for the role, counts from the ratings."""
        column = dataset.roles[role]
        entity = check_entity_tables(dataset, ("user", "item")).get(role)
        meta = dataset.entities[entity].reindex(keys) if entity else pd.DataFrame(index=keys)
        labels = meta.pop("label") if "label" in meta else pd.Series([f"{role} {k}" for k in keys], index=keys)
        stats = collab_entity_stats(dataset.train, column, dataset.roles["rating"]).reindex(keys)
        meta["count"] = stats["count"].fillna(0).astype(int).to_numpy()
        labels = labels.fillna(pd.Series([f"{role} {k}" for k in keys], index=keys))
        attrs = {**(dataset.entities[entity].attrs if entity else {}), "count_column": "count"}
        return EmbeddingTable(
            role,
            keys.to_numpy(),
            labels.to_numpy(),
            weight.detach().cpu().numpy().copy(),
            metadata=meta.reset_index(drop=True),
            attrs=attrs,
        )


@hookimpl
def embedlab_register_trainers(register):
    register(DotmfTrainer())


__version__ = "0.1.0"  # setup.cfg reads it (version = attr: ...)
