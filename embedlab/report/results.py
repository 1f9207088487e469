"""``learn.show_results(n)``: predictions beside targets, and where the model errs.

A :class:`Results` holds the shown rows (a DataFrame: for a collab learner the user and item,
their labels, the target, the prediction and the error) and a summary over every row of the
set: the RMSE, and for a collab learner the RMSE by how many training ratings the user and the
item have (buckets: ``0``, ``1-10``, ``11-50``, ``51-200``, ``>200``). It displays as HTML
tables in a notebook and as rich tables in a terminal (``print(results)`` or rich's
``console.print``).
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

#: (label, lowest count, highest count) of the training-count buckets
BUCKETS = (("0", 0, 0), ("1-10", 1, 10), ("11-50", 11, 50), ("51-200", 51, 200), (">200", 201, np.inf))


def rmse(pred: np.ndarray, target: np.ndarray) -> float:
    return (
        float(np.sqrt(np.mean((np.asarray(pred, float) - np.asarray(target, float)) ** 2)))
        if len(pred)
        else float("nan")
    )


def by_bucket(counts: np.ndarray, pred: np.ndarray, target: np.ndarray) -> pd.DataFrame:
    """RMSE and rows per training-count bucket (the buckets that hold rows)."""
    counts = np.asarray(counts, dtype=float)
    rows = []
    for label, lo, hi in BUCKETS:
        mask = (counts >= lo) & (counts <= hi)
        if mask.any():
            rows.append({"ratings in training": label, "rows": int(mask.sum()), "rmse": rmse(pred[mask], target[mask])})
    return pd.DataFrame(rows)


class Results:
    """What ``show_results`` returns: ``.table`` (the shown rows), ``.rmse`` (over the whole
    set), ``.by_user`` / ``.by_item`` (RMSE per training-count bucket; None for a learner
    without users and items) and ``.summary`` (the same in words)."""

    def __init__(
        self,
        table: pd.DataFrame,
        total_rmse: float,
        n_rows: int,
        ds: str,
        by_user: pd.DataFrame | None = None,
        by_item: pd.DataFrame | None = None,
    ) -> None:
        self.table, self.rmse, self.n_rows, self.ds = table, total_rmse, n_rows, ds
        self.by_user, self.by_item = by_user, by_item

    @property
    def summary(self) -> str:
        text = f"RMSE {self.rmse:.4f} over the {self.n_rows:,} {self.ds} rows"
        for who, frame in (("user", self.by_user), ("item", self.by_item)):
            if frame is not None and len(frame):
                worst = frame.loc[frame["rmse"].idxmax()]
                best = frame.loc[frame["rmse"].idxmin()]
                text += (
                    f"; by the {who}'s training ratings, worst {worst['rmse']:.4f} "
                    f"({worst['ratings in training']}, {int(worst['rows']):,} rows), best {best['rmse']:.4f} "
                    f"({best['ratings in training']}, {int(best['rows']):,} rows)"
                )
        return text + "."

    def _frames(self) -> list[tuple[str, pd.DataFrame]]:
        out = [(f"{len(self.table)} of the {self.n_rows:,} {self.ds} rows", self.table)]
        for who, frame in (("user", self.by_user), ("item", self.by_item)):
            if frame is not None and len(frame):
                out.append((f"RMSE by the {who}'s ratings in training", frame))
        return out

    def _repr_html_(self) -> str:
        parts = [f"<p>{html.escape(self.summary)}</p>"]
        for caption, frame in self._frames():
            parts.append(
                f"<h4>{html.escape(caption)}</h4>"
                + frame.to_html(index=False, float_format="{:.4f}".format, escape=True)
            )
        return "<div class='embedlab-results'>" + "".join(parts) + "</div>"

    def __rich_console__(self, console: Any, options: Any):
        from rich.table import Table

        from embedlab.report.terminal import safe_text

        yield safe_text(self.summary)
        for caption, frame in self._frames():
            table = Table(title=caption)
            for col in frame.columns:
                table.add_column(str(col), justify="right" if pd.api.types.is_numeric_dtype(frame[col]) else "left")
            for row in frame.itertuples(index=False):
                table.add_row(*[safe_text(f"{v:.4f}" if isinstance(v, float) else v) for v in row])
            yield table

    def __str__(self) -> str:
        import io

        from rich.console import Console

        console = Console(width=120, record=True, file=io.StringIO(), color_system=None)
        console.print(self)
        return console.export_text()

    def __repr__(self) -> str:
        return f"<Results: {self.summary}>"
