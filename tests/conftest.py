"""Shared fixtures: real-data paths (skip cleanly without EMBEDLAB_DATA_DIR), small runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


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


@pytest.fixture(scope="session")
def synthetic_run(tmp_path_factory):
    """A small trained synthetic-collab run on disk (shared across tests; do not modify)."""
    import embedlab

    out = tmp_path_factory.mktemp("runs") / "synth"
    embedlab.train("synthetic-collab", out=out, users=300, items=200, ratings=20000, epochs=4, seed=1)
    return out
