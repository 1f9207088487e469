"""Shared fixtures: real-data paths (skip cleanly without EMBEDLAB_DATA_DIR), small runs."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

# tests/third_party holds worked plugins as outside authors write them; their own tests run
# inside the temporary venv of tests/test_authoring.py, not in this session
collect_ignore = ["third_party"]


def one_cycle(step, total, max_lr, pct=0.25, div=25.0, final_div=1e4):
    """fastai's one-cycle: cosine up from max/div to max, cosine down to max/div/final_div."""

    def cos(a, b, t):
        return b + (a - b) / 2 * (math.cos(math.pi * t) + 1)

    up = pct * total - 1
    if step <= up:
        return cos(max_lr / div, max_lr, step / up)
    return cos(max_lr, max_lr / div / final_div, (step - up) / (total - 1 - up))


def data_dir(name: str) -> Path:
    """Path to a real dataset under EMBEDLAB_DATA_DIR, or skip the test."""
    root = os.environ.get("EMBEDLAB_DATA_DIR")
    if not root:
        pytest.skip("EMBEDLAB_DATA_DIR is not set (real-data test)")
    path = Path(root) / name
    if not path.is_dir():
        pytest.skip(f"{path} does not exist")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's real cache from tests."""
    monkeypatch.setenv("EMBEDLAB_CACHE", str(tmp_path_factory.mktemp("cache")))


def source_copy(dest: Path) -> Path:
    """embedlab's distribution sources (setup.cfg, the three packages) copied into ``dest``, so
    that a build never writes build/ or *.egg-info into the working tree others are editing."""
    import shutil

    root = Path(__file__).resolve().parents[1]
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")
    for name in ("setup.cfg", "pyproject.toml", "MANIFEST.in", "LICENSE", "README.md"):
        if (root / name).is_file():
            shutil.copy2(root / name, dest / name)
    if not (dest / "README.md").exists():  # setup.cfg reads it as long_description
        (dest / "README.md").write_text("# embedlab\n")
    for folder in ("embedlab", "plugins", "datasets"):
        shutil.copytree(root / folder, dest / folder, ignore=ignore)
    return dest


def build_wheel(src: Path, out: Path, timeout: int = 300) -> Path:
    """Build the one wheel of the distribution at ``src`` into ``out`` (no isolation: the
    backend is in this venv) and return its path."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("build") is not None:
        cmd = [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)]
    else:  # pragma: no cover - the `test` extra installs build
        cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(out), "."]
    before = set(out.glob("*.whl"))
    proc = subprocess.run(cmd, cwd=src, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    wheels = sorted(set(out.glob("*.whl")) - before)
    assert len(wheels) == 1, wheels
    return wheels[0]


def site_packages(prefix: Path) -> Path:
    import sys

    return prefix / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"


def venv_env() -> dict[str, str]:
    """The environment for commands of another venv: none of this session's plugin switches."""
    return {
        k: v
        for k, v in os.environ.items()
        if k not in ("EMBEDLAB_LOAD_PLUGINS", "PYTHONPATH", "EMBEDLAB_DEBUG", "VIRTUAL_ENV")
    }


def wheel_venv(venv: Path, wheels: list[Path], pip_command: bool = False) -> Path:
    """A fresh venv at ``venv`` holding ``wheels`` (embedlab's among them).

    Their dependencies (torch, pandas, ...) come from this test venv's site-packages through a
    .pth line rather than being installed again; the wheels are installed in the new venv (which
    comes first on sys.path): not this checkout. ``pip_command``: the venv has a `pip` command
    (this venv's pip, run by the new venv's python), as a reader's venv does."""
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=180)
    ours = Path(next(p for p in sys.path if p.endswith("site-packages") and Path(p).is_relative_to(sys.prefix)))
    (site_packages(venv) / "_embedlab_test_dependencies.pth").write_text(f"{ours}\n")
    proc = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--force-reinstall",
            *map(str, wheels),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=venv_env(),
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    if pip_command:
        (venv / "bin" / "pip").write_text(f'#!/bin/sh\nexec "{venv / "bin" / "python"}" -m pip "$@"\n')
        (venv / "bin" / "pip").chmod(0o755)
    return venv


