"""The documentation site (mkdocs, docs/): the getting-started and tutorial pages walked command by
command, in the site's order, in one fresh folder on the real data (MovieLens 100K, Rossmann), with
each page's printed figures checked; every other shell block on the site is either walked or
marked `<!-- not run: REASON -->` right above it; every Python block compiles; the README stays
short and points into the site.

The pages are walked as a reader follows them: in nav order, in one folder, so a later page uses
the runs an earlier one trained (the analyses tutorial analyses Getting started's `runs/first`).
One session-scoped `Walk` runs each page once, and the earlier pages first whichever test asks."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
# the walked pages, in the nav's order (the order of the tests below), each with the pages whose
# runs it uses: asked for alone (pytest -k), a page walks those first, in the same folder
WALKED = {
    "getting-started.md": [],
    "tutorials/lesson5.md": [],
    "tutorials/analyses.md": ["getting-started.md"],
    "tutorials/rossmann.md": [],
    "tutorials/discovery.md": ["tutorials/rossmann.md"],
    "tutorials/own-embeddings.md": ["tutorials/analyses.md"],
    "tutorials/plugins.md": ["getting-started.md"],
}
FENCE = re.compile(r"(?P<before>(?:^[^\n]*\n){0,2})^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.M | re.S)


def blocks(page: Path):
    """(lang, body, the two lines before the fence) of every fenced block of a page."""
    for m in FENCE.finditer(page.read_text(encoding="utf-8")):
        yield m.group("lang"), m.group("body"), m.group("before")


def shell_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def commands(body: str) -> list[str]:
    """The commands of a shell block: a line, with its `\\` continuation lines and heredoc body."""
    out, lines, i = [], body.splitlines(), 0
    while i < len(lines):
        cmd, i = lines[i], i + 1
        if not cmd.strip() or cmd.lstrip().startswith("#"):
            continue
        while cmd.rstrip().endswith("\\") and i < len(lines):
            cmd, i = cmd + "\n" + lines[i], i + 1
        heredoc = re.search(r"<<-?\s*'?(\w+)'?", cmd)
        while heredoc and i < len(lines):
            cmd, i = cmd + "\n" + lines[i], i + 1
            if lines[i - 1].strip() == heredoc.group(1):
                break
        out.append(cmd)
    return out


def is_shell(lang: str, body: str) -> bool:
    lines = shell_lines(body)
    return lang in ("bash", "sh", "console", "shell") or (
        lang == "" and bool(lines) and all(re.match(r"(embedlab|python|make|torchrun|pip)\b", ln) for ln in lines[:1])
    )


def pages():
    return sorted(p for p in DOCS.rglob("*.md"))


def test_every_shell_block_is_walked_or_says_why_not():
    unmarked = []
    for page in pages():
        rel = page.relative_to(DOCS).as_posix()
        for lang, body, before in blocks(page):
            if is_shell(lang, body) and rel not in WALKED and "<!-- not run:" not in before:
                unmarked.append(f"{rel}: {shell_lines(body)[0][:60]}")
    assert not unmarked, "shell blocks neither walked nor marked '<!-- not run: REASON -->':\n" + "\n".join(unmarked)
    for page in pages():  # a marker says why
        for reason in re.findall(r"<!-- not run:(.*?)-->", page.read_text(encoding="utf-8")):
            assert len(reason.strip()) > 10, (page, reason)


def test_every_python_block_compiles():
    for page in pages():
        for lang, body, _ in blocks(page):
            if lang == "python":
                ast.parse(body, filename=str(page))


def test_the_readme_is_short_and_points_into_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    for link in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / link).exists(), link


def test_the_readme_never_reuses_a_run_folder():
    """Following the README top to bottom never overwrites an earlier result."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    outs = re.findall(r"^embedlab (?:train|import)\b.*?--out (\S+)", readme, re.M)
    outs += re.findall(r'out="([^"]+)"', readme) + re.findall(r'export\("([^"]+)"\)', readme)
    assert outs and len(outs) == len(set(outs)), outs


# ---------------------------------------------------------------------------- the walk
class Printed(list):
    """(command, stdout, stderr, seconds) of one page's commands; ``printed["embedlab neighbors"]``
    is what the commands that start so printed (stdout, then stderr), ``printed.stdout(...)`` their
    stdout alone."""

    def _find(self, key: str) -> list[tuple]:
        found = [entry for entry in self if entry[0].startswith(key)]
        assert found, (key, [entry[0] for entry in self])
        return found

    def __getitem__(self, key):
        if not isinstance(key, str):
            return super().__getitem__(key)
        return "\n".join(out + err for _, out, err, _ in self._find(key))

    def stdout(self, key: str) -> str:
        return "\n".join(out for _, out, _, _ in self._find(key))


