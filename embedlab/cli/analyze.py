"""``embedlab analyze``: run analysis plugins on a run; report, terminal summary, JSON."""

from __future__ import annotations

from pathlib import Path

import click

from embedlab.cli.analyze_flags import LazyAnalyzeCommand, help_analysis
from embedlab.io.progress import quiet as global_quiet


def analyze_command() -> click.Command:
    params = [
        click.Argument(["run_dirs"], nargs=-1, required=True, type=click.Path(path_type=Path)),
        click.Option(
            ["--only"],
            default=None,
            metavar="A,B",
            help="Comma-separated analyses to run (default: every one that applies).",
        ),
        click.Option(
            ["--report", "-r"],
            type=click.Path(path_type=Path),
            default=None,
            help="Write a standalone interactive HTML report here (works offline): a new file, "
            "or a report embedlab wrote (any other file is refused; see --force).",
        ),
        click.Option(["--force"], is_flag=True, help="Let --report replace a file embedlab did not write."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print all results as JSON on stdout."),
        click.Option(["--strict"], is_flag=True, help="Exit non-zero when any analysis fails."),
        click.Option(
            ["--brief"],
            is_flag=True,
            help="Short terminal summaries: the first sentences of each (the report and --json keep all).",
        ),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bar (shown on a terminal by default)."),
        click.Option(
            ["--help-analysis"],
            metavar="NAME",
            expose_value=False,
            is_eager=True,
            callback=help_analysis,
            help="Describe one analysis and its options, then exit.",
        ),
    ]  # the analyses' own options are added on first use (LazyAnalyzeCommand, cli/analyze_flags.py)

    def callback(
        run_dirs: tuple[Path, ...],
        only: str | None,
        report: Path | None,
        as_json: bool,
        strict: bool,
        brief: bool = False,
        quiet: bool = False,
        force: bool = False,
        **options,
    ):
        from embedlab.engines.runs import is_run_group
        from embedlab.report.html import write_report
        from embedlab.runner import analysis_names

        if report is not None:
            from embedlab.io.ownership import check_file

            check_file(report, force=force, option="--report", html=True)  # before the analyses run
        names = analysis_names(only)
        progress = False if quiet or global_quiet() else None
        if len(run_dirs) > 1 or is_run_group(run_dirs[0]):
            run, results, failed, as_text, title = _several(run_dirs, names, options, report, progress)
        else:
            run, results, failed, as_text, title = _one(run_dirs[0], names, options, report, progress, brief)
        if report is not None:
            write_report(report, run, results, title=title, force=force)
            click.echo(f"wrote report {report}" + ("" if run else " (stability first, then each run)"), err=True)
        if as_json:
            click.echo(as_text())
        if failed:
            click.echo(f"{len(failed)} analysis section(s) failed: " + ", ".join(failed), err=True)
            if strict:
                raise click.exceptions.Exit(1)

    return LazyAnalyzeCommand(
        "analyze",
        params=params,
        callback=callback,
        help="Run analyses on a trained run and summarise what the embeddings learned. Several runs "
        "(or a run group of `train --seeds`): every analysis on every run, then what holds across "
        "them (tables aligned by Procrustes, neighbour overlap, each metric's mean, sd and n, "
        "p < 0.05 in how many runs), shown first.\n\n"
        "\b\nExamples:\n  embedlab analyze runs/ml100k-u1 --report reports/ml100k.html\n"
        "  embedlab analyze runs/ml100k-u1 --only bias-ranking,pca --json\n"
        "  embedlab analyze runs/u1-seeds --report reports/stability.html   (a run group)\n"
        "  embedlab analyze runs/a runs/b runs/c --json",
    )


def _one(path, names, options, report, progress, brief: bool):
    """One run: its analyses, their panels on stderr; (run, results, failed, JSON text, title)."""
    from embedlab.report.html import results_json
    from embedlab.report.terminal import print_terminal
    from embedlab.run import load_run
    from embedlab.runner import run_analyses

    run = load_run(path)
    results = run_analyses(run, names, options, render=report is not None, progress=progress)
    print_terminal(results, brief=brief)
    return (
        run,
        results,
        [f"{r.analysis}/{r.table}" for r in results if r.error],
        lambda: results_json(run, results),
        None,
    )


def _several(paths, names, options, report, progress):
    """Several runs or a run group: the stability block first, then every run (as :func:`_one`)."""
    from embedlab.engines.stability import analyze_runs
    from embedlab.io.strictjson import dumps

    found = analyze_runs(
        paths, names, options, render=report is not None, echo=lambda msg: click.echo(msg, err=True), progress=progress
    )
    print_stability(found)
    title = f"embedlab report: {len(found.runs)} runs of {', '.join(sorted({str(r.dataset) for r in found.runs}))}"
    failed = [f"{lab}: {r.analysis}/{r.table}" for lab, rs in zip(found.labels, found.per_run) for r in rs if r.error]
    return None, found.report_results(), failed, lambda: dumps(found.to_json(), indent=2), title


def print_stability(found, console=None, per_section: int = 4) -> None:
    """The stability block on stderr: what holds across the runs, alignment per table, and per
    analysis and table its headline metrics (:func:`embedlab.engines.stability.stability_rows`)."""
    from embedlab.engines.stability import stability_rows
    from embedlab.report.terminal import print_across

    print_across(
        found.stability[:1] + list(getattr(found, "several", [])),
        stability_rows(found, per_section),
        len(found.runs),
        per_section,
        console=console,
    )
