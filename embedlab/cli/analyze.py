"""``embedlab analyze``: run analysis plugins on a run; report, terminal summary, JSON."""
from __future__ import annotations

from pathlib import Path

import click

from embedlab.errors import UsageError
from embedlab.io.progress import quiet as global_quiet


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
            if option.name == "k" and "-k" not in option.opts:  # -k, as `neighbors -k` (the one grammar)
                option.opts.append("-k")
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
        lines.append(f"  {opt.usage}  {opt.help} [default: {opt.default}]")
    from embedlab.report.terminal import escape_control

    click.echo(escape_control("\n".join(lines), keep_newlines=True))  # a plugin's text: no escapes reach the terminal
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

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, old_switch_values(args, self.get_params(ctx)))


def old_switch_values(args: list[str], params: list[click.Parameter]) -> list[str]:
    """The old form of a boolean analysis option, ``--x true`` / ``--x=false`` (any of
    :data:`embedlab.deprecations.BOOL_WORDS`), rewritten to ``--x`` / ``--no-x`` with the
    deprecation warning that names the new form; everything else is left as it is."""
    from embedlab.deprecations import BOOL_OPTION_VALUE, BOOL_WORDS

    switches = {o.opts[0]: o.secondary_opts[0] for o in params
                if isinstance(o, click.Option) and o.is_bool_flag and o.secondary_opts and o.opts}
    out: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return out + args[i:]
        flag, eq, value = arg.partition("=")
        if flag in switches and not eq and i + 1 < len(args) and args[i + 1].lower() in BOOL_WORDS:
            value, i = args[i + 1], i + 1
        elif not (flag in switches and eq and value.lower() in BOOL_WORDS):
            out.append(arg)
            i += 1
            continue
        new = flag if BOOL_WORDS[value.lower()] else switches[flag]
        BOOL_OPTION_VALUE.warn(flag=flag, value=value, new=new)
        out.append(new)
        i += 1
    return out


def analyze_command() -> click.Command:
    params = [
        click.Argument(["run_dirs"], nargs=-1, required=True, type=click.Path(path_type=Path)),
        click.Option(["--only"], default=None, metavar="A,B",
                     help="Comma-separated analyses to run (default: every one that applies)."),
        click.Option(["--report", "-r"], type=click.Path(path_type=Path), default=None,
                     help="Write a standalone interactive HTML report here (works offline): a new file, "
                          "or a report embedlab wrote (any other file is refused; see --force)."),
        click.Option(["--force"], is_flag=True, help="Let --report replace a file embedlab did not write."),
        click.Option(["--json", "as_json"], is_flag=True, help="Print all results as JSON on stdout."),
        click.Option(["--strict"], is_flag=True, help="Exit non-zero when any analysis fails."),
        click.Option(["--brief"], is_flag=True,
                     help="Short terminal summaries: the first sentences of each (the report and --json keep all)."),
        click.Option(["--quiet", "-q"], is_flag=True, help="No progress bar (shown on a terminal by default)."),
        click.Option(["--help-analysis"], metavar="NAME", expose_value=False, is_eager=True,
                     callback=_help_analysis, help="Describe one analysis and its options, then exit."),
    ]  # the analyses' own options are added on first use (_LazyAnalyzeCommand)

    def callback(run_dirs: tuple[Path, ...], only: str | None, report: Path | None, as_json: bool,
                 strict: bool, brief: bool = False, quiet: bool = False, **analysis_options):
        from embedlab.runner import run_analyses
        from embedlab.engines.runs import is_run_group
        from embedlab.report.html import results_json, write_report
        from embedlab.report.terminal import print_terminal
        from embedlab.run import load_run

        force = bool(analysis_options.pop("force", False))
        if report is not None:
            from embedlab.io.ownership import check_file

            check_file(report, force=force, option="--report", html=True)  # before the analyses run
        names = [n.strip() for n in only.split(",") if n.strip()] if only else None
        if only is not None and not names:
            raise UsageError("--only needs at least one analysis name")
        if len(run_dirs) > 1 or is_run_group(run_dirs[0]):
            return _analyze_several(run_dirs, names, analysis_options, report, as_json, strict, force=force,
                                    progress=False if quiet or global_quiet() else None)
        run = load_run(run_dirs[0])
        results = run_analyses(run, names, analysis_options, render=report is not None,
                               progress=False if quiet or global_quiet() else None)
        print_terminal(results, brief=brief)
        if report is not None:
            write_report(report, run, results, force=force)
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
        help="Run analyses on a trained run and summarise what the embeddings learned. Several runs "
             "(or a run group of `train --seeds`): every analysis on every run, then what holds across "
             "them (tables aligned by Procrustes, neighbour overlap, each metric's mean, sd and n, "
             "p < 0.05 in how many runs), shown first.\n\n"
             "\b\nExamples:\n  embedlab analyze runs/ml100k-u1 --report reports/ml100k.html\n"
             "  embedlab analyze runs/ml100k-u1 --only bias-ranking,pca --json\n"
             "  embedlab analyze runs/u1-seeds --report reports/stability.html   (a run group)\n"
             "  embedlab analyze runs/a runs/b runs/c --json")


def _analyze_several(paths, names, options, report, as_json: bool, strict: bool, force: bool = False,
                     progress: bool | None = False) -> None:
    """``analyze RUN RUN ...`` or a run group: the stability block first, then every run."""
    from embedlab.report.html import write_report
    from embedlab.engines.stability import analyze_runs

    found = analyze_runs(paths, names, options, render=report is not None,
                         echo=lambda msg: click.echo(msg, err=True), progress=progress)
    print_stability(found)
    results = found.report_results()
    if report is not None:
        write_report(report, None, results, title=f"embedlab report: {len(found.runs)} runs of "
                                                  f"{', '.join(sorted({str(r.dataset) for r in found.runs}))}",
                     force=force)
        click.echo(f"wrote report {report} (stability first, then each run)", err=True)
    if as_json:
        from embedlab.io.strictjson import dumps

        click.echo(dumps(found.to_json(), indent=2))
    failed = [(lab, r) for lab, rs in zip(found.labels, found.per_run) for r in rs if r.error]
    if failed:
        click.echo(f"{len(failed)} analysis section(s) failed: "
                   + ", ".join(f"{lab}: {r.analysis}/{r.table}" for lab, r in failed), err=True)
        if strict:
            raise click.exceptions.Exit(1)


def print_stability(found, console=None, per_section: int = 4) -> None:
    """The stability block on stderr: what holds across the runs, alignment per table, and per
    analysis and table its headline metrics (:func:`embedlab.engines.stability.stability_rows`)."""
    from rich.console import Console
    from rich.table import Table

    from embedlab.engines.stability import stability_rows
    from embedlab.report.terminal import print_terminal

    console = console or Console(stderr=True)
    print_terminal(found.stability[:1] + list(getattr(found, "several", [])), console=console)
    t = Table(title=f"Across {len(found.runs)} runs: mean ± sd (n)")
    for col in ("analysis / table", "metric", "across runs"):
        t.add_column(col)
    for row in stability_rows(found, per_section):
        t.add_row(*row)
    console.print(t)
    console.print(f"(up to {per_section} metrics per section here; every metric in --json's `stability` "
                  f"and in the report)")
