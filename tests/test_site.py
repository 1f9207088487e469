"""The documentation site (mkdocs, docs/): the getting-started page walked command by command in
a fresh folder on the real MovieLens 100K, its printed figures checked; every other shell block on
the site is either walked or marked `<!-- not run: REASON -->` right above it; every Python block
compiles; the README stays short and points into the site."""
from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
WALKED = ["getting-started.md"]  # pages whose shell blocks this module runs
FENCE = re.compile(r"(?P<before>(?:^[^\n]*\n){0,2})^```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.M | re.S)


def blocks(page: Path):
    """(lang, body, the two lines before the fence) of every fenced block of a page."""
    for m in FENCE.finditer(page.read_text(encoding="utf-8")):
        yield m.group("lang"), m.group("body"), m.group("before")


def shell_lines(body: str) -> list[str]:
    return [line for line in body.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def is_shell(lang: str, body: str) -> bool:
    lines = shell_lines(body)
    return lang in ("bash", "sh", "console", "shell") or (
        lang == "" and bool(lines) and all(re.match(r"(embedlab|python|make|torchrun|pip)\b", ln) for ln in lines[:1]))


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


@pytest.mark.realdata
def test_the_getting_started_page_runs_as_written(tmp_path):
    data = os.environ.get("EMBEDLAB_DATA_DIR", "")
    if not data or not (Path(data) / "ml-100k").is_dir():
        pytest.skip("needs ml-100k under EMBEDLAB_DATA_DIR")
    env = {**os.environ, "EMBEDLAB_DATA_DIR": str(Path(data).resolve()),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    printed = {}
    for lang, body, _ in blocks(DOCS / "getting-started.md"):
        if not is_shell(lang, body):
            continue
        for line in shell_lines(body):
            done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True, text=True,
                                  timeout=900)
            assert done.returncode == 0, (line, done.stderr[-2000:])
            printed[line.split()[1]] = done.stdout + done.stderr
    assert "movielens-100k" in printed["datasets"]
    assert re.search(r"valid_rmse\W+0\.9088", printed["train"]), printed["train"][-1500:]
    near = printed["neighbors"]
    assert near.index("Empire Strikes Back") < near.index("Return of the Jedi")
    recs = printed["predict"]  # user 42's three best unrated films, ranked
    assert re.search(r"user 42\b.*top 3", recs) and len(re.findall(r"^\s+[123]\. \d\.\d\d  ", recs, re.M)) == 3, recs
    assert (tmp_path / "reports" / "first.html").is_file()