class Walk:
    """Runs the walked pages' shell blocks in one folder, each page once, earlier pages first."""

    def __init__(self, folder: Path, data: Path):
        self.folder, self.done, self.failed = folder, {}, set()
        self.env = {
            **os.environ,
            "EMBEDLAB_DATA_DIR": str(data),
            "COLUMNS": "200",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def page(self, rel: str, env: dict | None = None) -> Printed:
        """``rel`` walked (once), after the pages it builds on; ``env``: its commands' environment."""
        for prior in WALKED[rel]:
            self.page(prior)
        if rel in self.failed:
            pytest.fail(f"{rel} failed earlier in the walk")
        if rel not in self.done:
            self.failed.add(rel)
            self.done[rel] = self.run(rel, env or self.env)
            self.failed.discard(rel)
        return self.done[rel]

    def run(self, rel: str, env: dict) -> Printed:
        printed = Printed()
        for lang, body, _ in blocks(DOCS / rel):
            if not is_shell(lang, body):
                continue
            for cmd in commands(body):
                t0 = time.perf_counter()
                done = subprocess.run(
                    ["bash", "-c", "set -eo pipefail\n" + cmd],
                    cwd=self.folder,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                assert done.returncode == 0, (rel, cmd, done.stdout[-1000:], done.stderr[-2000:])
                printed.append((cmd, done.stdout, done.stderr, time.perf_counter() - t0))
        assert printed, f"{rel} has no shell block to walk"
        print(f"walked {rel}: " + ", ".join(f"{cmd.split(' --')[0][:40]} {s:.0f} s" for cmd, _, _, s in printed))
        return printed


@pytest.fixture(scope="session")
def walk(tmp_path_factory):
    data = os.environ.get("EMBEDLAB_DATA_DIR", "")
    if not data or not (Path(data) / "ml-100k").is_dir():
        pytest.skip("needs ml-100k under EMBEDLAB_DATA_DIR")
    return Walk(tmp_path_factory.mktemp("site-walk"), Path(data).resolve())


def rmse_of(printed: str, label: str) -> float:
    """The final valid_rmse `compare` printed for the configuration whose label starts so."""
    m = re.search(rf"^\[\d+/\d+\] {re.escape(label)}\b.*?^\s+valid_loss.*?valid_rmse (\d\.\d+)", printed, re.M | re.S)
    assert m, (label, printed[-2000:])
    return float(m.group(1))


@pytest.mark.realdata
def test_the_getting_started_page_runs_as_written(walk):
    printed = walk.page("getting-started.md")
    assert "movielens-100k" in printed["embedlab datasets"]
    assert re.search(r"valid_rmse\W+0\.9088", printed["embedlab train"]), printed["embedlab train"][-1500:]
    near = printed["embedlab neighbors"]
    assert near.index("Empire Strikes Back") < near.index("Return of the Jedi")
    recs = printed["embedlab predict"]  # user 42's three best unrated films, ranked
    assert re.search(r"user 42\b.*top 3", recs) and len(re.findall(r"^\s+[123]\. \d\.\d\d  ", recs, re.M)) == 3, recs
    assert (walk.folder / "reports" / "first.html").is_file()


@pytest.mark.realdata
def test_the_lesson5_page_runs_as_written(walk):
    """The optimizers compared on u1 print the table's first row, to 4 places (seeded, deterministic)."""
    printed = walk.page("tutorials/lesson5.md")["embedlab compare"]
    table = {"adamw": 0.9088, "adam": 0.9246, "rmsprop": 0.9231, "momentum": 1.0208, "sgd": 1.2794}
    assert {opt: round(rmse_of(printed, opt + " lr="), 4) for opt in table} == table
    page = (DOCS / "tutorials" / "lesson5.md").read_text(encoding="utf-8")
    assert "| **0.9088** | 0.9246 | 0.9231 | 1.0208 | 1.2794 |" in page
    assert (walk.folder / "reports" / "optimizers.html").is_file()


@pytest.mark.realdata
def test_the_analyses_page_runs_as_written(walk):
    """Every analysis on Getting started's run, the highest-bias films and Star Wars' neighbours as
    the page names them; three seeds, their RMSEs and what holds across them."""
    import json

    printed = walk.page("tutorials/analyses.md")
    assert (walk.folder / "reports" / "analyses.html").is_file()
    results = json.loads(printed.stdout("embedlab analyze runs/first --only bias-ranking,pca --json"))["results"]
    item = next(r for r in results if (r["analysis"], r["table"]) == ("bias-ranking", "item"))
    top = [r["label"] for r in item["tables"]["highest bias"]][:10]
    assert top == [
        "Shawshank Redemption, The (1994)",
        "Star Wars (1977)",
        "Titanic (1997)",
        "Schindler's List (1993)",
        "L.A. Confidential (1997)",
        "Good Will Hunting (1997)",
        "Rear Window (1954)",
        "Usual Suspects, The (1995)",
        "Silence of the Lambs, The (1991)",
        "Casablanca (1942)",
    ], top
    assert round(item["metrics"]["spearman_bias_mean_rating"], 2) == 0.94
    assert "--n-components" in printed["embedlab analyze runs/first --help-analysis pca"]
    near = re.findall(r"^│\s+(\d+) │\s+\d+ │ (.+?)\s+│\s+(\d\.\d+) │", printed["embedlab neighbors"], re.M)
    assert [(t, c) for _, t, c in near[:3]] == [
        ("Empire Strikes Back, The (1980)", "0.916"),
        ("Return of the Jedi (1983)", "0.902"),
        ("Raiders of the Lost Ark (1981)", "0.859"),
    ], near
    assert len(near) == 10
    assert {"metadata.tsv", "vectors.tsv"} <= {p.name for p in (walk.folder / "export").iterdir()}

    seeds = printed["embedlab train movielens-100k"]
    assert dict(re.findall(r"seed (\d): .*?valid_rmse (\d\.\d{4})", seeds)) == {
        "1": "0.9107",
        "2": "0.9116",
        "3": "0.9112",
    }, seeds  # in finishing order
    group = printed["embedlab analyze runs/u1 --report"]
    assert re.search(r"alignment / item\s+│ procrustes_r2\s+│ 0\.686 ± 0\.004", group), group
    assert re.search(r"spearman_bias_mean_rating\s+│ 0\.940 ± 0\.001 \(n = 3\)", group), group
    stability = json.loads(printed.stdout("embedlab analyze runs/u1 --only bias-ranking --json"))
    align = {r["table"]: r for r in stability if "procrustes_r2" in r}
    assert (round(align["item"]["neighbour_overlap_10"], 2), round(align["user"]["neighbour_overlap_10"], 2)) == (
        0.36,
        0.39,
    )
    assert (round(align["item"]["procrustes_r2"], 3), round(align["user"]["procrustes_r2"], 3)) == (0.686, 0.674)


def flat(text: str) -> str:
    """Terminal output without panel borders and line breaks: one line of words."""
    return re.sub(r"[│\s]+", " ", text)


def needs_rossmann(walk) -> None:
    if not (Path(walk.env["EMBEDLAB_DATA_DIR"]) / "rossmann" / "train.csv").is_file():
        pytest.skip("needs rossmann/ under EMBEDLAB_DATA_DIR")


def metric(printed: str, name: str) -> str:
    """The value of ``name`` on the metrics line a command printed last (4 places, as printed)."""
    found = re.findall(rf"\b{name} (\d+\.\d{{4}})\b", printed)
    assert found, (name, printed[-1500:])
    return found[-1]


@pytest.mark.realdata
@pytest.mark.slow
def test_the_rossmann_page_runs_as_written(walk):
    """The small versions a reader runs first (50 stores, one epoch): their metrics to 4 places
    (seeded, one thread: deterministic), and predict's partial submission said as such."""
    needs_rossmann(walk)
    printed = walk.page("tutorials/rossmann.md")
    ross = 'embedlab train rossmann --data-dir "$EMBEDLAB_DATA_DIR/rossmann"'
    assert metric(printed[f"{ross} --stores"], "valid_rmspe") == "0.2418"
    assert metric(printed[f"{ross} --preset guo2016"], "valid_mape") == "0.1363"
    assert metric(printed[f"{ross} --preset guo2016"], "valid_rmspe") == "0.1885"
    assert '"train_rows": 35822, "valid_rows": 2050' in printed[f"{ross} --stores"]
    said = flat(printed["embedlab predict"])
    assert "predicted 1,872 of the 41,088 rows" in said and "the other 39,216 rows have no prediction" in said, said
    submission = (walk.folder / "submission.csv").read_text().splitlines()
    assert submission[0] == "Id,Sales" and len(submission) == 1 + 1872
    assert metric(printed["embedlab train synthetic-rossmann"], "valid_rmspe") == "0.1005"
    assert metric(printed["embedlab train table-csv"], "valid_rmspe") == "0.1457"
    page = (DOCS / "tutorials" / "rossmann.md").read_text(encoding="utf-8")
    for figure in ("**0.2418**", "**0.1363**", "RMSPE 0.1885", "**0.1005**", "**0.1457**", "1,872 test rows"):
        assert figure in page, figure


@pytest.mark.realdata
@pytest.mark.slow
def test_the_discovery_page_runs_as_written(walk):
    """Two small seeds of each preset: every run's statistics as the page quotes them (seeded
    permutations: deterministic), and the small guo2016 run's t-SNE map with its Mantel test."""
    import json

    needs_rossmann(walk)
    printed = walk.page("tutorials/discovery.md")
    assert "p < 0.05 in" in printed["embedlab analyze runs/rossmann-seeds"]
    assert (walk.folder / "reports" / "discovery.html").is_file()
    stability = json.loads((walk.folder / "discovery.json").read_text())["stability"]
    values = {(r["table"], r["metric"]): [round(v, 2) for v in r["values"]] for r in stability if "values" in r}
    assert values[("DayOfWeek", "tour_p")] == [0.50, 0.37, 0.05, 0.15]  # default seeds 1, 2; guo2016 seeds 1, 2
    assert values[("Day", "cycle_p")][2:] == [0.0, 0.0]  # 0.0001: guo2016 draws the month's days as a cycle
    mantel = [v for v in values[("State", "mantel_p")]]
    assert len(mantel) == 4 and min(mantel) >= 0.48 and max(mantel) <= 0.86, mantel  # no map on this subset
    ross = 'embedlab train rossmann --data-dir "$EMBEDLAB_DATA_DIR/rossmann"'
    for preset, expected in (
        ("--stores", {"1": "0.2278", "2": "0.2370"}),
        ("--preset", {"1": "0.1729", "2": "0.1944"}),
    ):
        got = dict(re.findall(r"^\[\d/2\] seed (\d): .*?valid_rmspe (\d\.\d{4})", printed[f"{ross} {preset}"], re.M))
        assert got == expected, (preset, got)
    tsne = flat(printed["embedlab analyze runs/rossmann-guo-small"])
    assert "Mantel r = -0.06 (p = 0.635, 9,999 permutations)" in tsne, tsne[-3000:]
    assert "procrustes_r2=0.094 procrustes_p=0.47" in tsne, tsne[-3000:]


@pytest.mark.realdata
def test_the_own_embeddings_page_runs_as_written(walk):
    """A Projector pair and a fastai state dict imported: the same neighbours and bias ranking as
    the run they came from."""
    printed = walk.page("tutorials/own-embeddings.md")
    words = flat(printed["embedlab analyze runs/projector"])
    assert (
        "Closest to Star Wars (1977): Empire Strikes Back, The (1980); Return of the Jedi (1983); "
        "Raiders of the Lost Ark (1981)"
    ) in words, words
    imported = flat(printed["embedlab import models/model.pth"])
    assert "fastai's '#na#' row left out" in imported and "table item: 1,682 x 100 with bias, counts" in imported
    fastai = flat(printed["embedlab analyze runs/fastai"])
    assert "Highest bias: Shawshank Redemption, The (1994); Star Wars (1977); Titanic (1997)" in fastai, fastai
    assert "spearman_bias_mean_rating=0.94" in fastai


@pytest.fixture(scope="session")
def reader_venv(tmp_path_factory, embedlab_wheel) -> Path:
    """A fresh venv with embedlab's wheel and a `pip` command, as a reader's (built once)."""
    from conftest import wheel_venv

    return wheel_venv(tmp_path_factory.mktemp("reader-venv") / "v", [embedlab_wheel], pip_command=True)


@pytest.mark.realdata
@pytest.mark.slow
def test_the_plugins_page_runs_as_written(walk, reader_venv):
    """Scaffold, install (editable) into a fresh venv, list, analyse Getting started's run, and
    the scaffold's own tests pass. Offline: pip builds without isolation from what is installed."""
    from conftest import venv_env

    env = {
        **venv_env(),
        "EMBEDLAB_DATA_DIR": walk.env["EMBEDLAB_DATA_DIR"],
        "COLUMNS": "200",
        "PIP_NO_INDEX": "1",
        "PIP_NO_BUILD_ISOLATION": "0",  # (pip's spelling of "no isolation")
        "PATH": f"{reader_venv / 'bin'}{os.pathsep}{walk.env['PATH']}",
    }
    printed = walk.page("tutorials/plugins.md", env)
    listed = flat(printed["embedlab plugins"])
    assert "genre-check embedlab-genre-check 0.1.0 embedlab_register_analyses" in listed, listed
    found = flat(printed["embedlab analyze runs/first --only genre-check"])
    assert "1,681 item entities in 18 categories of 'genre'" in found, found
    assert "separation=0.044 share_closer_to_own=0.66" in found, found
    assert re.search(r"\b4 passed\b", printed["cd embedlab-genre-check"]), printed["cd embedlab-genre-check"][-2000:]
    from importlib.metadata import PackageNotFoundError, version

    with pytest.raises(PackageNotFoundError):  # installed in the reader's venv, not in this one
        version("embedlab-genre-check")
