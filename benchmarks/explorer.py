"""Benchmark of the report's explorer: size, time to interactive, color change, pan, search.

1. The ml-100k u1 report (every default analysis) with its explorers, against the same results
   rendered without explorers (the baseline, same run). Budget: <= 6 MB.
2. A synthetic-collab run with 200,000 users (``--run200k RUN``, else trained here: 3M ratings,
   one epoch): a report of its explorers only (every user's exact lists precomputed by
   ``toolkit.neighbors.knn_lists``, both metrics: their time is printed). Budget: <= 40 MB; in
   headless Chromium idle within 15 s, a colour change and a pan frame well under 2 s.
3. The done-when check of issue 24: ``--agree N`` (default 20) random user keys typed into the
   200k page's search box, each as a person would; the page must list 10 neighbours whose first
   three are ``embedlab neighbors RUN KEY --table user``'s (computed by the function the command
   calls, and by the command itself for the first three keys). The agreement is printed.

Browser times: "document idle" as BokehJS logs it (from navigation start); a colour change and a
pan (the x range moved by a tenth, as the pan tool does) from the change to the second animation
frame after it (the frame drawn); a drag of the map with the mouse (8 steps): how long each frame
the plot paints while the button is held takes (its view's ``paint``); a search from setting the
box's value to the status line naming the entity. The load average is printed before and after: on a shared machine, compare
ratios. Usage:

  EMBEDLAB_DATA_DIR=../shared/data python benchmarks/explorer.py [--ml100k-run DIR] [--run200k DIR] [--agree 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FRAME_JS = r"""
