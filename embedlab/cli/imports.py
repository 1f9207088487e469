"""``embedlab import``: vectors made anywhere become an ordinary run folder."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.common import stderr as echo_err


@click.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(path_type=Path),
    required=True,
    help="Run folder to write (new, or a run embedlab wrote; see --force).",
)
@click.option(
    "--format",
    "fmt",
    default=None,
    metavar="FORMAT",
    help="projector, word2vec, glove, word2vec-binary, npy, npz, parquet, arrow, csv, safetensors, "
    "torch [default: by the file's ending].",
)
@click.option("--table", "-t", default=None, help="Name of the table of a single vector file [default: item].")
@click.option(
    "--keys",
    "keys",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="Keys of the rows, one per line (a keys.txt), for files that hold none (.npy, vectors.tsv); "
    "default: row numbers.",
)
@click.option(
    "--tensor",
    multiple=True,
    metavar="NAME=TABLE",
    help="Which 2-D tensor (state dict, safetensors), array (.npz) or list column (Parquet/CSV) "
    "becomes which table (repeatable).",
)
@click.option(
    "--classes",
    type=click.Path(path_type=Path),
    default=None,
    metavar="FILE",
    help="fastai's dls.classes as JSON {name: [classes...]} or CSV name,class: names the rows of "
    "a fastai model's embeddings.",
)
@click.option(
    "--metadata",
    multiple=True,
    metavar="[TABLE=]FILE",
    help="A table (CSV, TSV, Parquet) joined to the vectors by key: labels, counts, "
    "latitude/longitude, cycle_order, any column; TABLE= names the table it joins when the "
    "import makes several (repeatable).",
)
@click.option(
    "--key", default=None, metavar="COL", help="The key column (of --metadata, or of the vectors' own table)."
)
@click.option("--label", default=None, metavar="COL", help="The column people read (titles, names) [default: label].")
@click.option(
    "--bias",
    default=None,
    metavar="COL",
    help="The column (or, in a state dict, the 1-D tensor) holding each entity's bias [default: bias].",
)
@click.option(
    "--count",
    default=None,
    metavar="COL",
    help="The column counting how often each entity was observed [default: count, else every "
    "entity counts as observed].",
)
@click.option(
    "--force", is_flag=True, help="Write into a folder holding files embedlab did not write (same-named ones replaced)."
)
def import_command(
    paths: tuple[Path, ...],
    out: Path,
    fmt: str | None,
    table: str | None,
    keys: Path | None,
    tensor: tuple[str, ...],
    classes: Path | None,
    metadata: tuple[str, ...],
    key: str | None,
    label: str | None,
    bias: str | None,
    count: str | None,
    force: bool,
):
    """Import embeddings made elsewhere as a run: every command then works on it.

    \b
    Examples:
      embedlab import vectors.tsv metadata.tsv --out runs/projector
      embedlab import glove.6B.50d.txt --out runs/glove
      embedlab import items.npy --keys ids.txt --metadata items.csv --key id --label title --out runs/items
      embedlab import models/model.pth --classes classes.json --out runs/fastai
      embedlab import atlas.parquet --out runs/atlas

    Pickled files (fastai's learn.export(), gensim's save()) are refused: nothing is ever unpickled.
    Nothing is written unless every file reads and checks.
    """
    from embedlab.toolkit.importing import import_files
    from embedlab.run import check_out_dir

    check_out_dir(out, force=force)  # before any work
    run = import_files(
        paths,
        fmt=fmt,
        keys=keys,
        tensor=tensor,
        classes=classes,
        metadata=metadata or None,
        key=key,
        label=label,
        bias=bias,
        count=count,
        table=table,
    )
    run.save(out, force=force)
    for note in run.meta["imported"].get("notes") or []:
        echo_err(f"note: {note}")
    for name, t in run.tables.items():
        extra = [w for w, ok in (("bias", t.bias_values is not None), ("counts", t.count is not None)) if ok]
        echo_err(f"table {name}: {len(t):,} x {t.dim}" + (f" with {', '.join(extra)}" if extra else ""))
    click.echo(str(out))
