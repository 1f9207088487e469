"""``embedlab predict RUN``: predictions from a saved run, as a CSV file.

Works through the registries: the run's ``kind`` picks the trainer (which must offer
``predict(run, dataset_or_frame)``), and the run's ``dataset`` the loader. With
``--data-dir`` (or, by default, the folder recorded in the run) the dataset is loaded again
with the options the run was trained with, and its test rows are predicted — for Rossmann,
Kaggle's ``test.csv``, written in Kaggle's submission format ``Id,Sales``. With ``--file``, the
rows of that CSV/Parquet file are predicted directly (it must hold the run's model columns).
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import click
import pandas as pd

from embedlab.errors import DataError, UsageError


def _read_frame(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        with open(path, newline="", encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        try:
            sep = csv.Sniffer().sniff(first, delimiters=",;\t|").delimiter
        except csv.Error:
            sep = ","
        return pd.read_csv(path, sep=sep, low_memory=False)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except Exception as exc:  # noqa: BLE001 - a parser failure is a user-data problem
        raise DataError(f"{path}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None


def predict_run(run_dir: str | Path, data_dir: str | Path | None = None, file: str | Path | None = None,
                progress: bool = False) -> pd.DataFrame:
    """Predictions of the run at ``run_dir`` (see module docstring)."""
    from embedlab.registry import dataset_of_run, trainer_of_run
    from embedlab.run import load_run
    from embedlab.toolkit.retrain import loader_options, reload_dataset

    run = load_run(run_dir)
    trainer = trainer_of_run(run)
    trainer.require("predict", "embedlab predict")
    if file is not None:
        if data_dir is not None:
            raise UsageError("give either --file or --data-dir, not both")
        return trainer.predict(run, _read_frame(Path(file)))
    entry = dataset_of_run(run)
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        if "data_dir" not in entry.option_names:
            raise UsageError(f"dataset {run.dataset!r} takes no --data-dir; predict a table with --file")
        overrides["data_dir"] = str(data_dir)
    elif "data_dir" in entry.option_names and not loader_options(run).get("data_dir"):
        raise UsageError(f"give the {run.dataset} data folder with --data-dir")
    split_opt = next((o for o in entry.options if o.name == "split"), None)
    if split_opt is not None and "none" in getattr(split_opt.type, "choices", ()):
        overrides["split"] = "none"  # predicting needs no validation rows
    return trainer.predict(run, reload_dataset(run, **overrides))


@click.command("predict")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dataset folder (default: the one recorded in the run); its test rows are "
                   "predicted (Rossmann: Kaggle's test.csv).")
@click.option("--file", "file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Predict the rows of this CSV/Parquet file instead (it must hold the model's columns).")
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="CSV file to write (e.g. submission.csv: Kaggle's Id,Sales for Rossmann).")
def predict_command(run_dir: Path, data_dir: Path | None, file: Path | None, out: Path) -> None:
    """Predict with a trained run and write a CSV (Kaggle submission format for Rossmann)."""
    from embedlab.io.atomic import atomic_file

    preds = predict_run(run_dir, data_dir, file)
    with atomic_file(out, "w", encoding="utf-8", newline="") as fh:
        preds.to_csv(fh, index=False)
    click.echo(f"wrote {len(preds):,} predictions to {out}", err=True)
