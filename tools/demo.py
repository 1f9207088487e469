"""``make demo``: train and analyse real films when it can, planted ones with readable names when not.

Where the ratings come from, in this order:

1. ``EMBEDLAB_DATA_DIR``: a local copy of MovieLens 100K, the folder itself or its ``ml-100k/``
   (``u.data`` and ``u.item`` inside);
2. the checksummed download of MovieLens 100K from GroupLens into ``$EMBEDLAB_CACHE`` (the
   dataset's own archive table, ``embedlab_datasets.movielens``; verified before use, reused
   once extracted);
3. otherwise the generated ``synthetic-collab`` data with ``--readable-names`` (named planted
   genres, film titles of their genre, sequels).

It says which it used (and why the others were not), trains with the CLI, writes the report
(with the neighbours of Star Wars for MovieLens) and says where it is::

    python tools/demo.py [--out runs/demo] [--report reports/demo.html] [--no-download]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ML100K_FILES = ("u.data", "u.item")
STAR_WARS = "Star Wars (1977)"


@dataclass
class Source:
    """The data the demo trains on: a dataset name, its loader options, and what to say."""

    dataset: str
    options: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    entities: list[str] = field(default_factory=list)  # whose neighbours the report lists
    real: bool = False


def local_ml100k(root: str | os.PathLike | None) -> Path | None:
    """The MovieLens 100K folder under ``root`` (``root`` itself or ``root/ml-100k``), or None:
    the rule every command with ``--data-dir`` follows (embedlab.data.locate_data_dir)."""
    from embedlab.data import locate_data_dir

    if not root:
        return None
    return locate_data_dir(None, "ml-100k", ML100K_FILES, env={"EMBEDLAB_DATA_DIR": str(root)})


def _ml100k_source(folder: Path, how: str) -> Source:
    """MovieLens 100K from ``folder``; the report lists Star Wars' neighbours when it is there."""
    try:
        titles = (folder / "u.item").read_bytes().decode("latin-1")
    except OSError:
        titles = ""
    entities = [STAR_WARS] if f"|{STAR_WARS}|" in titles else []
    return Source("movielens-100k", {"data_dir": str(folder), "split": "u1"}, f"MovieLens 100K, {how}", entities, True)


def choose_source(env: dict[str, str] | None = None, download: bool = True, progress: bool = True) -> Source:
    """Where the demo's ratings come from (see the module docstring); never raises for missing
    data: the synthetic data is always there."""
    env = os.environ if env is None else env
    tried = []
    root = env.get("EMBEDLAB_DATA_DIR")
    folder = local_ml100k(root)
    if folder is not None:
        return _ml100k_source(folder, f"the local copy in {folder} (EMBEDLAB_DATA_DIR)")
    tried.append(f"EMBEDLAB_DATA_DIR {'is not set' if not root else f'({root}) holds no ml-100k folder'}")
    if download:
        from embedlab.errors import EmbedlabError
        from embedlab.io.download import ensure_dataset
        from embedlab_datasets.movielens import MOVIELENS_ARCHIVES, MOVIELENS_SUBDIRS

        archive = MOVIELENS_ARCHIVES["movielens-100k"]
        try:
            folder = ensure_dataset(archive, MOVIELENS_SUBDIRS["movielens-100k"], progress=progress)
        except (EmbedlabError, OSError) as exc:
            tried.append(f"the download of {archive.url} failed ({' '.join(str(exc).split())[:200]})")
        else:
            return _ml100k_source(folder, f"downloaded from {archive.url} (checksum verified) into {folder}")
    else:
        tried.append("downloading was turned off (--no-download)")
    return Source(
        "synthetic-collab",
        {"readable_names": True},
        "generated ratings (synthetic-collab --readable-names: planted genres and films with "
        "readable names, not real films) because " + "; ".join(tried),
    )


def _flags(options: dict[str, Any]) -> list[str]:
    out = []
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif value not in (False, None):
            out += [flag, str(value)]
    return out


def commands(source: Source, out: str, report: str, extra_train: list[str] | None = None) -> list[list[str]]:
    """The two embedlab commands the demo runs: train, then analyse into the report."""
    exe = [sys.executable, "-m", "embedlab"]
    train = exe + ["train", source.dataset, *_flags(source.options), "--out", out, *(extra_train or [])]
    analyze = exe + ["analyze", out, "--report", report]
    for entity in source.entities:
        analyze += ["--entity", entity]
    return [train, analyze]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/demo")
    parser.add_argument("--report", default="reports/demo.html")
    parser.add_argument("--no-download", action="store_true", help="Do not try the MovieLens download.")
    parser.add_argument(
        "--train-option",
        action="append",
        default=[],
        help="Extra option for `embedlab train` (repeatable), e.g. --train-option=--epochs=2.",
    )
    args = parser.parse_args(argv)
    source = choose_source(download=not args.no_download)
    print(f"demo data: {source.description}", flush=True)
    for cmd in commands(source, args.out, args.report, args.train_option):
        print("$ " + " ".join(cmd[2:] if cmd[:2] == [sys.executable, "-m"] else cmd), flush=True)
        done = subprocess.run(cmd)
        if done.returncode:
            return done.returncode
    print(f"demo data: {'MovieLens 100K (real films)' if source.real else 'synthetic (readable planted names)'}")
    print(f"report: {Path(args.report).resolve()} (open it in a browser; it works offline)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
