"""``make demo`` (tools/demo.py): MovieLens 100K from EMBEDLAB_DATA_DIR, else the checksummed
download (served here by the download tests' local server), else synthetic ratings with
readable planted names; it says which it used and where the report is."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import embedlab
from embedlab.io.download import Archive

from conftest import data_dir, write_ml100k
from test_download import server  # noqa: F401  (the download tests' local HTTP server fixture)

ROOT = Path(__file__).resolve().parents[1]


def _demo():
    spec = importlib.util.spec_from_file_location("embedlab_demo", ROOT / "tools" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


demo = _demo()


def _ml100k_zip(tmp_path: Path) -> bytes:
    folder = write_ml100k(tmp_path / "src" / "ml-100k")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for f in sorted(folder.iterdir()):
            z.write(f, f"ml-100k/{f.name}")
    return buf.getvalue()


def test_makefile_demo_runs_the_script():
    text = (ROOT / "Makefile").read_text()
    assert "tools/demo.py" in text.split("demo: venv", 1)[1].split("\n\n", 1)[0]


def test_local_copy_from_embedlab_data_dir(tmp_path):
    write_ml100k(tmp_path / "data" / "ml-100k")
    src = demo.choose_source({"EMBEDLAB_DATA_DIR": str(tmp_path / "data")}, download=False)
    assert src.dataset == "movielens-100k" and src.real
    assert src.options["data_dir"] == str(tmp_path / "data" / "ml-100k") and "EMBEDLAB_DATA_DIR" in src.description
    assert src.entities == []  # the small copy has no Star Wars to list neighbours of
    # the folder itself may be the copy
    src = demo.choose_source({"EMBEDLAB_DATA_DIR": str(tmp_path / "data" / "ml-100k")}, download=False)
    assert src.dataset == "movielens-100k"


def test_download_path_against_the_local_server(tmp_path, server, monkeypatch):  # noqa: F811
    from embedlab_datasets import movielens

    data = _ml100k_zip(tmp_path)
    url = server.publish("ml-100k.zip", data)
    monkeypatch.setitem(
        movielens.MOVIELENS_ARCHIVES,
        "movielens-100k",
        Archive(url=url, filename="ml-100k.zip", sha256=hashlib.sha256(data).hexdigest()),
    )
    src = demo.choose_source({}, progress=False)
    assert src.dataset == "movielens-100k" and "downloaded from" in src.description and "checksum" in src.description
    folder = Path(src.options["data_dir"])
    assert (folder / "u.data").is_file() and len(server.requests) == 1
    assert demo.choose_source({}, progress=False).options["data_dir"] == str(folder)
    assert len(server.requests) == 1  # extracted once, reused without the network


def test_failed_download_falls_back_to_readable_synthetic_data(tmp_path, server, monkeypatch):  # noqa: F811
    from embedlab_datasets import movielens

    monkeypatch.setitem(
        movielens.MOVIELENS_ARCHIVES,
        "movielens-100k",
        Archive(url=f"{server.url}/missing.zip", filename="ml-100k.zip", sha256="0" * 64),
    )
    src = demo.choose_source({"EMBEDLAB_DATA_DIR": str(tmp_path)}, progress=False)
    assert src.dataset == "synthetic-collab" and src.options == {"readable_names": True} and not src.real
    assert "holds no ml-100k" in src.description and "download" in src.description and "failed" in src.description
    assert "--no-download" in demo.choose_source({}, download=False).description


def test_readable_names_change_names_only():
    from embedlab_datasets.synthetic_collab import GENRE_TITLES

    plain = embedlab.load_dataset("synthetic-collab", users=200, items=150, ratings=5000, genres=5)
    named = embedlab.load_dataset("synthetic-collab", users=200, items=150, ratings=5000, genres=5, readable_names=True)
    assert named.train.equals(plain.train) and named.valid.equals(plain.valid)  # the same ratings
    items, before = named.entities["item"], plain.entities["item"]
    names = [g for g, _ in GENRE_TITLES[:5]]
    assert set(items["genre"]) <= set(names) and items["label"].is_unique
    assert not items["label"].str.contains("genre").any()
    # the planted grouping is kept: one readable name per planted genre
    assert (items.groupby(before["genre"])["genre"].nunique() == 1).all()
    assert np.array_equal(items["true_bias"], before["true_bias"])
    sequels = items[items["label"].str.contains(r" II \(")]
    for label in sequels["label"]:  # a sequel follows its original by three years
        base, year = label.rsplit(" II (", 1)
        original = items[items["label"].str.match(rf"^{base} \(\d+\)$")]["label"].iloc[0]
        assert int(year[:-1]) == int(original[-5:-1]) + 3
    assert set(named.entities["user"]["favourite_genre"]) <= set(names)


def test_demo_main_trains_then_reports_and_says_what_it_used(tmp_path, monkeypatch, capsys):
    """The commands main runs (recorded, not run: the full demo is the realdata test below, and
    `make demo` itself), the order, and what it prints."""
    import subprocess

    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    monkeypatch.delenv("EMBEDLAB_DATA_DIR", raising=False)
    report = tmp_path / "reports" / "demo.html"
    rc = demo.main(
        ["--no-download", "--out", str(tmp_path / "run"), "--report", str(report), "--train-option=--epochs=2"]
    )
    out = capsys.readouterr().out
    assert rc == 0, out
    assert [c[3:5] for c in calls] == [["train", "synthetic-collab"], ["analyze", str(tmp_path / "run")]]
    assert calls[0][5:] == ["--readable-names", "--out", str(tmp_path / "run"), "--epochs=2"]
    assert calls[1][-2:] == ["--report", str(report)]
    assert "demo data: generated ratings" in out and f"report: {report.resolve()}" in out
    # a failing step stops the demo with its exit status
    calls.clear()
    monkeypatch.setattr(subprocess, "run", lambda cmd: calls.append(cmd) or subprocess.CompletedProcess(cmd, 3))
    assert demo.main(["--no-download"]) == 3 and len(calls) == 1


def test_ml100k_commands_list_star_wars_neighbours(tmp_path):
    folder = write_ml100k(tmp_path / "ml-100k")
    items = (folder / "u.item").read_bytes().decode("latin-1")
    (folder / "u.item").write_bytes(
        (items + "9|Star Wars (1977)|01-Jan-1977||http://x|" + "|".join("0" * 19) + "\n").encode("latin-1")
    )
    src = demo.choose_source({"EMBEDLAB_DATA_DIR": str(tmp_path)}, download=False)
    train, analyze = demo.commands(src, "runs/demo", "reports/demo.html")
    assert train[3:] == ["train", "movielens-100k", "--data-dir", str(folder), "--split", "u1", "--out", "runs/demo"]
    assert analyze[-2:] == ["--entity", "Star Wars (1977)"]


@pytest.mark.realdata
def test_demo_with_movielens_shows_star_wars_and_its_sequels(tmp_path, monkeypatch, capsys):
    folder = data_dir("ml-100k")
    monkeypatch.setenv("EMBEDLAB_DATA_DIR", str(folder.parent))
    report = tmp_path / "demo.html"
    assert demo.main(["--no-download", "--out", str(tmp_path / "run"), "--report", str(report)]) == 0
    assert "MovieLens 100K, the local copy" in capsys.readouterr().out
    html = report.read_text(encoding="utf-8")
    section = html[html.index("neighbours of Star Wars (1977)") :][:3000]
    assert "Empire Strikes Back, The (1980)" in section and "Return of the Jedi (1983)" in section
