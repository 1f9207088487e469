"""A third-party plugin written exactly against the plugin guide of embedlab 0.1 (before the
redesign): its import paths, the one-argument ``applies_to``, ``[None]`` for a run-level
analysis, a trainer built on ``embedlab.learner``, a command. tests/test_architecture.py
installs it as a distribution and drives it through the CLI; if a contract change breaks
plugins written this way, that test fails. Do not modernise this file."""

import click
import numpy as np
import pandas as pd

from embedlab import hookimpl, load_run
from embedlab.analysis import Analysis, AnalysisOption, AnalysisResult
from embedlab.data import Dataset, DatasetSpec, random_split
from embedlab.learner import LRFindResult  # noqa: F401  (the guide's import path for trainers)
from embedlab.run import EmbeddingTable, Run
from embedlab.trainers.base import run_meta


def _load(n: int = 300, seed: int = 42, **_):
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "user": rng.integers(1, 20, n),
            "item": rng.integers(1, 12, n),
            "rating": rng.uniform(1, 5, n).astype(np.float32),
        }
    )
    train, valid = random_split(frame, 0.2, seed)
    return Dataset(
        "legacy-data", "legacy-kind", train, valid, roles={"user": "user", "item": "item", "rating": "rating"}
    )


class LegacyTrainer:
    name = "legacy-trainer"
    kind = "legacy-kind"
    options = [click.Option(["--dims"], type=int, default=3, show_default=True, help="Vector size.")]

    def train(self, dataset, config, progress=True):
        items = sorted(pd.unique(dataset.train["item"]))
        dims = int(config.get("dims") or 3)
        vectors = np.array([[float(i) * (d + 1) for d in range(dims)] for i in items], dtype=np.float32)
        table = EmbeddingTable(
            "item",
            np.array(items, dtype=np.int64),
            np.array([f"item {i}" for i in items]),
            vectors,
            metadata=pd.DataFrame({"count": np.ones(len(items), dtype=np.int64)}),
        )
        meta = run_meta(dataset, self, dict(config), 0, {"valid_loss": 0.5}, [])
        return Run(meta, {"item": table}, {})


class NormAnalysis(Analysis):
    name = "legacy-norms"
    title = "Vector norms (legacy plugin)"
    options = [AnalysisOption("norm_order", int, 2, "Order of the norm.")]

    def applies_to(self, run):
        return list(run.tables)

    def run(self, run, table, options):
        t = run.table(table)
        norms = np.linalg.norm(t.vectors, ord=options["norm_order"], axis=1)
        frame = pd.DataFrame({"label": t.labels, "norm": norms})
        return AnalysisResult(
            self.name,
            table,
            self.title,
            summary=f"mean norm {norms.mean():.3f}",
            metrics={"mean_norm": float(norms.mean())},
            tables={"norms": frame},
            data={"frame": frame},
        )

    def render(self, result):
        from embedlab.plotting import histogram

        return [histogram(result.data["frame"]["norm"], "norms", "norm")]


class RunSize(Analysis):
    name = "legacy-run-size"
    title = "Tables in the run (legacy plugin)"

    def applies_to(self, run):
        return [None]

    def run(self, run, table, options):
        return AnalysisResult(
            self.name,
            None,
            self.title,
            summary=f"{len(run.tables)} table(s)",
            metrics={"tables": float(len(run.tables))},
        )


@hookimpl
def embedlab_register_datasets(register):
    register(
        DatasetSpec(
            name="legacy-data",
            kind="legacy-kind",
            description="Ratings of a legacy plugin",
            load=_load,
            options=[click.Option(["--n"], type=int, default=300)],
        )
    )


@hookimpl
def embedlab_register_trainers(register):
    register(LegacyTrainer())


@hookimpl
def embedlab_register_analyses(register):
    register(NormAnalysis())
    register(RunSize())


@hookimpl
def embedlab_register_commands(cli):
    @cli.command("legacy-count")
    @click.argument("run_dir")
    def legacy_count(run_dir):
        """Print the number of entities per table."""
        run = load_run(run_dir)
        for name, table in run.tables.items():
            click.echo(f"{name} {len(table)}")