@pytest.fixture(scope="session")
def embedlab_wheel(tmp_path_factory) -> Path:
    """embedlab's wheel, built ONCE per test session from a copy of the sources and shared by
    every test that needs it (tests/test_packaging.py, test_scaffold.py, test_authoring.py)."""
    src = source_copy(tmp_path_factory.mktemp("embedlab-src"))
    return build_wheel(src, tmp_path_factory.mktemp("embedlab-dist"))


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory):
    """A small trained synthetic-collab run on disk (shared across tests; do not modify)."""
    import embedlab

    out = tmp_path_factory.mktemp("runs") / "synth"
    embedlab.train("synthetic-collab", out=out, users=300, items=200, ratings=20000, epochs=4, seed=1)
    return out


# ---------------------------------------------------------------- small files in official layouts
# Each writer lays out a folder exactly like the official archive (same names, encodings,
# separators, headers) with a handful of rows whose expected parse the tests know.

ML100K_GENRE_COUNT = 19


def _ml100k_item(item: int, title: str, date: str, flags: list[int]) -> str:
    genre = ["0"] * ML100K_GENRE_COUNT
    for f in flags:
        genre[f] = "1"
    return f"{item}|{title}|{date}||http://us.imdb.com/M/title-exact?x|" + "|".join(genre)


# (user, item, rating, timestamp); 6 users x 8 items, every item and user rated at least once
ML100K_RATINGS = [
    (1, 1, 5, 874965758),
    (1, 2, 3, 876893171),
    (1, 3, 4, 878542960),
    (1, 5, 3, 876893119),
    (2, 1, 4, 888550871),
    (2, 4, 1, 888551197),
    (2, 6, 5, 888549805),
    (2, 8, 2, 888550774),
    (3, 2, 2, 889237269),
    (3, 3, 5, 889236967),
    (3, 7, 4, 889237026),
    (4, 1, 3, 892003242),
    (4, 5, 4, 892002353),
    (4, 6, 4, 892001903),
    (5, 2, 1, 875635748),
    (5, 4, 2, 875636053),
    (5, 8, 5, 875635053),
    (6, 1, 4, 883599478),
    (6, 3, 3, 883600657),
    (6, 7, 5, 883601169),
]
ML100K_U1_TEST = {(1, 5), (2, 8), (3, 7), (5, 4)}  # the rest is u1.base


def write_ml100k(folder: Path) -> Path:
    """ml-100k layout: u.data (tab), u.item (latin-1, '|', 19 genre flags), u.user, u1 split."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in ML100K_RATINGS]
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    base = [l for l, (u, i, *_) in zip(lines, ML100K_RATINGS) if (u, i) not in ML100K_U1_TEST]
    test = [l for l, (u, i, *_) in zip(lines, ML100K_RATINGS) if (u, i) in ML100K_U1_TEST]
    (folder / "u1.base").write_text("\n".join(base) + "\n")
    (folder / "u1.test").write_text("\n".join(test) + "\n")
    items = [
        _ml100k_item(1, "Toy Story (1995)", "01-Jan-1995", [3, 4, 5]),  # Animation|Children's|Comedy
        _ml100k_item(2, "GoldenEye (1995)", "01-Jan-1995", [1, 2, 16]),  # Action|Adventure|Thriller
        _ml100k_item(3, "Café au lait (Métisse) (1993)", "01-Jan-1993", [5]),  # latin-1 accents
        _ml100k_item(4, "Get Shorty (1995)", "01-Jan-1995", [1, 5, 8]),
        _ml100k_item(5, "Chasing Amy (1997)", "01-Jan-1997", [5, 8, 14]),  # the same title twice,
        _ml100k_item(6, "Chasing Amy (1997)", "01-Jan-1997", [5, 8, 14]),  # two distinct items
        _ml100k_item(7, "Mystery Item", "14-Feb-1994", []),  # no year, no genre
        _ml100k_item(8, "unknown", "", [0]),  # like the real item 267
    ]
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    users = [
        "1|24|M|technician|85711",
        "2|53|F|other|94043",
        "3|23|M|writer|32067",
        "4|24|M|technician|43537",
        "5|33|F|other|15213",
        "6|42|M|executive|98101",
    ]
    (folder / "u.user").write_text("\n".join(users) + "\n")
    return folder


LATEST_RATINGS = [
    (1, 1, 4.0, 964982703),
    (1, 3, 4.5, 964981247),
    (1, 6, 0.5, 964982224),
    (2, 1, 3.0, 1445714835),
    (2, 2, 5.0, 1445714885),
    (2, 6, 2.5, 1445715000),
    (3, 3, 3.5, 1306463578),
    (3, 4, 1.0, 1306464000),
    (4, 1, 4.0, 1106635946),
    (4, 2, 2.0, 1106636000),
    (4, 4, 3.0, 1106637000),
    (5, 6, 5.0, 1510577970),
]


def write_latest_small(folder: Path) -> Path:
    """ml-latest-small / 25m / 32m layout: ratings.csv and movies.csv with a header, pipe genres."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r},{t}" for u, i, r, t in LATEST_RATINGS]
    (folder / "ratings.csv").write_text("\n".join(rows) + "\n")
    (folder / "movies.csv").write_text(
        "movieId,title,genres\n"
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy\n"
        '2,"American President, The (1995)",Comedy|Drama|Romance\n'
        "3,Emma (1996),Comedy|Drama|Romance\n"
        "4,Emma (1996),Romance\n"  # a remake with the same title
        "5,Never Rated (2001) ,Drama\n"  # trailing space; no ratings
        "6,La cravate (1957),(no genres listed)\n",
        encoding="utf-8",
    )
    return folder


