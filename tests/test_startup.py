"""The CLI starts without the heavy libraries: torch, scipy, sklearn, umap and bokeh load only
when a command trains, analyses or loads weights.

`embedlab --help`, `embedlab train NAME --help`, `embedlab plugins` and `embedlab datasets`
load every plugin (the trainers' and analyses' options make the help), and importing torch and
scipy.stats took 4-5 s of each call. Each check runs in a fresh interpreter, since this test
process has long imported everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

HEAVY = ("torch", "scipy", "sklearn", "umap", "bokeh")

# Builds the CLI and runs the commands that only describe things, then reports what loaded.
PROBE = textwrap.dedent(
    """
    import json, sys
    from click.testing import CliRunner
    from embedlab.cli import cli
    from embedlab.plugins import plugin_infos

    commands = [["--help"], ["train", "--help"], ["train", "synthetic-collab", "--help"],
                ["train", "synthetic-rossmann", "--help"], ["lr-find", "synthetic-collab", "--help"],
                ["compare", "synthetic-collab", "--help"], ["datasets"], ["datasets", "list"],
                ["plugins", "--all"], ["analyze", "--help"], ["predict", "--help"]]
    runner = CliRunner()
    results = {}
    for args in commands:
        res = runner.invoke(cli, args, catch_exceptions=False)
        results[" ".join(args)] = {"exit_code": res.exit_code, "output": res.output}
    print(json.dumps({
        "results": results,
        "plugins": sorted(i.name for i in plugin_infos()),
        "heavy": sorted(m for m in %r if m in sys.modules),
    }))
"""
    % (HEAVY,)
)


def _probe(extra_path: Path | None = None, load_plugins: str = "") -> dict:
    env = {**os.environ, "EMBEDLAB_LOAD_PLUGINS": load_plugins}  # "": the built-ins only
    if extra_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(extra_path), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _builtin_entry_points() -> set[str]:
    from embedlab.plugins import BUILTIN_PLUGINS

    return set(BUILTIN_PLUGINS)


def test_cli_builds_without_heavy_imports():
    out = _probe()
    results = out["results"]
    # the commands really built what they describe (no plugin silently skipped on import)
    assert set(out["plugins"]) == _builtin_entry_points()
    for args, res in results.items():
        ok = (0, 2) if args == "datasets" else (0,)  # a bare group prints its help (2 since click 8.2)
        assert res["exit_code"] in ok, (args, res["output"][-2000:])
    collab_help = results["train synthetic-collab --help"]["output"]
    for option in ("--n-factors", "--lr", "--wd-mode", "--sparse", "--freeze", "--init-from", "--users"):
        assert option in collab_help
    assert "--preset" in results["train synthetic-rossmann --help"]["output"]
    assert "--suggest" in results["lr-find synthetic-collab --help"]["output"]
    assert "synthetic-collab" in results["datasets list"]["output"]
    assert "collab-trainer" in results["plugins --all"]["output"]
    assert "--only" in results["analyze --help"]["output"]
    assert out["heavy"] == [], f"building the CLI imported {out['heavy']}: import them where they are used"


def test_probe_catches_a_plugin_that_imports_torch_at_the_top(tmp_path):
    """The control: a plugin with a top-level ``import torch``, installed like a third-party
    one (a dist-info with an ``embedlab`` entry point), shows up in the probe's answer."""
    (tmp_path / "heavy_plugin.py").write_text(
        "import torch  # the mistake this test file guards against\n"
        "from embedlab import hookimpl\n\n"
        "@hookimpl\n"
        "def embedlab_register_commands(cli):\n"
        "    pass\n"
    )
    info = tmp_path / "heavy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: heavy-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[embedlab]\nheavy = heavy_plugin\n")
    out = _probe(tmp_path, load_plugins="heavy-plugin")
    assert "heavy" in out["plugins"]
    assert "torch" in out["heavy"]
