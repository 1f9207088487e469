"""Turning a frame into a tabular model's inputs, and the metrics of tabular runs.

Everything learned from the training split to turn a frame into tensors (category
vocabularies, continuous fill values, means and standard deviations) is a
:class:`TabularProcessor`, saved as JSON in ``run.json`` so a saved run rebuilds the exact
inputs. Unknown categories (and missing values) map to the reserved code 0, never to an
exception. Its own module so the trainer (embedlab.trainers.tabular) stays a readable size.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from embedlab.errors import DataError

if TYPE_CHECKING:  # torch loads in the functions that use it (fast CLI)
    import torch


def _is_integral(values: pd.Series) -> bool:
    v = values.dropna()
    if len(v) == 0:
        return True
    arr = v.to_numpy(dtype="float64")
    return bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)))


class TabularProcessor:
    """Frame -> (category codes, standardised continuous values), fitted on the training split.

    Categorical columns: vocabulary = the sorted distinct training values; code = position + 1;
    code 0 = unknown or missing. Continuous columns: missing values filled with the training
    median; a column with missing training values gets an extra categorical ``<col>_na``
    (fastai's FillMissing); then standardised with the training mean and standard deviation.
    Everything is plain JSON (``to_dict``/``from_dict``).
    """

    def __init__(self, categorical: list[dict], continuous: list[dict]) -> None:
        self.categorical = categorical
        self.continuous = continuous

    # -- fitting
    @classmethod
    def fit(cls, df: pd.DataFrame, cat_cols: list[str], cont_cols: list[str]) -> "TabularProcessor":
        cats = []
        for col in cat_cols:
            s = df[col]
            if pd.api.types.is_bool_dtype(s):
                s = s.astype("int64")
            if pd.api.types.is_numeric_dtype(s) and _is_integral(s):
                vocab = sorted(int(v) for v in pd.unique(s.dropna()))
                kind = "int"
            else:
                vocab = sorted(str(v) for v in pd.unique(s.dropna().astype(str)))
                kind = "str"
            cats.append({"name": col, "kind": kind, "vocab": vocab})
        conts = []
        for col in cont_cols:
            values = cls._numeric(df[col], col)
            has_na = bool(values.isna().any())
            fill = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(fill)
            mean = float(filled.mean()) if len(filled) else 0.0
            std = float(filled.std(ddof=0)) if len(filled) else 1.0
            conts.append(
                {
                    "name": col,
                    "fill": fill,
                    "mean": mean,
                    "std": std if std > 1e-12 and math.isfinite(std) else 1.0,
                    "na_indicator": has_na,
                }
            )
            if has_na:
                cats.append({"name": f"{col}_na", "kind": "int", "vocab": [0, 1], "indicator_of": col})
        return cls(cats, conts)

    @staticmethod
    def _numeric(s: pd.Series, col: str) -> pd.Series:
        if pd.api.types.is_bool_dtype(s):
            return s.astype("float64")
        values = pd.to_numeric(s, errors="coerce")
        bad = values.isna() & s.notna()
        if bad.any():
            raise DataError(
                f"continuous column {col!r} has a non-numeric value {s[bad].iloc[0]!r}; "
                f"declare it categorical or clean it"
            )
        return values.astype("float64")

    # -- names
    @property
    def cat_names(self) -> list[str]:
        return [c["name"] for c in self.categorical]

    @property
    def cont_names(self) -> list[str]:
        return [c["name"] for c in self.continuous]

    @property
    def source_columns(self) -> list[str]:
        """The frame columns this processor reads."""
        return [c["name"] for c in self.categorical if "indicator_of" not in c] + self.cont_names

    # -- transforming
    @staticmethod
    def _codes(s: pd.Series, spec: dict) -> np.ndarray:
        if spec["kind"] == "int":
            if pd.api.types.is_bool_dtype(s):
                s = s.astype("int64")
            values = pd.to_numeric(s, errors="coerce")
            index = pd.Index(np.asarray(spec["vocab"], dtype="int64"))
            idx = index.get_indexer(values.astype("float64"))
        else:
            index = pd.Index([str(v) for v in spec["vocab"]], dtype=object)
            idx = index.get_indexer(s.astype(str).astype(object))
            idx[s.isna().to_numpy()] = -1
        return (idx + 1).astype(np.int64)

    def check_columns(self, df: pd.DataFrame, source: str) -> None:
        missing = [c for c in self.source_columns if c not in df.columns]
        if missing:
            raise DataError(
                f"{source}: column {missing[0]!r} is missing ({len(missing)} model "
                f"column(s) missing: {', '.join(missing[:8])}); the frame's columns are: "
                f"{', '.join(map(str, df.columns[:40]))}"
            )

    def transform(self, df: pd.DataFrame, source: str = "frame") -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        self.check_columns(df, source)
        n = len(df)
        cats = np.zeros((n, len(self.categorical)), dtype=np.int64)
        for j, spec in enumerate(self.categorical):
            if "indicator_of" in spec:
                cats[:, j] = pd.to_numeric(df[spec["indicator_of"]], errors="coerce").isna().to_numpy() + 1
            else:
                cats[:, j] = self._codes(df[spec["name"]], spec)
        conts = np.zeros((n, len(self.continuous)), dtype=np.float32)
        for j, spec in enumerate(self.continuous):
            values = pd.to_numeric(df[spec["name"]], errors="coerce").astype("float64").fillna(spec["fill"])
            conts[:, j] = ((values.to_numpy() - spec["mean"]) / spec["std"]).astype(np.float32)
        return torch.from_numpy(cats), torch.from_numpy(conts)

    def to_dict(self) -> dict:
        return {"categorical": self.categorical, "continuous": self.continuous}

    @classmethod
    def from_dict(cls, d: dict) -> "TabularProcessor":
        return cls(list(d["categorical"]), list(d["continuous"]))


# ---------------------------------------------------------------------------- metrics
def log_regression_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Metrics of a model trained on log(y): RMSPE and MAPE on y itself (after exp)."""
    import torch

    p = pred.double()
    t = target.double()
    y, yhat = torch.exp(t), torch.exp(p)
    rel = (y - yhat) / y
    return {
        "valid_rmse_log": float(((p - t) ** 2).mean().sqrt()),
        "valid_rmspe": float((rel**2).mean().sqrt()),
        "valid_mape": float(rel.abs().mean()),
    }


def regression_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    err = (pred - target).double()
    var = float(((target.double() - target.double().mean()) ** 2).mean())
    mse = float((err**2).mean())
    return {
        "valid_rmse": mse**0.5,
        "valid_mae": float(err.abs().mean()),
        "valid_r2": 1.0 - mse / var if var > 0 else float("nan"),
    }


def classify_metrics(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    import torch

    logp = torch.log_softmax(pred.double(), 1)
    return {
        "valid_accuracy": float((pred.argmax(1) == target).double().mean()),
        "valid_logloss": float(torch.nn.functional.nll_loss(logp, target)),
    }


def rmspe(y: np.ndarray, yhat: np.ndarray) -> float:
    """Root mean squared percentage error (Kaggle's Rossmann metric), rows with y == 0 left out."""
    y = np.asarray(y, dtype="float64")
    yhat = np.asarray(yhat, dtype="float64")
    keep = y != 0
    return float(np.sqrt(np.mean(((y[keep] - yhat[keep]) / y[keep]) ** 2)))
