"""Collaborative filtering: dot product + user/item biases, sigmoid-scaled ``y_range``
(``--model dot``), or fastai's neural model (``--model nn``: the embeddings concatenated into an
MLP, :class:`embedlab.training.models.EmbeddingNN`).

Predictions of a saved run (``predict``: given pairs; ``recommend``: a user's top items) are in
:mod:`embedlab.trainers.collab_predict`.

The run's tables are named by role, ``user`` and ``item``; their labels and metadata come from
the dataset's entity tables for those roles, whatever they are called
(:func:`embedlab.data.check_entity_tables`: ``Dataset.entity_tables``, else the table named
after the role or after its column). An entity table no role takes is an error, not dropped.

Defaults were chosen on the real MovieLens 100K u1 split (see README, Benchmarks).
``--features`` adds what the dataset knows besides the ids (side columns, implicit feedback,
the rating day) as a factorization machine (:mod:`embedlab.trainers.collab_features`);
``--preset hybrid`` is its measured recipe (docs/hybrid.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import click
import numpy as np
import pandas as pd

from embedlab.data import Dataset, check_entity_tables, collab_entity_stats
from embedlab.errors import UsageError
from embedlab.training.fitconfig import FitDefaults, FitOptions, fit_config, sparse_field
from embedlab.training.fused_collab import KERNEL_HELP, KERNELS
from embedlab.hookspecs import hookimpl
from embedlab.training.pretrained import init_from_config
from embedlab.run import EmbeddingTable, Run
from embedlab.trainers.base import Prepared, run_meta, torch_threads
from embedlab.trainers.collab_setup import build_model, choose_sparse, entity_index, pretrained_slots, rating_range
from embedlab.trainers.options import option, restated

if TYPE_CHECKING:  # torch, the learner and the model load in the methods that train (fast CLI)
    import torch

    from embedlab.training.lr_find import LRFindResult
    from embedlab.training.models import DotBias

#: ``--model``: the dot product with biases (lesson 5), or the neural model (fastbook chapter 8)
MODELS = ("dot", "nn")
#: the neural model's hidden layers when --layers is not given (fastbook chapter 8's
#: ``collab_learner(dls, use_nn=True, y_range=(0, 5.5), layers=[100, 50])``)
NN_LAYERS = (100, 50)

#: Model and training recipes; options given explicitly override them. ``default`` is the
#: plain id model (u1 RMSE 0.9088 at seed 42); ``hybrid`` the factorization machine over side
#: columns, implicit feedback and the rating day (docs/hybrid.md), lr/wd tuned for adamw.
PRESETS: dict[str, dict[str, Any]] = {
    "default": {
        "features": "ids",
        "n_factors": 100,
        "reg": 0.05,
        "epochs": 5,
        "bs": 256,
        "init_std": 0.01,
        "members": 1,
    },
    "hybrid": {
        "features": "side+implicit+day",
        "n_factors": 64,
        "reg": 0.0,
        "epochs": 7,
        "bs": 1024,
        "lr": 5e-3,
        "wd": 2.0,
        "bias_wd": 0.0,
        "init_std": 0.05,
        "members": 3,
    },
}


def _preset_note(name: str) -> str:
    """The help of an option whose default comes from --preset."""
    return f" Default: the --preset's (default: {PRESETS['default'][name]}; hybrid: {PRESETS['hybrid'].get(name)})."


@dataclass
class CollabOptions(FitOptions):
    """The collab trainer's options (``embedlab train MOVIELENS --help``), one declaration: its
    flags, the API's keyword arguments and checks, their defaults and run.json's ``config``."""

    fit_defaults: ClassVar[FitDefaults] = FitDefaults.scaled(lr=5e-3, wd=0.05)

    preset: str = option(
        "default",
        choices=sorted(PRESETS),
        case_sensitive=True,
        help="Model and training recipe: 'default' (user and item ids only) or 'hybrid' (a "
        "factorization machine over the ids, the dataset's side columns, implicit feedback "
        "and the rating day; see docs/hybrid.md). Options given explicitly override it.",
    )
    features: str | None = option(
        None,
        show_default=False,
        help="What a user and an item are made of (--model dot), parts joined by '+': ids (the ids "
        "alone: the plain dot-product model), side (the columns the dataset declares, e.g. age "
        "bucket, occupation, genres), implicit (the items a user rated and the users who rated an "
        "item, training rows only), day (the rating day). E.g. side+implicit+day. Each feature is "
        "an embedding table of the run." + _preset_note("features"),
    )
    model: str = option(
        "dot",
        choices=MODELS,
        case_sensitive=True,
        help="dot: user . item + biases (lesson 5's EmbeddingDotBias); nn: the user and item "
        "embeddings (fastai's size rule) concatenated into an MLP (fastai's EmbeddingNN, "
        "collab_learner(use_nn=True)); both save user and item tables.",
    )
    layers: str | None = option(
        None, help="--model nn: hidden layer widths, comma-separated (default 100,50, fastbook chapter 8's)."
    )
    ps: str | None = option(
        None,
        help="--model nn: dropout after each hidden layer, comma-separated, one per layer (fastai's ps; default 0).",
    )
    emb_drop: float | None = option(
        None,
        min=0,
        max=1,
        max_open=True,
        help="--model nn: dropout on the concatenated embeddings (fastai's embed_p; default 0).",
    )
    n_factors: int | None = option(
        None,
        min=1,
        max=4096,
        show_default=False,
        help="Embedding size (latent factors) of users and items." + _preset_note("n_factors"),
    )
    reg: float | None = option(
        None,
        min=0,
        show_default=False,
        help="L2 penalty on the embedding rows each batch looks up (per rating, so an entity is regularised "
        "in proportion to how often it is seen, as in classic matrix factorisation). Works with --wd, "
        "which shrinks whole tables. With --features: on the composed user and item vectors." + _preset_note("reg"),
    )
    members: int | None = option(
        None,
        min=1,
        max=64,
        show_default=False,
        help="--features: train this many factorization machines side by side, each from its own random "
        "start and with its own loss, and predict their mean (an ensemble over initialisations; the "
        "tables hold the members' vectors side by side)." + _preset_note("members"),
    )
    bias_wd: float | None = option(
        None, min=0, help="Weight decay of the bias group alone (default: --wd; --preset hybrid: 0)."
    )
    y_range: Any = option(
        None,
        type=(float, float),
        help="Output range LO HI of the sigmoid; default: the "
        "rating scale, widened by 10% at the top (0 5.5 for "
        "1-5 stars).",
    )
    threads: int = option(
        1,
        min=0,
        help="Torch threads while training (0: torch's default). One is fastest for "
        "these small batches, and much faster when the machine is busy.",
    )
    device: str = option(
        "auto",
        help="auto (CUDA when torch sees a GPU), cpu, cuda or cuda:N. Under torchrun, "
        "cuda is each rank's cuda:LOCAL_RANK.",
    )
    shard_data: bool = option(
        False,
        section="distributed",
        show_default=False,
        negatable=False,
        help="Under torchrun: each process keeps only its 1/N shard of the training rows "
        "(else every process holds them all and takes its slice of each global "
        "batch, which reproduces a 1-process run).",
    )
    sparse: str = sparse_field()
    kernel: str = option("auto", choices=KERNELS, case_sensitive=True, help=KERNEL_HELP)
    init_std: float | None = option(
        None, min=0, show_default=False, help="Standard deviation of the initial embeddings." + _preset_note("init_std")
    )
    epochs: int | None = restated(FitOptions, "epochs", None, show_default=False, note=_preset_note("epochs"))
    bs: int | None = restated(FitOptions, "bs", None, show_default=False, note=_preset_note("bs"))


def _codes(values: pd.Series, vocab: pd.Index) -> torch.Tensor:
    import torch

    return torch.from_numpy(vocab.get_indexer(values).astype(np.int64))


def nn_settings(config: dict[str, Any]) -> dict[str, Any]:
    """The neural model's layers, ps and emb_drop from ``config`` (UsageError when they are given
    to the dot model, or ps does not fit the layers)."""
    from embedlab.trainers.tabular import _int_list

    given = [f"--{k.replace('_', '-')}" for k in ("layers", "ps", "emb_drop") if config.get(k) not in (None, "")]
    if config.get("model", "dot") != "nn":
        if given:
            raise UsageError(f"{', '.join(given)} shape the neural model: add --model nn")
        return {}
    layers = config.get("layers")
    layers = (
        list(NN_LAYERS)
        if layers in (None, "")
        else (_int_list(layers, "--layers") if isinstance(layers, str) else [int(h) for h in layers])
    )
    ps = config.get("ps")
    ps = (
        [0.0] * len(layers)
        if ps in (None, "")
        else (_int_list(ps, "--ps", float) if isinstance(ps, str) else [float(p) for p in ps])
    )
    if len(ps) == 1 and len(layers) > 1:
        ps = ps * len(layers)
    if len(ps) != len(layers):
        raise UsageError(
            f"--ps has {len(ps)} values for {len(layers)} hidden layers "
            f"(--layers {','.join(map(str, layers))}); give one per layer"
        )
    return {"layers": layers, "ps": ps, "emb_drop": float(config.get("emb_drop") or 0.0)}


class CollabTrainer:
    name = "collab"
    kind = "collab"
    options = CollabOptions  # flags, API keywords, checks, defaults and run.json's config
    resumable = True  # train() takes checkpoint= and passes it to Learner.fit

    def default_config(self) -> dict[str, Any]:
        return self.resolve_config({})

    def resolve_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The options' defaults, then ``config``'s values (each checked: a bad one is a one-line
        UsageError naming it), then --preset for what is still unset; keys that are no option of
        the trainer (``data_dir`` of a reloaded run...) are kept after them."""
        declared = CollabOptions.from_config(config).record()
        config = {**declared, **{k: v for k, v in config.items() if v is not None and k not in declared}}
        name = config.get("preset") or "default"
        if name not in PRESETS:
            raise UsageError(f"--preset {name!r}: choose one of: {', '.join(PRESETS)}")
        for key, value in PRESETS[name].items():
            if key in ("lr", "wd") and config.get("opt", "adamw") != "adamw":
                continue  # tuned for adamw; other optimizers get their own default
            if config.get(key) is None:
                config[key] = value
        config["preset"] = name
        return config

    # ---------------------------------------------------------------- setup
    def _prepare(self, ds: Dataset, config: dict[str, Any], progress: bool = True):
        import torch
        from torch import nn

        from embedlab.training import distributed
        from embedlab.training.learner import Learner, seed_everything
        from embedlab.trainers.collab_features import (
            NOT_FUSED,
            check_options,
            composed_l2,
            hybrid,
            member_mse,
            parse_features,
        )

        parts = parse_features(config.get("features"))
        roles = ds.roles
        u, i, r = roles["user"], roles["item"], roles["rating"]
        entity = check_entity_tables(ds, ("user", "item"))  # role -> entity table (checked)
        device = distributed.resolve_device(config.get("device"))
        ddp = distributed.setup(device)
        shard = _loader_shard(ds, config, ddp)
        users, items = entity_index(ds, entity, shard)

        feats = hybrid(ds, parts, users, items, entity) if parts else None

        def tensors(df):
            return (
                _codes(df[u], users),
                _codes(df[i], items),
                *(feats.tensors(ds, df) if feats else ()),
                torch.tensor(df[r].to_numpy(dtype=np.float32)),
            )

        train = tensors(ds.train)
        if ddp and config.get("shard_data") and not shard:  # the loader read everything: drop the rest
            train = distributed.shard_rows(train, config["seed"])
        valid = tensors(ds.valid) if ds.valid is not None and len(ds.valid) else None
        y_range = rating_range(ds, config)
        backend = ("nccl" if device.type == "cuda" else "gloo") if ddp else None
        neural = nn_settings(config)
        if neural and str(config.get("sparse") or "auto").lower() == "on":
            raise UsageError("--sparse on: the neural model (--model nn) trains dense; drop --sparse on")
        if feats is not None:
            check_options(config, neural)
        opt = fit_config(config, CollabOptions).opt
        sparse = choose_sparse(
            config, opt, neural, feats, (len(users) + len(items)) * (config["n_factors"] + 1), backend, progress
        )
        kernel = (
            ("autograd", NOT_FUSED)
            if feats is not None
            else _choose_kernel(config.get("kernel"), sparse, opt, device, ddp, progress, neural)
        )
        seed_everything(config["seed"])  # the same seed, the same initial embeddings
        model = build_model(config, feats, neural, len(users), len(items), y_range, sparse)
        model.classes = {
            role: self._table(
                role,
                keys,
                torch.zeros(len(keys), 0),
                None,
                ds,
                roles[role],
                sharded=bool(shard),
                entity=entity.get(role),
            )
            for role, keys in (("user", users), ("item", items))
        }
        model.columns = {role: roles[role] for role in ("user", "item", "rating")}  # learn.predict(row) reads them
        model.features = feats
        if config.get("bias_wd") is not None:
            model.group_wd = {"biases": float(config["bias_wd"])}
        model.to(device)
        train = tuple(t.to(device) for t in train)
        valid = None if valid is None else tuple(t.to(device) for t in valid)
        kw = {"sharded": bool(config.get("shard_data"))} if ddp else {}
        learner_cls = distributed.DistributedLearner if ddp else Learner
        if (config.get("members") or 1) > 1 and feats is None:
            raise UsageError(f"--members {config['members']}: members are factorization machines; add --features")
        learner = learner_cls(
            model,
            train,
            valid,
            **kw,
            loss_fn=member_mse if feats is not None else nn.functional.mse_loss,
            metrics=rating_metrics,
            bs=config["bs"],
            seed=config["seed"],
            regularizer=(composed_l2 if feats is not None else _row_l2)(config["reg"]) if config.get("reg") else None,
        )
        init_from_config(config, pretrained_slots(model, users, items, feats), learner, progress=progress)
        learner.kernel = kernel  # (name, why not fused): run.json's model.kernel / kernel_reason
        if kernel[0] == "fused":
            from embedlab.training.fused_collab import make_fused

            make_fused(learner, config.get("reg") or 0.0)
        return users, items, model, learner, tuple(y_range)

    # ---------------------------------------------------------------- API
    def train(self, ds: Dataset, config: dict[str, Any], progress: bool = True, checkpoint: Any = None) -> Run:
        from embedlab.training import distributed

        prepared = self.prepare(ds, config, progress)
        with torch_threads(prepared.threads):
            fit = prepared.learner.fit(
                prepared.fit_config, progress=progress and distributed.is_writer(), checkpoint=checkpoint
            )
        return prepared.finish(fit)

    def prepare(self, ds: Dataset, config: dict[str, Any], progress: bool = True) -> Prepared:
        """The model and its Learner, untrained; ``finish(fit)`` makes the run (see
        :class:`embedlab.trainers.base.Prepared`)."""
        config = self.resolve_config(config)
        users, items, model, learner, y_range = self._prepare(ds, config, progress)
        entity = check_entity_tables(ds, ("user", "item"))
        config["y_range"] = list(y_range)
        fit_cfg = fit_config(config, self.options)
        config.update(fit_cfg.to_config())
        config.update(nn_settings(config))  # the neural model's resolved layers, ps and emb_drop
        return Prepared(
            learner,
            config,
            fit_cfg,
            lambda fit: self._finish(ds, config, users, items, model, y_range, entity, fit, learner.kernel),
            threads=config.get("threads"),
        )

    def _finish(
        self,
        ds: Dataset,
        config: dict[str, Any],
        users: pd.Index,
        items: pd.Index,
        model: DotBias,
        y_range: tuple,
        entity: dict,
        fit: Any,
        kernel: tuple = ("autograd", None),
    ) -> Run:
        model.looked_up = None
        metrics = {k: v for k, v in fit.final.items() if k.startswith("valid_")}
        metrics["train_seconds"] = fit.train_seconds
        shard = ds.info.get("shard")
        metrics["train_rows"] = int(shard["train_rows"] if shard else len(ds.train))
        metrics["valid_rows"] = int(len(ds.valid)) if ds.valid is not None else 0
        feats = getattr(model, "features", None)
        if feats is not None:  # the composed vectors, what the model multiplies; a table per feature
            from embedlab.trainers.collab_features import composed, feature_tables

            vectors = composed(model)
        else:
            vectors = {
                role: (
                    model.user_emb.weight if role == "user" else model.item_emb.weight,
                    None if model.bias_table(role == "item") is None else model.bias_table(role == "item").weight,
                )
                for role in ("user", "item")
            }
        tables = {
            role: self._table(
                role, keys, *vectors[role], ds, ds.roles[role], sharded=bool(shard), entity=entity.get(role)
            )
            for role, keys in (("user", users), ("item", items))
        }
        if feats is not None:
            tables.update(feature_tables(ds, feats, model))
        columns = {role: ds.roles[role] for role in ("user", "item", "rating")}
        kernels = {"kernel": kernel[0], **({"kernel_reason": kernel[1]} if kernel[1] else {})}
        if feats is not None:
            record = {
                "class": "HybridDot",
                "n_users": len(users),
                "n_items": len(items),
                "n_factors": config["n_factors"],
                "members": model.members,
                "y_range": list(y_range),
                "sparse": False,
                "columns": columns,
                **kernels,
                **feats.record(),
            }
        elif getattr(model, "hparams", None) is not None:  # the neural model
            record = {
                "class": "EmbeddingNN",
                "hparams": model.hparams,
                "n_users": len(users),
                "n_items": len(items),
                "y_range": list(y_range),
                "columns": columns,
                **kernels,
            }
        else:
            record = {
                "class": "DotBias",
                "n_users": len(users),
                "n_items": len(items),
                "n_factors": config["n_factors"],
                "y_range": list(y_range),
                "sparse": model.sparse,
                "columns": columns,
                **kernels,
            }
        meta = run_meta(
            ds, self, config, config["seed"], metrics, fit.history, task="regression", **fit.record(), model=record
        )
        tensors = {f"model.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return Run(meta, tables, tensors)

    def predict(self, run: Run, data: Dataset | pd.DataFrame) -> pd.DataFrame:
        """Predicted ratings of (user, item) pairs (a frame with the run's user and item columns,
        or a Dataset's test rows, else its validation rows); see
        :func:`embedlab.trainers.collab_predict.predict_pairs`."""
        from embedlab.trainers.collab_predict import predict_pairs

        if isinstance(data, Dataset):
            frame = getattr(data, "test", None)
            frame = data.valid if frame is None else frame
            if frame is None:
                raise UsageError(f"dataset {data.name!r} has no rows to predict (no test or validation rows)")
            return predict_pairs(run, frame, f"{data.name}'s rows")
        return predict_pairs(run, data)

    def recommend(
        self, run: Run, users: Any, k: int = 10, rated: pd.DataFrame | None = None, include_rated: bool = False
    ) -> pd.DataFrame:
        """Each user's top ``k`` items, without the items ``rated`` holds for that user (the
        training ratings) unless ``include_rated``; see
        :func:`embedlab.trainers.collab_predict.recommend`."""
        from embedlab.trainers.collab_predict import recommend

        return recommend(run, users, k, rated=rated, include_rated=include_rated)

    def lr_find(self, ds: Dataset, config: dict[str, Any], progress: bool = True) -> LRFindResult:
        config = self.resolve_config(config)
        *_, learner, _ = self._prepare(ds, config, progress)
        return learner.lr_find(config=fit_config(config, self.options), progress=progress)

    @staticmethod
    def _table(
        name: str,
        keys: pd.Index,
        vectors,
        bias,
        ds: Dataset,
        key_col: str,
        sharded: bool = False,
        entity: str | None = None,
    ) -> EmbeddingTable:
        stats = collab_entity_stats(ds.train, key_col, ds.roles["rating"]).reindex(keys)
        if sharded:  # this rank's training rows only: sum counts and ratings over the ranks
            from embedlab.training import distributed

            count = stats["count"].fillna(0).to_numpy(dtype=np.float64)
            total = distributed.all_reduce_sum((stats["mean_rating"].astype(np.float64) * count).fillna(0).to_numpy())
            count = distributed.all_reduce_sum(count)
            with np.errstate(invalid="ignore", divide="ignore"):
                stats = pd.DataFrame(
                    {"count": count, "mean_rating": np.where(count > 0, total / count, np.nan)}, index=keys
                )
        stats["count"] = stats["count"].fillna(0).astype(int)
        meta = ds.entities.get(entity) if entity is not None else None
        if meta is not None:
            meta = meta.reindex(keys)
            labels = (
                meta["label"].fillna(pd.Series(keys.astype(str), index=keys))
                if "label" in meta
                else pd.Series(keys.astype(str), index=keys)
            )
            extra = meta.drop(columns=["label"], errors="ignore").drop(
                columns=[c for c in ("count", "mean_rating") if c in meta], errors="ignore"
            )
            metadata = pd.concat([stats, extra], axis=1)
        else:
            labels = pd.Series(keys.astype(str), index=keys)
            metadata = stats
        return EmbeddingTable(
            name=name,
            keys=keys.to_numpy(),
            labels=labels.astype(str).to_numpy(),
            vectors=vectors.detach().cpu().numpy().copy(),
            bias_values=None if bias is None else bias.detach().cpu().numpy().reshape(-1).copy(),
            metadata=metadata.reset_index(drop=True),
            attrs={
                "count_column": "count",
                "target_column": "mean_rating",
                **({"entity_table": entity} if entity not in (None, name) else {}),
                **(dict(meta.attrs) if meta is not None else {}),
            },
        )


def _loader_shard(ds: Dataset, config: dict[str, Any], ddp: bool) -> dict | None:
    """``ds.info["shard"]`` when the loader kept only this rank's training rows (checked to be
    this process's shard of this run: rank, world size and seed), else None."""
    shard = ds.info.get("shard")
    if not shard:
        return None
    from embedlab.training import distributed

    mine = {"rank": distributed.rank(), "world": distributed.world_size(), "seed": config["seed"]}
    if not (ddp and config.get("shard_data")) or any(shard.get(k) != v for k, v in mine.items()):
        raise UsageError(
            f"{ds.name}: the data holds only the shard {dict((k, shard.get(k)) for k in mine)} "
            f"but this process is {mine} (shard_data={bool(config.get('shard_data'))}); "
            f"load it again for this process"
        )
    return shard


def _choose_kernel(
    mode: str | None, sparse: bool, opt: str, device, ddp: bool, progress: bool, neural: Any = None
) -> tuple:
    """(``fused`` | ``autograd``, why not fused or None) for ``--kernel``; ``auto`` says why it
    falls back where a user could have expected the fused step (not for the small, dense tables
    of the default path: that is recorded in run.json only)."""
    from embedlab.training import distributed
    from embedlab.training.fused_collab import choose_kernel

    kernel, why = choose_kernel(
        mode, sparse=sparse, opt=opt, device=device.type, distributed=ddp, model="nn" if neural else "dot"
    )
    if why and mode in (None, "auto") and sparse and progress and distributed.is_writer():
        click.echo(f"--kernel auto: training with autograd, because {why}", err=True)
    return kernel, why


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
    mse = float((err**2).mean())
    return {"valid_mse": mse, "valid_rmse": mse**0.5, "valid_mae": float(err.abs().mean())}


@hookimpl
def embedlab_register_trainers(register):
    register(CollabTrainer())


def __getattr__(name: str) -> Any:
    """``OPTIONS``, the old list of click options: still there, with a deprecation warning."""
    if name == "OPTIONS":
        return CollabOptions.old_options_list(__name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
