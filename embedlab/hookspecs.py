"""The plugin contract: every hook embedlab calls, typed and documented.

A plugin is a module (or object) with functions named like these hooks and decorated with
:data:`embedlab.hookimpl`. It is found through the ``embedlab`` entry-point group::

    # setup.cfg of your distribution
    [options.entry_points]
    embedlab =
        myname = my_package.my_module

Every registration hook receives a ``register`` callback rather than returning a value, so
that embedlab can check each object as it arrives and name the plugin that sent it when
something is wrong (a duplicate name, a missing attribute). Built-in datasets, trainers and
analyses are registered through exactly these hooks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import pluggy

if TYPE_CHECKING:  # pragma: no cover - only for type checkers
    import click

    from embedlab.analysis import Analysis
    from embedlab.data import DatasetSpec
    from embedlab.trainers.base import Trainer

hookspec = pluggy.HookspecMarker("embedlab")
hookimpl = pluggy.HookimplMarker("embedlab")


@hookspec
def embedlab_register_datasets(register: Callable[["DatasetSpec"], None]) -> None:
    """Register datasets that ``embedlab train NAME`` can load.

    :param register: call it once per dataset with a :class:`embedlab.DatasetSpec`. The spec
        names the dataset (the CLI name, unique across all plugins), its ``kind``
        (``"collab"`` or ``"tabular"``, which picks the trainer), the click options its
        loader accepts (``--data-dir``, ``--split``...) and a ``load(**options)`` function
        returning an :class:`embedlab.Dataset`.

    Example::

        @hookimpl
        def embedlab_register_datasets(register):
            register(DatasetSpec(
                name="my-ratings", kind="collab", description="Ratings from my shop",
                options=[click.Option(["--file"], required=True)],
                load=lambda file, **_: load_my_ratings(file),
            ))
    """


@hookspec
def embedlab_register_trainers(register: Callable[["Trainer"], None]) -> None:
    """Register trainers that turn a :class:`embedlab.Dataset` into a :class:`embedlab.Run`.

    :param register: call it once per trainer with an object following
        :class:`embedlab.trainers.base.Trainer`: a unique ``name``, the dataset ``kind`` it
        trains, the click ``options`` it accepts (``--epochs``, ``--lr``...) and
        ``train(dataset, config, progress) -> Run`` (unsaved: the caller saves it).

    Example::

        @hookimpl
        def embedlab_register_trainers(register):
            register(MyTrainer())   # MyTrainer.kind == "collab" replaces nothing: names are unique
    """


@hookspec
def embedlab_register_analyses(register: Callable[["Analysis"], None]) -> None:
    """Register analyses that ``embedlab analyze`` runs on a saved run.

    :param register: call it once per analysis with an object following
        :class:`embedlab.Analysis`: a unique ``name`` (the CLI name), a ``title``,
        ``applies_to(run) -> list[str]`` (the embedding tables it can analyse; empty when
        none; declare ``applies_to(run, options)`` to see the resolved options, e.g. when
        ``--coords FILE`` makes a table qualify) and ``run(run, table, options) -> AnalysisResult`` (plain data: metrics,
        tables, a summary). An optional ``render(result) -> list`` returns Bokeh models for
        the report; analyses never write files themselves.

    Example::

        @hookimpl
        def embedlab_register_analyses(register):
            register(NormAnalysis())
    """


@hookspec
def embedlab_register_commands(cli: "click.Group") -> None:
    """Add commands to the ``embedlab`` command line.

    :param cli: the top-level click group; call ``cli.add_command(cmd)`` or decorate
        functions with ``@cli.command()``. A command name already taken is an error.

    Example::

        @hookimpl
        def embedlab_register_commands(cli):
            @cli.command()
            @click.argument("run_dir")
            def norms(run_dir):
                "Print the mean vector norm of each table."
                ...
    """
