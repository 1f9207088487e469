"""Entity embeddings of categorical variables: one embedding per categorical column + an MLP.

Guo & Berkhahn (2016), "Entity Embeddings of Categorical Variables"; fast.ai lesson 6. A
tabular :class:`~embedlab.Dataset` names its columns by role (``categorical``,
``continuous``, ``target``; optionally ``target_transform: "log"``, ``task: "classify"``,
``id``, ``mask``, ``date``). Everything learned from the training split to turn a frame into
tensors is a :class:`~embedlab.trainers.tabular_processor.TabularProcessor`, saved as JSON in
``run.json``, so ``predict`` and ``encode_rows`` rebuild the exact inputs from a saved run.

Defaults were measured on the real Rossmann data (README, "Rossmann"). The ``guo2016`` preset
is the paper's network recipe; its columns and Table 1 embedding sizes are the dataset's to
name (``Dataset.column_sets["guo2016"]``, which the Rossmann datasets define), so the trainer
knows no dataset's column names. The presets and the options: :mod:`embedlab.trainers.tabular_options`.
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from embedlab.data import Dataset, sample_rows
from embedlab.errors import DataError, UsageError
from embedlab.training.fitconfig import fit_config
from embedlab.hookspecs import hookimpl
from embedlab.training.pretrained import Slot, init_from_config
from embedlab.run import EmbeddingTable, Run
from embedlab.trainers.base import EncodedRows, Prepared, run_meta, torch_threads
from embedlab.trainers.tabular_options import (  # noqa: F401 - their old import path
    CATEGORICAL_ENCODINGS,
    PRESETS,
    TabularOptions,
    _int_list,
    parse_emb_sizes,
)
from embedlab.trainers.tabular_processor import (
    TabularProcessor,
    classify_metrics,
    log_regression_metrics,
    regression_metrics,
)

if TYPE_CHECKING:  # torch, the learner and the model load in the methods that use them (fast CLI)
    import torch

    from embedlab.training.lr_find import LRFindResult
    from embedlab.training.models import EntityEmbeddingNet


# ---------------------------------------------------------------------------- preprocessing
def _slug(text: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(text)).strip("_").lower() or "target"


# ---------------------------------------------------------------------------- the trainer
class _Prepared:
    """Everything ``train`` and ``lr_find`` share."""

    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


class TabularTrainer:
    name = "tabular"
    kind = "tabular"
    options = TabularOptions  # flags, API keywords, checks, defaults and run.json's config
    resumable = True  # train() takes checkpoint= and passes it to Learner.fit
    categorical_encodings = CATEGORICAL_ENCODINGS  # config["categorical_encoding"] it honours

    def default_config(self) -> dict[str, Any]:
        return TabularOptions().record()

    # ---------------------------------------------------------------- config
    def resolve_config(self, config: dict[str, Any], ds: Dataset) -> dict[str, Any]:
        """Defaults, then the preset (with the embedding sizes of the dataset's column set for
        it), then the values given explicitly (not None; each checked: a bad one is a one-line
        UsageError naming it); keys that are no option of the trainer are kept after them."""
        declared = TabularOptions.from_config(config).record()
        cfg = {**declared, **{k: v for k, v in config.items() if v is not None and k not in declared}}
        given = {k: v for k, v in cfg.items() if v is not None and not (k == "emb_size" and not v)}
        preset_name = cfg.get("preset") or "default"
        if preset_name not in PRESETS:
            raise UsageError(f"--preset {preset_name!r}: choose one of: {', '.join(PRESETS)}")
        preset = PRESETS[preset_name]
        for key in ("epochs", "bs", "emb_drop", "batchnorm", "loss", "train_sample", "schedule", "rmspe_scale"):
            if cfg.get(key) is None:
                cfg[key] = preset[key]
        layers = given.get("layers", preset["layers"])
        cfg["layers"] = _int_list(layers, "--layers") if isinstance(layers, str) else [int(h) for h in layers]
        ps = given.get("ps")
        if ps is None:
            ps = preset["ps"] if len(preset["ps"]) == len(cfg["layers"]) else [0.0] * len(cfg["layers"])
        cfg["ps"] = _int_list(ps, "--ps", float) if isinstance(ps, str) else [float(p) for p in ps]
        if len(cfg["ps"]) != len(cfg["layers"]):
            raise UsageError(
                f"--ps has {len(cfg['ps'])} values for {len(cfg['layers'])} hidden layers "
                f"(--layers {','.join(map(str, cfg['layers']))}); give one per layer"
            )
        if any(not 0 <= p < 1 for p in cfg["ps"]):
            raise UsageError(f"--ps {cfg['ps']}: dropout must be in [0, 1)")
        user_sizes = parse_emb_sizes(cfg.get("emb_size"))
        column_set = self._column_set(ds, preset_name)
        sizes = {**parse_emb_sizes((column_set or {}).get("emb_sizes") or {}), **user_sizes}
        if cfg.get("lr") is None and cfg.get("opt", "adamw") == "adamw":
            cfg["lr"] = preset["lr"]
        if cfg.get("wd") is None and (cfg.get("opt", "adamw") == "adamw" or preset["wd"] == 0):
            cfg["wd"] = preset["wd"]  # tuned for adamw; other optimizers get their own default
        excl = cfg.get("exclude")
        if isinstance(excl, str):
            cfg["exclude"] = [c.strip() for c in excl.split(",") if c.strip()]
        cfg["exclude"] = list(cfg.get("exclude") or [])
        # a preset's embedding size for a column the user leaves out is moot, not an error
        cfg["emb_size"] = {c: n for c, n in sizes.items() if c not in cfg["exclude"] or c in user_sizes}
        cfg["preset"] = preset_name
        return cfg

    @staticmethod
    def _column_set(ds: Dataset, preset_name: str) -> dict[str, Any] | None:
        """The dataset's column selection for a preset that takes its columns from the dataset
        (None: the preset trains on every column the dataset's roles name)."""
        wanted = PRESETS[preset_name]["column_set"]
        if wanted is None:
            return None
        sets = ds.column_sets or {}
        found = sets.get(wanted)
        if not isinstance(found, dict) or not (found.get("categorical") or found.get("continuous")):
            others = f" (it defines: {', '.join(sorted(sets))})" if sets else ""
            raise UsageError(
                f"--preset {preset_name} takes its columns and embedding sizes from the dataset, and "
                f"dataset {ds.name!r} defines no {wanted!r} column set (Dataset.column_sets){others}; "
                f"use --preset default"
            )
        return found

    def _columns(self, ds: Dataset, cfg: dict[str, Any]) -> tuple[list[str], list[str]]:
        roles = ds.roles
        cats = list(roles.get("categorical") or [])
        conts = list(roles.get("continuous") or [])
        column_set = self._column_set(ds, cfg["preset"])
        if column_set is not None:
            cats, conts = list(column_set.get("categorical") or []), list(column_set.get("continuous") or [])
            missing = [c for c in cats + conts if c not in ds.train.columns]
            if missing:
                raise UsageError(
                    f"--preset {cfg['preset']} needs columns {', '.join(missing)}, which dataset {ds.name!r} lacks"
                )
        known = set(cats) | set(conts)
        unknown = [c for c in cfg["exclude"] if c not in known]
        if unknown:
            raise UsageError(
                f"--exclude {unknown[0]!r}: not a model column; the columns are: {', '.join(cats + conts)}"
            )
        cats = [c for c in cats if c not in cfg["exclude"]]
        conts = [c for c in conts if c not in cfg["exclude"]]
        if not cats and not conts:
            raise UsageError("no columns left to train on")
        bad = [c for c in cfg["emb_size"] if c not in cats]
        if bad:
            raise UsageError(
                f"--emb-size {bad[0]}=...: {bad[0]!r} is not a categorical column; those are: {', '.join(cats)}"
            )
        return cats, conts

    @staticmethod
    def _target(
        ds: Dataset, df: pd.DataFrame, task: str, transform: str | None, classes: list | None, source: str
    ) -> torch.Tensor:
        import torch

        col = ds.roles["target"]
        if col not in df.columns:
            raise DataError(f"{source}: target column {col!r} is missing")
        s = df[col]
        if s.isna().any():
            raise DataError(
                f"{source}: target column {col!r} has an empty value "
                f"(row {int(np.flatnonzero(s.isna().to_numpy())[0]) + 1})"
            )
        if task == "classify":
            idx = pd.Index(classes).get_indexer(s.astype(str))
            if (idx < 0).any():
                raise DataError(
                    f"{source}: target value {s[idx < 0].iloc[0]!r} of column {col!r} does "
                    f"not occur in the training rows"
                )
            return torch.from_numpy(idx.astype(np.int64))
        y = pd.to_numeric(s, errors="coerce")
        if y.isna().any():
            raise DataError(f"{source}: target column {col!r} has a non-numeric value {s[y.isna()].iloc[0]!r}")
        y = y.to_numpy(dtype="float64")
        if transform == "log":
            if (y <= 0).any():
                raise DataError(
                    f"{source}: target column {col!r} has value {y[y <= 0][0]!r}; a log "
                    f"target needs positive values (leave those rows out)"
                )
            y = np.log(y)
        return torch.from_numpy(y.astype(np.float32))

    def _prepare(self, ds: Dataset, cfg: dict[str, Any], progress: bool = True) -> _Prepared:
        from torch import nn

        from embedlab.training.learner import Learner, seed_everything
        from embedlab.training.models import EntityEmbeddingNet, emb_sz_rule

        if ds.kind != "tabular":
            raise UsageError(f"dataset {ds.name!r} is of kind {ds.kind!r}, not tabular")
        task = ds.roles.get("task", "regression")
        transform = ds.roles.get("target_transform")
        if task not in ("regression", "classify"):
            raise UsageError(f"task {task!r}: choose regression or classify")
        cats, conts = self._columns(ds, cfg)
        train_df = ds.train
        if len(train_df) == 0:
            raise DataError(f"dataset {ds.name!r} has no training rows")
        train_df = sample_rows(train_df, cfg["train_sample"], cfg["seed"])
        proc = TabularProcessor.fit(train_df, cats, conts)
        classes = None
        if task == "classify":
            classes = sorted(str(v) for v in pd.unique(train_df[ds.roles["target"]].dropna().astype(str)))
            if len(classes) < 2:
                raise DataError(
                    f"target column {ds.roles['target']!r} has a single class "
                    f"{classes[0] if classes else None!r} in the training rows"
                )
        x_cat, x_cont = proc.transform(train_df, "training rows")
        y = self._target(ds, train_df, task, transform, classes, "training rows")
        valid = None
        if ds.valid is not None and len(ds.valid):
            vc, vn = proc.transform(ds.valid, "validation rows")
            valid = (vc, vn, self._target(ds, ds.valid, task, transform, classes, "validation rows"))
        cards = [len(c["vocab"]) + 1 for c in proc.categorical]
        sizes = [cfg["emb_size"].get(c["name"], emb_sz_rule(len(c["vocab"]) + 1)) for c in proc.categorical]
        y_range = None
        if task == "regression":
            y_range = cfg.get("y_range")
            if not y_range:
                lo, hi = float(y.min()), float(y.max())
                if transform == "log" and lo >= 0:
                    y_range = (0.0, hi * 1.2)
                else:
                    span = max(hi - lo, 1e-6)
                    y_range = (lo - 0.2 * span, hi + 0.2 * span)
            y_range = (float(y_range[0]), float(y_range[1]))
            if y_range[0] >= y_range[1]:
                raise UsageError(f"--y-range {y_range[0]} {y_range[1]}: LO must be below HI")
        n_out = len(classes) if task == "classify" else 1
        seed_everything(cfg["seed"])  # the same seed, the same initial weights
        model = EntityEmbeddingNet(
            cards,
            sizes,
            len(proc.continuous),
            cfg["layers"],
            cfg["ps"],
            cfg["emb_drop"],
            y_range,
            n_out=n_out,
            batchnorm=cfg["batchnorm"],
            init_std=cfg["init_std"],
            names=proc.cat_names,
            categorical_encoding=cfg.get("categorical_encoding") or "embedding",
        )
        if task == "regression":
            model.init_output(float(y.mean()))
            loss_fn = nn.functional.mse_loss if cfg["loss"] == "mse" else nn.functional.l1_loss
            metrics = log_regression_metrics if transform == "log" else regression_metrics
        else:
            loss_fn, metrics = nn.functional.cross_entropy, classify_metrics
        learner = Learner(
            model, (x_cat, x_cont, y), valid, loss_fn=loss_fn, metrics=metrics, bs=cfg["bs"], seed=cfg["seed"]
        )
        # --init-from: tables start from pretrained vectors, matched by key (row 0 stays reserved)
        if cfg.get("init_from") and model.encoding != "embedding":
            raise UsageError(f"--init-from fills embedding tables; --categorical-encoding {model.encoding} has none")
        init_from_config(
            cfg,
            {
                spec["name"]: Slot(spec["vocab"], model.embeds[j].weight, offset=1)
                for j, spec in enumerate(proc.categorical)
                if "indicator_of" not in spec and model.encoding == "embedding"
            },
            learner,
            progress=progress,
        )
        return _Prepared(
            task=task,
            transform=transform,
            proc=proc,
            classes=classes,
            model=model,
            learner=learner,
            y_range=y_range,
            train_df=train_df,
            x_cat=x_cat,
            y=y,
            cats=cats,
            conts=conts,
        )

    # ---------------------------------------------------------------- API
    def train(self, ds: Dataset, config: dict[str, Any], progress: bool = True, checkpoint: Any = None) -> Run:
        prepared = self.prepare(ds, config, progress)
        with torch_threads(prepared.threads):
            fit = prepared.learner.fit(prepared.fit_config, progress=progress, checkpoint=checkpoint)
        return prepared.finish(fit)

    def prepare(self, ds: Dataset, config: dict[str, Any], progress: bool = True) -> Prepared:
        """The model and its Learner, untrained; ``finish(fit)`` makes the run (see
        :class:`embedlab.trainers.base.Prepared`)."""
        cfg = self.resolve_config(config, ds)
        with torch_threads(cfg.get("threads")):
            p = self._prepare(ds, cfg, progress)
        fit_cfg = fit_config(cfg, self.options)
        cfg.update(fit_cfg.to_config())
        return Prepared(p.learner, cfg, fit_cfg, lambda fit: self._finish(ds, cfg, p, fit), threads=cfg.get("threads"))

    def _finish(self, ds: Dataset, cfg: dict[str, Any], p: _Prepared, fit: Any) -> Run:
        with torch_threads(cfg.get("threads")):
            scale = self._rmspe_scale(p) if p.transform == "log" and cfg["rmspe_scale"] else 1.0
        cfg["y_range"] = list(p.y_range) if p.y_range is not None else None
        metrics = {k: v for k, v in fit.final.items() if k.startswith("valid_")}
        if p.transform == "log":
            metrics["rmspe_scale"] = scale
            if p.learner.valid is not None and scale != 1.0:
                inputs, target = p.learner.valid
                pred = p.learner.predict(inputs)
                metrics["valid_rmspe_unscaled"] = metrics.get("valid_rmspe")
                metrics["valid_mape_unscaled"] = metrics.get("valid_mape")
                metrics.update(
                    {
                        k: v
                        for k, v in log_regression_metrics(pred + math.log(scale), target).items()
                        if k in ("valid_rmspe", "valid_mape")
                    }
                )
        metrics["train_seconds"] = fit.train_seconds
        metrics["n_parameters"] = int(sum(t.numel() for t in p.model.parameters()))
        metrics["n_categorical_parameters"] = p.model.categorical_parameter_count()
        metrics["seconds_per_epoch"] = float(np.mean([row["epoch_seconds"] for row in fit.history]))
        metrics["train_rows"] = int(len(p.train_df))
        metrics["valid_rows"] = int(len(ds.valid)) if ds.valid is not None else 0
        tables = self._tables(ds, p)
        target = ds.roles["target"]
        meta = run_meta(
            ds,
            self,
            cfg,
            cfg["seed"],
            metrics,
            fit.history,
            task=p.task,
            preset=cfg["preset"],
            **fit.record(),
            model={"class": "EntityEmbeddingNet", **p.model.hparams},
            tabular={
                "preprocess": p.proc.to_dict(),
                "target": target,
                "task": p.task,
                "target_transform": p.transform,
                "classes": p.classes,
                "y_range": list(p.y_range) if p.y_range is not None else None,
                "categorical": p.cats,
                "continuous": p.conts,
                "scale": scale if p.transform == "log" else 1.0,
                "id": ds.roles.get("id"),
                "mask": ds.roles.get("mask"),
                "date": ds.roles.get("date"),
            },
        )
        tensors = {f"model.{k}": v.detach().clone() for k, v in p.model.state_dict().items()}
        return Run(meta, tables, tensors)

    @staticmethod
    def _rmspe_scale(p: _Prepared, max_rows: int = 200_000) -> float:
        """The factor c minimising RMSPE of ``c * exp(prediction)`` on training rows.

        A model fitted to log sales predicts a median; RMSPE (relative to the actual value)
        rewards predicting a little lower: with log residuals e, the best c is
        ``E[exp(-e)] / E[exp(-2e)]`` (about ``exp(-1.5 var(e))``, the 0.985 Kaggle teams used by
        hand). It is estimated on (at most ``max_rows`` of) the training rows only, never on the
        validation rows.
        """
        import torch

        n = len(p.y)
        idx = torch.from_numpy(np.sort(np.random.default_rng(0).choice(n, size=min(n, max_rows), replace=False)))
        inputs = tuple(t[idx] for t in p.learner.train_inputs)
        pred = p.learner.predict(inputs).double()
        r = torch.exp(pred - p.y[idx].double())  # prediction / actual
        c = float(r.sum() / (r**2).sum())
        return c if math.isfinite(c) and 0.5 < c < 2.0 else 1.0

    def lr_find(self, ds: Dataset, config: dict[str, Any], progress: bool = True) -> LRFindResult:
        cfg = self.resolve_config(config, ds)
        with torch_threads(cfg.get("threads")):
            p = self._prepare(ds, cfg, progress)
            return p.learner.lr_find(config=fit_config(cfg, self.options), progress=progress)

    # ---------------------------------------------------------------- tables
    def _tables(self, ds: Dataset, p: _Prepared) -> dict[str, EmbeddingTable]:
        target = ds.roles["target"]
        target_col = f"mean_{_slug(target)}"
        raw = p.train_df[target]
        if p.task == "classify":
            raw_values = (raw.astype(str) == p.classes[-1]).to_numpy(dtype="float64")
        else:
            raw_values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype="float64")
        tables = {}
        for j, spec in enumerate(p.proc.categorical):
            if "indicator_of" in spec:
                continue  # missing-value flags are model inputs, not entities
            name = spec["name"]
            n = len(spec["vocab"])
            codes = p.x_cat[:, j].numpy()
            counts = np.bincount(codes, minlength=n + 1)[1:]
            sums = np.bincount(codes, weights=raw_values, minlength=n + 1)[1:]
            with np.errstate(invalid="ignore", divide="ignore"):
                means = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            keys = np.asarray(spec["vocab"], dtype=np.int64 if spec["kind"] == "int" else object)
            stats = pd.DataFrame({"count": counts.astype(np.int64), target_col: means})
            ent = ds.entities.get(name)
            attrs: dict[str, Any] = {"count_column": "count", "target_column": target_col}
            labels = pd.Series(keys).astype(str)
            metadata = stats
            if ent is not None:
                index = ent.index
                if spec["kind"] == "int" and not pd.api.types.is_integer_dtype(index):
                    index = pd.to_numeric(pd.Series(index), errors="coerce")
                elif spec["kind"] == "str":
                    index = pd.Index(index).astype(str)
                ent = ent.copy()
                ent.index = pd.Index(index)
                ent = ent[~ent.index.duplicated()].reindex(keys)
                if "label" in ent:
                    labels = (
                        ent["label"].reset_index(drop=True).where(ent["label"].reset_index(drop=True).notna(), labels)
                    )
                extra = ent.drop(columns=["label", "count", target_col], errors="ignore").reset_index(drop=True)
                metadata = pd.concat([stats, extra], axis=1)
                attrs.update(getattr(ds.entities.get(name), "attrs", {}) or {})
            emb = p.model.table_weight(j).detach().numpy()[1:].copy()
            tables[name] = EmbeddingTable(
                name=name, keys=keys, labels=labels.astype(str).to_numpy(), vectors=emb, metadata=metadata, attrs=attrs
            )
        return tables

    # ---------------------------------------------------------------- a saved run's network
    @staticmethod
    def _saved_model(run: Run) -> tuple[dict[str, Any], TabularProcessor, EntityEmbeddingNet]:
        """A saved run's tabular record, its processor and its network (eval mode): what
        ``predict`` and ``encode_rows`` both rebuild."""
        from embedlab.training.models import EntityEmbeddingNet

        info = run.meta.get("tabular")
        if not info:
            raise UsageError(f"run {run.path or ''} is not a tabular run (no 'tabular' in run.json)")
        proc = TabularProcessor.from_dict(info["preprocess"])
        model = EntityEmbeddingNet.from_hparams({k: v for k, v in run.meta["model"].items() if k != "class"})
        model.load_state_dict({k[len("model.") :]: v for k, v in run.tensors().items() if k.startswith("model.")})
        model.eval()
        return info, proc, model

    @staticmethod
    def _outputs(model: EntityEmbeddingNet, x_cat: torch.Tensor, x_cont: torch.Tensor, bs: int = 65536) -> torch.Tensor:
        """The network's raw outputs, in batches of ``bs`` rows."""
        import torch

        with torch.no_grad():
            outs = [model(x_cat[i : i + bs], x_cont[i : i + bs]) for i in range(0, len(x_cat), bs)]
        return torch.cat(outs) if outs else torch.empty((0,))

    def encode_rows(self, run: Run, frame: pd.DataFrame, source: str = "rows") -> EncodedRows:
        """The model's view of ``frame`` (see :class:`~embedlab.trainers.base.EncodedRows`): its
        category codes (the run's vocabulary: 1.. in sorted order, 0 unknown), every embedding
        matrix (row 0 the unknown row), the standardised continuous inputs, the target and the
        network's prediction (``exp`` of the output for a log target, without the RMSPE scale)."""
        import torch

        info, proc, model = self._saved_model(run)
        x_cat, x_cont = proc.transform(frame, source)
        pred = self._outputs(model, x_cat, x_cont).double()
        target_col, classes = info["target"], info.get("classes")
        present = target_col in frame.columns  # rows to predict may come without the target
        if info["task"] == "classify":
            target = np.full(len(frame), np.nan)
            if present:
                idx = pd.Index([str(c) for c in classes]).get_indexer(frame[target_col].astype(str))
                target = np.where((idx >= 0) & frame[target_col].notna().to_numpy(), idx, np.nan)
            prediction = torch.softmax(pred, 1).numpy() if len(frame) else np.zeros((0, len(classes)))
        else:
            target = (
                pd.to_numeric(frame[target_col], errors="coerce").to_numpy(dtype="float64")
                if present
                else np.full(len(frame), np.nan)
            )
            prediction = pred.numpy()
            if info.get("target_transform") == "log":
                prediction = np.exp(prediction)
        return EncodedRows(
            codes=x_cat.numpy(),
            categorical=proc.cat_names,
            embeddings=[model.table_weight(j).detach().numpy().astype(np.float32) for j in range(len(proc.cat_names))],
            continuous=x_cont.numpy().astype(np.float32),
            target=target,
            prediction=prediction,
            task=info["task"],
            target_transform=info.get("target_transform"),
            classes=list(classes) if classes is not None else None,
        )

    # ---------------------------------------------------------------- prediction
    def predict(self, run: Run, data: Dataset | pd.DataFrame, bs: int = 65536) -> pd.DataFrame:
        """Predictions for a frame (or a Dataset's ``test`` rows) from a saved tabular run.

        Returns a frame with the id column (when the run's dataset names one and the frame has
        it; else the key columns, :func:`prediction_keys`) and the target column: on the original scale (``exp`` undone for log targets), 0
        where the ``mask`` column (e.g. Rossmann's ``Open``) is 0, the predicted class for
        classification plus one ``prob_<class>`` column per class.
        """
        import torch

        info, proc, model = self._saved_model(run)
        if isinstance(data, Dataset):
            frame = getattr(data, "test", None)
            if frame is None:
                raise UsageError(f"dataset {data.name!r} has no rows to predict (no test file loaded)")
            source = f"{data.name} test rows"
        else:
            frame, source = data, "frame"
        x_cat, x_cont = proc.transform(frame, source)
        pred = self._outputs(model, x_cat, x_cont, bs)
        out = pd.DataFrame(index=frame.index)
        id_col = info.get("id")
        if id_col and id_col in frame.columns:
            out[id_col] = frame[id_col].to_numpy()
        else:  # no id: the columns that say which row each prediction is (its date, its entities)
            for col in prediction_keys(run, info, frame):
                out[col] = frame[col].to_numpy()
        target = info["target"]
        if info["task"] == "classify":
            probs = torch.softmax(pred.double(), 1).numpy() if len(frame) else np.zeros((0, len(info["classes"])))
            out[target] = np.asarray(info["classes"], dtype=object)[probs.argmax(1)] if len(frame) else []
            for k, cls in enumerate(info["classes"]):
                out[f"prob_{cls}"] = probs[:, k]
        else:
            values = pred.double().numpy()
            if info.get("target_transform") == "log":
                values = np.exp(values) * float(info.get("scale", 1.0))
            mask_col = info.get("mask")
            if mask_col and mask_col in frame.columns:
                open_ = pd.to_numeric(frame[mask_col], errors="coerce").fillna(1).to_numpy()
                values = np.where(open_ == 0, 0.0, values)
            out[target] = values
        if id_col and id_col in out.columns:
            out = out.sort_values(id_col, kind="stable")
        return out.reset_index(drop=True)


def prediction_keys(run: Run, info: dict, frame: pd.DataFrame) -> list[str]:
    """The key columns written beside a prediction when the run's dataset names no id column:
    its date column, then the columns of its embedding tables (the entities a row is about), as
    far as ``frame`` holds them; never the target."""
    names = [info.get("date")] + list(run.tables)
    keys = [c for c in dict.fromkeys(n for n in names if n) if c in frame.columns and c != info.get("target")]
    return keys


@hookimpl
def embedlab_register_trainers(register):
    register(TabularTrainer())


def __getattr__(name: str) -> Any:
    """``OPTIONS``, the old list of click options: still there, with a deprecation warning."""
    if name == "OPTIONS":
        return TabularOptions.old_options_list(__name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
