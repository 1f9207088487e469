"""``transfer``: learned entity embeddings as input features of other models.

Guo & Berkhahn (2016), Tables 3 and 4: k-nearest neighbours, a random forest and gradient
boosted trees fitted on the raw categorical codes do much worse than the same models fitted on
the entity embeddings the network learned, each categorical value replaced by its vector.
For a tabular regression run whose trainer offers ``encode_rows`` (the Trainer protocol,
:class:`embedlab.trainers.base.EncodedRows`), this analysis reloads the run's data through the
registry (its loader options and split), takes the rows the network trained on (the same sample
when the run used ``--train-sample``; at most ``--transfer-rows`` of them, 200,000 as in the
paper), has the trainer encode them, and scores on (at most ``--transfer-eval-rows`` of) the
run's validation rows:

* raw codes: each categorical as its integer code (the built-in tabular trainer's vocabulary:
  1.. in sorted order, 0 = unknown), as the paper's own script fed them (no one-hot), plus the
  model's continuous inputs (standardised);
* embeddings: each categorical replaced by the run's learned vector (its row 0 for unknown
  values), plus the same continuous columns.

Models (scikit-learn): ``KNeighborsRegressor(n_neighbors=10, weights="distance")``;
``RandomForestRegressor(max_depth=35)`` with ``--transfer-trees`` trees (the paper: 200);
``HistGradientBoostingRegressor`` (the paper used XGBoost; HistGradientBoosting bins a
feature into at most 255 values, so a code column with more levels is coarsened). Every model
learns the run's target as the network did (log sales for Rossmann) and is scored by MAPE on
the original scale, beside the network itself on the same rows and the paper's figures for
its time-based split (latest 10 % as test): KNN 0.290 -> 0.116, random forest 0.158 -> 0.108,
gradient boosted trees 0.152 -> 0.115, neural network 0.093.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd

from embedlab import hookimpl
from embedlab.analysis import RUN_LEVEL, Analysis, AnalysisOption, AnalysisResult
from embedlab.data import sample_rows
from embedlab.errors import EmbedlabError, UsageError
from embedlab.run import Run
from embedlab.trainers.base import EncodedRows

from embedlab.toolkit.options import SEED
from embedlab.toolkit.retrain import reload_dataset, trainer_of

#: Guo & Berkhahn 2016, Table 4 (time-based split): MAPE without / with entity embeddings.
PAPER_TIME_BASED = {"knn": (0.290, 0.116), "rf": (0.158, 0.108), "gbt": (0.152, 0.115), "nn": (None, 0.093)}
MODEL_NAMES = {
    "knn": "KNN (k=10, distance weights)",
    "rf": "random forest",
    "gbt": "gradient boosting (hist)",
    "nn": "the run's neural network",
}
MODELS = ("knn", "rf", "gbt")

TRANSFER_ROWS = AnalysisOption(
    "transfer_rows", int, 200_000, "Training rows the other models fit on (a sample of the run's; the paper: 200,000)."
)
TRANSFER_EVAL_ROWS = AnalysisOption(
    "transfer_eval_rows", int, 20_000, "Validation rows scored (a random sample of the run's; 0: all)."
)
TRANSFER_TREES = AnalysisOption("transfer_trees", int, 50, "Trees of the random forest (the paper: 200).")
TRANSFER_ROUNDS = AnalysisOption("transfer_rounds", int, 300, "Boosting iterations of the gradient boosting.")
TRANSFER_MODELS = AnalysisOption(
    "transfer_models", str, ",".join(MODELS), "Comma-separated models to fit: knn, rf, gbt."
)


def _mape(y: np.ndarray, yhat: np.ndarray) -> float:
    keep = y != 0
    return float(np.mean(np.abs((y[keep] - yhat[keep]) / y[keep])))


def make_model(name: str, seed: int, trees: int, rounds: int = 300):
    """The scikit-learn estimator of each compared model."""
    if name == "knn":
        from sklearn.neighbors import KNeighborsRegressor

        return KNeighborsRegressor(n_neighbors=10, weights="distance")
    if name == "rf":
        from sklearn.ensemble import RandomForestRegressor

        return RandomForestRegressor(
            n_estimators=max(1, int(trees)), max_depth=35, min_samples_leaf=1, max_features=0.5, random_state=seed
        )
    if name == "gbt":
        from sklearn.ensemble import HistGradientBoostingRegressor

        return HistGradientBoostingRegressor(
            max_iter=max(1, int(rounds)), learning_rate=0.1, max_leaf_nodes=63, early_stopping=False, random_state=seed
        )
    raise UsageError(f"--transfer-models: unknown model {name!r}; choose from {', '.join(MODELS)}")


def run_rows(run: Run, train: pd.DataFrame) -> pd.DataFrame:
    """The training rows the run's network saw (its ``--train-sample``, drawn the same way)."""
    return sample_rows(train, int(run.config.get("train_sample") or 0), run.config.get("seed", run.seed))


