"""The plugin guide, shipped inside the package: ``embedlab plugins guide`` prints it.

The guide (``embedlab/authoring/guide.md``, package data) is the whole plugin contract: the
hooks, the types, the toolkit helpers, testing and debugging. It is read through
:mod:`importlib.resources`, so it is there in any installation, offline::

    from embedlab.authoring.guide import guide_text, guide_section

    print(guide_section("Testing your plugin"))
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

__all__ = ["GUIDE_FILE", "guide_path", "guide_text", "guide_sections", "guide_section"]

GUIDE_FILE = "guide.md"


def guide_path() -> Path:
    """Where the installed guide lies (a plain file in any ordinary installation)."""
    return Path(str(resources.files("embedlab.authoring") / GUIDE_FILE))


def guide_text() -> str:
    """The whole guide (markdown)."""
    from embedlab.errors import UsageError

    node = resources.files("embedlab.authoring") / GUIDE_FILE
    if not node.is_file():
        raise UsageError(
            "embedlab's plugin guide is missing from this installation "
            "(embedlab/authoring/guide.md); reinstall embedlab"
        )
    return node.read_text(encoding="utf-8")


def guide_sections(text: str | None = None) -> list[tuple[int, str, str]]:
    """``(level, heading, body)`` for every markdown heading of the guide (outside code
    blocks), in order; ``body`` runs to the next heading of any level."""
    out, level, heading, body, fenced = [], 0, "", [], False
    for line in (guide_text() if text is None else text).splitlines():
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"^(#{1,6})\s+(.*)$", line)
        if m:
            out.append((level, heading, "\n".join(body)))
            level, heading, body = len(m.group(1)), m.group(2).strip(), []
        else:
            body.append(line)
    out.append((level, heading, "\n".join(body)))
    return out[1:]


def guide_section(topic: str, text: str | None = None) -> str:
    """Every section whose heading contains ``topic`` (case-insensitive), each with its
    subsections, as markdown; a topic no heading contains is a UsageError listing them."""
    from embedlab.errors import UsageError

    sections = guide_sections(text)
    picked: list[str] = []
    i = 0
    while i < len(sections):
        level, heading, body = sections[i]
        if topic.lower() in heading.lower():
            part = [f"{'#' * level} {heading}\n{body}"]
            i += 1
            while i < len(sections) and sections[i][0] > level:  # its subsections
                part.append(f"{'#' * sections[i][0]} {sections[i][1]}\n{sections[i][2]}")
                i += 1
            picked.append("\n".join(part).rstrip() + "\n")
        else:
            i += 1
    if not picked:
        headings = ", ".join(h for lvl, h, _ in sections if lvl <= 2)
        raise UsageError(f"no section of the plugin guide is about {topic!r}; its sections: {headings}")
    return "\n".join(picked)
