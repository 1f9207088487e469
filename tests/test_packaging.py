"""The built wheel: both plugin packages with their data files, the entry points, nothing else.

DESIGN: ``plugins/`` and ``datasets/`` install as ``embedlab_plugins`` and ``embedlab_datasets``
(setup.cfg package_dir); a top-level ``datasets`` package would shadow the famous PyPI one.
The wheel is built from a copy of the source files in a temporary folder, so the build never
writes build/ or *.egg-info into the working tree other people are editing.
"""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import embedlab

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(embedlab_wheel) -> Path:
    """The session's one wheel (tests/conftest.py builds it from a copy of the sources)."""
    return embedlab_wheel


@pytest.fixture(scope="module")
def names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _dist_info_text(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as zf:
        (path,) = [n for n in zf.namelist() if n.endswith(f".dist-info/{name}")]
        return zf.read(path).decode("utf-8")


def test_wheel_has_both_plugin_packages_with_every_module_and_data_file(names):
    for folder, package in (
        ("plugins", "embedlab_plugins"),
        ("datasets", "embedlab_datasets"),
        ("embedlab", "embedlab"),
    ):
        expected = {
            f"{package}/{p.relative_to(ROOT / folder).as_posix()}"
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in (".py", ".csv", ".tmpl") and "__pycache__" not in p.parts
        }
        assert f"{package}/__init__.py" in expected
        missing = expected - names
        assert not missing, f"missing from the wheel (a new subpackage not listed in setup.cfg?): {sorted(missing)}"
    assert any(n.startswith("embedlab_datasets/") and n.endswith(".csv") for n in names)
    for module in (
        "__init__",
        "cli/__init__",
        "hookspecs",
        "plugins",
        "registry",
        "run",
        "data",
        "trainers/collab",
        "training/learner",
        "toolkit/plotting",
        "report/html",
    ):
        assert f"embedlab/{module}.py" in names


def test_no_top_level_plugins_or_datasets_package(wheel, names):
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"plugins", "datasets", "tests", "benchmarks"}, tops
    top_level = set(_dist_info_text(wheel, "top_level.txt").split())
    assert top_level == {"embedlab", "embedlab_plugins", "embedlab_datasets"}


def test_entry_points_match_setup_cfg_and_point_into_the_wheel(wheel, names):
    """The console script is the wheel's one entry point; built-ins are not entry points (they
    load from embedlab.plugins.BUILTIN_PLUGINS, so a checkout works without reinstalling), and
    every built-in module is inside the wheel."""
    from embedlab.plugins import BUILTIN_PLUGINS

    built = configparser.ConfigParser()
    built.read_string(_dist_info_text(wheel, "entry_points.txt"))
    assert built["console_scripts"]["embedlab"] == "embedlab.cli:main"
    declared = configparser.ConfigParser()
    declared.read(ROOT / "setup.cfg")
    assert set(built.sections()) == set(declared["options.entry_points"]) == {"console_scripts"}
    for name, target in BUILTIN_PLUGINS.items():
        module = target.split(":")[0].replace(".", "/")
        assert f"{module}.py" in names or f"{module}/__init__.py" in names, f"{name} -> {target}"
    assert {"movielens", "ratings-csv", "synthetic-collab", "collab-trainer"} <= set(BUILTIN_PLUGINS)


def test_metadata_version_and_requirements(wheel):
    meta = _dist_info_text(wheel, "METADATA")
    assert f"Version: {embedlab.__version__}\n" in meta
    for req in ("pluggy", "safetensors", "click", "pandas", "torch"):
        assert f"Requires-Dist: {req}" in meta, req


def test_packaged_data_files_are_reachable_through_importlib_resources(wheel, tmp_path):
    unpacked = tmp_path / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(unpacked)
    csvs = sorted(p.name for p in (unpacked / "embedlab_datasets").glob("*.csv"))
    code = (
        "import importlib.resources as r, embedlab_datasets, sys\n"
        "assert embedlab_datasets.__file__.startswith(sys.argv[1]), embedlab_datasets.__file__\n"
        "for name in sys.argv[2:]:\n"
        "    assert r.files('embedlab_datasets').joinpath(name).read_text(encoding='utf-8').strip(), name\n"
        "print('ok')\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(unpacked), *csvs],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(unpacked)},
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
