"""embedlab-shop: a shop's ratings as an embedlab dataset, and a command.

``embedlab train shop-ratings --file orders.csv [--products products.csv]`` trains on a CSV of
``customer,sku,stars,timestamp`` rows. Its entity tables are called ``customer`` and ``product``
and are declared by role (``entity_tables``), so the product names become the item labels.
``embedlab shop-top RUN`` lists the best-liked products of a trained run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pandas as pd

from embedlab import hookimpl
from embedlab.data import (
    Dataset,
    DatasetSpec,
    check_ratings,
    collab_entity_stats,
    require_columns,
    split_collab,
    split_options,
)
from embedlab.errors import DataError

OPTIONS = [
    click.Option(
        ["--file"],
        type=click.Path(dir_okay=False, path_type=Path),
        required=True,
        help="Ratings CSV with columns customer, sku, stars (1-5), timestamp.",
    ),
    click.Option(
        ["--products"],
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Optional CSV with columns sku, name, category.",
    ),
    *split_options(("random", "time")),  # --split random|time, --valid-pct
]


def load(
    file: Path, products: Path | None = None, split: str = "random", valid_pct: float = 0.1, seed: int = 42, **_: Any
) -> Dataset:
    if not Path(file).is_file():
        raise DataError(f"{file}: no such file (give the ratings CSV with --file)")
    ratings = pd.read_csv(file)
    require_columns(ratings, ["customer", "sku", "stars", "timestamp"], str(file))
    ratings["stars"] = check_ratings(ratings, "stars", str(file), bounds=(1, 5))
    train, valid, split_info = split_collab(ratings, split, valid_pct, seed, "timestamp")
    customers = collab_entity_stats(ratings, "customer", "stars")[["count"]].rename(columns={"count": "orders"})
    customers["label"] = "customer " + customers.index.astype(str)
    entities = {"customer": customers}
    if products is not None:
        meta = pd.read_csv(products)
        require_columns(meta, ["sku", "name", "category"], str(products))
        product = meta.set_index("sku").rename(columns={"name": "label"})
        product.attrs["color_column"] = "category"
        entities["product"] = product
    return Dataset(
        name="shop-ratings",
        kind="collab",
        train=train,
        valid=valid,
        roles={"user": "customer", "item": "sku", "rating": "stars", "timestamp": "timestamp"},
        entities=entities,
        entity_tables={"user": "customer", "item": "product"} if products else {"user": "customer"},
        split=split_info,
        rating_range=(1.0, 5.0),
    )


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec(
            name="shop-ratings", kind="collab", description="A shop's product ratings (CSV)", load=load, options=OPTIONS
        )
    )


@hookimpl
def embedlab_register_commands(cli):
    @cli.command("shop-top")
    @click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option("--n", "n", type=click.IntRange(1), default=5, show_default=True, help="Products to list.")
    def shop_top(run_dir: Path, n: int):
        """List the best-liked products of a trained run (by learned bias)."""
        from embedlab import load_run

        item = load_run(run_dir).table("item")
        for label, bias in item.bias.sort_values(ascending=False).head(n).items():
            click.echo(f"{bias:+.2f}  {label}")