def write_ml1m(folder: Path) -> Path:
    """ml-1m layout: ratings.dat, movies.dat (latin-1), users.dat, all '::'-separated."""
    folder.mkdir(parents=True, exist_ok=True)
    ratings = [
        (1, 1193, 5, 978300760),
        (1, 661, 3, 978302109),
        (2, 1193, 4, 978298413),
        (2, 3408, 4, 978300275),
        (3, 661, 2, 978301968),
        (3, 3408, 1, 978298709),
        (4, 1193, 3, 978294008),
        (4, 2355, 5, 978824291),
        (5, 2355, 4, 978244852),
        (5, 661, 1, 978246585),
    ]
    (folder / "ratings.dat").write_text("\n".join("::".join(map(str, r)) for r in ratings) + "\n")
    movies = [
        "1193::One Flew Over the Cuckoo's Nest (1975)::Drama",
        "661::James and the Giant Peach (1996)::Animation|Children's|Musical",
        "3408::Erin Brockovich (2000)::Drama",
        "2355::Bug's Life, A (1998)::Animation|Children's|Comedy",
        "3012::Bäckereiwagen (1990)::Comedy",
    ]  # latin-1 accent, unrated
    (folder / "movies.dat").write_bytes(("\n".join(movies) + "\n").encode("latin-1"))
    users = [
        "1::F::1::10::48067",
        "2::M::56::16::70072",
        "3::M::25::15::55117",
        "4::M::45::7::02460",
        "5::M::25::20::55455",
    ]
    (folder / "users.dat").write_text("\n".join(users) + "\n")
    return folder


@pytest.fixture
def ml100k_dir(tmp_path) -> Path:
    return write_ml100k(tmp_path / "ml-100k")


@pytest.fixture
def latest_small_dir(tmp_path) -> Path:
    return write_latest_small(tmp_path / "ml-latest-small")


@pytest.fixture
def ml1m_dir(tmp_path) -> Path:
    return write_ml1m(tmp_path / "ml-1m")


@pytest.fixture
def fresh_plugins():
    """A plugin manager rebuilt from the entry points before and after the test."""
    from embedlab.plugins import reset_plugin_manager

    reset_plugin_manager()
    try:
        yield
    finally:
        reset_plugin_manager()


@pytest.fixture(scope="session")
def guo_tiny_run(tmp_path_factory):
    """A tiny synthetic-rossmann run of the guo2016 network on the time split (seconds; shared
    by the onehot and tsne tests; do not modify). Its State table carries latitude/longitude."""
    import embedlab

    out = tmp_path_factory.mktemp("guo-tiny") / "guo"
    embedlab.train(
        "synthetic-rossmann",
        out=out,
        preset="guo2016",
        epochs=3,
        n_stores=24,
        days=240,
        split="time",
        train_sample=4000,
        seed=1,
        progress=False,
    )
    return embedlab.load_run(out)
