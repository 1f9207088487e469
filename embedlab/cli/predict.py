"""``embedlab predict RUN``: predictions from a saved run (:mod:`embedlab.engines.predict`), as
a CSV file written under the write rule; ``--top K --user U``: recommendations."""

from __future__ import annotations

from pathlib import Path

import click
import pandas as pd

from embedlab.engines.predict import coverage, predict_run, recommend_run, write_csv  # noqa: F401  (old home)
from embedlab.errors import UsageError


def _print_recommendations(recs: pd.DataFrame) -> None:
    from embedlab.report.terminal import escape_control as safe_text

    for user, group in recs.groupby("user", sort=False):
        click.echo(f"{safe_text(str(group['user_label'].iloc[0]))} (key {user}): top {len(group)}")
        for row in group.itertuples():
            rated = "  (rated)" if row.rated else ""
            click.echo(
                f"  {row.rank:>3}. {row.prediction:.2f}  {safe_text(str(row.item_label))} "
                f"[{row.item}, {int(row.count) if row.count == row.count else 0} ratings]{rated}"
            )


@click.command("predict")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Dataset folder, or the folder holding it (default: the one recorded in the run, else "
    "EMBEDLAB_DATA_DIR); its test rows are predicted (Rossmann: Kaggle's test.csv).",
)
@click.option(
    "--file",
    "file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Predict the rows of this CSV/Parquet file instead (it must hold the model's columns).",
)
@click.option(
    "--top",
    type=click.IntRange(1),
    default=None,
    help="Collab runs: recommend each --user's TOP best items (without those the user rated in "
    "training, unless --include-rated); printed, and written to --out when given.",
)
@click.option(
    "--user", "users", multiple=True, help="With --top: a user to recommend for, by key or label (repeatable)."
)
@click.option(
    "--include-rated", is_flag=True, help="With --top: keep the items the user already rated (marked 'rated')."
)
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV file to write (e.g. submission.csv: Kaggle's Id,Sales for Rossmann): a new file, "
    "or one embedlab wrote (listed in its folder's .embedlab-files.json); see --force. "
    "Required except with --top.",
)
@click.option("--force", is_flag=True, help="Let --out replace a file embedlab did not write.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the recommendations (--top), or what was written and its coverage, as JSON on stdout.",
)
def predict_command(
    run_dir: Path,
    data_dir: Path | None,
    file: Path | None,
    out: Path | None,
    force: bool = False,
    top: int | None = None,
    users: tuple[str, ...] = (),
    include_rated: bool = False,
    as_json: bool = False,
) -> None:
    """Predict with a trained run and write a CSV (Kaggle submission format for Rossmann); for a
    collab run, score the (user, item) pairs of --file, or recommend with --top K --user U."""
    from embedlab.io.ownership import check_file

    if out is not None:
        check_file(out, force=force, option="--out")  # before any work
    if top is not None or users or include_rated:
        if top is None:
            raise UsageError("--user and --include-rated go with --top K")
        if file is not None:
            raise UsageError("give either --file (score pairs) or --top (recommend), not both")
        recs = recommend_run(run_dir, users, top, include_rated, data_dir)
        if as_json:
            from embedlab.io.strictjson import dumps

            click.echo(dumps({"recommendations": recs.to_dict("records"), "out": None if out is None else str(out)}))
        else:
            _print_recommendations(recs)
        for note in recs.attrs.get("notes", []):
            click.echo(f"note: {note}", err=True)
        if out is not None:
            write_csv(recs, out, force=force)
            click.echo(f"wrote {len(recs):,} recommendations to {out}", err=True)
        return
    if out is None:
        raise UsageError("give the CSV file to write with --out")
    preds = predict_run(run_dir, data_dir, file)
    write_csv(preds, out, force=force)
    cover = preds.attrs.get("coverage") or {}
    for warning in cover.get("warnings", []):
        click.echo(f"warning: {warning}", err=True)
    asked = cover.get("asked", len(preds))
    written = cover.get("written", len(preds))
    missing = f" ({len(preds) - written:,} of them without a prediction)" if written < len(preds) else ""
    click.echo(f"wrote {len(preds):,} predictions of the {asked:,} rows asked to {out}{missing}", err=True)
    if as_json:
        from embedlab.io.strictjson import dumps

        click.echo(dumps({"out": str(out), "rows": len(preds), "columns": list(preds.columns), "coverage": cover}))
