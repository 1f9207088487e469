"""Collaborative filtering: dot product + user/item biases, sigmoid-scaled ``y_range``.

The run's tables are named by role, ``user`` and ``item``; their labels and metadata come from
the dataset's entity tables for those roles, whatever they are called
(:func:`embedlab.data.check_entity_tables`: ``Dataset.entity_tables``, else the table named
after the role or after its column). An entity table no role takes is an error, not dropped.

Defaults were chosen on the real MovieLens 100K u1 split (see README, Benchmarks).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click
import numpy as np
import pandas as pd

from embedlab.data import Dataset, check_entity_tables, collab_entity_stats
from embedlab.errors import UsageError
from embedlab.training.fitconfig import fit_config, fit_options, resolve_sparse, sparse_option
from embedlab.hookspecs import hookimpl
from embedlab.training.pretrained import Slot, init_from_config
from embedlab.run import EmbeddingTable, Run
from embedlab.trainers.base import Prepared, option_defaults, run_meta, torch_threads

if TYPE_CHECKING:  # torch, the learner and the model load in the methods that train (fast CLI)
    import torch

    from embedlab.training.lr_find import LRFindResult
    from embedlab.training.models import DotBias

OPTIONS = [
    click.Option(["--n-factors"], type=click.IntRange(1, 4096), default=100, show_default=True,
                 help="Embedding size (latent factors) of users and items."),
    click.Option(["--reg"], type=click.FloatRange(0), default=0.05, show_default=True,
                 help="L2 penalty on the embedding rows each batch looks up (per rating, so an "
                      "entity is regularised in proportion to how often it is seen, as in classic "
                      "matrix factorisation). Works with --wd, which shrinks whole tables."),
    click.Option(["--y-range"], type=(float, float), default=None,
                 help="Output range LO HI of the sigmoid; default: the rating scale, "
                      "widened by 10% at the top (0 5.5 for 1-5 stars)."),
    click.Option(["--threads"], type=click.IntRange(0), default=1, show_default=True,
                 help="Torch threads while training (0: torch's default). One is fastest for "
                      "these small batches, and much faster when the machine is busy."),
    click.Option(["--device"], default="auto", show_default=True,
                 help="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N. Under torchrun, "
                      "cuda is each rank's cuda:LOCAL_RANK."),
    click.Option(["--shard-data"], is_flag=True,
                 help="Under torchrun: each process keeps only its 1/N shard of the training "
                      "rows (else every process holds them all and takes its slice of each "
                      "global batch, which reproduces a 1-process run)."),
    sparse_option(),
    click.Option(["--init-std"], type=click.FloatRange(0), default=0.01, show_default=True,
                 help="Standard deviation of the initial embeddings."),
    *fit_options(epochs=5, lr=5e-3, wd=0.05, bs=256, seed=42),
]


def _codes(values: pd.Series, vocab: pd.Index) -> torch.Tensor:
    import torch

    return torch.from_numpy(vocab.get_indexer(values).astype(np.int64))


class CollabTrainer:
    name = "collab"
    kind = "collab"
    options = OPTIONS
    resumable = True  # train() takes checkpoint= and passes it to Learner.fit

    def default_config(self) -> dict[str, Any]:
        return option_defaults(self.options)

    # ---------------------------------------------------------------- setup
    def _prepare(self, ds: Dataset, config: dict[str, Any], progress: bool = True):
        import torch
        from torch import nn

        from embedlab.training import distributed
        from embedlab.training.learner import Learner, seed_everything
        from embedlab.training.models import DotBias

        roles = ds.roles
        u, i, r = roles["user"], roles["item"], roles["rating"]
        entity = check_entity_tables(ds, ("user", "item"))  # role -> entity table (checked)
        device = distributed.resolve_device(config.get("device"))
        ddp = distributed.setup(device)
        shard = _loader_shard(ds, config, ddp)
        frames = [ds.train] + ([ds.valid] if ds.valid is not None else [])
        user_keys = [f[u] for f in frames]
        item_keys = [f[i] for f in frames]
        if "user" in entity:
            user_keys.append(ds.entities[entity["user"]].index.to_series())
        if "item" in entity:
            item_keys.append(ds.entities[entity["item"]].index.to_series())
        users = pd.Index(pd.unique(pd.concat(user_keys, ignore_index=True))).sort_values()
        items = pd.Index(pd.unique(pd.concat(item_keys, ignore_index=True))).sort_values()
        if shard:  # this rank saw only its rows: every rank needs the same tables
            users, items = distributed.union_index(users), distributed.union_index(items)

        def tensors(df):
            return (_codes(df[u], users), _codes(df[i], items),
                    torch.tensor(df[r].to_numpy(dtype=np.float32)))

        train = tensors(ds.train)
        if ddp and config.get("shard_data") and not shard:  # the loader read everything: drop the rest
            train = distributed.shard_rows(train, config["seed"])
        valid = tensors(ds.valid) if ds.valid is not None and len(ds.valid) else None
        y_range = config.get("y_range")
        if not y_range:
            lo, hi = ds.rating_range or (float(ds.train[r].min()), float(ds.train[r].max()))
            y_range = (0.0 if lo >= 0 else lo, hi + 0.1 * (hi - min(lo, 0.0)))
        if y_range[0] >= y_range[1]:
            raise UsageError(f"--y-range {y_range[0]} {y_range[1]}: LO must be below HI")
        backend = ("nccl" if device.type == "cuda" else "gloo") if ddp else None
        sparse, notice = resolve_sparse(config.get("sparse"), (len(users) + len(items)) * (config["n_factors"] + 1),
                                        fit_config(config, OPTIONS).opt, backend)
        if notice and progress and distributed.is_writer():
            click.echo(notice, err=True)
        seed_everything(config["seed"])  # the same seed, the same initial embeddings
        model = DotBias(len(users), len(items), config["n_factors"], tuple(y_range),
                        init_std=config["init_std"], sparse=sparse)
        model.to(device)
        train = tuple(t.to(device) for t in train)
        valid = None if valid is None else tuple(t.to(device) for t in valid)
        kw = {"sharded": bool(config.get("shard_data"))} if ddp else {}
        learner_cls = distributed.DistributedLearner if ddp else Learner
        learner = learner_cls(model, train, valid, **kw, loss_fn=nn.functional.mse_loss,
                              metrics=rating_metrics, bs=config["bs"], seed=config["seed"],
                              regularizer=_row_l2(config["reg"]) if config.get("reg") else None)
        init_from_config(config, {"user": Slot(users, model.user_emb.weight, model.user_bias.weight),
                                  "item": Slot(items, model.item_emb.weight, model.item_bias.weight)},
                         learner, progress=progress)
        return users, items, model, learner, tuple(y_range)

    # ---------------------------------------------------------------- API
    def train(self, ds: Dataset, config: dict[str, Any], progress: bool = True, checkpoint: Any = None) -> Run:
        from embedlab.training import distributed

        prepared = self.prepare(ds, config, progress)
        with torch_threads(prepared.threads):
            fit = prepared.learner.fit(prepared.fit_config, progress=progress and distributed.is_writer(),
                                       checkpoint=checkpoint)
        return prepared.finish(fit)

    def prepare(self, ds: Dataset, config: dict[str, Any], progress: bool = True) -> Prepared:
        """The model and its Learner, untrained; ``finish(fit)`` makes the run (see
        :class:`embedlab.trainers.base.Prepared`)."""
        config = {**self.default_config(), **{k: v for k, v in config.items() if v is not None}}
        users, items, model, learner, y_range = self._prepare(ds, config, progress)
        entity = check_entity_tables(ds, ("user", "item"))
        config["y_range"] = list(y_range)
        fit_cfg = fit_config(config, self.options)
        config.update(fit_cfg.to_config())
        return Prepared(learner, config, fit_cfg,
                        lambda fit: self._finish(ds, config, users, items, model, y_range, entity, fit),
                        threads=config.get("threads"))

    def _finish(self, ds: Dataset, config: dict[str, Any], users: pd.Index, items: pd.Index, model: DotBias,
                y_range: tuple, entity: dict, fit: Any) -> Run:
        model.looked_up = None
        metrics = {k: v for k, v in fit.final.items() if k.startswith("valid_")}
        metrics["train_seconds"] = fit.train_seconds
        shard = ds.info.get("shard")
        metrics["train_rows"] = int(shard["train_rows"] if shard else len(ds.train))
        metrics["valid_rows"] = int(len(ds.valid)) if ds.valid is not None else 0
        tables = {
            "user": self._table("user", users, model.user_emb.weight, model.user_bias.weight,
                                ds, ds.roles["user"], sharded=bool(shard), entity=entity.get("user")),
            "item": self._table("item", items, model.item_emb.weight, model.item_bias.weight,
                                ds, ds.roles["item"], sharded=bool(shard), entity=entity.get("item")),
        }
        meta = run_meta(ds, self, config, config["seed"], metrics, fit.history, task="regression",
                        **fit.record(),
                        model={"class": "DotBias", "n_users": len(users), "n_items": len(items),
                               "n_factors": config["n_factors"], "y_range": list(y_range),
                               "sparse": model.sparse})
        tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return Run(meta, tables, tensors)

    def lr_find(self, ds: Dataset, config: dict[str, Any], progress: bool = True) -> LRFindResult:
        config = {**self.default_config(), **{k: v for k, v in config.items() if v is not None}}
        *_, learner, _ = self._prepare(ds, config, progress)
        return learner.lr_find(config=fit_config(config, self.options), progress=progress)

    @staticmethod
    def _table(name: str, keys: pd.Index, vectors, bias, ds: Dataset, key_col: str,
               sharded: bool = False, entity: str | None = None) -> EmbeddingTable:
        stats = collab_entity_stats(ds.train, key_col, ds.roles["rating"]).reindex(keys)
        if sharded:  # this rank's training rows only: sum counts and ratings over the ranks
            from embedlab.training import distributed

            count = stats["count"].fillna(0).to_numpy(dtype=np.float64)
            total = distributed.all_reduce_sum((stats["mean_rating"].astype(np.float64) * count).fillna(0).to_numpy())
            count = distributed.all_reduce_sum(count)
            with np.errstate(invalid="ignore", divide="ignore"):
                stats = pd.DataFrame({"count": count, "mean_rating": np.where(count > 0, total / count, np.nan)},
                                     index=keys)
        stats["count"] = stats["count"].fillna(0).astype(int)
        meta = ds.entities.get(entity) if entity is not None else None
        if meta is not None:
            meta = meta.reindex(keys)
            labels = meta["label"].fillna(pd.Series(keys.astype(str), index=keys)) \
                if "label" in meta else pd.Series(keys.astype(str), index=keys)
            extra = meta.drop(columns=["label"], errors="ignore").drop(
                columns=[c for c in ("count", "mean_rating") if c in meta], errors="ignore")
            metadata = pd.concat([stats, extra], axis=1)
        else:
            labels = pd.Series(keys.astype(str), index=keys)
            metadata = stats
        return EmbeddingTable(
            name=name, keys=keys.to_numpy(), labels=labels.astype(str).to_numpy(),
            vectors=vectors.detach().cpu().numpy().copy(),
            bias_values=bias.detach().cpu().numpy().reshape(-1).copy(),
            metadata=metadata.reset_index(drop=True),
            attrs={"count_column": "count", "target_column": "mean_rating",
                   **({"entity_table": entity} if entity not in (None, name) else {}),
                   **(dict(meta.attrs) if meta is not None else {})})


def _loader_shard(ds: Dataset, config: dict[str, Any], ddp: bool) -> dict | None:
    """``ds.info["shard"]`` when the loader kept only this rank's training rows (checked to be
    this process's shard of this run: rank, world size and seed), else None."""
    shard = ds.info.get("shard")
    if not shard:
        return None
    from embedlab.training import distributed

    mine = {"rank": distributed.rank(), "world": distributed.world_size(), "seed": config["seed"]}
    if not (ddp and config.get("shard_data")) or any(shard.get(k) != v for k, v in mine.items()):
        raise UsageError(f"{ds.name}: the data holds only the shard {dict((k, shard.get(k)) for k in mine)} "
                         f"but this process is {mine} (shard_data={bool(config.get('shard_data'))}); "
                         f"load it again for this process")
    return shard


def _row_l2(reg: float):
    """L2 on the user and item factors a batch looks up, averaged over its ratings.

    With sparse gradients the forward's own lookups are reused (``DotBias.looked_up``): the
    same penalty, without a second sparse gradient per table to coalesce. The dense path looks
    the rows up again, exactly as the ml-100k defaults were tuned.
    """
    def penalty(model: DotBias, inputs) -> torch.Tensor:
        users, items = inputs
        rows, model.looked_up = model.looked_up, None
        if rows is not None and rows[0] is users and rows[1] is items:
            # square(): the same values and gradient as pow(2), ~40% faster backward
            return reg * (rows[2].square().sum(1) + rows[3].square().sum(1)).mean()
        u, i = model.user_emb(users), model.item_emb(items)
        return reg * (u.pow(2).sum(1) + i.pow(2).sum(1)).mean()

    return penalty


def rating_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    err = pred - target
    mse = float((err ** 2).mean())
    return {"valid_mse": mse, "valid_rmse": mse ** 0.5, "valid_mae": float(err.abs().mean())}


@hookimpl
def embedlab_register_trainers(register):
    register(CollabTrainer())
