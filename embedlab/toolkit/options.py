"""Analysis options that several analyses share, declared once.

An option name is one ``embedlab analyze`` flag however many analyses declare it (``--seed``
reaches every analysis that takes a seed), so a shared name must mean the same thing
everywhere: the registry refuses, at registration, an analysis that declares one of these
names with another type, default or ``multiple`` (and any name two analyses declare
differently). Declare them by using these objects::

    from embedlab.toolkit.options import SEED, TOP_N

    class MyAnalysis(Analysis):
        options = [TOP_N, SEED, AnalysisOption("my_k", int, 5, "...")]

Public names: ``__all__``; the plugin guide documents each with an example:
``embedlab plugins guide "embedlab.toolkit.options"``.
"""

from __future__ import annotations

import click

from embedlab.analysis import AnalysisOption

__all__ = [
    "TOP_N",
    "MIN_COUNT",
    "N_SHOW",
    "SEED",
    "PERMUTATIONS",
    "DISTANCE",
    "PROJECTION",
    "SHARED_OPTIONS",
    "DEFAULT_TOP_N",
]

DEFAULT_TOP_N = 1000

TOP_N = AnalysisOption(
    "top_n",
    int,
    DEFAULT_TOP_N,
    "Keep the N most-observed entities of each table (0: all); ignored when --min-count is given.",
)
MIN_COUNT = AnalysisOption(
    "min_count", int, None, "Keep entities observed at least this many times (overrides --top-n)."
)
N_SHOW = AnalysisOption("n_show", int, 10, "Entities listed at each end of a ranking or component.")
SEED = AnalysisOption("seed", int, 0, "Random seed of analyses that sample or are stochastic.")
PERMUTATIONS = AnalysisOption(
    "permutations",
    click.IntRange(19, 10_000_000),
    9999,
    "Permutations for p-values (exact enumeration when the table is small enough).",
)
DISTANCE = AnalysisOption(
    "distance", click.Choice(["cosine", "euclidean"]), "cosine", "Distance between embedding vectors."
)
PROJECTION = AnalysisOption(
    "projection",
    click.Choice(["pca", "tsne", "umap"]),
    "pca",
    "2-D projection of the embeddings (for plots, and geography's Procrustes fit).",
)

#: every shared option by name: what the registry checks declarations against
SHARED_OPTIONS: dict[str, AnalysisOption] = {
    o.name: o for o in (TOP_N, MIN_COUNT, N_SHOW, SEED, PERMUTATIONS, DISTANCE, PROJECTION)
}


def option_signature(option: AnalysisOption) -> tuple:
    """What must agree between two declarations of one option name: its value type (a click
    type's description: class, choices, bounds), ``multiple`` and default."""
    ptype = click.types.convert_type(option.type)
    info = ptype.to_info_dict()
    return (tuple(sorted((k, repr(v)) for k, v in info.items())), bool(option.multiple), repr(option.default))


def describe_signature(option: AnalysisOption) -> str:
    ptype = click.types.convert_type(option.type)
    return f"type {ptype.name}{' (multiple)' if option.multiple else ''}, default {option.default!r}"
