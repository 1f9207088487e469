"""Execute a notebook in place with the venv's kernel and keep its outputs (``make notebook``).

The lesson notebook is committed with its outputs, so a student sees every result before
running it. It runs from the repository root, where a relative EMBEDLAB_DATA_DIR (as the README
writes it) resolves; the kernel's working folder is a temporary one, so files the notebook
writes (models/, runs) do not land in the checkout.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import nbclient
import nbformat


def bokeh_loader(output) -> bool:
    """BokehJS itself (sent once per notebook): megabytes that no static viewer runs."""
    data = output.get("data", {})
    return "application/javascript" in data or "application/vnd.bokehjs_load.v0+json" in data


def static(output):
    """A Bokeh figure is kept as a line of text in the committed notebook (GitHub and nbviewer
    do not run BokehJS); printed text, tables and HTML tables stay as they are."""
    data = output.get("data", {})
    if (
        any(k.startswith("application/vnd.bokehjs") for k in data)
        or "embedlab-nb" in str(data.get("text/html", ""))
        and "<script" in str(data.get("text/html", ""))
    ):
        output["data"] = {"text/plain": "(an interactive Bokeh figure: run the notebook to see it)"}
        output.get("metadata", {}).clear()
    return output


def main(path: str) -> None:
    notebook = Path(path).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "jupyter" / "kernels" / "embedlab-docs"
        spec.mkdir(parents=True)
        spec.joinpath("kernel.json").write_text(
            json.dumps(
                {
                    "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                    "display_name": "embedlab",
                    "language": "python",
                }
            )
        )
        os.environ["JUPYTER_PATH"] = str(Path(tmp) / "jupyter")
        if os.environ.get("EMBEDLAB_DATA_DIR"):  # relative to where make runs: the repository root
            os.environ["EMBEDLAB_DATA_DIR"] = str(Path(os.environ["EMBEDLAB_DATA_DIR"]).resolve())
        nb = nbformat.read(notebook, as_version=4)
        print(f"executing {notebook.name} (a few minutes: it trains several models) ...", file=sys.stderr)
        nbclient.NotebookClient(
            nb, timeout=1200, kernel_name="embedlab-docs", resources={"metadata": {"path": tmp}}
        ).execute()
        nb.metadata.get("kernelspec", {}).update({"name": "python3", "display_name": "Python 3"})
        for c in nb.cells:
            if c.cell_type == "code":
                c.outputs = [static(o) for o in c.outputs if not bokeh_loader(o)]
        nbformat.write(nb, notebook)
    print(f"wrote {notebook} with its outputs", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "docs/lesson5.ipynb")