class Transfer(Analysis):
    name = "transfer"
    by_default = False  # retrains models for minutes: run only with --only transfer
    requires = ("training_data",)  # retrains on the run's own rows
    title = "Entity embeddings as features for other models"
    description = (
        "Fits KNN, a random forest and gradient boosting on the raw categorical codes and on the run's "
        "learned embeddings (Guo & Berkhahn 2016, Tables 3/4); MAPE of each beside the network and "
        "the paper's figures. Reloads the run's data; fits models on up to 200,000 rows."
    )
    options = [TRANSFER_ROWS, TRANSFER_EVAL_ROWS, TRANSFER_TREES, TRANSFER_ROUNDS, TRANSFER_MODELS, SEED]

    def applies_to(self, run: Run) -> list:
        # only the public contract: a regression run whose trainer can show its model's view of rows
        if run.kind != "tabular" or run.task != "regression" or not run.table_names:
            return []
        try:
            trainer = trainer_of(run)
        except EmbedlabError:  # the trainer that made it is not installed
            return []
        return [RUN_LEVEL] if trainer.can("encode_rows") else []

    def run(self, run: Run, table: str | None, options: dict[str, Any], progress=None) -> AnalysisResult:
        seed = int(options.get("seed") if options.get("seed") is not None else 42)
        models = [m.strip() for m in str(options.get("transfer_models") or ",".join(MODELS)).split(",") if m.strip()]
        for m in models:
            make_model(m, seed, 1)  # unknown names fail before any work
        dataset = reload_dataset(run)
        if dataset.valid is None or not len(dataset.valid):
            raise UsageError(
                f"run {run.path or ''}: its split ({dataset.split.get('name')}) has no validation rows to score on"
            )
        train = sample_rows(run_rows(run, dataset.train), int(options.get("transfer_rows") or 0), seed)
        valid = sample_rows(dataset.valid.reset_index(drop=True), int(options.get("transfer_eval_rows") or 0), seed + 1)
        trainer = trainer_of(run)
        enc_tr = trainer.encode_rows(run, train, "training rows")
        enc_va = trainer.encode_rows(run, valid, "validation rows")
        log = enc_tr.target_transform == "log"
        y_tr, y_va = enc_tr.target, enc_va.target
        fit_y = np.log(y_tr) if log else y_tr

        def features(enc: EncodedRows, kind: str) -> np.ndarray:
            if kind == "raw":
                return np.hstack([enc.codes.astype(np.float32), enc.continuous])
            return np.hstack([w[enc.codes[:, j]] for j, w in enumerate(enc.embeddings)] + [enc.continuous])

        def back(pred: np.ndarray) -> np.ndarray:
            return np.exp(pred) if log else pred

        rows = []
        fits = [(m, kind) for m in models for kind in ("raw", "emb")]
        for m in models:
            row: dict[str, Any] = {"model": MODEL_NAMES[m]}
            for kind, label in (("raw", "raw codes"), ("emb", "embeddings")):
                if progress is not None:  # the runner's bar follows each model fitted
                    progress(fits.index((m, kind)), len(fits), f"fitting {MODEL_NAMES[m]} on {label}")
                est = make_model(m, seed, options.get("transfer_trees") or 50, options.get("transfer_rounds") or 300)
                t0 = time.perf_counter()
                est.fit(features(enc_tr, kind), fit_y)
                pred = back(est.predict(features(enc_va, kind)))
                row[f"MAPE {label}"] = _mape(y_va, pred)
                row[f"seconds {label}"] = time.perf_counter() - t0
            paper = PAPER_TIME_BASED[m]
            row["paper raw"], row["paper embeddings"] = paper
            rows.append(row)
        rows.append(
            {
                "model": MODEL_NAMES["nn"],
                "MAPE raw codes": np.nan,
                "MAPE embeddings": _mape(y_va, enc_va.prediction),  # exp(output): no RMSPE scale
                "seconds raw codes": np.nan,
                "seconds embeddings": np.nan,
                "paper raw": None,
                "paper embeddings": PAPER_TIME_BASED["nn"][1],
            }
        )
        frame = pd.DataFrame(rows)
        frame["change"] = frame["MAPE embeddings"] - frame["MAPE raw codes"]
        frame = frame[
            [
                "model",
                "MAPE raw codes",
                "MAPE embeddings",
                "change",
                "paper raw",
                "paper embeddings",
                "seconds raw codes",
                "seconds embeddings",
            ]
        ]
        metrics: dict[str, float] = {"train_rows": float(len(train)), "eval_rows": float(len(valid))}
        for m, row in zip(models + ["nn"], rows):
            if m != "nn":
                metrics[f"mape_{m}_raw"] = float(row["MAPE raw codes"])
            metrics[f"mape_{m}_embeddings"] = float(row["MAPE embeddings"])
        split = dataset.split or {}
        setting = (
            f"{run.dataset}, split {split.get('name', '?')}"
            + (
                f" (validation {split.get('valid_start')} .. {split.get('valid_end')})"
                if split.get("valid_start")
                else ""
            )
            + f", {len(run.table_names)} categorical and {enc_va.continuous.shape[1]} "
            f"continuous features; {len(train):,} training rows, scored on {len(valid):,} validation rows"
        )
        better = [r for r in rows[:-1] if r["MAPE embeddings"] < r["MAPE raw codes"]]
        parts = [
            f"Setting: {setting}.",
            f"The learned embeddings as inputs lowered MAPE for {len(better)} of {len(rows) - 1} models: "
            + "; ".join(f"{r['model']} {r['MAPE raw codes']:.3f} -> {r['MAPE embeddings']:.3f}" for r in rows[:-1])
            + f". The network itself: {rows[-1]['MAPE embeddings']:.3f}.",
            "Paper (Guo & Berkhahn 2016, time-based split, latest 10% as test, 200,000 training rows, 7 "
            "features): KNN 0.290 -> 0.116, random forest 0.158 -> 0.108, gradient boosted trees 0.152 -> "
            "0.115, network 0.093.",
        ]
        if split.get("name") not in ("time", "time-before", "time-after"):
            parts.append(
                "This run's split is not the paper's (use --split time --valid-pct 0.1 with --preset "
                "guo2016 for its setting), so compare the direction, not the numbers."
            )
        data = {"frame": frame}
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=" ".join(parts),
            metrics=metrics,
            tables={"MAPE on the validation rows (paper: Table 4, time-based)": frame},
            data=data,
            finding=f"the embeddings as inputs lowered MAPE for {len(better)} of {len(rows) - 1} "
            f"models; the network itself {rows[-1]['MAPE embeddings']:.3f}",
            headline=[k for k in metrics if k.startswith("mape_") and k.endswith("_embeddings")],
        )

    def render(self, result: AnalysisResult) -> list:
        from embedlab.toolkit.plotting import bar_chart

        frame: pd.DataFrame = result.data["frame"]
        return [
            bar_chart(
                frame["model"].tolist(),
                {
                    "raw codes": frame["MAPE raw codes"].to_numpy(dtype=float),
                    "embeddings": frame["MAPE embeddings"].to_numpy(dtype=float),
                    "paper, raw": frame["paper raw"].to_numpy(dtype=float),
                    "paper, embeddings": frame["paper embeddings"].to_numpy(dtype=float),
                },
                "MAPE on the validation rows (lower is better)",
                "MAPE",
            )
        ]


@hookimpl
def embedlab_register_analyses(register):
    register(Transfer())
