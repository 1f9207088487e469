"""The prediction engine behind ``embedlab predict RUN``: predictions from a saved run.

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
        raise DataError(
            f"{path}: cannot be read ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        ) from None


def predict_run(
    run_dir: str | Path, data_dir: str | Path | None = None, file: str | Path | None = None, progress: bool = False
) -> pd.DataFrame:
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
        frame = _read_frame(Path(file))
        preds = trainer.predict(run, frame)
        if "coverage" not in preds.attrs:  # a trainer that reports its own (collab: unseen users, items)
            preds.attrs["coverage"] = coverage(run, frame, len(frame), len(preds), Path(file).name)
        return preds
    entry = dataset_of_run(run)
    overrides: dict[str, Any] = {}
    if data_dir is not None:
        if "data_dir" not in entry.option_names:
            raise UsageError(f"dataset {run.dataset!r} takes no --data-dir; predict a table with --file")
        overrides["data_dir"] = str(data_dir)
    elif "data_dir" in entry.option_names and not loader_options(run).get("data_dir") and entry.data_dir(None) is None:
        raise UsageError(f"give the {run.dataset} data folder with --data-dir")
    split_opt = next((o for o in entry.options if o.name == "split"), None)
    if split_opt is not None and "none" in getattr(split_opt.type, "choices", ()):
        overrides["split"] = "none"  # predicting needs no validation rows
    dataset = reload_dataset(run, **overrides)
    preds = trainer.predict(run, dataset)
    test = getattr(dataset, "test", None)
    in_file = dataset.info.get("test_rows_in_file")
    asked = int(in_file) if isinstance(in_file, int) else (len(test) if test is not None else len(preds))
    from embedlab.trainers.base import option_defaults

    defaults = option_defaults(list(entry.options))
    selection = {
        k: v
        for k, v in loader_options(run).items()  # what the run chose differently
        if v is not None
        and v != defaults.get(k, v if k in ("data_dir", "seed") else object())
        and k not in ("data_dir", "split", "seed")
    }
    preds.attrs["coverage"] = coverage(run, test, asked, len(preds), f"{run.dataset}'s test rows", selection)
    return preds


def coverage(
    run, frame: pd.DataFrame | None, asked: int, written: int, source: str, selection: dict[str, Any] | None = None
) -> dict[str, Any]:
    """How much of the input the predictions cover: rows ``asked`` (in the source file, before
    a loader kept only some of them: ``Dataset.info["test_rows_in_file"]``) and ``written``,
    and per embedding table named by a column of ``frame``, the rows whose entity the run never
    saw in training (their predictions use the unknown-entity row). ``warnings`` says it in
    sentences (``predict`` prints them)."""
    warnings: list[str] = []
    unseen: dict[str, int] = {}
    examples: dict[str, str] = {}
    if frame is not None and len(frame):
        for name, table in run.tables.items():
            if name not in frame.columns:
                continue
            known = set(table.keys.astype(str))
            values = frame[name].astype(str)
            new = ~values.isin(known)
            if new.any():
                unseen[name] = int(new.sum())
                examples[name] = ", ".join(list(dict.fromkeys(values[new]))[:5])
    for name in sorted(unseen, key=lambda n: -unseen[n])[:3]:
        warnings.append(
            f"{unseen[name]:,} of {len(frame):,} rows have a {name} the run never saw in training "
            f"(e.g. {examples[name]}): their predictions use the unknown-{name} embedding"
        )
    if len(unseen) > 3:
        warnings.append(
            f"{len(unseen) - 3} more columns hold values the run never saw: "
            f"{', '.join(sorted(unseen, key=lambda n: -unseen[n])[3:])}"
        )
    if written < asked:
        how = (
            (
                " (the run was trained with "
                + ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in selection.items())
                + ", and only rows it covers were predicted)"
            )
            if selection
            else ""
        )
        warnings.append(
            f"predicted {written:,} of the {asked:,} rows of {source}{how}; the other "
            f"{asked - written:,} rows have no prediction: train on all the data for a complete file"
        )
    return {"asked": int(asked), "written": int(written), "unseen": unseen, "warnings": warnings}


def recommend_run(
    run_dir: Any,
    users: Any,
    k: int,
    include_rated: bool = False,
    data_dir: str | Path | None = None,
    dataset: Any = None,
) -> pd.DataFrame:
    """``--top K --user U...`` and ``Run.recommend``: each user's ``k`` best items of the run
    (a Run, or the folder ``run_dir``), without those the user rated in training unless
    ``include_rated`` (those are still marked ``rated``). The training rows come from
    ``dataset`` when given, else the run's data loaded again (``data_dir`` or the folder
    recorded in the run)."""
    from embedlab.registry import trainer_of_run
    from embedlab.run import Run, load_run
    from embedlab.toolkit.retrain import reload_dataset

    run = run_dir if isinstance(run_dir, Run) else load_run(run_dir)
    trainer = trainer_of_run(run)
    trainer.require("recommend", "embedlab predict --top")
    users = [users] if isinstance(users, (str, int)) or not hasattr(users, "__iter__") else list(users)
    if not users:
        raise UsageError("--top K needs the users to recommend for: --user U (repeatable)")
    if dataset is None:
        dataset = reload_dataset(run, **({"data_dir": str(data_dir)} if data_dir is not None else {}))
    return trainer.impl.recommend(run, users, k, rated=dataset.train, include_rated=include_rated)


def write_csv(frame: pd.DataFrame, out: str | Path, force: bool = False) -> Path:
    """``predict --out``: ``frame`` as a CSV under the write rule (a new file, one embedlab wrote,
    or ``force``), cells a spreadsheet would run as formulas made inert."""
    from embedlab.io.exchange import spreadsheet_safe
    from embedlab.io.ownership import owned_file

    with owned_file(out, "w", force=force, option="--out", by="embedlab predict", encoding="utf-8", newline="") as fh:
        spreadsheet_safe(frame).to_csv(fh, index=False)
    return Path(out)
