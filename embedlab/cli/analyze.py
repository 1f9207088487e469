"""``embedlab analyze``: run analysis plugins on a run; report, terminal summary, JSON."""
from __future__ import annotations

from pathlib import Path

import click

from embedlab.errors import UsageError


def _analysis_options() -> list[click.Option]:
    """One flag per option name declared by any analysis (shared when names repeat)."""
    from embedlab.registry import analyses

    seen: dict[str, tuple[str, object]] = {}
    params = []
    found = analyses()  # one registry collection (each one calls every plugin's hook)
    for analysis in found.values():
        for opt in analysis.options:
            if opt.name in seen:
                continue
            seen[opt.name] = (analysis.name, opt)
            users = [a.name for a in found.values()
                     if any(o.name == opt.name for o in a.options)]
            option = opt.click_option()
            option.help = f"[{', '.join(users)}] {option.help}"
            params.append(option)
    return params


def _help_analysis(ctx: click.Context, _param, name: str | None) -> None:
    if not name or ctx.resilient_parsing:
        return
    from embedlab.registry import get_analysis

    analysis = get_analysis(name)
    lines = [f"{analysis.name}: {analysis.title}", ""]
    if analysis.description:
        lines += [analysis.description, ""]
    opts = analysis.options
    lines.append("Options:" if opts else "Options: none")
    for opt in opts:
        tname = getattr(opt.type, "name", getattr(opt.type, "__name__", str(opt.type)))
        lines.append(f"  {opt.flag} {tname.upper()}  {opt.help} [default: {opt.default}]")
    click.echo("\n".join(lines))
    ctx.exit(0)


class _LazyAnalyzeCommand(click.Command):
    """Adds the analyses' options when click first asks for the parameters, not when the CLI
    is built: loading plugins at import time turned a broken plugin into a traceback."""

    _analysis_options_added = False

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self._analysis_options_added:
            self.params.extend(_analysis_options())
            self._analysis_options_added = True
        return super().get_params(ctx)


def analyze_command() -> click.Command:
    params = [
        click.Argument(["run_dir"], type=click.Path(path_type=Path)),
        click.Option(["--only"], default=None, metavar="A,B",
                     help="Comma-separated analyses to run (default: every one that applies)."),
        click.Option(["--report", "-r"], type=click.Path(path_type=Path), default=None,
                     help="Write a standalone interactive HTML report here (works offline)."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print all results as JSON on stdout."),
        click.Option(["--strict"], is_flag=True, help="Exit non-zero when any analysis fails."),
        click.Option(["--help-analysis"], metavar="NAME", expose_value=False, is_eager=True,
                     callback=_help_analysis, help="Describe one analysis and its options, then exit."),
    ]  # the analyses' own options are added on first use (_LazyAnalyzeCommand)

    def callback(run_dir: Path, only: str | None, report: Path | None, as_json: bool, strict: bool,
                 **analysis_options):
        from embedlab.runner import run_analyses
        from embedlab.report.html import results_json, write_report
        from embedlab.report.terminal import print_terminal
        from embedlab.run import load_run

        if report is not None:
            from embedlab.io.atomic import check_file_target

            check_file_target(report)  # before the analyses run, not after
        run = load_run(run_dir)
        names = [n.strip() for n in only.split(",") if n.strip()] if only else None
        if only is not None and not names:
            raise UsageError("--only needs at least one analysis name")
        results = run_analyses(run, names, analysis_options, render=report is not None)
        print_terminal(results)
        if report is not None:
            write_report(report, run, results)
            click.echo(f"wrote report {report}", err=True)
        if as_json:
            click.echo(results_json(run, results))
        failed = [r for r in results if r.error]
        if failed:
            click.echo(f"{len(failed)} analysis section(s) failed: "
                       + ", ".join(f"{r.analysis}/{r.table}" for r in failed), err=True)
            if strict:
                raise click.exceptions.Exit(1)

    return _LazyAnalyzeCommand(
        "analyze", params=params, callback=callback,
        help="Run analyses on a trained run and summarise what the embeddings learned.\n\n"
             "\b\nExamples:\n  embedlab analyze runs/ml100k-u1 --report reports/ml100k.html\n"
             "  embedlab analyze runs/ml100k-u1 --only bias-ranking,pca --json")