const [name, prop, value, done] = [arguments[0], arguments[1], arguments[2], arguments[arguments.length - 1]];
const model = Bokeh.documents.map(d => d.get_model_by_name(name)).find(x => x);
const t0 = performance.now();
if (prop === "pan") { const r = model.x_range, w = r.end - r.start; r.setv({start: r.start + w / 10, end: r.end + w / 10}); }
else model[prop] = value;
requestAnimationFrame(() => requestAnimationFrame(() => done(performance.now() - t0)));
"""


def browser_times(path: Path, table: str, queries: list[str], colours: list[str], shots: Path | None = None):
    sys.path.insert(0, str(ROOT / "tests"))
    from browser import open_report

    try:
        with open_report(path, timeout=300) as page:
            page.driver.set_script_timeout(120)
            page.wait_idle(300)
            logged = [e["message"] for e in page.console() if "document idle at" in e.get("message", "")]
            idle = (
                float(logged[-1].split("document idle at")[1].split("ms")[0]) / 1000
                if logged
                else page.js("return performance.now()") / 1000
            )
            plot = f"explorer-map-plot-{table}"
            colour = [
                page.driver.execute_async_script(_FRAME_JS, f"explorer-color-{table}", "value", c) / 1000
                for c in colours
            ]
            pan = [page.driver.execute_async_script(_FRAME_JS, plot, "pan", None) / 1000 for _ in range(5)]
            drag = drag_frames(page, plot)
            searches = []
            for q in queries:
                t1 = time.perf_counter()
                page.set_model(f"explorer-search-{table}", "value", q)
                page.wait_for(
                    lambda: (
                        q.lower() in page.shown_text(f"explorer-status-{table}").lower()
                        and page.shown_rows(f"explorer-neighbours-table-{table}")
                    ),
                    timeout=120,
                    what=q,
                )
                searches.append(time.perf_counter() - t1)
            if shots is not None:
                page.js(f"document.getElementById('explorer-{table}').scrollIntoView()")
                time.sleep(1)
                page.screenshot(shots)
            return {"idle_s": idle, "colour_s": colour, "pan_s": pan, "search_s": searches, "drag_ms": drag}
    except BaseException as exc:  # noqa: BLE001 - pytest.skip outside pytest: no browser
        print(f"  (no browser figures: {str(exc).splitlines()[0][:160]})")
        return None


def agreement(path: Path, run, run_dir: Path, table: str, n_keys: int, cli_keys: int = 3, seed: int = 0):
    """Random keys of ``table`` typed into the page's search box; for each, whether the page lists
    10 neighbours whose first three labels are ``embedlab neighbors RUN KEY --table TABLE``'s.
    (agreeing keys, keys, the disagreements)."""
    import json
    import subprocess

    import numpy as np

    from embedlab.toolkit.neighbors import DEFAULT_MIN_COUNT, neighbors

    sys.path.insert(0, str(ROOT / "tests"))
    from browser import open_report

    t = run.table(table)
    keys = [str(k) for k in np.random.default_rng(seed).choice(t.keys, n_keys, replace=False)]
    wanted = {}
    for j, key in enumerate(keys):
        wanted[key] = list(neighbors(run, key, 10, table, 0, DEFAULT_MIN_COUNT)["label"])  # the command's defaults
        if j < cli_keys:  # the command itself, as a person runs it
            out = subprocess.run(
                [sys.executable, "-m", "embedlab", "neighbors", str(run_dir), key, "--table", table, "--json"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            cli = [r["label"] for r in json.loads(out)["neighbors"]]
            assert cli == wanted[key], f"embedlab neighbors {key}: {cli} != {wanted[key]}"
    grid = f"explorer-neighbours-table-{table}"
    agree, wrong = 0, []
    with open_report(path, timeout=300) as page:
        page.wait_idle(300)
        for key in keys:
            want = wanted[key][:3]
            label = str(t.labels[int(np.flatnonzero(t.keys.astype(str) == key)[0])])
            page.type_into(f"explorer-search-{table}", key)
            shown = []
            try:

                def probe():
                    shown[:] = page.shown_rows(grid)
                    return (
                        label.lower() in page.shown_text(f"explorer-status-{table}").lower()
                        and len(shown) == 10
                        and [r[1] for r in shown[:3]] == want
                    )

                page.wait_for(probe, timeout=30, what=key)
                agree += 1
            except AssertionError:
                wrong.append((key, want, [r[1] for r in shown[:3]], len(shown)))
    return agree, len(keys), wrong


def drag_frames(page, plot: str, moves: int = 8) -> list[float]:
    """A drag of the map with the mouse (the pan tool; ``moves`` steps, each a stream of pointer
    events): how long each frame the plot paints during it takes (ms, its view's ``paint``)."""
    from selenium.webdriver.common.action_chains import ActionChains

    page.js(
        page._VIEW_JS
        + """window._frames = []; const orig = view.paint.bind(view);
        view.paint = (...a) => { const t0 = performance.now(), r = orig(...a); window._frames.push(performance.now() - t0);
                                 return r; };""",
        plot,
    )
    el = page.js(page._VIEW_JS + "return view.canvas_view.events_el || view.el;", plot)
    drag = ActionChains(page.driver).move_to_element(el).click_and_hold()
    for _ in range(moves):
        drag = drag.move_by_offset(12, 6).pause(0.05)
    drag.perform()
    frames = list(page.js("return window._frames"))  # while the mouse is held
    ActionChains(page.driver).release().move_by_offset(0, -450).perform()  # off the map: no tooltip in shots
    return frames


def measure(name, run, results, work: Path, table: str, queries, colours, shots=None) -> None:
    from embedlab.report.html import render_html

    t0 = time.perf_counter()
    base = render_html(None, results) if results else ""
    t_base = time.perf_counter() - t0
    t0 = time.perf_counter()
    text = render_html(run, results)
    t_full = time.perf_counter() - t0
    path = work / f"{name}.html"
    path.write_text(text, encoding="utf-8")
    mb = len(text.encode()) / 1e6
    extra = f" (without explorers {len(base.encode()) / 1e6:.2f} MB, render {t_base:.1f} s)" if base else ""
    print(f"{name}: report {mb:.2f} MB{extra}; render {t_full:.1f} s; load {os.getloadavg()[0]:.1f}")
    say_times(browser_times(path, table, queries, colours, shots))


def say_times(t: dict | None, what: str = "headless Chromium") -> None:
    if t:
        print(
            f"  {what}: idle after {t['idle_s']:.1f} s; color change "
            f"{' / '.join(f'{c:.2f}' for c in t['colour_s'])} s; pan frame median {statistics.median(t['pan_s']):.2f} s "
            f"(max {max(t['pan_s']):.2f}); drag: {len(t['drag_ms'])} frames painted, median "
            f"{statistics.median(t['drag_ms'] or [0]):.0f} ms; "
            f"search {' / '.join(f'{s:.2f}' for s in t['search_s'])} s; "
            f"load {os.getloadavg()[0]:.1f}"
        )


QUERIES_200K = ["user 123456", "user 77"]
COLOURS_200K = ["true_bias", "none", "mean_rating"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ml100k-run", type=Path, default=None)
    ap.add_argument("--run200k", type=Path, default=None)
    ap.add_argument("--html200k", type=Path, default=None, help="an already written 200k report: browser figures only")
    ap.add_argument("--skip200k", action="store_true")
    ap.add_argument(
        "--baseline-html",
        type=Path,
        default=None,
        help="a 200k report written by earlier code: its browser figures first, in the same run",
    )
    ap.add_argument(
        "--lists-standin",
        action="store_true",
        help="200k report with stand-in neighbour lists of the same size and format (browser timing "
        "and size only; no agreement check)",
    )
    ap.add_argument(
        "--agree",
        type=int,
        default=20,
        help="random user keys searched in the 200k page and compared with embedlab neighbors (0: skip)",
    )
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--shots", type=Path, default=None, help="folder for screenshots of each explorer")
    args = ap.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="embedlab-explorer-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {os.getloadavg()}")
    import embedlab
    from embedlab.run import load_run
    from embedlab.runner import run_analyses

    run_dir = args.ml100k_run
    if run_dir is None and os.environ.get("EMBEDLAB_DATA_DIR"):
        run_dir = work / "ml100k-u1"
        embedlab.train(
            "movielens-100k",
            out=run_dir,
            data_dir=Path(os.environ["EMBEDLAB_DATA_DIR"]) / "ml-100k",
            split="u1",
            seed=42,
        )
    if run_dir is not None:
        run = load_run(run_dir)
        measure(
            "ml100k-u1",
            run,
            run_analyses(run, None, {}),
            work,
            "item",
            ["star wars", "godfather", "toy story"],
            ["genres", "mean_rating", "none"],
            args.shots and args.shots / "explorer-ml100k.png",
        )
    else:
        print("ml-100k: skipped (no --ml100k-run and no EMBEDLAB_DATA_DIR)")
    if args.skip200k:
        return
    if args.html200k:
        print(f"synthetic-200k (written before): report {args.html200k.stat().st_size / 1e6:.2f} MB")
        say_times(
            browser_times(
                args.html200k, "user", QUERIES_200K, COLOURS_200K, args.shots and args.shots / "explorer-200k.png"
            )
        )
        return
    big = args.run200k
    if big is None:
        big = work / "synthetic-200k"
        embedlab.train("synthetic-collab", out=big, users=200_000, items=2_000, ratings=3_000_000, epochs=1, bs=4096)
    run = load_run(big)
    if args.lists_standin:
        import numpy as np

        import embedlab.report.explorer as E

        def standin(vectors, k, candidates, metric="cosine", progress=None):
            rng = np.random.default_rng(0)
            rows = rng.choice(np.asarray(candidates), size=(len(vectors), k)).astype(np.int32)
            return rows, np.sort(rng.uniform(0.2, 0.9, (len(vectors), k)).astype(np.float32), axis=1)[:, ::-1]

        E.knn_lists = standin
        print("synthetic-200k: STAND-IN neighbour lists (same size and format; timing and size only)")
    else:  # the exact lists, timed where the report computes them
        import embedlab.report.explorer as E

        exact, spent = E.knn_lists, []

        def timed_lists(*a, **kw):
            c0, w0 = time.process_time(), time.perf_counter()
            out = exact(*a, **kw)
            spent.append((time.process_time() - c0, time.perf_counter() - w0))
            return out

        E.knn_lists = timed_lists
    if args.baseline_html:  # the same browser figures of a page written by earlier code, in this run
        print(f"baseline {args.baseline_html} ({args.baseline_html.stat().st_size / 1e6:.2f} MB)")
        say_times(browser_times(args.baseline_html, "user", QUERIES_200K, COLOURS_200K), "baseline, headless Chromium")
    measure(
        "synthetic-200k",
        run,
        [],
        work,
        "user",
        QUERIES_200K,
        COLOURS_200K,
        args.shots and args.shots / "explorer-200k.png",
    )
    if not args.lists_standin:
        from embedlab.toolkit.neighbors import knn_engine

        print(
            f"  every user's exact 10 nearest, cosine and euclidean (knn_lists, {knn_engine()} shortlist): "
            f"{sum(w for _, w in spent):.0f} s wall, {sum(c for c, _ in spent):.0f} CPU-s of the render"
        )
        if args.agree:
            agree, total, wrong = agreement(work / "synthetic-200k.html", run, big, "user", args.agree)
            print(
                f"  agreement: {agree} of {total} random user keys searched in the page list 10 neighbours whose "
                f"first three are embedlab neighbors'; load {os.getloadavg()[0]:.1f}"
            )
            for key, want, shown, n_rows in wrong:
                print(f"    key {key}: embedlab neighbors {want}, the page {shown} ({n_rows} rows)")
    print(f"load average after: {os.getloadavg()}")
    print(f"reports in {work}")


if __name__ == "__main__":
    main()
